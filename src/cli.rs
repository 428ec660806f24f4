//! Command-line interface: clap types and one short function per
//! subcommand, each calling the modules that do the work. Output for people
//! goes to stdout; `--json` prints the shapes in `views`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::categorize::Categorizer;
use crate::clock::{self, SharedClock};
use crate::config::{self, Config};
use crate::ingest::{self, IngestReport};
use crate::mail::deliver::Delivery;
use crate::mail::kit::MailKit;
use crate::model::{CategorySlug, ResourceId};
use crate::publish;
use crate::store::{ResourceFilter, Store};
use crate::telemetry::LogFormat;
use crate::views::{ResourceDetailJson, ResourceJson, RevisionJson};
use crate::wiring::Signer;
use crate::{check, daemon, wiring};

mod admins;
mod announce;
mod channels;
mod mail;
mod privacy;
mod runs;

/// Tidings: a resource library as RSS and Atom feeds and email.
#[derive(Debug, Parser)]
#[command(name = "tidings", version, about)]
pub struct Cli {
    /// Config file (else $TIDINGS_CONFIG, else ./tidings.toml, else built-in defaults).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: HTTP server, scheduled ingest and digests, outbox delivery.
    Serve {
        /// Listen here instead of server.listen (port 0: any free port).
        #[arg(long, env = "TIDINGS_LISTEN", value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
        /// Once bound, write the address listened on to this file (for scripts and tests).
        #[arg(long, value_name = "PATH")]
        ready_file: Option<PathBuf>,
    },
    /// Run sources once and report what changed.
    Ingest {
        /// Only this source.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// Reconcile and count, but store nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Check the config and each source as `ingest` would, storing nothing.
    Check {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Runs of sources: list them, accept or reject a held one.
    Runs {
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// Inspect stored resources.
    Resources {
        #[command(subcommand)]
        command: ResourcesCommand,
    },
    /// Write feeds to files.
    Feeds {
        #[command(subcommand)]
        command: FeedsCommand,
    },
    /// Digest subscribers: add, list, remove, import.
    Subscribers {
        #[command(subcommand)]
        command: mail::SubscribersCommand,
    },
    /// Preview digests, or queue and send the ones that are due.
    Digest {
        #[command(subcommand)]
        command: mail::DigestCommand,
    },
    /// Announce one resource to its category's confirmed subscribers, once.
    Announce(announce::AnnounceArgs),
    /// Outgoing email: list, re-queue.
    Outbox {
        #[command(subcommand)]
        command: mail::OutboxCommand,
    },
    /// Named admin accounts: add (emails a password link), remove, list.
    Admins {
        #[command(subcommand)]
        command: admins::AdminsCommand,
    },
    /// What admins did, newest first.
    AdminLog {
        /// At most this many entries.
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: usize,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Chat channels and webhooks: list them, post what is queued, post a test card.
    Channels {
        #[command(subcommand)]
        command: channels::ChannelsCommand,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ResourcesCommand {
    /// List current resources, newest first.
    List {
        /// Only this category (slug).
        #[arg(long, value_name = "SLUG")]
        category: Option<String>,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show one resource with its revisions.
    Show {
        /// The resource's id.
        id: String,
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum FeedsCommand {
    /// Write every feed into DIR under its served file name.
    Write {
        /// Target folder (created if missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply migrations.
    Migrate,
    /// Copy every table into another, empty database (e.g. SQLite -> PostgreSQL).
    Copy {
        /// The target database URL.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Write a consistent copy of the SQLite database to FILE (a new file),
    /// safe while `serve` runs. For PostgreSQL, use pg_dump.
    Backup {
        /// Where to write the copy.
        file: PathBuf,
    },
}

/// A mistake in how the command was called: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Run the parsed command; `Ok` carries the exit code for "ran, but something failed".
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let loaded = config::load(cli.config.as_deref(), &config::process_env)?;
    let now = std::env::var(clock::NOW_VAR).ok();
    let clock = clock::from_env(now.as_deref()).map_err(|e| UsageError(e.to_string()))?;
    let result = dispatch(cli.command, loaded, clock).await;
    close_stores().await;
    result
}

async fn dispatch(
    command: Command,
    loaded: config::Loaded,
    clock: SharedClock,
) -> Result<ExitCode> {
    match command {
        Command::Serve { listen, ready_file } => {
            let mut loaded = loaded;
            if let Some(listen) = listen {
                loaded.config.server.listen = listen;
            }
            daemon::run(loaded, clock, ready_file.as_deref())
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Ingest {
            source,
            dry_run,
            json,
        } => ingest_cmd(&loaded.config, source.as_deref(), dry_run, json, &clock).await,
        Command::Check { json } => check::run(&loaded, clock, json).await,
        Command::Runs { command } => runs::run(&loaded.config, command, &clock).await,
        Command::Resources { command } => resources_cmd(&loaded.config, command).await,
        Command::Feeds {
            command: FeedsCommand::Write { dir },
        } => feeds_write_cmd(&loaded.config, &dir).await,
        Command::Subscribers { command } => {
            mail::subscribers(&loaded.config, command, &clock).await
        }
        Command::Digest { command } => mail::digest(&loaded.config, command, &clock).await,
        Command::Announce(args) => announce::run(&loaded.config, args, &clock).await,
        Command::Outbox { command } => mail::outbox(&loaded.config, command, &clock).await,
        Command::Admins { command } => admins::admins(&loaded.config, command, &clock).await,
        Command::AdminLog { limit, json } => admins::log(&loaded.config, limit, json).await,
        Command::Channels { command } => channels::run(&loaded.config, command, &clock).await,
        Command::Db {
            command: DbCommand::Migrate,
        } => {
            open_store(&loaded.config).await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Db {
            command: DbCommand::Copy { to },
        } => db_copy_cmd(&loaded.config, &to).await,
        Command::Db {
            command: DbCommand::Backup { file },
        } => db_backup_cmd(&loaded.config, &file).await,
    }
}

/// Every store this command opened, closed when it ends.
static OPENED: std::sync::Mutex<Vec<Store>> = std::sync::Mutex::new(Vec::new());

/// Closes the stores the command opened: on SQLite this folds the
/// write-ahead log into the database file, so the `.db` file alone is whole.
async fn close_stores() {
    let stores = std::mem::take(
        &mut *OPENED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for store in stores {
        store.close().await;
    }
}

async fn db_backup_cmd(config: &Config, file: &Path) -> Result<ExitCode> {
    let store = open_store(config).await?;
    if store.backend() != crate::store::Backend::Sqlite {
        return Err(UsageError(
            "tidings db backup copies a SQLite database; for PostgreSQL use pg_dump \
             (for example: pg_dump --format=custom --file=tidings.dump \"$DATABASE_URL\")"
                .to_owned(),
        )
        .into());
    }
    store.backup(file).await?;
    println!("backed up the database to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// Open the configured database and apply migrations, closed when the command ends.
pub(crate) async fn open_store(config: &Config) -> Result<Store> {
    let store = wiring::open_store(config).await?;
    OPENED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(store.clone());
    Ok(store)
}

/// The outbox worker for a command: the configured transport, and alerts to
/// the admins when sends keep failing.
pub(crate) fn delivery(store: &Store, config: &Config, clock: &SharedClock) -> Result<Delivery> {
    let alerts = wiring::alerts(store, config, wiring::templates(config))?;
    wiring::delivery(store, config, clock, alerts)
}

/// The mail kit of a command: the signing key `tidings serve` uses, and the
/// configured templates.
pub(crate) async fn mail_kit(store: &Store, config: &Config) -> Result<MailKit> {
    let config = Arc::new(config.clone());
    let templates = wiring::templates(&config);
    wiring::mail_kit(store, config, templates, Signer::Command).await
}

async fn ingest_cmd(
    config: &Config,
    only: Option<&str>,
    dry_run: bool,
    json: bool,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let sources: Vec<_> = config
        .sources
        .iter()
        .filter(|s| only.is_none_or(|name| s.name == name))
        .cloned()
        .collect();
    if let Some(name) = only
        && sources.is_empty()
    {
        return Err(UsageError(format!("no source named {name:?} in the config")).into());
    }
    let store = open_store(config).await?;
    let categorizer = Categorizer::new(config.categories.rules.clone());
    let announcer = match config.categories.announce.is_empty() || dry_run {
        true => None,
        false => Some(announce::announcer(config, &store).await?),
    };
    let alerts = match dry_run {
        true => None,
        false => wiring::alerts(&store, config, wiring::templates(config))?,
    };
    let ctx = ingest::Context {
        store: &store,
        categorizer: &categorizer,
        clock,
        contact: &config.site.contact,
        dry_run,
        announcer: announcer.as_ref(),
        alerts: alerts.as_deref(),
        channels: Some(config),
    };
    let report = ingest::run_all(ctx, &sources).await;
    print_ingest(&report, json)?;
    if report.sources.iter().any(|s| s.announced > 0) || alerts.is_some() {
        // Announcements and alerts leave now, as `tidings announce` would send them.
        delivery(&store, config, clock)?.drain(&|_| {}).await?;
    }
    if !config.channels.is_empty() && !dry_run {
        // Channel posts leave now too; those a receiver asks to retry wait
        // for `serve` or `tidings channels send`.
        crate::channels::post::Poster::new(store.clone(), config, clock.clone())?
            .pass()
            .await?;
    }
    Ok(if report.any_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_ingest(report: &IngestReport, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
        return Ok(());
    }
    for s in &report.sources {
        if s.is_failure() && !s.changed_anything() && s.unchanged == 0 {
            writeln!(
                out,
                "{}: failed: {}",
                s.name,
                s.error.as_deref().unwrap_or_default()
            )?;
            continue;
        }
        if s.held {
            writeln!(
                out,
                "{}: {}",
                s.name,
                s.error.as_deref().unwrap_or_default()
            )?;
            for line in &s.summary {
                writeln!(out, "{}:   {line}", s.name)?;
            }
            if let Some(run) = s.held_run {
                writeln!(
                    out,
                    "{}: nothing changed; `tidings runs accept {run}` applies it, \
                     `tidings runs reject {run}` discards it",
                    s.name
                )?;
            }
            continue;
        }
        writeln!(
            out,
            "{}: {} new, {} changed, {} withdrawn, {} reappeared, {} unchanged",
            s.name, s.new, s.changed, s.withdrawn, s.reappeared, s.unchanged
        )?;
        if s.revised > 0 {
            writeln!(
                out,
                "{}: {} revised without a change event (derived fields only)",
                s.name, s.revised
            )?;
        }
        if let Some(error) = &s.error {
            writeln!(out, "{}: partly failed: {error}", s.name)?;
        }
    }
    Ok(())
}

async fn resources_cmd(config: &Config, command: ResourcesCommand) -> Result<ExitCode> {
    let store = open_store(config).await?;
    match command {
        ResourcesCommand::List { category, json } => {
            let filter = ResourceFilter {
                category: category.as_deref().map(CategorySlug::from_name),
                ..ResourceFilter::default()
            };
            let resources = store.list_resources(&filter).await?;
            let mut out = std::io::stdout().lock();
            if json {
                let rows: Vec<ResourceJson> = resources.iter().map(ResourceJson::from).collect();
                serde_json::to_writer_pretty(&mut out, &rows)?;
                writeln!(out)?;
            } else {
                for r in &resources {
                    let date = r.date.map(|d| d.to_string()).unwrap_or_default();
                    writeln!(
                        out,
                        "{}  {:10}  {:22}  {}",
                        r.id, date, r.category.name, r.title
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ResourcesCommand::Show { id, json } => show_resource(&store, &id, json).await,
    }
}

async fn show_resource(store: &Store, id: &str, json: bool) -> Result<ExitCode> {
    let id = ResourceId(id.to_owned());
    let resource = store
        .resource(&id)
        .await?
        .with_context(|| format!("no resource with id {id}"))?;
    let revisions = store.revisions(&id).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let detail = ResourceDetailJson {
            resource: ResourceJson::from(&resource),
            revisions: revisions.iter().map(RevisionJson::from).collect(),
        };
        serde_json::to_writer_pretty(&mut out, &detail)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let view = ResourceJson::from(&resource);
    writeln!(out, "{}\n  id:         {}", view.title, view.id)?;
    writeln!(
        out,
        "  category:   {} ({})",
        view.category, view.category_slug
    )?;
    writeln!(out, "  date:       {}", view.date.as_deref().unwrap_or("-"))?;
    writeln!(out, "  link:       {}", view.link.as_deref().unwrap_or("-"))?;
    writeln!(
        out,
        "  download:   {}",
        view.download.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "  first seen: {}\n  updated:    {}",
        view.first_seen, view.updated
    )?;
    if let Some(at) = &view.withdrawn_at {
        writeln!(out, "  withdrawn:  {at}")?;
    }
    writeln!(out, "\n{}\n\nrevisions:", view.summary)?;
    for rev in revisions.iter().map(RevisionJson::from) {
        writeln!(out, "  #{} {} {}", rev.seq, rev.seen_at, rev.title)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn feeds_write_cmd(config: &Config, dir: &Path) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let rendered = publish::render(&store, config).await?;
    std::fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    for feed in &rendered {
        crate::feeds::check(feed)
            .with_context(|| format!("feed {} is not valid", feed.file_name))?;
        let path = dir.join(&feed.file_name);
        std::fs::write(&path, &feed.body)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    println!("wrote {} files to {}", rendered.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}

async fn db_copy_cmd(config: &Config, to: &str) -> Result<ExitCode> {
    let source = open_store(config).await?;
    let shown = config::redact_url(to);
    let target = Store::open(to)
        .await
        .with_context(|| format!("could not open the target database {shown}"))?;
    let tables = source
        .copy_to(&target)
        .await
        .with_context(|| format!("could not copy into {shown}"))?;
    let mut out = std::io::stdout().lock();
    let mut mismatched = false;
    for t in &tables {
        let verdict = if t.source_rows == t.target_rows {
            "ok"
        } else {
            "MISMATCH"
        };
        mismatched |= t.source_rows != t.target_rows;
        writeln!(
            out,
            "{:16} {:>8} -> {:>8}  {verdict}",
            t.name, t.source_rows, t.target_rows
        )?;
    }
    Ok(if mismatched {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
