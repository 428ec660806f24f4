//! The data-protection commands: `subscribers export|erase` and `outbox
//! prune`, and the check that refuses adding an address erased while
//! suppressed. What they do is `privacy`'s; this file parses and prints.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use super::UsageError;
use crate::clock::SharedClock;
use crate::config::{self, Config, MailTransport};
use crate::mail::address::Email;
use crate::mail::token::SigningKey;
use crate::privacy;
use crate::store::Store;

/// The key the suppression list is hashed with: the one `serve` signs with.
async fn signing_key(store: &Store) -> Result<SigningKey> {
    Ok(SigningKey::load(store, config::process_env("TIDINGS_SECRET")).await?)
}

/// `subscribers export EMAIL`: everything held about the address, as JSON.
pub(super) async fn export(store: &Store, email: &str) -> Result<()> {
    let email = Email::parse(email).map_err(UsageError)?;
    let key = signing_key(store).await?;
    let data = privacy::export(store, &key, email.as_str()).await?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &data)?;
    writeln!(out)?;
    Ok(())
}

/// `subscribers erase EMAIL`: removes the address everywhere and says what went.
pub(super) async fn erase(
    config: &Config,
    store: &Store,
    email: &str,
    clock: &SharedClock,
) -> Result<()> {
    let email = Email::parse(email).map_err(UsageError)?;
    let key = signing_key(store).await?;
    let mail_dir = match &config.mail.transport {
        MailTransport::File { dir } => Some(dir.as_path()),
        MailTransport::Smtp { .. } => None,
    };
    let erased = privacy::erase(store, &key, email.as_str(), mail_dir, clock.now()).await?;
    let rows = erased.rows;
    println!("subscribers: {} row(s) removed", rows.subscribers);
    println!("outbox: {} row(s) removed", rows.outbox);
    println!("files: {} removed", erased.files.len());
    for file in &erased.files {
        println!("  {}", file.display());
    }
    if rows.suppression_listed {
        println!(
            "suppression list: a keyed hash of the address was kept, so it cannot be added again unseen"
        );
    }
    if rows.subscribers == 0 && rows.outbox == 0 && erased.files.is_empty() {
        println!("nothing was held about {email}");
    }
    Ok(())
}

/// `outbox prune`: applies `mail.retention_days` now.
pub(super) async fn prune(config: &Config, store: &Store, clock: &SharedClock) -> Result<ExitCode> {
    let days = config.mail.retention_days;
    let counts = privacy::prune(store, days, clock.now()).await?;
    let total: i64 = counts.iter().map(|c| c.count).sum();
    println!("removed {total} outbox message(s) finished more than {days} days ago");
    for c in &counts {
        println!("  {} {}: {}", c.kind, c.status, c.count);
    }
    Ok(ExitCode::SUCCESS)
}

/// The addresses among `emails` that were erased while suppressed.
pub(super) async fn suppression_listed<'a>(
    store: &Store,
    emails: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<&'a str>> {
    if store.suppression_list_is_empty().await? {
        return Ok(Vec::new());
    }
    let key = signing_key(store).await?;
    let mut listed = Vec::new();
    for email in emails {
        if store
            .suppression_listed(&privacy::address_hash(&key, email))
            .await?
        {
            listed.push(email);
        }
    }
    Ok(listed)
}
