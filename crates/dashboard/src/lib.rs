//! The risk dashboard of `aduana serve --http`: HTML pages rendered on
//! the server with SVG charts, over the same session as Flight SQL,
//! read-only and behind the same credentials. Nothing is fetched by the
//! browser but the page itself (no scripts, no CDN).
//!
//! Every number on a page comes from a named report of `queries/`, so an
//! analyst gets the same numbers with `aduana report NAME` in the shell.
//! The published risk tables change only when the server restarts on a new
//! refresh, so results are cached per report and parameters; the overview
//! and trader list are computed once at start.

pub mod chart;
pub mod data;
pub mod html;
mod pages;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use aduana_engine::Session;
use aduana_flight::Authenticator;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

pub use data::Data;

/// Everything a request handler needs.
#[derive(Clone)]
pub struct App {
    pub data: Arc<Data>,
    pub authenticator: Arc<Authenticator>,
}

/// The dashboard's routes, behind the authenticator.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/traders", get(pages::traders))
        .route("/traders/{importer}", get(pages::trader))
        .route("/traders/{importer}/audit.csv", get(pages::audit_csv))
        .route(
            "/traders/{importer}/audit.parquet",
            get(pages::audit_parquet),
        )
        .route("/products", get(pages::products))
        .route("/products/{hs}", get(pages::product))
        .route("/go", get(pages::go))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

/// The Flight SQL credentials, over HTTP: Basic (the browser asks for
/// them) or a bearer token. Refusals say what is expected and never which
/// user names exist.
async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    match app.authenticator.authenticate(request.headers()) {
        Ok(_) => next.run(request).await,
        Err(status) => {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                html::page(
                    "Sign in required",
                    "",
                    &html::failed("auth", "Not signed in", status.message()),
                ),
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="Aduana", charset="UTF-8""#),
            );
            response
        }
    }
}

/// Pages are HTML with inline styles and SVG, no scripts: the policy says
/// so, and no other site may frame them.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves the dashboard on `listener` (over TLS with `tls`) until
/// `shutdown` resolves.
pub async fn serve(
    session: Arc<Session>,
    authenticator: Arc<Authenticator>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let data = Arc::new(Data::new(session));
    // The pages everyone opens first are computed now, not on the first
    // visit.
    tokio::spawn({
        let data = data.clone();
        async move {
            let started = std::time::Instant::now();
            pages::warm(data).await;
            aduana_flight::log::event(&format!(
                "dashboard ready: overview and trader list computed in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
    });
    let app = App {
        data,
        authenticator,
    };
    match tls {
        None => {
            axum::serve(listener, router(app))
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(acceptor) => {
            axum::serve(tls::TlsListener::new(listener, acceptor)?, router(app))
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}
