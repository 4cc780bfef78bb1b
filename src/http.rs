//! The HTTP server: `/metrics` (Prometheus), `/healthz` (alive), `/readyz`
//! (ready to do work, see [`crate::health`]) and `/state` (open windows and
//! watermarks per partition, as JSON, read-only, for debugging).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix::Addr;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::actors::messages::GetAllStates;
use crate::actors::Supervisor;
use crate::health::Health;

/// What the handlers read.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// Renders the metrics.
    pub prometheus: PrometheusHandle,
    /// Readiness.
    pub health: Arc<Health>,
    /// Asked for `/state`; set once startup checks have passed (the
    /// server answers from the start, so that `/healthz` and `/metrics` do
    /// while Reactor waits for ClickHouse or the brokers).
    pub supervisor: Arc<OnceLock<Addr<Supervisor>>>,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/state", get(state_json))
        .with_state(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(state): State<HttpState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.prometheus.render(),
    )
        .into_response()
}

async fn readyz(State(state): State<HttpState>) -> Response {
    match state.health.readiness(Instant::now()) {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", reasons.join("\n")),
        )
            .into_response(),
    }
}

async fn state_json(State(state): State<HttpState>) -> Response {
    let Some(supervisor) = state.supervisor.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    };
    match supervisor.send(GetAllStates).await {
        Ok(states) => Json(states).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response(),
    }
}
