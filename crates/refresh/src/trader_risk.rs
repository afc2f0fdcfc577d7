//! Trader risk: importer-months computed from the scores of the periods
//! that changed, written per period into staging.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Instant;

use aduana_engine::{Session, WritePolicy};
use aduana_warehouse::risk::{self, InputFile, PartitionState, SCORES_SCHEMA, TRADER_RISK_SCHEMA};

use arrow::array::{AsArray, RecordBatch};

use arrow::datatypes::{Int32Type, SchemaRef};

use datafusion::datasource::listing::ListingTableUrl;
use futures::StreamExt;

use parquet::arrow::AsyncArrowWriter;

use crate::score::stored_type;
use crate::{FORMAT_VERSION, Partition, RefreshError, Result, Run, fingerprint, plan::Plan, sql};

impl Run<'_> {
    /// Trader risk, per period: for the periods rescored, those new
    /// inspections touch, and any not yet computed; their files staged.
    pub(crate) async fn trader_risk(
        &mut self,
        session: &Session,
        plan: &Plan,
        partitions: &mut BTreeMap<String, PartitionState>,
        staged: &mut Vec<String>,
    ) -> Result<()> {
        let started = Instant::now();
        let staged_set: BTreeSet<String> = staged.iter().cloned().collect();
        let score_file = |p: &PartitionState| {
            if staged_set.contains(&p.scores) {
                risk::join(&self.staging_dir(), &p.scores)
            } else {
                risk::join(&self.root, &p.scores)
            }
        };
        let session_files = |keys: &mut dyn Iterator<Item = &String>| {
            keys.map(|k| score_file(&partitions[k]))
                .map(|f| {
                    ListingTableUrl::parse(self.location.url_of(&self.location.child(&f), false))
                })
                .collect::<datafusion::error::Result<Vec<_>>>()
        };
        let cutoff = self.options.as_of.map(|d| d.to_string());
        let ctx = session.context();
        let periods = self
            .trader_periods(&session, &plan, &partitions, &mut |keys| {
                session_files(keys)
            })
            .await?;
        let recomputed_rows: u64 = periods.iter().map(|k| partitions[k].scored).sum();
        if !periods.is_empty() {
            let inspections_key = serde_json::to_string(&plan.inspections).expect("plain data");
            let files: BTreeMap<Partition, String> = periods
                .iter()
                .map(|key| {
                    let period = key.parse::<Partition>().expect("keys we made");
                    let name = fingerprint(&[
                        FORMAT_VERSION,
                        &partitions[key].scores,
                        &inspections_key,
                        cutoff.as_deref().unwrap_or(""),
                    ]);
                    (
                        period,
                        format!("{}/{key}/part-{name}.parquet", risk::TRADER_RISK_DIR),
                    )
                })
                .collect();
            ctx.register_table(
                "aduana_refresh_scores",
                risk::files_table(session_files(&mut periods.iter())?, SCORES_SCHEMA.clone())?,
            )?;
            let has_inspections = self.warehouse.table("inspections").is_some();
            let query =
                sql::trader_risk("aduana_refresh_scores", has_inspections, cutoff.as_deref());
            let result = self
                .write_periods(&session, &query, &files, &TRADER_RISK_SCHEMA)
                .await;
            ctx.deregister_table("aduana_refresh_scores")?;
            let rows = result?;
            for (period, file) in files {
                let state = partitions
                    .get_mut(&period.to_string())
                    .expect("a period of the table");
                state.trader_risk = Some(file.clone());
                state.trader_rows = rows.get(&period).copied().unwrap_or(0);
                staged.push(file);
            }
        }
        self.manifest.trader_periods = periods.into_iter().collect();
        self.manifest.trader_rows = partitions.values().map(|p| p.trader_rows).sum();
        self.step("trader_risk", started, recomputed_rows);
        Ok(())
    }

    /// The periods (partition keys) whose trader risk must be computed:
    /// those rescored or never computed, and those whose declarations new
    /// inspection files refer to. A changed or removed inspection file may
    /// have referred to any period, so then all are.
    pub(crate) async fn trader_periods(
        &self,
        session: &Session,
        plan: &Plan,
        partitions: &BTreeMap<String, PartitionState>,
        score_urls: &mut dyn FnMut(
            &mut dyn Iterator<Item = &String>,
        ) -> datafusion::error::Result<Vec<ListingTableUrl>>,
    ) -> Result<BTreeSet<String>> {
        let previous = plan.previous.as_ref();
        let mut periods: BTreeSet<String> = partitions
            .iter()
            .filter(|(key, p)| {
                p.trader_risk.is_none()
                    || plan
                        .to_score
                        .keys()
                        .any(|period| &period.to_string() == *key)
            })
            .map(|(key, _)| key.clone())
            .collect();
        let before: BTreeMap<&str, &InputFile> = previous
            .map(|s| s.inspections.iter().map(|f| (f.path.as_str(), f)).collect())
            .unwrap_or_default();
        let now: BTreeSet<&str> = plan.inspections.iter().map(|f| f.path.as_str()).collect();
        let rewritten = before.iter().any(|(path, file)| {
            !now.contains(path)
                || plan
                    .inspections
                    .iter()
                    .any(|f| f.path == *file.path && f != *file)
        });
        if rewritten {
            return Ok(partitions.keys().cloned().collect());
        }
        let added: Vec<object_store::path::Path> = plan
            .inspections
            .iter()
            .filter(|f| !before.contains_key(f.path.as_str()))
            .map(|f| self.location.child(&f.path))
            .collect();
        let others: Vec<&String> = partitions
            .keys()
            .filter(|k| !periods.contains(*k))
            .collect();
        if added.is_empty() || others.is_empty() {
            return Ok(periods);
        }
        let ctx = session.context();
        let Some(new_inspections) = self
            .warehouse
            .table_over_files(ctx, "inspections", &added)?
        else {
            return Ok(periods);
        };
        ctx.register_table("aduana_refresh_new_inspections", new_inspections)?;
        ctx.register_table(
            "aduana_refresh_period_scores",
            risk::files_table(score_urls(&mut others.into_iter())?, SCORES_SCHEMA.clone())?,
        )?;
        let cutoff = self
            .options
            .as_of
            .map(|d| format!(" WHERE inspected_on < DATE '{d}'"))
            .unwrap_or_default();
        let query = format!(
            "SELECT DISTINCT year, month FROM aduana_refresh_period_scores
             WHERE declaration_id IN
                 (SELECT declaration_id FROM aduana_refresh_new_inspections{cutoff})"
        );
        let result: Result<Vec<RecordBatch>> = async {
            Ok(session
                .sql(&query, WritePolicy::ReadOnly)
                .await?
                .collect()
                .await?)
        }
        .await;
        ctx.deregister_table("aduana_refresh_new_inspections")?;
        ctx.deregister_table("aduana_refresh_period_scores")?;
        for batch in result? {
            let years = batch.column(0).as_primitive::<Int32Type>();
            let months = batch.column(1).as_primitive::<Int32Type>();
            for i in 0..batch.num_rows() {
                periods.insert(
                    Partition {
                        year: years.value(i),
                        month: months.value(i),
                    }
                    .to_string(),
                );
            }
        }
        Ok(periods)
    }

    /// Runs `query`, whose rows come ordered by `year`, `month`, and writes
    /// each period's rows, conformed to `schema`, to its file in `files`
    /// under the staging prefix (an empty file for a period without rows);
    /// returns the rows written per period.
    pub(crate) async fn write_periods(
        &self,
        session: &Session,
        query: &str,
        files: &BTreeMap<Partition, String>,
        schema: &SchemaRef,
    ) -> Result<BTreeMap<Partition, u64>> {
        let mut stream = session
            .sql(query, WritePolicy::ReadOnly)
            .await?
            .execute_stream()
            .await?;
        let file_schema = conform(&RecordBatch::new_empty(schema.clone()), schema)?.schema();
        let open = |relative: &str| {
            let path = self
                .location
                .child(&risk::join(&self.staging_dir(), relative));
            let writer = object_store::buffered::BufWriter::new(self.store().clone(), path);
            AsyncArrowWriter::try_new(writer, file_schema.clone(), None)
        };
        let mut writers = BTreeMap::new();
        for (period, relative) in files {
            writers.insert(*period, open(relative)?);
        }
        let mut rows = BTreeMap::new();
        while let Some(batch) = stream.next().await {
            let batch = conform(&batch?, schema)?;
            let years = batch
                .column_by_name("year")
                .expect("schema has year")
                .as_primitive::<Int32Type>()
                .clone();
            let months = batch
                .column_by_name("month")
                .expect("schema has month")
                .as_primitive::<Int32Type>()
                .clone();
            let mut start = 0;
            while start < batch.num_rows() {
                let period = Partition {
                    year: years.value(start),
                    month: months.value(start),
                };
                let mut end = start + 1;
                while end < batch.num_rows()
                    && (years.value(end), months.value(end)) == (period.year, period.month)
                {
                    end += 1;
                }
                let writer = writers.get_mut(&period).ok_or_else(|| {
                    RefreshError::Failed(format!(
                        "trader risk for {} which was not asked for",
                        period.to_string()
                    ))
                })?;
                writer.write(&batch.slice(start, end - start)).await?;
                *rows.entry(period).or_insert(0) += (end - start) as u64;
                start = end;
            }
        }
        for writer in writers.into_values() {
            writer.close().await?;
        }
        Ok(rows)
    }
}

/// `batch` with exactly `schema`'s columns, by name, cast to its types.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = batch.column_by_name(field.name()).ok_or_else(|| {
                RefreshError::Failed(format!("query result lacks column {}", field.name()))
            })?;
            Ok(arrow::compute::cast(
                column,
                &stored_type(field.data_type()),
            )?)
        })
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
        columns,
    )?)
}
