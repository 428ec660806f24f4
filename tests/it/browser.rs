// In a real headless Chromium: open `/`, follow a feed link, subscribe with the
// form, confirm from the email aiosmtpd received; the admin signs in, previews,
// sends with a note (a note not previewed is refused, never dropped) and sees
// the delivery counted; a refusing relay shows failures; a new old-dated
// leaflet is found first. axe-core and a 390 px width check run on each page.
// Screenshots land in target/test-artifacts/.

use std::time::Duration;

use crate::support::app::{TestApp, wait_until};
use crate::support::browser::Browser;
use crate::support::db::on_every_backend;
use crate::support::smtp::smtp_config;
use crate::support::smtp::{Maildir, SmtpSink, header};
use crate::web::PASSWORD;
use crate::web::admin_app;

#[tokio::test]
async fn a_visitor_follows_a_feed_subscribes_and_confirms_in_a_browser() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        app.run_ok(&["ingest"]);
        let _served = app.serve().await;
        let browser = Browser::start().await;
        browser.goto(&app.url("/")).await;
        browser.screenshot("index").await;
        browser.click("footer a[href$='feeds/all.atom']").await;
        assert!(browser.url().await.ends_with("/feeds/all.atom"));
        assert!(browser.source().await.contains("OCEAN"));
        browser.goto(&app.url("/")).await;
        browser.type_into("#email", "visitor@example.org").await;
        browser.click("#cat-leaflets").await;
        browser.click("#freq-daily").await;
        browser.screenshot("subscribe-filled").await;
        browser
            .click("form[action$='subscribe'] button[type=submit]")
            .await;
        wait_until(Duration::from_secs(30), || async {
            browser.source().await.contains("Check your email")
        })
        .await;
        browser.screenshot("subscribe-sent").await;
        wait_until(Duration::from_secs(30), || async { sink.count() >= 1 }).await;
        let m = &sink.messages()[0];
        assert_eq!(header(m, "x-tidings-kind"), "confirmation");
        let text = m["text"].as_str().unwrap();
        let link = text
            .lines()
            .find(|l| l.contains("/confirm/"))
            .unwrap()
            .trim()
            .to_owned();
        browser.goto(&link).await;
        let page = browser.source().await;
        assert!(page.contains("Subscription confirmed"), "{page}");
        browser.screenshot("confirmed").await;
        let list = app.json(&["subscribers", "list", "--json"]);
        assert_eq!(list[0]["status"], "confirmed");
        assert_eq!(list[0]["categories"], serde_json::json!(["leaflets"]));
    })
    .await;
}

/// Sign in on `/admin/login` with the test password, as a person would.
async fn sign_in(browser: &Browser, app: &TestApp) {
    browser.goto(&app.url("/admin")).await;
    assert!(browser.url().await.ends_with("/admin/login"));
    browser.check_page("admin-login").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    assert!(browser.url().await.ends_with("/admin"));
}

/// The id of the resource whose title starts with `prefix`.
fn resource_id(app: &TestApp, prefix: &str) -> String {
    let list = app.json(&["resources", "list", "--json"]);
    let found = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"].as_str().unwrap().starts_with(prefix));
    found.unwrap()["id"].as_str().unwrap().to_owned()
}

/// Reload the current page until the element `css` reads `want`.
async fn wait_for_text(browser: &Browser, css: &str, want: &str) {
    let url = browser.url().await;
    wait_until(Duration::from_secs(30), || async {
        browser.goto(&url).await;
        browser.text(css).await == want
    })
    .await;
}

#[tokio::test]
async fn the_comms_team_announces_from_the_admin_page_in_a_browser() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let (app, _served) = admin_app(&db.url, &sink).await;
        let browser = Browser::start().await;
        browser.goto(&app.url("/admin")).await;
        assert!(
            browser.url().await.ends_with("/admin/login"),
            "redirected to sign in"
        );
        browser.type_into("#password", "not the password").await;
        browser.click("form button[type=submit]").await;
        assert!(
            browser
                .source()
                .await
                .contains("That password is not right.")
        );
        browser.screenshot("admin-refused").await;
        browser.type_into("#password", PASSWORD).await;
        browser.click("form button[type=submit]").await;
        assert!(browser.url().await.ends_with("/admin"));
        browser.check_page("admin-home").await;
        let id = resource_id(&app, "OCEAN");
        browser
            .click(&format!("a[href$='admin/announce/{id}']"))
            .await;
        let preview = browser.source().await;
        assert!(
            preview.contains("<strong>1</strong> confirmed subscriber(s) of Leaflets"),
            "{preview}"
        );
        browser.check_page("admin-preview").await;
        let note = "Please share this with your team.";
        browser.type_into("#message", note).await;
        // Send without "Update preview": the note typed is not lost, and
        // nothing goes out that was not shown.
        browser.click("#confirm").await;
        let refused = browser.text(".error-summary").await;
        assert!(refused.starts_with("Not sent: the email has changed"), "{refused}");
        assert!(browser.text("pre.email").await.contains(note), "fresh preview");
        let kept = browser
            .execute("return document.getElementById('message').value;", serde_json::json!([]))
            .await;
        assert_eq!(kept, note, "the typed note is still in the box");
        let outbox = app.json(&["outbox", "list", "--json"]);
        assert_eq!(outbox, serde_json::json!([]), "nothing queued by the refused Send");
        browser.click("#confirm").await;
        assert!(browser.url().await.contains("/admin/announcements/"));
        assert_eq!(
            browser.text("#queued").await,
            "Queued for 1 person. The counts below show what the mail server has done with it so far."
        );
        wait_until(Duration::from_secs(30), || async { sink.count() >= 1 }).await;
        let m = &sink.messages()[0];
        assert_eq!(header(m, "x-tidings-kind"), "announcement");
        assert!(m["text"].as_str().unwrap().contains(note), "{m}");
        assert!(m["html"].as_str().unwrap().contains(note), "{m}");
        wait_for_text(&browser, "#sent", "1").await;
        assert_eq!(browser.text("#failed").await, "0");
        browser.check_page("admin-announcement").await;
        browser.goto(&app.url("/admin/announcements")).await;
        let list = browser.text("table").await;
        assert!(list.contains("OCEAN") && list.contains("1 sent"), "{list}");
        browser.check_page("admin-announcements").await;
        browser.goto(&app.url("/admin")).await;
        let row = browser.text("#resources").await;
        assert!(row.contains("Announced on ") && row.contains(" to 1 person"), "{row}");
        browser.goto(&app.url("/")).await;
        browser.check_page("index-checked").await;
        browser.goto(&app.url(&format!("/resources/{id}"))).await;
        browser.check_page("resource-checked").await;
    })
    .await;
}

#[tokio::test]
async fn a_relay_refusing_everything_shows_failed_counts_not_sent() {
    on_every_backend(|db| async move {
        let sink = SmtpSink::start(&["-f", ".", "-B", "550 5.1.1 Mailbox unavailable"]);
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        let add = [
            "subscribers",
            "add",
            "ann@example.org",
            "--categories",
            "leaflets",
        ];
        app.run_ok(&[&add[..], &["--confirmed"]].concat());
        app.run_ok(&["ingest"]);
        let _served = app.serve_env(&[("TIDINGS_ADMIN_PASSWORD", PASSWORD)]).await;
        let browser = Browser::start().await;
        sign_in(&browser, &app).await;
        let id = resource_id(&app, "OCEAN");
        browser
            .goto(&app.url(&format!("/admin/announce/{id}")))
            .await;
        browser.click("#confirm").await;
        assert!(
            browser
                .text("#queued")
                .await
                .starts_with("Queued for 1 person.")
        );
        wait_for_text(&browser, "#failed", "1").await;
        assert_eq!(browser.text("#sent").await, "0");
        let page = browser.text("main").await;
        assert!(!page.contains("Announcement sent"), "{page}");
        let why = browser.text("#reasons").await;
        assert!(
            why.contains("1 person: the mail server refused it for good")
                && why.contains("Mailbox unavailable"),
            "{why}"
        );
        browser.check_page("admin-announcement-failed").await;
        browser.click("#retry").await;
        // WebDriver may return before the form's navigation ends.
        wait_until(Duration::from_secs(30), || async {
            browser
                .source()
                .await
                .contains("1 failed message(s) queued to be sent again.")
        })
        .await;
        wait_for_text(&browser, "#failed", "1").await;
        let outbox = app.json(&["outbox", "list", "--json"]);
        assert_eq!(
            outbox[0]["attempts"], 1,
            "tried again after the retry: {outbox}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_new_leaflet_with_an_old_date_is_first_on_the_admin_page() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        let mut page = String::from("Resource Library\n\nBulletins.\n\nResource Library\n\n");
        for day in 1..=28 {
            for month in [3, 4] {
                page.push_str(&format!(
                    "Bulletin {month}/{day} - {day} {} 2025\n\nNews.\n\n\n",
                    if month == 3 { "March" } else { "April" }
                ));
            }
        }
        let seeds = app.path("seeds/bulletins.txt");
        std::fs::write(&seeds, &page).unwrap();
        app.run_ok(&["ingest"]);
        page.push_str("Winter leaflet - 2 February 2024\n\nKeeping warm.\n\n\n");
        std::fs::write(&seeds, &page).unwrap();
        app.run_ok(&["ingest"]);
        let _served = app.serve_env(&[("TIDINGS_ADMIN_PASSWORD", PASSWORD)]).await;
        let browser = Browser::start().await;
        sign_in(&browser, &app).await;
        let first = browser.text("#resources tbody tr").await;
        assert!(
            first.starts_with("Winter leaflet - 2 February 2024"),
            "{first}"
        );
        browser.goto(&app.url("/admin?sort=date")).await;
        let by_date = browser.text("#resources").await;
        assert!(
            !by_date.contains("Winter leaflet"),
            "older than a page of bulletins"
        );
        browser.goto(&app.url("/admin")).await;
        browser.type_into("#q", "WINTER leaflet").await;
        browser.click("form.find button[type=submit]").await;
        assert_eq!(browser.text("#found").await, "1 resource(s).");
        assert!(browser.text("#resources").await.contains("Winter leaflet"));
        browser.goto(&app.url("/admin")).await;
        assert!(browser.text("#found").await.contains("page 1 of"));
        browser.click("a[rel=next]").await;
        assert!(browser.url().await.contains("page=2"));
        browser.check_page("admin-home-page-2").await;
    })
    .await;
}
