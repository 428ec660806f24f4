// Named admin accounts, the audit log and re-filing, end to end: `admins add`
// emails a one-time link (aiosmtpd), a second admin chooses a password and
// signs in in Chromium, announces, and is named in /admin/log and
// `admin-log`; sign-in is limited per account before the password check;
// removing an account ends its sessions; a re-filed resource moves feeds at
// once with no change event and keeps its category through ingest.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use chrono::TimeZone;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};

use crate::support::app::{TestApp, wait_until};
use crate::support::browser::Browser;
use crate::support::db::on_every_backend;
use crate::support::http;
use crate::support::smtp::{Maildir, header};
use crate::web::{PASSWORD, admin_app, form_of, no_redirects, post_form};

const BEA: &str = "bea@example.org";
const BEA_PASSWORD: &str = "plum orchard lantern";

/// Adds Bea's account and returns the password link emailed to her.
async fn add_bea(app: &TestApp, sink: &Maildir) -> String {
    let before = sink.count();
    app.run_ok(&["admins", "add", BEA, "--name", "Bea Jones"]);
    wait_until(Duration::from_secs(30), || async { sink.count() > before }).await;
    let m = sink
        .messages()
        .into_iter()
        .find(|m| header(m, "x-tidings-kind") == "admin-password")
        .expect("a password link email");
    assert_eq!(header(&m, "to"), BEA);
    let text = m["text"].as_str().unwrap();
    assert!(text.contains("works once"), "{text}");
    text.lines()
        .find(|l| l.contains("/admin/password/"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Waits until the page holds an element matching `css`: a click's
/// navigation may still be under way when WebDriver returns.
async fn shows(browser: &Browser, css: &str) {
    wait_until(Duration::from_secs(30), || async {
        let script = "return document.querySelector(arguments[0]) !== null;";
        browser.execute(script, serde_json::json!([css])).await == serde_json::json!(true)
    })
    .await;
}

/// Waits until the browser is at a URL ending with `end`.
async fn arrives(browser: &Browser, end: &str) {
    wait_until(Duration::from_secs(30), || async {
        browser.url().await.ends_with(end)
    })
    .await;
}

/// The log as `admin-log --json` prints it: (actor, action, summary), newest first.
fn log_of(app: &TestApp) -> Vec<(String, String, String)> {
    let log = app.json(&["admin-log", "--json"]);
    log.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("actor"), s("action"), s("summary"))
        })
        .collect()
}

/// The id of the resource whose title starts with `prefix`, and its category.
fn resource(app: &TestApp, prefix: &str) -> (String, String) {
    let list = app.json(&["resources", "list", "--json"]);
    let found = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"].as_str().unwrap().starts_with(prefix))
        .unwrap();
    let s = |k: &str| found[k].as_str().unwrap().to_owned();
    (s("id"), s("category"))
}

#[tokio::test]
async fn a_second_admin_chooses_a_password_signs_in_and_is_named_in_the_log() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let (app, _served) = admin_app(&db.url, &sink).await;
        let link = add_bea(&app, &sink).await;
        let listed = app.json(&["admins", "list", "--json"]);
        assert_eq!(listed[0]["email"], BEA);
        assert_eq!(listed[0]["name"], "Bea Jones");
        assert_eq!(listed[0]["password_set"], false);

        let browser = Browser::start().await;
        browser.goto(&link).await;
        browser.check_page("admin-set-password").await;
        browser.type_into("#password", "too short").await;
        browser.type_into("#repeat", "too short").await;
        browser.click("form button[type=submit]").await;
        shows(&browser, ".error-summary").await;
        let refused = browser.text(".error-summary").await;
        assert!(refused.contains("at least 12 characters"), "{refused}");
        browser.type_into("#password", BEA_PASSWORD).await;
        browser.type_into("#repeat", BEA_PASSWORD).await;
        browser.click("form button[type=submit]").await;
        shows(&browser, "main a[href$='admin/login']").await;
        assert_eq!(browser.text("h1").await, "Password set");
        assert_eq!(
            app.json(&["admins", "list", "--json"])[0]["password_set"],
            true
        );
        browser.click("main a[href$='admin/login']").await;
        shows(&browser, "#email").await;
        browser.check_page("admin-login-named").await;
        browser.type_into("#email", BEA).await;
        browser.type_into("#password", "not her password").await;
        browser.click("form button[type=submit]").await;
        shows(&browser, ".error-summary").await;
        let refused = browser.text(".error-summary").await;
        assert_eq!(
            refused,
            "That email address and password do not match an account."
        );
        browser.type_into("#password", BEA_PASSWORD).await;
        browser.click("form button[type=submit]").await;
        arrives(&browser, "/admin").await;

        let (id, _) = resource(&app, "OCEAN");
        browser
            .click(&format!("a[href$='admin/announce/{id}']"))
            .await;
        shows(&browser, "#confirm").await;
        browser.click("#confirm").await;
        shows(&browser, "#queued").await;
        assert!(
            browser
                .text("#queued")
                .await
                .starts_with("Queued for 1 person.")
        );

        browser.goto(&app.url("/admin")).await;
        browser.click("a[href$='admin/log']").await;
        shows(&browser, "#me").await;
        assert_eq!(browser.text("#me").await, "Bea Jones");
        let log = browser.text("#log").await;
        let line = |words: &str| log.lines().find(|l| l.contains(words)).map(str::to_owned);
        let announced = line("Announced “OCEAN").unwrap_or_else(|| panic!("{log}"));
        assert!(
            announced.contains("Bea Jones") && announced.contains("to 1 person"),
            "{announced}"
        );
        assert!(
            line("Bea Jones Signed in (from 127.0.0.1)").is_some(),
            "{log}"
        );
        assert!(
            line("Bea Jones Sign-in refused: wrong password").is_some(),
            "{log}"
        );
        assert!(
            line("command line Added the admin account Bea Jones").is_some(),
            "{log}"
        );
        // The newest entry's time, as the JSON gives it (UTC), read in London.
        let at = app.json(&["admin-log", "--json", "--limit", "1"])[0]["at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap();
        let local = at.with_timezone(&chrono_tz::Europe::London);
        let words = local.format("%a %-d %b %Y at %H:%M").to_string();
        assert!(announced.starts_with(&words), "{words} in {announced}");
        browser.check_page("admin-log").await;

        let entries = log_of(&app);
        let actions: Vec<(&str, &str)> = entries
            .iter()
            .map(|(who, what, _)| (who.as_str(), what.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("Bea Jones", "announce"),
                ("Bea Jones", "sign_in"),
                ("Bea Jones", "sign_in_refused"),
                ("Bea Jones", "password_set"),
                ("command line", "account_added"),
            ],
            "newest first: {entries:?}"
        );

        // The link worked once.
        browser.goto(&link).await;
        assert_eq!(browser.text("h1").await, "This link does not work");
        assert_eq!(
            http().get(&link).send().await.unwrap().status(),
            StatusCode::GONE
        );
    })
    .await;
}

/// Sets Bea's password through `link` over HTTP.
async fn set_password_over_http(link: &str) {
    let (csrf, jar) = form_of(link, "").await;
    let body = format!(
        "csrf={csrf}&password={p}&repeat={p}",
        p = BEA_PASSWORD.replace(' ', "+")
    );
    let r = post_form(link, &jar, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// One sign-in as `email` from `ip`: the response.
async fn sign_in_from(app: &TestApp, ip: IpAddr, email: &str, password: &str) -> reqwest::Response {
    let (csrf, jar) = form_of(&app.url("/admin/login"), "").await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &csrf)
        .append_pair("email", email)
        .append_pair("password", password)
        .finish();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip)
        .build()
        .unwrap()
        .post(app.url("/admin/login"))
        .header(COOKIE, jar.as_str())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

#[tokio::test]
async fn sign_in_is_limited_per_account_and_a_new_password_or_removal_ends_sessions() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let (app, _served) = admin_app(&db.url, &sink).await;
        let link = add_bea(&app, &sink).await;
        set_password_over_http(&link).await;

        let signed = sign_in_from(&app, loopback(2), BEA, BEA_PASSWORD).await;
        assert_eq!(signed.status(), StatusCode::SEE_OTHER);
        let cookie = signed.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        let session = cookie.split(';').next().unwrap().to_owned();
        let home = no_redirects()
            .get(app.url("/admin"))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(home.status(), StatusCode::OK);

        // A forgotten password: `admins link` emails a new link; the old one
        // stays spent, and setting a password ends her sessions.
        let before = sink.count();
        app.run_ok(&["admins", "link", BEA]);
        wait_until(Duration::from_secs(30), || async { sink.count() > before }).await;
        let links: Vec<String> = sink
            .messages()
            .iter()
            .filter(|m| header(m, "x-tidings-kind") == "admin-password")
            .map(|m| {
                let text = m["text"].as_str().unwrap();
                let line = text.lines().find(|l| l.contains("/admin/password/"));
                line.unwrap().trim().to_owned()
            })
            .collect();
        let renewed = links.iter().find(|l| **l != link).expect("a second link");
        assert_eq!(
            http().get(&link).send().await.unwrap().status(),
            StatusCode::GONE
        );
        set_password_over_http(renewed).await;
        let ended = no_redirects()
            .get(app.url("/admin"))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(
            ended.status(),
            StatusCode::SEE_OTHER,
            "a new password ends sessions"
        );
        let again = sign_in_from(&app, loopback(3), BEA, BEA_PASSWORD).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
        let cookie = again.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        let session = cookie.split(';').next().unwrap().to_owned();

        // 40 wrong guesses at Bea's account, each from its own address: every
        // address is far under its own limit of 5, but the account allows 30
        // checks in 15 minutes (her sign-in above was given back on success).
        let mut statuses = Vec::new();
        for n in 10..50 {
            let r = sign_in_from(&app, loopback(n), BEA, "a wrong guess").await;
            statuses.push(r.status().as_u16());
        }
        assert_eq!(statuses[..30], [401; 30], "{statuses:?}");
        assert_eq!(statuses[30..], [429; 10], "{statuses:?}");
        // Her right password is refused now, from a fresh address too.
        let locked = sign_in_from(&app, loopback(60), BEA, BEA_PASSWORD).await;
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(locked.headers().contains_key(RETRY_AFTER));
        // An attacker at one account does not lock out another.
        let other = sign_in_from(&app, loopback(61), "", PASSWORD).await;
        assert_eq!(other.status(), StatusCode::SEE_OTHER);
        let refusals = log_of(&app)
            .iter()
            .filter(|(who, what, _)| who == "Bea Jones" && what == "sign_in_refused")
            .count();
        assert_eq!(refusals, 30, "each checked refusal is in the log");

        app.run_ok(&["admins", "remove", BEA]);
        let after = no_redirects()
            .get(app.url("/admin"))
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), StatusCode::SEE_OTHER, "her session ended");
        assert!(
            after.headers()[LOCATION]
                .to_str()
                .unwrap()
                .ends_with("/admin/login")
        );
        assert_eq!(
            app.json(&["admins", "list", "--json"]),
            serde_json::json!([])
        );
        let (_, what, summary) = &log_of(&app)[0];
        assert_eq!(what, "account_removed");
        assert_eq!(
            summary,
            "Removed the admin account Bea Jones (bea@example.org)"
        );
    })
    .await;
}

/// The item titles of the feed at `path`, read with the `rss` crate.
async fn feed_titles(app: &TestApp, path: &str) -> Vec<String> {
    let body = http()
        .get(app.url(path))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let channel = rss::Channel::read_from(&body[..]).unwrap();
    channel
        .items()
        .iter()
        .filter_map(|i| i.title().map(str::to_owned))
        .collect()
}

async fn change_events(store: &tidings::store::Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM change_events")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_re_filed_resource_moves_feeds_at_once_says_nothing_and_survives_ingest() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let (app, _served) = admin_app(&db.url, &sink).await;
        let store = db.open_another().await;
        let (id, category) = resource(&app, "OCEAN");
        assert_eq!(category, "Leaflets");
        let ocean = |titles: &[String]| titles.iter().any(|t| t.starts_with("OCEAN"));
        assert!(!ocean(&feed_titles(&app, "/feeds/news.rss").await));
        let events = change_events(&store).await;

        let browser = Browser::start().await;
        browser.goto(&app.url("/admin")).await;
        browser.type_into("#password", PASSWORD).await;
        browser.click("form button[type=submit]").await;
        shows(&browser, "#resources").await;
        browser
            .click(&format!("#resources a[href$='admin/resources/{id}']"))
            .await;
        shows(&browser, "#choose").await;
        browser.check_page("admin-resource").await;
        browser.click("#choose option[value='news']").await;
        browser.click("#save").await;
        shows(&browser, "#saved").await;
        assert!(
            browser
                .text("#saved")
                .await
                .starts_with("Saved: filed under News.")
        );
        assert!(
            browser
                .text("#category")
                .await
                .contains("chosen by the comms team")
        );
        browser.check_page("admin-resource-saved").await;

        // At once: the feeds were re-rendered before the page came back.
        assert!(
            ocean(&feed_titles(&app, "/feeds/news.rss").await),
            "in News now"
        );
        assert!(
            !ocean(&feed_titles(&app, "/feeds/leaflets.rss").await),
            "out of Leaflets"
        );
        assert_eq!(change_events(&store).await, events, "no change event");
        let shown = app.json(&["resources", "show", &id, "--json"]);
        let revisions = shown["revisions"].as_array().unwrap();
        assert_eq!(revisions.len(), 2, "a revision records it: {shown}");
        assert_eq!(revisions[1]["category"], "News");
        let preview = app.run_ok(&["digest", "preview"]);
        assert!(!preview.contains("(updated)"), "{preview}");

        // A later ingest keeps the team's choice, and so does one whose
        // keyword rules now say Reports.
        app.run_ok(&["ingest"]);
        assert_eq!(resource(&app, "OCEAN").1, "News");
        let config = std::fs::read_to_string(app.path("tidings.toml")).unwrap();
        let rules = "\n[[categories]]\nname = \"Reports\"\nmatch = [\"ocean\"]\n";
        std::fs::write(app.path("tidings.toml"), format!("{config}{rules}")).unwrap();
        app.run_ok(&["ingest"]);
        assert_eq!(resource(&app, "OCEAN").1, "News");
        assert_eq!(change_events(&store).await, events);
        std::fs::write(app.path("tidings.toml"), config).unwrap();

        browser.click("#choose option[value='']").await;
        browser.click("#save").await;
        wait_until(Duration::from_secs(30), || async {
            browser
                .text("#saved")
                .await
                .starts_with("Saved: filed under Leaflets.")
        })
        .await;
        assert!(
            ocean(&feed_titles(&app, "/feeds/leaflets.rss").await),
            "back by the rules"
        );
        assert_eq!(change_events(&store).await, events);
        let log = log_of(&app);
        let summaries: Vec<&str> = log.iter().map(|(_, _, s)| s.as_str()).collect();
        assert!(summaries[0].starts_with("Returned “OCEAN"), "{summaries:?}");
        assert!(summaries[1].starts_with("Re-filed “OCEAN"), "{summaries:?}");
        assert!(
            summaries[1].ends_with("from Leaflets to News"),
            "{summaries:?}"
        );
        assert_eq!(log[1].0, "admin");
    })
    .await;
}

#[tokio::test]
async fn an_unused_session_ends_after_an_hour_and_use_keeps_it_alive() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
        let m = chrono::Duration::minutes;
        let idle = m(60);
        let bea = store.add_admin(BEA, "Bea", "nonce", t0).await.unwrap();
        store
            .start_admin_session("s1", "cred", t0, t0 + chrono::Duration::hours(8))
            .await
            .unwrap();
        store
            .own_admin_session("s1", Some(bea.id), t0)
            .await
            .unwrap();
        let seen = store
            .admin_session("s1", t0 + m(50), idle)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.admin_id, Some(bea.id));
        let live = async |minutes| {
            let at = t0 + m(minutes);
            store.admin_session("s1", at, idle).await.unwrap().is_some()
        };
        assert!(live(105).await, "used at 50");
        assert!(!live(166).await, "61 idle");
        assert!(!live(106).await, "ended");
    })
    .await;
}

#[tokio::test]
async fn send_a_test_to_me_reaches_only_the_signed_in_admin_and_announces_nothing() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let (app, _served) = admin_app(&db.url, &sink).await;
        let link = add_bea(&app, &sink).await;
        set_password_over_http(&link).await;
        let mails_before = sink.count();
        let (id, _) = resource(&app, "OCEAN");

        let browser = Browser::start().await;
        browser.goto(&app.url("/admin")).await;
        browser.type_into("#email", BEA).await;
        browser.type_into("#password", BEA_PASSWORD).await;
        browser.click("form button[type=submit]").await;
        arrives(&browser, "/admin").await;
        browser
            .goto(&app.url(&format!("/admin/announce/{id}")))
            .await;
        let note = "Trying this out before it goes to everyone.";
        browser.type_into("#message", note).await;
        browser.click("#test").await;
        shows(&browser, "#tested").await;
        let said = browser.text("#tested").await;
        assert!(
            said.starts_with(&format!("A test was queued for {BEA}.")),
            "{said}"
        );
        assert!(
            browser.text("pre.email").await.contains(note),
            "the preview shows what was sent"
        );
        browser.check_page("admin-preview-tested").await;

        wait_until(Duration::from_secs(30), || async {
            sink.count() > mails_before
        })
        .await;
        let messages = sink.messages();
        let test = messages
            .iter()
            .find(|m| header(m, "x-tidings-kind") == "announcement")
            .expect("the test email");
        assert_eq!(header(test, "to"), BEA);
        assert!(header(test, "subject").starts_with("New in Leaflets: OCEAN"));
        assert!(test["text"].as_str().unwrap().contains(note), "{test}");
        assert!(
            test["headers"].get("list-unsubscribe").is_none(),
            "an admin is on no list"
        );
        let outbox = app.json(&["outbox", "list", "--json"]);
        let keys: Vec<&str> = outbox
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["key"].as_str().unwrap())
            .collect();
        assert!(
            keys.iter().any(|k| k.starts_with(&format!("test/{id}/"))),
            "{keys:?}"
        );
        assert!(
            !keys.iter().any(|k| k.starts_with("announcement/")),
            "{keys:?}"
        );
        assert!(
            !sink
                .messages()
                .iter()
                .any(|m| header(m, "to") == "ann@example.org"),
            "the subscriber got nothing"
        );
        browser.goto(&app.url("/admin/announcements")).await;
        assert!(
            browser
                .text("main")
                .await
                .contains("Nothing has been announced yet.")
        );
        let (who, what, summary) = &log_of(&app)[0];
        assert_eq!((who.as_str(), what.as_str()), ("Bea Jones", "test"));
        assert!(summary.ends_with(&format!("to {BEA}")), "{summary}");
        // Announcing for real afterwards is not refused as a repeat.
        browser
            .goto(&app.url(&format!("/admin/announce/{id}")))
            .await;
        browser.click("#confirm").await;
        shows(&browser, "#queued").await;
        assert!(
            browser
                .text("#queued")
                .await
                .starts_with("Queued for 1 person.")
        );
    })
    .await;
}

#[tokio::test]
async fn the_log_pages_fifty_at_a_time_newest_first() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let (app, _served) = admin_app(&db.url, &sink).await;
        let store = db.open_another().await;
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 7, 1, 9, 0, 0).unwrap();
        for n in 1..=60 {
            let summary = format!("Action number {n}");
            let entry = tidings::store::NewAuditEntry {
                actor: "Cal",
                admin_id: None,
                action: "announce",
                summary: &summary,
            };
            store
                .record_audit(&entry, t0 + chrono::Duration::minutes(n))
                .await
                .unwrap();
        }
        let browser = Browser::start().await;
        browser.goto(&app.url("/admin")).await;
        browser.type_into("#password", PASSWORD).await;
        browser.click("form button[type=submit]").await;
        arrives(&browser, "/admin").await;
        browser.goto(&app.url("/admin/log")).await;
        // Page 1: the sign-in just now, then actions 60 down to 12.
        let first = browser.text("#log tbody tr").await;
        assert!(first.contains("admin Signed in"), "{first}");
        let page = browser.text("#log").await;
        assert!(page.contains("Action number 12") && !page.contains("Action number 11\n"));
        // 09:00 UTC plus 60 minutes is 11:00 in London (summer time).
        assert!(
            page.contains("Wed 1 Jul 2026 at 11:00 Cal Action number 60"),
            "{page}"
        );
        browser.click("a[rel=next]").await;
        arrives(&browser, "/admin/log?page=2").await;
        let page = browser.text("#log").await;
        let rows: Vec<&str> = page.lines().filter(|l| l.contains(" Cal ")).collect();
        assert_eq!(rows.len(), 11, "{page}");
        assert!(rows[0].ends_with("Action number 11") && rows[10].ends_with("Action number 1"));
        browser.check_page("admin-log-page-2").await;
        let cli = app.run_ok(&["admin-log", "--limit", "2"]);
        let lines: Vec<&str> = cli.lines().collect();
        assert_eq!(lines.len(), 2, "{cli}");
        assert!(lines[1].ends_with("Cal\tAction number 60"), "{cli}");
    })
    .await;
}
