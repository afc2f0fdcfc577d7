//! Log lines on standard error: server events and failed logins, as
//! `key=value` pairs a log shipper can parse.

use std::time::Duration;

/// The time of a log line, UTC to the millisecond.
pub fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub fn event(message: &str) {
    eprintln!("{} aduana-serve {message}", now());
}

/// The SQL on one line, cut after 300 characters, quoted.
pub fn one_line(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut = if flat.len() > 300 {
        let end = (0..=300)
            .rev()
            .find(|&i| flat.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &flat[..end])
    } else {
        flat
    };
    format!("{cut:?}")
}

/// A login that failed: who it claimed to be, from where, and whether the
/// peer is now slowed.
pub fn login_failed(
    peer: Option<std::net::IpAddr>,
    user: &str,
    call: &str,
    reason: &str,
    blocked: Option<Duration>,
) {
    let peer = peer.map_or("unknown".to_string(), |p| p.to_string());
    let blocked = blocked.map_or(String::new(), |b| format!(" blocked_s={}", b.as_secs()));
    eprintln!(
        "{} aduana-serve login_failed peer={peer} user={user:?} call={call:?} reason={reason:?}{blocked}",
        now()
    );
}
