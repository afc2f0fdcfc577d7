//! The Flight SQL server's log lines: one per query, on standard error,
//! as `key=value` pairs (the server events and failed logins are
//! [`aduana_access::log`]'s).

use std::time::Duration;

use aduana_access::log::{now, one_line};

pub use aduana_access::log::event;

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
