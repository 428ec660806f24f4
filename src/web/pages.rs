//! HTML pages for people: the newest resources by first seen, a page at a
//! time, with a category filter and every feed's address (`/`), one resource with its history
//! (`/resources/{id}`), the stylesheet, and the not-found page.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::forms::{FormView, with_cookie};
use super::security::csrf_issue;
use super::{AppState, WebError};
use crate::model::{Category, CategoryChoice, CategorySlug, Frequency, Resource, ResourceId};
use crate::publish;
use crate::render::STYLESHEET;
use crate::store::PageQuery;
use crate::views::{RevisionJson, date_text, excerpt, rfc3339};

/// Resources shown on the front page at most.
const INDEX_LIMIT: usize = 50;

/// Query of `GET /`.
#[derive(Debug, Deserialize)]
pub(super) struct IndexQuery {
    category: Option<String>,
    page: Option<String>,
}

/// What `index.html` sees.
#[derive(Serialize)]
struct IndexPage {
    site: SiteView,
    autodiscovery: Vec<FeedLink>,
    current: Option<Category>,
    /// Current resources in every category.
    total: usize,
    /// Current resources in the category shown (or all).
    matching: usize,
    categories: Vec<CategoryCount>,
    resources: Vec<ResourceView>,
    paging: Paging,
    feeds: Vec<FeedRow>,
    csrf: String,
    form: FormView,
}

/// What `resource.html` sees.
#[derive(Serialize)]
struct ResourcePage {
    site: SiteView,
    autodiscovery: Vec<FeedLink>,
    r: ResourceView,
    revisions: Vec<RevisionJson>,
}

/// What `error.html` sees.
#[derive(Serialize)]
struct ErrorPage<'a> {
    site: SiteView,
    autodiscovery: Vec<FeedLink>,
    heading: &'a str,
    message: &'a str,
}

/// What every page's `site` is.
#[derive(Serialize)]
pub(super) struct SiteView {
    title: String,
    base_path: String,
}

/// Where the shown page sits among all of them.
#[derive(Serialize)]
struct Paging {
    /// This page, from 1.
    number: usize,
    /// Pages in all (at least 1).
    pages: usize,
    /// Position of the page's first resource in the whole list, from 1 (0 when empty).
    first: usize,
    /// Position of the page's last resource.
    last: usize,
    /// Address of the page before, if any.
    previous: Option<String>,
    /// Address of the page after, if any.
    next: Option<String>,
}

#[derive(Serialize)]
struct FeedLink {
    r#type: &'static str,
    title: String,
    url: String,
}

#[derive(Serialize)]
struct FeedRow {
    name: String,
    slug: String,
    rss: String,
    atom: String,
}

#[derive(Serialize)]
struct CategoryCount {
    name: String,
    slug: String,
    count: usize,
}

#[derive(Serialize)]
struct ResourceView {
    id: String,
    title: String,
    link: Option<String>,
    category: String,
    category_slug: String,
    date: Option<String>,
    date_text: Option<String>,
    excerpt: String,
    blocks: Vec<crate::model::Block>,
    download: Option<String>,
    first_seen: String,
    first_seen_text: String,
    updated: String,
    withdrawn_at: Option<String>,
}

impl From<&Resource> for ResourceView {
    fn from(r: &Resource) -> Self {
        Self {
            id: r.id.to_string(),
            title: r.title.clone(),
            link: r.link.as_ref().map(ToString::to_string),
            category: r.category.name.clone(),
            category_slug: r.category.slug.to_string(),
            date: r.date.map(|d| d.to_string()),
            date_text: r.date.map(date_text),
            excerpt: excerpt(&r.summary.plain_text()),
            blocks: r.summary.blocks.clone(),
            download: r.download.as_ref().map(ToString::to_string),
            first_seen: rfc3339(r.first_seen),
            first_seen_text: first_seen_text(r.first_seen),
            updated: rfc3339(r.updated),
            withdrawn_at: r.withdrawn_at.map(rfc3339),
        }
    }
}

/// A first-seen time as people read it, e.g. "3 December 2026".
fn first_seen_text(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%-d %B %Y").to_string()
}

/// The `site` of a page.
pub(super) fn site_view(state: &AppState) -> SiteView {
    SiteView {
        title: state.config.site.title.clone(),
        base_path: state.config.site.base_url.path().to_owned(),
    }
}

fn feed_url(state: &AppState, file: &str) -> String {
    let base = &state.config.site.base_url;
    base.join(file)
        .map_or_else(|_| format!("{base}{file}"), |u| u.to_string())
}

fn autodiscovery(state: &AppState, current: Option<&Category>) -> Vec<FeedLink> {
    let (slug, label) = current.map_or(("all", "all resources".to_owned()), |c| {
        (c.slug.as_str(), c.name.clone())
    });
    let title = &state.config.site.title;
    vec![
        FeedLink {
            r#type: "application/rss+xml",
            title: format!("{title} — {label} (RSS)"),
            url: feed_url(state, &format!("feeds/{slug}.rss")),
        },
        FeedLink {
            r#type: "application/atom+xml",
            title: format!("{title} — {label} (Atom)"),
            url: feed_url(state, &format!("feeds/{slug}.atom")),
        },
    ]
}

fn feed_rows(state: &AppState, categories: &[Category]) -> Vec<FeedRow> {
    let all = Category {
        name: "All resources".to_owned(),
        slug: CategorySlug::from_name("all"),
    };
    std::iter::once(&all)
        .chain(categories)
        .map(|c| FeedRow {
            name: c.name.clone(),
            slug: c.slug.to_string(),
            rss: feed_url(state, &format!("feeds/{}.rss", c.slug)),
            atom: feed_url(state, &format!("feeds/{}.atom", c.slug)),
        })
        .collect()
}

/// The `page` of a query: 1 when absent, else a whole number from 1.
fn page_number(raw: Option<&str>) -> Result<usize, WebError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(1),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                WebError::BadRequest(format!("page must be a whole number from 1, not {text:?}"))
            }),
    }
}

/// The address of page `number` of the front page, keeping the category.
fn page_href(state: &AppState, current: Option<&Category>, number: usize) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(c) = current {
        query.append_pair("category", c.slug.as_str());
    }
    if number > 1 {
        query.append_pair("page", &number.to_string());
    }
    let query = query.finish();
    let base = state.config.site.base_url.path();
    if query.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{query}")
    }
}

/// `GET /`: the newest resources by when Tidings first saw them, a page at a
/// time, optionally of one category. Reads only the page shown and the counts.
pub(super) async fn index(
    State(state): State<Arc<AppState>>,
    Query(query): Query<IndexQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let number = page_number(query.page.as_deref())?;
    let counts = state.store.category_counts(false).await?;
    let named: Vec<Category> = counts.iter().map(|c| c.category.clone()).collect();
    let categories = publish::feed_categories_of(&state.config, &named);
    let wanted = query.category.as_deref().map(CategorySlug::from_name);
    let current = wanted.and_then(|slug| categories.iter().find(|c| c.slug == slug).cloned());
    let resources = state
        .store
        .resource_page(&PageQuery {
            category: current.as_ref().map(|c| c.slug.clone()),
            offset: (number - 1).saturating_mul(INDEX_LIMIT),
            limit: INDEX_LIMIT,
        })
        .await?;
    let total: usize = counts.iter().map(|c| c.count).sum();
    let matching = current.as_ref().map_or(total, |c| {
        (counts.iter())
            .find(|n| n.category.slug == c.slug)
            .map_or(0, |n| n.count)
    });
    let pages = matching.div_ceil(INDEX_LIMIT).max(1);
    if number > pages {
        let message = format!(
            "There is no page {number}: this list has {pages} page{}.",
            if pages == 1 { "" } else { "s" }
        );
        return error_page(&state, StatusCode::NOT_FOUND, "Page not found", &message);
    }
    let paging = Paging {
        number,
        pages,
        first: (number - 1) * INDEX_LIMIT + usize::from(matching > 0),
        last: (number - 1) * INDEX_LIMIT + resources.len(),
        previous: (number > 1).then(|| page_href(&state, current.as_ref(), number - 1)),
        next: (number < pages).then(|| page_href(&state, current.as_ref(), number + 1)),
    };
    let (csrf, cookie) = csrf_issue(&state, &headers);
    let page = IndexPage {
        site: site_view(&state),
        autodiscovery: autodiscovery(&state, current.as_ref()),
        total,
        matching,
        categories: counts
            .iter()
            .map(|c| CategoryCount {
                name: c.category.name.clone(),
                slug: c.category.slug.to_string(),
                count: c.count,
            })
            .collect(),
        resources: resources.iter().map(ResourceView::from).collect(),
        paging,
        feeds: feed_rows(&state, &categories),
        form: FormView::new(
            &categories,
            &CategoryChoice::Only(Vec::new()),
            Frequency::Weekly,
        ),
        csrf,
        current,
    };
    let html = render_off_workers(&state, "index.html", page).await?;
    Ok(with_cookie(Html(html).into_response(), cookie))
}

/// Renders a page on the blocking pool, so a long page never holds up the
/// async workers that answer feeds and other requests.
async fn render_off_workers<S: Serialize + Send + 'static>(
    state: &Arc<AppState>,
    name: &'static str,
    context: S,
) -> Result<String, WebError> {
    let state = Arc::clone(state);
    let rendered = tokio::task::spawn_blocking(move || state.templates.render(name, context))
        .await
        .map_err(WebError::internal)?;
    Ok(rendered?)
}

/// `GET /resources/{id}`: one resource, including withdrawn ones, with its history.
pub(super) async fn resource(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = ResourceId(id);
    let Some(resource) = state.store.resource(&id).await? else {
        return Ok(not_found_page(&state));
    };
    let revisions: Vec<RevisionJson> = state
        .store
        .revisions(&id)
        .await?
        .iter()
        .map(RevisionJson::from)
        .collect();
    let page = ResourcePage {
        site: site_view(&state),
        autodiscovery: autodiscovery(&state, Some(&resource.category)),
        r: ResourceView::from(&resource),
        revisions,
    };
    let html = render_off_workers(&state, "resource.html", page).await?;
    Ok(Html(html).into_response())
}

/// `GET /assets/style.css`.
pub(super) async fn stylesheet() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
}

/// Any other path.
pub(super) async fn not_found(State(state): State<Arc<AppState>>) -> Response {
    not_found_page(&state)
}

fn not_found_page(state: &AppState) -> Response {
    let message = "There is nothing at this address. It may have moved, or the link may be wrong.";
    error_page(state, StatusCode::NOT_FOUND, "Page not found", message)
        .unwrap_or_else(IntoResponse::into_response)
}

/// `error.html` with `heading` and `message`, answered with `status`.
pub(super) fn error_page(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    message: &str,
) -> Result<Response, WebError> {
    let page = ErrorPage {
        site: site_view(state),
        autodiscovery: autodiscovery(state, None),
        heading,
        message,
    };
    let html = state.templates.render("error.html", page)?;
    Ok((status, Html(html)).into_response())
}
