//! Which declaration items can be scored and learned from, and why the
//! others cannot: one SQL expression, used by the model builder (what it
//! learns from) and the refresh (what it scores, what it rejects and why),
//! so a poisoned row (a date of 9999 in a 2026 folder, an infinite
//! quantity, a missing importer) neither trains the model nor reaches the
//! published tables, and is listed in `risk.rejects` with its reason.

/// UN/ECE Recommendation 20 codes accepted as quantity units: the units
/// customs tariffs prescribe as supplementary units, and the common
/// alternatives (pieces as `H87`/`C62`/`PCE`, etc.).
pub const UNITS: &[&str] = &[
    "KGM", "GRM", "TNE", "NAR", "H87", "C62", "PCE", "PR", "NPR", "DZN", "DPR", "SET", "LTR",
    "MLT", "HLT", "MTQ", "MTK", "MTR", "KMT", "CMT", "KWH", "MWH", "CT", "CEN", "MIL", "GRO", "TU",
    "2U", "NPL", "GFI", "GT", "KNI", "KPO", "KPP", "KSD", "KUR", "CTM", "ENP", "GBQ", "NCL",
];

/// Above this a quantity or a net mass (in any unit) is not one item's:
/// a thousand million tonnes.
pub const MAX_QUANTITY: f64 = 1e12;

/// Above this a customs value is not one item's (the contract's
/// `Decimal(18, 2)` holds up to 1e16).
pub const MAX_CUSTOMS_VALUE: f64 = 1e14;

/// A SQL expression over the columns of `declarations` (with the
/// partition columns `year` and `month`): why the item cannot be scored,
/// NULL when it can. The first failing rule gives the reason.
pub fn reject_reason() -> String {
    reject_reason_in("year", "month")
}

/// [`reject_reason`] with the partition's year and month given as SQL
/// expressions (literals, for a table read from one file).
pub fn reject_reason_in(year: &str, month: &str) -> String {
    let units = UNITS
        .iter()
        .map(|u| format!("'{u}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let required = [
        "declaration_id",
        "item_no",
        "declaration_date",
        "importer_id",
        "hs_code",
        "customs_value",
    ]
    .iter()
    .map(|c| format!("WHEN {c} IS NULL THEN 'required column {c} is NULL'"))
    .collect::<Vec<_>>()
    .join("\n              ");
    let number = |column: &str, what: &str| {
        format!(
            "WHEN {column} IS NOT NULL AND (isnan({column}) OR abs({column}) > {MAX_QUANTITY:e})
                   THEN '{what} ' || CAST({column} AS VARCHAR) || ' is not a finite, plausible number'"
        )
    };
    format!(
        "CASE {required}
              WHEN date_part('year', declaration_date) <> {year}
                   OR date_part('month', declaration_date) <> {month}
                   THEN 'declaration date ' || CAST(declaration_date AS VARCHAR)
                        || ' is outside its partition year=' || CAST({year} AS VARCHAR)
                        || '/month=' || CAST({month} AS VARCHAR)
              WHEN NOT hs_valid(hs_code) THEN 'malformed HS code ''' || hs_code || ''''
              WHEN customs_value <= 0 THEN 'customs value is zero or negative'
              WHEN customs_value > {MAX_CUSTOMS_VALUE:e}
                   THEN 'customs value ' || CAST(customs_value AS VARCHAR) || ' is not plausible for one item'
              {quantity}
              {mass}
              WHEN quantity IS NOT NULL AND NOT (quantity > 0) THEN 'quantity is zero or negative'
              WHEN net_mass_kg IS NOT NULL AND net_mass_kg < 0 THEN 'net mass is negative'
              WHEN quantity_unit IS NOT NULL AND upper(quantity_unit) NOT IN ({units})
                   THEN 'unknown quantity unit ''' || quantity_unit || ''''
         END",
        quantity = number("quantity", "quantity"),
        mass = number("net_mass_kg", "net mass"),
    )
}
