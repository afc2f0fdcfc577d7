//! The refresh's planner over an in-memory object store: after a real
//! refresh, each change of the inputs (a file rewritten, a month added or
//! removed, a month asked for) makes a dry run plan exactly the partitions
//! it concerns, for the reason it names.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aduana_refresh::{LogFormat, Partition, RefreshOptions, Reporter, RunManifest};
use aduana_warehouse::{Location, OpenOptions, Warehouse};
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::support::*;

/// Every file under `dir`, put under `wh/` of a new in-memory store.
async fn in_memory_copy(dir: &Path) -> Location {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut files = vec![];
    walk(dir, &mut files);
    for file in files {
        let relative = file
            .strip_prefix(dir)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let bytes = std::fs::read(&file).unwrap();
        store
            .put(
                &StorePath::from(format!("wh/{relative}")),
                PutPayload::from(bytes),
            )
            .await
            .unwrap();
    }
    Location {
        display: "memory:///wh".into(),
        store_url: url::Url::parse("memory:///").unwrap(),
        store,
        prefix: StorePath::from("wh"),
    }
}

async fn run(location: &Location, options: RefreshOptions) -> aduana_refresh::Result<RunManifest> {
    let warehouse = Warehouse::open_at(location.clone(), None, OpenOptions::default())
        .await
        .unwrap();
    aduana_refresh::refresh(warehouse, &options, &Reporter::new(LogFormat::Json)).await
}

/// The partitions a dry run would score, and why.
async fn planned(location: &Location, options: RefreshOptions) -> BTreeMap<String, String> {
    let manifest = run(
        location,
        RefreshOptions {
            dry_run: true,
            ..options
        },
    )
    .await
    .unwrap();
    manifest.scored_partitions
}

async fn months(location: &Location) -> Vec<StorePath> {
    use futures::TryStreamExt;
    let mut files: Vec<StorePath> = location
        .store
        .list(Some(&StorePath::from("wh/declarations")))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .unwrap();
    files.sort();
    files
}

fn reasons(planned: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    planned
        .iter()
        .map(|(p, r)| (p.as_str(), r.as_str()))
        .collect()
}

#[test]
fn the_planner_scores_what_changed_and_says_why() {
    let wh = generate(3_000, 3);
    runtime().block_on(async {
        let location = in_memory_copy(wh.path()).await;
        let files = months(&location).await;
        let partition_of = |file: &StorePath| {
            let text = file.as_ref();
            let start = text.find("year=").unwrap();
            let end = text[start..].rfind('/').unwrap() + start;
            text[start..end].to_string()
        };
        let all: Vec<String> = {
            let mut all: Vec<String> = files.iter().map(partition_of).collect();
            all.dedup();
            all
        };
        assert_eq!(all.len(), 3, "{all:?}");

        // No model yet: every month, to be scored with the one to build.
        let first = planned(&location, RefreshOptions::default()).await;
        assert_eq!(
            reasons(&first),
            all.iter()
                .map(|p| (p.as_str(), "new model"))
                .collect::<Vec<_>>()
        );

        // A real run over the in-memory store publishes every month…
        let manifest = run(&location, RefreshOptions::default()).await.unwrap();
        assert_eq!(manifest.scored_partitions.len(), 3);
        // …after which nothing is left to do.
        assert!(
            planned(&location, RefreshOptions::default())
                .await
                .is_empty()
        );

        // One file rewritten (same path, new bytes): only its month.
        let rewritten = files.iter().find(|f| partition_of(f) == all[1]).unwrap();
        let bytes = location
            .store
            .get(rewritten)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        location
            .store
            .put(rewritten, PutPayload::from(bytes.clone()))
            .await
            .unwrap();
        assert_eq!(
            reasons(&planned(&location, RefreshOptions::default()).await),
            vec![(all[1].as_str(), "files changed")]
        );

        // A month asked for, and months since a day, with nothing changed
        // in them.
        let asked: Partition = all[0].parse().unwrap();
        let forced = planned(
            &location,
            RefreshOptions {
                partitions: vec![asked],
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            forced.get(&all[0]).map(String::as_str),
            Some("asked (--partitions)")
        );
        // Months in calendar order (the names sort month=10 before month=8).
        let mut in_order: Vec<Partition> = all.iter().map(|p| p.parse().unwrap()).collect();
        in_order.sort();
        let (first_month, last) = (in_order[0].to_string(), in_order[2]);
        let since = planned(
            &location,
            RefreshOptions {
                since: chrono::NaiveDate::from_ymd_opt(last.year, last.month as u32, 15),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            since.get(&last.to_string()).map(String::as_str),
            Some("asked (--since)")
        );
        assert_ne!(
            since.get(&first_month).map(String::as_str),
            Some("asked (--since)"),
            "{since:?}"
        );

        // A month that is not there cannot be asked for.
        let absent: Partition = "year=2001/month=1".parse().unwrap();
        let refused = run(
            &location,
            RefreshOptions {
                partitions: vec![absent],
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            refused.contains("--partitions year=2001/month=1: no declarations"),
            "{refused}"
        );

        // A new month: planned as new; a month removed: listed as removed.
        let copied = StorePath::from("wh/declarations/year=2030/month=1/part-0.parquet");
        location
            .store
            .put(&copied, PutPayload::from(bytes))
            .await
            .unwrap();
        for file in files.iter().filter(|f| partition_of(f) == all[0]) {
            location.store.delete(file).await.unwrap();
        }
        let manifest = run(
            &location,
            RefreshOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            manifest
                .scored_partitions
                .get("year=2030/month=1")
                .map(String::as_str),
            Some("new partition")
        );
        assert_eq!(manifest.removed_partitions, vec![all[0].clone()]);
    });
}
