//! Request bodies and signatures: a Standard Webhooks event for `webhook`
//! channels, an Adaptive Card 1.4 in a Teams Workflows message for `teams`,
//! Block Kit for `slack`. Pure: a `Post` in, JSON text or headers out.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::config::{ChannelEvent, ChannelKind};
use crate::model::Resource;
use crate::reconcile::FieldChange;
use crate::views::{ResourceJson, rfc3339};

/// Longest summary in a card, in characters.
const SUMMARY_CHARS: usize = 300;

/// What a post says: an event about one resource.
#[derive(Debug, Clone)]
pub struct Post<'a> {
    /// What happened.
    pub event: ChannelEvent,
    /// The resource as it is now.
    pub resource: &'a Resource,
    /// For `changed`: what differs.
    pub changes: &'a [FieldChange],
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The resource's public page (`/resources/{id}`).
    pub page: String,
    /// A test post (`channels test`): marked as such in the title.
    pub test: bool,
}

/// The body a channel of `kind` gets for `post`.
pub fn body(kind: ChannelKind, post: &Post<'_>) -> String {
    let value = match kind {
        ChannelKind::Webhook => standard_webhook(post),
        ChannelKind::Teams => teams_card(post),
        ChannelKind::Slack => slack_blocks(post),
    };
    value.to_string()
}

/// The Standard Webhooks event type, e.g. `resource.new`.
fn event_type(post: &Post<'_>) -> String {
    if post.test {
        return "test".to_owned();
    }
    format!("resource.{}", post.event.as_str())
}

fn standard_webhook(post: &Post<'_>) -> Value {
    let changes: Vec<Value> = post
        .changes
        .iter()
        .map(|c| json!({"field": c.field, "before": c.before, "after": c.after}))
        .collect();
    json!({
        "type": event_type(post),
        "timestamp": rfc3339(post.at),
        "data": {
            "resource": ResourceJson::from(post.resource),
            "changes": changes,
        },
    })
}

/// `New resource`, `Changed resource`, … with `[TEST]` in front of a test post.
fn headline(post: &Post<'_>) -> String {
    let what = match post.event {
        ChannelEvent::New => "New resource",
        ChannelEvent::Changed => "Changed resource",
        ChannelEvent::Withdrawn => "Withdrawn resource",
        ChannelEvent::Announcement => "Announcement",
    };
    if post.test {
        format!("[TEST] {what} (a test post from Tidings; nothing happened)")
    } else {
        what.to_owned()
    }
}

/// The summary cut to `SUMMARY_CHARS` at a word, with an ellipsis.
pub(crate) fn shortened(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= SUMMARY_CHARS {
        return text;
    }
    let cut: String = text.chars().take(SUMMARY_CHARS).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}…", cut.trim_end_matches([',', '.', ';', ':']))
}

/// `Changed: title, summary` for a change, else nothing.
fn change_line(post: &Post<'_>) -> Option<String> {
    if post.changes.is_empty() {
        return None;
    }
    let fields: Vec<&str> = post.changes.iter().map(|c| c.field).collect();
    Some(format!("Changed: {}", fields.join(", ")))
}

/// Category and date, e.g. `Strategies and plans · 2024-03`.
fn facts(resource: &Resource) -> String {
    match resource.date {
        Some(date) => format!("{} · {date}", resource.category.name),
        None => resource.category.name.clone(),
    }
}

/// (label, URL) of the buttons: Open (the public page), Download when known.
fn links(post: &Post<'_>) -> Vec<(&'static str, String)> {
    let mut links = vec![("Open", post.page.clone())];
    if let Some(download) = &post.resource.download {
        links.push(("Download", download.to_string()));
    }
    links
}

fn teams_card(post: &Post<'_>) -> Value {
    let r = post.resource;
    let mut body = vec![
        json!({"type": "TextBlock", "text": headline(post), "size": "Small",
               "isSubtle": true, "wrap": true}),
        json!({"type": "TextBlock", "text": r.title, "size": "Large",
               "weight": "Bolder", "wrap": true}),
        json!({"type": "FactSet", "facts": [
            {"title": "Category", "value": r.category.name},
            {"title": "Date", "value": r.date.map_or_else(String::new, |d| d.to_string())},
        ]}),
    ];
    if let Some(line) = change_line(post) {
        body.push(json!({"type": "TextBlock", "text": line, "wrap": true, "weight": "Bolder"}));
    }
    body.push(
        json!({"type": "TextBlock", "text": shortened(&r.summary.plain_text()), "wrap": true}),
    );
    let actions: Vec<Value> = links(post)
        .into_iter()
        .map(|(title, url)| json!({"type": "Action.OpenUrl", "title": title, "url": url}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            },
        }],
    })
}

/// Escapes text for Slack's mrkdwn (`&`, `<`, `>`).
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack_blocks(post: &Post<'_>) -> Value {
    let r = post.resource;
    let mut context = vec![json!({"type": "mrkdwn", "text": mrkdwn(&facts(r))})];
    if let Some(line) = change_line(post) {
        context.push(json!({"type": "mrkdwn", "text": mrkdwn(&line)}));
    }
    let buttons: Vec<Value> = links(post)
        .into_iter()
        .map(|(title, url)| {
            json!({"type": "button", "text": {"type": "plain_text", "text": title}, "url": url})
        })
        .collect();
    json!({
        "text": format!("{}: {}", headline(post), r.title),
        "blocks": [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(&headline(post))}]},
            {"type": "header", "text": {"type": "plain_text", "text": cut(&r.title, 150)}},
            {"type": "context", "elements": context},
            {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(&shortened(&r.summary.plain_text()))}},
            {"type": "actions", "elements": buttons},
        ],
    })
}

/// At most `max` characters (Slack's header limit is 150).
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The Standard Webhooks signature header value: `v1,` and the base64
/// HMAC-SHA256 of `{id}.{timestamp}.{body}` under `secret`.
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_summary_is_cut_at_a_word_with_an_ellipsis() {
        let text = "word ".repeat(100);
        let short = shortened(&text);
        assert!(short.ends_with("word…"), "{short}");
        assert!(short.chars().count() <= SUMMARY_CHARS + 1);
        assert_eq!(shortened("  a   b "), "a b");
    }
}
