//! File-system helpers shared by the writers.
//!
//! Every file memia writes appears under its name only when complete, and the temporary it is
//! written to first has a random name, created exclusively (`O_CREAT | O_EXCL`) in the target's
//! own directory. So two processes never share a temporary (not even two with the same PID in
//! different PID namespaces, as containers and Kubernetes pods have), a symlink planted at a
//! predictable name cannot redirect the write, and the final rename stays atomic because it never
//! crosses a file system.

use std::fs::File;
use std::path::Path;

use crate::error::{CoreError, Result};

/// The suffix of every temporary file memia creates: `.NAME.RANDOM.tmp`.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// Writes a file so that it appears under `path` only when complete.
///
/// The content goes to a hidden temporary file in the same directory (see
/// [`temporary_file_for`]), which is synced and then renamed over `path`. A crash or an error
/// part-way leaves no partial file under `path`; an error removes the temporary. A symlink at
/// `path` is replaced by the file, never written through.
pub fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let mut tmp = temporary_file_for(path).map_err(|e| CoreError::io(path, e))?;
    write(tmp.as_file_mut())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| CoreError::io(path, e))?;
    // On failure `persist` hands the temporary back, and dropping it removes the file.
    tmp.persist(path)
        .map_err(|e| CoreError::io(path, e.error))?;
    Ok(())
}

/// A new, empty temporary file beside `path`, named `.NAME.RANDOM.tmp` and created exclusively
/// with the permissions an ordinary `File::create` would give (0666 less the umask), removed when
/// dropped unless persisted.
pub fn temporary_file_for(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let (dir, prefix) = temporary_parts(path);
    builder(&prefix, 0o666).tempfile_in(dir)
}

/// Makes `dest` a hard link to the file `source` names (a symbolic link is followed: the run
/// gets the file, not a link that would resolve elsewhere from its new place), atomically (a
/// link under a temporary name beside `dest`, created exclusively, then renamed over it): what
/// an import does instead of copying a file it has checked, where both are on one filesystem
/// (otherwise the error, naming `source`, has kind `CrossesDevices`, and the caller copies).
pub fn hard_link_atomically(source: &Path, dest: &Path) -> Result<()> {
    let source = std::fs::canonicalize(source).map_err(|e| CoreError::io(source, e))?;
    let (dir, prefix) = temporary_parts(dest);
    let linked = builder(&prefix, 0o666)
        .make_in(dir, |tmp| std::fs::hard_link(&source, tmp))
        .map_err(|e| CoreError::io(&source, e))?;
    linked
        .into_temp_path()
        .persist(dest)
        .map_err(|e| CoreError::io(dest, e.error))?;
    Ok(())
}

/// A new temporary directory beside `path`, named `.NAME.RANDOM.tmp`, created exclusively
/// (mode 0777 less the umask) and removed with its content when dropped unless kept.
pub fn temporary_dir_for(path: &Path) -> std::io::Result<tempfile::TempDir> {
    let (dir, prefix) = temporary_parts(path);
    builder(&prefix, 0o777).tempdir_in(dir)
}

/// A builder of `PREFIX.RANDOM.tmp` names with `mode` (less the umask) where modes exist.
fn builder(prefix: &str, mode: u32) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(TEMPORARY_SUFFIX);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder
}

/// Puts the complete directory `staging` (made by [`temporary_dir_for`]`(dest)`) in place of
/// `dest`, so that a reader of `dest` sees either all of the old content or all of the new, never
/// a mix: where `dest` exists, the two are exchanged in one step (Linux `renameat2` with
/// `RENAME_EXCHANGE`) and the old content is then removed; where that is not available, the old
/// directory is first renamed aside (`dest` is then briefly absent, never mixed).
pub fn replace_dir(staging: tempfile::TempDir, dest: &Path) -> Result<()> {
    let io = |e| CoreError::io(dest, e);
    if std::fs::symlink_metadata(dest).is_err() {
        std::fs::rename(staging.path(), dest).map_err(io)?;
        // The staging directory is `dest` now: nothing to remove.
        let _ = staging.keep();
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    if exchange(staging.path(), dest).is_ok() {
        // `staging` now names the old content, removed when it drops.
        return Ok(());
    }
    let aside = temporary_dir_for(dest).map_err(io)?;
    std::fs::rename(dest, aside.path()).map_err(io)?;
    if let Err(e) = std::fs::rename(staging.path(), dest) {
        // Put the old content back rather than leave nothing.
        let _ = std::fs::rename(aside.path(), dest);
        return Err(io(e));
    }
    let _ = staging.keep();
    drop(aside);
    Ok(())
}

/// Removes the temporaries of `path` ([`temporary_file_for`], [`temporary_dir_for`]) that a
/// killed writer left beside it, once they are older than `age` (so that a concurrent writer's
/// temporary in progress is left alone). Errors are ignored: this is housekeeping.
pub fn remove_stale_temporaries_of(path: &Path, age: std::time::Duration) {
    let (dir, prefix) = temporary_parts(path);
    remove_stale_temporaries_in(
        dir,
        |name| name.starts_with(&prefix) && name.ends_with(TEMPORARY_SUFFIX),
        age,
    );
}

/// Removes the entries of `dir` whose name `is_temporary` accepts (files, or directories with
/// their content), once they are older than `age`. Errors are ignored: this is housekeeping.
pub fn remove_stale_temporaries_in(
    dir: &Path,
    is_temporary: impl Fn(&str) -> bool,
    age: std::time::Duration,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !is_temporary(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        let stale = meta
            .modified()
            .is_ok_and(|t| t.elapsed().is_ok_and(|e| e >= age));
        if stale {
            if meta.is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Exchanges two paths atomically.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::other("a path with a NUL byte"))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths, resolved against the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether `name` is one of the temporaries [`temporary_file_for`] makes for a file whose name
/// starts with `stem` (or one of the `.NAME.tmp-PID` names of memia 0.1, which the stale-file
/// cleanup still removes).
pub fn is_temporary_name(name: &str, stem: &str) -> bool {
    name.strip_prefix('.')
        .is_some_and(|rest| rest.starts_with(stem))
        && (name.ends_with(TEMPORARY_SUFFIX) || name.contains(".tmp-"))
}

/// The directory and the name prefix of `path`'s temporaries.
fn temporary_parts(path: &Path) -> (&Path, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    (dir, format!(".{name}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_have_random_names_in_the_targets_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("scores.npy");
        let a = temporary_file_for(&target).unwrap();
        let b = temporary_file_for(&target).unwrap();
        assert_ne!(a.path(), b.path());
        for t in [&a, &b] {
            assert_eq!(t.path().parent(), Some(dir.path()));
            let name = t.path().file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with(".scores.npy.") && name.ends_with(".tmp"),
                "{name}"
            );
            assert!(is_temporary_name(name, "scores"));
        }
        assert!(is_temporary_name(".model_00001.npy.tmp-42", "model_"));
        assert!(!is_temporary_name("model_00001.npy", "model_"));
        assert!(!is_temporary_name(".other.tmp", "model_"));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_target_is_replaced_and_its_victim_kept() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("out.json");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        atomic_write(&target, |f| std::io::Write::write_all(f, b"new")).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!target.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        // Nothing is left behind but the two files.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_failed_write_leaves_neither_file_nor_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let err = atomic_write(&target, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("report");
        for (round, files) in [&["a", "b"][..], &["c"][..]].iter().enumerate() {
            let staging = temporary_dir_for(&dest).unwrap();
            for f in *files {
                std::fs::write(staging.path().join(f), round.to_string()).unwrap();
            }
            replace_dir(staging, &dest).unwrap();
            let mut names: Vec<String> = std::fs::read_dir(&dest)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            assert_eq!(names, *files);
            // Neither the staging directory nor the old content is left beside it.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[cfg(unix)]
    #[test]
    fn written_files_get_the_usual_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let atomic = dir.path().join("atomic");
        atomic_write(&atomic, |f| std::io::Write::write_all(f, b"x")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }

    #[cfg(unix)]
    #[test]
    fn a_hard_link_is_to_the_file_a_symbolic_link_names() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let (data, folder, run) = (
            dir.path().join("data"),
            dir.path().join("in"),
            dir.path().join("run"),
        );
        for d in [&data, &folder, &run] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(data.join("model.npy"), b"logits").unwrap();
        // A relative link, as git-annex and DVC make them: linking the link itself would leave
        // the run a link that resolves from its own folder, to nothing.
        std::os::unix::fs::symlink("../data/model.npy", folder.join("model_0.npy")).unwrap();
        let dest = run.join("model_00000.npy");
        hard_link_atomically(&folder.join("model_0.npy"), &dest).unwrap();
        let meta = std::fs::symlink_metadata(&dest).unwrap();
        assert!(meta.file_type().is_file(), "a file, not a symbolic link");
        assert_eq!(
            meta.ino(),
            std::fs::metadata(data.join("model.npy")).unwrap().ino()
        );
        assert_eq!(std::fs::read(&dest).unwrap(), b"logits");
        let missing = hard_link_atomically(&folder.join("none.npy"), &dest).unwrap_err();
        assert!(missing.to_string().contains("none.npy"), "{missing}");
    }
}
