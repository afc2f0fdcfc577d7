//! `aduana serve`: the Aduana session over Arrow Flight SQL, for BI tools
//! (Superset, DBeaver, Tableau through the Flight SQL JDBC driver, Power BI
//! and Python through ADBC).
//!
//! Built on arrow-flight's `FlightSqlService` directly rather than on
//! `datafusion-flight-sql-server`: that crate plans each query twice, has
//! no Handshake, SqlInfo, type info or primary keys, lists nothing when no
//! catalog is given, leaves DDL and DML open, reports every error as
//! INTERNAL, and needs `protoc` for Substrait.

pub mod auth;
pub mod log;
pub mod metadata;
pub mod query;
pub mod reports;
pub mod service;
pub mod session_options;
pub mod status;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aduana_engine::Session;
use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

use aduana_access::Authenticator;
pub use service::{AduanaFlightSql, Limits};

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub struct ServeOptions {
    pub tls: Option<TlsFiles>,
    pub authenticator: Arc<Authenticator>,
    pub limits: Limits,
    /// After SIGTERM: how long running queries may take to finish before
    /// they are cancelled.
    pub grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// Serves `session` on `listener` until `shutdown` resolves, then lets
/// running queries finish for the grace period, cancels the rest and
/// returns.
pub async fn serve(
    session: Arc<Session>,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    aduana_access::check_exposure(&addr, options.authenticator.mode())
        .map_err(ServeError::Config)?;
    let views = reports::register(&session).await?;
    let service = Arc::new(AduanaFlightSql::new(
        session,
        options.limits.clone(),
        options.authenticator.clone(),
    ));

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<FlightServiceServer<AduanaFlightSql>>()
        .await;

    let mut builder = Server::builder();
    if let Some(tls) = &options.tls {
        let cert = std::fs::read(&tls.cert).map_err(|e| {
            ServeError::Config(format!(
                "cannot read TLS certificate {}: {e}",
                tls.cert.display()
            ))
        })?;
        let key = std::fs::read(&tls.key).map_err(|e| {
            ServeError::Config(format!("cannot read TLS key {}: {e}", tls.key.display()))
        })?;
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
            .map_err(|e| ServeError::Config(format!("TLS: {e}")))?;
    }

    let stopping = CancellationToken::new();
    let signal = {
        let stopping = stopping.clone();
        async move {
            shutdown.await;
            stopping.cancel();
        }
    };
    let flight = FlightServiceServer::from_arc(service.clone())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let router = builder
        .layer(tower::ServiceBuilder::new().layer(auth::AuthLayer {
            authenticator: options.authenticator.clone(),
        }))
        .add_service(health_service)
        .add_service(flight);
    log::event(&format!(
        "listening addr={}://{addr} auth={:?} tls={} query_memory={} max_concurrent={} query_timeout_s={} report_views={}",
        if options.tls.is_some() {
            "grpc+tls"
        } else {
            "grpc"
        },
        options.authenticator.mode(),
        options.tls.is_some(),
        options.limits.query_memory,
        options.limits.max_concurrent,
        options.limits.query_timeout.as_secs(),
        views.join(",")
    ));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = router.serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);

    // After the signal: no new calls; running queries get the grace
    // period, then are cancelled; a client that keeps its stream open
    // past that does not hold the process.
    let drain = {
        let stopping = stopping.clone();
        let service = service.clone();
        let grace = options.grace;
        async move {
            stopping.cancelled().await;
            health
                .set_not_serving::<FlightServiceServer<AduanaFlightSql>>()
                .await;
            log::event(&format!(
                "shutting down running_queries={} grace_s={}",
                service.running_queries(),
                grace.as_secs()
            ));
            tokio::time::sleep(grace).await;
            let cancelled = service.cancel_all();
            if cancelled > 0 {
                log::event(&format!("grace period over: cancelled {cancelled} queries"));
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    };
    tokio::select! {
        result = &mut server => result?,
        _ = drain => log::event("stopped with connections still open"),
    }
    log::event("stopped");
    Ok(())
}
