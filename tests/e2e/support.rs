//! Helpers shared by the end-to-end tests.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use aduana_engine::{EngineOptions, Session};
use aduana_warehouse::{OpenOptions, Warehouse};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Schema;
use datafusion::arrow::util::pretty::pretty_format_batches;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A freshly generated warehouse in its own temporary folder.
pub struct TestWarehouse {
    pub dir: tempfile::TempDir,
    pub summary: aduana_synth::Summary,
}

impl TestWarehouse {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn uri(&self) -> String {
        self.path().display().to_string()
    }
}

/// `rows` items over `months` months ending 2026-10, seed 7.
pub fn generate(rows: u64, months: u32) -> TestWarehouse {
    let dir = tempfile::tempdir().unwrap();
    let mut options = aduana_synth::GenerateOptions::new(dir.path(), rows, 7);
    options.months = months;
    options.overwrite = true;
    let summary = aduana_synth::generate(&options).unwrap();
    TestWarehouse { dir, summary }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub async fn open(uri: &str) -> aduana_warehouse::Result<Warehouse> {
    Warehouse::open_with(uri, OpenOptions::default()).await
}

pub async fn session(uri: &str) -> Session {
    Session::open(open(uri).await.unwrap(), &EngineOptions::default())
        .await
        .unwrap()
}

pub async fn query(session: &Session, sql: &str) -> Vec<RecordBatch> {
    session
        .context()
        .sql(sql)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
}

/// The physical plan the session makes of `sql`.
pub async fn physical_plan(
    session: &Session,
    sql: &str,
) -> Arc<dyn datafusion::physical_plan::ExecutionPlan> {
    let frame = session.context().sql(sql).await.unwrap();
    frame.create_physical_plan().await.unwrap()
}

/// The result as an aligned text table, for readable assertions.
pub async fn query_text(session: &Session, sql: &str) -> String {
    pretty_format_batches(&query(session, sql).await)
        .unwrap()
        .to_string()
}

/// Column `c` of `batches` as optional strings (any string type).
pub fn strings(batches: &[RecordBatch], c: usize) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let column =
                arrow::compute::cast(b.column(c), &arrow::datatypes::DataType::Utf8).unwrap();
            let column = column.as_string::<i32>();
            (0..column.len())
                .map(|i| column.is_valid(i).then(|| column.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Column `c` of `batches` as optional values of the primitive type `T`.
fn primitives<T: arrow::datatypes::ArrowPrimitiveType>(
    batches: &[RecordBatch],
    c: usize,
) -> Vec<Option<T::Native>> {
    batches
        .iter()
        .flat_map(|b| {
            let column = arrow::compute::cast(b.column(c), &T::DATA_TYPE).unwrap();
            column.as_primitive::<T>().iter().collect::<Vec<_>>()
        })
        .collect()
}

/// Column `c` of `batches` as optional integers.
pub fn integers(batches: &[RecordBatch], c: usize) -> Vec<Option<i64>> {
    primitives::<arrow::datatypes::Int64Type>(batches, c)
}

/// Column `c` of `batches` as optional floats.
pub fn floats(batches: &[RecordBatch], c: usize) -> Vec<Option<f64>> {
    primitives::<arrow::datatypes::Float64Type>(batches, c)
}

/// A single integer result.
pub async fn query_i64(session: &Session, sql: &str) -> i64 {
    first_i64(&query(session, sql).await, 0)
}

/// Column `column` of a result's first row, as an integer.
pub fn first_i64(batches: &[RecordBatch], column: usize) -> i64 {
    let column = batches[0].column(column);
    let column = arrow::compute::cast(column, &arrow::datatypes::DataType::Int64).unwrap();
    column
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .value(0)
}

pub fn read_parquet(path: &Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .with_batch_size(1 << 20)
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

pub fn write_parquet(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut writer =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
}

/// All Parquet files under `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Rewrites one declarations file through `change`; returns its path
/// relative to the warehouse root.
pub fn rewrite_declarations(
    warehouse: &Path,
    change: impl FnOnce(RecordBatch) -> RecordBatch,
) -> String {
    let file = parquet_files(&warehouse.join("declarations"))
        .pop()
        .unwrap();
    let batch = change(read_parquet(&file));
    write_parquet(&file, &batch);
    file.strip_prefix(warehouse).unwrap().display().to_string()
}

/// `batch` with the declaration dates of some rows changed: `(row, days
/// since 1970)`.
pub fn with_dates(batch: &RecordBatch, changes: &[(usize, i32)]) -> RecordBatch {
    use arrow::array::{AsArray, Date32Array};
    let dates = batch.column_by_name("declaration_date").unwrap();
    let mut days: Vec<Option<i32>> = dates
        .as_primitive::<arrow::datatypes::Date32Type>()
        .iter()
        .collect();
    for &(row, day) in changes {
        days[row] = Some(day);
    }
    let field = batch
        .schema()
        .field_with_name("declaration_date")
        .unwrap()
        .clone();
    replace_column(
        batch,
        "declaration_date",
        Some((field, Arc::new(Date32Array::from(days)))),
    )
}

/// `batch` with column `name` replaced (or removed when `column` is None).
pub fn replace_column(
    batch: &RecordBatch,
    name: &str,
    column: Option<(arrow::datatypes::Field, arrow::array::ArrayRef)>,
) -> RecordBatch {
    let index = batch.schema().index_of(name).unwrap();
    let mut fields: Vec<_> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns = batch.columns().to_vec();
    match column {
        Some((field, array)) => {
            fields[index] = field;
            columns[index] = array;
        }
        None => {
            fields.remove(index);
            columns.remove(index);
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
pub fn days(date: &str) -> i32 {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

/// Adds to the warehouse at `root` one control of the whole declaration
/// `declaration` (no item number, as a post-clearance audit records it),
/// on `day` (`YYYY-MM-DD`), with `result` and `cents` of revenue
/// recovered; its other fields as the first inspection written.
pub fn add_declaration_control(
    root: &Path,
    declaration: &str,
    day: &str,
    result: &str,
    cents: i128,
) {
    use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Int32Array, StringArray};
    let sample = read_parquet(&parquet_files(&root.join("inspections"))[0]).slice(0, 1);
    let columns = sample
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let array: ArrayRef = match field.name().as_str() {
                "declaration_id" => Arc::new(StringArray::from(vec![declaration])),
                "item_no" => Arc::new(Int32Array::from(vec![None::<i32>])),
                "inspected_on" => Arc::new(Date32Array::from(vec![days(day)])),
                "result" => Arc::new(StringArray::from(vec![result])),
                "additional_revenue" => Arc::new(
                    Decimal128Array::from(vec![cents])
                        .with_precision_and_scale(18, 2)
                        .unwrap(),
                ),
                name => sample.column_by_name(name).unwrap().clone(),
            };
            arrow::compute::cast(&array, field.data_type()).unwrap()
        })
        .collect();
    let control = RecordBatch::try_new(sample.schema(), columns).unwrap();
    let (year, month) = (&day[..4], day[5..7].trim_start_matches('0'));
    write_parquet(
        &root.join(format!(
            "inspections/year={year}/month={month}/audit-{declaration}.parquet"
        )),
        &control,
    );
}

/// The `aduana` binary built for these tests.
pub fn aduana() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aduana"));
    // Keep the tests' environment from leaking in.
    command
        .env_remove("ADUANA_WAREHOUSE")
        .env_remove("ADUANA_CONFIG");
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("aduana binary runs")
}

/// Runs `command` with `input` on its standard input (a pipe, not a
/// terminal, as in cron jobs and shell pipelines).
pub fn run_with_stdin(command: &mut Command, input: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aduana binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Python with pyarrow, if this machine has it: `ADUANA_PYTHON`, the
/// project's `.venv`, or `python3`. With `ADUANA_REQUIRE_PYTHON=1` (set by
/// `.ci/run`) a missing pyarrow fails the test instead of skipping it.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var("ADUANA_PYTHON").ok().map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")),
        Some(PathBuf::from("python3")),
    ];
    for python in candidates.into_iter().flatten() {
        let ok = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    if std::env::var("ADUANA_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
        panic!("python with {module} is required (ADUANA_REQUIRE_PYTHON=1) but none was found");
    }
    eprintln!("SKIPPED: no python with {module}; run .ci/run to create the test virtualenv");
    None
}

/// Area under the ROC curve of `scores` (higher = more suspicious) for
/// `labels`, with tied scores sharing their average rank.
pub fn auc(scored: &mut [(f64, bool)]) -> f64 {
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < scored.len() {
        let mut j = i;
        while j < scored.len() && scored[j].0 == scored[i].0 {
            j += 1;
        }
        let average_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += average_rank * scored[i..j].iter().filter(|s| s.1).count() as f64;
        i = j;
    }
    let positives = scored.iter().filter(|s| s.1).count() as f64;
    let negatives = scored.len() as f64 - positives;
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Registers the generator's ground truth (`_truth/`, partitioned like the
/// declarations) as table `truth`.
pub async fn register_truth(session: &Session, warehouse: &Path) {
    let options = datafusion::prelude::ParquetReadOptions::default().table_partition_cols(vec![
        ("year".into(), arrow::datatypes::DataType::Int32),
        ("month".into(), arrow::datatypes::DataType::Int32),
    ]);
    session
        .context()
        .register_parquet("truth", format!("{}/_truth/", warehouse.display()), options)
        .await
        .unwrap();
}

/// A moto S3 server on a free loopback port, stopped on drop.
pub struct S3Server {
    child: std::process::Child,
    pub endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_moto(python: &std::path::Path) -> S3Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "moto did not start on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server
}

/// Creates `bucket` on the S3 server and uploads every file under `root`
/// to `prefix/` with boto3 (what an administration's export job would use).
pub fn upload(python: &Path, server: &S3Server, root: &Path, bucket: &str, prefix: &str) {
    let script = r#"
import sys, os, boto3
endpoint, root, bucket, prefix = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
s3.create_bucket(Bucket=bucket)
for folder, _, files in os.walk(root):
    for name in files:
        path = os.path.join(folder, name)
        s3.upload_file(path, bucket, prefix + "/" + os.path.relpath(path, root))
"#;
    let out = Command::new(python)
        .args(["-c", script, &server.endpoint])
        .arg(root)
        .args([bucket, prefix])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A self-signed certificate for localhost and 127.0.0.1 (with the
/// `openssl` command), valid one day: `(cert.pem, key.pem)` in `dir`.
pub fn self_signed_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    (cert, key)
}

/// The standard output of a run that must succeed (else the run's whole
/// story).
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Copies the folder `from` into `to` (created), recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
