//! Reads for the public pages and the feeds that touch only what they show:
//! one page of resources newest first by when Tidings first saw them, the
//! count behind it, the categories with their counts, and each feed's newest
//! resources by when Tidings first saw or last changed them.

use std::collections::HashSet;

use sqlx::Row;

use super::rows::{self, resource_columns};
use super::{Store, StoreError};
use crate::model::{Category, CategorySlug, Resource};

/// Which page of resources `Store::resource_page` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery {
    /// Only this category.
    pub category: Option<CategorySlug>,
    /// Resources skipped before the page starts.
    pub offset: usize,
    /// Resources on the page at most.
    pub limit: usize,
}

/// A category with its number of current (not withdrawn) resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryCount {
    /// The category.
    pub category: Category,
    /// Current resources in it.
    pub count: usize,
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl Store {
    /// One page of current resources, newest first seen first (ties by id).
    /// How many match in all is `category_counts`' to say, which pages read anyway.
    pub(crate) async fn resource_page(
        &self,
        query: &PageQuery,
    ) -> Result<Vec<Resource>, StoreError> {
        let action = "list a page of resources";
        let category = query.category.as_ref().map(|c| c.as_str().to_owned());
        let sql = concat!(
            "SELECT ",
            resource_columns!(),
            " FROM resources WHERE withdrawn_at IS NULL AND ($1 IS NULL OR category_slug = $1)",
            " ORDER BY first_seen DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sql)
            .bind(category)
            .bind(to_i64(query.limit))
            .bind(to_i64(query.offset))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(action))?;
        let resources = rows
            .iter()
            .map(rows::resource)
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::db(action))?;
        Ok(resources)
    }

    /// Every category named by a resource, by slug, with its number of current
    /// resources; with `include_withdrawn`, categories only withdrawn resources
    /// name are listed too (with a count of 0).
    pub(crate) async fn category_counts(
        &self,
        include_withdrawn: bool,
    ) -> Result<Vec<CategoryCount>, StoreError> {
        let sql = "SELECT MIN(category) AS name, \
                   SUM(CASE WHEN withdrawn_at IS NULL THEN 1 ELSE 0 END) AS current \
                   FROM resources GROUP BY category_slug ORDER BY category_slug";
        let rows = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("count resources per category"))?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row
                .try_get("name")
                .map_err(StoreError::db("read a category"))?;
            let current: i64 = row
                .try_get("current")
                .map_err(StoreError::db("read a category count"))?;
            if current > 0 || include_withdrawn {
                counts.push(CategoryCount {
                    category: Category::new(name),
                    count: to_usize(current),
                });
            }
        }
        Ok(counts)
    }

    /// What the feeds show: for the all-feed and each of `categories`, the
    /// newest `max_items` current resources by when Tidings first saw or last
    /// changed them (`updated`), merged without repeats, newest first.
    ///
    /// Filtering this list by category and taking `max_items` gives the same
    /// items as doing so on every stored resource, without loading them all.
    pub(crate) async fn feed_resources(
        &self,
        categories: &[CategorySlug],
        max_items: usize,
    ) -> Result<Vec<Resource>, StoreError> {
        let sql = concat!(
            "SELECT ",
            resource_columns!(),
            " FROM resources WHERE withdrawn_at IS NULL AND ($1 IS NULL OR category_slug = $1)",
            " ORDER BY updated DESC, id DESC LIMIT $2"
        );
        let selections = std::iter::once(None).chain(categories.iter().map(Some));
        let mut seen = HashSet::new();
        let mut merged = Vec::new();
        for slug in selections {
            let action = || match slug {
                Some(s) => format!("load the newest resources of category {s}"),
                None => "load the newest resources".to_owned(),
            };
            let rows = sqlx::query(sql)
                .bind(slug.map(|s| s.as_str().to_owned()))
                .bind(to_i64(max_items))
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db(action()))?;
            for row in &rows {
                let resource = rows::resource(row).map_err(StoreError::db(action()))?;
                if seen.insert(resource.id.clone()) {
                    merged.push(resource);
                }
            }
        }
        merged.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| b.id.0.cmp(&a.id.0)));
        Ok(merged)
    }
}
