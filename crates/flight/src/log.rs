//! Log lines on standard error: one per query and per server event, as
//! `key=value` pairs a log shipper can parse.

use std::time::Duration;

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

pub fn event(message: &str) {
    eprintln!("{} aduana-serve {message}", now());
}

/// The SQL on one line, cut after 300 characters, quoted.
fn one_line(sql: &str) -> String {
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

pub fn query(
    id: &str,
    user: &str,
    outcome: &str,
    duration: Duration,
    rows: u64,
    bytes: u64,
    sql: &str,
) {
    eprintln!(
        "{} aduana-serve query id={id} user={user} status={outcome} duration_ms={} rows={rows} bytes={bytes} sql={}",
        now(),
        duration.as_millis(),
        one_line(sql)
    );
}

/// A request refused or failed before any result was sent.
pub fn refused(user: &str, code: tonic::Code, message: &str, sql: &str) {
    eprintln!(
        "{} aduana-serve query user={user} status=refused code={code:?} message={message:?} sql={}",
        now(),
        one_line(sql)
    );
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
