//! Data protection (UK GDPR, #18): what is held about one address
//! (`subscribers export`), erasing it from the database and the mail folder
//! (`subscribers erase`), the suppression list that keeps an erased,
//! suppressed address from being added again unseen, and retention of
//! finished outbox rows (`outbox prune`, and daily in `serve`). The SQL is
//! `store::privacy`'s; the commands are `cli::privacy`'s.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tracing::{error, info};

use crate::clock::Clock;
use crate::leadership::Leadership;
use crate::mail::token::SigningKey;
use crate::model::CategoryChoice;
use crate::store::{ErasedRows, HeldMessage, HeldSubscriber, PrunedCount, Store, StoreError};

/// Days finished outbox rows are kept unless `mail.retention_days` says otherwise.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;
/// What `mail.retention_days` may be: a day to ten years.
pub const RETENTION_DAYS: RangeInclusive<u64> = 1..=3650;
/// How often `serve`'s leader applies retention.
const RETENTION_EVERY: TimeDelta = TimeDelta::days(1);
/// How soon it tries again after failing (a locked or unreachable database).
const RETENTION_RETRY: TimeDelta = TimeDelta::minutes(1);

/// The keyed hash of an address kept on the suppression list: an HMAC with
/// the signing key (`TIDINGS_SECRET`, else the stored key), so the list
/// alone does not give the address back, nor can it be checked without the key.
pub fn address_hash(key: &SigningKey, email: &str) -> String {
    key.sign("suppression-list", &[email])
}

/// True when `email` was erased while suppressed: a sign-up or import of it
/// is refused. Needs no key while the list is empty.
pub async fn is_suppression_listed(
    store: &Store,
    key: &SigningKey,
    email: &str,
) -> Result<bool, StoreError> {
    if store.suppression_list_is_empty().await? {
        return Ok(false);
    }
    store.suppression_listed(&address_hash(key, email)).await
}

/// Everything held about one address, as `subscribers export` prints it.
#[derive(Debug, Serialize)]
pub struct PersonalData {
    /// The address asked about.
    pub email: String,
    /// The subscriber row, if there is one.
    pub subscriber: Option<SubscriberData>,
    /// Every message to the address still in the outbox, oldest first.
    pub messages: Vec<MessageData>,
    /// True when a keyed hash of the address is on the suppression list.
    pub suppression_listed: bool,
}

/// The subscriber part of an export.
#[derive(Debug, Serialize)]
pub struct SubscriberData {
    id: i64,
    status: String,
    categories: Vec<String>,
    frequency: String,
    #[serde(flatten)]
    times: serde_json::Map<String, serde_json::Value>,
    refusals: i64,
    consent: ConsentData,
}

/// How they consented.
#[derive(Debug, Serialize)]
pub struct ConsentData {
    route: Option<String>,
    confirmed_by: Option<String>,
    reason: Option<String>,
    source_optin_at: Option<String>,
    source_confirmed_at: Option<String>,
}

/// One message of an export.
#[derive(Debug, Serialize)]
pub struct MessageData {
    id: i64,
    kind: String,
    subject: String,
    status: String,
    attempts: i64,
    queued_at: String,
    sent_at: Option<String>,
    last_error: Option<String>,
}

/// Everything held about `email`.
pub async fn export(
    store: &Store,
    key: &SigningKey,
    email: &str,
) -> Result<PersonalData, StoreError> {
    let subscriber = store.held_subscriber(email).await?;
    let messages = store
        .held_messages(email, subscriber.as_ref().map(|s| s.id))
        .await?;
    Ok(PersonalData {
        email: email.to_owned(),
        subscriber: subscriber.map(subscriber_data),
        messages: messages.into_iter().map(message_data).collect(),
        suppression_listed: is_suppression_listed(store, key, email).await?,
    })
}

fn subscriber_data(s: HeldSubscriber) -> SubscriberData {
    let times = s
        .times
        .into_iter()
        .map(|(name, at)| (name.to_owned(), at.map(shown_time).into()))
        .collect();
    SubscriberData {
        id: s.id,
        status: s.status,
        categories: CategoryChoice::from_stored(&s.categories).names(),
        frequency: s.frequency,
        times,
        refusals: s.refusals,
        consent: ConsentData {
            route: s.consent_route,
            confirmed_by: s.confirm_route,
            reason: s.consent_reason,
            source_optin_at: s.source_optin_at,
            source_confirmed_at: s.source_confirmed_at,
        },
    }
}

fn message_data(m: HeldMessage) -> MessageData {
    MessageData {
        id: m.id,
        kind: m.kind,
        subject: m.subject,
        status: m.status,
        attempts: m.attempts,
        queued_at: shown_time(m.created_at),
        sent_at: m.sent_at.map(shown_time),
        last_error: m.last_error,
    }
}

/// A stored time as the JSON shapes show times (RFC 3339, whole seconds).
fn shown_time(stored: String) -> String {
    DateTime::parse_from_rfc3339(&stored)
        .map(|t| crate::views::rfc3339(t.to_utc()))
        .unwrap_or(stored)
}

/// What an erasure removed.
#[derive(Debug)]
pub struct Erasure {
    /// Rows removed from the database.
    pub rows: ErasedRows,
    /// `.eml` files (and any other files) in the mail folder naming the address.
    pub files: Vec<PathBuf>,
}

/// Removes `email` from the database (subscriber and outbox rows, keeping
/// a keyed hash when they were suppressed) and every file in `mail_dir`
/// (the file transport's folder) whose bytes name the address.
pub async fn erase(
    store: &Store,
    key: &SigningKey,
    email: &str,
    mail_dir: Option<&Path>,
    now: DateTime<Utc>,
) -> anyhow::Result<Erasure> {
    let rows = store
        .erase_person(email, &address_hash(key, email), now)
        .await?;
    let files = match mail_dir {
        Some(dir) => remove_files_naming(dir, email)?,
        None => Vec::new(),
    };
    Ok(Erasure { rows, files })
}

/// Deletes the files directly in `dir` that contain `email` (any case).
fn remove_files_naming(dir: &Path, email: &str) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context as _;
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("could not read {}", dir.display())),
    };
    let needle = email.to_ascii_lowercase();
    let mut removed = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("could not read {}", dir.display()))?
            .path();
        if !path.is_file() {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
        if contains_ignoring_case(&bytes, needle.as_bytes()) {
            std::fs::remove_file(&path)
                .with_context(|| format!("could not remove {}", path.display()))?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

fn contains_ignoring_case(haystack: &[u8], lower_needle: &[u8]) -> bool {
    !lower_needle.is_empty()
        && haystack
            .windows(lower_needle.len())
            .any(|w| w.eq_ignore_ascii_case(lower_needle))
}

/// Deletes finished outbox rows older than `retention_days` before `now`.
pub async fn prune(
    store: &Store,
    retention_days: u64,
    now: DateTime<Utc>,
) -> Result<Vec<PrunedCount>, StoreError> {
    let days = i64::try_from(retention_days).unwrap_or(i64::MAX);
    let before = now - TimeDelta::try_days(days).unwrap_or(TimeDelta::MAX);
    store.prune_outbox(before).await
}

/// `serve`'s retention: while this process holds the scheduler lease,
/// prune at start and then once a day.
pub(crate) async fn retention_loop(
    store: Store,
    clock: Arc<dyn Clock>,
    retention_days: u64,
    mut leadership: Leadership,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            held = leadership.wait() => if !held { return },
            _ = stop.changed() => return,
        }
        let next = match prune(&store, retention_days, clock.now()).await {
            Ok(counts) => {
                let rows: i64 = counts.iter().map(|c| c.count).sum();
                info!(rows, retention_days, "outbox retention applied");
                RETENTION_EVERY
            }
            Err(e) => {
                error!(error = %e, "could not apply outbox retention; will retry");
                RETENTION_RETRY
            }
        };
        tokio::select! {
            () = clock.sleep_until(clock.now() + next) => {}
            _ = stop.changed() => return,
        }
    }
}
