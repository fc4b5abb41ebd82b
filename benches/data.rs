//! Loading the gzipped MNIST test set (10,000 28x28 images) from `$MEMIA_DATA_DIR`
//! (default `../shared/data`), and decoding the embedded digits.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memia::data::embedded;
use memia::data::idx::load_idx;

fn bench_loading(c: &mut Criterion) {
    let dir = std::env::var_os("MEMIA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let images = dir.join("mnist-t10k-images-idx3-ubyte.gz");
    let labels = dir.join("mnist-t10k-labels-idx1-ubyte.gz");
    let mut group = c.benchmark_group("data");
    group.sample_size(20);
    if images.is_file() {
        group.throughput(Throughput::Bytes(std::fs::metadata(&images).unwrap().len()));
        group.bench_function("mnist_t10k_gz", |b| {
            b.iter(|| load_idx(&images, &labels, "mnist", Some(10)).unwrap())
        });
    } else {
        eprintln!(
            "skipping mnist_t10k_gz: {} not found (set MEMIA_DATA_DIR)",
            images.display()
        );
    }
    group.bench_function("embedded_digits_clone", |b| b.iter(embedded::digits));
    group.finish();
}

criterion_group!(benches, bench_loading);
criterion_main!(benches);
