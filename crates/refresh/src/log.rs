//! What a run tells its operator: a progress line with rates on a
//! terminal, and structured lines otherwise (`key=value`, or JSON for log
//! collectors), all on standard error; the summary goes to standard output.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub struct Reporter {
    format: LogFormat,
    /// A progress line is drawn (and redrawn) only on a terminal.
    terminal: bool,
    started: Instant,
}

impl Reporter {
    pub fn new(format: LogFormat) -> Self {
        Reporter {
            format,
            terminal: format == LogFormat::Text && std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    /// One structured event: `event` and its fields.
    pub fn event(&self, event: &str, fields: &[(&str, Value)]) {
        let mut line = String::new();
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        match self.format {
            LogFormat::Json => {
                let mut object = Map::new();
                object.insert("ts".into(), time.into());
                object.insert("event".into(), event.into());
                for (key, value) in fields {
                    object.insert((*key).into(), value.clone());
                }
                line = Value::Object(object).to_string();
            }
            LogFormat::Text => {
                line.push_str(&format!("{time} refresh {event}"));
                for (key, value) in fields {
                    match value {
                        Value::String(s) if !s.contains(' ') && !s.is_empty() => {
                            line.push_str(&format!(" {key}={s}"))
                        }
                        other => line.push_str(&format!(" {key}={other}")),
                    }
                }
            }
        }
        let mut err = std::io::stderr().lock();
        if self.terminal {
            // Clear the progress line first.
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{line}");
    }

    /// Redraws the progress line (terminal only): step, how far, rate.
    pub fn progress(&self, step: &str, done: usize, total: usize, rows: u64, seconds: f64) {
        if !self.terminal {
            return;
        }
        let width = 24;
        let filled = if total == 0 {
            width
        } else {
            done * width / total
        };
        let rate = if seconds > 0.0 {
            rows as f64 / seconds
        } else {
            0.0
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{step:<14} [{}{}] {done}/{total}  {:.1}M rows  {:.2}M rows/s  {:.0} s",
            "#".repeat(filled),
            " ".repeat(width - filled),
            rows as f64 / 1e6,
            rate / 1e6,
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }

    pub fn finish_progress(&self) {
        if self.terminal {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
