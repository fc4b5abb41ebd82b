//! AVX-512 kernels, **bit-identical to the AVX2 ones**: every weight gradient is the same
//! sequence of fused multiply-adds, in the same order, as in [`super::x86`]; a 16-lane vector
//! only does the work of two 8-lane ones at once. So a model trains to the same bits on an AVX2
//! and an AVX-512 machine, and the tests compare the two kernels bit for bit.
//!
//! The weight gradient pairs two output channels in one register (the low half channel `o`, the
//! high half `o + 1`) against the same 8 input pixels broadcast to both halves, and keeps up to
//! 9 kernel taps in accumulators, so that each lane sums over the image exactly as the AVX2
//! kernel's lane does; each half is then summed with the AVX2 kernel's
//! [`horizontal_sum`](super::x86::horizontal_sum). It runs 1.05 - 1.35x the AVX2 kernel on an
//! AVX-512 Xeon (docs/PERFORMANCE.md).
//!
//! **Why there is no AVX-512 forward pass.** One was written (two vectors of 8 output pixels
//! per register, the same sums) and measured at 0.55 - 0.85x the AVX2 kernel on the same Xeon,
//! whatever its tile (4 - 8 channels x 2 - 4 registers), although a loop of the same loads and
//! multiply-adds alone ran at 1.3x; with no hardware counters on the machine the cause was not
//! found, so the forward pass and the input gradient (a forward pass) keep the AVX2 kernels.
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
                let gz: [__m512; P] = std::array::from_fn(|p| {
                    let ch = o + 2 * p;
                    join(
                        _mm256_loadu_ps(dz_row(ch).add(x)),
                        _mm256_loadu_ps(dz_row(ch + 1).add(x)),
                    )
                });
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
