//! Subscriber pages: `GET /unsubscribe/{token}` shows a page with a button
//! (mail scanners follow every link, so a GET never unsubscribes) and
//! `POST /unsubscribe/{token}` unsubscribes — the same URL takes the RFC 8058
//! one-click POST (`List-Unsubscribe=One-Click`). No cookies, no script.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use tracing::info;

use super::{AppState, WebError};
use crate::mail::address::mask;
use crate::mail::token;
use crate::store::Subscriber;

#[derive(Serialize)]
struct UnsubscribePage {
    site: SiteView,
    autodiscovery: [(); 0],
    heading: &'static str,
    found: bool,
    done: bool,
    address: String,
    token: String,
}

#[derive(Serialize)]
struct SiteView {
    title: String,
    base_path: String,
}

/// `GET /unsubscribe/{token}`: asks; changes nothing.
pub async fn unsubscribe_page(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let subscriber = find(&state, &token).await?;
    let heading = if subscriber.is_some() {
        "Unsubscribe"
    } else {
        "Link not valid"
    };
    render(&state, subscriber.as_ref(), &token, heading, false)
}

/// `POST /unsubscribe/{token}`: unsubscribes, whatever the body (a form
/// submit or the RFC 8058 `List-Unsubscribe=One-Click`). Repeating it is harmless.
pub async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let Some(subscriber) = find(&state, &token).await? else {
        return render(&state, None, &token, "Link not valid", false);
    };
    state
        .store
        .unsubscribe(subscriber.id, state.clock.now())
        .await?;
    info!(subscriber_id = subscriber.id, email = %mask(&subscriber.email), "unsubscribed");
    render(
        &state,
        Some(&subscriber),
        &token,
        "You are unsubscribed",
        true,
    )
}

/// The subscriber `token` belongs to, checked in constant time.
async fn find(state: &AppState, token: &str) -> Result<Option<Subscriber>, WebError> {
    let Some((id, mac)) = token::split(token) else {
        return Ok(None);
    };
    let subscriber = state.store.subscriber(id).await?;
    Ok(subscriber.filter(|s| state.signing_key.verify(s.id, &s.token_nonce, mac)))
}

fn render(
    state: &AppState,
    subscriber: Option<&Subscriber>,
    token: &str,
    heading: &'static str,
    done: bool,
) -> Result<Response, WebError> {
    let page = UnsubscribePage {
        site: SiteView {
            title: state.config.site.title.clone(),
            base_path: state.config.site.base_url.path().to_owned(),
        },
        autodiscovery: [],
        heading,
        found: subscriber.is_some(),
        done,
        address: subscriber.map(|s| s.email.clone()).unwrap_or_default(),
        token: if subscriber.is_some() {
            token.to_owned()
        } else {
            String::new()
        },
    };
    let html = state.templates.render("unsubscribe.html", page)?;
    let status = if subscriber.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    Ok((status, Html(html)).into_response())
}
