//! Digests: which periods are due, and for each confirmed subscriber the new
//! and changed resources of their categories in (end of their last window,
//! the period's instant], rendered and queued in the outbox.
//!
//! Exactly once: a period is claimed under (schedule, period) before anything
//! is queued; each digest is queued under `digest/{subscriber}/{period}` in
//! the same transaction that moves the subscriber's window, and only if the
//! window is still where it was read. A fresh database records the latest
//! period as a baseline; after that, only the latest missed period is sent.

use super::kit::{ItemView, MailKit};
use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;
use tracing::{info, warn};

use super::MailError;
use super::compose::Outgoing;
use crate::config::Config;
use crate::model::{CategoryChoice, CategorySlug, ChangeKind, Frequency, Subscriber};
use crate::schedule::Schedule;
use crate::store::{NewMessage, QueuedDigest, WindowEvent};

/// Digests rendered and queued per transaction.
const BATCH: usize = 200;

/// A digest period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// `weekly`, `daily` or `now`.
    pub schedule: &'static str,
    /// The scheduled instant, or the minute of a `--now` run: part of every key.
    pub key: DateTime<Utc>,
    /// Where the windows of this period end.
    pub window_end: DateTime<Utc>,
    /// Whose period it is; `None` for `--now` (every confirmed subscriber).
    pub frequency: Option<Frequency>,
}

impl Period {
    /// A scheduled period of `frequency` at `instant`.
    pub fn scheduled(frequency: Frequency, instant: DateTime<Utc>) -> Self {
        Self {
            schedule: frequency.as_str(),
            key: instant,
            window_end: instant,
            frequency: Some(frequency),
        }
    }

    /// The `--now` period: its window ends at `now`, its key is the current minute.
    pub fn now(now: DateTime<Utc>) -> Self {
        let minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
        Self {
            schedule: "now",
            key: minute,
            window_end: now,
            frequency: None,
        }
    }

    fn label(&self) -> &'static str {
        match self.frequency {
            Some(Frequency::Weekly) => "this week",
            Some(Frequency::Daily) => "today",
            None => "since your last digest",
        }
    }
}

/// What to do about a schedule now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing: the latest period is recorded already (or there is none).
    Nothing,
    /// A fresh database: record this period as the starting point, send nothing.
    Baseline(DateTime<Utc>),
    /// Run this period: the latest one at or before now; missed earlier ones are not run.
    Run(DateTime<Utc>),
}

/// The period of `schedule` due at `now`, given the latest recorded one.
pub fn due(schedule: &Schedule, now: DateTime<Utc>, last: Option<DateTime<Utc>>) -> Due {
    let Some(latest) = schedule.latest_at_or_before(now) else {
        return Due::Nothing;
    };
    match last {
        None => Due::Baseline(latest),
        Some(last) if latest > last => Due::Run(latest),
        Some(_) => Due::Nothing,
    }
}

/// What one period did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeriodReport {
    /// `weekly`, `daily` or `now`.
    pub schedule: &'static str,
    /// The period's key.
    pub period: DateTime<Utc>,
    /// False when another process had claimed it.
    pub claimed: bool,
    /// When another process holds it unfinished: until when its claim lasts.
    pub held_until: Option<DateTime<Utc>>,
    /// Subscribers whose window it covered.
    pub subscribers: usize,
    /// Digests queued (or, in a dry run, that would be).
    pub queued: usize,
    /// Subscribers with nothing new, skipped (`digest.skip_empty`).
    pub empty: usize,
}

/// A rendered digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// text/plain part.
    pub text: String,
    /// text/html part.
    pub html: String,
    /// Resources listed (before the per-category cut).
    pub items: usize,
}

/// Decides, renders and queues digests.
#[derive(Debug, Clone)]
pub struct Digests {
    kit: MailKit,
}

impl Digests {
    /// Digests writing mail with `kit`.
    pub fn new(kit: MailKit) -> Self {
        Self { kit }
    }

    /// The schedule of `frequency`.
    pub fn schedule(&self, frequency: Frequency) -> &Schedule {
        match frequency {
            Frequency::Weekly => &self.kit.config.digest.weekly,
            Frequency::Daily => &self.kit.config.digest.daily,
        }
    }

    /// Queues the latest due period of each schedule (recording a baseline on
    /// a fresh database), after finishing any period left unfinished whose
    /// claim has run out. A dry run records and queues nothing.
    pub(crate) async fn enqueue_due(
        &self,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<PeriodReport>, MailError> {
        let mut reports = Vec::new();
        for frequency in [Frequency::Weekly, Frequency::Daily] {
            reports.extend(self.enqueue_schedule(frequency, now, dry_run).await?);
        }
        Ok(reports)
    }

    /// Finishes `frequency`'s unfinished periods (taking over those whose
    /// claim ran out: their claimer died or failed part-way), then queues the
    /// latest due period, if one is due. "Due" counts finished periods only.
    pub(crate) async fn enqueue_schedule(
        &self,
        frequency: Frequency,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<PeriodReport>, MailError> {
        let schedule = frequency.as_str();
        let mut reports = Vec::new();
        for (at, _) in self.kit.store.unfinished_digest_periods(schedule).await? {
            let period = Period::scheduled(frequency, at);
            reports.push(self.run(period, now, dry_run).await?);
        }
        let last = self.kit.store.last_digest_period(schedule).await?;
        match due(self.schedule(frequency), now, last) {
            Due::Nothing => {}
            Due::Baseline(at) => {
                if !dry_run {
                    info!(schedule, period = %at, "first digest period recorded; nothing to catch up");
                    self.kit
                        .store
                        .record_digest_baseline(schedule, at, now)
                        .await?;
                }
            }
            // Already tried above: claimed elsewhere and not yet finished.
            Due::Run(at) if reports.iter().any(|r| r.period == at) => {}
            Due::Run(at) => {
                let period = Period::scheduled(frequency, at);
                reports.push(self.run(period, now, dry_run).await?);
            }
        }
        Ok(reports)
    }

    /// How long a claim on a period lasts without progress before another
    /// process may take it over: the scheduler lease (`server.scheduler_lease_s`).
    fn claim_length(&self) -> Duration {
        Duration::from_std(self.kit.config.server.scheduler_lease).unwrap_or(Duration::seconds(30))
    }

    /// Claims `period` and queues one digest per subscriber due one. When
    /// another process holds the claim, nothing is queued and the report
    /// says until when it holds it. If queueing fails part-way, the claim is
    /// given up so that a retry, here or elsewhere, queues the rest.
    pub async fn run(
        &self,
        period: Period,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PeriodReport, MailError> {
        let mut report = PeriodReport {
            schedule: period.schedule,
            period: period.key,
            claimed: false,
            held_until: None,
            subscribers: 0,
            queued: 0,
            empty: 0,
        };
        if !dry_run {
            let lease = now + self.claim_length();
            let claim = self
                .kit
                .store
                .claim_digest_run(period.schedule, period.key, now, lease);
            if claim.await? != crate::store::RunClaim::Claimed {
                report.held_until = self.held_until(&period).await?;
                return Ok(report);
            }
        }
        report.claimed = true;
        match self.queue(period, &mut report, now, dry_run).await {
            Ok(()) => self.finish(period, report, now, dry_run).await,
            Err(e) => {
                if !dry_run {
                    let released =
                        self.kit
                            .store
                            .release_digest_claim(period.schedule, period.key, now);
                    if let Err(release) = released.await {
                        warn!(schedule = period.schedule, period = %period.key, error = %release,
                              "could not give up the claim on a failed period; it lapses on its own");
                    }
                }
                Err(e)
            }
        }
    }

    /// Until when another process holds unfinished `period`, or `None` if it is finished.
    async fn held_until(&self, period: &Period) -> Result<Option<DateTime<Utc>>, MailError> {
        let unfinished = self
            .kit
            .store
            .unfinished_digest_periods(period.schedule)
            .await?;
        Ok(unfinished
            .into_iter()
            .find(|(at, _)| *at == period.key)
            .map(|(_, until)| until))
    }

    /// Renders and queues the digests of a claimed period, renewing the
    /// claim after each batch.
    async fn queue(
        &self,
        period: Period,
        report: &mut PeriodReport,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<(), MailError> {
        let subscribers = self
            .kit
            .store
            .subscribers_due(period.frequency, period.window_end)
            .await?;
        report.subscribers = subscribers.len();
        let Some(earliest) = subscribers
            .iter()
            .filter_map(Subscriber::window_start)
            .min()
        else {
            return Ok(());
        };
        // An ingest stamped before the period's instant may still be
        // committing: wait for it, or its events would fall between windows.
        self.kit.store.wait_for_ingests().await?;
        let events = self
            .kit
            .store
            .window_events(earliest, period.window_end)
            .await?;
        let started = std::time::Instant::now();
        for chunk in subscribers.chunks(BATCH) {
            let mut batch = Vec::with_capacity(chunk.len());
            for subscriber in chunk {
                match self.digest_for(subscriber, &events, &period, now)? {
                    Some(digest) => batch.push(digest),
                    None => report.empty += 1,
                }
            }
            if dry_run {
                report.queued += batch.len();
                continue;
            }
            report.queued += self
                .kit
                .store
                .queue_digests(&batch, period.window_end, now)
                .await?;
            // The process's clock has not moved (`now` is the run's instant):
            // the claim runs from now plus the time spent so far.
            let spent = Duration::from_std(started.elapsed()).unwrap_or_default();
            let renew = self.kit.store.renew_digest_claim(
                period.schedule,
                period.key,
                now + spent + self.claim_length(),
            );
            renew.await?;
        }
        Ok(())
    }

    async fn finish(
        &self,
        period: Period,
        report: PeriodReport,
        now: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<PeriodReport, MailError> {
        if !dry_run {
            let finish =
                self.kit
                    .store
                    .finish_digest_run(period.schedule, period.key, report.queued, now);
            finish.await?;
        }
        info!(schedule = period.schedule, period = %period.key, subscribers = report.subscribers,
              queued = report.queued, empty = report.empty, dry_run, "digest period done");
        Ok(report)
    }

    /// The queued form of `subscriber`'s digest, or `None` when it would be empty and skipped.
    fn digest_for(
        &self,
        subscriber: &Subscriber,
        events: &[WindowEvent],
        period: &Period,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuedDigest>, MailError> {
        let start = subscriber.window_start().unwrap_or(subscriber.created_at);
        let token = self.kit.key.token(subscriber.id, &subscriber.token_nonce);
        let Some(rendered) = self.render(&subscriber.categories, events, start, period, &token)?
        else {
            return Ok(None);
        };
        let idem_key = format!(
            "digest/{}/{}",
            subscriber.id,
            period.key.format("%Y-%m-%dT%H:%M:%SZ")
        );
        let message = self.kit.sender.compose(&Outgoing {
            kind: "digest",
            to: &subscriber.email,
            subject: &rendered.subject,
            idem_key: &idem_key,
            token: Some(&token),
            date: now,
            text: rendered.text,
            html: rendered.html,
        })?;
        Ok(Some(QueuedDigest {
            message: NewMessage {
                idem_key,
                kind: "digest",
                recipient: subscriber.email.clone(),
                subscriber_id: Some(subscriber.id),
                subject: rendered.subject,
                message,
            },
            subscriber_id: subscriber.id,
            old_window_end: subscriber.window_end,
        }))
    }

    /// Renders the digest of `choice` for events after `start`; `None` when
    /// empty and `digest.skip_empty` is on.
    pub fn render(
        &self,
        choice: &CategoryChoice,
        events: &[WindowEvent],
        start: DateTime<Utc>,
        period: &Period,
        token: &str,
    ) -> Result<Option<Rendered>, MailError> {
        let content = Content::build(
            choice,
            events,
            start,
            &self.kit.config,
            self.kit.config.digest.max_items,
        );
        if content.total == 0 && self.kit.config.digest.skip_empty {
            return Ok(None);
        }
        let subject = subject(&self.kit.config.site.title, &content, period.label());
        let view = DigestView {
            site_title: &self.kit.config.site.title,
            base_url: self.kit.config.site.base_url.as_str(),
            subject: &subject,
            period_label: period.label(),
            unsubscribe_url: self.kit.sender.unsubscribe_url(token),
            new: content.new,
            changed: content.changed,
            total: content.total,
            groups: &content.groups,
        };
        let (text, html) = self.kit.render_pair("digest", &view)?;
        Ok(Some(Rendered {
            text,
            html,
            subject,
            items: content.total,
        }))
    }

    /// The next digest of subscriber `email` (or of every category), as it
    /// stands now, optionally only `category`. `None`: nothing new.
    pub async fn preview(
        &self,
        email: Option<&str>,
        category: Option<CategorySlug>,
        now: DateTime<Utc>,
    ) -> Result<Option<Rendered>, MailError> {
        let (mut choice, start, token, frequency) = match email {
            Some(email) => {
                let subscribers = self.kit.store.list_subscribers().await?;
                let Some(s) = subscribers.into_iter().find(|s| s.email == email) else {
                    return Err(MailError::Compose(format!(
                        "no subscriber {}",
                        super::address::mask(email)
                    )));
                };
                let start = s.window_start().unwrap_or(s.created_at);
                let token = self.kit.key.token(s.id, &s.token_nonce);
                (s.categories, start, token, s.frequency)
            }
            None => {
                let start = self
                    .kit
                    .config
                    .digest
                    .weekly
                    .latest_at_or_before(now)
                    .unwrap_or(now - Duration::days(7));
                (
                    CategoryChoice::All,
                    start,
                    "preview".to_owned(),
                    Frequency::Weekly,
                )
            }
        };
        if let Some(slug) = category {
            choice = CategoryChoice::Only(vec![slug]);
        }
        let events = self.kit.store.window_events(start, now).await?;
        let mut period = Period::scheduled(frequency, now);
        period.window_end = now;
        self.render(&choice, &events, start, &period, &token)
    }
}

/// `{site}: 3 new resources this week`, `…: 2 new and 1 changed resources today`.
fn subject(site: &str, content: &Content, label: &str) -> String {
    let noun = if content.total == 1 {
        "resource"
    } else {
        "resources"
    };
    let what = match (content.new, content.changed) {
        (0, 0) => "no new resources".to_owned(),
        (n, 0) => format!("{n} new {noun}"),
        (0, c) => format!("{c} changed {noun}"),
        (n, c) => format!("{n} new and {c} changed {noun}"),
    };
    format!("{site}: {what} {label}")
}

/// What a digest lists, grouped by category.
struct Content {
    groups: Vec<GroupView>,
    new: usize,
    changed: usize,
    total: usize,
}

impl Content {
    fn build(
        choice: &CategoryChoice,
        events: &[WindowEvent],
        start: DateTime<Utc>,
        config: &Config,
        max_items: u32,
    ) -> Self {
        let mut groups: BTreeMap<String, Vec<(&WindowEvent, ChangeKind)>> = BTreeMap::new();
        let (mut new, mut changed) = (0, 0);
        for event in events
            .iter()
            .filter(|e| choice.includes(&e.resource.category.slug))
        {
            let Some(kind) = event.kind_after(start) else {
                continue;
            };
            if kind == ChangeKind::New {
                new += 1
            } else {
                changed += 1
            }
            groups
                .entry(event.resource.category.name.clone())
                .or_default()
                .push((event, kind));
        }
        let groups = groups
            .into_iter()
            .map(|(name, mut items)| {
                items.sort_by_key(|item| std::cmp::Reverse(item.0.latest_at));
                GroupView::new(name, &items, config, max_items as usize)
            })
            .collect();
        Self {
            groups,
            new,
            changed,
            total: new + changed,
        }
    }
}

/// What `digest.txt` and `digest.html` see.
#[derive(Serialize)]
struct DigestView<'a> {
    site_title: &'a str,
    base_url: &'a str,
    subject: &'a str,
    period_label: &'a str,
    unsubscribe_url: String,
    new: usize,
    changed: usize,
    total: usize,
    groups: &'a [GroupView],
}

#[derive(Serialize)]
struct GroupView {
    name: String,
    slug: String,
    items: Vec<ItemView>,
    /// Items left out by `digest.max_items`.
    more: usize,
    more_url: String,
}

impl GroupView {
    fn new(
        name: String,
        items: &[(&WindowEvent, ChangeKind)],
        config: &Config,
        max: usize,
    ) -> Self {
        let slug = CategorySlug::from_name(&name).to_string();
        Self {
            more: items.len().saturating_sub(max),
            more_url: format!("{}?category={slug}", config.site.base_url),
            items: items
                .iter()
                .take(max)
                .map(|(e, k)| ItemView::new(&e.resource, Some(*k), &config.site.base_url))
                .collect(),
            name,
            slug,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn monday_eight() -> Schedule {
        Schedule::parse("0 0 8 * * Mon", chrono_tz::Europe::London).unwrap()
    }

    #[test]
    fn a_fresh_database_records_a_baseline_and_catches_nothing_up() {
        let now = utc(2025, 3, 26, 12, 0);
        assert_eq!(
            due(&monday_eight(), now, None),
            Due::Baseline(utc(2025, 3, 24, 8, 0))
        );
    }

    #[test]
    fn weekly_periods_stay_at_eight_local_across_both_2025_clock_changes() {
        let s = monday_eight();
        // Walk a clock through March and October 2025 an hour at a time; every
        // period that becomes due is 08:00 London time, GMT or BST.
        let mut last = Some(utc(2025, 3, 17, 8, 0));
        let mut runs = Vec::new();
        let mut clock = utc(2025, 3, 17, 9, 0);
        while clock < utc(2025, 11, 4, 0, 0) {
            if let Due::Run(at) = due(&s, clock, last) {
                runs.push(at);
                last = Some(at);
            }
            clock += Duration::minutes(30);
        }
        let local: Vec<String> = runs
            .iter()
            .map(|r| {
                r.with_timezone(&chrono_tz::Europe::London)
                    .format("%a %H:%M")
                    .to_string()
            })
            .collect();
        assert!(local.iter().all(|l| l == "Mon 08:00"), "{local:?}");
        // Before and after the spring change (30 March): 08:00 GMT, then 07:00 UTC.
        assert!(runs.contains(&utc(2025, 3, 24, 8, 0)));
        assert!(runs.contains(&utc(2025, 3, 31, 7, 0)));
        // Before and after the autumn change (26 October): 07:00 UTC, then 08:00 GMT.
        assert!(runs.contains(&utc(2025, 10, 20, 7, 0)));
        assert!(runs.contains(&utc(2025, 10, 27, 8, 0)));
        assert_eq!(
            runs.len(),
            33,
            "one run per Monday from 24 March to 3 November"
        );
    }

    #[test]
    fn daily_periods_across_the_changes_are_one_per_day_at_eight_local() {
        let s = Schedule::parse("0 0 8 * * *", chrono_tz::Europe::London).unwrap();
        assert_eq!(
            due(&s, utc(2025, 3, 30, 7, 30), Some(utc(2025, 3, 29, 8, 0))),
            Due::Run(utc(2025, 3, 30, 7, 0))
        );
        assert_eq!(
            due(&s, utc(2025, 3, 30, 6, 59), Some(utc(2025, 3, 29, 8, 0))),
            Due::Nothing
        );
        assert_eq!(
            due(&s, utc(2025, 10, 26, 8, 0), Some(utc(2025, 10, 25, 7, 0))),
            Due::Run(utc(2025, 10, 26, 8, 0))
        );
        assert_eq!(
            due(&s, utc(2025, 10, 26, 7, 30), Some(utc(2025, 10, 25, 7, 0))),
            Due::Nothing
        );
    }

    #[test]
    fn after_downtime_only_the_latest_missed_period_is_due() {
        let last = Some(utc(2025, 3, 3, 8, 0));
        // Down for three weeks: one run, for the latest Monday.
        assert_eq!(
            due(&monday_eight(), utc(2025, 3, 26, 12, 0), last),
            Due::Run(utc(2025, 3, 24, 8, 0))
        );
        assert_eq!(
            due(
                &monday_eight(),
                utc(2025, 3, 26, 12, 0),
                Some(utc(2025, 3, 24, 8, 0))
            ),
            Due::Nothing
        );
    }

    #[test]
    fn a_now_period_is_keyed_by_its_minute_and_ends_at_the_moment() {
        let at = utc(2025, 5, 1, 10, 7) + Duration::seconds(42);
        let p = Period::now(at);
        assert_eq!(p.key, utc(2025, 5, 1, 10, 7));
        assert_eq!(p.window_end, at);
    }

    #[test]
    fn subjects_say_what_is_inside() {
        let c = |new, changed| Content {
            groups: Vec::new(),
            new,
            changed,
            total: new + changed,
        };
        assert_eq!(
            subject("THT", &c(3, 0), "this week"),
            "THT: 3 new resources this week"
        );
        assert_eq!(
            subject("THT", &c(1, 0), "today"),
            "THT: 1 new resource today"
        );
        assert_eq!(
            subject("THT", &c(2, 1), "this week"),
            "THT: 2 new and 1 changed resources this week"
        );
        assert_eq!(
            subject("THT", &c(0, 1), "this week"),
            "THT: 1 changed resource this week"
        );
    }
}
