//! The mail commands: `subscribers add|list|remove|import`, `digest
//! preview|send` and `outbox list|retry`. Each is a short function over
//! `store`, `mail::digest` and `mail::deliver`; CSV parsing lives in `csv`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Subcommand;
use serde::Serialize;

use super::{UsageError, open_store};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::mail::address::Email;
use crate::mail::deliver::{Delivery, DeliveryReport};
use crate::mail::digest::{Digests, Period, PeriodReport};
use crate::mail::token::random_hex;
use crate::model::{CategoryChoice, CategorySlug, Consent, Frequency};
use crate::publish;
use crate::store::{NewSubscriber, ResourceFilter, Store};
use crate::views::rfc3339;

mod csv;
mod formats;

/// `tidings subscribers …`.
#[derive(Debug, Subcommand)]
pub(super) enum SubscribersCommand {
    /// Add one subscriber (pending unless --confirmed).
    Add {
        /// The address.
        email: String,
        /// Category slugs or names, comma-separated, or `all`.
        #[arg(long, value_name = "a,b|all")]
        categories: String,
        /// `weekly` or `daily`.
        #[arg(long, default_value = "weekly")]
        frequency: String,
        /// Confirmed now: digests start from this moment.
        #[arg(long)]
        confirmed: bool,
        /// Why (kept as consent evidence, shown by `export`), e.g. "asked in person, 3 Dec".
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Print as JSON everything held about an address (UK GDPR access request).
    Export {
        /// The address.
        email: String,
    },
    /// Remove an address and every row and mail file naming it; a suppressed
    /// address is kept only as a keyed hash, so it is not added again unseen.
    Erase {
        /// The address.
        email: String,
    },
    /// List subscribers.
    List {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Delete a subscriber.
    Remove {
        /// The address.
        email: String,
    },
    /// Add every subscriber of a file, all or nothing (unless --skip-bad).
    Import {
        /// The file: for `csv`, rows of email,categories,frequency (a header row
        /// optional, categories `;`-separated or `all`).
        file: PathBuf,
        /// `csv` (Tidings' own), `mailchimp` (an audience export, or its
        /// unsubscribed or cleaned export) or `listmonk` (a subscribers export).
        #[arg(long, value_enum, default_value = "csv")]
        format: ImportFormat,
        /// For `csv`: confirmed now.
        #[arg(long)]
        confirmed: bool,
        /// For `mailchimp` and `listmonk`: what the imported subscribers get.
        #[arg(long, value_name = "a,b|all", default_value = "all")]
        categories: String,
        /// Import the good rows and name the bad ones, rather than import nothing.
        #[arg(long)]
        skip_bad: bool,
    },
}

/// The layout of an imported file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ImportFormat {
    /// `email,categories,frequency`.
    Csv,
    /// A Mailchimp audience export.
    Mailchimp,
    /// A listmonk subscribers export.
    Listmonk,
}

impl ImportFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Mailchimp => "mailchimp",
            Self::Listmonk => "listmonk",
        }
    }
}

/// `tidings digest …`.
#[derive(Debug, Subcommand)]
pub(super) enum DigestCommand {
    /// Render the next digest: text on stdout, or HTML into a file.
    Preview {
        /// As this subscriber would get it (else every category since the last weekly period).
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// Only this category.
        #[arg(long, value_name = "SLUG")]
        category: Option<String>,
        /// Write the HTML part here instead of printing the text part.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Queue the digests that are due, then deliver what is queued.
    Send {
        /// Count what would be queued; queue and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Make this moment a digest period (its key is the current minute).
        #[arg(long)]
        now: bool,
    },
}

/// `tidings outbox …`.
#[derive(Debug, Subcommand)]
pub(super) enum OutboxCommand {
    /// List outgoing messages, newest first.
    List {
        /// Only failed and unconfirmed ones (handed over with no answer: maybe delivered).
        #[arg(long)]
        failed: bool,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Delete sent, failed and unconfirmed messages older than `mail.retention_days`.
    Prune,
    /// Re-queue a message (or every failed one) and deliver it now. An
    /// unconfirmed message (maybe delivered already) is re-sent only by its id.
    Retry {
        /// The message's id.
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        id: Option<i64>,
        /// Every failed message.
        #[arg(long)]
        failed: bool,
    },
}

/// Run a `subscribers` command.
pub(super) async fn subscribers(
    config: &Config,
    command: SubscribersCommand,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        SubscribersCommand::Add {
            email,
            categories,
            frequency,
            confirmed,
            reason,
        } => {
            let known = known_categories(config, &store).await?;
            let new = NewSubscriber {
                email: Email::parse(&email).map_err(UsageError)?.to_string(),
                categories: parse_categories(&categories, &known, ',').map_err(UsageError)?,
                frequency: parse_frequency(&frequency).map_err(UsageError)?,
                confirmed,
                token_nonce: random_hex(16)?,
                consent: Consent::cli(reason),
            };
            if !super::privacy::suppression_listed(&store, [new.email.as_str()])
                .await?
                .is_empty()
            {
                anyhow::bail!(
                    "{} was erased while suppressed (its mail was refused); not added",
                    new.email
                );
            }
            store.add_subscriber(&new, clock.now()).await?;
            let state = if confirmed {
                "confirmed"
            } else {
                "pending until confirmed"
            };
            println!("added {} ({state})", new.email);
        }
        SubscribersCommand::List { json } => list_subscribers(&store, json).await?,
        SubscribersCommand::Remove { email } => {
            let email = Email::parse(&email).map_err(UsageError)?;
            if !store.remove_subscriber(email.as_str()).await? {
                anyhow::bail!("no subscriber {email}");
            }
            println!("removed {email}");
        }
        SubscribersCommand::Import {
            file,
            format,
            confirmed,
            categories,
            skip_bad,
        } => {
            let options = ImportOptions {
                format,
                confirmed,
                categories,
                skip_bad,
            };
            import(config, &store, &file, &options, clock).await?
        }
        SubscribersCommand::Export { email } => super::privacy::export(&store, &email).await?,
        SubscribersCommand::Erase { email } => {
            super::privacy::erase(config, &store, &email, clock).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct SubscriberJson {
    email: String,
    categories: Vec<String>,
    frequency: &'static str,
    status: &'static str,
    /// Permanent refusals of their mail since they last confirmed.
    refusals: i64,
    /// When they were suppressed, if they are.
    suppressed_at: Option<String>,
}

async fn list_subscribers(store: &Store, json: bool) -> Result<()> {
    let rows: Vec<SubscriberJson> = store
        .list_subscribers()
        .await?
        .into_iter()
        .map(|s| SubscriberJson {
            categories: s.categories.names(),
            frequency: s.frequency.as_str(),
            status: s.status.as_str(),
            refusals: s.refusals,
            suppressed_at: s.suppressed_at.map(rfc3339),
            email: s.email,
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        return Ok(());
    }
    for s in &rows {
        let refused = match &s.suppressed_at {
            Some(at) => format!("  (suppressed {at} after {} refusals)", s.refusals),
            None if s.refusals > 0 => format!("  ({} refusals)", s.refusals),
            None => String::new(),
        };
        writeln!(
            out,
            "{:40}  {:12}  {:6}  {}{refused}",
            s.email,
            s.status,
            s.frequency,
            s.categories.join(",")
        )?;
    }
    Ok(())
}

/// How `subscribers import` reads its file.
struct ImportOptions {
    format: ImportFormat,
    confirmed: bool,
    categories: String,
    skip_bad: bool,
}

async fn import(
    config: &Config,
    store: &Store,
    file: &Path,
    options: &ImportOptions,
    clock: &SharedClock,
) -> Result<()> {
    let bytes =
        std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
    let known = known_categories(config, store).await?;
    let origin = format!(
        "{} import of {}",
        options.format.as_str(),
        file.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut parsed = match options.format {
        ImportFormat::Csv => {
            csv::subscribers(&bytes, &known, options.confirmed, &Consent::import(origin))
        }
        ImportFormat::Mailchimp | ImportFormat::Listmonk => {
            let categories =
                parse_categories(&options.categories, &known, ',').map_err(UsageError)?;
            let foreign = if options.format == ImportFormat::Mailchimp {
                formats::Foreign::Mailchimp
            } else {
                formats::Foreign::Listmonk
            };
            formats::subscribers(&bytes, foreign, &categories, &origin)
        }
    };
    refuse_erased(store, &mut parsed).await?;
    let named: Vec<String> = parsed
        .bad
        .iter()
        .map(|(line, why)| format!("{} line {line}: {why}", file.display()))
        .collect();
    if !named.is_empty() && !options.skip_bad {
        anyhow::bail!("{}; nothing was imported", named.join("; "));
    }
    for row in &named {
        eprintln!("skipped {row}");
    }
    let added = store.import_subscribers(&parsed.rows, clock.now()).await?;
    println!(
        "imported {added} subscribers ({} already subscribed, {} bad rows skipped)",
        parsed.rows.len() - added,
        named.len()
    );
    Ok(())
}

/// Moves rows whose address was erased while suppressed to the bad rows.
async fn refuse_erased(store: &Store, parsed: &mut csv::Parsed) -> Result<()> {
    let listed: Vec<String> =
        super::privacy::suppression_listed(store, parsed.rows.iter().map(|r| r.email.as_str()))
            .await?
            .into_iter()
            .map(str::to_owned)
            .collect();
    if listed.is_empty() {
        return Ok(());
    }
    let (rows, lines) = (
        std::mem::take(&mut parsed.rows),
        std::mem::take(&mut parsed.lines),
    );
    for (row, line) in rows.into_iter().zip(lines) {
        if listed.contains(&row.email) {
            let why = format!(
                "{} was erased while suppressed (its mail was refused)",
                row.email
            );
            parsed.bad.push((line, why));
        } else {
            parsed.rows.push(row);
            parsed.lines.push(line);
        }
    }
    parsed.bad.sort_by_key(|(line, _)| *line);
    Ok(())
}

/// Category slugs a subscriber may choose: configured, "other", and any in the store.
async fn known_categories(config: &Config, store: &Store) -> Result<Vec<CategorySlug>> {
    let resources = store
        .list_resources(&ResourceFilter {
            include_withdrawn: true,
            ..ResourceFilter::default()
        })
        .await?;
    Ok(publish::feed_categories(config, &resources)
        .into_iter()
        .map(|c| c.slug)
        .collect())
}

/// `all`, or names/slugs separated by `sep`, each a known category.
fn parse_categories(
    text: &str,
    known: &[CategorySlug],
    sep: char,
) -> Result<CategoryChoice, String> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(CategoryChoice::All);
    }
    let mut slugs = Vec::new();
    for name in text.split(sep).map(str::trim).filter(|n| !n.is_empty()) {
        let slug = CategorySlug::from_name(name);
        if !known.contains(&slug) {
            let names: Vec<&str> = known.iter().map(CategorySlug::as_str).collect();
            return Err(format!(
                "unknown category {name:?} (known: {}, or all)",
                names.join(", ")
            ));
        }
        if !slugs.contains(&slug) {
            slugs.push(slug);
        }
    }
    if slugs.is_empty() {
        return Err("no categories given (use slugs, or all)".to_owned());
    }
    Ok(CategoryChoice::Only(slugs))
}

fn parse_frequency(text: &str) -> Result<Frequency, String> {
    Frequency::parse(text).ok_or_else(|| format!("frequency {text:?} is not weekly or daily"))
}

/// What `digest` commands need, opened once.
async fn digests(config: &Config) -> Result<(Store, Digests)> {
    let store = open_store(config).await?;
    let kit = super::mail_kit(&store, config).await?;
    let digests = Digests::new(kit);
    Ok((store, digests))
}

/// Run a `digest` command.
pub(super) async fn digest(
    config: &Config,
    command: DigestCommand,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let (store, digests) = digests(config).await?;
    match command {
        DigestCommand::Preview {
            email,
            category,
            html,
        } => {
            let email = email
                .map(|e| Email::parse(&e).map_err(UsageError))
                .transpose()?;
            let category = category.as_deref().map(CategorySlug::from_name);
            let Some(rendered) = digests
                .preview(email.as_ref().map(Email::as_str), category, clock.now())
                .await?
            else {
                println!("nothing new for this digest");
                return Ok(ExitCode::SUCCESS);
            };
            match html {
                Some(path) => {
                    std::fs::write(&path, &rendered.html)
                        .with_context(|| format!("could not write {}", path.display()))?;
                    println!(
                        "{}\nwrote the HTML part to {}",
                        rendered.subject,
                        path.display()
                    );
                }
                None => print!("Subject: {}\n\n{}", rendered.subject, rendered.text),
            }
            Ok(ExitCode::SUCCESS)
        }
        DigestCommand::Send { dry_run, now } => {
            send(config, &store, &digests, dry_run, now, clock).await
        }
    }
}

async fn send(
    config: &Config,
    store: &Store,
    digests: &Digests,
    dry_run: bool,
    now_flag: bool,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let now = clock.now();
    let reports = if now_flag {
        vec![digests.run(Period::now(now), now, dry_run).await?]
    } else {
        enqueue_due_waiting(digests, clock, dry_run).await?
    };
    print_periods(&reports, dry_run);
    if dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let delivery = super::delivery(store, config, clock)?;
    let report = deliver(store, &delivery).await?;
    finish(store, report).await
}

/// Queues the due periods; a period another process claimed and has not
/// finished is waited for until its claim runs out (the claimer may have
/// died), then taken over, so a rerun after a crash queues the rest.
async fn enqueue_due_waiting(
    digests: &Digests,
    clock: &SharedClock,
    dry_run: bool,
) -> Result<Vec<PeriodReport>> {
    let mut reports: Vec<PeriodReport> = Vec::new();
    loop {
        let round = digests.enqueue_due(clock.now(), dry_run).await?;
        let held = round.iter().filter_map(|r| r.held_until).max();
        // Keep the last word on each period.
        for report in round {
            reports.retain(|r| (r.schedule, r.period) != (report.schedule, report.period));
            reports.push(report);
        }
        let Some(until) = held else {
            return Ok(reports);
        };
        eprintln!(
            "waiting until {} for a digest period another run claimed and has not finished",
            rfc3339(until)
        );
        clock
            .sleep_until(until + chrono::TimeDelta::milliseconds(500))
            .await;
    }
}

fn print_periods(reports: &[PeriodReport], dry_run: bool) {
    if reports.is_empty() {
        println!("no digest period is due");
    }
    for r in reports {
        let period = rfc3339(r.period);
        if !r.claimed {
            println!(
                "{} digest {period}: already queued by another run",
                r.schedule
            );
            continue;
        }
        let verb = if dry_run { "would queue" } else { "queued" };
        println!(
            "{} digest {period}: {verb} {} of {} subscribers ({} with nothing new)",
            r.schedule, r.queued, r.subscribers, r.empty
        );
    }
}

/// Drains the outbox, with a progress line on a terminal when there is much to send.
pub(super) async fn deliver(store: &Store, delivery: &Delivery) -> Result<DeliveryReport> {
    let total = store.outbox_backlog().await?.queued;
    let show = total >= 50 && std::io::stderr().is_terminal();
    let progress = move |done: usize| {
        if show && (done.is_multiple_of(25) || done as i64 == total) {
            eprint!("\rsending {done}/{total}");
        }
    };
    let report = delivery.drain(&progress).await?;
    if show {
        eprintln!();
    }
    println!(
        "sent {}, {} queued for retry, {} failed, {} unconfirmed",
        report.sent, report.retrying, report.failed, report.unconfirmed
    );
    Ok(report)
}

/// Exit 1 when something failed for good or was left unconfirmed in this
/// run, or still waits for a retry.
pub(super) async fn finish(store: &Store, report: DeliveryReport) -> Result<ExitCode> {
    // Only rows that were tried and wait for a retry: fresh rows another
    // process just queued are that process's to deliver, not a failure here.
    let queued = store.outbox_backlog().await?.retrying;
    if report.failed == 0 && report.unconfirmed == 0 && queued == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: {} message(s) failed, {} unconfirmed (handed over with no answer) and {queued} \
         stay queued for retry; see tidings outbox list --failed",
        report.failed, report.unconfirmed
    );
    Ok(ExitCode::FAILURE)
}

#[derive(Serialize)]
struct OutboxJson {
    id: i64,
    key: String,
    kind: String,
    recipient: String,
    subject: String,
    status: String,
    attempts: i64,
    next_attempt_at: String,
    last_error: Option<String>,
    sent_at: Option<String>,
}

/// Run an `outbox` command.
pub(super) async fn outbox(
    config: &Config,
    command: OutboxCommand,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        OutboxCommand::List { failed, json } => {
            let mut rows: Vec<OutboxJson> = store
                .list_outbox(failed)
                .await?
                .into_iter()
                .map(|m| OutboxJson {
                    id: m.id,
                    key: m.idem_key,
                    kind: m.kind,
                    recipient: m.recipient,
                    subject: m.subject,
                    status: m.status,
                    attempts: m.attempts,
                    next_attempt_at: rfc3339(m.next_attempt_at),
                    last_error: m.last_error,
                    sent_at: m.sent_at.map(rfc3339),
                })
                .collect();
            rows.extend(channel_rows(&store, failed).await?);
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &rows)?;
                writeln!(out)?;
            } else {
                for m in &rows {
                    writeln!(
                        out,
                        "{:6}  {:8}  {:2}  {:12}  {:30}  {}  {}",
                        m.id,
                        m.status,
                        m.attempts,
                        m.kind,
                        m.recipient,
                        m.subject,
                        m.last_error.as_deref().unwrap_or("")
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Prune => super::privacy::prune(config, &store, clock).await,
        OutboxCommand::Retry { id, failed: _ } => {
            let moved = store.requeue(id, clock.now()).await?;
            if moved == 0 && id.is_some() {
                anyhow::bail!(
                    "no queued, failed or unconfirmed outbox message with id {}",
                    id.unwrap_or_default()
                );
            }
            println!("re-queued {moved} message(s)");
            let delivery = super::delivery(&store, config, clock)?;
            let report = deliver(&store, &delivery).await?;
            finish(&store, report).await
        }
    }
}

/// Channel posts as `outbox list` rows: kind `channel`, the channel as the
/// recipient, `EVENT: TITLE` as the subject; only failed and unconfirmed ones
/// when `failed`.
async fn channel_rows(store: &Store, failed: bool) -> Result<Vec<OutboxJson>> {
    Ok(store
        .list_posts()
        .await?
        .into_iter()
        .filter(|p| !failed || matches!(p.status.as_str(), "failed" | "unconfirmed"))
        .map(|p| OutboxJson {
            id: p.id,
            key: p.idem_key,
            kind: "channel".to_owned(),
            recipient: p.channel,
            subject: format!("{}: {}", p.event, p.title),
            status: p.status,
            attempts: p.attempts,
            next_attempt_at: rfc3339(p.next_attempt_at),
            last_error: p.last_error,
            sent_at: p.sent_at.map(rfc3339),
        })
        .collect())
}
