//! `aduana serve`: the Flight SQL server and the dashboard, with TLS and
//! authentication, until a signal stops them.

use aduana_engine::{Session, parse_size};

use crate::cli::*;

/// `aduana serve`: Flight SQL until SIGTERM or Ctrl-C.
pub(crate) async fn serve(args: ServeArgs) -> Result<(), Error> {
    use aduana_flight::{AuthMode, Authenticator, Credentials, Limits, ServeOptions, TlsFiles};
    let mode: AuthMode = args.auth.parse()?;
    aduana_flight::check_exposure(&args.addr, mode)?;
    let credentials = Credentials::load(args.auth_file.as_deref(), |k| std::env::var(k).ok())?;
    let authenticator = std::sync::Arc::new(Authenticator::new(mode, credentials)?);
    if args.max_concurrent_queries == 0 {
        return Err("--max-concurrent-queries must be at least 1".into());
    }
    if args.query_timeout == 0 {
        return Err("--query-timeout must be at least 1 second".into());
    }
    let limits = Limits {
        query_memory: parse_size(&args.query_memory)?,
        max_concurrent: args.max_concurrent_queries,
        query_timeout: std::time::Duration::from_secs(args.query_timeout),
    };
    // Browsers send the password with every request: off loopback the
    // dashboard is served over TLS only.
    let https = match (&args.http, &args.tls_cert, &args.tls_key) {
        (Some(_), Some(cert), Some(key)) => Some(aduana_dashboard::tls::acceptor(cert, key)?),
        _ => None,
    };
    if args.http.is_some() && args.cluster.cluster.is_some() {
        // Seen here: a report of the trader page (controls per month) hangs
        // intermittently on Ballista 55, the job never finishing; a page
        // that never loads is worse than a clear refusal.
        return Err(
            "--http runs the dashboard in-process only, not with --cluster: serve it \
                    from a separate `aduana serve --http` without --cluster"
                .into(),
        );
    }
    if let Some(http) = &args.http {
        aduana_flight::check_exposure(http, mode)?;
        if https.is_none() && !http.ip().is_loopback() {
            return Err(format!(
                "--http {http}: off a loopback address the dashboard needs --tls-cert and --tls-key \
                 (browsers send the password with every request)"
            )
            .into());
        }
    }
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
    let served: Result<(), Error> = async {
        // One signal stops both servers.
        let stopping = tokio_util::sync::CancellationToken::new();
        tokio::spawn({
            let stopping = stopping.clone();
            async move {
                shutdown_signal().await;
                stopping.cancel();
            }
        });
        let dashboard = match args.http {
            None => None,
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr} (--http): {e}"))?;
                aduana_flight::log::event(&format!(
                    "dashboard listening url={}://{} auth={:?}",
                    if https.is_some() { "https" } else { "http" },
                    listener.local_addr()?,
                    mode
                ));
                Some(tokio::spawn(aduana_dashboard::serve(
                    session.clone(),
                    authenticator.clone(),
                    listener,
                    https,
                    stopping.clone().cancelled_owned(),
                )))
            }
        };
        if args.no_flight {
            if let Some(dashboard) = dashboard {
                dashboard.await.map_err(|e| e.to_string())??;
            }
            aduana_flight::log::event("stopped");
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        let options = ServeOptions {
            tls: args
                .tls_cert
                .zip(args.tls_key)
                .map(|(cert, key)| TlsFiles { cert, key }),
            authenticator,
            limits,
            grace: std::time::Duration::from_secs(args.grace),
        };
        aduana_flight::serve(session, listener, options, stopping.cancelled_owned()).await?;
        if let Some(dashboard) = dashboard {
            dashboard.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    }
    .await;
    if let Some(lease) = lease
        && let Err(e) = lease.release().await
    {
        eprintln!("warning: the reader lease was not removed (it expires by itself): {e}");
    }
    served
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
