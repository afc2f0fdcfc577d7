//! The named reports behind the pages, run read-only and cached.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aduana_engine::{EngineError, Session, WritePolicy};
use arrow::array::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use http::StatusCode;
use tokio::sync::OnceCell;

use crate::html::Table;

/// Results kept at most; past it the cache starts over (a result is a few
/// hundred rows, the trader list a few tens of thousands).
const CACHED_RESULTS: usize = 512;

/// Why a page or a panel could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The request is at fault (a malformed HS code, a bad parameter).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing to show for what was asked (an importer with no
    /// declarations).
    #[error("{0}")]
    NotFound(String),
    /// The query failed.
    #[error("report {report}: {message}")]
    Query { report: String, message: String },
}

impl PageError {
    /// Report `report` failed with `error`.
    pub fn query(report: &str, error: impl std::fmt::Display) -> PageError {
        PageError::Query {
            report: report.into(),
            message: error.to_string(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Query { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub struct Data {
    session: Arc<Session>,
    /// One cell per report and parameters: concurrent requests for the
    /// same result wait for one computation (the start-up warm-up and the
    /// first visitor do not both run the overview). A failure is not kept.
    cache: Mutex<HashMap<String, Arc<OnceCell<Arc<Table>>>>>,
    /// Filters and sorts of cached results run here, in-process, whatever
    /// the session runs on (a cluster would only add round trips).
    local: SessionContext,
    /// HS descriptions by code, read once.
    nomenclature: OnceCell<Option<Arc<HashMap<String, String>>>>,
}

impl Data {
    pub fn new(session: Arc<Session>) -> Data {
        Data {
            session,
            cache: Mutex::new(HashMap::new()),
            local: SessionContext::new(),
            nomenclature: OnceCell::new(),
        }
    }

    /// How money is labelled: the warehouse's configured currency code
    /// (`currency` in `aduana.toml`), else "national currency".
    pub fn currency(&self) -> &str {
        self.session.warehouse().config().currency_label()
    }

    /// The named report `name` with `params`, planned read-only, as a
    /// frame to refine (filter, sort) or to write out. The future owns
    /// its arguments, so callers can join several.
    pub fn frame<'a>(
        &'a self,
        name: &str,
        params: &[(&str, String)],
    ) -> impl Future<Output = Result<DataFrame, PageError>> + use<'a> {
        let (name, given) = owned(name, params);
        async move { self.plan(&name, given).await }
    }

    async fn plan(&self, name: &str, given: Vec<(String, String)>) -> Result<DataFrame, PageError> {
        self.session
            .report(name, &given)
            .await
            .map_err(|e| match e {
                // A parameter from the address bar that does not fit.
                EngineError::InvalidOption(message)
                    if message.starts_with(&format!("report {name}:")) =>
                {
                    PageError::BadRequest(message)
                }
                other => PageError::query(name, other),
            })
    }

    /// The report's rows, from the cache when it ran before.
    pub fn report<'a>(
        &'a self,
        name: &str,
        params: &[(&str, String)],
    ) -> impl Future<Output = Result<Arc<Table>, PageError>> + use<'a> {
        let key = cache_key(name, params);
        let (name, given) = owned(name, params);
        async move {
            let cell = {
                let mut cache = self.cache.lock().unwrap();
                if cache.len() >= CACHED_RESULTS && !cache.contains_key(&key) {
                    cache.clear();
                }
                cache.entry(key).or_default().clone()
            };
            cell.get_or_try_init(|| async {
                let frame = self.plan(&name, given).await?;
                Ok(Arc::new(collect(&name, frame).await?))
            })
            .await
            .cloned()
        }
    }

    /// Each importer's name, AEO status and sector from
    /// `reference.traders` (one row per importer, keyed `directory_id`),
    /// cached; `None` when the warehouse has no such table.
    pub async fn directory(&self) -> Result<Option<Arc<Table>>, PageError> {
        const SOURCE: &str = "reference.traders";
        if self.session.warehouse().table("traders").is_none() {
            return Ok(None);
        }
        let cell = {
            let mut cache = self.cache.lock().unwrap();
            cache.entry("\u{1f}directory".into()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            let frame = self
                .session
                .sql(
                    "SELECT importer_id AS directory_id, MIN(name) AS name, bool_or(aeo) AS aeo, \
                            MIN(sector) AS sector \
                     FROM reference.traders WHERE importer_id IS NOT NULL GROUP BY importer_id",
                    WritePolicy::ReadOnly,
                )
                .await
                .map_err(|e| PageError::query(SOURCE, e))?;
            Ok(Arc::new(collect(SOURCE, frame).await?))
        })
        .await
        .cloned()
        .map(Some)
    }

    /// The HS nomenclature's descriptions by code (chapters, headings and
    /// subheadings: 2, 4 and 6 digits) from `reference.hs_nomenclature`,
    /// read once; `None` when the warehouse has no such table.
    pub async fn nomenclature(&self) -> Result<Option<Arc<HashMap<String, String>>>, PageError> {
        const SOURCE: &str = "reference.hs_nomenclature";
        if self.session.warehouse().table("hs_nomenclature").is_none() {
            return Ok(None);
        }
        self.nomenclature
            .get_or_try_init(|| async {
                let frame = self
                    .session
                    .sql(
                        "SELECT hs_code, MIN(description) AS description \
                         FROM reference.hs_nomenclature \
                         WHERE hs_code IS NOT NULL AND description IS NOT NULL GROUP BY hs_code",
                        WritePolicy::ReadOnly,
                    )
                    .await
                    .map_err(|e| PageError::query(SOURCE, e))?;
                let t = collect(SOURCE, frame).await?;
                let names = t.texts("hs_code").into_iter().zip(t.texts("description"));
                Ok(Some(Arc::new(names.collect())))
            })
            .await
            .cloned()
    }

    /// `t` with the HS description of its `column`'s codes beside it (see
    /// [`Table::with_hs_descriptions`]); `t` as it is when the warehouse
    /// has no nomenclature.
    pub async fn describe(&self, t: &Table, column: &str) -> Result<Table, PageError> {
        Ok(match self.nomenclature().await? {
            Some(names) => t.with_hs_descriptions(column, &names),
            None => t.clone(),
        })
    }

    /// `table` as a frame again (for a filter or a sort over a cached
    /// result).
    pub fn frame_of(&self, table: &Table) -> Result<DataFrame, DataFusionError> {
        let rows = MemTable::try_new(table.schema.clone(), vec![table.batches.clone()])?;
        self.local.read_table(Arc::new(rows))
    }
}

pub async fn collect(name: &str, frame: DataFrame) -> Result<Table, PageError> {
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches: Vec<RecordBatch> = frame
        .collect()
        .await
        .map_err(|e| PageError::query(name, e))?;
    Ok(Table { schema, batches })
}

fn owned(name: &str, params: &[(&str, String)]) -> (String, Vec<(String, String)>) {
    let given = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    (name.to_string(), given)
}

fn cache_key(name: &str, params: &[(&str, String)]) -> String {
    let mut key = name.to_string();
    for (k, v) in params {
        key.push('\u{1f}');
        key.push_str(k);
        key.push('=');
        key.push_str(v);
    }
    key
}
