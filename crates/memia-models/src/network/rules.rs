//! The architectures' rules, written once: which convolutions a LeNet-style CNN and a ResNet
//! are made of, stage by stage. [`super::Network::new`] lists every layer by them; the counts
//! ([`super::count`]) add them up stage by stage.

use super::{Conv, Role};
use crate::config::{CnnConfig, ResNetConfig};

/// `inputs`, the `hidden` widths, `classes`: a chain of dense layers' sizes.
pub(super) fn dense_sizes(inputs: usize, hidden: &[usize], classes: usize) -> Vec<usize> {
    std::iter::once(inputs)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(classes))
        .collect()
}

/// What the dense layers after `convs` read: the last one's output flattened (`inputs` when
/// there is no convolution).
pub(super) fn flattened(convs: &[Conv], inputs: usize) -> usize {
    convs.last().map_or(inputs, |c| {
        let [h, w] = c.next_input();
        c.cout * h * w
    })
}

/// The LeNet rule: per entry of `channels`, a "same" convolution of `kernel` at the current
/// size, then 2 x 2 pooling (floor) for the next.
pub(super) fn cnn_convs(cnn: &CnnConfig, [c, h, w]: [usize; 3]) -> impl Iterator<Item = Conv> + '_ {
    cnn.channels.iter().scan((c, [h, w]), |(c, size), &cout| {
        let conv = Conv::new((*c, cout), cnn.kernel, 1, *size, Role::Pooled);
        (*c, *size) = (cout, conv.next_input());
        Some(conv)
    })
}

/// A residual block's convolutions.
pub(super) struct BlockConvs {
    pub(super) start: Conv,
    pub(super) shortcut: Option<Conv>,
    pub(super) end: Conv,
}

impl BlockConvs {
    /// The residual-block rule: a 3 x 3 convolution of `cin` -> `cout` channels at `stride`
    /// on `input`, a 3 x 3 one of `cout` channels at stride 1 on its output, and a 1 x 1
    /// projection of the block's input when the stride or the channels change the shape.
    fn new(cin: usize, cout: usize, stride: usize, input: [usize; 2]) -> Self {
        let start = Conv::new((cin, cout), 3, stride, input, Role::BranchStart);
        let changes = stride != 1 || cin != cout;
        BlockConvs {
            start,
            shortcut: changes.then(|| Conv::new((cin, cout), 1, stride, input, Role::Shortcut)),
            end: Conv::new((cout, cout), 3, 1, start.output(), Role::BranchEnd),
        }
    }

    /// In layer order: branch start, projection, branch end.
    pub(super) fn convs(&self) -> impl Iterator<Item = Conv> + '_ {
        std::iter::once(self.start)
            .chain(self.shortcut)
            .chain(std::iter::once(self.end))
    }
}

/// One ResNet stage: its first block, then `repeats` blocks like `rest`.
pub(super) struct Stage {
    pub(super) first: BlockConvs,
    pub(super) rest: BlockConvs,
    pub(super) repeats: usize,
}

/// A ResNet's 3 x 3 stem on `[c, h, w]` images, to the first stage's width.
pub(super) fn resnet_stem(net: &ResNetConfig, [c, h, w]: [usize; 3]) -> Conv {
    let first = net.widths.first().copied().unwrap_or(c);
    Conv::new((c, first), 3, 1, [h, w], Role::Stem)
}

/// A ResNet's stages after its `stem` (none without blocks): every stage after the first
/// starts with a block of stride 2.
pub(super) fn resnet_stages<'a>(
    net: &'a ResNetConfig,
    stem: &Conv,
) -> impl Iterator<Item = Stage> + 'a {
    let blocks = net.blocks_per_stage;
    let start = (stem.cout, stem.output());
    net.widths
        .iter()
        .enumerate()
        .take_while(move |_| blocks > 0)
        .scan(start, move |(width, size), (stage, &out)| {
            let first = BlockConvs::new(*width, out, if stage > 0 { 2 } else { 1 }, *size);
            let rest = BlockConvs::new(out, out, 1, first.end.output());
            (*width, *size) = (out, first.end.output());
            Some(Stage {
                first,
                rest,
                repeats: blocks - 1,
            })
        })
}
