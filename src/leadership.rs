//! Which replica runs scheduled work. Every `serve` process tries to hold the
//! `scheduler` lease in the store and renews it at a third of its lifetime;
//! the holder runs scheduled jobs, the others only serve. When the holder
//! dies, its lease expires and another process takes over within one lease
//! period; a clean shutdown releases it at once.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::clock::SharedClock;
use crate::store::Store;

/// The lease's name in the store.
const LEASE: &str = "scheduler";

/// A view of whether this process holds the scheduler lease.
#[derive(Debug, Clone)]
pub struct Leadership {
    held: watch::Receiver<bool>,
}

impl Leadership {
    /// Start holding (or waiting for) the lease until `stop` fires.
    pub fn start(
        store: Store,
        clock: SharedClock,
        ttl: Duration,
        stop: watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(hold(store, clock, ttl, tx, stop));
        (Self { held: rx }, task)
    }

    /// Wait until this process holds the lease; false if it stops first.
    pub async fn wait(&mut self) -> bool {
        self.held.wait_for(|held| *held).await.is_ok()
    }
}

/// A name for this process that no other replica shares.
fn holder_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        hasher.finish() as u32
    )
}

async fn hold(
    store: Store,
    clock: SharedClock,
    ttl: Duration,
    held: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let holder = holder_id();
    let chrono_ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30));
    loop {
        let now_held = match store
            .try_lease(LEASE, &holder, chrono_ttl, clock.now())
            .await
        {
            Ok(taken) => taken,
            Err(e) => {
                // Unable to renew: assume another replica will take over.
                warn!(error = %e, "could not renew the scheduler lease");
                false
            }
        };
        if held.send_replace(now_held) != now_held {
            info!(holder = %holder, leader = now_held, "scheduler lease changed hands");
        }
        tokio::select! {
            () = tokio::time::sleep(ttl / 3) => {}
            _ = stop.changed() => break,
        }
    }
    if *held.borrow() {
        held.send_replace(false);
        if let Err(e) = store.release_lease(LEASE, &holder).await {
            warn!(error = %e, "could not release the scheduler lease");
        }
    }
}
