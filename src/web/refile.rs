//! A resource's admin page, `/admin/resources/{id}`: its category and where
//! that came from, its versions, and the form that re-files it (a category
//! the comms team chooses, kept through later ingests) or returns it to
//! the keyword rules. A re-file re-renders the feeds at once and is
//! recorded as a revision with no change event (`store::refile`), so no
//! digest calls the resource updated; it goes in the audit log.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::accounts::{SignedIn, record};
use super::admin::{home_url, local_time};
use super::forms::{self, with_cookie};
use super::pages::{SiteView, site_view};
use super::security::csrf_issue;
use super::subscribe::expired_form;
use super::{AppState, WebError};
use crate::categorize::Categorizer;
use crate::model::{Category, Entry, Resource, ResourceId};
use crate::publish;

#[derive(Serialize)]
struct ResourcePage {
    site: SiteView,
    autodiscovery: [(); 0],
    csrf: String,
    id: String,
    title: String,
    category: String,
    chosen: bool,
    rules_say: String,
    options: Vec<Option_>,
    versions: Vec<VersionRow>,
    saved: Option<String>,
}

/// One `<option>` of the category list.
#[derive(Serialize)]
struct Option_ {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct VersionRow {
    seq: i64,
    when: String,
    title: String,
    category: String,
}

/// Query of `GET /admin/resources/{id}`: what was just saved, if anything.
#[derive(Debug, Deserialize)]
pub(super) struct PageQuery {
    saved: Option<String>,
}

/// `GET /admin/resources/{id}`.
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, WebError> {
    let id = ResourceId(id);
    let resource = find(&state, &id).await?;
    let chosen = state.store.category_override(&id).await?;
    let known = forms::categories(&state).await?;
    let chosen_slug = chosen.as_deref().map(|name| Category::new(name).slug);
    let mut options = vec![Option_ {
        value: String::new(),
        label: "Let the keyword rules decide".to_owned(),
        selected: chosen.is_none(),
    }];
    options.extend(known.iter().map(|c| Option_ {
        value: c.slug.to_string(),
        label: c.name.clone(),
        selected: chosen_slug.as_ref() == Some(&c.slug),
    }));
    let versions = state
        .store
        .revisions(&id)
        .await?
        .into_iter()
        .rev()
        .map(|r| VersionRow {
            seq: r.seq,
            when: local_time(&state, r.seen_at),
            title: r.title,
            category: r.category.name,
        })
        .collect();
    let (csrf, cookie) = csrf_issue(&state, &headers);
    let view = ResourcePage {
        site: site_view(&state),
        autodiscovery: [],
        csrf,
        id: id.to_string(),
        title: resource.title.clone(),
        category: resource.category.name.clone(),
        chosen: chosen.is_some(),
        rules_say: rules_category(&state, &resource).name,
        options,
        versions,
        saved: query.saved.map(|name| saved_words(&name)),
    };
    let html = state.templates.render("admin_resource.html", view)?;
    Ok(with_cookie(Html(html).into_response(), cookie))
}

fn saved_words(name: &str) -> String {
    format!(
        "Saved: filed under {name}. The feeds list it there now, and no digest will call it updated."
    )
}

async fn find(state: &AppState, id: &ResourceId) -> Result<Resource, WebError> {
    state
        .store
        .resource(id)
        .await?
        .ok_or_else(|| WebError::NotFound(format!("There is no resource with id {id}.")))
}

/// The category the keyword rules give `resource` now.
fn rules_category(state: &AppState, resource: &Resource) -> Category {
    let entry = Entry {
        title: resource.title.clone(),
        link: resource.link.clone(),
        summary: resource.summary.clone(),
        date: resource.date,
        category: None,
        download: resource.download.clone(),
    };
    Categorizer::new(state.config.categories.rules.clone()).categorize(&entry)
}

/// `POST /admin/resources/{id}`: files the resource under the chosen
/// category, or (an empty choice) returns it to the keyword rules.
pub(super) async fn save(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(pairs) = forms::verified(&state, &headers, &body) else {
        return expired_form(&state);
    };
    let id = ResourceId(id);
    let resource = find(&state, &id).await?;
    let wanted = forms::value(&pairs, "category").unwrap_or_default();
    let (category, sticky) = if wanted.is_empty() {
        (rules_category(&state, &resource), false)
    } else {
        let known = forms::categories(&state).await?;
        let Some(found) = known.into_iter().find(|c| c.slug.as_str() == wanted) else {
            let text = ["Choose a category from the list."];
            return forms::notice(&state, StatusCode::BAD_REQUEST, "Not saved", &text, None);
        };
        (found, true)
    };
    let now = state.clock.now();
    let refiled = state.store.refile(&id, &category, sticky, now).await?;
    if refiled.changed {
        if let Err(e) = publish::refresh(&state.store, &state.config, &state.feeds, now).await {
            warn!(error = %e, "could not re-render the feeds after a re-file; the next poll will");
        }
        info!(resource_id = %id, category = %category.slug, sticky, "resource re-filed");
        let summary = if sticky {
            format!(
                "Re-filed “{}” from {} to {}",
                resource.title, refiled.before, refiled.after
            )
        } else {
            format!(
                "Returned “{}” to the keyword rules: from {} to {}",
                resource.title, refiled.before, refiled.after
            )
        };
        record(&state, &who, "refile", &summary).await;
    }
    let mut url = url::form_urlencoded::Serializer::new(String::new());
    url.append_pair("saved", &category.name);
    Ok(Redirect::to(&format!(
        "{}/resources/{id}?{}",
        home_url(&state),
        url.finish()
    ))
    .into_response())
}
