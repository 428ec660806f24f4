//! A digest period cut short — `digest send` killed with SIGKILL while it
//! queues, or a full disk under SQLite — is finished by the next run: it
//! takes the period over once the claim lapses and queues it for everyone
//! not yet queued, and every subscriber gets exactly one digest for it.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tidings::store::Store;

use crate::support::app::{TestApp, wait_until};
use crate::support::db::{Db, on_every_backend};

/// Subscribers in the SIGKILL test: enough that queueing takes seconds (20,000
/// passes too, in minutes).
const MANY: usize = 5_000;
/// Subscribers in the full-disk test.
const SOME: usize = 3_000;

fn config() -> &'static str {
    "[mail]\ntransport = \"file\"\ndir = \"outbox\"\n[digest]\nskip_empty = false\n"
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `n` confirmed daily subscribers who joined three days ago, and a daily
/// digest last sent three days ago: today's (or yesterday's) 08:00 is due.
async fn subscribers_with_a_period_due(app: &TestApp, store: &Store, n: usize) {
    let csv: String = (0..n)
        .map(|i| format!("reader{i:05}@example.org,leaflets,daily\n"))
        .collect();
    std::fs::write(
        app.path("people.csv"),
        format!("email,categories,frequency\n{csv}"),
    )
    .unwrap();
    app.run_ok(&["subscribers", "import", "people.csv", "--confirmed"]);
    app.run_ok(&["ingest"]);
    #[allow(clippy::disallowed_methods)] // the test's own notion of "three days ago"
    let long_ago = time(Utc::now() - chrono::Duration::days(3));
    sqlx::query("UPDATE subscribers SET created_at = $1, confirmed_at = $1")
        .bind(&long_ago)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO digest_runs (schedule, period, claimed_at, claimed_until, finished_at, \
         baseline) VALUES ('daily', $1, $1, $1, $1, 1)",
    )
    .bind(&long_ago)
    .execute(store.pool())
    .await
    .unwrap();
}

async fn queued_digests(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = 'digest'")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Every subscriber has exactly one digest row, sent, all for one period,
/// and exactly one `.eml` file addressed to them.
async fn everyone_got_exactly_one(app: &TestApp, store: &Store, n: usize) {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT recipient, idem_key, status FROM outbox WHERE kind = 'digest'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let mut per_recipient: HashMap<&str, usize> = HashMap::new();
    let mut periods: Vec<&str> = Vec::new();
    for (recipient, key, status) in &rows {
        assert_eq!(status, "sent", "{recipient}: {key}");
        *per_recipient.entry(recipient).or_default() += 1;
        periods.push(key.rsplit('/').next().unwrap());
    }
    periods.sort_unstable();
    periods.dedup();
    assert_eq!(periods.len(), 1, "one period: {periods:?}");
    assert_eq!(per_recipient.len(), n, "every subscriber has a digest row");
    assert!(
        per_recipient.values().all(|&c| c == 1),
        "no one has two rows"
    );
    let delivered = addressees(&app.path("outbox"));
    assert_eq!(delivered.len(), n, "a file for every subscriber");
    assert!(
        delivered.values().all(|&c| c == 1),
        "no one got two: {:?}",
        delivered
            .iter()
            .filter(|(_, c)| **c > 1)
            .take(5)
            .collect::<Vec<_>>()
    );
}

/// How many `.eml` files are addressed to each recipient.
fn addressees(dir: &Path) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let to = text
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .expect("a To header")
            .to_owned();
        *seen.entry(to).or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_a_period_is_queued_then_rerun_queues_the_rest_once_each() {
    on_every_backend(|db: Db| async move {
        let store = db.migrated().await;
        let app = TestApp::with_server_keys(&db.url, "scheduler_lease_s = 3", config());
        subscribers_with_a_period_due(&app, &store, MANY).await;
        let mut run = app.spawn(&["digest", "send"]);
        let started = std::time::Instant::now();
        wait_until(Duration::from_secs(120), || async {
            queued_digests(&store).await >= 1_000
        })
        .await;
        run.kill().unwrap(); // SIGKILL, mid-queue
        run.wait().unwrap();
        let at_kill = queued_digests(&store).await;
        assert!(
            (1_000..MANY as i64).contains(&at_kill),
            "the kill landed mid-queue: {at_kill} of {MANY} queued"
        );
        eprintln!(
            "killed after {:?} with {at_kill} of {MANY} queued",
            started.elapsed()
        );
        let rerun = app.run(&["digest", "send"]);
        let stdout = String::from_utf8_lossy(&rerun.stdout);
        assert!(
            rerun.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        let rest = MANY as i64 - at_kill;
        assert!(
            stdout.contains(&format!("queued {rest} of {rest} subscribers")),
            "the rerun queues everyone not yet queued: {stdout}"
        );
        everyone_got_exactly_one(&app, &store, MANY).await;
        // The period is finished now: nothing more is due.
        let again = app.run_ok(&["digest", "send"]);
        assert!(again.contains("no digest period is due"), "{again}");
    })
    .await;
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk, then frees `room` bytes.
    fn fill_leaving(&self, room: usize) {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
        let _ = file.sync_all();
        let len = std::fs::metadata(&filler).unwrap().len();
        file.set_len(len.saturating_sub(room as u64)).unwrap();
    }

    fn empty_filler(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_while_a_period_is_queued_then_rerun_queues_the_rest_once_each() {
    let disk = match SmallDisk::mount("48m") {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!("SKIPPED: cannot mount a tmpfs for the full-disk test (needs root): {e}");
            return;
        }
    };
    let url = format!("sqlite://{}", disk.path().join("tidings.db").display());
    let store = Store::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let app = TestApp::with_server_keys(&url, "scheduler_lease_s = 3", config());
    subscribers_with_a_period_due(&app, &store, SOME).await;
    disk.fill_leaving(3 * 1024 * 1024);
    let run = app.run(&["digest", "send"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "the full disk is an error");
    assert!(stderr.contains("full"), "says the disk is full: {stderr}");
    disk.empty_filler();
    let queued = queued_digests(&store).await;
    assert!(
        (1..SOME as i64).contains(&queued),
        "the disk filled mid-queue: {queued} of {SOME} queued"
    );
    eprintln!("the disk filled with {queued} of {SOME} queued");
    let rerun = app.run(&["digest", "send"]);
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert!(
        rerun.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    everyone_got_exactly_one(&app, &store, SOME).await;
    store.close().await;
}
