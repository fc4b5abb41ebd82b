//! Choosing a Burn device by name (for command lines and configuration files).

use burn::tensor::Device;

use crate::error::{ModelError, Result};

/// The device names [`device_by_name`] understands in this build.
pub fn device_names() -> Vec<&'static str> {
    let mut names = vec!["cpu", "flex"];
    if cfg!(feature = "ndarray") {
        names.push("ndarray");
    }
    if cfg!(feature = "wgpu") {
        names.extend(["wgpu", "wgpu-cpu"]);
    }
    names
}

/// The device called `name`: `cpu` or `flex` (Burn's Flex CPU backend, the default), `ndarray`
/// (with the `ndarray` feature), `wgpu` (the best GPU adapter) or `wgpu-cpu` (a software
/// adapter such as lavapipe), both with the `wgpu` feature. Unknown names, and names of
/// backends this build lacks, are an error that lists the available ones.
pub fn device_by_name(name: &str) -> Result<Device> {
    let error = |reason: String| ModelError::Device {
        reason,
        available: device_names(),
    };
    #[cfg(not(all(feature = "ndarray", feature = "wgpu")))]
    let unavailable = |feature: &str| {
        Err(error(format!(
            "device '{name}' needs memia built with the '{feature}' feature"
        )))
    };
    match name {
        "cpu" | "flex" => Ok(Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        "ndarray" => Ok(Device::ndarray()),
        #[cfg(not(feature = "ndarray"))]
        "ndarray" => unavailable("ndarray"),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "wgpu")]
        "wgpu-cpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::Cpu)),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" | "wgpu-cpu" => unavailable("wgpu"),
        _ => Err(error(format!("unknown device '{name}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_or_explain() {
        assert!(device_by_name("cpu").is_ok());
        let err = device_by_name("tpu").unwrap_err().to_string();
        assert!(
            err.contains("unknown device 'tpu'") && err.contains("flex"),
            "{err}"
        );
        if !cfg!(feature = "wgpu") {
            assert!(
                device_by_name("wgpu")
                    .unwrap_err()
                    .to_string()
                    .contains("'wgpu' feature")
            );
        }
    }
}
