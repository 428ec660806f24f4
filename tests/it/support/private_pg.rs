//! `PrivatePg`: a PostgreSQL server of the test's own, in a temporary
//! folder on a free port, that a test may stop and start without touching
//! the shared server other tests use. Needs root (initdb runs as `postgres`).
//! PostgreSQL cannot be told to take any free port and report it, so this is
//! the one place a port is picked before the server binds it
//! (`unclaimed_port`).

use std::path::PathBuf;
use std::process::Command;

/// A throwaway PostgreSQL cluster; stopped and removed on drop.
pub struct PrivatePg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PrivatePg {
    /// initdb and start a cluster (about a second).
    pub fn start() -> Self {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's postgresql package is installed")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
            .expect("a PostgreSQL version is installed");
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        let dir = tempfile::tempdir().expect("temp dir");
        as_postgres(
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path()),
            false,
        );
        let data = dir.path().join("data");
        as_postgres(
            Command::new(bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "-D"])
                .arg(&data),
            true,
        );
        let pg = Self {
            dir,
            bin,
            port: unclaimed_port(),
        };
        pg.up();
        pg
    }

    /// The admin database's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Start the server and wait until it accepts connections.
    pub fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        as_postgres(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-o", &options, "-l"])
                .arg(self.dir.path().join("log"))
                .args(["-w", "start"]),
            true,
        );
    }

    /// Stop the server (fast shutdown: connections are cut).
    pub fn down(&self) {
        as_postgres(
            Command::new(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "fast", "-w", "stop"]),
            true,
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Run `command` as the `postgres` user (or as is, for `chown`).
fn as_postgres(command: &mut Command, switch_user: bool) {
    let output = if switch_user {
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(ToOwned::to_owned).collect();
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .output()
    } else {
        command.output()
    }
    .expect("the command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A port nothing listens on at this moment. PostgreSQL needs its port
/// before it starts and has no way to report a port the system picked, so
/// its port is chosen here; another process could take it before the
/// server binds it, and `up` would then fail and say so.
fn unclaimed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
