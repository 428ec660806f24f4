//! `tidings channels list|send|test NAME`: the configured chat channels and
//! webhooks, posting what is queued for them, and a marked test post. The
//! work is `channels`'.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use super::{UsageError, open_store};
use crate::channels::post::{PostReport, Poster};
use crate::channels::{self};
use crate::clock::SharedClock;
use crate::config::{ChannelCategories, Config};
use crate::mail::token::random_hex;
use crate::store::{ResourceFilter, Store};

/// Longest `Retry-After` or backoff `channels send` waits for before it stops.
const SEND_WAITS_UP_TO: Duration = Duration::from_secs(60);

/// `tidings channels …`.
#[derive(Debug, Subcommand)]
pub(super) enum ChannelsCommand {
    /// List the configured channels (never their URLs or secrets).
    List {
        /// Print JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Post what is queued for the channels now, waiting up to a minute for
    /// posts a receiver asked to retry shortly (`Retry-After`).
    Send,
    /// Post a clearly marked test card of the newest resource to channel NAME.
    Test {
        /// The channel's `name`.
        name: String,
    },
}

/// One channel, as `channels list --json` shows it.
#[derive(Debug, Serialize)]
struct ChannelJson<'a> {
    name: &'a str,
    kind: &'a str,
    url_env: &'a str,
    categories: Vec<String>,
    events: Vec<&'static str>,
    rate_per_s: Option<f64>,
}

/// Run `tidings channels …`.
pub(super) async fn run(
    config: &Config,
    command: ChannelsCommand,
    clock: &SharedClock,
) -> Result<ExitCode> {
    match command {
        ChannelsCommand::List { json } => list(config, json),
        ChannelsCommand::Send => {
            let store = open_store(config).await?;
            send(&store, config, clock, SEND_WAITS_UP_TO).await
        }
        ChannelsCommand::Test { name } => test(config, &name, clock).await,
    }
}

fn list(config: &Config, json: bool) -> Result<ExitCode> {
    let rows: Vec<ChannelJson<'_>> = config
        .channels
        .iter()
        .map(|c| ChannelJson {
            name: &c.name,
            kind: c.kind.as_str(),
            url_env: &c.url_env,
            categories: match &c.categories {
                ChannelCategories::All => vec!["all".to_owned()],
                ChannelCategories::Only(slugs) => {
                    slugs.iter().map(|s| s.as_str().to_owned()).collect()
                }
            },
            events: c.events.iter().map(|e| e.as_str()).collect(),
            rate_per_s: c.rate_per_s,
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no channels configured");
    }
    for c in rows {
        println!(
            "{}\t{}\t${}\tcategories: {}\tevents: {}",
            c.name,
            c.kind,
            c.url_env,
            c.categories.join(","),
            c.events.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Posts what is due (waiting up to `wait_up_to` for retries), prints the
/// counts and fails when any post failed, was unconfirmed or still waits.
pub(super) async fn send(
    store: &Store,
    config: &Config,
    clock: &SharedClock,
    wait_up_to: Duration,
) -> Result<ExitCode> {
    let poster = Poster::new(store.clone(), config, clock.clone())?;
    let report = poster.drain(wait_up_to).await?;
    print_report(&report);
    Ok(
        if report.failed == 0 && report.unconfirmed == 0 && report.retrying == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

fn print_report(report: &PostReport) {
    println!(
        "channel posts: {} sent, {} retrying, {} failed, {} unconfirmed",
        report.sent, report.retrying, report.failed, report.unconfirmed
    );
}

async fn test(config: &Config, name: &str, clock: &SharedClock) -> Result<ExitCode> {
    let Some(channel) = config.channels.iter().find(|c| c.name == name) else {
        return Err(UsageError(format!("no channel named {name:?} in the config")).into());
    };
    let store = open_store(config).await?;
    let newest = store
        .list_resources(&ResourceFilter {
            limit: Some(1),
            ..ResourceFilter::default()
        })
        .await?;
    let Some(resource) = newest.first() else {
        anyhow::bail!("no resource is stored yet to show in a test card; run tidings ingest first");
    };
    let now = clock.now();
    channels::queue_test(&store, config, channel, resource, &random_hex(8)?, now).await?;
    send(&store, config, clock, Duration::ZERO).await
}
