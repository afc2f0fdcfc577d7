//! `aduana select`: the items of one day to control under the inspection
//! capacity, published as that day's file of `risk.selections`.
//!
//! The choice itself is `aduana_model::selection` (pure, seeded); this job
//! reads the day's scored items with what the choice needs (the model's
//! probability and expected revenue, AEO status, whether the importer was
//! ever inspected, the reasons), and writes the result in one put: a
//! selection is there whole or not at all. A day's published selection is
//! not replaced unless asked (controls may already be under way), and the
//! same inputs and seed write the same file.

use std::collections::BTreeMap;
use std::sync::Arc;

use aduana_engine::{LEARNED_ARGUMENTS, Session, WritePolicy};
use aduana_model::selection::{Candidate, Chosen, Pick};
pub use aduana_model::selection::{Capacity, Policy, RankBy, Strategy};
use aduana_warehouse::risk::{SELECTIONS_SCHEMA, selection_file};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, StringViewArray,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
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

    let batch = day_items(session, options.day).await?;
    if batch.num_rows() == 0 {
        return Err(RefreshError::NoItems(format!(
            "no declaration items dated {} to select from",
            options.day
        )));
    }
    let text = |name: &str| -> Result<StringArray> {
        let column = batch.column_by_name(name).expect("selected");
        Ok(cast(column, &DataType::Utf8)?.as_string::<i32>().clone())
    };
    let number = |name: &str| -> Result<Float64Array> {
        let column = batch.column_by_name(name).expect("selected");
        Ok(cast(column, &DataType::Float64)?
            .as_primitive::<Float64Type>()
            .clone())
    };
    let ids = text("declaration_id")?;
    let offices = text("office_code")?;
    let importers = text("importer_id")?;
    let reasons = text("reasons")?;
    let items = cast(
        batch.column_by_name("item_no").expect("selected"),
        &DataType::Int64,
    )?;
    let items = items.as_primitive::<Int64Type>();
    let p = number("p")?;
    let revenue = number("revenue")?;
    let flag = |name: &str| -> Result<BooleanArray> {
        let column = batch.column_by_name(name).expect("selected");
        Ok(cast(column, &DataType::Boolean)?.as_boolean().clone())
    };
    let aeo = flag("aeo")?;
    let never = flag("never_inspected")?;
    let by_office = options.by_office || !options.office_capacities.is_empty();
    let value = |a: &Float64Array, i: usize| if a.is_null(i) { f64::NAN } else { a.value(i) };
    let candidates: Vec<Candidate> = (0..batch.num_rows())
        .map(|i| Candidate {
            scope: if by_office && offices.is_valid(i) {
                offices.value(i)
            } else {
                ""
            },
            declaration_id: ids.value(i),
            item_no: items.value(i),
            p_fraud: value(&p, i),
            expected_revenue: value(&revenue, i),
            aeo: aeo.is_valid(i) && aeo.value(i),
            never_inspected: never.is_valid(i) && never.value(i),
        })
        .collect();
    let capacity = |scope: &str| {
        options
            .office_capacities
            .get(scope)
            .copied()
            .unwrap_or(options.capacity)
    };
    let mut picks = aduana_model::selection::select(&candidates, capacity, &options.policy)
        .map_err(RefreshError::BadInput)?;
    picks.sort_by(|a, b| {
        (candidates[a.row].scope, a.lane, a.chosen.name(), a.rank).cmp(&(
            candidates[b.row].scope,
            b.lane,
            b.chosen.name(),
            b.rank,
        ))
    });

    let learned = learned_trees(session).await? > 0;
    let reason = |pick: &Pick| {
        let own = reasons
            .is_valid(pick.row)
            .then(|| reasons.value(pick.row))
            .filter(|r| !r.is_empty());
        let by = match options.policy.rank_by {
            RankBy::Revenue => "expected revenue",
            RankBy::Probability => "probability of fraud",
        };
        match pick.chosen {
            Chosen::Random => format!(
                "random control (seed {}): measures the fraud rate of all items, not the model's picks",
                options.policy.seed
            ),
            Chosen::Novelty => format!(
                "exploration: the importer was never inspected{}",
                own.map(|r| format!("; {r}")).unwrap_or_default()
            ),
            Chosen::Model => format!(
                "ranked {} in its {} lane by {by}{}",
                pick.rank,
                pick.lane.name(),
                own.map(|r| format!("; {r}")).unwrap_or_default()
            ),
        }
    };
    let rows = picks.len();
    let strategy = match options.policy.strategy {
        Strategy::Random => "random",
        Strategy::Novelty => "novelty",
    };
    let take_text = |a: &StringArray| -> ArrayRef {
        Arc::new(StringViewArray::from_iter(
            picks
                .iter()
                .map(|p| a.is_valid(p.row).then(|| a.value(p.row))),
        ))
    };
    let take_number = |a: &Float64Array| -> ArrayRef {
        Arc::new(Float64Array::from_iter(
            picks
                .iter()
                .map(|p| (!a.is_null(p.row)).then(|| a.value(p.row))),
        ))
    };
    let day = Date32Array::from(vec![
        arrow::datatypes::Date32Type::from_naive_date(
            options.day
        );
        rows
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(day),
        take_text(&ids),
        Arc::new(Int32Array::from_iter_values(
            picks.iter().map(|p| items.value(p.row) as i32),
        )),
        take_text(&offices),
        take_text(&importers),
        Arc::new(StringViewArray::from_iter_values(
            picks.iter().map(|p| p.lane.name()),
        )),
        Arc::new(StringViewArray::from_iter_values(
            picks.iter().map(|p| p.chosen.name()),
        )),
        Arc::new(Int64Array::from_iter_values(
            picks.iter().map(|p| p.rank as i64),
        )),
        take_number(&p),
        take_number(&revenue),
        Arc::new(Float64Array::from_iter(
            picks.iter().map(|p| p.design_weight),
        )),
        Arc::new(StringViewArray::from_iter_values(picks.iter().map(reason))),
        Arc::new(StringViewArray::from_iter_values(std::iter::repeat_n(
            model_version.as_str(),
            rows,
        ))),
        Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(
            options.policy.seed as i64,
            rows,
        ))),
        Arc::new(StringViewArray::from_iter_values(std::iter::repeat_n(
            strategy, rows,
        ))),
        Arc::new(Float64Array::from_iter_values(std::iter::repeat_n(
            options.policy.explore,
            rows,
        ))),
    ];
    let selection = RecordBatch::try_new(SELECTIONS_SCHEMA.clone(), columns)?;
    publish(session, &path, &url, &selection).await?;

    let mut counts = BTreeMap::new();
    for pick in &picks {
        *counts
            .entry((pick.lane.name().to_string(), pick.chosen.name().to_string()))
            .or_default() += 1;
    }
    let idle_offices = options
        .office_capacities
        .keys()
        .filter(|office| !candidates.iter().any(|c| c.scope == office.as_str()))
        .cloned()
        .collect();
    Ok(SelectionSummary {
        idle_offices,
        file: url,
        items: candidates.len(),
        selected: rows,
        counts,
        model_version,
        learned,
    })
}

/// Trees of the model's learned part (0: it ranks unsupervised).
async fn learned_trees(session: &Session) -> Result<i64> {
    let batches = session
        .sql(
            "SELECT learned_trees FROM risk_model_info()",
            WritePolicy::ReadOnly,
        )
        .await?
        .collect()
        .await?;
    let column = cast(batches[0].column(0), &DataType::Int64)?;
    Ok(column.as_primitive::<Int64Type>().value(0))
}

/// Refuses to overwrite the published selection at `path` unless
/// `replace` (controls or audits may be under way); its URL.
pub(crate) async fn refuse_published(
    session: &Session,
    path: &object_store::path::Path,
    replace: bool,
    what: &str,
) -> Result<String> {
    let location = session.warehouse().location();
    let url = location.url_of(path, false);
    match location.store.head(path).await {
        Ok(_) if !replace => Err(RefreshError::BadInput(format!(
            "a selection for {what} is already published ({url}); controls may be under way: \
             pass --replace to replace it"
        ))),
        Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(url),
        Err(e) => Err(RefreshError::storage(&url, e)),
    }
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

/// What selection knows of an importer `d.importer_id`: joins and the
/// expressions of its AEO status (from `reference.traders`, when there is
/// one) and of whether it had no inspection before `day`.
pub(crate) struct PartyFacts {
    pub joins: String,
    pub aeo: &'static str,
    pub never_inspected: &'static str,
}

pub(crate) fn party_facts(session: &Session, day: NaiveDate) -> PartyFacts {
    let warehouse = session.warehouse();
    let mut joins = String::new();
    let aeo = if warehouse.table("traders").is_some() {
        joins.push_str(
            "LEFT JOIN (SELECT importer_id, bool_or(aeo) AS aeo FROM reference.traders GROUP BY importer_id) t \
             ON t.importer_id = d.importer_id ",
        );
        "COALESCE(t.aeo, false)"
    } else {
        "false"
    };
    let never_inspected = if warehouse.table("inspections").is_some() {
        joins.push_str(&format!(
            "LEFT JOIN (SELECT DISTINCT x.importer_id FROM inspections i \
             JOIN declarations x ON x.declaration_id = i.declaration_id \
             WHERE i.inspected_on < DATE '{day}') k ON k.importer_id = d.importer_id"
        ));
        "k.importer_id IS NULL"
    } else {
        "true"
    };
    PartyFacts {
        joins,
        aeo,
        never_inspected,
    }
}

/// The day's scored items with what selection needs, one batch.
async fn day_items(session: &Session, day: NaiveDate) -> Result<RecordBatch> {
    let PartyFacts {
        joins,
        aeo,
        never_inspected: never,
    } = party_facts(session, day);
    // Without a learned model, the unsupervised risk is the probability
    // and its product with the revenue at stake the expected revenue.
    let sql = format!(
        "SELECT d.declaration_id, CAST(d.item_no AS BIGINT) AS item_no, d.office_code, d.importer_id,
                COALESCE(d.p_fraud, d.risk) AS p,
                COALESCE(d.revenue_expected, d.risk * d.at_stake) AS revenue,
                {aeo} AS aeo, {never} AS never_inspected,
                array_to_string(array_concat(
                    learned_reasons({learned}),
                    risk_reasons(d.hs_code, d.origin_country, d.export_country, d.customs_value,
                                 d.quantity, d.quantity_unit, d.net_mass_kg, d.declaration_date,
                                 d.description, d.preference_code, d.importer_id)), '; ') AS reasons
         FROM (SELECT * FROM scored_items WHERE declaration_date = DATE '{day}') d
         {joins}
         ORDER BY 1, 2",
        learned = LEARNED_ARGUMENTS
            .split(',')
            .map(|c| format!("d.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let batches = session
        .sql(&sql, WritePolicy::ReadOnly)
        .await?
        .collect()
        .await?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => {
            return Ok(RecordBatch::new_empty(Arc::new(
                arrow::datatypes::Schema::empty(),
            )));
        }
    };
    Ok(concat_batches(&schema, &batches)?)
}
