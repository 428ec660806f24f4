//! `/admin/log`: the audit log, newest first, 50 a page, times in the
//! site's timezone in words. Writing entries is `accounts::record`'s.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::accounts::SignedIn;
use super::admin::{home_url, local_time};
use super::pages::{SiteView, site_view};
use super::{AppState, WebError};

/// Entries per page.
const PER_PAGE: usize = 50;

/// Query of `GET /admin/log`.
#[derive(Debug, Deserialize)]
pub(super) struct LogQuery {
    page: Option<String>,
}

#[derive(Serialize)]
struct LogPage {
    site: SiteView,
    autodiscovery: [(); 0],
    me: String,
    rows: Vec<LogRow>,
    page: usize,
    pages: usize,
    previous: Option<String>,
    next: Option<String>,
}

#[derive(Serialize)]
struct LogRow {
    when: String,
    who: String,
    what: String,
}

/// `GET /admin/log`: who did what, when.
pub(super) async fn log(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<SignedIn>,
    Query(query): Query<LogQuery>,
) -> Result<Response, WebError> {
    let total = usize::try_from(state.store.audit_count().await?).unwrap_or(0);
    let pages = total.div_ceil(PER_PAGE).max(1);
    let page = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let entries = state
        .store
        .audit_entries(PER_PAGE, (page - 1) * PER_PAGE)
        .await?;
    let link = |n: usize| format!("{}/log?page={n}", home_url(&state));
    let view = LogPage {
        site: site_view(&state),
        autodiscovery: [],
        me: me.name,
        rows: entries
            .into_iter()
            .map(|e| LogRow {
                when: local_time(&state, e.at),
                who: e.actor,
                what: e.summary,
            })
            .collect(),
        page,
        pages,
        previous: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    };
    let html = state.templates.render("admin_log.html", view)?;
    Ok(Html(html).into_response())
}
