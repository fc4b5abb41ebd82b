//! memia's fused CPU kernels for the small ResNets (a 3 x 3 stem, residual blocks of two 3 x 3
//! convolutions with a 1 x 1 strided projection where a block halves the resolution, global
//! average pooling, the output layer; no normalisation layers), in the design of the CNN ones
//! ([`crate::fused_cnn`]): one model's step on one core, buffers allocated once, the models of a
//! group in parallel, every convolution through [`crate::direct_conv`]. A model alone (or a
//! group smaller than the pool) splits its minibatch's images across the cores instead, with
//! the same bits (see [`train_one`]).
//!
//! **One image at a time, forward and backward.** The network has no batch statistics and its
//! output layer is small, so each image's forward pass, loss gradient and backward pass run
//! back to back while its activations (about 400 KB for 32 x 32 images) are still in the core's
//! cache; the gradients of the minibatch's images are summed, then the optimiser steps, exactly
//! as for the whole minibatch at once. Activations are stored as the padded images their
//! consumers read (phased rows before a strided convolution), so no copy happens between
//! layers; a ReLU's gradient mask is its stored output being positive.
//!
//! The formulas are Burn's engine's (`crate::burn_engine`: same initial weights, minibatch
//! orders, augmentation streams, schedule and optimiser); the tests compare the two engines, and
//! a model trained in a group against the same model trained alone, bit for bit.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::augment::Augmentation;
use crate::config::{Member, TrainingConfig};
use crate::direct_conv::{self, Planar, Rows};
use crate::error::{Result, architecture};
use crate::fused::{
    add, cross_entropy_grad_weighted, on_each, predict_each, threads, train_each, train_loop,
    weight_buffers,
};
use crate::network::{Block, Conv, Role};
use crate::params::HostParams;

/// A ResNet as the fused kernels run it: its convolutions in the network's layer order (the
/// stem, then per block the branch's first convolution, the projection if any, the branch's
/// last), each with its geometry, its blocks, then one output layer of `classes` on the pooled
/// channels. A model's parameters are a [`HostParams`] whose layers are the convolutions'
/// (weights `[cout, cin, k, k]`, bias `cout`) and the output layer's (`width x classes`,
/// `classes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResNetShape {
    convs: Vec<Planar>,
    blocks: Vec<Block>,
    /// The last block's (or the stem's) output as the global average pooling reads it: a
    /// stride-1 layout of its size.
    pooled: Planar,
    classes: usize,
}

impl ResNetShape {
    /// The network of `convs` and `blocks` (from [`crate::network::Network`]) on `[c, h, w]`
    /// images, then one output layer of `classes`, checked where the kernels' unchecked
    /// indexing relies on it: a stem reading the image, blocks that cover the other
    /// convolutions in order and chain (each convolution reading its input's size and
    /// channels, a projection matching its branch, an identity block keeping the shape), and
    /// every convolution's geometry ([`Planar::new`]).
    pub(crate) fn checked(
        convs: &[Conv],
        blocks: &[Block],
        image: [usize; 3],
        classes: usize,
    ) -> Result<Self> {
        let layout = |what: &str| architecture(format!("not a fused ResNet: {what}"));
        // Every stored image is padded for the widest kernel, so that a block's 3 x 3 and
        // 1 x 1 convolutions read the same one.
        let pad = convs
            .iter()
            .map(|c| c.kernel() / 2)
            .max()
            .ok_or_else(|| layout("no convolution"))?;
        // Convolution `i`, which must be a `role` reading inputs of `size`.
        let geometry = |i: usize, role: Role, size: (usize, usize)| -> Result<Planar> {
            let c = convs
                .get(i)
                .filter(|c| c.role() == role)
                .ok_or_else(|| layout(&format!("convolution {i} is not a {role:?}")))?;
            if c.input() != [size.0, size.1] {
                return Err(layout(&format!(
                    "convolution {i} reads {:?} pixels, its input has {size:?}",
                    c.input()
                )));
            }
            Planar::new(c.cin(), c.cout(), c.kernel(), c.input(), c.stride(), pad).map_err(|e| {
                architecture(format!("ResNet convolution {i}: convolution geometry: {e}"))
            })
        };
        let [c, h, w] = image;
        if convs[0].role() != Role::Stem || convs[0].cin() != c {
            return Err(layout(
                "the first convolution is not a stem reading the image's channels",
            ));
        }
        let stem = geometry(0, Role::Stem, (h, w))?;
        let mut size = (stem.ho(), stem.wo());
        let mut channels = stem.cout();
        let mut checked = vec![stem];
        for block in blocks {
            let input = size;
            if block.start != checked.len() {
                return Err(layout("the blocks do not follow each other"));
            }
            let start = geometry(block.start, Role::BranchStart, input)?;
            if start.cin() != channels {
                return Err(layout(
                    "a block's input channels are not the previous output's",
                ));
            }
            checked.push(start);
            if let Some(p) = block.shortcut {
                if p != checked.len() {
                    return Err(layout("a projection does not follow its branch's start"));
                }
                checked.push(geometry(p, Role::Shortcut, input)?);
            }
            if block.end != checked.len() {
                return Err(layout("a block's branch has no end"));
            }
            let branch = (start.ho(), start.wo());
            let end = geometry(block.end, Role::BranchEnd, branch)?;
            if end.stride() != 1 || end.cin() != start.cout() {
                return Err(layout(
                    "a branch's last convolution is strided or does not read its first",
                ));
            }
            if block.shortcut.is_none() && (start.stride() != 1 || start.cin() != end.cout()) {
                return Err(layout("a block without a projection changes the shape"));
            }
            if block.shortcut.is_some_and(|p| {
                let p = &checked[p];
                (p.cin(), p.cout(), p.ho(), p.wo()) != (start.cin(), end.cout(), end.ho(), end.wo())
            }) {
                return Err(layout("a block's projection does not match its branch"));
            }
            checked.push(end);
            (size, channels) = (branch, end.cout());
        }
        if checked.len() != convs.len() {
            return Err(layout("convolutions follow the last block"));
        }
        let last = checked[blocks.last().map_or(0, |b| b.end)];
        let pooled = Planar::new(
            last.cout(),
            last.cout(),
            last.k(),
            [last.ho(), last.wo()],
            1,
            last.pad(),
        )
        .map_err(|e| architecture(format!("ResNet pooled output: convolution geometry: {e}")))?;
        Ok(ResNetShape {
            convs: checked,
            blocks: blocks.to_vec(),
            pooled,
            classes,
        })
    }

    fn image(&self) -> &Planar {
        &self.convs[0]
    }

    fn inputs(&self) -> usize {
        let g = self.image();
        g.cin() * g.h() * g.w()
    }

    /// The last block's (or the stem's) output channels: the output layer's inputs.
    fn width(&self) -> usize {
        self.pooled.cin()
    }

    /// The geometry in which the input of block `j` is stored (its first convolution's), or
    /// for `j` = the number of blocks, the pooled output's (a stride-1 layout of its size).
    fn block_input(&self, j: usize) -> &Planar {
        match self.blocks.get(j) {
            Some(b) => &self.convs[b.start],
            None => &self.pooled,
        }
    }
}

/// Trains every model on its member's rows of `features` (n x C H W, row-major).
pub(crate) fn train(
    models: &mut [HostParams],
    shape: &ResNetShape,
    features: &[f32],
    labels: &[u32],
    members: &[Member],
    config: &TrainingConfig,
    augment: Option<([usize; 3], &Augmentation)>,
) -> Vec<Vec<HostParams>> {
    train_each(models, members, |model, member, par| {
        train_one(model, shape, features, labels, member, config, augment, par)
    })
}

/// Logits of every model on every row of `features`: `[G, n, C]`, row-major.
pub(crate) fn predict(models: &[HostParams], shape: &ResNetShape, features: &[f32]) -> Vec<f32> {
    let (d, classes) = (shape.inputs(), shape.classes);
    let n = features.len() / d;
    predict_each(models, n, classes, |model, out, par| {
        // A model alone: its images split across the threads (each image's logits are its own).
        let share = n.div_ceil(threads(par)).max(1);
        out.par_chunks_mut(share * classes)
            .zip(features.par_chunks(share * d))
            .for_each(|(out, features)| {
                let mut net = Buffers::new(shape);
                for (src, dst) in features.chunks_exact(d).zip(out.chunks_exact_mut(classes)) {
                    net.forward(model, shape, src);
                    dst.copy_from_slice(&net.logits);
                }
            });
    })
}

/// One model's buffers for one image.
struct Buffers {
    /// Block j's input as its first convolution reads it (`inputs[0]`: the stem's output;
    /// the last: the network's pooled output, stride 1), each a padded image.
    inputs: Vec<Vec<f32>>,
    /// The image, padded for the stem.
    image: Vec<f32>,
    /// Each convolution's output before bias and activation, `[cout, ho, wv]`.
    conv: Vec<Vec<f32>>,
    /// Each block's branch activation (the ReLU of its first convolution), as its last
    /// convolution reads it.
    branch: Vec<Vec<f32>>,
    /// One row of values being written.
    row: Vec<f32>,
    /// The pooled channels and the logits.
    pooled: Vec<f32>,
    logits: Vec<f32>,
}

impl Buffers {
    fn new(shape: &ResNetShape) -> Self {
        let widest = shape
            .convs
            .iter()
            .map(|g| g.w().max(g.wv()))
            .max()
            .unwrap_or(0);
        Buffers {
            inputs: (0..=shape.blocks.len())
                .map(|j| vec![0f32; shape.block_input(j).image_len()])
                .collect(),
            image: vec![0f32; shape.image().image_len()],
            conv: shape
                .convs
                .iter()
                .map(|g| vec![0f32; g.out_len()])
                .collect(),
            branch: shape
                .blocks
                .iter()
                .map(|b| vec![0f32; shape.convs[b.end].image_len()])
                .collect(),
            row: vec![0f32; widest],
            pooled: vec![0f32; shape.width()],
            logits: vec![0f32; shape.classes],
        }
    }

    /// The forward pass of one sample (channel-major `[c, h, w]`): every activation kept, the
    /// logits in `logits`.
    fn forward(&mut self, model: &HostParams, shape: &ResNetShape, sample: &[f32]) {
        let convs = &shape.convs;
        shape.image().put(sample, &mut self.image);
        let params = &model.layers;
        direct_conv::forward(&convs[0], &self.image, &params[0].0, &mut self.conv[0]);
        let next = shape.block_input(0).rows();
        relu_into(
            &convs[0],
            &self.conv[0],
            &params[0].1,
            None,
            &next,
            &mut self.inputs[0],
            &mut self.row,
        );
        for (j, b) in shape.blocks.iter().enumerate() {
            let (before, after) = self.inputs.split_at_mut(j + 1);
            let x = &before[j];
            let (start, end) = (&convs[b.start], &convs[b.end]);
            direct_conv::forward(start, x, &params[b.start].0, &mut self.conv[b.start]);
            relu_into(
                start,
                &self.conv[b.start],
                &params[b.start].1,
                None,
                &end.rows(),
                &mut self.branch[j],
                &mut self.row,
            );
            direct_conv::forward(
                end,
                &self.branch[j],
                &params[b.end].0,
                &mut self.conv[b.end],
            );
            // The skip: the projection's output plus its bias, or the block's input itself.
            let skip = match b.shortcut {
                Some(p) => {
                    direct_conv::forward(&convs[p], x, &params[p].0, &mut self.conv[p]);
                    Skip::Projection(&convs[p], &self.conv[p], &params[p].1)
                }
                None => Skip::Identity(start.rows(), x),
            };
            let next = shape.block_input(j + 1).rows();
            relu_into(
                end,
                &self.conv[b.end],
                &params[b.end].1,
                Some(skip),
                &next,
                &mut after[0],
                &mut self.row,
            );
        }
        // Global average pooling, then the output layer.
        let last = shape.block_input(shape.blocks.len());
        let image = &self.inputs[shape.blocks.len()];
        let area = (last.h() * last.w()) as f32;
        let rows = last.rows();
        for (c, p) in self.pooled.iter_mut().enumerate() {
            let mut sum = 0f32;
            for y in 0..last.h() {
                let at = rows.interior(c, y);
                sum += image[at..at + last.w()].iter().sum::<f32>();
            }
            *p = sum / area;
        }
        let (weight, bias) = &params[convs.len()];
        self.logits.copy_from_slice(bias);
        for (&p, w) in self.pooled.iter().zip(weight.chunks_exact(shape.classes)) {
            for (z, &w) in self.logits.iter_mut().zip(w) {
                *z += p * w;
            }
        }
    }
}

/// What a block's last convolution adds before its ReLU.
enum Skip<'a> {
    /// The projection's output (`[cout, ho, wv]` of its geometry) and bias.
    Projection(&'a Planar, &'a [f32], &'a [f32]),
    /// The block's input, stored for the block's first convolution (rows as these).
    Identity(Rows, &'a [f32]),
}

/// Writes `relu(conv + bias (+ skip))` of a convolution `g`'s output into the padded image
/// `dst` that `next` reads, row by row through `row`.
fn relu_into(
    g: &Planar,
    conv: &[f32],
    bias: &[f32],
    skip: Option<Skip>,
    next: &Rows,
    dst: &mut [f32],
    row: &mut [f32],
) {
    let (ho, wo, wv) = (g.ho(), g.wo(), g.wv());
    let row = &mut row[..wo];
    for (c, &b) in bias.iter().enumerate() {
        for y in 0..ho {
            let z = &conv[(c * ho + y) * wv..][..wo];
            row.iter_mut().zip(z).for_each(|(r, &z)| *r = z + b);
            match &skip {
                Some(Skip::Projection(p, out, pb)) => {
                    let s = &out[(c * ho + y) * p.wv()..][..wo];
                    row.iter_mut().zip(s).for_each(|(r, &s)| *r += s + pb[c]);
                }
                Some(Skip::Identity(layout, x)) => {
                    let at = layout.interior(c, y);
                    add(row, &x[at..at + wo]);
                }
                None => {}
            }
            row.iter_mut().for_each(|r| *r = r.max(0.0));
            next.put(c, y, row, dst);
        }
    }
}

/// `dz[c, y, x] = upstream(c, y, x)` where the ReLU output stored in `act` (as `layout` reads
/// it) is positive, else 0, for `g`'s output (`[cout, ho, wv]`, zero past `wo`); each channel's
/// sum goes to `sums` (the image's bias gradient, for every bias that `dz` reaches).
#[allow(clippy::too_many_arguments)] // one masked gradient: geometry, mask, source, targets
fn relu_grad(
    g: &Planar,
    act: &[f32],
    layout: &Rows,
    upstream: &[f32],
    upstream_wv: usize,
    dz: &mut [f32],
    sums: &mut [f32],
    row: &mut [f32],
) {
    let (ho, wo, wv) = (g.ho(), g.wo(), g.wv());
    for (c, gb) in sums.iter_mut().enumerate().take(g.cout()) {
        *gb = 0.0;
        for y in 0..ho {
            layout.get(c, y, act, row);
            let up = &upstream[(c * ho + y) * upstream_wv..][..wo];
            let out = &mut dz[(c * ho + y) * wv..][..wv];
            for ((d, &u), &a) in out.iter_mut().zip(up).zip(&row[..wo]) {
                *d = if a > 0.0 { u } else { 0.0 };
            }
            out[wo..].fill(0.0);
            *gb += out[..wo].iter().sum::<f32>();
        }
    }
}

/// The gradients of one model's step beside its buffers: each convolution's output gradient,
/// the input gradient of each block (and of the stem's output) and the transposed
/// convolutions' scratch images.
struct Gradients {
    dz: Vec<Vec<f32>>,
    d_input: Vec<Vec<f32>>,
    /// An input gradient made and used within one block: the branch's, then the projection's.
    spare: Vec<f32>,
    /// One image's bias gradient of the convolution being taken back (see [`relu_grad`]).
    sums: Vec<f32>,
    scratch: Vec<Vec<f32>>,
    pooled: Vec<f32>,
    logits: Vec<f32>,
}

impl Gradients {
    fn new(shape: &ResNetShape) -> Self {
        let back = |g: &Planar| g.transposed();
        Gradients {
            dz: shape
                .convs
                .iter()
                .map(|g| vec![0f32; g.out_len()])
                .collect(),
            d_input: (0..=shape.blocks.len())
                .map(|j| {
                    let g = shape.block_input(j);
                    vec![0f32; g.cin() * g.h() * g.input_wv()]
                })
                .collect(),
            sums: vec![0f32; shape.convs.iter().map(|g| g.cout()).max().unwrap_or(0)],
            spare: vec![
                0f32;
                shape
                    .convs
                    .iter()
                    .map(|g| back(g).out_len())
                    .max()
                    .unwrap_or(0)
            ],
            scratch: shape
                .convs
                .iter()
                .map(|g| vec![0f32; back(g).image_len()])
                .collect(),
            pooled: vec![0f32; shape.width()],
            logits: vec![0f32; shape.classes],
        }
    }
}

/// One image's share of a model's step: its activations, its gradients, and its own
/// parameter gradients (added to the minibatch's in image order).
struct Worker {
    net: Buffers,
    grads: Gradients,
    sample: Vec<f32>,
    /// The pool row of the image, and the image's parameter gradients.
    row: usize,
    own: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Worker {
    fn new(shape: &ResNetShape, model: &HostParams) -> Self {
        Worker {
            net: Buffers::new(shape),
            grads: Gradients::new(shape),
            sample: vec![0f32; shape.inputs()],
            row: 0,
            own: model
                .layers
                .iter()
                .map(|(w, b)| (vec![0f32; w.len()], vec![0f32; b.len()]))
                .collect(),
        }
    }
}

/// One model's training. **Images split across threads, the same bits.** Each image's
/// gradients are computed on their own (into a zeroed buffer, the image's only addition to
/// each value), then added to the minibatch's in image order, so the sum is the one a single
/// thread forms whatever the number of threads: a model trained alone on every core is
/// bit-identical to the same model trained in a group on one (tested).
#[allow(clippy::too_many_arguments)] // one model's share of `train`
fn train_one(
    model: &mut HostParams,
    shape: &ResNetShape,
    features: &[f32],
    labels: &[u32],
    member: &Member,
    config: &TrainingConfig,
    augment: Option<([usize; 3], &Augmentation)>,
    par: Parallelism,
) -> Vec<HostParams> {
    let (d, classes) = (shape.inputs(), shape.classes);
    let convs = &shape.convs;
    let mut workers: Vec<Worker> = (0..threads(par))
        .map(|_| Worker::new(shape, model))
        .collect();
    let mut flipped = weight_buffers(&model.layers[..convs.len()]);
    train_loop(model, member, config, |model, param_grads, rows, writer| {
        for (gw, gb) in param_grads.iter_mut() {
            gw.fill(0.0);
            gb.fill(0.0);
        }
        for (g, ((w, _), f)) in convs.iter().zip(model.layers.iter().zip(&mut flipped)) {
            direct_conv::flip_weights(g, w, f);
        }
        // Each image's gradients added to the minibatch's, the loss the minibatch's mean.
        let weight = 1.0 / rows.len() as f32;
        for round in rows.chunks(workers.len()) {
            // The samples in order (the augmentation draws from one stream), then the images
            // of the round at once.
            let busy = &mut workers[..round.len()];
            for (w, &i) in busy.iter_mut().zip(round) {
                writer.write_sample(&features[i * d..(i + 1) * d], &mut w.sample, augment);
                w.row = i;
            }
            let image = |w: &mut Worker| {
                for (gw, gb) in w.own.iter_mut() {
                    gw.fill(0.0);
                    gb.fill(0.0);
                }
                w.net.forward(model, shape, &w.sample);
                let logits = &mut w.grads.logits;
                cross_entropy_grad_weighted(
                    &w.net.logits,
                    logits,
                    &[w.row],
                    labels,
                    classes,
                    weight,
                );
                backward(model, shape, &flipped, &mut w.net, &mut w.grads, &mut w.own);
            };
            on_each(busy, image);
            for w in busy.iter() {
                for ((gw, gb), (ow, ob)) in param_grads.iter_mut().zip(&w.own) {
                    add(gw, ow);
                    add(gb, ob);
                }
            }
        }
    })
}

/// One image's backward pass (after its forward pass, the logits' gradient in
/// `grads.logits`): every parameter's gradient added to `param_grads`.
fn backward(
    model: &HostParams,
    shape: &ResNetShape,
    flipped: &[Vec<f32>],
    net: &mut Buffers,
    grads: &mut Gradients,
    param_grads: &mut [(Vec<f32>, Vec<f32>)],
) {
    let convs = &shape.convs;
    let params = &model.layers;
    let nb = shape.blocks.len();
    // The output layer, then through global average pooling onto the last output's pixels.
    {
        let (gw, gb) = &mut param_grads[convs.len()];
        let weight = &params[convs.len()].0;
        add(gb, &grads.logits);
        for ((&p, gw), (w, dp)) in net
            .pooled
            .iter()
            .zip(gw.chunks_exact_mut(shape.classes))
            .zip(weight.chunks_exact(shape.classes).zip(&mut grads.pooled))
        {
            gw.iter_mut()
                .zip(&grads.logits)
                .for_each(|(s, &g)| *s += p * g);
            *dp = w.iter().zip(&grads.logits).map(|(&w, &g)| w * g).sum();
        }
        let last = shape.block_input(nb);
        let area = (last.h() * last.w()) as f32;
        let wv = last.input_wv();
        let spread = &mut grads.d_input[nb];
        for (c, &g) in grads.pooled.iter().enumerate() {
            spread[c * last.h() * wv..(c + 1) * last.h() * wv].fill(g / area);
        }
    }
    for (j, b) in shape.blocks.iter().enumerate().rev() {
        let (start, end) = (&convs[b.start], &convs[b.end]);
        let output = shape.block_input(j + 1);
        let x = &net.inputs[j];
        let (below, above) = grads.d_input.split_at_mut(j + 1);
        let upstream = &above[0];
        // Through the block's ReLU: the branch's last convolution and the skip get dz_end.
        let (dz_before, dz_after) = grads.dz.split_at_mut(b.end);
        let dz_end = &mut dz_after[0];
        relu_grad(
            end,
            &net.inputs[j + 1],
            &output.rows(),
            upstream,
            output.input_wv(),
            dz_end,
            &mut grads.sums,
            &mut net.row,
        );
        add(&mut param_grads[b.end].1, &grads.sums);
        if let Some(p) = b.shortcut {
            // The projection's output gradient is the branch end's: so is its bias's.
            add(&mut param_grads[p].1, &grads.sums);
        }
        direct_conv::weight_grad(end, &net.branch[j], dz_end, &mut param_grads[b.end].0);
        let d_branch = &mut grads.spare;
        direct_conv::input_grad(
            end,
            dz_end,
            &flipped[b.end],
            &mut grads.scratch[b.end],
            d_branch,
        );
        // Through the branch's ReLU into its first convolution.
        let dz_start = &mut dz_before[b.start];
        relu_grad(
            start,
            &net.branch[j],
            &end.rows(),
            d_branch,
            end.input_wv(),
            dz_start,
            &mut grads.sums,
            &mut net.row,
        );
        add(&mut param_grads[b.start].1, &grads.sums);
        direct_conv::weight_grad(start, x, dz_start, &mut param_grads[b.start].0);
        let d_x = &mut below[j];
        direct_conv::input_grad(
            start,
            dz_start,
            &flipped[b.start],
            &mut grads.scratch[b.start],
            d_x,
        );
        match b.shortcut {
            Some(p) => {
                let g = &convs[p];
                direct_conv::weight_grad(g, x, dz_end, &mut param_grads[p].0);
                let d_skip = &mut grads.spare;
                direct_conv::input_grad(g, dz_end, &flipped[p], &mut grads.scratch[p], d_skip);
                add(d_x, d_skip);
            }
            None => {
                // Identity: same size, so the same row width.
                add(d_x, dz_end);
            }
        }
    }
    // The stem.
    let stem = &convs[0];
    let (layout, layout_wv) = (shape.block_input(0).rows(), shape.block_input(0).input_wv());
    let dz = &mut grads.dz[0];
    relu_grad(
        stem,
        &net.inputs[0],
        &layout,
        &grads.d_input[0],
        layout_wv,
        dz,
        &mut grads.sums,
        &mut net.row,
    );
    add(&mut param_grads[0].1, &grads.sums);
    direct_conv::weight_grad(stem, &net.image, dz, &mut param_grads[0].0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ModelError;
    use Role::{BranchEnd, BranchStart, Shortcut, Stem};

    /// `(role, cin, cout, kernel, stride)`.
    type Spec = (Role, usize, usize, usize, usize);

    /// A stem of 16, a block of 16, and a block halving the resolution to 32 channels.
    fn small() -> Vec<Spec> {
        vec![
            (Stem, 3, 16, 3, 1),
            (BranchStart, 16, 16, 3, 1),
            (BranchEnd, 16, 16, 3, 1),
            (BranchStart, 16, 32, 3, 2),
            (Shortcut, 16, 32, 1, 2),
            (BranchEnd, 32, 32, 3, 1),
        ]
    }

    /// The blocks of [`small`].
    const BLOCKS: [Block; 2] = [
        Block {
            start: 1,
            shortcut: None,
            end: 2,
        },
        Block {
            start: 3,
            shortcut: Some(4),
            end: 5,
        },
    ];

    /// The convolutions of `specs` on `[h, w]` images, each reading the size of its input (a
    /// projection the block's input).
    fn convs(specs: &[Spec], [h, w]: [usize; 2]) -> Vec<Conv> {
        let (mut size, mut block_input) = ([h, w], [h, w]);
        specs
            .iter()
            .map(|&(role, cin, cout, k, stride)| {
                let input = if role == Shortcut { block_input } else { size };
                let conv = Conv::new((cin, cout), k, stride, input, role);
                if role == BranchStart {
                    block_input = size;
                }
                if role != Shortcut {
                    size = conv.output();
                }
                conv
            })
            .collect()
    }

    fn refused(specs: &[Spec], [c, h, w]: [usize; 3], why: &str) {
        let convs = convs(specs, [h, w]);
        match ResNetShape::checked(&convs, &BLOCKS, [c, h, w], 10) {
            Err(ModelError::Architecture { reason }) => {
                assert!(reason.contains(why), "{reason} (expected {why:?})")
            }
            other => panic!("{specs:?} accepted: {other:?}"),
        }
    }

    /// The layout the network builds is accepted, with the pooled output's geometry; a bad
    /// convolution geometry or blocks that do not chain are refused.
    #[test]
    fn bad_resnet_shapes_are_refused() {
        let good = convs(&small(), [32, 32]);
        let shape = ResNetShape::checked(&good, &BLOCKS, [3, 32, 32], 10).unwrap();
        let pooled = shape.block_input(shape.blocks.len());
        assert_eq!((pooled.cin(), pooled.h(), pooled.w()), (32, 16, 16));
        assert_eq!((shape.width(), shape.inputs()), (32, 3 * 32 * 32));
        let config = crate::ResNetConfig {
            widths: vec![16, 32],
            blocks_per_stage: 1,
        };
        let net = crate::network::Network::new(&config.into(), &[3, 32, 32], 10).unwrap();
        assert_eq!((net.convs(), net.blocks()), (&good[..], &BLOCKS[..]));
        let with = |i: usize, spec: Spec| {
            let mut specs = small();
            specs[i] = spec;
            specs
        };
        refused(&small(), [3, 0, 32], "zero");
        refused(&with(5, (BranchEnd, 32, 32, 4, 1)), [3, 32, 32], "even");
        refused(&small(), [3, 1 << 62, 32], "too large");
        refused(&with(0, (BranchStart, 3, 16, 3, 1)), [3, 32, 32], "stem");
        refused(&small(), [1, 32, 32], "the image's channels");
        refused(
            &with(1, (BranchStart, 8, 16, 3, 1)),
            [3, 32, 32],
            "input channels",
        );
        refused(&with(2, (BranchEnd, 16, 16, 3, 2)), [3, 32, 32], "strided");
        refused(
            &with(2, (BranchEnd, 16, 8, 3, 1)),
            [3, 32, 32],
            "changes the shape",
        );
        refused(
            &with(4, (Shortcut, 16, 32, 1, 1)),
            [3, 32, 32],
            "projection",
        );
        refused(&small()[..5], [3, 32, 32], "is not a BranchEnd");
        refused(&[], [3, 32, 32], "no convolution");
        let mut more = small();
        more.push((BranchStart, 32, 32, 3, 1));
        refused(&more, [3, 32, 32], "follow the last block");
        // A convolution that reads another size than its input's.
        let mut moved = convs(&small(), [32, 32]);
        moved[2] = Conv::new((16, 16), 3, 1, [31, 32], BranchEnd);
        let err = ResNetShape::checked(&moved, &BLOCKS, [3, 32, 32], 10).unwrap_err();
        assert!(err.to_string().contains("its input has"), "{err}");
        let swapped = [BLOCKS[1], BLOCKS[0]];
        let err = ResNetShape::checked(&good, &swapped, [3, 32, 32], 10).unwrap_err();
        assert!(err.to_string().contains("do not follow"), "{err}");
    }
}
