//! The outbox worker: claim due rows, send each (at most `mail.concurrency`
//! at once, at most `mail.rate_per_s` a second), record the hand-over just
//! before each message's final dot, and record the outcome the moment the
//! server answers. 4xx, and timeouts and dropped connections before the dot,
//! go back in the queue with `backoff` (with jitter; a 4xx retried so does not
//! count toward the mail alert: the server is working); 5xx marks the row failed
//! with the server's reply, and a refusal of the recipient or the message
//! counts toward suppressing the subscriber; no answer after the dot leaves
//! the row `unconfirmed`, never sent again on its own (at most once). A row
//! claimed by a process that died stays `sending` until its lease
//! (`claimed_until`) runs out, and is then claimed again — or, if it was
//! handed over, becomes `unconfirmed`. Failed sends in a row raise the mail
//! alert (see `alerts`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::address::mask;
use super::handover::{HandOver, HandOverState};
use super::{MailError, Mailer, SendError};
use crate::alerts::Alerts;
use crate::backoff::Backoff;
use crate::clock::SharedClock;
use crate::config::MailConfig;
use crate::store::{Claimed, Store};

/// Rows claimed per round trip, per unit of concurrency.
const BATCH_PER_SLOT: usize = 4;
/// Longest backoff between two attempts.
const MAX_BACKOFF: StdDuration = StdDuration::from_secs(6 * 3600);

/// What a delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Accepted by the server.
    pub sent: usize,
    /// Back in the queue for a later attempt.
    pub retrying: usize,
    /// Given up (5xx, or too many attempts).
    pub failed: usize,
    /// Handed over with no answer: maybe delivered, not sent again.
    pub unconfirmed: usize,
}

impl DeliveryReport {
    fn add(&mut self, outcome: Outcome) {
        let name = match outcome {
            Outcome::Sent => {
                self.sent += 1;
                "sent"
            }
            Outcome::Retrying => {
                self.retrying += 1;
                "retried"
            }
            Outcome::Failed => {
                self.failed += 1;
                "failed"
            }
            Outcome::Unconfirmed => {
                self.unconfirmed += 1;
                "unconfirmed"
            }
            Outcome::Released => return,
        };
        crate::metrics::record_email(name);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Retrying,
    Failed,
    Unconfirmed,
    /// Handed back unsent, or found to be another sender's: not counted.
    Released,
}

/// Spaces sends `interval` apart (the `mail.rate_per_s` limit).
#[derive(Debug)]
struct Pace {
    interval: StdDuration,
    next: tokio::sync::Mutex<Instant>,
}

impl Pace {
    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Sends what the outbox holds.
#[derive(Debug, Clone)]
pub struct Delivery {
    store: Store,
    mailer: Arc<Mailer>,
    clock: SharedClock,
    concurrency: usize,
    timeout: StdDuration,
    retry_base: StdDuration,
    max_attempts: u32,
    suppress_after: u32,
    /// How often the daemon's worker looks for due rows when nobody nudges it.
    poll: StdDuration,
    pace: Option<Arc<Pace>>,
    alerts: Option<Arc<Alerts>>,
    streak: Arc<Streak>,
    /// Set when the daemon shuts down: claim nothing more, hand back what
    /// was claimed but not started, finish the sends in flight.
    stopping: Arc<AtomicBool>,
}

/// Sends that failed in a row, across this worker's tasks, for the mail alert.
#[derive(Debug, Default)]
struct Streak {
    failures: AtomicU64,
    /// A send went through since the last pass looked.
    sent: AtomicBool,
}

impl Delivery {
    /// A worker for `config`'s transport and limits.
    pub fn new(store: Store, config: &MailConfig, clock: SharedClock) -> Result<Self, MailError> {
        let pace = config.rate_per_s.map(|rate| {
            Arc::new(Pace {
                interval: StdDuration::from_secs_f64(1.0 / rate),
                next: tokio::sync::Mutex::new(Instant::now()),
            })
        });
        Ok(Self {
            store,
            mailer: Arc::new(Mailer::new(config)?),
            clock,
            concurrency: config.concurrency as usize,
            timeout: config.timeout,
            retry_base: config.retry_base,
            max_attempts: config.max_attempts,
            suppress_after: config.suppress_after,
            poll: config.poll,
            pace,
            alerts: None,
            streak: Arc::default(),
            stopping: Arc::default(),
        })
    }

    /// Alert the admins when sends keep failing, and when they work again.
    pub(crate) fn with_alerts(mut self, alerts: Option<Arc<Alerts>>) -> Self {
        self.alerts = alerts;
        self
    }

    /// Sends every due row until none is left, also waiting out rows another
    /// (perhaps dead) process holds, so a rerun after a crash finishes the job.
    /// `progress` is told how many rows were handled so far.
    pub async fn drain(
        &self,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<DeliveryReport, MailError> {
        let mut report = DeliveryReport::default();
        loop {
            self.pass(&mut report, progress).await?;
            let backlog = self.store.outbox_backlog().await?;
            let Some(until) = backlog.sending_until.filter(|_| backlog.sending > 0) else {
                self.mailer.close().await;
                return Ok(report);
            };
            // Someone holds rows: wait until their lease runs out (they may be
            // dead), bounded by the longest lease this process would take.
            let wait = (until - self.clock.now()).to_std().unwrap_or_default();
            let wait = wait.min(self.lease_length().to_std().unwrap_or_default());
            debug!(
                rows = backlog.sending,
                wait_ms = wait.as_millis() as u64,
                "waiting for rows claimed elsewhere"
            );
            tokio::time::sleep(wait + StdDuration::from_millis(200)).await;
        }
    }

    /// The daemon's loop: deliver whenever nudged through `wake` (this process
    /// queued mail, or on PostgreSQL any process did), or every `mail.poll_s`
    /// for retries coming due.
    pub async fn run(&self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let (stopping, mut stopped) = (Arc::clone(&self.stopping), stop.clone());
        tokio::spawn(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
            stopping.store(true, Ordering::Release);
        });
        loop {
            let mut report = DeliveryReport::default();
            if let Err(e) = self.pass(&mut report, &|_| {}).await {
                error!(error = %e, "outbox delivery failed; will try again");
            } else if report != DeliveryReport::default() {
                info!(
                    sent = report.sent,
                    retrying = report.retrying,
                    failed = report.failed,
                    unconfirmed = report.unconfirmed,
                    "outbox delivered"
                );
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll) => {}
                () = wake.notified() => {}
                _ = stop.changed() => {
                    self.mailer.close().await;
                    return;
                }
            }
        }
    }

    /// Claims and sends batches until no row is due, going round again while
    /// a round's sends queued more (an alert raised or cleared on the way).
    async fn pass(
        &self,
        report: &mut DeliveryReport,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<(), MailError> {
        self.settle_orphans(report).await?;
        let mut handled = 0;
        loop {
            let before = handled;
            self.send_due(report, progress, &mut handled).await?;
            if self.streak.sent.swap(false, Ordering::AcqRel)
                && let Some(alerts) = &self.alerts
            {
                alerts.after_sent(self.clock.now()).await;
            }
            if handled == before || self.stopping() {
                return Ok(());
            }
        }
    }

    /// Rows whose sender died after handing them over become unconfirmed.
    async fn settle_orphans(&self, report: &mut DeliveryReport) -> Result<(), MailError> {
        let orphaned = self.store.orphaned_to_unconfirmed(self.clock.now()).await?;
        if orphaned > 0 {
            warn!(
                rows = orphaned,
                "messages whose sender stopped after handing them over are unconfirmed, not sent again"
            );
            for _ in 0..orphaned {
                report.add(Outcome::Unconfirmed);
            }
        }
        Ok(())
    }

    /// One round: claim and send due rows until a claim comes back empty,
    /// then wait for the sends in flight.
    async fn send_due(
        &self,
        report: &mut DeliveryReport,
        progress: &(dyn Fn(usize) + Sync),
        handled: &mut usize,
    ) -> Result<(), MailError> {
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        let mut finished = |done: Result<Outcome, _>, report: &mut DeliveryReport| {
            *handled += 1;
            report.add(done.unwrap_or(Outcome::Retrying));
            progress(*handled);
        };
        while !self.stopping() {
            let now = self.clock.now();
            let batch = self.concurrency * BATCH_PER_SLOT;
            let claimed = self
                .store
                .claim_outbox(now, now + self.lease_length(), batch)
                .await?;
            if claimed.is_empty() {
                break;
            }
            for row in claimed {
                let permit = Arc::clone(&slots)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                if self.stopping() {
                    // Nothing of it was sent: another replica may take it at once.
                    let released = self.store.release(row.id).await;
                    self.record(row.id, released, Outcome::Released);
                    continue;
                }
                if let Some(pace) = &self.pace {
                    pace.wait().await;
                }
                if row.kind == "alert" {
                    // Alerts go one at a time, in the order they were due, so
                    // the admins read an alert's changes in order.
                    let outcome = self.deliver(row).await;
                    drop(permit);
                    finished(Ok(outcome), report);
                    continue;
                }
                let this = self.clone();
                tasks.spawn(async move {
                    let outcome = this.deliver(row).await;
                    drop(permit);
                    outcome
                });
                while let Some(done) = tasks.try_join_next() {
                    finished(done, report);
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            finished(done, report);
        }
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// A claim covers two send timeouts plus the time a batch waits for its
    /// rate-limited turn, and a margin; `deliver` refuses to start a send
    /// that could outlive it.
    fn lease_length(&self) -> Duration {
        let batch = (self.concurrency * BATCH_PER_SLOT) as f64;
        let paced = self
            .pace
            .as_ref()
            .map_or(0.0, |p| p.interval.as_secs_f64() * batch);
        let seconds = 2.0 * self.timeout.as_secs_f64() + paced + 2.0;
        Duration::milliseconds((seconds * 1000.0) as i64)
    }

    /// Sends one claimed row and records what happened.
    async fn deliver(&self, row: Claimed) -> Outcome {
        let lease_left = row.claimed_until - self.clock.now();
        let needed = Duration::from_std(self.timeout).unwrap_or_default() + Duration::seconds(1);
        if lease_left < needed {
            // Its lease may run out mid-send and another worker claim it: hand it back.
            return self.record(row.id, self.store.release(row.id).await, Outcome::Released);
        }
        let hand_over = self.hand_over(row.id);
        let result = self
            .mailer
            .send(&row.recipient, &row.idem_key, &row.message, &hand_over)
            .await;
        if hand_over.state() == HandOverState::NotOurs {
            // Another worker claimed it after our lease ran out and handed it over first.
            warn!(
                outbox_id = row.id,
                "message taken over by another sender; left to it"
            );
            return Outcome::Released;
        }
        let reason = result.as_ref().err().map(ToString::to_string);
        let deferred = matches!(result, Err(SendError::Deferred(_)));
        let outcome = self.settle(&row, result).await;
        // An alert's own fate says nothing new: counting its success would
        // clear the alert it carries while subscribers' mail still fails.
        // A 4xx that will be retried (greylisting) is the server working as
        // meant, not a failure: it neither counts nor breaks the streak.
        let retried_as_asked = deferred && outcome == Outcome::Retrying;
        if row.kind != "alert" && !retried_as_asked {
            self.count(outcome, reason.as_deref()).await;
        }
        outcome
    }

    /// The record written just before the message's final dot.
    fn hand_over(&self, id: i64) -> Arc<HandOver> {
        let (store, clock) = (self.store.clone(), self.clock.clone());
        HandOver::new(async move {
            store
                .mark_handed_over(id, clock.now())
                .await
                .map_err(|e| e.to_string())
        })
    }

    /// Records what the server's answer (or its absence) means for the row.
    async fn settle(&self, row: &Claimed, result: Result<(), SendError>) -> Outcome {
        let now = self.clock.now();
        let (id, to) = (row.id, mask(&row.recipient));
        let error = match result {
            Ok(()) => {
                debug!(outbox_id = id, recipient = %to, "sent");
                return self.record(id, self.store.mark_sent(id, now).await, Outcome::Sent);
            }
            Err(error) => error,
        };
        match error {
            SendError::Transient(reason) | SendError::Deferred(reason)
                if (row.attempts as u64) < u64::from(self.max_attempts) =>
            {
                let next = self.next_attempt(now, row.attempts);
                warn!(outbox_id = id, recipient = %to, attempts = row.attempts, error = %reason, retry_at = %next, "send failed; will retry");
                let written = self.store.mark_retry(id, next, &reason).await;
                self.record(id, written, Outcome::Retrying)
            }
            SendError::Transient(reason) | SendError::Deferred(reason) => {
                let reason = format!("gave up after {} attempts: {reason}", row.attempts);
                warn!(outbox_id = id, recipient = %to, error = %reason, "send failed for good");
                self.record(
                    id,
                    self.store.mark_failed(id, &reason).await,
                    Outcome::Failed,
                )
            }
            SendError::Permanent(reason) => {
                warn!(outbox_id = id, recipient = %to, error = %reason, "send failed for good");
                self.record(
                    id,
                    self.store.mark_failed(id, &reason).await,
                    Outcome::Failed,
                )
            }
            SendError::Refused(reason) => {
                warn!(outbox_id = id, recipient = %to, error = %reason, "the server refused the recipient or the message");
                let written = self
                    .store
                    .mark_refused(id, &reason, self.suppress_after, now)
                    .await;
                if let Ok(Some(address)) = &written {
                    warn!(recipient = %mask(address), refusals = self.suppress_after, "address suppressed: it gets no more digests or announcements until it confirms again");
                }
                self.record(id, written.map(drop), Outcome::Failed)
            }
            SendError::Unconfirmed(reason) => {
                warn!(outbox_id = id, recipient = %to, error = %reason, "handed over without an answer; not sent again");
                let written = self.store.mark_unconfirmed(id, &reason).await;
                self.record(id, written, Outcome::Unconfirmed)
            }
        }
    }

    /// Keeps the streak of failed sends; the alert is raised as it reaches the threshold.
    async fn count(&self, outcome: Outcome, reason: Option<&str>) {
        match outcome {
            Outcome::Sent => {
                self.streak.failures.store(0, Ordering::Release);
                self.streak.sent.store(true, Ordering::Release);
            }
            Outcome::Retrying | Outcome::Failed | Outcome::Unconfirmed => {
                let failures = self.streak.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if let Some(alerts) = &self.alerts
                    && failures == alerts.failed_sends_threshold()
                {
                    let reason = reason.unwrap_or("unknown");
                    alerts
                        .after_failed_sends(failures, reason, self.clock.now())
                        .await;
                }
            }
            Outcome::Released => {}
        }
    }

    fn record(
        &self,
        id: i64,
        written: Result<(), crate::store::StoreError>,
        outcome: Outcome,
    ) -> Outcome {
        if let Err(e) = written {
            // The row stays `sending` until its lease runs out, then is tried again.
            error!(outbox_id = id, error = %e, "could not record a delivery outcome");
        }
        outcome
    }

    /// When a row that failed its `attempts`-th send is tried again (see `retry_at`).
    fn next_attempt(&self, now: DateTime<Utc>, attempts: i64) -> DateTime<Utc> {
        retry_at(self.retry_base, now, attempts)
    }
}

/// When a row that failed its `attempts`-th send at `now` is tried again:
/// `retry_base` × 2^(attempts − 1), at most six hours, spread over the upper
/// half of that by jitter, so rows (and replicas) that failed together do
/// not all come back at the same instant.
fn retry_at(retry_base: StdDuration, now: DateTime<Utc>, attempts: i64) -> DateTime<Utc> {
    let backoff = Backoff {
        base: retry_base,
        cap: MAX_BACKOFF,
    };
    let retry = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0);
    let wait = Duration::from_std(backoff.wait(retry)).unwrap_or(Duration::MAX);
    now.checked_add_signed(wait)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_failing_at_the_same_instant_come_back_at_different_times() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .to_utc();
        let base = StdDuration::from_secs(60);
        for attempts in 1..=4 {
            let full = Duration::from_std(base * 2u32.pow(attempts - 1)).unwrap();
            let rows: Vec<DateTime<Utc>> = (0..20)
                .map(|_| retry_at(base, now, i64::from(attempts)))
                .collect();
            for at in &rows {
                assert!(
                    *at >= now + full / 2 && *at <= now + full,
                    "attempt {attempts}: {at} outside [{}, {}]",
                    now + full / 2,
                    now + full
                );
            }
            let distinct: std::collections::HashSet<_> = rows.iter().collect();
            assert!(distinct.len() > 15, "attempt {attempts}: {rows:?}");
        }
    }

    #[test]
    fn the_wait_is_capped_at_six_hours() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let at = retry_at(StdDuration::from_secs(86_400), now, 40);
        assert!(at <= now + Duration::hours(6), "{at}");
        assert!(at >= now + Duration::hours(3), "{at}");
    }
}
