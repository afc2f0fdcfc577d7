//! `aduana select`: the items of one day to control under the inspection
//! capacity, published as that day's file of `risk.selections`.
//!
//! The choice is `aduana_engine::selection` (the same the SQL table
//! function `selection(...)` answers); this job writes it in one put: a
//! selection is there whole or not at all. A day's published selection is
//! not replaced unless asked (controls may already be under way), and the
//! same inputs and seed write the same file.

use std::collections::BTreeMap;

use aduana_engine::selection::{Request, choose};
use aduana_engine::{EngineError, Session};
pub use aduana_model::selection::{Capacity, Policy, RankBy, Strategy};
use aduana_warehouse::risk::selection_file;
use arrow::array::RecordBatch;
use chrono::NaiveDate;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;

use crate::error::{RefreshError, Result};

/// What to select and under which capacities.
#[derive(Debug, Clone)]
pub struct SelectOptions {
    pub day: NaiveDate,
    /// Each scope's capacity: the day's, or each office's with `by_office`.
    pub capacity: Capacity,
    /// Count capacity per office.
    pub by_office: bool,
    /// Offices with their own capacity (implies `by_office`).
    pub office_capacities: BTreeMap<String, Capacity>,
    pub policy: Policy,
    /// Replace the day's published selection.
    pub replace: bool,
}

/// What a selection published.
#[derive(Debug, Clone)]
pub struct SelectionSummary {
    /// The file, as a URL.
    pub file: String,
    pub items: usize,
    pub selected: usize,
    /// Selected per (lane, selected_by).
    pub counts: BTreeMap<(String, String), usize>,
    pub model_version: String,
    /// The model had learned from inspections (else the unsupervised risk
    /// ranks).
    pub learned: bool,
    /// Offices given a capacity that declared nothing that day (a typo in
    /// the capacities file shows here).
    pub idle_offices: Vec<String>,
}

/// Selects the day's controls and publishes them.
pub async fn select(session: &Session, options: &SelectOptions) -> Result<SelectionSummary> {
    options.policy.validate().map_err(RefreshError::BadInput)?;
    let total = |c: &Capacity| c.red.saturating_add(c.yellow);
    if total(&options.capacity) == 0 && options.office_capacities.values().all(|c| total(c) == 0) {
        return Err(nothing_to_control("controls", "day"));
    }
    let Some(model_version) = session.model_version() else {
        return Err(RefreshError::BadInput(
            "selection ranks items by the risk model, and this warehouse has none: \
             run `aduana model build` (or `aduana refresh`) first"
                .into(),
        ));
    };
    let location = session.warehouse().location();
    let path = location.child(&selection_file("", options.day));
    let url = refuse_published(session, &path, options.replace, &options.day.to_string()).await?;
    let request = Request {
        day: options.day,
        capacity: options.capacity,
        by_office: options.by_office,
        office_capacities: options.office_capacities.clone(),
        policy: options.policy,
    };
    let chosen = choose(
        session.context(),
        session.warehouse(),
        &model_version,
        &request,
    )
    .await
    .map_err(|e| match e {
        EngineError::InvalidOption(message) => RefreshError::BadInput(message),
        other => other.into(),
    })?;
    if chosen.items == 0 {
        return Err(RefreshError::NoItems(format!(
            "no declaration items dated {} to select from",
            options.day
        )));
    }
    publish(session, &path, &url, &chosen.batch).await?;
    Ok(SelectionSummary {
        idle_offices: chosen.idle_offices,
        file: url,
        items: chosen.items,
        selected: chosen.batch.num_rows(),
        counts: chosen.counts,
        model_version,
        learned: chosen.learned,
    })
}

/// The days of `days` whose selection is already published, so that a
/// range of days can be refused whole before any of it is written (rather
/// than stop half-way with its first days published).
pub async fn published_days(
    session: &Session,
    days: impl IntoIterator<Item = NaiveDate>,
) -> Result<Vec<NaiveDate>> {
    let location = session.warehouse().location();
    let mut published = Vec::new();
    for day in days {
        if is_published(session, &location.child(&selection_file("", day))).await? {
            published.push(day);
        }
    }
    Ok(published)
}

/// A capacity of nothing, refused: published, an empty selection would
/// hold its `period` against a real one until `--replace`.
pub(crate) fn nothing_to_control(what: &str, period: &str) -> RefreshError {
    RefreshError::BadInput(format!(
        "a capacity of 0 {what} selects nothing (published, it would hold the {period} against \
         a real selection): give it some {what}"
    ))
}

/// Whether a selection file is published at `path`.
async fn is_published(session: &Session, path: &object_store::path::Path) -> Result<bool> {
    let location = session.warehouse().location();
    match location.store.head(path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(RefreshError::storage(&location.url_of(path, false), e)),
    }
}

/// Refuses to overwrite the published selection at `path` unless
/// `replace` (controls or audits may be under way); its URL.
pub(crate) async fn refuse_published(
    session: &Session,
    path: &object_store::path::Path,
    replace: bool,
    what: &str,
) -> Result<String> {
    let url = session.warehouse().location().url_of(path, false);
    if !replace && is_published(session, path).await? {
        return Err(RefreshError::BadInput(format!(
            "a selection for {what} is already published ({url}); controls may be under way: \
             pass --replace to replace it"
        )));
    }
    Ok(url)
}

/// Writes `batch` as one Parquet file at `path` in one put: the selection
/// is there whole or not at all.
pub(crate) async fn publish(
    session: &Session,
    path: &object_store::path::Path,
    url: &str,
    batch: &RecordBatch,
) -> Result<()> {
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None)?;
    writer.write(batch)?;
    writer.close()?;
    session
        .warehouse()
        .location()
        .store
        .put(path, PutPayload::from(bytes))
        .await
        .map_err(|e| RefreshError::storage(url, e))?;
    Ok(())
}
