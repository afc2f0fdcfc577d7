//! `aduana audits`: the blue lane. The importers to audit after clearance
//! in a month, under the audit capacity: most by the expected revenue at
//! risk of their items over the 12 months before, a share explored (random
//! importers, or importers never inspected), AEO traders at a lower weight,
//! by the same seeded choice as the day's controls
//! (`aduana_model::selection`). Published as that month's file of
//! `risk.audit_selections`, written whole, kept unless replaced.

use std::sync::Arc;

use aduana_engine::{Session, WritePolicy};
use aduana_model::selection::{Candidate, Capacity, Chosen, Policy};
use aduana_warehouse::risk::{AUDIT_SELECTIONS_SCHEMA, audit_selection_file};
use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringViewArray,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use chrono::{Datelike, Months, NaiveDate};

use crate::error::{RefreshError, Result};
use crate::selection::{nothing_to_control, publish, refuse_published};
use aduana_engine::selection::{
    EVIDENCE_RISK, PartyFacts, exploring_policy, learned_trees, party_facts,
};

/// Months of declarations an importer is judged on.
pub const AUDIT_HISTORY_MONTHS: u32 = 12;

#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// First day of the month the audits are for.
    pub month: NaiveDate,
    /// Audits available that month.
    pub capacity: usize,
    pub policy: Policy,
    pub replace: bool,
}

#[derive(Debug, Clone)]
pub struct AuditSummary {
    pub file: String,
    pub importers: usize,
    pub selected: usize,
    pub random: usize,
    /// Chosen by the informed exploration (novelty, proportional or
    /// evidence).
    pub explored: usize,
    pub model_version: String,
}

/// Selects the month's audits and publishes them.
pub async fn select_audits(session: &Session, options: &AuditOptions) -> Result<AuditSummary> {
    options.policy.validate().map_err(RefreshError::BadInput)?;
    if options.capacity == 0 {
        return Err(nothing_to_control("audits", "month"));
    }
    let Some(model_version) = session.model_version() else {
        return Err(RefreshError::BadInput(
            "audit selection ranks importers by the risk model, and this warehouse has none: \
             run `aduana model build` (or `aduana refresh`) first"
                .into(),
        ));
    };
    let month = options.month;
    let label = format!("{}-{:02}", month.year(), month.month());
    let path = session.warehouse().location().child(&audit_selection_file(
        "",
        month.year(),
        month.month(),
    ));
    let url = refuse_published(session, &path, options.replace, &label).await?;
    let since = month - Months::new(AUDIT_HISTORY_MONTHS);
    let PartyFacts {
        joins,
        aeo,
        never_inspected,
    } = party_facts(session.warehouse(), month);
    let sql = format!(
        "SELECT d.importer_id, COUNT(*) AS items,
                -- An exact sum (floating sums added in parallel differ in
                -- their last bits run to run): the same month selects the same.
                CAST(SUM(CAST(COALESCE(d.revenue_expected, d.risk * d.at_stake) AS DECIMAL(38, 6))) AS DOUBLE) AS revenue,
                MAX(COALESCE(d.p_fraud, d.risk)) AS p,
                bool_or({aeo}) AS aeo, bool_and({never_inspected}) AS never_inspected,
                CAST(SUM(CAST(d.evidence_p * d.at_stake AS DECIMAL(38, 6))) AS DOUBLE) AS evidence_revenue,
                MAX(d.evidence_p) AS evidence_p
         FROM (SELECT *, {EVIDENCE_RISK} AS evidence_p FROM scored_items
               WHERE declaration_date >= DATE '{since}' AND declaration_date < DATE '{month}') d
         {joins}
         GROUP BY d.importer_id ORDER BY 1"
    );
    let batches = session
        .sql(&sql, WritePolicy::ReadOnly)
        .await?
        .collect()
        .await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows == 0 {
        return Err(RefreshError::NoItems(format!(
            "no declarations in the {AUDIT_HISTORY_MONTHS} months before {label} to judge importers on"
        )));
    }
    let batch = concat_batches(&batches[0].schema(), &batches)?;
    let column = |i: usize, t: &DataType| cast(batch.column(i), t);
    let importers = column(0, &DataType::Utf8)?;
    let importers = importers.as_string::<i32>();
    let items = column(1, &DataType::Int64)?;
    let items = items.as_primitive::<Int64Type>();
    let revenue = column(2, &DataType::Float64)?;
    let revenue = revenue.as_primitive::<Float64Type>();
    let p = column(3, &DataType::Float64)?;
    let p = p.as_primitive::<Float64Type>();
    let flag = |i: usize| -> Result<arrow::array::BooleanArray> {
        Ok(column(i, &DataType::Boolean)?.as_boolean().clone())
    };
    let (aeo, never) = (flag(4)?, flag(5)?);
    let evidence_revenue = column(6, &DataType::Float64)?;
    let evidence_revenue = evidence_revenue.as_primitive::<Float64Type>();
    let evidence_p = column(7, &DataType::Float64)?;
    let evidence_p = evidence_p.as_primitive::<Float64Type>();
    let value = |a: &Float64Array, i: usize| if a.is_null(i) { f64::NAN } else { a.value(i) };
    let candidates: Vec<Candidate> = (0..rows)
        .map(|i| Candidate {
            scope: "",
            declaration_id: importers.value(i),
            item_no: 0,
            p_fraud: value(p, i),
            expected_revenue: value(revenue, i),
            evidence_p: value(evidence_p, i),
            evidence_revenue: value(evidence_revenue, i),
            aeo: aeo.is_valid(i) && aeo.value(i),
            never_inspected: never.is_valid(i) && never.value(i),
        })
        .collect();
    // Audits are one lane: the kernel's first.
    let capacity = Capacity {
        red: options.capacity,
        yellow: 0,
    };
    let learned = learned_trees(session.context()).await? > 0;
    let policy = &exploring_policy(&options.policy, learned);
    let mut picks = aduana_model::selection::select(&candidates, |_| capacity, policy)
        .map_err(RefreshError::BadInput)?;
    picks.sort_by(|a, b| (a.chosen.name(), a.rank).cmp(&(b.chosen.name(), b.rank)));

    let reason = |pick: &aduana_model::selection::Pick| match pick.chosen {
        Chosen::Model => match policy.rank_by {
            aduana_model::selection::RankBy::Revenue => format!(
                "ranked {} of {rows} importers by the expected revenue of their items \
                 (the learned model's probability x revenue; risk score x revenue at \
                 risk without one) over the {AUDIT_HISTORY_MONTHS} months before ({:.2})",
                pick.rank,
                value(revenue, pick.row)
            ),
            aduana_model::selection::RankBy::Probability => format!(
                "ranked {} of {rows} importers by the highest fraud probability of their items \
                 over the {AUDIT_HISTORY_MONTHS} months before ({:.3})",
                pick.rank,
                value(p, pick.row)
            ),
        },
        Chosen::Random => format!(
            "random audit (seed {}): measures compliance of all importers, not the model's picks",
            policy.seed
        ),
        Chosen::Novelty => "exploration: the importer was never inspected".to_string(),
        Chosen::Proportional => format!(
            "exploration: drawn below the model's picks with probability proportional to its \
             expected revenue at risk (seed {})",
            policy.seed
        ),
        Chosen::Evidence => {
            let (what, v) = match policy.rank_by {
                aduana_model::selection::RankBy::Revenue => (
                    "the risk score of price, tariff and origin x revenue at stake, summed over its items",
                    value(evidence_revenue, pick.row),
                ),
                aduana_model::selection::RankBy::Probability => (
                    "the highest risk score of price, tariff and origin of its items",
                    value(evidence_p, pick.row),
                ),
            };
            let aeo = if aeo.is_valid(pick.row) && aeo.value(pick.row) && policy.aeo_factor < 1.0 {
                format!(", counted at {} as an AEO", policy.aeo_factor)
            } else {
                String::new()
            };
            format!(
                "exploration: ranked {} by the evidence alone among the importers the model and the \
                 draw left, over the {AUDIT_HISTORY_MONTHS} months before ({what}: {v:.2}{aeo})",
                pick.rank
            )
        }
    };
    let n = picks.len();
    let strategy = policy.strategy.name();
    let texts =
        |values: Vec<String>| Arc::new(StringViewArray::from_iter_values(values)) as ArrayRef;
    let columns: Vec<ArrayRef> = vec![
        texts(vec![label.clone(); n]),
        texts(
            picks
                .iter()
                .map(|p| importers.value(p.row).to_string())
                .collect(),
        ),
        texts(vec!["blue".into(); n]),
        texts(picks.iter().map(|p| p.chosen.name().to_string()).collect()),
        Arc::new(Int64Array::from_iter_values(
            picks.iter().map(|p| p.rank as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            picks.iter().map(|p| items.value(p.row)),
        )),
        Arc::new(Float64Array::from_iter(picks.iter().map(|p| {
            (!revenue.is_null(p.row)).then(|| revenue.value(p.row))
        }))),
        Arc::new(Float64Array::from_iter(
            picks.iter().map(|p| p.design_weight),
        )),
        texts(picks.iter().map(reason).collect()),
        texts(vec![model_version.clone(); n]),
        Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(
            policy.seed as i64,
            n,
        ))),
        texts(vec![strategy.to_string(); n]),
        Arc::new(Float64Array::from_iter_values(std::iter::repeat_n(
            policy.explore,
            n,
        ))),
    ];
    let selection = RecordBatch::try_new(AUDIT_SELECTIONS_SCHEMA.clone(), columns)?;
    publish(session, &path, &url, &selection).await?;
    let count = |c: Chosen| picks.iter().filter(|p| p.chosen == c).count();
    Ok(AuditSummary {
        file: url,
        importers: rows,
        selected: n,
        random: count(Chosen::Random),
        explored: picks
            .iter()
            .filter(|p| p.chosen.is_informed_exploration())
            .count(),
        model_version,
    })
}
