//! The Arrow schemas of a version's files and how their batches are read
//! into the model's lookup structures.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type, Schema, SchemaRef};

use crate::*;

/// The schema of `price_profiles.parquet`.
pub fn price_schema() -> SchemaRef {
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("level", DataType::Int32, false),
        f("hs", DataType::Utf8, false),
        f("origin", DataType::Utf8, true),
        f("unit", DataType::Utf8, true),
        f("n", DataType::Int64, false),
        f("median", DataType::Float64, true),
        f("mad", DataType::Float64, true),
        f("q1", DataType::Float64, true),
        f("q3", DataType::Float64, true),
        f("kg_n", DataType::Int64, false),
        f("kg_median", DataType::Float64, true),
        f("kg_mad", DataType::Float64, true),
        f("kg_q1", DataType::Float64, true),
        f("kg_q3", DataType::Float64, true),
        f("drift", DataType::Float64, true),
        f("center_month", DataType::Float64, true),
    ]))
}

/// The schema of `classifier.parquet`: word counts per HS6; a row with a
/// NULL word holds the HS6's number of training documents.
pub fn classifier_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("hs6", DataType::Utf8, false),
        Field::new("word", DataType::Utf8, true),
        Field::new("count", DataType::Float64, false),
    ]))
}

pub(crate) fn read_classifier(
    batches: &[RecordBatch],
) -> std::result::Result<classifier::Classifier, String> {
    let mut classes: Vec<String> = Vec::new();
    let mut rows: Vec<(String, Option<String>, f64)> = Vec::new();
    for batch in batches {
        let hs6 = batch
            .column_by_name("hs6")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or("classifier: no Utf8 column hs6")?;
        let word = batch
            .column_by_name("word")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or("classifier: no Utf8 column word")?;
        let count = batch
            .column_by_name("count")
            .and_then(|c| c.as_primitive_opt::<Float64Type>())
            .ok_or("classifier: no Float64 column count")?;
        for i in 0..batch.num_rows() {
            classes.push(hs6.value(i).to_string());
            rows.push((
                hs6.value(i).to_string(),
                word.is_valid(i).then(|| word.value(i).to_string()),
                count.value(i),
            ));
        }
    }
    classes.sort();
    classes.dedup();
    let index = |c: &str| {
        classes
            .binary_search_by(|x| x.as_str().cmp(c))
            .expect("collected above") as u32
    };
    let mut documents = vec![0.0; classes.len()];
    let mut counts = Vec::with_capacity(rows.len());
    for (hs6, word, count) in rows {
        match word {
            None => documents[index(&hs6) as usize] += count,
            Some(w) => counts.push((index(&hs6), w, count)),
        }
    }
    Ok(classifier::Classifier::new(classes, documents, &counts))
}

/// The schema of `origin_facts.parquet`: one table of the kinds of fact below.
/// - `hs6_origin`: hs, country = origin, items, share, share_before, share_after
/// - `importer`: hs, country (NULL: all origins), importer, items
/// - `dispatch`: country = dispatch country, items, share = share of other origins
/// - `remedy`: hs = code prefix, country, share = additional duty rate, valid_from, valid_to
/// - `tariff`: hs = code prefix, share = duty rate (percent)
/// - `valuation`: importer, items = items with a price reference, share =
///   share of them markedly low
pub fn origin_schema() -> SchemaRef {
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f("kind", DataType::Utf8, false),
        f("hs", DataType::Utf8, true),
        f("country", DataType::Utf8, true),
        f("importer", DataType::Utf8, true),
        f("items", DataType::Int64, true),
        f("share", DataType::Float64, true),
        f("share_before", DataType::Float64, true),
        f("share_after", DataType::Float64, true),
        f("valid_from", DataType::Int32, true),
        f("valid_to", DataType::Int32, true),
    ]))
}

pub(crate) fn read_origins(
    batch: &RecordBatch,
    facts: &mut OriginFacts,
) -> std::result::Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("origin facts have no column {name}"))
    };
    let text = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| format!("column {name} is not Utf8"))
    };
    let float = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| format!("column {name} is not Float64"))
    };
    let int32 = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_primitive_opt::<Int32Type>()
            .ok_or_else(|| format!("column {name} is not Int32"))
    };
    let (kind, hs, country, importer) = (
        text("kind")?,
        text("hs")?,
        text("country")?,
        text("importer")?,
    );
    let items = column("items")?
        .as_primitive_opt::<Int64Type>()
        .ok_or("column items is not Int64")?;
    let (share, before, after) = (
        float("share")?,
        float("share_before")?,
        float("share_after")?,
    );
    let (from, to) = (int32("valid_from")?, int32("valid_to")?);
    let opt = |a: &arrow::array::Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    for i in 0..batch.num_rows() {
        let hs_digits = if hs.is_valid(i) {
            hs.value(i).as_bytes()
        } else {
            &[][..]
        };
        let country_code = if country.is_valid(i) {
            pack_country(country.value(i).as_bytes())
        } else {
            None
        };
        let n = if items.is_valid(i) {
            items.value(i).max(0) as u64
        } else {
            0
        };
        match kind.value(i) {
            "hs6_origin" => {
                if let Some(key) = cell_key(Level::Hs6Origin, hs_digits, country_code) {
                    facts.hs6_origin.insert(
                        key,
                        OriginShare {
                            items: n,
                            share: opt(share, i).unwrap_or(0.0),
                            share_before: opt(before, i),
                            share_after: opt(after, i),
                        },
                    );
                }
                if let Some(key) = cell_key(Level::Hs6, hs_digits, None) {
                    *facts.hs6_items.entry(key).or_default() += n;
                }
            }
            "importer" => {
                let product = cell_key(Level::Hs6, hs_digits, None);
                if let (Some(product), true) = (product, importer.is_valid(i)) {
                    let who = importer_hash(importer.value(i));
                    match country_code {
                        Some(origin) => facts.importers.add_origin(who, product, origin),
                        None => facts.importers.add_items(who, product, n),
                    }
                }
            }
            "dispatch" => {
                if let (Some(code), Some(s)) = (country_code, opt(share, i)) {
                    facts.dispatch.insert(code, s);
                }
            }
            "remedy" => {
                // An empty code would put every product under the remedy.
                if let (Some(code), Some(rate), true, false) = (
                    country_code,
                    opt(share, i),
                    from.is_valid(i),
                    hs_digits.is_empty(),
                ) {
                    facts.remedies.push(Remedy {
                        prefix: hs_digits.to_vec(),
                        country: code,
                        rate,
                        from: from.value(i),
                        to: to.is_valid(i).then(|| to.value(i)),
                    });
                }
            }
            "tariff" => {
                if let (Some(rate), false) = (opt(share, i), hs_digits.is_empty()) {
                    facts.tariff.push((hs_digits.to_vec(), rate));
                }
            }
            "valuation" => {
                if let (Some(share), true) = (opt(share, i), importer.is_valid(i)) {
                    let record = ValuationRecord {
                        items: n,
                        low: (share.clamp(0.0, 1.0) * n as f64).round() as u64,
                    };
                    facts.valuation_overall.items += record.items;
                    facts.valuation_overall.low += record.low;
                    facts
                        .valuation_records
                        .insert(importer_hash(importer.value(i)), record);
                }
            }
            other => return Err(format!("unknown origin fact kind {other:?}")),
        }
    }
    Ok(())
}

pub(crate) fn read_prices(
    batch: &RecordBatch,
    prices: &mut hashbrown::HashMap<u64, PriceCell>,
) -> std::result::Result<(), String> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("price profiles have no column {name}"))
    };
    let floats = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| format!("column {name} is not Float64"))
    };
    let ints = |name: &str| -> std::result::Result<_, String> {
        column(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| format!("column {name} is not Int64"))
    };
    let level = column("level")?
        .as_primitive_opt::<Int32Type>()
        .ok_or("column level is not Int32")?;
    let hs = column("hs")?
        .as_string_opt::<i32>()
        .ok_or("column hs is not Utf8")?;
    let origin = column("origin")?
        .as_string_opt::<i32>()
        .ok_or("column origin is not Utf8")?;
    let unit = column("unit")?
        .as_string_opt::<i32>()
        .ok_or("column unit is not Utf8")?;
    let (n, median, mad, q1, q3) = (
        ints("n")?,
        floats("median")?,
        floats("mad")?,
        floats("q1")?,
        floats("q3")?,
    );
    let (kg_n, kg_median, kg_mad, kg_q1, kg_q3) = (
        ints("kg_n")?,
        floats("kg_median")?,
        floats("kg_mad")?,
        floats("kg_q1")?,
        floats("kg_q3")?,
    );
    let (drift, center) = (floats("drift")?, floats("center_month")?);
    let profile = |n: &arrow::array::Int64Array,
                   m: &arrow::array::Float64Array,
                   d: &arrow::array::Float64Array,
                   a: &arrow::array::Float64Array,
                   b: &arrow::array::Float64Array,
                   i: usize| {
        (n.value(i) > 0 && m.is_valid(i) && d.is_valid(i)).then(|| Profile {
            n: n.value(i) as u64,
            median: m.value(i),
            mad: d.value(i),
            q1: a.value(i),
            q3: b.value(i),
        })
    };
    for i in 0..batch.num_rows() {
        let level = Level::from_i32(level.value(i))
            .ok_or_else(|| format!("unknown level {}", level.value(i)))?;
        let origin_code = origin
            .is_valid(i)
            .then(|| pack_country(origin.value(i).as_bytes()))
            .flatten();
        let Some(key) = cell_key(level, hs.value(i).as_bytes(), origin_code) else {
            continue;
        };
        prices.insert(
            key,
            PriceCell {
                unit: if unit.is_valid(i) {
                    pack_unit(unit.value(i)).unwrap_or(0)
                } else {
                    0
                },
                per_unit: profile(n, median, mad, q1, q3, i),
                per_kg: profile(kg_n, kg_median, kg_mad, kg_q1, kg_q3, i),
                drift: if drift.is_valid(i) && drift.value(i).is_finite() {
                    drift.value(i)
                } else {
                    0.0
                },
                center_month: if center.is_valid(i) {
                    center.value(i)
                } else {
                    0.0
                },
            },
        );
    }
    Ok(())
}
