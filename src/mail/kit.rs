//! `MailKit`: what every writer of subscriber mail (digests, announcements,
//! confirmations) shares — the store, the config, the templates, the key that
//! signs links, and the composer — with rendering a text and HTML pair and
//! the view of one listed resource (`ItemView`). Built once (by `wiring`),
//! cloned cheaply.

use std::sync::Arc;

use serde::Serialize;
use url::Url;

use super::MailError;
use super::compose::Sender;
use super::token::SigningKey;
use crate::config::Config;
use crate::model::{ChangeKind, Resource};
use crate::render::Templates;
use crate::store::Store;
use crate::views::{date_text, excerpt};

/// The shared parts of every mail writer.
#[derive(Debug, Clone)]
pub struct MailKit {
    /// Subscribers, resources and the outbox.
    pub store: Store,
    /// The checked config.
    pub config: Arc<Config>,
    /// Built-in templates and `site.templates_dir` overrides.
    pub templates: Arc<Templates>,
    /// Signs unsubscribe, preference and confirmation links.
    pub key: SigningKey,
    /// Composes RFC 5322 messages.
    pub sender: Sender,
}

impl MailKit {
    /// A kit from its parts.
    pub fn new(
        store: Store,
        config: Arc<Config>,
        templates: Arc<Templates>,
        key: SigningKey,
    ) -> Result<Self, MailError> {
        let sender = Sender::new(&config.site, &config.mail)?;
        Ok(Self {
            store,
            config,
            templates,
            key,
            sender,
        })
    }

    /// The text and HTML parts of a message: `{stem}.txt` and `{stem}.html`
    /// rendered with `view`.
    pub(crate) fn render_pair(
        &self,
        stem: &str,
        view: &impl Serialize,
    ) -> Result<(String, String), MailError> {
        let render = |name: String| {
            self.templates
                .render(&name, view)
                .map_err(|e| MailError::Template {
                    name,
                    reason: format!("{e:#}"),
                })
        };
        Ok((
            render(format!("{stem}.txt"))?,
            render(format!("{stem}.html"))?,
        ))
    }
}

/// One resource as an email lists it, in digests and announcements alike.
#[derive(Debug, Serialize)]
pub struct ItemView {
    /// Its title.
    pub title: String,
    /// Its category's name.
    pub category: String,
    /// `new` or `changed` in a digest; absent in an announcement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Its own date, in words.
    pub date: Option<String>,
    /// The start of its summary.
    pub excerpt: String,
    /// Its link, else its page on this site.
    pub link: String,
    /// Its download link.
    pub download: Option<String>,
}

impl ItemView {
    /// The view of `r`, with what happened to it when that is news (`kind`).
    pub fn new(r: &Resource, kind: Option<ChangeKind>, base_url: &Url) -> Self {
        Self {
            title: r.title.clone(),
            category: r.category.name.clone(),
            kind: kind.map(ChangeKind::as_str),
            date: r.date.map(date_text),
            excerpt: excerpt(&r.summary.plain_text()),
            link: r.item_link(base_url),
            download: r.download.as_ref().map(ToString::to_string),
        }
    }
}
