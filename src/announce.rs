//! Announcements: one resource, now, to the confirmed subscribers of its
//! category. Renders `announcement.txt` / `announcement.html`, composes one
//! message per subscriber and records the announcement with its outbox rows in
//! one transaction (`store::record_announcement`), so a resource is announced
//! once unless forced. Used by `tidings announce`, the API, the admin page and,
//! for categories with `announce = true`, by ingest. Sending is the outbox's.

use crate::mail::kit::{ItemView, MailKit};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::mail::MailError;
use crate::mail::compose::{Outgoing, subject_line};
use crate::mail::token::random_hex;
use crate::model::{CategorySlug, Resource, ResourceId, Route};
use crate::store::{Announcement, NewAnnouncement, NewMessage, StoreError};
use crate::views::rfc3339;

/// Longest note from the comms team, in characters.
pub(crate) const MAX_MESSAGE: usize = 2000;

/// Why an announcement was not made.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// No resource has that id.
    #[error("no resource with id {0}")]
    NotFound(String),
    /// It was announced before and `force` was not given.
    #[error("resource {id} was already announced at {at}; force it to announce again")]
    AlreadyAnnounced {
        /// The resource.
        id: String,
        /// When, RFC 3339.
        at: String,
    },
    /// The note is too long.
    #[error("the message is longer than {MAX_MESSAGE} characters")]
    MessageTooLong,
    /// Rendering or composing failed.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The email as a subscriber would get it, and to how many it would go.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The resource.
    pub resource: Resource,
    /// Subject line.
    pub subject: String,
    /// text/plain part.
    pub text: String,
    /// text/html part.
    pub html: String,
    /// Confirmed subscribers of the resource's category.
    pub recipients: usize,
    /// Earlier announcements of it, oldest first.
    pub previous: Vec<Announcement>,
}

impl Preview {
    /// A digest of exactly what the preview shows (subject, text and HTML),
    /// so a form can prove that what it sends is what was seen.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in [&self.subject, &self.text, &self.html] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        hex::encode(hash.finalize())
    }
}

/// What an announcement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The announcement's row id.
    pub id: i64,
    /// Messages queued.
    pub recipients: usize,
}

/// One request to announce.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// What to announce.
    pub resource: &'a ResourceId,
    /// A note shown above the resource.
    pub message: Option<&'a str>,
    /// Who asks.
    pub route: Route,
    /// Announce again even if announced before.
    pub force: bool,
}

/// Renders, queues and records announcements.
#[derive(Debug, Clone)]
pub struct Announcer {
    kit: MailKit,
}

impl Announcer {
    /// An announcer writing mail with `kit`.
    pub fn new(kit: MailKit) -> Self {
        Self { kit }
    }

    /// The email and its recipient count, queuing nothing.
    pub async fn preview(
        &self,
        id: &ResourceId,
        message: Option<&str>,
    ) -> Result<Preview, AnnounceError> {
        let message = clean_message(message)?;
        let resource = self.load(id).await?;
        let recipients = self.recipients(&resource.category.slug).await?.len();
        let previous = self.kit.store.announcements_of(id).await?;
        let (subject, text, html) = self.render(&resource, message.as_deref(), "preview")?;
        Ok(Preview {
            resource,
            subject,
            text,
            html,
            recipients,
            previous,
        })
    }

    /// Queues the announcement for every confirmed subscriber of the
    /// resource's category and records it, all in one transaction.
    pub async fn announce(
        &self,
        request: Request<'_>,
        now: DateTime<Utc>,
    ) -> Result<Announced, AnnounceError> {
        let message = clean_message(request.message)?;
        let resource = self.load(request.resource).await?;
        let previous = self.kit.store.announcements_of(request.resource).await?;
        if let Some(first) = previous.iter().find(|a| !a.forced)
            && !request.force
        {
            return Err(already(request.resource, first));
        }
        let key = random_hex(12)?;
        let messages = self
            .messages(&resource, message.as_deref(), &key, now)
            .await?;
        let new = NewAnnouncement {
            key,
            resource_id: request.resource.clone(),
            route: request.route,
            message,
            forced: request.force && !previous.is_empty(),
        };
        match self
            .kit
            .store
            .record_announcement(&new, &messages, now)
            .await?
        {
            Some((id, recipients)) => {
                info!(resource_id = %request.resource, route = request.route.as_str(), recipients, "announcement queued");
                crate::channels::queue_announcement(
                    &self.kit.store,
                    &self.kit.config,
                    &resource,
                    &new.key,
                    now,
                )
                .await;
                Ok(Announced { id, recipients })
            }
            // Another process announced it between our read and our insert.
            None => {
                let previous = self.kit.store.announcements_of(request.resource).await?;
                let at = previous.first().map_or_else(String::new, |a| rfc3339(a.at));
                Err(AnnounceError::AlreadyAnnounced {
                    id: request.resource.to_string(),
                    at,
                })
            }
        }
    }

    /// Queues the email the preview shows, for `message`, to `to` alone (an
    /// admin trying it out) under outbox key `test/{resource}/{time}`; no
    /// announcement is recorded. Its unsubscribe and preference links are the
    /// preview's, which lead nowhere, and it carries no List-Unsubscribe.
    pub async fn send_test(
        &self,
        id: &ResourceId,
        message: Option<&str>,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<String, AnnounceError> {
        let message = clean_message(message)?;
        let resource = self.load(id).await?;
        let (subject, text, html) = self.render(&resource, message.as_deref(), "preview")?;
        let idem_key = format!("test/{id}/{}", now.timestamp_micros());
        let bytes = self.kit.sender.compose(&Outgoing {
            kind: "announcement",
            to,
            subject: &subject,
            idem_key: &idem_key,
            token: None,
            date: now,
            text,
            html,
        })?;
        let test = NewMessage {
            idem_key: idem_key.clone(),
            kind: "announcement",
            recipient: to.to_owned(),
            subscriber_id: None,
            subject,
            message: bytes,
        };
        self.kit.store.enqueue(&test, now).await?;
        info!(resource_id = %id, "test announcement queued");
        Ok(idem_key)
    }

    /// Announces each of `new` (resources first seen in one ingest run) whose
    /// category has `announce = true`, once; returns how many were announced.
    /// Failures are logged: the ingest run itself has succeeded.
    pub(crate) async fn announce_new(
        &self,
        new: &[(ResourceId, CategorySlug)],
        now: DateTime<Utc>,
    ) -> usize {
        let mut announced = 0;
        for (id, slug) in new {
            if !self.kit.config.categories.announce.contains(slug) {
                continue;
            }
            let request = Request {
                resource: id,
                message: None,
                route: Route::Auto,
                force: false,
            };
            match self.announce(request, now).await {
                Ok(_) => announced += 1,
                Err(AnnounceError::AlreadyAnnounced { .. }) => {}
                Err(e) => warn!(resource_id = %id, error = %e, "could not announce a new resource"),
            }
        }
        announced
    }

    async fn load(&self, id: &ResourceId) -> Result<Resource, AnnounceError> {
        self.kit
            .store
            .resource(id)
            .await?
            .ok_or_else(|| AnnounceError::NotFound(id.to_string()))
    }

    async fn recipients(
        &self,
        slug: &CategorySlug,
    ) -> Result<Vec<crate::model::Subscriber>, StoreError> {
        let all = self.kit.store.confirmed_subscribers().await?;
        Ok(all
            .into_iter()
            .filter(|s| s.categories.includes(slug))
            .collect())
    }

    async fn messages(
        &self,
        resource: &Resource,
        message: Option<&str>,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewMessage>, AnnounceError> {
        let mut out = Vec::new();
        for s in self.recipients(&resource.category.slug).await? {
            let token = self.kit.key.token(s.id, &s.token_nonce);
            let (subject, text, html) = self.render(resource, message, &token)?;
            let idem_key = format!("announcement/{key}/{}", s.id);
            let bytes = self.kit.sender.compose(&Outgoing {
                kind: "announcement",
                to: &s.email,
                subject: &subject,
                idem_key: &idem_key,
                token: Some(&token),
                date: now,
                text,
                html,
            })?;
            out.push(NewMessage {
                idem_key,
                kind: "announcement",
                recipient: s.email.clone(),
                subscriber_id: Some(s.id),
                subject,
                message: bytes,
            });
        }
        Ok(out)
    }

    /// Subject, text and HTML for a subscriber whose token is `token`.
    fn render(
        &self,
        resource: &Resource,
        message: Option<&str>,
        token: &str,
    ) -> Result<(String, String, String), MailError> {
        let subject = subject_line(&format!(
            "New in {}: {}",
            resource.category.name, resource.title
        ));
        let base = &self.kit.config.site.base_url;
        let view = AnnouncementView {
            site_title: &self.kit.config.site.title,
            base_url: base.as_str(),
            subject: &subject,
            message,
            message_lines: message.map(|m| m.lines().collect()).unwrap_or_default(),
            r: ItemView::new(resource, None, base),
            unsubscribe_url: self.kit.sender.unsubscribe_url(token),
            preferences_url: format!("{base}preferences/{token}"),
        };
        let (text, html) = self.kit.render_pair("announcement", &view)?;
        Ok((subject, text, html))
    }
}

fn already(id: &ResourceId, first: &Announcement) -> AnnounceError {
    AnnounceError::AlreadyAnnounced {
        id: id.to_string(),
        at: rfc3339(first.at),
    }
}

/// The note trimmed, `None` when empty; refused when too long.
fn clean_message(message: Option<&str>) -> Result<Option<String>, AnnounceError> {
    let Some(text) = message.map(str::trim).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_MESSAGE {
        return Err(AnnounceError::MessageTooLong);
    }
    Ok(Some(text.replace("\r\n", "\n").replace('\r', "\n")))
}

/// What `announcement.txt` and `announcement.html` see.
#[derive(Serialize)]
struct AnnouncementView<'a> {
    site_title: &'a str,
    base_url: &'a str,
    subject: &'a str,
    message: Option<&'a str>,
    /// The note's lines, one paragraph each in HTML.
    message_lines: Vec<&'a str>,
    r: ItemView,
    unsubscribe_url: String,
    preferences_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_trimmed_and_bounded() {
        assert_eq!(clean_message(None).unwrap(), None);
        assert_eq!(clean_message(Some("  ")).unwrap(), None);
        assert_eq!(
            clean_message(Some(" a\r\nb ")).unwrap().as_deref(),
            Some("a\nb")
        );
        let long = "x".repeat(MAX_MESSAGE + 1);
        assert!(matches!(
            clean_message(Some(&long)),
            Err(AnnounceError::MessageTooLong)
        ));
    }
}
