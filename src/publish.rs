//! Store -> feeds: loads what the feeds show, renders every feed and hands
//! the result to the `FeedCache`, which serves the last good version of each.
//! Called at start, after an ingest that changed something, and when another
//! replica moved the store's feed version.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::feeds::{self, FeedCache, FeedInput, FeedSite, PublishReport, RenderedFeed};
use crate::model::{Category, Resource};
use crate::store::{ResourceFilter, Store, StoreError};

/// Categories that get a feed: the configured ones and "Other", then any a source named.
pub fn feed_categories(config: &Config, resources: &[Resource]) -> Vec<Category> {
    let configured = config.categories.rules.iter().map(|rule| &rule.category);
    let named = resources.iter().map(|resource| &resource.category);
    let mut categories: Vec<Category> = Vec::new();
    for category in configured.chain([&Category::other()]).chain(named) {
        if !categories.iter().any(|c| c.slug == category.slug) {
            categories.push(category.clone());
        }
    }
    categories
}

/// The site as feeds describe it.
pub fn feed_site(config: &Config) -> FeedSite {
    FeedSite {
        title: config.site.title.clone(),
        base_url: config.site.base_url.clone(),
        description: format!("New and changed resources from {}", config.site.title),
    }
}

/// Render every feed from the store's current resources.
pub async fn render(store: &Store, config: &Config) -> Result<Vec<RenderedFeed>, StoreError> {
    let resources = store.list_resources(&ResourceFilter::default()).await?;
    let categories = feed_categories(config, &resources);
    let site = feed_site(config);
    Ok(feeds::render_all(&FeedInput {
        site: &site,
        resources: &resources,
        categories: &categories,
        max_items: config.feeds.max_items,
    }))
}

/// Render and publish into `cache`; feeds that fail their check keep the last good version.
pub async fn refresh(
    store: &Store,
    config: &Config,
    cache: &FeedCache,
    now: DateTime<Utc>,
) -> Result<PublishReport, StoreError> {
    let rendered = render(store, config).await?;
    Ok(cache.publish(rendered, now))
}
