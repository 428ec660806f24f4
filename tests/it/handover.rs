// The hand-over gate against the real binary: a raw SMTP server in the test
// looks up each message's outbox row the moment the final `\r\n.\r\n`
// arrives, before answering, and finds the hand-over already committed. This
// depends on lettre writing body, flush, dot in that order (not a documented
// API, hence lettre's exact pin in Cargo.toml); if a new lettre sends the dot
// with the body, the row is still unmarked here and this test fails.

use std::sync::{Arc, Mutex};

use tidings::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::support::app::TestApp;
use crate::support::db::on_every_backend;
use crate::support::smtp::smtp_config;

/// For each message: its recipient and the row's `handed_over_at` as read
/// when the final dot arrived.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Accepts SMTP sessions on `listener` until the test ends.
async fn watch_dots(listener: TcpListener, store: Store, seen: Seen) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(session(socket, store.clone(), Arc::clone(&seen)));
    }
}

/// One SMTP session: accepts everything; at each final dot, reads the
/// recipient's outbox row before answering.
async fn session(socket: TcpStream, store: Store, seen: Seen) {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let mut recipient = String::new();
    let mut line = Vec::new();
    write.write_all(b"220 dot-watcher ESMTP\r\n").await.unwrap();
    loop {
        line.clear();
        if read.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-dot-watcher\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("RCPT TO:") {
            let text = String::from_utf8_lossy(&line);
            recipient = text[text.find('<').unwrap() + 1..text.find('>').unwrap()].to_owned();
            b"250 OK\r\n"
        } else if command.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await.unwrap();
            loop {
                line.clear();
                if read.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == b".\r\n" {
                    break;
                }
            }
            let mark: Option<String> =
                sqlx::query_scalar("SELECT handed_over_at FROM outbox WHERE recipient = $1")
                    .bind(&recipient)
                    .fetch_one(store.pool())
                    .await
                    .unwrap();
            seen.lock().unwrap().push((recipient.clone(), mark));
            b"250 OK queued\r\n"
        } else if command.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 OK\r\n"
        };
        write.write_all(reply).await.unwrap();
    }
}

#[tokio::test]
async fn every_final_dot_leaves_after_its_hand_over_is_committed() {
    on_every_backend(|db| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let seen = Seen::default();
        let server = tokio::spawn(watch_dots(
            listener,
            db.open_another().await,
            Arc::clone(&seen),
        ));
        // Two connections, reused: the gate re-arms for every message.
        let app = TestApp::new(&db.url, &smtp_config(&url, "concurrency = 2\n"));
        let readers: Vec<String> = (0..6).map(|i| format!("reader{i}@example.org")).collect();
        for reader in &readers {
            app.run_ok(&[
                "subscribers",
                "add",
                reader,
                "--categories",
                "all",
                "--confirmed",
            ]);
        }
        app.run_ok(&["ingest"]);
        let list = app.json(&["resources", "list", "--json"]);
        let id = list[0]["id"].as_str().unwrap().to_owned();
        let out = tokio::task::spawn_blocking(move || app.run_ok(&["announce", &id]))
            .await
            .unwrap();
        assert!(out.contains("sent 6,"), "{out}");
        server.abort();

        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let recipients: Vec<&str> = seen.iter().map(|(to, _)| to.as_str()).collect();
        assert_eq!(recipients, readers, "one message each");
        for (to, mark) in &seen {
            assert!(
                mark.is_some(),
                "the final dot to {to} arrived before its hand-over was committed"
            );
        }
    })
    .await;
}
