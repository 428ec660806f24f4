//! An `html` source's run: follow `next_page` from the configured URL,
//! never fetching a URL twice, never more than `max_pages` and never off the
//! configured origin, asking each page conditionally with what the last good
//! run stored and reusing that copy on `304`. A page that ends early, or a
//! next link elsewhere, makes the run partial: what was read is kept and
//! nothing counts as missing. Fetching rules live in `fetch`; parsing in `html`.

use std::collections::{HashMap, HashSet};

use url::Url;

use super::SourceError;
use super::fetch::{FetchPolicy, Fetched, Fetcher, Validators};
use super::html;
use crate::clock::SharedClock;
use crate::config::HtmlSourceConfig;
use crate::model::{Entry, Snapshot};

/// One page as the last good run fetched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPage {
    /// The URL requested.
    pub url: String,
    /// The server's `ETag`, if any.
    pub etag: Option<String>,
    /// The server's `Last-Modified`, if any.
    pub last_modified: Option<String>,
    /// The decoded page text.
    pub body: String,
}

/// What a scrape saw, besides the snapshot.
#[derive(Debug)]
pub struct Scrape {
    /// Entries of every page, in order.
    pub snapshot: Snapshot,
    /// Every page as this run used it, to store after a successful run.
    pub pages: Vec<CachedPage>,
    /// Each page visited, with `(304)` where the stored copy was reused.
    pub visits: Vec<String>,
}

/// Everything a scrape needs besides its config.
pub struct ScrapeEnv {
    /// Goes into the User-Agent.
    pub contact: String,
    /// Pages the last good run stored, for conditional requests.
    pub cached: Vec<CachedPage>,
    /// The clock retries and `Retry-After` dates are measured with.
    pub clock: SharedClock,
}

/// Scrape `config` once for the source called `name`.
pub async fn scrape(
    name: &str,
    config: &HtmlSourceConfig,
    env: ScrapeEnv,
) -> Result<Scrape, SourceError> {
    let mut fetcher = Fetcher::new(policy(config, &env))?;
    let mut cached: HashMap<String, CachedPage> =
        env.cached.into_iter().map(|p| (p.url.clone(), p)).collect();
    let mut run = Run::default();
    let mut next = Some(config.url.clone());
    while let Some(url) = next.take() {
        if !run.visited.insert(url.clone()) {
            break; // a next link back to a page already read ends the listing
        }
        if run.visited.len() > config.max_pages as usize {
            run.truncate(config.max_pages, &url);
            break;
        }
        if url.origin() != config.url.origin() {
            run.leave_origin(&url, config);
            break;
        }
        // Each URL is read once a run, so its stored copy can be moved out.
        let prior = cached.remove(url.as_str());
        let (page_url, page, cut) = fetch_page(&mut fetcher, &url, prior, &mut run).await?;
        let parsed = html::parse_page(&page.body, &page_url, &config.select);
        let unfinished = cut.or_else(|| html::unfinished(&page.body, &parsed));
        run.pages.push(page);
        run.entries.extend(parsed.entries);
        run.warnings.extend(parsed.warnings);
        if let Some(reason) = unfinished {
            run.incomplete(&url, &reason);
            break;
        }
        next = parsed.next_page;
    }
    Ok(run.finish(name))
}

fn policy(config: &HtmlSourceConfig, env: &ScrapeEnv) -> FetchPolicy {
    FetchPolicy {
        timeout: config.timeout,
        max_bytes: config.max_bytes,
        page_pause: config.page_pause,
        clock: env.clock.clone(),
        ..FetchPolicy::new(&env.contact, vec![config.url.origin()])
    }
}

/// Fetch one page (conditionally when a stored copy exists); returns the URL
/// links resolve against, the page as it is to be stored, text included
/// (moved, not copied: a single page can be tens of megabytes), and why the
/// body was cut short, if it was. A cut page is stored without validators,
/// so the next run fetches it whole rather than reusing it on a `304`.
async fn fetch_page(
    fetcher: &mut Fetcher,
    url: &Url,
    prior: Option<CachedPage>,
    run: &mut Run,
) -> Result<(Url, CachedPage, Option<String>), SourceError> {
    let validators = prior.as_ref().map(|p| Validators {
        etag: p.etag.clone(),
        last_modified: p.last_modified.clone(),
    });
    match fetcher.get(url, validators.as_ref()).await? {
        Fetched::Page(page) => {
            run.visits.push(url.to_string());
            let whole = page.incomplete.is_none();
            let stored = CachedPage {
                url: url.to_string(),
                etag: page.validators.etag.filter(|_| whole),
                last_modified: page.validators.last_modified.filter(|_| whole),
                body: page.text,
            };
            Ok((page.url, stored, page.incomplete))
        }
        Fetched::NotModified { .. } => {
            let prior = prior.ok_or_else(|| SourceError::Parse {
                location: url.to_string(),
                reason: "the server answered 304 to a request that was not conditional".to_owned(),
            })?;
            run.visits.push(format!("{url} (304)"));
            Ok((url.clone(), prior, None))
        }
    }
}

/// What the pages read so far added up to.
#[derive(Default)]
struct Run {
    visited: HashSet<Url>,
    entries: Vec<Entry>,
    warnings: Vec<String>,
    pages: Vec<CachedPage>,
    visits: Vec<String>,
    partial: bool,
}

impl Run {
    /// More pages than allowed: what was read is kept, but entries past the
    /// limit are unseen, not gone, so this run must withdraw nothing.
    fn truncate(&mut self, max_pages: u32, next: &Url) {
        self.partial = true;
        self.warnings.push(format!(
            "stopped after max_pages = {max_pages}; {next} and later pages were not read"
        ));
    }

    /// A next link to another origin: nothing is fetched there, what was read
    /// is kept, and entries of the unread pages are unseen, not gone.
    fn leave_origin(&mut self, next: &Url, config: &HtmlSourceConfig) {
        self.partial = true;
        self.warnings.push(format!(
            "the next page link {next} leaves {}; it and later pages were not read",
            config.url.origin().ascii_serialization()
        ));
    }

    /// A page that ended before the document did: its entries are kept, and
    /// the entries it (and later pages) would have listed are unseen, not gone.
    fn incomplete(&mut self, url: &Url, reason: &str) {
        self.partial = true;
        self.warnings.push(format!(
            "{url} is incomplete: {reason}; later pages were not read"
        ));
    }

    fn finish(self, name: &str) -> Scrape {
        Scrape {
            snapshot: Snapshot {
                source: name.to_owned(),
                entries: self.entries,
                warnings: self.warnings,
                partial: self.partial,
            },
            pages: self.pages,
            visits: self.visits,
        }
    }
}
