// Failures answer in the asker's language over real HTTP: an HTML page with a
// readable message for the pages people open, JSON for the API.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::http;

/// The status, content type and body of one request.
async fn answer(app: &TestApp, method: Method, path: &str) -> (StatusCode, String, String) {
    let response = http()
        .request(method, app.url(path))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The first `<h1>` of a page, or the whole body when there is none.
fn heading(body: &str) -> &str {
    body.split_once("<h1>")
        .and_then(|(_, rest)| rest.split_once("</h1>"))
        .map_or(body, |(h1, _)| h1)
}

#[tokio::test]
async fn failing_pages_answer_html_and_the_api_answers_json() {
    let app = TestApp::new("sqlite://tidings.db", "");
    app.run_ok(&["ingest"]);
    let _served = app.serve().await;

    let pages = [
        (
            Method::GET,
            "/resources/0000000000000000",
            404,
            "Page not found",
        ),
        (Method::GET, "/no/such/page", 404, "Page not found"),
        (
            Method::GET,
            "/preferences/not-a-token",
            404,
            "Link not valid",
        ),
        (
            Method::GET,
            "/subscribe",
            405,
            "This request cannot be answered",
        ),
        (Method::DELETE, "/", 405, "This request cannot be answered"),
    ];
    for (method, path, status, expected) in pages {
        let (got, content_type, body) = answer(&app, method.clone(), path).await;
        assert_eq!(got.as_u16(), status, "{method} {path}");
        assert!(
            content_type.starts_with("text/html"),
            "{method} {path}: {content_type}"
        );
        assert_eq!(heading(&body), expected, "{method} {path}");
        assert!(body.contains("<p>"), "{method} {path}: a sentence: {body}");
        assert!(!body.contains("\"error\""), "{method} {path}: {body}");
    }

    let api = [
        (Method::GET, "/api/resources/0000000000000000", 404),
        (Method::GET, "/api/no-such-endpoint", 404),
        (Method::POST, "/api/resources", 405),
        (Method::GET, "/api/resources?since=yesterday", 400),
    ];
    for (method, path, status) in api {
        let (got, content_type, body) = answer(&app, method.clone(), path).await;
        assert_eq!(got.as_u16(), status, "{method} {path}");
        assert_eq!(content_type, "application/json", "{method} {path}");
        let json: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"));
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: {body}"
        );
    }
}
