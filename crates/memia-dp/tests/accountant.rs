//! memia's RDP accountant against Google's `dp-accounting` 0.6.0 (`RdpAccountant`, the same
//! orders): `tests/fixtures/rdp_reference.json`, written by `tests/fixtures/rdp_reference.py`.

use memia_dp::{dp_sgd_epsilon, noise_for_epsilon};

#[test]
fn epsilon_equals_dp_accounting_and_is_never_below_it() {
    let text = include_str!("fixtures/rdp_reference.json");
    let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
    let settings = fixture["settings"].as_array().unwrap();
    assert!(settings.len() >= 30, "{} settings", settings.len());
    let mut worst = 0f64;
    for s in settings {
        let get = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("{k} in {s}"));
        let (q, sigma, steps, delta) = (get("rate"), get("noise"), get("steps"), get("delta"));
        let reference = get("epsilon");
        let ours = dp_sgd_epsilon(q, sigma, steps as u64, delta)
            .unwrap()
            .epsilon;
        assert!(
            ours >= reference,
            "q {q} sigma {sigma} steps {steps} delta {delta}: {ours} below dp-accounting's {reference}"
        );
        let relative = (ours - reference) / reference.max(1e-300);
        assert!(
            relative <= 1e-3,
            "q {q} sigma {sigma} steps {steps} delta {delta}: {ours} vs {reference} ({relative:e} above)"
        );
        worst = worst.max(relative);
    }
    println!(
        "{} settings, largest relative excess {worst:e}",
        settings.len()
    );
}

/// The noise found for a target epsilon reaches it, and 1% less noise would not.
#[test]
fn noise_for_a_target_epsilon_is_the_least_that_reaches_it() {
    for (q, steps, delta, target) in [
        (256.0 / 60_000.0, 14_100, 1e-5, 1.0),
        (0.01, 1000, 1e-5, 4.0),
        (0.1, 50, 1e-6, 8.0),
        (1.0, 10, 1e-5, 2.0),
    ] {
        let sigma = noise_for_epsilon(q, steps, delta, target).unwrap();
        let eps = dp_sgd_epsilon(q, sigma, steps, delta).unwrap().epsilon;
        assert!(eps <= target, "{eps} above {target}");
        let less = dp_sgd_epsilon(q, sigma * 0.99, steps, delta)
            .unwrap()
            .epsilon;
        assert!(
            less > target,
            "sigma {sigma}: 1% less noise still gives {less}"
        );
    }
}
