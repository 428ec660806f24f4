// Issue 19, parts well-kept crates do: one address parser (lettre's) from
// config to send, cookies through axum-extra's jar, request spans in the log.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderValue, SET_COOKIE};

use crate::support::app::{TestApp, wait_until};
use crate::support::http;
use crate::support::smtp::{Maildir, header};
use crate::web::{form_of, post_form};

/// A `[mail]` section sending to `sink` from `from`.
fn mail_from(sink: &Maildir, from: &str, extra: &str) -> String {
    format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_url = \"{}\"\nfrom = \"{from}\"\ntimeout_s = 2\nretry_base_s = 1\n{extra}",
        sink.url()
    )
}

#[test]
fn issue_19_check_refuses_a_from_that_no_send_could_use() {
    let app = TestApp::new(
        "sqlite://tidings.db",
        "[mail]\nfrom = \"Library <news@@example.org>\"\nreply_to = \"Help <help@example..org>\"\n\
         admins = [\"Ops <ops@example.org>\", \"ops@@example.org\"]\n",
    );
    let output = app.run(&["check"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mail.from"), "{stderr}");
    assert!(stderr.contains("mail.reply_to"), "{stderr}");
    assert!(stderr.contains("mail.admins[1]"), "{stderr}");
    assert!(
        !stderr.contains("mail.admins[0]"),
        "a named mailbox is a good admin: {stderr}"
    );
}

#[tokio::test]
async fn issue_19_sign_up_refuses_an_address_and_stores_nothing() {
    let sink = Maildir::start();
    let app = TestApp::new(
        "sqlite://tidings.db",
        &mail_from(&sink, "news@example.org", ""),
    );
    app.run_ok(&["ingest"]);
    let _served = app.serve().await;
    let (csrf, jar) = form_of(&app.url("/"), "").await;
    for bad in [
        "reader%40%40example.org",
        "Reader+%3Creader%40example.org%3E",
    ] {
        let body = format!("csrf={csrf}&email={bad}&categories=all&frequency=weekly");
        let r = post_form(&app.url("/subscribe"), &jar, &body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Enter an email address like name@example.org."),
            "{bad}"
        );
    }
    let list = app.json(&["subscribers", "list", "--json"]);
    assert_eq!(list, serde_json::json!([]), "nobody was stored");
    let cli = app.run(&[
        "subscribers",
        "add",
        "reader@@example.org",
        "--categories",
        "all",
    ]);
    assert!(!cli.status.success(), "the CLI refuses it too");
    let said = String::from_utf8_lossy(&cli.stderr);
    assert!(said.contains("is not an email address"), "{said}");
}

#[tokio::test]
async fn issue_19_a_display_name_from_and_reply_to_reach_the_reader() {
    let sink = Maildir::start();
    let app = TestApp::new(
        "sqlite://tidings.db",
        &mail_from(
            &sink,
            "Tidings Library <News@Example.ORG>",
            "reply_to = \"\\\"Help, Desk\\\" <help@example.org>\"\n",
        ),
    );
    app.run_ok(&["check"]);
    app.run_ok(&[
        "subscribers",
        "add",
        "Reader@Example.org",
        "--categories",
        "all",
        "--confirmed",
    ]);
    app.run_ok(&["ingest"]);
    app.run_ok(&["digest", "send", "--now"]);
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(header(m, "from"), "Tidings Library <News@example.org>");
    assert_eq!(header(m, "reply-to"), "\"Help, Desk\" <help@example.org>");
    assert_eq!(header(m, "to"), "Reader@example.org");
}

#[tokio::test]
async fn issue_19_a_malformed_cookie_header_is_answered_not_a_500() {
    let app = TestApp::new("sqlite://tidings.db", "");
    let _served = app
        .serve_env(&[("TIDINGS_ADMIN_PASSWORD", "correct horse battery staple")])
        .await;
    let no_redirects = crate::web::no_redirects();
    let malformed: [&[u8]; 6] = [
        b"tidings_csrf",
        b"=;;;=; ;",
        b"tidings_csrf=%zz%; tidings_admin=\"unterminated",
        b"tidings_admin=\xff\xfe; tidings_csrf=\xc3",
        b"tidings_csrf=0123456789abcdef0123456789abcdef=extra",
        b"tidings_admin=; tidings_admin=; tidings_admin",
    ];
    for cookie in malformed {
        let cookie = HeaderValue::from_bytes(cookie).unwrap();
        let page = http()
            .get(app.url("/"))
            .header(COOKIE, cookie.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{cookie:?}");
        assert!(
            page.headers()
                .get_all(SET_COOKIE)
                .iter()
                .any(|c| c.to_str().unwrap().starts_with("tidings_csrf=")),
            "a fresh CSRF cookie for {cookie:?}"
        );
        let admin = no_redirects
            .get(app.url("/admin"))
            .header(COOKIE, cookie.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(admin.status(), StatusCode::SEE_OTHER, "{cookie:?}");
        let form = no_redirects
            .post(app.url("/subscribe"))
            .header(COOKIE, cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("csrf=x&email=a%40example.org&categories=all&frequency=weekly")
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), StatusCode::FORBIDDEN, "{cookie:?}");
    }
}

/// A browser lists the cookie with the longer path first (RFC 6265 §5.4);
/// a second `tidings_csrf` after it (one set for a parent path, or tossed in
/// by a sibling site) must not replace the form's own.
#[tokio::test]
async fn issue_19_of_two_cookies_with_one_name_the_first_counts() {
    let app = TestApp::new("sqlite://tidings.db", "");
    app.run_ok(&["ingest"]);
    let _served = app.serve().await;
    let (csrf, jar) = form_of(&app.url("/"), "").await;
    let other = "tidings_csrf=0123456789abcdef0123456789abcdef";
    let body = format!("csrf={csrf}&email=reader%40example.org&categories=all&frequency=weekly");
    let first = post_form(&app.url("/subscribe"), &format!("{jar}; {other}"), &body).await;
    assert_eq!(
        first.status(),
        StatusCode::OK,
        "the form's own cookie, listed first"
    );
    let last = post_form(&app.url("/subscribe"), &format!("{other}; {jar}"), &body).await;
    assert_eq!(
        last.status(),
        StatusCode::FORBIDDEN,
        "another cookie, listed first"
    );
}

/// The attributes of the `Set-Cookie` for `name` in `response`, lower-cased, split at `;`.
fn cookie_attributes(response: &reqwest::Response, name: &str) -> Vec<String> {
    let set = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set"));
    set.split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn issue_19_cookies_are_http_only_strict_scoped_and_secure_on_https() {
    let app = TestApp::new("sqlite://tidings.db", "");
    let _plain_served = app.serve().await;
    let plain = http().get(app.url("/")).send().await.unwrap();
    let attributes = cookie_attributes(&plain, "tidings_csrf");
    for wanted in ["httponly", "samesite=strict", "path=/", "max-age=86400"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "{wanted}: {attributes:?}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "not Secure on http: {attributes:?}"
    );
    let app = TestApp::new("sqlite://tidings.db", "");
    let https = "[site]\nbase_url = \"https://library.example/news/\"\n[database]\nurl = \"sqlite://tidings.db\"\n\
         [server]\nlisten = \"127.0.0.1:0\"\n";
    std::fs::write(app.path("tidings.toml"), https).unwrap();
    let _served = app.serve().await;
    let secure = http().get(app.url("/")).send().await.unwrap();
    let attributes = cookie_attributes(&secure, "tidings_csrf");
    for wanted in ["httponly", "samesite=strict", "path=/news/", "secure"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "{wanted}: {attributes:?}"
        );
    }
}

/// `tidings --log-format json serve` in `app`'s folder, its stderr lines sent to the receiver.
fn serve_with_json_logs(app: &TestApp) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--ready-file",
            &app.ready_file(),
        ])
        .current_dir(app.path(""))
        .env_remove("TIDINGS_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    (child, received)
}

/// The first JSON log line from `lines` for which `wanted` holds, within 20 s.
fn log_line(
    lines: &mpsc::Receiver<String>,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the log line arrives within 20 s");
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            panic!("a log line that is not JSON: {line}");
        };
        if wanted(&value) {
            return value;
        }
    }
}

#[tokio::test]
async fn issue_19_each_request_is_logged_in_its_span_with_route_and_status() {
    let app = TestApp::new("sqlite://tidings.db", "");
    // A template that cannot render: `/` fails with a 500, logged in its span.
    std::fs::create_dir(app.path("templates")).unwrap();
    std::fs::write(app.path("templates/index.html"), "{% if %}").unwrap();
    let (mut child, lines) = serve_with_json_logs(&app);
    app.attach(&mut child).await;
    let feed = http()
        .get(app.url("/feeds/nosuch.rss?token=secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), StatusCode::NOT_FOUND);
    let index = http().get(app.url("/")).send().await.unwrap();
    assert_eq!(index.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let is_request = |v: &serde_json::Value, path: &str| {
        v["message"] == "request finished" && v["span"]["matched_path"] == path
    };
    let feed_line = log_line(&lines, |v| is_request(v, "/feeds/{file}"));
    assert_eq!(feed_line["span"]["name"], "request");
    assert_eq!(feed_line["span"]["method"], "GET");
    assert_eq!(feed_line["span"]["status"], 404);
    assert!(feed_line["span"]["latency_ms"].is_u64(), "{feed_line}");
    assert!(!feed_line.to_string().contains("secret"), "{feed_line}");
    let failed = log_line(&lines, |v| v["message"] == "request failed");
    assert_eq!(failed["level"], "ERROR");
    assert_eq!(failed["span"]["name"], "request", "{failed}");
    assert_eq!(failed["span"]["matched_path"], "/", "{failed}");
    let index_line = log_line(&lines, |v| is_request(v, "/"));
    assert_eq!(index_line["span"]["status"], 500);
    let _ = child.kill();
    let _ = child.wait();
}

/// `{sample name: its family's type}` of `/metrics` as the Prometheus
/// project's Python parser of the text format reads it.
fn metric_types(text: &str) -> std::collections::BTreeMap<String, String> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out[s.name] = family.type
print(json.dumps(out))
"#;
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3-prometheus-client is installed (scripts/test.sh installs it)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused /metrics:\n{text}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Dashboards read these names with these types; a change of encoder (such
/// as prometheus-client's OpenMetrics one, see Cargo.toml) must keep both.
#[tokio::test]
async fn issue_19_metrics_keep_their_names_and_types() {
    let app = TestApp::new("sqlite://tidings.db", "");
    let _served = app.serve().await;
    wait_until(Duration::from_secs(20), || async {
        let feed = http().get(app.url("/feeds/all.rss")).send().await.unwrap();
        feed.text().await.unwrap().matches("<item>").count() == 9
    })
    .await;
    let metrics = http().get(app.url("/metrics")).send().await.unwrap();
    let types = metric_types(&metrics.text().await.unwrap());
    for (name, kind) in [
        ("tidings_ingest_runs_total", "counter"),
        ("tidings_ingest_entries_seen", "gauge"),
        ("tidings_change_events_total", "counter"),
        ("tidings_source_last_success_timestamp_seconds", "gauge"),
        ("tidings_feed_requests_total", "counter"),
        ("tidings_outbox_messages", "gauge"),
        ("tidings_subscribers_suppressed", "gauge"),
        ("tidings_http_connections_open", "gauge"),
    ] {
        assert_eq!(
            types.get(name).map(String::as_str),
            Some(kind),
            "{name}: {types:?}"
        );
    }
}
