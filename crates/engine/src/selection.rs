//! One day's controls under the inspection capacity, as rows of
//! `risk.selections`: what `aduana select` publishes and what the SQL table
//! function `selection(day, red [, yellow, explore, strategy, seed,
//! by_office])` answers without publishing.
//!
//! The choice itself is `aduana_model::selection` (pure, seeded); this
//! module reads the day's scored items with what the choice needs (the
//! model's probability and expected revenue, AEO status, whether the
//! importer was ever inspected, the reasons) and turns the picks into rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use aduana_model::selection::{Candidate, Capacity, Chosen, Pick, Policy, RankBy, Strategy};
use aduana_warehouse::Warehouse;
use aduana_warehouse::risk::SELECTIONS_SCHEMA;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, StringViewArray,
};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Float64Type, Int64Type, SchemaRef};
use async_trait::async_trait;
use chrono::NaiveDate;
use datafusion::catalog::{Session as CatalogSession, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

use crate::{EngineError, LEARNED_ARGUMENTS, Result};

/// What to select: the day, each scope's capacity and the policy.
#[derive(Debug, Clone)]
pub struct Request {
    pub day: NaiveDate,
    /// Each scope's capacity: the day's, or each office's with `by_office`.
    pub capacity: Capacity,
    /// Count capacity per office.
    pub by_office: bool,
    /// Offices with their own capacity (implies `by_office`).
    pub office_capacities: BTreeMap<String, Capacity>,
    pub policy: Policy,
}

/// A day's selection, not yet published.
#[derive(Debug)]
pub struct DaySelection {
    /// The rows, in `SELECTIONS_SCHEMA`.
    pub batch: RecordBatch,
    /// Items of the day selection chose from.
    pub items: usize,
    /// Selected per (lane, selected_by).
    pub counts: BTreeMap<(String, String), usize>,
    /// The model had learned from inspections (else the unsupervised risk
    /// ranks).
    pub learned: bool,
    /// Offices given a capacity that declared nothing that day.
    pub idle_offices: Vec<String>,
}

/// Chooses the day's controls with the model `model_version` the queries of
/// `ctx` score with.
pub async fn choose(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    model_version: &str,
    request: &Request,
) -> Result<DaySelection> {
    request
        .policy
        .validate()
        .map_err(EngineError::InvalidOption)?;
    let batch = day_items(ctx, warehouse, request.day).await?;
    let rows = batch.num_rows();
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
    let flag = |name: &str| -> Result<BooleanArray> {
        let column = batch.column_by_name(name).expect("selected");
        Ok(cast(column, &DataType::Boolean)?.as_boolean().clone())
    };
    let (ids, offices, importers) = (
        text("declaration_id")?,
        text("office_code")?,
        text("importer_id")?,
    );
    let (learned_reasons, evidence_reasons) = (text("learned_reasons")?, text("evidence_reasons")?);
    let items = cast(
        batch.column_by_name("item_no").expect("selected"),
        &DataType::Int64,
    )?;
    let items = items.as_primitive::<Int64Type>();
    let (p, revenue) = (number("p")?, number("revenue")?);
    let (evidence_p, evidence_revenue) = (number("evidence_p")?, number("evidence_revenue")?);
    let (aeo, never) = (flag("aeo")?, flag("never_inspected")?);
    let by_office = request.by_office || !request.office_capacities.is_empty();
    let value = |a: &Float64Array, i: usize| if a.is_null(i) { f64::NAN } else { a.value(i) };
    let candidates: Vec<Candidate> = (0..rows)
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
            evidence_p: value(&evidence_p, i),
            evidence_revenue: value(&evidence_revenue, i),
            aeo: aeo.is_valid(i) && aeo.value(i),
            never_inspected: never.is_valid(i) && never.value(i),
        })
        .collect();
    let capacity = |scope: &str| {
        request
            .office_capacities
            .get(scope)
            .copied()
            .unwrap_or(request.capacity)
    };
    let learned = learned_trees(ctx).await? > 0;
    let policy = &exploring_policy(&request.policy, learned);
    let mut picks = aduana_model::selection::select(&candidates, capacity, policy)
        .map_err(EngineError::InvalidOption)?;
    picks.sort_by(|a, b| {
        (candidates[a.row].scope, a.lane, a.chosen.name(), a.rank).cmp(&(
            candidates[b.row].scope,
            b.lane,
            b.chosen.name(),
            b.rank,
        ))
    });

    let reason = |pick: &Pick| {
        let given = |a: &StringArray| -> Option<String> {
            a.is_valid(pick.row)
                .then(|| a.value(pick.row).to_string())
                .filter(|r| !r.is_empty())
        };
        // An evidence pick is there for what the evidence says, not for
        // what the model learned.
        let own = match pick.chosen {
            Chosen::Evidence => given(&evidence_reasons),
            _ => match (given(&learned_reasons), given(&evidence_reasons)) {
                (Some(l), Some(e)) => Some(format!("{l}; {e}")),
                (l, e) => l.or(e),
            },
        };
        let by = match policy.rank_by {
            RankBy::Revenue => "expected revenue",
            RankBy::Probability => "probability of fraud",
        };
        match pick.chosen {
            Chosen::Random => format!(
                "random control (seed {}): measures the fraud rate of all items, not the model's picks",
                policy.seed
            ),
            Chosen::Novelty => format!(
                "exploration: the importer was never inspected{}",
                own.map(|r| format!("; {r}")).unwrap_or_default()
            ),
            Chosen::Proportional => format!(
                "exploration: drawn below the model's picks with probability proportional to its {by} (seed {}){}",
                policy.seed,
                own.map(|r| format!("; {r}")).unwrap_or_default()
            ),
            Chosen::Evidence => format!(
                "exploration: ranked {} in its {} lane by the evidence alone, among the items the model and the draw left ({}){}",
                pick.rank,
                pick.lane.name(),
                match policy.rank_by {
                    RankBy::Revenue => format!(
                        "risk score of price, tariff and origin x revenue at stake: {:.2}",
                        candidates[pick.row].evidence_revenue
                    ),
                    RankBy::Probability => format!(
                        "risk score of price, tariff and origin: {:.3}",
                        candidates[pick.row].evidence_p
                    ),
                },
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
    let selected = picks.len();
    let strategy = policy.strategy.name();
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
    let repeat_text = |v: &str| -> ArrayRef {
        Arc::new(StringViewArray::from_iter_values(std::iter::repeat_n(
            v, selected,
        )))
    };
    let day = arrow::datatypes::Date32Type::from_naive_date(request.day);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(vec![day; selected])),
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
        repeat_text(model_version),
        Arc::new(Int64Array::from_iter_values(std::iter::repeat_n(
            policy.seed as i64,
            selected,
        ))),
        repeat_text(strategy),
        Arc::new(Float64Array::from_iter_values(std::iter::repeat_n(
            policy.explore,
            selected,
        ))),
    ];
    let batch = RecordBatch::try_new(SELECTIONS_SCHEMA.clone(), columns)?;
    let mut counts = BTreeMap::new();
    for pick in &picks {
        *counts
            .entry((pick.lane.name().to_string(), pick.chosen.name().to_string()))
            .or_default() += 1;
    }
    let idle_offices = request
        .office_capacities
        .keys()
        .filter(|office| !candidates.iter().any(|c| c.scope == office.as_str()))
        .cloned()
        .collect();
    Ok(DaySelection {
        batch,
        items: rows,
        counts,
        learned,
        idle_offices,
    })
}

/// The policy selection runs with: without a learned model the evidence
/// is what ranks, so exploring by it would be more of the same ranking;
/// the `evidence` strategy's share is then random.
pub fn exploring_policy(policy: &Policy, learned: bool) -> Policy {
    let mut policy = *policy;
    if !learned && policy.strategy == Strategy::Evidence {
        policy.strategy = Strategy::Random;
    }
    policy
}

/// Trees of the model's learned part (0: it ranks unsupervised).
pub async fn learned_trees(ctx: &SessionContext) -> Result<i64> {
    let batches = ctx
        .sql("SELECT learned_trees FROM risk_model_info()")
        .await?
        .collect()
        .await?;
    let column = cast(batches[0].column(0), &DataType::Int64)?;
    Ok(column.as_primitive::<Int64Type>().value(0))
}

/// What selection knows of an importer `d.importer_id`: joins and the
/// expressions of its AEO status (from `reference.traders`, when there is
/// one) and of whether it had no inspection before `day`.
pub struct PartyFacts {
    pub joins: String,
    pub aeo: &'static str,
    pub never_inspected: &'static str,
}

pub fn party_facts(warehouse: &Warehouse, day: NaiveDate) -> PartyFacts {
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

/// The risk of a `scored_items` row from the evidence alone: risk_score
/// without the learned probability (what the `evidence` strategy explores
/// by, where it disagrees with the model).
pub const EVIDENCE_RISK: &str = "risk_score(value_z, p_wrong_code, origin_score)";

/// The day's scored items with what selection needs, one batch.
async fn day_items(
    ctx: &SessionContext,
    warehouse: &Warehouse,
    day: NaiveDate,
) -> Result<RecordBatch> {
    let PartyFacts {
        joins,
        aeo,
        never_inspected: never,
    } = party_facts(warehouse, day);
    // Without a learned model, the unsupervised risk is the probability
    // and its product with the revenue at stake the expected revenue.
    let sql = format!(
        "SELECT d.declaration_id, CAST(d.item_no AS BIGINT) AS item_no, d.office_code, d.importer_id,
                COALESCE(d.p_fraud, d.risk) AS p,
                COALESCE(d.revenue_expected, d.risk * d.at_stake) AS revenue,
                d.evidence_p, d.evidence_p * d.at_stake AS evidence_revenue,
                {aeo} AS aeo, {never} AS never_inspected,
                array_to_string(learned_reasons({learned}), '; ') AS learned_reasons,
                array_to_string(
                    risk_reasons(d.hs_code, d.origin_country, d.export_country, d.customs_value,
                                 d.quantity, d.quantity_unit, d.net_mass_kg, d.declaration_date,
                                 d.description, d.preference_code, d.importer_id), '; ') AS evidence_reasons
         FROM (SELECT *, {EVIDENCE_RISK} AS evidence_p
               FROM scored_items WHERE declaration_date = DATE '{day}') d
         {joins}
         ORDER BY 1, 2",
        learned = LEARNED_ARGUMENTS
            .split(',')
            .map(|c| format!("d.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let frame = ctx.sql(&sql).await?;
    // The query's own columns even for a day without items.
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    Ok(concat_batches(&schema, &batches)?)
}

/// `selection(day, red [, yellow, explore, strategy, seed, by_office])`:
/// the day's controls as `aduana select` would publish them, computed
/// when the query runs and not published. Defaults as the command's
/// (`Policy::default()`), yellow 0 and one capacity for the whole day.
#[derive(Debug)]
pub struct SelectionFunction {
    warehouse: Warehouse,
    model_version: String,
}

impl SelectionFunction {
    pub fn new(warehouse: Warehouse, model_version: String) -> Self {
        SelectionFunction {
            warehouse,
            model_version,
        }
    }
}

/// The arguments of `selection`, by position.
const ARGUMENTS: [&str; 7] = [
    "day",
    "red",
    "yellow",
    "explore",
    "strategy",
    "seed",
    "by_office",
];

impl TableFunctionImpl for SelectionFunction {
    fn call(&self, args: &[Expr]) -> datafusion::common::Result<Arc<dyn TableProvider>> {
        let usage = "selection(day, red [, yellow, explore, strategy, seed, by_office]), e.g. \
                     selection('2026-08-04', 40, 60, 0.1, 'random')";
        if args.len() < 2 || args.len() > ARGUMENTS.len() {
            return plan_err!("{usage}: {} argument(s) given", args.len());
        }
        let mut values = Vec::with_capacity(args.len());
        for (expr, name) in args.iter().zip(ARGUMENTS) {
            match expr {
                Expr::Literal(value, _) if !value.is_null() => values.push(value.clone()),
                other => {
                    return plan_err!(
                        "selection argument {name}: give a literal value, not {other}"
                    );
                }
            }
        }
        let text = |v: &ScalarValue| match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => s.clone(),
            other => other.to_string(),
        };
        let number = |i: usize| -> datafusion::common::Result<Option<f64>> {
            match values.get(i) {
                None => Ok(None),
                Some(v) => match text(v).trim().parse::<f64>() {
                    Ok(n) if n.is_finite() => Ok(Some(n)),
                    _ => plan_err!(
                        "selection argument {}: '{}' is not a number",
                        ARGUMENTS[i],
                        v
                    ),
                },
            }
        };
        let count = |i: usize| -> datafusion::common::Result<usize> {
            match number(i)? {
                None => Ok(0),
                Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 1e9 => Ok(n as usize),
                Some(n) => plan_err!(
                    "selection argument {}: {n} is not a whole number of controls",
                    ARGUMENTS[i]
                ),
            }
        };
        let day_text = text(&values[0]);
        let day = match NaiveDate::parse_from_str(day_text.trim(), "%Y-%m-%d") {
            Ok(day) => day,
            Err(_) => {
                return plan_err!("selection argument day: '{day_text}' is not a date YYYY-MM-DD");
            }
        };
        let strategy = match values.get(4).map(text) {
            None => Strategy::Random,
            Some(name) => match Strategy::parse(&name) {
                Ok(strategy) => strategy,
                Err(message) => return plan_err!("selection argument strategy: {message}"),
            },
        };
        let seed = match number(5)? {
            None => 0,
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n < 9.0e15 => n as u64,
            Some(n) => return plan_err!("selection argument seed: {n} is not a whole number"),
        };
        let by_office = match values.get(6) {
            None => false,
            Some(ScalarValue::Boolean(Some(b))) => *b,
            Some(other) => match text(other).to_ascii_lowercase().as_str() {
                "office" | "true" => true,
                "false" => false,
                v => return plan_err!("selection argument by_office: '{v}' is not true or false"),
            },
        };
        let defaults = Policy::default();
        let explore = number(3)?.unwrap_or(defaults.explore);
        let policy = Policy {
            explore,
            strategy,
            // The random share an informed strategy keeps, within a smaller
            // exploration.
            min_random: defaults.min_random.min(explore),
            seed,
            ..defaults
        };
        if let Err(message) = policy.validate() {
            return plan_err!("selection: {message}");
        }
        Ok(Arc::new(SelectionTable {
            warehouse: self.warehouse.clone(),
            model_version: self.model_version.clone(),
            request: Request {
                day,
                capacity: Capacity {
                    red: count(1)?,
                    yellow: count(2)?,
                },
                by_office,
                office_capacities: BTreeMap::new(),
                policy,
            },
        }))
    }
}

/// A day's selection, chosen when scanned.
#[derive(Debug)]
struct SelectionTable {
    warehouse: Warehouse,
    model_version: String,
    request: Request,
}

#[async_trait]
impl TableProvider for SelectionTable {
    fn schema(&self) -> SchemaRef {
        SELECTIONS_SCHEMA.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn CatalogSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let Some(state) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("selection needs an Aduana session");
        };
        let ctx = SessionContext::new_with_state(state.clone());
        let chosen = choose(&ctx, &self.warehouse, &self.model_version, &self.request)
            .await
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![chosen.batch]],
            self.schema(),
            projection.cloned(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_learned_model_the_evidence_share_is_random() {
        let evidence = Policy {
            strategy: Strategy::Evidence,
            ..Policy::default()
        };
        assert_eq!(
            exploring_policy(&evidence, false).strategy,
            Strategy::Random
        );
        assert_eq!(
            exploring_policy(&evidence, true).strategy,
            Strategy::Evidence
        );
        // Other strategies do not depend on the ranking's source.
        for strategy in [Strategy::Novelty, Strategy::Proportional, Strategy::Random] {
            let policy = Policy {
                strategy,
                ..Policy::default()
            };
            assert_eq!(exploring_policy(&policy, false).strategy, strategy);
        }
    }
}
