//! Writes a synthetic shadow-model run of any size with known memorization
//! (`memia_core::synthetic`): the LiRA reference layout, one file per model for `memia import`,
//! the keep matrix, labels, true memorization and a group of memorized samples.
//!
//! ```text
//! cargo bench --profile release --no-default-features --bench synthetic_run -- --out /data/full --models 256 --samples 50000 \
//!     --queries 2 --classes 100
//! ```
//!
//! `benches/full_size.sh` runs every command on it under GNU time; docs/PERFORMANCE.md has the
//! figures. Without `--out` (as `cargo bench` runs every bench) it only says how to use it.

use std::path::PathBuf;
use std::time::Instant;

use memia::core::synthetic::SyntheticRun;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut run = SyntheticRun {
        models: 256,
        samples: 50_000,
        queries: 2,
        classes: 100,
        seed: 2026,
    };
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<String, Box<dyn std::error::Error>> {
            args.next()
                .ok_or_else(|| format!("{name} needs a value").into())
        };
        match arg.as_str() {
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--models" => run.models = value("--models")?.parse()?,
            "--samples" => run.samples = value("--samples")?.parse()?,
            "--queries" => run.queries = value("--queries")?.parse()?,
            "--classes" => run.classes = value("--classes")?.parse()?,
            "--seed" => run.seed = value("--seed")?.parse()?,
            "--bench" => {} // what `cargo bench` passes
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let Some(out) = out else {
        println!(
            "synthetic_run: give --out DIR (and --models, --samples, --queries, --classes, --seed) \
             to write a synthetic run; default size {} x {} x {} x {} ({:.1} GB)",
            run.models,
            run.samples,
            run.queries,
            run.classes,
            run.logits_bytes() as f64 / 1e9
        );
        return Ok(());
    };
    let start = Instant::now();
    let mut last = Instant::now();
    let files = run.write(&out, |done, total| {
        if last.elapsed().as_secs_f64() >= 2.0 || done == total {
            eprintln!("wrote {done}/{total} models");
            last = Instant::now();
        }
    })?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "wrote {} models x {} samples x {} queries x {} classes ({:.2} GB of logits) in {seconds:.1} s \
         ({:.0} MB/s): LiRA layout {}, model files {}",
        run.models,
        run.samples,
        run.queries,
        run.classes,
        run.logits_bytes() as f64 / 1e9,
        run.logits_bytes() as f64 / 1e6 / seconds,
        files.lira.display(),
        files.models.display()
    );
    Ok(())
}
