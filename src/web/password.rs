//! The page a one-time password link opens, `/admin/password/{token}`:
//! the form to choose a password, which hashes it with argon2 off the async
//! threads (within the same bound as sign-in's checks), spends the link and
//! ends the account's sessions. Signing and checking links is `accounts`'s.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::accounts::{SignedIn, login_url, record};
use super::forms::{self, Link, with_cookie};
use super::pages::{SiteView, site_view};
use super::security::{PASSWORD_CHECK_WAIT, csrf_issue};
use super::subscribe::expired_form;
use super::{AppState, WebError};
use crate::accounts::{self, LinkToken};
use crate::mail::MailError;
use crate::store::AdminAccount;

#[derive(Serialize)]
struct PasswordPage<'a> {
    site: SiteView,
    autodiscovery: [(); 0],
    csrf: String,
    name: &'a str,
    email: &'a str,
    error: Option<String>,
}

/// `GET /admin/password/{token}`: the form to choose a password.
pub(super) async fn password_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    match check(&state, &token).await? {
        LinkToken::Valid(account) => {
            password_form(&state, &headers, &account, StatusCode::OK, None)
        }
        other => link_refused(&state, &other),
    }
}

async fn check(state: &AppState, token: &str) -> Result<LinkToken, WebError> {
    accounts::check_link(&state.store, &state.signing_key, token, state.clock.now())
        .await
        .map_err(mail_error)
}

fn mail_error(e: MailError) -> WebError {
    match e {
        MailError::Store(e) => e.into(),
        e => WebError::internal(e),
    }
}

fn password_form(
    state: &AppState,
    headers: &HeaderMap,
    account: &AdminAccount,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (csrf, cookie) = csrf_issue(state, headers);
    let page = PasswordPage {
        site: site_view(state),
        autodiscovery: [],
        csrf,
        name: &account.name,
        email: &account.email,
        error,
    };
    let html = state.templates.render("admin_set_password.html", page)?;
    Ok(with_cookie((status, Html(html)).into_response(), cookie))
}

fn link_refused(state: &AppState, token: &LinkToken) -> Result<Response, WebError> {
    let (status, text) = match token {
        LinkToken::Spent => (
            StatusCode::GONE,
            "This link has been used already, or it has expired. Ask whoever runs Tidings for a new one.",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "This link is not one Tidings sent, a newer link replaced it, or its account was removed.",
        ),
    };
    forms::notice(state, status, "This link does not work", &[text], None)
}

/// `POST /admin/password/{token}`: sets the password (hashed with argon2
/// off the async threads), which spends the link and ends the account's
/// sessions, then points to sign-in.
pub(super) async fn set_password(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(pairs) = forms::verified(&state, &headers, &body) else {
        return expired_form(&state);
    };
    let account = match check(&state, &token).await? {
        LinkToken::Valid(account) => account,
        other => return link_refused(&state, &other),
    };
    let password = forms::value(&pairs, "password").unwrap_or_default();
    let repeated = forms::value(&pairs, "repeat").unwrap_or_default();
    if let Some(problem) = accounts::password_problem(password, repeated) {
        return password_form(
            &state,
            &headers,
            &account,
            StatusCode::BAD_REQUEST,
            Some(problem),
        );
    }
    let hash = hash_password(&state, password.to_owned()).await?;
    let next = accounts::new_nonce().map_err(mail_error)?;
    let set = state
        .store
        .set_admin_password(account.id, &account.link_nonce, &next, &hash)
        .await?;
    if !set {
        return link_refused(&state, &LinkToken::Spent);
    }
    let who = SignedIn::account(&account);
    record(
        &state,
        &who,
        "password_set",
        "Chose a password through the emailed link",
    )
    .await;
    let link = Link {
        href: login_url(&state),
        text: "Sign in",
    };
    let text = ["Your password is set. Sign in with your email address and it."];
    forms::notice(&state, StatusCode::OK, "Password set", &text, Some(link))
}

/// `password` hashed with argon2 on a blocking thread, holding one of the
/// password checks' permits so hashing counts against the same memory bound.
async fn hash_password(state: &AppState, password: String) -> Result<String, WebError> {
    let waited =
        tokio::time::timeout(PASSWORD_CHECK_WAIT, state.limits.password_checks.acquire()).await;
    let Ok(Ok(_permit)) = waited else {
        return Err(WebError::Unavailable {
            retry_after_s: 5,
            message: "Busy. Wait a few seconds and try again.".to_owned(),
        });
    };
    tokio::task::spawn_blocking(move || crate::password::hash(&password))
        .await
        .map_err(|e| WebError::internal(format!("password hashing stopped: {e}")))?
        .map_err(|e| WebError::internal(format!("could not hash a password: {e}")))
}
