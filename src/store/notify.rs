//! Waking the replicas' outbox workers: on PostgreSQL, queuing mail sends a
//! `NOTIFY` on `tidings_outbox`, and every `serve` process `LISTEN`s on a
//! connection of its own, so every replica starts delivering a batch as soon
//! as any process queues it instead of at its next poll (`mail.poll_s`).
//! SQLite has one process: nothing to do there.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};
use tracing::{debug, warn};

use super::{Backend, Store};

/// The channel queued mail is announced on.
const CHANNEL: &str = "tidings_outbox";
/// Wait before listening again after the connection failed.
const RECONNECT: Duration = Duration::from_secs(5);

impl Store {
    /// Tells every listening process that mail was queued. Best effort: a
    /// replica that misses it finds the mail at its next poll.
    pub(super) async fn notify_outbox(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let sent = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            debug!(error = %e, "could not tell other processes that mail was queued");
        }
    }

    /// Until `stop`, nudges `wake` whenever any process queues mail in the
    /// PostgreSQL database at `url`, listening again after a lost connection.
    /// Returns at once on SQLite.
    pub(crate) async fn listen_outbox(
        &self,
        url: &str,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) {
        if self.backend != Backend::Postgres {
            return;
        }
        loop {
            match listen(url, &wake, &mut stop).await {
                Ok(()) => return,
                Err(e) => warn!(error = %e, "not listening for queued mail; polling meanwhile"),
            }
            tokio::select! {
                () = tokio::time::sleep(RECONNECT) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Listens until `stop` (`Ok`) or until the connection fails.
async fn listen(
    url: &str,
    wake: &Notify,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    // Mail queued while nobody listened (at start, or while the database was
    // unreachable) was announced to no one: look for it now.
    wake.notify_one();
    loop {
        tokio::select! {
            // `None` means the connection was lost (it is re-established on
            // the next call) and mail queued meanwhile went unannounced: wake
            // the worker either way.
            received = listener.try_recv() => {
                received?;
                wake.notify_one();
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}
