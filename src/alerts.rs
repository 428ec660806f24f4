//! Operator alerts: when a source has failed `mail.alert_after` runs in a
//! row, every address in `mail.admins` gets one email, and one more when a
//! run succeeds again — not one per failure. The store's alert rows decide
//! which process sends each (see `store::alerts`); the mail goes through the
//! outbox like every other message.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::warn;

use crate::config::Config;
use crate::mail::MailError;
use crate::mail::compose::{Outgoing, Sender};
use crate::render::Templates;
use crate::store::{NewMessage, Store};

/// Sends alerts about failing sources to the configured admins.
pub struct Alerts {
    store: Store,
    sender: Sender,
    templates: Arc<Templates>,
    admins: Vec<String>,
    threshold: i64,
    site: String,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("admins", &self.admins.len())
            .field("threshold", &self.threshold)
            .finish()
    }
}

/// What `alert.txt` sees.
#[derive(Serialize)]
struct AlertView<'a> {
    site: &'a str,
    source: &'a str,
    failing: bool,
    failures: i64,
    error: &'a str,
}

impl Alerts {
    /// Alerts for `config`, or `None` when no admin address is configured.
    pub fn new(
        store: Store,
        config: &Config,
        templates: Arc<Templates>,
    ) -> Result<Option<Self>, MailError> {
        if config.mail.admins.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            store,
            sender: Sender::new(&config.site, &config.mail)?,
            templates,
            admins: config.mail.admins.clone(),
            threshold: i64::from(config.mail.alert_after),
            site: config.site.title.clone(),
        }))
    }

    /// After a run of `source`: raise its alert once it has failed often
    /// enough, clear it after a success. Problems are logged, never fatal.
    pub async fn after_source_run(&self, source: &str, error: Option<&str>, now: DateTime<Utc>) {
        if let Err(e) = self.check(source, error, now).await {
            warn!(source = %source, error = %e, "could not process the source's alert");
        }
    }

    async fn check(
        &self,
        source: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let name = format!("source:{source}");
        let failures = self.store.consecutive_failures(source).await?;
        let view = AlertView {
            site: &self.site,
            source,
            failing: failures > 0,
            failures,
            error: error.unwrap_or("unknown"),
        };
        if failures >= self.threshold && self.store.raise_alert(&name, now).await? {
            self.send(&view, &format!("{name}/raised/{}", now.timestamp()), now)
                .await?;
        } else if failures == 0 && self.store.clear_alert(&name, now).await? {
            self.send(&view, &format!("{name}/cleared/{}", now.timestamp()), now)
                .await?;
        }
        Ok(())
    }

    /// Queue one alert email per admin.
    async fn send(
        &self,
        view: &AlertView<'_>,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let text = self
            .templates
            .render("alert.txt", view)
            .map_err(|e| MailError::Compose(format!("alert.txt: {e:#}")))?;
        let state = if view.failing {
            "is failing"
        } else {
            "works again"
        };
        let subject = format!("{}: source {} {state}", self.site, view.source);
        for admin in &self.admins {
            let idem_key = format!("alert/{key}/{admin}");
            let message = self.sender.compose(&Outgoing {
                kind: "alert",
                to: admin,
                subject: &subject,
                idem_key: &idem_key,
                token: None,
                date: now,
                html: format!("<pre>{}</pre>", escape_html(&text)),
                text: text.clone(),
            })?;
            let queued = NewMessage {
                idem_key,
                kind: "alert",
                recipient: admin.clone(),
                subscriber_id: None,
                subject: subject.clone(),
                message,
            };
            self.store.enqueue(&queued, now).await?;
        }
        Ok(())
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
