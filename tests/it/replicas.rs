// Several `tidings serve` replicas on one PostgreSQL database, with 1,000
// subscribers and one SMTP sink: one digest each, also when the replica that
// sends is killed; and a SQLite installation copied onto PostgreSQL that
// sends nobody a digest again.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;
use tidings::store::Store;

use crate::support::app::{Served, TestApp, wait_until};
use crate::support::db::Db;
use crate::support::postgres::on_postgres;
use crate::support::smtp::{Maildir, an_alert, header};
use crate::support::{get_text, http};

const SUBSCRIBERS: usize = 1000;
/// The counter of messages a process handed to the server and saw accepted.
const SENT: &str = "tidings_emails_total{outcome=\"sent\"}";
/// The counter of ingest runs: only the replica holding the scheduler lease ingests.
const INGESTED: &str = "tidings_ingest_runs_total{";

/// `[mail]` over SMTP to `sink` with `mail_keys`, and digests on `schedule`.
fn config(sink: &Maildir, mail_keys: &str, schedule: &str) -> String {
    format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_url = \"{}\"\nfrom = \"Test Library <news@example.org>\"\n\
         retry_base_s = 1\n{mail_keys}\n[digest]\nschedule = \"{schedule}\"\ndaily_schedule = \"{schedule}\"\n",
        sink.url()
    )
}

/// Two replicas on `db_url` sharing one sink, with 1,000 confirmed weekly
/// subscribers imported before anything is ingested: the leader's ingest at
/// start is news to all of them, and a period every 5 s sends it.
async fn two_replicas(
    db_url: &str,
    server_keys: &str,
    mail_keys: &str,
) -> (Maildir, [TestApp; 2], [Served; 2]) {
    let sink = Maildir::start();
    let extra = config(&sink, mail_keys, "*/5 * * * * *");
    let apps = [
        TestApp::with_server_keys(db_url, server_keys, &extra),
        TestApp::with_server_keys(db_url, server_keys, &extra),
    ];
    let csv: String = (0..SUBSCRIBERS)
        .map(|i| format!("reader{i:04}@example.org,leaflets,weekly\n"))
        .collect();
    std::fs::write(apps[0].path("people.csv"), csv).unwrap();
    let imported = apps[0].run_ok(&["subscribers", "import", "people.csv", "--confirmed"]);
    assert!(imported.contains("imported 1000"), "{imported}");
    let served = [apps[0].serve().await, apps[1].serve().await];
    (sink, apps, served)
}

/// The sum of the series of `/metrics` whose line starts with `prefix`.
async fn metric(app: &TestApp, prefix: &str) -> f64 {
    let text = get_text(&app.url("/metrics"), 200).await;
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

/// Which replica holds the scheduler lease: the one that ran the ingest at start.
async fn leader(apps: &[TestApp; 2]) -> usize {
    wait_until(Duration::from_secs(30), || async {
        metric(&apps[0], INGESTED).await + metric(&apps[1], INGESTED).await > 0.0
    })
    .await;
    let ran = [
        metric(&apps[0], INGESTED).await,
        metric(&apps[1], INGESTED).await,
    ];
    assert!(
        (ran[0] > 0.0) != (ran[1] > 0.0),
        "exactly one replica runs the schedule: ingest runs {ran:?}"
    );
    usize::from(ran[1] > 0.0)
}

async fn answers_healthz(app: &TestApp) -> bool {
    let health = http().get(app.url("/healthz")).send().await;
    health.is_ok_and(|r| r.status().is_success())
}

/// Outbox rows per status, straight from the database.
async fn statuses(store: &Store) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// True once no row is queued or being sent.
async fn settled(store: &Store) -> bool {
    let now = statuses(store).await;
    !now.is_empty() && !now.contains_key("queued") && !now.contains_key("sending")
}

/// Each recipient's outbox status, straight from the database.
async fn status_by_recipient(store: &Store) -> HashMap<String, String> {
    sqlx::query_as::<_, (String, String)>("SELECT recipient, status FROM outbox")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// A row of `digest_runs`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct DigestRun {
    schedule: String,
    period: String,
    queued: i64,
    baseline: i64,
    finished_at: Option<String>,
}

async fn digest_runs(store: &Store) -> Vec<DigestRun> {
    sqlx::query_as::<_, DigestRun>(
        "SELECT schedule, period, queued, baseline, finished_at FROM digest_runs \
         ORDER BY schedule, period",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// Finished runs of `schedule` that were not a fresh database's baseline.
async fn periods_run(store: &Store, schedule: &str) -> usize {
    digest_runs(store)
        .await
        .iter()
        .filter(|r| r.schedule == schedule && r.baseline == 0 && r.finished_at.is_some())
        .count()
}

/// Who holds the scheduler lease; `None` between a clean release and the next taker.
async fn lease_holder(store: &Store) -> Option<String> {
    sqlx::query_scalar("SELECT holder FROM leases WHERE name = 'scheduler'")
        .fetch_optional(store.pool())
        .await
        .unwrap()
}

/// The `Message-ID`s each recipient received, checking every message is a digest.
fn digests_by_recipient(sink: &Maildir) -> HashMap<String, Vec<String>> {
    let mut received: HashMap<String, Vec<String>> = HashMap::new();
    for message in sink.messages() {
        assert_eq!(header(&message, "x-tidings-kind"), "digest");
        received
            .entry(header(&message, "to").to_owned())
            .or_default()
            .push(header(&message, "message-id").to_owned());
    }
    received
}

fn outbox(app: &TestApp) -> Vec<Value> {
    app.json(&["outbox", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

fn instant(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .to_utc()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn two_serve_replicas_send_1000_subscribers_exactly_one_digest() {
    on_postgres(|db| async move {
        // At 100 a second the leader alone would need 10 s, longer than the
        // other replica's worker waits between looks at the outbox (5 s).
        let (sink, apps, _served) =
            two_replicas(&db.url, "", "rate_per_s = 100\ntimeout_s = 5\n").await;
        let leader = leader(&apps).await;
        wait_until(Duration::from_secs(60), || async {
            sink.count() >= SUBSCRIBERS
        })
        .await;
        wait_until(Duration::from_secs(30), || async {
            settled(&db.store).await
        })
        .await;
        // A later period finds nothing new and sends nothing again.
        let periods = periods_run(&db.store, "weekly").await;
        wait_until(Duration::from_secs(30), || async {
            periods_run(&db.store, "weekly").await > periods
        })
        .await;

        let received = digests_by_recipient(&sink);
        assert_eq!(received.len(), SUBSCRIBERS, "every subscriber got a digest");
        let repeated: Vec<_> = received.iter().filter(|(_, ids)| ids.len() != 1).collect();
        assert!(
            repeated.is_empty(),
            "got more than one digest: {repeated:?}"
        );

        let rows = outbox(&apps[0]);
        assert_eq!(rows.len(), SUBSCRIBERS, "one outbox row per subscriber");
        let unsent: Vec<&Value> = rows
            .iter()
            .filter(|r| r["status"] != "sent" || r["attempts"] != 1)
            .collect();
        assert!(
            unsent.is_empty(),
            "rows not sent at the first attempt: {unsent:#?}"
        );

        // The lease holder queued one period once; every other period was empty.
        let runs = digest_runs(&db.store).await;
        let queued: Vec<&DigestRun> = runs.iter().filter(|r| r.queued > 0).collect();
        assert_eq!(queued.len(), 1, "{runs:#?}");
        assert_eq!(queued[0].queued, SUBSCRIBERS as i64, "{runs:#?}");
        let period = instant(&queued[0].period);
        for row in &rows {
            let key = row["key"].as_str().unwrap();
            assert_eq!(instant(key.rsplit('/').next().unwrap()), period, "{key}");
        }

        // Both replicas were up and delivered, and between them each row once.
        for app in &apps {
            assert!(
                answers_healthz(app).await,
                "replica on {} is down",
                app.port()
            );
        }
        let sent = [metric(&apps[0], SENT).await, metric(&apps[1], SENT).await];
        assert_eq!(
            sent[0] + sent[1],
            SUBSCRIBERS as f64,
            "sent per replica {sent:?}"
        );
        assert!(
            sent[0] > 0.0 && sent[1] > 0.0,
            "both replicas delivered: sent per replica {sent:?} (leader {leader})"
        );
        eprintln!("replica {leader} led; sent per replica {sent:?}");
    })
    .await;
}

/// How the sending replica stops in the middle of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGKILL, as a crash.
    Kill,
    /// SIGTERM, as a rolling restart.
    Terminate,
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn a_replica_killed_mid_send_leaves_the_other_to_finish_with_one_digest_each() {
    on_postgres(|db| async move { replica_stopped_mid_send(db, Stop::Kill).await }).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn a_replica_stopped_mid_send_hands_its_rows_over_and_nothing_is_unconfirmed() {
    on_postgres(|db| async move { replica_stopped_mid_send(db, Stop::Terminate).await }).await;
}

/// Two replicas send 1,000 digests; the leader stops after 250 reached the
/// sink; the survivor finishes, and every subscriber has exactly one.
async fn replica_stopped_mid_send(db: Db, how: Stop) {
    // A short scheduler lease so the survivor also takes the schedule over;
    // a short send timeout so the rows the dead replica held come free soon
    // (a claim lasts two timeouts plus the paced batch plus 2 s).
    let (sink, apps, mut served) = two_replicas(
        &db.url,
        "scheduler_lease_s = 3",
        "rate_per_s = 200\nconcurrency = 4\ntimeout_s = 3\n",
    )
    .await;
    let leader = leader(&apps).await;
    let survivor = 1 - leader;
    let holder = lease_holder(&db.store).await;
    // Holder ids are `host:pid:random`: the replica about to be stopped holds the lease.
    let leader_pid = served[leader].pid().to_string();
    assert_eq!(
        holder.as_deref().and_then(|h| h.split(':').nth(1)),
        Some(leader_pid.as_str()),
        "the replica that ran the ingest holds the scheduler lease"
    );
    wait_until(Duration::from_secs(60), || async { sink.count() >= 250 }).await;
    let sent_by_leader = metric(&apps[leader], SENT).await;
    match how {
        Stop::Kill => served[leader].kill(),
        Stop::Terminate => {
            let took = served[leader].terminate();
            // In-flight sends finish within mail.timeout_s (3 s) + 2 s.
            assert!(took < Duration::from_secs(15), "shutdown took {took:?}");
        }
    }
    let at_kill = sink.count();
    let status_at_kill = status_by_recipient(&db.store).await;
    assert!(sent_by_leader > 0.0, "the killed replica was sending");
    assert!(
        at_kill < SUBSCRIBERS,
        "killed too late to prove anything ({at_kill})"
    );

    wait_until(Duration::from_secs(20), || async {
        lease_holder(&db.store)
            .await
            .is_some_and(|now| Some(now) != holder)
    })
    .await;
    wait_until(Duration::from_secs(60), || async {
        settled(&db.store).await
    })
    .await;
    // The survivor runs a period of its own and queues nothing again.
    let periods = periods_run(&db.store, "weekly").await;
    wait_until(Duration::from_secs(30), || async {
        periods_run(&db.store, "weekly").await > periods
    })
    .await;
    assert!(answers_healthz(&apps[survivor]).await);

    let received = digests_by_recipient(&sink);
    let rows = outbox(&apps[survivor]);
    let mut repeats = 0;
    let mut problems = Vec::new();
    for (to, ids) in &received {
        if ids.len() > 1 {
            repeats += ids.len() - 1;
            problems.push(format!(
                "{to} got {} digests ({} Message-IDs), status at the kill {}",
                ids.len(),
                ids.iter().collect::<std::collections::HashSet<_>>().len(),
                status_at_kill.get(to).map_or("none", String::as_str)
            ));
        }
    }
    // A row left `unconfirmed` was marked handed over by the dead replica,
    // which may have died before its final dot left: its subscriber has one
    // digest or none, never two. Every other row is sent, and its subscriber
    // has exactly one.
    let mut unconfirmed = Vec::new();
    for row in &rows {
        let to = row["recipient"].as_str().unwrap();
        let got = received.get(to).map_or(0, Vec::len);
        match row["status"].as_str() {
            Some("sent") if got == 1 => {}
            Some("unconfirmed") if got <= 1 => unconfirmed.push((to.to_owned(), got)),
            _ => problems.push(format!("{to}: received {got}, outbox row {row}")),
        }
    }
    let by_status = statuses(&db.store).await;
    eprintln!(
        "stopped replica {leader} ({how:?}) after {at_kill} of {SUBSCRIBERS} in the sink \
         ({sent_by_leader} sent by it); {repeats} repeated deliveries; outbox {by_status:?}; \
         unconfirmed (recipient, received) {unconfirmed:?}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(rows.len(), SUBSCRIBERS, "one row per subscriber");
    // At most one per send in flight in the dead replica (mail.concurrency = 4).
    assert!(unconfirmed.len() <= 4, "{unconfirmed:?}");
    let queued: Vec<DigestRun> = digest_runs(&db.store)
        .await
        .into_iter()
        .filter(|r| r.queued > 0)
        .collect();
    assert_eq!(queued.len(), 1, "one period queued, once: {queued:#?}");
    if how == Stop::Terminate {
        // A clean stop hands back what it had not started and waits for
        // the answers to what it had: every row is sent.
        assert_eq!(
            by_status.get("sent"),
            Some(&(SUBSCRIBERS as i64)),
            "{by_status:?}"
        );
    }
}

/// A second seed page: two new resources for the SQLite installation's daemon to find at start.
const MORE_SEED: &str = "More\n\nIntro.\n\nMore\n\nA new parents leaflet\nAbout parents.\n\n\n\
                         News: a new clinic opens\nA clinic.\n";
/// Feeds compared between the SQLite and the PostgreSQL installation.
const FEEDS: [&str; 6] = [
    "/feeds/all.rss",
    "/feeds/all.atom",
    "/feeds/leaflets.rss",
    "/feeds/leaflets.atom",
    "/feeds/news.atom",
    "/feeds.opml",
];

async fn served_feeds(app: &TestApp) -> Vec<String> {
    wait_until(Duration::from_secs(20), || async {
        let all = http().get(app.url("/feeds/all.rss")).send().await;
        match all {
            Ok(r) => r.text().await.unwrap().contains("A new parents leaflet"),
            Err(_) => false,
        }
    })
    .await;
    let mut bodies = Vec::new();
    for path in FEEDS {
        bodies.push(get_text(&app.url(path), 200).await);
    }
    bodies
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn db_copy_then_serve_on_postgres_sends_no_digest_again() {
    on_postgres(|db| async move {
        let sink = Maildir::start();
        // A period every second: the copy's serve runs several while the test waits.
        let extra = config(&sink, "timeout_s = 5\n", "* * * * * *");
        let single = TestApp::new("sqlite://tidings.db", &extra);
        let csv: String = (0..10)
            .map(|i| {
                format!("weekly{i}@example.org,leaflets,weekly\ndaily{i}@example.org,all,daily\n")
            })
            .collect();
        std::fs::write(single.path("people.csv"), csv).unwrap();
        single.run_ok(&["subscribers", "import", "people.csv", "--confirmed"]);
        single.run_ok(&["ingest"]);
        let now = single.run_ok(&["digest", "send", "--now"]);
        assert!(now.contains("queued 20 of 20"), "{now}");

        // The single box's daemon ingests a new page at start and sends its
        // first scheduled digests; then it dies, as it might before a move.
        std::fs::write(single.path("seeds/more.txt"), MORE_SEED).unwrap();
        let sqlite_feeds = {
            let _served = single.serve().await;
            wait_until(Duration::from_secs(30), || async { sink.count() >= 40 }).await;
            wait_until(Duration::from_secs(30), || async {
                outbox(&single).iter().all(|r| r["status"] == "sent")
            })
            .await;
            served_feeds(&single).await
        };
        let sqlite = Store::open(&format!("sqlite://{}", single.path("tidings.db").display()))
            .await
            .unwrap();
        let runs_before = digest_runs(&sqlite).await;
        sqlite.close().await;
        for schedule in ["weekly", "daily"] {
            assert!(
                runs_before
                    .iter()
                    .any(|r| r.schedule == schedule && r.queued == 10),
                "the SQLite daemon sent a {schedule} period: {runs_before:#?}"
            );
        }
        let outbox_before = outbox(&single);
        assert_eq!(outbox_before.len(), 40);
        let received = digests_by_recipient(&sink);
        assert_eq!(received.len(), 20);
        assert!(received.values().all(|ids| ids.len() == 2), "{received:#?}");

        single.run_ok(&["db", "copy", "--to", &db.url]);
        let moved = TestApp::new(&db.url, &extra);
        std::fs::write(moved.path("seeds/more.txt"), MORE_SEED).unwrap();
        let _served = moved.serve().await;
        // Six periods of each schedule: more than five seconds, so the outbox
        // worker has looked at the copied rows at least once since the first.
        wait_until(Duration::from_secs(40), || async {
            let runs = digest_runs(&db.store).await;
            ["weekly", "daily"].iter().all(|schedule| {
                runs.iter()
                    .filter(|r| r.schedule == *schedule && r.finished_at.is_some())
                    .filter(|r| !runs_before.contains(r))
                    .count()
                    >= 6
            })
        })
        .await;
        let postgres_feeds = served_feeds(&moved).await;

        // Every copied period is there as it was, so none is due again; the
        // later ones are no baseline (the copy is no fresh database) and,
        // with every window where the SQLite daemon left it, queue nothing.
        let runs_after = digest_runs(&db.store).await;
        let missing: Vec<_> = runs_before
            .iter()
            .filter(|r| !runs_after.contains(r))
            .collect();
        assert!(missing.is_empty(), "digest runs not copied: {missing:#?}");
        let wrong: Vec<_> = runs_after
            .iter()
            .filter(|r| !runs_before.contains(r) && (r.queued != 0 || r.baseline != 0))
            .collect();
        assert!(wrong.is_empty(), "periods after the copy: {wrong:#?}");
        let outbox_after = outbox(&moved);
        let changed: Vec<_> = outbox_after
            .iter()
            .filter(|row| !outbox_before.contains(row))
            .collect();
        assert!(
            changed.is_empty(),
            "outbox rows changed or added: {changed:#?}"
        );
        assert_eq!(outbox_after.len(), outbox_before.len(), "outbox rows lost");
        assert_eq!(
            digests_by_recipient(&sink),
            received,
            "nobody got a digest again"
        );
        assert_eq!(metric(&moved, SENT).await, 0.0);

        let (from, to) = (
            format!("127.0.0.1:{}", single.port()),
            format!("127.0.0.1:{}", moved.port()),
        );
        for (path, (a, b)) in FEEDS.iter().zip(sqlite_feeds.iter().zip(&postgres_feeds)) {
            assert!(a.replace(&from, &to) == *b, "{path} differs after the move");
        }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn on_postgresql_a_serving_replica_delivers_mail_another_process_queued_at_once() {
    on_postgres(|db| async move {
        let sink = Maildir::start();
        // Without the notification the worker would look only once an hour.
        let app = TestApp::new(&db.url, &config(&sink, "poll_s = 3600", "0 0 8 * * Mon"));
        let _served = app.serve().await;
        for i in 1..=2 {
            let message = an_alert(&format!("alert/test/{i}"));
            #[allow(clippy::disallowed_methods)] // the test's own clock
            let now = chrono::Utc::now();
            assert!(db.store.enqueue(&message, now).await.unwrap());
            wait_until(Duration::from_secs(30), || async { sink.count() == i }).await;
        }
    })
    .await;
}
