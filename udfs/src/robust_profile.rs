//! `robust_profile(x)`: the robust summary of a group of values as a struct
//! `{n, median, mad, q1, q3}`, the reference profile of a price cell.
//!
//! Exact: the partial state is the group's values (a list), so the
//! aggregate runs in parallel and across Ballista executors and merges to
//! the same answer as a single pass.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use crate::DOC_SECTION;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RobustProfileFunc {
    signature: Signature,
}

impl Default for RobustProfileFunc {
    fn default() -> Self {
        RobustProfileFunc {
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

pub fn profile_fields() -> Fields {
    Fields::from(vec![
        Field::new("n", DataType::Int64, false),
        Field::new("median", DataType::Float64, true),
        Field::new("mad", DataType::Float64, true),
        Field::new("q1", DataType::Float64, true),
        Field::new("q3", DataType::Float64, true),
    ])
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        DOC_SECTION,
        "Robust profile of a group of values: a struct {n, median, mad, q1, q3}. n counts the \
         finite non-NULL values; mad is the median absolute deviation from the median \
         (unscaled: robust_zscore applies the 0.6745 factor); quartiles interpolate linearly. \
         Exact, and computed in parallel by merging partial states.",
        "robust_profile(x)",
    )
    .with_argument("x", "The values, e.g. ln(unit_value(customs_value, quantity)).")
    .with_sql_example(
        "```sql\n> SELECT robust_profile(x) FROM (VALUES (1.0), (2.0), (3.0), (4.0), (100.0)) t(x);\n\
         +------------------------------------------------+\n| robust_profile(t.x)                            |\n\
         +------------------------------------------------+\n| {n: 5, median: 3.0, mad: 1.0, q1: 2.0, q3: 4.0} |\n\
         +------------------------------------------------+\n```",
    )
    .with_related_udf("robust_zscore")
    .build()
});

impl AggregateUDFImpl for RobustProfileFunc {
    fn name(&self) -> &str {
        "robust_profile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(profile_fields()))
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ProfileAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new_list(
            format!("{}[values]", args.name),
            Field::new_list_field(DataType::Float64, true),
            true,
        ))])
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug, Default)]
struct ProfileAccumulator {
    values: Vec<f64>,
}

impl ProfileAccumulator {
    fn extend(&mut self, array: &Float64Array) {
        self.values.reserve(array.len() - array.null_count());
        self.values
            .extend(array.iter().flatten().filter(|v| v.is_finite()));
    }
}

/// Linear interpolation between order statistics (numpy's default) on a
/// sorted slice.
impl Accumulator for ProfileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first().map(|a| a.data_type()) {
            Some(DataType::Float64) => {
                self.extend(values[0].as_primitive::<Float64Type>());
                Ok(())
            }
            other => exec_err!("robust_profile expects Float64 input, got {other:?}"),
        }
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            self.extend(list.as_primitive::<Float64Type>());
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: ArrayRef = Arc::new(Float64Array::from(std::mem::take(&mut self.values)));
        Ok(vec![ScalarValue::List(Arc::new(
            datafusion::common::utils::SingleRowListArrayBuilder::new(values).build_list_array(),
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let n = self.values.len() as i64;
        let (median, mad, q1, q3) =
            match aduana_model::price_build::robust_profile(&mut self.values) {
                Some((m, d, a, b)) => (Some(m), Some(d), Some(a), Some(b)),
                None => (None, None, None, None),
            };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(datafusion::arrow::array::Int64Array::from(vec![n])),
            Arc::new(Float64Array::from(vec![median])),
            Arc::new(Float64Array::from(vec![mad])),
            Arc::new(Float64Array::from(vec![q1])),
            Arc::new(Float64Array::from(vec![q3])),
        ];
        let array =
            datafusion::arrow::array::StructArray::try_new(profile_fields(), columns, None)?;
        Ok(ScalarValue::Struct(Arc::new(array)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_partial_states_equals_one_pass() {
        let all: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f64 / 10.0)
            .collect();
        let mut single = ProfileAccumulator::default();
        single
            .update_batch(&[Arc::new(Float64Array::from(all.clone()))])
            .unwrap();
        let mut merged = ProfileAccumulator::default();
        for part in all.chunks(333) {
            let mut partial = ProfileAccumulator::default();
            partial
                .update_batch(&[Arc::new(Float64Array::from(part.to_vec()))])
                .unwrap();
            let state = partial.state().unwrap()[0].to_array().unwrap();
            merged.merge_batch(&[state]).unwrap();
        }
        assert_eq!(single.evaluate().unwrap(), merged.evaluate().unwrap());
    }
}
