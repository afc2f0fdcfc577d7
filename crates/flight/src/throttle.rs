//! Failed logins: logged, and slowed per peer address.
//!
//! Each failure is one log line (peer, user name tried, call, reason). A
//! peer gets [`FREE_FAILURES`] failures in a row; after that it is refused
//! for a time that doubles with every further failure (1 s, 2 s, 4 s, …,
//! at most [`MAX_BLOCK`]) without its credentials being checked at all, so
//! guessing runs at a handful of tries a minute instead of thousands a
//! second. A success clears the peer's record; records of peers quiet for
//! [`FORGET_AFTER`] are dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::Status;

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

#[derive(Debug, Default)]
pub struct LoginThrottle {
    peers: Mutex<HashMap<IpAddr, Record>>,
}

impl LoginThrottle {
    /// RESOURCE_EXHAUSTED while `peer` is blocked, saying for how long.
    pub fn check(&self, peer: IpAddr) -> Result<(), Status> {
        let peers = self.peers.lock().unwrap();
        match peers.get(&peer).and_then(|r| r.blocked_until) {
            Some(until) if until > Instant::now() => {
                let wait = until - Instant::now();
                Err(Status::resource_exhausted(format!(
                    "too many failed logins from {peer}: retry in {} s",
                    wait.as_secs() + 1
                )))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure of `peer`; returns how long it is now blocked.
    pub fn failed(&self, peer: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut peers = self.peers.lock().unwrap();
        if peers.len() >= MAX_PEERS {
            peers.retain(|_, r| now.duration_since(r.last) < FORGET_AFTER);
            if peers.len() >= MAX_PEERS {
                let quietest = peers.iter().min_by_key(|(_, r)| r.last).map(|(ip, _)| *ip);
                if let Some(ip) = quietest {
                    peers.remove(&ip);
                }
            }
        }
        let record = peers.entry(peer).or_insert(Record {
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

    pub fn succeeded(&self, peer: IpAddr) {
        self.peers.lock().unwrap().remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_slowed_after_their_free_failures_and_cleared_by_success() {
        let throttle = LoginThrottle::default();
        let attacker: IpAddr = "10.0.0.9".parse().unwrap();
        let other: IpAddr = "10.0.0.10".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            throttle.check(attacker).unwrap();
            assert_eq!(throttle.failed(attacker), None);
        }
        assert_eq!(throttle.failed(attacker), Some(Duration::from_secs(1)));
        let refused = throttle.check(attacker).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("10.0.0.9"), "{refused}");
        assert_eq!(throttle.failed(attacker), Some(Duration::from_secs(2)));
        assert_eq!(throttle.failed(attacker), Some(Duration::from_secs(4)));
        for _ in 0..30 {
            throttle.failed(attacker);
        }
        assert!(throttle.check(attacker).is_err());
        assert_eq!(throttle.failed(attacker), Some(MAX_BLOCK));
        // Others are not affected; a success clears the record.
        throttle.check(other).unwrap();
        throttle.succeeded(attacker);
        throttle.check(attacker).unwrap();
    }
}
