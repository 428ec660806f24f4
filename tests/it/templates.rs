// `site.templates_dir`: overrides from a folder anywhere change served pages
// and digest emails; `tidings check` names a folder that is not one.

use std::path::Path;

use crate::support::app::TestApp;
use crate::support::http;

/// A scratch installation whose `[site]` names `dir` as its templates folder.
fn app_with_templates_dir(dir: &Path) -> TestApp {
    let app = TestApp::new("sqlite://tidings.db", "");
    let config_path = app.path("tidings.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let line = format!("[site]\ntemplates_dir = {:?}\n", dir.display().to_string());
    std::fs::write(&config_path, config.replacen("[site]\n", &line, 1)).unwrap();
    app
}

#[tokio::test]
async fn an_override_in_templates_dir_changes_the_front_page() {
    let overrides = tempfile::tempdir().unwrap();
    std::fs::write(
        overrides.path().join("index.html"),
        "<!doctype html><title>{{ site.title }}</title><p>Front page from the override folder</p>",
    )
    .unwrap();
    let app = app_with_templates_dir(overrides.path());
    app.run_ok(&["ingest"]);
    let _served = app.serve().await;
    let page = http().get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let body = page.text().await.unwrap();
    assert!(
        body.contains("<p>Front page from the override folder</p>"),
        "{body}"
    );
    assert!(body.contains("<title>Test Library</title>"), "{body}");
}

#[tokio::test]
async fn an_override_in_templates_dir_changes_the_digest_email() {
    let overrides = tempfile::tempdir().unwrap();
    std::fs::write(
        overrides.path().join("digest.txt"),
        "Digest from the override folder: {{ subject }}\n",
    )
    .unwrap();
    let app = app_with_templates_dir(overrides.path());
    app.run_ok(&[
        "subscribers",
        "add",
        "ann@example.org",
        "--categories",
        "all",
        "--confirmed",
    ]);
    app.run_ok(&["ingest"]);
    app.run_ok(&["digest", "send", "--now"]);
    let sent: Vec<String> = std::fs::read_dir(app.path("outbox"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(sent.len(), 1, "one digest");
    assert!(
        sent[0].contains("Digest from the override folder: "),
        "{}",
        sent[0]
    );
}

#[tokio::test]
async fn check_names_a_templates_dir_that_is_not_a_directory() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("not-a-folder");
    std::fs::write(&file, "").unwrap();
    let app = app_with_templates_dir(&file);
    let output = app.run(&["check"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!("site.templates_dir: {} is not a directory", file.display());
    assert!(stderr.contains(&expected), "{stderr}");

    let missing = scratch.path().join("missing");
    let app = app_with_templates_dir(&missing);
    let stderr = String::from_utf8_lossy(&app.run(&["check"]).stderr).into_owned();
    assert!(stderr.contains("site.templates_dir"), "{stderr}");
}
