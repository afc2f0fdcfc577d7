//! `aduana shell`, `aduana sql` and `aduana report`: SQL and the named
//! reports, at a terminal or into files (written atomically).

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::Path;

use aduana_engine::output::Format;

use crate::cli::*;

/// `aduana shell`: the interactive shell at a terminal, else a script.
pub(crate) fn shell(args: SqlArgs) -> Result<(), Error> {
    let runtime = runtime()?;
    if args.has_script() {
        return runtime.block_on(sql(args));
    }
    if args.output.is_some() || args.format != Format::Table {
        return Err(
            "-o and --format apply to -c, -f or piped SQL; in the shell use \\o and \\format"
                .into(),
        );
    }
    let session = runtime.block_on(open_session(&args.warehouse, &args.engine, &args.cluster))?;
    // A shell may stay open across refreshes: its risk tables stay readable.
    let lease = runtime.block_on(crate::serve::hold_risk_files(&session, "shell"))?;
    let settings = aduana_shell::Settings {
        timing: true,
        ..Default::default()
    };
    let result =
        aduana_shell::interactive(aduana_shell::Shell::new(session, settings, true), &runtime);
    if let Some(lease) = lease {
        let _ = runtime.block_on(lease.release());
    }
    result
}

/// Runs `-c`, `-f` or standard input: statements and meta commands, in
/// order, stopping at the first failure.
pub(crate) async fn sql(args: SqlArgs) -> Result<(), Error> {
    let text = match (&args.command, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read SQL file {}: {e}", path.display()))?,
        (None, None) => {
            if std::io::stdin().is_terminal() {
                return Err(
                    "no SQL given: use -c SQL, -f FILE or pipe statements on standard input".into(),
                );
            }
            let mut sql = String::new();
            std::io::stdin().read_to_string(&mut sql)?;
            sql
        }
    };
    if args.format.is_binary() && args.output.is_none() {
        return Err(
            "--format parquet needs -o FILE: binary output never goes to the terminal".into(),
        );
    }
    let (items, rest) = aduana_shell::script::split(&text);
    let statements = items
        .iter()
        .filter(|i| matches!(i, aduana_shell::script::Item::Sql(_)))
        .count()
        + usize::from(!rest.trim().is_empty());
    if items.is_empty() && rest.trim().is_empty() {
        return Err("no SQL statement given".into());
    }
    if args.format == Format::Parquet && statements > 1 {
        return Err("--format parquet writes one result: give a single statement".into());
    }
    let session = open_session(&args.warehouse, &args.engine, &args.cluster).await?;
    refuse_output_inside(&session, args.output.as_deref())?;
    let settings = aduana_shell::Settings {
        format: args.format,
        timing: args.timing,
        ..Default::default()
    };
    let mut shell = aduana_shell::Shell::new(session, settings, false);
    match &args.output {
        None => {
            let mut out = BufWriter::new(std::io::stdout());
            let result = shell.run_script(&text, &mut out).await;
            // Results of the statements before a failure are still shown.
            out.flush()?;
            shell.finish()?;
            result?;
        }
        Some(path) => {
            write_atomically(path, async |file| {
                shell.run_script(&text, file).await?;
                shell.finish()
            })
            .await?
        }
    }
    Ok(())
}

pub(crate) async fn report(args: ReportArgs) -> Result<(), Error> {
    let report = aduana_reports::get(&args.name).ok_or_else(|| {
        format!(
            "no report named {} (`aduana reports` lists them)",
            args.name
        )
    })?;
    // Parameters are checked before the warehouse is opened.
    report.bind(&args.params)?;
    if args.format.is_binary() && args.output.is_none() {
        return Err(
            "--format parquet needs -o FILE: binary output never goes to the terminal".into(),
        );
    }
    let session = open_session(&args.warehouse, &args.engine, &args.cluster).await?;
    refuse_output_inside(&session, args.output.as_deref())?;
    let settings = aduana_shell::Settings {
        format: args.format,
        ..Default::default()
    };
    let mut shell = aduana_shell::Shell::new(session, settings, false);
    let assignments: Vec<String> = args
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    match &args.output {
        None => {
            let mut out = BufWriter::new(std::io::stdout());
            let result = shell.report(&args.name, &assignments, &mut out).await;
            out.flush()?;
            result
        }
        Some(path) => {
            write_atomically(path, async |file| {
                shell.report(&args.name, &assignments, file).await
            })
            .await
        }
    }
}

pub(crate) fn list_reports() {
    for r in aduana_reports::all() {
        println!("{:<32} {}", r.name, r.title);
        for p in &r.params {
            let default = p
                .default
                .as_ref()
                .map_or("required".to_string(), |d| format!("default {d}"));
            println!(
                "{:<34}{} {} ({default}): {}",
                "",
                p.name,
                p.kind.name(),
                p.description
            );
        }
    }
}

/// `-o FILE` never writes into the warehouse (the check `COPY` and `\o`
/// use).
pub(crate) fn refuse_output_inside(
    session: &aduana_engine::Session,
    output: Option<&Path>,
) -> Result<(), Error> {
    match output {
        Some(path) if session.is_inside_warehouse_path(path) => Err(format!(
            "-o {} refused: it is inside the warehouse, which Aduana never writes to",
            path.display()
        )
        .into()),
        _ => Ok(()),
    }
}

/// Writes to a temporary file beside `path` and renames it into place only
/// when `write` succeeds, so a failed query never leaves a partial file.
pub(crate) async fn write_atomically(
    path: &Path,
    write: impl AsyncFnOnce(&mut BufWriter<File>) -> Result<(), Error>,
) -> Result<(), Error> {
    let name = path
        .file_name()
        .ok_or_else(|| format!("-o {}: not a file name", path.display()))?;
    let temp = path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let file = File::create(&temp).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let mut writer = BufWriter::new(file);
    let result = match write(&mut writer).await {
        Ok(()) => writer.flush().map_err(Error::from),
        Err(e) => Err(e),
    };
    drop(writer);
    match result {
        Ok(()) => std::fs::rename(&temp, path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()).into()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}
