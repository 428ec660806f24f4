//! Endpoints for operators and orchestrators: liveness and readiness.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

/// `GET /healthz`: the process is up and answering.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the database answers and every migration is applied.
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match state.store.is_migrated().await {
        Ok(true) => (StatusCode::OK, "ready\n"),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "migrations not applied\n"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}
