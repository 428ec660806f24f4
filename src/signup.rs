//! Double opt-in: a web sign-up becomes a pending subscriber and a
//! confirmation email (`confirmation.txt` / `.html`, `X-Tidings-Kind:
//! confirmation`) with a `/confirm/{token}` link whose expiry is signed into
//! the token. At most one confirmation per address per `RESEND_WINDOW`, decided
//! in the database (`store::request_confirmation`). Pages are `web::subscribe`'s.

use crate::mail::kit::MailKit;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::mail::MailError;
use crate::mail::address::mask;
use crate::mail::compose::Outgoing;
use crate::model::Subscriber;
use crate::store::{NewMessage, NewSubscriber};

/// How long a confirmation link works.
pub(crate) const LINK_LIFETIME: Duration = Duration::hours(72);
/// At most one confirmation email per address in this long.
pub(crate) const RESEND_WINDOW: Duration = Duration::hours(1);

/// What a confirmation token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmToken {
    /// Signed, in time: this subscriber.
    Valid(i64),
    /// Signed, but past its expiry.
    Expired,
    /// Not a token of ours.
    Invalid,
}

/// Records sign-ups and sends their confirmation emails.
#[derive(Debug, Clone)]
pub struct Signup {
    kit: MailKit,
}

impl Signup {
    /// Sign-ups writing mail with `kit`.
    pub fn new(kit: MailKit) -> Self {
        Self { kit }
    }

    /// Records `new` and queues a confirmation when the address may get one
    /// now; true when one was queued. Says nothing else about the address.
    pub async fn request(
        &self,
        new: &NewSubscriber,
        now: DateTime<Utc>,
    ) -> Result<bool, MailError> {
        if crate::privacy::is_suppression_listed(&self.kit.store, &self.kit.key, &new.email).await?
        {
            warn!(email = %mask(&new.email), "sign-up refused: the address was erased while suppressed");
            return Ok(false);
        }
        let resend_after = now - RESEND_WINDOW;
        let Some(subscriber) = self
            .kit
            .store
            .request_confirmation(new, now, resend_after)
            .await?
        else {
            info!(email = %mask(&new.email), "sign-up: no confirmation sent (confirmed, or sent recently)");
            return Ok(false);
        };
        let message = self.confirmation(&subscriber, now)?;
        self.kit.store.enqueue(&message, now).await?;
        info!(subscriber_id = subscriber.id, "confirmation queued");
        Ok(true)
    }

    /// The confirmation token of `subscriber`, valid until `expires`.
    pub(crate) fn confirm_token(&self, subscriber: &Subscriber, expires: DateTime<Utc>) -> String {
        let id = subscriber.id.to_string();
        let exp = expires.timestamp().to_string();
        let mac = self
            .kit
            .key
            .sign("confirm", &[&id, &subscriber.token_nonce, &exp]);
        format!("{id}.{exp}.{mac}")
    }

    /// Checks a confirmation token against the stored subscriber, in constant time.
    pub async fn check(&self, token: &str, now: DateTime<Utc>) -> Result<ConfirmToken, MailError> {
        let mut parts = token.splitn(3, '.');
        let (Some(id), Some(exp), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(ConfirmToken::Invalid);
        };
        let (Ok(id_num), Ok(exp_num)) = (id.parse::<i64>(), exp.parse::<i64>()) else {
            return Ok(ConfirmToken::Invalid);
        };
        let Some(subscriber) = self.kit.store.subscriber(id_num).await? else {
            return Ok(ConfirmToken::Invalid);
        };
        let fields = [id, subscriber.token_nonce.as_str(), exp];
        if !self.kit.key.verify_signed("confirm", &fields, mac) {
            return Ok(ConfirmToken::Invalid);
        }
        if now.timestamp() > exp_num {
            return Ok(ConfirmToken::Expired);
        }
        Ok(ConfirmToken::Valid(id_num))
    }

    fn confirmation(&self, s: &Subscriber, now: DateTime<Utc>) -> Result<NewMessage, MailError> {
        let token = self.kit.key.token(s.id, &s.token_nonce);
        let base = &self.kit.config.site.base_url;
        let subject = format!(
            "Confirm your subscription to {}",
            self.kit.config.site.title
        );
        let view = ConfirmationView {
            site_title: &self.kit.config.site.title,
            base_url: base.as_str(),
            subject: &subject,
            confirm_url: format!(
                "{base}confirm/{}",
                self.confirm_token(s, now + LINK_LIFETIME)
            ),
            hours: LINK_LIFETIME.num_hours(),
        };
        let (text, html) = self.kit.render_pair("confirmation", &view)?;
        let idem_key = format!("confirmation/{}/{}", s.id, now.timestamp_micros());
        let message = self.kit.sender.compose(&Outgoing {
            kind: "confirmation",
            to: &s.email,
            subject: &subject,
            idem_key: &idem_key,
            token: Some(&token),
            date: now,
            text,
            html,
        })?;
        Ok(NewMessage {
            idem_key,
            kind: "confirmation",
            recipient: s.email.clone(),
            subscriber_id: Some(s.id),
            subject,
            message,
        })
    }
}

/// What `confirmation.txt` and `confirmation.html` see.
#[derive(Serialize)]
struct ConfirmationView<'a> {
    site_title: &'a str,
    base_url: &'a str,
    subject: &'a str,
    confirm_url: String,
    hours: i64,
}
