//! Chat channels and webhooks (#17): which events go to which `[[channels]]`
//! entry, queued as `channel_posts` rows under idempotency keys so each
//! (channel, event) is posted once; `post` sends them, `payload` writes them.
//! Ingest queues its runs' new, changed and withdrawn resources (never a
//! source's baseline run); announcements queue theirs.

pub mod payload;
pub mod post;

use chrono::{DateTime, Utc};
use tracing::warn;

use crate::config::{ChannelConfig, ChannelEvent, Config};
use crate::model::{Resource, ResourceId};
use crate::reconcile::FieldChange;
use crate::store::{NewPost, Store, StoreError};
use payload::Post;

/// One event of an ingest run, for the channels.
#[derive(Debug, Clone)]
pub struct RunEvent {
    /// New, changed or withdrawn.
    pub event: ChannelEvent,
    /// The resource.
    pub resource: ResourceId,
    /// For `changed`: what differs.
    pub changes: Vec<FieldChange>,
}

/// The public page of a resource.
fn page_of(config: &Config, id: &ResourceId) -> String {
    format!("{}resources/{id}", config.site.base_url)
}

/// The post of `event` about `resource` for `channel`, under `key`.
fn new_post(channel: &ChannelConfig, post: &Post<'_>, key: String) -> NewPost {
    NewPost {
        idem_key: key,
        channel: channel.name.clone(),
        event: if post.test {
            "test"
        } else {
            post.event.as_str()
        },
        resource_id: (!post.test).then(|| post.resource.id.to_string()),
        title: post.resource.title.clone(),
        body: payload::body(channel.kind, post),
    }
}

/// Queues the posts of one applied ingest run (`run_id`, its `source_runs`
/// row, makes the keys unique per run); returns how many were queued.
/// Failures are logged: the run itself has succeeded.
pub async fn queue_run(
    store: &Store,
    config: &Config,
    run_id: i64,
    events: &[RunEvent],
    now: DateTime<Utc>,
) -> usize {
    if config.channels.is_empty() || events.is_empty() {
        return 0;
    }
    match run_posts(store, config, run_id, events, now).await {
        Ok(posts) => store.queue_posts(&posts, now).await.unwrap_or_else(|e| {
            warn!(error = %e, "could not queue channel posts");
            0
        }),
        Err(e) => {
            warn!(error = %e, "could not read resources for channel posts");
            0
        }
    }
}

async fn run_posts(
    store: &Store,
    config: &Config,
    run_id: i64,
    events: &[RunEvent],
    now: DateTime<Utc>,
) -> Result<Vec<NewPost>, StoreError> {
    let mut posts = Vec::new();
    for event in events {
        let Some(resource) = store.resource(&event.resource).await? else {
            continue;
        };
        let post = Post {
            event: event.event,
            resource: &resource,
            changes: &event.changes,
            at: now,
            page: page_of(config, &resource.id),
            test: false,
        };
        for channel in &config.channels {
            if channel.wants(event.event, &resource.category.slug) {
                let key = format!(
                    "{}/{}/{}/run-{run_id}",
                    channel.name,
                    event.event.as_str(),
                    resource.id
                );
                posts.push(new_post(channel, &post, key));
            }
        }
    }
    Ok(posts)
}

/// Queues an announcement of `resource` (`key`: the announcement's own key)
/// to the channels that take announcements of its category.
pub async fn queue_announcement(
    store: &Store,
    config: &Config,
    resource: &Resource,
    key: &str,
    now: DateTime<Utc>,
) -> usize {
    let post = Post {
        event: ChannelEvent::Announcement,
        resource,
        changes: &[],
        at: now,
        page: page_of(config, &resource.id),
        test: false,
    };
    let posts: Vec<NewPost> = config
        .channels
        .iter()
        .filter(|c| c.wants(ChannelEvent::Announcement, &resource.category.slug))
        .map(|c| {
            let key = format!("{}/announcement/{}/{key}", c.name, resource.id);
            new_post(c, &post, key)
        })
        .collect();
    if posts.is_empty() {
        return 0;
    }
    store.queue_posts(&posts, now).await.unwrap_or_else(|e| {
        warn!(error = %e, "could not queue channel posts of an announcement");
        0
    })
}

/// Queues a clearly marked test post of `resource` to `channel`, under a fresh key.
pub async fn queue_test(
    store: &Store,
    config: &Config,
    channel: &ChannelConfig,
    resource: &Resource,
    nonce: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let post = Post {
        event: ChannelEvent::New,
        resource,
        changes: &[],
        at: now,
        page: page_of(config, &resource.id),
        test: true,
    };
    let key = format!("{}/test/{nonce}", channel.name);
    store
        .queue_posts(&[new_post(channel, &post, key)], now)
        .await
}
