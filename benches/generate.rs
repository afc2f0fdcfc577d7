//! Throughput of the synthetic warehouse generator (items per second),
//! Parquet writing included. The target, 10 million items in under
//! a minute on 2 cores, is ~167k items/s; `benches/generate_10m.sh` times
//! the real binary on the full 10 million.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROWS: u64 = 500_000;

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(10);
    group.bench_function("500k_items_12_months_built_in_catalogue", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            let options = aduana_synth::GenerateOptions::new(dir.path().join("wh"), ROWS, 42);
            aduana_synth::generate(&options).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, generate);
criterion_main!(benches);
