//! Backend parity: the same training run on another backend gives the same model as on Flex
//! (within float tolerance). Each test compiles only with its feature; without a usable adapter
//! or backend it says so and checks nothing.
#![cfg(any(feature = "ndarray", feature = "wgpu"))]

use memia_data::{Dataset, embedded};
use memia_models::{Device, Engine, Ensemble, Member, MlpConfig, TrainingConfig};

/// Two models, one epoch on the digits, returning their parameters (Burn's operations on every
/// device: the fused CPU kernels are compared with Burn in `tests/ensemble.rs`).
fn train_on(device: &Device) -> Vec<Vec<f32>> {
    let ds = embedded::digits();
    let (x, y) = (ds.to_row_major(), ds.labels());
    let members = vec![
        Member {
            seed: 1,
            train: (0..300).collect(),
        },
        Member {
            seed: 2,
            train: (300..520).collect(),
        },
    ];
    let config = TrainingConfig {
        epochs: 1,
        batch_size: 64,
        learning_rate: 0.05,
        ..Default::default()
    };
    let mut e = Ensemble::init(&MlpConfig::mlp(32).into(), &[64], 10, &[1, 2], device)
        .unwrap()
        .with_engine(Engine::Burn);
    e.train(&x, &y, &members, &config).unwrap();
    (0..2).flat_map(|m| e.parameters(m).unwrap()).collect()
}

fn assert_close(reference: &[Vec<f32>], other: &[Vec<f32>], what: &str) {
    for (a, b) in reference.iter().zip(other) {
        let max = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-3, "{what}: parameters differ from Flex by {max}");
    }
}

#[cfg(feature = "ndarray")]
#[test]
#[allow(deprecated)] // NdArray is deprecated upstream in favour of Flex; users still ask for it
fn ndarray_matches_flex() {
    assert_close(
        &train_on(&Device::flex()),
        &train_on(&Device::ndarray()),
        "ndarray",
    );
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_matches_flex_when_an_adapter_exists() {
    use burn::tensor::{DeviceKind, Tensor};
    let reference = train_on(&Device::flex());
    // Hardware first, then a software adapter (lavapipe, from mesa-vulkan-drivers), which
    // wgpu's default selection skips.
    for kind in [DeviceKind::DefaultDevice, DeviceKind::Cpu] {
        let device = Device::wgpu(kind.clone());
        let probe = std::panic::catch_unwind(|| {
            Tensor::<1>::from_floats([1.0, 2.0], &device)
                .sum()
                .into_scalar::<f32>()
        });
        match probe {
            Ok(3.0) => {
                eprintln!("wgpu adapter {kind:?} found: comparing one epoch with Flex");
                assert_close(&reference, &train_on(&device), "wgpu");
                return;
            }
            _ => eprintln!("no usable wgpu adapter for {kind:?}"),
        }
    }
    // CI installs lavapipe and sets MEMIA_REQUIRE_WGPU, so there the check cannot be skipped.
    assert!(
        std::env::var_os("MEMIA_REQUIRE_WGPU").is_none(),
        "MEMIA_REQUIRE_WGPU is set but no wgpu adapter works (install mesa-vulkan-drivers)"
    );
    eprintln!("no wgpu adapter on this machine: the parity check was not run");
}
