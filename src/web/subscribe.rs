//! Subscriber pages: `GET /unsubscribe/{token}` shows a page with a button
//! (mail scanners follow every link, so a GET never unsubscribes) and
//! `POST /unsubscribe/{token}` unsubscribes — the same URL takes the RFC 8058
//! one-click POST (`List-Unsubscribe=One-Click`). No cookies, no script.
//! Also the double opt-in: `POST /subscribe` and `GET /confirm/{token}`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use tracing::info;

use super::security::client_ip;
use super::{AppState, WebError, forms};
use crate::mail::address::{Email, mask};
use crate::mail::token::{self, random_hex};
use crate::model::{Subscriber, SubscriberStatus};
use crate::signup::ConfirmToken;
use crate::store::NewSubscriber;

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
pub(super) async fn unsubscribe_page(
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
pub(super) async fn unsubscribe(
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
pub(super) async fn find(state: &AppState, token: &str) -> Result<Option<Subscriber>, WebError> {
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

/// `POST /subscribe`: CSRF and the per-client limit are checked, then the
/// address gets a confirmation email if it may (pending or new, and none sent
/// within the hour). The page is the same whatever the address's state.
pub(super) async fn subscribe(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(pairs) = forms::verified(&state, &headers, &body) else {
        return expired_form(&state);
    };
    let ip = client_ip(peer, &headers, &state.config.server.trusted_proxies);
    let now = state.clock.now();
    if !state.limits.subscribe.allow(ip, now) {
        let text = ["Too many sign-ups have come from your network. Try again in a few minutes."];
        return forms::notice(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            "Please wait",
            &text,
            None,
        );
    }
    let known = forms::categories(&state).await?;
    let email = Email::parse(forms::value(&pairs, "email").unwrap_or_default());
    let (email, (categories, frequency)) = match (email, forms::choice(&pairs, &known)) {
        (Ok(email), Ok(choice)) => (email, choice),
        (Err(_), _) => return problem(&state, "Enter an email address like name@example.org."),
        (_, Err(why)) => return problem(&state, why),
    };
    let new = NewSubscriber {
        email: email.to_string(),
        categories,
        frequency,
        confirmed: false,
        token_nonce: random_hex(16).map_err(WebError::internal)?,
        consent: crate::model::Consent::web(),
    };
    if state
        .signup
        .request(&new, now)
        .await
        .map_err(WebError::internal)?
    {
        state.wake.notify_one();
    }
    let text = [
        "If this address can subscribe, we have sent it an email with a link to confirm.",
        "The link works for 72 hours. Nothing is sent until it is opened.",
    ];
    forms::notice(&state, StatusCode::OK, "Check your email", &text, None)
}

fn problem(state: &AppState, why: &str) -> Result<Response, WebError> {
    let link = forms::Link {
        href: format!("{}#subscribe", state.config.site.base_url.path()),
        text: "Back to the form",
    };
    forms::notice(
        state,
        StatusCode::BAD_REQUEST,
        "There is a problem",
        &[why],
        Some(link),
    )
}

/// The answer to a form whose CSRF token does not match (an old tab, or a forgery).
pub(super) fn expired_form(state: &AppState) -> Result<Response, WebError> {
    let text = ["This form has expired. Go back, reload the page and try again."];
    forms::notice(state, StatusCode::FORBIDDEN, "Form expired", &text, None)
}

/// `GET /confirm/{token}`: confirms a pending subscriber; their first digest window starts now.
pub(super) async fn confirm(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let now = state.clock.now();
    let checked = state
        .signup
        .check(&token, now)
        .await
        .map_err(WebError::internal)?;
    let id = match checked {
        ConfirmToken::Valid(id) => id,
        ConfirmToken::Expired => {
            let text = ["This confirmation link has expired. Subscribe again to get a new one."];
            let link = forms::Link {
                href: format!("{}#subscribe", state.config.site.base_url.path()),
                text: "Subscribe again",
            };
            return forms::notice(&state, StatusCode::GONE, "Link expired", &text, Some(link));
        }
        ConfirmToken::Invalid => {
            let text =
                ["This confirmation link is not valid. It may have been copied incompletely."];
            return forms::notice(&state, StatusCode::NOT_FOUND, "Link not valid", &text, None);
        }
    };
    state.store.confirm_subscriber(id, now).await?;
    let Some(subscriber) = state.store.subscriber(id).await? else {
        return Err(WebError::NotFound("no such subscriber".to_owned()));
    };
    if subscriber.status != SubscriberStatus::Confirmed {
        let text = ["This address has unsubscribed. Subscribe again to get emails."];
        return forms::notice(&state, StatusCode::OK, "Not subscribed", &text, None);
    }
    info!(subscriber_id = id, "subscription confirmed");
    let token = state.signing_key.token(id, &subscriber.token_nonce);
    let link = forms::Link {
        href: format!("{}preferences/{token}", state.config.site.base_url.path()),
        text: "Change what you get",
    };
    let text =
        ["Your subscription is confirmed. Your first digest covers what is new from now on."];
    forms::notice(
        &state,
        StatusCode::OK,
        "Subscription confirmed",
        &text,
        Some(link),
    )
}
