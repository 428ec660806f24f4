//! The point of no return in sending an email: the final `.` of SMTP's DATA.
//! Before it the server discards whatever it was sent when the connection
//! drops; after it the server may have the message whatever happens to us.
//!
//! A `HandOver` is what must be recorded before that point (the outbox marks
//! the row handed over, only if nobody else did) and whether the point was
//! passed. The SMTP connection's stream is a `GatedStream`: once armed with a
//! `HandOver`, it lets the message's body through, and holds the first write
//! after the body's flush (lettre writes the body, flushes, then writes the
//! dot) until the record is written. If recording fails, the write fails and
//! the dot never leaves. The gate sits under lettre's STARTTLS layer too: it
//! then holds the dot's TLS record, which works the same way.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What recording a hand-over says: `Ok(true)` go ahead, `Ok(false)` the
/// message is not ours to send any more, `Err` the record could not be written.
pub type Recording = Pin<Box<dyn Future<Output = Result<bool, String>> + Send>>;

const WAITING: u8 = 0;
const RELEASED: u8 = 1;
const NOT_OURS: u8 = 2;
const FAILED: u8 = 3;

/// Where a message stands with respect to its final dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOverState {
    /// The dot has not gone out: the server cannot have the message.
    Waiting,
    /// Recorded, and the dot was let through: the server may have it.
    Released,
    /// The record said someone else holds the message; the dot never left.
    NotOurs,
    /// The record could not be written; the dot never left.
    Failed,
}

/// The record to write before one message's final dot, and its outcome.
pub struct HandOver {
    recording: Mutex<Option<Recording>>,
    state: AtomicU8,
}

impl std::fmt::Debug for HandOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandOver")
            .field("state", &self.state())
            .finish()
    }
}

impl HandOver {
    /// A hand-over that runs `record` before the dot.
    pub fn new(record: impl Future<Output = Result<bool, String>> + Send + 'static) -> Arc<Self> {
        Arc::new(Self {
            recording: Mutex::new(Some(Box::pin(record))),
            state: AtomicU8::new(WAITING),
        })
    }

    /// Where the message stands.
    pub fn state(&self) -> HandOverState {
        match self.state.load(Ordering::Acquire) {
            RELEASED => HandOverState::Released,
            NOT_OURS => HandOverState::NotOurs,
            FAILED => HandOverState::Failed,
            _ => HandOverState::Waiting,
        }
    }

    /// True once the dot may have reached the server.
    pub(crate) fn released(&self) -> bool {
        self.state() == HandOverState::Released
    }

    /// Writes the record (once); `Ok` when the dot may go.
    pub async fn release(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_release(cx)).await
    }

    /// Drives the record; `Ready(Ok)` when the dot may go, an error when it must not.
    fn poll_release(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut recording = self
            .recording
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let outcome = match recording.as_mut() {
            Some(future) => ready!(future.as_mut().poll(cx)),
            None => return Poll::Ready(self.settled()),
        };
        *recording = None;
        let state = match outcome {
            Ok(true) => RELEASED,
            Ok(false) => NOT_OURS,
            Err(_) => FAILED,
        };
        self.state.store(state, Ordering::Release);
        Poll::Ready(match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(io::Error::other(
                "the message was handed over by another sender",
            )),
            Err(reason) => Err(io::Error::other(format!(
                "could not record the hand-over: {reason}"
            ))),
        })
    }

    /// The answer of a record already written.
    fn settled(&self) -> io::Result<()> {
        match self.state() {
            HandOverState::Released => Ok(()),
            state => Err(io::Error::other(format!(
                "the hand-over was refused earlier ({state:?})"
            ))),
        }
    }
}

/// One connection's gate, shared by the pool (which arms it around a
/// message) and the stream (which holds the dot).
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate(Arc<Mutex<Phase>>);

#[derive(Debug, Default)]
enum Phase {
    /// Writes pass.
    #[default]
    Open,
    /// The body is being written; its flush ends this phase.
    Body(Arc<HandOver>),
    /// The body is flushed: the next write is the dot, held until released.
    Dot(Arc<HandOver>),
}

impl Gate {
    /// Arms the gate for the message about to be written.
    pub(crate) fn arm(&self, hand_over: Arc<HandOver>) {
        *self.phase() = Phase::Body(hand_over);
    }

    /// Opens the gate after a message, whatever happened to it.
    pub(crate) fn disarm(&self) {
        *self.phase() = Phase::Open;
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before a write: `Ready(Ok)` when it may pass.
    fn poll_write_allowed(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let hand_over = match &*self.phase() {
            Phase::Dot(hand_over) => Arc::clone(hand_over),
            Phase::Open | Phase::Body(_) => return Poll::Ready(Ok(())),
        };
        ready!(hand_over.poll_release(cx))?;
        *self.phase() = Phase::Open;
        Poll::Ready(Ok(()))
    }

    /// After a successful flush: the body is out, the dot comes next.
    fn flushed(&self) {
        let mut phase = self.phase();
        if let Phase::Body(hand_over) = &*phase {
            *phase = Phase::Dot(Arc::clone(hand_over));
        }
    }
}

/// A connection's stream with its gate in the write path.
#[derive(Debug)]
pub(crate) struct GatedStream {
    inner: Box<dyn AsyncTokioStream>,
    gate: Gate,
}

impl GatedStream {
    /// `inner`, gated by `gate`.
    pub(crate) fn new(inner: Box<dyn AsyncTokioStream>, gate: Gate) -> Self {
        Self { inner, gate }
    }
}

impl AsyncTokioStream for GatedStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }
}

impl AsyncRead for GatedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.gate.poll_write_allowed(cx))?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        self.gate.flushed();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;

    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A gated client stream and the server's end of the connection.
    async fn connected() -> (GatedStream, Gate, TcpStream) {
        let (stream, gate, server, _) = connected_tapped().await;
        (stream, gate, server)
    }

    /// Like `connected`, with a count of the bytes that passed the gate
    /// into the socket (the gated stream's inner side).
    async fn connected_tapped() -> (GatedStream, Gate, TcpStream, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let gate = Gate::default();
        let written = Arc::new(AtomicUsize::new(0));
        let tap = Tap {
            inner: client.unwrap(),
            written: Arc::clone(&written),
        };
        let stream = GatedStream::new(Box::new(tap), gate.clone());
        (stream, gate, accepted.unwrap().0, written)
    }

    /// A socket that counts what is written into it.
    #[derive(Debug)]
    struct Tap {
        inner: TcpStream,
        written: Arc<AtomicUsize>,
    }

    impl AsyncTokioStream for Tap {
        fn peer_addr(&self) -> io::Result<SocketAddr> {
            self.inner.peer_addr()
        }
    }

    impl AsyncRead for Tap {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Tap {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
            self.written.fetch_add(n, Ordering::SeqCst);
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// Bounds a wait on an event, so a test that would hang fails instead.
    const EVENT: Duration = Duration::from_secs(10);

    /// The next `n` bytes the server's end receives.
    async fn read_exactly<S: AsyncRead + Unpin>(server: &mut S, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(EVENT, server.read_exact(&mut buf))
            .await
            .expect("the bytes arrive")
            .unwrap();
        buf
    }

    /// Everything the server's end receives until the client closes.
    async fn read_to_close<S: AsyncRead + Unpin>(server: &mut S) -> Vec<u8> {
        let mut buf = Vec::new();
        tokio::time::timeout(EVENT, server.read_to_end(&mut buf))
            .await
            .expect("the client closes")
            .unwrap();
        buf
    }

    /// Writes a body and then a dot through `stream` with `gate` armed: the
    /// body reaches `server` at once; while the record runs, not one byte
    /// more passes the gate (`written` counts them); once it is written the
    /// dot arrives.
    async fn the_dot_waits_for_the_record<C, S>(
        mut stream: C,
        gate: Gate,
        mut server: S,
        written: Arc<AtomicUsize>,
    ) where
        C: AsyncWrite + Unpin + Send + 'static,
        S: AsyncRead + Unpin,
    {
        let (started, recording) = oneshot::channel::<()>();
        let (recorded, record) = oneshot::channel::<bool>();
        let hand_over = HandOver::new(async move {
            started.send(()).unwrap();
            Ok(record.await.unwrap())
        });
        gate.arm(Arc::clone(&hand_over));
        let body = b"Subject: hi\r\n\r\nbody";
        stream.write_all(body).await.unwrap();
        stream.flush().await.unwrap();
        assert_eq!(read_exactly(&mut server, body.len()).await, body);
        let before_the_dot = written.load(Ordering::SeqCst);

        // The stream comes back so that it is not dropped (closed) before the last read.
        let dot = tokio::spawn(async move {
            stream.write_all(b"\r\n.\r\n").await.unwrap();
            stream.flush().await.unwrap();
            stream
        });
        // The dot's write has reached the gate, which is running the record.
        tokio::time::timeout(EVENT, recording)
            .await
            .expect("the gate starts the record")
            .unwrap();
        assert_eq!(
            written.load(Ordering::SeqCst),
            before_the_dot,
            "the dot left early"
        );
        assert_eq!(hand_over.state(), HandOverState::Waiting);
        recorded.send(true).unwrap();
        let _stream = dot.await.unwrap();
        assert_eq!(read_exactly(&mut server, 5).await, b"\r\n.\r\n");
        assert!(hand_over.released());
    }

    #[tokio::test]
    async fn the_dot_waits_for_the_record_and_the_body_does_not() {
        let (stream, gate, server, written) = connected_tapped().await;
        the_dot_waits_for_the_record(stream, gate, server, written).await;
    }

    /// A TLS client over a gated stream (as lettre's STARTTLS layer sits on
    /// the gate), and the server's decrypting end, trusting a fresh certificate.
    async fn connected_over_tls() -> (
        tokio_rustls::client::TlsStream<GatedStream>,
        Gate,
        tokio_rustls::server::TlsStream<TcpStream>,
        Arc<AtomicUsize>,
    ) {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key_pair.serialize_der());
        let server_config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key.into())
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let (plain, gate, server, written) = connected_tapped().await;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let client = tokio_rustls::TlsConnector::from(Arc::new(client_config)).connect(name, plain);
        let server = tokio_rustls::TlsAcceptor::from(Arc::new(server_config)).accept(server);
        let (client, server) = tokio::join!(client, server);
        (client.unwrap(), gate, server.unwrap(), written)
    }

    #[tokio::test]
    async fn under_tls_the_dot_s_record_waits_for_the_hand_over() {
        let (stream, gate, server, written) = connected_over_tls().await;
        the_dot_waits_for_the_record(stream, gate, server, written).await;
    }

    #[tokio::test]
    async fn a_refused_or_failed_record_keeps_the_dot_back() {
        for (answer, state) in [
            (Ok(false), HandOverState::NotOurs),
            (Err("database gone".to_owned()), HandOverState::Failed),
        ] {
            let (mut stream, gate, mut server) = connected().await;
            let hand_over = HandOver::new(async move { answer });
            gate.arm(Arc::clone(&hand_over));
            stream.write_all(b"body").await.unwrap();
            stream.flush().await.unwrap();
            let refused = stream.write_all(b"\r\n.\r\n").await;
            assert!(refused.is_err(), "{state:?}");
            assert_eq!(hand_over.state(), state);
            drop(stream);
            assert_eq!(read_to_close(&mut server).await, b"body");
        }
    }

    #[tokio::test]
    async fn an_unarmed_or_disarmed_gate_lets_everything_through() {
        let (mut stream, gate, mut server) = connected().await;
        stream.write_all(b"EHLO x\r\n").await.unwrap();
        stream.flush().await.unwrap();
        let never = HandOver::new(std::future::pending());
        gate.arm(Arc::clone(&never));
        gate.disarm();
        stream.write_all(b"QUIT\r\n").await.unwrap();
        stream.flush().await.unwrap();
        stream.write_all(b"more").await.unwrap();
        drop(stream);
        assert_eq!(read_to_close(&mut server).await, b"EHLO x\r\nQUIT\r\nmore");
        assert_eq!(never.state(), HandOverState::Waiting);
    }

    #[tokio::test]
    async fn release_records_once() {
        let count = Arc::new(AtomicU8::new(0));
        let counted = Arc::clone(&count);
        let hand_over = HandOver::new(async move {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        });
        hand_over.release().await.unwrap();
        hand_over.release().await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(hand_over.released());
    }
}
