//! One model's parameters on the host, and their initialisation. The fused kernels train them
//! in place, and the ensemble keeps them there between calls: Burn tensors are made of them
//! only when Burn's engine runs (`crate::burn_engine::Stacked::from_host`), so that the fused
//! path copies nothing to or from Burn on a train or a predict.

use memia_core::rng::stream_rng;
use rand::RngExt;

use crate::error::{Result, architecture};
use crate::network::Network;

/// One model's parameters, layer by layer in [`Network::layers`] order: weights (row-major,
/// [`crate::network::Layer::weight_shape`]) and bias.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostParams {
    pub layers: Vec<(Vec<f32>, Vec<f32>)>,
}

impl HostParams {
    /// The initial parameters of the model of `seed`: each layer's weights, then its biases,
    /// uniform in `+-1/sqrt(fan_in)` (as PyTorch's `nn.Linear` and `nn.Conv2d`), drawn from the
    /// model's own stream for that layer, so that they depend on neither the group nor the
    /// engine nor the device. Reserved fallibly: a model too large for this machine is an
    /// error, not an abort (the scheduler refuses it earlier, against the memory available).
    pub(crate) fn init(network: &Network, seed: u64) -> Result<Self> {
        let reserve = |values: Option<usize>, what: &str, l: usize| {
            let mut v: Vec<f32> = Vec::new();
            match values {
                Some(count) if v.try_reserve_exact(count).is_ok() => Ok(v),
                _ => Err(architecture(format!(
                    "the {what} of layer {l} cannot be allocated on this machine"
                ))),
            }
        };
        let layers = network
            .layers()
            .enumerate()
            .map(|(l, layer)| {
                let bound = 1.0 / (layer.fan_in() as f64).sqrt();
                let [rows, cols] = layer.weight_shape();
                let outs = layer.outputs();
                let (mut weights, mut biases) = (
                    reserve(rows.checked_mul(cols), "weights", l)?,
                    reserve(Some(outs), "biases", l)?,
                );
                let mut rng = stream_rng(seed, l as u64);
                let mut draw = || ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32;
                weights.extend((0..rows * cols).map(|_| draw()));
                biases.extend((0..outs).map(|_| draw()));
                Ok((weights, biases))
            })
            .collect::<Result<_>>()?;
        Ok(HostParams { layers })
    }
}
