// Announcements through the CLI, the API and automatically on ingest, received
// by aiosmtpd and read with Python's mail parser: once unless forced, hostile
// titles and notes arrive safely, a source's first run announces nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{TestApp, wait_until};
use crate::support::db::on_every_backend;
use crate::support::http;
use crate::support::smtp::{Maildir, header, smtp_config};

const TOKEN: &str = "s3cret-admin-token";

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

/// The id of the stored resource whose title starts with `prefix`.
fn resource_id(app: &TestApp, prefix: &str) -> String {
    let list = app.json(&["resources", "list", "--json"]);
    let found = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"].as_str().unwrap().starts_with(prefix));
    found.unwrap_or_else(|| panic!("no resource {prefix:?}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_cli_previews_announces_once_and_again_only_when_forced() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        add(&app, "ann@example.org", "leaflets");
        add(&app, "bob@example.org", "news");
        add(&app, "cat@example.org", "all");
        app.run_ok(&["ingest"]);
        let id = resource_id(&app, "OCEAN");
        let dry = app.run_ok(&["announce", &id, "--dry-run", "--message", "Please share"]);
        assert!(dry.starts_with("Subject: New in Leaflets: OCEAN"), "{dry}");
        assert!(dry.contains("Please share"), "{dry}");
        assert!(
            dry.contains("2 confirmed subscriber(s) of Leaflets would get this email"),
            "{dry}"
        );
        assert_eq!(sink.count(), 0, "a dry run sends nothing");

        let out = app.run_ok(&["announce", &id, "--message", "Please share"]);
        assert!(out.contains("queued for 2 subscriber(s)"), "{out}");
        let messages = sink.messages();
        let mut to: Vec<&str> = messages.iter().map(|m| header(m, "to")).collect();
        to.sort_unstable();
        assert_eq!(to, ["ann@example.org", "cat@example.org"]);
        for m in &messages {
            assert_eq!(header(m, "x-tidings-kind"), "announcement");
            assert_eq!(
                header(m, "list-unsubscribe-post"),
                "List-Unsubscribe=One-Click"
            );
            assert!(header(m, "list-unsubscribe").contains("/unsubscribe/"));
            assert!(m["text"].as_str().unwrap().contains("Please share"));
        }

        let again = app.run(&["announce", &id]);
        assert_eq!(again.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert!(stderr.contains("already announced"), "{stderr}");
        assert_eq!(sink.count(), 2);

        app.run_ok(&["announce", &id, "--force"]);
        assert_eq!(sink.count(), 4, "forced: everyone once more");
        let unknown = app.run(&["announce", "0000000000000000"]);
        assert_eq!(unknown.status.code(), Some(1));
    })
    .await;
}

async fn post(app: &TestApp, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = http()
        .post(app.url("/api/announcements"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_api_checks_its_token_and_announces_once_unless_forced() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        add(&app, "ann@example.org", "leaflets");
        app.run_ok(&["ingest"]);
        let id = resource_id(&app, "OCEAN");
        // A title and a note with CR/LF, markup and ampersands.
        let evil = "Leaflet <script>alert(1)</script> & co\r\nBcc: victim@example.org";
        let store = db.open_another().await;
        sqlx::query("UPDATE resources SET title = $1 WHERE id = $2")
            .bind(evil).bind(&id).execute(store.pool()).await.unwrap();
        let _served = app.serve_env(&[("TIDINGS_ADMIN_TOKEN", TOKEN)]).await;
        let body = json!({ "resource_id": id, "message": "Read this\r\nBcc: x@example.org <b>now</b> & then" });

        assert_eq!(post(&app, None, body.clone()).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(post(&app, Some("wrong"), body.clone()).await.0, StatusCode::UNAUTHORIZED);
        let bad = http().post(app.url("/api/announcements")).bearer_auth(TOKEN).body("{not json").send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let dry_run = json!({ "resource_id": id, "dry_run": true }).to_string();
        for scheme in ["bearer", "BEARER"] {
            let r = http().post(app.url("/api/announcements")).header("authorization", format!("{scheme} {TOKEN}"))
                .header("content-type", "application/json").body(dry_run.clone()).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "the scheme {scheme} is case-insensitive (RFC 9110)");
        }
        let (status, _) = post(&app, Some(TOKEN), json!({ "resource_id": "0000000000000000" })).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let mut dry = body.clone();
        dry["dry_run"] = json!(true);
        let (status, preview) = post(&app, Some(TOKEN), dry).await;
        assert_eq!(status, StatusCode::OK, "{preview}");
        assert_eq!(preview["recipients"], 1);
        assert!(preview["html"].as_str().unwrap().contains("&lt;script&gt;"));

        let (status, queued) = post(&app, Some(TOKEN), body.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
        assert_eq!(queued["recipients"], 1);
        let (status, _) = post(&app, Some(TOKEN), body.clone()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let mut forced = body.clone();
        forced["force"] = json!(true);
        assert_eq!(post(&app, Some(TOKEN), forced).await.0, StatusCode::ACCEPTED);

        wait_until(Duration::from_secs(30), || async { sink.count() >= 2 }).await;
        for m in sink.messages() {
            check_hostile_mail(&m);
        }
    })
    .await;
}

fn check_hostile_mail(m: &Value) {
    assert_eq!(header(m, "x-tidings-kind"), "announcement");
    let subject = header(m, "subject");
    assert!(
        subject.contains("<script>alert(1)</script> & co Bcc: victim@example.org"),
        "{subject}"
    );
    let names = m["header_names"].as_array().unwrap();
    assert!(!names.contains(&Value::from("bcc")), "{names:?}");
    let html = m["html"].as_str().unwrap();
    assert!(
        html.contains("Leaflet &lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;now&lt;/b&gt; &amp; then"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("<b>now"),
        "{html}"
    );
    let text = m["text"].as_str().unwrap();
    assert!(text.contains("<script>alert(1)</script> & co"), "{text}");
}

#[tokio::test]
async fn the_api_is_off_without_a_token() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let app = TestApp::new(&url, "");
    let _served = app.serve().await;
    let (status, _) = post(&app, Some(TOKEN), json!({ "resource_id": "x" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

const CATEGORIES: &str = "[[categories]]\nname = \"Leaflets\"\nmatch = [\"leaflet\", \"support\", \"safe\"]\nannounce = true\n\
    [[categories]]\nname = \"News\"\nmatch = [\"news\", \"opening\", \"launch\", \"clinic\"]\n";

#[tokio::test]
async fn new_leaflets_are_announced_once_but_never_on_the_first_run() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), CATEGORIES));
        add(&app, "ann@example.org", "leaflets");
        add(&app, "bob@example.org", "news");
        let first = app.json(&["ingest", "--json"]);
        assert_eq!(first["sources"][0]["announced"], 0, "{first}");
        assert_eq!(sink.count(), 0, "the first run is a baseline");
        std::fs::write(
            app.path("seeds/more.txt"),
            "More\n\nIntro.\n\nMore\n\nA new parents leaflet\nAbout parents.\n\n\nNews: a new clinic opens\nA clinic.\n",
        )
        .unwrap();
        let second = app.json(&["ingest", "--json"]);
        assert_eq!(second["sources"][0]["announced"], 1, "{second}");
        let messages = sink.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(header(&messages[0], "to"), "ann@example.org");
        assert_eq!(header(&messages[0], "subject"), "New in Leaflets: A new parents leaflet");
        app.run_ok(&["ingest"]);
        assert_eq!(sink.count(), 1, "announced once");
        let id = resource_id(&app, "A new parents leaflet");
        let again = app.run(&["announce", &id]);
        assert_eq!(again.status.code(), Some(1), "the automatic announcement counts");
    })
    .await;
}
