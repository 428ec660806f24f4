//! `tidings announce RESOURCE_ID [--message TEXT] [--dry-run] [--force]`:
//! preview (the email and its recipient count) or queue, record and deliver
//! one resource's announcement. The work is `announce::Announcer`'s.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::mail::{deliver, finish};
use super::open_store;
use crate::announce::{Announcer, Request};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::model::{ResourceId, Route};
use crate::store::Store;

/// Arguments of `tidings announce`.
#[derive(Debug, Args)]
pub(super) struct AnnounceArgs {
    /// The resource's id (see `tidings resources list`).
    resource_id: String,
    /// A note shown above the resource.
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
    /// Print the email and how many would get it; queue nothing.
    #[arg(long)]
    dry_run: bool,
    /// Announce again even if it was announced before.
    #[arg(long)]
    force: bool,
}

/// The announcer for `config`, with the configured signing key and templates.
pub(super) async fn announcer(config: &Config, store: &Store) -> Result<Announcer> {
    let kit = super::mail_kit(store, config).await?;
    Ok(Announcer::new(kit))
}

/// Run `tidings announce`.
pub(super) async fn run(
    config: &Config,
    args: AnnounceArgs,
    clock: &SharedClock,
) -> Result<ExitCode> {
    let store = open_store(config).await?;
    let announcer = announcer(config, &store).await?;
    let id = ResourceId(args.resource_id);
    if args.dry_run {
        let preview = announcer.preview(&id, args.message.as_deref()).await?;
        print!("Subject: {}\n\n{}", preview.subject, preview.text);
        println!(
            "\n{} confirmed subscriber(s) of {} would get this email",
            preview.recipients, preview.resource.category.name
        );
        if let Some(last) = preview.previous.last() {
            println!(
                "already announced at {} (--force to announce again)",
                crate::views::rfc3339(last.at)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let request = Request {
        resource: &id,
        message: args.message.as_deref(),
        route: Route::Cli,
        force: args.force,
    };
    let announced = announcer.announce(request, clock.now()).await?;
    println!(
        "announcement {} queued for {} subscriber(s)",
        announced.id, announced.recipients
    );
    if !config.channels.is_empty() {
        crate::channels::post::Poster::new(store.clone(), config, clock.clone())?
            .pass()
            .await?;
    }
    let delivery = super::delivery(&store, config, clock)?;
    let report = deliver(&store, &delivery).await?;
    finish(&store, report).await
}
