//! `tidings serve`: opens the store, publishes the last good feeds, starts
//! the HTTP server, runs every source once and then on its schedule (one
//! task per source, so a source never overlaps itself; only in the replica
//! holding the scheduler lease, see `leadership`), re-publishes feeds
//! whenever the store's feed version moves (here or on another replica),
//! queues digests on their schedules, delivers the outbox, and shuts down
//! gracefully on SIGINT or SIGTERM.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, watch};
use tracing::{error, info, warn};

use crate::alerts::Alerts;
use crate::announce::Announcer;
use crate::categorize::Categorizer;
use crate::channels::post::Poster;
use crate::clock::Clock;
use crate::config::{Config, Loaded, SourceConfig};
use crate::feeds::FeedCache;
use crate::leadership::Leadership;
use crate::mail::deliver::Delivery;
use crate::mail::digest::Digests;
use crate::model::Frequency;
use crate::signup::Signup;
use crate::store::Store;
use crate::web::{self, AppState};
use crate::wiring::{self, Signer};
use crate::{ingest, publish};

/// How long shutdown waits for background tasks to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How often a replica checks whether another one changed the store.
const VERSION_POLL: Duration = Duration::from_secs(5);
/// Wait before trying a digest period again after the store failed.
const DIGEST_RETRY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// Keeps the served feeds in step with the store's feed version.
struct Publisher {
    store: Store,
    config: Arc<Config>,
    cache: FeedCache,
    clock: Arc<dyn Clock>,
    published_version: Mutex<Option<i64>>,
}

impl Publisher {
    /// Re-render when the store changed since the last publish.
    async fn refresh_if_moved(&self) {
        let mut published = self.published_version.lock().await;
        let version = match self.store.feed_version().await {
            Ok(version) => version,
            Err(e) => {
                warn!(error = %e, "could not read the feed version; serving the last good feeds");
                return;
            }
        };
        if *published == Some(version) {
            return;
        }
        match publish::refresh(&self.store, &self.config, &self.cache, self.clock.now()).await {
            Ok(report) => {
                info!(
                    feed_version = version,
                    changed = report.changed.len(),
                    unchanged = report.unchanged.len(),
                    rejected = report.rejected.len(),
                    "feeds published"
                );
                *published = Some(version);
            }
            Err(e) => warn!(error = %e, "could not render feeds; serving the last good ones"),
        }
    }
}

/// Run the daemon until SIGINT or SIGTERM; `ready_file` receives the bound address.
pub async fn run(
    loaded: Loaded,
    clock: Arc<dyn Clock>,
    ready_file: Option<&std::path::Path>,
) -> Result<()> {
    info!(config = %loaded.origin, "starting");
    let listener = web::listen_for_serve(loaded.config.server.listen, ready_file)?;
    let mut config = loaded.config;
    if let Ok(bound) = listener.local_addr() {
        take_bound_port(&mut config.site.base_url, bound.port());
    }
    run_on(Arc::new(config), clock, listener, wait_for_signal()).await
}

/// A `site.base_url` on port 0 (as derived from `server.listen` on port 0)
/// names the port the system chose instead, so links in mail reach this
/// daemon. Any other base URL is left as configured.
fn take_bound_port(base_url: &mut url::Url, bound: u16) {
    if base_url.port() == Some(0) {
        // Setting a port fails only for URLs without a host, which base_url always has.
        let _ = base_url.set_port(Some(bound));
    }
}

/// Run the daemon on `listener` until `shutdown` resolves (tests pass their own).
pub async fn run_on(
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if config.site.base_url.scheme() == "http" {
        warn!(base_url = %config.site.base_url, "site.base_url is http: RFC 8058 one-click unsubscribe wants https");
    }
    let store = wiring::open_store(&config).await?;
    let publisher = Arc::new(Publisher {
        store: store.clone(),
        config: config.clone(),
        cache: FeedCache::new(),
        clock: clock.clone(),
        published_version: Mutex::new(None),
    });
    publisher.refresh_if_moved().await;
    let templates = wiring::templates(&config);
    let kit = wiring::mail_kit(&store, config.clone(), templates.clone(), Signer::Daemon).await?;
    let signing_key = kit.key.clone();
    let alerts = wiring::alerts(&store, &config, templates.clone())?;
    let mail = Mail {
        announcer: Announcer::new(kit.clone()),
        digests: Digests::new(kit.clone()),
        delivery: wiring::delivery(&store, &config, &clock, alerts.clone())?,
        alerts,
        wake: Arc::new(Notify::new()),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let (leadership, lease_task) = Leadership::start(
        store.clone(),
        clock.clone(),
        config.server.scheduler_lease,
        stop_rx.clone(),
    );
    let mut background = start_background(&publisher, &leadership, &mail, stop_rx);
    background.push(lease_task);
    let signup = Signup::new(kit);
    let state = AppState {
        signup,
        store: store.clone(),
        feeds: publisher.cache.clone(),
        templates,
        config: config.clone(),
        clock,
        signing_key,
        announcer: mail.announcer.clone(),
        wake: mail.wake.clone(),
        limits: Arc::new(web::Limits::default()),
        admin_hash: web::password_hash(&config)
            .map_err(anyhow::Error::msg)?
            .map(Arc::from),
    };
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    info!(listen = %address, base_url = %config.site.base_url, "serving");
    let served = web::serve(listener, state, shutdown).await;
    let _ = stop_tx.send(true);
    // Give the tasks a moment to finish cleanly: the lease is released, and
    // sends in flight (each bounded by mail.timeout_s) get their answer.
    let grace = SHUTDOWN_GRACE.max(config.mail.timeout + Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + grace;
    for task in background {
        let _ = tokio::time::timeout_at(deadline, task).await;
    }
    // On SQLite this folds the write-ahead log into the database file.
    store.close().await;
    info!("stopped");
    served.context("the HTTP server failed")
}

/// The digest and delivery side of the daemon.
struct Mail {
    announcer: Announcer,
    /// Alerts to the admins about failing sources, when any are configured.
    alerts: Option<Arc<Alerts>>,
    digests: Digests,
    delivery: Delivery,
    /// Nudges the delivery worker when a digest period queued something.
    wake: Arc<Notify>,
}

fn start_background(
    publisher: &Arc<Publisher>,
    leadership: &Leadership,
    mail: &Mail,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(watch_version(publisher.clone(), stop.clone()))];
    for source in &publisher.config.sources {
        let task = source_loop(
            publisher.clone(),
            source.clone(),
            (
                mail.announcer.clone(),
                mail.alerts.clone(),
                mail.wake.clone(),
            ),
            leadership.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(task));
    }
    for frequency in [Frequency::Weekly, Frequency::Daily] {
        let task = digest_loop(
            publisher.clock.clone(),
            mail.digests.clone(),
            frequency,
            mail.wake.clone(),
            leadership.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(task));
    }
    tasks.push(tokio::spawn(crate::privacy::retention_loop(
        publisher.store.clone(),
        publisher.clock.clone(),
        publisher.config.mail.retention_days,
        leadership.clone(),
        stop.clone(),
    )));
    let (store, url) = (
        publisher.store.clone(),
        publisher.config.database.url.clone(),
    );
    let (wake, listening) = (mail.wake.clone(), stop.clone());
    tasks.push(tokio::spawn(async move {
        store.listen_outbox(&url, wake, listening).await;
    }));
    if !publisher.config.channels.is_empty() {
        tasks.push(tokio::spawn(channel_loop(publisher.clone(), stop.clone())));
    }
    let delivery = mail.delivery.clone();
    let wake = mail.wake.clone();
    tasks.push(tokio::spawn(async move { delivery.run(wake, stop).await }));
    tasks
}

/// Posts queued channel posts: each `mail.poll`, or sooner when a retry is due.
async fn channel_loop(publisher: Arc<Publisher>, mut stop: watch::Receiver<bool>) {
    let poster = match Poster::new(
        publisher.store.clone(),
        &publisher.config,
        publisher.clock.clone(),
    ) {
        Ok(poster) => poster,
        Err(e) => {
            error!(error = %e, "could not start the channel poster; no channel posts will leave");
            return;
        }
    };
    let poll = publisher.config.mail.poll;
    loop {
        if let Err(e) = poster.pass().await {
            warn!(error = %e, "channel posting pass failed");
        }
        // The next due post, or a poll for posts another process queued.
        let polled = publisher.clock.now() + poll;
        let next = publisher.store.next_post_due().await.ok().flatten();
        let until = next.map_or(polled, |due| due.min(polled));
        tokio::select! {
            () = publisher.clock.sleep_until(until) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Queue `frequency`'s digests when a period is due: at start (the latest
/// missed period, once) and then at each scheduled instant, computed in local
/// time each time so clock changes never shift it. Only the replica holding
/// the scheduler lease queues; the database claim makes a period once anyway.
/// Each sleep is until an instant strictly after both now and the occurrence
/// just handled, so the loop never runs an occurrence twice nor spins.
async fn digest_loop(
    clock: Arc<dyn Clock>,
    digests: Digests,
    frequency: Frequency,
    wake: Arc<Notify>,
    mut leadership: Leadership,
    mut stop: watch::Receiver<bool>,
) {
    let mut handled = clock.now();
    loop {
        tokio::select! {
            held = leadership.wait() => if !held { return },
            _ = stop.changed() => return,
        }
        // When to look again before the next occurrence: soon after a failure
        // (the period is still owed), or once another process's claim on an
        // unfinished period runs out (it may have died).
        let retry_at = match digests
            .enqueue_schedule(frequency, clock.now(), false)
            .await
        {
            Ok(reports) => {
                if reports.iter().any(|r| r.queued > 0) {
                    wake.notify_one();
                }
                reports
                    .iter()
                    .filter_map(|r| r.held_until)
                    .max()
                    .map(|until| until.max(clock.now()) + chrono::TimeDelta::seconds(1))
            }
            Err(e) => {
                error!(schedule = frequency.as_str(), error = %e, "could not queue digests; will retry");
                Some(clock.now() + DIGEST_RETRY)
            }
        };
        let now = clock.now();
        handled = handled.max(now);
        let Some(next) = digests.schedule(frequency).next_after(handled) else {
            warn!(
                schedule = frequency.as_str(),
                "digest schedule has no next run"
            );
            return;
        };
        let until = retry_at.map_or(next, |retry| next.min(retry));
        tokio::select! {
            () = clock.sleep_until(until) => {}
            _ = stop.changed() => return,
        }
        if until == next {
            handled = next;
        }
    }
}

/// Run one source at start and then at each scheduled instant, one run at
/// a time, and only while this process holds the scheduler lease.
async fn source_loop(
    publisher: Arc<Publisher>,
    source: SourceConfig,
    (announcer, alerts, wake): (Announcer, Option<Arc<Alerts>>, Arc<Notify>),
    mut leadership: Leadership,
    mut stop: watch::Receiver<bool>,
) {
    let categorizer = Categorizer::new(publisher.config.categories.rules.clone());
    let mut handled = publisher.clock.now();
    loop {
        tokio::select! {
            held = leadership.wait() => if !held { return },
            _ = stop.changed() => return,
        }
        let ctx = ingest::Context {
            store: &publisher.store,
            categorizer: &categorizer,
            clock: &publisher.clock,
            contact: &publisher.config.site.contact,
            dry_run: false,
            announcer: Some(&announcer),
            alerts: alerts.as_deref(),
            channels: Some(&publisher.config),
        };
        let report = ingest::run_source(ctx, &source).await;
        if report.announced > 0 {
            wake.notify_one();
        }
        if report.changed_anything() {
            publisher.refresh_if_moved().await;
        }
        handled = handled.max(publisher.clock.now());
        let Some(next) = source.schedule.next_after(handled) else {
            warn!(source = %source.name, schedule = source.schedule.expr(), "schedule has no next run");
            return;
        };
        tokio::select! {
            () = publisher.clock.sleep_until(next) => {}
            _ = stop.changed() => return,
        }
        handled = next;
    }
}

/// Pick up changes made by other processes (another replica, `tidings ingest`).
async fn watch_version(publisher: Arc<Publisher>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(VERSION_POLL) => publisher.refresh_if_moved().await,
            _ = stop.changed() => return,
        }
    }
}

/// Resolve on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
    }
    info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::take_bound_port;

    #[test]
    fn a_base_url_on_port_0_takes_the_bound_port_and_any_other_is_kept() {
        let mut derived = url::Url::parse("http://127.0.0.1:0/").expect("a URL");
        take_bound_port(&mut derived, 41234);
        assert_eq!(derived.as_str(), "http://127.0.0.1:41234/");
        let mut configured = url::Url::parse("https://feeds.example.org/lib/").expect("a URL");
        take_bound_port(&mut configured, 41234);
        assert_eq!(configured.as_str(), "https://feeds.example.org/lib/");
    }
}
