// The subscribe form, confirmation links and the admin page over real HTTP:
// CSRF, one confirmation per address per window with identical answers,
// sign-in refusals and limits, redirects without a session, announcing.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::support::app::{Served, TestApp, wait_until};
use crate::support::db::on_every_backend;
use crate::support::smtp::{Maildir, header, smtp_config};
use crate::support::{get_text, http};

pub const PASSWORD: &str = "correct horse battery staple";

/// A served app with the admin password set, one confirmed subscriber to
/// leaflets (ann@example.org) and the seeds ingested.
pub async fn admin_app(db_url: &str, sink: &Maildir) -> (TestApp, Served) {
    let app = TestApp::new(db_url, &smtp_config(&sink.url(), ""));
    app.run_ok(&[
        "subscribers",
        "add",
        "ann@example.org",
        "--categories",
        "leaflets",
        "--confirmed",
    ]);
    app.run_ok(&["ingest"]);
    let served = app.serve_env(&[("TIDINGS_ADMIN_PASSWORD", PASSWORD)]).await;
    (app, served)
}

/// The value of the form field `name` in `html` (attribute order `name`, then `value`).
pub fn field(html: &str, name: &str) -> String {
    let start = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&start)
        .unwrap_or_else(|| panic!("no field {name} in {html}"));
    let rest = &html[at + start.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GET `url`; the CSRF field of its form and the cookies it set.
pub async fn form_of(url: &str, cookies: &str) -> (String, String) {
    let response = http()
        .get(url)
        .header(COOKIE, cookies)
        .send()
        .await
        .unwrap();
    let set: Vec<String> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let body = response.text().await.unwrap();
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no csrf field in {body}"))
        .to_owned();
    let jar = if set.is_empty() {
        cookies.to_owned()
    } else {
        set.join("; ")
    };
    (csrf, jar)
}

pub async fn post_form(url: &str, cookies: &str, body: &str) -> reqwest::Response {
    no_redirects()
        .post(url)
        .header(COOKIE, cookies)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_address_subscribed_twice_gets_one_confirmation_and_the_same_page() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let app = TestApp::new(&db.url, &smtp_config(&sink.url(), ""));
        app.run_ok(&["ingest"]);
        let _served = app.serve().await;
        let (csrf, jar) = form_of(&app.url("/"), "").await;
        let body = format!("csrf={csrf}&email=Reader%40Example.org&categories=leaflets&categories=news&frequency=daily");
        let forged = post_form(&app.url("/subscribe"), "", &body).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "no CSRF cookie, no sign-up");
        let first = post_form(&app.url("/subscribe"), &jar, &body).await;
        assert_eq!(first.status(), StatusCode::OK);
        let first = first.text().await.unwrap();
        let second = post_form(&app.url("/subscribe"), &jar, &body).await.text().await.unwrap();
        assert_eq!(first, second, "the answer never tells what happened");
        assert!(first.contains("Check your email"));
        // Both answers came after their requests queued whatever they queue:
        // once every outbox row is sent, nothing more will arrive.
        let store = db.open_another().await;
        let statuses = || async {
            sqlx::query_scalar::<_, String>("SELECT status FROM outbox")
                .fetch_all(store.pool())
                .await
                .unwrap()
        };
        wait_until(Duration::from_secs(30), || async {
            let statuses = statuses().await;
            !statuses.is_empty() && statuses.iter().all(|s| s == "sent")
        })
        .await;
        assert_eq!(statuses().await.len(), 1, "one confirmation queued per address per window");
        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "one confirmation per address per window");
        let m = &messages[0];
        assert_eq!(header(m, "x-tidings-kind"), "confirmation");
        assert_eq!(header(m, "to"), "Reader@example.org");
        let text = m["text"].as_str().unwrap();
        let link = text.lines().find(|l| l.contains("/confirm/")).unwrap().trim().to_owned();
        assert!(get_text(&link, 200).await.contains("Subscription confirmed"));
        let list = app.json(&["subscribers", "list", "--json"]);
        assert_eq!(list[0]["status"], "confirmed");
        assert_eq!(list[0]["frequency"], "daily");
        assert_eq!(list[0]["categories"], serde_json::json!(["leaflets", "news"]));
        // Confirmed now: subscribing again sends nothing and reads the same.
        let third = post_form(&app.url("/subscribe"), &jar, &body).await.text().await.unwrap();
        assert_eq!(third, first);
        // Another last hex digit, whatever it was.
        let last = if link.ends_with('0') { "1" } else { "0" };
        let tampered = format!("{}{last}", &link[..link.len() - 1]);
        assert_eq!(http().get(&tampered).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test]
async fn without_a_session_every_admin_url_redirects_and_wrong_passwords_are_limited() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("t.db").display());
    let app = TestApp::new(&url, "");
    let _served = app.serve_env(&[("TIDINGS_ADMIN_PASSWORD", PASSWORD)]).await;
    for path in [
        "/admin",
        "/admin/",
        "/admin/announce/abc",
        "/admin/anything/else",
    ] {
        let r = no_redirects().get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[LOCATION], "/admin/login", "{path}");
    }
    let r = post_form(&app.url("/admin/announce/abc"), "", "csrf=x").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (csrf, jar) = form_of(&app.url("/admin/login"), "").await;
    for _ in 0..5 {
        let r = post_form(
            &app.url("/admin/login"),
            &jar,
            &format!("csrf={csrf}&password=wrong"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.headers()
                .get(SET_COOKIE)
                .is_none_or(|c| !c.to_str().unwrap().contains("tidings_admin"))
        );
    }
    let right = format!("csrf={csrf}&password={}", PASSWORD.replace(' ', "+"));
    let r = post_form(&app.url("/admin/login"), &jar, &right).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "limited, even with the right password"
    );
}

/// Signs in and returns the cookie jar holding the session.
pub async fn sign_in(app: &TestApp) -> String {
    let (csrf, jar) = form_of(&app.url("/admin/login"), "").await;
    let right = format!("csrf={csrf}&password={}", PASSWORD.replace(' ', "+"));
    let r = post_form(&app.url("/admin/login"), &jar, &right).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    format!("{jar}; {}", session.split(';').next().unwrap())
}

#[tokio::test]
async fn the_admin_previews_confirms_and_records_an_announcement() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let (app, _served) = admin_app(&db.url, &sink).await;
        let jar = sign_in(&app).await;
        let home = http()
            .get(app.url("/admin"))
            .header(COOKIE, &jar)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            home.contains("<h1>Resources</h1>") && home.contains("Not yet"),
            "{home}"
        );
        let list = app.json(&["resources", "list", "--json"]);
        let ocean = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["title"].as_str().unwrap().starts_with("OCEAN"))
            .unwrap();
        let id = ocean["id"].as_str().unwrap();
        let preview_url = app.url(&format!("/admin/announce/{id}"));
        let (csrf, _) = form_of(&preview_url, &jar).await;
        let preview = http()
            .get(&preview_url)
            .header(COOKIE, &jar)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            preview.contains("<strong>1</strong> confirmed subscriber(s) of Leaflets"),
            "{preview}"
        );
        let digest = field(&preview, "digest");
        let unseen = format!("csrf={csrf}&message=Hello&do=send&digest={digest}");
        let refused = post_form(&preview_url, &jar, &unseen).await;
        assert_eq!(
            refused.status(),
            StatusCode::CONFLICT,
            "a note not previewed"
        );
        let fresh = refused.text().await.unwrap();
        assert!(fresh.contains("Not sent: the email has changed"), "{fresh}");
        assert!(
            fresh.contains(">Hello</textarea>"),
            "the typed note is kept"
        );
        let digest = field(&fresh, "digest");
        let send = format!("csrf={csrf}&message=Hello&do=send&digest={digest}");
        let r = post_form(&preview_url, &jar, &send).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let page = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(page.contains("/admin/announcements/"), "{page}");
        wait_until(Duration::from_secs(30), || async { sink.count() >= 1 }).await;
        assert!(
            sink.messages()[0]["text"]
                .as_str()
                .unwrap()
                .contains("Hello")
        );
        let again = post_form(&preview_url, &jar, &send).await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        let again = again.text().await.unwrap();
        assert!(
            again.contains("Not sent: this was already announced"),
            "{again}"
        );
        let home = http()
            .get(app.url("/admin"))
            .header(COOKIE, &jar)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            home.contains("Announced on ") && home.contains(" to 1 person"),
            "{home}"
        );
        for odd in [
            "?page=99999999999999999999999",
            "?page=abc&q=%25_%5C",
            "?category=nope",
        ] {
            let r = http()
                .get(app.url(&format!("/admin{odd}")))
                .header(COOKIE, &jar)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{odd}");
        }
        let r = http()
            .get(app.url("/admin/announcements/abc"))
            .header(COOKIE, &jar)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        let page = r.text().await.unwrap();
        assert!(
            page.contains("There is no announcement numbered abc."),
            "{page}"
        );
    })
    .await;
}

#[tokio::test]
async fn preferences_change_categories_and_frequency_with_the_token_from_an_email() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "[mail]\ntransport = \"file\"\ndir = \"outbox\"\n");
        app.run_ok(&[
            "subscribers",
            "add",
            "pat@example.org",
            "--categories",
            "leaflets",
            "--confirmed",
        ]);
        // Ingest after confirming: a subscriber's first window starts then.
        app.run_ok(&["ingest"]);
        app.run_ok(&["digest", "send", "--now"]);
        let eml = std::fs::read_dir(app.path("outbox"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .find(|m| m.contains("pat@example.org"))
            .expect("the digest was written as a file");
        let token = eml
            .split("/unsubscribe/")
            .nth(1)
            .and_then(|rest| rest.split('>').next())
            .expect("a List-Unsubscribe link")
            .to_owned();
        let _served = app.serve().await;
        let page = app.url(&format!("/preferences/{token}"));
        let (csrf, jar) = form_of(&page, "").await;
        let no_cookie = post_form(
            &page,
            "",
            &format!("csrf={csrf}&categories=news&frequency=daily"),
        )
        .await;
        assert_eq!(
            no_cookie.status(),
            StatusCode::FORBIDDEN,
            "the form is CSRF-protected"
        );
        let saved = post_form(
            &page,
            &jar,
            &format!("csrf={csrf}&categories=news&categories=reports&frequency=daily"),
        )
        .await;
        assert_eq!(saved.status(), StatusCode::OK);
        let list = app.json(&["subscribers", "list", "--json"]);
        let pat = &list.as_array().unwrap()[0];
        assert_eq!(pat["categories"], serde_json::json!(["news", "reports"]));
        assert_eq!(pat["frequency"], "daily");
        let forged = http()
            .get(app.url("/preferences/1.00000000000000000000000000000000"))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::NOT_FOUND);
    })
    .await;
}

#[tokio::test]
async fn a_note_too_long_is_kept_in_the_box_and_nothing_is_sent() {
    on_every_backend(|db| async move {
        let sink = Maildir::start();
        let (app, _served) = admin_app(&db.url, &sink).await;
        let jar = sign_in(&app).await;
        let list = app.json(&["resources", "list", "--json"]);
        let id = list[0]["id"].as_str().unwrap().to_owned();
        let url = app.url(&format!("/admin/announce/{id}"));
        let (csrf, _) = form_of(&url, &jar).await;
        let long = "a".repeat(2001);
        for action in ["preview", "send"] {
            let body = format!("csrf={csrf}&message={long}&do={action}&digest=x");
            let r = post_form(&url, &jar, &body).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{action}");
            let page = r.text().await.unwrap();
            assert!(
                page.contains("Not sent: the message is longer than 2000 characters"),
                "{page}"
            );
            assert!(page.contains(&format!(">{long}</textarea>")), "note kept");
            assert_eq!(field(&page, "digest"), "", "no Send without a preview");
        }
        let outbox = app.json(&["outbox", "list", "--json"]);
        assert_eq!(outbox, serde_json::json!([]));
    })
    .await;
}
