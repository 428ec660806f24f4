//! `TestApp`: the real `tidings` binary in a scratch working directory with
//! its own config, database and seed folder. `serve()` runs the daemon on a
//! port the system picks (`--listen 127.0.0.1:0 --ready-file`), so no port
//! is guessed before it is bound, and kills it when dropped. The children's
//! logs go to a file that is printed only when the test fails.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// The reference seed page, as shipped in `seeds/`.
pub const SEED_PAGE: &str = "tests/fixtures/seeds/resource-library-page-4.txt";

/// The `listen` line of a fresh config: port 0 until `serve` has bound one.
const UNBOUND: &str = "listen = \"127.0.0.1:0\"";

/// A scratch installation of Tidings.
pub struct TestApp {
    dir: tempfile::TempDir,
    /// The port the last `serve` bound (0 before one has).
    port: AtomicU16,
    /// `TIDINGS_NOW` for every later command, when set.
    now: Mutex<Option<String>>,
    /// Where the children's stderr goes, printed when the test fails.
    log: tempfile::NamedTempFile,
}

impl TestApp {
    /// A working directory with `seeds/` holding the reference page and a
    /// config using `db_url`, plus any `extra` TOML (which may add sections).
    pub fn new(db_url: &str, extra: &str) -> Self {
        Self::with_server_keys(db_url, "", extra)
    }

    /// Like `new`, with more `[server]` keys (e.g. `scheduler_lease_s = 3`).
    /// `site.base_url` is left to follow `server.listen`, so links in mail
    /// name the port `serve` bound.
    pub fn with_server_keys(db_url: &str, server_keys: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let seeds = dir.path().join("seeds");
        std::fs::create_dir(&seeds).expect("create seeds/");
        std::fs::copy(SEED_PAGE, seeds.join("resource-library-page-4.txt"))
            .expect("copy seed page");
        let config = format!(
            "[site]\ntitle = \"Test Library\"\n\
             [database]\nurl = \"{db_url}\"\n[server]\n{UNBOUND}\n{server_keys}\n{extra}"
        );
        std::fs::write(dir.path().join("tidings.toml"), config).expect("write config");
        Self {
            dir,
            port: AtomicU16::new(0),
            now: Mutex::new(None),
            log: tempfile::NamedTempFile::new().expect("log file"),
        }
    }

    /// A path inside the working directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The port the daemon listens on (0 before `serve`).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Acquire)
    }

    /// The daemon's base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port())
    }

    /// Every later command runs with its clock started at `at` (RFC 3339),
    /// through `TIDINGS_NOW`.
    pub fn set_now(&self, at: &str) {
        *self.now.lock().expect("not poisoned") = Some(at.to_owned());
    }

    /// Points `server.listen` (and so `site.base_url`) at `address`, for
    /// the commands run from now on.
    pub fn set_listen(&self, address: std::net::SocketAddr) {
        let path = self.path("tidings.toml");
        let config = std::fs::read_to_string(&path).expect("read config");
        let start = config.find("listen = \"").expect("a listen line");
        let end = start + config[start..].find('\n').expect("a line end");
        let config = format!(
            "{}listen = \"{address}\"{}",
            &config[..start],
            &config[end..]
        );
        std::fs::write(&path, config).expect("write config");
    }

    /// A file for a child's stderr: the test's log, appended to.
    fn log(&self) -> Stdio {
        Stdio::from(self.log.reopen().expect("log file reopens"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("TIDINGS_CONFIG")
            .env_remove("TIDINGS_NOW")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if let Some(now) = self.now.lock().expect("not poisoned").as_deref() {
            command.env("TIDINGS_NOW", now);
        }
        command
    }

    /// Run a command to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("tidings runs")
    }

    /// Run a command with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        command.output().expect("tidings runs")
    }

    /// Start a command without waiting for it (stdout and stderr piped).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tidings starts")
    }

    /// Start a command with extra environment variables, without waiting for
    /// it (stdout discarded, stderr to the test's log).
    pub fn spawn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Served {
        let child = self
            .command(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(self.log())
            .spawn()
            .expect("tidings starts");
        Served { child }
    }

    /// Run a command that must succeed, returning its stdout.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tidings {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("stdout is UTF-8")
    }

    /// Run a command with `--json` output and parse it.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let stdout = self.run_ok(args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stdout}"))
    }

    /// Start `tidings serve` and wait until it answers `/healthz`.
    pub async fn serve(&self) -> Served {
        self.serve_env(&[]).await
    }

    /// Like `serve`, with extra environment variables (e.g.
    /// `TIDINGS_ADMIN_TOKEN`). The daemon binds a port of the system's
    /// choosing and names it in its ready file; the config then names that
    /// port, so later commands sign links for this daemon.
    pub async fn serve_env(&self, env: &[(&str, &str)]) -> Served {
        let ready = self.ready_file();
        let mut served = self.spawn_env(&["serve", "--ready-file", &ready], env);
        self.attach(&mut served.child).await;
        served
    }

    /// The `--ready-file` argument for a `serve` a test starts itself (then
    /// `attach`): the config's listen is set back to port 0 and any old
    /// ready file removed.
    pub fn ready_file(&self) -> String {
        self.set_listen(([127, 0, 0, 1], 0).into());
        let ready = self.path("serve.ready");
        let _ = std::fs::remove_file(&ready);
        ready.display().to_string()
    }

    /// Waits until `child`, a `serve` given `--ready-file` from
    /// `ready_file()`, has bound its port and answers `/healthz`; this app's
    /// URLs and config then name that port.
    pub async fn attach(&self, child: &mut Child) {
        let bound = wait_for_ready_file(&self.path("serve.ready"), child).await;
        self.port.store(bound.port(), Ordering::Release);
        self.set_listen(bound);
        let health = self.url("/healthz");
        wait_until(Duration::from_secs(30), || async {
            super::http()
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
    }
}

/// The address a starting `serve` wrote to `path`, once it is there.
async fn wait_for_ready_file(path: &std::path::Path, child: &mut Child) -> std::net::SocketAddr {
    let mut written = None;
    wait_until(Duration::from_secs(30), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tidings serve exited before it was ready: {status}");
        }
        written = std::fs::read_to_string(path).ok();
        std::future::ready(written.is_some())
    })
    .await;
    let written = written.expect("the ready file was read");
    written
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("ready file holds {written:?}: {e}"))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        if !log.is_empty() {
            // eprintln!, so the test harness shows it with the failure.
            eprintln!("--- log of the tidings processes ---\n{log}---");
        }
    }
}

/// A running daemon, killed on drop.
pub struct Served {
    child: Child,
}

impl Served {
    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Ask the process to stop (SIGTERM), as a service manager would, and
    /// wait for it to exit; returns how long it took.
    pub fn terminate(&mut self) -> Duration {
        let started = std::time::Instant::now();
        let pid = self.child.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(signalled.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = self.child.wait().expect("the daemon exits");
        assert!(status.success(), "a clean shutdown exits 0: {status}");
        started.elapsed()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `check` until it is true, failing the test at `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
