//! The learned model's inputs. Training (the model builder's query) and
//! scoring (`fraud_probability`'s arguments) pass the same columns in the
//! same order and go through [`ItemColumns::feature_matrix`], so a model
//! sees at scoring exactly the features it was trained on.

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, StringViewArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;

use super::profiles::{ENTITIES, EntityKeys};

/// The columns, in argument order: the unsupervised evidence first, then
/// the declaration's own fields.
pub const COLUMNS: [&str; 18] = [
    "valuation_deviation",
    "hs_misclassification_probability",
    "origin_risk",
    "revenue_at_risk",
    "hs_code",
    "origin_country",
    "export_country",
    "office_code",
    "importer_id",
    "declarant_id",
    "supplier_id",
    "regime",
    "transport_mode",
    "preference_code",
    "customs_value",
    "net_mass_kg",
    "quantity",
    "duty_rate",
];

/// Numeric columns, by their position in [`COLUMNS`].
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub enum Number {
    ValuationZ = 0,
    Misclassification = 1,
    OriginRisk = 2,
    RevenueAtRisk = 3,
    CustomsValue = 14,
    NetMass = 15,
    Quantity = 16,
    DutyRate = 17,
}

/// Text columns, by their position in [`COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Text {
    HsCode = 4,
    Origin = 5,
    Dispatch = 6,
    Office = 7,
    Importer = 8,
    Declarant = 9,
    Supplier = 10,
    Regime = 11,
    Transport = 12,
    Preference = 13,
}

/// Features of the transaction itself, before the entity profiles.
pub const ITEM_FEATURES: [&str; 11] = [
    "valuation_deviation",
    "misclassification_probability",
    "origin_risk",
    "log_revenue_at_risk",
    "log_customs_value",
    "log_net_mass",
    "log_value_per_kg",
    "log_quantity",
    "duty_rate",
    "preference_claimed",
    "origin_not_dispatch",
];

/// Per entity: its smoothed fraud rate and `ln(1 + inspections)`.
pub const PER_ENTITY: usize = 2;

/// How many features a row has.
pub const FEATURES: usize = ITEM_FEATURES.len() + PER_ENTITY * ENTITIES.len();

/// The name of feature `f`.
pub fn feature_name(f: usize) -> String {
    match f.checked_sub(ITEM_FEATURES.len()) {
        None => ITEM_FEATURES[f].to_string(),
        Some(p) => {
            let entity = ENTITIES[p / PER_ENTITY].name();
            match p % PER_ENTITY {
                0 => format!("{entity}_fraud_rate"),
                _ => format!("{entity}_inspections"),
            }
        }
    }
}

/// The columns of a batch of items, typed.
#[derive(Debug)]
pub struct ItemColumns {
    numbers: Vec<Option<Float64Array>>,
    texts: Vec<Option<StringViewArray>>,
    rows: usize,
}

impl ItemColumns {
    /// Takes the arrays of [`COLUMNS`], in order: numbers as any numeric
    /// type, texts in any string encoding. Errors name the column.
    pub fn from_arrays(arrays: &[ArrayRef]) -> Result<ItemColumns, String> {
        if arrays.len() != COLUMNS.len() {
            return Err(format!(
                "the learned model takes {} columns ({}), got {}",
                COLUMNS.len(),
                COLUMNS.join(", "),
                arrays.len()
            ));
        }
        let rows = arrays.first().map_or(0, |a| a.len());
        let mut numbers = vec![None; COLUMNS.len()];
        let mut texts = vec![None; COLUMNS.len()];
        for (i, array) in arrays.iter().enumerate() {
            let wrong = |e: arrow::error::ArrowError| format!("column {}: {e}", COLUMNS[i]);
            if array.len() != rows {
                return Err(format!(
                    "column {} has {} rows, not {rows}",
                    COLUMNS[i],
                    array.len()
                ));
            }
            if is_text(i) {
                let view = cast(array, &DataType::Utf8View).map_err(wrong)?;
                texts[i] = Some(view.as_string_view().clone());
            } else {
                if !(array.data_type().is_numeric() || array.data_type().is_null()) {
                    return Err(format!(
                        "column {} must be a number, not {}",
                        COLUMNS[i],
                        array.data_type()
                    ));
                }
                let floats = cast(array, &DataType::Float64).map_err(wrong)?;
                numbers[i] = Some(floats.as_primitive().clone());
            }
        }
        Ok(ItemColumns {
            numbers,
            texts,
            rows,
        })
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The number in `column` at `row`; NaN when NULL or not finite (the
    /// trees send NaN down their missing-value branch).
    #[inline]
    pub fn number(&self, column: Number, row: usize) -> f64 {
        let array = self.numbers[column as usize]
            .as_ref()
            .expect("numeric column");
        if array.is_null(row) {
            return f64::NAN;
        }
        let v = array.value(row);
        if v.is_finite() { v } else { f64::NAN }
    }

    #[inline]
    pub fn text(&self, column: Text, row: usize) -> Option<&str> {
        let array = self.texts[column as usize].as_ref().expect("text column");
        (array.is_valid(row))
            .then(|| array.value(row).trim())
            .filter(|s| !s.is_empty())
    }

    /// Whether `row` holds the same text in `column` as the row before
    /// (from the 16-byte views: items of a declaration sit together).
    #[inline]
    pub fn same_as_previous(&self, column: Text, row: usize) -> bool {
        let array = self.texts[column as usize].as_ref().expect("text column");
        row > 0
            && array.views()[row] == array.views()[row - 1]
            && array.is_valid(row) == array.is_valid(row - 1)
    }

    /// The item features of `row`, in [`ITEM_FEATURES`] order.
    pub fn item_features(&self, row: usize) -> [f64; ITEM_FEATURES.len()] {
        let ln = |v: f64| if v > 0.0 { v.ln() } else { f64::NAN };
        let log_value = ln(self.number(Number::CustomsValue, row));
        let log_mass = ln(self.number(Number::NetMass, row));
        let at_stake = self.number(Number::RevenueAtRisk, row);
        let origin = self.text(Text::Origin, row);
        let dispatch = self.text(Text::Dispatch, row);
        [
            self.number(Number::ValuationZ, row),
            self.number(Number::Misclassification, row),
            self.number(Number::OriginRisk, row),
            if at_stake >= 0.0 {
                at_stake.ln_1p()
            } else {
                f64::NAN
            },
            log_value,
            log_mass,
            log_value - log_mass,
            ln(self.number(Number::Quantity, row)),
            self.number(Number::DutyRate, row),
            f64::from(u8::from(self.text(Text::Preference, row).is_some())),
            match (origin, dispatch) {
                (Some(o), Some(d)) => f64::from(u8::from(!o.eq_ignore_ascii_case(d))),
                _ => f64::NAN,
            },
        ]
    }

    /// The feature matrix of all rows, column-major (feature by feature),
    /// with each row's entity profile features from `profile(entity index,
    /// key, row)` as (fraud rate, inspections). `reuse`: the profile depends
    /// on the key alone (scoring; not the out-of-fold profiles of training,
    /// which depend on the row's fold too). `prefetch(entity index, key)` is
    /// told a row's key a few rows before `profile` is asked for it.
    pub fn feature_matrix(
        &self,
        keys: &EntityKeys,
        reuse: bool,
        mut profile: impl FnMut(usize, Option<u64>, usize) -> (f64, f64),
        prefetch: impl Fn(usize, u64),
    ) -> Vec<f64> {
        let rows = self.rows;
        let mut matrix = vec![0.0; rows * FEATURES];
        for row in 0..rows {
            for (f, v) in self.item_features(row).into_iter().enumerate() {
                matrix[f * rows + row] = v;
            }
        }
        // Entity by entity: one entity's table stays in cache while every
        // row looks it up (row by row, thirteen tables took turns).
        for e in 0..ENTITIES.len() {
            let f = ITEM_FEATURES.len() + e * PER_ENTITY;
            let (rates, rest) = matrix[f * rows..].split_at_mut(rows);
            let inspections = &mut rest[..rows];
            for row in 0..rows {
                if row + PREFETCH_AHEAD < rows
                    && let Some(ahead) = keys.get(e, row + PREFETCH_AHEAD)
                {
                    prefetch(e, ahead);
                }
                let key = keys.get(e, row);
                // Items of a declaration share most parties: the same key
                // as the row before has the same profile.
                if reuse && row > 0 && key.is_some() && key == keys.get(e, row - 1) {
                    rates[row] = rates[row - 1];
                    inspections[row] = inspections[row - 1];
                    continue;
                }
                (rates[row], inspections[row]) = profile(e, key, row);
            }
        }
        matrix
    }
}

/// How far ahead of the row whose profile is looked up the feature matrix
/// prefetches another row's slot: enough rows to cover a memory access.
const PREFETCH_AHEAD: usize = 16;

/// Whether argument `column` is a text column.
pub fn is_text(column: usize) -> bool {
    (Text::HsCode as usize..=Text::Preference as usize).contains(&column)
}
