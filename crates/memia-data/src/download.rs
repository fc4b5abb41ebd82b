//! Fetching the canonical data sets into a cache, checked by SHA-256 (cargo feature
//! `download`).
//!
//! A file is downloaded to a temporary name, its SHA-256 compared with the expected digest,
//! and only then renamed into place; a cached file is re-checked before every use and
//! re-downloaded if it does not match. The digests below are the ones torchvision publishes
//! for these files (its MNIST, FashionMNIST and KMNIST dataset definitions).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::dataset::InMemoryDataset;
use crate::error::{DataError, Result};
use crate::idx::load_idx;

/// A file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Where to get it.
    pub url: String,
    /// Its name in the cache directory.
    pub file_name: String,
    /// Expected SHA-256, lowercase hex.
    pub sha256: String,
}

impl RemoteFile {
    /// A file under `base_url` (which ends without a slash).
    pub fn new(base_url: &str, file_name: &str, sha256: &str) -> Self {
        RemoteFile {
            url: format!("{base_url}/{file_name}"),
            file_name: file_name.to_string(),
            sha256: sha256.to_string(),
        }
    }
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Returns the path of `file` in `cache_dir`, downloading it first unless a copy with the
/// right SHA-256 is already there. A download whose digest differs is deleted and reported.
pub fn fetch(file: &RemoteFile, cache_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(cache_dir).map_err(|source| DataError::Io {
        path: cache_dir.to_path_buf(),
        source,
    })?;
    let path = cache_dir.join(&file.file_name);
    if path.is_file() && sha256_file(&path)? == file.sha256 {
        return Ok(path);
    }
    // A random, exclusively created name: concurrent downloads (or a planted symlink) never
    // share it; dropped (removed) on any error.
    let io = |source| DataError::Io {
        path: path.clone(),
        source,
    };
    let mut tmp = memia_core::temporary_file_for(&path).map_err(io)?;
    let tmp_path = tmp.path().to_path_buf();
    download_to(&file.url, tmp.as_file_mut(), &tmp_path)?;
    let found = sha256_file(tmp.path())?;
    if found != file.sha256 {
        return Err(DataError::Checksum {
            path: path.clone(),
            expected: file.sha256.clone(),
            found,
        });
    }
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(path)
}

fn download_to(url: &str, out: &mut std::fs::File, dest: &Path) -> Result<()> {
    let fail = |reason: String| DataError::Download {
        url: url.to_string(),
        reason,
    };
    let mut response = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    let mut reader = response.body_mut().with_config().limit(u64::MAX).reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| fail(format!("reading the body failed: {e}")))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|source| DataError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
    }
    out.sync_all().map_err(|source| DataError::Io {
        path: dest.to_path_buf(),
        source,
    })
}

/// The canonical MNIST-format data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MnistFamily {
    /// MNIST (CVDF mirror of LeCun et al.'s files).
    Mnist,
    /// Fashion-MNIST (Zalando Research).
    FashionMnist,
    /// Kuzushiji-MNIST (ROIS-DS Center for Open Data in the Humanities).
    Kmnist,
}

/// The training or the test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 samples.
    Train,
    /// 10,000 samples.
    Test,
}

impl MnistFamily {
    /// The image and label files of `split`, with their official addresses and digests.
    pub fn files(self, split: Split) -> [RemoteFile; 2] {
        let (base, digests): (&str, [&str; 4]) = match self {
            MnistFamily::Mnist => (
                "https://storage.googleapis.com/cvdf-datasets/mnist",
                [
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                ],
            ),
            MnistFamily::FashionMnist => (
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
                [
                    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                ],
            ),
            MnistFamily::Kmnist => (
                "http://codh.rois.ac.jp/kmnist/dataset/kmnist",
                [
                    "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
                    "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
                    "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
                    "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
                ],
            ),
        };
        let (prefix, offset) = match split {
            Split::Train => ("train", 0),
            Split::Test => ("t10k", 2),
        };
        [
            RemoteFile::new(
                base,
                &format!("{prefix}-images-idx3-ubyte.gz"),
                digests[offset],
            ),
            RemoteFile::new(
                base,
                &format!("{prefix}-labels-idx1-ubyte.gz"),
                digests[offset + 1],
            ),
        ]
    }

    fn name(self) -> &'static str {
        match self {
            MnistFamily::Mnist => "mnist",
            MnistFamily::FashionMnist => "fashion-mnist",
            MnistFamily::Kmnist => "kmnist",
        }
    }

    /// Fetches (or finds in `cache_dir`) and loads `split`.
    pub fn load(self, split: Split, cache_dir: &Path) -> Result<InMemoryDataset> {
        self.load_from(&self.files(split), cache_dir)
    }

    /// As [`MnistFamily::load`], from other addresses (a mirror, or a local server in tests).
    pub fn load_from(self, files: &[RemoteFile; 2], cache_dir: &Path) -> Result<InMemoryDataset> {
        let dir = cache_dir.join(self.name());
        let images = fetch(&files[0], &dir)?;
        let labels = fetch(&files[1], &dir)?;
        load_idx(images, labels, self.name(), Some(10))
    }
}
