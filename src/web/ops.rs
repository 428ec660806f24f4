//! Endpoints for operators and orchestrators: liveness, readiness, metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::AppState;

/// `GET /healthz`: the process is up and answering.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// How long readiness waits for the database: probes want an answer fast.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /readyz`: the database answers and every migration is applied.
pub(super) async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(READY_TIMEOUT, state.store.is_migrated()).await {
        Ok(Ok(true)) => (StatusCode::OK, "ready\n"),
        Ok(Ok(false)) => (StatusCode::SERVICE_UNAVAILABLE, "migrations not applied\n"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}

/// `GET /metrics`: Prometheus text format; what the store knows (outbox
/// depth, alerts, suppressed subscribers) is read now, shared by every replica.
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match tokio::time::timeout(READY_TIMEOUT, record_store_gauges(&state.store)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not read the store's gauges"),
        Err(_) => tracing::warn!("reading the store's gauges timed out"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
}

async fn record_store_gauges(store: &crate::store::Store) -> Result<(), crate::store::StoreError> {
    crate::metrics::record_outbox(&store.outbox_backlog().await?);
    crate::metrics::record_alerts(&store.alerts().await?);
    crate::metrics::record_suppressed(store.count_suppressed().await?);
    Ok(())
}
