//! Re-filing: the comms team's category for a resource (`category_override`),
//! which wins over the source and the keyword rules until cleared. A re-file
//! is one transaction that moves the category, records a revision and moves
//! the feed version, but writes no change event: nothing says "(updated)".
//! It also moves the source's `run_seq`, so an ingest that loaded the
//! source before the re-file retries instead of writing the old category
//! back. Ingest keeps overrides through `category_overrides`.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, format_time};
use crate::model::{Category, ResourceId};

/// What a re-file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refiled {
    /// The category before.
    pub before: String,
    /// The category now.
    pub after: String,
    /// False when the resource already stood so (nothing was written).
    pub changed: bool,
}

impl Store {
    /// Files resource `id` under `category`. `sticky` keeps it there through
    /// later ingests (the comms team chose it); otherwise the override is
    /// cleared and `category` is what the rules give now.
    pub async fn refile(
        &self,
        id: &ResourceId,
        category: &Category,
        sticky: bool,
        at: DateTime<Utc>,
    ) -> Result<Refiled, StoreError> {
        let action = || format!("re-file resource {id}");
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        let row = sqlx::query("SELECT category, category_override FROM resources WHERE id = $1")
            .bind(id.0.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        let Some(row) = row else {
            return Err(StoreError::NotFound {
                what: format!("resource {id}"),
            });
        };
        let before: String = row.try_get("category").map_err(StoreError::db(action()))?;
        let override_before: Option<String> = row
            .try_get("category_override")
            .map_err(StoreError::db(action()))?;
        let override_after = sticky.then(|| category.name.clone());
        if before == category.name && override_before == override_after {
            tx.rollback().await.map_err(StoreError::db(action()))?;
            return Ok(Refiled {
                after: before.clone(),
                before,
                changed: false,
            });
        }
        // First, so a concurrent ingest's apply (which holds this row) waits.
        sqlx::query("UPDATE store_meta SET feed_version = feed_version + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        let source: String = sqlx::query_scalar(
            "UPDATE resources SET category = $2, category_slug = $3, category_override = $4, \
             revision = revision + 1 WHERE id = $1 RETURNING source",
        )
        .bind(id.0.as_str())
        .bind(category.name.as_str())
        .bind(category.slug.as_str())
        .bind(override_after)
        .fetch_one(&mut *tx)
        .await
        .map_err(StoreError::db(action()))?;
        sqlx::query(
            "INSERT INTO revisions (resource_id, seq, title, link, summary, entry_date, category, \
             category_slug, download, fingerprint, seen_at) SELECT id, revision, title, link, \
             summary, entry_date, category, category_slug, download, fingerprint, $2 \
             FROM resources WHERE id = $1",
        )
        .bind(id.0.as_str())
        .bind(format_time(at))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(action()))?;
        sqlx::query("UPDATE source_state SET run_seq = run_seq + 1 WHERE source = $1")
            .bind(&source)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(Refiled {
            before,
            after: category.name.clone(),
            changed: true,
        })
    }

    /// The category the comms team chose for resource `id`, if any.
    pub async fn category_override(&self, id: &ResourceId) -> Result<Option<String>, StoreError> {
        let found: Option<Option<String>> =
            sqlx::query_scalar("SELECT category_override FROM resources WHERE id = $1")
                .bind(id.0.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db(format!(
                    "read the category of resource {id}"
                )))?;
        Ok(found.flatten())
    }

    /// Every resource of `source` with a chosen category, and that category.
    pub async fn category_overrides(
        &self,
        source: &str,
    ) -> Result<Vec<(ResourceId, Category)>, StoreError> {
        let action = || format!("read the chosen categories of source {source}");
        let rows = sqlx::query(
            "SELECT id, category_override FROM resources \
             WHERE source = $1 AND category_override IS NOT NULL",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db(action()))?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let name: String = row.try_get("category_override")?;
                Ok((ResourceId(id), Category::new(name)))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db(action()))
    }
}
