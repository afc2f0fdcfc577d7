//! One refresh at a time per warehouse (or backtest root): a lock object
//! created only if absent (`PutMode::Create`: an exclusive create on local
//! disk, `If-None-Match: *` on S3), holding who took it and when.
//!
//! A lock older than the stale timeout belongs to a run that died; it is
//! deleted and taken over. Before deleting, the lock is read again and
//! deleted only if it is still the stale one, which narrows (without
//! closing) the window in which two runs could both take over.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{RefreshError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    pid: u32,
    /// RFC 3339.
    acquired_at: String,
}

/// A held lock; released by [`RunLock::release`].
pub struct RunLock {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl RunLock {
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        path: Path,
        shown_as: &str,
        run_id: &str,
        stale_after_s: u64,
    ) -> Result<RunLock> {
        let holder = Holder {
            run_id: run_id.to_string(),
            host: host_name(),
            pid: std::process::id(),
            acquired_at: Utc::now().to_rfc3339(),
        };
        let body = serde_json::to_vec_pretty(&holder).expect("plain struct");
        for _ in 0..2 {
            let options = PutOptions::from(PutMode::Create);
            match store
                .put_opts(&path, PutPayload::from(body.clone()), options)
                .await
            {
                Ok(_) => return Ok(RunLock { store, path }),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(RefreshError::storage(&path, e)),
            }
            let (current, raw) = match read(&store, &path).await? {
                Some(found) => found,
                None => continue, // released meanwhile: try again
            };
            let age = current
                .as_ref()
                .and_then(|h| DateTime::parse_from_rfc3339(&h.acquired_at).ok())
                .map_or(i64::MAX, |at| {
                    (Utc::now() - at.with_timezone(&Utc)).num_seconds()
                });
            // A holder on this host whose process is gone died without
            // releasing: no need to wait for the timeout. A holder with our
            // own pid is a run before ours (a container's PID 1), not us.
            let dead = current.as_ref().is_some_and(|h| {
                h.host == holder.host && (h.pid == holder.pid || !process_alive(h.pid))
            });
            if age < stale_after_s as i64 && !dead {
                let holder = current.map_or_else(
                    || "an unreadable holder".to_string(),
                    |h| format!("run {} (pid {} on {})", h.run_id, h.pid, h.host),
                );
                return Err(RefreshError::LockHeld {
                    lock: shown_as.to_string(),
                    holder,
                    age_s: age,
                    stale_s: stale_after_s,
                });
            }
            // Stale: take it over if it is still the same lock.
            if let Some((_, again)) = read(&store, &path).await?
                && again == raw
            {
                match store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(RefreshError::storage(&path, e)),
                }
            }
        }
        Err(RefreshError::LockHeld {
            lock: shown_as.to_string(),
            holder: "another run that took over a stale lock".into(),
            age_s: 0,
            stale_s: stale_after_s,
        })
    }

    pub async fn release(self) -> Result<()> {
        match self.store.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(RefreshError::storage(&self.path, e)),
        }
    }
}

/// The holder (None when unreadable) and the raw bytes; `None` when absent.
async fn read(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<Option<(Option<Holder>, Vec<u8>)>> {
    let bytes = match store.get(path).await {
        Ok(got) => got.bytes().await,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|e| RefreshError::storage(path, e))?;
    Ok(Some((serde_json::from_slice(&bytes).ok(), bytes.to_vec())))
}

/// The name a lock records for this machine.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}
