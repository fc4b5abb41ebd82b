//! What a configuration costs, counted by the rules ([`super::rules`]) without building the
//! network: [`ModelConfig::footprint`] (checked, for the memory check of a plan) and the
//! multiply-adds of one forward pass (for throughput figures).

use super::rules::{BlockConvs, cnn_convs, dense_sizes, flattened, resnet_stages, resnet_stem};
use super::{Conv, Role};
use crate::config::{CnnConfig, MlpConfig, ModelConfig, ResNetConfig};

impl Conv {
    /// One model's weights, `cout x cin x kernel^2`; `None` when that overflows 64 bits.
    fn weights(&self) -> Option<u64> {
        (self.cout as u64)
            .checked_mul(self.cin as u64)?
            .checked_mul((self.kernel as u64).checked_mul(self.kernel as u64)?)
    }

    /// Values one sample's pass produces (before and after pooling); `None` on overflow.
    fn activations(&self) -> Option<u64> {
        let plane = |[h, w]: [usize; 2]| (h as u64).checked_mul(w as u64);
        let mut planes = plane(self.output())?;
        if self.role == Role::Pooled {
            planes = planes.checked_add(plane(self.next_input())?)?;
        }
        (self.cout as u64).checked_mul(planes)
    }

    /// Multiply-adds of one sample's pass.
    fn macs(&self) -> usize {
        let [h, w] = self.output();
        h * w * self.cout * self.cin * self.kernel * self.kernel
    }
}

/// The sizes of one model that decide its memory, counted without building anything (see
/// [`ModelConfig::footprint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Trainable values (weights and biases).
    pub parameters: u64,
    /// Values one sample's forward pass produces, over every layer (convolutions before and
    /// after pooling), the outputs included.
    pub activations: u64,
    /// Layers with parameters.
    pub layers: u64,
}

impl Footprint {
    /// Adds `count` layers of `weights` + `bias` parameters and `outputs` values each.
    fn add(&mut self, count: u64, weights: u64, bias: u64, outputs: u64) -> Option<()> {
        let each = weights.checked_add(bias)?;
        self.parameters = self.parameters.checked_add(count.checked_mul(each)?)?;
        self.activations = self.activations.checked_add(count.checked_mul(outputs)?)?;
        self.layers = self.layers.checked_add(count)?;
        Some(())
    }

    /// Adds `count` copies of `conv`.
    fn conv(&mut self, count: u64, conv: &Conv) -> Option<()> {
        let cout = conv.cout as u64;
        self.add(count, conv.weights()?, cout, conv.activations()?)
    }

    /// Adds `count` copies of a residual block.
    fn block(&mut self, count: u64, block: &BlockConvs) -> Option<()> {
        block.convs().try_for_each(|c| self.conv(count, &c))
    }

    /// Adds the dense layers of `sizes`.
    fn dense(&mut self, sizes: &[usize]) -> Option<()> {
        for w in sizes.windows(2) {
            let (inputs, outputs) = (w[0] as u64, w[1] as u64);
            self.add(1, inputs.checked_mul(outputs)?, outputs, outputs)?;
        }
        Some(())
    }
}

impl ModelConfig {
    /// The parameters, activations and layers of one model on samples of `input_shape` with
    /// `classes` outputs, with checked arithmetic: `None` when a count overflows 64 bits. It
    /// allocates nothing of the model's size and loops once per stage (not per block), so
    /// that a plan can refuse `hidden = [1000000000]` or a billion blocks before building them.
    /// The shape is not checked here (an image that is too small counts its empty layers as
    /// zero).
    pub fn footprint(&self, input_shape: &[usize], classes: usize) -> Option<Footprint> {
        let mut f = Footprint::default();
        let inputs = input_shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))?;
        let image = match *input_shape {
            [c, h, w] => Some([c, h, w]),
            _ => None,
        };
        match self {
            ModelConfig::Mlp(mlp) => f.dense(&dense_sizes(
                usize::try_from(inputs).ok()?,
                &mlp.hidden,
                classes,
            ))?,
            ModelConfig::Cnn(cnn) => {
                let mut flat = inputs;
                for conv in image.into_iter().flat_map(|img| cnn_convs(cnn, img)) {
                    f.conv(1, &conv)?;
                    let [h, w] = conv.next_input();
                    flat = (conv.cout as u64)
                        .checked_mul(h as u64)?
                        .checked_mul(w as u64)?;
                }
                f.dense(&dense_sizes(
                    usize::try_from(flat).ok()?,
                    &cnn.hidden,
                    classes,
                ))?;
            }
            ModelConfig::ResNet(net) => {
                let Some(image) = image else {
                    return Some(f); // not an image: refused when the network is built
                };
                let stem = resnet_stem(net, image);
                f.conv(1, &stem)?;
                let mut width = stem.cout;
                for stage in resnet_stages(net, &stem) {
                    f.block(1, &stage.first)?;
                    f.block(stage.repeats as u64, &stage.rest)?;
                    width = stage.first.end.cout;
                }
                f.dense(&[width, classes])?;
            }
        }
        Some(f)
    }
}

impl MlpConfig {
    /// Layer sizes from input to output.
    pub fn sizes(&self, inputs: usize, classes: usize) -> Vec<usize> {
        dense_sizes(inputs, &self.hidden, classes)
    }

    /// Multiply-adds of one forward pass of one sample.
    pub fn forward_macs(&self, inputs: usize, classes: usize) -> usize {
        dense_macs(&self.sizes(inputs, classes))
    }
}

/// Multiply-adds of dense layers of `sizes`.
fn dense_macs(sizes: &[usize]) -> usize {
    sizes.windows(2).map(|w| w[0] * w[1]).sum()
}

impl CnnConfig {
    /// Multiply-adds of one sample's forward pass on `[c, h, w]` images with `classes`
    /// outputs: each "same" convolution `h w cout cin k^2` (pooling halves h and w after it),
    /// then the dense layers. The throughput figures count FLOPs as 2 per multiply-add.
    pub fn forward_macs(&self, image: [usize; 3], classes: usize) -> usize {
        let convs: Vec<Conv> = cnn_convs(self, image).collect();
        let inputs = image.iter().product();
        let dense = dense_sizes(flattened(&convs, inputs), &self.hidden, classes);
        convs.iter().map(Conv::macs).sum::<usize>() + dense_macs(&dense)
    }
}

impl ResNetConfig {
    /// Multiply-adds of one sample's forward pass on `[c, h, w]` images with `classes`
    /// outputs: the stem, each block's two 3 x 3 convolutions and projection (a strided
    /// convolution of "same" padding has `ceil(h / 2) x ceil(w / 2)` outputs), the output layer.
    pub fn forward_macs(&self, image: [usize; 3], classes: usize) -> usize {
        let stem = resnet_stem(self, image);
        let mut width = stem.cout;
        let mut macs = stem.macs();
        for stage in resnet_stages(self, &stem) {
            let block = |b: &BlockConvs| b.convs().map(|c| c.macs()).sum::<usize>();
            macs += block(&stage.first) + stage.repeats * block(&stage.rest);
            width = stage.first.end.cout;
        }
        macs + width * classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Network;

    /// The residual-block rule as the layers show it: a stem, an identity block, then a
    /// strided block with its projection on odd sizes (halved to their ceiling).
    #[test]
    fn a_resnet_is_a_stem_and_blocks() {
        let config: ModelConfig = ResNetConfig {
            widths: vec![4, 8],
            blocks_per_stage: 2,
        }
        .into();
        let net = Network::new(&config, &[3, 9, 7], 10).unwrap();
        let roles: Vec<Role> = net.convs().iter().map(Conv::role).collect();
        use Role::{BranchEnd as E, BranchStart as S, Shortcut as P, Stem};
        assert_eq!(roles, [Stem, S, E, S, E, S, P, E, S, E]);
        let starts: Vec<usize> = net.blocks().iter().map(|b| b.start).collect();
        assert_eq!(starts, [1, 3, 5, 8]);
        assert_eq!(net.blocks()[2].shortcut, Some(6));
        let strided = net.convs()[5];
        assert_eq!((strided.stride(), strided.output()), (2, [5, 4]));
        assert_eq!(net.dense_sizes(), &[8, 10]);
        let f = config.footprint(&[3, 9, 7], 10).unwrap();
        assert_eq!(f.layers, net.layers().count() as u64);
        let values: usize = net
            .layers()
            .map(|l| l.weight_shape()[0] * l.weight_shape()[1] + l.outputs())
            .sum();
        assert_eq!(f.parameters, values as u64);
    }

    /// The multiply-adds counted stage by stage equal those of every layer built.
    #[test]
    fn forward_macs_count_the_layers_built() {
        let layer_macs = |net: &Network| -> usize {
            net.convs().iter().map(Conv::macs).sum::<usize>() + dense_macs(net.dense_sizes())
        };
        let resnet = ResNetConfig {
            widths: vec![4, 6, 8],
            blocks_per_stage: 3,
        };
        let net = Network::new(&resnet.clone().into(), &[3, 11, 13], 10).unwrap();
        assert_eq!(resnet.forward_macs([3, 11, 13], 10), layer_macs(&net));
        let cnn = CnnConfig::lenet();
        let net = Network::new(&cnn.clone().into(), &[3, 32, 32], 10).unwrap();
        assert_eq!(cnn.forward_macs([3, 32, 32], 10), layer_macs(&net));
        // The small ResNet on CIFAR: 3x3 stem of 16 channels, blocks of 16, 32 and 64.
        let stem = 32 * 32 * 16 * 3 * 9;
        let blocks = 32 * 32 * 16 * 16 * 18
            + 16 * 16 * 32 * (16 * 9 + 32 * 9 + 16)
            + 8 * 8 * 64 * (32 * 9 + 64 * 9 + 32);
        let small = ResNetConfig::small().forward_macs([3, 32, 32], 10);
        assert_eq!(small, stem + blocks + 64 * 10);
    }
}
