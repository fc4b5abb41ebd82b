//! The synthetic long-tail generator, the embedded digits and the pool builder.

use memia_data::longtail::LongTailConfig;
use memia_data::{CanarySource, Dataset, LabelPolicy, PoolBuilder, embedded};

#[test]
fn long_tail_frequencies_match_the_specification() {
    let config = LongTailConfig {
        classes: 4,
        subpopulations_per_class: 30,
        max_frequency: 20,
        zipf_exponent: 1.0,
        dims: 5,
        seed: 3,
        ..Default::default()
    };
    let lt = config.generate().unwrap();
    // Count samples per subpopulation and compare with the formula.
    let mut counts = std::collections::BTreeMap::new();
    for (&s, &f) in lt.subpopulation.iter().zip(&lt.frequency) {
        let entry = counts.entry(s).or_insert((0usize, f));
        entry.0 += 1;
        assert_eq!(
            entry.1, f,
            "every sample of a subpopulation carries its frequency"
        );
    }
    assert_eq!(counts.len(), 4 * 30);
    for (&s, &(count, f)) in &counts {
        let rank = s % 30 + 1;
        assert_eq!(count, f);
        assert_eq!(f, ((20.0 / rank as f64).round() as usize).max(1));
        assert_eq!(
            lt.dataset
                .label(lt.subpopulation.iter().position(|&x| x == s).unwrap()) as usize,
            s / 30
        );
    }
    let singletons = counts.values().filter(|(c, _)| *c == 1).count();
    // round(20 / r) = 1 for ranks 14..=30: 17 singletons per class.
    assert_eq!(singletons, 4 * 17, "a long tail of singletons");
    assert_eq!(
        lt.dataset.len(),
        counts.values().map(|c| c.0).sum::<usize>()
    );
    // Same seed, same data; another seed, other data.
    assert_eq!(config.generate().unwrap().dataset, lt.dataset);
    assert_ne!(
        LongTailConfig {
            seed: 4,
            ..config.clone()
        }
        .generate()
        .unwrap()
        .dataset,
        lt.dataset
    );
    assert!(
        LongTailConfig {
            classes: 0,
            ..config
        }
        .generate()
        .is_err()
    );
}

#[test]
fn embedded_digits_are_the_uci_test_set() {
    let digits = embedded::digits();
    assert_eq!(
        (digits.len(), digits.feature_shape(), digits.classes()),
        (1797, &[1, 8, 8][..], 10)
    );
    // Values recorded once with scikit-learn 1.9.1: load_digits().data.sum(), np.bincount(target).
    let sum: f64 = (0..digits.len())
        .map(|i| {
            digits
                .features(i)
                .iter()
                .map(|&v| f64::from(v) * 16.0)
                .sum::<f64>()
        })
        .sum();
    assert!((sum - 561_718.0).abs() < 1e-3, "{sum}");
    let mut hist = [0usize; 10];
    digits.labels().iter().for_each(|&l| hist[l as usize] += 1);
    assert_eq!(hist, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    assert_eq!(
        &digits.features(0)[..4],
        &[0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0]
    );
}

#[test]
fn pools_are_complete_consistent_and_seeded() {
    let digits = embedded::digits();
    let lt = LongTailConfig {
        classes: 10,
        subpopulations_per_class: 2,
        dims: 64,
        ..Default::default()
    }
    .generate()
    .unwrap();
    let mut flat_ood = lt.dataset.clone();
    flat_ood.reshape(vec![1, 8, 8]).unwrap();
    let builder = PoolBuilder::new(&digits)
        .in_distribution(1500)
        .canaries(CanarySource::Mislabeled, 40, LabelPolicy::Random)
        .canaries(
            CanarySource::OutOfDistribution(&flat_ood),
            20,
            LabelPolicy::Fixed(3),
        );
    let pool = builder.build(5).unwrap();
    assert_eq!(pool.dataset.len(), 1560);
    assert_eq!(pool.provenance.len(), 1560);
    let in_dist: Vec<usize> = pool
        .provenance
        .iter()
        .filter(|p| !p.canary)
        .map(|p| p.index)
        .collect();
    let mislabeled: Vec<usize> = pool
        .provenance
        .iter()
        .filter(|p| p.canary && p.source == "digits")
        .map(|p| p.index)
        .collect();
    assert_eq!((in_dist.len(), mislabeled.len()), (1500, 40));
    assert!(
        mislabeled.iter().all(|i| !in_dist.contains(i)),
        "mislabeled canaries are not also in the pool"
    );
    for (i, p) in pool.provenance.iter().enumerate() {
        assert_eq!(
            p.original_label,
            if p.source == "digits" {
                digits.label(p.index)
            } else {
                lt.dataset.label(p.index)
            }
        );
        match (p.canary, p.source.as_str()) {
            (false, _) => assert_eq!(pool.dataset.label(i), p.original_label),
            (true, "digits") => assert_ne!(pool.dataset.label(i), p.original_label),
            (true, _) => assert_eq!(pool.dataset.label(i), 3),
        }
    }
    assert_eq!(builder.build(5).unwrap().dataset, pool.dataset);
    assert_ne!(builder.build(6).unwrap().dataset, pool.dataset);
    let too_many = PoolBuilder::new(&digits).in_distribution(1790).canaries(
        CanarySource::Mislabeled,
        10,
        LabelPolicy::Random,
    );
    assert!(
        too_many
            .build(0)
            .unwrap_err()
            .to_string()
            .contains("exceed the 1797 samples")
    );
    let keep = PoolBuilder::new(&digits)
        .canaries(CanarySource::Mislabeled, 1, LabelPolicy::Keep)
        .in_distribution(10);
    assert!(keep.build(0).is_err());
}

/// Canaries labelled among extra classes: the pool gains those classes, every canary's label
/// is one of them, the in-distribution samples keep theirs, and no extra class is refused.
#[test]
fn canaries_among_extra_classes() {
    let digits = embedded::digits();
    let others = embedded::digits();
    let pool = PoolBuilder::new(&digits)
        .in_distribution(300)
        .canaries(
            CanarySource::OutOfDistribution(&others),
            200,
            LabelPolicy::RandomExtra(90),
        )
        .build(4)
        .unwrap();
    assert_eq!(pool.dataset.classes(), 100);
    let canaries = pool.canaries();
    assert_eq!(canaries.len(), 200);
    let labels: Vec<u32> = canaries.iter().map(|&i| pool.dataset.label(i)).collect();
    assert!(labels.iter().all(|&l| (10..100).contains(&l)), "{labels:?}");
    let distinct: std::collections::BTreeSet<u32> = labels.iter().copied().collect();
    assert!(
        distinct.len() > 60,
        "{} distinct labels of 90",
        distinct.len()
    );
    assert!(
        (0..pool.dataset.len())
            .filter(|i| !canaries.contains(i))
            .all(|i| pool.dataset.label(i) < 10)
    );
    let err = PoolBuilder::new(&digits)
        .canaries(CanarySource::Mislabeled, 5, LabelPolicy::RandomExtra(0))
        .build(1)
        .unwrap_err();
    assert!(
        err.to_string().contains("at least one extra class"),
        "{err}"
    );
    // Beside a group with extra classes, too (it once passed the check and drew from 0..0).
    let err = PoolBuilder::new(&digits)
        .canaries(CanarySource::Mislabeled, 5, LabelPolicy::RandomExtra(0))
        .canaries(CanarySource::Mislabeled, 5, LabelPolicy::RandomExtra(90))
        .build(1)
        .unwrap_err();
    assert!(
        err.to_string().contains("at least one extra class"),
        "{err}"
    );
}
