//! Runs every `slt/*.slt` file (sqllogictest format) against a DataFusion
//! session with Aduana's functions registered: without a risk model, or,
//! for files named `model_*.slt`, with the small model `tiny_model` builds
//! (whose answers can be worked out by hand).

use std::path::PathBuf;
use std::sync::Arc;

use aduana_model::RiskModel;
use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};

use async_trait::async_trait;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

struct Db {
    ctx: SessionContext,
}

impl Db {
    fn new(model: Option<Arc<RiskModel>>) -> Self {
        let ctx =
            SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
        aduana_udfs::register_all(&ctx, &aduana_udfs::ModelHandle::new(model))
            .expect("functions register");
        Db { ctx }
    }
}

/// A model of two price cells, two importers' records, origin shares and a
/// two-class classifier:
/// - HS 847130 from CN: per unit (NAR) median ln(500), MAD 0.2;
/// - HS 847130, all origins: median ln(600), MAD 0.3;
/// - importer A: 50 of 100 items markedly low, B: 0 of 900;
/// - HS 847130 origins: CN 900 items, VN 30; PA dispatches others' goods 80%
///   of the time;
/// - classes 610910 (cotton shirts) and 847130 (laptop computer);
/// - a tariff of lines 01012100 (10%) and 01012900 (20%) and heading 0102
///   (7.5%).
fn tiny_model() -> RiskModel {
    let text = |v: Vec<Option<&str>>| Arc::new(StringArray::from(v)) as ArrayRef;
    let float = |v: Vec<Option<f64>>| Arc::new(Float64Array::from(v)) as ArrayRef;
    let int64 = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    let (l500, l600) = (500f64.ln(), 600f64.ln());
    let prices = RecordBatch::try_new(
        aduana_model::price_schema(),
        vec![
            Arc::new(Int32Array::from(vec![1, 2])),
            text(vec![Some("847130"), Some("847130")]),
            text(vec![Some("CN"), None]),
            text(vec![Some("NAR"), Some("NAR")]),
            int64(vec![100, 300]),
            float(vec![Some(l500), Some(l600)]),
            float(vec![Some(0.2), Some(0.3)]),
            float(vec![Some(l500 - 0.2), Some(l600 - 0.3)]),
            float(vec![Some(l500 + 0.2), Some(l600 + 0.3)]),
            int64(vec![0, 0]),
            float(vec![None, None]),
            float(vec![None, None]),
            float(vec![None, None]),
            float(vec![None, None]),
            float(vec![Some(0.0), Some(0.0)]),
            float(vec![Some(24_300.0), Some(24_300.0)]),
        ],
    )
    .expect("price batch");
    let rows: Vec<(
        &str,
        Option<&str>,
        Option<&str>,
        Option<&str>,
        i64,
        Option<f64>,
    )> = vec![
        (
            "hs6_origin",
            Some("847130"),
            Some("CN"),
            None,
            900,
            Some(900.0 / 930.0),
        ),
        (
            "hs6_origin",
            Some("847130"),
            Some("VN"),
            None,
            30,
            Some(30.0 / 930.0),
        ),
        ("dispatch", None, Some("PA"), None, 100, Some(0.8)),
        ("valuation", None, None, Some("A"), 100, Some(0.5)),
        ("valuation", None, None, Some("B"), 900, Some(0.0)),
        // A tariff of live animals only (no other test prices chapter 01):
        // two horse lines and the heading of bovines.
        ("tariff", Some("01012100"), None, None, 0, Some(10.0)),
        ("tariff", Some("01012900"), None, None, 0, Some(20.0)),
        ("tariff", Some("0102"), None, None, 0, Some(7.5)),
    ];
    let schema = aduana_model::origin_schema();
    let n = rows.len();
    let origins = RecordBatch::try_new(
        schema.clone(),
        vec![
            text(rows.iter().map(|r| Some(r.0)).collect()),
            text(rows.iter().map(|r| r.1).collect()),
            text(rows.iter().map(|r| r.2).collect()),
            text(rows.iter().map(|r| r.3).collect()),
            int64(rows.iter().map(|r| r.4).collect()),
            float(rows.iter().map(|r| r.5).collect()),
            float(vec![None; n]),
            float(vec![None; n]),
            Arc::new(Int32Array::from(vec![None; n])),
            Arc::new(Int32Array::from(vec![None; n])),
        ],
    )
    .expect("origin batch");
    let manifest = aduana_model::Manifest {
        version: "tiny".into(),
        format: aduana_model::MODEL_FORMAT,
        built_at: "2026-11-01T00:00:00Z".into(),
        window_start: "2025-11-01".into(),
        window_end: "2026-11-01".into(),
        training_items: 1000,
        excluded_fraud_items: 0,
        excluded_inspected_items: 0,
        lanes: None,
        min_cell_size: 30,
        price_cells: Default::default(),
        learned: None,
    };
    let mut model = RiskModel::from_batches(manifest, &[prices], &[origins]).expect("model");
    model.classifier = aduana_model::classifier::Classifier::new(
        vec!["610910".into(), "847130".into()],
        vec![50.0, 40.0],
        &[
            (0, "cotton".into(), 50.0),
            (0, "shirts".into(), 50.0),
            (1, "laptop".into(), 40.0),
            (1, "computer".into(), 40.0),
        ],
    );
    model
}

#[async_trait]
impl AsyncDB for Db {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let frame = self.ctx.sql(sql).await?;
        let columns = frame.schema().fields().len();
        let batches = frame.collect().await?;
        if columns == 0 {
            return Ok(DBOutput::StatementComplete(0));
        }
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; columns],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("slt folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let mut failures = 0;
    let model = Arc::new(tiny_model());
    for file in &files {
        let with_model = file
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("model_"));
        let model = with_model.then(|| model.clone());
        let mut runner = Runner::new(move || {
            let model = model.clone();
            async move { Ok(Db::new(model)) }
        });
        match runner.run_file_async(file).await {
            Ok(()) => println!("ok   {}", file.display()),
            Err(e) => {
                failures += 1;
                println!("FAIL {}\n{e}", file.display());
            }
        }
    }
    if failures > 0 {
        panic!("{failures} of {} .slt files failed", files.len());
    }
}
