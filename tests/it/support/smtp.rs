//! Real SMTP servers on loopback: aiosmtpd writing a Maildir (for content),
//! and Postfix's `smtp-sink` (for 4xx, 5xx, stalls and throughput). Each binds
//! a port of the system's choosing (port 0) and is killed when dropped. Received messages are parsed
//! by Python's `email` package, a mail parser independent of lettre.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Parses every message file under the folders given, printing JSON: one
/// object per message with its headers (decoded), text and HTML parts.
const PARSE: &str = r#"
import email, email.policy, json, os, sys
out = []
for folder in sys.argv[1:]:
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, 'rb') as f:
                raw = f.read()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            headers = {}
            for key, value in msg.items():
                headers.setdefault(key.lower(), []).append(str(value))
            text = msg.get_body(preferencelist=('plain',))
            html = msg.get_body(preferencelist=('html',))
            head = raw.split(b'\r\n\r\n', 1)[0].split(b'\n\n', 1)[0]
            out.append({
                'file': path,
                'headers': headers,
                'header_names': [k.lower() for k in msg.keys()],
                'raw_head': head.decode('ascii', 'replace'),
                'content_type': msg.get_content_type(),
                'parts': [p.get_content_type() for p in msg.iter_parts()] if msg.is_multipart() else [],
                'text': text.get_content() if text is not None else None,
                'html': html.get_content() if html is not None else None,
            })
print(json.dumps(out))
"#;

/// Parsed messages in `folder` (and below).
pub fn parse_messages(folder: &Path) -> Vec<Value> {
    let output = Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .arg(folder)
        .output()
        .expect("/usr/bin/python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).expect("the parser prints JSON");
    parsed.as_array().expect("a list").clone()
}

/// The first value of header `name` (lower-case) of a parsed message.
pub fn header<'a>(message: &'a Value, name: &str) -> &'a str {
    message["headers"][name][0]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} header in {}", message["raw_head"]))
}

/// Files under `folder`, recursively (one per received message).
pub fn count_files(folder: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            if path.is_dir() { count_files(&path) } else { 1 }
        })
        .sum()
}

/// The port process `child` listens on, once it does: smtp-sink binds port
/// 0 when told to but does not say which port it got, so it is read from
/// `/proc` (the listening TCP socket among the process's open files).
fn listening_port(child: &mut Child) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(port) = proc_listening_port(child.id()) {
            return port;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("SMTP server exited early: {status}");
        }
        assert!(Instant::now() < deadline, "SMTP server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The local port of a listening IPv4 TCP socket that process `pid` holds.
fn proc_listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            Some(link.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    // Columns: sl local_address rem_address st ... inode (the tenth).
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let listening = fields.get(3) == Some(&"0A");
        let ours = fields.get(9).is_some_and(|i| inodes.iter().any(|o| o == i));
        let port = fields.get(1)?.rsplit(':').next()?;
        (listening && ours).then(|| u16::from_str_radix(port, 16).ok())?
    })
}

/// aiosmtpd with its Maildir handler.
pub struct Maildir {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on.
    pub port: u16,
}

impl Maildir {
    /// Start a server on a port of its choosing.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Start a server that refuses recipients as `set_rules` says.
    pub fn start_with_rules() -> Self {
        Self::start_with(true)
    }

    /// Refuse `RCPT TO` for addresses matching a line's pattern with that
    /// line's reply, e.g. `*@example.org 554 5.7.1 Relay access denied`.
    pub fn set_rules(&self, rules: &str) {
        std::fs::write(self.dir.path().join("rules"), rules).expect("rules written");
    }

    fn start_with(ruled: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg("tests/fixtures/smtp_maildir.py")
            .arg(dir.path().join("Maildir"));
        if ruled {
            command.arg("--rules").arg(dir.path().join("rules"));
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts (package python3-aiosmtpd)");
        let port = super::printed_port(&mut child, "the SMTP server (smtp_maildir.py)");
        Self { child, dir, port }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The Maildir.
    pub fn folder(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    /// Messages received so far.
    pub fn count(&self) -> usize {
        count_files(&self.folder().join("new")) + count_files(&self.folder().join("cur"))
    }

    /// Every message received, parsed.
    pub fn messages(&self) -> Vec<Value> {
        parse_messages(&self.folder().join("new"))
    }
}

impl Drop for Maildir {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Postfix's `smtp-sink`, with options such as `-r .` (4xx to the final dot).
pub struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on.
    pub port: u16,
}

impl SmtpSink {
    /// Start `smtp-sink OPTIONS 127.0.0.1:0 256`, dumping each message into a folder.
    pub fn start(options: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // The sink drops to `nobody`, who must be able to write its dumps.
        let dumps = dir.path().join("dumps");
        std::fs::create_dir(&dumps).expect("dump folder");
        set_mode(&dumps, 0o777);
        set_mode(dir.path(), 0o755);
        let mut child = Command::new("smtp-sink")
            .args(["-u", "nobody", "-d"])
            .arg(dumps.join("%Y%m%d%H%M%S."))
            .args(options)
            .arg("127.0.0.1:0")
            .arg("256")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("smtp-sink starts (package postfix)");
        let port = listening_port(&mut child);
        Self { child, dir, port }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Messages accepted so far.
    pub fn count(&self) -> usize {
        count_files(&self.dir.path().join("dumps"))
    }

    /// Every message accepted, parsed.
    pub fn messages(&self) -> Vec<Value> {
        parse_messages(&self.dir.path().join("dumps"))
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A small message to `ops@example.org` under `idem_key`, as a queued alert,
/// for tests that queue mail as another process would.
pub fn an_alert(idem_key: &str) -> tidings::store::NewMessage {
    tidings::store::NewMessage {
        idem_key: idem_key.to_owned(),
        kind: "alert",
        recipient: "ops@example.org".to_owned(),
        subscriber_id: None,
        subject: "s".to_owned(),
        message: b"Subject: s\r\n\r\nbody".to_vec(),
    }
}

/// A `[mail]` section relaying to `url` with short timeouts and retries
/// (2 s, backoff from 1 s), followed by `extra` keys of the section.
pub fn smtp_config(url: &str, extra: &str) -> String {
    format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_url = \"{url}\"\nfrom = \"Test Library <news@example.org>\"\n\
         timeout_s = 2\nretry_base_s = 1\n{extra}"
    )
}
