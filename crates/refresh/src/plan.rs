//! The plan of a run: which partitions to score and why, which model.

use std::collections::BTreeMap;

use std::time::Instant;

use aduana_warehouse::risk::{self, InputFile, Snapshot};

use chrono::Utc;

use serde_json::json;

use crate::{ModelUse, Partition, RefreshError, Result, Run, input_file};

/// What the run found it must do.
pub(crate) struct Plan {
    pub(crate) inputs: BTreeMap<Partition, Vec<InputFile>>,
    pub(crate) rows_in: BTreeMap<Partition, u64>,
    /// Partitions to score and why.
    pub(crate) to_score: BTreeMap<Partition, String>,
    pub(crate) removed: Vec<String>,
    pub(crate) inspections: Vec<InputFile>,
    pub(crate) inspections_changed: bool,
    pub(crate) previous: Option<Snapshot>,
    /// The model version to score with (None: build one) and why.
    pub(crate) model: Option<String>,
    pub(crate) model_reason: String,
}

impl Run<'_> {
    pub(crate) async fn plan(&mut self) -> Result<Plan> {
        let started = Instant::now();
        let declarations = self.warehouse.table("declarations").ok_or_else(|| {
            RefreshError::BadInput(format!(
                "warehouse {} has no declarations to score",
                self.location.display
            ))
        })?;
        let mut inputs: BTreeMap<Partition, Vec<InputFile>> = BTreeMap::new();
        let mut rows_in: BTreeMap<Partition, u64> = BTreeMap::new();
        for file in &declarations.files {
            let partition = file.partition.ok_or_else(|| {
                RefreshError::BadInput(format!(
                    "{}: the refresh needs declarations in year=/month= partitions",
                    self.location.url_of(&file.meta.location, false)
                ))
            })?;
            inputs
                .entry(partition)
                .or_default()
                .push(input_file(&self.location, &file.meta));
            *rows_in.entry(partition).or_default() += file.rows;
        }
        for files in inputs.values_mut() {
            files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        let mut inspections: Vec<InputFile> = self
            .warehouse
            .table("inspections")
            .map(|t| {
                t.files
                    .iter()
                    .map(|f| input_file(&self.location, &f.meta))
                    .collect()
            })
            .unwrap_or_default();
        inspections.sort_by(|a, b| a.path.cmp(&b.path));
        let previous = risk::load_snapshot(&self.location, &self.root).await?;

        // The model: the current one of this root unless asked, absent or old.
        let model_root = self.path("");
        let store = self.store().as_ref();
        let current = aduana_model::current_version(store, &model_root).await?;
        let (model, model_reason) = match current {
            _ if self.options.rebuild_model => (None, "asked (--rebuild-model)".to_string()),
            None => (None, "no model yet".to_string()),
            Some(version) => {
                let manifest = aduana_model::read_manifest(store, &model_root, &version).await?;
                let age_days = chrono::DateTime::parse_from_rfc3339(&manifest.built_at)
                    .map(|at| (Utc::now() - at.with_timezone(&Utc)).num_days())
                    .unwrap_or(i64::MAX);
                if manifest.format < aduana_model::MODEL_FORMAT {
                    (
                        None,
                        format!(
                            "model {version} was built by an older Aduana (model format {}, now {})",
                            manifest.format,
                            aduana_model::MODEL_FORMAT
                        ),
                    )
                } else if age_days > self.options.model_max_age_days as i64 {
                    (
                        None,
                        format!(
                            "model {version} is {age_days} days old (more than {})",
                            self.options.model_max_age_days
                        ),
                    )
                } else {
                    (Some(version), "current model".to_string())
                }
            }
        };

        let since = self.options.since.map(|d| Partition {
            year: chrono::Datelike::year(&d),
            month: chrono::Datelike::month(&d) as i32,
        });
        for forced in &self.options.partitions {
            if !inputs.contains_key(forced) {
                return Err(RefreshError::BadInput(format!(
                    "--partitions {}: no declarations in that partition",
                    forced.to_string()
                )));
            }
        }
        let mut to_score = BTreeMap::new();
        for (partition, files) in &inputs {
            let published = previous
                .as_ref()
                .and_then(|s| s.partitions.get(&partition.to_string()));
            let reason = if model.is_none() {
                Some("new model")
            } else if previous
                .as_ref()
                .is_some_and(|s| Some(&s.model_version) != model.as_ref())
            {
                Some("model changed since the last run")
            } else if published.is_none() {
                Some("new partition")
            } else if published.is_some_and(|p| &p.inputs != files) {
                Some("files changed")
            } else if let (Some(p), Some(version)) = (published, model.as_ref())
                && p.scores != self.partition_file(risk::SCORES_DIR, *partition, version, files)
            {
                // Same inputs and model, another file name: an older
                // release wrote it in another format or layout.
                Some("written by an older release")
            } else if self.options.partitions.contains(partition) {
                Some("asked (--partitions)")
            } else if since.is_some_and(|s| *partition >= s) {
                Some("asked (--since)")
            } else {
                None
            };
            if let Some(reason) = reason {
                to_score.insert(*partition, reason.to_string());
            }
        }
        let removed: Vec<String> = previous
            .as_ref()
            .map(|s| {
                s.partitions
                    .keys()
                    .filter(|k| !inputs.keys().any(|p| &p.to_string() == *k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let inspections_changed = previous
            .as_ref()
            .is_none_or(|s| s.inspections != inspections);
        for (partition, reason) in &to_score {
            self.reporter.event(
                "plan",
                &[
                    ("partition", json!(partition.to_string())),
                    ("rows", json!(rows_in[partition])),
                    ("reason", json!(reason)),
                ],
            );
        }
        self.reporter.event(
            "plan",
            &[
                ("partitions", json!(inputs.len())),
                ("to_score", json!(to_score.len())),
                ("removed", json!(removed)),
                ("inspections_changed", json!(inspections_changed)),
                ("model", json!(model)),
                ("model_reason", json!(model_reason)),
            ],
        );
        self.manifest.scored_partitions = to_score
            .iter()
            .map(|(p, r)| (p.to_string(), r.clone()))
            .collect();
        self.manifest.unchanged_partitions = inputs.len() - to_score.len();
        self.manifest.removed_partitions = removed.clone();
        self.manifest.inspections_changed = inspections_changed;
        self.manifest.rows_in = to_score.keys().map(|p| rows_in[p]).sum();
        self.manifest.model = Some(ModelUse {
            version: model.clone().unwrap_or_else(|| "(to build)".into()),
            rebuilt: model.is_none(),
            reason: model_reason.clone(),
        });
        let plan = Plan {
            inputs,
            rows_in,
            to_score,
            removed,
            inspections,
            inspections_changed,
            previous,
            model,
            model_reason,
        };
        self.step("plan", started, 0);
        Ok(plan)
    }
}
