//! memia's fused CPU kernels for dense ensembles (multilayer perceptrons and logistic
//! regression), used on the Flex device.
//!
//! Burn runs a training step as a few dozen tensor operations; each is a pass over memory that
//! allocates its output and waits for the previous one, and for the small dense models an audit
//! trains by the hundred those passes cost as much as the matrix products themselves (see
//! docs/PERFORMANCE.md). Here one model's whole step runs on one core: the minibatch is gathered
//! into a reused buffer, the forward and backward products go to the `gemm` crate (the one
//! behind Flex's matmul, with its AVX-512 kernels), the softmax cross-entropy gradient is one
//! pass over the logits, and the optimiser is one pass over each parameter. The models of a
//! group train concurrently, one per core at a time; a group smaller than the thread pool
//! splits each product across the cores instead. Each model's arithmetic is sequential and in a
//! fixed order, so results are bit-identical from run to run, whatever the group.
//!
//! The formulas are Burn's engine's (`crate::burn_engine`, `Engine::Burn`): the same
//! initialisation, minibatch orders, augmentation streams, learning-rate schedule and optimiser;
//! the tests compare the two engines.

use gemm::Parallelism;
use rayon::prelude::*;

use memia_core::rng::{MemiaRng, stream_rng};
use rand::RngExt;
use rand_distr::StandardNormal;

use crate::augment::Augmentation;
use crate::config::{DpConfig, Member, Optimizer, TrainingConfig};
use crate::params::HostParams;
use crate::schedule::{SampleWriter, adam_correction, epoch_streams, step_rate};

/// How the products of one model run: on the calling thread when the models keep the cores
/// busy, split across the pool when they do not.
pub(crate) fn parallelism(models: usize) -> Parallelism {
    let threads = rayon::current_num_threads();
    if models >= threads || threads == 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads)
    }
}

/// How many threads share one model's images (the convolutional models split a lone model's
/// minibatch across them): one when the models of the group keep the cores busy, else the
/// pool's.
pub(crate) fn threads(par: Parallelism) -> usize {
    match par {
        Parallelism::Rayon(threads) => threads.max(1),
        _ => 1,
    }
}

/// Runs `each` on every item: across the pool's threads when there are several, on the calling
/// thread when there is one (no round trip through the pool).
pub(crate) fn on_each<T: Send>(items: &mut [T], each: impl Fn(&mut T) + Sync + Send) {
    match items {
        [one] => each(one),
        _ => items.par_iter_mut().for_each(each),
    }
}

/// Adds `values` to `sums`, element by element.
pub(crate) fn add(sums: &mut [f32], values: &[f32]) {
    sums.iter_mut().zip(values).for_each(|(s, &v)| *s += v);
}

/// A zeroed buffer the size of each layer's weights (not its bias).
pub(crate) fn weight_buffers(layers: &[(Vec<f32>, Vec<f32>)]) -> Vec<Vec<f32>> {
    layers.iter().map(|(w, _)| vec![0f32; w.len()]).collect()
}

/// Trains every model on its member's rows of `features` (n x sizes[0], row-major).
/// `sizes` are the layer sizes from input to classes; `augment` the image shape and
/// augmentation when images are augmented.
pub(crate) fn train(
    models: &mut [HostParams],
    sizes: &[usize],
    features: &[f32],
    labels: &[u32],
    members: &[Member],
    config: &TrainingConfig,
    augment: Option<([usize; 3], &Augmentation)>,
) -> Vec<Vec<HostParams>> {
    train_each(models, members, |model, member, par| {
        train_one(model, sizes, features, labels, member, config, augment, par)
    })
}

/// Runs `one(model, member, parallelism)` for every model of a group concurrently (one model per
/// core; the parallelism says whether a model's own products may use the other cores).
///
/// Returns each model's checkpoint copies (see [`train_loop`]).
pub(crate) fn train_each(
    models: &mut [HostParams],
    members: &[Member],
    one: impl Fn(&mut HostParams, &Member, Parallelism) -> Vec<HostParams> + Sync + Send,
) -> Vec<Vec<HostParams>> {
    let par = parallelism(models.len());
    models
        .par_iter_mut()
        .zip(members.par_iter())
        .map(|(model, member)| one(model, member, par))
        .collect()
}

/// Every model's logits on `n` samples, `[G, n, classes]` row-major: `one(model, out,
/// parallelism)` fills one model's `n x classes` share, the models concurrently.
pub(crate) fn predict_each(
    models: &[HostParams],
    n: usize,
    classes: usize,
    one: impl Fn(&HostParams, &mut [f32], Parallelism) + Sync + Send,
) -> Vec<f32> {
    let mut out = vec![0f32; models.len() * n * classes];
    if n == 0 {
        return out;
    }
    let par = parallelism(models.len());
    out.par_chunks_mut(n * classes)
        .zip(models.par_iter())
        .for_each(|(out, model)| one(model, out, par));
    out
}

/// Logits of every model on every row of `features`: `[G, n, C]`, row-major.
pub(crate) fn predict(models: &[HostParams], sizes: &[usize], features: &[f32]) -> Vec<f32> {
    let (d, classes) = (sizes[0], sizes[sizes.len() - 1]);
    let n = features.len() / d;
    const CHUNK: usize = 1024;
    predict_each(models, n, classes, |model, out, par| {
        let mut acts = Activations::new(sizes, CHUNK.min(n));
        for (rows, dst) in features
            .chunks(CHUNK * d)
            .zip(out.chunks_mut(CHUNK * classes))
        {
            let r = rows.len() / d;
            acts.layers[0][..rows.len()].copy_from_slice(rows);
            acts.forward(&model.layers, sizes, r, par);
            dst.copy_from_slice(&acts.logits[..r * classes]);
        }
    })
}

/// Buffers for one model's minibatch: each layer's input (the first is the minibatch, the
/// others post-ReLU activations) and the logits.
pub(crate) struct Activations {
    pub layers: Vec<Vec<f32>>,
    pub logits: Vec<f32>,
}

impl Activations {
    pub(crate) fn new(sizes: &[usize], rows: usize) -> Self {
        let last = sizes.len() - 1;
        Activations {
            layers: sizes[..last]
                .iter()
                .map(|&w| vec![0f32; rows * w])
                .collect(),
            logits: vec![0f32; rows * sizes[last]],
        }
    }

    /// Forward pass of the first `r` rows of `layers[0]` through the dense `params`.
    pub(crate) fn forward(
        &mut self,
        params: &[(Vec<f32>, Vec<f32>)],
        sizes: &[usize],
        r: usize,
        par: Parallelism,
    ) {
        let last = sizes.len() - 2;
        for (l, (weight, bias)) in params.iter().enumerate() {
            let (inputs, outputs) = (sizes[l], sizes[l + 1]);
            let (before, after) = self.layers.split_at_mut(l + 1);
            let src = &before[l][..r * inputs];
            let dst = if l == last {
                &mut self.logits[..r * outputs]
            } else {
                &mut after[0][..r * outputs]
            };
            for row in dst.chunks_exact_mut(outputs) {
                row.copy_from_slice(bias);
            }
            matmul(
                dst,
                true,
                src,
                false,
                weight,
                false,
                [r, outputs, inputs],
                par,
            );
            if l < last {
                dst.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
    }
}

/// A model's gradients and optimiser state, shaped like its parameters.
pub(crate) struct Slots {
    pub grads: Vec<(Vec<f32>, Vec<f32>)>,
    first: Vec<(Vec<f32>, Vec<f32>)>,
    second: Vec<(Vec<f32>, Vec<f32>)>,
}

impl Slots {
    /// Zeros shaped like `params` (the second moments only for Adam).
    pub(crate) fn new(params: &[(Vec<f32>, Vec<f32>)], config: &TrainingConfig) -> Self {
        let zeros = || -> Vec<(Vec<f32>, Vec<f32>)> {
            params
                .iter()
                .map(|(w, bias)| (vec![0f32; w.len()], vec![0f32; bias.len()]))
                .collect()
        };
        let adam = matches!(config.optimizer, Optimizer::Adam { .. });
        Slots {
            grads: zeros(),
            first: zeros(),
            second: if adam { zeros() } else { Vec::new() },
        }
    }

    /// One optimiser step of every parameter with the gradients in `grads`.
    pub(crate) fn step(
        &mut self,
        params: &mut [(Vec<f32>, Vec<f32>)],
        rate: f32,
        taken: usize,
        config: &TrainingConfig,
    ) {
        for (l, (weight, bias)) in params.iter_mut().enumerate() {
            let (gw, gb) = &self.grads[l];
            let (fw, fb) = &mut self.first[l];
            let mut sgd = (Vec::new(), Vec::new());
            let (sw, sb) = self.second.get_mut(l).unwrap_or(&mut sgd);
            optimizer_step(weight, gw, fw, sw, rate, taken, config);
            optimizer_step(bias, gb, fb, sb, rate, taken, config);
        }
    }
}

/// The gradient of the mean cross-entropy over the minibatch `rows` (pool indices, for the
/// labels) with respect to the logits, into `delta` (`r x classes`).
pub(crate) fn cross_entropy_grad(
    logits: &[f32],
    delta: &mut [f32],
    rows: &[usize],
    labels: &[u32],
    classes: usize,
) {
    let weight = 1.0 / rows.len() as f32;
    cross_entropy_grad_weighted(logits, delta, rows, labels, classes, weight);
}

/// [`cross_entropy_grad`] of some of a minibatch's rows, each weighted by `weight` (one over
/// the minibatch's size).
pub(crate) fn cross_entropy_grad_weighted(
    logits: &[f32],
    delta: &mut [f32],
    rows: &[usize],
    labels: &[u32],
    classes: usize,
    weight: f32,
) {
    for ((z, dz), &i) in logits
        .chunks_exact(classes)
        .zip(delta.chunks_exact_mut(classes))
        .zip(rows)
    {
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for (e, &v) in dz.iter_mut().zip(z) {
            *e = (v - max).exp();
            sum += *e;
        }
        for e in dz.iter_mut() {
            *e = *e / sum * weight;
        }
        dz[labels[i] as usize] -= weight;
    }
}

/// Backward through the dense `params` (layer sizes `sizes`, input first), the logits'
/// gradient in `delta`: each layer's gradients into `grads`. With `input_grad`, the gradient
/// with respect to the dense input (before any mask: the caller's layer applies its own) is
/// left in `delta` (`r x sizes[0]`).
#[allow(clippy::too_many_arguments)] // the buffers of one model's step
pub(crate) fn dense_backward(
    params: &[(Vec<f32>, Vec<f32>)],
    grads: &mut [(Vec<f32>, Vec<f32>)],
    sizes: &[usize],
    acts: &Activations,
    delta: &mut Vec<f32>,
    delta_below: &mut Vec<f32>,
    r: usize,
    input_grad: bool,
    par: Parallelism,
) {
    let last = sizes.len() - 2;
    for l in (0..=last).rev() {
        let (inputs, outputs) = (sizes[l], sizes[l + 1]);
        let dz = &delta[..r * outputs];
        let input = &acts.layers[l][..r * inputs];
        layer_gradients(&mut grads[l], input, dz, [r, inputs, outputs], false, par);
        if l > 0 || input_grad {
            let below = &mut delta_below[..r * inputs];
            let relu = (l > 0).then_some(input);
            gradient_below(below, dz, &params[l].0, relu, [r, inputs, outputs], par);
            std::mem::swap(delta, delta_below);
        }
    }
}

/// One dense layer's weight and bias gradients from its `input` rows and its output gradient
/// `dz` (`[r, inputs, outputs]`), written or (with `accumulate`) added to `grads`.
fn layer_gradients(
    (gw, gb): &mut (Vec<f32>, Vec<f32>),
    input: &[f32],
    dz: &[f32],
    [r, inputs, outputs]: [usize; 3],
    accumulate: bool,
    par: Parallelism,
) {
    matmul(
        gw,
        accumulate,
        input,
        true,
        dz,
        false,
        [inputs, outputs, r],
        par,
    );
    let mut rows = dz.chunks_exact(outputs);
    if !accumulate {
        match rows.next() {
            Some(first) => gb.copy_from_slice(first),
            None => gb.fill(0.0),
        }
    }
    for row in rows {
        add(gb, row);
    }
}

/// The gradient with respect to a dense layer's input (`r x inputs`) from its output gradient
/// `dz` through its `weight`; with `relu`, the layer's input activations, zero where the ReLU
/// below clamped them.
fn gradient_below(
    below: &mut [f32],
    dz: &[f32],
    weight: &[f32],
    relu: Option<&[f32]>,
    [r, inputs, outputs]: [usize; 3],
    par: Parallelism,
) {
    matmul(
        below,
        false,
        dz,
        false,
        weight,
        true,
        [r, inputs, outputs],
        par,
    );
    if let Some(input) = relu {
        below
            .iter_mut()
            .zip(input)
            .for_each(|(g, &a)| *g = if a > 0.0 { *g } else { 0.0 });
    }
}

/// DP-SGD's gradients of a dense network on `r` rows: each row's gradient clipped to L2 norm
/// `clip`, the clipped gradients summed and divided by `expected` (the expected batch size),
/// written or (with `accumulate`, for the next chunk of a large batch) added to `grads`.
///
/// No per-sample gradient is formed: a dense layer's weight gradient for one row is the outer
/// product of its input and output gradient, whose squared norm is `|a|^2 |dz|^2` (plus
/// `|dz|^2` for the bias), so the per-row norms come from the output gradients of every layer
/// (kept in `deltas`, one buffer per layer, the last holding the logits' per-row gradient on
/// entry, unweighted); each row of those is then scaled by its clipping factor and the layers'
/// gradients are the ordinary products ("ghost clipping", Goodfellow 2015; Li et al. 2022).
#[allow(clippy::too_many_arguments)] // the buffers of one model's step
pub(crate) fn dense_backward_clipped(
    params: &[(Vec<f32>, Vec<f32>)],
    grads: &mut [(Vec<f32>, Vec<f32>)],
    sizes: &[usize],
    acts: &Activations,
    deltas: &mut [Vec<f32>],
    rows: &mut RowNorms,
    r: usize,
    [clip, expected]: [f32; 2],
    accumulate: bool,
    par: Parallelism,
) {
    dense_squared_norms(params, sizes, acts, deltas, &mut rows.squared, None, r, par);
    rows.scales.clear();
    rows.scales.extend(
        rows.squared
            .iter()
            .map(|&n| clip_factor(n.sqrt(), clip) / expected),
    );
    scaled_dense_gradients(grads, sizes, acts, deltas, &rows.scales, accumulate, par);
}

/// DP-SGD's per-row buffers, reused by every step: each row's squared gradient norm and its
/// factor (clipping over the expected batch size).
#[derive(Debug, Default)]
pub(crate) struct RowNorms {
    pub squared: Vec<f64>,
    pub scales: Vec<f32>,
}

/// The first phase of [`dense_backward_clipped`]: every dense layer's per-row output gradient
/// into `deltas` (the last holds the logits' on entry) and each row's squared gradient norm
/// over the dense layers into `norms`; with `input_grad`, the gradient with respect to the
/// dense input too (`r x sizes[0]`, no mask), for the layers below.
#[allow(clippy::too_many_arguments)] // the buffers of one model's step
pub(crate) fn dense_squared_norms(
    params: &[(Vec<f32>, Vec<f32>)],
    sizes: &[usize],
    acts: &Activations,
    deltas: &mut [Vec<f32>],
    norms: &mut Vec<f64>,
    input_grad: Option<&mut [f32]>,
    r: usize,
    par: Parallelism,
) {
    let last = sizes.len() - 2;
    for l in (1..=last).rev() {
        let (inputs, outputs) = (sizes[l], sizes[l + 1]);
        let (below, above) = deltas.split_at_mut(l);
        let input = &acts.layers[l][..r * inputs];
        let dims = [r, inputs, outputs];
        gradient_below(
            &mut below[l - 1][..r * inputs],
            &above[0][..r * outputs],
            &params[l].0,
            Some(input),
            dims,
            par,
        );
    }
    if let Some(below) = input_grad {
        let dims = [r, sizes[0], sizes[1]];
        gradient_below(
            &mut below[..r * sizes[0]],
            &deltas[0][..r * sizes[1]],
            &params[0].0,
            None,
            dims,
            par,
        );
    }
    norms.clear();
    norms.resize(r, 0.0);
    for l in 0..=last {
        let (inputs, outputs) = (sizes[l], sizes[l + 1]);
        let rows = acts.layers[l][..r * inputs].chunks_exact(inputs);
        for ((norm, a), dz) in norms
            .iter_mut()
            .zip(rows)
            .zip(deltas[l].chunks_exact(outputs))
        {
            *norm += (squared_norm(a) + 1.0) * squared_norm(dz);
        }
    }
}

/// The second phase of [`dense_backward_clipped`]: each row of every layer's output gradient
/// scaled by its row's factor in `scales`, then the layers' gradients written or (with
/// `accumulate`) added to `grads`.
pub(crate) fn scaled_dense_gradients(
    grads: &mut [(Vec<f32>, Vec<f32>)],
    sizes: &[usize],
    acts: &Activations,
    deltas: &mut [Vec<f32>],
    scales: &[f32],
    accumulate: bool,
    par: Parallelism,
) {
    let r = scales.len();
    for l in 0..sizes.len() - 1 {
        let outputs = sizes[l + 1];
        for (dz, &scale) in deltas[l].chunks_exact_mut(outputs).zip(scales) {
            dz.iter_mut().for_each(|v| *v *= scale);
        }
        let input = &acts.layers[l][..r * sizes[l]];
        let dims = [r, sizes[l], outputs];
        layer_gradients(
            &mut grads[l],
            input,
            &deltas[l][..r * outputs],
            dims,
            accumulate,
            par,
        );
    }
}

/// The sum of the squares of `values`, in f64.
pub(crate) fn squared_norm(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

/// The factor that clips a gradient of L2 norm `norm` to at most `clip`: `min(1, clip / norm)`.
pub(crate) fn clip_factor(norm: f64, clip: f32) -> f32 {
    if norm > f64::from(clip) {
        (f64::from(clip) / norm) as f32
    } else {
        1.0
    }
}

#[allow(clippy::too_many_arguments)] // one model's share of `train`
fn train_one(
    model: &mut HostParams,
    sizes: &[usize],
    features: &[f32],
    labels: &[u32],
    member: &Member,
    config: &TrainingConfig,
    augment: Option<([usize; 3], &Augmentation)>,
    par: Parallelism,
) -> Vec<HostParams> {
    let (d, b, last) = (sizes[0], config.batch_size, sizes.len() - 2);
    let classes = sizes[last + 1];
    let mut acts = Activations::new(sizes, b);
    let widest = sizes[1..].iter().copied().max().unwrap_or(0);
    let (mut delta, mut delta_below) = (vec![0f32; b * widest], vec![0f32; b * widest]);
    // DP-SGD: one output-gradient buffer per layer, and the rows' gradient norms.
    let mut deltas: Vec<Vec<f32>> = match config.dp {
        Some(_) => sizes[1..].iter().map(|&w| vec![0f32; b * w]).collect(),
        None => Vec::new(),
    };
    let mut norms = RowNorms::default();
    train_loop(model, member, config, |model, grads, rows, writer| {
        let Some(dp) = config.dp else {
            let r = rows.len();
            for (dst, &i) in acts.layers[0].chunks_exact_mut(d).zip(rows) {
                writer.write_sample(&features[i * d..(i + 1) * d], dst, augment);
            }
            acts.forward(&model.layers, sizes, r, par);
            cross_entropy_grad(&acts.logits, &mut delta, rows, labels, classes);
            dense_backward(
                &model.layers,
                grads,
                sizes,
                &acts,
                &mut delta,
                &mut delta_below,
                r,
                false,
                par,
            );
            return;
        };
        // A Poisson batch may exceed the batch size: its clipped gradients are summed chunk
        // by chunk.
        zero(grads);
        let clip = [dp.clip as f32, b as f32];
        for (c, chunk) in rows.chunks(b).enumerate() {
            let r = chunk.len();
            for (dst, &i) in acts.layers[0].chunks_exact_mut(d).zip(chunk) {
                writer.write_sample(&features[i * d..(i + 1) * d], dst, augment);
            }
            acts.forward(&model.layers, sizes, r, par);
            let top = &mut deltas[last];
            cross_entropy_grad_weighted(&acts.logits, top, chunk, labels, classes, 1.0);
            dense_backward_clipped(
                &model.layers,
                grads,
                sizes,
                &acts,
                &mut deltas,
                &mut norms,
                r,
                clip,
                c > 0,
                par,
            );
        }
    })
}

/// Sets every gradient to zero.
pub(crate) fn zero(grads: &mut [(Vec<f32>, Vec<f32>)]) {
    for (w, bias) in grads {
        w.fill(0.0);
        bias.fill(0.0);
    }
}

/// One model's training loop, shared by the fused kernels: for every minibatch of every epoch
/// (the member's own order and augmentation stream), `gradients(model, grads, rows, writer)`
/// writes the minibatch's gradients into `grads` (shaped like the parameters), then the
/// optimiser steps at the schedule's rate.
///
/// With DP-SGD (`config.dp`), each epoch's `ceil(n / batch_size)` minibatches are Poisson
/// samples of the member's rows instead (each row in with probability `batch_size / n`, from
/// the model's own stream), `gradients` writes the sum of the clipped per-sample gradients over
/// the batch size, and Gaussian noise of standard deviation `noise x clip / batch_size` (from
/// another stream of the model's) is added to every coordinate before the step.
///
/// Returns a copy of the parameters after each of the configuration's checkpoint epochs
/// ([`TrainingConfig::checkpoints`]; none without them), from which the caller computes the
/// training trajectory.
pub(crate) fn train_loop(
    model: &mut HostParams,
    member: &Member,
    config: &TrainingConfig,
    mut gradients: impl FnMut(&HostParams, &mut [(Vec<f32>, Vec<f32>)], &[usize], &mut SampleWriter),
) -> Vec<HostParams> {
    let checkpoints = config.checkpoints();
    let mut snapshots = Vec::with_capacity(checkpoints.len());
    let mut slots = Slots::new(&model.layers, config);
    let b = config.batch_size;
    let steps_per_epoch = member.train.len().div_ceil(b);
    let total_steps = steps_per_epoch * config.epochs;
    let mut private = config.dp.map(|dp| PrivateSteps::new(&dp, member, config));
    // The sampling rate the accountant assumes (min(batch / n, 1)), from the one definition.
    let poisson = private
        .is_some()
        .then(|| DpConfig::steps_and_rate(member.train.len(), config).1);
    let mut taken = 0usize;
    let mut batch = Vec::new();
    for epoch in 0..config.epochs {
        let (order, mut writer) = epoch_streams(member, epoch);
        let mut step = |rows: &[usize], writer: &mut SampleWriter, slots: &mut Slots| {
            gradients(model, &mut slots.grads, rows, writer);
            if let Some(private) = &mut private {
                private.add_noise(&mut slots.grads);
            }
            let rate = step_rate(config, taken, total_steps) as f32;
            taken += 1;
            slots.step(&mut model.layers, rate, taken, config);
        };
        if let Some(rate) = poisson {
            let mut sampler = stream_rng(member.seed, 3_000_000 + epoch as u64);
            for _ in 0..steps_per_epoch {
                batch.clear();
                batch.extend(
                    member
                        .train
                        .iter()
                        .filter(|_| sampler.random::<f64>() < rate),
                );
                step(&batch, &mut writer, &mut slots);
            }
        } else {
            for rows in order.chunks(b) {
                step(rows, &mut writer, &mut slots);
            }
        }
        if checkpoints.contains(&(epoch + 1)) {
            snapshots.push(model.clone());
        }
    }
    snapshots
}

/// DP-SGD's noise for one model: its standard deviation on the averaged gradient and the
/// model's own Gaussian stream.
struct PrivateSteps {
    scale: f32,
    noise: MemiaRng,
}

impl PrivateSteps {
    /// The noise of `member`'s model: `noise_multiplier x clip / batch_size`, the multiplier
    /// configured or derived from the target epsilon (checked by the ensemble before training,
    /// so it cannot fail here).
    fn new(dp: &DpConfig, member: &Member, config: &TrainingConfig) -> Self {
        let multiplier = dp
            .noise_for(member.train.len(), config)
            .unwrap_or(f64::INFINITY);
        PrivateSteps {
            scale: (multiplier * dp.clip / config.batch_size as f64) as f32,
            noise: stream_rng(member.seed, 4_000_000),
        }
    }

    fn add_noise(&mut self, grads: &mut [(Vec<f32>, Vec<f32>)]) {
        if self.scale == 0.0 {
            return;
        }
        // A local copy of the generator keeps its state in registers rather than stored
        // beside the gradients at every draw (about 2.4 ns a draw on the AVX-512 Xeon).
        let (mut rng, scale) = (self.noise.clone(), self.scale);
        for (w, bias) in grads {
            for g in w.iter_mut().chain(bias.iter_mut()) {
                *g += scale * rng.sample::<f32, _>(StandardNormal);
            }
        }
        self.noise = rng;
    }
}

/// One optimiser step on one parameter, in one pass: the L2 penalty added to the gradient,
/// then PyTorch's SGD (heavy-ball momentum, no dampening) or Adam after `taken` steps
/// (`second` is empty for SGD).
fn optimizer_step(
    param: &mut [f32],
    grad: &[f32],
    first: &mut [f32],
    second: &mut [f32],
    rate: f32,
    taken: usize,
    config: &TrainingConfig,
) {
    let decay = config.weight_decay as f32;
    let decayed = |g: f32, p: f32| if decay == 0.0 { g } else { g + p * decay };
    match config.optimizer {
        Optimizer::Sgd { momentum } => {
            let momentum = momentum as f32;
            for ((p, &g), v) in param.iter_mut().zip(grad).zip(first.iter_mut()) {
                let g = decayed(g, *p);
                *v = if momentum == 0.0 {
                    g
                } else {
                    *v * momentum + g
                };
                *p -= *v * rate;
            }
        }
        Optimizer::Adam {
            beta1,
            beta2,
            epsilon,
        } => {
            let (c1, c2) = (adam_correction(beta1, taken), adam_correction(beta2, taken));
            let (b1, b2, eps) = (beta1 as f32, beta2 as f32, epsilon as f32);
            let (keep1, keep2) = ((1.0 - beta1) as f32, (1.0 - beta2) as f32);
            for (((p, &g), m), s) in param
                .iter_mut()
                .zip(grad)
                .zip(first.iter_mut())
                .zip(second.iter_mut())
            {
                let g = decayed(g, *p);
                *m = *m * b1 + g * keep1;
                *s = *s * b2 + g * g * keep2;
                let denom = (*s / c2).sqrt() + eps;
                *p -= (*m / c1) / denom * rate;
            }
        }
    }
}

/// `dst (m x n) = [dst +] a (m x k) * b (k x n)`, all row-major; `a_t` / `b_t` say that the
/// operand is stored transposed (`k x m`, `n x k`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    dst: &mut [f32],
    accumulate: bool,
    a: &[f32],
    a_t: bool,
    b: &[f32],
    b_t: bool,
    [m, n, k]: [usize; 3],
    par: Parallelism,
) {
    // Checked products: a wrapped `m * n` would pass a short buffer in a release build.
    let holds =
        |len: usize, rows: usize, cols: usize| rows.checked_mul(cols).is_some_and(|v| v <= len);
    assert!(
        holds(dst.len(), m, n) && holds(a.len(), m, k) && holds(b.len(), k, n),
        "matmul operands too small for [m, n, k] = {:?}",
        [m, n, k]
    );
    // Strides as gemm takes them; a dimension of an empty product may exceed isize::MAX.
    let [m_s, n_s, k_s] = [m, n, k].map(|d| {
        isize::try_from(d).unwrap_or_else(|_| panic!("matmul dimension {d} exceeds isize::MAX"))
    });
    let (a_rs, a_cs) = if a_t { (1, m_s) } else { (k_s, 1) };
    let (b_rs, b_cs) = if b_t { (1, k_s) } else { (n_s, 1) };
    // SAFETY: the assertion above keeps every index the strides reach inside the slices (the
    // largest is `rows x cols - 1` of each operand, computed without wrapping), every stride is
    // a dimension that fits in isize, and `dst` does not alias `a` or `b` (a mutable and two
    // shared borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n_s,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The naive triple loop.
    fn reference(a: &[f32], b: &[f32], [m, n, k]: [usize; 3]) -> Vec<f32> {
        let mut c = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
            }
        }
        c
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols * rows)
            .map(|i| x[(i % rows) * cols + i / rows])
            .collect()
    }

    /// Dimensions whose products wrap (or whose operands are short) are refused before gemm
    /// gets a pointer: with unchecked products, `[2^32, 2^32, 2^32]` and `[2^62, 4, 4]` wrap to
    /// products of 0 (or 16) values that 16-value buffers would have passed.
    #[test]
    fn matmul_refuses_dimensions_that_overflow_or_buffers_too_short() {
        let (dst, a, b) = (vec![0f32; 16], vec![0f32; 16], vec![0f32; 16]);
        for dims in [[1 << 32, 1 << 32, 1 << 32], [1 << 62, 4, 4], [4, 4, 5]] {
            let refused = std::panic::catch_unwind(|| {
                let mut dst = dst.clone();
                matmul(
                    &mut dst,
                    false,
                    &a,
                    false,
                    &b,
                    false,
                    dims,
                    Parallelism::None,
                );
            });
            assert!(refused.is_err(), "{dims:?} accepted");
        }
        // An empty product whose other dimension exceeds isize::MAX (it would be a negative
        // stride).
        let refused = std::panic::catch_unwind(|| {
            let mut dst = dst.clone();
            matmul(
                &mut dst,
                false,
                &a,
                false,
                &b,
                false,
                [0, usize::MAX, 0],
                Parallelism::None,
            );
        });
        assert!(refused.is_err());
    }

    /// The direct DP-SGD computation for one sample: its full gradient `g` clipped to L2 norm
    /// `clip` (over every parameter), divided by `expected` and added to `sum`; whether it was
    /// clipped. The reference the fused clipped gradients are tested against.
    pub(crate) fn add_clipped(
        sum: &mut [(Vec<f32>, Vec<f32>)],
        g: &[(Vec<f32>, Vec<f32>)],
        clip: f32,
        expected: f32,
    ) -> bool {
        let norm = g
            .iter()
            .flat_map(|(w, b)| w.iter().chain(b))
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            .sqrt();
        let scale = (f64::from(clip) / norm).min(1.0) as f32 / expected;
        for ((sw, sb), (gw, gb)) in sum.iter_mut().zip(g) {
            sw.iter_mut().zip(gw).for_each(|(s, &v)| *s += v * scale);
            sb.iter_mut().zip(gb).for_each(|(s, &v)| *s += v * scale);
        }
        norm > f64::from(clip)
    }

    /// DP-SGD's clipped gradients (per-row norms from the layers' output gradients, no
    /// per-sample gradient formed) against the direct computation: each row's full gradient
    /// by its own backward pass, its norm, the clipped sum over the expected batch size. Two
    /// chunks, so that the accumulation across a large Poisson batch is covered too.
    #[test]
    fn clipped_gradients_equal_the_per_sample_computation() {
        let sizes = [5, 4, 3, 3];
        let params: Vec<(Vec<f32>, Vec<f32>)> = sizes
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                let weight = (0..w[0] * w[1])
                    .map(|i| ((i * 7 + l * 3) as f32 * 0.91).sin() * 1.3)
                    .collect();
                let bias = (0..w[1])
                    .map(|i| (i as f32 + l as f32).cos() * 0.2)
                    .collect();
                (weight, bias)
            })
            .collect();
        let r = 7;
        let features: Vec<f32> = (0..r * sizes[0])
            .map(|i| (i as f32 * 0.37).cos() * 2.0)
            .collect();
        let labels: Vec<u32> = (0..r as u32).map(|i| i % 3).collect();
        let rows: Vec<usize> = (0..r).collect();
        let zeros = || -> Vec<(Vec<f32>, Vec<f32>)> {
            params
                .iter()
                .map(|(w, b)| (vec![0f32; w.len()], vec![0f32; b.len()]))
                .collect()
        };
        let par = Parallelism::None;
        let widest = 5;
        let (clip, expected) = (0.8f32, 6.0f32);

        // Direct: one backward pass per row.
        let mut want = zeros();
        let mut clipped_rows = 0;
        for i in 0..r {
            let mut acts = Activations::new(&sizes, 1);
            acts.layers[0].copy_from_slice(&features[i * 5..(i + 1) * 5]);
            acts.forward(&params, &sizes, 1, par);
            let (mut delta, mut below) = (vec![0f32; widest], vec![0f32; widest]);
            cross_entropy_grad_weighted(&acts.logits, &mut delta, &[i], &labels, 3, 1.0);
            let mut g = zeros();
            dense_backward(
                &params, &mut g, &sizes, &acts, &mut delta, &mut below, 1, false, par,
            );
            clipped_rows += add_clipped(&mut want, &g, clip, expected) as usize;
        }
        assert!(
            clipped_rows > 0 && clipped_rows < r,
            "{clipped_rows} rows clipped: test both cases"
        );

        // Ghost norms, in chunks of 4 and 3 rows.
        let mut got = zeros();
        let mut deltas: Vec<Vec<f32>> = sizes[1..].iter().map(|&w| vec![0f32; 4 * w]).collect();
        let mut norms = RowNorms::default();
        for (c, chunk) in rows.chunks(4).enumerate() {
            let n = chunk.len();
            let mut acts = Activations::new(&sizes, 4);
            acts.layers[0][..n * 5].copy_from_slice(&features[chunk[0] * 5..(chunk[0] + n) * 5]);
            acts.forward(&params, &sizes, n, par);
            cross_entropy_grad_weighted(&acts.logits, &mut deltas[2], chunk, &labels, 3, 1.0);
            dense_backward_clipped(
                &params,
                &mut got,
                &sizes,
                &acts,
                &mut deltas,
                &mut norms,
                n,
                [clip, expected],
                c > 0,
                par,
            );
        }
        for ((ww, wb), (gw, gb)) in want.iter().zip(&got) {
            for (x, y) in ww.iter().chain(wb).zip(gw.iter().chain(gb)) {
                assert!((x - y).abs() < 1e-6, "{x} vs {y}");
            }
        }
    }

    /// DP-SGD's noise has the configured standard deviation (`noise x clip / batch`) and mean
    /// zero, on every coordinate of weights and biases.
    #[test]
    fn dp_noise_has_the_configured_scale() {
        let config = TrainingConfig {
            batch_size: 50,
            dp: Some(DpConfig::with_noise(2.0, 1.5, 1e-5)),
            ..Default::default()
        };
        let member = Member {
            seed: 9,
            train: (0..100).collect(),
        };
        let mut private = PrivateSteps::new(&config.dp.unwrap(), &member, &config);
        let mut grads = vec![(vec![0f32; 150_000], vec![0f32; 50_000])];
        private.add_noise(&mut grads);
        let values: Vec<f64> = grads[0]
            .0
            .iter()
            .chain(&grads[0].1)
            .map(|&v| v.into())
            .collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let want = 1.5 * 2.0 / 50.0;
        // The standard error of the sd is want / sqrt(2 n) = 0.16% of it; 1% is six of them.
        assert!((sd / want - 1.0).abs() < 0.01, "sd {sd} vs {want}");
        assert!(mean.abs() < 5.0 * want / n.sqrt(), "mean {mean}");
    }

    #[test]
    fn matmul_handles_transposed_operands_and_accumulation() {
        let [m, n, k] = [5, 3, 4];
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos()).collect();
        let want = reference(&a, &b, [m, n, k]);
        let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
        for (lhs, a_t, rhs, b_t) in [
            (&a, false, &b, false),
            (&at, true, &b, false),
            (&a, false, &bt, true),
            (&at, true, &bt, true),
        ] {
            // Overwritten (the NaNs must go), then accumulated onto ones.
            for (start, accumulate, offset) in [(f32::NAN, false, 0.0), (1.0, true, 1.0)] {
                let mut c = vec![start; m * n];
                let par = Parallelism::None;
                matmul(&mut c, accumulate, lhs, a_t, rhs, b_t, [m, n, k], par);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - (y + offset)).abs() < 1e-5, "{a_t} {b_t}: {x} vs {y}");
                }
            }
        }
    }
}
