//! The page cache of `html` sources, persisted: the last good body of each
//! page with its `ETag` and `Last-Modified` (`source::CachedPage`, what the
//! source read), replaced as a whole after each successful run, so a `304`
//! can reuse exactly what the last good run parsed.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::batch::{self, Placeholders};
use super::{Store, StoreError, format_time};
use crate::source::CachedPage;

/// Bytes of page text per statement, roughly; a larger page is written alone.
const CHUNK_BYTES: usize = 4 * 1024 * 1024;

impl Store {
    /// Every cached page of `source`.
    pub(crate) async fn cached_pages(&self, source: &str) -> Result<Vec<CachedPage>, StoreError> {
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
        let now = format_time(at);
        // Pages are small but many (834 for a 10,000-entry listing): a chunk
        // per statement, with a byte budget so huge single pages go alone.
        for chunk in chunks_by_size(pages) {
            let sql = format!(
                "INSERT INTO page_cache (source, url, etag, last_modified, body, fetched_at) \
                 VALUES {}",
                Placeholders::new(self.backend).rows("({}, {}, {}, {}, {}, {})", chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for page in chunk {
                query = query
                    .bind(source)
                    .bind(page.url.as_str())
                    .bind(page.etag.as_deref())
                    .bind(page.last_modified.as_deref())
                    .bind(page.body.as_str())
                    .bind(now.as_str());
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action()))?;
        }
        tx.commit().await.map_err(StoreError::db(action()))
    }
}

/// `pages` in runs of at most `batch::ROWS` pages and about `CHUNK_BYTES` of text.
fn chunks_by_size(pages: &[CachedPage]) -> Vec<&[CachedPage]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, page) in pages.iter().enumerate() {
        let full = i > start && (i - start == batch::ROWS || bytes + page.body.len() > CHUNK_BYTES);
        if full {
            chunks.push(&pages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += page.body.len();
    }
    if start < pages.len() {
        chunks.push(&pages[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(len: usize) -> CachedPage {
        CachedPage {
            url: format!("https://example.org/{len}"),
            etag: None,
            last_modified: None,
            body: "x".repeat(len),
        }
    }

    #[test]
    fn chunks_keep_every_page_in_order_within_the_budgets() {
        let pages: Vec<CachedPage> = [10, CHUNK_BYTES, 10, 10, CHUNK_BYTES - 30, 40]
            .into_iter()
            .map(page)
            .collect();
        let sizes: Vec<usize> = chunks_by_size(&pages).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [1, 1, 3, 1]);
        let many: Vec<CachedPage> = (0..batch::ROWS + 1).map(|_| page(1)).collect();
        let sizes: Vec<usize> = chunks_by_size(&many).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [batch::ROWS, 1]);
        assert!(chunks_by_size(&[]).is_empty());
    }
}
