//! Named admin accounts: adding one queues its one-time password link
//! (`admin_password.txt` / `.html`, `X-Tidings-Kind: admin-password`)
//! through the outbox; the link's token signs the account, its link nonce
//! and an expiry 72 hours on, so it stops working when it expires or once a
//! password was set (the nonce moves on). Storing accounts is
//! `store::admins`'s; the pages are `web::accounts`'s.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::mail::MailError;
use crate::mail::address::Email;
use crate::mail::compose::Outgoing;
use crate::mail::kit::MailKit;
use crate::mail::token::{SigningKey, random_hex};
use crate::store::{AdminAccount, NewMessage, Store};

/// How long a password link works.
pub const LINK_LIFETIME: Duration = Duration::hours(72);
/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The name of the account `admin.password_hash` (or `TIDINGS_ADMIN_PASSWORD`) signs in.
pub const BOOTSTRAP_NAME: &str = "admin";

/// What a password link's token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkToken {
    /// Signed, in time, unused: this account.
    Valid(AdminAccount),
    /// Signed, but expired or already used.
    Spent,
    /// Not a token of ours, or its account is gone.
    Invalid,
}

/// An email address as an account's sign-in name, or why it cannot be one.
pub fn account_email(input: &str) -> Result<String, String> {
    Email::parse(input).map(|e| e.as_str().to_owned())
}

/// A new random link nonce.
pub fn new_nonce() -> Result<String, MailError> {
    random_hex(16)
}

/// The token of `account`'s password link, valid until `expires`.
pub fn link_token(key: &SigningKey, account: &AdminAccount, expires: DateTime<Utc>) -> String {
    let id = account.id.to_string();
    let exp = expires.timestamp().to_string();
    let mac = key.sign("admin-password", &[&id, &account.link_nonce, &exp]);
    format!("{id}.{exp}.{mac}")
}

/// Checks a password link's token against the stored account, in constant time.
pub async fn check_link(
    store: &Store,
    key: &SigningKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<LinkToken, MailError> {
    let mut parts = token.splitn(3, '.');
    let (Some(id), Some(exp), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(LinkToken::Invalid);
    };
    let (Ok(id_num), Ok(exp_num)) = (id.parse::<i64>(), exp.parse::<i64>()) else {
        return Ok(LinkToken::Invalid);
    };
    let Some(account) = store.admin_by_id(id_num).await? else {
        return Ok(LinkToken::Invalid);
    };
    let signed = |nonce: &str| key.verify_signed("admin-password", &[id, nonce, exp], mac);
    if !signed(&account.link_nonce) {
        // A used link was signed with a nonce that has moved on: it verifies
        // against nothing stored, so "used" and "forged" look alike here.
        return Ok(if account.password_hash.is_some() {
            LinkToken::Spent
        } else {
            LinkToken::Invalid
        });
    }
    if now.timestamp() > exp_num {
        return Ok(LinkToken::Spent);
    }
    Ok(LinkToken::Valid(account))
}

/// Queues `account`'s password link email; returns the outbox key.
pub async fn queue_link(
    kit: &MailKit,
    account: &AdminAccount,
    now: DateTime<Utc>,
) -> Result<String, MailError> {
    let message = link_message(kit, account, now)?;
    let key = message.idem_key.clone();
    kit.store.enqueue(&message, now).await?;
    Ok(key)
}

fn link_message(
    kit: &MailKit,
    account: &AdminAccount,
    now: DateTime<Utc>,
) -> Result<NewMessage, MailError> {
    let base = &kit.config.site.base_url;
    let subject = format!("Choose your password for {}", kit.config.site.title);
    let token = link_token(&kit.key, account, now + LINK_LIFETIME);
    let view = LinkView {
        site_title: &kit.config.site.title,
        base_url: base.as_str(),
        subject: &subject,
        name: &account.name,
        link_url: format!("{base}admin/password/{token}"),
        sign_in_url: format!("{base}admin/login"),
        hours: LINK_LIFETIME.num_hours(),
    };
    let render = |name: &str| {
        kit.templates
            .render(name, &view)
            .map_err(|e| MailError::Template {
                name: name.to_owned(),
                reason: format!("{e:#}"),
            })
    };
    let idem_key = format!("admin-password/{}/{}", account.id, now.timestamp_micros());
    let message = kit.sender.compose(&Outgoing {
        kind: "admin-password",
        to: &account.email,
        subject: &subject,
        idem_key: &idem_key,
        token: None,
        date: now,
        text: render("admin_password.txt")?,
        html: render("admin_password.html")?,
    })?;
    Ok(NewMessage {
        idem_key,
        kind: "admin-password",
        recipient: account.email.clone(),
        subscriber_id: None,
        subject,
        message,
    })
}

/// What `admin_password.txt` and `.html` see.
#[derive(Serialize)]
struct LinkView<'a> {
    site_title: &'a str,
    base_url: &'a str,
    subject: &'a str,
    name: &'a str,
    link_url: String,
    sign_in_url: String,
    hours: i64,
}

/// Why a new password cannot be used, in words for the form; `None` when it can.
pub fn password_problem(password: &str, repeated: &str) -> Option<String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Some(format!(
            "Choose a password of at least {MIN_PASSWORD_CHARS} characters."
        ));
    }
    if password != repeated {
        return Some("The two passwords are not the same. Type it twice.".to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_mistyped_passwords_are_refused_in_words() {
        assert!(
            password_problem("short", "short")
                .unwrap()
                .contains("at least 12")
        );
        assert!(
            password_problem("long enough words", "long enough word")
                .unwrap()
                .contains("not the same")
        );
        assert_eq!(
            password_problem("long enough words", "long enough words"),
            None
        );
    }
}
