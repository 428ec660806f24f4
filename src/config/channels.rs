//! `[[channels]]`: chat channels (Microsoft Teams Workflows, Slack) and
//! generic webhooks that get a post per event. The URL and the signing
//! secret are read from the environment variables the config names, so
//! neither is ever written in `tidings.toml`; `Debug` shows neither.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use url::Url;

use super::EnvLookup;
use super::check::{MAIL_RATE_PER_S, Problems};
use super::raw::RawChannel;
use crate::model::CategorySlug;

/// What a channel is sent: which payload and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A Microsoft Teams Workflows webhook: an Adaptive Card.
    Teams,
    /// A Slack incoming webhook (or a compatible one): Block Kit.
    Slack,
    /// A generic webhook signed per the Standard Webhooks spec.
    Webhook,
}

impl ChannelKind {
    /// The config name: `teams`, `slack` or `webhook`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Teams => "teams",
            Self::Slack => "slack",
            Self::Webhook => "webhook",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [Self::Teams, Self::Slack, Self::Webhook]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// Which events a channel gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelEvent {
    /// A resource first seen by an ingest run.
    New,
    /// A resource whose content changed.
    Changed,
    /// A resource gone from its source.
    Withdrawn,
    /// A resource announced (CLI, API, admin page or automatically).
    Announcement,
}

impl ChannelEvent {
    /// The config and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Changed => "changed",
            Self::Withdrawn => "withdrawn",
            Self::Announcement => "announcement",
        }
    }

    /// The event of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::New,
            Self::Changed,
            Self::Withdrawn,
            Self::Announcement,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// Which categories a channel gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelCategories {
    /// Every category (`["all"]`, the default).
    All,
    /// Only these.
    Only(Vec<CategorySlug>),
}

impl ChannelCategories {
    /// Whether a resource of `slug` goes to the channel.
    pub fn contains(&self, slug: &CategorySlug) -> bool {
        match self {
            Self::All => true,
            Self::Only(slugs) => slugs.contains(slug),
        }
    }
}

/// One `[[channels]]` entry, checked.
#[derive(Clone)]
pub struct ChannelConfig {
    /// Unique name: the idempotency keys, `channels test NAME`, metrics.
    pub name: String,
    /// The payload it gets.
    pub kind: ChannelKind,
    /// The environment variable the URL came from (`url_env`).
    pub url_env: String,
    /// Where to post: a secret (whoever has it can post).
    pub url: Url,
    /// The signing key of a `webhook` (`secret_env`; a `whsec_` secret is base64-decoded).
    pub secret: Option<Vec<u8>>,
    /// Categories it gets.
    pub categories: ChannelCategories,
    /// Events it gets.
    pub events: Vec<ChannelEvent>,
    /// Posts a second at most.
    pub rate_per_s: Option<f64>,
}

impl ChannelConfig {
    /// Whether `event` about a resource of `slug` goes to this channel.
    pub fn wants(&self, event: ChannelEvent, slug: &CategorySlug) -> bool {
        self.events.contains(&event) && self.categories.contains(slug)
    }
}

impl fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &format_args!("${} (***)", self.url_env))
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("categories", &self.categories)
            .field("events", &self.events)
            .field("rate_per_s", &self.rate_per_s)
            .finish()
    }
}

const DEFAULT_EVENTS: [ChannelEvent; 2] = [ChannelEvent::New, ChannelEvent::Announcement];

/// Checks every `[[channels]]` table; problems are keyed `channels[i].key`.
pub(super) fn check_channels(
    raw: Vec<RawChannel>,
    env: EnvLookup<'_>,
    p: &mut Problems,
) -> Vec<ChannelConfig> {
    let mut names = HashSet::new();
    let mut channels = Vec::new();
    for (i, channel) in raw.into_iter().enumerate() {
        let key = format!("channels[{i}]");
        if let Some(name) = &channel.name
            && !names.insert(name.clone())
        {
            p.add(format!("{key}.name"), format!("{name:?} is used twice"));
        }
        if let Some(checked) = check_channel(&key, channel, env, p) {
            channels.push(checked);
        }
    }
    channels
}

fn check_channel(
    key: &str,
    raw: RawChannel,
    env: EnvLookup<'_>,
    p: &mut Problems,
) -> Option<ChannelConfig> {
    let name = p.take(&format!("{key}.name"), check_name(raw.name.as_deref()));
    let kind = p.take(&format!("{key}.kind"), check_kind(raw.kind.as_deref()));
    let url_key = format!("{key}.url_env");
    let url = p.take(&url_key, check_url(raw.url_env.as_deref(), env));
    let secret_key = format!("{key}.secret_env");
    let secret = match kind {
        Some(ChannelKind::Webhook) => p
            .take(&secret_key, check_secret(raw.secret_env.as_deref(), env))
            .map(Some),
        Some(_) if raw.secret_env.is_some() => {
            p.add(secret_key, "only a `webhook` channel is signed");
            None
        }
        _ => Some(None),
    };
    let categories = p.take(
        &format!("{key}.categories"),
        check_categories(raw.categories),
    );
    let events = p.take(&format!("{key}.events"), check_events(raw.events));
    let rate_per_s = p.take(&format!("{key}.rate_per_s"), check_rate(raw.rate_per_s));
    Some(ChannelConfig {
        name: name?,
        kind: kind?,
        url_env: raw.url_env.unwrap_or_default(),
        url: url?,
        secret: secret?,
        categories: categories?,
        events: events?,
        rate_per_s: rate_per_s?,
    })
}

fn check_name(name: Option<&str>) -> Result<String, String> {
    let name = name.ok_or("is required")?;
    let fine = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.is_empty() || name.len() > 64 || !name.chars().all(fine) {
        return Err(format!("{name:?} must be 1 to 64 of a-z, 0-9, `-` and `_`"));
    }
    Ok(name.to_owned())
}

fn check_kind(kind: Option<&str>) -> Result<ChannelKind, String> {
    let kind = kind.ok_or("is required: `teams`, `slack` or `webhook`")?;
    ChannelKind::parse(kind)
        .ok_or_else(|| format!("{kind:?} is not one of `teams`, `slack`, `webhook`"))
}

fn check_env_name(name: Option<&str>) -> Result<&str, String> {
    let name = name.ok_or("is required: the environment variable that holds it")?;
    let fine = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if name.is_empty() || !name.chars().all(fine) {
        return Err(format!("{name:?} is not an environment variable name"));
    }
    Ok(name)
}

fn check_url(url_env: Option<&str>, env: EnvLookup<'_>) -> Result<Url, String> {
    let name = check_env_name(url_env)?;
    let text = env(name).ok_or_else(|| format!("${name} is not set"))?;
    // The URL is a secret: a message names the variable, never its value.
    let url = Url::parse(text.trim()).map_err(|_| format!("${name} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("${name} must be an http:// or https:// URL"));
    }
    Ok(url)
}

fn check_secret(secret_env: Option<&str>, env: EnvLookup<'_>) -> Result<Vec<u8>, String> {
    let name = check_env_name(secret_env)?;
    let text = env(name).ok_or_else(|| format!("${name} is not set"))?;
    let key = match text.strip_prefix("whsec_") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| format!("${name} starts with whsec_ but the rest is not base64"))?,
        None => text.into_bytes(),
    };
    if key.len() < 16 {
        return Err(format!("${name} must hold at least 16 bytes"));
    }
    Ok(key)
}

fn check_categories(raw: Option<Vec<String>>) -> Result<ChannelCategories, String> {
    let Some(raw) = raw else {
        return Ok(ChannelCategories::All);
    };
    if raw.is_empty() {
        return Err("must name at least one category, or \"all\"".to_owned());
    }
    if raw.iter().any(|c| c == "all") {
        return match raw.len() {
            1 => Ok(ChannelCategories::All),
            _ => Err("\"all\" cannot be combined with other categories".to_owned()),
        };
    }
    let mut slugs = Vec::new();
    for text in raw {
        let slug = CategorySlug::from_name(&text);
        if slug.as_str() != text {
            return Err(format!(
                "{text:?} is not a category slug (such as {slug:?})"
            ));
        }
        slugs.push(slug);
    }
    Ok(ChannelCategories::Only(slugs))
}

fn check_events(raw: Option<Vec<String>>) -> Result<Vec<ChannelEvent>, String> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_EVENTS.to_vec());
    };
    if raw.is_empty() {
        return Err("must name at least one event".to_owned());
    }
    let mut events = Vec::new();
    for text in raw {
        let event = ChannelEvent::parse(&text).ok_or_else(|| {
            format!("{text:?} is not one of `new`, `changed`, `withdrawn`, `announcement`")
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    Ok(events)
}

fn check_rate(rate: Option<f64>) -> Result<Option<f64>, String> {
    match rate {
        Some(r) if !MAIL_RATE_PER_S.contains(&r) => Err(format!(
            "{r} is out of range: must be between {} and {}",
            MAIL_RATE_PER_S.start(),
            MAIL_RATE_PER_S.end()
        )),
        other => Ok(other),
    }
}
