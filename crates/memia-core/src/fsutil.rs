//! File-system helpers shared by the writers.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{CoreError, Result};

/// Writes a file so that it appears under `path` only when complete.
///
/// The content goes to a hidden temporary file in the same directory, which is synced and then
/// renamed over `path`. A crash or an error part-way leaves no partial file under `path`.
pub fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temporary_sibling(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        write(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CoreError::io(path, e)
    })
}

/// `dir/.name.tmp-PID` beside `path`.
pub(crate) fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
