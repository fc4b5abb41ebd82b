//! memia's fused CPU kernels for LeNet-style CNNs (convolution stages of "same" convolution,
//! ReLU and 2 x 2 max pooling, then dense layers), in the design of the dense ones
//! ([`crate::fused`]): one model's whole step on one core, every buffer allocated once per
//! model and reused by every step, the models of a group in parallel.
//!
//! **Convolutions computed directly, one image at a time** ([`crate::direct_conv`]). Every
//! stage's input is a zero-padded channel-planar image (`[c, h + k - 1, wv + k - 1]`), the
//! output a planar `[cout, h, wv]`; the forward pass, the weight gradient and the input gradient
//! (a forward pass of the padded output gradient with the flipped weights) are the same few
//! vector kernels, eight output pixels per vector and several channels per loaded input. Chosen
//! by measurement on this workload (docs/PERFORMANCE.md): products through `gemm` on patch
//! matrices ("im2col") spent as much time gathering the patches, packing them and scattering
//! their gradients back as in the products, and the first stage's 6 output channels fill `gemm`'s
//! tiles poorly; gathering the whole minibatch's patches (39 MB for 128 CIFAR images) made the
//! step memory-bound. Winograd's F(2x2, 5x5) saves multiplications, but at 3 to 16 channels its
//! transforms cost as much as the products. One image's convolution is too small to split across
//! cores, so it runs on one core; when the group has fewer models than cores (a model alone),
//! the minibatch's images are split across the cores instead, with the same bits (see
//! [`train_one`]), and the dense layers' minibatch products go through `gemm`, split as in the
//! dense kernels.
//!
//! **ReLU and pooling** are one pass: the maximum of each 2 x 2 window of the convolution's
//! output plus the bias (floor for odd sizes, as Burn's and PyTorch's pooling), clamped at zero,
//! written into the interior of the next stage's padded input; the position of the maximum is
//! kept for the backward pass, or [`CLAMPED`] where the output was clamped (no gradient). The
//! last stage writes its planar output, which is the channel-major order (`c, y, x`) Burn's
//! engine flattens to, so the dense layers' weights mean the same in both engines. Weights stay
//! in Burn's order throughout.
//!
//! The formulas are Burn's engine's (same initial weights, minibatch orders, augmentation
//! streams, schedule and optimiser); the tests compare the two engines, and a model trained in
//! a group against the same model trained alone, bit for bit.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::augment::Augmentation;
use crate::config::{Member, TrainingConfig};
use crate::direct_conv::{self, Planar};
use crate::error::{Result, architecture};
use crate::fused::{
    Activations, RowNorms, add, clip_factor, cross_entropy_grad, cross_entropy_grad_weighted,
    dense_backward, dense_squared_norms, on_each, predict_each, scaled_dense_gradients,
    squared_norm, threads, train_each, train_loop, weight_buffers, zero,
};
use crate::network::{Conv, Role};
use crate::params::HostParams;

/// Pooled values per channel of a stage.
fn pooled(st: &Planar) -> usize {
    (st.h() / 2) * (st.w() / 2)
}

/// A LeNet-style network as the kernels run it: its convolution stages' geometry (input
/// first) and its dense layer sizes (the flattened last stage first, the classes last). A
/// model's parameters are a [`HostParams`] whose first layers are the stages' (weights
/// `[cout, cin, k, k]` as Burn's, bias `cout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cnn {
    stages: Vec<Planar>,
    dense: Vec<usize>,
}

impl Cnn {
    /// The network of the LeNet-style `convs` (from [`crate::network::Network::convs`]) and
    /// `dense` sizes, checked where the kernels' unchecked indexing relies on it: every
    /// stage's geometry ([`Planar::same`]), each stage's pooled output the next one's input,
    /// the last one's the dense input, and every convolution output small enough for the `u32`
    /// positions of its pooling.
    pub(crate) fn new(convs: &[Conv], dense: &[usize]) -> Result<Cnn> {
        let stages = convs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if (c.role(), c.stride()) != (Role::Pooled, 1) {
                    return Err(architecture(format!(
                        "CNN stage {i} is not a pooled convolution of stride 1"
                    )));
                }
                let [h, w] = c.input();
                Planar::same(c.cin(), c.cout(), c.kernel(), h, w)
                    .map_err(|e| architecture(format!("CNN stage {i}: convolution geometry: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let Some(last) = stages.last() else {
            return Err(architecture("a CNN needs at least one convolution stage"));
        };
        for (i, pair) in stages.windows(2).enumerate() {
            let (st, next) = (&pair[0], &pair[1]);
            if (next.cin(), next.h(), next.w()) != (st.cout(), st.h() / 2, st.w() / 2) {
                return Err(architecture(format!(
                    "CNN stage {} reads {} x {} x {} inputs, stage {i} pools to {} x {} x {}",
                    i + 1,
                    next.cin(),
                    next.h(),
                    next.w(),
                    st.cout(),
                    st.h() / 2,
                    st.w() / 2
                )));
            }
        }
        if let Some(st) = stages.iter().find(|st| st.out_len() >= CLAMPED as usize) {
            return Err(architecture(format!(
                "a CNN stage's output of {} values is too large for its pooling",
                st.out_len()
            )));
        }
        let flat = last.cout() * pooled(last);
        if dense.len() < 2 || dense[0] != flat {
            return Err(architecture(format!(
                "CNN dense layers {dense:?}: expected {flat} inputs (the last stage's pooled \
                 output) and at least one layer"
            )));
        }
        Ok(Cnn {
            stages,
            dense: dense.to_vec(),
        })
    }

    fn inputs(&self) -> usize {
        let s = self.stages[0];
        s.cin() * s.h() * s.w()
    }

    fn classes(&self) -> usize {
        self.dense[self.dense.len() - 1]
    }
}

/// Trains every model on its member's rows of `features` (n x C H W, row-major).
pub(crate) fn train(
    models: &mut [HostParams],
    shape: &Cnn,
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
pub(crate) fn predict(models: &[HostParams], shape: &Cnn, features: &[f32]) -> Vec<f32> {
    let (d, classes) = (shape.inputs(), shape.classes());
    let n = features.len() / d;
    const CHUNK: usize = 256;
    predict_each(models, n, classes, |model, out, par| {
        let mut net = Buffers::new(shape, CHUNK.min(n));
        let mut work: Vec<ImageWork> = (0..threads(par))
            .map(|_| ImageWork::new(shape, model))
            .collect();
        for (rows, dst) in features
            .chunks(CHUNK * d)
            .zip(out.chunks_mut(CHUNK * classes))
        {
            let r = rows.len() / d;
            for (sample, src) in rows.chunks_exact(d).enumerate() {
                net.put_sample(shape, sample, src);
            }
            net.forward(model, shape, r, par, &mut work);
            dst.copy_from_slice(&net.dense.logits[..r * classes]);
        }
    })
}

/// Marks a pooled output clamped at zero by ReLU: no gradient flows back through it.
const CLAMPED: u32 = u32::MAX;

/// One model's buffers for a minibatch of up to `b` samples.
struct Buffers {
    /// Each stage's padded planar input images, `b` x [`Planar::image_len`] (the first
    /// stage's written by [`Buffers::put_sample`], the others by the previous stage's pooling;
    /// the borders stay zero).
    input: Vec<Vec<f32>>,
    /// Each stage's pooling, `[b, cout, h/2, w/2]`: the index in its image's convolution output
    /// of each window's maximum, or [`CLAMPED`].
    argmax: Vec<Vec<u32>>,
    /// The dense layers' activations (`layers[0]`: the flattened last stage).
    dense: Activations,
}

/// One image's share of the minibatch's buffers: each stage's input image and pooling, and its
/// row of the dense input.
struct ImageSlices<'a> {
    input: Vec<&'a mut [f32]>,
    argmax: Vec<&'a mut [u32]>,
    flat: &'a mut [f32],
}

impl Buffers {
    fn new(shape: &Cnn, b: usize) -> Self {
        let stages = &shape.stages;
        Buffers {
            input: stages
                .iter()
                .map(|s| vec![0f32; b * s.image_len()])
                .collect(),
            argmax: stages
                .iter()
                .map(|s| vec![0u32; b * pooled(s) * s.cout()])
                .collect(),
            dense: Activations::new(&shape.dense, b),
        }
    }

    /// Writes one sample (channel-major `[c, h, w]`) as image `sample` of the first stage's
    /// input.
    fn put_sample(&mut self, shape: &Cnn, sample: usize, src: &[f32]) {
        let first = shape.stages[0];
        let len = first.image_len();
        first.put(src, &mut self.input[0][sample * len..(sample + 1) * len]);
    }

    /// The first `r` images' shares of the buffers.
    fn images(&mut self, shape: &Cnn, r: usize) -> Vec<ImageSlices<'_>> {
        let stages = &shape.stages;
        let mut input: Vec<_> = self
            .input
            .iter_mut()
            .zip(stages)
            .map(|(v, st)| v.chunks_mut(st.image_len()))
            .collect();
        let mut argmax: Vec<_> = self
            .argmax
            .iter_mut()
            .zip(stages)
            .map(|(v, st)| v.chunks_mut(pooled(st) * st.cout()))
            .collect();
        let mut flat = self.dense.layers[0].chunks_mut(shape.dense[0]);
        // Each buffer holds `b >= r` images.
        let hold = "the buffers hold the minibatch";
        (0..r)
            .map(|_| ImageSlices {
                input: input.iter_mut().map(|c| c.next().expect(hold)).collect(),
                argmax: argmax.iter_mut().map(|c| c.next().expect(hold)).collect(),
                flat: flat.next().expect(hold),
            })
            .collect()
    }

    /// Forward pass of the first `r` images of the first stage's input: the convolutions image
    /// by image (split across `work`'s threads, each with its own scratch; each image's values
    /// are its own, so the split changes no bit), then the dense layers on the minibatch.
    fn forward(
        &mut self,
        model: &HostParams,
        shape: &Cnn,
        r: usize,
        par: Parallelism,
        work: &mut [ImageWork],
    ) {
        let mut images = self.images(shape, r);
        let share = r.div_ceil(work.len()).max(1);
        let convolve = |(images, work): (&mut [ImageSlices], &mut ImageWork)| {
            for image in images {
                convolve_image(model, shape, image, &mut work.conv);
            }
        };
        match work {
            [one] => convolve((&mut images, one)),
            _ => images
                .par_chunks_mut(share)
                .zip(work.par_iter_mut())
                .for_each(convolve),
        }
        let stages = shape.stages.len();
        self.dense
            .forward(&model.layers[stages..], &shape.dense, r, par);
    }
}

/// The convolution stages of one image, through `conv` (each stage's output scratch).
fn convolve_image(model: &HostParams, shape: &Cnn, image: &mut ImageSlices, conv: &mut [Vec<f32>]) {
    let stages = &shape.stages;
    for (si, st) in stages.iter().enumerate() {
        let (weight, bias) = &model.layers[si];
        let (this, after) = image.input.split_at_mut(si + 1);
        let conv = &mut conv[si];
        direct_conv::forward(st, this[si], weight, conv);
        let argmax = &mut image.argmax[si];
        match stages.get(si + 1) {
            Some(next) => {
                let rows = next.rows();
                pool(conv, st, bias, argmax, after[0], |c, y| rows.interior(c, y));
            }
            None => {
                let pw = st.w() / 2;
                pool(conv, st, bias, argmax, image.flat, |c, y| {
                    (c * (st.h() / 2) + y) * pw
                });
            }
        }
    }
}

/// One thread's working memory for one image at a time: per stage the convolution's output,
/// its gradient, the same padded (the input of the transposed convolution), the input gradient
/// (`[cin, h, wv]`), and the image's own weight gradient; the image's place in the minibatch.
struct ImageWork {
    conv: Vec<Vec<f32>>,
    d_conv: Vec<Vec<f32>>,
    d_padded: Vec<Vec<f32>>,
    d_input: Vec<Vec<f32>>,
    own: Vec<Vec<f32>>,
    n: usize,
}

impl ImageWork {
    fn new(shape: &Cnn, model: &HostParams) -> Self {
        let stages = &shape.stages;
        let per_stage = |len: &dyn Fn(&Planar) -> usize| -> Vec<Vec<f32>> {
            stages.iter().map(|s| vec![0f32; len(s)]).collect()
        };
        ImageWork {
            conv: per_stage(&|s| s.out_len()),
            d_conv: per_stage(&|s| s.out_len()),
            d_padded: per_stage(&|s| s.transposed().image_len()),
            d_input: per_stage(&|s| s.transposed().out_len()),
            own: weight_buffers(&model.layers[..stages.len()]),
            n: 0,
        }
    }
}

/// Bias, ReLU and 2 x 2 max pooling of one image's convolution output `conv` (planar `[c, h,
/// wv]`): output `(c, y, x)` is written at `out[row(c, y) + x]` as `max(0, max(window) + bias)`,
/// and `argmax` (`[c, h/2, w/2]`) gets the index in `conv` of the window's maximum (the first of
/// equal ones, in the order top left, top right, bottom left, bottom right) or [`CLAMPED`]. The
/// bias is the same for a window's four values, so it is added to the maximum.
fn pool(
    conv: &[f32],
    st: &Planar,
    bias: &[f32],
    argmax: &mut [u32],
    out: &mut [f32],
    row: impl Fn(usize, usize) -> usize,
) {
    let (wv, ph, pw) = (st.wv(), st.h() / 2, st.w() / 2);
    for (ch, &bias) in bias.iter().enumerate() {
        for y in 0..ph {
            let top = (ch * st.h() + 2 * y) * wv;
            let upper = conv[top..top + 2 * pw].chunks_exact(2);
            let lower = conv[top + wv..top + wv + 2 * pw].chunks_exact(2);
            let at = row(ch, y);
            let arg = (ch * ph + y) * pw;
            for (x, ((v, i), (t, b))) in out[at..at + pw]
                .iter_mut()
                .zip(&mut argmax[arg..arg + pw])
                .zip(upper.zip(lower))
                .enumerate()
            {
                let first = (top + 2 * x) as u32;
                let offsets = [first, first + 1, first + wv as u32, first + wv as u32 + 1];
                (*v, *i) = window_max([t[0], t[1], b[0], b[1]], offsets, bias);
            }
        }
    }
}

/// `(max(0, max(values) + bias), the index of the first maximum or CLAMPED)`, without branches.
#[inline(always)]
fn window_max(values: [f32; 4], at: [u32; 4], bias: f32) -> (f32, u32) {
    let (mut best, mut arg) = (values[0], at[0]);
    for (&v, &i) in values[1..].iter().zip(&at[1..]) {
        let take = v > best;
        best = if take { v } else { best };
        arg = if take { i } else { arg };
    }
    let out = best + bias;
    (out.max(0.0), if out > 0.0 { arg } else { CLAMPED })
}

/// One model's training. **Images split across threads, the same bits.** The convolutions'
/// backward pass runs image by image, the images of the minibatch in rounds across the threads;
/// each image's weight gradient goes into its own zeroed buffer (the image's only addition to
/// each weight) and is added to the minibatch's in image order, and the biases' gradients (sums
/// over every pixel) are then summed in the single-thread order from what each image left, so a
/// model trained alone on every core is bit-identical to the same model trained in a group on
/// one (tested).
#[allow(clippy::too_many_arguments)] // one model's share of `train`
fn train_one(
    model: &mut HostParams,
    shape: &Cnn,
    features: &[f32],
    labels: &[u32],
    member: &Member,
    config: &TrainingConfig,
    augment: Option<([usize; 3], &Augmentation)>,
    par: Parallelism,
) -> Vec<HostParams> {
    let (d, b) = (shape.inputs(), config.batch_size);
    let mut step = CnnStep::new(shape, model, b, threads(par), config.dp.is_some());
    let mut sample = vec![0f32; d];
    train_loop(model, member, config, |model, grads, rows, writer| {
        let mut write = |rows: &[usize], net: &mut Buffers| {
            for (n, &i) in rows.iter().enumerate() {
                writer.write_sample(&features[i * d..(i + 1) * d], &mut sample, augment);
                net.put_sample(shape, n, &sample);
            }
        };
        // The transposed convolutions' weights, once per step (a DP batch's chunks share them).
        step.flip(model, shape);
        let Some(dp) = config.dp else {
            write(rows, &mut step.net);
            step.plain(model, shape, grads, rows, labels, par);
            return;
        };
        // A Poisson batch may exceed the batch size: its clipped gradients are summed chunk
        // by chunk.
        zero(grads);
        for (c, chunk) in rows.chunks(b).enumerate() {
            write(chunk, &mut step.net);
            let clip = [dp.clip as f32, b as f32];
            step.clipped(model, shape, grads, chunk, labels, clip, c > 0, par);
        }
    })
}

/// One CNN's buffers for its steps, allocated once: the minibatch's, the dense layers'
/// gradients, each thread's image work, the flipped weights (the transposed convolutions'), and
/// DP-SGD's.
struct CnnStep {
    net: Buffers,
    delta: Vec<f32>,
    delta_below: Vec<f32>,
    work: Vec<ImageWork>,
    flipped: Vec<Vec<f32>>,
    private: Option<PrivateBuffers>,
}

/// DP-SGD's buffers of one CNN: the dense layers' per-row output gradients, the rows' squared
/// norms and factors, and one image's bias gradients per stage.
struct PrivateBuffers {
    deltas: Vec<Vec<f32>>,
    rows: RowNorms,
    bias: Vec<Vec<f32>>,
}

impl CnnStep {
    /// Buffers for minibatches of up to `b` samples, images split across `threads`.
    fn new(shape: &Cnn, model: &HostParams, b: usize, threads: usize, dp: bool) -> Self {
        let stages = &shape.stages;
        let widest = shape.dense.iter().copied().max().unwrap_or(0);
        CnnStep {
            net: Buffers::new(shape, b),
            delta: vec![0f32; b * widest],
            delta_below: vec![0f32; b * widest],
            work: (0..threads).map(|_| ImageWork::new(shape, model)).collect(),
            flipped: weight_buffers(&model.layers[..stages.len()]),
            private: dp.then(|| PrivateBuffers {
                deltas: shape.dense[1..]
                    .iter()
                    .map(|&w| vec![0f32; b * w])
                    .collect(),
                rows: RowNorms::default(),
                bias: stages.iter().map(|st| vec![0f32; st.cout()]).collect(),
            }),
        }
    }

    /// Flips `model`'s convolution weights for the backward pass's transposed convolutions:
    /// once per step, before [`CnnStep::plain`] or the chunks' [`CnnStep::clipped`].
    fn flip(&mut self, model: &HostParams, shape: &Cnn) {
        for (st, ((w, _), f)) in shape
            .stages
            .iter()
            .zip(model.layers.iter().zip(self.flipped.iter_mut()))
        {
            direct_conv::flip_weights(st, w, f);
        }
    }

    /// The mean cross-entropy gradient of the minibatch `rows` (its samples written into the
    /// first stage's input) into `grads` (the weights flipped by [`CnnStep::flip`] first).
    fn plain(
        &mut self,
        model: &HostParams,
        shape: &Cnn,
        grads: &mut [(Vec<f32>, Vec<f32>)],
        rows: &[usize],
        labels: &[u32],
        par: Parallelism,
    ) {
        let (r, stages) = (rows.len(), &shape.stages);
        let CnnStep {
            net,
            delta,
            delta_below,
            work,
            flipped,
            ..
        } = self;
        net.forward(model, shape, r, par, work);
        cross_entropy_grad(&net.dense.logits, delta, rows, labels, shape.classes());
        let dense_params = &model.layers[stages.len()..];
        let (conv_grads, dense_grads) = grads.split_at_mut(stages.len());
        dense_backward(
            dense_params,
            dense_grads,
            &shape.dense,
            &net.dense,
            delta,
            delta_below,
            r,
            true,
            par,
        );
        zero(conv_grads);
        let net = &*net;
        backward_images(shape, net, flipped, delta, work, r, |w| {
            for (si, (gw, gb)) in conv_grads.iter_mut().enumerate() {
                add(gw, &w.own[si]);
                // The bias gradient: the pooled output's gradient where the output was
                // positive, channel by channel, in the single-thread order.
                unpooled(shape, si, net, delta, w, |ch, _, g| gb[ch] += g);
            }
        });
    }

    /// DP-SGD: adds the clipped gradients of the samples `chunk` (written into the first
    /// stage's input) over the expected batch size to `grads` (`clip`: the clipping norm and
    /// the expected batch; `accumulate`: a later chunk of the batch, else the dense layers'
    /// gradients are overwritten and the caller has zeroed the convolutions'; the weights
    /// flipped by [`CnnStep::flip`] first). Each image's
    /// gradient norm is its dense layers' (from their output gradients, as
    /// [`crate::fused::dense_backward_clipped`]) and its convolutions' (their weight gradients,
    /// which the backward pass forms image by image anyway, and their bias gradients); each
    /// image's convolution gradients are added scaled by its factor, in image order, and the
    /// dense layers' are the products of the scaled output gradients.
    #[allow(clippy::too_many_arguments)] // one step's settings
    fn clipped(
        &mut self,
        model: &HostParams,
        shape: &Cnn,
        grads: &mut [(Vec<f32>, Vec<f32>)],
        chunk: &[usize],
        labels: &[u32],
        [clip, expected]: [f32; 2],
        accumulate: bool,
        par: Parallelism,
    ) {
        let (r, stages) = (chunk.len(), &shape.stages);
        let CnnStep {
            net,
            delta: d_flat,
            work,
            flipped,
            private,
            ..
        } = self;
        let private = private
            .as_mut()
            .expect("DP buffers are made for DP training");
        net.forward(model, shape, r, par, work);
        let top = shape.dense.len() - 2;
        let logits = &net.dense.logits;
        cross_entropy_grad_weighted(
            logits,
            &mut private.deltas[top],
            chunk,
            labels,
            shape.classes(),
            1.0,
        );
        let dense_params = &model.layers[stages.len()..];
        let (conv_grads, dense_grads) = grads.split_at_mut(stages.len());
        dense_squared_norms(
            dense_params,
            &shape.dense,
            &net.dense,
            &mut private.deltas,
            &mut private.rows.squared,
            Some(&mut d_flat[..]),
            r,
            par,
        );
        private.rows.scales.clear();
        private.rows.scales.resize(r, 0.0);
        let net = &*net;
        let d_flat = &d_flat[..];
        backward_images(shape, net, flipped, d_flat, work, r, |w| {
            let mut squared = private.rows.squared[w.n];
            for (si, bias) in private.bias.iter_mut().enumerate() {
                bias.fill(0.0);
                unpooled(shape, si, net, d_flat, w, |ch, _, g| bias[ch] += g);
                squared += squared_norm(&w.own[si]) + squared_norm(bias);
            }
            let scale = clip_factor(squared.sqrt(), clip) / expected;
            private.rows.scales[w.n] = scale;
            let own = w.own.iter().zip(&private.bias);
            for ((gw, gb), (own, bias)) in conv_grads.iter_mut().zip(own) {
                gw.iter_mut().zip(own).for_each(|(s, &v)| *s += v * scale);
                gb.iter_mut().zip(bias).for_each(|(s, &v)| *s += v * scale);
            }
        });
        scaled_dense_gradients(
            dense_grads,
            &shape.dense,
            &net.dense,
            &mut private.deltas,
            &private.rows.scales,
            accumulate,
            par,
        );
    }
}

/// The convolutions' backward pass of the first `r` images (the dense input's gradient in
/// `d_flat`), in rounds of one image per thread of `work`, then `each(work)` for every image in
/// image order: what the image's own gradients are added to the minibatch's by.
fn backward_images(
    shape: &Cnn,
    net: &Buffers,
    flipped: &[Vec<f32>],
    d_flat: &[f32],
    work: &mut [ImageWork],
    r: usize,
    mut each: impl FnMut(&ImageWork),
) {
    let threads = work.len();
    for first in (0..r).step_by(threads) {
        let busy = &mut work[..threads.min(r - first)];
        for (n, w) in busy.iter_mut().enumerate() {
            w.n = first + n;
        }
        on_each(busy, |w| backward_image(shape, net, flipped, d_flat, w));
        busy.iter().for_each(&mut each);
    }
}

/// Calls `each(channel, at, g)` for every pooled output of stage `si` of `w`'s image whose
/// output was positive, in the order `(channel, y, x)`: `g` its gradient, `at` the index of its
/// window's maximum in the stage's convolution output. The gradient of the pooled output comes
/// by rows `(c, y)`: the dense input's (channel-major) after the last stage, else the next
/// stage's input gradient (planar with rows of the next stage's `wv`).
fn unpooled(
    shape: &Cnn,
    si: usize,
    net: &Buffers,
    delta: &[f32],
    w: &ImageWork,
    mut each: impl FnMut(usize, usize, f32),
) {
    let st = &shape.stages[si];
    let (ph, pw) = (st.h() / 2, st.w() / 2);
    let pp = pooled(st) * st.cout();
    let argmax = &net.argmax[si][w.n * pp..(w.n + 1) * pp];
    let flat = shape.dense[0];
    let (d_out, stride) = match shape.stages.get(si + 1) {
        None => (&delta[w.n * flat..(w.n + 1) * flat], pw),
        Some(next) => (&w.d_input[si + 1][..], next.input_wv()),
    };
    for ch in 0..st.cout() {
        for y in 0..ph {
            let g = &d_out[(ch * ph + y) * stride..][..pw];
            let arg = &argmax[(ch * ph + y) * pw..][..pw];
            for (&g, &at) in g.iter().zip(arg) {
                if at != CLAMPED {
                    each(ch, at as usize, g);
                }
            }
        }
    }
}

/// The convolutions' backward pass for `w`'s image, last stage first: each stage's output
/// gradient through pooling and ReLU (to each window's maximum, where the output was
/// positive), its weight gradient into `w.own` and, below the first stage, its input gradient.
fn backward_image(
    shape: &Cnn,
    net: &Buffers,
    flipped: &[Vec<f32>],
    delta: &[f32],
    w: &mut ImageWork,
) {
    let n = w.n;
    for (si, st) in shape.stages.iter().enumerate().rev() {
        // Taken out of `w` while `unpooled` reads it (no allocation).
        let mut dz = std::mem::take(&mut w.d_conv[si]);
        dz.fill(0.0);
        unpooled(shape, si, net, delta, w, |_, at, g| dz[at] += g);
        let len = st.image_len();
        let image = &net.input[si][n * len..(n + 1) * len];
        let own = &mut w.own[si];
        own.fill(0.0);
        direct_conv::weight_grad(st, image, &dz, own);
        if si > 0 {
            direct_conv::input_grad(
                st,
                &dz,
                &flipped[si],
                &mut w.d_padded[si],
                &mut w.d_input[si],
            );
        }
        w.d_conv[si] = dz;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ModelError;

    /// A pooled "same" convolution of `cin` -> `cout` channels, kernel `k`, on `h x w` inputs.
    fn stage(cin: usize, cout: usize, k: usize, h: usize, w: usize) -> Conv {
        Conv::new((cin, cout), k, 1, [h, w], Role::Pooled)
    }

    fn refused(stages: &[Conv], dense: &[usize], why: &str) {
        match Cnn::new(stages, dense) {
            Err(ModelError::Architecture { reason }) => {
                assert!(reason.contains(why), "{reason} (expected {why:?})")
            }
            other => panic!("{stages:?} {dense:?} accepted: {other:?}"),
        }
    }

    /// DP-SGD's clipped CNN gradients against the direct computation: each image's full
    /// gradient from its own ordinary step (a minibatch of one), its norm over every
    /// convolution and dense parameter, the clipped sum over the expected batch size. In
    /// chunks of 3 and 2 images, with the images on one thread and split across two.
    #[test]
    fn clipped_cnn_gradients_equal_the_per_sample_computation() {
        let config: crate::ModelConfig = crate::CnnConfig {
            channels: vec![2, 3],
            kernel: 3,
            hidden: vec![5],
        }
        .into();
        let network = crate::network::Network::new(&config, &[1, 8, 8], 3).unwrap();
        let model = HostParams::init(&network, 7).unwrap();
        let shape = Cnn::new(network.convs(), network.dense_sizes()).unwrap();
        let (d, r) = (64, 5);
        let features: Vec<f32> = (0..r * d)
            .map(|i| ((i * 7919 % 97) as f32 / 97.0 - 0.3) * 3.0)
            .collect();
        let labels = [0u32, 1, 2, 1, 0];
        let zeros = || -> Vec<(Vec<f32>, Vec<f32>)> {
            model
                .layers
                .iter()
                .map(|(w, b)| (vec![0f32; w.len()], vec![0f32; b.len()]))
                .collect()
        };
        // Norms here are 0.71 to 0.90: some images are clipped, some not.
        let (clip, expected) = (0.8f32, 4.0f32);
        let mut want = zeros();
        let mut clipped_images = 0;
        for i in 0..r {
            let mut step = CnnStep::new(&shape, &model, 1, 1, false);
            step.net
                .put_sample(&shape, 0, &features[i * d..(i + 1) * d]);
            let mut g = zeros();
            step.flip(&model, &shape);
            step.plain(&model, &shape, &mut g, &[i], &labels, Parallelism::None);
            clipped_images +=
                crate::fused::tests::add_clipped(&mut want, &g, clip, expected) as usize;
        }
        assert!(
            clipped_images > 0 && clipped_images < r,
            "{clipped_images} images clipped: test both"
        );
        let rows: Vec<usize> = (0..r).collect();
        for (threads, par) in [(1, Parallelism::None), (2, Parallelism::Rayon(2))] {
            let mut step = CnnStep::new(&shape, &model, 3, threads, true);
            step.flip(&model, &shape);
            let mut got = zeros();
            for (c, chunk) in rows.chunks(3).enumerate() {
                for (n, &i) in chunk.iter().enumerate() {
                    step.net
                        .put_sample(&shape, n, &features[i * d..(i + 1) * d]);
                }
                step.clipped(
                    &model,
                    &shape,
                    &mut got,
                    chunk,
                    &labels,
                    [clip, expected],
                    c > 0,
                    par,
                );
            }
            for ((ww, wb), (gw, gb)) in want.iter().zip(&got) {
                for (x, y) in ww.iter().chain(wb).zip(gw.iter().chain(gb)) {
                    assert!(
                        (x - y).abs() <= 1e-6 + 1e-5 * x.abs(),
                        "{threads} threads: {x} vs {y}"
                    );
                }
            }
        }
    }

    /// The networks the ensemble builds are accepted; a stage's bad geometry, stages that do
    /// not chain, or dense layers that do not read the last stage are refused before any
    /// buffer is sized from them.
    #[test]
    fn bad_cnn_shapes_are_refused() {
        let good = [stage(3, 6, 5, 32, 32), stage(6, 16, 5, 16, 16)];
        let cnn = Cnn::new(&good, &[16 * 8 * 8, 120, 10]).unwrap();
        assert_eq!((cnn.inputs(), cnn.classes()), (3 * 32 * 32, 10));
        let lenet = crate::CnnConfig::lenet().into();
        let net = crate::network::Network::new(&lenet, &[3, 32, 32], 10).unwrap();
        assert!(Cnn::new(net.convs(), net.dense_sizes()).is_ok());
        refused(&[stage(3, 6, 4, 32, 32)], &[6 * 16 * 16, 10], "even");
        refused(&[stage(3, 6, 5, 0, 32)], &[0, 10], "zero");
        refused(&[stage(1 << 50, 6, 5, 1 << 12, 32)], &[6, 10], "too large");
        refused(&[], &[10, 10], "at least one");
        let strided = Conv::new((3, 6), 5, 2, [32, 32], Role::Pooled);
        refused(&[strided], &[6 * 8 * 8, 10], "stride 1");
        // Stage 1 reads 5 channels or a 15-row image where stage 0 pools to 6 x 16 x 16.
        for next in [stage(5, 16, 5, 16, 16), stage(6, 16, 5, 15, 16)] {
            refused(&[good[0], next], &[1024, 10], "pools to");
        }
        refused(&good, &[16 * 8 * 8 + 1, 10], "expected 1024 inputs");
        refused(&good, &[16 * 8 * 8], "at least one layer");
    }
}
