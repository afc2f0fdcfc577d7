//! The risk model as the functions see it: loaded once per session (by the
//! engine, from the warehouse) and shared by every function that needs it.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use aduana_model::RiskModel;
use datafusion::arrow::datatypes::DataType;

/// What a risk function says when the warehouse has no model.
pub const NO_MODEL: &str =
    "no risk model in this warehouse: run `aduana model build --warehouse W` first";

/// A shared, possibly absent, model. Two handles are equal when they hold
/// the same loaded model (DataFusion compares functions for plan equality).
#[derive(Debug, Clone, Default)]
pub struct ModelHandle(Option<Arc<RiskModel>>, Option<Arc<str>>);

impl ModelHandle {
    pub fn new(model: Option<Arc<RiskModel>>) -> Self {
        ModelHandle(model, None)
    }

    /// A model loaded from the `risk/model/` under `root` (an object-store
    /// path): a distributed plan names the model by root and version, and
    /// every process of a cluster loads that version itself.
    pub fn located(model: Arc<RiskModel>, root: &str) -> Self {
        ModelHandle(Some(model), Some(root.into()))
    }

    pub fn get(&self) -> Option<&RiskModel> {
        self.0.as_deref()
    }

    /// Where the model was loaded from and its version, when known.
    pub fn origin(&self) -> Option<(&str, &str)> {
        match (&self.0, &self.1) {
            (Some(model), Some(root)) => Some((root, &model.manifest.version)),
            _ => None,
        }
    }

    /// The model, or the execution error that says how to build one.
    pub fn require(&self) -> datafusion::common::Result<&RiskModel> {
        self.get()
            .ok_or_else(|| datafusion::common::DataFusionError::Execution(NO_MODEL.to_string()))
    }

    /// `return_type` of a model-backed function: planning fails without a
    /// model, so a query does not start only to fail on its first batch.
    pub fn return_type(&self, data_type: DataType) -> datafusion::common::Result<DataType> {
        match self.get() {
            Some(_) => Ok(data_type),
            None => datafusion::common::plan_err!("{NO_MODEL}"),
        }
    }
}

impl PartialEq for ModelHandle {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for ModelHandle {}

impl Hash for ModelHandle {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_ref().map(|m| &m.manifest.version).hash(state);
    }
}
