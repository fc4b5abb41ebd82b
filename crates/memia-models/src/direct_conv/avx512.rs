//! AVX-512 kernels, **bit-identical to the AVX2 ones**: every output value and every weight
//! gradient is the same sequence of fused multiply-adds, in the same order, as in
//! [`super::x86`]; a 16-lane vector only does the work of two 8-lane ones at once. So a model
//! trains to the same bits on an AVX2 and an AVX-512 machine (where the rest of its step is
//! memia's own arithmetic), and the tests compare the two kernels bit for bit.
//!
//! * The forward pass (and so the input gradient of a stride-1 convolution) puts two vectors of
//!   8 output pixels in one register (the next 8 of the same row when rows are whole 16s, else
//!   the next row's 8) and keeps up to 8 output channels x 3 registers in accumulators.
//! * The weight gradient pairs two output channels in one register (the low half channel `o`,
//!   the high half `o + 1`) against the same 8 input pixels broadcast to both halves, and keeps
//!   up to 9 kernel taps in accumulators, so that each lane sums over the image exactly as the
//!   AVX2 kernel's lane does; each half is then summed with the AVX2 kernel's
//!   [`horizontal_sum`](super::x86::horizontal_sum).
//!
//! On an AVX-512 Xeon the forward pass runs 1.6 - 1.9x the AVX2 kernel and the weight gradient
//! 1.1 - 1.6x (rows of 8 pixels: about the same), see docs/PERFORMANCE.md. **No `array::map` or
//! `array::from_fn` inside the loops**: they stayed calls here, and every call spilled the 16 - 24
//! accumulators around it (the forward pass ran at half the AVX2 kernel's speed until they went).
//!
//! Every function requires AVX-512F, AVX2 and FMA (checked by the callers) and buffers of the
//! lengths `Planar::check` asserts; the offsets are those of the AVX2 kernels, bounded by
//! `Planar::new`.

use std::arch::x86_64::*;

use super::x86::{self, horizontal_sum};
use super::{Offsets, Planar};

/// The most kernel taps of a weight-gradient tile (a 3 x 3 kernel's), and its channel pairs.
const GRAD_TAPS: usize = 9;
const GRAD_PAIRS: usize = 2;

/// Two 8-lane halves as one register (`lo` in lanes 0-7).
#[target_feature(enable = "avx512f,avx2,fma")]
fn join(lo: __m256, hi: __m256) -> __m512 {
    _mm512_castpd_ps(_mm512_insertf64x4(
        _mm512_castpd256_pd512(_mm256_castps_pd(lo)),
        _mm256_castps_pd(hi),
        1,
    ))
}

/// The high 8 lanes of a register.
#[target_feature(enable = "avx512f,avx2,fma")]
fn high(v: __m512) -> __m256 {
    _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))
}

/// The most output channels of a forward tile, and its registers of 16 pixels when rows are
/// whole 16s (24 accumulators) or not (16: the two halves' separate loads leave fewer
/// registers, and 3 ran slower on an AVX-512 Xeon).
const FORWARD_CHANNELS: usize = 8;
const FORWARD_VECTORS: usize = 3;
const FORWARD_VECTORS_SPLIT: usize = 2;

/// See [`super::forward`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn forward(g: &Planar, image: &[f32], weights: &[f32], out: &mut [f32]) {
    let at = Offsets::new(g);
    let mut o = 0;
    while o < g.cout {
        let take = (g.cout - o).min(FORWARD_CHANNELS);
        // SAFETY: as this function's.
        unsafe {
            match take {
                1 => forward_channels::<1>(g, &at, image, weights, out, o),
                2 => forward_channels::<2>(g, &at, image, weights, out, o),
                3 => forward_channels::<3>(g, &at, image, weights, out, o),
                4 => forward_channels::<4>(g, &at, image, weights, out, o),
                5 => forward_channels::<5>(g, &at, image, weights, out, o),
                6 => forward_channels::<6>(g, &at, image, weights, out, o),
                7 => forward_channels::<7>(g, &at, image, weights, out, o),
                _ => forward_channels::<8>(g, &at, image, weights, out, o),
            }
        }
        o += take;
    }
}

/// Output channels `o..o + O` of the whole image: the image's vectors of 8 output pixels in
/// order, two per register (within a row when rows are whole 16s: one load each; else possibly
/// across two rows: two loads), a vector left over through the AVX2 kernel.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn forward_channels<const O: usize>(
    g: &Planar,
    at: &Offsets,
    image: &[f32],
    weights: &[f32],
    out: &mut [f32],
    o: usize,
) {
    let per_row = g.wv() / 8;
    let vectors = g.ho() * per_row;
    let place = |v: usize| (v / per_row, v % per_row * 8);
    let pair = |v: usize| [place(v), place(v + 1)];
    let contiguous = per_row.is_multiple_of(2);
    let mut v = 0;
    // SAFETY: as this function's; every place is an output vector.
    unsafe {
        macro_rules! tiles {
            ($x:expr, $contiguous:literal) => {
                let places = std::array::from_fn(|i| pair(v + 2 * i));
                forward_tile::<O, { $x }, $contiguous>(g, at, image, weights, out, o, places);
                v += 2 * $x;
            };
        }
        if contiguous {
            while v + 2 * FORWARD_VECTORS <= vectors {
                tiles!(FORWARD_VECTORS, true);
            }
            while v + 2 <= vectors {
                tiles!(1, true);
            }
        } else {
            while v + 2 * FORWARD_VECTORS_SPLIT <= vectors {
                tiles!(FORWARD_VECTORS_SPLIT, false);
            }
            while v + 2 <= vectors {
                tiles!(1, false);
            }
        }
        if v < vectors {
            x86::forward_tile::<O, 1>(g, at, image, weights, out, o, [place(v)]);
        }
    }
}

/// Output channels `o..o + O` at X registers of 16 pixels, each two vectors of 8 at `places`
/// (row, column); `CONTIGUOUS`: the second vector follows the first in its row.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_tile<const O: usize, const X: usize, const CONTIGUOUS: bool>(
    g: &Planar,
    at: &Offsets,
    image: &[f32],
    weights: &[f32],
    out: &mut [f32],
    o: usize,
    places: [[(usize, usize); 2]; X],
) {
    let (k, ho, wv) = (g.k, g.ho(), g.wv());
    let per = g.weights_per_output();
    let mut acc = [[_mm512_setzero_ps(); X]; O];
    let (ip, wgt) = (image.as_ptr(), weights.as_ptr());
    // SAFETY: every load is one of the AVX2 kernel's 8-value loads (two of them side by side
    // when contiguous), so within the image as there; weights and outputs as there.
    unsafe {
        for c in 0..g.cin {
            for dy in 0..k {
                // Plain loops: `array::map` and `from_fn` are calls here, which spill every
                // accumulator around them.
                let mut rows = [[ip; 2]; X];
                for (row, place) in rows.iter_mut().zip(&places) {
                    for (r, &(y, x0)) in row.iter_mut().zip(place) {
                        *r = ip.add(at.input_row(c, y, dy) + x0);
                    }
                }
                let wrow = wgt.add(o * per + (c * k + dy) * k);
                for (dx, &tap) in at.taps.iter().enumerate() {
                    let mut v = [_mm512_setzero_ps(); X];
                    for (v, &[a, b]) in v.iter_mut().zip(&rows) {
                        *v = if CONTIGUOUS {
                            _mm512_loadu_ps(a.add(tap))
                        } else {
                            join(_mm256_loadu_ps(a.add(tap)), _mm256_loadu_ps(b.add(tap)))
                        };
                    }
                    for (oi, acc) in acc.iter_mut().enumerate() {
                        let w = _mm512_set1_ps(*wrow.add(oi * per + dx));
                        for (a, &v) in acc.iter_mut().zip(&v) {
                            *a = _mm512_fmadd_ps(w, v, *a);
                        }
                    }
                }
            }
        }
        let op = out.as_mut_ptr();
        for (oi, acc) in acc.iter().enumerate() {
            for (&a, &[(y0, x0), (y1, x1)]) in acc.iter().zip(&places) {
                let first = op.add(((o + oi) * ho + y0) * wv + x0);
                if CONTIGUOUS {
                    _mm512_storeu_ps(first, a);
                } else {
                    _mm256_storeu_ps(first, _mm512_castps512_ps256(a));
                    _mm256_storeu_ps(op.add(((o + oi) * ho + y1) * wv + x1), high(a));
                }
            }
        }
    }
}

/// See [`super::weight_grad`].
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn weight_grad(g: &Planar, image: &[f32], dz: &[f32], grad: &mut [f32]) {
    let at = Offsets::new(g);
    // Every tap `(dy, dx)` as one offset from input row `(c, s y + lead)`.
    let taps: Vec<usize> = (0..g.k * g.k)
        .map(|t| t / g.k * at.row + at.taps[t % g.k])
        .collect();
    let mut o = 0;
    // SAFETY: as this function's.
    unsafe {
        while o + 2 * GRAD_PAIRS <= g.cout {
            grad_pairs::<GRAD_PAIRS>(g, &at, &taps, image, dz, grad, o);
            o += 2 * GRAD_PAIRS;
        }
        if o + 2 <= g.cout {
            grad_pairs::<1>(g, &at, &taps, image, dz, grad, o);
            o += 2;
        }
        if o < g.cout {
            // An odd channel left: the AVX2 kernel (the same sums).
            x86::grad_channels::<1>(g, &at, image, dz, grad, o);
        }
    }
}

/// The weight gradient of output channels `o..o + 2 P`.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn grad_pairs<const P: usize>(
    g: &Planar,
    at: &Offsets,
    taps: &[usize],
    image: &[f32],
    dz: &[f32],
    grad: &mut [f32],
    o: usize,
) {
    for c in 0..g.cin {
        for chunk in taps.chunks(GRAD_TAPS).enumerate() {
            let (t, taps) = (chunk.0 * GRAD_TAPS, chunk.1);
            // SAFETY: as this function's.
            unsafe {
                macro_rules! tile {
                    ($($d:literal)*) => {
                        match taps.len() {
                            $($d => grad_tile::<P, $d>(g, at, taps, image, dz, grad, o, c, t),)*
                            _ => unreachable!("chunks of at most {GRAD_TAPS} taps"),
                        }
                    };
                }
                tile!(1 2 3 4 5 6 7 8 9);
            }
        }
    }
}

/// The gradient of weights `[o..o + 2 P, c, taps t..t + D]` over the whole image (`taps`: the
/// D taps' offsets).
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn grad_tile<const P: usize, const D: usize>(
    g: &Planar,
    at: &Offsets,
    taps: &[usize],
    image: &[f32],
    dz: &[f32],
    grad: &mut [f32],
    o: usize,
    c: usize,
    t: usize,
) {
    let (ho, wv) = (g.ho(), g.wv());
    let per = g.weights_per_output();
    let taps: [usize; D] = std::array::from_fn(|d| taps[d]);
    let mut acc = [[_mm512_setzero_ps(); D]; P];
    let (ip, dp) = (image.as_ptr(), dz.as_ptr());
    // SAFETY: the loads are the AVX2 kernel's (input row `(c, s y + dy + lead)` at a tap plus
    // x, 8 values; `dz` rows of output channels below cout, 8 values within wv).
    unsafe {
        for y in 0..ho {
            let row = ip.add(at.input_row(c, y, 0));
            let dz_row = |ch: usize| dp.add((ch * ho + y) * wv);
            let mut x = 0;
            while x < wv {
                let mut gz = [_mm512_setzero_ps(); P];
                for (p, gz) in gz.iter_mut().enumerate() {
                    let ch = o + 2 * p;
                    *gz = join(
                        _mm256_loadu_ps(dz_row(ch).add(x)),
                        _mm256_loadu_ps(dz_row(ch + 1).add(x)),
                    );
                }
                for (d, &tap) in taps.iter().enumerate() {
                    let v = _mm256_castpd_ps(_mm256_loadu_pd(row.add(tap + x).cast()));
                    let v = _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(v)));
                    for (acc, &gz) in acc.iter_mut().zip(&gz) {
                        acc[d] = _mm512_fmadd_ps(gz, v, acc[d]);
                    }
                }
                x += 8;
            }
        }
        for (p, acc) in acc.iter().enumerate() {
            let ch = o + 2 * p;
            for (d, &a) in acc.iter().enumerate() {
                grad[ch * per + c * g.k * g.k + t + d] += horizontal_sum(_mm512_castps512_ps256(a));
                grad[(ch + 1) * per + c * g.k * g.k + t + d] += horizontal_sum(high(a));
            }
        }
    }
}
