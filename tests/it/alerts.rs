// Operator alerts: one email when a source keeps failing, one when it recovers.

use serde_json::Value;

use crate::support::app::TestApp;
use crate::support::db::on_every_backend;
use crate::support::fixture_site::FixtureSite;

fn alerts(app: &TestApp) -> Vec<Value> {
    let list = app.json(&["outbox", "list", "--json"]);
    list.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "alert")
        .cloned()
        .collect()
}

#[tokio::test]
async fn admins_get_one_alert_when_a_source_keeps_failing_and_one_when_it_recovers() {
    on_every_backend(|db| async move {
        let site = FixtureSite::start("v1");
        let mail = "[mail]\ntransport = \"file\"\ndir = \"outbox\"\nadmins = [\"ops@example.org\"]\nalert_after = 2\n";
        let app = TestApp::new(&db.url, &format!("{}{mail}", site.source_toml()));
        assert_eq!(app.run(&["ingest"]).status.code(), Some(0));
        site.switch("v3-broken");
        assert_eq!(app.run(&["ingest"]).status.code(), Some(1));
        assert!(alerts(&app).is_empty(), "one failure is not yet an alert");
        for _ in 0..3 {
            assert_eq!(app.run(&["ingest"]).status.code(), Some(1));
        }
        let raised = alerts(&app);
        assert_eq!(raised.len(), 1, "one alert, not one per failure: {raised:?}");
        assert_eq!(raised[0]["recipient"], "ops@example.org");
        assert_eq!(raised[0]["status"], "sent");
        assert!(raised[0]["subject"].as_str().unwrap().ends_with("source library is failing"));

        site.switch("v1");
        assert_eq!(app.run(&["ingest"]).status.code(), Some(0));
        assert_eq!(app.run(&["ingest"]).status.code(), Some(0));
        let all = alerts(&app);
        assert_eq!(all.len(), 2, "one more when it recovers: {all:?}");
        let eml: Vec<String> = std::fs::read_dir(app.path("outbox"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        let failing = eml.iter().find(|m| m.contains("is failing")).unwrap();
        assert!(failing.contains("X-Tidings-Kind: alert"));
        assert!(failing.contains("has failed 2 runs in a row"), "{failing}");
        assert!(!failing.contains("List-Unsubscribe"), "operators are on no list");
        assert!(eml.iter().any(|m| m.contains("works again")));
    })
    .await;
}
