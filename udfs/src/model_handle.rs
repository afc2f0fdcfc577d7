//! The risk model as the functions see it: loaded once per session (by the
//! engine, from the warehouse) and shared by every function that needs it.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use aduana_model::RiskModel;

/// What a risk function says when the warehouse has no model.
pub const NO_MODEL: &str =
    "no risk model in this warehouse: run `aduana model build --warehouse W` first";

/// A shared, possibly absent, model. Two handles are equal when they hold
/// the same loaded model (DataFusion compares functions for plan equality).
#[derive(Debug, Clone, Default)]
pub struct ModelHandle(Option<Arc<RiskModel>>);

impl ModelHandle {
    pub fn new(model: Option<Arc<RiskModel>>) -> Self {
        ModelHandle(model)
    }

    pub fn get(&self) -> Option<&RiskModel> {
        self.0.as_deref()
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
