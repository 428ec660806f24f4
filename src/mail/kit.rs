//! `MailKit`: what every writer of subscriber mail (digests, announcements,
//! confirmations) shares — the store, the config, the templates, the key that
//! signs links, and the composer. Built once, cloned cheaply.

use std::sync::Arc;

use super::MailError;
use super::compose::Sender;
use super::token::SigningKey;
use crate::config::Config;
use crate::render::Templates;
use crate::store::Store;

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
}
