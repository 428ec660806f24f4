//! A relay set up as production ones are: aiosmtpd run by
//! `tests/fixtures/smtp_relay.py` with STARTTLS or implicit TLS and a login,
//! on certificates made for the test (a private CA, or none). It listens on
//! a port it chose itself, records how each message and login arrived, and
//! is killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use serde_json::Value;

use super::smtp::{count_files, parse_messages};

/// The relay's script, from the repository.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_relay.py");

/// A relay certificate and its key, and the root that vouches for it.
pub struct Pki {
    /// PEM of the root a client must trust (the CA, or the certificate itself).
    pub root_pem: String,
    /// PEM of the relay's certificate.
    pub cert_pem: String,
    /// PEM of the relay's private key (PKCS #8).
    pub key_pem: String,
}

impl Pki {
    /// A private CA ("Test Council Private CA") and a certificate it signed
    /// for `localhost` and 127.0.0.1.
    pub fn private_ca() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Test Council Private CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca.self_signed(&ca_key).expect("CA certificate");
        let key = KeyPair::generate().expect("relay key");
        let cert = relay_params()
            .signed_by(&key, &ca, &ca_key)
            .expect("relay certificate");
        Self {
            root_pem: pem("CERTIFICATE", ca.der()),
            cert_pem: pem("CERTIFICATE", cert.der()),
            key_pem: pem("PRIVATE KEY", &key.serialize_der()),
        }
    }

    /// A certificate for `localhost` and 127.0.0.1 that signs itself.
    pub fn self_signed() -> Self {
        let key = KeyPair::generate().expect("relay key");
        let cert = relay_params().self_signed(&key).expect("certificate");
        let cert_pem = pem("CERTIFICATE", cert.der());
        Self {
            root_pem: cert_pem.clone(),
            cert_pem,
            key_pem: pem("PRIVATE KEY", &key.serialize_der()),
        }
    }
}

fn relay_params() -> CertificateParams {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
}

/// `der` as a PEM block of `label`.
fn pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// How the relay secures its connections.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// STARTTLS offered and required before anything else.
    StartTls,
    /// STARTTLS offered, not required.
    Opportunistic,
    /// TLS from the first byte (`smtps://`).
    Smtps,
}

/// A running relay.
pub struct TlsRelay {
    child: Child,
    dir: tempfile::TempDir,
    /// The port it listens on.
    pub port: u16,
}

impl TlsRelay {
    /// Start a relay with `pki`'s certificate in `mode`, requiring a login
    /// as `login` (user, password) when given, with AUTH PLAIN and LOGIN.
    pub fn start(mode: Mode, pki: &Pki, login: Option<(&str, &str)>) -> Self {
        Self::start_offering(mode, pki, login, None)
    }

    /// Like `start`, offering only the AUTH `mechanism` when given.
    pub fn start_offering(
        mode: Mode,
        pki: &Pki,
        login: Option<(&str, &str)>,
        mechanism: Option<&str>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("relay file written");
            path
        };
        let cert = write("relay.crt", &pki.cert_pem);
        let key = write("relay.key", &pki.key_pem);
        write("root.pem", &pki.root_pem);
        let stderr = std::fs::File::create(dir.path().join("relay.err")).expect("stderr file");
        let mode = match mode {
            Mode::StartTls => "starttls",
            Mode::Opportunistic => "opportunistic",
            Mode::Smtps => "smtps",
        };
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(SCRIPT)
            .args(["--mode", mode, "--cert"])
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--dir")
            .arg(dir.path());
        if let Some((user, password)) = login {
            command.args(["--user", user, "--password", password]);
        }
        if let Some(mechanism) = mechanism {
            command.args(["--only", mechanism]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("aiosmtpd starts (package python3-aiosmtpd)");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the relay's stdout");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            let err = std::fs::read_to_string(dir.path().join("relay.err")).unwrap_or_default();
            panic!("the relay printed no port ({line:?}): {err}")
        });
        Self { child, dir, port }
    }

    /// A PEM file of the root that vouches for the relay's certificate.
    pub fn root_file(&self) -> PathBuf {
        self.dir.path().join("root.pem")
    }

    /// Messages received so far.
    pub fn count(&self) -> usize {
        count_files(&self.dir.path().join("Maildir/new"))
    }

    /// Every message received, parsed.
    pub fn messages(&self) -> Vec<Value> {
        parse_messages(&self.dir.path().join("Maildir/new"))
    }

    /// How each message arrived: `{"tls": bool, "user": str|null}`.
    pub fn deliveries(&self) -> Vec<Value> {
        json_lines(&self.dir.path().join("deliveries.log"))
    }

    /// Every login attempt: `{"mechanism", "user", "ok"}`.
    pub fn logins(&self) -> Vec<Value> {
        json_lines(&self.dir.path().join("auth.log"))
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_lines(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}
