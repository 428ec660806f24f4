//! Operator alerts: when a source has failed `mail.alert_after` runs in a
//! row, or `mail.alert_after_failed_sends` sends in a row have failed, every
//! address in `mail.admins` gets one email, and one more when it works again —
//! not one per failure. The store's alert rows decide which process sends
//! each (see `store::alerts`); the mail goes through the outbox like every
//! other message (an alert about failing mail waits there, retried, until
//! mail goes through; the log and `tidings_alerts_raised` in /metrics say it
//! at once).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::mail::MailError;
use crate::mail::compose::{Outgoing, Sender};
use crate::render::{Templates, escape_html};
use crate::store::{NewMessage, Store};

/// The name of the alert about failing mail (sources' are `source:NAME`).
pub(crate) const MAIL_ALERT: &str = "mail";

/// Sends alerts about failing sources and failing mail to the configured admins.
pub struct Alerts {
    store: Store,
    sender: Sender,
    templates: Arc<Templates>,
    admins: Vec<crate::mail::address::Email>,
    threshold: i64,
    failed_sends_threshold: u64,
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
    /// `source` or `mail`.
    kind: &'static str,
    site: &'a str,
    source: &'a str,
    failing: bool,
    failures: i64,
    error: &'a str,
}

impl AlertView<'_> {
    fn subject(&self) -> String {
        match (self.kind, self.failing) {
            ("mail", true) => format!("{}: mail keeps failing", self.site),
            ("mail", false) => format!("{}: mail goes through again", self.site),
            ("held", _) => format!("{}: a run of source {} is held", self.site, self.source),
            (_, true) => format!("{}: source {} is failing", self.site, self.source),
            (_, false) => format!("{}: source {} works again", self.site, self.source),
        }
    }
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
            failed_sends_threshold: u64::from(config.mail.alert_after_failed_sends),
            site: config.site.title.clone(),
        }))
    }

    /// After a run of `source`: raise its alert once it has failed often
    /// enough, clear it after a success. Problems are logged, never fatal.
    pub(crate) async fn after_source_run(
        &self,
        source: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) {
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
            kind: "source",
            site: &self.site,
            source,
            failing: failures > 0,
            failures,
            error: error.unwrap_or("unknown"),
        };
        if failures >= self.threshold {
            self.raise(&name, &view, now).await
        } else if failures == 0 {
            self.clear(&name, &view, now).await
        } else {
            Ok(())
        }
    }

    /// After run `run_id` of `source` was held: email the admins, once while
    /// any run of the source stays held (alert `held:NAME`). Logged, never fatal.
    pub(crate) async fn after_held_run(
        &self,
        source: &str,
        run_id: i64,
        reasons: &str,
        summary: &[String],
        now: DateTime<Utc>,
    ) {
        let error = format!("run {run_id}: {reasons}\n\n{}", summary.join("\n"));
        let view = AlertView {
            kind: "held",
            site: &self.site,
            source,
            failing: true,
            failures: run_id,
            error: &error,
        };
        if let Err(e) = self.raise(&format!("held:{source}"), &view, now).await {
            warn!(source = %source, error = %e, "could not raise the held-run alert");
        }
    }

    /// After a held run of `source` was accepted or rejected: once none is
    /// left held, clear its alert without an email (a person just acted on it).
    pub(crate) async fn after_release(&self, source: &str, now: DateTime<Utc>) {
        let cleared = match self.store.held_count(source).await {
            Ok(0) => self.store.clear_alert(&format!("held:{source}"), now).await,
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        };
        if let Err(e) = cleared {
            warn!(source = %source, error = %e, "could not clear the held-run alert");
        }
    }

    /// Failed sends in a row that raise the mail alert.
    pub(crate) fn failed_sends_threshold(&self) -> u64 {
        self.failed_sends_threshold
    }

    /// After `failures` sends in a row failed (`error` the last reason): raise
    /// the mail alert once they reach `mail.alert_after_failed_sends`. Logged, never fatal.
    pub(crate) async fn after_failed_sends(&self, failures: u64, error: &str, now: DateTime<Utc>) {
        if failures < self.failed_sends_threshold {
            return;
        }
        let view = self.mail_view(true, failures, error);
        if let Err(e) = self.raise(MAIL_ALERT, &view, now).await {
            warn!(error = %e, "could not raise the mail alert");
        }
    }

    /// After sends went through: clear the mail alert if it is raised.
    pub(crate) async fn after_sent(&self, now: DateTime<Utc>) {
        let view = self.mail_view(false, 0, "");
        if let Err(e) = self.clear(MAIL_ALERT, &view, now).await {
            warn!(error = %e, "could not clear the mail alert");
        }
    }

    fn mail_view<'a>(&'a self, failing: bool, failures: u64, error: &'a str) -> AlertView<'a> {
        AlertView {
            kind: "mail",
            site: &self.site,
            source: "",
            failing,
            failures: i64::try_from(failures).unwrap_or(i64::MAX),
            error,
        }
    }

    /// Raises `name` and, if this process raised it, emails the admins.
    async fn raise(
        &self,
        name: &str,
        view: &AlertView<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        if let Some(change) = self.store.raise_alert_numbered(name, now).await? {
            error!(
                alert = name,
                failures = view.failures,
                error = view.error,
                "alert raised"
            );
            self.send(name, view, &format!("{name}/{change}/raised"), now)
                .await?;
        }
        Ok(())
    }

    /// Clears `name` and, if this process cleared it, emails the admins.
    async fn clear(
        &self,
        name: &str,
        view: &AlertView<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        if let Some(change) = self.store.clear_alert_numbered(name, now).await? {
            info!(alert = name, "alert cleared");
            self.send(name, view, &format!("{name}/{change}/cleared"), now)
                .await?;
        }
        Ok(())
    }

    /// Queue one alert email per admin, keyed by the alert's change number
    /// (unique, however close in time two changes are). Earlier emails of the
    /// alert still waiting for a retry are made due first, so they are not
    /// the last word the admins read.
    async fn send(
        &self,
        name: &str,
        view: &AlertView<'_>,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let earlier = now - chrono::Duration::seconds(1);
        self.store.hurry_alert_mail(name, earlier).await?;
        let text = self
            .templates
            .render("alert.txt", view)
            .map_err(|e| MailError::Compose(format!("alert.txt: {e:#}")))?;
        let subject = view.subject();
        for admin in &self.admins {
            let idem_key = format!("alert/{key}/{admin}");
            let message = self.sender.compose(&Outgoing {
                kind: "alert",
                to: admin.as_str(),
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
                recipient: admin.to_string(),
                subscriber_id: None,
                subject: subject.clone(),
                message,
            };
            self.store.enqueue(&queued, now).await?;
        }
        Ok(())
    }
}
