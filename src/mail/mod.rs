//! Email: the `Mailer` over SMTP (`smtp`'s pool of lettre connections) or
//! `.eml` files, with every send bounded by `mail.timeout` and its failure
//! classified by `SendError`. Deciding who gets what is `digest`'s; composing
//! is `compose`'s; the outbox worker is `deliver`'s.

pub mod address;
pub mod compose;
pub mod deliver;
pub mod digest;
pub mod handover;
pub mod kit;
mod smtp;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::Address;
use lettre::address::Envelope;

use self::handover::HandOver;
use self::smtp::SmtpPool;

use crate::config::{MailConfig, MailTransport};
use crate::store::StoreError;

/// Why composing or queuing mail failed.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A template failed to render.
    #[error("could not render template {name}: {reason}")]
    Template {
        /// The template's name.
        name: String,
        /// minijinja's message.
        reason: String,
    },
    /// A message could not be built (a bad address, a bad header).
    #[error("could not compose a message: {0}")]
    Compose(String),
    /// The transport could not be set up from the config.
    #[error("mail.smtp_url is not usable: {0}")]
    Transport(String),
    /// This process would sign links with another key than `tidings serve`
    /// does, so the links in what it sends would not work.
    #[error("{0}")]
    KeyMismatch(String),
    /// The operating system gave no randomness.
    #[error("could not read random bytes: {0}")]
    Random(String),
}

/// Why one send failed, and what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: a dropped connection, a refused connection or a
    /// timeout before the final dot (so the server does not have the message).
    #[error("{0}")]
    Transient(String),
    /// Try again later, as the server asked: a 4xx reply (greylisting, a
    /// full queue). The server works, so this is not a failing relay.
    #[error("{0}")]
    Deferred(String),
    /// The server refused this recipient (5xx to `RCPT TO`) or this message
    /// (5xx after the dot), or the address cannot be used: counts toward
    /// suppressing the address.
    #[error("{0}")]
    Refused(String),
    /// Do not retry: another 5xx (to `MAIL FROM`, to `DATA`), with the
    /// server's words; not the recipient's doing. A refused login is
    /// `Transient`: the messages wait for the password to be put right.
    #[error("{0}")]
    Permanent(String),
    /// The final dot went out but no answer came: the server may have the
    /// message, so it is not sent again on its own.
    #[error("{0}")]
    Unconfirmed(String),
}

/// Where mail goes.
#[derive(Clone)]
enum Transport {
    Smtp(Arc<SmtpPool>),
    File(PathBuf),
}

/// Sends rendered messages through the configured transport.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: Address,
    timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::File(_) => "file",
        };
        f.debug_struct("Mailer").field("transport", &kind).finish()
    }
}

impl Mailer {
    /// A mailer for `config`: a pool of up to `concurrency` idle SMTP
    /// connections (plain, STARTTLS or TLS and credentials from the URL,
    /// `ca_file`'s roots trusted besides the web's, each TCP connect bounded
    /// by `timeout`), or a folder.
    pub fn new(config: &MailConfig) -> Result<Self, MailError> {
        let transport = match &config.transport {
            MailTransport::File { dir } => Transport::File(dir.clone()),
            MailTransport::Smtp { url } => {
                let idle = config.concurrency as usize;
                let pool = SmtpPool::new(
                    url,
                    idle,
                    config.timeout,
                    &config.extra_roots,
                    config.retry_base,
                )
                .map_err(MailError::Transport)?;
                Transport::Smtp(Arc::new(pool))
            }
        };
        let from = config.from.email.clone();
        Ok(Self {
            transport,
            from,
            timeout: config.timeout,
        })
    }

    /// Send `message` to `recipient`, within the configured timeout, handing
    /// it over (SMTP's final dot, or the `.eml` file's rename) only once
    /// `hand_over` is recorded. `name` (the idempotency key) names the `.eml` file.
    pub async fn send(
        &self,
        recipient: &str,
        name: &str,
        message: &[u8],
        hand_over: &Arc<HandOver>,
    ) -> Result<(), SendError> {
        let sending = self.send_unbounded(recipient, name, message, hand_over);
        let Ok(result) = tokio::time::timeout(self.timeout, sending).await else {
            let waited = self.timeout.as_secs_f64();
            return Err(if hand_over.released() {
                SendError::Unconfirmed(format!(
                    "no answer within {waited} s after the message was handed over"
                ))
            } else {
                SendError::Transient(format!("no answer within {waited} s"))
            });
        };
        result
    }

    /// Closes idle SMTP connections politely (`QUIT`); later sends open new ones.
    pub async fn close(&self) {
        if let Transport::Smtp(smtp) = &self.transport {
            smtp.close().await;
        }
    }

    async fn send_unbounded(
        &self,
        recipient: &str,
        name: &str,
        message: &[u8],
        hand_over: &Arc<HandOver>,
    ) -> Result<(), SendError> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                let to: Address = recipient
                    .parse()
                    .map_err(|e| SendError::Refused(format!("bad recipient address: {e}")))?;
                let envelope = Envelope::new(Some(self.from.clone()), vec![to])
                    .map_err(|e| SendError::Permanent(format!("bad envelope: {e}")))?;
                smtp.send(&envelope, message, hand_over).await
            }
            Transport::File(dir) => write_eml(dir, name, message, hand_over).await.map_err(|e| {
                SendError::Transient(format!("could not write to {}: {e}", dir.display()))
            }),
        }
    }
}

/// Writes `{dir}/{name}.eml` atomically: a temporary file, renamed into place
/// once `hand_over` is recorded (the rename is this transport's final dot).
async fn write_eml(
    dir: &Path,
    name: &str,
    message: &[u8],
    hand_over: &HandOver,
) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{safe}.eml"));
    let partial = dir.join(format!(".{safe}.eml.partial"));
    tokio::fs::write(&partial, message).await?;
    if let Err(e) = hand_over.release().await {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    tokio::fs::rename(&partial, &path).await
}
