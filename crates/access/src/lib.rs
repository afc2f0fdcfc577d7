//! Who may use Aduana's servers, shared by the Flight SQL server and the
//! dashboard: users and tokens ([`Credentials`]), the checks of each call
//! ([`Authenticator`]), failed logins slowed per address ([`throttle`]),
//! where an open server may listen ([`check_exposure`]), and the servers'
//! log lines ([`log`]). Nothing here knows a protocol: each server maps an
//! [`AccessError`] to its own answer.

pub mod auth;
pub mod log;
pub mod throttle;

use std::net::SocketAddr;

pub use auth::{AccessError, AuthMode, Authenticator, Credentials, User};

/// Refuses `--auth none` off loopback: an open endpoint must not be
/// reachable from the network.
pub fn check_exposure(addr: &SocketAddr, mode: AuthMode) -> Result<(), String> {
    if mode == AuthMode::None && !addr.ip().is_loopback() {
        return Err(format!(
            "--auth none is allowed only on a loopback address (127.0.0.1, ::1), not {addr}"
        ));
    }
    Ok(())
}
