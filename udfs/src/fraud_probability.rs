//! `fraud_probability(...)` and `expected_revenue(...)`: the learned
//! model's two heads (see `aduana_model::learned`), over whole batches;
//! `learned_scores(...)`, both from one pass (the features and the fraud
//! trees computed once), which the `scored_items` view uses.
//! The arguments are the unsupervised evidence and the item's fields, in
//! the order of `aduana_model::learned::features::COLUMNS`; the
//! `scored_items` view passes them.

use std::sync::{Arc, LazyLock};

use aduana_model::learned::features::{COLUMNS, ItemColumns, Number, is_text};
use datafusion::arrow::array::{ArrayRef, ListBuilder, StringBuilder, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, Fields};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::DOC_SECTION;
use crate::kernel::{arg_arrays, finish, float_result};
use crate::model_handle::ModelHandle;

/// Which head a function gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Head {
    /// Probability that an inspection finds fraud.
    Probability,
    /// Probability × revenue recovered when found.
    ExpectedRevenue,
    /// The strongest contributions, as sentences.
    Reasons,
    /// Probability and expected revenue, as a struct, from one pass.
    Scores,
}

/// The fields of `learned_scores(...)`: the names of the `scored_items`
/// columns they become.
pub const SCORE_FIELDS: [&str; 2] = ["p_fraud", "revenue_expected"];

fn score_fields() -> Fields {
    Fields::from(
        SCORE_FIELDS
            .iter()
            .map(|name| Field::new(*name, DataType::Float64, true))
            .collect::<Vec<_>>(),
    )
}

fn scores_type() -> DataType {
    DataType::Struct(score_fields())
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FraudProbabilityFunc {
    signature: Signature,
    head: Head,
    pub model: ModelHandle,
}

impl FraudProbabilityFunc {
    pub fn new(model: ModelHandle, head: Head) -> Self {
        // User-defined coercion, not `Signature::coercible`: DataFusion
        // lists a coercible signature's example argument types in
        // `information_schema.routines` as the product over its arguments,
        // which for 18 arguments is billions of rows (it ran out of
        // memory). Our own `coerce_types` does the same casts.
        FraudProbabilityFunc {
            signature: Signature::user_defined(Volatility::Immutable),
            head,
            model,
        }
    }
}

/// Texts stay as they are (any string encoding, or NULL as Utf8View);
/// numbers become Float64. Anything else names the argument at fault.
fn coerce(name: &str, arg_types: &[DataType]) -> Result<Vec<DataType>> {
    if arg_types.len() != COLUMNS.len() {
        return plan_err!(
            "{name} takes {} arguments ({}), got {}",
            COLUMNS.len(),
            arguments_text(),
            arg_types.len()
        );
    }
    arg_types
        .iter()
        .enumerate()
        .map(|(i, t)| match (is_text(i), t) {
            (_, DataType::Null) if is_text(i) => Ok(DataType::Utf8View),
            (_, DataType::Null) => Ok(DataType::Float64),
            (true, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => Ok(t.clone()),
            (false, t) if t.is_numeric() => Ok(DataType::Float64),
            _ => plan_err!(
                "{name}: argument {} ({}) must be {}, not {t}",
                i + 1,
                COLUMNS[i],
                if is_text(i) { "text" } else { "a number" }
            ),
        })
        .collect()
}

fn arguments_text() -> String {
    COLUMNS.join(", ")
}

static PROBABILITY_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The probability that an inspection of the item finds fraud, learned by the risk model \
         from the warehouse's inspection outcomes (gradient-boosted trees over the unsupervised \
         evidence, the item's fields and the inspection record of its importer, declarant, \
         supplier, product, countries and office). NULL when the model has no learned part \
         (its window had too few labelled frauds: see risk_model_info()). The scored_items view \
         passes the arguments.",
        format!("fraud_probability({})", arguments_text()),
    )
    .with_argument("valuation_deviation ... revenue_at_risk", "The item's unsupervised evidence: the four risk functions' values.")
    .with_argument("hs_code ... duty_rate", "The declaration item's columns of the same names.")
    .with_sql_example(
        "```sql\n> SELECT declaration_id, item_no, p_fraud FROM scored_items ORDER BY p_fraud DESC LIMIT 3;\n```",
    )
    .with_related_udf("expected_revenue")
    .with_related_udf("risk_score")
    .build()
});

static REVENUE_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Expected revenue recovered by inspecting the item: fraud_probability(...) times the \
         revenue the learned model expects an inspection to recover when it finds fraud (or the \
         item's revenue_at_risk when the inspections recorded too few revenues); with fewer \
         than 300 labelled frauds the probability is blended with the evidence as risk_score \
         blends them by that count. NULL without a learned model.",
        format!("expected_revenue({})", arguments_text()),
    )
    .with_argument("valuation_deviation ... duty_rate", "As for fraud_probability.")
    .with_sql_example(
        "```sql\n> SELECT importer_id, SUM(revenue_expected) FROM scored_items GROUP BY importer_id ORDER BY 2 DESC LIMIT 5;\n```",
    )
    .with_related_udf("fraud_probability")
    .build()
});

static REASONS_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "The learned model's reasons for an item: its strongest contributions to \
         fraud_probability(...) as sentences an auditor can check against the inspection record, \
         e.g. 'learned from inspections: the declarant: fraud found in 12 of 40 past inspections \
         (30%, 14.3 times the usual 2.1%)'. At most three; an empty list when nothing raised the \
         probability much or the model has no learned part.",
        format!("learned_reasons({})", arguments_text()),
    )
    .with_argument("valuation_deviation ... duty_rate", "As for fraud_probability.")
    .with_sql_example(
        "```sql\n> SELECT declaration_id, learned_reasons(value_z, p_wrong_code, origin_score, at_stake, hs_code, origin_country, export_country, office_code, importer_id, declarant_id, supplier_id, regime, transport_mode, preference_code, customs_value, net_mass_kg, quantity, duty_rate) FROM scored_items ORDER BY risk DESC LIMIT 1;\n```",
    )
    .with_related_udf("risk_reasons")
    .build()
});

static SCORES_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "fraud_probability(...) and expected_revenue(...) together, as a struct with the fields \
         p_fraud and revenue_expected, computed in one pass over the batch (the features and \
         the fraud trees once instead of once per function). The scored_items view uses it; \
         NULL fields without a learned model.",
        format!("learned_scores({})", arguments_text()),
    )
    .with_argument(
        "valuation_deviation ... duty_rate",
        "As for fraud_probability.",
    )
    .with_sql_example("```sql\n> SELECT p_fraud, revenue_expected FROM scored_items LIMIT 3;\n```")
    .with_related_udf("fraud_probability")
    .with_related_udf("expected_revenue")
    .build()
});

fn reasons_type() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

impl ScalarUDFImpl for FraudProbabilityFunc {
    fn name(&self) -> &str {
        match self.head {
            Head::Probability => "fraud_probability",
            Head::ExpectedRevenue => "expected_revenue",
            Head::Reasons => "learned_reasons",
            Head::Scores => "learned_scores",
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce(self.name(), arg_types)
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.model.return_type(match self.head {
            Head::Reasons => reasons_type(),
            Head::Scores => scores_type(),
            _ => DataType::Float64,
        })
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = self.model.require()?;
        let (rows, arrays) = arg_arrays(&args.args, args.number_rows)?;
        let items = match ItemColumns::from_arrays(&arrays) {
            Ok(items) => items,
            Err(e) => return exec_err!("{}: {e}", self.name()),
        };
        if self.head == Head::Reasons {
            // No learned model: no learned reasons (the unsupervised ones
            // are risk_reasons').
            let sentences = match &model.learned {
                Some(learned) => learned.reasons(&items),
                None => vec![Vec::new(); rows],
            };
            let mut out = ListBuilder::new(StringBuilder::new());
            for item in sentences {
                for sentence in item {
                    out.values().append_value(sentence);
                }
                out.append(true);
            }
            return finish(&args.args, Arc::new(out.finish()));
        }
        let Some(learned) = &model.learned else {
            let none = || Arc::new(float_result(rows, |_| None)) as ArrayRef;
            return finish(
                &args.args,
                match self.head {
                    Head::Scores => scores_array(none(), none())?,
                    _ => none(),
                },
            );
        };
        let scores = learned.score(&items, self.head != Head::Probability);
        let probability = || Arc::new(float_result(rows, |i| Some(scores.probability[i])));
        let expected = || {
            let p =
                |i: usize| learned.expected_revenue_probability(scores.probability[i], &items, i);
            Arc::new(match &scores.revenue {
                Some(revenue) => float_result(rows, |i| Some(p(i) * revenue[i])),
                // Too few recorded revenues for a revenue head: the item's
                // revenue at risk stands in.
                None => float_result(rows, |i| {
                    let at_stake = items.number(Number::RevenueAtRisk, i);
                    at_stake.is_finite().then(|| p(i) * at_stake)
                }),
            })
        };
        let result: ArrayRef = match self.head {
            Head::Probability => probability(),
            Head::ExpectedRevenue => expected(),
            Head::Scores => scores_array(probability(), expected())?,
            Head::Reasons => unreachable!("answered above"),
        };
        finish(&args.args, result)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(match self.head {
            Head::Probability => &PROBABILITY_DOC,
            Head::ExpectedRevenue => &REVENUE_DOC,
            Head::Reasons => &REASONS_DOC,
            Head::Scores => &SCORES_DOC,
        })
    }
}

/// The `learned_scores` struct of a batch's two heads.
fn scores_array(probability: ArrayRef, expected: ArrayRef) -> Result<ArrayRef> {
    Ok(Arc::new(StructArray::try_new(
        score_fields(),
        vec![probability, expected],
        None,
    )?))
}
