//! The daemon's own loops (`serve`'s source and digest loops) driven by a
//! virtual clock through the UK's skipped hour (28 March 2027) and repeated
//! hour (25 October 2026): each scheduled run happens exactly once, and
//! between runs every loop is asleep until a later instant.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;
use tidings::clock::{Clock, FixedClock};
use tidings::store::Store;

use crate::support::app::{SEED_PAGE, wait_until};
use crate::support::db::{Db, on_every_backend};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// Two seed sources every 30 minutes and a daily digest at 01:30 London time.
const SOURCES: usize = 2;
/// The source loops, the weekly and daily digest loops, and outbox retention.
const LOOPS: usize = SOURCES + 3;

fn config(db: &Db, seeds: &std::path::Path) -> tidings::config::Config {
    let seeds = seeds.display();
    let text = format!(
        r#"
[site]
title = "Clock Library"
base_url = "http://127.0.0.1/"
timezone = "Europe/London"
[database]
url = "{url}"
[server]
listen = "127.0.0.1:0"
[[sources]]
name = "first"
kind = "seed"
path = "{seeds}"
schedule = "*/30 * * * *"
[[sources]]
name = "second"
kind = "seed"
path = "{seeds}"
schedule = "*/30 * * * *"
[mail]
transport = "file"
dir = "{seeds}/../outbox"
[digest]
daily_schedule = "30 1 * * *"
"#,
        url = db.url
    );
    tidings::config::from_toml(&text, &|_| None).expect("the test config is valid")
}

/// Runs `serve`'s loops from `start` to `end`, moving the clock only when
/// every loop is asleep, straight to the earliest instant one waits for.
/// Returns the instants of each source run and of each digest period.
async fn drive(db: Db, start: DateTime<Utc>, end: DateTime<Utc>) -> Runs {
    let store = db.migrated().await;
    let dir = tempfile::tempdir().unwrap();
    let seeds = dir.path().join("seeds");
    std::fs::create_dir(&seeds).unwrap();
    std::fs::copy(SEED_PAGE, seeds.join("page.txt")).unwrap();
    let config = Arc::new(config(&db, &seeds));
    let clock = FixedClock::new(start);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(tidings::daemon::run_on(
        config,
        Arc::new(clock.clone()),
        listener,
        async move {
            let _ = stop_rx.await;
        },
    ));
    let mut wakes = 0;
    loop {
        all_asleep(&clock).await;
        let next = clock.next_wake().expect("every loop waits for an instant");
        assert!(next > clock.now(), "a loop sleeps until a later instant");
        if next > end {
            break;
        }
        clock.set(next);
        wakes += 1;
        assert!(wakes < 100, "far more wake-ups than scheduled runs");
    }
    assert_eq!(
        clock.sleeps_already_due(),
        0,
        "no loop asked to sleep until an instant already reached"
    );
    let _ = stop_tx.send(());
    daemon.await.unwrap().unwrap();
    Runs::read(&store).await
}

/// Waits until every loop is asleep on the clock. The count is exact, with
/// no need to let it settle: these loops sleep only on the clock (or until
/// stopped), and a sleeper whose instant `set` reaches is off the register
/// before `set` returns, so a full register means none is running or about to.
async fn all_asleep(clock: &FixedClock) {
    wait_until(Duration::from_secs(30), || {
        std::future::ready(clock.sleeping() == LOOPS)
    })
    .await;
}

#[derive(Debug)]
struct Runs {
    sources: Vec<(String, DateTime<Utc>)>,
    digests: Vec<(String, DateTime<Utc>)>,
}

impl Runs {
    async fn read(store: &Store) -> Self {
        let pool = store.pool();
        let rows = sqlx::query("SELECT source, started_at FROM source_runs ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
        let sources = rows
            .iter()
            .map(|r| (r.get::<String, _>(0), parse(&r.get::<String, _>(1))))
            .collect();
        let rows = sqlx::query("SELECT schedule, period FROM digest_runs ORDER BY period")
            .fetch_all(pool)
            .await
            .unwrap();
        let digests = rows
            .iter()
            .map(|r| (r.get::<String, _>(0), parse(&r.get::<String, _>(1))))
            .collect();
        Self { sources, digests }
    }

    fn of(&self, source: &str) -> Vec<DateTime<Utc>> {
        let mut at: Vec<_> = self
            .sources
            .iter()
            .filter(|(s, _)| s == source)
            .map(|(_, at)| *at)
            .collect();
        at.sort();
        at
    }

    fn daily(&self) -> Vec<DateTime<Utc>> {
        self.digests
            .iter()
            .filter(|(s, _)| s == "daily")
            .map(|(_, at)| *at)
            .collect()
    }
}

fn parse(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Every half hour from `from` to `to` (UTC), inclusive.
fn half_hours(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut at = from;
    let mut all = Vec::new();
    while at <= to {
        all.push(at);
        at += chrono::Duration::minutes(30);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_repeated_hour_each_run_happens_once_and_the_loops_sleep_between() {
    on_every_backend(|db| async move {
        // 01:05 UTC on 25 October 2026 is 01:05 GMT, the second pass of the
        // hour from 01:00 (clocks went back at 02:00 BST = 01:00 UTC).
        let start = utc(2026, 10, 25, 1, 5);
        let runs = drive(
            db,
            start - chrono::Duration::hours(2),
            utc(2026, 10, 26, 3, 0),
        )
        .await;
        // Sources: once at start, then every real half hour, twice through
        // the local hour 01:00–02:00 that happens twice.
        let mut expected = vec![start - chrono::Duration::hours(2)];
        expected.extend(half_hours(
            utc(2026, 10, 24, 23, 30),
            utc(2026, 10, 26, 3, 0),
        ));
        for source in ["first", "second"] {
            assert_eq!(runs.of(source), expected, "{source} runs");
        }
        // The 01:30 digest: the first 01:30 (BST, 00:30 UTC) on the 25th, not
        // the second; 01:30 GMT on the 26th. The first period on a fresh
        // database is the baseline (24th).
        assert_eq!(
            runs.daily(),
            vec![
                utc(2026, 10, 24, 0, 30),
                utc(2026, 10, 25, 0, 30),
                utc(2026, 10, 26, 1, 30),
            ]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_skipped_hour_each_run_happens_once_and_the_loops_sleep_between() {
    on_every_backend(|db| async move {
        // Clocks go forward at 01:00 GMT on 28 March 2027 to 02:00 BST.
        let start = utc(2027, 3, 27, 23, 10);
        let runs = drive(db, start, utc(2027, 3, 29, 1, 0)).await;
        // Sources keep a real half-hour rhythm: 00:30 GMT, then 02:00 BST (01:00 UTC).
        let mut expected = vec![start];
        expected.extend(half_hours(utc(2027, 3, 27, 23, 30), utc(2027, 3, 29, 1, 0)));
        for source in ["first", "second"] {
            assert_eq!(runs.of(source), expected, "{source} runs");
        }
        // 01:30 does not exist on the 28th: the digest runs as the clocks jump
        // (01:00 UTC), once; on the 29th at 01:30 BST (00:30 UTC).
        assert_eq!(
            runs.daily(),
            vec![
                utc(2027, 3, 27, 1, 30),
                utc(2027, 3, 28, 1, 0),
                utc(2027, 3, 29, 0, 30),
            ]
        );
    })
    .await;
}
