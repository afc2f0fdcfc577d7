//! Where a warehouse lives: a local folder or an S3-compatible prefix.

use std::sync::Arc;

use datafusion::datasource::listing::ListingTableUrl;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use url::Url;

use crate::config::StorageConfig;
use crate::error::{Result, WarehouseError};

/// A resolved warehouse root.
#[derive(Debug, Clone)]
pub struct Location {
    /// What the user gave, for messages.
    pub display: String,
    /// The URL of the object store (`file:///` or `s3://bucket/`), as
    /// DataFusion's object-store registry keys it.
    pub store_url: Url,
    pub store: Arc<dyn ObjectStore>,
    /// The root inside the store.
    pub prefix: Path,
}

impl Location {
    /// Resolves `uri`: a local path, a `file://` URL or `s3://bucket/prefix`.
    /// S3 settings come from `AWS_*` environment variables, overridden by
    /// `storage` (flags or config file).
    pub fn resolve(uri: &str, storage: &StorageConfig) -> Result<Self> {
        let invalid = |message: String| WarehouseError::InvalidUri {
            uri: uri.to_string(),
            message,
        };
        if uri.trim().is_empty() {
            return Err(invalid("empty location".into()));
        }
        match uri.split_once("://") {
            Some(("s3" | "s3a", rest)) => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid(
                        "no bucket name (expected s3://bucket/prefix)".into(),
                    ));
                }
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = &storage.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                let endpoint = storage
                    .endpoint
                    .clone()
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                    .or_else(|| std::env::var("AWS_ENDPOINT").ok());
                if let Some(region) = &storage.region {
                    builder = builder.with_region(region);
                }
                let allow_http = storage.allow_http.unwrap_or_else(|| {
                    endpoint
                        .as_deref()
                        .is_some_and(|e| e.starts_with("http://"))
                });
                if allow_http {
                    builder = builder.with_allow_http(true);
                }
                if let Some(path_style) = storage.path_style {
                    builder = builder.with_virtual_hosted_style_request(!path_style);
                }
                let store = builder
                    .build()
                    .map_err(|e| invalid(format!("cannot configure S3: {e}")))?;
                let store_url = Url::parse(&format!("s3://{bucket}/"))
                    .map_err(|e| invalid(format!("bad bucket name: {e}")))?;
                let prefix = Path::parse(key.trim_end_matches('/'))
                    .map_err(|e| invalid(format!("bad key prefix: {e}")))?;
                Ok(Location {
                    display: uri.to_string(),
                    store_url,
                    store: Arc::new(store),
                    prefix,
                })
            }
            Some(("file", _)) => {
                let url = Url::parse(uri).map_err(|e| invalid(e.to_string()))?;
                let path = url
                    .to_file_path()
                    .map_err(|_| invalid("not a local file URL".into()))?;
                Self::local(uri, &path)
            }
            Some((scheme, _)) => Err(invalid(format!(
                "unsupported scheme {scheme}:// (use a local path, file:// or s3://)"
            ))),
            None => Self::local(uri, std::path::Path::new(uri)),
        }
    }

    fn local(display: &str, path: &std::path::Path) -> Result<Self> {
        let absolute = std::fs::canonicalize(path).map_err(|e| WarehouseError::InvalidUri {
            uri: display.to_string(),
            message: format!("cannot open folder: {e}"),
        })?;
        if !absolute.is_dir() {
            return Err(WarehouseError::InvalidUri {
                uri: display.to_string(),
                message: "not a folder".into(),
            });
        }
        let prefix =
            Path::from_absolute_path(&absolute).map_err(|e| WarehouseError::InvalidUri {
                uri: display.to_string(),
                message: e.to_string(),
            })?;
        Ok(Location {
            display: display.to_string(),
            store_url: Url::parse("file:///").expect("static URL"),
            store: Arc::new(LocalFileSystem::new()),
            prefix,
        })
    }

    /// The folder `path` is on local disk, for a local warehouse (object
    /// stores have no folders; a local one leaves them behind).
    pub fn local_dir(&self, path: &Path) -> Option<std::path::PathBuf> {
        (self.store_url.scheme() == "file").then(|| std::path::Path::new("/").join(path.as_ref()))
    }

    /// The path of `relative` (slash-separated) under the root.
    pub fn child(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |path, part| path.join(part))
    }

    /// A URL DataFusion's listing tables accept for `path` in this store;
    /// `dir` adds the trailing slash that marks a folder.
    pub fn url_of(&self, path: &Path, dir: bool) -> String {
        let mut url = format!("{}{}", self.store_url, path);
        if dir {
            url.push('/');
        }
        url
    }

    /// Whether writing to `target` (a path or URL, read as DataFusion reads
    /// the target of `COPY ... TO`: scheme in any case, `file:` with or
    /// without slashes or `localhost`, relative paths, symlinks) would
    /// write under this warehouse's root. The one check every write path
    /// uses; a target that cannot be resolved counts as inside.
    pub fn contains_target(&self, target: &str) -> bool {
        let Ok(url) = ListingTableUrl::parse(target) else {
            return true;
        };
        if url.scheme() != "file" {
            return url.object_store().as_str() == self.store_url.as_str()
                && url.prefix().prefix_matches(&self.prefix);
        }
        // Every `file:` URL is the one local file system, whatever its host.
        self.contains_local_path(&std::path::Path::new("/").join(url.prefix().as_ref()))
    }

    /// Whether writing the local file `path` (a plain path, as `-o` and
    /// `\o` write it: never read as a URL) would write under this
    /// warehouse's root; unresolvable counts as inside.
    pub fn contains_local_path(&self, path: &std::path::Path) -> bool {
        let Some(root) = self.local_dir(&self.prefix) else {
            return false;
        };
        let absolute = match std::path::absolute(path) {
            Ok(absolute) => absolute,
            Err(_) => return true,
        };
        match (resolve_existing(&absolute), std::fs::canonicalize(&root)) {
            (Some(written), Ok(root)) => written.starts_with(root),
            _ => true,
        }
    }

    /// `path` relative to the root, for messages.
    pub fn relative<'a>(&self, path: &'a Path) -> String {
        match path.prefix_match(&self.prefix) {
            Some(parts) => parts
                .map(|p| p.as_ref().to_string())
                .collect::<Vec<_>>()
                .join("/"),
            None => path.to_string(),
        }
    }
}

/// `path` as the operating system will resolve it: its deepest existing
/// ancestor canonicalised (symlinks followed, then `..` applied, as the OS
/// does), the rest appended; `None` when that cannot be known (a `..` in
/// the part that does not exist yet, a dangling symlink, no permission).
fn resolve_existing(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut existing = path;
    let mut rest = Vec::new();
    // `symlink_metadata`: a dangling symlink exists, and canonicalising it
    // fails, so a write through it is refused.
    while existing.symlink_metadata().is_err() {
        // `file_name` is None for `..`: refused.
        rest.push(existing.file_name()?.to_owned());
        existing = existing.parent()?;
    }
    let mut resolved = std::fs::canonicalize(existing).ok()?;
    for part in rest.into_iter().rev() {
        resolved.push(part);
    }
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris_split_bucket_and_prefix() {
        let storage = StorageConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("us-east-1".into()),
            path_style: Some(true),
            allow_http: None,
        };
        let loc = Location::resolve("s3://customs/gt/wh/", &storage).unwrap();
        assert_eq!(loc.store_url.as_str(), "s3://customs/");
        assert_eq!(loc.prefix.as_ref(), "gt/wh");
        assert_eq!(
            loc.url_of(&loc.child("declarations"), true),
            "s3://customs/gt/wh/declarations/"
        );
    }

    #[test]
    fn bad_locations_are_named() {
        let e = Location::resolve("/no/such/warehouse", &StorageConfig::default()).unwrap_err();
        assert!(e.to_string().contains("/no/such/warehouse"), "{e}");
        let e = Location::resolve("hdfs://x/y", &StorageConfig::default()).unwrap_err();
        assert!(e.to_string().contains("unsupported scheme hdfs"), "{e}");
        let e = Location::resolve("s3:///x", &StorageConfig::default()).unwrap_err();
        assert!(e.to_string().contains("no bucket"), "{e}");
    }

    #[test]
    fn local_folders_resolve_to_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        let loc =
            Location::resolve(dir.path().to_str().unwrap(), &StorageConfig::default()).unwrap();
        let url = loc.url_of(&loc.child("reference/tariff.parquet"), false);
        assert!(
            url.starts_with("file:///") && url.ends_with("/reference/tariff.parquet"),
            "{url}"
        );
        assert_eq!(loc.relative(&loc.child("a/b.parquet")), "a/b.parquet");
    }

    #[test]
    fn every_spelling_of_a_warehouse_file_is_inside() {
        let dir = tempfile::tempdir().unwrap();
        let wh = dir.path().join("wh");
        std::fs::create_dir_all(wh.join("declarations/year=2026/month=10")).unwrap();
        let loc = Location::resolve(wh.to_str().unwrap(), &StorageConfig::default()).unwrap();
        let real = std::fs::canonicalize(&wh).unwrap();
        let file = "declarations/year=2026/month=10/part-0.parquet";
        let abs = format!("{}/{file}", real.display());
        let inside = [
            abs.clone(),
            format!("file://{abs}"),
            format!("file:{abs}"),
            format!("FILE://{abs}"),
            format!("File:{abs}"),
            format!("file://localhost{abs}"),
            format!("file:///{abs}"),
            format!("{}/../wh/{file}", real.display()),
            format!("{}/./{file}", real.display()),
            real.display().to_string(),
            format!("file://{}/", real.display()),
        ];
        for target in &inside {
            assert!(loc.contains_target(target), "{target} must count as inside");
        }
        // Plain paths as `-o` writes them: a name with a colon is a file, not
        // a URL; `..` after a symlink is resolved as the OS does.
        let cwd_file = real.join("declarations/year=2026/month=10/risk-10:30.parquet");
        assert!(loc.contains_local_path(&cwd_file));
        let link_up = dir.path().join("deep-link");
        std::os::unix::fs::symlink(real.join("declarations/year=2026/month=10"), &link_up).unwrap();
        assert!(loc.contains_local_path(&link_up.join("../p.parquet")));
        assert!(!loc.contains_local_path(&dir.path().join("out.csv")));
        // A symlink outside that leads inside, and a dangling one.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&wh, &link).unwrap();
        assert!(loc.contains_target(&format!("{}/{file}", link.display())));
        let dangling = dir.path().join("dangling.parquet");
        std::os::unix::fs::symlink(dir.path().join("nowhere/x"), &dangling).unwrap();
        assert!(loc.contains_target(dangling.to_str().unwrap()));
        // Beside the warehouse, and a folder whose name starts the same.
        let outside = [
            format!("{}/out.parquet", dir.path().display()),
            format!("file://{}/wh2/x.parquet", dir.path().display()),
            format!("{}/whx/y.csv", dir.path().display()),
        ];
        for target in &outside {
            assert!(!loc.contains_target(target), "{target} is outside");
        }
    }

    #[test]
    fn s3_targets_compare_bucket_and_prefix() {
        let storage = StorageConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            region: Some("us-east-1".into()),
            path_style: Some(true),
            allow_http: None,
        };
        let loc = Location::resolve("s3://customs/gt/wh", &storage).unwrap();
        assert!(loc.contains_target("s3://customs/gt/wh/declarations/x.parquet"));
        assert!(loc.contains_target("S3://customs/gt/wh/"));
        assert!(!loc.contains_target("s3://customs/gt/wh2/x.parquet"));
        assert!(!loc.contains_target("s3://other/gt/wh/x.parquet"));
        assert!(!loc.contains_target("/tmp/x.parquet"));
    }
}
