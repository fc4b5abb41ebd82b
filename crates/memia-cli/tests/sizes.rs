//! Sizes memia cannot hold are refused, with the size needed and the limit, before anything of
//! that size is allocated (issue 23, item 7): `memia plan --models 1000000000` aborted with
//! "memory allocation of 1797000000000 bytes failed" (exit 134), and `hidden = [1000000000]`
//! was accepted by `plan` and aborted in `train`.

use std::path::Path;
use std::process::{Command, Output};

fn memia(args: &[&str], cwd: &Path, limit: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_memia"));
    command.args(args).current_dir(cwd);
    match limit {
        Some(limit) => command.env("MEMIA_MEMORY_LIMIT", limit),
        None => command.env_remove("MEMIA_MEMORY_LIMIT"),
    };
    command.output().expect("the memia binary runs")
}

/// A command that must be refused with an error (exit status 1, not an abort or a panic);
/// returns its standard error.
fn refused(args: &[&str], cwd: &Path, limit: Option<&str>) -> String {
    let out = memia(args, cwd, limit);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "memia {args:?} should fail with an error, got {:?}:\n{err}",
        out.status
    );
    assert!(!err.contains("panicked"), "memia {args:?} panicked:\n{err}");
    err
}

fn ok(args: &[&str], cwd: &Path, limit: Option<&str>) -> String {
    let out = memia(args, cwd, limit);
    assert!(
        out.status.success(),
        "memia {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

const CONFIG: &str = "[data]\nsource = \"digits\"\nsamples = 200\n\
                      [plan]\nmodels = 8\nseed = 1\n\
                      [model.mlp]\nhidden = [64]\n\
                      [training]\nepochs = 2\n\
                      [train]\ngroup_size = 8\n";

#[test]
fn a_plan_larger_than_memory_is_refused_with_the_size_it_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let err = refused(&["plan", "--models", "1000000000", "-o", "run"], dir, None);
    for part in [
        "[plan] models = 1000000000",
        "the keep matrix",
        "1.8 TB",
        "available",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!dir.join("run").exists(), "a refused plan made a directory");
    // A size that overflows is refused too.
    let err = refused(
        &["plan", "--models", &usize::MAX.to_string(), "-o", "run"],
        dir,
        None,
    );
    assert!(err.contains("overflows"), "{err}");
    // 5,000,000 models need 9.0 GB of keep matrix: refused under a 1 GB limit, with it named.
    let err = refused(
        &["plan", "--models", "5000000", "-o", "run"],
        dir,
        Some("1G"),
    );
    assert!(
        err.contains("9.0 GB") && err.contains("the limit is 1.0 GB (MEMIA_MEMORY_LIMIT=1G)"),
        "{err}"
    );
    let err = refused(&["plan", "-o", "run"], dir, Some("lots"));
    assert!(
        err.contains("MEMIA_MEMORY_LIMIT") && err.contains("'lots' is not a size"),
        "{err}"
    );
    assert!(!dir.join("run").exists());
}

#[test]
fn a_model_larger_than_memory_is_refused_by_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, model, what) in [
        ("mlp", "[model.mlp]\nhidden = [1000000000]\n", "1000000000"),
        (
            "cnn",
            "[model.cnn]\nchannels = [100000000, 100000000]\nkernel = 5\nhidden = [10]\n",
            "100000000",
        ),
        (
            "batch",
            "[training]\nbatch_size = 100000000000\n",
            "a batch of 100000000000",
        ),
        (
            "resnet",
            "[model.res_net]\nwidths = [16]\nblocks_per_stage = 1000000000000\n",
            "1000000000000",
        ),
    ] {
        let config = format!("[data]\nsource = \"digits\"\n{model}");
        std::fs::write(dir.join(format!("{name}.toml")), config).unwrap();
        let err = refused(
            &["plan", "--config", &format!("{name}.toml"), "-o", name],
            dir,
            None,
        );
        assert!(
            err.contains("model = {") && err.contains(what) && err.contains("training one model"),
            "{name}: {err}"
        );
        assert!(err.contains("available"), "{name}: {err}");
        assert!(
            !dir.join(name).exists(),
            "{name}: a refused plan made a directory"
        );
    }
}

/// A group of models that does not fit is refused with the group size named and the largest
/// group that fits, at `plan` (the configuration's group size) and at `train` (a plan made
/// where more memory was available); training with that group size then works.
#[test]
fn a_group_larger_than_memory_is_refused_with_the_group_that_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
    // One model of 64-64-10 on 200 samples needs about 160 kB, eight about 950 kB.
    let limit = Some("400k");
    let err = refused(&["plan", "--config", "c.toml", "-o", "run"], dir, limit);
    assert!(
        err.contains("[train] group_size = 8") && err.contains("at a time fit"),
        "{err}"
    );
    ok(
        &["plan", "--config", "c.toml", "-o", "run", "-q"],
        dir,
        None,
    );
    let err = refused(&["train", "run", "-q"], dir, limit);
    assert!(
        err.contains("group_size = 8") && err.contains("the limit is 400.0 kB"),
        "{err}"
    );
    let fits: usize = err
        .split(" at a time fit")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no group size that fits in: {err}"));
    assert!((1..8).contains(&fits), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.join("run/logits")).unwrap().count(),
        0,
        "a refused training wrote models"
    );
    ok(
        &["train", "run", "--group-size", &fits.to_string(), "-q"],
        dir,
        limit,
    );
    assert_eq!(
        std::fs::read_dir(dir.join("run/logits"))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.starts_with("model_") && name.ends_with(".npy")
            })
            .count(),
        8
    );
    // Memorization keeps one signal of the run's models (8 models x 200 samples x 1 query,
    // float64: 12.8 kB) and reads one model at a time (200 x 1 x 10 float32, read and
    // decoded: 16 kB): refused under a smaller limit, before anything is read.
    let err = refused(
        &["memorize", "run", "-o", "mem.npz", "-q"],
        dir,
        Some("20k"),
    );
    assert!(
        err.contains("1 signal of 8 models") && err.contains("28.8 kB"),
        "{err}"
    );
    ok(
        &["memorize", "run", "-o", "mem.npz", "-q"],
        dir,
        Some("40k"),
    );
    assert!(dir.join("mem.npz").exists());
    std::fs::remove_file(dir.join("mem.npz")).unwrap();
    assert!(!dir.join("mem.npz").exists());
}
