//! The `download` feature against a local HTTP server on 127.0.0.1 (no external network):
//! verified downloads, the cache, checksum and HTTP failures.
#![cfg(feature = "download")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use memia_data::download::{MnistFamily, RemoteFile, fetch, sha256_file};
use memia_data::{DataError, Dataset};

/// A tiny HTTP/1.1 server for `files`, on loopback, that stops when dropped or after 60 s.
struct Server {
    base: String,
    stop: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl Server {
    fn start(files: HashMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, hits) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (stop2, hits2) = (stop.clone(), hits.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                hits2.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut stream = stream;
                match files.get(&path) {
                    Some(body) => {
                        write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .unwrap();
                        stream.write_all(body).unwrap();
                    }
                    None => write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    .unwrap(),
                }
            }
        });
        Server { base, stop, hits }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(&p, bytes).unwrap();
    sha256_file(&p).unwrap()
}

#[test]
fn downloads_verify_and_cache() {
    let body = b"some dataset bytes".to_vec();
    let digest = sha256_hex(&body);
    let server = Server::start(HashMap::from([("/data.bin".to_string(), body.clone())]));
    let cache = tempfile::tempdir().unwrap();
    let file = RemoteFile::new(&server.base, "data.bin", &digest);
    let path = fetch(&file, cache.path()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1);
    // Cached: no second request, even with the server gone.
    let base = server.base.clone();
    drop(server);
    assert_eq!(
        fetch(&RemoteFile::new(&base, "data.bin", &digest), cache.path()).unwrap(),
        path
    );
    // A corrupted cache is not trusted: it is fetched again (and fails here, the server is gone).
    std::fs::write(&path, b"tampered").unwrap();
    assert!(matches!(
        fetch(&file, cache.path()),
        Err(DataError::Download { .. })
    ));
}

#[test]
fn wrong_digest_and_missing_files_are_errors_that_leave_nothing_behind() {
    let server = Server::start(HashMap::from([(
        "/data.bin".to_string(),
        b"payload".to_vec(),
    )]));
    let cache = tempfile::tempdir().unwrap();
    let wrong = RemoteFile::new(&server.base, "data.bin", &"0".repeat(64));
    match fetch(&wrong, cache.path()) {
        Err(DataError::Checksum {
            expected, found, ..
        }) => {
            assert_eq!(expected, "0".repeat(64));
            assert_eq!(found, sha256_hex(b"payload"));
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "no partial or unverified file"
    );
    let missing = RemoteFile::new(&server.base, "nope.bin", &"0".repeat(64));
    let err = fetch(&missing, cache.path()).unwrap_err().to_string();
    assert!(err.contains("nope.bin") && err.contains("404"), "{err}");
}

#[test]
fn mnist_family_loads_from_a_mirror() {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    images.extend([0u8, 255, 255, 0, 10, 20, 30, 40]);
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 2, 7, 1];
    let gz = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let (gi, gl) = (gz(&images), gz(&labels));
    let server = Server::start(HashMap::from([
        ("/t10k-images-idx3-ubyte.gz".to_string(), gi.clone()),
        ("/t10k-labels-idx1-ubyte.gz".to_string(), gl.clone()),
    ]));
    let files = [
        RemoteFile::new(&server.base, "t10k-images-idx3-ubyte.gz", &sha256_hex(&gi)),
        RemoteFile::new(&server.base, "t10k-labels-idx1-ubyte.gz", &sha256_hex(&gl)),
    ];
    let cache = tempfile::tempdir().unwrap();
    let ds = MnistFamily::Mnist.load_from(&files, cache.path()).unwrap();
    assert_eq!(
        (ds.len(), ds.feature_shape(), ds.label(0), ds.features(0)[1]),
        (2, &[1, 2, 2][..], 7, 1.0)
    );
    assert!(
        cache
            .path()
            .join("mnist/t10k-labels-idx1-ubyte.gz")
            .is_file()
    );
    // The official registry points at the official addresses.
    let official = MnistFamily::Mnist.files(memia_data::download::Split::Test);
    assert_eq!(
        official[0].url,
        "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-images-idx3-ubyte.gz"
    );
    assert_eq!(official[0].sha256.len(), 64);
}

#[test]
fn embedded_digits_match_their_recorded_digest() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv.gz");
    assert_eq!(
        sha256_file(&path).unwrap(),
        memia_data::embedded::DIGITS_SHA256
    );
}
