// Digests by email against real SMTP servers on loopback: content and headers
// through a real mail parser, one-click unsubscribe, 451/550/stalls, SIGKILL
// mid-run, concurrent runs, CSV import.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use chrono::{DateTime, Utc};
use tidings::model::{CategoryChoice, Frequency, SubscriberStatus};
use tidings::store::{NewMessage, NewSubscriber, QueuedDigest};

use crate::support::app::{TestApp, wait_until};
use crate::support::db::on_every_backend;
use crate::support::get_text;
use crate::support::postgres::on_postgres;
use crate::support::smtp::smtp_config as support_smtp_config;
use crate::support::smtp::{Maildir, SmtpSink, count_files, header};

/// A seed page whose one entry is hostile: markup, quotes, ampersands, a fake header.
const HOSTILE_SEED: &str = "Hostile page\n\nAn intro paragraph.\n\nHostile page\n\n\
<script>alert(1)</script> Parents' leaflet & \"quotes\" <b>bold</b>\n\
A summary with <em>markup</em> & an ampersand, and a line that says\nBcc: victim@example.org\n";
const HOSTILE_TITLE: &str = "<script>alert(1)</script> Parents' leaflet & \"quotes\" <b>bold</b>";

/// Titles of the reference page by category slug, as a person reads them.
fn titles(slug: &str) -> Vec<&'static str> {
    match slug {
        "leaflets" => vec![
            "OCEAN - Offering Compassionate & Emotional Support for Those Living Through Birth Trauma and Loss",
            "Let’s keep young people and children safe and healthy",
            HOSTILE_TITLE,
        ],
        "news" => vec![
            "Hestia & ELFT launch the Together Café Service in Tower Hamlets – May 2020",
            "Tower Hamlets Urgent Treatment Centre - Opening 14 August 2019",
        ],
        "board-papers" => vec!["Health and Wellbeing Board - 17 November 2020"],
        "strategies-and-plans" => vec![
            "Tower Hamlets Together: Health and Social Care Workforce Strategy 2021-2024",
            "Tower Hamlets Together - Shared Outcomes Framework",
        ],
        "case-studies" => vec!["Covid-19 THT Partnership success stories and case studies"],
        "reports" => vec!["What Would You Do? - HealthWatch Tower Hamlets Part 2"],
        other => panic!("no titles for {other}"),
    }
}

/// The shared test relay section, with a Reply-To.
fn smtp_config(url: &str, extra: &str) -> String {
    support_smtp_config(url, &format!("reply_to = \"help@example.org\"\n{extra}"))
}

fn add(app: &TestApp, email: &str, categories: &str) {
    app.run_ok(&[
        "subscribers",
        "add",
        email,
        "--categories",
        categories,
        "--confirmed",
    ]);
}

/// Messages grouped by their `To` address.
fn by_recipient(messages: &[Value]) -> HashMap<String, Vec<&Value>> {
    let mut map: HashMap<String, Vec<&Value>> = HashMap::new();
    for m in messages {
        map.entry(header(m, "to").to_owned()).or_default().push(m);
    }
    map
}

#[tokio::test]
async fn three_subscribers_each_get_exactly_their_digest() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        std::fs::write(app.path("seeds/hostile.txt"), HOSTILE_SEED).unwrap();
        let wanted = [
            ("ann@example.org", vec!["leaflets"]),
            ("bob@example.org", vec!["news", "board-papers"]),
            (
                "cat@example.org",
                vec!["strategies-and-plans", "case-studies"],
            ),
        ];
        for (email, slugs) in &wanted {
            add(&app, email, &slugs.join(","));
        }
        app.run_ok(&["ingest"]);
        app.run_ok(&["digest", "send", "--now"]);
        let messages = sink.messages();
        assert_eq!(messages.len(), 3, "one digest each");
        let received = by_recipient(&messages);
        for (email, slugs) in &wanted {
            let mine = &received[*email];
            assert_eq!(mine.len(), 1, "{email} got {}", mine.len());
            let expected: Vec<&str> = slugs.iter().flat_map(|s| titles(s)).collect();
            check_digest(mine[0], email, &expected, app.port());
        }
    })
    .await;
}

/// Headers, both parts, the titles listed (and no others), escaping.
fn check_digest(m: &Value, email: &str, expected: &[&str], port: u16) {
    assert_eq!(header(m, "from"), "Test Library <news@example.org>");
    assert_eq!(header(m, "reply-to"), "help@example.org");
    assert_eq!(header(m, "to"), email);
    assert_eq!(header(m, "x-tidings-kind"), "digest");
    assert_eq!(
        header(m, "list-unsubscribe-post"),
        "List-Unsubscribe=One-Click"
    );
    assert!(
        header(m, "list-id").ends_with("<tidings.127.0.0.1>"),
        "{}",
        header(m, "list-id")
    );
    assert!(header(m, "message-id").starts_with('<'));
    assert!(header(m, "date").contains(' '));
    let unsubscribe = header(m, "list-unsubscribe");
    assert!(
        unsubscribe.starts_with(&format!("<http://127.0.0.1:{port}/unsubscribe/")),
        "{unsubscribe}"
    );
    let subject = header(m, "subject");
    assert_eq!(
        subject,
        format!(
            "Test Library: {} new resources since your last digest",
            expected.len()
        )
    );
    assert_eq!(m["content_type"], "multipart/alternative");
    assert_eq!(m["parts"], serde_json::json!(["text/plain", "text/html"]));
    let text = m["text"].as_str().unwrap();
    let html = m["html"].as_str().unwrap();
    let all: Vec<&str> = [
        "leaflets",
        "news",
        "board-papers",
        "strategies-and-plans",
        "case-studies",
        "reports",
    ]
    .into_iter()
    .flat_map(titles)
    .collect();
    for title in all {
        let listed = text.contains(title);
        assert_eq!(
            listed,
            expected.contains(&title),
            "{email}: {title:?} listed: {listed}\n{text}"
        );
        let escaped = title
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        assert_eq!(
            html.contains(&escaped),
            expected.contains(&title),
            "{email}: {escaped:?} in HTML"
        );
    }
    assert!(
        !html.contains("<script") && !html.contains("<b>bold") && !html.contains("<em>"),
        "{html}"
    );
    let head = m["raw_head"].as_str().unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{head}"
    );
    assert!(
        !m["header_names"]
            .as_array()
            .unwrap()
            .contains(&Value::from("bcc"))
    );
}

#[tokio::test]
async fn one_click_unsubscribe_leaves_them_out_of_the_next_digest() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        // Digests every second, so the daemon's own schedule drives this test.
        let extra = "[digest]\nschedule = \"* * * * * *\"\ndaily_schedule = \"* * * * * *\"\n";
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), extra));
        add(&app, "ann@example.org", "leaflets");
        add(&app, "bob@example.org", "news");
        let _served = app.serve().await;
        wait_until(Duration::from_secs(30), || async { sink.count() >= 2 }).await;
        let first = sink.messages();
        let ann = by_recipient(&first)["ann@example.org"][0].clone();
        let link = header(&ann, "list-unsubscribe").trim_start_matches('<').split('>').next().unwrap().to_owned();
        let http = crate::support::http();
        let metrics = get_text(&app.url("/metrics"), 200).await;
        let sent_line = metrics
            .lines()
            .find(|l| l.starts_with("tidings_emails_total{outcome=\"sent\"}"))
            .unwrap_or_else(|| panic!("no sent counter in {metrics}"));
        let sent: f64 = sent_line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(sent >= 2.0, "{sent_line}");
        // A GET (what a mail scanner does) only shows the page with its button.
        let body = get_text(&link, 200).await;
        assert!(body.contains("<form method=\"post\"") && body.contains("<button"), "{body}");
        assert_eq!(status_of(&app, "ann@example.org"), "confirmed");
        let post = http
            .post(&link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 200);
        assert_eq!(status_of(&app, "ann@example.org"), "unsubscribed");
        // Change the MAC's last hex digit (to another digit, whatever it was).
        let last = if link.ends_with('0') { "1" } else { "0" };
        let forged = http.post(format!("{}{last}", &link[..link.len() - 1])).send().await.unwrap();
        assert_eq!(forged.status(), 404, "a token with a wrong MAC does nothing");
        // New resources in both categories: only bob hears of them.
        std::fs::write(app.path("seeds/more.txt"), "More\n\nIntro.\n\nMore\n\nA new parents leaflet\nAbout parents.\n\n\nNews: a new clinic opens\nA clinic.\n").unwrap();
        app.run_ok(&["ingest"]);
        wait_until(Duration::from_secs(30), || async { sink.count() >= 3 }).await;
        let all = sink.messages();
        let received = by_recipient(&all);
        assert_eq!(received["bob@example.org"].len(), 2);
        assert_eq!(received["ann@example.org"].len(), 1, "no digest after unsubscribing");
    })
    .await;
}

fn status_of(app: &TestApp, email: &str) -> String {
    let list = app.json(&["subscribers", "list", "--json"]);
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == email)
        .unwrap();
    row["status"].as_str().unwrap().to_owned()
}

fn outbox(app: &TestApp) -> Vec<Value> {
    app.json(&["outbox", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_451_is_retried_with_backoff_and_delivered_once() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let refusing = SmtpSink::start(&["-r", ".", "-b", "451 4.3.0 Try again later"]);
    let app = TestApp::new(&url, &smtp_config(&refusing.url(), ""));
    // Each command's clock starts where it is told: subscribed, then
    // ingested, then sent, in that order whatever the processes' speed.
    app.set_now("2026-12-03T10:00:00Z");
    add(&app, "ann@example.org", "leaflets");
    add(&app, "bob@example.org", "news");
    app.set_now("2026-12-03T10:00:10Z");
    app.run_ok(&["ingest"]);
    app.set_now("2026-12-03T10:00:20Z");
    let first = app.run(&["digest", "send", "--now"]);
    assert_eq!(
        first.status.code(),
        Some(1),
        "messages stay queued for retry"
    );
    for row in outbox(&app) {
        assert_eq!(row["status"], "queued");
        assert_eq!(row["attempts"], 1);
        assert!(row["last_error"].as_str().unwrap().contains("451"), "{row}");
    }
    // The server recovers; a run after the backoff (1 s here) delivers.
    let accepting = SmtpSink::start(&[]);
    let env = [("TIDINGS_SMTP_URL", accepting.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.set_now("2026-12-03T10:00:30Z");
    let retried = app.run_env(&["digest", "send"], &env);
    assert_eq!(
        retried.status.code(),
        Some(0),
        "delivered at the first run after the backoff: {}",
        String::from_utf8_lossy(&retried.stderr)
    );
    assert_eq!(
        app.run_env(&["digest", "send"], &env).status.code(),
        Some(0)
    );
    assert_eq!(accepting.count(), 2);
    let received = accepting.messages();
    let to: Vec<&str> = received.iter().map(|m| header(m, "to")).collect();
    assert_eq!(to.len(), 2, "{to:?} {received:#?}");
    assert!(to.contains(&"ann@example.org") && to.contains(&"bob@example.org"));
    assert!(
        outbox(&app)
            .iter()
            .all(|r| r["status"] == "sent" && r["attempts"] == 2)
    );
}

#[tokio::test]
async fn a_550_is_recorded_failed_and_not_retried() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let sink = SmtpSink::start(&["-f", ".", "-B", "550 5.1.1 Mailbox unavailable"]);
    let app = TestApp::new(&url, &smtp_config(&sink.url(), ""));
    app.set_now("2026-12-03T10:00:00Z");
    add(&app, "ann@example.org", "leaflets");
    app.set_now("2026-12-03T10:00:10Z");
    app.run_ok(&["ingest"]);
    app.set_now("2026-12-03T10:00:20Z");
    let out = app.run(&["digest", "send", "--now"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 message(s) failed"));
    let check = |app: &TestApp| {
        let failed = app.json(&["outbox", "list", "--failed", "--json"]);
        let rows = failed.as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["attempts"], 1, "tried once");
        let error = rows[0]["last_error"].as_str().unwrap();
        assert!(
            error.contains("550") && error.contains("Mailbox unavailable"),
            "{error}"
        );
    };
    check(&app);
    // Ten minutes on, long past any backoff: still nothing to retry.
    app.set_now("2026-12-03T10:10:00Z");
    assert_eq!(
        app.run(&["digest", "send"]).status.code(),
        Some(0),
        "nothing left to do"
    );
    check(&app);
    assert_eq!(
        sink.count(),
        1,
        "the refused message was offered once, not again"
    );
}

#[tokio::test]
async fn a_server_that_stalls_before_the_final_dot_is_timed_out_and_retried() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let sink = SmtpSink::start(&["-W", "data:30"]);
    let app = TestApp::new(
        &url,
        &smtp_config(&sink.url(), "").replace("timeout_s = 2", "timeout_s = 1"),
    );
    add(&app, "ann@example.org", "leaflets");
    app.run_ok(&["ingest"]);
    let started = Instant::now();
    assert_eq!(app.run(&["digest", "send", "--now"]).status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by mail.timeout_s"
    );
    let rows = outbox(&app);
    assert_eq!(rows[0]["status"], "queued", "the server never got the dot");
    assert!(
        rows[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("no answer within 1 s"),
        "{}",
        rows[0]
    );
}

#[tokio::test]
async fn a_server_that_stalls_after_the_final_dot_leaves_the_message_unconfirmed_not_resent() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let sink = SmtpSink::start(&["-W", ".:30"]);
    let app = TestApp::new(
        &url,
        &smtp_config(&sink.url(), "").replace("timeout_s = 2", "timeout_s = 1"),
    );
    app.set_now("2026-12-03T10:00:00Z");
    add(&app, "ann@example.org", "leaflets");
    app.set_now("2026-12-03T10:00:10Z");
    app.run_ok(&["ingest"]);
    app.set_now("2026-12-03T10:00:20Z");
    let out = app.run(&["digest", "send", "--now"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unconfirmed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unconfirmed = || {
        let failed = app.json(&["outbox", "list", "--failed", "--json"]);
        let rows = failed.as_array().unwrap().clone();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["status"], "unconfirmed");
        let error = rows[0]["last_error"].as_str().unwrap().to_owned();
        assert!(
            error.contains("after the message was handed over"),
            "{error}"
        );
        rows[0].clone()
    };
    let row = unconfirmed();
    // Ten minutes on, long past any backoff or claim: it is not sent again.
    app.set_now("2026-12-03T10:10:00Z");
    app.run(&["digest", "send"]);
    assert_eq!(
        unconfirmed()["attempts"],
        1,
        "the server may have it: not sent again"
    );
    assert!(
        app.run(&["outbox", "retry", "--failed"])
            .stdout
            .starts_with(b"re-queued 0 message(s)"),
        "retrying every failed message leaves the unconfirmed one alone"
    );
    let id = row["id"].to_string();
    let again = app.run(&["outbox", "retry", &id]);
    assert!(
        again.stdout.starts_with(b"re-queued 1 message(s)"),
        "by its id it goes again"
    );
    assert_eq!(
        sink.count(),
        2,
        "handed over twice: once, and once on request"
    );
}

#[tokio::test]
async fn sigkill_in_the_middle_of_1000_digests_then_rerun_gives_everyone_exactly_one() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(
            &db.url,
            &smtp_config(&sink.url(), "rate_per_s = 400\nconcurrency = 4\n")
                .replace("timeout_s = 2", "timeout_s = 1"),
        );
        let csv: String = (0..1000)
            .map(|i| format!("reader{i:04}@example.org,leaflets\n"))
            .collect();
        std::fs::write(
            app.path("people.csv"),
            format!("email,categories,frequency\n{csv}"),
        )
        .unwrap();
        app.run_ok(&["subscribers", "import", "people.csv", "--confirmed"]);
        app.run_ok(&["ingest"]);
        let mut run = app.spawn(&["digest", "send", "--now"]);
        wait_until(Duration::from_secs(60), || async { sink.count() >= 250 }).await;
        run.kill().unwrap(); // SIGKILL
        run.wait().unwrap();
        let at_kill = sink.count();
        assert!(
            at_kill < 1000,
            "killed too late to prove anything ({at_kill})"
        );
        let run = app.run(&["digest", "send"]);
        let messages = sink.messages();
        let received = by_recipient(&messages);
        // No one gets two. A row the dead process had marked handed over is
        // unconfirmed, not sent again: its subscriber has the digest if the
        // final dot left before the kill, else none. Every other row is sent
        // and its subscriber has exactly one.
        let rows = outbox(&app);
        assert_eq!(rows.len(), 1000);
        let mut unconfirmed = Vec::new();
        for row in &rows {
            let to = row["recipient"].as_str().unwrap();
            let got = received.get(to).map_or(0, Vec::len);
            match row["status"].as_str() {
                Some("sent") => assert_eq!(got, 1, "{to} got {got} digests"),
                Some("unconfirmed") if got <= 1 => unconfirmed.push((to.to_owned(), got)),
                _ => panic!("{to}: received {got}, outbox row {row}"),
            }
        }
        assert!(
            unconfirmed.len() <= 4,
            "at most one per send in flight: {unconfirmed:?}"
        );
        assert_eq!(run.status.code(), Some(i32::from(!unconfirmed.is_empty())));
        eprintln!(
            "killed after {at_kill} of 1000; unconfirmed (recipient, received) {unconfirmed:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn two_concurrent_now_runs_queue_each_digest_once() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "[mail]\ntransport = \"file\"\ndir = \"outbox\"\n");
        let csv: String = (0..40).map(|i| format!("r{i}@example.org,all\n")).collect();
        std::fs::write(app.path("people.csv"), csv).unwrap();
        // Both runs key their period by the minute they start in: their
        // clocks start at the same instant, early in a minute.
        app.set_now("2026-12-03T09:58:00Z");
        app.run_ok(&["subscribers", "import", "people.csv", "--confirmed"]);
        app.set_now("2026-12-03T09:59:00Z");
        app.run_ok(&["ingest"]);
        app.set_now("2026-12-03T10:00:00Z");
        let runs = [
            app.spawn(&["digest", "send", "--now"]),
            app.spawn(&["digest", "send", "--now"]),
        ];
        let outputs: Vec<String> = runs
            .into_iter()
            .map(|r| {
                let out = r.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8(out.stdout).unwrap()
            })
            .collect();
        let queued: usize = outputs
            .iter()
            .filter(|o| o.contains("queued 40 of 40"))
            .count();
        assert_eq!(queued, 1, "{outputs:?}");
        assert!(
            outputs
                .iter()
                .any(|o| o.contains("already queued by another run")),
            "{outputs:?}"
        );
        let rows = outbox(&app);
        assert_eq!(rows.len(), 40);
        assert!(rows.iter().all(|r| r["status"] == "sent"));
        assert_eq!(count_files(&app.path("outbox")), 40);
    })
    .await;
}

#[tokio::test]
async fn a_csv_with_a_bad_row_imports_nothing_and_names_the_line() {
    let db = tempfile::tempdir().unwrap();
    let app = TestApp::new(
        &format!("sqlite://{}", db.path().join("t.db").display()),
        "",
    );
    let bad = "email,categories,frequency\nann@example.org,leaflets,weekly\nbob@example.org,news;board-papers,daily\n\"eve@example.org\r\nBcc: x@y.org\",news\n";
    std::fs::write(app.path("bad.csv"), bad).unwrap();
    let out = app.run(&["subscribers", "import", "bad.csv", "--confirmed"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.csv line 4"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(
        app.json(&["subscribers", "list", "--json"]),
        serde_json::json!([])
    );
    // As Excel's "CSV UTF-8" writes it: a byte-order mark and CRLF line ends.
    let good = "\u{feff}ann@example.org,leaflets,weekly\r\nBob@Example.ORG,news;board-papers,daily\r\ncat@example.org,all\r\n";
    std::fs::write(app.path("good.csv"), good).unwrap();
    assert!(
        app.run_ok(&["subscribers", "import", "good.csv"])
            .contains("imported 3")
    );
    let list = app.json(&["subscribers", "list", "--json"]);
    assert_eq!(
        list,
        serde_json::json!([
            {"email": "Bob@example.org", "categories": ["news", "board-papers"], "frequency": "daily", "status": "pending", "refusals": 0, "suppressed_at": null},
            {"email": "ann@example.org", "categories": ["leaflets"], "frequency": "weekly", "status": "pending", "refusals": 0, "suppressed_at": null},
            {"email": "cat@example.org", "categories": ["all"], "frequency": "weekly", "status": "pending", "refusals": 0, "suppressed_at": null},
        ])
    );
}

fn queued(subscriber_id: i64, key: &str, old: Option<DateTime<Utc>>) -> QueuedDigest {
    QueuedDigest {
        message: NewMessage {
            idem_key: key.to_owned(),
            kind: "digest",
            recipient: "ann@example.org".to_owned(),
            subscriber_id: Some(subscriber_id),
            subject: "s".to_owned(),
            message: b"Subject: s\r\n\r\nbody".to_vec(),
        },
        subscriber_id,
        old_window_end: old,
    }
}

#[tokio::test]
async fn concurrent_window_claims_queue_one_digest_and_a_repeated_key_moves_no_window() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let other = db.open_another().await;
        let t0 = DateTime::parse_from_rfc3339("2025-03-24T08:00:00Z")
            .unwrap()
            .to_utc();
        let new = NewSubscriber {
            email: "ann@example.org".to_owned(),
            categories: CategoryChoice::All,
            frequency: Frequency::Weekly,
            confirmed: true,
            token_nonce: "n".to_owned(),
            consent: tidings::model::Consent::cli(None),
        };
        let id = store.add_subscriber(&new, t0).await.unwrap();
        let p1 = t0 + chrono::Duration::days(7);
        let batch = vec![queued(id, "digest/1/p1", None)];
        let (a, b) = tokio::join!(
            store.queue_digests(&batch, p1, p1),
            other.queue_digests(&batch, p1, p1)
        );
        assert_eq!(a.unwrap() + b.unwrap(), 1, "two processes, one digest");
        // The same key again for a later window: nothing queued, window unmoved.
        let p2 = p1 + chrono::Duration::days(7);
        let repeat = [queued(id, "digest/1/p1", Some(p1))];
        assert_eq!(store.queue_digests(&repeat, p2, p2).await.unwrap(), 0);
        let window = store.subscriber(id).await.unwrap().unwrap().window_end;
        assert_eq!(window, Some(p1));
        assert_eq!(store.list_outbox(false).await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn only_one_sender_hands_a_message_over_and_an_orphaned_one_is_never_claimed_again() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let other = db.open_another().await;
        let t0 = DateTime::parse_from_rfc3339("2025-03-24T08:00:00Z")
            .unwrap()
            .to_utc();
        let seconds = chrono::Duration::seconds;
        for key in ["digest/1/a", "digest/1/b"] {
            assert!(
                store
                    .enqueue(&queued(1, key, None).message, t0)
                    .await
                    .unwrap()
            );
        }
        let first = store.claim_outbox(t0, t0 + seconds(10), 10).await.unwrap();
        assert_eq!(first.len(), 2);
        // The first sender stalls past its lease; a second claims both rows again.
        let later = t0 + seconds(11);
        let second = other
            .claim_outbox(later, later + seconds(10), 10)
            .await
            .unwrap();
        assert_eq!(second.len(), 2, "an expired claim is claimable");
        let (a, b) = (first[0].id, first[1].id);
        let (mine, theirs) = tokio::join!(
            store.mark_handed_over(a, later),
            other.mark_handed_over(a, later)
        );
        assert!(
            mine.unwrap() ^ theirs.unwrap(),
            "exactly one sender may send the final dot"
        );

        // Both senders die: past the lease, the handed-over row may have been
        // delivered, so it is unconfirmed; the other one is claimed again.
        let after = later + seconds(11);
        assert_eq!(store.orphaned_to_unconfirmed(after).await.unwrap(), 1);
        let third = store
            .claim_outbox(after, after + seconds(10), 10)
            .await
            .unwrap();
        assert_eq!(third.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b]);
        let rows = store.list_outbox(true).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].id, rows[0].status.as_str()), (a, "unconfirmed"));
        // Only by its id does it go again.
        assert_eq!(store.requeue(None, after).await.unwrap(), 0);
        assert_eq!(store.requeue(Some(a), after).await.unwrap(), 1);
        let fourth = store
            .claim_outbox(after, after + seconds(10), 10)
            .await
            .unwrap();
        assert_eq!(fourth.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a]);
        assert!(
            store.mark_handed_over(a, after).await.unwrap(),
            "a fresh hand-over"
        );
    })
    .await;
}

#[tokio::test]
async fn a_suppressed_subscriber_gets_nothing_until_they_confirm_again() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let t0 = DateTime::parse_from_rfc3339("2025-03-24T08:00:00Z")
            .unwrap()
            .to_utc();
        let new = NewSubscriber {
            email: "ann@example.org".to_owned(),
            categories: CategoryChoice::All,
            frequency: Frequency::Weekly,
            confirmed: true,
            token_nonce: "n".to_owned(),
            consent: tidings::model::Consent::cli(None),
        };
        let id = store.add_subscriber(&new, t0).await.unwrap();
        let mut suppressed = Vec::new();
        for key in ["announcement/x/1", "announcement/y/1", "announcement/z/1"] {
            store
                .enqueue(&queued(id, key, None).message, t0)
                .await
                .unwrap();
            let claimed = store
                .claim_outbox(t0, t0 + chrono::Duration::seconds(10), 1)
                .await
                .unwrap();
            let refused = store
                .mark_refused(claimed[0].id, "550 5.1.1 unknown", 2, t0)
                .await
                .unwrap();
            suppressed.push(refused);
        }
        assert_eq!(
            suppressed,
            vec![None, Some("ann@example.org".to_owned()), None],
            "suppressed once, at the second"
        );
        let ann = store.subscriber(id).await.unwrap().unwrap();
        assert_eq!(
            (ann.status, ann.refusals),
            (SubscriberStatus::Suppressed, 3)
        );
        assert!(store.confirmed_subscribers().await.unwrap().is_empty());
        assert_eq!(store.count_suppressed().await.unwrap(), 1);

        let later = t0 + chrono::Duration::days(1);
        let again = store
            .request_confirmation(&new, later, later)
            .await
            .unwrap();
        assert!(again.is_some(), "subscribing again sends a confirmation");
        assert!(store.confirm_subscriber(id, later).await.unwrap());
        let ann = store.subscriber(id).await.unwrap().unwrap();
        assert_eq!(
            (ann.status, ann.refusals, ann.suppressed_at),
            (SubscriberStatus::Confirmed, 0, None)
        );
        assert_eq!(store.confirmed_subscribers().await.unwrap().len(), 1);
    })
    .await;
}

/// The digest process end to end, on PostgreSQL, where only the digest's
/// own wait for ingests (`wait_for_ingests`) can hold it: on SQLite any
/// write waits for an ingest's write lock anyway, so the mechanism is
/// tested on both backends in `store::wait_for_ingests_does_not_return_while_an_apply_is_in_progress`.
#[tokio::test]
#[ignore = "needs PostgreSQL: TIDINGS_TEST_PG"]
async fn a_digest_waits_for_an_ingest_in_progress_and_misses_none_of_its_events() {
    on_postgres(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        app.run_ok(&["ingest"]);
        // Confirmed after the ingest: its events are before Ann's first window.
        add(&app, "ann@example.org", "leaflets");
        let list = app.json(&["resources", "list", "--json", "--category", "leaflets"]);
        let (id, title) = (
            list[0]["id"].as_str().unwrap(),
            list[0]["title"].as_str().unwrap(),
        );

        // An ingest in progress, as `apply` runs one: it holds the store_meta
        // row and has stamped an event that will commit after the period's instant.
        let mut ingest = db.store.pool().begin().await.unwrap();
        sqlx::query("UPDATE store_meta SET feed_version = feed_version WHERE id = 1")
            .execute(&mut *ingest)
            .await
            .unwrap();
        #[allow(clippy::disallowed_methods)] // the test's own clock
        let stamped = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        sqlx::query(
            "INSERT INTO change_events (resource_id, source, kind, fields, at) \
             SELECT id, source, 'reappeared', '[]', $1 FROM resources WHERE id = $2",
        )
        .bind(stamped)
        .bind(id.to_owned())
        .execute(&mut *ingest)
        .await
        .unwrap();
        let mut digest = app.spawn(&["digest", "send", "--now"]);
        // Seen by the database: the digest's session waits for the row lock.
        wait_until(Duration::from_secs(30), || {
            let finished = digest.try_wait().unwrap();
            assert!(
                finished.is_none(),
                "the digest finished while the ingest had not committed: {finished:?}"
            );
            waits_for_store_meta(&db.store)
        })
        .await;
        ingest.commit().await.unwrap();
        assert!(digest.wait().unwrap().success());
        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "the ingest's event is in this period");
        let text = messages[0]["text"].as_str().unwrap();
        assert!(text.contains(title), "{text}");
    })
    .await;
}

/// Whether a session on `store`'s PostgreSQL database waits for a lock in
/// the statement `wait_for_ingests` runs (an update of store_meta).
async fn waits_for_store_meta(store: &tidings::store::Store) -> bool {
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND query LIKE 'UPDATE store_meta%'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    waiting > 0
}

/// The unsubscribe and preferences links in the messages under `folder`.
fn subscriber_links(folder: &std::path::Path) -> Vec<String> {
    let mut links = Vec::new();
    for m in crate::support::smtp::parse_messages(folder) {
        let text = m["text"].as_str().unwrap_or_default();
        for word in text.split_whitespace() {
            if word.contains("/unsubscribe/") || word.contains("/preferences/") {
                links.push(word.trim_end_matches(['.', ',', ')', '>']).to_owned());
            }
        }
    }
    links
}

/// The ids of the ingested leaflets.
fn leaflets(app: &TestApp) -> Vec<String> {
    let list = app.json(&["resources", "list", "--json", "--category", "leaflets"]);
    let list = list.as_array().unwrap().iter();
    list.map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_command_signs_links_as_the_daemon_does_or_refuses_to_send() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "[mail]\ntransport = \"file\"\ndir = \"outbox\"\n");
        add(&app, "reader@example.org", "leaflets");
        app.run_ok(&["ingest"]);
        let leaflets = leaflets(&app);
        let secret = ("TIDINGS_SECRET", "the daemon's long secret");
        let mut served = app.serve_env(&[secret]).await;
        for (env, says) in [
            (
                vec![],
                "TIDINGS_SECRET is not set, but `tidings serve` was started with it",
            ),
            (
                vec![("TIDINGS_SECRET", "another secret")],
                "TIDINGS_SECRET differs from the one `tidings serve` was started with",
            ),
        ] {
            let refused = app.run_env(&["announce", &leaflets[0]], &env);
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert_eq!(refused.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains(says), "{stderr}");
        }
        let rows = app.json(&["outbox", "list", "--json"]);
        assert_eq!(rows.as_array().unwrap().len(), 0, "nothing was queued");
        let sent = app.run_env(&["announce", &leaflets[0]], &[secret]);
        assert!(
            sent.status.success(),
            "{}",
            String::from_utf8_lossy(&sent.stderr)
        );
        let links = subscriber_links(&app.path("outbox"));
        assert_eq!(
            links.len(),
            2,
            "an unsubscribe and a preferences link: {links:?}"
        );
        for link in &links {
            get_text(link, 200).await; // works on the daemon
        }
        served.terminate();

        // A daemon without a secret: a command without one signs with the
        // same stored key; a command with one refuses.
        let _served = app.serve().await;
        let refused = app.run_env(&["announce", &leaflets[1]], &[secret]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("`tidings serve` runs without it"),
            "{stderr}"
        );
        std::fs::remove_dir_all(app.path("outbox")).unwrap();
        app.run_ok(&["announce", &leaflets[1]]);
        let links = subscriber_links(&app.path("outbox"));
        assert_eq!(links.len(), 2, "{links:?}");
        for link in &links {
            get_text(link, 200).await; // works on the daemon
        }
    })
    .await;
}

#[tokio::test]
async fn processes_without_a_secret_create_and_share_one_stored_key() {
    on_every_backend(|db| async move {
        db.migrated().await;
        let mut loading = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let url = db.url.clone();
            loading.spawn(async move {
                let store = tidings::store::Store::open(&url).await.unwrap();
                let key = tidings::mail::token::SigningKey::load(&store, None).await;
                store.close().await;
                key.unwrap().token(1, "nonce")
            });
        }
        let tokens: Vec<String> = loading.join_all().await;
        assert!(
            tokens.iter().all(|t| *t == tokens[0]),
            "eight processes at once sign alike: {tokens:?}"
        );
    })
    .await;
}
