//! Tidings' own pool of SMTP connections: lettre's `AsyncSmtpConnection` (the
//! protocol) over sockets this module opens with `TCP_NODELAY`. lettre 0.11
//! writes a message's body and its final `.` as two writes; with Nagle's
//! algorithm on, the dot waited for the server's delayed ACK (~40 ms a message).
//! Each connection's stream carries a `handover::Gate` that holds a message's
//! final dot until its hand-over is recorded. Bounding each send in time is
//! the caller's (`Mailer::send`).
//!
//! Certificates are checked against webpki's roots plus `mail.ca_file`'s.
//! A relay that refuses the login is not asked again for `mail.retry_base_s`:
//! sends in that time fail at once with its answer, so a wrong password costs
//! one failed login per pause, not one per message.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::{SMTP_PORT, SUBMISSION_PORT, SUBMISSIONS_PORT};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tracing::{debug, warn};
use url::{Host, Url};

use super::SendError;
use super::handover::{Gate, GatedStream, HandOver};

/// An idle connection older than this is closed rather than reused (lettre's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection being closed may take to answer `QUIT`.
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// Up to `max_idle` open connections to one relay, reused LIFO. A connection
/// that failed in any way is closed, never put back.
pub(crate) struct SmtpPool {
    relay: Relay,
    idle: Mutex<Vec<Idle>>,
    max_idle: usize,
    /// The relay's last refusal of the login, and when; cleared by a success.
    refused_login: Mutex<Option<(Instant, String)>>,
    /// How long a refused login keeps the pool from trying again.
    login_pause: Duration,
}

/// A connection and the gate in its stream.
struct Conn {
    smtp: AsyncSmtpConnection,
    gate: Gate,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl SmtpPool {
    /// A pool for `url` (lettre's URL rules, see `Relay::from_url`), keeping at
    /// most `max_idle` idle connections, trusting `extra_roots` besides the
    /// web's; `connect_timeout` bounds each TCP connect; a refused login
    /// stops new connections for `login_pause`.
    pub(crate) fn new(
        url: &str,
        max_idle: usize,
        connect_timeout: Duration,
        extra_roots: &[CertificateDer<'static>],
        login_pause: Duration,
    ) -> Result<Self, String> {
        Ok(Self {
            relay: Relay::from_url(url, connect_timeout, extra_roots)?,
            idle: Mutex::new(Vec::new()),
            max_idle,
            refused_login: Mutex::new(None),
            login_pause,
        })
    }

    /// Sends `message` to the envelope's recipients, its final dot only after
    /// `hand_over` is recorded. A pooled connection is used without a `NOOP`
    /// check: if it fails before `MAIL FROM` is accepted (nothing of this
    /// message has been sent), the send starts again once on a fresh
    /// connection. Past that point a failure is returned, never retried.
    pub(crate) async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        hand_over: &Arc<HandOver>,
    ) -> Result<(), SendError> {
        let finish = |conn| self.finish(conn, envelope, message, hand_over);
        if let Some(mut conn) = self.take_idle() {
            match mail_from(&mut conn.smtp, envelope, message).await {
                Ok(()) => return finish(conn).await,
                Err(e) => {
                    debug!(error = %e, "a pooled connection failed before MAIL FROM; using a fresh one");
                    discard(conn);
                }
            }
        }
        let mut conn = self.connect().await?;
        if let Err(e) = mail_from(&mut conn.smtp, envelope, message).await {
            discard(conn);
            return Err(e);
        }
        finish(conn).await
    }

    /// A new connection, unless the relay refused the login less than
    /// `login_pause` ago: then that refusal again, without asking.
    async fn connect(&self) -> Result<Conn, SendError> {
        if let Some((at, reason)) = &*lock(&self.refused_login)
            && at.elapsed() < self.login_pause
        {
            let pause = self.login_pause.as_secs();
            return Err(SendError::Transient(format!(
                "{reason} (not trying to log in again within {pause} s)"
            )));
        }
        match self.relay.connect().await {
            Ok(conn) => {
                *lock(&self.refused_login) = None;
                Ok(conn)
            }
            Err(Setup::Login(reason)) => {
                warn!(error = %reason, "the relay refused the login; pausing new connections");
                *lock(&self.refused_login) = Some((Instant::now(), reason.clone()));
                Err(SendError::Transient(reason))
            }
            Err(Setup::Other(e)) => Err(e),
        }
    }

    /// Says `QUIT` on every idle connection and closes it.
    pub(crate) async fn close(&self) {
        let idle = std::mem::take(&mut *self.lock());
        let mut quitting = JoinSet::new();
        for Idle { conn, .. } in idle {
            quitting.spawn(quit(conn));
        }
        while quitting.join_next().await.is_some() {}
    }

    /// RCPT TO, DATA and the message, after `MAIL FROM` was accepted.
    async fn finish(
        &self,
        mut conn: Conn,
        envelope: &Envelope,
        message: &[u8],
        hand_over: &Arc<HandOver>,
    ) -> Result<(), SendError> {
        let result = rcpt_and_data(&mut conn, envelope, message, hand_over).await;
        conn.gate.disarm();
        match result {
            Ok(()) => {
                self.put(conn);
                Ok(())
            }
            Err((stage, e)) => {
                discard(conn);
                Err(classify_at(stage, &e, hand_over.released()))
            }
        }
    }

    /// The most recently used idle connection still young enough.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.lock();
        while let Some(Idle { conn, since }) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT {
                return Some(conn);
            }
            discard(conn);
        }
        None
    }

    fn put(&self, conn: Conn) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        } else {
            drop(idle);
            discard(conn);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        lock(&self.idle)
    }
}

/// The value stays consistent whatever panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a new connection could not be used.
enum Setup {
    /// The relay refused the login (AUTH), or offered no way to log in.
    Login(String),
    /// Anything else: connecting, TLS, the greeting.
    Other(SendError),
}

/// `MAIL FROM`, with SMTPUTF8 / 8BITMIME when the envelope or body need them
/// (as lettre's `send` does, whose client errors count as transient).
async fn mail_from(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), SendError> {
    let info = conn.server_info();
    let mut options = Vec::new();
    let non_ascii_address = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii_address {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(SendError::Transient(
                "the envelope has non-ASCII addresses but the server lacks SMTPUTF8".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(SendError::Transient(
                "the message is not ASCII but the server lacks 8BITMIME".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mail = Mail::new(envelope.from().cloned(), options);
    conn.command(mail).await.map(drop).map_err(|e| classify(&e))
}

/// Where in a transaction a failure happened, which decides what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `RCPT TO`: a 5xx refuses this recipient.
    Recipient,
    /// `DATA` and the message: a 5xx after the dot refuses this message.
    Message,
}

async fn rcpt_and_data(
    conn: &mut Conn,
    envelope: &Envelope,
    message: &[u8],
    hand_over: &Arc<HandOver>,
) -> Result<(), (Stage, lettre::transport::smtp::Error)> {
    for to in envelope.to() {
        let rcpt = Rcpt::new(to.clone(), vec![]);
        conn.smtp
            .command(rcpt)
            .await
            .map_err(|e| (Stage::Recipient, e))?;
    }
    let at_message = |e| (Stage::Message, e);
    conn.smtp.command(Data).await.map_err(at_message)?;
    conn.gate.arm(Arc::clone(hand_over));
    // Dot-stuffs, writes the body, flushes, then writes `\r\n.\r\n` (held by
    // the gate until the hand-over is recorded); NODELAY sends it at once.
    conn.smtp
        .message(message)
        .await
        .map(drop)
        .map_err(at_message)
}

/// What a failure inside a transaction means. Once the dot was released,
/// only an answer from the server says the message was not taken: a dropped
/// connection or a garbled reply leaves it unknown. A 5xx to `RCPT TO`, or to
/// the message itself, that blames the mailbox is a refusal of the recipient.
fn classify_at(stage: Stage, e: &lettre::transport::smtp::Error, released: bool) -> SendError {
    let answered = e.is_permanent() || e.is_transient();
    if released && !answered {
        return SendError::Unconfirmed(format!("no answer after the message was handed over: {e}"));
    }
    let about_the_recipient = stage == Stage::Recipient || released;
    let status = e.status().map(|code| code.to_string());
    if e.is_permanent() && about_the_recipient && blames_the_mailbox(&e.to_string(), status) {
        SendError::Refused(e.to_string())
    } else {
        classify(e)
    }
}

/// Whether a 5xx reply says the recipient's mailbox is the problem (so it
/// counts toward suppressing the address) rather than policy, relaying or
/// content: an enhanced status code (RFC 3463) of class 5.1 (addressing) or
/// 5.2 (mailbox) when the reply has one, else the basic codes 550, 551 and
/// 553. "554 5.7.1 Relay access denied" is the relay's doing, nobody's address.
fn blames_the_mailbox(reply: &str, basic: Option<String>) -> bool {
    let enhanced = reply
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | ')' | ','))
        .find(|word| is_enhanced_code(word));
    match enhanced {
        Some(code) => code.starts_with("5.1.") || code.starts_with("5.2."),
        None => matches!(basic.as_deref(), Some("550" | "551" | "553")),
    }
}

/// `5.x.y`, with one to three digits in x and in y (RFC 3463 §2).
fn is_enhanced_code(word: &str) -> bool {
    let number = |part: Option<&str>| {
        part.is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut parts = word.split('.');
    parts.next() == Some("5")
        && number(parts.next())
        && number(parts.next())
        && parts.next().is_none()
}

/// Closes `conn` in the background, saying `QUIT` first (RFC 5321 §4.1.1.10)
/// without making the caller wait for the answer.
fn discard(conn: Conn) {
    tokio::spawn(quit(conn));
}

async fn quit(mut conn: Conn) {
    conn.gate.disarm();
    // `abort` sends QUIT unless the connection is known broken, then closes it.
    let _ = tokio::time::timeout(QUIT_WAIT, conn.smtp.abort()).await;
}

/// 5xx is final; 4xx (deferred by the server), network errors and a dropped
/// connection are worth retrying.
pub(crate) fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(e.to_string())
    } else if e.is_transient() {
        SendError::Deferred(e.to_string())
    } else {
        SendError::Transient(e.to_string())
    }
}

/// How the connection is secured, as lettre's `AsyncSmtpTransport::from_url` reads the URL.
enum Security {
    /// `smtp://host[:25]`: plain text, no STARTTLS even if offered.
    Plain,
    /// `smtp://host[:587]?tls=opportunistic` (STARTTLS when offered) or
    /// `?tls=required` (STARTTLS or fail).
    StartTls {
        params: TlsParameters,
        required: bool,
    },
    /// `smtps://host[:465]`: TLS from the first byte.
    Implicit(Arc<rustls::ClientConfig>),
}

/// Where and how to connect, from `mail.smtp_url`.
struct Relay {
    host: String,
    port: u16,
    security: Security,
    hello: ClientId,
    credentials: Option<Credentials>,
    connect_timeout: Duration,
}

impl Relay {
    /// Reads `url` with the rules of lettre 0.11's `from_url`: the scheme and
    /// `tls` parameter choose `Security` and the default port; a path names the
    /// EHLO host; a user with a password gives credentials (AUTH PLAIN or
    /// LOGIN), percent-decoded. Certificates are checked against webpki's
    /// roots and `extra_roots`.
    fn from_url(
        text: &str,
        connect_timeout: Duration,
        extra_roots: &[CertificateDer<'static>],
    ) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|e| e.to_string())?;
        let host = match url.host() {
            Some(Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err("the URL has no host".into()),
        };
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (default_port, security) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (SMTP_PORT, Security::Plain),
            ("smtp", Some(mode @ ("required" | "opportunistic"))) => {
                let params = starttls_parameters(&host, extra_roots)?;
                let required = mode == "required";
                (SUBMISSION_PORT, Security::StartTls { params, required })
            }
            ("smtps", _) => {
                let config = implicit_tls_config(extra_roots)?;
                (SUBMISSIONS_PORT, Security::Implicit(config))
            }
            (scheme, tls) => {
                return Err(format!(
                    "unknown scheme {scheme:?} or tls parameter {tls:?}"
                ));
            }
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        Ok(Self {
            port: url.port().unwrap_or(default_port),
            credentials: credentials(&url)?,
            host,
            security,
            hello,
            connect_timeout,
        })
    }

    /// A connection that has said EHLO, secured and authenticated as configured.
    /// Its gate sees plain text, or under STARTTLS the TLS records lettre writes.
    /// Every error names the relay.
    async fn connect(&self) -> Result<Conn, Setup> {
        let (host, port) = (&self.host, self.port);
        let tcp = self.tcp().await.map_err(Setup::Other)?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(config) => Box::new(
                ImplicitTls::handshake(config, host, port, tcp)
                    .await
                    .map_err(Setup::Other)?,
            ),
            Security::Plain | Security::StartTls { .. } => Box::new(tcp),
        };
        let gate = Gate::default();
        let stream = Box::new(GatedStream::new(stream, gate.clone()));
        let at_relay = |what: &str, e: &lettre::transport::smtp::Error| {
            with_reason(classify(e), |r| {
                format!("{what} relay {host}:{port} failed: {r}")
            })
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| Setup::Other(at_relay("greeting the", &e)))?;
        if let Security::StartTls { params, required } = &self.security
            && (*required || conn.can_starttls())
        {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| Setup::Other(at_relay("STARTTLS with the", &e)))?;
        }
        if let Some(credentials) = &self.credentials
            && let Err(e) = conn.auth(DEFAULT_MECHANISMS, credentials).await
        {
            let _ = conn.abort().await;
            let reason = format!("authentication failed at relay {host}:{port}: {e}");
            // The relay's answer (or no mechanism in common) is a refusal; a
            // connection lost on the way says nothing about the password.
            let refused = e.is_permanent() || e.is_transient() || e.is_client();
            return Err(if refused {
                Setup::Login(reason)
            } else {
                Setup::Other(SendError::Transient(reason))
            });
        }
        Ok(Conn { smtp: conn, gate })
    }

    /// A TCP connection with NODELAY to the first address that answers,
    /// each attempt bounded by `connect_timeout`.
    async fn tcp(&self) -> Result<TcpStream, SendError> {
        let refused = |reason: String| {
            SendError::Transient(format!(
                "could not connect to {}:{}: {reason}",
                self.host, self.port
            ))
        };
        let addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| refused(e.to_string()))?;
        let mut last = "no address".to_owned();
        for addr in addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    tcp.set_nodelay(true).map_err(|e| refused(e.to_string()))?;
                    return Ok(tcp);
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "connection timed out".to_owned(),
            }
        }
        Err(refused(last))
    }
}

/// Credentials when the URL has a password, as lettre reads them.
fn credentials(url: &Url) -> Result<Option<Credentials>, String> {
    let Some(password) = url.password() else {
        return Ok(None);
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|e| format!("the user or password is not UTF-8: {e}"))
    };
    Ok(Some(Credentials::new(
        decode(url.username())?,
        decode(password)?,
    )))
}

/// The same error, its text rewritten by `f`.
fn with_reason(e: SendError, f: impl FnOnce(&str) -> String) -> SendError {
    match e {
        SendError::Transient(r) => SendError::Transient(f(&r)),
        SendError::Deferred(r) => SendError::Deferred(f(&r)),
        SendError::Refused(r) => SendError::Refused(f(&r)),
        SendError::Permanent(r) => SendError::Permanent(f(&r)),
        SendError::Unconfirmed(r) => SendError::Unconfirmed(f(&r)),
    }
}

/// lettre's STARTTLS setup (rustls, webpki roots) plus `extra_roots`.
fn starttls_parameters(
    host: &str,
    extra_roots: &[CertificateDer<'static>],
) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(host.to_owned());
    for root in extra_roots {
        let certificate = Certificate::from_der(root.to_vec()).map_err(|e| e.to_string())?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build_rustls().map_err(|e| e.to_string())
}

/// lettre's rustls setup for its own TLS: ring, TLS 1.2 and 1.3, webpki
/// roots, plus `extra_roots`.
fn implicit_tls_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for root in extra_roots {
        roots.add(root.clone()).map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An `smtps://` stream: rustls over our NODELAY socket, in a type lettre can drive.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl ImplicitTls {
    async fn handshake(
        config: &Arc<rustls::ClientConfig>,
        host: &str,
        port: u16,
        tcp: TcpStream,
    ) -> Result<Self, SendError> {
        let failed = |e: String| {
            SendError::Transient(format!("TLS with the relay {host}:{port} failed: {e}"))
        };
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| failed(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(Self(stream))
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(url: &str) -> Relay {
        Relay::from_url(url, Duration::from_secs(1), &[]).unwrap()
    }

    #[test]
    fn urls_choose_security_and_port_as_lettre_does() {
        let plain = relay("smtp://mail.example.org");
        assert!(matches!(plain.security, Security::Plain));
        assert_eq!(plain.port, 25);
        let required = relay("smtp://mail.example.org?tls=required");
        assert!(matches!(
            required.security,
            Security::StartTls { required: true, .. }
        ));
        assert_eq!(required.port, 587);
        let opportunistic = relay("smtp://mail.example.org:2525?tls=opportunistic");
        assert!(matches!(
            opportunistic.security,
            Security::StartTls {
                required: false,
                ..
            }
        ));
        assert_eq!(opportunistic.port, 2525);
        let implicit = relay("smtps://mail.example.org");
        assert!(matches!(implicit.security, Security::Implicit(_)));
        assert_eq!(implicit.port, 465);
        assert!(Relay::from_url("smtp://h?tls=maybe", Duration::ZERO, &[]).is_err());
        assert!(Relay::from_url("http://h", Duration::ZERO, &[]).is_err());
    }

    #[test]
    fn only_mailbox_problems_blame_the_recipient() {
        let blamed = |reply: &str, basic: &str| blames_the_mailbox(reply, Some(basic.to_owned()));
        assert!(blamed(
            "permanent error (550): 5.1.1 <ann@example.org>: User unknown",
            "550"
        ));
        assert!(blamed("permanent error (552): 5.2.2 Mailbox full", "552"));
        assert!(blamed(
            "permanent error (550): Requested action not taken: mailbox unavailable",
            "550"
        ));
        assert!(blamed(
            "permanent error (553): mailbox name not allowed",
            "553"
        ));
        assert!(!blamed(
            "permanent error (554): 5.7.1 <ann@example.org>: Relay access denied",
            "554"
        ));
        assert!(!blamed(
            "permanent error (550): 5.7.1 Unable to relay",
            "550"
        ));
        assert!(!blamed("permanent error (554): Transaction failed", "554"));
        assert!(!blamed(
            "permanent error (552): message size exceeds fixed limit",
            "552"
        ));
        assert!(blamed("5.1.1 without a basic code", "")); // the enhanced code decides
        assert!(blames_the_mailbox("(550) 5.1.10 Recipient not found", None));
        assert!(!is_enhanced_code("5.1"));
        assert!(!is_enhanced_code("5.1.1.1"));
        assert!(!is_enhanced_code("5.1234.1"));
        assert!(!is_enhanced_code("4.1.1"));
    }

    #[test]
    fn credentials_and_hello_name_come_from_the_url() {
        let r = relay("smtps://ann%40example.org:p%2Fw@mail.example.org/client.example.org");
        let expected = Credentials::new("ann@example.org".into(), "p/w".into());
        assert!(r.credentials == Some(expected));
        assert_eq!(r.hello, ClientId::Domain("client.example.org".into()));
        let no_password = relay("smtp://ann@mail.example.org");
        assert!(no_password.credentials.is_none());
        assert_eq!(no_password.hello, ClientId::default());
        assert_eq!(relay("smtp://[::1]:2525").host, "::1");
    }
}
