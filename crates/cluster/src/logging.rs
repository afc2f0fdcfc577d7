//! The cluster processes' log: Ballista reports task assignment, stage
//! progress and lost executors through the `log` facade, which prints
//! nothing until a logger is installed.
//!
//! A logger of a few lines rather than `env_logger`: that crate turns on
//! `log`'s `std` feature, which rebuilds every crate that logs (DataFusion
//! included) for one line per event on stderr.

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLog;

impl Log for StderrLog {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            eprintln!(
                "{} {:<5} {}: {}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                record.level(),
                record.target(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

/// The level `RUST_LOG` names (`error`, `warn`, `info`, `debug`, `trace`,
/// `off`); warnings by default, and for anything else.
pub fn level_from(value: Option<&str>) -> LevelFilter {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("off") => LevelFilter::Off,
        Some("error") => LevelFilter::Error,
        Some("info") => LevelFilter::Info,
        Some("debug") => LevelFilter::Debug,
        Some("trace") => LevelFilter::Trace,
        _ => LevelFilter::Warn,
    }
}

/// Installs the stderr logger at `RUST_LOG`'s level (once per process).
pub fn start() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level_from(std::env::var("RUST_LOG").ok().as_deref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_read_from_the_variable() {
        assert_eq!(level_from(None), LevelFilter::Warn);
        assert_eq!(level_from(Some("INFO")), LevelFilter::Info);
        assert_eq!(level_from(Some(" debug ")), LevelFilter::Debug);
        assert_eq!(level_from(Some("off")), LevelFilter::Off);
        assert_eq!(level_from(Some("ballista=info")), LevelFilter::Warn);
    }
}
