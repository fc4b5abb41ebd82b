//! Influence of pool samples on held-out samples, from the same shadow models.

use memia_core::KeepMatrix;
use ndarray::{Array1, Array2, ArrayView2, Axis, s};

use crate::error::{MemorizationError, Result, invalid};

/// Feldman-Zhang influence estimates: `infl[j][i] = mean_{k: i IN} outcome[k][j] -
/// mean_{k: i OUT} outcome[k][j]`, the effect of training on pool sample i on the outcome
/// (correctness) of held-out sample j.
///
/// `held_out` is K x M (model k's outcome on held-out sample j); the result is M x N
/// (`f32`, NaN for pool samples without IN or OUT models). It is one matrix product, as in
/// google-research/heldout-influence-estimation. The full matrix needs `4 M N` bytes: results
/// over `max_bytes` are refused; use [`influence_rows`] to compute a block of held-out rows at
/// a time.
pub fn influence(
    keep: &KeepMatrix,
    held_out: ArrayView2<'_, f32>,
    max_bytes: u64,
) -> Result<Array2<f32>> {
    let m = held_out.ncols();
    let needed = 4 * m as u64 * keep.samples() as u64;
    if needed > max_bytes {
        return Err(MemorizationError::TooLarge {
            what: "influence matrix",
            needed,
            budget: max_bytes,
            hint: "compute blocks of held-out samples with influence_rows",
        });
    }
    influence_rows(keep, held_out, 0..m)
}

/// The rows `rows` (held-out samples) of the influence matrix of [`influence`].
pub fn influence_rows(
    keep: &KeepMatrix,
    held_out: ArrayView2<'_, f32>,
    rows: std::ops::Range<usize>,
) -> Result<Array2<f32>> {
    let k = keep.models();
    if held_out.nrows() != k {
        return Err(MemorizationError::Shape {
            what: "held-out outcome",
            found: held_out.shape().to_vec(),
            expected: vec![k, held_out.ncols()],
        });
    }
    if rows.start > rows.end || rows.end > held_out.ncols() {
        return Err(invalid(
            "rows",
            format!(
                "{rows:?} is not within the {} held-out samples",
                held_out.ncols()
            ),
        ));
    }
    if let Some(((a, b), &v)) = held_out.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(MemorizationError::BadValue {
            what: "held-out outcome",
            index: vec![a, b],
            value: f64::from(v),
            expected: "outcomes must be finite",
        });
    }
    let block = held_out.slice(s![.., rows.clone()]); // K x B
    let mask = keep.as_array().mapv(|v| if v { 1.0f32 } else { 0.0 }); // K x N
    let in_counts: Array1<f32> = mask.sum_axis(Axis(0));
    let sums_in = block.t().dot(&mask); // B x N
    let totals: Array1<f32> = block.sum_axis(Axis(0)); // B
    let mut out = sums_in;
    for (mut row, &total) in out.outer_iter_mut().zip(totals.iter()) {
        for (v, &n_in) in row.iter_mut().zip(in_counts.iter()) {
            let n_out = k as f32 - n_in;
            *v = if n_in == 0.0 || n_out == 0.0 {
                f32::NAN
            } else {
                *v / n_in - (total - *v) / n_out
            };
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn matches_direct_masked_means() {
        let keep = KeepMatrix::balanced(6, 5, 4).unwrap();
        let held_out = Array2::from_shape_fn((6, 3), |(k, j)| ((k * 7 + j * 3) % 5) as f32 / 4.0);
        let infl = influence(&keep, held_out.view(), 1 << 20).unwrap();
        assert_eq!(infl.shape(), &[3, 5]);
        for j in 0..3 {
            for i in 0..5 {
                let (mut si, mut so, mut ni, mut no) = (0.0, 0.0, 0.0, 0.0);
                for k in 0..6 {
                    if keep.get(k, i) {
                        si += held_out[[k, j]];
                        ni += 1.0;
                    } else {
                        so += held_out[[k, j]];
                        no += 1.0;
                    }
                }
                assert!((infl[[j, i]] - (si / ni - so / no)).abs() < 1e-6);
            }
        }
        let block = influence_rows(&keep, held_out.view(), 1..3).unwrap();
        assert_eq!(block, infl.slice(s![1..3, ..]));
    }

    #[test]
    fn guards_memory_and_shapes() {
        let keep = KeepMatrix::from_array(array![[true, true], [false, true]]).unwrap();
        let held_out = Array2::<f32>::ones((2, 4));
        let err = influence(&keep, held_out.view(), 16)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("needs 32 bytes, over the budget of 16"),
            "{err}"
        );
        let infl = influence(&keep, held_out.view(), 32).unwrap();
        assert!(infl[[0, 1]].is_nan(), "sample 1 has no OUT model");
        assert!(influence(&keep, Array2::<f32>::ones((3, 4)).view(), 1 << 20).is_err());
        assert!(influence_rows(&keep, held_out.view(), 2..9).is_err());
    }
}
