//! Every call but Handshake and the health check is checked by a tower
//! layer before it reaches the service, which gets the caller's name in
//! the request's extensions; the checks themselves are
//! [`aduana_access`]'s.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aduana_access::{AccessError, Authenticator};
use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

/// A refusal as gRPC says it: UNAUTHENTICATED, or RESOURCE_EXHAUSTED while
/// the caller's address is slowed after failed logins.
pub(crate) fn status(error: AccessError) -> Status {
    match error {
        AccessError::Unauthenticated(message) => Status::unauthenticated(message),
        AccessError::Throttled(message) => Status::resource_exhausted(message),
    }
}

/// The paths that pass without credentials: Handshake checks them itself
/// (it answers with the token), and probes need no secret.
fn is_open_path(path: &str) -> bool {
    path == "/arrow.flight.protocol.FlightService/Handshake"
        || path.starts_with("/grpc.health.v1.Health/")
}

/// Checks every call before the Flight service sees it.
#[derive(Clone)]
pub struct AuthLayer {
    pub authenticator: Arc<Authenticator>,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !is_open_path(request.uri().path()) {
            // tonic records the peer of every connection (TLS or not).
            let extensions = request.extensions();
            let peer = extensions
                .get::<TcpConnectInfo>()
                .or_else(|| {
                    extensions
                        .get::<TlsConnectInfo<TcpConnectInfo>>()
                        .map(|tls| tls.get_ref())
                })
                .and_then(|info| info.remote_addr())
                .map(|addr| addr.ip());
            let call = request
                .uri()
                .path()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            match self
                .authenticator
                .authenticate_from(request.headers(), peer, &call)
            {
                Ok(user) => {
                    request.extensions_mut().insert(user);
                }
                Err(error) => {
                    let refusal = status(error).into_http();
                    return Box::pin(async move { Ok(refusal) });
                }
            }
        }
        Box::pin(self.inner.call(request))
    }
}
