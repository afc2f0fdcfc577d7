//! `aduana serve`: the Flight SQL server and the dashboard, with TLS and
//! authentication, until a signal stops them.

use aduana_engine::{Session, parse_size};

use crate::cli::*;

/// `aduana serve`: Flight SQL (and the dashboard) until SIGTERM or Ctrl-C.
pub(crate) async fn serve(args: ServeArgs) -> Result<(), Error> {
    use aduana_access::{AuthMode, Authenticator, Credentials};
    use aduana_server::{Limits, TlsFiles};
    let mode: AuthMode = args.auth.parse()?;
    let credentials = Credentials::load(args.auth_file.as_deref(), |k| std::env::var(k).ok())?;
    let authenticator = std::sync::Arc::new(Authenticator::new(mode, credentials)?);
    if args.max_concurrent_queries == 0 {
        return Err("--max-concurrent-queries must be at least 1".into());
    }
    if args.query_timeout == 0 {
        return Err("--query-timeout must be at least 1 second".into());
    }
    let servers = aduana_server::Servers {
        flight: (!args.no_flight).then_some(args.addr),
        dashboard: args.http,
        tls: args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| TlsFiles { cert, key }),
        authenticator,
        limits: Limits {
            query_memory: parse_size(&args.query_memory)?,
            max_concurrent: args.max_concurrent_queries,
            query_timeout: std::time::Duration::from_secs(args.query_timeout),
        },
        grace: std::time::Duration::from_secs(args.grace),
    };
    // Refused before the warehouse is opened.
    servers.check()?;
    let session = std::sync::Arc::new(
        Session::open(
            args.warehouse.open_for_serving().await?,
            &args.engine.options_on(&args.cluster)?,
        )
        .await?,
    );
    // The published files this server reads stay until it stops, however
    // many refreshes run meanwhile.
    let lease = hold_risk_files(&session, "serve").await?;
    let served = servers.run(session, shutdown_signal()).await;
    if let Some(lease) = lease
        && let Err(e) = lease.release().await
    {
        eprintln!("warning: the reader lease was not removed (it expires by itself): {e}");
    }
    Ok(served?)
}

/// Leases the published risk files `session` reads, for a process that
/// outlives refreshes; named after `what`, the host and the process.
pub(crate) async fn hold_risk_files(
    session: &Session,
    what: &str,
) -> Result<Option<aduana_warehouse::readers::LeaseHolder>, Error> {
    // Host and pid for people; a random part, since two containers may
    // share both (PID 1 on a fixed host name).
    let reader = format!(
        "{what}-{}-{}-{:08x}",
        aduana_refresh::host_name(),
        std::process::id(),
        rand::random::<u32>()
    );
    Ok(session
        .warehouse()
        .hold_risk_files(&reader, session.model_version().as_deref())
        .await?)
}

/// Resolves on SIGTERM (what service managers and Kubernetes send) or
/// Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
