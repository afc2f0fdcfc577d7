//! The one place where Aduana's servers are put together: the Flight SQL
//! server and the dashboard share a session, an authenticator, TLS files
//! and a stop signal, and the policy of where each may listen is decided
//! here, before anything is opened. Each server stays unaware of the
//! other.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aduana_access::Authenticator;
use aduana_engine::Session;
use aduana_flight::ServeOptions;
pub use aduana_flight::{Limits, TlsFiles};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What to serve, and how.
pub struct Servers {
    /// Flight SQL's address; `None` serves the dashboard only.
    pub flight: Option<SocketAddr>,
    /// The dashboard's address, if it is served.
    pub dashboard: Option<SocketAddr>,
    /// Certificate and key: grpc+tls for Flight SQL, https for the dashboard.
    pub tls: Option<TlsFiles>,
    pub authenticator: Arc<Authenticator>,
    pub limits: Limits,
    /// After the stop signal: how long running queries may take to finish.
    pub grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration breaks the exposure policy, or cannot be used.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Flight(#[from] aduana_flight::ServeError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Servers {
    /// The exposure policy, checked before a warehouse is opened or a
    /// port bound: no server without credentials off loopback; the
    /// dashboard off loopback only over TLS (browsers send the password
    /// with every request); something to serve.
    pub fn check(&self) -> Result<(), ServerError> {
        let mode = self.authenticator.mode();
        if self.flight.is_none() && self.dashboard.is_none() {
            return Err(ServerError::Refused(
                "nothing to serve: Flight SQL is off and no --http address is given".into(),
            ));
        }
        for addr in self.flight.iter().chain(&self.dashboard) {
            aduana_access::check_exposure(addr, mode).map_err(ServerError::Refused)?;
        }
        if let Some(http) = self.dashboard
            && self.tls.is_none()
            && !http.ip().is_loopback()
        {
            return Err(ServerError::Refused(format!(
                "--http {http}: off a loopback address the dashboard needs --tls-cert and \
                 --tls-key (browsers send the password with every request)"
            )));
        }
        Ok(())
    }

    /// Serves until `shutdown` resolves, then lets both servers drain.
    pub async fn run(
        self,
        session: Arc<Session>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.check()?;
        let https = match (&self.dashboard, &self.tls) {
            (Some(_), Some(tls)) => Some(
                aduana_dashboard::tls::acceptor(&tls.cert, &tls.key)
                    .map_err(ServerError::Refused)?,
            ),
            _ => None,
        };
        // One signal stops both servers.
        let stopping = CancellationToken::new();
        tokio::spawn({
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                stopping.cancel();
            }
        });
        let dashboard = match self.dashboard {
            None => None,
            Some(addr) => {
                let listener = bind(addr, "--http").await?;
                aduana_access::log::event(&format!(
                    "dashboard listening url={}://{} auth={:?}",
                    if https.is_some() { "https" } else { "http" },
                    listener.local_addr()?,
                    self.authenticator.mode()
                ));
                Some(tokio::spawn(aduana_dashboard::serve(
                    session.clone(),
                    self.authenticator.clone(),
                    listener,
                    https,
                    stopping.clone().cancelled_owned(),
                )))
            }
        };
        let flight = match self.flight {
            None => Ok(()),
            Some(addr) => {
                let options = ServeOptions {
                    tls: self.tls,
                    authenticator: self.authenticator,
                    limits: self.limits,
                    grace: self.grace,
                };
                let stopped = stopping.clone().cancelled_owned();
                match bind(addr, "--addr").await {
                    Ok(listener) => aduana_flight::serve(session, listener, options, stopped)
                        .await
                        .map_err(ServerError::from),
                    Err(e) => Err(e),
                }
            }
        };
        // Flight SQL failed: the dashboard stops too.
        if flight.is_err() {
            stopping.cancel();
        }
        if let Some(dashboard) = dashboard {
            dashboard
                .await
                .map_err(|e| ServerError::Io(std::io::Error::other(e)))??;
            if self.flight.is_none() {
                aduana_access::log::event("stopped");
            }
        }
        flight
    }
}

async fn bind(addr: SocketAddr, flag: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Refused(format!("cannot listen on {addr} ({flag}): {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aduana_access::{AuthMode, Credentials};

    fn servers(mode: AuthMode, flight: &str, dashboard: Option<&str>) -> Servers {
        let credentials = Credentials::load(None, |k| {
            (k == "ADUANA_FLIGHT_USERS").then(|| "ana:pw".to_string())
        })
        .unwrap();
        Servers {
            flight: Some(flight.parse().unwrap()),
            dashboard: dashboard.map(|d| d.parse().unwrap()),
            tls: None,
            authenticator: Arc::new(Authenticator::new(mode, credentials).unwrap()),
            limits: Limits {
                query_memory: 1 << 30,
                max_concurrent: 1,
                query_timeout: Duration::from_secs(1),
            },
            grace: Duration::from_secs(1),
        }
    }

    fn refusal(servers: &Servers) -> String {
        servers.check().unwrap_err().to_string()
    }

    #[test]
    fn the_exposure_policy_holds_for_both_servers() {
        servers(AuthMode::None, "127.0.0.1:0", Some("127.0.0.1:0"))
            .check()
            .unwrap();
        servers(AuthMode::Basic, "0.0.0.0:0", None).check().unwrap();
        assert!(
            refusal(&servers(AuthMode::None, "0.0.0.0:0", None)).contains("only on a loopback")
        );
        // Flight on loopback does not make an open dashboard elsewhere safe.
        assert!(
            refusal(&servers(AuthMode::None, "127.0.0.1:0", Some("0.0.0.0:0")))
                .contains("only on a loopback")
        );
        assert!(
            refusal(&servers(AuthMode::Basic, "127.0.0.1:0", Some("0.0.0.0:0")))
                .contains("needs --tls-cert and --tls-key")
        );
        let mut nothing = servers(AuthMode::Basic, "127.0.0.1:0", None);
        nothing.flight = None;
        assert!(refusal(&nothing).contains("nothing to serve"));
    }
}
