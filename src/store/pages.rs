//! The page cache of `html` sources: the last good body of each page with
//! its `ETag` and `Last-Modified`, replaced as a whole after each successful
//! run, so a `304` can reuse exactly what the last good run parsed.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, format_time};

/// One page as the last good run fetched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPage {
    /// The URL requested.
    pub url: String,
    /// The server's `ETag`, if any.
    pub etag: Option<String>,
    /// The server's `Last-Modified`, if any.
    pub last_modified: Option<String>,
    /// The decoded page text.
    pub body: String,
}

impl Store {
    /// Every cached page of `source`.
    pub async fn cached_pages(&self, source: &str) -> Result<Vec<CachedPage>, StoreError> {
        let action = || format!("read the page cache of {source}");
        let rows =
            sqlx::query("SELECT url, etag, last_modified, body FROM page_cache WHERE source = $1")
                .bind(source)
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db(action()))?;
        rows.iter()
            .map(|row| {
                Ok(CachedPage {
                    url: row.try_get("url")?,
                    etag: row.try_get("etag")?,
                    last_modified: row.try_get("last_modified")?,
                    body: row.try_get("body")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::db(action()))
    }

    /// Replace `source`'s cached pages with `pages`, in one transaction.
    pub async fn save_pages(
        &self,
        source: &str,
        pages: &[CachedPage],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let action = || format!("save the page cache of {source}");
        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        sqlx::query("DELETE FROM page_cache WHERE source = $1")
            .bind(source)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        for page in pages {
            sqlx::query(
                "INSERT INTO page_cache (source, url, etag, last_modified, body, fetched_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(source)
            .bind(&page.url)
            .bind(page.etag.as_deref())
            .bind(page.last_modified.as_deref())
            .bind(&page.body)
            .bind(format_time(at))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        }
        tx.commit().await.map_err(StoreError::db(action()))
    }
}
