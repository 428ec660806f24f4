//! `GET /preferences/{token}` shows a subscriber's categories and frequency;
//! `POST /preferences/{token}` saves them. The token is the subscriber's
//! (as in unsubscribe links); the form also carries a CSRF token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use tracing::info;

use super::forms::{self, FormView, with_cookie};
use super::pages::{SiteView, site_view};
use super::security::csrf_issue;
use super::subscribe::{expired_form, find};
use super::{AppState, WebError};
use crate::model::Subscriber;

#[derive(Serialize)]
struct PreferencesPage {
    site: SiteView,
    autodiscovery: [(); 0],
    address: String,
    token: String,
    csrf: String,
    saved: bool,
    form: FormView,
}

/// `GET /preferences/{token}`.
pub(super) async fn page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let Some(subscriber) = find(&state, &token).await? else {
        return not_valid(&state);
    };
    render(&state, &headers, &subscriber, &token, false).await
}

/// `POST /preferences/{token}`: saves, then shows the form again.
pub(super) async fn save(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(subscriber) = find(&state, &token).await? else {
        return not_valid(&state);
    };
    let Some(pairs) = forms::verified(&state, &headers, &body) else {
        return expired_form(&state);
    };
    let known = forms::categories(&state).await?;
    let (categories, frequency) = match forms::choice(&pairs, &known) {
        Ok(choice) => choice,
        Err(why) => {
            return forms::notice(
                &state,
                StatusCode::BAD_REQUEST,
                "There is a problem",
                &[why],
                None,
            );
        }
    };
    state
        .store
        .update_preferences(subscriber.id, &categories, frequency)
        .await?;
    info!(subscriber_id = subscriber.id, "preferences saved");
    let saved = Subscriber {
        categories,
        frequency,
        ..subscriber
    };
    render(&state, &headers, &saved, &token, true).await
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    subscriber: &Subscriber,
    token: &str,
    saved: bool,
) -> Result<Response, WebError> {
    let known = forms::categories(state).await?;
    let (csrf, cookie) = csrf_issue(state, headers);
    let page = PreferencesPage {
        site: site_view(state),
        autodiscovery: [],
        address: subscriber.email.clone(),
        token: token.to_owned(),
        csrf,
        saved,
        form: FormView::new(&known, &subscriber.categories, subscriber.frequency),
    };
    let html = state.templates.render("preferences.html", page)?;
    Ok(with_cookie(Html(html).into_response(), cookie))
}

fn not_valid(state: &AppState) -> Result<Response, WebError> {
    let text = ["This link is not valid. It may have been copied incompletely."];
    forms::notice(state, StatusCode::NOT_FOUND, "Link not valid", &text, None)
}
