//! Aduana's customs SQL functions, one file per function (each a DataFusion
//! `ScalarUDFImpl` or `AggregateUDFImpl` with its `Documentation`, unit tests
//! here and SQL-level tests in `slt/`).

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, DocSection, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use model_handle::ModelHandle;

mod item_args;
mod kernel;
pub mod model_handle;

pub mod fraud_probability;
pub mod hs_misclassification_probability;
pub mod hs_prefix;
pub mod hs_suggest;
pub mod hs_valid;
mod importers;
pub mod item_evidence;
pub mod lane_recommendation;
pub mod origin_risk;
pub mod revenue_at_risk;
pub mod risk_flags;
pub mod risk_model_info;
pub mod risk_reasons;
pub mod risk_score;
pub mod robust_profile;
pub mod robust_zscore;
pub mod tariff_rate;
pub mod unit_value;
pub mod valuation_deviation;

/// Where Aduana's functions appear in generated documentation.
pub const DOC_SECTION: DocSection = DocSection {
    include: true,
    label: "Customs Functions",
    description: Some(
        "Functions for customs risk analysis: HS codes, unit values, robust statistics.",
    ),
};

/// Every scalar function Aduana adds to SQL; the risk functions use `model`.
pub fn scalar_functions(model: &ModelHandle) -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::new_from_impl(
            valuation_deviation::ValuationDeviationFunc::new(model.clone()),
        )),
        Arc::new(ScalarUDF::new_from_impl(origin_risk::OriginRiskFunc::new(
            model.clone(),
        ))),
        Arc::new(ScalarUDF::new_from_impl(hs_suggest::HsSuggestFunc::new(
            model.clone(),
        ))),
        Arc::new(ScalarUDF::new_from_impl(tariff_rate::TariffRateFunc::new(
            model.clone(),
        ))),
        Arc::new(ScalarUDF::new_from_impl(risk_score::RiskScoreFunc::new(
            model.clone(),
        ))),
        Arc::new(ScalarUDF::new_from_impl(
            lane_recommendation::LaneRecommendationFunc::new(model.clone()),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            fraud_probability::FraudProbabilityFunc::new(
                model.clone(),
                fraud_probability::Head::Probability,
            ),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            fraud_probability::FraudProbabilityFunc::new(
                model.clone(),
                fraud_probability::Head::ExpectedRevenue,
            ),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            fraud_probability::FraudProbabilityFunc::new(
                model.clone(),
                fraud_probability::Head::Reasons,
            ),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            fraud_probability::FraudProbabilityFunc::new(
                model.clone(),
                fraud_probability::Head::Scores,
            ),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            risk_score::RiskLevelFunc::default(),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            risk_flags::RiskFlagsFunc::default(),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            risk_reasons::RiskReasonsFunc::new(model.clone()),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            revenue_at_risk::RevenueAtRiskFunc::new(model.clone()),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            item_evidence::ItemEvidenceFunc::new(model.clone()),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            hs_misclassification_probability::HsMisclassificationFunc::new(model.clone()),
        )),
        Arc::new(ScalarUDF::new_from_impl(hs_prefix::HsPrefixFunc::hs6())),
        Arc::new(ScalarUDF::new_from_impl(hs_prefix::HsPrefixFunc::hs4())),
        Arc::new(ScalarUDF::new_from_impl(hs_prefix::HsPrefixFunc::hs2())),
        Arc::new(ScalarUDF::new_from_impl(hs_valid::HsValidFunc::default())),
        Arc::new(ScalarUDF::new_from_impl(
            unit_value::UnitValueFunc::default(),
        )),
        Arc::new(ScalarUDF::new_from_impl(
            robust_zscore::RobustZscoreFunc::default(),
        )),
    ]
}

/// The model `udf` computes with, when it is one of Aduana's model-backed
/// functions (a distributed plan carries its model version with it).
pub fn model_of(udf: &ScalarUDF) -> Option<&ModelHandle> {
    let inner = udf.inner().as_ref();
    None.or_else(|| {
        inner
            .downcast_ref::<valuation_deviation::ValuationDeviationFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<origin_risk::OriginRiskFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<hs_suggest::HsSuggestFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<tariff_rate::TariffRateFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<risk_reasons::RiskReasonsFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<revenue_at_risk::RevenueAtRiskFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<item_evidence::ItemEvidenceFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<hs_misclassification_probability::HsMisclassificationFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<fraud_probability::FraudProbabilityFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<risk_score::RiskScoreFunc>()
            .map(|f| &f.model)
    })
    .or_else(|| {
        inner
            .downcast_ref::<lane_recommendation::LaneRecommendationFunc>()
            .map(|f| &f.model)
    })
}

/// Every aggregate function Aduana adds to SQL.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![Arc::new(AggregateUDF::new_from_impl(
        robust_profile::RobustProfileFunc::default(),
    ))]
}

/// Registers all of Aduana's functions in `ctx`, the risk functions over
/// `model` (which may be absent: they then fail with a clear message).
pub fn register_all(ctx: &SessionContext, model: &ModelHandle) -> Result<()> {
    ctx.register_udtf(
        "risk_model_info",
        Arc::new(risk_model_info::RiskModelInfoFunc::new(model.clone())),
    );
    for f in scalar_functions(model) {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `model_of` must know every function that cannot plan without a
    /// model, or a cluster would run that function over whatever model the
    /// executor happened to load.
    #[test]
    fn model_of_knows_every_model_backed_function() {
        let functions = scalar_functions(&ModelHandle::default());
        let mut backed = 0;
        for f in &functions {
            // risk_score plans without a model (its three-argument form
            // needs none) but blends by the model's weight with four.
            let needs_model = f.inner().return_type(&[]).is_err() || f.name() == "risk_score";
            assert_eq!(model_of(f).is_some(), needs_model, "{}", f.name());
            backed += usize::from(needs_model);
        }
        assert_eq!(backed, 14);
    }
}
