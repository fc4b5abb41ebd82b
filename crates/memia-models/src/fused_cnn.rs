//! memia's fused CPU kernels for LeNet-style CNNs (convolution stages of "same" convolution,
//! ReLU and 2 x 2 max pooling, then dense layers), in the design of the dense ones
//! ([`crate::fused`]): one model's whole step on one core, every buffer allocated once per
//! model and reused by every step, the products through `gemm`, the models of a group in
//! parallel.
//!
//! **Convolutions as products (im2col).** A stage's input is kept pixel-major (`[b, h, w, c]`):
//! each output pixel's receptive field is gathered into one row of a patch matrix
//! (`[b h w, c k k]`, columns in the weights' `(in channel, row, column)` order, zeros outside
//! the image), and the convolution is one product with the weights (`[out, c k k]`) for the
//! whole minibatch. Chosen by measurement on this workload over a direct convolution and
//! Winograd: the patch matrix of the first stage (75 columns) is small enough to stay cheap to
//! write, one large product runs near the GEMM kernels' peak where per-image products of 6 or
//! 16 output channels did not, and the backward pass reuses the same matrix (the weight
//! gradient is one more product with it, the input gradient a product and a scatter back,
//! "col2im"). Winograd's F(2x2, 5x5) saves multiplications but not at 6 and 16 channels, where
//! the transforms cost as much as the products.
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
use rayon::prelude::*;

use crate::augment::Augmentation;
use crate::config::{Member, TrainingConfig};
use crate::fused::{
    Activations, DenseParams, Slots, cross_entropy_grad, dense_backward, matmul, parallelism,
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
    let par = parallelism(models.len());
    models
        .par_iter_mut()
        .zip(members.par_iter())
        .for_each(|(model, member)| {
            train_one(model, shape, features, labels, member, config, augment, par)
        });
}

/// Logits of every model on every row of `features`: `[G, n, C]`, row-major.
pub(crate) fn predict(models: &[DenseParams], shape: &CnnShape, features: &[f32]) -> Vec<f32> {
    let (d, classes) = (shape.inputs(), shape.classes());
    let n = features.len() / d;
    let mut out = vec![0f32; models.len() * n * classes];
    if n == 0 {
        return out;
    }
    let par = parallelism(models.len());
    const CHUNK: usize = 256;
    out.par_chunks_mut(n * classes)
        .zip(models.par_iter())
        .for_each(|(out, model)| {
            let mut net = Buffers::new(shape, CHUNK.min(n));
            for (rows, dst) in features
                .chunks(CHUNK * d)
                .zip(out.chunks_mut(CHUNK * classes))
            {
                let r = rows.len() / d;
                for (sample, src) in rows.chunks_exact(d).enumerate() {
                    net.put_sample(shape, sample, src);
                }
                net.forward(model, shape, r, par);
                dst.copy_from_slice(&net.dense.logits[..r * classes]);
            }
        });
    out
}

/// One model's buffers for a minibatch of up to `b` samples.
struct Buffers {
    /// Each stage's input, pixel-major `[b, h, w, cin]` (stage s > 0: stage s - 1's output).
    input: Vec<Vec<f32>>,
    /// Each stage's patch matrix `[b h w, cin k k]`.
    patches: Vec<Vec<f32>>,
    /// Each stage's convolution output (before ReLU and pooling) `[b h w, cout]`.
    conv: Vec<Vec<f32>>,
    /// Each stage's pooled output's source: the index in `conv` of each window's maximum,
    /// `[b, h/2, w/2, cout]`.
    argmax: Vec<Vec<u32>>,
    /// The last stage's pooled output, pixel-major (its gradient is reordered through it).
    last: Vec<f32>,
    /// One sample in the data's channel-major layout, before reordering.
    sample: Vec<f32>,
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
                .map(|s| vec![0f32; b * s.pixels() * s.columns()])
                .collect(),
            conv: stages
                .iter()
                .map(|s| vec![0f32; b * s.pixels() * s.cout])
                .collect(),
            argmax: stages
                .iter()
                .map(|s| vec![0u32; b * s.pooled() * s.cout])
                .collect(),
            last: vec![0f32; b * last.pooled() * last.cout],
            sample: vec![0f32; shape.inputs()],
            dense: Activations::new(&shape.dense, b),
        }
    }

    /// Writes one sample (channel-major `[c, h, w]`) as row `sample` of the first stage's
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

    /// Forward pass of the first `r` samples of the first stage's input.
    fn forward(&mut self, model: &DenseParams, shape: &CnnShape, r: usize, par: Parallelism) {
        let stages = &shape.stages;
        for (si, st) in stages.iter().enumerate() {
            let (weight, bias) = &model.layers[si];
            let (rows, cols) = (r * st.pixels(), st.columns());
            im2col(&self.input[si], &mut self.patches[si], st, r);
            let conv = &mut self.conv[si][..rows * st.cout];
            for row in conv.chunks_exact_mut(st.cout) {
                row.copy_from_slice(bias);
            }
            matmul(
                conv,
                true,
                &self.patches[si][..rows * cols],
                false,
                weight,
                true,
                [rows, st.cout, cols],
                par,
            );
            // ReLU and 2 x 2 max pooling into the next stage's input (or `last`).
            let (ph, pw, c) = (st.h / 2, st.w / 2, st.cout);
            let argmax = &mut self.argmax[si];
            let out: &mut [f32] = if si + 1 < stages.len() {
                &mut self.input[si + 1]
            } else {
                &mut self.last
            };
            for n in 0..r {
                for y in 0..ph {
                    for x in 0..pw {
                        let o = ((n * ph + y) * pw + x) * c;
                        let base = |dy: usize, dx: usize| {
                            ((n * st.h + 2 * y + dy) * st.w + 2 * x + dx) * c
                        };
                        let corners = [base(0, 0), base(0, 1), base(1, 0), base(1, 1)];
                        for ch in 0..c {
                            let mut best = corners[0] + ch;
                            for &corner in &corners[1..] {
                                if conv[corner + ch] > conv[best] {
                                    best = corner + ch;
                                }
                            }
                            argmax[o + ch] = best as u32;
                            out[o + ch] = conv[best].max(0.0);
                        }
                    }
                }
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

/// The patch matrix of `r` samples of a pixel-major input: row `(n, y, x)`, column
/// `(channel, dy, dx)`, zero where the window leaves the image ("same" padding).
fn im2col(input: &[f32], patches: &mut [f32], st: &Stage, r: usize) {
    let (h, w, c, k) = (st.h, st.w, st.cin, st.k);
    let pad = k / 2;
    let cols = st.columns();
    for n in 0..r {
        for y in 0..h {
            for x in 0..w {
                let row = &mut patches[((n * h + y) * w + x) * cols..][..cols];
                for dy in 0..k {
                    let yy = y as isize + dy as isize - pad as isize;
                    for dx in 0..k {
                        let xx = x as isize + dx as isize - pad as isize;
                        let inside = yy >= 0 && yy < h as isize && xx >= 0 && xx < w as isize;
                        let src = if inside {
                            ((n * h + yy as usize) * w + xx as usize) * c
                        } else {
                            0
                        };
                        for ch in 0..c {
                            row[ch * k * k + dy * k + dx] =
                                if inside { input[src + ch] } else { 0.0 };
                        }
                    }
                }
            }
        }
    }
}

/// Adds each row of the patch gradient back to the input pixels it was gathered from: the
/// input gradient of a convolution ("col2im").
fn col2im(patches: &[f32], input: &mut [f32], st: &Stage, r: usize) {
    let (h, w, c, k) = (st.h, st.w, st.cin, st.k);
    let pad = k / 2;
    let cols = st.columns();
    input[..r * h * w * c].iter_mut().for_each(|v| *v = 0.0);
    for n in 0..r {
        for y in 0..h {
            for x in 0..w {
                let row = &patches[((n * h + y) * w + x) * cols..][..cols];
                for dy in 0..k {
                    let yy = y as isize + dy as isize - pad as isize;
                    if yy < 0 || yy >= h as isize {
                        continue;
                    }
                    for dx in 0..k {
                        let xx = x as isize + dx as isize - pad as isize;
                        if xx < 0 || xx >= w as isize {
                            continue;
                        }
                        let dst = ((n * h + yy as usize) * w + xx as usize) * c;
                        for ch in 0..c {
                            input[dst + ch] += row[ch * k * k + dy * k + dx];
                        }
                    }
                }
            }
        }
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
    // Gradients of each stage's convolution output and of its input (pixel-major), and of the
    // patch matrix.
    let mut d_conv: Vec<Vec<f32>> = stages
        .iter()
        .map(|s| vec![0f32; b * s.pixels() * s.cout])
        .collect();
    let mut d_input: Vec<Vec<f32>> = stages
        .iter()
        .map(|s| vec![0f32; b * s.pixels() * s.cin])
        .collect();
    let widest_patches = stages
        .iter()
        .map(|s| s.pixels() * s.columns())
        .max()
        .unwrap_or(0);
    let mut d_patches = vec![0f32; b * widest_patches];
    let last = stages[stages.len() - 1];
    let mut d_last = vec![0f32; b * last.pooled() * last.cout];
    let total_steps = member.train.len().div_ceil(b) * config.epochs;
    let mut taken = 0usize;
    for epoch in 0..config.epochs {
        let (order, mut writer) = epoch_streams(member, epoch);
        for rows in order.chunks(b) {
            let r = rows.len();
            for (sample, &i) in rows.iter().enumerate() {
                let mut one = std::mem::take(&mut net.sample);
                writer.write_sample(&features[i * d..(i + 1) * d], &mut one, augment);
                net.put_sample(shape, sample, &one);
                net.sample = one;
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
            // The flattened input's gradient back to pixel-major.
            let (pp, c) = (last.pooled(), last.cout);
            for n in 0..r {
                for p in 0..pp {
                    for ch in 0..c {
                        d_last[(n * pp + p) * c + ch] = delta[n * c * pp + ch * pp + p];
                    }
                }
            }
            for si in (0..stages.len()).rev() {
                let st = stages[si];
                let (rows_px, cols) = (r * st.pixels(), st.columns());
                // Through pooling and ReLU: to each window's maximum, where it was positive.
                let d_out: &[f32] = if si + 1 < stages.len() {
                    &d_input[si + 1]
                } else {
                    &d_last
                };
                let out: &[f32] = if si + 1 < stages.len() {
                    &net.input[si + 1]
                } else {
                    &net.last
                };
                let dz = &mut d_conv[si][..rows_px * st.cout];
                dz.iter_mut().for_each(|v| *v = 0.0);
                let pooled = r * st.pooled() * st.cout;
                for ((&g, &o), &at) in d_out[..pooled]
                    .iter()
                    .zip(&out[..pooled])
                    .zip(&net.argmax[si][..pooled])
                {
                    if o > 0.0 {
                        dz[at as usize] += g;
                    }
                }
                let (gw, gb) = &mut conv_grads[si];
                // Weights: dZ^T (cout x pixels) x patches (pixels x columns).
                matmul(
                    gw,
                    false,
                    dz,
                    true,
                    &net.patches[si][..rows_px * cols],
                    false,
                    [st.cout, cols, rows_px],
                    par,
                );
                gb.iter_mut().for_each(|v| *v = 0.0);
                for row in dz.chunks_exact(st.cout) {
                    gb.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
                }
                if si > 0 {
                    // Input: dZ (pixels x cout) x W (cout x columns), scattered back.
                    let dp = &mut d_patches[..rows_px * cols];
                    matmul(
                        dp,
                        false,
                        dz,
                        false,
                        &conv_params[si].0,
                        false,
                        [rows_px, cols, st.cout],
                        par,
                    );
                    col2im(dp, &mut d_input[si], &st, r);
                }
            }
            let rate = step_rate(config, taken, total_steps) as f32;
            taken += 1;
            slots.step(&mut model.layers, rate, taken, config);
        }
    }
}
