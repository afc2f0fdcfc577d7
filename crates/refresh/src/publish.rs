//! Publication: staged files moved to their names, the run recorded, the
//! model and the snapshot switched last, what is unused cleared.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Instant;

use aduana_warehouse::risk::{self, PartitionState, Snapshot};

use chrono::Utc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::{
    MODEL_GRACE, RefreshError, Result, Run, RunStatus, STAGING_DIR, crash_point, plan::Plan,
};

impl Run<'_> {
    /// Publishes the run: moves the staged files to their names, records
    /// the run, switches the model and the snapshot (last: readers see the
    /// old run or this one), then clears what is no longer used.
    pub(crate) async fn publish(
        &mut self,
        plan: &Plan,
        model_version: &str,
        rebuilt: bool,
        partitions: BTreeMap<String, PartitionState>,
        staged: &[String],
    ) -> Result<()> {
        let started = Instant::now();
        for (i, file) in staged.iter().enumerate() {
            let from = self.location.child(&risk::join(&self.staging_dir(), file));
            let to = self.path(file);
            self.store()
                .rename(&from, &to)
                .await
                .map_err(|e| RefreshError::storage(&to, e))?;
            if i == 0 {
                crash_point("publish-first-file");
            }
        }
        crash_point("publish-files-moved");
        let snapshot = Snapshot {
            run_id: self.manifest.run_id.clone(),
            published_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            model_version: model_version.to_string(),
            as_of: self.manifest.as_of.clone(),
            partitions,
            inspections: plan.inspections.clone(),
        };
        self.manifest.status = RunStatus::Published;
        self.manifest.finished_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.write_manifest().await?;
        if rebuilt {
            aduana_model::set_current(self.store().as_ref(), &self.path(""), &model_version)
                .await?;
        }
        crash_point("before-snapshot");
        let body = serde_json::to_vec_pretty(&snapshot).expect("plain data");
        let snapshot_path = self.path(risk::SNAPSHOT_FILE);
        self.store()
            .put(&snapshot_path, PutPayload::from(body))
            .await
            .map_err(|e| RefreshError::storage(&snapshot_path, e))?;
        crash_point("after-snapshot");
        self.collect_garbage(&snapshot, plan.previous.as_ref())
            .await?;
        self.step("publish", started, 0);
        Ok(())
    }

    pub(crate) fn staging_dir(&self) -> String {
        risk::join(
            &self.root,
            &format!("{STAGING_DIR}/{}", self.manifest.run_id),
        )
    }

    pub(crate) async fn write_manifest(&self) -> Result<()> {
        let path = self.path(&format!("{}/{}.json", risk::RUNS_DIR, self.manifest.run_id));
        let body = serde_json::to_vec_pretty(&self.manifest).expect("plain data");
        self.store()
            .put(&path, PutPayload::from(body))
            .await
            .map(|_| ())
            .map_err(|e| RefreshError::storage(&path, e))
    }

    /// Deletes the staging left by runs that died (this run holds the
    /// lock, so no other run is writing there).
    pub(crate) async fn clean_staging(&self) -> Result<()> {
        let staging = self.path(STAGING_DIR);
        self.delete_all(&staging, |_| true).await?;
        // Renames out of staging leave its empty folders on local disk.
        if let Some(dir) = self.location.local_dir(&staging) {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RefreshError::storage(dir.display(), e)),
            }
        }
        Ok(())
    }

    /// Deletes every risk-table file that neither the new nor the previous
    /// snapshot lists (the previous one's files stay one more run, for
    /// queries that planned against it) nor a live reader's lease names
    /// (a server still reading an older snapshot), and this run's staging.
    pub(crate) async fn collect_garbage(
        &self,
        new: &Snapshot,
        previous: Option<&Snapshot>,
    ) -> Result<()> {
        let pinned = aduana_warehouse::readers::pinned(&self.location, &self.root).await?;
        let keep: BTreeSet<Path> = new
            .files()
            .chain(previous.into_iter().flat_map(|p| p.files()))
            .chain(pinned.files.iter().map(String::as_str))
            .map(|f| self.path(f))
            .collect();
        // Model versions: the current one, the published and previous
        // snapshots', the ones live readers loaded; the rest once a day old
        // (a build killed before it became current leaves its version).
        let models: BTreeSet<String> = [Some(new), previous]
            .into_iter()
            .flatten()
            .map(|s| s.model_version.clone())
            .chain(pinned.model_versions)
            .collect();
        aduana_model::collect_versions(self.store().as_ref(), &self.path(""), &models, MODEL_GRACE)
            .await?;
        for dir in [risk::SCORES_DIR, risk::REJECTS_DIR, risk::TRADER_RISK_DIR] {
            self.delete_all(&self.path(dir), |p| !keep.contains(p))
                .await?;
        }
        self.clean_staging().await
    }

    pub(crate) async fn delete_all(
        &self,
        prefix: &Path,
        doomed: impl Fn(&Path) -> bool,
    ) -> Result<()> {
        let listed: Vec<_> = self
            .store()
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| RefreshError::storage(prefix, e))?;
        for meta in listed {
            if doomed(&meta.location) {
                match self.store().delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(RefreshError::storage(&meta.location, e)),
                }
            }
        }
        Ok(())
    }
}
