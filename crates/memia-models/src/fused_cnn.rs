//! memia's fused CPU kernels for LeNet-style CNNs (convolution stages of "same" convolution,
//! ReLU and 2 x 2 max pooling, then dense layers), in the design of the dense ones
//! ([`crate::fused`]): one model's whole step on one core, every buffer allocated once per
//! model and reused by every step, the products through `gemm`, the models of a group in
//! parallel.
//!
//! **Convolutions as products (im2col), one image at a time.** A stage's input is kept
//! pixel-major (`[h, w, c]` per image): each output pixel's receptive field is gathered into one
//! row of a patch matrix (`[h w, k k c]`; columns in `(row, column, channel)` order, so that a
//! window row is one contiguous copy of `k c` values; zeros outside the image), and the
//! convolution is one product with the weights, kept during training in the same column order
//! (`[out, k k c]`, converted from and back to Burn's `(channel, row, column)` order once per
//! `train` call). Chosen by measurement on this workload: gathering the whole minibatch's patches
//! (75 columns per pixel for the first stage: 39 MB for 128 CIFAR images) made training and
//! inference memory-bound at about a tenth of the GEMM kernels' speed; one image's patches (300 KB)
//! stay in the core's cache, are written at copy speed, and are gathered again in the backward
//! pass rather than kept. The weight gradient is the sum over images of one product each, the
//! input gradient a product and a scatter back ("col2im"). Winograd's F(2x2, 5x5) saves
//! multiplications, but at 3 to 16 channels its transforms cost as much as the products.
//!
//! One image's products are too small to split across cores (splitting them made a single
//! model four times slower), so they always run on the model's own core; the dense layers'
//! minibatch products are split when the group has fewer models than cores, as in the dense
//! kernels.
//!
//! **ReLU and pooling** are one pass: the maximum of each 2 x 2 window of the convolution's
//! output (floor for odd sizes, as Burn's and PyTorch's pooling), clamped at zero, with the
//! position of the maximum kept for the backward pass (which sends the gradient there when the
//! maximum was positive). The last stage writes the dense input in the channel-major order
//! (`c, y, x`) Burn's engine flattens to, so the dense layers' weights mean the same in both
//! engines.
//!
//! The formulas are Burn's engine's (same initial weights, minibatch orders, augmentation
//! streams, schedule and optimiser); the tests compare the two engines, and a model trained in
//! a group against the same model trained alone, bit for bit.

use gemm::Parallelism;

use crate::augment::Augmentation;
use crate::config::{Member, TrainingConfig};
use crate::fused::{
    Activations, DenseParams, Slots, cross_entropy_grad, dense_backward, matmul, predict_each,
    train_each,
};
use crate::schedule::{epoch_streams, step_rate};

/// One convolution stage: `cin` -> `cout` channels, kernel `k` (odd), on `h x w` inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stage {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub h: usize,
    pub w: usize,
}

impl Stage {
    fn columns(&self) -> usize {
        self.cin * self.k * self.k
    }

    fn pixels(&self) -> usize {
        self.h * self.w
    }

    fn pooled(&self) -> usize {
        (self.h / 2) * (self.w / 2)
    }
}

/// A LeNet-style network: its convolution stages (input first) and its dense layer sizes (the
/// flattened last stage first, the classes last). A model's parameters are a [`DenseParams`]
/// whose first layers are the stages' (weights `cout x cin k k`, bias `cout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CnnShape {
    pub stages: Vec<Stage>,
    pub dense: Vec<usize>,
}

impl CnnShape {
    fn inputs(&self) -> usize {
        let s = self.stages[0];
        s.cin * s.pixels()
    }

    fn classes(&self) -> usize {
        self.dense[self.dense.len() - 1]
    }
}

/// Trains every model on its member's rows of `features` (n x C H W, row-major).
pub(crate) fn train(
    models: &mut [DenseParams],
    shape: &CnnShape,
    features: &[f32],
    labels: &[u32],
    members: &[Member],
    config: &TrainingConfig,
    augment: Option<([usize; 3], &Augmentation)>,
) {
    train_each(models, members, |model, member, par| {
        reorder_convolutions(model, shape, true);
        train_one(model, shape, features, labels, member, config, augment, par);
        reorder_convolutions(model, shape, false);
    });
}

/// Logits of every model on every row of `features`: `[G, n, C]`, row-major.
pub(crate) fn predict(models: &[DenseParams], shape: &CnnShape, features: &[f32]) -> Vec<f32> {
    let (d, classes) = (shape.inputs(), shape.classes());
    let n = features.len() / d;
    const CHUNK: usize = 256;
    predict_each(models, n, classes, |model, out, par| {
        let mut model = model.clone();
        reorder_convolutions(&mut model, shape, true);
        let mut net = Buffers::new(shape, CHUNK.min(n));
        for (rows, dst) in features
            .chunks(CHUNK * d)
            .zip(out.chunks_mut(CHUNK * classes))
        {
            let r = rows.len() / d;
            for (sample, src) in rows.chunks_exact(d).enumerate() {
                net.put_sample(shape, sample, src);
            }
            net.forward(&model, shape, r, par);
            dst.copy_from_slice(&net.dense.logits[..r * classes]);
        }
    })
}

/// Converts the convolutions' weights between Burn's column order `(channel, row, column)`
/// (`to_spatial = false`) and the kernels' `(row, column, channel)`.
fn reorder_convolutions(model: &mut DenseParams, shape: &CnnShape, to_spatial: bool) {
    for (st, (weight, _)) in shape.stages.iter().zip(model.layers.iter_mut()) {
        let (c, kk) = (st.cin, st.k * st.k);
        let old = weight.clone();
        for (o, row) in weight.chunks_exact_mut(c * kk).enumerate() {
            let src = &old[o * c * kk..(o + 1) * c * kk];
            for ch in 0..c {
                for p in 0..kk {
                    if to_spatial {
                        row[p * c + ch] = src[ch * kk + p];
                    } else {
                        row[ch * kk + p] = src[p * c + ch];
                    }
                }
            }
        }
    }
}

/// One model's buffers for a minibatch of up to `b` samples.
struct Buffers {
    /// Each stage's input, pixel-major `[b, h, w, cin]` (stage s > 0: stage s - 1's output).
    input: Vec<Vec<f32>>,
    /// Each stage's patch matrix of one image `[h w, k k cin]` (and slack).
    patches: Vec<Vec<f32>>,
    /// Each stage's zero-padded image (see [`im2col`]).
    padded: Vec<Vec<f32>>,
    /// Each stage's convolution output of one image (before ReLU and pooling) `[h w, cout]`.
    conv: Vec<Vec<f32>>,
    /// Each stage's pooling: the index, in its image's `conv`, of each window's maximum,
    /// `[b, h/2, w/2, cout]`.
    argmax: Vec<Vec<u32>>,
    /// The last stage's pooled output, pixel-major.
    last: Vec<f32>,
    /// The dense layers' activations (`layers[0]`: the flattened last stage).
    dense: Activations,
}

impl Buffers {
    fn new(shape: &CnnShape, b: usize) -> Self {
        let stages = &shape.stages;
        let last = stages[stages.len() - 1];
        Buffers {
            input: stages
                .iter()
                .map(|s| vec![0f32; b * s.pixels() * s.cin])
                .collect(),
            patches: stages
                .iter()
                .map(|s| vec![0f32; s.pixels() * s.columns() + SLACK])
                .collect(),
            padded: stages.iter().map(|s| vec![0f32; padded_len(s)]).collect(),
            conv: stages
                .iter()
                .map(|s| vec![0f32; s.pixels() * s.cout])
                .collect(),
            argmax: stages
                .iter()
                .map(|s| vec![0u32; b * s.pooled() * s.cout])
                .collect(),
            last: vec![0f32; b * last.pooled() * last.cout],
            dense: Activations::new(&shape.dense, b),
        }
    }

    /// Writes one sample (channel-major `[c, h, w]`) as image `sample` of the first stage's
    /// pixel-major input.
    fn put_sample(&mut self, shape: &CnnShape, sample: usize, src: &[f32]) {
        let s = shape.stages[0];
        let (c, hw) = (s.cin, s.pixels());
        let dst = &mut self.input[0][sample * hw * c..(sample + 1) * hw * c];
        for ch in 0..c {
            for (p, &v) in src[ch * hw..(ch + 1) * hw].iter().enumerate() {
                dst[p * c + ch] = v;
            }
        }
    }

    /// Forward pass of the first `r` images of the first stage's input (weights in the kernels'
    /// column order).
    fn forward(&mut self, model: &DenseParams, shape: &CnnShape, r: usize, par: Parallelism) {
        let stages = &shape.stages;
        for n in 0..r {
            for (si, st) in stages.iter().enumerate() {
                let (weight, bias) = &model.layers[si];
                let (px, cols, c) = (st.pixels(), st.columns(), st.cout);
                let image = &self.input[si][n * px * st.cin..(n + 1) * px * st.cin];
                im2col(image, &mut self.padded[si], &mut self.patches[si], st);
                let conv = &mut self.conv[si];
                matmul(
                    conv,
                    false,
                    &self.patches[si],
                    false,
                    weight,
                    true,
                    [px, c, cols],
                    Parallelism::None,
                );
                // Bias, ReLU and 2 x 2 max pooling into the next stage's input (or `last`):
                // the bias is the same for a window's four values, so it is added to the
                // maximum.
                let (ph, pw) = (st.h / 2, st.w / 2);
                let argmax = &mut self.argmax[si][n * ph * pw * c..(n + 1) * ph * pw * c];
                let out: &mut [f32] = if si + 1 < stages.len() {
                    &mut self.input[si + 1]
                } else {
                    &mut self.last
                };
                let out = &mut out[n * ph * pw * c..(n + 1) * ph * pw * c];
                pool(conv, out, argmax, bias, st);
            }
        }
        // Flatten the last stage channel-major, as Burn's engine does.
        let st = stages[stages.len() - 1];
        let (pp, c) = (st.pooled(), st.cout);
        let flat = &mut self.dense.layers[0];
        for n in 0..r {
            for p in 0..pp {
                for ch in 0..c {
                    flat[n * c * pp + ch * pp + p] = self.last[(n * pp + p) * c + ch];
                }
            }
        }
        self.dense
            .forward(&model.layers[stages.len()..], &shape.dense, r, par);
    }
}

/// Bias, ReLU and 2 x 2 max pooling of one image's convolution output `conv` (`[h w, c]`):
/// `out` (`[h/2, w/2, c]`) gets `max(0, max(window) + bias)`, `argmax` the index in `conv` of
/// the window's maximum (the first of equal ones). Branch-free, so that it vectorises.
fn pool(conv: &[f32], out: &mut [f32], argmax: &mut [u32], bias: &[f32], st: &Stage) {
    let (w, c) = (st.w, st.cout);
    let (ph, pw) = (st.h / 2, st.w / 2);
    for y in 0..ph {
        let top = &conv[2 * y * w * c..(2 * y + 1) * w * c];
        let bottom = &conv[(2 * y + 1) * w * c..(2 * y + 2) * w * c];
        for x in 0..pw {
            let o = (y * pw + x) * c;
            let (a, b) = (
                &top[2 * x * c..(2 * x + 1) * c],
                &top[(2 * x + 1) * c..(2 * x + 2) * c],
            );
            let (d, e) = (
                &bottom[2 * x * c..(2 * x + 1) * c],
                &bottom[(2 * x + 1) * c..(2 * x + 2) * c],
            );
            let base = (2 * y * w + 2 * x) * c;
            let offsets = [0, c, w * c, w * c + c].map(|v| (base + v) as u32);
            for (ch, ((((out, arg), &bias), (&va, &vb)), (&vd, &ve))) in out[o..o + c]
                .iter_mut()
                .zip(&mut argmax[o..o + c])
                .zip(bias)
                .zip(a.iter().zip(b))
                .zip(d.iter().zip(e))
                .enumerate()
            {
                let (mut best, mut at) = (va, offsets[0]);
                let take = vb > best;
                best = if take { vb } else { best };
                at = if take { offsets[1] } else { at };
                let take = vd > best;
                best = if take { vd } else { best };
                at = if take { offsets[2] } else { at };
                let take = ve > best;
                best = if take { ve } else { best };
                at = if take { offsets[3] } else { at };
                *arg = at + ch as u32;
                *out = (best + bias).max(0.0);
            }
        }
    }
}

/// Slack after a patch matrix and a padded image, so that [`copy_run`] may copy whole blocks.
const SLACK: usize = 8;

/// Copies `src[..len]` to `dst[..len]` in blocks of 8 values, the last block whole: up to 7
/// values past `len` are written (and read), which the callers allow (the next segment
/// overwrites them, or the buffers' slack takes them). Short runs are copied as vector moves, not
/// through `memcpy`.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32], len: usize) {
    let mut i = 0;
    while i < len {
        let block: [f32; 8] = src[i..i + 8].try_into().expect("8 values");
        dst[i..i + 8].copy_from_slice(&block);
        i += 8;
    }
}

/// One image zero-padded by `k / 2` on every side, pixel-major, with slack.
fn padded_len(st: &Stage) -> usize {
    let pad = st.k / 2;
    (st.h + 2 * pad) * (st.w + 2 * pad) * st.cin + SLACK
}

/// The patch matrix of one pixel-major image: row `(y, x)`, column `(dy, dx, channel)`, zero
/// where the window leaves the image ("same" padding). The image is first copied into the
/// interior of `padded` (whose border stays zero), so that each window row is one copy of
/// `k c` values.
fn im2col(image: &[f32], padded: &mut [f32], patches: &mut [f32], st: &Stage) {
    let (h, w, c, k) = (st.h, st.w, st.cin, st.k);
    let pad = k / 2;
    let wide = w + 2 * pad;
    for y in 0..h {
        let at = ((y + pad) * wide + pad) * c;
        padded[at..at + w * c].copy_from_slice(&image[y * w * c..(y + 1) * w * c]);
    }
    let (run, cols) = (k * c, st.columns());
    for y in 0..h {
        for x in 0..w {
            let row = (y * w + x) * cols;
            for dy in 0..k {
                let src = ((y + dy) * wide + x) * c;
                copy_run(&mut patches[row + dy * run..], &padded[src..], run);
            }
        }
    }
}

/// Adds each row of one image's patch gradient back to the pixels it was gathered from: the
/// input gradient of a convolution ("col2im"), accumulated in the zero-padded `padded` and its
/// interior written to `image`.
fn col2im(patches: &[f32], padded: &mut [f32], image: &mut [f32], st: &Stage) {
    let (h, w, c, k) = (st.h, st.w, st.cin, st.k);
    let pad = k / 2;
    let wide = w + 2 * pad;
    padded.fill(0.0);
    let (run, cols) = (k * c, st.columns());
    for y in 0..h {
        for x in 0..w {
            let row = &patches[(y * w + x) * cols..][..cols];
            for dy in 0..k {
                let dst = ((y + dy) * wide + x) * c;
                padded[dst..dst + run]
                    .iter_mut()
                    .zip(&row[dy * run..(dy + 1) * run])
                    .for_each(|(v, &g)| *v += g);
            }
        }
    }
    for y in 0..h {
        let at = ((y + pad) * wide + pad) * c;
        image[y * w * c..(y + 1) * w * c].copy_from_slice(&padded[at..at + w * c]);
    }
}

#[allow(clippy::too_many_arguments)] // one model's share of `train`
fn train_one(
    model: &mut DenseParams,
    shape: &CnnShape,
    features: &[f32],
    labels: &[u32],
    member: &Member,
    config: &TrainingConfig,
    augment: Option<([usize; 3], &Augmentation)>,
    par: Parallelism,
) {
    let (d, b, classes) = (shape.inputs(), config.batch_size, shape.classes());
    let stages = &shape.stages;
    let mut slots = Slots::new(&model.layers, config);
    let mut net = Buffers::new(shape, b);
    let widest = shape.dense.iter().copied().max().unwrap_or(0);
    let (mut delta, mut delta_below) = (vec![0f32; b * widest], vec![0f32; b * widest]);
    // Per image: each stage's convolution-output gradient, input gradient and patch gradient.
    let mut d_conv: Vec<Vec<f32>> = stages
        .iter()
        .map(|s| vec![0f32; s.pixels() * s.cout])
        .collect();
    let mut d_input: Vec<Vec<f32>> = stages
        .iter()
        .map(|s| vec![0f32; s.pixels() * s.cin])
        .collect();
    let mut d_patches: Vec<Vec<f32>> = stages
        .iter()
        .map(|s| vec![0f32; s.pixels() * s.columns()])
        .collect();
    let mut d_padded: Vec<Vec<f32>> = stages.iter().map(|s| vec![0f32; padded_len(s)]).collect();
    let last = stages[stages.len() - 1];
    let mut d_last = vec![0f32; last.pooled() * last.cout];
    let mut sample = vec![0f32; d];
    let total_steps = member.train.len().div_ceil(b) * config.epochs;
    let mut taken = 0usize;
    for epoch in 0..config.epochs {
        let (order, mut writer) = epoch_streams(member, epoch);
        for rows in order.chunks(b) {
            let r = rows.len();
            for (n, &i) in rows.iter().enumerate() {
                writer.write_sample(&features[i * d..(i + 1) * d], &mut sample, augment);
                net.put_sample(shape, n, &sample);
            }
            net.forward(model, shape, r, par);
            cross_entropy_grad(&net.dense.logits, &mut delta, rows, labels, classes);
            let (conv_params, dense_params) = model.layers.split_at(stages.len());
            let (conv_grads, dense_grads) = slots.grads.split_at_mut(stages.len());
            dense_backward(
                dense_params,
                dense_grads,
                &shape.dense,
                &net.dense,
                &mut delta,
                &mut delta_below,
                r,
                true,
                par,
            );
            for (gw, gb) in conv_grads.iter_mut() {
                gw.fill(0.0);
                gb.fill(0.0);
            }
            // Image by image, last stage first.
            let (pp, c_last) = (last.pooled(), last.cout);
            for n in 0..r {
                // The flattened input's gradient back to pixel-major.
                for p in 0..pp {
                    for ch in 0..c_last {
                        d_last[p * c_last + ch] = delta[n * c_last * pp + ch * pp + p];
                    }
                }
                for si in (0..stages.len()).rev() {
                    let st = stages[si];
                    let (px, cols, c) = (st.pixels(), st.columns(), st.cout);
                    let pooled = st.pooled() * c;
                    // Through pooling and ReLU: to each window's maximum, where it was positive.
                    let (d_out, out): (&[f32], &[f32]) = if si + 1 < stages.len() {
                        (
                            &d_input[si + 1],
                            &net.input[si + 1][n * pooled..(n + 1) * pooled],
                        )
                    } else {
                        (&d_last, &net.last[n * pooled..(n + 1) * pooled])
                    };
                    let dz = &mut d_conv[si];
                    dz.fill(0.0);
                    for ((&g, &o), &at) in d_out
                        .iter()
                        .zip(out)
                        .zip(&net.argmax[si][n * pooled..(n + 1) * pooled])
                    {
                        if o > 0.0 {
                            dz[at as usize] += g;
                        }
                    }
                    // The image's patches again (cheaper than keeping the minibatch's).
                    let image = &net.input[si][n * px * st.cin..(n + 1) * px * st.cin];
                    im2col(image, &mut net.padded[si], &mut net.patches[si], &st);
                    let (gw, gb) = &mut conv_grads[si];
                    // Weights: dZ^T (cout x pixels) x patches (pixels x columns), summed over
                    // the images.
                    matmul(
                        gw,
                        true,
                        dz,
                        true,
                        &net.patches[si],
                        false,
                        [c, cols, px],
                        Parallelism::None,
                    );
                    for row in dz.chunks_exact(c) {
                        gb.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
                    }
                    if si > 0 {
                        // Input: dZ (pixels x cout) x W (cout x columns), scattered back.
                        let dp = &mut d_patches[si];
                        matmul(
                            dp,
                            false,
                            dz,
                            false,
                            &conv_params[si].0,
                            false,
                            [px, cols, c],
                            Parallelism::None,
                        );
                        col2im(dp, &mut d_padded[si], &mut d_input[si], &st);
                    }
                }
            }
            let rate = step_rate(config, taken, total_steps) as f32;
            taken += 1;
            slots.step(&mut model.layers, rate, taken, config);
        }
    }
}
