//! `TestApp`: the real `tidings` binary in a scratch working directory with
//! its own config, database and seed folder; `serve()` runs the daemon on a
//! free loopback port and kills it when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The reference seed page, as shipped in `seeds/`.
pub const SEED_PAGE: &str = "tests/fixtures/seeds/resource-library-page-4.txt";

/// A scratch installation of Tidings.
pub struct TestApp {
    dir: tempfile::TempDir,
    /// The port `serve` will listen on.
    pub port: u16,
}

impl TestApp {
    /// A working directory with `seeds/` holding the reference page and a
    /// config using `db_url`, plus any `extra` TOML (which may add sections).
    pub fn new(db_url: &str, extra: &str) -> Self {
        Self::with_server_keys(db_url, "", extra)
    }

    /// Like `new`, with more `[server]` keys (e.g. `scheduler_lease_s = 3`).
    pub fn with_server_keys(db_url: &str, server_keys: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let seeds = dir.path().join("seeds");
        std::fs::create_dir(&seeds).expect("create seeds/");
        std::fs::copy(SEED_PAGE, seeds.join("resource-library-page-4.txt"))
            .expect("copy seed page");
        let port = free_port();
        let config = format!(
            "[site]\ntitle = \"Test Library\"\nbase_url = \"http://127.0.0.1:{port}/\"\n\
             [database]\nurl = \"{db_url}\"\n[server]\nlisten = \"127.0.0.1:{port}\"\n{server_keys}\n{extra}"
        );
        std::fs::write(dir.path().join("tidings.toml"), config).expect("write config");
        Self { dir, port }
    }

    /// A path inside the working directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// The daemon's base URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("TIDINGS_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
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
    /// it (stdout and stderr discarded).
    pub fn spawn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Served {
        let child = self
            .command(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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

    /// Like `serve`, with extra environment variables (e.g. `TIDINGS_ADMIN_TOKEN`).
    pub async fn serve_env(&self, env: &[(&str, &str)]) -> Served {
        let child = self
            .command(&["serve"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tidings serve starts");
        let served = Served { child };
        let health = self.url("/healthz");
        wait_until(Duration::from_secs(30), || async {
            super::http()
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        served
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

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
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
