//! The batched ensemble: equal to training the models one by one, deterministic, and it learns.

use memia_data::{Dataset, embedded};
use memia_models::{
    BurnTrainer, CnnConfig, Device, Engine, Ensemble, Member, MlpConfig, ModelConfig, Optimizer,
    ResNetConfig, Schedule, TrainingConfig,
};
use memia_shadow::{InclusionScheme, Plan, RunDir};

fn digits() -> (Vec<f32>, Vec<u32>, usize) {
    let ds = embedded::digits();
    (ds.to_row_major(), ds.labels(), ds.feature_len())
}

fn members() -> Vec<Member> {
    // Subsets of different sizes, so that the models finish their epochs at different steps.
    [(11u64, 300usize), (12, 257), (13, 420), (14, 129)]
        .iter()
        .map(|&(seed, n)| Member {
            seed,
            train: (0..n).map(|i| (i * 7 + seed as usize) % 1797).collect(),
        })
        .collect()
}

fn train(members: &[Member], config: &TrainingConfig, model: &ModelConfig) -> Ensemble {
    train_with(members, config, model, Engine::Auto)
}

fn train_with(
    members: &[Member],
    config: &TrainingConfig,
    model: &ModelConfig,
    engine: Engine,
) -> Ensemble {
    let (x, y, _) = digits();
    let seeds: Vec<u64> = members.iter().map(|m| m.seed).collect();
    let mut ensemble = Ensemble::init(model, &[1, 8, 8], 10, &seeds, &Device::flex())
        .unwrap()
        .with_engine(engine);
    ensemble.train(&x, &y, members, config).unwrap();
    ensemble
}

/// Largest absolute difference between two equally long slices.
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

fn configs() -> Vec<TrainingConfig> {
    let base = TrainingConfig {
        epochs: 3,
        batch_size: 64,
        learning_rate: 0.05,
        ..Default::default()
    };
    vec![
        base,
        TrainingConfig {
            schedule: Schedule::Cosine,
            weight_decay: 0.01,
            ..base
        },
        TrainingConfig {
            optimizer: Optimizer::Adam {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
            },
            learning_rate: 1e-3,
            ..base
        },
    ]
}

#[test]
fn ensemble_equals_one_by_one_training() {
    let cnn: ModelConfig = CnnConfig {
        channels: vec![4, 8],
        kernel: 3,
        hidden: vec![16],
    }
    .into();
    for (model, config) in configs()
        .into_iter()
        .map(|c| (ModelConfig::from(MlpConfig::mlp(32)), c))
        .chain(std::iter::once((cnn, configs()[0])))
        .chain(std::iter::once((resnet(), configs()[1])))
    {
        assert_group_equals_one_by_one(&config, &model);
    }
}

/// Trains `members()` as one group and each alone, and compares every parameter, with both
/// engines. The fused kernels run each model's arithmetic alone, so there the group is
/// bit-identical to one-by-one training; Burn's batched operations agree within float tolerance.
fn assert_group_equals_one_by_one(config: &TrainingConfig, model: &ModelConfig) {
    let all = members();
    for engine in [Engine::Auto, Engine::Burn] {
        let together = train_with(&all, config, model, engine);
        for (m, member) in all.iter().enumerate() {
            let alone = train_with(std::slice::from_ref(member), config, model, engine);
            for (a, b) in together
                .parameters(m)
                .unwrap()
                .iter()
                .zip(alone.parameters(0).unwrap())
            {
                if together.uses_fused_kernels() {
                    assert!(
                        a == &b,
                        "{config:?} model {m}: fused group differs from alone"
                    );
                } else {
                    let max = max_difference(a, &b);
                    assert!(
                        max < 1e-4,
                        "{engine:?} {config:?} model {m}: parameters differ by {max}"
                    );
                }
            }
        }
    }
}

/// A model trained alone splits its minibatch's images across the cores (one image's
/// gradients at a time per thread, added in image order): whatever the number of threads
/// (1, 2, 3, 5 here), its parameters and logits are bit-identical to the same model trained in a
/// group of 4, where each model has one thread. Augmented, so that the samples' random shifts
/// and flips must also come in the same order.
#[test]
fn a_model_alone_on_every_core_equals_the_model_in_a_group() {
    let (x, _, _) = digits();
    let all = members();
    let in_pool = |threads: usize, members: &[Member], model: &ModelConfig| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| train_with(members, &augmented(), model, Engine::Auto))
    };
    let cnn: ModelConfig = CnnConfig {
        channels: vec![4, 8],
        kernel: 3,
        hidden: vec![16],
    }
    .into();
    for model in [resnet(), cnn] {
        let group = in_pool(2, &all, &model);
        assert!(group.uses_fused_kernels());
        let group_logits = group.predict(&x).unwrap();
        for threads in [1, 2, 3, 5] {
            let alone = in_pool(threads, &all[1..2], &model);
            for (a, b) in group
                .parameters(1)
                .unwrap()
                .iter()
                .zip(alone.parameters(0).unwrap())
            {
                assert!(
                    a == &b,
                    "{model:?}: alone on {threads} threads differs from the group"
                );
            }
            let logits = pool_logits(threads, &alone, &x);
            let per_model = group_logits.len() / all.len();
            assert!(
                logits == group_logits[per_model..2 * per_model],
                "{model:?}: logits on {threads} threads differ"
            );
        }
    }
}

/// One model's logits computed inside a pool of `threads` threads.
fn pool_logits(threads: usize, ensemble: &Ensemble, x: &[f32]) -> Vec<f32> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| ensemble.predict(x).unwrap())
}

/// `configs()[1]` (cosine schedule, weight decay) with random shifts of 1 pixel and flips.
fn augmented() -> TrainingConfig {
    TrainingConfig {
        augmentation: memia_models::Augmentation {
            max_shift: 1,
            flip: true,
        },
        ..configs()[1]
    }
}

/// memia's fused CPU kernels and Burn's operations train the same models: same initialisation,
/// minibatches, augmentation, schedule and optimiser, equal parameters and logits within float
/// tolerance (the two sum in different orders).
#[test]
fn fused_kernels_match_burn() {
    let (x, _, _) = digits();
    let augmented = augmented();
    let models: Vec<ModelConfig> = vec![
        MlpConfig::mlp(32).into(),
        MlpConfig::logistic_regression().into(),
        MlpConfig {
            hidden: vec![24, 16],
        }
        .into(),
    ];
    let mut cases: Vec<(ModelConfig, TrainingConfig)> = configs()
        .into_iter()
        .map(|c| (models[0].clone(), c))
        .collect();
    cases.push((models[1].clone(), configs()[0]));
    cases.push((models[2].clone(), configs()[2]));
    cases.push((models[2].clone(), augmented));
    // LeNet-style CNNs: SGD, Adam, augmented with a cosine schedule and weight decay.
    let cnn: ModelConfig = CnnConfig {
        channels: vec![4, 8],
        kernel: 3,
        hidden: vec![16],
    }
    .into();
    cases.push((cnn.clone(), configs()[0]));
    cases.push((cnn.clone(), configs()[2]));
    cases.push((cnn, augmented));
    let mut differs = false;
    for (model, config) in cases {
        let fused = train_with(&members(), &config, &model, Engine::Auto);
        let burn = train_with(&members(), &config, &model, Engine::Burn);
        differs |= assert_engines_agree(&fused, &burn, &x, &format!("{model:?} {config:?}"));
    }
    // Not the same code: the engines round differently.
    assert!(differs, "the fused kernels gave Burn's exact bits");
    // LeNet-style CNNs and ResNets are fused too.
    let cnn = Ensemble::init(
        &CnnConfig::lenet().into(),
        &[1, 28, 28],
        10,
        &[1],
        &Device::flex(),
    );
    assert!(cnn.unwrap().uses_fused_kernels());
    let net = Ensemble::init(&resnet(), &[1, 8, 8], 10, &[1], &Device::flex());
    assert!(net.unwrap().uses_fused_kernels());
}

/// The fused ResNet against Burn's engine: digits (8 x 8, one block per stage: the strided
/// block and its projection) with SGD, Adam and augmentation; odd-sized colour images with two
/// blocks per stage (identity blocks after the strided ones, odd sizes halved to their
/// ceiling).
#[test]
fn fused_resnet_matches_burn() {
    let (x, _, _) = digits();
    let augmented = augmented();
    let mut differs = false;
    for config in [configs()[0], configs()[2], augmented] {
        let fused = train_with(&members(), &config, &resnet(), Engine::Auto);
        let burn = train_with(&members(), &config, &resnet(), Engine::Burn);
        differs |= assert_engines_agree(&fused, &burn, &x, &format!("resnet {config:?}"));
    }
    assert!(differs, "the fused ResNet gave Burn's exact bits");
    let model: ModelConfig = ResNetConfig {
        widths: vec![5, 7, 9],
        blocks_per_stage: 2,
    }
    .into();
    assert_engines_agree_on_odd_images(&model, 90, [50, 41], 3, "odd resnet");
}

/// The fused CNN against Burn's engine on colour images of odd sizes (pooling drops the last
/// row and column) with kernel 5: "same" padding, the floor of pooling and the channel-major
/// flattening as Burn's.
#[test]
fn fused_cnn_matches_burn_on_odd_colour_images() {
    let model: ModelConfig = CnnConfig {
        channels: vec![5, 7],
        kernel: 5,
        hidden: vec![12, 9],
    }
    .into();
    assert_engines_agree_on_odd_images(&model, 120, [70, 55], 4, "odd colour images");
}

/// Trains `model` with both engines on `n` synthetic 3 x 11 x 13 images of 3 classes (two
/// models on subsets of `sizes`, SGD with weight decay, batch 16) and compares them.
fn assert_engines_agree_on_odd_images(
    model: &ModelConfig,
    n: usize,
    sizes: [usize; 2],
    epochs: usize,
    what: &str,
) {
    let shape = [3usize, 11, 13];
    let d: usize = shape.iter().product();
    let x: Vec<f32> = (0..n * d)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) + (i / d % 3) as f32 * 0.3)
        .collect();
    let y: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let members: Vec<Member> = [3u64, 4]
        .iter()
        .zip(sizes)
        .map(|(&seed, size)| Member {
            seed,
            train: (0..size).map(|i| (i * 5 + seed as usize) % n).collect(),
        })
        .collect();
    let config = TrainingConfig {
        epochs,
        batch_size: 16,
        learning_rate: 0.05,
        weight_decay: 0.001,
        ..Default::default()
    };
    let seeds: Vec<u64> = members.iter().map(|m| m.seed).collect();
    let run = |engine: Engine| {
        let mut e = Ensemble::init(model, &shape, 3, &seeds, &Device::flex())
            .unwrap()
            .with_engine(engine);
        e.train(&x, &y, &members, &config).unwrap();
        e
    };
    assert_engines_agree(&run(Engine::Auto), &run(Engine::Burn), &x, what);
}

/// The fused kernels and Burn's engine trained the same models: every parameter within 1e-4,
/// the logits on `x` within 1e-3. Returns whether any parameter differs at all.
fn assert_engines_agree(fused: &Ensemble, burn: &Ensemble, x: &[f32], what: &str) -> bool {
    assert!(fused.uses_fused_kernels() && !burn.uses_fused_kernels());
    let mut differs = false;
    for m in 0..fused.models() {
        for (a, b) in fused
            .parameters(m)
            .unwrap()
            .iter()
            .zip(burn.parameters(m).unwrap())
        {
            let max = max_difference(a, &b);
            assert!(max < 1e-4, "{what} model {m}: parameters differ by {max}");
            differs |= a != &b;
        }
    }
    let max = max_difference(&fused.predict(x).unwrap(), &burn.predict(x).unwrap());
    assert!(max < 1e-3, "{what}: logits differ by {max}");
    eprintln!("{what}: logits within {max}");
    differs
}

#[test]
fn training_is_deterministic_and_learns() {
    let config = TrainingConfig {
        epochs: 20,
        batch_size: 64,
        learning_rate: 0.1,
        ..Default::default()
    };
    let model = MlpConfig::mlp(64).into();
    let (x, y, _) = digits();
    let a = train(&members(), &config, &model).predict(&x).unwrap();
    let b = train(&members(), &config, &model).predict(&x).unwrap();
    assert_eq!(a, b, "bit-identical logits");
    // Model 2 trained on 420 digits: it fits them and generalises to the rest.
    let logits = &a[2 * 1797 * 10..3 * 1797 * 10];
    let correct = |i: usize| {
        let row = &logits[i * 10..(i + 1) * 10];
        let best = (0..10).fold(0, |b, c| if row[c] > row[b] { c } else { b });
        best as u32 == y[i]
    };
    let train_set: Vec<usize> = members()[2].train.clone();
    let train_acc =
        train_set.iter().filter(|&&i| correct(i)).count() as f64 / train_set.len() as f64;
    let test: Vec<usize> = (0..1797).filter(|i| !train_set.contains(i)).collect();
    let test_acc = test.iter().filter(|&&i| correct(i)).count() as f64 / test.len() as f64;
    assert!(
        train_acc > 0.98 && test_acc > 0.85,
        "train {train_acc}, test {test_acc}"
    );
}

/// Accuracy of one model's logits (`[N, 10]`, row-major) on the digits outside its training set.
fn held_out_accuracy(logits: &[f32], member: &Member, y: &[u32]) -> f64 {
    let test: Vec<usize> = (0..1797).filter(|i| !member.train.contains(i)).collect();
    accuracy_on(logits, &test, y)
}

/// Accuracy of one model's logits (`[N, 10]`, row-major) on the digits `rows`.
fn accuracy_on(logits: &[f32], rows: &[usize], y: &[u32]) -> f64 {
    let correct = rows
        .iter()
        .filter(|&&i| {
            let row = &logits[i * 10..(i + 1) * 10];
            (0..10).fold(0, |b, c| if row[c] > row[b] { c } else { b }) as u32 == y[i]
        })
        .count();
    correct as f64 / rows.len() as f64
}

fn resnet() -> ModelConfig {
    ResNetConfig {
        widths: vec![4, 8],
        blocks_per_stage: 1,
    }
    .into()
}

#[test]
fn a_small_resnet_learns_digits() {
    let config = TrainingConfig {
        epochs: 60,
        batch_size: 64,
        learning_rate: 2e-3,
        optimizer: Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        },
        ..Default::default()
    };
    let (x, y, _) = digits();
    let member = members()[2].clone();
    let logits = train(
        std::slice::from_ref(&member),
        &config,
        &ResNetConfig {
            widths: vec![8, 16],
            blocks_per_stage: 1,
        }
        .into(),
    )
    .predict(&x)
    .unwrap();
    let acc = held_out_accuracy(&logits, &member, &y);
    assert!(acc > 0.8, "held-out accuracy {acc}");
    assert!(
        Ensemble::init(
            &ResNetConfig {
                widths: vec![],
                blocks_per_stage: 1
            }
            .into(),
            &[1, 8, 8],
            10,
            &[1],
            &Device::flex()
        )
        .is_err()
    );
}

#[test]
fn a_small_cnn_learns_digits() {
    let config = TrainingConfig {
        epochs: 30,
        batch_size: 64,
        learning_rate: 0.05,
        ..Default::default()
    };
    let model: ModelConfig = CnnConfig {
        channels: vec![8, 16],
        kernel: 3,
        hidden: vec![32],
    }
    .into();
    let (x, y, _) = digits();
    let member = members()[2].clone();
    let logits = train(std::slice::from_ref(&member), &config, &model)
        .predict(&x)
        .unwrap();
    let acc = held_out_accuracy(&logits, &member, &y);
    assert!(acc > 0.8, "held-out accuracy {acc}");
    let bad = Ensemble::init(&model, &[64], 10, &[1], &Device::flex());
    assert!(error(bad).contains("a CNN needs [C, H, W] samples"));
}

/// The error message of a call that must fail.
fn error<T: std::fmt::Debug>(result: Result<T, memia_models::ModelError>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn bad_settings_are_errors() {
    let (x, y, d) = digits();
    let mut e = Ensemble::init(
        &MlpConfig::logistic_regression().into(),
        &[d],
        10,
        &[1],
        &Device::flex(),
    )
    .unwrap();
    let cases: Vec<(TrainingConfig, &str)> = vec![
        (
            TrainingConfig {
                batch_size: 0,
                ..Default::default()
            },
            "invalid batch_size: must be at least 1",
        ),
        (
            TrainingConfig {
                epochs: 0,
                ..Default::default()
            },
            "invalid epochs: must be at least 1",
        ),
        (
            TrainingConfig {
                learning_rate: f64::NAN,
                ..Default::default()
            },
            "invalid learning_rate: NaN must be positive",
        ),
        (
            TrainingConfig {
                learning_rate: -0.1,
                ..Default::default()
            },
            "invalid learning_rate: -0.1",
        ),
        (
            TrainingConfig {
                weight_decay: -1.0,
                ..Default::default()
            },
            "invalid weight_decay",
        ),
        (
            TrainingConfig {
                optimizer: Optimizer::Sgd { momentum: f64::NAN },
                ..Default::default()
            },
            "invalid momentum: NaN is not in [0, 1)",
        ),
        (
            TrainingConfig {
                optimizer: Optimizer::Adam {
                    beta1: 0.9,
                    beta2: 1.0,
                    epsilon: 1e-8,
                },
                ..Default::default()
            },
            "invalid beta2",
        ),
        (
            TrainingConfig {
                optimizer: Optimizer::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                    epsilon: 0.0,
                },
                ..Default::default()
            },
            "invalid epsilon",
        ),
    ];
    for (config, expected) in cases {
        let err = error(e.train(&x, &y, &members()[..1], &config));
        assert!(err.contains(expected), "{err} (expected {expected})");
    }
    let err = error(e.train(&x, &y, &members(), &TrainingConfig::default()));
    assert!(err.contains("4 members for 1 models"), "{err}");
    let empty = Member {
        seed: 1,
        train: vec![],
    };
    let err = error(e.train(&x, &y, &[empty], &TrainingConfig::default()));
    assert!(err.contains("empty training set"), "{err}");
    let config = TrainingConfig::default();
    let beyond = Member {
        seed: 1,
        train: vec![3, 1797],
    };
    let err = error(e.train(&x, &y, &[beyond], &config));
    assert!(err.contains("row 1797 of 1797 samples"), "{err}");
    let mut eleven = y.clone();
    eleven[7] = 10;
    let err = error(e.train(&x, &eleven, &members()[..1], &config));
    assert!(err.contains("label 10 of sample 7"), "{err}");
    let err = error(e.train(&x[1..], &y, &members()[..1], &config));
    assert!(
        err.contains("115007 feature values for 1797 labels"),
        "{err}"
    );
    for engine in [Engine::Auto, Engine::Burn] {
        let e = e.clone().with_engine(engine);
        let err = error(e.predict(&x[1..]));
        assert!(err.contains("not rows of 64 features"), "{err}");
        assert_eq!(e.predict(&x[..128]).unwrap().len(), 20);
    }
    let err = error(e.parameters(1));
    assert!(
        err.contains("1 is not one of the ensemble's 1 models"),
        "{err}"
    );
}

#[test]
fn bad_architectures_and_empty_ensembles_are_errors() {
    let init = |model: ModelConfig, shape: &[usize], classes: usize, seeds: &[u64]| {
        error(Ensemble::init(
            &model,
            shape,
            classes,
            seeds,
            &Device::flex(),
        ))
    };
    // No models: an error, not a panic when training.
    let err = init(MlpConfig::mlp(8).into(), &[64], 10, &[]);
    assert!(err.contains("at least one model"), "{err}");
    let err = init(MlpConfig::mlp(0).into(), &[64], 10, &[1]);
    assert!(err.contains("include a width of 0"), "{err}");
    let err = init(MlpConfig::mlp(8).into(), &[64], 1, &[1]);
    assert!(err.contains("at least 2"), "{err}");
    let err = init(MlpConfig::mlp(8).into(), &[], 10, &[1]);
    assert!(err.contains("has no values"), "{err}");
    let cnn = |channels: Vec<usize>, kernel: usize| -> ModelConfig {
        CnnConfig {
            channels,
            kernel,
            hidden: vec![8],
        }
        .into()
    };
    let err = init(cnn(vec![4, 0], 3), &[1, 8, 8], 10, &[1]);
    assert!(err.contains("channels [4, 0]"), "{err}");
    let err = init(cnn(vec![4], 4), &[1, 8, 8], 10, &[1]);
    assert!(err.contains("must be odd"), "{err}");
    let err = init(cnn(vec![4, 4, 4, 4], 3), &[1, 8, 8], 10, &[1]);
    assert!(err.contains("too small for 4 pooling stages"), "{err}");
    let resnet = |widths: Vec<usize>, blocks_per_stage: usize| -> ModelConfig {
        ResNetConfig {
            widths,
            blocks_per_stage,
        }
        .into()
    };
    let err = init(resnet(vec![], 1), &[1, 8, 8], 10, &[1]);
    assert!(err.contains("at least one stage"), "{err}");
    let err = init(resnet(vec![4], 0), &[1, 8, 8], 10, &[1]);
    assert!(err.contains("at least one block"), "{err}");
    let err = init(resnet(vec![4], 1), &[64], 10, &[1]);
    assert!(err.contains("a ResNet needs [C, H, W] samples"), "{err}");
}

#[test]
fn trains_a_plan_through_the_scheduler() {
    let pool = embedded::digits();
    let trainer = BurnTrainer::new(
        MlpConfig::logistic_regression(),
        TrainingConfig {
            epochs: 5,
            batch_size: 64,
            ..Default::default()
        },
        4,
    )
    .on(Device::flex());
    let plan = Plan::new(
        &pool,
        6,
        InclusionScheme::Balanced { ratio: 0.5 },
        3,
        &trainer,
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("memia-models-plan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = RunDir::create(&dir, &plan).unwrap();
    let report = run.train(&trainer, &pool, 0..6, |_| {}).unwrap();
    assert_eq!(report.trained, (0..6).collect::<Vec<_>>());
    let logits = run.logits().unwrap();
    assert_eq!(
        (logits.models(), logits.samples(), logits.classes()),
        (6, 1797, 10)
    );
    // Grouping does not change the outputs: a group size of 1 gives the same logits.
    let single = BurnTrainer {
        group_size: 1,
        ..trainer.clone()
    };
    let dir1 = dir.with_extension("single");
    let _ = std::fs::remove_dir_all(&dir1);
    let run1 = RunDir::create(&dir1, &plan).unwrap();
    run1.train(&single, &pool, 0..6, |_| {}).unwrap();
    let a = logits.into_array();
    let b = run1.logits().unwrap().into_array();
    let max = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-3, "grouped vs single logits differ by {max}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&dir1).unwrap();
}

#[test]
fn augmented_training_is_per_model_and_queries_form_the_a_axis() {
    use memia_models::{Augmentation, Query, apply_query};
    let config = TrainingConfig {
        epochs: 2,
        batch_size: 64,
        learning_rate: 0.05,
        augmentation: Augmentation {
            max_shift: 1,
            flip: true,
        },
        ..Default::default()
    };
    let model: ModelConfig = MlpConfig::mlp(16).into();
    assert_group_equals_one_by_one(&config, &model);
    let all = members();
    // Augmentation needs images.
    let (x, y, d) = digits();
    let mut flat = Ensemble::init(&model, &[d], 10, &[1], &Device::flex()).unwrap();
    let err = error(flat.train(&x, &y, &all[..1], &config));
    assert!(err.contains("augmentation needs [C, H, W]"), "{err}");

    // Queries: the A axis holds the logits of each transformed input.
    let pool = embedded::digits();
    let trainer = BurnTrainer::new(
        model,
        TrainingConfig {
            epochs: 1,
            ..Default::default()
        },
        2,
    )
    .on(Device::flex())
    .with_queries(vec![
        Query::Plain,
        Query::Mirror,
        Query::Shift { dx: 1, dy: -1 },
    ]);
    use memia_shadow::ShadowTrainer;
    assert_eq!(trainer.queries(), 3);
    let jobs: Vec<memia_shadow::ModelJob> = all[..2]
        .iter()
        .enumerate()
        .map(|(k, m)| memia_shadow::ModelJob {
            index: k,
            seed: m.seed,
            train: m.train.clone(),
        })
        .collect();
    let outputs = trainer.train_group(&pool, &jobs).unwrap();
    assert_eq!(outputs[1].shape(), &[1797, 3, 10]);
    let seeds: Vec<u64> = jobs.iter().map(|j| j.seed).collect();
    let mut e = Ensemble::init(&trainer.model, &[1, 8, 8], 10, &seeds, &Device::flex()).unwrap();
    e.train(&x, &y, &all[..2], &trainer.training).unwrap();
    let mirrored = e
        .predict(&apply_query(&x, &[1, 8, 8], Query::Mirror).unwrap())
        .unwrap();
    for c in 0..10 {
        assert_eq!(outputs[1][[5, 1, c]], mirrored[(1797 + 5) * 10 + c]);
    }
}

/// The determinism contract of Burn's engine (CNNs, ResNets, `Engine::Burn`): the same models in
/// the same groups give the same bits, run after run.
#[test]
fn burn_engine_is_bit_identical_for_the_same_groups() {
    let config = TrainingConfig {
        epochs: 1,
        batch_size: 64,
        learning_rate: 0.05,
        ..Default::default()
    };
    let model: ModelConfig = CnnConfig {
        channels: vec![4],
        kernel: 3,
        hidden: vec![16],
    }
    .into();
    let (x, _, _) = digits();
    let a = train(&members()[..2], &config, &model).predict(&x).unwrap();
    let b = train(&members()[..2], &config, &model).predict(&x).unwrap();
    assert!(a == b, "Burn's engine is not reproducible for one grouping");
}

#[test]
fn a_trainer_without_queries_fails_before_training() {
    use memia_shadow::ShadowTrainer;
    let pool = embedded::digits();
    let trainer =
        BurnTrainer::new(MlpConfig::mlp(8), TrainingConfig::default(), 1).with_queries(vec![]);
    let job = memia_shadow::ModelJob {
        index: 0,
        seed: 1,
        train: (0..100).collect(),
    };
    let started = std::time::Instant::now();
    let err = trainer.train_group(&pool, &[job]).unwrap_err().to_string();
    assert!(
        err.contains("invalid queries: at least one query is needed"),
        "{err}"
    );
    assert!(trainer.check().is_err());
    // Refused when checked, not after ten epochs of training.
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn the_producer_names_the_engine_device_and_kernels() {
    use memia_shadow::ShadowTrainer;
    let fused =
        BurnTrainer::new(MlpConfig::mlp(8), TrainingConfig::default(), 1).on(Device::flex());
    let burn = fused.clone().with_engine(Engine::Burn);
    let (pf, pb) = (fused.producer(), burn.producer());
    assert_eq!(pf.trainer, "memia-models BurnTrainer");
    assert_eq!(pf.details["engine"], "fused");
    assert_eq!(pb.details["engine"], "burn");
    assert_eq!(pf.details["cpu_kernels"], memia_models::cpu_kernels());
    assert_eq!(pf.details["memia"], env!("CARGO_PKG_VERSION"));
    assert!(!pf.details["device"].is_empty());
    assert_ne!(pf, pb);
    // The trainer says what the ensemble runs: CNNs and ResNets are fused.
    for (model, fused) in [
        (ModelConfig::from(CnnConfig::lenet()), true),
        (resnet(), true),
    ] {
        let trainer =
            BurnTrainer::new(model.clone(), TrainingConfig::default(), 1).on(Device::flex());
        let ensemble = Ensemble::init(&model, &[3, 32, 32], 10, &[1], &Device::flex()).unwrap();
        assert_eq!(trainer.uses_fused_kernels(), fused, "{model:?}");
        assert_eq!(ensemble.uses_fused_kernels(), fused, "{model:?}");
        assert_eq!(
            trainer.producer().details["engine"],
            if fused { "fused" } else { "burn" }
        );
    }
}

/// DP-SGD on the fused kernels, for the MLP and the CNN (with augmentation, Poisson batches
/// that may exceed the batch size, noise from each model's own stream): a model trained alone
/// on 1, 2 or 3 threads equals the same model trained in a group, bit for bit; the training
/// learns (the noise is small here); ResNets and Burn's engine refuse DP-SGD, naming it.
#[test]
fn dp_sgd_is_reproducible_and_refused_where_not_built() {
    let (x, y, _) = digits();
    let all = members();
    let dp = TrainingConfig {
        epochs: 10,
        batch_size: 32,
        learning_rate: 0.1,
        dp: Some(memia_models::DpConfig::with_noise(1.0, 0.3, 1e-5)),
        augmentation: memia_models::Augmentation {
            max_shift: 1,
            flip: false,
        },
        ..configs()[0]
    };
    let in_pool = |threads: usize, members: &[Member], model: &ModelConfig| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| train_with(members, &dp, model, Engine::Auto))
    };
    let cnn: ModelConfig = CnnConfig {
        channels: vec![4],
        kernel: 3,
        hidden: vec![16],
    }
    .into();
    for model in [ModelConfig::Mlp(MlpConfig::mlp(32)), cnn] {
        let group = in_pool(2, &all, &model);
        for threads in [1, 2, 3] {
            let alone = in_pool(threads, &all[1..2], &model);
            let same = group
                .parameters(1)
                .unwrap()
                .iter()
                .zip(alone.parameters(0).unwrap())
                .all(|(a, b)| a == &b);
            assert!(
                same,
                "{model:?}: DP-SGD alone on {threads} threads differs from the group"
            );
        }
        // Accuracy of model 0 on its own training rows: DP-SGD with little noise learns (chance
        // is 0.1; 10 epochs of noisy, clipped, shifted steps reach 0.53 - 0.9 here).
        let logits = group.predict(&x).unwrap();
        let per_model = logits.len() / all.len();
        let accuracy = accuracy_on(&logits[..per_model], &all[0].train, &y);
        assert!(accuracy > 0.4, "{model:?}: DP-SGD accuracy {accuracy}");
    }
    // Adam steps on the same clipped, noised gradient (post-processing): it learns too.
    let adam = TrainingConfig {
        optimizer: Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        },
        learning_rate: 1e-2,
        ..dp
    };
    let mlp = ModelConfig::Mlp(MlpConfig::mlp(32));
    let trained = train_with(&all[..1], &adam, &mlp, Engine::Auto);
    let accuracy = accuracy_on(&trained.predict(&x).unwrap(), &all[0].train, &y);
    assert!(accuracy > 0.4, "DP-SGD with Adam: accuracy {accuracy}");
    for (model, engine) in [
        (resnet(), Engine::Auto),
        (ModelConfig::Mlp(MlpConfig::mlp(8)), Engine::Burn),
    ] {
        let seeds = [1u64];
        let mut ensemble = Ensemble::init(&model, &[1, 8, 8], 10, &seeds, &Device::flex())
            .unwrap()
            .with_engine(engine);
        let err = ensemble
            .train(&x, &y, &all[..1], &dp)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DP-SGD runs on memia's fused kernels"),
            "{err}"
        );
    }
}

#[test]
fn checkpoints_record_the_models_along_their_training() {
    // Constant rate, SGD: the first 2 epochs of a 4-epoch training are a 2-epoch training, so
    // the first checkpoint must equal the logits of models trained for 2 epochs, and the last
    // the final models' own logits, bit for bit.
    let (x, _, _) = digits();
    let model: ModelConfig = MlpConfig::mlp(16).into();
    let config = TrainingConfig {
        epochs: 4,
        batch_size: 64,
        learning_rate: 0.05,
        checkpoint_every: Some(2),
        ..Default::default()
    };
    assert_eq!(config.checkpoints(), vec![2, 4]);
    // The last epoch is always a checkpoint: the trajectory ends at the final model.
    let three = TrainingConfig {
        checkpoint_every: Some(3),
        ..config
    };
    assert_eq!(three.checkpoints(), vec![3, 4]);
    let all = members();
    let full = train(&all, &config, &model);
    let (t, trajectory) = full.trajectory().expect("checkpoints were asked for");
    assert_eq!(t, 2);
    let short = train(
        &all,
        &TrainingConfig {
            epochs: 2,
            checkpoint_every: None,
            ..config
        },
        &model,
    );
    assert!(short.trajectory().is_none());
    let (n, c) = (1797, 10);
    let (last, early) = (full.predict(&x).unwrap(), short.predict(&x).unwrap());
    for m in 0..all.len() {
        let at = |cp: usize| &trajectory[(m * t + cp) * n * c..(m * t + cp + 1) * n * c];
        assert_eq!(
            at(0),
            &early[m * n * c..(m + 1) * n * c],
            "model {m}, epoch 2"
        );
        assert_eq!(
            at(1),
            &last[m * n * c..(m + 1) * n * c],
            "model {m}, epoch 4"
        );
    }
    // A checkpoint period outside the epochs, and Burn's engine, are refused by name.
    let bad = TrainingConfig {
        checkpoint_every: Some(5),
        ..config
    };
    assert!(
        bad.check()
            .unwrap_err()
            .to_string()
            .contains("checkpoint_every")
    );
    let seeds: Vec<u64> = all.iter().map(|m| m.seed).collect();
    let mut burn = Ensemble::init(&model, &[1, 8, 8], 10, &seeds, &Device::flex())
        .unwrap()
        .with_engine(Engine::Burn);
    let (x, y, _) = digits();
    let err = burn.train(&x, &y, &all, &config).unwrap_err();
    assert!(err.to_string().contains("checkpoint_every"), "{err}");
}

#[test]
fn a_run_stores_and_reads_the_trajectories() {
    let pool = embedded::digits();
    let trainer = BurnTrainer::new(
        MlpConfig::logistic_regression(),
        TrainingConfig {
            epochs: 3,
            batch_size: 64,
            checkpoint_every: Some(1),
            ..Default::default()
        },
        2,
    )
    .on(Device::flex());
    let plan = Plan::new(
        &pool,
        3,
        InclusionScheme::Balanced { ratio: 0.5 },
        5,
        &trainer,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::create(dir.path().join("run"), &plan).unwrap();
    run.train(&trainer, &pool, 0..3, |_| {}).unwrap();
    let trajectories = run.trajectories(&[0, 1, 2]).unwrap();
    assert_eq!(
        trajectories.view().shape(),
        &[3, 1797, 3, 10],
        "models x samples x checkpoints x classes"
    );
    // The last checkpoint is the stored model's own logits.
    let logits = run.logits().unwrap();
    for k in 0..3 {
        let last = trajectories
            .view()
            .slice_move(ndarray::s![k, .., 2, ..])
            .to_owned();
        let stored = logits
            .view()
            .slice_move(ndarray::s![k, .., 0, ..])
            .to_owned();
        assert_eq!(last, stored, "model {k}");
    }
    // A model outside the plan is an error, not a panic.
    let err = run.trajectories(&[0, 3]).unwrap_err().to_string();
    assert!(err.contains("model 3"), "{err}");
    // A missing file is named.
    std::fs::remove_file(run.trajectory_path(1)).unwrap();
    let err = run.trajectories(&[0, 1]).unwrap_err().to_string();
    assert!(
        err.contains("model 1") && err.contains("checkpoint_every"),
        "{err}"
    );
    // A file with another number of checkpoints than the others is refused.
    let two = trajectories
        .view()
        .slice_move(ndarray::s![0, .., 0..2, ..])
        .to_owned();
    memia_core::npy::write_npy(run.trajectory_path(1), &two).unwrap();
    let err = run.trajectories(&[0, 1]).unwrap_err().to_string();
    assert!(
        err.contains("trajectory") && err.contains("model 1"),
        "{err}"
    );
}
