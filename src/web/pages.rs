//! HTML pages for people: the latest resources with a category filter and
//! every feed's address (`/`), one resource with its history
//! (`/resources/{id}`), the stylesheet, and the not-found page.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::forms::{FormView, with_cookie};
use super::security::csrf_issue;
use super::{AppState, WebError};
use crate::model::{Category, CategorySlug, Resource, ResourceId};
use crate::publish;
use crate::render::STYLESHEET;
use crate::store::ResourceFilter;
use crate::store::{CategoryChoice, Frequency};
use crate::views::{RevisionJson, date_text, excerpt, rfc3339};

/// Resources shown on the front page at most.
const INDEX_LIMIT: usize = 50;

/// Query of `GET /`.
#[derive(Debug, Deserialize)]
pub struct IndexQuery {
    category: Option<String>,
}

/// What `index.html` sees.
#[derive(Serialize)]
struct IndexPage {
    site: SiteView,
    autodiscovery: Vec<FeedLink>,
    current: Option<Category>,
    total: usize,
    categories: Vec<CategoryCount>,
    resources: Vec<ResourceView>,
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
            updated: rfc3339(r.updated),
            withdrawn_at: r.withdrawn_at.map(rfc3339),
        }
    }
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

fn category_counts(resources: &[Resource], categories: &[Category]) -> Vec<CategoryCount> {
    let mut counts: BTreeMap<&CategorySlug, usize> = BTreeMap::new();
    for r in resources {
        *counts.entry(&r.category.slug).or_default() += 1;
    }
    categories
        .iter()
        .filter_map(|c| {
            let count = counts.get(&c.slug).copied().unwrap_or(0);
            (count > 0).then(|| CategoryCount {
                name: c.name.clone(),
                slug: c.slug.to_string(),
                count,
            })
        })
        .collect()
}

/// `GET /`: latest resources, optionally of one category.
pub async fn index(
    State(state): State<Arc<AppState>>,
    Query(query): Query<IndexQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let all = state
        .store
        .list_resources(&ResourceFilter::default())
        .await?;
    let categories = publish::feed_categories(&state.config, &all);
    let wanted = query.category.as_deref().map(CategorySlug::from_name);
    let current = wanted.and_then(|slug| categories.iter().find(|c| c.slug == slug).cloned());
    let shown: Vec<ResourceView> = all
        .iter()
        .filter(|r| current.as_ref().is_none_or(|c| r.category.slug == c.slug))
        .take(INDEX_LIMIT)
        .map(ResourceView::from)
        .collect();
    let page = IndexPage {
        site: site_view(&state),
        autodiscovery: autodiscovery(&state, current.as_ref()),
        total: all.len(),
        categories: category_counts(&all, &categories),
        resources: shown,
        feeds: feed_rows(&state, &categories),
        form: FormView::new(
            &categories,
            &CategoryChoice::Only(Vec::new()),
            Frequency::Weekly,
        ),
        csrf: String::new(),
        current,
    };
    let (csrf, cookie) = csrf_issue(&state, &headers);
    let html = state
        .templates
        .render("index.html", IndexPage { csrf, ..page })?;
    Ok(with_cookie(Html(html).into_response(), cookie))
}

/// `GET /resources/{id}`: one resource, including withdrawn ones, with its history.
pub async fn resource(
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
    let html = state.templates.render("resource.html", page)?;
    Ok(Html(html).into_response())
}

/// `GET /assets/style.css`.
pub async fn stylesheet() -> impl IntoResponse {
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
pub async fn not_found(State(state): State<Arc<AppState>>) -> Response {
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
