//! Versions in an object store: written file by file, published by
//! writing `CURRENT` last, listed, and loaded.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::files::*;
use crate::*;

/// `file` of model `version` under `root` (e.g. its `PRICE_FILE`, which
/// the engine exposes as a table).
pub fn version_file(root: &Path, version: &str, file: &str) -> Path {
    path(root, &[MODEL_DIR, version, file])
}

fn path(root: &Path, parts: &[&str]) -> Path {
    parts
        .iter()
        .flat_map(|p| p.split('/'))
        .fold(root.clone(), |p, part| p.join(part))
}

/// Writes a model version and then publishes it as current.
pub async fn publish(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
    prices: &[RecordBatch],
    origins: &[RecordBatch],
    classifier: &[RecordBatch],
) -> Result<()> {
    write_version(store, root, manifest, prices, origins, classifier).await?;
    set_current(store, root, &manifest.version).await
}

/// Makes `version` (already written) the current model: one small object
/// rewritten last, so readers see the previous model or this one whole.
pub async fn set_current(store: &dyn ObjectStore, root: &Path, version: &str) -> Result<()> {
    let location = path(root, &[MODEL_DIR, CURRENT_FILE]);
    store
        .put(
            &location,
            PutPayload::from(format!("{version}\n").into_bytes()),
        )
        .await
        .map(|_| ())
        .map_err(|source| ModelError::Storage {
            location: location.to_string(),
            source,
        })
}

/// Stores one file of a model version.
async fn put(store: &dyn ObjectStore, location: Path, bytes: Vec<u8>) -> Result<()> {
    store
        .put(&location, PutPayload::from(bytes))
        .await
        .map(|_| ())
        .map_err(|source| ModelError::Storage {
            location: location.to_string(),
            source,
        })
}

/// `batches` as the bytes of one Parquet file (errors name `dir`).
fn encode_parquet(dir: &Path, schema: SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut parquet = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut parquet, schema, None).map_err(|e| corrupt(dir, e))?;
    for batch in batches {
        writer.write(batch).map_err(|e| corrupt(dir, e))?;
    }
    writer.close().map_err(|e| corrupt(dir, e))?;
    Ok(parquet)
}

/// Writes the files of a model version without making it current.
pub async fn write_version(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
    prices: &[RecordBatch],
    origins: &[RecordBatch],
    classifier: &[RecordBatch],
) -> Result<()> {
    let dir = path(root, &[MODEL_DIR, &manifest.version]);
    for (file, schema, batches) in [
        (PRICE_FILE, price_schema(), prices),
        (ORIGIN_FILE, origin_schema(), origins),
        (CLASSIFIER_FILE, classifier_schema(), classifier),
    ] {
        let bytes = encode_parquet(&dir, schema, batches)?;
        put(store, dir.clone().join(file), bytes).await?;
    }
    let manifest_text = toml::to_string(manifest).map_err(|e| corrupt(&dir, e))?;
    // Last: a version with a manifest is complete.
    put(
        store,
        dir.clone().join(MANIFEST_FILE),
        manifest_text.into_bytes(),
    )
    .await
}

/// Adds a learned model to a written version: its files first, then the
/// manifest rewritten with its summary (one put), so a reader sees the
/// version with the learned model whole or without it.
pub async fn write_learned(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
    model: &learned::LearnedModel,
) -> Result<()> {
    let dir = path(root, &[MODEL_DIR, &manifest.version]);
    let batch = model.profile_batch().map_err(|e| corrupt(&dir, e))?;
    let parquet = encode_parquet(&dir, learned::profile_schema(), &[batch])?;
    put(store, dir.clone().join(learned::PROFILES_FILE), parquet).await?;
    let json = model.to_json().map_err(|e| corrupt(&dir, e))?;
    put(store, dir.clone().join(learned::LEARNED_FILE), json).await?;
    let manifest = Manifest {
        learned: Some(model.summary.clone()),
        ..manifest.clone()
    };
    write_manifest(store, root, &manifest).await
}

/// Rewrites a written version's manifest (one put): what it adds is there
/// whole or not at all.
pub async fn write_manifest(
    store: &dyn ObjectStore,
    root: &Path,
    manifest: &Manifest,
) -> Result<()> {
    let dir = path(root, &[MODEL_DIR, &manifest.version]);
    let text = toml::to_string(manifest).map_err(|e| corrupt(&dir, e))?;
    put(store, dir.clone().join(MANIFEST_FILE), text.into_bytes()).await
}

fn corrupt(location: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Corrupt {
        location: location.to_string(),
        message: e.to_string(),
    }
}

async fn get(store: &dyn ObjectStore, location: &Path) -> Result<Option<Bytes>> {
    match store.get(location).await {
        Ok(result) => result.bytes().await.map(Some),
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e),
    }
    .map_err(|source| ModelError::Storage {
        location: location.to_string(),
        source,
    })
}

/// Deletes the model versions under `root` that are neither current nor in
/// `keep` and whose newest file is older than `older_than` (a version a
/// killed build left without making it current, or one superseded long
/// ago). Returns the versions deleted.
pub async fn collect_versions(
    store: &dyn ObjectStore,
    root: &Path,
    keep: &std::collections::BTreeSet<String>,
    older_than: std::time::Duration,
) -> Result<Vec<String>> {
    use futures::TryStreamExt;
    let dir = path(root, &[MODEL_DIR]);
    let storage = |source| ModelError::Storage {
        location: dir.to_string(),
        source,
    };
    let current = current_version(store, root).await?;
    let objects: Vec<_> = store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(storage)?;
    let mut versions: std::collections::BTreeMap<
        String,
        (chrono::DateTime<chrono::Utc>, Vec<Path>),
    > = Default::default();
    for meta in objects {
        let Some(version) = meta.location.prefix_match(&dir).and_then(|mut parts| {
            let first = parts.next()?;
            // Files directly under model/ (CURRENT) are not versions.
            parts.next().map(|_| first.as_ref().to_string())
        }) else {
            continue;
        };
        let entry = versions
            .entry(version)
            .or_insert((meta.last_modified, Vec::new()));
        entry.0 = entry.0.max(meta.last_modified);
        entry.1.push(meta.location);
    }
    let cutoff = chrono::Utc::now()
        - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
    let mut deleted = Vec::new();
    for (version, (newest, files)) in versions {
        if Some(&version) == current.as_ref() || keep.contains(&version) || newest > cutoff {
            continue;
        }
        for file in files {
            match store.delete(&file).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(ModelError::Storage {
                        location: file.to_string(),
                        source,
                    });
                }
            }
        }
        deleted.push(version);
    }
    Ok(deleted)
}

/// The current model version of the warehouse at `root`; `Ok(None)` when
/// no model was ever built.
pub async fn current_version(store: &dyn ObjectStore, root: &Path) -> Result<Option<String>> {
    let pointer = path(root, &[MODEL_DIR, CURRENT_FILE]);
    let Some(version) = get(store, &pointer).await? else {
        return Ok(None);
    };
    let version = std::str::from_utf8(&version)
        .map_err(|e| corrupt(&pointer, e))?
        .trim()
        .to_string();
    if version.is_empty() || version.contains('/') {
        return Err(corrupt(&pointer, format!("invalid version {version:?}")));
    }
    Ok(Some(version))
}

/// The manifest of a written model version.
pub async fn read_manifest(
    store: &dyn ObjectStore,
    root: &Path,
    version: &str,
) -> Result<Manifest> {
    let manifest_path = path(root, &[MODEL_DIR, version, MANIFEST_FILE]);
    let manifest_bytes = get(store, &manifest_path).await?.ok_or_else(|| {
        corrupt(
            &manifest_path,
            "missing (the pointer names a version that is not there)",
        )
    })?;
    toml::from_str(std::str::from_utf8(&manifest_bytes).map_err(|e| corrupt(&manifest_path, e))?)
        .map_err(|e| corrupt(&manifest_path, e))
}

/// Loads the current model of the warehouse at `root`; `Ok(None)` when no
/// model was ever built.
pub async fn load_current(store: &dyn ObjectStore, root: &Path) -> Result<Option<RiskModel>> {
    match fetch_current(store, root).await? {
        Some(files) => files.decode().map(Some),
        None => Ok(None),
    }
}

/// Loads one written model version.
pub async fn load_version(
    store: &dyn ObjectStore,
    root: &Path,
    version: &str,
) -> Result<RiskModel> {
    fetch_version(store, root, version).await?.decode()
}

/// The files of the current model version, read but not decoded; `Ok(None)`
/// when no model was ever built.
pub async fn fetch_current(store: &dyn ObjectStore, root: &Path) -> Result<Option<ModelFiles>> {
    match current_version(store, root).await? {
        Some(version) => fetch_version(store, root, &version).await.map(Some),
        None => Ok(None),
    }
}

/// A model version's files as read from the store: a missing or unreadable
/// file is an error here, a file whose content is wrong one of
/// [`ModelFiles::decode`]. Reading is a few requests; decoding (the price
/// cells, origin facts, importer records, classifier and trees) takes a
/// few hundred milliseconds, which a session that never calls a risk
/// function need not spend.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub manifest: Manifest,
    dir: Path,
    prices: Bytes,
    origins: Bytes,
    words: Bytes,
    /// The learned model's trees (JSON) and trader profiles.
    learned: Option<(Bytes, Bytes)>,
}

/// Reads one written model version's files.
pub async fn fetch_version(
    store: &dyn ObjectStore,
    root: &Path,
    version: &str,
) -> Result<ModelFiles> {
    let dir = path(root, &[MODEL_DIR, version]);
    let manifest = read_manifest(store, root, version).await?;
    let read = async |file: &str| -> Result<Bytes> {
        let location = dir.clone().join(file);
        get(store, &location)
            .await?
            .ok_or_else(|| corrupt(&location, "missing"))
    };
    let learned = match manifest.learned.is_some() {
        true => Some((
            read(learned::LEARNED_FILE).await?,
            read(learned::PROFILES_FILE).await?,
        )),
        false => None,
    };
    Ok(ModelFiles {
        prices: read(PRICE_FILE).await?,
        origins: read(ORIGIN_FILE).await?,
        words: read(CLASSIFIER_FILE).await?,
        learned,
        manifest,
        dir,
    })
}

impl ModelFiles {
    /// The model the files hold.
    pub fn decode(&self) -> Result<RiskModel> {
        let dir = &self.dir;
        let batches = |file: &str, bytes: &Bytes| -> Result<Vec<RecordBatch>> {
            let location = dir.clone().join(file);
            ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
                .and_then(|b| b.build())
                .map_err(|e| corrupt(&location, e))?
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| corrupt(&location, e))
        };
        let prices = batches(PRICE_FILE, &self.prices)?;
        let origins = batches(ORIGIN_FILE, &self.origins)?;
        let mut model = RiskModel::from_batches(self.manifest.clone(), &prices, &origins)
            .map_err(|e| corrupt(dir, e))?;
        model.classifier = read_classifier(&batches(CLASSIFIER_FILE, &self.words)?)
            .map_err(|e| corrupt(dir, e))?;
        if let Some((json, profiles)) = &self.learned {
            let profiles = batches(learned::PROFILES_FILE, profiles)?;
            model.learned = Some(
                learned::LearnedModel::from_parts(json, &profiles).map_err(|e| corrupt(dir, e))?,
            );
        }
        Ok(model)
    }
}
