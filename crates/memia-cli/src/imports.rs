//! `memia import-lira`, `memia import`, `memia export-pool`: models trained elsewhere become a
//! run (the library's staged import), and a run's pool goes out as `.npz`.

use std::path::Path;

use memia_attacks::loo::EvalGroup;
use memia_core::npy::{AnyArray, into_dimension, read_npy_any};
use memia_core::{
    KeepMatrix, LiraImportOptions, Logits, LogitsSource, ModelFiles, import_lira_run,
    labels_from_i64,
};
use memia_shadow::Producer;
use ndarray::Array1;

use crate::args::{ExportPoolArgs, ImportArgs, ImportLiraArgs};
use crate::error::{AuditError, Result, usage};
use crate::progress::{Progress, status};
use memia_audit::Run;
use memia_audit::import::{Import, Stored};

use crate::flags::canonical;

pub(crate) fn import_lira(args: &ImportLiraArgs, quiet: bool, json: bool) -> Result<()> {
    let options = LiraImportOptions { epoch: args.epoch };
    let imported = import_lira_run(&args.dir, &options)?;
    let n = imported.keep.samples();
    let classes = imported.logits.model_shape()[2];
    say_converted(&imported.logits, quiet)?;
    let labels = match (&args.labels, &imported.labels) {
        (Some(path), _) => {
            let raw = read_npy_any(path)?.to_i64_vec(&path.display().to_string())?;
            if raw.len() < n {
                return Err(usage(format!(
                    "--labels {}: {} labels for {n} samples",
                    path.display(),
                    raw.len()
                )));
            }
            labels_from_i64(&raw[..n], classes)?
        }
        (None, Some(labels)) => labels.clone(),
        (None, None) => {
            return Err(usage(format!(
                "{} has no y_train.npy: give the pool's labels with --labels FILE.npy",
                args.dir.display()
            )));
        }
    };
    let source = canonical(&args.dir)?;
    let description = serde_json::json!({
        "imported_from": source,
        "epoch": args.epoch,
        "experiments": imported.experiments.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
    });
    let groups = read_groups(args.groups.as_deref(), n)?;
    let images = read_images(args.images.as_deref(), n)?;
    let producer = Producer::new("memia import-lira").with("source", source.display().to_string());
    let stored = store_import(
        Import {
            keep: &imported.keep,
            logits: &imported.logits,
            labels: &labels,
            groups: &groups,
            name: &format!("imported LiRA run {}", source.display()),
            description: &description,
            producer: &producer,
            link: args.link,
            images: images.as_ref(),
        },
        &args.output,
        quiet,
        |_, _| {},
    )?;
    if json {
        print_import(
            "import-lira",
            &imported.keep,
            &imported.logits,
            stored,
            &args.output,
            &[],
            &[],
        );
    }
    Ok(())
}

/// `--images FILE`: the pool's pixels (a `.npy`, or an export-pool `.npz`'s `x`), checked
/// against the `n` samples and arranged N x C x H x W.
fn read_images(path: Option<&Path>, n: usize) -> Result<Option<ndarray::Array4<f32>>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let location = path.display().to_string();
    let any = if path.extension().is_some_and(|e| e == "npz") {
        let mut npz = memia_core::npz::NpzArchive::open(path)?;
        if !npz.names().iter().any(|k| k == "x") {
            return Err(usage(format!(
                "--images {location}: no array 'x' (holds {:?}); give the pixels as x, as \
                 `memia export-pool` writes them",
                npz.names()
            )));
        }
        npz.read_any("x")?
    } else {
        read_npy_any(path)?
    };
    let values = any.to_f64().ok_or_else(|| {
        usage(format!(
            "--images {location}: pixels must be numbers, found {}",
            any.dtype().descr()
        ))
    })?;
    let images = memia_audit::import::pool_images(values.mapv(|v| v as f32), n)
        .map_err(|e| usage(format!("--images {location}: {e}")))?;
    Ok(Some(images))
}

/// `--json` of an import: the run's shape, what was stored, and the warnings.
fn print_import(
    command: &str,
    keep: &KeepMatrix,
    logits: &dyn LogitsSource,
    stored: Stored,
    output: &Path,
    mismatched: &[String],
    probabilities: &[usize],
) {
    let [samples, queries, classes] = logits.model_shape();
    crate::json::print(
        command,
        serde_json::json!({
            "output": output,
            "models": keep.models(),
            "samples": samples,
            "queries": queries,
            "classes": classes,
            "stored": match stored {
                Stored::AlreadyThere => "already there",
                Stored::Written { .. } => "written",
            },
            "linked": match stored {
                Stored::AlreadyThere => 0,
                Stored::Written { linked } => linked,
            },
            "mismatched_models": mismatched,
            "probability_models": probabilities,
        }),
    );
}

/// Stores `import` as the run `output`, with a progress bar, handing each model's logits to
/// `inspect` as they are read, and says what happened; returns it.
fn store_import(
    import: Import<'_>,
    output: &Path,
    quiet: bool,
    inspect: impl FnMut(usize, ndarray::ArrayView3<'_, f32>),
) -> Result<Stored> {
    let k = import.keep.models();
    let mut bar = Progress::new("storing", "models", k as u64, quiet);
    let stored = import.store_inspecting(
        output,
        |done, total| bar.update(done as u64, total as u64, None),
        inspect,
    )?;
    bar.finish();
    let [n, a, c] = import.logits.model_shape();
    let said = match stored {
        Stored::AlreadyThere => format!(
            "{} already holds this import: nothing written",
            output.display()
        ),
        Stored::Written { linked } => format!(
            "imported {} into {}{}",
            memia_report::run_shape(k, n, a, c),
            output.display(),
            match linked {
                0 if import.link => " (copied: no file could be linked)".to_string(),
                0 => String::new(),
                l if l == k => " (every file linked, not copied)".to_string(),
                l => format!(" ({l} files linked, the others copied)"),
            }
        ),
    };
    status(quiet, said);
    Ok(stored)
}

/// Says which model files hold float64 logits (converted to float32 as they are read): one
/// header read per file.
fn say_converted(files: &ModelFiles, quiet: bool) -> Result<()> {
    let mut converted = Vec::new();
    for (m, path) in files.files().iter().enumerate() {
        if memia_core::npy::read_file_header(path)?.header.dtype == memia_core::npy::DType::F64 {
            converted.push(m);
        }
    }
    match converted.as_slice() {
        [] => {}
        [m] => status(
            quiet,
            format!(
                "{}: float64 logits converted to float32",
                files.files()[*m].display()
            ),
        ),
        many => status(
            quiet,
            format!(
                "{} files hold float64 logits, converted to float32 (models {})",
                many.len(),
                crate::text::index_ranges(many)
            ),
        ),
    }
    Ok(())
}

pub(crate) fn export_pool(args: &ExportPoolArgs, quiet: bool) -> Result<()> {
    use memia_data::Dataset;
    let run = Run::open(&args.run)?;
    let pool = run.planned_pool()?;
    let ds = &pool.dataset;
    let shape: Vec<usize> = std::iter::once(ds.len())
        .chain(ds.feature_shape().iter().copied())
        .collect();
    let x = ndarray::ArrayD::from_shape_vec(shape, ds.as_slice().to_vec())
        .expect("the pool's values fill its shape");
    let y: Array1<i64> = run.labels.iter().map(|&l| i64::from(l)).collect();
    let mut npz = memia_core::npz::NpzWriter::create(&args.output, true);
    npz.add("x", &x)?;
    npz.add("y", &y)?;
    npz.add("keep", run.dir.keep().as_array())?;
    for group in &run.pool.groups {
        let name: String = group
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let samples: Array1<i64> = group.samples.iter().map(|&i| i as i64).collect();
        npz.add(&format!("group_{name}"), &samples)?;
    }
    npz.finish()?;
    status(
        quiet,
        format!(
            "wrote {}: x {:?}, y, keep {} x {}, {} groups",
            args.output.display(),
            x.shape(),
            run.dir.keep().models(),
            ds.len(),
            run.pool.groups.len()
        ),
    );
    Ok(())
}

/// The groups of a `--groups` JSON file, checked against the pool's `n` samples.
pub(crate) fn read_groups(path: Option<&Path>, n: usize) -> Result<Vec<EvalGroup>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path).map_err(crate::error::io(path))?;
    let groups: Vec<EvalGroup> = serde_json::from_str(&text).map_err(|e| AuditError::Config {
        path: path.to_path_buf(),
        reason: format!("{e} (expected [{{\"name\": \"canaries\", \"samples\": [0, 5]}}])"),
    })?;
    for (j, g) in groups.iter().enumerate() {
        if groups[..j].iter().any(|h| h.name == g.name) {
            return Err(AuditError::Config {
                path: path.to_path_buf(),
                reason: format!("two groups are named '{}': give each its own name", g.name),
            });
        }
        if let Some(&i) = g.samples.iter().find(|&&i| i >= n) {
            return Err(AuditError::Config {
                path: path.to_path_buf(),
                reason: format!("group '{}' lists sample {i}, the pool has {n}", g.name),
            });
        }
    }
    Ok(groups)
}

/// Reads logits as float32: float64 is converted (said unless quiet), other types refused with
/// the numpy command that converts them.
fn read_logits_any(path: &Path, quiet: bool) -> Result<ndarray::ArrayD<f32>> {
    let location = path.display().to_string();
    Ok(match read_npy_any(path)? {
        AnyArray::F64(a) => {
            status(
                quiet,
                format!("{location}: float64 logits converted to float32"),
            );
            a.mapv(|v| v as f32)
        }
        other => other.into_typed::<f32>(&location)?,
    })
}

pub(crate) fn import(args: &ImportArgs, quiet: bool, json: bool) -> Result<()> {
    let keep = KeepMatrix::load(&args.keep)?;
    let (k, n) = (keep.models(), keep.samples());
    // Read first: their length tells a transposed keep matrix from transposed logits.
    let raw = read_npy_any(&args.labels)?.to_i64_vec(&args.labels.display().to_string())?;
    let mut names: Option<Vec<String>> = None;
    // A folder is read one model file at a time (an import of any size); one file whole.
    let (folder, whole): (Option<ModelFiles>, Option<Logits>) = if args.logits.is_dir() {
        let expected = crate::import_checks::Expected {
            models: k,
            samples: n,
            labels: Some(raw.len()),
        };
        let (files, order) = crate::import_checks::model_files(&args.logits, &expected)?;
        status(quiet, order);
        names = Some(
            files
                .iter()
                .map(|f| {
                    f.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                })
                .collect(),
        );
        let files = ModelFiles::new(files, None)?;
        say_converted(&files, quiet)?;
        (Some(files), None)
    } else {
        let all = read_logits_any(&args.logits, quiet)?;
        let all = if all.ndim() == 3 {
            all.insert_axis(ndarray::Axis(2))
        } else {
            all
        };
        let location = args.logits.display().to_string();
        let all = into_dimension::<f32, ndarray::Ix4>(all, &location)?;
        let (models, samples) = (all.dim().0, all.dim().1);
        if models != k {
            return Err(usage(transposed_message(
                &args.keep,
                &location,
                (k, n),
                (models, samples),
                raw.len(),
            )));
        }
        (None, Some(Logits::new(all)?))
    };
    let logits: &dyn LogitsSource = match (&folder, &whole) {
        (Some(files), _) => files,
        (None, Some(all)) => all,
        (None, None) => unreachable!("one of the two is read above"),
    };
    let [samples, _, classes] = logits.model_shape();
    if samples != n {
        return Err(usage(format!(
            "--logits: {samples} samples, the keep matrix has {n}"
        )));
    }
    if raw.len() != n {
        return Err(usage(format!(
            "--labels {}: {} labels for {n} samples",
            args.labels.display(),
            raw.len()
        )));
    }
    let labels = labels_from_i64(&raw, classes)?;
    let (keep_path, logits_path) = (canonical(&args.keep)?, canonical(&args.logits)?);
    let groups = read_groups(args.groups.as_deref(), n)?;
    let images = read_images(args.images.as_deref(), n)?;
    let description = serde_json::json!({
        "imported_keep": keep_path,
        "imported_logits": logits_path,
    });
    let producer = Producer::new("memia import").with("source", logits_path.display().to_string());
    // The checks that need every model are gathered as the models are stored, and said after
    // the import's own line so that they are the last thing on the screen.
    let mut outcomes = crate::import_checks::Outcomes::new(k, &labels);
    let stored = store_import(
        Import {
            keep: &keep,
            logits,
            labels: &labels,
            groups: &groups,
            name: &format!("imported models {}", logits_path.display()),
            description: &description,
            producer: &producer,
            link: args.link,
            images: images.as_ref(),
        },
        &args.output,
        quiet,
        |m, model| outcomes.see(m, model),
    )?;
    let (mismatched, probabilities) = if matches!(stored, Stored::Written { .. }) {
        let mismatched =
            crate::import_checks::mismatched_models(&keep, &outcomes, names.as_deref());
        let probabilities = outcomes.probability_models();
        crate::import_checks::warn(&mismatched, k, &probabilities);
        (mismatched, probabilities)
    } else {
        (Vec::new(), Vec::new())
    };
    if json {
        print_import(
            "import",
            &keep,
            logits,
            stored,
            &args.output,
            &mismatched,
            &probabilities,
        );
    }
    Ok(())
}

/// The error for logits of another number of models than the keep matrix's rows: where the
/// shapes are each other's transpose, which of the two arrays is transposed (the one whose
/// samples axis does not match the labels), named by its flag.
fn transposed_message(
    keep_path: &Path,
    logits: &str,
    (k, n): (usize, usize),
    (models, samples): (usize, usize),
    labels: usize,
) -> String {
    let keep = keep_path.display();
    let plain = format!(
        "--logits {logits}: logits of {models} models (first axis), but the keep matrix \
         --keep {keep} has {k} rows, one per model"
    );
    if !(models == n && samples == k && k != n) {
        return plain;
    }
    if labels == k {
        format!(
            "--keep {keep}: the keep matrix is {k} x {n}, which looks transposed: the logits hold \
             {models} models x {samples} samples and there are {labels} labels, so the keep \
             matrix must be models x samples, {n} x {k} (numpy: keep.T)"
        )
    } else if labels == n {
        format!(
            "--logits {logits}: the logits are {models} x {samples} x ..., which looks transposed \
             (samples x models): the keep matrix --keep {keep} is {k} models x {n} samples and \
             there are {labels} labels, so the logits must be models x samples x [queries x] \
             classes, {k} x {n} x ... (numpy: logits.swapaxes(0, 1))"
        )
    } else {
        format!(
            "{plain}: one of the two looks transposed (the keep matrix is {k} x {n}, the logits \
             {models} x {samples} x ...); both must be models x samples"
        )
    }
}
