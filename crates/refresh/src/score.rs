//! Scoring: the model (built when due), then each partition to score into
//! staging, its rows that cannot be scored into the rejects.

use std::collections::BTreeMap;
use std::time::Instant;

use aduana_engine::model_build::BuildOptions;
use aduana_engine::{EngineOptions, Session, WritePolicy};
use aduana_warehouse::risk::{self, InputFile, PartitionState, REJECTS_SCHEMA, SCORES_SCHEMA};

use arrow::array::AsArray;
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef, UInt64Type};
use datafusion::common::Column;
use datafusion::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::{Expr, cast as cast_expr};
use futures::StreamExt;
use object_store::ObjectStoreExt;

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
        // On a cluster each partition's files are written by an executor:
        // several partitions in flight keep several executors writing. In
        // process one query already uses every core.
        let in_flight = if self.options.engine.cluster.is_some() {
            PARTITIONS_IN_FLIGHT_ON_CLUSTER
        } else {
            1
        };
        let (mut done_rows, mut scored, mut rejected) = (0, 0, 0);
        {
            let this = &*self;
            let mut states = futures::stream::iter(plan.to_score.keys().copied())
                .map(|partition| this.score_partition(session, partition, plan, model_version))
                .buffered(in_flight);
            this.reporter.progress(
                "scoring",
                0,
                plan.to_score.len(),
                0,
                started.elapsed().as_secs_f64(),
            );
            let mut i = 0;
            while let Some(state) = states.next().await {
                let (partition, state) = state?;
                i += 1;
                done_rows += state.rows_in;
                scored += state.scored;
                rejected += state.rejected;
                staged.push(state.scores.clone());
                staged.extend(state.rejects.clone());
                partitions.insert(partition.to_string(), state);
                this.reporter.progress(
                    "scoring",
                    i,
                    plan.to_score.len(),
                    done_rows,
                    started.elapsed().as_secs_f64(),
                );
            }
        }
        self.manifest.rows_scored += scored;
        self.manifest.rows_rejected += rejected;
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

    /// Scores `partition` into its staged score file, and its rows that
    /// cannot be scored into a reject file (none when there are none).
    pub(crate) async fn score_partition(
        &self,
        session: &Session,
        partition: Partition,
        plan: &Plan,
        model_version: &str,
    ) -> Result<(Partition, PartitionState)> {
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
                &sql::SCORES_ORDER,
                &scores,
                &SCORES_SCHEMA,
            )
            .await
            .map_err(named)?;
        let rejects_file = self.partition_file(risk::REJECTS_DIR, partition, model_version, inputs);
        let rejected = self
            .write_query(
                session,
                &sql::partition_rejects(year, month),
                &sql::REJECTS_ORDER,
                &rejects_file,
                &REJECTS_SCHEMA,
            )
            .await
            .map_err(named)?;
        let rejects = if rejected > 0 {
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
        let state = PartitionState {
            inputs: inputs.clone(),
            scores,
            rejects,
            rows_in,
            scored,
            rejected,
            trader_risk: None,
            trader_rows: 0,
        };
        Ok((partition, state))
    }

    /// Runs `query` and writes its rows, with `schema`'s columns and types,
    /// to `relative` under the staging prefix; returns the rows written.
    /// The file is written by the query itself (a Parquet sink at the top
    /// of its plan): on a cluster an executor writes it and only the count
    /// comes back to this process.
    pub(crate) async fn write_query(
        &self,
        session: &Session,
        query: &str,
        order: &[&str],
        relative: &str,
        schema: &SchemaRef,
    ) -> Result<u64> {
        let path = self
            .location
            .child(&risk::join(&self.staging_dir(), relative));
        let frame = session.sql(query, WritePolicy::ReadOnly).await?;
        let columns = schema
            .fields()
            .iter()
            .map(|field| {
                let stored = stored_type(field.data_type());
                cast_expr(Expr::Column(Column::from_name(field.name())), stored).alias(field.name())
            })
            .collect::<Vec<_>>();
        // Sorted after the casts: a sort below them left the file unsorted
        // (the writer's plan did not see an order through the casts, so it
        // spread the rows over the cores to cast them and gathered them
        // back in any order).
        let order = order
            .iter()
            .map(|name| Expr::Column(Column::from_name(*name)).sort(true, false))
            .collect::<Vec<_>>();
        let counts = frame
            .select(columns)?
            .sort(order)?
            .write_parquet(
                &self.location.url_of(&path, false),
                DataFrameWriteOptions::new().with_single_file_output(true),
                Some(writer_options()),
            )
            .await?;
        let rows = counts
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                cast(b.column(0), &DataType::UInt64)
                    .map(|c| c.as_primitive::<UInt64Type>().values().iter().sum::<u64>())
            })
            .sum::<std::result::Result<u64, _>>()?;
        Ok(rows)
    }
}

/// The type a column of `data_type` is written with. Files hold plain
/// strings: every Parquet reader reads them.
pub(crate) fn stored_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        other => other.clone(),
    }
}

/// How many partitions a refresh on a cluster scores at once.
const PARTITIONS_IN_FLIGHT_ON_CLUSTER: usize = 4;

/// The Parquet writer's settings for score and reject files: Snappy, fast
/// to write and read, which every Parquet reader knows.
fn writer_options() -> TableParquetOptions {
    let mut options = TableParquetOptions::default();
    options.global.compression = Some("snappy".into());
    options
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
