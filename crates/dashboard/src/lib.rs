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
mod selection;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use aduana_access::{AccessError, Authenticator};
use aduana_engine::Session;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
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
        .route("/traders.csv", get(pages::traders_csv))
        .route("/traders.parquet", get(pages::traders_parquet))
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

/// The servers' credentials, over HTTP: Basic (the browser asks for
/// them) or a bearer token, with failed logins logged and slowed per peer
/// as for Flight SQL. Refusals say what is expected and never which user
/// names exist. Every request gets one access log line.
async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let peer = request
        .extensions()
        .get::<ConnectInfo<tls::Peer>>()
        .map(|info| info.0.0.ip());
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let (user, response) =
        match app
            .authenticator
            .authenticate_from(request.headers(), peer, "dashboard")
        {
            Ok(user) => (user.0, next.run(request).await),
            Err(error) => ("-".to_string(), unauthorized(&error)),
        };
    aduana_access::log::event(&format!(
        "http peer={} user={user:?} method={method} path={path:?} status={} duration_ms={}",
        peer.map_or("unknown".to_string(), |p| p.to_string()),
        response.status().as_u16(),
        started.elapsed().as_millis()
    ));
    response
}

/// 401 with the sign-in challenge, as an HTML page (429 while the peer is
/// slowed after failed logins).
fn unauthorized(error: &AccessError) -> Response {
    let code = match error {
        AccessError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        AccessError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
    };
    let mut response = (
        code,
        Html(html::page(
            "Sign in required",
            "",
            &html::failed("auth", "Not signed in", error.message()),
        )),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="Aduana", charset="UTF-8""#),
    );
    response
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
            aduana_access::log::event(&format!(
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
            axum::serve(
                listener,
                router(app).into_make_service_with_connect_info::<tls::Peer>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(acceptor) => {
            axum::serve(
                tls::TlsListener::new(listener, acceptor)?,
                router(app).into_make_service_with_connect_info::<tls::Peer>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    }
}
