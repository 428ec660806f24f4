//! Pieces the HTML forms share: reading an urlencoded body (repeated keys
//! kept, which axum's `Form` drops), the subscription fields (categories and
//! frequency), the category list offered, and plain notice pages.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Serialize;

use super::pages::{SiteView, site_view};
use super::{AppState, WebError};
use crate::model::{Category, CategoryChoice, CategorySlug, Frequency};
use crate::publish;

/// An urlencoded body as (key, value) pairs, in order.
pub(super) fn parse(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The body's fields when its CSRF field matches this browser's cookie;
/// `None` for a forged or stale form.
pub(super) fn verified(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    let pairs = parse(body);
    let field = value(&pairs, "csrf").unwrap_or_default();
    super::security::csrf_ok(state, headers, field).then_some(pairs)
}

/// The first value of `key`.
pub(super) fn value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Categories a subscriber may choose: configured, "other", and any in the store.
pub(super) async fn categories(state: &AppState) -> Result<Vec<Category>, WebError> {
    let named: Vec<Category> = (state.store.category_counts(true).await?)
        .into_iter()
        .map(|c| c.category)
        .collect();
    Ok(publish::feed_categories_of(&state.config, &named))
}

/// The chosen categories and frequency of a form, or what is wrong with them.
pub(super) fn choice(
    pairs: &[(String, String)],
    known: &[Category],
) -> Result<(CategoryChoice, Frequency), &'static str> {
    let picked: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "categories")
        .map(|(_, v)| v.as_str())
        .collect();
    let frequency = value(pairs, "frequency")
        .and_then(Frequency::parse)
        .ok_or("Choose how often you want emails.")?;
    if picked.contains(&"all") {
        return Ok((CategoryChoice::All, frequency));
    }
    let mut slugs = Vec::new();
    for name in picked {
        let slug = CategorySlug::from_name(name);
        if !known.iter().any(|c| c.slug == slug) {
            return Err("Choose categories from the list.");
        }
        if !slugs.contains(&slug) {
            slugs.push(slug);
        }
    }
    if slugs.is_empty() {
        return Err("Choose at least one category.");
    }
    Ok((CategoryChoice::Only(slugs), frequency))
}

/// What `subscribe_fields.html` sees as `form`.
#[derive(Serialize)]
pub(super) struct FormView {
    all: bool,
    categories: Vec<CategoryBox>,
    frequency: &'static str,
}

#[derive(Serialize)]
struct CategoryBox {
    slug: String,
    name: String,
    checked: bool,
}

impl FormView {
    /// The fields for `known` categories, with `choice` and `frequency` ticked.
    pub(super) fn new(known: &[Category], choice: &CategoryChoice, frequency: Frequency) -> Self {
        Self {
            all: *choice == CategoryChoice::All,
            categories: known
                .iter()
                .map(|c| CategoryBox {
                    slug: c.slug.to_string(),
                    name: c.name.clone(),
                    checked: matches!(choice, CategoryChoice::Only(s) if s.contains(&c.slug)),
                })
                .collect(),
            frequency: frequency.as_str(),
        }
    }
}

/// A link under a notice.
#[derive(Serialize)]
pub(super) struct Link {
    /// Where to.
    pub href: String,
    /// Its text.
    pub text: &'static str,
}

#[derive(Serialize)]
struct NoticePage<'a> {
    site: SiteView,
    autodiscovery: [(); 0],
    heading: &'a str,
    paragraphs: &'a [&'a str],
    link: Option<Link>,
}

/// A plain page with a heading, some paragraphs and maybe a link.
pub(super) fn notice(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    paragraphs: &[&str],
    link: Option<Link>,
) -> Result<Response, WebError> {
    let page = NoticePage {
        site: site_view(state),
        autodiscovery: [],
        heading,
        paragraphs,
        link,
    };
    let html = state.templates.render("notice.html", page)?;
    Ok((status, Html(html)).into_response())
}

/// `response` with `cookie` set (a `Set-Cookie` written by the jar), if there is one.
pub(super) fn with_cookie(response: Response, cookie: Option<Cookie<'static>>) -> Response {
    match cookie {
        Some(cookie) => (CookieJar::new().add(cookie), response).into_response(),
        None => response,
    }
}
