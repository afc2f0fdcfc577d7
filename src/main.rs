//! `aduana`: customs risk analytics on Apache DataFusion.

mod check;
mod cli;
mod cluster;
mod demo;
mod generate;
mod import;
mod model;
mod refresh;
mod select;
mod serve;
mod sql;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error.to_string()));
            // The refresh job's codes tell a scheduler what went wrong.
            match error.downcast_ref::<aduana_refresh::RefreshError>() {
                Some(e) => ExitCode::from(e.exit_code()),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// Messages are one line, so scripts and cron mails show the reason; some
/// DataFusion errors embed a whole plan, which is cut after a few lines'
/// worth, saying how much was left out.
fn one_line(message: &str) -> String {
    const LIMIT: usize = 1_000;
    let flat = message.replace('\n', " ");
    if flat.len() <= LIMIT {
        return flat;
    }
    let cut = (0..=LIMIT)
        .rev()
        .find(|&i| flat.is_char_boundary(i))
        .unwrap_or(0);
    format!(
        "{} ... ({} more characters)",
        &flat[..cut],
        flat.len() - cut
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_messages_are_cut() {
        assert_eq!(super::one_line("a\nb"), "a b");
        let long = "x".repeat(5_000);
        let line = super::one_line(&long);
        assert!(
            line.len() < 1_100 && line.ends_with("(4000 more characters)"),
            "{line}"
        );
    }
}
