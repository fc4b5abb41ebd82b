//! Every reader of user files, fed random bytes and mutations of valid files (property tests):
//! it returns `Ok` or an error, never panics or aborts, and the memory it takes stays within a
//! small multiple of its input's size (measured by a counting allocator).
//!
//! Readers: `.npy` (file and stream), `.npz` (archive and data set), IDX (raw and gzipped),
//! CIFAR binary, a LiRA reference run, and a run directory (`plan.json`, `keep.npy`). The
//! command line's TOML configurations are fuzzed in `memia-cli`'s own tests.
//!
//! Cases per reader: `MEMIA_FUZZ_CASES` (default 1,000, as CI runs them);
//! `MEMIA_FUZZ_CASES=100000 cargo test --release --test untrusted_inputs` is the long run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use memia::core::npy::{read_npy_any, read_npy_from, write_npy};
use memia::core::npz::{NpzArchive, NpzWriter};
use memia::core::{KeepMatrix, LiraImportOptions, import_lira_run};
use memia::data::cifar::load_cifar10;
use memia::data::idx::read_idx;
use memia::data::numpy::load_npz;
use memia::shadow::RunDir;
use ndarray::{Array1, Array2, Array3, Array4};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = IN_USE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                IN_USE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One test at a time measures memory (the peak is process-wide).
static MEASURING: Mutex<()> = Mutex::new(());

/// Runs `read` and fails if it took more than `ratio` times `input_len` bytes (plus 8 MiB for
/// buffers and error messages) above what was in use before.
fn assert_bounded(what: &str, input_len: usize, ratio: usize, read: impl FnOnce()) {
    let before = IN_USE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    read();
    let taken = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    let bound = ratio * input_len + (8 << 20);
    assert!(
        taken <= bound,
        "{what}: {taken} bytes for an input of {input_len} (bound {bound})"
    );
}

fn cases() -> u32 {
    std::env::var("MEMIA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Random bytes, or a valid file with a few bytes changed, some inserted and its end cut.
fn inputs(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    let mutated = (
        prop::collection::vec((0..len.max(1), any::<u8>()), 0..8),
        prop::collection::vec((0..=len, any::<u8>()), 0..3),
        0..=len + 8,
    )
        .prop_map(move |(changes, inserts, cut)| {
            let mut bytes = valid.clone();
            for (i, b) in changes {
                if i < bytes.len() {
                    bytes[i] = b;
                }
            }
            for (i, b) in inserts {
                bytes.insert(i.min(bytes.len()), b);
            }
            bytes.truncate(cut);
            bytes
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        4 => mutated,
    ]
}

/// Runs `check` on `cases()` inputs derived from `valid` (memory measured, panics reported
/// with the input that caused them).
fn fuzz(what: &str, valid: Vec<u8>, ratio: usize, check: impl Fn(&[u8])) {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    runner
        .run(&inputs(valid), |bytes| {
            assert_bounded(what, bytes.len(), ratio, || check(&bytes));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let _ = writeln!(
        std::io::stderr(),
        "fuzzed {what}: {} cases in {:.1} s, no panic",
        cases(),
        started.elapsed().as_secs_f64()
    );
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images() -> Vec<u8> {
    let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 3];
    bytes.extend((0..36).map(|i| (i * 7) as u8));
    bytes
}

/// Writes `bytes` to a fresh file in `dir` and returns its path.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn npy_files_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.npy");
    write_npy(
        &valid,
        &Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32),
    )
    .unwrap();
    fuzz("npy file", file_bytes(&valid), 16, |bytes| {
        let _ = read_npy_any(put(dir.path(), "x.npy", bytes));
    });
    fuzz("npy stream", file_bytes(&valid), 16, |bytes| {
        let _ = read_npy_from(bytes, "stream");
    });
}

#[test]
fn npz_archives_and_data_sets() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.npz");
    let mut npz = NpzWriter::create(&valid, true);
    npz.add("x", &Array3::<u8>::from_elem((4, 2, 2), 51))
        .unwrap();
    npz.add("y", &ndarray::array![0i64, 1, 2, 1]).unwrap();
    npz.finish().unwrap();
    fuzz("npz archive", file_bytes(&valid), 2048, |bytes| {
        if let Ok(mut archive) = NpzArchive::open(put(dir.path(), "a.npz", bytes)) {
            for name in archive.names() {
                let _ = archive.read_any(&name);
            }
        }
    });
    fuzz("npz data set", file_bytes(&valid), 2048, |bytes| {
        let _ = load_npz(put(dir.path(), "d.npz", bytes), "x", "y", None);
    });
}

#[test]
fn idx_files_raw_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    fuzz("IDX", idx_images(), 16, |bytes| {
        let _ = read_idx(put(dir.path(), "i.idx", bytes));
    });
    fuzz("gzipped IDX", gzip(&idx_images()), 2048, |bytes| {
        let _ = read_idx(put(dir.path(), "i.gz", bytes));
    });
}

#[test]
fn cifar_binary_batches() {
    let dir = tempfile::tempdir().unwrap();
    let valid: Vec<u8> = (0..3 * 3073).map(|i| (i % 10) as u8).collect();
    fuzz("CIFAR-10 batch", valid, 16, |bytes| {
        let _ = load_cifar10(&[put(dir.path(), "c.bin", bytes)]);
    });
}

/// A LiRA reference run of two experiments; each case corrupts one of its files.
#[test]
fn lira_reference_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lira");
    let keep = KeepMatrix::balanced(2, 5, 1).unwrap();
    let mut files = Vec::new();
    for k in 0..2 {
        let exp = root.join(format!("experiment-{k}_2"));
        std::fs::create_dir_all(exp.join("logits")).unwrap();
        write_npy(exp.join("keep.npy"), &keep.row(k).to_owned()).unwrap();
        let logits = Array4::from_shape_fn((5, 1, 1, 3), |(i, _, _, c)| (i + c + k) as f32);
        write_npy(exp.join("logits/0000000001.npy"), &logits).unwrap();
        files.push(exp.join("keep.npy"));
        files.push(exp.join("logits/0000000001.npy"));
    }
    write_npy(
        root.join("y_train.npy"),
        &Array1::from(vec![0i64, 1, 2, 0, 1]),
    )
    .unwrap();
    files.push(root.join("y_train.npy"));
    for file in files {
        let valid = file_bytes(&file);
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        fuzz(&format!("LiRA run ({name})"), valid.clone(), 64, |bytes| {
            std::fs::write(&file, bytes).unwrap();
            let _ = import_lira_run(&root, &LiraImportOptions::default());
        });
        std::fs::write(&file, valid).unwrap();
    }
}

/// A run directory's `plan.json` and `keep.npy`, corrupted one at a time.
#[test]
fn run_directories() {
    use memia::data::embedded;
    use memia::shadow::{InclusionScheme, Plan, SoftmaxRegression};
    let dir = tempfile::tempdir().unwrap();
    let pool = embedded::digits();
    let trainer = SoftmaxRegression::default();
    let plan = Plan::new(&pool, 4, InclusionScheme::Bernoulli { p: 0.5 }, 3, &trainer).unwrap();
    let run = dir.path().join("run");
    RunDir::create(&run, &plan).unwrap();
    for name in ["plan.json", "keep.npy"] {
        let file = run.join(name);
        let valid = file_bytes(&file);
        fuzz(
            &format!("run directory ({name})"),
            valid.clone(),
            64,
            |bytes| {
                std::fs::write(&file, bytes).unwrap();
                if let Ok(opened) = RunDir::open(&run) {
                    let _ = opened.completed();
                }
            },
        );
        std::fs::write(&file, valid).unwrap();
    }
}

/// The cases the issue reported, kept as plain regression tests.
#[test]
fn reported_inputs_take_no_memory_for_what_they_only_claim() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    // A 128-byte .npy claiming shape (2^40,): refused before anything is reserved.
    let mut npy = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }";
    npy.extend(format!("{header:<117}\n").bytes());
    npy.extend([0u8; 8]);
    let path = put(dir.path(), "claims.npy", &npy);
    assert_bounded("a .npy claiming 8 TB", npy.len(), 16, || {
        let err = read_npy_any(&path).unwrap_err().to_string();
        assert!(err.contains("truncated data"), "{err}");
    });
    // A gzipped IDX file whose data goes on far beyond its declared 2 x 2 x 2 bytes.
    let mut idx = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    idx.extend(std::iter::repeat_n(0u8, 64 << 20));
    let gz = gzip(&idx);
    let path = put(dir.path(), "bomb.gz", &gz);
    drop(idx);
    assert_bounded("a gzipped IDX bomb", gz.len(), 64, || {
        let err = read_idx(&path).unwrap_err().to_string();
        assert!(err.contains("trailing bytes"), "{err}");
    });
    // An npz entry whose array declares 2 values but holds 64 MiB.
    let mut entry = Vec::new();
    {
        let small = dir.path().join("small.npy");
        write_npy(&small, &Array1::from(vec![1.0f64, 2.0])).unwrap();
        entry.extend(file_bytes(&small));
    }
    entry.extend(std::iter::repeat_n(0u8, 64 << 20));
    let path = dir.path().join("bomb.npz");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(false);
        zip.start_file("a.npy", options).unwrap();
        zip.write_all(&entry).unwrap();
        zip.finish().unwrap();
    }
    drop(entry);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    assert_bounded("an npz bomb", len, 64, || {
        let mut archive = NpzArchive::open(&path).unwrap();
        let err = archive.read_any("a").unwrap_err().to_string();
        assert!(err.contains("unexpected bytes after"), "{err}");
    });
}

/// A `.npy` (version 1) of `descr` and `shape` (as numpy writes it) followed by `data`.
fn npy_claiming(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let padded = (10 + dict.len() + 1).div_ceil(64) * 64 - 10;
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend((padded as u16).to_le_bytes());
    npy.extend(format!("{dict:<width$}\n", width = padded - 1).bytes());
    npy.extend(data);
    npy
}

/// Issue 23 ("what already holds"): headers that claim arrays far larger than any memory, as
/// shape (10^12, 10^12) (whose size overflows 64 bits) or (10^6, 10^6) float64 (8 TB, a size
/// that counts), in `.npy` files, streams and `.npz` entries, and IDX headers of
/// 2^32 - 1 per dimension or 10^11 bytes, raw and gzipped: each is refused with an error, and
/// the reader takes no more memory than a small multiple of the file (nothing of the claimed
/// size is ever reserved).
#[test]
fn oversized_headers_are_refused_before_allocating() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("<f4", "(1000000000000, 1000000000000)", "overflows"),
        ("<f8", "(1000000, 1000000)", "truncated"),
        (
            "|b1",
            "(1000000000000, 1000000000000, 1000000000000)",
            "overflows",
        ),
        ("<i8", "(18446744073709551615,)", ""),
    ];
    for (descr, shape, says) in cases {
        let npy = npy_claiming(descr, shape, &[0u8; 64]);
        let path = put(dir.path(), "claims.npy", &npy);
        assert_bounded(&format!(".npy {descr} {shape}"), npy.len(), 16, || {
            let err = read_npy_any(&path).unwrap_err().to_string();
            assert!(err.contains(says), "{shape}: {err}");
        });
        assert_bounded(&format!("stream {descr} {shape}"), npy.len(), 16, || {
            assert!(read_npy_from(npy.as_slice(), "stream").is_err(), "{shape}");
        });
        let path = dir.path().join("claims.npz");
        {
            let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file("x.npy", options).unwrap();
            zip.write_all(&npy).unwrap();
            zip.finish().unwrap();
        }
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert_bounded(&format!(".npz {descr} {shape}"), len, 16, || {
            let mut archive = NpzArchive::open(&path).unwrap();
            assert!(archive.read_any("x").is_err(), "{shape}");
            assert!(load_npz(&path, "x", "x", None).is_err(), "{shape}");
        });
    }
    // IDX: three dimensions of 2^32 - 1 (the count overflows), and 100000 x 1000 x 1000
    // bytes (10^11) with 64 bytes of data.
    for dims in [[u32::MAX; 3], [100_000, 1000, 1000]] {
        let mut idx = vec![0, 0, 8, 3];
        for d in dims {
            idx.extend(d.to_be_bytes());
        }
        idx.extend([7u8; 64]);
        for (name, bytes) in [("claims.idx", idx.clone()), ("claims.idx.gz", gzip(&idx))] {
            let path = put(dir.path(), name, &bytes);
            assert_bounded(&format!("{name} {dims:?}"), bytes.len(), 16, || {
                let err = read_idx(&path).unwrap_err().to_string();
                assert!(!err.is_empty(), "{name}");
            });
        }
    }
}
