//! Process-wide metrics in the Prometheus text exposition format, served at
//! `/metrics`: ingest runs by source and outcome, entries seen, change events
//! by kind, the last successful run per source, feed requests and `304`s,
//! emails by outcome, HTTP connections open, shed and refused; and, read
//! from the store at each scrape, the outbox depth, raised alerts and
//! suppressed subscribers.
//! One registry per process, like the Prometheus client libraries' default.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex, MutexGuard};

use chrono::{DateTime, Utc};

/// Whether a series only grows or is set to a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// A metric family's description.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

const INGEST_RUNS: Family = Family {
    name: "tidings_ingest_runs_total",
    help: "Ingest runs by source and outcome (ok, partial, failed, held).",
    kind: Kind::Counter,
};
const ENTRIES_SEEN: Family = Family {
    name: "tidings_ingest_entries_seen",
    help: "Entries the last successful run of a source saw.",
    kind: Kind::Gauge,
};
const CHANGE_EVENTS: Family = Family {
    name: "tidings_change_events_total",
    help: "Change events recorded, by kind.",
    kind: Kind::Counter,
};
const LAST_SUCCESS: Family = Family {
    name: "tidings_source_last_success_timestamp_seconds",
    help: "Unix time of the last successful run of a source.",
    kind: Kind::Gauge,
};
const FEED_REQUESTS: Family = Family {
    name: "tidings_feed_requests_total",
    help: "Feed requests answered, by status (200 or 304).",
    kind: Kind::Counter,
};

const OUTBOX: Family = Family {
    name: "tidings_outbox_messages",
    help: "Outbox messages not sent, by status (queued, sending, failed, unconfirmed).",
    kind: Kind::Gauge,
};

const EMAILS: Family = Family {
    name: "tidings_emails_total",
    help: "Email send attempts by outcome (sent, retried, failed, unconfirmed).",
    kind: Kind::Counter,
};

const ALERTS: Family = Family {
    name: "tidings_alerts_raised",
    help: "Operator alerts (mail, source:NAME): 1 while raised, 0 once cleared.",
    kind: Kind::Gauge,
};

const SUPPRESSED: Family = Family {
    name: "tidings_subscribers_suppressed",
    help: "Subscribers suppressed after repeated permanent refusals of their mail.",
    kind: Kind::Gauge,
};

const CONNECTIONS_REFUSED: Family = Family {
    name: "tidings_http_connections_refused_total",
    help: "Connections refused with a 503 at server.max_connections, every connection being busy.",
    kind: Kind::Counter,
};

const CONNECTIONS_SHED: Family = Family {
    name: "tidings_http_connections_shed_total",
    help: "Connections the server closed, by reason (header_timeout, idle, displaced at the connection limit).",
    kind: Kind::Counter,
};

const CONNECTIONS_OPEN: Family = Family {
    name: "tidings_http_connections_open",
    help: "HTTP connections open now.",
    kind: Kind::Gauge,
};

const CHANNEL_POSTS: Family = Family {
    name: "tidings_channel_posts_total",
    help: "Channel and webhook post attempts by channel and outcome (sent, retrying, failed, unconfirmed).",
    kind: Kind::Counter,
};

const FAMILIES: [&Family; 13] = [
    &INGEST_RUNS,
    &ENTRIES_SEEN,
    &CHANGE_EVENTS,
    &LAST_SUCCESS,
    &FEED_REQUESTS,
    &OUTBOX,
    &EMAILS,
    &ALERTS,
    &SUPPRESSED,
    &CONNECTIONS_REFUSED,
    &CONNECTIONS_SHED,
    &CONNECTIONS_OPEN,
    &CHANNEL_POSTS,
];

/// Series values keyed by family name, then by the rendered label set.
type Series = BTreeMap<&'static str, BTreeMap<String, f64>>;

static REGISTRY: LazyLock<Mutex<Series>> = LazyLock::new(|| Mutex::new(Series::new()));

fn registry() -> MutexGuard<'static, Series> {
    // A panic while holding the lock leaves plain numbers behind: still usable.
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn add(family: &Family, labels: &[(&str, &str)], by: f64) {
    *registry()
        .entry(family.name)
        .or_default()
        .entry(label_set(labels))
        .or_default() += by;
}

fn set(family: &Family, labels: &[(&str, &str)], value: f64) {
    registry()
        .entry(family.name)
        .or_default()
        .insert(label_set(labels), value);
}

/// What one ingest run did, for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct IngestOutcome<'a> {
    /// The source's name.
    pub source: &'a str,
    /// `ok`, `partial`, `failed` or `held`.
    pub outcome: &'a str,
    /// Entries seen (successful runs).
    pub entries: usize,
    /// Events recorded, by kind: new, changed, withdrawn, reappeared.
    pub events: [(&'a str, usize); 4],
    /// When the run finished.
    pub at: DateTime<Utc>,
}

/// Count one ingest run.
pub(crate) fn record_ingest(run: &IngestOutcome<'_>) {
    add(
        &INGEST_RUNS,
        &[("source", run.source), ("outcome", run.outcome)],
        1.0,
    );
    if matches!(run.outcome, "failed" | "held") {
        return;
    }
    set(&ENTRIES_SEEN, &[("source", run.source)], run.entries as f64);
    set(
        &LAST_SUCCESS,
        &[("source", run.source)],
        run.at.timestamp() as f64,
    );
    for (kind, count) in run.events {
        add(&CHANGE_EVENTS, &[("kind", kind)], count as f64);
    }
}

/// Count one answered feed request.
pub(crate) fn record_feed_request(not_modified: bool) {
    let status = if not_modified { "304" } else { "200" };
    add(&FEED_REQUESTS, &[("status", status)], 1.0);
}

/// Count one send attempt's outcome: `sent`, `retried`, `failed` or `unconfirmed`.
pub(crate) fn record_email(outcome: &str) {
    add(&EMAILS, &[("outcome", outcome)], 1.0);
}

/// Count one channel post attempt's outcome: `sent`, `retrying`, `failed` or `unconfirmed`.
pub(crate) fn channel_post(channel: &str, outcome: &str) {
    add(
        &CHANNEL_POSTS,
        &[("channel", channel), ("outcome", outcome)],
        1.0,
    );
}

/// Set the outbox depth, read from the store when `/metrics` is scraped.
pub(crate) fn record_outbox(backlog: &crate::store::OutboxBacklog) {
    let statuses = [
        ("queued", backlog.queued),
        ("sending", backlog.sending),
        ("failed", backlog.failed),
        ("unconfirmed", backlog.unconfirmed),
    ];
    for (status, count) in statuses {
        set(&OUTBOX, &[("status", status)], count as f64);
    }
}

/// Set whether each known alert is raised, read from the store at a scrape.
pub(crate) fn record_alerts(alerts: &[(String, bool)]) {
    for (name, raised) in alerts {
        set(&ALERTS, &[("alert", name)], f64::from(u8::from(*raised)));
    }
}

/// Set how many subscribers are suppressed, read from the store at a scrape.
pub(crate) fn record_suppressed(count: i64) {
    set(&SUPPRESSED, &[], count as f64);
}

/// Count one connection refused at the connection limit.
pub(crate) fn record_connection_refused() {
    add(&CONNECTIONS_REFUSED, &[], 1.0);
}

/// Count one connection the server closed, and why.
pub(crate) fn record_connection_shed(reason: &str) {
    add(&CONNECTIONS_SHED, &[("reason", reason)], 1.0);
}

/// One more (`1`) or one fewer (`-1`) open connection.
pub(crate) fn record_connections_open(delta: i8) {
    add(&CONNECTIONS_OPEN, &[], f64::from(delta));
}

/// Every metric in the Prometheus text format (version 0.0.4).
pub fn render() -> String {
    let series = registry();
    let mut out = String::new();
    for family in FAMILIES {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {kind}",
            family.name, family.help, family.name
        );
        for (labels, value) in series.get(family.name).into_iter().flatten() {
            let _ = writeln!(out, "{}{labels} {value}", family.name);
        }
    }
    out
}

/// `{a="x",b="y"}` with values escaped as the exposition format requires.
fn label_set(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_set(&[("source", "a\"b\\c\nd")]),
            r#"{source="a\"b\\c\nd"}"#
        );
        assert_eq!(label_set(&[]), "");
    }

    #[test]
    fn a_failed_run_counts_but_keeps_the_last_success() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let ok = IngestOutcome {
            source: "unit-test-source",
            outcome: "ok",
            entries: 45,
            events: [
                ("new", 45),
                ("changed", 0),
                ("withdrawn", 0),
                ("reappeared", 0),
            ],
            at,
        };
        record_ingest(&ok);
        record_ingest(&IngestOutcome {
            outcome: "failed",
            entries: 0,
            at: at + chrono::Duration::hours(1),
            ..ok
        });
        let text = render();
        assert!(
            text.contains(r#"tidings_ingest_runs_total{source="unit-test-source",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(text.contains(
            r#"tidings_ingest_runs_total{source="unit-test-source",outcome="failed"} 1"#
        ));
        assert!(text.contains(
            r#"tidings_source_last_success_timestamp_seconds{source="unit-test-source"} 1700000000"#
        ));
        assert!(text.contains(r#"tidings_ingest_entries_seen{source="unit-test-source"} 45"#));
        assert!(text.contains("# TYPE tidings_feed_requests_total counter"));
    }
}
