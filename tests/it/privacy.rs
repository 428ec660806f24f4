// Issue 18 (UK GDPR) through the binary on SQLite and PostgreSQL: export
// lists every row naming an address, erase leaves none (database, file, mail
// folder) and refuses a suppressed address later, retention deletes exactly
// the older outbox rows, and Mailchimp and listmonk exports import.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use sqlx::Row;
use tidings::store::{Backend, Store};

use crate::support::app::{TestApp, wait_until};
use crate::support::db::on_every_backend;
use crate::web::{form_of, post_form};

const ANN: &str = "ann@example.org";
const BOB: &str = "bob@example.org";
const REASON: &str = "asked at the library desk, 3 Dec";

/// Ann and Bob confirmed (Ann with a reason), the seeds ingested, and one
/// resource announced to both and written to `outbox/` by the file transport.
fn announced(db_url: &str, extra: &str) -> TestApp {
    let app = TestApp::new(db_url, extra);
    let ann = [
        "subscribers",
        "add",
        ANN,
        "--categories",
        "all",
        "--confirmed",
        "--reason",
        REASON,
    ];
    app.run_ok(&ann);
    app.run_ok(&[
        "subscribers",
        "add",
        BOB,
        "--categories",
        "all",
        "--confirmed",
    ]);
    app.run_ok(&["ingest"]);
    let list = app.json(&["resources", "list", "--json"]);
    let id = list[0]["id"].as_str().unwrap().to_owned();
    app.run_ok(&["announce", &id]);
    app
}

/// Every row of every table with a column containing `needle` (any case),
/// as table -> row ids (the `id` column, else `?`), read from the catalog
/// so a table added later is searched too.
async fn rows_naming(store: &Store, needle: &str) -> BTreeMap<String, BTreeSet<String>> {
    let needle = needle.to_lowercase();
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (table, column, bytes) in text_columns(store).await {
        let sql = match (store.backend(), bytes) {
            (Backend::Sqlite, _) => format!(
                "SELECT CAST(rowid AS TEXT) AS id FROM \"{table}\" \
                 WHERE instr(lower(CAST(\"{column}\" AS TEXT)), $1) > 0"
            ),
            (Backend::Postgres, false) => format!(
                "SELECT COALESCE(to_jsonb(t) ->> 'id', '?') AS id FROM \"{table}\" t \
                 WHERE strpos(lower(\"{column}\"::text), $1) > 0"
            ),
            (Backend::Postgres, true) => format!(
                "SELECT COALESCE(to_jsonb(t) ->> 'id', '?') AS id FROM \"{table}\" t \
                 WHERE strpos(lower(encode(\"{column}\", 'escape')), $1) > 0"
            ),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&needle)
            .fetch_all(store.pool())
            .await
            .unwrap_or_else(|e| panic!("search {table}.{column}: {e}"));
        for row in rows {
            let id: String = row.try_get("id").unwrap();
            found.entry(table.clone()).or_default().insert(id);
        }
    }
    found
}

/// (table, column, is binary) for every column that can hold text.
async fn text_columns(store: &Store) -> Vec<(String, String, bool)> {
    let sql = match store.backend() {
        Backend::Sqlite => {
            "SELECT m.name AS t, p.name AS c, upper(p.type) = 'BLOB' AS b \
             FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' \
             AND (upper(p.type) IN ('TEXT', 'BLOB', ''))"
        }
        Backend::Postgres => {
            "SELECT table_name::text AS t, column_name::text AS c, data_type = 'bytea' AS b \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND data_type IN ('text', 'bytea', 'character varying', 'jsonb', 'json')"
        }
    };
    let rows = sqlx::query(sql).fetch_all(store.pool()).await.unwrap();
    let columns: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| {
            let binary = match store.backend() {
                Backend::Sqlite => r.try_get::<i64, _>("b").unwrap() == 1,
                Backend::Postgres => r.try_get::<bool, _>("b").unwrap(),
            };
            (r.try_get("t").unwrap(), r.try_get("c").unwrap(), binary)
        })
        .collect();
    assert!(
        columns
            .iter()
            .any(|(t, c, _)| t == "outbox" && c == "message"),
        "{columns:?}"
    );
    columns
}

/// Files under `dir` whose bytes contain `needle`.
fn files_naming(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && contains(&std::fs::read(p).unwrap(), needle))
        .collect()
}

fn contains(bytes: &[u8], needle: &str) -> bool {
    let needle = needle.to_lowercase();
    bytes
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

fn ids(set: &BTreeSet<String>) -> BTreeSet<i64> {
    set.iter().map(|id| id.parse().unwrap()).collect()
}

#[tokio::test]
async fn export_lists_every_row_that_names_the_address() {
    on_every_backend(|db| async move {
        let app = announced(&db.url, "");
        let store = db.open_another().await;
        let held = rows_naming(&store, ANN).await;
        let tables: Vec<&str> = held.keys().map(String::as_str).collect();
        assert_eq!(tables, ["outbox", "subscribers"], "{held:?}");

        let export = app.json(&["subscribers", "export", ANN]);
        assert_eq!(export["email"], ANN);
        let subscriber = &export["subscriber"];
        assert_eq!(
            ids(&held["subscribers"]),
            BTreeSet::from([subscriber["id"].as_i64().unwrap()])
        );
        assert_eq!(subscriber["status"], "confirmed");
        assert_eq!(subscriber["categories"], serde_json::json!(["all"]));
        assert!(
            subscriber["created_at"].as_str().unwrap().ends_with('Z'),
            "{subscriber}"
        );
        let consent = &subscriber["consent"];
        assert_eq!(consent["route"], "cli", "{consent}");
        assert_eq!(consent["confirmed_by"], "cli", "{consent}");
        assert_eq!(consent["reason"], REASON, "{consent}");

        let messages = export["messages"].as_array().unwrap();
        let exported: BTreeSet<i64> = messages.iter().map(|m| m["id"].as_i64().unwrap()).collect();
        assert_eq!(exported, ids(&held["outbox"]), "{export}");
        let message = &messages[0];
        assert_eq!(message["kind"], "announcement");
        assert_eq!(message["status"], "sent");
        assert!(
            message["subject"].as_str().unwrap().starts_with("New in"),
            "{message}"
        );
        assert!(message["sent_at"].is_string(), "{message}");
        assert!(message.get("last_error").is_some(), "{message}");
        assert_eq!(export["suppression_listed"], false);

        let nobody = app.json(&["subscribers", "export", "nobody@example.org"]);
        assert_eq!(nobody["subscriber"], Value::Null);
        assert_eq!(nobody["messages"], serde_json::json!([]));
    })
    .await;
}

#[tokio::test]
async fn erase_leaves_no_trace_and_a_suppressed_address_is_refused_later() {
    on_every_backend(|db| async move {
        let app = announced(&db.url, "");
        let store = db.open_another().await;
        // Ann's mail was refused until she was suppressed.
        sqlx::query("UPDATE subscribers SET status = 'suppressed', refusals = 3 WHERE email = $1")
            .bind(ANN)
            .execute(store.pool())
            .await
            .unwrap();
        let mail_dir = app.path("outbox");
        assert_eq!(
            files_naming(&mail_dir, ANN).len(),
            1,
            "the announcement was written"
        );

        let said = app.run_ok(&["subscribers", "erase", ANN]);
        assert!(said.contains("subscribers: 1 row(s) removed"), "{said}");
        assert!(said.contains("outbox: 1 row(s) removed"), "{said}");
        assert!(said.contains("files: 1 removed"), "{said}");
        assert!(said.contains("suppression list"), "{said}");

        assert_eq!(rows_naming(&store, ANN).await, BTreeMap::new());
        assert!(files_naming(&mail_dir, ANN).is_empty());
        assert_eq!(files_naming(&mail_dir, BOB).len(), 1, "Bob's mail stays");
        assert!(rows_naming(&store, BOB).await.contains_key("subscribers"));
        if store.backend() == Backend::Sqlite {
            store.close().await;
            let file = db.url.trim_start_matches("sqlite://");
            for path in [file.to_owned(), format!("{file}-wal")] {
                if let Ok(bytes) = std::fs::read(&path) {
                    assert!(!contains(&bytes, ANN), "{path} still holds the address");
                }
            }
        }

        let add = app.run(&["subscribers", "add", ANN, "--categories", "all"]);
        assert_eq!(add.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&add.stderr).contains("erased while suppressed"));
        std::fs::write(app.path("again.csv"), format!("{BOB},all\n{ANN},all\n")).unwrap();
        let import = app.run(&["subscribers", "import", "again.csv"]);
        assert_eq!(import.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&import.stderr);
        assert!(
            stderr.contains("line 2: ann@example.org was erased while suppressed"),
            "{stderr}"
        );

        // Bob was never suppressed: erased, he may sign up again; Ann may not.
        app.run_ok(&["subscribers", "erase", BOB]);
        let _served = app.serve().await;
        for email in [ANN, BOB] {
            let (csrf, jar) = form_of(&app.url("/"), "").await;
            let body = format!(
                "csrf={csrf}&email={}&categories=all&frequency=weekly",
                email.replace('@', "%40")
            );
            let answer = post_form(&app.url("/subscribe"), &jar, &body).await;
            assert!(answer.status().is_success(), "{email}: {}", answer.status());
        }
        let store = db.open_another().await;
        assert!(rows_naming(&store, BOB).await.contains_key("subscribers"));
        assert_eq!(rows_naming(&store, ANN).await, BTreeMap::new());
    })
    .await;
}

#[tokio::test]
async fn retention_deletes_exactly_the_older_outbox_rows() {
    on_every_backend(|db| async move {
        let app = announced(&db.url, "[mail]\nretention_days = 30\n");
        let store = db.open_another().await;
        let count = |sql: &'static str| {
            let store = store.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(store.pool())
                    .await
                    .unwrap()
            }
        };
        let events = count("SELECT COUNT(*) FROM change_events").await;
        let revisions = count("SELECT COUNT(*) FROM revisions").await;
        // Ann's announcement went out 31 days ago by now; the change events too.
        let old = "2020-01-01T00:00:00.000000Z";
        sqlx::query("UPDATE outbox SET created_at = $1, sent_at = $1 WHERE recipient = $2")
            .bind(old)
            .bind(ANN)
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE change_events SET at = $1")
            .bind(old)
            .execute(store.pool())
            .await
            .unwrap();

        let said = app.run_ok(&["outbox", "prune"]);
        assert!(
            said.contains("removed 1 outbox message(s) finished more than 30 days ago"),
            "{said}"
        );
        let left: Vec<String> = sqlx::query_scalar("SELECT recipient FROM outbox")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(left, [BOB]);
        assert_eq!(count("SELECT COUNT(*) FROM change_events").await, events);
        assert_eq!(count("SELECT COUNT(*) FROM revisions").await, revisions);
        assert_eq!(
            count("SELECT CAST(SUM(count) AS BIGINT) FROM outbox_pruned WHERE status = 'sent'")
                .await,
            1
        );

        // `serve`'s leader prunes at start.
        sqlx::query("UPDATE outbox SET created_at = $1, sent_at = $1")
            .bind(old)
            .execute(store.pool())
            .await
            .unwrap();
        let _served = app.serve().await;
        wait_until(Duration::from_secs(20), || {
            let store = store.clone();
            async move {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
                n == 0
            }
        })
        .await;
        assert_eq!(
            count("SELECT CAST(SUM(count) AS BIGINT) FROM outbox_pruned WHERE status = 'sent'")
                .await,
            2
        );
    })
    .await;
}

#[tokio::test]
async fn check_bounds_retention_days() {
    for (days, ok) in [("0", false), ("3651", false), ("1", true), ("3650", true)] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let app = TestApp::new(&url, &format!("[mail]\nretention_days = {days}\n"));
        let out = app.run(&["check"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stderr.contains("mail.retention_days"),
            !ok,
            "{days}: {stderr}"
        );
    }
}

const MAILCHIMP_HEADER: &str = "Email Address,First Name,Last Name,Address,Phone Number,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,LAST_CHANGED,LEID,EUID,NOTES,TAGS";

/// `subscribers list --json` as address -> status.
fn statuses(app: &TestApp) -> BTreeMap<String, String> {
    let list = app.json(&["subscribers", "list", "--json"]);
    let rows = list.as_array().unwrap().iter();
    rows.map(|s| {
        (
            s["email"].as_str().unwrap().to_owned(),
            s["status"].as_str().unwrap().to_owned(),
        )
    })
    .collect()
}

#[tokio::test]
async fn mailchimp_and_listmonk_exports_import_with_their_consent_times() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        app.run_ok(&["ingest"]);
        // As Mailchimp writes them: a byte-order mark, CRLF, an address over two lines.
        let members = format!(
            "\u{feff}{MAILCHIMP_HEADER}\r\n\
             Ann@Example.org,Ann,Lee,\"1 Mile End Rd\r\nLondon E1\",,2,2023-01-05 10:11:12,192.0.2.1,2023-01-05 10:20:00,192.0.2.1,,,,,,GB,,2023-02-01 09:00:00,123,abc,,\"\"\"Leaflets\"\"\"\r\n\
             carol@example.org,Carol,,,,2,,,2023-03-01 08:00:00,,,,,,,,,2023-03-01 08:00:00,124,abd,,\r\n"
        );
        std::fs::write(app.path("members.csv"), members).unwrap();
        let cleaned = format!("\u{feff}{MAILCHIMP_HEADER},CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID\r\ndave@example.org,Dave,,,,1,2021-01-01 00:00:00,,2021-01-01 00:05:00,,,,,,,,,2024-01-01 00:00:00,125,abe,,,2024-01-01 00:00:00,\"June, news\",c1\r\n");
        std::fs::write(app.path("cleaned.csv"), cleaned).unwrap();
        let unsubscribed = format!("{MAILCHIMP_HEADER},UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_CAMPAIGN_ID,UNSUB_REASON,UNSUB_REASON_OTHER\nerin@example.org,Erin,,,,1,,,,,,,,,,,,,126,abf,,,2024-02-02 00:00:00,,,,\n");
        std::fs::write(app.path("unsubscribed.csv"), unsubscribed).unwrap();
        let listmonk = "uuid,email,name,attributes,status,created_at,updated_at\n\
            5e4b3c2a-0000-4000-8000-000000000001,frank@example.org,Frank,\"{\"\"note\"\": \"\"line one\nline two\"\"}\",enabled,2022-04-01 12:00:00.000000+00,2022-04-01 12:00:00.000000+00\n\
            5e4b3c2a-0000-4000-8000-000000000002,gina@example.org,Gina,{},blocklisted,2022-05-01 12:00:00.000000+00,2022-06-01 12:00:00.000000+00\n";
        std::fs::write(app.path("listmonk.csv"), listmonk).unwrap();

        for (file, format) in [("members.csv", "mailchimp"), ("cleaned.csv", "mailchimp"), ("unsubscribed.csv", "mailchimp"), ("listmonk.csv", "listmonk")] {
            app.run_ok(&["subscribers", "import", file, "--format", format]);
        }
        let expected = [
            ("Ann@example.org", "confirmed"),
            ("carol@example.org", "confirmed"),
            ("dave@example.org", "suppressed"),
            ("erin@example.org", "suppressed"),
            ("frank@example.org", "confirmed"),
            ("gina@example.org", "suppressed"),
        ];
        let expected: BTreeMap<String, String> =
            expected.iter().map(|(e, s)| ((*e).to_owned(), (*s).to_owned())).collect();
        assert_eq!(statuses(&app), expected);

        let ann = app.json(&["subscribers", "export", "Ann@example.org"]);
        let consent = &ann["subscriber"]["consent"];
        assert_eq!(consent["route"], "import", "{consent}");
        assert_eq!(consent["reason"], "mailchimp import of members.csv", "{consent}");
        assert_eq!(consent["source_optin_at"], "2023-01-05 10:11:12", "{consent}");
        assert_eq!(consent["source_confirmed_at"], "2023-01-05 10:20:00", "{consent}");
        let frank = app.json(&["subscribers", "export", "frank@example.org"]);
        assert_eq!(frank["subscriber"]["consent"]["source_optin_at"], "2022-04-01 12:00:00.000000+00");

        // Suppressed imports are sent nothing.
        let list = app.json(&["resources", "list", "--json"]);
        app.run_ok(&["announce", list[0]["id"].as_str().unwrap()]);
        let store = db.open_another().await;
        let mut sent: Vec<String> = sqlx::query_scalar("SELECT recipient FROM outbox")
            .fetch_all(store.pool()).await.unwrap();
        sent.sort();
        assert_eq!(sent, ["Ann@example.org", "carol@example.org", "frank@example.org"]);
    })
    .await;
}

#[tokio::test]
async fn a_bad_row_stops_an_import_unless_skip_bad() {
    on_every_backend(|db| async move {
        let app = TestApp::new(&db.url, "");
        let text = format!(
            "{MAILCHIMP_HEADER}\nok@example.org,Ok,,\"2 Bow Rd\nLondon\",,,,,,,,,,,,,,,,,,\nnot-an-address,,,,,,,,,,,,,,,,,,,,,\nok@example.org,Again,,,,,,,,,,,,,,,,,,,,\nfine@example.org,,,,,,,,,,,,,,,,,,,,,\n"
        );
        std::fs::write(app.path("members.csv"), text).unwrap();
        let refused = app.run(&["subscribers", "import", "members.csv", "--format", "mailchimp"]);
        assert_eq!(refused.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("members.csv line 4: "), "{stderr}");
        assert!(stderr.contains("members.csv line 5: ok@example.org appears twice"), "{stderr}");
        assert!(stderr.contains("nothing was imported"), "{stderr}");
        assert_eq!(statuses(&app), BTreeMap::new());

        let args = ["subscribers", "import", "members.csv", "--format", "mailchimp", "--skip-bad"];
        let skipped = app.run(&args);
        assert!(skipped.status.success());
        let stderr = String::from_utf8_lossy(&skipped.stderr);
        assert!(stderr.contains("skipped members.csv line 4"), "{stderr}");
        assert!(stderr.contains("skipped members.csv line 5"), "{stderr}");
        let emails: Vec<String> = statuses(&app).into_keys().collect();
        assert_eq!(emails, ["fine@example.org", "ok@example.org"]);
    })
    .await;
}
