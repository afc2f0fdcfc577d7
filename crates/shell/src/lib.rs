//! The analyst's shell: `aduana shell`.
//!
//! Interactive at a terminal (line editing and history by rustyline,
//! completion and highlighting from `helper`, tables that fit the terminal
//! from `display`, Ctrl-C cancelling the running query), and the same
//! commands from `-c`, `-f` or standard input for scripts, which stop at
//! the first failing statement.

mod display;
mod helper;
mod meta;
pub mod script;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aduana_engine::output::{Format, write_stream};
use aduana_engine::{Session, WritePolicy};
use datafusion::common::ParamValues;
use futures::StreamExt;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};

pub use helper::highlight_sql;
use helper::{Names, SqlHelper};
use script::Item;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where results go by default: standard output, or a writer the caller
/// owns (`-o FILE`, written atomically by the caller).
pub type Sink<'a> = &'a mut (dyn Write + Send);

/// Settings a meta command can change.
#[derive(Debug, Clone)]
pub struct Settings {
    pub format: Format,
    /// Print rows and elapsed time after each statement.
    pub timing: bool,
    /// One record per block (`\x`).
    pub expanded: bool,
    /// Rows shown in a table at the terminal; the rest are counted.
    pub max_rows: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            format: Format::Table,
            timing: false,
            expanded: false,
            max_rows: 100,
        }
    }
}

/// What to do after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

pub struct Shell {
    session: Arc<Session>,
    pub settings: Settings,
    /// At a terminal: cap tables, show a spinner, let Ctrl-C cancel.
    interactive: bool,
    /// `\o FILE`: results go here instead of the sink.
    redirect: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    /// `\i` depth, against scripts that include themselves.
    depth: usize,
}

impl Shell {
    pub fn new(session: Arc<Session>, settings: Settings, interactive: bool) -> Shell {
        Shell {
            session,
            settings,
            interactive,
            redirect: None,
            depth: 0,
        }
    }

    /// Runs a script (meta commands and statements); stops at the first
    /// failure, whose error names the statement.
    pub async fn run_script(&mut self, text: &str, out: Sink<'_>) -> Result<Flow, Error> {
        let (mut items, rest) = script::split(text);
        if !rest.trim().is_empty() {
            items.push(Item::Sql(rest.trim().to_string()));
        }
        for item in items {
            if self.run_item(item, out).await? == Flow::Quit {
                return Ok(Flow::Quit);
            }
        }
        Ok(Flow::Continue)
    }

    async fn run_item(&mut self, item: Item, out: Sink<'_>) -> Result<Flow, Error> {
        match item {
            Item::Meta(command) => self.meta(&command, out).await,
            Item::Sql(sql) => {
                self.run_sql(&sql, None, out).await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// Runs every statement of `sql`, binding `params` to its placeholders.
    pub async fn run_sql(
        &mut self,
        sql: &str,
        params: Option<&ParamValues>,
        out: Sink<'_>,
    ) -> Result<(), Error> {
        for statement in Session::statements(sql)? {
            let started = Instant::now();
            let interactive = self.interactive;
            let (rows, shown) = {
                let work = self.execute(statement, params, out);
                if interactive {
                    cancellable(work).await
                } else {
                    work.await
                }
            }?;
            if self.interactive || self.settings.timing {
                self.flush(out)?;
                let elapsed = self.settings.timing.then(|| started.elapsed());
                eprintln!("{}", footer(rows, shown, elapsed));
            }
        }
        Ok(())
    }

    /// Plans and runs one statement; returns rows produced and rows shown
    /// (fewer when a table at the terminal was capped).
    async fn execute(
        &mut self,
        statement: datafusion::sql::parser::Statement,
        params: Option<&ParamValues>,
        out: Sink<'_>,
    ) -> Result<(u64, Option<usize>), Error> {
        // Planning errors name the statement already; later ones get it here.
        let text = aduana_engine::statement_text(&statement);
        let named = |e: Error| -> Error { format!("{text}: {e}").into() };
        let mut frame = self
            .session
            .execute(statement, WritePolicy::Analyst)
            .await?;
        if let Some(params) = params {
            frame = frame
                .with_param_values(params.clone())
                .map_err(|e| named(e.into()))?;
        }
        self.show_frame(frame, out).await.map_err(named)
    }

    /// Streams a frame's result to the `\o` file or the sink, in the
    /// current format.
    async fn show_frame(
        &mut self,
        frame: datafusion::dataframe::DataFrame,
        out: Sink<'_>,
    ) -> Result<(u64, Option<usize>), Error> {
        if frame.schema().fields().is_empty() {
            return Ok((0, None));
        }
        let stream = frame.execute_stream().await?;
        let format = self.settings.format;
        if format == Format::Table && self.interactive && self.redirect.is_none() {
            return self.show_capped(stream, out).await;
        }
        if format.is_binary() && self.redirect.is_none() && self.interactive {
            return Err("parquet results need a file: use \\o FILE first".into());
        }
        let rows = match &mut self.redirect {
            Some((_, file)) => write_stream(format, stream, file).await?,
            None => {
                let mut out = out;
                write_stream(format, stream, &mut out).await?
            }
        };
        Ok((rows, None))
    }

    /// A table of the first `max_rows` rows; the rest are only counted.
    async fn show_capped(
        &mut self,
        mut stream: datafusion::physical_plan::SendableRecordBatchStream,
        out: Sink<'_>,
    ) -> Result<(u64, Option<usize>), Error> {
        let schema = stream.schema();
        let mut kept = Vec::new();
        let (mut rows, mut shown) = (0u64, 0usize);
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            let room = self.settings.max_rows - shown;
            if room > 0 {
                let take = room.min(batch.num_rows());
                shown += take;
                kept.push(batch.slice(0, take));
            }
        }
        let text = display::render(
            &schema,
            &kept,
            self.settings.expanded,
            display::terminal_width(),
        )?;
        writeln!(out, "{text}")?;
        Ok((rows, Some(shown)))
    }

    fn flush(&mut self, out: Sink<'_>) -> Result<(), Error> {
        out.flush()?;
        if let Some((_, file)) = &mut self.redirect {
            file.flush()?;
        }
        Ok(())
    }

    /// Ends the shell: flushes a `\o` file.
    pub fn finish(&mut self) -> Result<(), Error> {
        if let Some((path, mut file)) = self.redirect.take() {
            file.flush()
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// The names completion offers, read from the session.
    async fn names(&self) -> Names {
        let mut names = Names::default();
        if let Ok(frame) = self
            .session
            .sql(
                "SELECT table_schema, table_name, column_name FROM information_schema.columns \
                 WHERE table_schema <> 'information_schema'",
                WritePolicy::ReadOnly,
            )
            .await
            && let Ok(batches) = frame.collect().await
        {
            for batch in batches {
                let column = |i: usize| {
                    arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8)
                        .map(|a| arrow::array::AsArray::as_string::<i32>(&a).clone())
                };
                if let (Ok(schemas), Ok(tables), Ok(columns)) = (column(0), column(1), column(2)) {
                    for i in 0..batch.num_rows() {
                        let (schema, table) = (schemas.value(i), tables.value(i));
                        let mut written = vec![format!("{schema}.{table}")];
                        // Only the default schema's tables resolve unqualified.
                        if schema == aduana_engine::DEFAULT_SCHEMA {
                            written.push(table.to_string());
                        }
                        for name in written {
                            names.tables.insert(name.clone());
                            names
                                .columns
                                .entry(name)
                                .or_default()
                                .insert(columns.value(i).to_string());
                        }
                    }
                }
            }
        }
        let state = self.session.context().state();
        names
            .functions
            .extend(state.scalar_functions().keys().cloned());
        names
            .functions
            .extend(state.aggregate_functions().keys().cloned());
        names
            .functions
            .extend(state.window_functions().keys().cloned());
        names
            .table_functions
            .extend(state.table_functions().keys().cloned());
        names.reports = aduana_reports::all()
            .iter()
            .map(|r| {
                let params = r.params.iter().map(|p| p.name.clone()).collect();
                (r.name.to_string(), params)
            })
            .collect();
        names
    }
}

/// "(3 rows, 0.012 s)", with the rows not shown when a table was capped.
/// (Time only with `\\timing` on, as in psql; the shell starts with it on.)
fn footer(rows: u64, shown: Option<usize>, elapsed: Option<Duration>) -> String {
    let noun = if rows == 1 { "row" } else { "rows" };
    let mut text = format!("({rows} {noun}");
    if let Some(shown) = shown.filter(|&s| (s as u64) < rows) {
        text.push_str(&format!(
            "; {} not shown: \\maxrows N shows more, \\o FILE saves all",
            rows - shown as u64
        ));
    }
    if let Some(elapsed) = elapsed {
        text.push_str(&format!(", {:.3} s", elapsed.as_secs_f64()));
    }
    text.push(')');
    text
}

/// Runs `work` until it ends or Ctrl-C cancels it (dropping the query's
/// stream stops DataFusion's tasks), with a spinner on standard error
/// after the first half second.
async fn cancellable<T>(work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let done = Arc::new(AtomicBool::new(false));
    let spinner = tokio::spawn(spin(done.clone()));
    let result = tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => Err("query cancelled (Ctrl-C)".into()),
    };
    done.store(true, Ordering::Relaxed);
    let _ = spinner.await;
    result
}

async fn spin(done: Arc<AtomicBool>) {
    const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
    if !std::io::stderr().is_terminal() {
        return;
    }
    let started = Instant::now();
    let mut shown = false;
    let mut frame = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if done.load(Ordering::Relaxed) {
            break;
        }
        if started.elapsed() >= Duration::from_millis(500) {
            frame += 1;
            eprint!(
                "\r{} running {:.1} s (Ctrl-C cancels)",
                FRAMES[frame % FRAMES.len()],
                started.elapsed().as_secs_f64()
            );
            shown = true;
        }
    }
    if shown {
        eprint!("\r\x1b[K");
    }
}

/// Where history is kept: `ADUANA_HISTORY`, else `~/.aduana_history`.
pub fn history_path() -> Option<PathBuf> {
    std::env::var_os("ADUANA_HISTORY")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aduana_history")))
}

/// The prompt of a new statement, and of its further lines (psql's
/// habit: the shell says it is still reading the statement).
const PROMPT: &str = "aduana> ";
const CONTINUATION_PROMPT: &str = "     -> ";

/// The interactive loop, on the caller's thread (the line editor blocks);
/// statements run on `runtime`.
pub fn interactive(mut shell: Shell, runtime: &tokio::runtime::Runtime) -> Result<(), Error> {
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: Editor<SqlHelper, DefaultHistory> = Editor::with_config(config)?;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    editor.set_helper(Some(SqlHelper {
        names: runtime.block_on(shell.names()),
        color,
    }));
    let history = history_path();
    if let Some(path) = history.as_ref().filter(|p| p.exists())
        && let Err(e) = editor.load_history(path)
    {
        eprintln!("warning: history not read from {}: {e}", path.display());
    }
    eprintln!(
        "aduana {} shell on {}. \\? for help, \\q or Ctrl-D to leave; end statements with ;",
        env!("CARGO_PKG_VERSION"),
        shell.session.warehouse().location().display
    );
    // Lines of a statement not yet ended by `;`.
    let mut pending = String::new();
    loop {
        let prompt = if pending.is_empty() {
            PROMPT
        } else {
            CONTINUATION_PROMPT
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if pending.is_empty() && line.trim().is_empty() {
                    continue;
                }
                if !pending.is_empty() {
                    pending.push('\n');
                }
                pending.push_str(&line);
                if !script::is_complete(&pending) {
                    continue;
                }
                let line = std::mem::take(&mut pending);
                editor.add_history_entry(line.as_str())?;
                if let Some(path) = &history
                    && let Err(e) = editor.save_history(path)
                {
                    eprintln!("warning: history not saved to {}: {e}", path.display());
                }
                let mut stdout = std::io::stdout();
                match runtime.block_on(shell.run_script(&line, &mut stdout)) {
                    Ok(Flow::Quit) => break,
                    Ok(Flow::Continue) => {}
                    Err(e) => eprintln!("error: {}", e.to_string().replace('\n', " ")),
                }
                let _ = stdout.flush();
                // A statement may have created a table or view.
                if let Some(helper) = editor.helper_mut() {
                    helper.names = runtime.block_on(shell.names());
                }
            }
            // Ctrl-C drops the statement being typed, all its lines.
            Err(ReadlineError::Interrupted) => pending.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    shell.finish()
}
