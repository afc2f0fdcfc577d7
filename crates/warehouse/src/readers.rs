//! Leases that keep published risk files alive while a long-lived reader
//! (a server, an open shell) still reads them.
//!
//! A session reads the risk tables over the files its snapshot listed when
//! it opened. The refresh deletes files no snapshot lists any more one run
//! after they left it, so a server started before two refreshes would read
//! deleted files and go blank. Such a reader therefore writes a lease,
//! `risk/_readers/<reader>.json`, naming the files it reads, and rewrites
//! it every [`RENEW_EVERY`]; the refresh's garbage collection keeps every
//! file a live lease names. A lease not rewritten for [`LEASE_TTL`] (its
//! reader died without removing it) no longer counts, and the refresh
//! deletes it. Liveness is judged by the store's own modification time, so
//! the readers' and the refresh's clocks need only agree to within minutes.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Result, WarehouseError};
use crate::risk::{Snapshot, join};
use crate::store::Location;

/// Where leases live, relative to a risk root.
pub const READERS_DIR: &str = "risk/_readers";

/// How often a holder rewrites its lease.
pub const RENEW_EVERY: Duration = Duration::from_secs(60);

/// How long a lease counts after it was last written.
pub const LEASE_TTL: Duration = Duration::from_secs(15 * 60);

/// What a lease file says.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseFile {
    reader: String,
    run_id: String,
    /// Relative to the risk root, as the snapshot lists them.
    files: Vec<String>,
    /// The risk model version the reader loaded (its files are read while
    /// it runs, e.g. as `risk.price_profiles`).
    #[serde(default)]
    model_version: Option<String>,
}

/// What live leases keep.
#[derive(Debug, Default)]
pub struct Pinned {
    /// Risk-table files, relative to the risk root.
    pub files: BTreeSet<String>,
    pub model_versions: BTreeSet<String>,
}

/// A lease written to the store; [`Lease::hold`] keeps it alive.
#[derive(Debug)]
pub struct Lease {
    location: Location,
    path: Path,
    body: Vec<u8>,
}

impl Lease {
    /// Writes a lease on the files of `snapshot` (under `root`, `""` for
    /// the warehouse's own) and on `model_version`, for `reader` (e.g.
    /// `serve-HOST-PID`).
    pub async fn take(
        location: &Location,
        root: &str,
        snapshot: Option<&Snapshot>,
        model_version: Option<&str>,
        reader: &str,
    ) -> Result<Lease> {
        let name: String = reader
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = location.child(&join(root, &format!("{READERS_DIR}/{name}.json")));
        let body = serde_json::to_vec_pretty(&LeaseFile {
            reader: reader.to_string(),
            run_id: snapshot.map(|s| s.run_id.clone()).unwrap_or_default(),
            files: snapshot
                .map(|s| s.files().map(str::to_string).collect())
                .unwrap_or_default(),
            model_version: model_version.map(str::to_string),
        })
        .expect("a lease serialises");
        let lease = Lease {
            location: location.clone(),
            path,
            body,
        };
        lease.renew().await?;
        Ok(lease)
    }

    /// Rewrites the lease (its modification time is its heartbeat).
    pub async fn renew(&self) -> Result<()> {
        self.location
            .store
            .put(&self.path, PutPayload::from(self.body.clone()))
            .await
            .map(|_| ())
            .map_err(|source| self.storage_error(source))
    }

    /// Removes the lease: its files may go with the next refresh.
    pub async fn release(self) -> Result<()> {
        self.remove().await
    }

    async fn remove(&self) -> Result<()> {
        match self.location.store.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.storage_error(source)),
        }
    }

    /// Keeps the lease alive in the background until the holder is
    /// released (or dropped: then the lease simply expires).
    pub fn hold(self) -> LeaseHolder {
        let lease = std::sync::Arc::new(self);
        let renewing = {
            let lease = lease.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    if let Err(e) = lease.renew().await {
                        // The next attempt may succeed; the lease has
                        // LEASE_TTL of slack before the files are at risk.
                        eprintln!("warning: cannot renew the reader lease: {e}");
                    }
                }
            })
        };
        LeaseHolder { lease, renewing }
    }

    fn storage_error(&self, source: object_store::Error) -> WarehouseError {
        WarehouseError::Storage {
            location: self.location.url_of(&self.path, false),
            source,
        }
    }
}

/// A lease being renewed in the background.
#[derive(Debug)]
pub struct LeaseHolder {
    lease: std::sync::Arc<Lease>,
    renewing: tokio::task::JoinHandle<()>,
}

impl LeaseHolder {
    /// Stops renewing and removes the lease.
    pub async fn release(mut self) -> Result<()> {
        self.renewing.abort();
        // Wait for a renewal in flight, which would otherwise rewrite the
        // lease after it was removed.
        let _ = (&mut self.renewing).await;
        self.lease.remove().await
    }
}

impl Drop for LeaseHolder {
    fn drop(&mut self) {
        self.renewing.abort();
    }
}

/// The files (relative to `root`) and model versions that live leases
/// name. Leases past [`LEASE_TTL`] are deleted; an unreadable lease pins
/// nothing (a reader never writes one, so it is damage, and its reader's
/// files are then unprotected: say so).
pub async fn pinned(location: &Location, root: &str) -> Result<Pinned> {
    let dir = location.child(&join(root, READERS_DIR));
    let leases: Vec<_> = location
        .store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|source| WarehouseError::Storage {
            location: location.url_of(&dir, true),
            source,
        })?;
    let now = chrono::Utc::now();
    let ttl = chrono::Duration::from_std(LEASE_TTL).expect("a small duration");
    let mut pinned = Pinned::default();
    for meta in leases {
        if meta.last_modified + ttl < now {
            match location.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(WarehouseError::Storage {
                        location: location.url_of(&meta.location, false),
                        source,
                    });
                }
            }
            continue;
        }
        let bytes = match location.store.get(&meta.location).await {
            Ok(result) => result.bytes().await,
            // Released meanwhile.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => Err(e),
        }
        .map_err(|source| WarehouseError::Storage {
            location: location.url_of(&meta.location, false),
            source,
        })?;
        match serde_json::from_slice::<LeaseFile>(&bytes) {
            Ok(lease) => {
                pinned.files.extend(lease.files);
                pinned.model_versions.extend(lease.model_version);
            }
            Err(e) => eprintln!(
                "warning: reader lease {} is not readable ({e}); it protects nothing",
                location.relative(&meta.location)
            ),
        }
    }
    Ok(pinned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageConfig;
    use crate::risk::PartitionState;

    fn snapshot(run: &str, file: &str) -> Snapshot {
        let mut partitions = std::collections::BTreeMap::new();
        partitions.insert(
            "year=2026/month=1".to_string(),
            PartitionState {
                inputs: vec![],
                scores: file.to_string(),
                rejects: None,
                rows_in: 1,
                scored: 1,
                rejected: 0,
                trader_risk: Some(format!("{file}.traders")),
                trader_rows: 1,
            },
        );
        Snapshot {
            run_id: run.into(),
            published_at: "2026-01-01T00:00:00Z".into(),
            model_version: "m".into(),
            as_of: None,
            partitions,
            inspections: vec![],
        }
    }

    #[tokio::test]
    async fn leases_pin_files_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let location =
            Location::resolve(dir.path().to_str().unwrap(), &StorageConfig::default()).unwrap();
        assert!(pinned(&location, "").await.unwrap().files.is_empty());
        let first = snapshot("r1", "risk/a.parquet");
        let a = Lease::take(&location, "", Some(&first), Some("m1"), "serve-h-1")
            .await
            .unwrap()
            .hold();
        let second = snapshot("r2", "risk/b.parquet");
        let b = Lease::take(&location, "", Some(&second), None, "shell h/2")
            .await
            .unwrap();
        let kept = pinned(&location, "").await.unwrap();
        assert_eq!(kept.model_versions.into_iter().collect::<Vec<_>>(), ["m1"]);
        assert_eq!(
            kept.files.into_iter().collect::<Vec<_>>(),
            [
                "risk/a.parquet",
                "risk/a.parquet.traders",
                "risk/b.parquet",
                "risk/b.parquet.traders"
            ]
        );
        a.release().await.unwrap();
        // A reader that died: its lease stops counting after the TTL and
        // is deleted.
        let stale = dir.path().join(READERS_DIR).join("shell_h_2.json");
        let long_ago = std::time::SystemTime::now() - LEASE_TTL - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        drop(b);
        let kept = pinned(&location, "").await.unwrap();
        assert!(kept.files.is_empty() && kept.model_versions.is_empty());
        assert!(!stale.exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join(READERS_DIR))
                .unwrap()
                .count(),
            0
        );
    }
}
