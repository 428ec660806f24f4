//! Store -> feeds: loads what the feeds show, renders every feed and hands
//! the result to the `FeedCache`, which serves the last good version of each.
//! Called at start, after an ingest that changed something, and when another
//! replica moved the store's feed version.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::feeds::{self, FeedCache, FeedInput, FeedSite, PublishReport, RenderedFeed};
use crate::model::{Category, Resource};
use crate::store::{Store, StoreError};

/// Categories that get a feed: the configured ones and "Other", then any a source named.
pub(crate) fn feed_categories(config: &Config, resources: &[Resource]) -> Vec<Category> {
    let named: Vec<Category> = resources.iter().map(|r| r.category.clone()).collect();
    feed_categories_of(config, &named)
}

/// Categories that get a feed, from the categories the store names (see `feed_categories`).
pub(crate) fn feed_categories_of(config: &Config, named: &[Category]) -> Vec<Category> {
    let configured = config.categories.rules.iter().map(|rule| &rule.category);
    let mut categories: Vec<Category> = Vec::new();
    for category in configured.chain([&Category::other()]).chain(named) {
        if !categories.iter().any(|c| c.slug == category.slug) {
            categories.push(category.clone());
        }
    }
    categories
}

/// The site as feeds describe it.
pub(crate) fn feed_site(config: &Config) -> FeedSite {
    FeedSite {
        title: config.site.title.clone(),
        base_url: config.site.base_url.clone(),
        description: format!("New and changed resources from {}", config.site.title),
    }
}

/// Render every feed from the store's current resources: each feed holds
/// its newest `feeds.max_items` by when Tidings first saw or last changed
/// them, so a document added today with an old date is news; only those are
/// loaded, never the whole library.
pub async fn render(store: &Store, config: &Config) -> Result<Vec<RenderedFeed>, StoreError> {
    let named: Vec<Category> = (store.category_counts(false).await?)
        .into_iter()
        .map(|c| c.category)
        .collect();
    let categories = feed_categories_of(config, &named);
    let slugs: Vec<_> = categories.iter().map(|c| c.slug.clone()).collect();
    let resources = store.feed_resources(&slugs, config.feeds.max_items).await?;
    let site = feed_site(config);
    Ok(feeds::render_all(&FeedInput {
        site: &site,
        resources: &resources,
        categories: &categories,
        max_items: config.feeds.max_items,
    }))
}

/// Render and publish into `cache`; feeds that fail their check keep the last good version.
pub(crate) async fn refresh(
    store: &Store,
    config: &Config,
    cache: &FeedCache,
    now: DateTime<Utc>,
) -> Result<PublishReport, StoreError> {
    let rendered = render(store, config).await?;
    Ok(cache.publish(rendered, now))
}
