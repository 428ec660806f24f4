// Issue 17: posts to Teams, Slack and Standard Webhooks receivers on loopback,
// exactly once per (channel, event), with Retry-After, refusals and silence.

use std::collections::HashSet;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::db::on_every_backend;
use crate::support::fixture_site::{Expected, FixtureSite};
use crate::support::receiver::{Answer, Receiver};

/// A Standard Webhooks secret: `whsec_` and base64 of 24 bytes.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The environment every command of these tests runs with: the channels' URLs and secret.
fn env_of(receiver: &Receiver) -> Vec<(String, String)> {
    vec![
        ("TEAMS_URL".into(), receiver.url("/teams")),
        ("SLACK_URL".into(), receiver.url("/slack")),
        ("HOOK_URL".into(), receiver.url("/hook")),
        ("HOOK_SECRET".into(), SECRET.into()),
    ]
}

fn run(app: &TestApp, receiver: &Receiver, args: &[&str]) -> Output {
    let env = env_of(receiver);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    app.run_env(args, &env)
}

fn run_ok(app: &TestApp, receiver: &Receiver, args: &[&str]) -> String {
    let output = run(app, receiver, args);
    assert!(
        output.status.success(),
        "tidings {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Lower-case words joined by `-`, as the site's category names become slugs.
fn slug(name: &str) -> String {
    name.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
}

fn channels_toml(slack_category: &str) -> String {
    format!(
        r#"
[mail]
retry_base_s = 1

[[channels]]
name = "teams"
kind = "teams"
url_env = "TEAMS_URL"
events = ["new", "changed", "withdrawn"]

[[channels]]
name = "slack"
kind = "slack"
url_env = "SLACK_URL"
categories = ["{slack_category}"]

[[channels]]
name = "hook"
kind = "webhook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
events = ["new", "changed", "withdrawn", "announcement"]
"#
    )
}

/// The cards' titles (the second text block of each Adaptive Card).
fn card_titles(requests: &[crate::support::receiver::Received]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            let card = &r.json()["attachments"][0]["content"];
            card["body"][1]["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Verifies every request with the reference `standardwebhooks` library
/// (installed by scripts/test.sh into tests/.pip); returns its verdicts.
fn verify_with_reference(requests: &[crate::support::receiver::Received]) -> Vec<Value> {
    let cases: Vec<Value> = requests
        .iter()
        .map(|r| {
            serde_json::json!({
                "body": r.body,
                "headers": {
                    "webhook-id": r.header("webhook-id"),
                    "webhook-timestamp": r.header("webhook-timestamp"),
                    "webhook-signature": r.header("webhook-signature"),
                },
            })
        })
        .collect();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
secret, cases = sys.argv[1], json.loads(sys.stdin.read())
out = []
for case in cases:
    try:
        out.append(Webhook(secret).verify(case["body"], case["headers"]))
    except Exception as e:
        out.append({"error": repr(e)})
print(json.dumps(out))
"#;
    let pip = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.pip");
    assert!(
        pip.join("standardwebhooks").is_dir(),
        "standardwebhooks is missing: run scripts/test.sh (pip install --target tests/.pip standardwebhooks)"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, SECRET])
        .env("PYTHONPATH", &pip)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap()
}

#[tokio::test]
async fn issue_17_v1_then_v2_posts_each_event_once_per_channel_and_category() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let receiver = Receiver::start();
        let (v1, v2) = (Expected::of("v1"), Expected::of("v2"));
        let links_v1: HashSet<&Value> = v1.entries.iter().map(|e| &e["link"]).collect();
        let new: Vec<&Value> = v2
            .entries
            .iter()
            .filter(|e| !links_v1.contains(&e["link"]))
            .collect();
        let slack_category = slug(new[0]["category"].as_str().unwrap());
        let changes = v1.changes_to(&v2);
        let app = TestApp::new(
            &db.url,
            &format!("{}{}", site.source_toml(), channels_toml(&slack_category)),
        );

        run_ok(&app, &receiver, &["ingest"]);
        for path in ["/teams", "/slack", "/hook"] {
            assert!(
                receiver.requests(path).is_empty(),
                "the baseline posts nothing to {path}"
            );
        }
        site.switch("v2");
        run_ok(&app, &receiver, &["ingest"]);
        // The missing one is withdrawn after a second run without it.
        run_ok(&app, &receiver, &["ingest"]);
        let teams = receiver.requests("/teams");
        let expected = changes.new + changes.changed + changes.gone;
        assert_eq!(teams.len() as u64, expected, "{:?}", card_titles(&teams));
        let mut titles = card_titles(&teams);
        titles.sort();
        let mut want: Vec<String> = new
            .iter()
            .map(|e| e["title"].as_str().unwrap().to_owned())
            .collect();
        for entry in &v2.entries {
            let before = v1.entries.iter().find(|e| e["link"] == entry["link"]);
            if before.is_some_and(|b| b != entry) {
                want.push(entry["title"].as_str().unwrap().to_owned());
            }
        }
        let links_v2: HashSet<&Value> = v2.entries.iter().map(|e| &e["link"]).collect();
        for gone in v1.entries.iter().filter(|e| !links_v2.contains(&e["link"])) {
            want.push(gone["title"].as_str().unwrap().to_owned());
        }
        want.sort();
        assert_eq!(titles, want);
        for request in &teams {
            let json = request.json();
            assert_eq!(json["type"], "message");
            let attachment = &json["attachments"][0];
            assert_eq!(
                attachment["contentType"],
                "application/vnd.microsoft.card.adaptive"
            );
            assert_eq!(attachment["content"]["version"], "1.4");
            let actions = attachment["content"]["actions"].as_array().unwrap();
            assert_eq!(actions[0]["title"], "Open");
            assert_eq!(actions[0]["type"], "Action.OpenUrl");
            assert_eq!(
                request.header("idempotency-key"),
                request.header("webhook-id")
            );
        }
        let changed_cards = teams
            .iter()
            .filter(|r| r.body.contains("Changed: "))
            .count() as u64;
        assert_eq!(changed_cards, changes.changed, "a change says what changed");
        let keys: HashSet<_> = teams.iter().map(|r| r.header("idempotency-key")).collect();
        assert_eq!(keys.len(), teams.len(), "one key per post");

        let slack = receiver.requests("/slack");
        let slack_want = new
            .iter()
            .filter(|e| slug(e["category"].as_str().unwrap()) == slack_category)
            .count();
        assert_eq!(slack.len(), slack_want, "only new ones of its category");
        assert!(slack[0].json()["blocks"].as_array().unwrap().len() >= 4);

        let hook = receiver.requests("/hook");
        assert_eq!(hook.len() as u64, expected);
        let types: HashSet<String> = hook
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap().to_owned())
            .collect();
        let want_types: HashSet<String> =
            ["resource.new", "resource.changed", "resource.withdrawn"]
                .map(String::from)
                .into();
        assert_eq!(types, want_types);
        for (request, verdict) in hook.iter().zip(verify_with_reference(&hook)) {
            assert_eq!(
                verdict,
                request.json(),
                "the reference library accepts the signature"
            );
        }

        // Nothing happens again: a repeat run and a send post nothing.
        run_ok(&app, &receiver, &["ingest"]);
        run_ok(&app, &receiver, &["channels", "send"]);
        assert_eq!(receiver.requests("/teams").len() as u64, expected);
        assert_eq!(receiver.requests("/slack").len(), slack_want);
        assert_eq!(receiver.requests("/hook").len() as u64, expected);
    })
    .await;
}

/// An app on the seed library with one Teams channel (announcements too).
fn seeded(db_url: &str, receiver: &Receiver) -> TestApp {
    let app = TestApp::new(
        db_url,
        r#"
[mail]
retry_base_s = 1
max_attempts = 3

[[channels]]
name = "teams"
kind = "teams"
url_env = "TEAMS_URL"
"#,
    );
    run_ok(&app, receiver, &["ingest"]);
    app
}

fn first_resource(app: &TestApp, receiver: &Receiver) -> String {
    let rows: Value =
        serde_json::from_str(&run_ok(app, receiver, &["resources", "list", "--json"])).unwrap();
    rows[0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn issue_17_retry_after_is_honoured_and_the_retry_carries_the_same_key() {
    on_every_backend(|db| async move {
        let receiver = Receiver::start();
        let app = seeded(&db.url, &receiver);
        let id = first_resource(&app, &receiver);
        receiver.script(
            "/teams",
            &[Answer::TooMany(2), Answer::Status(503, String::new())],
        );
        run_ok(&app, &receiver, &["announce", &id]);
        assert_eq!(receiver.requests("/teams").len(), 1, "the 429 waits");
        let out = run_ok(&app, &receiver, &["channels", "send"]);
        assert!(out.contains("1 sent"), "{out}");
        let posts = receiver.requests("/teams");
        assert_eq!(
            posts.len(),
            3,
            "429, 503 (no Retry-After: the backoff), 200"
        );
        assert!(
            posts[1].at.duration_since(posts[0].at) >= Duration::from_secs(2),
            "Retry-After: 2 was honoured: {:?}",
            posts[1].at.duration_since(posts[0].at)
        );
        let keys: HashSet<_> = posts.iter().map(|r| r.header("idempotency-key")).collect();
        assert_eq!(keys.len(), 1, "one post, one key: {keys:?}");
        assert!(posts[2].body.contains("Announcement"), "{}", posts[2].body);
    })
    .await;
}

#[tokio::test]
async fn issue_17_a_refusal_fails_at_once_and_silence_is_unconfirmed_never_reposted() {
    on_every_backend(|db| async move {
        let receiver = Receiver::start();
        let app = seeded(&db.url, &receiver);
        let rows: Value =
            serde_json::from_str(&run_ok(&app, &receiver, &["resources", "list", "--json"]))
                .unwrap();
        let (first, second) = (
            rows[0]["id"].as_str().unwrap().to_owned(),
            rows[1]["id"].as_str().unwrap().to_owned(),
        );
        receiver.script(
            "/teams",
            &[
                Answer::Status(400, "Bad card: body too large".into()),
                Answer::Close,
            ],
        );
        run_ok(&app, &receiver, &["announce", &first]);
        run_ok(&app, &receiver, &["announce", &second]);
        assert_eq!(receiver.requests("/teams").len(), 2);
        let sent = run(&app, &receiver, &["channels", "send"]);
        assert_eq!(
            receiver.requests("/teams").len(),
            2,
            "neither is posted again"
        );
        let said = String::from_utf8_lossy(&sent.stdout);
        assert!(
            said.contains("0 sent, 0 retrying, 0 failed, 0 unconfirmed"),
            "{said}"
        );
        let listed = run_ok(&app, &receiver, &["outbox", "list", "--json"]);
        let rows: Value = serde_json::from_str(&listed).unwrap();
        let posts: Vec<&Value> = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "channel")
            .collect();
        let status = |s: &str| posts.iter().find(|p| p["status"] == s).copied();
        let failed = status("failed").unwrap_or_else(|| panic!("{rows}"));
        assert!(
            failed["last_error"]
                .as_str()
                .unwrap()
                .contains("400 Bad Request: Bad card: body too large"),
            "{failed}"
        );
        assert_eq!(failed["attempts"], 1);
        assert!(status("unconfirmed").is_some(), "{rows}");
    })
    .await;
}

#[tokio::test]
async fn issue_17_channels_list_hides_the_url_and_test_posts_a_marked_card() {
    let receiver = Receiver::start();
    let app = seeded("sqlite://tidings.db", &receiver);
    let listed = run_ok(&app, &receiver, &["channels", "list", "--json"]);
    let rows: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows[0]["name"], "teams");
    assert_eq!(rows[0]["url_env"], "TEAMS_URL");
    assert_eq!(
        rows[0]["events"],
        serde_json::json!(["new", "announcement"])
    );
    assert!(!listed.contains("/teams"), "the URL is a secret: {listed}");

    run_ok(&app, &receiver, &["channels", "test", "teams"]);
    let posts = receiver.requests("/teams");
    assert_eq!(posts.len(), 1);
    let card = &posts[0].json()["attachments"][0]["content"];
    let marker = card["body"][0]["text"].as_str().unwrap();
    assert!(marker.starts_with("[TEST]"), "{marker}");

    let unset = app.run(&["check"]);
    assert_eq!(unset.status.code(), Some(1), "{unset:?}");
    let said = String::from_utf8_lossy(&unset.stderr);
    assert!(
        said.contains("channels[0].url_env: $TEAMS_URL is not set"),
        "{said}"
    );

    let unknown = run(&app, &receiver, &["channels", "test", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no channel named \"nope\""));
}

#[tokio::test]
async fn issue_17_serve_posts_a_queued_retry_and_counts_it_in_metrics() {
    let receiver = Receiver::start();
    let app = seeded("sqlite://tidings.db", &receiver);
    let id = first_resource(&app, &receiver);
    receiver.script("/teams", &[Answer::Status(500, "busy".into())]);
    run_ok(&app, &receiver, &["announce", &id]);
    assert_eq!(
        receiver.requests("/teams").len(),
        1,
        "the 500 waits for a retry"
    );
    let env = env_of(&receiver);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let _served = app.serve_env(&env).await;
    crate::support::app::wait_until(Duration::from_secs(20), || async {
        receiver.requests("/teams").len() == 2
    })
    .await;
    let sent = r#"tidings_channel_posts_total{channel="teams",outcome="sent"} 1"#;
    crate::support::app::wait_until(Duration::from_secs(10), || async {
        let metrics = crate::support::http()
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap();
        metrics.text().await.unwrap().contains(sent)
    })
    .await;
    let metrics = crate::support::http()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("# TYPE tidings_channel_posts_total counter"),
        "{text}"
    );
}
