//! `tidings admins add|link|remove|list` (named admin accounts; adding one,
//! or `link`, queues and sends a one-time password link) and `tidings admin-log`
//! (the audit log, newest first). Each account change is itself recorded
//! in the log, as done by "command line".

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use super::mail::{deliver, finish};
use super::{UsageError, open_store};
use crate::accounts::{self, LINK_LIFETIME};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::store::{AdminAccount, AuditEntry, NewAuditEntry, Store};
use crate::views::rfc3339;

/// Who the log names for what the command line did.
const COMMAND_LINE: &str = "command line";

/// `tidings admins …`.
#[derive(Debug, Subcommand)]
pub(super) enum AdminsCommand {
    /// Add a named admin account and email it a link to choose its password.
    Add {
        /// The address they sign in with and get the link at.
        email: String,
        /// What the pages and the log call them (default: the address's local part).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Email an account a new password link (a forgotten password, an
    /// expired link); links sent before stop working.
    Link {
        /// The account's address.
        email: String,
    },
    /// Remove an account; its sessions end at once.
    Remove {
        /// The account's address.
        email: String,
    },
    /// List the named accounts.
    List {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// One account as `admins list --json` prints it.
#[derive(Debug, Serialize)]
pub(super) struct AdminJson {
    /// Row id.
    pub id: i64,
    /// The sign-in address.
    pub email: String,
    /// The name the log uses.
    pub name: String,
    /// False until the emailed link was used.
    pub password_set: bool,
    /// When the account was added (RFC 3339).
    pub created_at: String,
}

impl From<&AdminAccount> for AdminJson {
    fn from(a: &AdminAccount) -> Self {
        Self {
            id: a.id,
            email: a.email.clone(),
            name: a.name.clone(),
            password_set: a.password_hash.is_some(),
            created_at: rfc3339(a.created_at),
        }
    }
}

/// One entry as `admin-log --json` prints it.
#[derive(Debug, Serialize)]
pub(super) struct AuditJson {
    /// Increasing with every entry.
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who: an account's name, "admin", "command line" or "unknown".
    pub actor: String,
    /// The named account's id, if it was one.
    pub admin_id: Option<i64>,
    /// The action's code.
    pub action: String,
    /// What happened, in plain words.
    pub summary: String,
}

impl From<&AuditEntry> for AuditJson {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id,
            at: rfc3339(e.at),
            actor: e.actor.clone(),
            admin_id: e.admin_id,
            action: e.action.clone(),
            summary: e.summary.clone(),
        }
    }
}

/// Run `tidings admins …`.
pub(super) async fn admins(
    config: &Config,
    command: AdminsCommand,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        AdminsCommand::Add { email, name } => add(config, &store, &email, name, clock).await,
        AdminsCommand::Link { email } => link(config, &store, &email, clock).await,
        AdminsCommand::Remove { email } => remove(&store, &email, clock).await,
        AdminsCommand::List { json } => list(&store, json).await,
    }
}

async fn add(
    config: &Config,
    store: &Store,
    email: &str,
    name: Option<String>,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let email = accounts::account_email(email).map_err(UsageError)?;
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    if name.eq_ignore_ascii_case(accounts::BOOTSTRAP_NAME) || name.chars().count() > 100 {
        return Err(UsageError(format!(
            "choose another --name than {name:?}: \"admin\" is the shared password's account, and a name has at most 100 characters"
        ))
        .into());
    }
    // The kit refuses when links would be signed with another key than `serve`'s.
    let kit = super::mail_kit(store, config).await?;
    let now = clock.now();
    let account = store
        .add_admin(&email, &name, &accounts::new_nonce()?, now)
        .await?;
    accounts::queue_link(&kit, &account, now).await?;
    let what = format!("Added the admin account {name} ({email}) and emailed a password link");
    audit(store, "account_added", &what, clock).await?;
    println!(
        "added admin account {email} ({name}); a link to choose a password was queued (it works once, for {} hours)",
        LINK_LIFETIME.num_hours()
    );
    let delivery = super::delivery(store, config, clock)?;
    let report = deliver(store, &delivery).await?;
    finish(store, report).await
}

async fn link(
    config: &Config,
    store: &Store,
    email: &str,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let email = accounts::account_email(email).map_err(UsageError)?;
    let kit = super::mail_kit(store, config).await?;
    let now = clock.now();
    let account = store
        .renew_admin_link(&email, &accounts::new_nonce()?)
        .await?;
    accounts::queue_link(&kit, &account, now).await?;
    let what = format!("Emailed {} ({email}) a new password link", account.name);
    audit(store, "link_sent", &what, clock).await?;
    println!(
        "a new password link for {email} was queued (it works once, for {} hours); earlier links no longer work",
        LINK_LIFETIME.num_hours()
    );
    let delivery = super::delivery(store, config, clock)?;
    let report = deliver(store, &delivery).await?;
    finish(store, report).await
}

async fn remove(store: &Store, email: &str, clock: &SharedClock) -> Result<ExitCode> {
    let email = accounts::account_email(email).map_err(UsageError)?;
    let gone = store.remove_admin(&email).await?;
    let what = format!("Removed the admin account {} ({email})", gone.name);
    audit(store, "account_removed", &what, clock).await?;
    println!(
        "removed admin account {email} ({}); its sessions have ended",
        gone.name
    );
    Ok(ExitCode::SUCCESS)
}

async fn audit(store: &Store, action: &str, summary: &str, clock: &SharedClock) -> Result<()> {
    let entry = NewAuditEntry {
        actor: COMMAND_LINE,
        admin_id: None,
        action,
        summary,
    };
    Ok(store.record_audit(&entry, clock.now()).await?)
}

async fn list(store: &Store, json: bool) -> Result<ExitCode> {
    let accounts = store.list_admins().await?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<AdminJson> = accounts.iter().map(AdminJson::from).collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for a in &accounts {
        let state = if a.password_hash.is_some() {
            "password set"
        } else {
            "waiting for the link to be used"
        };
        writeln!(
            out,
            "{}\t{}\t{state}\tadded {}",
            a.email,
            a.name,
            rfc3339(a.created_at)
        )?;
    }
    if accounts.is_empty() {
        writeln!(
            out,
            "no named admin accounts (tidings admins add EMAIL adds one)"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Run `tidings admin-log [--limit N] [--json]`.
pub(super) async fn log(config: &Config, limit: usize, json: bool) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let entries = store.audit_entries(limit, 0).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let rows: Vec<AuditJson> = entries.iter().map(AuditJson::from).collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let zone = config.site.timezone;
    for e in &entries {
        let when = e.at.with_timezone(&zone).format("%a %-d %b %Y at %H:%M");
        writeln!(out, "{when}\t{}\t{}", e.actor, e.summary)?;
    }
    Ok(ExitCode::SUCCESS)
}
