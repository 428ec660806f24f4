// The production mail path end to end: the `tidings` binary announcing to
// aiosmtpd over STARTTLS (required and opportunistic) and implicit TLS
// (`smtps://`), logging in with AUTH; a wrong password, a certificate nobody
// vouches for, and a relay signed by a private CA trusted through `mail.ca_file`.

use std::path::Path;

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::db::on_every_backend;
use crate::support::relay::{Mode, Pki, TlsRelay};
use crate::support::smtp::header;

const USER: &str = "tidings@council.example";
const PASSWORD: &str = "correct horse battery staple";

/// A `[mail]` section relaying to `url`, trusting `ca_file` when given.
fn mail_section(url: &str, ca_file: Option<&Path>, extra: &str) -> String {
    let ca_file = ca_file
        .map(|path| format!("ca_file = {:?}\n", path.display().to_string()))
        .unwrap_or_default();
    format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_url = \"{url}\"\nfrom = \"Test Library <news@example.org>\"\n\
         timeout_s = 5\nretry_base_s = 60\n{ca_file}{extra}"
    )
}

/// `user:password@` for a URL, percent-encoded.
fn login(user: &str, password: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("{}:{}@", encode(user), encode(password)).replace('+', "%20")
}

/// An app on `db_url` with `subscribers` confirmed for every category and
/// the seed page ingested; returns it with the id of the resource to announce.
fn app_with_subscribers(db_url: &str, mail: &str, subscribers: usize) -> (TestApp, String) {
    let app = TestApp::new(db_url, mail);
    for i in 0..subscribers {
        let email = format!("reader{i}@example.org");
        app.run_ok(&[
            "subscribers",
            "add",
            &email,
            "--categories",
            "all",
            "--confirmed",
        ]);
    }
    app.run_ok(&["ingest"]);
    let list = app.json(&["resources", "list", "--json"]);
    let ocean = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"].as_str().unwrap().starts_with("OCEAN"))
        .expect("the seed page has OCEAN");
    let id = ocean["id"].as_str().unwrap().to_owned();
    (app, id)
}

fn outbox(app: &TestApp) -> Vec<Value> {
    app.json(&["outbox", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

/// Announces to two readers through `relay` at `url`, and checks both
/// messages arrived over TLS, logged in as `user` when given.
fn announce_arrives_over_tls(db_url: &str, relay: &TlsRelay, url: &str, user: Option<&str>) {
    let mail = mail_section(url, Some(&relay.root_file()), "");
    let (app, id) = app_with_subscribers(db_url, &mail, 2);
    let out = app.run_ok(&["announce", &id, "--message", "Over TLS"]);
    assert!(out.contains("sent 2,"), "{out}");
    let mut to: Vec<String> = relay
        .messages()
        .iter()
        .map(|m| header(m, "to").to_owned())
        .collect();
    to.sort_unstable();
    assert_eq!(to, ["reader0@example.org", "reader1@example.org"]);
    for delivery in relay.deliveries() {
        assert_eq!(delivery["tls"], true, "{delivery}");
        assert_eq!(delivery["user"].as_str(), user, "{delivery}");
    }
    assert_eq!(relay.deliveries().len(), 2);
    assert!(
        relay.logins().iter().all(|l| l["ok"] == true),
        "{:?}",
        relay.logins()
    );
}

#[tokio::test]
async fn starttls_required_with_a_login_delivers_over_tls() {
    on_every_backend(|db| async move {
        let relay = TlsRelay::start(Mode::StartTls, &Pki::private_ca(), Some((USER, PASSWORD)));
        let url = format!(
            "smtp://{}localhost:{}?tls=required",
            login(USER, PASSWORD),
            relay.port
        );
        announce_arrives_over_tls(&db.url, &relay, &url, Some(USER));
        let logins = relay.logins();
        assert!(!logins.is_empty(), "the client logged in");
        assert!(
            logins.iter().all(|l| l["mechanism"] == "PLAIN"),
            "{logins:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn opportunistic_starttls_is_taken_when_the_relay_offers_it() {
    let relay = TlsRelay::start(Mode::Opportunistic, &Pki::private_ca(), None);
    let url = format!("smtp://localhost:{}?tls=opportunistic", relay.port);
    announce_arrives_over_tls("sqlite://tidings.db", &relay, &url, None);
}

#[tokio::test]
async fn smtps_with_an_auth_login_delivers_over_tls() {
    on_every_backend(|db| async move {
        let login_only = Some("LOGIN");
        let relay = TlsRelay::start_offering(
            Mode::Smtps,
            &Pki::private_ca(),
            Some((USER, PASSWORD)),
            login_only,
        );
        let url = format!("smtps://{}localhost:{}", login(USER, PASSWORD), relay.port);
        announce_arrives_over_tls(&db.url, &relay, &url, Some(USER));
        let logins = relay.logins();
        assert!(!logins.is_empty(), "the client logged in");
        assert!(
            logins.iter().all(|l| l["mechanism"] == "LOGIN"),
            "{logins:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_is_named_and_not_tried_once_per_message() {
    on_every_backend(|db| async move {
        let relay = TlsRelay::start(Mode::Smtps, &Pki::private_ca(), Some((USER, PASSWORD)));
        let url = format!("smtps://{}localhost:{}", login(USER, "wrong"), relay.port);
        let mail = mail_section(&url, Some(&relay.root_file()), "concurrency = 2\n");
        let (app, id) = app_with_subscribers(&db.url, &mail, 6);
        let run = app.run(&["announce", &id]);
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(stdout.contains("sent 0, 6 queued for retry"), "{stdout}");
        let relay_name = format!("authentication failed at relay localhost:{}", relay.port);
        assert!(stderr.contains(&relay_name), "{stderr}");

        assert_eq!(relay.count(), 0, "nothing delivered");
        let logins = relay.logins();
        assert!(
            (1..=2).contains(&logins.len()),
            "one failed login per connection opened at once (concurrency 2), not one per message: {logins:?}"
        );
        assert!(logins.iter().all(|l| l["ok"] == false && l["user"] == USER));
        let rows = outbox(&app);
        assert_eq!(rows.len(), 6);
        for row in &rows {
            assert_eq!(row["status"], "queued", "back in the queue: {row}");
            assert_eq!(row["attempts"], 1, "{row}");
            let error = row["last_error"].as_str().unwrap();
            assert!(error.contains(&relay_name), "{error}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_certificate_nobody_vouches_for_is_refused_and_nothing_is_sent() {
    let pki = Pki::self_signed();
    for (mode, scheme, tls) in [
        (Mode::Smtps, "smtps", ""),
        (Mode::StartTls, "smtp", "?tls=required"),
    ] {
        let relay = TlsRelay::start(mode, &pki, Some((USER, PASSWORD)));
        let url = format!(
            "{scheme}://{}localhost:{}{tls}",
            login(USER, PASSWORD),
            relay.port
        );
        let (app, id) =
            app_with_subscribers("sqlite://tidings.db", &mail_section(&url, None, ""), 1);
        let run = app.run(&["announce", &id]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{mode:?}: {stderr}");
        assert_eq!(relay.count(), 0, "{mode:?}: nothing delivered");
        assert!(relay.logins().is_empty(), "{mode:?}: no password sent");
        let rows = outbox(&app);
        let error = rows[0]["last_error"].as_str().unwrap();
        assert!(
            error.contains(&format!("relay localhost:{}", relay.port)),
            "{mode:?}: {error}"
        );
        assert!(error.contains("certificate"), "{mode:?}: {error}");
    }
}

#[tokio::test]
async fn a_relay_signed_by_a_private_ca_is_trusted_only_through_mail_ca_file() {
    let pki = Pki::private_ca();
    let relay = TlsRelay::start(Mode::Smtps, &pki, None);
    let url = format!("smtps://localhost:{}", relay.port);

    let (untrusting, id) =
        app_with_subscribers("sqlite://tidings.db", &mail_section(&url, None, ""), 1);
    let run = untrusting.run(&["announce", &id]);
    assert_eq!(run.status.code(), Some(1));
    let error = outbox(&untrusting)[0]["last_error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert_eq!(relay.count(), 0);

    let mail = mail_section(&url, Some(&relay.root_file()), "");
    let (trusting, id) = app_with_subscribers("sqlite://tidings.db", &mail, 1);
    trusting.run_ok(&["announce", &id]);
    assert_eq!(relay.count(), 1);
    assert_eq!(relay.deliveries()[0]["tls"], true);
}

#[tokio::test]
async fn tidings_check_names_mail_ca_file_when_it_is_unusable() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    let missing = empty.path().with_extension("missing.pem");
    for (path, reason) in [
        (empty.path(), "holds no certificate"),
        (&missing, "could not read"),
    ] {
        let mail = mail_section("smtps://localhost", Some(path), "");
        let app = TestApp::new("sqlite://tidings.db", &mail);
        let run = app.run(&["check"]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_ne!(run.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("mail.ca_file"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    }
}
