// Refused mail: an address the server keeps refusing is suppressed and shown
// as such; mail that keeps failing alerts the admins once, and once more when
// it goes through again. Against aiosmtpd refusing chosen recipients.

use reqwest::header::COOKIE;
use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::db::on_every_backend;
use crate::support::http;
use crate::support::smtp::{Maildir, header, smtp_config};
use crate::web::{PASSWORD, sign_in};

const GONE: &str =
    "gone@example.org 550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown";

fn add(app: &TestApp, email: &str) {
    app.run_ok(&[
        "subscribers",
        "add",
        email,
        "--categories",
        "leaflets",
        "--confirmed",
    ]);
}

fn subscriber(app: &TestApp, email: &str) -> Value {
    let list = app.json(&["subscribers", "list", "--json"]);
    let found = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == email);
    found
        .unwrap_or_else(|| panic!("no {email} in {list}"))
        .clone()
}

fn rows_for(app: &TestApp, email: &str) -> Vec<Value> {
    let list = app.json(&["outbox", "list", "--json"]);
    let rows = list.as_array().unwrap().iter();
    rows.filter(|r| r["recipient"] == email).cloned().collect()
}

/// The id of a resource in the Leaflets category.
fn a_leaflet(app: &TestApp) -> String {
    let list = app.json(&["resources", "list", "--json", "--category", "leaflets"]);
    list[0]["id"]
        .as_str()
        .expect("a leaflet was ingested")
        .to_owned()
}

#[tokio::test]
async fn an_address_refused_twice_is_suppressed_shown_and_left_out_of_everything() {
    on_every_backend(|db| async move {
        let sink = Maildir::start_with_rules();
        sink.set_rules(GONE);
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), "suppress_after = 2\n"));
        add(&app, "ann@example.org");
        add(&app, "gone@example.org");
        app.run_ok(&["ingest"]);
        let leaflet = a_leaflet(&app);

        let first = app.run(&["announce", &leaflet]);
        assert_eq!(first.status.code(), Some(1), "one message failed");
        let gone = subscriber(&app, "gone@example.org");
        assert_eq!(
            (gone["status"].as_str(), gone["refusals"].as_i64()),
            (Some("confirmed"), Some(1))
        );
        let row = &rows_for(&app, "gone@example.org")[0];
        assert_eq!(row["status"], "failed");
        assert!(
            row["last_error"].as_str().unwrap().contains("User unknown"),
            "{row}"
        );

        app.run(&["announce", &leaflet, "--force"]);
        let gone = subscriber(&app, "gone@example.org");
        assert_eq!(gone["status"], "suppressed", "{gone}");
        assert_eq!(gone["refusals"], 2);
        assert!(gone["suppressed_at"].is_string());
        assert_eq!(subscriber(&app, "ann@example.org")["refusals"], 0);
        let listed = app.run_ok(&["subscribers", "list"]);
        let line = listed.lines().find(|l| l.starts_with("gone@")).unwrap();
        assert!(
            line.contains("suppressed") && line.contains("after 2 refusals"),
            "{line}"
        );

        let third = app.run_ok(&["announce", &leaflet, "--force"]);
        assert!(third.contains("queued for 1 subscriber(s)"), "{third}");
        app.run_ok(&["digest", "send", "--now"]);
        assert_eq!(
            rows_for(&app, "gone@example.org").len(),
            2,
            "nothing after suppression"
        );
        let to_ann = rows_for(&app, "ann@example.org");
        assert_eq!(
            to_ann.len(),
            4,
            "three announcements and a digest: {to_ann:?}"
        );
        assert!(to_ann.iter().all(|r| r["status"] == "sent"));
        assert_eq!(sink.count(), 4);

        let _served = app.serve_env(&[("TIDINGS_ADMIN_PASSWORD", PASSWORD)]).await;
        let jar = sign_in(&app).await;
        let admin = http()
            .get(app.url("/admin"))
            .header(COOKIE, &jar)
            .send()
            .await
            .unwrap();
        let page = admin.text().await.unwrap();
        let section = page
            .split("id=\"suppressed\"")
            .nth(1)
            .expect("a suppressed section");
        let section = section.split("<h2").next().unwrap();
        assert!(
            section.contains("gone@example.org") && !section.contains("ann@example.org"),
            "{section}"
        );
        let metrics = http()
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("\ntidings_subscribers_suppressed 1\n"),
            "{metrics}"
        );
    })
    .await;
}

#[tokio::test]
async fn refusals_that_blame_the_relay_suppress_nobody_and_alert_the_admins_once() {
    on_every_backend(|db| async move {
        let sink = Maildir::start_with_rules();
        // The relay was set up to refuse relaying to the subscribers' domain;
        // the admins' own domain still gets mail.
        sink.set_rules("*@example.org 554 5.7.1 Relay access denied\n");
        let extra =
            "suppress_after = 1\nalert_after_failed_sends = 5\nadmins = [\"ops@tht.example\"]\n";
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), extra));
        for i in 0..8 {
            add(&app, &format!("reader{i}@example.org"));
        }
        app.run_ok(&["ingest"]);
        let run = app.run(&["digest", "send", "--now"]);
        assert_eq!(run.status.code(), Some(1));
        let list = app.json(&["subscribers", "list", "--json"]);
        for s in list.as_array().unwrap() {
            assert_eq!(
                (s["status"].as_str(), s["refusals"].as_i64()),
                (Some("confirmed"), Some(0)),
                "{s}"
            );
        }
        let alerts = sink.messages();
        assert_eq!(
            alerts.len(),
            1,
            "one alert for eight failures, not one each"
        );
        assert_eq!(header(&alerts[0], "to"), "ops@tht.example");
        assert_eq!(header(&alerts[0], "x-tidings-kind"), "alert");
        assert!(header(&alerts[0], "subject").ends_with("mail keeps failing"));
        let text = alerts[0]["text"].as_str().unwrap();
        assert!(
            text.contains("the last 5 sends in a row") && text.contains("Relay access denied"),
            "{text}"
        );

        sink.set_rules("");
        app.run_ok(&["outbox", "retry", "--failed"]);
        let all = sink.messages();
        let alerts: Vec<&Value> = all
            .iter()
            .filter(|m| header(m, "x-tidings-kind") == "alert")
            .collect();
        assert_eq!(alerts.len(), 2, "one more when mail goes through");
        assert!(
            alerts
                .iter()
                .any(|m| header(m, "subject").ends_with("mail goes through again"))
        );
        assert_eq!(
            all.len() - alerts.len(),
            8,
            "every digest went out on the retry"
        );
        app.run_ok(&["outbox", "retry", "--failed"]);
        assert_eq!(sink.count(), 10, "nothing more: the alert is cleared once");
    })
    .await;
}

/// Alert emails received, oldest first (by when the server wrote them).
fn alerts_in_order(sink: &Maildir) -> Vec<String> {
    let mut alerts: Vec<(u64, String)> = sink
        .messages()
        .iter()
        .filter(|m| header(m, "x-tidings-kind") == "alert")
        .map(|m| {
            (
                arrival(m["file"].as_str().unwrap()),
                header(m, "subject").to_owned(),
            )
        })
        .collect();
    alerts.sort();
    alerts.into_iter().map(|(_, subject)| subject).collect()
}

/// The sink's arrival counter in a Maildir file name
/// (`SECONDS.MMICROSP{pid}Q{count}.HOST`, Python's `mailbox.Maildir`): one
/// sink process numbers its messages 1, 2, 3…, where two files' times may tie.
fn arrival(file: &str) -> u64 {
    let name = std::path::Path::new(file)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let after_q = &name[name.find('Q').expect("a Maildir name with Q{count}") + 1..];
    let digits: String = after_q.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("the arrival counter")
}

#[tokio::test]
async fn greylisted_recipients_are_retried_without_alerting_anyone() {
    on_every_backend(|db| async move {
        let sink = Maildir::start_with_rules();
        // Greylisting: every subscriber is told "try again later" at first.
        sink.set_rules("reader*@example.org 451 4.7.1 Greylisted, please try again later\n");
        let extra = "alert_after_failed_sends = 5\nadmins = [\"ops@tht.example\"]\n";
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), extra));
        for i in 0..20 {
            add(&app, &format!("reader{i}@example.org"));
        }
        app.run_ok(&["ingest"]);
        let first = app.run(&["digest", "send", "--now"]);
        assert_eq!(first.status.code(), Some(1), "20 digests wait for a retry");
        assert_eq!(sink.count(), 0);
        sink.set_rules("");
        crate::support::app::wait_until(std::time::Duration::from_secs(60), || async {
            app.run(&["digest", "send"]);
            sink.count() >= 20
        })
        .await;
        let rows = app.json(&["outbox", "list", "--json"]);
        let kinds: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.iter().all(|k| *k == "digest"),
            "no alert was queued: {kinds:?}"
        );
        assert_eq!(kinds.len(), 20);
        assert!(alerts_in_order(&sink).is_empty());
        assert_eq!(sink.count(), 20, "each digest once");
    })
    .await;
}

#[tokio::test]
async fn a_relay_down_then_up_raises_one_alert_and_one_recovery_last() {
    on_every_backend(|db| async move {
        // The configured relay refuses connections: its port is held, unlistened.
        let (_down, port) = crate::support::refusing_port();
        let url = format!("smtp://127.0.0.1:{port}");
        let extra = "alert_after_failed_sends = 3\nadmins = [\"ops@tht.example\"]\n";
        let app = TestApp::new(&db.url, &smtp_config(&url, extra));
        for i in 0..6 {
            add(&app, &format!("reader{i}@example.org"));
        }
        app.run_ok(&["ingest"]);
        let down = app.run(&["digest", "send", "--now"]);
        assert_eq!(down.status.code(), Some(1), "nothing could be sent");
        // The relay is back (at its new address, as TIDINGS_SMTP_URL says).
        let sink = Maildir::start();
        let up = [("TIDINGS_SMTP_URL", sink.url())];
        let up: Vec<(&str, &str)> = up.iter().map(|(k, v)| (*k, v.as_str())).collect();
        crate::support::app::wait_until(std::time::Duration::from_secs(60), || async {
            app.run_env(&["digest", "send"], &up);
            sink.count() >= 8
        })
        .await;
        assert_eq!(
            alerts_in_order(&sink),
            [
                "Test Library: mail keeps failing",
                "Test Library: mail goes through again"
            ],
            "one raise, then one recovery, which is the last word"
        );
        assert_eq!(sink.count(), 8, "six digests and two alerts");
        app.run_env(&["digest", "send"], &up);
        assert_eq!(sink.count(), 8, "nothing more");
    })
    .await;
}
