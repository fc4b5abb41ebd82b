//! Helpers shared by the integration tests of the `memia` binary: running it, and looking at
//! what it wrote. Each test crate uses a part of them.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test: this build's, or `MEMIA_TEST_BINARY` (to show that an older memia
/// fails a test).
pub fn binary() -> PathBuf {
    std::env::var_os("MEMIA_TEST_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_memia")))
}

/// Where the real data files are: `$MEMIA_DATA_DIR`, else `../shared/data` beside the checkout.
pub fn data_dir() -> PathBuf {
    std::env::var_os("MEMIA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// `memia ARGS` in `cwd`, with the data directory set and no memory limit of the caller's.
pub fn command(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new(binary());
    command
        .args(args)
        .current_dir(cwd)
        .env("MEMIA_DATA_DIR", data_dir())
        .env_remove("MEMIA_MEMORY_LIMIT");
    command
}

/// Runs `memia ARGS` in `cwd`.
pub fn memia(args: &[&str], cwd: &Path) -> Output {
    command(args, cwd).output().expect("the memia binary runs")
}

/// Runs a command that must succeed; returns its standard output and standard error.
pub fn ok_with_stderr(args: &[&str], cwd: &Path) -> (String, String) {
    let out = memia(args, cwd);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "memia {args:?} failed:\n{err}");
    (String::from_utf8(out.stdout).unwrap(), err)
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok(args: &[&str], cwd: &Path) -> String {
    ok_with_stderr(args, cwd).0
}

/// Runs a command that must fail cleanly (an error, not a panic); returns its standard error.
pub fn fails(args: &[&str], cwd: &Path) -> String {
    let out = memia(args, cwd);
    assert!(!out.status.success(), "memia {args:?} should have failed");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "memia {args:?} panicked:\n{err}");
    err
}

/// Every path under `root` (files, folders and links), relative to it.
pub fn tree(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            out.insert(path.strip_prefix(root).unwrap().to_path_buf());
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out
}
