//! The one description of a network: what a [`ModelConfig`] builds on samples of a shape with
//! a number of classes, as plain data that names no engine. Both engines read it (Burn's to lay
//! out its stacked tensors and run its layers, the fused kernels for their dense sizes, CNN
//! stages and ResNet blocks), and so does the initialisation.
//!
//! The architectures' rules are written once, in `rules`: a LeNet stage is a "same" convolution
//! then 2 x 2 pooling (floor); a ResNet is a 3 x 3 stem, then per stage residual blocks of two
//! 3 x 3 convolutions, the first block of every stage after the first strided by 2, with a 1 x 1
//! projection shortcut wherever a block changes the shape. [`Network::new`] lists every layer
//! by them; `count` ([`ModelConfig::footprint`], [`crate::CnnConfig::forward_macs`],
//! [`crate::ResNetConfig::forward_macs`]) adds up the same layers without listing them, stage
//! by stage (not block by block), so that a plan can refuse a billion blocks first.

mod count;
mod rules;

pub use count::Footprint;

use crate::config::{Family, ModelConfig};
use crate::error::{ModelError, Result, architecture, invalid_setting};
use rules::{BlockConvs, cnn_convs, dense_sizes, flattened, resnet_stages, resnet_stem};

/// Where a convolution sits in the network, and so what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// ReLU, then 2 x 2 max pooling (a LeNet-style stage).
    Pooled,
    /// ReLU (a ResNet's stem).
    Stem,
    /// First convolution of a residual branch: its input is the block's, kept for the
    /// shortcut; then ReLU.
    BranchStart,
    /// The projection shortcut (1 x 1, strided like the branch) of a block that changes the
    /// shape: it reads the block's input.
    Shortcut,
    /// Last convolution of a residual branch: the shortcut (the projection's output, or the
    /// block's input) is added, then ReLU.
    BranchEnd,
}

/// One convolution with "same" padding (`kernel / 2`), of one model. Made only by
/// [`Network::new`]: its sizes are those of a network whose counts fit in 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv {
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    input: [usize; 2],
    role: Role,
}

impl Conv {
    /// A convolution (a stride of 0 is taken as 1): made by the rules below, and by the tests
    /// of what reads them.
    pub(crate) fn new(
        (cin, cout): (usize, usize),
        kernel: usize,
        stride: usize,
        input: [usize; 2],
        role: Role,
    ) -> Self {
        Conv {
            cin,
            cout,
            kernel,
            stride: stride.max(1),
            input,
            role,
        }
    }

    /// Input channels.
    pub fn cin(&self) -> usize {
        self.cin
    }

    /// Output channels.
    pub fn cout(&self) -> usize {
        self.cout
    }

    /// Kernel size (odd).
    pub fn kernel(&self) -> usize {
        self.kernel
    }

    /// Stride (1, or 2 where a ResNet block halves the resolution).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Input height and width.
    pub fn input(&self) -> [usize; 2] {
        self.input
    }

    /// What follows it.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Output height and width: `ceil(input / stride)`, before any pooling.
    pub fn output(&self) -> [usize; 2] {
        self.input.map(|s| s.div_ceil(self.stride))
    }

    /// What the next layer reads per channel: the output, halved (floor) by pooling.
    fn next_input(&self) -> [usize; 2] {
        let [h, w] = self.output();
        match self.role {
            Role::Pooled => [h / 2, w / 2],
            _ => [h, w],
        }
    }
}

/// One layer with parameters, of one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// `x W + b` of `inputs` -> `outputs` (ReLU after it unless it is the output layer).
    Dense {
        /// Inputs.
        inputs: usize,
        /// Outputs.
        outputs: usize,
    },
    /// A convolution.
    Conv(Conv),
}

impl Layer {
    /// Fan-in: the initial weights and biases are uniform in `+-1/sqrt(fan_in)`.
    pub fn fan_in(&self) -> usize {
        match *self {
            Layer::Dense { inputs, .. } => inputs,
            Layer::Conv(c) => c.cin * c.kernel * c.kernel,
        }
    }

    /// The shape of one model's weights, row-major: `[inputs, outputs]` for a dense layer,
    /// `[cout, cin * kernel^2]` for a convolution (`[out, in, dy, dx]`, Burn's order).
    pub fn weight_shape(&self) -> [usize; 2] {
        match *self {
            Layer::Dense { inputs, outputs } => [inputs, outputs],
            Layer::Conv(c) => [c.cout, c.cin * c.kernel * c.kernel],
        }
    }

    /// Outputs (channels of a convolution): the bias's length.
    pub fn outputs(&self) -> usize {
        match *self {
            Layer::Dense { outputs, .. } => outputs,
            Layer::Conv(c) => c.cout,
        }
    }
}

/// One residual block: the indices of its convolutions in [`Network::convs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The branch's first convolution.
    pub start: usize,
    /// The projection shortcut, when the block changes the shape (else the identity).
    pub shortcut: Option<usize>,
    /// The branch's last convolution.
    pub end: usize,
}

/// A network of one model, described once for every engine: its convolutions (input first),
/// its residual blocks, its dense layers. A network's parameters are its layers' in
/// [`Network::layers`] order (the convolutions, then the dense layers), weights then bias.
///
/// ```
/// use memia_models::{CnnConfig, Network};
///
/// let lenet = Network::new(&CnnConfig::lenet().into(), &[3, 32, 32], 10)?;
/// assert_eq!(lenet.convs().len(), 2);
/// assert_eq!(lenet.dense_sizes(), &[16 * 8 * 8, 120, 84, 10]);
/// assert_eq!(lenet.layers().count(), 5);
/// # Ok::<(), memia_models::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    family: Family,
    input_shape: Vec<usize>,
    convs: Vec<Conv>,
    blocks: Vec<Block>,
    dense: Vec<usize>,
}

impl Network {
    /// The network `config` builds on samples of `input_shape` (`[C, H, W]` for a CNN or a
    /// ResNet; an MLP flattens any shape) with `classes` outputs, checked: the architecture's
    /// own settings ([`ModelConfig::check`]), at least two classes, a sample shape with values,
    /// images large enough for the pooling stages or ResNet stages, and counts that fit in 64
    /// bits ([`ModelConfig::footprint`], before anything is listed; the list is reserved
    /// fallibly, so that a billion blocks are an error, not an abort).
    pub fn new(config: &ModelConfig, input_shape: &[usize], classes: usize) -> Result<Network> {
        if input_shape.is_empty() || input_shape.contains(&0) {
            return Err(architecture(format!(
                "sample shape {input_shape:?} has no values"
            )));
        }
        if classes < 2 {
            return Err(invalid_setting(
                "classes",
                format!("{classes} classes: a classifier needs at least 2"),
            ));
        }
        config.check()?;
        let footprint = config.footprint(input_shape, classes).ok_or_else(|| {
            architecture(format!(
                "{config:?} on samples of shape {input_shape:?}: its size overflows 64 bits"
            ))
        })?;
        let mut net = Network {
            family: config.family(),
            input_shape: input_shape.to_vec(),
            convs: Vec::new(),
            blocks: Vec::new(),
            dense: Vec::new(),
        };
        let layers = usize::try_from(footprint.layers).unwrap_or(usize::MAX);
        let refused = |_| {
            architecture(format!(
                "{} layers cannot be allocated on this machine",
                footprint.layers
            ))
        };
        net.convs.try_reserve_exact(layers).map_err(refused)?;
        let inputs = input_shape.iter().product();
        let not_an_image = |what: &str| ModelError::NotAnImage {
            what: what.into(),
            shape: input_shape.to_vec(),
        };
        net.dense = match config {
            ModelConfig::Mlp(mlp) => mlp.sizes(inputs, classes),
            ModelConfig::Cnn(cnn) => {
                let &[c, h, w] = input_shape else {
                    return Err(not_an_image("a CNN"));
                };
                net.convs.extend(cnn_convs(cnn, [c, h, w]));
                if net.convs.iter().any(|s| s.input.iter().any(|&v| v < 2)) {
                    return Err(architecture(format!(
                        "input {input_shape:?} is too small for {} pooling stages",
                        cnn.channels.len()
                    )));
                }
                dense_sizes(flattened(&net.convs, inputs), &cnn.hidden, classes)
            }
            ModelConfig::ResNet(config) => {
                let &[c, h, w] = input_shape else {
                    return Err(not_an_image("a ResNet"));
                };
                // (A checked shift: 64 stages or more leave no pixel, not a wrapped shift.)
                let halvings = u32::try_from(config.widths.len() - 1).unwrap_or(u32::MAX);
                if h.checked_shr(halvings).unwrap_or(0) == 0
                    || w.checked_shr(halvings).unwrap_or(0) == 0
                {
                    return Err(architecture(format!(
                        "input {input_shape:?} is too small for {} stages",
                        config.widths.len()
                    )));
                }
                let stem = resnet_stem(config, [c, h, w]);
                net.convs.push(stem);
                let mut width = stem.cout;
                for stage in resnet_stages(config, &stem) {
                    net.push_block(&stage.first);
                    for _ in 0..stage.repeats {
                        net.push_block(&stage.rest);
                    }
                    width = stage.first.end.cout;
                }
                vec![width, classes]
            }
        };
        Ok(net)
    }

    /// Appends a residual block's convolutions, in layer order, and the block.
    fn push_block(&mut self, block: &BlockConvs) {
        let start = self.convs.len();
        self.convs.extend(block.convs());
        self.blocks.push(Block {
            start,
            shortcut: block.shortcut.map(|_| start + 1),
            end: self.convs.len() - 1,
        });
    }

    /// The architecture it was built from.
    pub fn family(&self) -> Family {
        self.family
    }

    /// One sample's shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Values per sample.
    pub fn inputs(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Outputs of the last layer.
    pub fn classes(&self) -> usize {
        self.dense[self.dense.len() - 1]
    }

    /// The convolutions, input first (none for an MLP).
    pub fn convs(&self) -> &[Conv] {
        &self.convs
    }

    /// A ResNet's residual blocks (none for other networks): the stem is `convs()[0]`, and
    /// the blocks cover every other convolution, in order.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The dense layers' sizes, from their input (the flattened samples, the last pooling
    /// stage flattened channel-major, or a ResNet's globally pooled channels) to the classes.
    pub fn dense_sizes(&self) -> &[usize] {
        &self.dense
    }

    /// Every layer with parameters, in parameter order: the convolutions, then the dense
    /// layers.
    pub fn layers(&self) -> impl Iterator<Item = Layer> + '_ {
        let dense = self.dense.windows(2).map(|w| Layer::Dense {
            inputs: w[0],
            outputs: w[1],
        });
        self.convs.iter().map(|&c| Layer::Conv(c)).chain(dense)
    }
}
