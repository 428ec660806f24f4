//! The store against real databases (SQLite file, and PostgreSQL when
//! `TIDINGS_TEST_PG` is set): migrations, the apply transaction, concurrent
//! runs, and the queries feeds and the CLI use.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tidings::clock::FixedClock;
use tidings::identity::resource_id;
use tidings::model::{
    Block, Category, CategoryChoice, CategorySlug, ChangeKind, Entry, EntryDate, Frequency, Summary,
};
use tidings::reconcile::{Observed, ReconcileOptions, reconcile};
use tidings::store::{AppliedRun, NewMessage, NewSubscriber, ResourceFilter, Store, StoreError};
use url::Url;

use crate::support::db::on_every_backend;

const SOURCE: &str = "library";

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, day, 9, 30, 0).unwrap()
}

fn observed(title: &str, link: Option<&str>, summary: &str, category: &str) -> Observed {
    let mut entry = Entry::titled(title);
    entry.link = link.map(|l| Url::parse(l).expect("test links are URLs"));
    entry.summary = Summary::paragraph(summary);
    Observed::new(SOURCE, entry, Category::new(category))
}

/// Load, reconcile and apply one snapshot, as ingest does.
async fn run(store: &Store, snapshot: &[Observed], day: u32, opts: ReconcileOptions) -> AppliedRun {
    let identities: Vec<String> = snapshot.iter().map(|o| o.identity.clone()).collect();
    let state = store
        .stored_for_reconcile(SOURCE, &identities)
        .await
        .expect("state loads");
    let set = reconcile(&state.stored, snapshot, &opts);
    store
        .apply(
            SOURCE,
            &set,
            snapshot.len(),
            state.run_seq,
            &FixedClock::new(at(day)),
        )
        .await
        .expect("run applies")
}

async fn kinds(store: &Store, o: &Observed) -> Vec<ChangeKind> {
    let events = store
        .events_for(&resource_id(&o.identity))
        .await
        .expect("events load");
    events.into_iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn migrating_twice_is_a_no_op() {
    on_every_backend(|db| async move {
        assert!(!db.store.is_migrated().await.unwrap());
        db.store.migrate().await.unwrap();
        assert!(db.store.is_migrated().await.unwrap());
        db.store.migrate().await.unwrap();
        assert!(db.store.is_migrated().await.unwrap());
        assert_eq!(db.store.feed_version().await.unwrap(), 0);
        db.store.ping().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn new_changed_withdrawn_reappeared_round_trip() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let opts = ReconcileOptions::default();
        let a = observed(
            "Birth trauma leaflet",
            Some("https://ex.org/a"),
            "Support.",
            "Leaflets",
        );
        let b = observed("Carers plan", None, "A plan.", "Strategies and plans");
        let applied = run(&store, &[a.clone(), b.clone()], 1, opts).await;
        assert_eq!((applied.counts.new, applied.feed_version), (2, 1));

        let a2 = observed(
            "Birth trauma leaflet",
            Some("https://ex.org/a?utm_source=x"),
            "More support.",
            "Leaflets",
        );
        let applied = run(&store, std::slice::from_ref(&a2), 2, opts).await;
        assert_eq!((applied.counts.changed, applied.counts.withdrawn), (1, 0));
        let applied = run(&store, std::slice::from_ref(&a2), 3, opts).await;
        assert_eq!(
            (
                applied.counts.withdrawn,
                applied.counts.unchanged,
                applied.feed_version
            ),
            (1, 1, 3)
        );
        let applied = run(&store, &[a2.clone(), b.clone()], 4, opts).await;
        assert_eq!((applied.counts.reappeared, applied.feed_version), (1, 4));

        let a_id = resource_id(&a.identity);
        let revisions = store.revisions(&a_id).await.unwrap();
        let summaries: Vec<String> = revisions.iter().map(|r| r.summary.plain_text()).collect();
        assert_eq!(summaries, ["Support.", "More support."]);
        assert_eq!(revisions[1].seen_at, at(2));
        let events = store.events_for(&a_id).await.unwrap();
        assert_eq!(events[1].fields.len(), 1);
        assert_eq!(
            (
                events[1].fields[0].field,
                events[1].fields[0].after.as_str()
            ),
            ("summary", "More support.")
        );
        assert_eq!(
            kinds(&store, &a).await,
            [ChangeKind::New, ChangeKind::Changed]
        );
        let b_kinds = [
            ChangeKind::New,
            ChangeKind::Withdrawn,
            ChangeKind::Reappeared,
        ];
        assert_eq!(kinds(&store, &b).await, b_kinds);

        let resource = store.resource(&a_id).await.unwrap().unwrap();
        assert_eq!((resource.first_seen, resource.updated), (at(1), at(2)));
        assert!(resource.guid.starts_with("urn:uuid:"));
        let b_now = store
            .resource(&resource_id(&b.identity))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b_now.withdrawn_at, None);
    })
    .await;
}

#[tokio::test]
async fn withdrawn_resources_leave_the_default_listing() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let opts = ReconcileOptions {
            withdraw_after: 1,
            count_missing: true,
        };
        let a = observed("A", None, "", "Leaflets");
        run(
            &store,
            &[a.clone(), observed("B", None, "", "Leaflets")],
            1,
            opts,
        )
        .await;
        run(&store, &[a], 2, opts).await;
        let live = store
            .list_resources(&ResourceFilter::default())
            .await
            .unwrap();
        assert_eq!(live.len(), 1);
        let all = ResourceFilter {
            include_withdrawn: true,
            ..ResourceFilter::default()
        };
        let all = store.list_resources(&all).await.unwrap();
        assert_eq!(
            all.iter().filter(|r| r.withdrawn_at == Some(at(2))).count(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn whitespace_only_change_writes_nothing() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let opts = ReconcileOptions::default();
        run(
            &store,
            &[observed("The plan", None, "Our plan.", "Leaflets")],
            1,
            opts,
        )
        .await;
        let edited = observed("  The <b>plan</b>", None, "<p>Our\n\tplan.</p>", "Leaflets");
        let applied = run(&store, std::slice::from_ref(&edited), 2, opts).await;
        assert_eq!((applied.counts.unchanged, applied.feed_version), (1, 1));
        assert_eq!(
            store
                .revisions(&resource_id(&edited.identity))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(kinds(&store, &edited).await, [ChangeKind::New]);
    })
    .await;
}

#[tokio::test]
async fn partial_snapshot_withdraws_nothing() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let a = observed("A", None, "", "Leaflets");
        let b = observed("B", None, "", "Leaflets");
        run(
            &store,
            &[a.clone(), b.clone()],
            1,
            ReconcileOptions::default(),
        )
        .await;
        let partial = ReconcileOptions {
            withdraw_after: 1,
            count_missing: false,
        };
        for day in 2..4 {
            let applied = run(&store, std::slice::from_ref(&a), day, partial).await;
            assert_eq!(applied.counts.withdrawn, 0);
        }
        let state = store.stored_for_reconcile(SOURCE, &[]).await.unwrap();
        assert!(
            state
                .stored
                .iter()
                .all(|s| s.missing_runs == 0 && s.resource.withdrawn_at.is_none())
        );
        assert_eq!(state.run_seq, 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_write_each_event_once() {
    on_every_backend(|db| async move {
        let first = db.migrated().await;
        let second = db.open_another().await;
        let snapshot: Vec<Observed> = (0..20)
            .map(|i| observed(&format!("Entry {i}"), None, "text", "Leaflets"))
            .collect();
        let clock = FixedClock::new(at(1));
        for _ in 0..2 {
            let state = first.stored_for_reconcile(SOURCE, &[]).await.unwrap();
            let set = reconcile(&state.stored, &snapshot, &ReconcileOptions::default());
            let (x, y) = tokio::join!(
                first.apply(SOURCE, &set, 20, state.run_seq, &clock),
                second.apply(SOURCE, &set, 20, state.run_seq, &clock),
            );
            let conflicts = [&x, &y]
                .iter()
                .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
                .count();
            assert_eq!(conflicts, 1, "{x:?} {y:?}");
            assert!(x.is_ok() || y.is_ok(), "{x:?} {y:?}");
        }
        for o in &snapshot {
            assert_eq!(kinds(&first, o).await, [ChangeKind::New]);
        }
        assert_eq!(first.feed_version().await.unwrap(), 1);
        let again = run(&second, &snapshot, 2, ReconcileOptions::default()).await;
        assert_eq!((again.counts.new, again.counts.unchanged), (0, 20));
    })
    .await;
}

#[tokio::test]
async fn list_filters_by_category_and_since_newest_first() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let opts = ReconcileOptions {
            count_missing: false,
            ..ReconcileOptions::default()
        };
        let mut dated = observed("Dated", None, "", "Leaflets");
        dated.entry.date = EntryDate::month(2030, 1);
        let dated = Observed::new(SOURCE, dated.entry, dated.category);
        run(
            &store,
            &[dated, observed("Old", None, "", "Leaflets")],
            1,
            opts,
        )
        .await;
        run(
            &store,
            &[observed("Plan", None, "", "Strategies and plans")],
            5,
            opts,
        )
        .await;
        run(&store, &[observed("Later", None, "", "Leaflets")], 9, opts).await;

        let titles =
            |rs: Vec<tidings::model::Resource>| rs.into_iter().map(|r| r.title).collect::<Vec<_>>();
        let all = store
            .list_resources(&ResourceFilter::default())
            .await
            .unwrap();
        assert_eq!(titles(all), ["Dated", "Later", "Plan", "Old"]);
        let leaflets = ResourceFilter {
            category: Some(CategorySlug::from_name("Leaflets")),
            ..Default::default()
        };
        assert_eq!(
            titles(store.list_resources(&leaflets).await.unwrap()),
            ["Dated", "Later", "Old"]
        );
        let since = ResourceFilter {
            since: Some(at(5)),
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(
            titles(store.list_resources(&since).await.unwrap()),
            ["Later"]
        );
        let since = ResourceFilter {
            since: Some(at(5) + Duration::microseconds(1)),
            ..Default::default()
        };
        assert_eq!(
            titles(store.list_resources(&since).await.unwrap()),
            ["Later"]
        );
        let names: Vec<String> = store
            .categories_in_use()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["Leaflets", "Strategies and plans"]);
    })
    .await;
}

#[tokio::test]
async fn unicode_text_round_trips_exactly() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let mut entry = Entry::titled("Cafe\u{301} “quotes” — ‘Ünïcödé’ 😀 עברית  two  spaces");
        entry.link = Some(Url::parse("https://ex.org/ressources/café?q=naïve").unwrap());
        entry.summary = Summary {
            blocks: vec![
                Block::Paragraph("Ligne 1 — «guillemets»\u{a0}& <b>not markup</b>".into()),
                Block::List(vec!["• bullet 𝔘".into(), "日本語".into()]),
            ],
        };
        entry.date = EntryDate::month(2020, 5);
        entry.download = Some(Url::parse("https://ex.org/f/leaflet%20(1).pdf").unwrap());
        let o = Observed::new(SOURCE, entry.clone(), Category::new("Santé & soins"));
        run(
            &store,
            std::slice::from_ref(&o),
            1,
            ReconcileOptions::default(),
        )
        .await;
        let r = store
            .resource(&resource_id(&o.identity))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&r.title, &r.link, &r.summary),
            (&entry.title, &entry.link, &entry.summary)
        );
        assert_eq!(
            (r.date, &r.download, &r.category),
            (entry.date, &entry.download, &o.category)
        );
        assert_eq!(r.identity, o.identity);
    })
    .await;
}

#[tokio::test]
async fn failed_runs_change_nothing_but_counters() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        assert_eq!(store.last_good_run(SOURCE).await.unwrap(), None);
        store
            .record_failed_run(SOURCE, at(1), "timed out")
            .await
            .unwrap();
        assert_eq!(store.last_good_run(SOURCE).await.unwrap(), None);
        run(
            &store,
            &[observed("A", None, "", "Leaflets")],
            2,
            ReconcileOptions::default(),
        )
        .await;
        store
            .record_failed_run(SOURCE, at(3), "status 500")
            .await
            .unwrap();
        assert_eq!(store.last_good_run(SOURCE).await.unwrap(), Some((1, at(2))));
        assert_eq!(store.feed_version().await.unwrap(), 1);
        let unknown = tidings::model::ResourceId("0000000000000000".into());
        assert_eq!(store.resource(&unknown).await.unwrap(), None);
        assert!(matches!(
            store.revisions(&unknown).await,
            Err(StoreError::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let t0 = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let ttl = Duration::seconds(30);
        assert!(store.try_lease("scheduler", "a", ttl, t0).await.unwrap());
        assert!(
            !store
                .try_lease("scheduler", "b", ttl, t0 + Duration::seconds(10))
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease("scheduler", "a", ttl, t0 + Duration::seconds(20))
                .await
                .unwrap(),
            "renewal"
        );
        assert!(
            !store
                .try_lease("scheduler", "b", ttl, t0 + Duration::seconds(45))
                .await
                .unwrap(),
            "the renewal moved the expiry to 50 s"
        );
        assert!(
            store
                .try_lease("scheduler", "b", ttl, t0 + Duration::seconds(51))
                .await
                .unwrap(),
            "expired"
        );
        assert!(
            !store
                .try_lease("scheduler", "a", ttl, t0 + Duration::seconds(52))
                .await
                .unwrap()
        );
        store.release_lease("scheduler", "a").await.unwrap();
        assert!(
            !store
                .try_lease("scheduler", "a", ttl, t0 + Duration::seconds(53))
                .await
                .unwrap(),
            "a cannot release b's lease"
        );
        store.release_lease("scheduler", "b").await.unwrap();
        assert!(
            store
                .try_lease("scheduler", "a", ttl, t0 + Duration::seconds(54))
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease("digest", "b", ttl, t0 + Duration::seconds(54))
                .await
                .unwrap(),
            "leases are per name"
        );
    })
    .await;
}

#[tokio::test]
async fn copy_knows_every_table_the_migrations_create() {
    on_every_backend(|db| async move {
        let source = db.migrated().await;
        // Rows in the tables a running install fills first, so the counts
        // compared below are not 0 against 0.
        let a = observed("Leaflet", Some("https://ex.org/a"), "Support.", "Leaflets");
        run(&source, &[a], 1, ReconcileOptions::default()).await;
        let subscriber = NewSubscriber {
            email: "reader@example.org".to_owned(),
            categories: CategoryChoice::All,
            frequency: Frequency::Weekly,
            confirmed: true,
            token_nonce: "nonce".to_owned(),
            consent: tidings::model::Consent::cli(None),
        };
        let reader = source.add_subscriber(&subscriber, at(1)).await.unwrap();
        let message = NewMessage {
            idem_key: "digest/1/2024-03-01".to_owned(),
            kind: "digest",
            recipient: subscriber.email.clone(),
            subscriber_id: Some(reader),
            subject: "Digest".to_owned(),
            message: b"Subject: Digest\r\n\r\nNews.\r\n".to_vec(),
        };
        assert!(source.enqueue(&message, at(1)).await.unwrap());
        source.setting_or_insert("copied", "yes").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = Store::open(&format!(
            "sqlite://{}",
            dir.path().join("copy.db").display()
        ))
        .await
        .unwrap();
        let tables = source
            .copy_to(&target)
            .await
            .expect("every table has a place in the copy order");
        for filled in [
            "resources",
            "revisions",
            "change_events",
            "source_runs",
            "settings",
            "subscribers",
            "outbox",
        ] {
            let table = tables.iter().find(|t| t.name == filled).unwrap();
            assert!(table.source_rows > 0, "{table:?}");
        }
        for table in &tables {
            assert_eq!(table.source_rows, table.target_rows, "{}", table.name);
        }
        let copied = target.list_subscribers().await.unwrap();
        assert_eq!(copied.len(), 1);
        assert_eq!(copied[0].email, subscriber.email);
        let queued = target.list_outbox(false).await.unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].idem_key, message.idem_key);
    })
    .await;
}

/// More rows than one multi-row statement holds (500): every kind of change
/// crosses a chunk boundary, and each resource still gets its rows and events.
#[tokio::test]
async fn issue_5_runs_larger_than_one_statement_apply_whole() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let opts = ReconcileOptions::default();
        let entry = |i: usize, text: &str| {
            let link = format!("https://ex.org/r/{i}");
            observed(&format!("Resource {i}"), Some(&link), text, "Leaflets")
        };
        let first: Vec<Observed> = (0..1_201).map(|i| entry(i, "v1")).collect();
        let applied = run(&store, &first, 1, opts).await;
        assert_eq!(applied.counts.new, 1_201);
        // 601 edited, 600 gone, 550 new.
        let second: Vec<Observed> = (0..601)
            .map(|i| entry(i, "v2"))
            .chain((1_201..1_751).map(|i| entry(i, "v1")))
            .collect();
        let applied = run(&store, &second, 2, opts).await;
        let c = applied.counts;
        assert_eq!((c.new, c.changed, c.withdrawn), (550, 601, 0));
        let applied = run(&store, &second, 3, opts).await;
        assert_eq!(
            (applied.counts.withdrawn, applied.counts.unchanged),
            (600, 1_151)
        );
        assert_eq!(
            kinds(&store, &first[0]).await,
            [ChangeKind::New, ChangeKind::Changed]
        );
        assert_eq!(
            kinds(&store, &first[1_200]).await,
            [ChangeKind::New, ChangeKind::Withdrawn]
        );
        assert_eq!(
            kinds(&store, &second[600]).await,
            [ChangeKind::New, ChangeKind::Changed]
        );
        assert_eq!(kinds(&store, &second[1_150]).await, [ChangeKind::New]);
        let revisions = store
            .revisions(&resource_id(&first[600].identity))
            .await
            .unwrap();
        assert_eq!(revisions.len(), 2);
        let live = store
            .list_resources(&ResourceFilter::default())
            .await
            .unwrap();
        assert_eq!(live.len(), 1_151);
        // The returned ones come back with their history and missing count reset.
        let applied = run(&store, &first, 4, opts).await;
        assert_eq!(applied.counts.reappeared, 600);
    })
    .await;
}

#[tokio::test]
async fn every_sqlite_connection_is_wal_with_synchronous_normal() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = Store::open(&url).await.unwrap();
    // Hold several connections at once, so the pool opens more than one.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(store.pool().acquire().await.unwrap());
    }
    for conn in &mut held {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        // 1 = NORMAL (2 = FULL, SQLite's default).
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(sync, 1);
    }
}

/// A clock whose first reading, which `apply` takes after it holds the
/// store_meta row, waits until the test releases it: an apply caught in
/// the middle of its transaction, with its events about to be stamped.
#[derive(Debug)]
struct HeldApply {
    at: DateTime<Utc>,
    gate: std::sync::Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            std::sync::mpsc::Receiver<()>,
        )>,
    >,
}

impl tidings::clock::Clock for HeldApply {
    fn now(&self) -> DateTime<Utc> {
        if let Some((holding, release)) = self.gate.lock().unwrap().take() {
            let _ = holding.send(());
            // Hands this worker's other tasks to another thread while it waits.
            let _ = tokio::task::block_in_place(|| release.recv());
        }
        self.at
    }

    fn sleep_until(&self, _at: DateTime<Utc>) -> tidings::clock::Sleep<'_> {
        unreachable!("apply never sleeps")
    }
}

/// Whether some session of `store`'s PostgreSQL database waits for a lock
/// in a statement that updates store_meta (what `wait_for_ingests` runs).
async fn waits_for_store_meta(store: &Store) -> bool {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND wait_event_type = 'Lock' AND query LIKE 'UPDATE store_meta%'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
        > 0
}

/// A digest reads its window only after `wait_for_ingests`, which must not
/// return while an apply is between taking store_meta and committing, or
/// the events that apply stamps before the period's instant would be missed
/// by the window. On PostgreSQL the waiter is seen blocked on the store_meta
/// row lock; on SQLite it waits out sqlx's busy timeout (5 s) and reports the
/// database locked. After the commit it returns, and the events are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wait_for_ingests_does_not_return_while_an_apply_is_in_progress() {
    on_every_backend(|db| async move {
        let store = db.migrated().await;
        let waiter = db.open_another().await;
        let (holding_tx, holding) = tokio::sync::oneshot::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let clock = HeldApply {
            at: at(5),
            gate: std::sync::Mutex::new(Some((holding_tx, release_rx))),
        };
        let snapshot = [observed("Stamped while held", None, "text", "Leaflets")];
        let applying = {
            let store = store.clone();
            let state = store.stored_for_reconcile(SOURCE, &[]).await.unwrap();
            let set = reconcile(&state.stored, &snapshot, &ReconcileOptions::default());
            tokio::spawn(async move { store.apply(SOURCE, &set, 1, state.run_seq, &clock).await })
        };
        holding
            .await
            .expect("the apply reads the clock while holding store_meta");

        let waiting = tokio::spawn({
            let waiter = waiter.clone();
            async move { waiter.wait_for_ingests().await }
        });
        if store.backend() == tidings::store::Backend::Postgres {
            crate::support::app::wait_until(std::time::Duration::from_secs(30), || async {
                assert!(
                    !waiting.is_finished(),
                    "wait_for_ingests returned while an apply held store_meta"
                );
                waits_for_store_meta(&store).await
            })
            .await;
            release.send(()).unwrap();
            applying.await.unwrap().expect("the apply commits");
            waiting
                .await
                .unwrap()
                .expect("returns once the apply committed");
        } else {
            let result = waiting.await.unwrap();
            let error =
                result.expect_err("wait_for_ingests returned while an apply held store_meta");
            assert!(error.to_string().contains("locked"), "{error}");
            release.send(()).unwrap();
            applying.await.unwrap().expect("the apply commits");
            let waited = waiter.wait_for_ingests().await;
            waited.expect("returns once the apply committed");
        }
        let events = waiter.window_events(at(4), at(6)).await.unwrap();
        let titles: Vec<&str> = events.iter().map(|e| e.resource.title.as_str()).collect();
        assert_eq!(titles, ["Stamped while held"]);
    })
    .await;
}
