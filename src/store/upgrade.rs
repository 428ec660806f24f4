//! One-off upgrade steps that SQL alone cannot do, run by `Store::migrate`
//! right after the SQL migrations. Each is idempotent and writes no revision
//! and no change event: an upgrade is not news.
//!
//! - Identity digests: the SHA-256 of each identity key for rows stored
//!   before migration 0009 (SQLite has no SHA-256 function; on PostgreSQL the
//!   migration fills them itself and this finds nothing to do).
//! - Clean stored text: text stored before `source::clean` existed is
//!   cleaned the same way, with its fingerprint (and, for a resource known by
//!   its title, its identity key) recomputed, so the next run of its source
//!   sees no change where the text did not really change. Recorded in
//!   `upgrades` once done.

use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};
use tracing::{info, warn};

use super::rows::{self, resource_columns};
use super::{Store, StoreError, format_time};
use crate::clock::{Clock, SystemClock};
use crate::identity::{fingerprint, identity_key};
use crate::model::{Category, Entry, Resource, Summary};
use crate::source::clean;

/// The name `upgrades` records for the text cleaning.
const CLEAN_TEXT: &str = "clean-stored-text";

/// The SHA-256 (hex) of an identity key: what the unique identity index holds.
pub fn identity_digest(identity: &str) -> String {
    hex::encode(Sha256::digest(identity.as_bytes()))
}

impl Store {
    /// Run every upgrade step not yet done.
    pub(super) async fn upgrade(&self) -> Result<(), StoreError> {
        self.fill_identity_digests().await?;
        self.clean_stored_text().await
    }

    /// Give every resource stored without one its identity digest.
    async fn fill_identity_digests(&self) -> Result<(), StoreError> {
        let action = "fill in identity digests";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        let rows = sqlx::query("SELECT id, identity FROM resources WHERE identity_digest IS NULL")
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        for row in &rows {
            let id: String = row.try_get("id").map_err(StoreError::db(action))?;
            let identity: String = row.try_get("identity").map_err(StoreError::db(action))?;
            sqlx::query("UPDATE resources SET identity_digest = $1 WHERE id = $2")
                .bind(identity_digest(&identity))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        tx.commit().await.map_err(StoreError::db(action))?;
        if !rows.is_empty() {
            info!(resources = rows.len(), "identity digests filled in");
        }
        Ok(())
    }

    /// Clean the text stored before `source::clean` existed, once.
    async fn clean_stored_text(&self) -> Result<(), StoreError> {
        let action = "clean stored text";
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action))?;
        let done: Option<String> = sqlx::query_scalar("SELECT name FROM upgrades WHERE name = $1")
            .bind(CLEAN_TEXT)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        if done.is_some() {
            return Ok(());
        }
        let sql = concat!("SELECT ", resource_columns!(), " FROM resources");
        let rows = sqlx::query(sql)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        let mut cleaned = 0;
        for row in &rows {
            let resource = rows::resource(row).map_err(StoreError::db(action))?;
            if clean_resource(&mut tx, &resource)
                .await
                .map_err(StoreError::db(format!("clean resource {}", resource.id)))?
            {
                cleaned += 1;
            }
        }
        clean_revisions(&mut tx)
            .await
            .map_err(StoreError::db("clean stored revisions"))?;
        if cleaned > 0 {
            // Feeds and pages show the cleaned text from the next render.
            sqlx::query("UPDATE store_meta SET feed_version = feed_version + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action))?;
        }
        sqlx::query("INSERT INTO upgrades (name, done_at) VALUES ($1, $2)")
            .bind(CLEAN_TEXT)
            .bind(format_time(SystemClock.now()))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action))?;
        tx.commit().await.map_err(StoreError::db(action))?;
        info!(
            resources = cleaned,
            "stored text cleaned of bidi controls and noncharacters"
        );
        Ok(())
    }
}

/// The content of one stored version, cleaned, with its fingerprint.
struct CleanVersion {
    title: String,
    summary: Summary,
    category: Category,
    fingerprint: String,
}

impl CleanVersion {
    /// `None` when cleaning changes nothing.
    fn of(
        title: &str,
        summary: &Summary,
        category: &str,
        entry: impl FnOnce() -> Entry,
    ) -> Option<Self> {
        let clean_title = clean::line(title);
        let clean_summary = clean::summary(summary);
        let clean_category = clean::line(category);
        if clean_title == title && clean_summary == *summary && clean_category == category {
            return None;
        }
        let mut e = entry();
        e.title = clean_title;
        e.summary = clean_summary;
        let category = Category::new(clean_category);
        Some(Self {
            fingerprint: fingerprint(&e, &category),
            title: e.title,
            summary: e.summary,
            category,
        })
    }

    fn summary_json(&self) -> String {
        serde_json::to_string(&self.summary)
            .expect("a Summary is strings and lists only, which always serialise")
    }
}

/// Clean one resource's current text; true when anything changed.
async fn clean_resource(conn: &mut AnyConnection, r: &Resource) -> Result<bool, sqlx::Error> {
    let entry = || Entry {
        title: r.title.clone(),
        link: r.link.clone(),
        summary: r.summary.clone(),
        date: r.date,
        category: Some(r.category.name.clone()),
        download: r.download.clone(),
    };
    let Some(clean) = CleanVersion::of(&r.title, &r.summary, &r.category.name, entry) else {
        return Ok(false);
    };
    sqlx::query(
        "UPDATE resources SET title = $1, summary = $2, category = $3, category_slug = $4, \
         fingerprint = $5 WHERE id = $6",
    )
    .bind(clean.title.as_str())
    .bind(clean.summary_json())
    .bind(clean.category.name.as_str())
    .bind(clean.category.slug.as_str())
    .bind(clean.fingerprint.as_str())
    .bind(r.id.0.as_str())
    .execute(&mut *conn)
    .await?;
    rekey_title_identity(conn, r, &clean.title).await?;
    Ok(true)
}

/// A resource known by its title (no link) is found by the identity key of
/// its cleaned title from now on; its id and GUID stay as stored.
async fn rekey_title_identity(
    conn: &mut AnyConnection,
    r: &Resource,
    clean_title: &str,
) -> Result<(), sqlx::Error> {
    if r.link.is_some() {
        return Ok(());
    }
    let identity = identity_key(&r.source, &Entry::titled(clean_title));
    if identity == r.identity {
        return Ok(());
    }
    let digest = identity_digest(&identity);
    let taken: Option<String> =
        sqlx::query_scalar("SELECT id FROM resources WHERE identity_digest = $1")
            .bind(digest.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(other) = taken {
        warn!(
            resource = %r.id,
            other = %other,
            "the cleaned title is another resource's identity; identity kept"
        );
        return Ok(());
    }
    sqlx::query("UPDATE resources SET identity = $1, identity_digest = $2 WHERE id = $3")
        .bind(identity.as_str())
        .bind(digest.as_str())
        .bind(r.id.0.as_str())
        .execute(&mut *conn)
        .await
        .map(drop)
}

/// Clean the text of every stored revision, so history shows what feeds show.
async fn clean_revisions(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT resource_id, seq, title, link, summary, entry_date, category, download, seen_at \
         FROM revisions",
    )
    .fetch_all(&mut *conn)
    .await?;
    for row in &rows {
        let resource_id: String = row.try_get("resource_id")?;
        let revision = rows::revision(row)?;
        let entry = || Entry {
            title: revision.title.clone(),
            link: revision.link.clone(),
            summary: revision.summary.clone(),
            date: revision.date,
            category: Some(revision.category.name.clone()),
            download: revision.download.clone(),
        };
        let Some(clean) = CleanVersion::of(
            &revision.title,
            &revision.summary,
            &revision.category.name,
            entry,
        ) else {
            continue;
        };
        sqlx::query(
            "UPDATE revisions SET title = $1, summary = $2, category = $3, category_slug = $4, \
             fingerprint = $5 WHERE resource_id = $6 AND seq = $7",
        )
        .bind(clean.title.as_str())
        .bind(clean.summary_json())
        .bind(clean.category.name.as_str())
        .bind(clean.category.slug.as_str())
        .bind(clean.fingerprint.as_str())
        .bind(resource_id)
        .bind(revision.seq)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
