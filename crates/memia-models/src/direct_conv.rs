//! The first convolution of a CNN computed directly on channel-planar images, without a patch
//! matrix.
//!
//! The first stage has few input channels (3 for colour images), so its patch matrix is long and
//! narrow (75 columns per pixel for a 5 x 5 kernel) and gathering it cost about as much as the
//! product it feeds (see docs/PERFORMANCE.md). Here the image is kept as the sample arrives,
//! channel-planar (`[c, h, w]`), zero-padded by `k / 2` on every side, and each output row is a
//! sum over `(channel, dy, dx)` of a weight times the input row shifted by `dx`: eight output
//! pixels per vector, several output channels per loaded input vector. Rows are computed over a
//! width rounded up to a multiple of 8 (`wv`); the extra columns are never read by pooling and
//! get a zero gradient, so they do not enter the weight gradient.
//!
//! With AVX2 and FMA (checked at run time) the kernels use them; elsewhere a portable version
//! sums the same terms in the same order per output value, with separate multiply and add.
//! Either way a model's arithmetic does not depend on the other models of its group.
//!
//! Weights are in Burn's order, `[out, in, dy, dx]`, so the first stage needs no reordering.

/// The geometry of a first-stage convolution ("same" padding, stride 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planar {
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub h: usize,
    pub w: usize,
}

impl Planar {
    fn pad(&self) -> usize {
        self.k / 2
    }

    /// Output row width: `w` rounded up to whole vectors of 8.
    pub fn wv(&self) -> usize {
        self.w.div_ceil(8) * 8
    }

    /// Padded input row width: every vector load of a row stays inside it.
    fn wp(&self) -> usize {
        self.wv() + 2 * self.pad()
    }

    /// Padded input rows per channel.
    fn hp(&self) -> usize {
        self.h + 2 * self.pad()
    }

    /// Values of one padded input image.
    pub fn image_len(&self) -> usize {
        self.cin * self.hp() * self.wp()
    }

    /// Values of one output image (`[cout, h, wv]`).
    pub fn out_len(&self) -> usize {
        self.cout * self.h * self.wv()
    }

    fn weights_per_output(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// Where row `y` of channel `c`'s interior starts in a padded image.
    pub fn interior(&self, c: usize, y: usize) -> usize {
        let p = self.pad();
        (c * self.hp() + y + p) * self.wp() + p
    }

    /// The convolution that takes gradients back from the outputs to the inputs: `cout` input
    /// channels, `cin` outputs, the same size and kernel (see [`flip_weights`]).
    pub fn transposed(&self) -> Planar {
        Planar {
            cin: self.cout,
            cout: self.cin,
            ..*self
        }
    }

    /// Writes a channel-major sample (`[cin, h, w]`) into the interior of a padded image whose
    /// border is zero (and stays zero: only the interior is written).
    pub fn put(&self, src: &[f32], dst: &mut [f32]) {
        let (h, w, p, hp, wp) = (self.h, self.w, self.pad(), self.hp(), self.wp());
        for c in 0..self.cin {
            for y in 0..h {
                let at = (c * hp + y + p) * wp + p;
                dst[at..at + w].copy_from_slice(&src[(c * h + y) * w..(c * h + y + 1) * w]);
            }
        }
    }

    /// Asserts the lengths the kernels rely on (`out` is not checked when empty).
    fn check(&self, image: &[f32], weights: &[f32], out: &[f32]) {
        assert!(
            image.len() >= self.image_len()
                && weights.len() >= self.cout * self.weights_per_output()
                && (out.is_empty() || out.len() >= self.out_len()),
            "direct convolution: buffers too short for {self:?}"
        );
    }
}

/// `out[o, y, x] = sum over (c, dy, dx) of weights[o, c, dy, dx] * image[c, y + dy, x + dx]`
/// (padded coordinates), without bias: `out` is `[cout, h, wv]`.
pub(crate) fn forward(g: &Planar, image: &[f32], weights: &[f32], out: &mut [f32]) {
    g.check(image, weights, out);
    #[cfg(target_arch = "x86_64")]
    if fma_available() {
        // SAFETY: the CPU has AVX2 and FMA; the lengths were checked above.
        unsafe { x86::forward(g, image, weights, out) };
        return;
    }
    portable_forward(g, image, weights, out);
}

/// Adds `sum over (y, x) of dz[o, y, x] * image[c, y + dy, x + dx]` to `grad[o, c, dy, dx]`:
/// the weight gradient of [`forward`] for one image, `dz` being a padded image of the
/// [`Planar::transposed`] convolution (`cout` channels; zero outside the interior's `h x w`).
pub(crate) fn weight_grad(g: &Planar, image: &[f32], dz: &[f32], grad: &mut [f32]) {
    g.check(image, grad, &[]);
    assert!(
        dz.len() >= g.transposed().image_len(),
        "direct convolution: gradient too short for {g:?}"
    );
    #[cfg(target_arch = "x86_64")]
    if fma_available() {
        // SAFETY: the CPU has AVX2 and FMA; the lengths were checked above.
        unsafe { x86::weight_grad(g, image, dz, grad) };
        return;
    }
    portable_weight_grad(g, image, dz, grad);
}

/// Writes the weights of [`Planar::transposed`] for `weights` of `g` (`[cout, cin, k, k]`):
/// `flipped[c, o, k - 1 - dy, k - 1 - dx] = weights[o, c, dy, dx]`, so that [`forward`] of an
/// output gradient (padded) with `flipped` is the input gradient.
pub(crate) fn flip_weights(g: &Planar, weights: &[f32], flipped: &mut [f32]) {
    let (k, per) = (g.k, g.weights_per_output());
    let per_flipped = g.cout * k * k;
    for o in 0..g.cout {
        for c in 0..g.cin {
            for dy in 0..k {
                for dx in 0..k {
                    flipped[c * per_flipped + (o * k + k - 1 - dy) * k + k - 1 - dx] =
                        weights[o * per + (c * k + dy) * k + dx];
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn fma_available() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

fn portable_forward(g: &Planar, image: &[f32], weights: &[f32], out: &mut [f32]) {
    let (k, h, wv, wp, hp, per) = (g.k, g.h, g.wv(), g.wp(), g.hp(), g.weights_per_output());
    for o in 0..g.cout {
        for y in 0..h {
            let dst = &mut out[(o * h + y) * wv..(o * h + y + 1) * wv];
            dst.fill(0.0);
            for c in 0..g.cin {
                for dy in 0..k {
                    let row = &image[(c * hp + y + dy) * wp..];
                    for dx in 0..k {
                        let wgt = weights[o * per + (c * k + dy) * k + dx];
                        for (x, v) in dst.iter_mut().enumerate() {
                            *v += wgt * row[x + dx];
                        }
                    }
                }
            }
        }
    }
}

fn portable_weight_grad(g: &Planar, image: &[f32], dz: &[f32], grad: &mut [f32]) {
    let (k, h, wv, wp, hp, per) = (g.k, g.h, g.wv(), g.wp(), g.hp(), g.weights_per_output());
    // `dz` has the transposed convolution's layout: `cout` planes of the same padded size.
    for o in 0..g.cout {
        for c in 0..g.cin {
            for dy in 0..k {
                for dx in 0..k {
                    let mut sum = 0f32;
                    for y in 0..h {
                        let row = &image[(c * hp + y + dy) * wp + dx..];
                        let d = &dz[g.interior(o, y)..g.interior(o, y) + wv];
                        for (x, &gz) in d.iter().enumerate() {
                            sum += gz * row[x];
                        }
                    }
                    grad[o * per + (c * k + dy) * k + dx] += sum;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX2 + FMA kernels. Every function requires the CPU features (checked by the callers)
    //! and buffers of the lengths `Planar::check` asserts.

    use std::arch::x86_64::*;

    use super::Planar;

    /// Output channels per forward tile: with 2 vectors of pixels, 12 accumulators (with the 2
    /// input vectors and the broadcast weight, 15 of the 16 registers: a wider tile spilled).
    const FORWARD_CHANNELS: usize = 6;
    /// Output channels per weight-gradient tile: with 2 shifts, 12 accumulators.
    const GRAD_CHANNELS: usize = 6;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward(g: &Planar, image: &[f32], weights: &[f32], out: &mut [f32]) {
        let mut o = 0;
        while o < g.cout {
            let take = (g.cout - o).min(FORWARD_CHANNELS);
            // SAFETY: as this function's.
            unsafe {
                match take {
                    1 => forward_channels::<1>(g, image, weights, out, o),
                    2 => forward_channels::<2>(g, image, weights, out, o),
                    3 => forward_channels::<3>(g, image, weights, out, o),
                    4 => forward_channels::<4>(g, image, weights, out, o),
                    5 => forward_channels::<5>(g, image, weights, out, o),
                    _ => forward_channels::<FORWARD_CHANNELS>(g, image, weights, out, o),
                }
            }
            o += take;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_channels<const O: usize>(
        g: &Planar,
        image: &[f32],
        weights: &[f32],
        out: &mut [f32],
        o: usize,
    ) {
        let wv = g.wv();
        for y in 0..g.h {
            let mut x = 0;
            // SAFETY: as this function's; x + 8 X <= wv.
            unsafe {
                while x + 16 <= wv {
                    forward_tile::<O, 2>(g, image, weights, out, o, y, x);
                    x += 16;
                }
                while x < wv {
                    forward_tile::<O, 1>(g, image, weights, out, o, y, x);
                    x += 8;
                }
            }
        }
    }

    /// Output channels `o..o + O`, row `y`, pixels `x0..x0 + 8 X`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn forward_tile<const O: usize, const X: usize>(
        g: &Planar,
        image: &[f32],
        weights: &[f32],
        out: &mut [f32],
        o: usize,
        y: usize,
        x0: usize,
    ) {
        let (k, h, wv, wp, hp) = (g.k, g.h, g.wv(), g.wp(), g.hp());
        let per = g.weights_per_output();
        let mut acc = [[_mm256_setzero_ps(); X]; O];
        let (ip, wgt) = (image.as_ptr(), weights.as_ptr());
        // SAFETY: rows y + dy < hp, columns x0 + dx + 8 X <= wv + k - 1 <= wp; weights within
        // cout x per; outputs within cout x h x wv (checked by the callers).
        unsafe {
            for c in 0..g.cin {
                for dy in 0..k {
                    let row = ip.add((c * hp + y + dy) * wp + x0);
                    let wrow = wgt.add(o * per + (c * k + dy) * k);
                    for dx in 0..k {
                        let mut v = [_mm256_setzero_ps(); X];
                        for (xv, v) in v.iter_mut().enumerate() {
                            *v = _mm256_loadu_ps(row.add(dx + 8 * xv));
                        }
                        for (oi, acc) in acc.iter_mut().enumerate() {
                            let w = _mm256_broadcast_ss(&*wrow.add(oi * per + dx));
                            for (a, &v) in acc.iter_mut().zip(&v) {
                                *a = _mm256_fmadd_ps(w, v, *a);
                            }
                        }
                    }
                }
            }
            let op = out.as_mut_ptr();
            for (oi, acc) in acc.iter().enumerate() {
                for (xv, &a) in acc.iter().enumerate() {
                    _mm256_storeu_ps(op.add(((o + oi) * h + y) * wv + x0 + 8 * xv), a);
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight_grad(g: &Planar, image: &[f32], dz: &[f32], grad: &mut [f32]) {
        let mut o = 0;
        while o < g.cout {
            let take = (g.cout - o).min(GRAD_CHANNELS);
            // SAFETY: as this function's.
            unsafe {
                match take {
                    1 => grad_channels::<1>(g, image, dz, grad, o),
                    2 => grad_channels::<2>(g, image, dz, grad, o),
                    3 => grad_channels::<3>(g, image, dz, grad, o),
                    4 => grad_channels::<4>(g, image, dz, grad, o),
                    5 => grad_channels::<5>(g, image, dz, grad, o),
                    _ => grad_channels::<GRAD_CHANNELS>(g, image, dz, grad, o),
                }
            }
            o += take;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn grad_channels<const O: usize>(
        g: &Planar,
        image: &[f32],
        dz: &[f32],
        grad: &mut [f32],
        o: usize,
    ) {
        for c in 0..g.cin {
            for dy in 0..g.k {
                let mut dx = 0;
                // SAFETY: as this function's; dx + D <= k.
                unsafe {
                    while dx + 2 <= g.k {
                        grad_tile::<O, 2>(g, image, dz, grad, o, c, dy, dx);
                        dx += 2;
                    }
                    if dx < g.k {
                        grad_tile::<O, 1>(g, image, dz, grad, o, c, dy, dx);
                    }
                }
            }
        }
    }

    /// The gradient of weights `[o..o + O, c, dy, dx..dx + D]` over the whole image.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn grad_tile<const O: usize, const D: usize>(
        g: &Planar,
        image: &[f32],
        dz: &[f32],
        grad: &mut [f32],
        o: usize,
        c: usize,
        dy: usize,
        dx: usize,
    ) {
        let (k, h, wv, wp, hp) = (g.k, g.h, g.wv(), g.wp(), g.hp());
        let per = g.weights_per_output();
        let mut acc = [[_mm256_setzero_ps(); D]; O];
        let (ip, dp) = (image.as_ptr(), dz.as_ptr());
        // SAFETY: as in `forward_tile`; dz rows within its cout padded planes (x + 8 <= wv,
        // interior starts at pad: the row ends by wp).
        unsafe {
            for y in 0..h {
                let row = ip.add((c * hp + y + dy) * wp + dx);
                let mut x = 0;
                while x < wv {
                    let mut v = [_mm256_setzero_ps(); D];
                    for (d, v) in v.iter_mut().enumerate() {
                        *v = _mm256_loadu_ps(row.add(x + d));
                    }
                    for (oi, acc) in acc.iter_mut().enumerate() {
                        let gz = _mm256_loadu_ps(dp.add(g.interior(o + oi, y) + x));
                        for (a, &v) in acc.iter_mut().zip(&v) {
                            *a = _mm256_fmadd_ps(gz, v, *a);
                        }
                    }
                    x += 8;
                }
            }
            for (oi, acc) in acc.iter().enumerate() {
                for (d, &a) in acc.iter().enumerate() {
                    grad[(o + oi) * per + (c * k + dy) * k + dx + d] += horizontal_sum(a);
                }
            }
        }
    }

    /// The sum of a vector's 8 values, in a fixed order.
    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(v: __m256) -> f32 {
        let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both kernels against a plain "same" convolution, its weight gradient and its input
    /// gradient (through [`flip_weights`]), on an odd size with more channels than one tile (so
    /// every tile shape runs).
    #[test]
    fn direct_convolution_matches_the_definition() {
        let g = Planar {
            cin: 3,
            cout: 8,
            k: 5,
            h: 11,
            w: 13,
        };
        let (k, h, w, per) = (g.k, g.h, g.w, g.weights_per_output());
        let sample: Vec<f32> = (0..g.cin * h * w)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let weights: Vec<f32> = (0..g.cout * per)
            .map(|i| ((i * 104_729 % 997) as f32 / 997.0) - 0.5)
            .collect();
        let dz: Vec<f32> = (0..g.cout * h * w)
            .map(|i| ((i * 31 % 17) as f32 / 17.0) - 0.5)
            .collect();
        // Plain sums in f64 on the unpadded arrays.
        let pad = (k / 2) as isize;
        let at = |v: &[f32], c: usize, y: isize, x: isize| -> f64 {
            if y < 0 || x < 0 || y >= h as isize || x >= w as isize {
                0.0
            } else {
                v[(c * h + y as usize) * w + x as usize] as f64
            }
        };
        let weight = |o: usize, c: usize, dy: usize, dx: usize| -> f64 {
            weights[o * per + (c * k + dy) * k + dx] as f64
        };
        let mut out_def = vec![0f64; g.cout * h * w];
        let mut input_grad_def = vec![0f64; g.cin * h * w];
        let mut weight_grad_def = vec![0f64; weights.len()];
        for o in 0..g.cout {
            for c in 0..g.cin {
                for dy in 0..k {
                    for dx in 0..k {
                        for y in 0..h {
                            for x in 0..w {
                                let (sy, sx) = ((y + dy) as isize - pad, (x + dx) as isize - pad);
                                let z = dz[(o * h + y) * w + x] as f64;
                                out_def[(o * h + y) * w + x] +=
                                    weight(o, c, dy, dx) * at(&sample, c, sy, sx);
                                weight_grad_def[o * per + (c * k + dy) * k + dx] +=
                                    z * at(&sample, c, sy, sx);
                                if sy >= 0 && sx >= 0 && sy < h as isize && sx < w as isize {
                                    input_grad_def[(c * h + sy as usize) * w + sx as usize] +=
                                        weight(o, c, dy, dx) * z;
                                }
                            }
                        }
                    }
                }
            }
        }
        let mut image = vec![0f32; g.image_len()];
        g.put(&sample, &mut image);
        let back = g.transposed();
        let mut dz_padded = vec![0f32; back.image_len()];
        back.put(&dz, &mut dz_padded);
        let mut flipped = vec![0f32; weights.len()];
        flip_weights(&g, &weights, &mut flipped);
        let close =
            |a: f32, b: f64, what: &str| assert!((a as f64 - b).abs() < 1e-4, "{what}: {a} vs {b}");
        type Kernels = (
            fn(&Planar, &[f32], &[f32], &mut [f32]),
            fn(&Planar, &[f32], &[f32], &mut [f32]),
        );
        let kernels: [(&str, Kernels); 2] = [
            ("dispatched", (forward, weight_grad)),
            ("portable", (portable_forward, portable_weight_grad)),
        ];
        for (name, (conv, grad)) in kernels {
            let mut out = vec![f32::NAN; g.out_len()];
            conv(&g, &image, &weights, &mut out);
            let mut input_grad = vec![f32::NAN; back.out_len()];
            conv(&back, &dz_padded, &flipped, &mut input_grad);
            for (c, def, got) in [
                (g.cout, &out_def, &out),
                (g.cin, &input_grad_def, &input_grad),
            ] {
                for ch in 0..c {
                    for y in 0..h {
                        for x in 0..w {
                            let i = (ch * h + y) * w + x;
                            close(got[(ch * h + y) * g.wv() + x], def[i], name);
                        }
                    }
                }
            }
            // Accumulated onto a starting value of 1.
            let mut wg = vec![1f32; weights.len()];
            grad(&g, &image, &dz_padded, &mut wg);
            for (&a, &b) in wg.iter().zip(&weight_grad_def) {
                close(a - 1.0, b, name);
            }
        }
    }
}
