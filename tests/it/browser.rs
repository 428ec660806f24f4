// In a real headless Chromium: open `/`, follow a feed link, subscribe with the
// form, confirm from the email aiosmtpd received; the admin signs in, previews,
// confirms and sees the announcement recorded; a wrong password is refused.
// Screenshots land in target/test-artifacts/.

use std::time::Duration;

use crate::support::app::{TestApp, wait_until};
use crate::support::browser::Browser;
use crate::support::db::on_every_backend;
use crate::support::smtp::smtp_config;
use crate::support::smtp::{Maildir, header};
use crate::web::{PASSWORD, admin_app};

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
        assert!(browser.source().await.contains("Check your email"));
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
        browser.screenshot("admin-home").await;
        let list = app.json(&["resources", "list", "--json"]);
        let ocean = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["title"].as_str().unwrap().starts_with("OCEAN"))
            .unwrap();
        let id = ocean["id"].as_str().unwrap();
        browser
            .click(&format!("a[href$='admin/announce/{id}']"))
            .await;
        let preview = browser.source().await;
        assert!(
            preview.contains("<strong>1</strong> confirmed subscriber(s) of Leaflets"),
            "{preview}"
        );
        browser.screenshot("admin-preview").await;
        browser.click("#confirm").await;
        let home = browser.source().await;
        assert!(
            home.contains("Announcement sent to 1 subscriber(s)"),
            "{home}"
        );
        assert!(home.contains("by admin to 1"), "{home}");
        browser.screenshot("admin-announced").await;
        wait_until(Duration::from_secs(30), || async { sink.count() >= 1 }).await;
        assert_eq!(
            header(&sink.messages()[0], "x-tidings-kind"),
            "announcement"
        );
    })
    .await;
}
