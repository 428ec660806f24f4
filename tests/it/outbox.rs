//! The outbox's state machine on a real store (SQLite, and PostgreSQL when
//! `TIDINGS_TEST_PG` is set): queued -> sending -> handed over -> sent,
//! failed or unconfirmed; claims that run out; retries, releases and
//! re-queues. Each step is read back from the database, as `outbox list`
//! and a second process would see it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tidings::store::{NewMessage, OutboxBacklog, OutboxMessage, Store};

use crate::support::db::on_every_backend;

/// 09:00:00 plus `seconds`, on a fixed day.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 4, 9, 0, 0).unwrap() + Duration::seconds(seconds)
}

fn message(key: &str) -> NewMessage {
    NewMessage {
        idem_key: key.to_owned(),
        kind: "announcement",
        recipient: format!("{}@example.org", key.replace('/', "-")),
        subscriber_id: None,
        subject: format!("About {key}"),
        message: format!("Subject: About {key}\r\n\r\nNews.\r\n").into_bytes(),
    }
}

/// Queues one message at `at(0)` and returns its row id.
async fn queued(store: &Store, key: &str) -> i64 {
    assert!(store.enqueue(&message(key), at(0)).await.unwrap());
    row(store, key).await.id
}

/// The row with `key`, as `outbox list` shows it.
async fn row(store: &Store, key: &str) -> OutboxMessage {
    store
        .list_outbox(false)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.idem_key == key)
        .unwrap_or_else(|| panic!("{key} is in the outbox"))
}

/// Whether the row's hand-over is recorded, straight from the database.
async fn handed_over(store: &Store, id: i64) -> bool {
    let at: Option<String> = sqlx::query_scalar("SELECT handed_over_at FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    at.is_some()
}

/// The ids a claim at `now` (lasting 60 s) takes.
async fn claim(store: &Store, now: i64) -> Vec<i64> {
    store
        .claim_outbox(at(now), at(now + 60), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn a_message_goes_queued_sending_handed_over_sent() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let id = queued(&store, "a").await;
        let fresh = row(&store, "a").await;
        assert_eq!((fresh.status.as_str(), fresh.attempts), ("queued", 0));
        assert!(
            !store.enqueue(&message("a"), at(1)).await.unwrap(),
            "a key queued twice is one row"
        );
        assert_eq!(store.list_outbox(false).await.unwrap().len(), 1);

        let claimed = store.claim_outbox(at(5), at(65), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, id);
        assert_eq!(claimed[0].attempts, 1);
        assert_eq!(claimed[0].claimed_until, at(65));
        assert_eq!(claimed[0].message, message("a").message);
        assert_eq!(row(&store, "a").await.status, "sending");
        assert!(
            claim(&store, 6).await.is_empty(),
            "a claimed row is not claimed twice"
        );

        assert!(!handed_over(&store, id).await);
        assert!(store.mark_handed_over(id, at(7)).await.unwrap());
        assert!(handed_over(&store, id).await);
        assert!(
            !store.mark_handed_over(id, at(8)).await.unwrap(),
            "only the first hand-over counts"
        );

        store.mark_sent(id, at(9)).await.unwrap();
        let sent = row(&store, "a").await;
        assert_eq!(sent.status, "sent");
        assert_eq!(sent.sent_at, Some(at(9)));
        assert_eq!(sent.last_error, None);
        assert!(claim(&store, 3600).await.is_empty(), "sent is final");
        assert_eq!(store.requeue(Some(id), at(3600)).await.unwrap(), 0);
        assert_eq!(
            row(&store, "a").await.status,
            "sent",
            "a sent row never moves"
        );
        assert_eq!(
            store.outbox_backlog().await.unwrap(),
            OutboxBacklog::default()
        );
    })
    .await;
}

#[tokio::test]
async fn a_refused_message_fails_and_moves_again_only_when_re_queued() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let id = queued(&store, "b").await;
        assert_eq!(claim(&store, 1).await, [id]);
        store.mark_failed(id, "550 no such user").await.unwrap();
        let failed = row(&store, "b").await;
        assert_eq!(failed.status, "failed");
        assert_eq!(failed.last_error.as_deref(), Some("550 no such user"));
        assert!(
            claim(&store, 3600).await.is_empty(),
            "failed rows are not sent"
        );
        assert_eq!(store.outbox_backlog().await.unwrap().failed, 1);
        assert_eq!(store.list_outbox(true).await.unwrap().len(), 1);

        // `outbox retry` without an id moves every failed row, due at once.
        assert_eq!(store.requeue(None, at(100)).await.unwrap(), 1);
        let again = row(&store, "b").await;
        assert_eq!((again.status.as_str(), again.attempts), ("queued", 0));
        assert_eq!(again.next_attempt_at, at(100));
        assert!(claim(&store, 99).await.is_empty(), "not before it is due");
        assert_eq!(claim(&store, 100).await, [id]);
    })
    .await;
}

#[tokio::test]
async fn a_retry_waits_until_its_time_and_forgets_the_hand_over() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let id = queued(&store, "c").await;
        assert_eq!(claim(&store, 1).await, [id]);
        assert!(store.mark_handed_over(id, at(2)).await.unwrap());
        store
            .mark_retry(id, at(300), "451 try again later")
            .await
            .unwrap();
        let waiting = row(&store, "c").await;
        assert_eq!(waiting.status, "queued");
        assert_eq!(waiting.next_attempt_at, at(300));
        assert_eq!(waiting.last_error.as_deref(), Some("451 try again later"));
        assert!(!handed_over(&store, id).await, "the server did not take it");
        let backlog = store.outbox_backlog().await.unwrap();
        assert_eq!((backlog.queued, backlog.retrying), (1, 1));

        assert!(claim(&store, 299).await.is_empty(), "not before its time");
        let second = store.claim_outbox(at(300), at(360), 10).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempts, 2, "each claim counts an attempt");
        assert!(
            store.mark_handed_over(id, at(301)).await.unwrap(),
            "the new attempt may hand it over"
        );
    })
    .await;
}

#[tokio::test]
async fn a_released_claim_does_not_count_as_an_attempt() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let id = queued(&store, "d").await;
        assert_eq!(claim(&store, 1).await, [id]);
        store.release(id).await.unwrap();
        let back = row(&store, "d").await;
        assert_eq!((back.status.as_str(), back.attempts), ("queued", 0));
        assert_eq!(claim(&store, 2).await, [id]);
        assert_eq!(row(&store, "d").await.attempts, 1);
    })
    .await;
}

/// A sender that died before the final dot: its claim runs out and another
/// takes the row; the dead sender's hand-over, were it to come late, is refused.
#[tokio::test]
async fn a_claim_that_runs_out_before_the_hand_over_is_taken_again() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let id = queued(&store, "e").await;
        assert_eq!(claim(&store, 0).await, [id]);
        assert!(claim(&store, 59).await.is_empty(), "the claim lasts 60 s");
        assert_eq!(
            store.orphaned_to_unconfirmed(at(61)).await.unwrap(),
            0,
            "nothing was handed over: nothing is unconfirmed"
        );
        let taken = store.claim_outbox(at(61), at(121), 10).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].attempts, 2);
        assert!(store.mark_handed_over(id, at(62)).await.unwrap());
        assert!(
            !store.mark_handed_over(id, at(63)).await.unwrap(),
            "the first sender learns the message is no longer its to finish"
        );
        store.mark_sent(id, at(64)).await.unwrap();
        assert_eq!(row(&store, "e").await.status, "sent");
    })
    .await;
}

/// A sender that died after the final dot may have delivered: its row is not
/// sent again but becomes `unconfirmed`, and moves only by its own id.
#[tokio::test]
async fn a_claim_that_runs_out_after_the_hand_over_is_unconfirmed() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let id = queued(&store, "f").await;
        let other = queued(&store, "g").await;
        assert_eq!(claim(&store, 0).await.len(), 2);
        assert!(store.mark_handed_over(id, at(1)).await.unwrap());
        assert_eq!(
            store.orphaned_to_unconfirmed(at(59)).await.unwrap(),
            0,
            "the claim still runs"
        );
        let reclaimed = claim(&store, 61).await;
        assert_eq!(
            reclaimed,
            [other],
            "a handed-over row is never claimed again"
        );
        store.mark_sent(other, at(62)).await.unwrap();
        assert_eq!(store.orphaned_to_unconfirmed(at(61)).await.unwrap(), 1);
        let orphan = row(&store, "f").await;
        assert_eq!(orphan.status, "unconfirmed");
        assert!(
            orphan
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("may have it")),
            "{orphan:?}"
        );
        assert_eq!(store.outbox_backlog().await.unwrap().unconfirmed, 1);
        assert!(claim(&store, 3600).await.is_empty());

        assert_eq!(
            store.requeue(None, at(4000)).await.unwrap(),
            0,
            "retrying every failed row leaves unconfirmed ones alone"
        );
        assert_eq!(store.requeue(Some(id), at(4000)).await.unwrap(), 1);
        assert_eq!(claim(&store, 4000).await, [id]);
        assert!(
            store.mark_handed_over(id, at(4001)).await.unwrap(),
            "a re-queued row starts without a hand-over"
        );
    })
    .await;
}

/// A send handed over with no answer (the connection dropped after the dot).
#[tokio::test]
async fn a_hand_over_with_no_answer_is_unconfirmed_and_not_sent_again() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let id = queued(&store, "h").await;
        assert_eq!(claim(&store, 0).await, [id]);
        assert!(store.mark_handed_over(id, at(1)).await.unwrap());
        store
            .mark_unconfirmed(id, "connection closed after the final dot")
            .await
            .unwrap();
        let row = row(&store, "h").await;
        assert_eq!(row.status, "unconfirmed");
        assert_eq!(
            row.last_error.as_deref(),
            Some("connection closed after the final dot")
        );
        assert!(claim(&store, 3600).await.is_empty());
        assert_eq!(store.list_outbox(true).await.unwrap().len(), 1);
    })
    .await;
}

/// Two stores on one database, as two processes: each due row is claimed by
/// exactly one of them.
#[tokio::test]
async fn two_processes_claim_disjoint_rows() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let other = db.open_another().await;
        for i in 0..20 {
            queued(&store, &format!("m/{i:02}")).await;
        }
        let (a, b) = tokio::join!(
            store.claim_outbox(at(1), at(61), 15),
            other.claim_outbox(at(1), at(61), 15)
        );
        // Whatever neither took (a claim may skip rows the other holds) is
        // still there for the next claim.
        let rest = store.claim_outbox(at(2), at(62), 20).await.unwrap();
        let mut ids: Vec<i64> = [a.unwrap(), b.unwrap(), rest]
            .into_iter()
            .flatten()
            .map(|c| c.id)
            .collect();
        let claimed = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), claimed, "no row claimed twice");
        assert_eq!(claimed, 20, "every row claimed once");
    })
    .await;
}
