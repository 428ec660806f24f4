//! The comms team's page: `/admin` (resources found by words, category and
//! source, newest first seen or by date, paged, with their announcement
//! state; subscriber counts per category; each source's last run), and times
//! in the site's timezone in words. Who may see it is `accounts`'s.

use std::sync::Arc;

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::forms::{self, with_cookie};
use super::pages::{SiteView, site_view};
use super::security::csrf_issue;
use super::{AppState, WebError};
use crate::config::Config;
use crate::model::{CategoryChoice, Subscriber, SubscriberStatus};
use crate::store::{AdminResourceQuery, AdminSort};
use crate::views::date_text;
use chrono::{DateTime, Utc};

/// Resources per page on `/admin`.
const PER_PAGE: usize = 30;

/// The admin password as an argon2 PHC string: `TIDINGS_ADMIN_PASSWORD`
/// hashed now with a random salt, else `admin.password_hash`; `None` turns the page off.
pub(crate) fn password_hash(config: &Config) -> Result<Option<String>, String> {
    let Some(password) = &config.admin.password else {
        return Ok(config.admin.password_hash.clone());
    };
    crate::password::hash(password)
        .map(Some)
        .map_err(|e| format!("could not hash TIDINGS_ADMIN_PASSWORD: {e}"))
}

pub(super) fn home_url(state: &AppState) -> String {
    format!("{}admin", state.config.site.base_url.path())
}

#[derive(Serialize)]
struct HomePage {
    site: SiteView,
    autodiscovery: [(); 0],
    csrf: String,
    resources: Vec<ResourceRow>,
    find: FindView,
    categories: Vec<Choice>,
    sources: Vec<Choice>,
    counts: Vec<CountRow>,
    suppressed: Vec<SuppressedRow>,
    runs: Vec<RunRow>,
}

/// A subscriber whose mail the server kept refusing.
#[derive(Serialize)]
struct SuppressedRow {
    email: String,
    refusals: i64,
    since: String,
}

#[derive(Serialize)]
struct ResourceRow {
    id: String,
    title: String,
    category: String,
    date: Option<String>,
    first_seen: String,
    announced: Option<String>,
    announcement: Option<i64>,
}

/// The search form as submitted, and where its pages lead.
#[derive(Serialize)]
struct FindView {
    q: String,
    category: String,
    source: String,
    by_date: bool,
    page: usize,
    pages: usize,
    total: i64,
    previous: Option<String>,
    next: Option<String>,
}

/// An option of a filter.
#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
}

#[derive(Serialize)]
struct CountRow {
    name: String,
    confirmed: usize,
    pending: usize,
}

#[derive(Serialize)]
struct RunRow {
    source: String,
    finished_at: String,
    ok: bool,
    entries: i64,
    new: i64,
    changed: i64,
    error: Option<String>,
}

/// Query of `GET /admin`: search words, filters, order and page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct HomeQuery {
    q: Option<String>,
    category: Option<String>,
    source: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

impl HomeQuery {
    fn to_store(&self) -> AdminResourceQuery {
        let some = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        AdminResourceQuery {
            search: some(&self.q),
            category: some(&self.category),
            source: some(&self.source),
            sort: if self.sort.as_deref() == Some("date") {
                AdminSort::DocumentDate
            } else {
                AdminSort::FirstSeen
            },
            per_page: PER_PAGE,
            page: self
                .page
                .as_deref()
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1),
        }
    }
}

/// `GET /admin`.
pub(super) async fn home(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<HomeQuery>,
) -> Result<Response, WebError> {
    let wanted = query.to_store();
    let (resources, total) = state.store.admin_resources(&wanted).await?;
    let latest = state.store.latest_announcements().await?;
    let rows = resources
        .iter()
        .map(|r| {
            let a = latest.get(&r.id.0);
            ResourceRow {
                id: r.id.to_string(),
                title: r.title.clone(),
                category: r.category.name.clone(),
                date: r.date.map(date_text),
                first_seen: local_time(&state, r.first_seen),
                announced: a.map(|a| {
                    format!(
                        "Announced on {} to {}",
                        local_time(&state, a.at),
                        people(a.recipients)
                    )
                }),
                announcement: a.map(|a| a.id),
            }
        })
        .collect();
    let known = forms::categories(&state).await?;
    let subscribers = state.store.list_subscribers().await?;
    let (csrf, cookie) = csrf_issue(&state, &headers);
    let page = HomePage {
        site: site_view(&state),
        autodiscovery: [],
        csrf,
        resources: rows,
        find: find_view(&state, &query, &wanted, total),
        categories: known
            .iter()
            .map(|c| Choice {
                value: c.slug.as_str().to_owned(),
                label: c.name.clone(),
            })
            .collect(),
        sources: state
            .store
            .admin_source_names()
            .await?
            .into_iter()
            .map(|s| Choice {
                value: s.clone(),
                label: s,
            })
            .collect(),
        counts: counts(&state, &subscribers).await?,
        suppressed: suppressed(&state, &subscribers),
        runs: runs(&state).await?,
    };
    let html = state.templates.render("admin.html", page)?;
    Ok(with_cookie(Html(html).into_response(), cookie))
}

fn find_view(
    state: &AppState,
    query: &HomeQuery,
    wanted: &AdminResourceQuery,
    total: i64,
) -> FindView {
    let total_rows = usize::try_from(total).unwrap_or(0);
    let pages = total_rows.div_ceil(PER_PAGE).max(1);
    let link = |page: usize| {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("q", &query.q),
            ("category", &query.category),
            ("source", &query.source),
            ("sort", &query.sort),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                url.append_pair(key, v);
            }
        }
        url.append_pair("page", &page.to_string());
        format!("{}?{}", home_url(state), url.finish())
    };
    FindView {
        q: query.q.clone().unwrap_or_default(),
        category: query.category.clone().unwrap_or_default(),
        source: query.source.clone().unwrap_or_default(),
        by_date: wanted.sort == AdminSort::DocumentDate,
        page: wanted.page,
        pages,
        total,
        previous: (wanted.page > 1).then(|| link(wanted.page.min(pages + 1) - 1)),
        next: (wanted.page < pages).then(|| link(wanted.page + 1)),
    }
}

/// A time as people read it, in the site's timezone: "Thu 3 Dec 2026 at 13:26".
pub(super) fn local_time(state: &AppState, at: DateTime<Utc>) -> String {
    time_in(state.config.site.timezone, at)
}

fn time_in(zone: chrono_tz::Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&zone)
        .format("%a %-d %b %Y at %H:%M")
        .to_string()
}

/// "1 person", "143 people".
pub(super) fn people(n: i64) -> String {
    if n == 1 {
        "1 person".to_owned()
    } else {
        format!("{n} people")
    }
}

/// Who asked for an announcement, in words.
pub(super) fn route_words(route: &str) -> &'static str {
    match route {
        "admin" => "The admin page (the log says which account)",
        "cli" => "The command line",
        "api" => "The API",
        "auto" => "Automatically, as it was added",
        _ => "Unknown",
    }
}

/// Confirmed and pending subscribers per category ("all" counts in each).
async fn counts(state: &AppState, subscribers: &[Subscriber]) -> Result<Vec<CountRow>, WebError> {
    let known = forms::categories(state).await?;
    let mut rows: BTreeMap<usize, CountRow> = BTreeMap::new();
    for (i, c) in known.iter().enumerate() {
        let of = |status| {
            subscribers
                .iter()
                .filter(|s| s.status == status && s.categories.includes(&c.slug))
                .count()
        };
        rows.insert(
            i,
            CountRow {
                name: c.name.clone(),
                confirmed: of(SubscriberStatus::Confirmed),
                pending: of(SubscriberStatus::Pending),
            },
        );
    }
    let everything = subscribers
        .iter()
        .filter(|s| s.status == SubscriberStatus::Confirmed && s.categories == CategoryChoice::All)
        .count();
    rows.insert(
        usize::MAX,
        CountRow {
            name: "Of these, subscribed to all categories".to_owned(),
            confirmed: everything,
            pending: 0,
        },
    );
    Ok(rows.into_values().collect())
}

fn suppressed(state: &AppState, subscribers: &[Subscriber]) -> Vec<SuppressedRow> {
    subscribers
        .iter()
        .filter(|s| s.status == SubscriberStatus::Suppressed)
        .map(|s| SuppressedRow {
            email: s.email.clone(),
            refusals: s.refusals,
            since: s
                .suppressed_at
                .map(|at| local_time(state, at))
                .unwrap_or_default(),
        })
        .collect()
}

async fn runs(state: &AppState) -> Result<Vec<RunRow>, WebError> {
    Ok(state
        .store
        .last_runs()
        .await?
        .into_iter()
        .map(|r| RunRow {
            source: r.source,
            finished_at: local_time(state, r.finished_at),
            ok: r.ok,
            entries: r.entries,
            new: r.new,
            changed: r.changed,
            error: r.error.filter(|e| !e.is_empty()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_the_site_timezone() {
        let winter = "2026-12-03T13:26:28Z".parse().unwrap();
        let summer = "2026-07-02T13:26:28Z".parse().unwrap();
        let london = chrono_tz::Europe::London;
        assert_eq!(time_in(london, winter), "Thu 3 Dec 2026 at 13:26");
        assert_eq!(time_in(london, summer), "Thu 2 Jul 2026 at 14:26");
        assert_eq!(people(1), "1 person");
        assert_eq!(people(143), "143 people");
    }
}
