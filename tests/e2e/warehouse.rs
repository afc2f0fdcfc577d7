//! The warehouse on real Parquet files: registration, partition pruning,
//! tolerated variants, every contract violation, and column mapping.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Field, TimeUnit};
use datafusion::physical_plan::displayable;

use crate::support::*;

#[test]
fn registers_every_present_table_with_contract_types() {
    let wh = generate(3_000, 2);
    runtime().block_on(async {
        let session = session(&wh.uri()).await;
        let tables = query_text(
            &session,
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_schema IN ('public', 'reference') ORDER BY 1, 2",
        )
        .await;
        for name in ["declarations", "inspections", "hs_nomenclature", "tariff", "trade_remedies", "traders"] {
            assert!(tables.contains(name), "{name} missing from\n{tables}");
        }
        assert_eq!(
            query_i64(&session, "SELECT COUNT(*) FROM declarations").await as u64,
            wh.summary.rows
        );
        assert_eq!(
            query_i64(&session, "SELECT COUNT(*) FROM inspections").await as u64,
            wh.summary.inspections
        );
        let schema = session.context().table("declarations").await.unwrap().schema().as_arrow().clone();
        assert_eq!(schema.field_with_name("customs_value").unwrap().data_type(), &DataType::Decimal128(18, 2));
        assert_eq!(schema.field_with_name("declaration_date").unwrap().data_type(), &DataType::Date32);
        assert_eq!(schema.field_with_name("year").unwrap().data_type(), &DataType::Int32);
        assert_eq!(schema.field_with_name("month").unwrap().data_type(), &DataType::Int32);
        // Partition values agree with the dates inside the files.
        let mismatched = query_i64(
            &session,
            "SELECT COUNT(*) FROM declarations \
             WHERE year <> date_part('year', declaration_date) OR month <> date_part('month', declaration_date)",
        )
        .await;
        assert_eq!(mismatched, 0);
    });
}

#[test]
fn month_filters_prune_partitions() {
    let wh = generate(4_000, 3);
    runtime().block_on(async {
        let session = session(&wh.uri()).await;
        let expected: u64 = session
            .warehouse()
            .table("declarations")
            .unwrap()
            .files
            .iter()
            .filter(|f| f.partition == aduana_warehouse::Partition::new(2026, 10))
            .map(|f| f.rows)
            .sum();
        assert!(expected > 0);
        let frame = session
            .context()
            .sql("SELECT declaration_id FROM declarations WHERE year = 2026 AND month = 10")
            .await
            .unwrap();
        let plan = frame.clone().create_physical_plan().await.unwrap();
        let text = displayable(plan.as_ref()).indent(true).to_string();
        assert!(text.contains("month=10/"), "{text}");
        assert!(
            !text.contains("month=9/") && !text.contains("month=8/"),
            "other months scanned:\n{text}"
        );
        let rows: usize = frame
            .collect()
            .await
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows as u64, expected);
    });
}

#[test]
fn tolerated_variants_are_read_as_the_contract_types() {
    let wh = generate(2_000, 2);
    let rt = runtime();
    let sum_before = rt.block_on(async {
        let s = session(&wh.uri()).await;
        query_text(&s, "SELECT SUM(customs_value), MIN(declaration_date), COUNT(DISTINCT description) FROM declarations").await
    });
    rewrite_declarations(wh.path(), |batch| {
        let value = cast(
            batch.column_by_name("customs_value").unwrap(),
            &DataType::Float64,
        )
        .unwrap();
        let date = cast(
            batch.column_by_name("declaration_date").unwrap(),
            &DataType::Timestamp(TimeUnit::Millisecond, None),
        )
        .unwrap();
        let description = cast(
            batch.column_by_name("description").unwrap(),
            &DataType::LargeUtf8,
        )
        .unwrap();
        let hs = cast(
            batch.column_by_name("hs_code").unwrap(),
            &DataType::Utf8View,
        )
        .unwrap();
        let b = replace_column(
            &batch,
            "customs_value",
            Some((Field::new("customs_value", DataType::Float64, false), value)),
        );
        let b = replace_column(
            &b,
            "declaration_date",
            Some((
                Field::new("declaration_date", date.data_type().clone(), false),
                date,
            )),
        );
        let b = replace_column(
            &b,
            "description",
            Some((
                Field::new("description", DataType::LargeUtf8, true),
                description,
            )),
        );
        let b = replace_column(
            &b,
            "hs_code",
            Some((Field::new("hs_code", DataType::Utf8View, false), hs)),
        );
        // An extra column the contract does not know.
        let extra: ArrayRef = Arc::new(StringArray::from(vec!["x"; b.num_rows()]));
        let mut fields: Vec<Field> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new("ASYCUDA_EXTRA", DataType::Utf8, true));
        let mut columns = b.columns().to_vec();
        columns.push(extra);
        arrow::array::RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
            .unwrap()
    });
    rt.block_on(async {
        let s = session(&wh.uri()).await;
        let sum_after =
            query_text(&s, "SELECT SUM(customs_value), MIN(declaration_date), COUNT(DISTINCT description) FROM declarations").await;
        assert_eq!(sum_before, sum_after);
        let schema = s.context().table("declarations").await.unwrap().schema().as_arrow().clone();
        assert_eq!(schema.field_with_name("customs_value").unwrap().data_type(), &DataType::Decimal128(18, 2));
        assert!(schema.field_with_name("ASYCUDA_EXTRA").is_err());
    });
}

/// Opens `wh` and returns the error message it must fail with.
fn open_error(wh: &TestWarehouse) -> String {
    runtime().block_on(async { open(&wh.uri()).await.unwrap_err().to_string() })
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn missing_column_names_table_file_column_and_type() {
    let wh = generate(1_000, 1);
    let file = rewrite_declarations(wh.path(), |b| replace_column(&b, "importer_id", None));
    let e = open_error(&wh);
    assert_mentions(
        &e,
        &[
            "table declarations",
            &file,
            "missing column importer_id",
            "Utf8",
            "aduana.toml",
        ],
    );
}

#[test]
fn wrong_types_name_expected_and_actual() {
    let wh = generate(1_000, 1);
    let file = rewrite_declarations(wh.path(), |b| {
        let wide = cast(b.column_by_name("item_no").unwrap(), &DataType::Int64).unwrap();
        replace_column(
            &b,
            "item_no",
            Some((Field::new("item_no", DataType::Int64, false), wide)),
        )
    });
    let e = open_error(&wh);
    assert_mentions(
        &e,
        &[
            "table declarations",
            &file,
            "column item_no",
            "type Int64",
            "expected Int32",
            "cast = \"int32\"",
        ],
    );

    let wh = generate(1_000, 1);
    rewrite_declarations(wh.path(), |b| {
        let text = cast(b.column_by_name("customs_value").unwrap(), &DataType::Utf8).unwrap();
        replace_column(
            &b,
            "customs_value",
            Some((Field::new("customs_value", DataType::Utf8, false), text)),
        )
    });
    assert_mentions(
        &open_error(&wh),
        &["column customs_value", "type Utf8", "Decimal128(18,2)"],
    );

    let wh = generate(1_000, 1);
    let tariff = wh.path().join("reference/tariff.parquet");
    let batch = read_parquet(&tariff);
    let text = cast(batch.column_by_name("duty_rate").unwrap(), &DataType::Utf8).unwrap();
    write_parquet(
        &tariff,
        &replace_column(
            &batch,
            "duty_rate",
            Some((Field::new("duty_rate", DataType::Utf8, true), text)),
        ),
    );
    assert_mentions(
        &open_error(&wh),
        &[
            "table reference.tariff",
            "reference/tariff.parquet",
            "column duty_rate",
            "Float64",
        ],
    );
}

#[test]
fn nulls_in_required_columns_are_refused() {
    let wh = generate(1_000, 1);
    let file = rewrite_declarations(wh.path(), |b| {
        let codes = b.column_by_name("hs_code").unwrap().as_string::<i32>();
        let with_nulls: StringArray = codes
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 10 == 0 { None } else { v })
            .collect();
        let nulls = with_nulls.null_count();
        assert!(nulls > 0);
        replace_column(
            &b,
            "hs_code",
            Some((
                Field::new("hs_code", DataType::Utf8, true),
                Arc::new(with_nulls),
            )),
        )
    });
    assert_mentions(
        &open_error(&wh),
        &["table declarations", &file, "column hs_code", "null values"],
    );
}

#[test]
fn layout_violations_name_the_file() {
    let wh = generate(1_000, 1);
    let good = parquet_files(&wh.path().join("declarations"))
        .pop()
        .unwrap();
    let bad_month = wh
        .path()
        .join("declarations/year=2026/month=13/part-000.parquet");
    std::fs::create_dir_all(bad_month.parent().unwrap()).unwrap();
    std::fs::copy(&good, &bad_month).unwrap();
    assert_mentions(
        &open_error(&wh),
        &[
            "table declarations",
            "year=2026/month=13",
            "not year=YYYY/month=M",
        ],
    );

    let wh = generate(1_000, 1);
    let good = parquet_files(&wh.path().join("declarations"))
        .pop()
        .unwrap();
    std::fs::copy(&good, wh.path().join("declarations/loose.parquet")).unwrap();
    assert_mentions(
        &open_error(&wh),
        &[
            "table declarations",
            "declarations/loose.parquet",
            "year=/month=",
        ],
    );

    let wh = generate(1_000, 1);
    std::fs::write(
        wh.path()
            .join("declarations/year=2026/month=10/broken.parquet"),
        b"not parquet at all",
    )
    .unwrap();
    assert_mentions(
        &open_error(&wh),
        &[
            "table declarations",
            "broken.parquet",
            "not a readable Parquet file",
        ],
    );

    let empty = tempfile::tempdir().unwrap();
    let e = runtime().block_on(async {
        open(&empty.path().display().to_string())
            .await
            .unwrap_err()
            .to_string()
    });
    assert_mentions(&e, &["has no declarations table", "declarations/"]);

    let e = runtime().block_on(async { open("/no/such/warehouse").await.unwrap_err().to_string() });
    assert_mentions(&e, &["/no/such/warehouse", "cannot open folder"]);
}

#[test]
fn work_folders_are_skipped_and_other_folders_refused() {
    let wh = generate(1_000, 1);
    let good = parquet_files(&wh.path().join("declarations"))
        .pop()
        .unwrap();
    let staging = wh
        .path()
        .join("declarations/year=2026/month=10/_staging/tmp.parquet");
    std::fs::create_dir_all(staging.parent().unwrap()).unwrap();
    std::fs::copy(&good, &staging).unwrap();
    runtime().block_on(async {
        let s = session(&wh.uri()).await;
        assert_eq!(
            query_i64(&s, "SELECT COUNT(*) FROM declarations").await as u64,
            wh.summary.rows
        );
    });

    // Issue 17: any other folder would hide its rows from every query
    // without a word, and month=01 would not match `month = 1`: refused,
    // naming the file.
    let loose = wh.path().join("declarations/loose/extra.parquet");
    std::fs::create_dir_all(loose.parent().unwrap()).unwrap();
    std::fs::copy(&good, &loose).unwrap();
    let e = open_error(&wh);
    assert_mentions(&e, &["declarations/loose/extra.parquet", "not a partition"]);
    std::fs::remove_dir_all(loose.parent().unwrap()).unwrap();
    let padded = wh
        .path()
        .join("declarations/year=2026/month=01/part-0.parquet");
    std::fs::create_dir_all(padded.parent().unwrap()).unwrap();
    std::fs::copy(&good, &padded).unwrap();
    let e = open_error(&wh);
    assert_mentions(&e, &["month=01", "leading zero"]);
}

/// An ASYCUDA-style export: other column names, Int64 item numbers, Float64
/// values, dates as dd/mm/yyyy text, no supplier column, another folder;
/// its first file was written by another tool, with Decimal(20,4) values,
/// Int16 item numbers and categorical (dictionary) lanes.
fn asycuda_export(wh: &TestWarehouse) -> tempfile::TempDir {
    let export = tempfile::tempdir().unwrap();
    for (n, file) in parquet_files(&wh.path().join("declarations"))
        .into_iter()
        .enumerate()
    {
        let other_tool = n == 0;
        let relative = file.strip_prefix(wh.path().join("declarations")).unwrap();
        let b = read_parquet(&file);
        let rename =
            |b: &arrow::array::RecordBatch, from: &str, to: &str, data_type: Option<DataType>| {
                let column = b.column_by_name(from).unwrap();
                let column = match &data_type {
                    Some(t) => cast(column, t).unwrap(),
                    None => column.clone(),
                };
                replace_column(
                    b,
                    from,
                    Some((Field::new(to, column.data_type().clone(), true), column)),
                )
            };
        let b = rename(&b, "declaration_id", "SGD.NUMBER", None);
        let (item_type, value_type, lane_type) = if other_tool {
            (
                DataType::Int16,
                DataType::Decimal128(20, 4),
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            )
        } else {
            (DataType::Int64, DataType::Float64, DataType::Utf8)
        };
        let b = rename(&b, "item_no", "ITEM.NUMBER", Some(item_type));
        let b = rename(&b, "hs_code", "TARIFF.CODE", None);
        let b = rename(&b, "origin_country", "ORIGIN.CODE", None);
        let b = rename(&b, "customs_value", "CIF.VALUE", Some(value_type));
        let b = rename(&b, "gross_mass_kg", "GROSS.WEIGHT", None);
        let b = rename(&b, "lane", "SELECTIVITY.LANE", Some(lane_type));
        let b = rename(&b, "duties_paid", "RAISED_TAX_AMOUNT", None);
        let dates = b
            .column_by_name("declaration_date")
            .unwrap()
            .as_primitive::<Date32Type>();
        let text: StringArray = dates
            .iter()
            .map(|d| {
                d.map(|d| {
                    Date32Type::to_naive_date_opt(d)
                        .unwrap()
                        .format("%d/%m/%Y")
                        .to_string()
                })
            })
            .collect();
        let b = replace_column(
            &b,
            "declaration_date",
            Some((Field::new("SGD.DATE", DataType::Utf8, true), Arc::new(text))),
        );
        let b = replace_column(&b, "supplier_id", None);
        write_parquet(&export.path().join("sgd").join(relative), &b);
    }
    std::fs::write(
        export.path().join("aduana.toml"),
        r#"
[tables.declarations]
path = "sgd"

[tables.declarations.columns]
declaration_id = "SGD.NUMBER"
item_no = { from = "ITEM.NUMBER", cast = "int32" }
declaration_date = { from = "SGD.DATE", cast = "date", format = "%d/%m/%Y" }
hs_code = "TARIFF.CODE"
origin_country = "ORIGIN.CODE"
customs_value = { from = "CIF.VALUE", cast = "decimal(18,2)" }
gross_mass_kg = "GROSS.WEIGHT"
lane = "SELECTIVITY.LANE"
duties_paid = "RAISED_TAX_AMOUNT"
supplier_id = { null = true }
"#,
    )
    .unwrap();
    export
}

#[test]
fn asycuda_export_is_queryable_through_the_column_mapping() {
    let wh = generate(3_000, 2);
    let export = asycuda_export(&wh);
    let summary_sql = "SELECT COUNT(*) AS items, SUM(customs_value) AS value, SUM(duties_paid) AS duties, \
         MIN(declaration_date) AS first, MAX(declaration_date) AS last, \
         COUNT(DISTINCT declaration_id) AS declarations, SUM(item_no) AS item_numbers, \
         COUNT(DISTINCT hs_code || origin_country || lane) AS combos \
         FROM declarations";
    runtime().block_on(async {
        let original = session(&wh.uri()).await;
        let mapped = session(&export.path().display().to_string()).await;
        assert_eq!(
            query_text(&original, summary_sql).await,
            query_text(&mapped, summary_sql).await
        );
        assert_eq!(
            query_i64(
                &mapped,
                "SELECT COUNT(*) FROM declarations WHERE supplier_id IS NOT NULL"
            )
            .await,
            0
        );
        let schema = mapped
            .context()
            .table("declarations")
            .await
            .unwrap()
            .schema()
            .as_arrow()
            .clone();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut expected: Vec<&str> = aduana_warehouse::contract::DECLARATIONS
            .columns
            .iter()
            .map(|c| c.name)
            .collect();
        expected.extend(["year", "month"]);
        assert_eq!(names, expected);
        assert_eq!(
            schema.field_with_name("item_no").unwrap().data_type(),
            &DataType::Int32
        );

        // Partition pruning still reaches the files through the mapping.
        let plan = physical_plan(
            &mapped,
            "SELECT declaration_id FROM declarations WHERE year = 2026 AND month = 10",
        )
        .await;
        let text = displayable(plan.as_ref()).indent(true).to_string();
        assert!(
            text.contains("month=10/") && !text.contains("month=9/"),
            "{text}"
        );
    });

    // A mapping to a column the files do not have names both.
    std::fs::write(
        export.path().join("aduana.toml"),
        "[tables.declarations]\npath = \"sgd\"\n[tables.declarations.columns]\ndeclaration_id = \"SGD.NUMERO\"\n",
    )
    .unwrap();
    let e = runtime().block_on(async {
        open(&export.path().display().to_string())
            .await
            .unwrap_err()
            .to_string()
    });
    assert_mentions(
        &e,
        &["missing column declaration_id (mapped from source column SGD.NUMERO)"],
    );

    // Dates in another format than the mapping says: `check` fails and
    // names the column and the setting, not only the parse error.
    let wrong = asycuda_export(&wh);
    let text = std::fs::read_to_string(wrong.path().join("aduana.toml")).unwrap();
    std::fs::write(
        wrong.path().join("aduana.toml"),
        text.replace("format = \"%d/%m/%Y\"", "format = \"%Y-%m-%d\""),
    )
    .unwrap();
    let out = run(aduana().args(["check", "-w", &wrong.path().display().to_string()]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_mentions(
        &stdout(&out),
        &[
            "unreadable: sgd/",
            "the dates of declaration_date do not have the format \"%Y-%m-%d\"",
        ],
    );
}

#[test]
fn money_from_int64_cents_is_refused_not_misread() {
    // Integers are not money in the contract: silently reading cents as
    // units would inflate every value a hundredfold.
    let wh = generate(1_000, 1);
    rewrite_declarations(wh.path(), |b| {
        let cents: Int64Array = b
            .column_by_name("customs_value")
            .unwrap()
            .as_primitive::<arrow::datatypes::Decimal128Type>()
            .iter()
            .map(|v| v.map(|v| v as i64))
            .collect();
        replace_column(
            &b,
            "customs_value",
            Some((
                Field::new("customs_value", DataType::Int64, false),
                Arc::new(cents),
            )),
        )
    });
    assert_mentions(&open_error(&wh), &["column customs_value", "type Int64"]);
}

/// Issue 17: money in Float64 beyond what Decimal128(18,2) holds (1e308)
/// is refused at open by file and column, not a cast error naming nothing
/// when a query reaches the row.
#[test]
fn money_in_float64_beyond_the_decimal_range_names_file_and_column() {
    let wh = generate(1_000, 1);
    let file = rewrite_declarations(wh.path(), |b| {
        let values: arrow::array::Float64Array = b
            .column_by_name("customs_value")
            .unwrap()
            .as_primitive::<arrow::datatypes::Decimal128Type>()
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i == 3 {
                    Some(1e308)
                } else {
                    v.map(|v| v as f64 / 100.0)
                }
            })
            .collect();
        replace_column(
            &b,
            "customs_value",
            Some((
                Field::new("customs_value", DataType::Float64, true),
                Arc::new(values),
            )),
        )
    });
    assert_mentions(
        &open_error(&wh),
        &[
            "table declarations",
            &file,
            "column customs_value",
            "1e308",
            "Decimal128(18,2)",
        ],
    );
}

#[test]
fn file_uris_and_an_explicit_config_file() {
    let wh = generate(3_000, 2);
    let export = asycuda_export(&wh);
    // The config may live outside the warehouse (--config), e.g. in /etc.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = elsewhere.path().join("gt.toml");
    std::fs::rename(export.path().join("aduana.toml"), &config).unwrap();
    let uri = format!("file://{}", export.path().display());
    runtime().block_on(async {
        let e = open(&uri).await.unwrap_err().to_string();
        assert!(
            e.contains("has no declarations table"),
            "without the config: {e}"
        );
        let options = aduana_warehouse::OpenOptions {
            config_path: Some(config.clone()),
            ..Default::default()
        };
        let mapped = aduana_warehouse::Warehouse::open_with(&uri, options)
            .await
            .unwrap();
        assert_eq!(
            mapped.table("declarations").unwrap().rows(),
            wh.summary.rows
        );
    });
    let out = run(aduana().args([
        "sql",
        "-w",
        &uri,
        "--config",
        config.to_str().unwrap(),
        "--memory-limit",
        "512M",
        "--target-partitions",
        "2",
        "--format",
        "csv",
        "-c",
        "SELECT COUNT(*) AS n FROM declarations",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("n\n{}\n", wh.summary.rows));
    let bad = run(aduana().args(["check", "-w", &uri, "--config", "/no/such.toml"]));
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("/no/such.toml"), "{}", stderr(&bad));
}
