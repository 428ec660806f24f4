//! The HTTP server: the router, the state every handler shares, and
//! `serve(listener, state, shutdown)` so tests bind `127.0.0.1:0` themselves.
//! Handlers are grouped by audience in the submodules; `server` bounds the
//! connections under them; `trace` gives each request its span.

mod accounts;
mod admin;
mod announcements;
mod api;
mod audit;
mod error;
mod feeds;
mod forms;
mod ops;
mod pages;
mod password;
mod preferences;
mod refile;
mod security;
mod server;
mod subscribe;
mod trace;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{any, get, post};
use tokio::net::TcpListener;
use tower::util::MapResponseLayer;

use tokio::sync::Notify;

use crate::announce::Announcer;
use crate::clock::Clock;
use crate::config::Config;
use crate::feeds::FeedCache;
use crate::mail::token::SigningKey;
use crate::render::Templates;
use crate::signup::Signup;
use crate::store::Store;

pub(crate) use admin::password_hash;
pub use error::WebError;
pub use security::Limits;
pub(crate) use server::listen_for_serve;
pub use server::{RESERVED_FILES, bind};

/// What every handler can reach (as `State<Arc<AppState>>`: one reference
/// count per request instead of one per field).
#[derive(Clone)]
pub struct AppState {
    /// Resources and everything else stored.
    pub store: Store,
    /// Rendered feeds, served from memory.
    pub feeds: FeedCache,
    /// Page templates.
    pub templates: Arc<Templates>,
    /// The checked config.
    pub config: Arc<Config>,
    /// The current time.
    pub clock: Arc<dyn Clock>,
    /// Signs and checks subscriber tokens.
    pub signing_key: SigningKey,
    /// Renders, queues and records announcements.
    pub announcer: Announcer,
    /// Nudges the outbox worker when something was queued.
    pub wake: Arc<Notify>,
    /// Records web sign-ups and queues their confirmations.
    pub signup: Signup,
    /// Rate limits kept in this process.
    pub limits: Arc<Limits>,
    /// The admin password as an argon2 PHC string; the admin page is off without one.
    pub admin_hash: Option<Arc<str>>,
}

/// All routes.
pub(crate) fn router(state: AppState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/assets/style.css", get(pages::stylesheet))
        .route("/feeds/{file}", get(feeds::feed))
        .route("/feeds.opml", get(feeds::opml))
        .merge(api_routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(page_routes(&state))
        .layer(MapResponseLayer::new(security_headers))
        .layer(trace::layer())
        .with_state(state)
}

/// The JSON API: every failure, an unknown path under `/api/` included, is JSON.
fn api_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/resources", get(api::list))
        .route("/api/resources/{id}", get(api::show))
        .route("/api/announcements", post(api::announce))
        .route("/api/{*rest}", any(error::api_not_found))
        .layer(middleware::map_response(error::json_errors))
}

/// The pages people read (and the fallback): a failure is shown as an HTML
/// page, not the API's JSON.
fn page_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(pages::index))
        .route("/resources/{id}", get(pages::resource))
        .route("/subscribe", post(subscribe::subscribe))
        .route("/confirm/{token}", get(subscribe::confirm))
        .route(
            "/preferences/{token}",
            get(preferences::page).post(preferences::save),
        )
        .route(
            "/unsubscribe/{token}",
            get(subscribe::unsubscribe_page).post(subscribe::unsubscribe),
        )
        .merge(admin_routes(state))
        .fallback(pages::not_found)
        .layer(middleware::map_response_with_state(
            state.clone(),
            error::html_errors,
        ))
}

/// The comms team's pages. Every URL under `/admin`, known or not, passes the
/// session check; the layer sits on these routes only, so feed requests do
/// not pay for it.
fn admin_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin", get(admin::home))
        .route("/admin/", get(admin::home))
        .route(
            "/admin/login",
            get(accounts::login_page).post(accounts::login),
        )
        .route("/admin/logout", post(accounts::logout))
        .route(
            "/admin/password/{token}",
            get(password::password_page).post(password::set_password),
        )
        .route("/admin/log", get(audit::log))
        .route(
            "/admin/resources/{id}",
            get(refile::page).post(refile::save),
        )
        .route(
            "/admin/announce/{id}",
            get(announcements::preview).post(announcements::announce),
        )
        .route("/admin/announcements", get(announcements::list))
        .route(
            "/admin/announcements/{id}",
            get(announcements::announcement),
        )
        .route(
            "/admin/announcements/{id}/retry",
            post(announcements::retry),
        )
        .route("/admin/{*rest}", any(pages::not_found))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            accounts::require_session,
        ))
}

/// Serve until `shutdown` completes, then finish the requests in flight.
/// Requests use a pool of their own that waits at most
/// `REQUEST_DB_WAIT` for a connection, so a database outage is a quick 503.
/// The connection limit is checked against the open-file limit first.
pub async fn serve(
    listener: TcpListener,
    mut state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    state.store = state
        .store
        .for_requests(&state.config.database.url, REQUEST_DB_WAIT)
        .map_err(std::io::Error::other)?;
    let bounds = server::Bounds::fitted(&state.config.server, server::open_file_limit());
    server::serve(listener, router(state), bounds, shutdown).await
}

/// How long a request waits for a database connection before it is
/// answered 503 with `Retry-After`.
pub(crate) const REQUEST_DB_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Headers that keep pages from being framed, sniffed or made to run script.
/// A `304` has no body to protect, and a cache keeps the headers it stored
/// with the `200` (RFC 9111 §4.3.4), so it goes without them.
fn security_headers(mut response: Response) -> Response {
    if response.status() == StatusCode::NOT_MODIFIED {
        return response;
    }
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    response
}
