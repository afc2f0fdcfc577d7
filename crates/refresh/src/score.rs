//! Scoring: the model (built when due), then each partition to score into
//! staging, its rows that cannot be scored into the rejects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aduana_engine::model_build::BuildOptions;
use aduana_engine::{EngineOptions, Session, WritePolicy};
use aduana_warehouse::risk::{self, InputFile, PartitionState, REJECTS_SCHEMA, SCORES_SCHEMA};

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;

use futures::StreamExt;

use object_store::ObjectStoreExt;
use parquet::arrow::AsyncArrowWriter;

use serde_json::json;

use crate::{
    FORMAT_VERSION, Partition, RefreshError, Result, Run, crash_point, fingerprint, plan::Plan, sql,
};

impl Run<'_> {
    /// Scores every partition the plan names into staging; with the
    /// unchanged partitions' published state, the state of every partition
    /// and the files staged.
    pub(crate) async fn score_all(
        &mut self,
        session: &Session,
        plan: &Plan,
        model_version: &str,
    ) -> Result<(BTreeMap<String, PartitionState>, Vec<String>)> {
        let mut partitions: BTreeMap<String, PartitionState> = BTreeMap::new();
        let mut staged: Vec<String> = Vec::new();
        let started = Instant::now();
        let total_rows: u64 = plan.to_score.keys().map(|p| plan.rows_in[p]).sum();
        let mut done_rows = 0;
        for (i, (&partition, _)) in plan.to_score.iter().enumerate() {
            self.reporter.progress(
                "scoring",
                i,
                plan.to_score.len(),
                done_rows,
                started.elapsed().as_secs_f64(),
            );
            let state = self
                .score_partition(session, partition, plan, model_version, &mut staged)
                .await?;
            done_rows += state.rows_in;
            self.manifest.rows_scored += state.scored;
            self.manifest.rows_rejected += state.rejected;
            partitions.insert(partition.to_string(), state);
        }
        self.reporter.finish_progress();
        self.step("score", started, total_rows);
        crash_point("scored");
        // Unchanged partitions keep their published files.
        if let Some(previous) = &plan.previous {
            for (key, state) in &previous.partitions {
                if !partitions.contains_key(key) && !plan.removed.contains(key) {
                    partitions.insert(key.clone(), state.clone());
                }
            }
        }

        Ok((partitions, staged))
    }

    pub(crate) async fn build_model(&mut self) -> Result<String> {
        let started = Instant::now();
        let engine = EngineOptions {
            skip_model: true,
            model_at: None,
            // The builder stages its training rows in a memory table, which
            // lives in this process: it runs here, scoring on the cluster.
            cluster: None,
            ..self.options.engine.clone()
        };
        let session = Session::open(self.warehouse.clone(), &engine).await?;
        let options = BuildOptions {
            through: self.options.as_of.and_then(|d| d.pred_opt()),
            window_months: self.options.window_months,
            root: Some(self.path("")),
            make_current: false,
            ..Default::default()
        };
        let built = aduana_engine::model_build::build(&session, &options).await?;
        for (phase, took) in &built.phases {
            self.reporter.event(
                "model_phase",
                &[
                    ("phase", json!(phase)),
                    (
                        "seconds",
                        json!((took.as_secs_f64() * 1000.0).round() / 1000.0),
                    ),
                ],
            );
        }
        self.step("model_build", started, built.manifest.training_items);
        Ok(built.manifest.version)
    }

    /// A partition's file of the score or reject table `dir`, named by a
    /// fingerprint of what it is computed from (the format, the model, the
    /// input files, a backtest's day).
    pub(crate) fn partition_file(
        &self,
        dir: &str,
        partition: Partition,
        model_version: &str,
        inputs: &[InputFile],
    ) -> String {
        let inputs_key = serde_json::to_string(inputs).expect("plain data");
        let cutoff = self.manifest.as_of.clone().unwrap_or_default();
        let name = fingerprint(&[FORMAT_VERSION, model_version, &inputs_key, &cutoff]);
        format!("{dir}/{}/part-{name}.parquet", partition.to_string())
    }

    pub(crate) async fn score_partition(
        &mut self,
        session: &Session,
        partition: Partition,
        plan: &Plan,
        model_version: &str,
        staged: &mut Vec<String>,
    ) -> Result<PartitionState> {
        let key = partition.to_string();
        let inputs = &plan.inputs[&partition];
        let scores = self.partition_file(risk::SCORES_DIR, partition, model_version, inputs);
        let Partition { year, month } = partition;
        let files: Vec<String> = inputs.iter().map(|f| f.path.clone()).collect();
        let named = |e: RefreshError| e.in_partition(&key, &files);
        refuse_duplicates(session, &key, year, month).await?;
        let scored = self
            .write_query(
                session,
                &sql::partition_scores(year, month, model_version),
                &scores,
                &SCORES_SCHEMA,
            )
            .await
            .map_err(named)?;
        staged.push(scores.clone());
        let rejects_file = self.partition_file(risk::REJECTS_DIR, partition, model_version, inputs);
        let rejected = self
            .write_query(
                session,
                &sql::partition_rejects(year, month),
                &rejects_file,
                &REJECTS_SCHEMA,
            )
            .await
            .map_err(named)?;
        let rejects = if rejected > 0 {
            staged.push(rejects_file.clone());
            Some(rejects_file)
        } else {
            let path = self
                .location
                .child(&risk::join(&self.staging_dir(), &rejects_file));
            let _ = self.store().delete(&path).await;
            None
        };
        let rows_in = plan.rows_in[&partition];
        if scored + rejected != rows_in {
            return Err(RefreshError::Failed(format!(
                "partition {key}: {rows_in} rows in, but {scored} scored and {rejected} rejected"
            )));
        }
        self.reporter.event(
            "scored",
            &[
                ("partition", json!(key)),
                ("rows", json!(rows_in)),
                ("scored", json!(scored)),
                ("rejected", json!(rejected)),
            ],
        );
        Ok(PartitionState {
            inputs: inputs.clone(),
            scores,
            rejects,
            rows_in,
            scored,
            rejected,
            trader_risk: None,
            trader_rows: 0,
        })
    }

    /// Runs `query` and writes its rows, conformed to `schema`, to
    /// `relative` under the staging prefix; returns the rows written.
    pub(crate) async fn write_query(
        &self,
        session: &Session,
        query: &str,
        relative: &str,
        schema: &SchemaRef,
    ) -> Result<u64> {
        let path = self
            .location
            .child(&risk::join(&self.staging_dir(), relative));
        let mut stream = session
            .sql(query, WritePolicy::ReadOnly)
            .await?
            .execute_stream()
            .await?;
        let writer = object_store::buffered::BufWriter::new(self.store().clone(), path.clone());
        let file_schema = conform(&RecordBatch::new_empty(schema.clone()), schema)?.schema();
        let mut writer = AsyncArrowWriter::try_new(writer, file_schema, None)?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = conform(&batch?, schema)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).await?;
        }
        writer.close().await?;
        Ok(rows)
    }
}

/// Fails the run, naming the partition and the first keys, when a
/// (declaration_id, item_no) key of the partition has more than one row.
pub(crate) async fn refuse_duplicates(
    session: &Session,
    key: &str,
    year: i32,
    month: i32,
) -> Result<()> {
    use arrow::array::AsArray;
    let batches = session
        .context()
        .sql(&sql::partition_duplicates(year, month))
        .await?
        .collect()
        .await?;
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(());
    };
    use arrow::datatypes::{DataType, Int64Type};
    let column = |i: usize, to: &DataType| arrow::compute::cast(batch.column(i), to);
    let (ids, items) = (column(0, &DataType::Utf8)?, column(1, &DataType::Int64)?);
    let (copies, keys) = (column(2, &DataType::Int64)?, column(3, &DataType::Int64)?);
    let ids = ids.as_string::<i32>();
    let items = items.as_primitive::<Int64Type>();
    let copies = copies.as_primitive::<Int64Type>();
    let keys = keys.as_primitive::<Int64Type>().value(0);
    let examples: Vec<String> = (0..batch.num_rows())
        .map(|i| {
            format!(
                "{} item {} ({} rows)",
                ids.value(i),
                items.value(i),
                copies.value(i)
            )
        })
        .collect();
    Err(RefreshError::BadInput(format!(
        "declarations partition {key}: {keys} (declaration_id, item_no) key(s) have more than one \
         row, e.g. {}; each item must appear once (a copy would be scored and counted twice): \
         remove the copies and run again",
        examples.join(", ")
    )))
}

/// `batch` with exactly `schema`'s columns, by name, cast to its types.
pub(crate) fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                RefreshError::Failed(format!("query result lacks column {}", field.name()))
            })?;
            // Files hold plain strings: every Parquet reader reads them.
            let target = match field.data_type() {
                arrow::datatypes::DataType::Utf8View => &arrow::datatypes::DataType::Utf8,
                other => other,
            };
            Ok(cast(column, target)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
}
