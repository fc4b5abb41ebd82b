//! The scheduler's guarantees: determinism, resumption after a real `kill -9`, shards trained by
//! separate processes, extension, and refusal of mismatched runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memia_data::{Dataset, InMemoryDataset, embedded};
use memia_shadow::{
    InclusionScheme, ModelJob, Plan, Producer, RunDir, ShadowError, ShadowTrainer,
    SoftmaxRegression, TrainerError,
};
use ndarray::Array3;

const MODELS: usize = 6;

fn pool() -> InMemoryDataset {
    let digits = embedded::digits();
    InMemoryDataset::from_dataset(&digits.subset((0..600).collect()).unwrap())
}

fn trainer() -> SoftmaxRegression {
    SoftmaxRegression {
        epochs: 30,
        group_size: 2,
        ..Default::default()
    }
}

/// The same trainer, slowed down so that a process can be killed part-way through a run.
struct Slow(SoftmaxRegression);

impl ShadowTrainer for Slow {
    fn config(&self) -> serde_json::Value {
        self.0.config()
    }
    fn queries(&self) -> usize {
        1
    }
    fn group_size(&self) -> usize {
        1
    }
    fn train_group(
        &self,
        pool: &dyn Dataset,
        jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, TrainerError> {
        std::thread::sleep(Duration::from_millis(300));
        self.0.train_group(pool, jobs)
    }
}

fn plan(seed: u64) -> Plan {
    Plan::new(
        &pool(),
        MODELS,
        InclusionScheme::Balanced { ratio: 0.5 },
        seed,
        &trainer(),
    )
    .unwrap()
}

fn files(run: &RunDir) -> Vec<Vec<u8>> {
    (0..run.plan().models)
        .map(|k| std::fs::read(run.logits_path(k)).unwrap())
        .collect()
}

/// An uninterrupted single-process run of `plan` in `dir`.
fn reference_run(dir: &Path, plan: &Plan) -> Vec<Vec<u8>> {
    let run = RunDir::create(dir, plan).unwrap();
    run.train(&trainer(), &pool(), 0..plan.models, |_| {})
        .unwrap();
    files(&run)
}

/// Runs this test binary's `child_process_entry` in a new process, training `range` of the run
/// in `dir` with the slow trainer.
fn spawn_child(dir: &Path, range: std::ops::Range<usize>) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MEMIA_SHADOW_CHILD_RUN", dir)
        .env(
            "MEMIA_SHADOW_CHILD_RANGE",
            format!("{}..{}", range.start, range.end),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
#[ignore = "entry point of the child processes spawned by the other tests"]
fn child_process_entry() {
    let Some(dir) = std::env::var_os("MEMIA_SHADOW_CHILD_RUN") else {
        return;
    };
    let range = std::env::var("MEMIA_SHADOW_CHILD_RANGE").unwrap();
    let (a, b) = range.split_once("..").unwrap();
    let run = RunDir::open(PathBuf::from(dir)).unwrap();
    run.train(
        &Slow(trainer()),
        &pool(),
        a.parse().unwrap()..b.parse().unwrap(),
        |_| {},
    )
    .unwrap();
}

#[test]
fn same_plan_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(1);
    let first = reference_run(&tmp.path().join("a"), &plan);
    let second = reference_run(&tmp.path().join("b"), &plan);
    assert_eq!(first, second, "bit-identical logits");
    let other = reference_run(&tmp.path().join("c"), &self::plan(2));
    assert_ne!(first, other, "another seed draws other subsets");
}

#[test]
fn rerunning_skips_finished_models() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(3);
    let expected = reference_run(&tmp.path().join("ref"), &plan);
    let run = RunDir::create(tmp.path().join("run"), &plan).unwrap();
    let mut seen = Vec::new();
    let first = run
        .train(&trainer(), &pool(), 0..3, |p| seen.push((p.done, p.total)))
        .unwrap();
    assert_eq!(first.trained, vec![0, 1, 2]);
    assert_eq!(
        seen,
        vec![(2, 3), (3, 3)],
        "progress after each group of two"
    );
    assert!(matches!(
        run.logits(),
        Err(ShadowError::Incomplete {
            missing: 3,
            first: 3,
            ..
        })
    ));
    let reopened = RunDir::create(tmp.path().join("run"), &plan).unwrap();
    let second = reopened
        .train(&trainer(), &pool(), 0..MODELS, |_| {})
        .unwrap();
    assert_eq!(
        (second.skipped, second.trained),
        (vec![0, 1, 2], vec![3, 4, 5])
    );
    assert_eq!(files(&reopened), expected);
    let manifest = std::fs::read_to_string(tmp.path().join("run/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"complete\": [\n    0,\n    1,\n    2,\n    3,\n    4,\n    5\n  ]"),
        "{manifest}"
    );
    assert_eq!(reopened.logits().unwrap().models(), MODELS);
}

#[test]
fn training_stopped_by_its_progress_keeps_finished_groups_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(3);
    let expected = reference_run(&tmp.path().join("ref"), &plan);
    let run = RunDir::create(tmp.path().join("run"), &plan).unwrap();
    let mut calls = 0;
    let stopped = run
        .train_while(&trainer(), &pool(), 0..MODELS, |p| {
            calls += 1;
            p.done < 2
        })
        .unwrap();
    assert_eq!(
        (calls, stopped.stopped),
        (1, true),
        "stops after the first group"
    );
    assert_eq!(stopped.trained, vec![0, 1]);
    assert_eq!(
        run.completed().unwrap(),
        vec![true, true, false, false, false, false]
    );
    let rest = run.train(&trainer(), &pool(), 0..MODELS, |_| {}).unwrap();
    assert_eq!((rest.skipped, rest.stopped), (vec![0, 1], false));
    assert_eq!(files(&run), expected, "as if never stopped");
}

#[test]
fn a_killed_run_resumes_to_identical_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(4);
    let expected = reference_run(&tmp.path().join("ref"), &plan);
    let dir = tmp.path().join("run");
    let run = RunDir::create(&dir, &plan).unwrap();
    let mut child = spawn_child(&dir, 0..MODELS);
    let deadline = Instant::now() + Duration::from_secs(60);
    while run.completed().unwrap().iter().filter(|&&d| d).count() < 2 {
        assert!(Instant::now() < deadline, "the child made no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let done = run.completed().unwrap().iter().filter(|&&d| d).count();
    assert!(done < MODELS, "killed part-way ({done} of {MODELS} done)");
    let resumed = run.train(&trainer(), &pool(), 0..MODELS, |_| {}).unwrap();
    assert_eq!(resumed.skipped.len(), done);
    assert_eq!(
        files(&run),
        expected,
        "every output identical to an uninterrupted run"
    );
}

#[test]
fn shards_in_two_processes_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(5);
    let expected = reference_run(&tmp.path().join("ref"), &plan);
    let dir = tmp.path().join("run");
    let run = RunDir::create(&dir, &plan).unwrap();
    let mut a = spawn_child(&dir, 0..3);
    let mut b = spawn_child(&dir, 3..MODELS);
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert_eq!(files(&run), expected);
    let again = run.train(&trainer(), &pool(), 0..MODELS, |_| {}).unwrap();
    assert!(again.trained.is_empty());
}

#[test]
fn extendable_plans_grow_without_retraining() {
    let tmp = tempfile::tempdir().unwrap();
    let scheme = InclusionScheme::FixedSize { ratio: 0.6 };
    let small = Plan::new(&pool(), 3, scheme.clone(), 7, &trainer()).unwrap();
    let large = Plan::new(&pool(), 5, scheme, 7, &trainer()).unwrap();
    assert_eq!(
        small.content_hash(),
        large.content_hash(),
        "the model count is outside the hash"
    );
    let expected = reference_run(&tmp.path().join("ref"), &large);
    let mut run = RunDir::create(tmp.path().join("run"), &small).unwrap();
    run.train(&trainer(), &pool(), 0..3, |_| {}).unwrap();
    let before: Vec<Vec<u8>> = files(&run);
    assert!(
        RunDir::create(tmp.path().join("run"), &large)
            .unwrap_err()
            .to_string()
            .contains("use RunDir::extend")
    );
    run.extend(5).unwrap();
    let report = run.train(&trainer(), &pool(), 0..5, |_| {}).unwrap();
    assert_eq!(report.trained, vec![3, 4]);
    assert_eq!(&files(&run)[..3], &before[..]);
    assert_eq!(files(&run), expected);
    assert_eq!(
        RunDir::open(tmp.path().join("run")).unwrap().plan().models,
        5
    );

    let mut balanced = RunDir::create(tmp.path().join("balanced"), &plan(1)).unwrap();
    assert!(
        balanced
            .extend(8)
            .unwrap_err()
            .to_string()
            .contains("cannot be extended")
    );
}

#[test]
fn mismatches_are_refused_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let run = RunDir::create(&dir, &plan(1)).unwrap();
    let err = RunDir::create(&dir, &plan(2)).unwrap_err().to_string();
    assert!(
        err.contains("holds a run of plan") && err.contains(&plan(2).content_hash()),
        "{err}"
    );
    let other_pool =
        InMemoryDataset::from_dataset(&embedded::digits().subset((1..601).collect()).unwrap());
    let err = run
        .train(&trainer(), &other_pool, 0..1, |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("not the one this run was planned on"), "{err}");
    let other_trainer = SoftmaxRegression {
        epochs: 31,
        ..trainer()
    };
    assert!(
        run.train(&other_trainer, &pool(), 0..1, |_| {})
            .unwrap_err()
            .to_string()
            .contains("differ from the plan's")
    );
    assert!(run.train(&trainer(), &pool(), 0..7, |_| {}).is_err());
    // A logits file of the wrong shape is reported, not trusted.
    memia_core::npy::write_npy(run.logits_path(0), &Array3::<f32>::zeros((3, 1, 10))).unwrap();
    assert!(
        run.completed()
            .unwrap_err()
            .to_string()
            .contains("the plan expects [600, 1, 10]")
    );
    // An edited plan.json is detected.
    let text = std::fs::read_to_string(dir.join("plan.json"))
        .unwrap()
        .replace("\"seed\": 1", "\"seed\": 9");
    std::fs::write(dir.join("plan.json"), text).unwrap();
    assert!(
        RunDir::open(&dir)
            .unwrap_err()
            .to_string()
            .contains("the file was edited")
    );
}

#[test]
fn given_keep_matrices_store_outputs_made_elsewhere() {
    use memia_core::KeepMatrix;
    use memia_shadow::{PoolFingerprint, keep_sha256};
    let dir = tempfile::tempdir().unwrap();
    let keep = KeepMatrix::bernoulli(3, 5, 0.5, 9).unwrap();
    let pool = PoolFingerprint {
        name: "imported".into(),
        samples: 5,
        classes: 2,
        feature_shape: vec![],
        sha256: "labels-only".into(),
        labels_sha256: None,
    };
    let plan = Plan::given(pool, &keep, 1, serde_json::json!({"imported_from": "x"})).unwrap();
    assert_eq!(
        plan.scheme,
        InclusionScheme::Given {
            sha256: keep_sha256(&keep)
        }
    );
    let run = RunDir::create_given(dir.path().join("run"), &plan, &keep).unwrap();
    for k in 0..3 {
        let logits = Array3::from_shape_fn((5, 1, 2), |(i, _, c)| (k * 10 + i + c) as f32);
        run.store(k, logits.view(), &imported()).unwrap();
    }
    let reopened = RunDir::open(dir.path().join("run")).unwrap();
    assert_eq!(reopened.keep(), &keep);
    let logits = reopened.logits().unwrap();
    assert_eq!(logits.view()[[2, 4, 0, 1]], 25.0);
    // Wrong shapes, models out of range, training and a swapped keep matrix are refused.
    let err = run
        .store(0, Array3::zeros((5, 1, 3)).view(), &imported())
        .unwrap_err();
    assert!(err.to_string().contains("[5, 1, 2]"), "{err}");
    assert!(
        run.store(3, Array3::zeros((5, 1, 2)).view(), &imported())
            .is_err()
    );
    let err = run
        .train(&trainer(), &pool_of(5), 0..3, |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("stored, not trained"), "{err}");
    KeepMatrix::bernoulli(3, 5, 0.5, 10)
        .unwrap()
        .save(dir.path().join("run/keep.npy"))
        .unwrap();
    let err = RunDir::open(dir.path().join("run")).unwrap_err();
    assert!(err.to_string().contains("keep.npy"), "{err}");
    // A keep matrix the plan does not record is refused.
    let other = KeepMatrix::bernoulli(3, 5, 0.5, 11).unwrap();
    assert!(RunDir::create_given(dir.path().join("run2"), &plan, &other).is_err());
}

fn imported() -> Producer {
    Producer::new("import").with("source", "test")
}

fn pool_of(n: usize) -> InMemoryDataset {
    let digits = embedded::digits();
    InMemoryDataset::from_dataset(&digits.subset((0..n).collect()).unwrap())
}

/// A trainer that prepares the pool once per `train` call (counted), fails on request, and
/// says who it is.
struct Prepared {
    inner: SoftmaxRegression,
    sessions: std::sync::atomic::AtomicUsize,
    fail: bool,
}

struct PreparedSession<'a> {
    trainer: &'a Prepared,
    pool: &'a dyn Dataset,
}

impl memia_shadow::TrainingSession for PreparedSession<'_> {
    fn train_group(&mut self, jobs: &[ModelJob]) -> Result<Vec<Array3<f32>>, TrainerError> {
        if self.trainer.fail {
            let cause = std::io::Error::other("the GPU fell off the bus");
            return Err(Box::new(cause));
        }
        self.trainer.inner.train_group(self.pool, jobs)
    }
}

impl ShadowTrainer for Prepared {
    fn config(&self) -> serde_json::Value {
        self.inner.config()
    }
    fn queries(&self) -> usize {
        1
    }
    fn group_size(&self) -> usize {
        2
    }
    fn producer(&self) -> Producer {
        Producer::new("prepared").with("engine", "test")
    }
    fn train_group(
        &self,
        _pool: &dyn Dataset,
        _jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, TrainerError> {
        unreachable!("training goes through the session")
    }
    fn session<'a>(
        &'a self,
        pool: &'a dyn Dataset,
    ) -> Result<Option<Box<dyn memia_shadow::TrainingSession + 'a>>, TrainerError> {
        self.sessions
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Some(Box::new(PreparedSession {
            trainer: self,
            pool,
        })))
    }
}

#[test]
fn sessions_are_prepared_once_per_call_and_producers_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(5);
    let run = RunDir::create(tmp.path().join("run"), &plan).unwrap();
    // Models 0..2 by SoftmaxRegression itself, 2..6 by the prepared trainer (three groups).
    run.train(&trainer(), &pool(), 0..2, |_| {}).unwrap();
    let prepared = Prepared {
        inner: trainer(),
        sessions: Default::default(),
        fail: false,
    };
    run.train(&prepared, &pool(), 0..MODELS, |_| {}).unwrap();
    assert_eq!(
        prepared.sessions.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one session for the call's two groups"
    );
    // Nothing left to train: no session at all.
    run.train(&prepared, &pool(), 0..MODELS, |_| {}).unwrap();
    assert_eq!(
        prepared.sessions.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let producers = run.producers().unwrap();
    assert_eq!(producers.len(), 2, "{producers:?}");
    assert_eq!(producers[0].models, vec![0, 1]);
    assert_eq!(
        producers[0].producer.as_ref().unwrap().trainer,
        "memia_shadow::softmax::SoftmaxRegression"
    );
    assert_eq!(producers[1].models, vec![2, 3, 4, 5]);
    assert_eq!(
        producers[1].producer.as_ref().unwrap().to_string(),
        "prepared (engine test)"
    );
    let manifest = std::fs::read_to_string(tmp.path().join("run/manifest.json")).unwrap();
    assert!(manifest.contains("\"trainer\": \"prepared\""), "{manifest}");
    // A logits file without its record (copied in by hand) has an unknown producer.
    std::fs::remove_file(tmp.path().join("run/logits/model_00003.json")).unwrap();
    let producers = run.producers().unwrap();
    assert_eq!(producers.len(), 3);
    assert_eq!(producers[2].producer, None);
    assert_eq!(producers[2].models, vec![3]);
    // The same outputs whichever trainer wrote them: the session changes nothing.
    let expected = reference_run(&tmp.path().join("ref"), &plan);
    assert_eq!(files(&run), expected);
}

#[test]
fn a_trainer_error_is_the_source_of_the_scheduler_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::create(tmp.path().join("run"), &plan(6)).unwrap();
    let failing = Prepared {
        inner: trainer(),
        sessions: Default::default(),
        fail: true,
    };
    let err = run.train(&failing, &pool(), 1..MODELS, |_| {}).unwrap_err();
    assert_eq!(err.to_string(), "training models 1, 2 failed");
    let source = std::error::Error::source(&err).expect("the trainer's error is kept");
    assert_eq!(source.to_string(), "the GPU fell off the bus");
    assert!(run.completed().unwrap().iter().all(|&d| !d));
}

#[test]
fn a_plan_without_queries_is_refused() {
    struct NoQueries;
    impl ShadowTrainer for NoQueries {
        fn config(&self) -> serde_json::Value {
            serde_json::json!({})
        }
        fn queries(&self) -> usize {
            0
        }
        fn train_group(
            &self,
            _pool: &dyn Dataset,
            _jobs: &[ModelJob],
        ) -> Result<Vec<Array3<f32>>, TrainerError> {
            unreachable!()
        }
    }
    let err = Plan::new(
        &pool(),
        2,
        InclusionScheme::Balanced { ratio: 0.5 },
        0,
        &NoQueries,
    )
    .unwrap_err();
    assert!(err.to_string().contains("at least one query"), "{err}");
}

/// A run directory damaged on disk: truncated or wrong-typed logits are trained again, a
/// deleted `logits/` is made again, stale temporaries are removed (fresh ones are left to the
/// shard that writes them), and NaN logits are named by file and run index.
#[test]
fn damaged_run_directories_are_repaired_or_named() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = plan(8);
    let expected = reference_run(&tmp.path().join("ref"), &plan);
    let run = RunDir::create(tmp.path().join("run"), &plan).unwrap();
    run.train(&trainer(), &pool(), 0..MODELS, |_| {}).unwrap();
    // Model 1 truncated, model 2 rewritten as float64 of the same shape.
    let one = run.logits_path(1);
    let bytes = std::fs::read(&one).unwrap();
    std::fs::write(&one, &bytes[..bytes.len() - 4]).unwrap();
    let two: Array3<f32> = memia_core::npy::read_npy(run.logits_path(2)).unwrap();
    memia_core::npy::write_npy(run.logits_path(2), &two.mapv(f64::from)).unwrap();
    // A temporary file of a killed write, two hours old, and one being written now.
    let stale = tmp.path().join("run/logits/.model_00004.npy.tmp-99999");
    let fresh = tmp.path().join("run/logits/.model_00005.npy.tmp-99998");
    std::fs::write(&stale, b"partial").unwrap();
    std::fs::write(&fresh, b"partial").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    assert_eq!(
        run.completed().unwrap(),
        vec![true, false, false, true, true, true]
    );
    let report = run.train(&trainer(), &pool(), 0..MODELS, |_| {}).unwrap();
    assert_eq!(report.trained, vec![1, 2]);
    assert_eq!(files(&run), expected);
    assert!(!stale.exists() && fresh.exists());
    // logits/ deleted: training makes it again.
    std::fs::remove_dir_all(tmp.path().join("run/logits")).unwrap();
    run.train(&trainer(), &pool(), 0..2, |_| {}).unwrap();
    assert_eq!(run.completed().unwrap()[..2], [true, true]);
    // NaN logits (written by hand) are named by file and run index when the run is loaded.
    run.train(&trainer(), &pool(), 2..MODELS, |_| {}).unwrap();
    let mut three: Array3<f32> = memia_core::npy::read_npy(run.logits_path(3)).unwrap();
    three[[7, 0, 1]] = f32::NAN;
    memia_core::npy::write_npy(run.logits_path(3), &three).unwrap();
    let err = run.logits().unwrap_err().to_string();
    assert!(
        err.contains("model 3's logits")
            && err.contains("model_00003.npy")
            && err.contains("logit NaN of sample 7, query 0, class 1"),
        "{err}"
    );
}
