//! Who is signed in at `/admin`: sign-in by email address and password (a
//! named account) or by the admin password alone (the bootstrap account
//! "admin"), the session check every `/admin…` URL passes (`require_session`,
//! which hands handlers a `SignedIn`), signing out, and writing the audit
//! log. The password link's page is `password`'s. Limits are taken per client
//! address and per account *before* any password is checked; an unknown
//! address is checked against a hash that matches nothing, so it takes as
//! long as a known one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{error, info, warn};

use super::admin::home_url;
use super::forms::{self, with_cookie};
use super::pages::{SiteView, site_view};
use super::security::{
    PASSWORD_CHECK_WAIT, SESSION_COOKIE, SESSION_LIFETIME, client_ip, csrf_issue,
    new_session_token, request_session_id, session_credential, session_id, set_cookie,
};
use super::subscribe::expired_form;
use super::{AppState, WebError};
use crate::accounts::{self, BOOTSTRAP_NAME};
use crate::mail::address::mask;
use crate::store::{AdminAccount, NewAuditEntry};

/// A session unused for this long ends (as well as 8 hours after sign-in).
pub(super) const SESSION_IDLE: Duration = Duration::minutes(60);

/// An argon2id hash (Tidings' parameters) that no password matches: an
/// unknown address is checked against it, so it costs what a known one does.
const NO_ACCOUNT_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$bm8tYWNjb3VudC1zYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The admin a request comes from, put in its extensions by `require_session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SignedIn {
    /// The named account, or `None` for the bootstrap account.
    pub id: Option<i64>,
    /// The name the log uses.
    pub name: String,
    /// Where a test email goes: the named account's address (the bootstrap account has none).
    pub email: Option<String>,
}

impl SignedIn {
    /// The bootstrap account "admin".
    fn bootstrap() -> Self {
        Self {
            id: None,
            name: BOOTSTRAP_NAME.to_owned(),
            email: None,
        }
    }

    /// A named account.
    pub(super) fn account(a: &AdminAccount) -> Self {
        Self {
            id: Some(a.id),
            name: a.name.clone(),
            email: Some(a.email.clone()),
        }
    }
}

/// The per-account limiter's key: a digest of the sign-in name as typed
/// (trimmed, lower-cased), so unknown names are limited like known ones.
pub(super) type AccountKey = [u8; 16];

fn account_key(login: &str) -> AccountKey {
    let digest = Sha256::digest(login.trim().to_lowercase().as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// True for what signs in the bootstrap account: nothing, or "admin".
fn is_bootstrap(login: &str) -> bool {
    let login = login.trim();
    login.is_empty() || login.eq_ignore_ascii_case(BOOTSTRAP_NAME)
}

/// Middleware: `/admin…` without a valid session redirects to sign-in (404
/// while no account can sign in: no admin password and no named account);
/// every admin answer is `no-store`.
pub(super) async fn require_session(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path != "/admin" && !path.starts_with("/admin/") {
        return next.run(request).await;
    }
    match admin_on(&state).await {
        Ok(true) => {}
        Ok(false) => {
            let text = ["The admin page is off: no admin password or admin account is set up."];
            return forms::notice(&state, StatusCode::NOT_FOUND, "Not available", &text, None)
                .unwrap_or_else(IntoResponse::into_response);
        }
        Err(e) => return e.into_response(),
    }
    let open = path == "/admin/login" || path.starts_with("/admin/password/");
    if !open {
        match signed_in(&state, request.headers()).await {
            Ok(Some(who)) => {
                request.extensions_mut().insert(who);
            }
            Ok(None) => return Redirect::to(&login_url(&state)).into_response(),
            Err(e) => return e.into_response(),
        }
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

async fn admin_on(state: &AppState) -> Result<bool, WebError> {
    Ok(state.admin_hash.is_some() || state.store.any_admins().await?)
}

/// What a named account's sessions are bound to: a MAC of its id and
/// password hash, so a new password ends every session of the account.
fn account_credential(state: &AppState, id: i64, hash: &str) -> String {
    state
        .signing_key
        .sign("admin-credential", &[&format!("account {id}"), hash])
}

/// The admin whose live session the request's cookie names, if any.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Option<SignedIn>, WebError> {
    let Some(id) = request_session_id(headers) else {
        return Ok(None);
    };
    let now = state.clock.now();
    let Some(session) = state.store.admin_session(&id, now, SESSION_IDLE).await? else {
        return Ok(None);
    };
    let (expected, who) = match session.admin_id {
        None => {
            let Some(expected) = session_credential(state) else {
                return Ok(None);
            };
            (expected, SignedIn::bootstrap())
        }
        Some(admin_id) => {
            let account = state.store.admin_by_id(admin_id).await?;
            let Some((account, hash)) =
                account.and_then(|a| a.password_hash.clone().map(|h| (a, h)))
            else {
                return Ok(None);
            };
            let who = SignedIn::account(&account);
            (account_credential(state, admin_id, &hash), who)
        }
    };
    let same = expected.as_bytes().ct_eq(session.credential.as_bytes());
    Ok(bool::from(same).then_some(who))
}

pub(super) fn login_url(state: &AppState) -> String {
    format!("{}admin/login", state.config.site.base_url.path())
}

#[derive(Serialize)]
struct LoginPage<'a> {
    site: SiteView,
    autodiscovery: [(); 0],
    csrf: String,
    email: &'a str,
    error: Option<&'a str>,
}

/// `GET /admin/login`.
pub(super) async fn login_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    login_form(&state, &headers, StatusCode::OK, "", None)
}

fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let (csrf, cookie) = csrf_issue(state, headers);
    let page = LoginPage {
        site: site_view(state),
        autodiscovery: [],
        csrf,
        email,
        error,
    };
    let html = state.templates.render("admin_login.html", page)?;
    Ok(with_cookie((status, Html(html)).into_response(), cookie))
}

/// The account a sign-in names: who, and the hash to check. `None` for an
/// unknown address, one without a password yet, or "admin" while no admin
/// password is configured.
async fn account_for(
    state: &AppState,
    login: &str,
) -> Result<Option<(SignedIn, String)>, WebError> {
    if is_bootstrap(login) {
        return Ok(state
            .admin_hash
            .as_deref()
            .map(|hash| (SignedIn::bootstrap(), hash.to_owned())));
    }
    let Ok(email) = accounts::account_email(login) else {
        return Ok(None);
    };
    let found = state.store.admin_by_email(&email).await?;
    Ok(found.and_then(|a: AdminAccount| {
        let hash = a.password_hash.clone()?;
        Some((SignedIn::account(&a), hash))
    }))
}

/// One sign-in attempt: where from, as whom.
struct Attempt<'a> {
    ip: IpAddr,
    login: &'a str,
    key: AccountKey,
}

/// `POST /admin/login`: a right email address and password (or the admin
/// password with no address) starts a session. Each attempt takes one of
/// the client's and one of the account's attempts *before* any password is
/// checked (a success gives them back), so a burst cannot get past the
/// limit; past it even a right password is refused for a while. At most
/// `PASSWORD_CHECKS_AT_ONCE` checks run at once; a sign-in that waits
/// longer than `PASSWORD_CHECK_WAIT` for one is told to retry (503).
pub(super) async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let Some(pairs) = forms::verified(&state, &headers, &body) else {
        return expired_form(&state);
    };
    let login = forms::value(&pairs, "email").unwrap_or_default().trim();
    let attempt = Attempt {
        ip: client_ip(peer, &headers, &state.config.server.trusted_proxies),
        login,
        key: account_key(login),
    };
    if let Some(refused) = take_attempt(&state, &headers, &attempt)? {
        return Ok(refused);
    }
    let now = state.clock.now();
    let limits = &state.limits;
    let give_back = || {
        limits.sign_in.release(attempt.ip, now);
        limits.sign_in_account.release(attempt.key, now);
    };
    let target = match account_for(&state, login).await {
        Ok(target) => target,
        Err(e) => {
            give_back();
            return Err(e);
        }
    };
    let waited = tokio::time::timeout(PASSWORD_CHECK_WAIT, limits.password_checks.acquire()).await;
    let Ok(Ok(permit)) = waited else {
        give_back();
        warn!(client = %attempt.ip, "admin sign-in refused: password checks busy");
        return Err(WebError::Unavailable {
            retry_after_s: 5,
            message: "Sign-in is busy. Wait a few seconds and try again.".to_owned(),
        });
    };
    let password = forms::value(&pairs, "password")
        .unwrap_or_default()
        .to_owned();
    let hash = target
        .as_ref()
        .map_or(NO_ACCOUNT_HASH.to_owned(), |(_, hash)| hash.clone());
    let right = limits.checker.check(hash, password).await;
    drop(permit);
    match target {
        Some((who, _)) if right => {
            give_back();
            start_session(&state, &who, attempt.ip).await
        }
        target => refuse(&state, &headers, &attempt, target.map(|(who, _)| who)).await,
    }
}

/// Takes one attempt of the client's and one of the account's; the 429
/// page when either has none left (taking nothing).
fn take_attempt(
    state: &AppState,
    headers: &HeaderMap,
    attempt: &Attempt<'_>,
) -> Result<Option<Response>, WebError> {
    let now = state.clock.now();
    let limits = &state.limits;
    if !limits.sign_in.reserve(attempt.ip, now) {
        let wait = limits.sign_in.retry_after(attempt.ip, now);
        warn!(client = %attempt.ip, "admin sign-in refused: too many attempts from this address");
        return too_many(state, headers, attempt.login, wait).map(Some);
    }
    if !limits.sign_in_account.reserve(attempt.key, now) {
        limits.sign_in.release(attempt.ip, now);
        let wait = limits.sign_in_account.retry_after(attempt.key, now);
        warn!(client = %attempt.ip, "admin sign-in refused: too many attempts at this account");
        return too_many(state, headers, attempt.login, wait).map(Some);
    }
    Ok(None)
}

/// A wrong password or an unknown address: logged, recorded, and the form again.
async fn refuse(
    state: &AppState,
    headers: &HeaderMap,
    attempt: &Attempt<'_>,
    who: Option<SignedIn>,
) -> Result<Response, WebError> {
    let ip = attempt.ip;
    warn!(client = %ip, "admin sign-in refused: wrong password or unknown account");
    let (actor, summary) = match &who {
        Some(_) => (
            who.clone(),
            format!("Sign-in refused: wrong password (from {ip})"),
        ),
        None if is_bootstrap(attempt.login) => (
            None,
            format!("Sign-in refused: the admin password is not set up (from {ip})"),
        ),
        None => (
            None,
            format!(
                "Sign-in refused: no account with a password for {} (from {ip})",
                mask(attempt.login)
            ),
        ),
    };
    let unknown = SignedIn {
        id: None,
        name: "unknown".to_owned(),
        email: None,
    };
    record(
        state,
        actor.as_ref().unwrap_or(&unknown),
        "sign_in_refused",
        &summary,
    )
    .await;
    let text = if is_bootstrap(attempt.login) {
        "That password is not right."
    } else {
        "That email address and password do not match an account."
    };
    login_form(
        state,
        headers,
        StatusCode::UNAUTHORIZED,
        attempt.login,
        Some(text),
    )
}

/// A new session for `who`: stored, recorded, and its cookie set.
async fn start_session(state: &AppState, who: &SignedIn, ip: IpAddr) -> Result<Response, WebError> {
    let now = state.clock.now();
    let credential = match who.id {
        None => session_credential(state),
        Some(id) => account_hash(state, id)
            .await?
            .map(|hash| account_credential(state, id, &hash)),
    };
    let (Some(credential), Some(token)) = (credential, new_session_token()) else {
        return Err(WebError::internal(
            "no credential or randomness for a session",
        ));
    };
    let id = session_id(&token);
    let expires = now + SESSION_LIFETIME;
    state
        .store
        .start_admin_session(&id, &credential, now, expires)
        .await?;
    state.store.own_admin_session(&id, who.id, now).await?;
    info!(client = %ip, admin_id = who.id, "admin signed in");
    record(state, who, "sign_in", &format!("Signed in (from {ip})")).await;
    let path = home_url(state);
    let cookie = set_cookie(
        state,
        SESSION_COOKIE,
        &token,
        &path,
        SESSION_LIFETIME.num_seconds(),
    );
    Ok(with_cookie(
        Redirect::to(&path).into_response(),
        Some(cookie),
    ))
}

async fn account_hash(state: &AppState, id: i64) -> Result<Option<String>, WebError> {
    Ok(state
        .store
        .admin_by_id(id)
        .await?
        .and_then(|a| a.password_hash))
}

/// The sign-in page with a 429, saying how long to wait (also in `Retry-After`).
fn too_many(
    state: &AppState,
    headers: &HeaderMap,
    login: &str,
    wait: Duration,
) -> Result<Response, WebError> {
    let minutes = (wait.num_seconds() + 59) / 60;
    let plural = if minutes == 1 { "" } else { "s" };
    let text = format!("Too many sign-in attempts. Wait {minutes} minute{plural} and try again.");
    let mut response = login_form(
        state,
        headers,
        StatusCode::TOO_MANY_REQUESTS,
        login,
        Some(&text),
    )?;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from(wait.num_seconds()),
    );
    Ok(response)
}

/// `POST /admin/logout`: ends the session in the store as well as in this
/// browser, so a copy of the cookie signs nobody in.
pub(super) async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<SignedIn>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    if forms::verified(&state, &headers, &body).is_none() {
        return expired_form(&state);
    }
    if let Some(id) = request_session_id(&headers) {
        state.store.end_admin_session(&id).await?;
        info!(admin_id = who.id, "admin signed out");
        record(&state, &who, "sign_out", "Signed out").await;
    }
    let cookie = set_cookie(&state, SESSION_COOKIE, "", &home_url(&state), 0);
    Ok(with_cookie(
        Redirect::to(&login_url(&state)).into_response(),
        Some(cookie),
    ))
}

/// Records what `who` did in the audit log. A failure is logged as an
/// error, not shown: the action itself has happened.
pub(super) async fn record(state: &AppState, who: &SignedIn, action: &str, summary: &str) {
    let entry = NewAuditEntry {
        actor: &who.name,
        admin_id: who.id,
        action,
        summary,
    };
    if let Err(e) = state.store.record_audit(&entry, state.clock.now()).await {
        error!(error = %e, action, "could not record an admin action in the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_key_ignores_case_and_spaces_and_admin_is_the_bootstrap() {
        assert_eq!(
            account_key(" Bea@Example.org "),
            account_key("bea@example.org")
        );
        assert_ne!(
            account_key("bea@example.org"),
            account_key("cal@example.org")
        );
        assert!(is_bootstrap("") && is_bootstrap(" Admin ") && !is_bootstrap("bea@example.org"));
        assert!(!crate::password::verify(NO_ACCOUNT_HASH, ""));
        assert_eq!(crate::password::hash_problem(NO_ACCOUNT_HASH), None);
    }
}
