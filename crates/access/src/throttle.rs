//! Failed logins: logged, and slowed per peer address.
//!
//! Each failure is one log line (peer, user name tried, call, reason).
//! Passwords are throttled per peer address and user name: a pair gets
//! [`FREE_FAILURES`] failures in a row; after that it is refused for a
//! time that doubles with every further failure (1 s, 2 s, 4 s, …, at most
//! [`MAX_BLOCK`]) without the password being checked at all, so guessing
//! runs at a handful of tries a minute instead of thousands a second. Per
//! pair, not per address: one guesser behind a NAT does not lock the
//! others out, and a success with another account does not reset the
//! guesser's count. A success clears the pair's record; records quiet for
//! [`FORGET_AFTER`] are dropped. (Bearer tokens are long random secrets:
//! failures are logged, not throttled.)
//!
//! An IPv6 peer is counted by its /64 network, not its address: a single
//! host is usually given a whole /64 and can change its address within it
//! at will, so counting addresses would let it guess without limit. An
//! IPv4 address mapped into IPv6 counts as that IPv4 address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::{AccessError, Authenticator, Presented, User, presented};

/// Failures in a row a peer may have before it is slowed.
pub const FREE_FAILURES: u32 = 5;
/// The longest a peer is refused after its last failure.
pub const MAX_BLOCK: Duration = Duration::from_secs(300);
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Peers remembered at most (an attacker with many addresses cannot grow
/// the table without bound; the quietest are forgotten first).
const MAX_PEERS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

/// The address a peer is counted under: IPv4 as is, IPv6 by its /64.
fn counted_as(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        },
    }
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    peers: Mutex<HashMap<(IpAddr, String), Record>>,
}

impl LoginThrottle {
    /// RESOURCE_EXHAUSTED while `user` from `peer` is blocked, saying for
    /// how long.
    pub fn check(&self, peer: IpAddr, user: &str) -> Result<(), AccessError> {
        let peers = self.peers.lock().unwrap();
        match peers
            .get(&(counted_as(peer), user.to_string()))
            .and_then(|r| r.blocked_until)
        {
            Some(until) if until > Instant::now() => {
                let wait = until - Instant::now();
                Err(AccessError::Throttled(format!(
                    "too many failed logins for {user:?} from {peer}: retry in {} s",
                    wait.as_secs() + 1
                )))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `user` from `peer`; returns how long the pair
    /// is now blocked.
    pub fn failed(&self, peer: IpAddr, user: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut peers = self.peers.lock().unwrap();
        if peers.len() >= MAX_PEERS {
            peers.retain(|_, r| now.duration_since(r.last) < FORGET_AFTER);
            if peers.len() >= MAX_PEERS {
                let quietest = peers
                    .iter()
                    .min_by_key(|(_, r)| r.last)
                    .map(|(key, _)| key.clone());
                if let Some(key) = quietest {
                    peers.remove(&key);
                }
            }
        }
        let record = peers
            .entry((counted_as(peer), user.to_string()))
            .or_insert(Record {
                failures: 0,
                last: now,
                blocked_until: None,
            });
        if now.duration_since(record.last) >= FORGET_AFTER {
            record.failures = 0;
        }
        record.failures += 1;
        record.last = now;
        let over = record.failures.saturating_sub(FREE_FAILURES);
        record.blocked_until = (over > 0).then(|| {
            let block = Duration::from_secs(1u64 << (over - 1).min(16)).min(MAX_BLOCK);
            now + block
        });
        record.blocked_until.map(|until| until - now)
    }

    pub fn succeeded(&self, peer: IpAddr, user: &str) {
        self.peers
            .lock()
            .unwrap()
            .remove(&(counted_as(peer), user.to_string()));
    }
}

/// Authentication with failed logins logged and throttled.
impl Authenticator {
    /// [`Self::authenticate`] for a call (`call`, for the log) from `peer`:
    /// refused at once while the peer is slowed; failed credentials are
    /// logged and counted against the peer (see [`crate::throttle`]).
    pub fn authenticate_from(
        &self,
        headers: &http::HeaderMap,
        peer: Option<IpAddr>,
        call: &str,
    ) -> Result<User, AccessError> {
        self.guarded(headers, peer, call, || self.authenticate(headers))
    }

    /// [`Self::handshake`] from `peer`, logged and slowed the same way.
    pub fn handshake_from(
        &self,
        headers: &http::HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<(User, String), AccessError> {
        self.guarded(headers, peer, "Handshake", || self.handshake(headers))
    }

    fn guarded<T>(
        &self,
        headers: &http::HeaderMap,
        peer: Option<IpAddr>,
        call: &str,
        check: impl FnOnce() -> Result<T, AccessError>,
    ) -> Result<T, AccessError> {
        // Passwords are throttled per peer and user name (see `throttle`).
        let basic_user = match presented(headers) {
            Ok(Presented::Basic { user, .. }) => Some(user),
            _ => None,
        };
        if let (Some(ip), Some(user)) = (peer, &basic_user) {
            self.throttle.check(ip, user)?;
        }
        let result = check();
        match (&result, peer, &basic_user) {
            (Ok(_), Some(ip), Some(user)) => self.throttle.succeeded(ip, user),
            (Ok(_), _, _) => {}
            // A request without credentials is how a browser asks for the
            // sign-in prompt: not a failed login.
            (Err(error), _, _) if headers.contains_key(http::header::AUTHORIZATION) => {
                let claimed = match (&basic_user, presented(headers)) {
                    (Some(user), _) => user.clone(),
                    (None, Ok(Presented::Bearer(_))) => "(bearer token)".into(),
                    _ => "(malformed)".into(),
                };
                let blocked = match (peer, &basic_user) {
                    (Some(ip), Some(user)) => self.throttle.failed(ip, user),
                    _ => None,
                };
                crate::log::login_failed(peer, &claimed, call, error.message(), blocked);
            }
            _ => {}
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_are_slowed_per_peer_and_user_and_cleared_by_success() {
        let throttle = LoginThrottle::default();
        let attacker: IpAddr = "10.0.0.9".parse().unwrap();
        let other: IpAddr = "10.0.0.10".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            throttle.check(attacker, "root").unwrap();
            assert_eq!(throttle.failed(attacker, "root"), None);
        }
        assert_eq!(
            throttle.failed(attacker, "root"),
            Some(Duration::from_secs(1))
        );
        let refused = throttle.check(attacker, "root").unwrap_err();
        assert!(matches!(refused, AccessError::Throttled(_)));
        assert!(refused.message().contains("10.0.0.9"), "{refused}");
        assert_eq!(
            throttle.failed(attacker, "root"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            throttle.failed(attacker, "root"),
            Some(Duration::from_secs(4))
        );
        for _ in 0..30 {
            throttle.failed(attacker, "root");
        }
        assert!(throttle.check(attacker, "root").is_err());
        assert_eq!(throttle.failed(attacker, "root"), Some(MAX_BLOCK));
        // Another user behind the same address, and the same user from
        // elsewhere, are not affected; a success of another account does not
        // clear the guesser's record, its own does.
        throttle.check(attacker, "analyst").unwrap();
        throttle.check(other, "root").unwrap();
        throttle.succeeded(attacker, "analyst");
        assert!(throttle.check(attacker, "root").is_err());
        throttle.succeeded(attacker, "root");
        throttle.check(attacker, "root").unwrap();
    }

    #[test]
    fn an_ipv6_host_cannot_escape_by_changing_address_within_its_64() {
        let throttle = LoginThrottle::default();
        // Each guess from another address of the same /64.
        for i in 0..=FREE_FAILURES {
            let addr: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
            throttle.failed(addr, "root");
        }
        let next: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        assert!(throttle.check(next, "root").is_err());
        // The neighbouring /64 is another network.
        let neighbour: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        throttle.check(neighbour, "root").unwrap();
        // An IPv4 address seen as IPv4-mapped IPv6 is the same peer.
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..=FREE_FAILURES {
            throttle.failed(v4, "root");
        }
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(throttle.check(mapped, "root").is_err());
    }
}
