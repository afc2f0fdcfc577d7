//! The arguments that describe a declared item, shared by the functions
//! that look at an item as a whole (`risk_reasons`, `revenue_at_risk`):
//! hs_code, origin_country, export_country, customs_value, quantity,
//! quantity_unit, net_mass_kg, declaration_date, description,
//! preference_code, in this order, followed by each function's own.

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Float64Array, StringViewArray,
};
use datafusion::arrow::datatypes::Float64Type;
use datafusion::common::Result;
use datafusion::logical_expr::{Coercion, DocumentationBuilder};

use crate::kernel::{date_arg, number_arg, opt_number, opt_str, string_view, text_arg};
use aduana_model::evidence;
use aduana_model::origin_signals::DeclaredOrigin;
use aduana_model::revenue::Assessed;
use aduana_model::valuation::{Declared, month_index};

/// How many leading arguments describe the item.
pub const ITEM_ARGS: usize = 10;

/// The coercions of the item arguments.
pub fn item_coercions() -> Vec<Coercion> {
    let (t, n) = (text_arg(), number_arg());
    vec![
        t.clone(),
        t.clone(),
        t.clone(),
        n.clone(),
        n.clone(),
        t.clone(),
        n,
        date_arg(),
        t.clone(),
        t,
    ]
}

/// The assessed duty rate and duties paid that follow the item arguments
/// (`revenue_at_risk`, `item_evidence`).
pub struct AssessedArgs<'a> {
    rate: &'a Float64Array,
    paid: &'a Float64Array,
}

impl<'a> AssessedArgs<'a> {
    pub fn new(arrays: &'a [ArrayRef]) -> Self {
        AssessedArgs {
            rate: number(&arrays[ITEM_ARGS]),
            paid: number(&arrays[ITEM_ARGS + 1]),
        }
    }

    pub fn at(&self, i: usize) -> Assessed {
        let f = |a: &Float64Array| opt_number(a, i);
        Assessed {
            duty_rate: f(self.rate),
            duties_paid: f(self.paid),
        }
    }
}

/// The item arguments' documentation, in their order.
pub fn document_item_args(doc: DocumentationBuilder) -> DocumentationBuilder {
    doc.with_argument("hs_code", "Declared tariff line.")
        .with_argument("origin_country", "Declared origin.")
        .with_argument("export_country", "Country of dispatch.")
        .with_argument("customs_value", "Declared customs value.")
        .with_argument("quantity", "Declared quantity.")
        .with_argument("quantity_unit", "Unit of the quantity.")
        .with_argument("net_mass_kg", "Net mass.")
        .with_argument("declaration_date", "Date of the declaration.")
        .with_argument("description", "Goods description.")
        .with_argument("preference_code", "Preference claimed, or NULL.")
}

pub struct ItemArgs<'a> {
    hs: StringViewArray,
    origin: StringViewArray,
    export: StringViewArray,
    unit: StringViewArray,
    description: StringViewArray,
    preference: StringViewArray,
    value: &'a Float64Array,
    quantity: &'a Float64Array,
    net: &'a Float64Array,
    date: &'a Date32Array,
}

fn number(array: &ArrayRef) -> &Float64Array {
    array.as_primitive::<Float64Type>()
}

impl<'a> ItemArgs<'a> {
    pub fn new(arrays: &'a [ArrayRef]) -> Result<Self> {
        Ok(ItemArgs {
            hs: string_view(&arrays[0])?,
            origin: string_view(&arrays[1])?,
            export: string_view(&arrays[2])?,
            value: number(&arrays[3]),
            quantity: number(&arrays[4]),
            unit: string_view(&arrays[5])?,
            net: number(&arrays[6]),
            date: arrays[7].as_primitive(),
            description: string_view(&arrays[8])?,
            preference: string_view(&arrays[9])?,
        })
    }

    /// Rows without a code, an origin or a value cannot be judged.
    pub fn is_null(&self, i: usize) -> bool {
        self.hs.is_null(i) || self.origin.is_null(i) || self.value.is_null(i)
    }

    pub fn day(&self, i: usize) -> Option<i32> {
        self.date.is_valid(i).then(|| self.date.value(i))
    }

    pub fn declared(&self, i: usize) -> Declared<'_> {
        let f = |a: &Float64Array| opt_number(a, i);
        Declared {
            hs_code: self.hs.value(i),
            origin: self.origin.value(i),
            value: f(self.value).unwrap_or(f64::NAN),
            quantity: f(self.quantity).unwrap_or(f64::NAN),
            unit: opt_str(&self.unit, i),
            net_mass: f(self.net),
            month: self.day(i).map(month_index),
        }
    }

    pub fn origin<'s>(&'s self, i: usize, importer: Option<&'s str>) -> DeclaredOrigin<'s> {
        DeclaredOrigin {
            hs_code: self.hs.value(i),
            origin: self.origin.value(i),
            export: opt_str(&self.export, i),
            preference: opt_str(&self.preference, i),
            importer: importer.map(aduana_model::importer_hash),
            day: self.day(i),
        }
    }

    pub fn description(&self, i: usize) -> Option<&str> {
        opt_str(&self.description, i)
    }

    /// The declared codes.
    pub fn codes(&self) -> &StringViewArray {
        &self.hs
    }

    /// Row `i` as `aduana_model::evidence` reads it, with what the caller
    /// worked out (the assessed duties, the importer's hash and pricing
    /// shift, the product key).
    pub fn evidence_item(
        &self,
        i: usize,
        assessed: Assessed,
        importer: Option<(u64, f64)>,
        product: Option<u64>,
    ) -> evidence::Item<'_> {
        let f = |a: &Float64Array| opt_number(a, i);
        evidence::Item {
            hs_code: opt_str(&self.hs, i),
            origin: opt_str(&self.origin, i),
            export: opt_str(&self.export, i),
            value: f(self.value),
            quantity: f(self.quantity),
            unit: opt_str(&self.unit, i),
            net_mass: f(self.net),
            day: self.day(i),
            description: self.description(i),
            preference: opt_str(&self.preference, i),
            assessed,
            importer,
            product,
        }
    }
}
