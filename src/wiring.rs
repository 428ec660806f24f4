//! Wiring: builds, from the checked config, the parts that both `cli` and
//! `daemon` run on — the opened and migrated store, the templates of
//! `site.templates_dir`, the mail kit, operator alerts and the outbox worker —
//! so each is put together in one place. What the parts do is their modules'.

use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::alerts::Alerts;
use crate::clock::SharedClock;
use crate::config::{self, Config};
use crate::mail::deliver::Delivery;
use crate::mail::kit::MailKit;
use crate::mail::token::SigningKey;
use crate::render::Templates;
use crate::store::Store;

/// Which process signs links, which decides where the signing key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// `tidings serve`: records which key it signs with.
    Daemon,
    /// A command: refuses a key other than the daemon's, or its links would not work there.
    Command,
}

/// Open the configured database and apply migrations; the error names the
/// database (password masked) and why.
pub(crate) async fn open_store(config: &Config) -> Result<Store> {
    let shown = config::redact_url(&config.database.url);
    let store = Store::open(&config.database.url).await?;
    store
        .migrate()
        .await
        .with_context(|| format!("could not apply migrations to {shown}"))?;
    Ok(store)
}

/// The built-in templates, overridden by files in `site.templates_dir`.
pub fn templates(config: &Config) -> Arc<Templates> {
    Arc::new(Templates::new(config.site.templates_dir.clone()))
}

/// The kit every writer of subscriber mail shares, signing with the key
/// `signer` may use (`$TIDINGS_SECRET`, else the stored key).
pub(crate) async fn mail_kit(
    store: &Store,
    config: Arc<Config>,
    templates: Arc<Templates>,
    signer: Signer,
) -> Result<MailKit> {
    let secret = config::process_env("TIDINGS_SECRET");
    let key = match signer {
        Signer::Daemon => SigningKey::for_daemon(store, secret).await?,
        Signer::Command => SigningKey::load(store, secret).await?,
    };
    Ok(MailKit::new(store.clone(), config, templates, key)?)
}

/// Alerts to the admins about failing sources and sends, when any are configured.
pub fn alerts(
    store: &Store,
    config: &Config,
    templates: Arc<Templates>,
) -> Result<Option<Arc<Alerts>>> {
    Ok(Alerts::new(store.clone(), config, templates)?.map(Arc::new))
}

/// The outbox worker: the configured transport, and `alerts` when sends keep failing.
pub fn delivery(
    store: &Store,
    config: &Config,
    clock: &SharedClock,
    alerts: Option<Arc<Alerts>>,
) -> Result<Delivery> {
    Ok(Delivery::new(store.clone(), &config.mail, clock.clone())?.with_alerts(alerts))
}
