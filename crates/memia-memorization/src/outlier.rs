//! Outlierness baselines: the scores the paper compares memorization against.
//!
//! All scores here are oriented so that **higher means more outlying**, so they can be
//! correlated with memorization or used as attack-candidate rankings interchangeably.

use memia_core::{KeepMatrix, Logits, logsumexp};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use rayon::prelude::*;

use crate::error::{MemorizationError, Result, check_shape, invalid};

fn check_features(what: &'static str, x: ArrayView2<'_, f32>) -> Result<()> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(invalid(
            what,
            format!("shape {:?} has no samples or no features", x.shape()),
        ));
    }
    if let Some(((i, j), &v)) = x.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(MemorizationError::BadValue {
            what,
            index: vec![i, j],
            value: f64::from(v),
            expected: "features must be finite",
        });
    }
    Ok(())
}

/// Mean Euclidean distance from each sample (row of `features`, N x d) to its `k` nearest
/// *other* samples: `sklearn.neighbors.NearestNeighbors(n_neighbors=k).fit(X).kneighbors()`
/// averaged over the neighbours. Exact (brute force, in f64 by blocks of rows, all threads);
/// O(N^2 d).
pub fn knn_distance(features: ArrayView2<'_, f32>, k: usize) -> Result<Array1<f64>> {
    check_features("features", features)?;
    let n = features.nrows();
    if k == 0 || k >= n {
        return Err(invalid(
            "k",
            format!("{k} neighbours among {n} samples (need 1 <= k < N)"),
        ));
    }
    let x = features.mapv(f64::from);
    let norms: Array1<f64> = x.map_axis(Axis(1), |r| r.dot(&r));
    const BLOCK: usize = 256;
    let mut out = Array1::<f64>::zeros(n);
    out.as_slice_mut()
        .expect("fresh array")
        .par_chunks_mut(BLOCK)
        .enumerate()
        .for_each(|(b, chunk)| {
            let start = b * BLOCK;
            let rows = x.slice(s![start..start + chunk.len(), ..]);
            let dots = rows.dot(&x.t()); // B x N
            let mut d2 = Vec::with_capacity(n);
            for (r, slot) in chunk.iter_mut().enumerate() {
                let i = start + r;
                d2.clear();
                d2.extend(
                    dots.row(r)
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .map(|(j, &dot)| (norms[i] + norms[j] - 2.0 * dot).max(0.0)),
                );
                d2.select_nth_unstable_by(k - 1, f64::total_cmp);
                *slot = d2[..k].iter().map(|v| v.sqrt()).sum::<f64>() / k as f64;
            }
        });
    Ok(out)
}

/// Class-conditional Mahalanobis distance of each sample to its own class mean, with one
/// covariance shared by all classes (Lee et al. 2018):
/// `sqrt((x_i - mu_{y_i})^T (Sigma + ridge I)^{-1} (x_i - mu_{y_i}))`, where `Sigma` is the
/// maximum-likelihood covariance of the class-centred samples (divided by N) and `ridge`
/// keeps it invertible (pixels that never vary). Computed in f64.
pub fn mahalanobis(
    features: ArrayView2<'_, f32>,
    labels: &[u32],
    ridge: f64,
) -> Result<Array1<f64>> {
    check_features("features", features)?;
    let (n, d) = features.dim();
    check_shape("labels", &[labels.len()], &[n])?;
    if !(ridge >= 0.0 && ridge.is_finite()) {
        return Err(invalid(
            "ridge",
            format!("{ridge} is not a finite non-negative number"),
        ));
    }
    // Each distinct label its own class, numbered densely: labels are names here, and one as
    // large as 4e9 must not size a table of means.
    let mut distinct = labels.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let class_of: Vec<usize> = labels
        .iter()
        .map(|y| distinct.binary_search(y).expect("every label is listed"))
        .collect();
    let x = features.mapv(f64::from);
    let mut means = Array2::<f64>::zeros((distinct.len(), d));
    let mut counts = vec![0usize; distinct.len()];
    for (row, &c) in x.outer_iter().zip(&class_of) {
        means.row_mut(c).scaled_add(1.0, &row);
        counts[c] += 1;
    }
    for (mut m, &c) in means.outer_iter_mut().zip(&counts) {
        if c > 0 {
            m /= c as f64;
        }
    }
    let mut centred = x;
    for (mut row, &c) in centred.outer_iter_mut().zip(&class_of) {
        row -= &means.row(c);
    }
    let mut cov = centred.t().dot(&centred) / n as f64;
    for j in 0..d {
        cov[[j, j]] += ridge;
    }
    let l_inv = inverse_lower(&cholesky(cov)?);
    // Row i of centred * L^{-T} is L^{-1} (x_i - mu), whose squared norm is the distance.
    let whitened = centred.dot(&l_inv.t());
    Ok(whitened.map_axis(Axis(1), |r| r.dot(&r).sqrt()))
}

/// Lower-triangular Cholesky factor of a symmetric positive-definite matrix.
fn cholesky(mut a: Array2<f64>) -> Result<Array2<f64>> {
    let d = a.nrows();
    for j in 0..d {
        let diag = a[[j, j]] - (0..j).map(|k| a[[j, k]] * a[[j, k]]).sum::<f64>();
        if diag.is_nan() || diag <= 0.0 {
            return Err(invalid(
                "ridge",
                format!("the covariance is singular at feature {j}: increase the ridge"),
            ));
        }
        let ljj = diag.sqrt();
        a[[j, j]] = ljj;
        for i in j + 1..d {
            let s = a[[i, j]] - (0..j).map(|k| a[[i, k]] * a[[j, k]]).sum::<f64>();
            a[[i, j]] = s / ljj;
        }
    }
    for i in 0..d {
        for j in i + 1..d {
            a[[i, j]] = 0.0;
        }
    }
    Ok(a)
}

/// Inverse of a lower-triangular matrix with a positive diagonal.
fn inverse_lower(l: &Array2<f64>) -> Array2<f64> {
    let d = l.nrows();
    let mut inv = Array2::<f64>::zeros((d, d));
    for j in 0..d {
        inv[[j, j]] = 1.0 / l[[j, j]];
        for i in j + 1..d {
            let s: f64 = (j..i).map(|k| l[[i, k]] * inv[[k, j]]).sum();
            inv[[i, j]] = -s / l[[i, i]];
        }
    }
    inv
}

/// Per-sample mean over the models that did **not** train on it (the OUT models) of a function
/// of the logits of query `query`; fails if a sample has no OUT model.
fn out_model_mean(
    keep: &KeepMatrix,
    logits: &Logits,
    query: usize,
    f: impl Fn(&[f32]) -> f64 + Sync,
) -> Result<Array1<f64>> {
    check_shape(
        "logits (models, samples)",
        &[logits.models(), logits.samples()],
        &[keep.models(), keep.samples()],
    )?;
    if query >= logits.queries() {
        return Err(invalid(
            "query",
            format!(
                "query {query} requested but the logits have {}",
                logits.queries()
            ),
        ));
    }
    let view = logits.view();
    (0..keep.samples())
        .into_par_iter()
        .map(|i| {
            let (mut sum, mut n) = (0.0, 0usize);
            for k in 0..keep.models() {
                if !keep.get(k, i) {
                    let z = view.slice(s![k, i, query, ..]);
                    let z = z.as_slice().expect("logits are in standard layout");
                    if let Some(&bad) = z.iter().find(|v| !v.is_finite()) {
                        return Err(memia_core::CoreError::NonFiniteLogit {
                            model: k,
                            sample: i,
                            query,
                            value: bad,
                        }
                        .into());
                    }
                    sum += f(z);
                    n += 1;
                }
            }
            if n == 0 {
                return Err(MemorizationError::Undetermined {
                    sample: i,
                    in_count: keep.models(),
                    out_count: 0,
                    missing: keep
                        .in_counts()
                        .iter()
                        .filter(|&&c| c == keep.models())
                        .count(),
                });
            }
            Ok(sum / n as f64)
        })
        .collect::<Result<Vec<f64>>>()
        .map(Array1::from)
}

/// `1 - MSP`: one minus the maximum softmax probability (Hendrycks & Gimpel 2017), averaged
/// over the OUT models. Higher = less confident = more outlying.
pub fn out_model_msp_outlierness(
    keep: &KeepMatrix,
    logits: &Logits,
    query: usize,
) -> Result<Array1<f64>> {
    out_model_mean(keep, logits, query, |z| {
        let max = z
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        1.0 - (max - logsumexp(z)).exp()
    })
}

/// Energy score `-logsumexp(z)` (Liu et al. 2020, temperature 1), averaged over the OUT models.
/// Higher energy = more outlying.
pub fn out_model_energy(keep: &KeepMatrix, logits: &Logits, query: usize) -> Result<Array1<f64>> {
    out_model_mean(keep, logits, query, |z| -logsumexp(z))
}

/// Mean logits of each sample over its OUT models (N x C): the feature space of the
/// logit-space Mahalanobis baseline (`mahalanobis(out_model_logits(..).view(), labels, ridge)`).
pub fn out_model_logits(keep: &KeepMatrix, logits: &Logits, query: usize) -> Result<Array2<f32>> {
    let c = logits.classes();
    let mut out = Array2::<f32>::zeros((keep.samples(), c));
    for class in 0..c {
        let col = out_model_mean(keep, logits, query, |z| f64::from(z[class]))?;
        out.column_mut(class).assign(&col.mapv(|v| v as f32));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array4, array};

    #[test]
    fn mahalanobis_classes_are_the_distinct_labels_whatever_their_values() {
        let x = array![
            [0.0f32, 1.0],
            [1.0, 0.5],
            [2.0, 2.0],
            [5.0, 1.0],
            [6.0, 3.0],
            [7.0, 1.5]
        ];
        let dense = mahalanobis(x.view(), &[0, 0, 0, 1, 1, 1], 0.1).unwrap();
        let sparse = mahalanobis(x.view(), &[7, 7, 7, u32::MAX, u32::MAX, u32::MAX], 0.1).unwrap();
        assert_eq!(dense, sparse);
    }

    #[test]
    fn knn_by_hand() {
        let x = array![[0.0f32, 0.0], [3.0, 4.0], [0.0, 1.0], [10.0, 0.0]];
        let d = knn_distance(x.view(), 1).unwrap();
        assert_eq!(d.to_vec(), vec![1.0, 18f64.sqrt(), 1.0, 65f64.sqrt()]);
        let d2 = knn_distance(x.view(), 2).unwrap();
        assert!((d2[0] - (1.0 + 5.0) / 2.0).abs() < 1e-12);
        assert!(knn_distance(x.view(), 4).is_err());
        let mut bad = x.clone();
        bad[[1, 1]] = f32::INFINITY;
        assert!(
            knn_distance(bad.view(), 1)
                .unwrap_err()
                .to_string()
                .contains("features[[1, 1]] = inf")
        );
    }

    #[test]
    fn mahalanobis_by_hand_is_euclidean_for_identity_covariance() {
        // Class 0 at (+-1, 0) and (0, +-1): centred covariance diag(0.5, 0.5).
        let x = array![[1.0f32, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]];
        let d = mahalanobis(x.view(), &[0, 0, 0, 0], 0.0).unwrap();
        for v in d.iter() {
            assert!((v - 2f64.sqrt()).abs() < 1e-12, "{v}");
        }
        let singular = array![[1.0f32, 0.0], [2.0, 0.0]];
        assert!(
            mahalanobis(singular.view(), &[0, 0], 0.0)
                .unwrap_err()
                .to_string()
                .contains("increase the ridge")
        );
        assert!(mahalanobis(singular.view(), &[0, 0], 1e-3).is_ok());
        assert!(mahalanobis(singular.view(), &[0], 1e-3).is_err());
    }

    #[test]
    fn out_model_scores() {
        let keep = KeepMatrix::from_array(array![[true, false], [false, false]]).unwrap();
        let logits = Logits::new(
            Array4::from_shape_vec(
                (2, 2, 1, 2),
                vec![
                    9.0, 0.0, /**/ 0.0, 0.0, // model 0
                    1.0, 0.0, /**/ 2.0, 2.0, // model 1
                ],
            )
            .unwrap(),
        )
        .unwrap();
        let msp = out_model_msp_outlierness(&keep, &logits, 0).unwrap();
        // Sample 0: OUT only for model 1 (logits 1, 0).
        assert!((msp[0] - (1.0 - 1.0 / (1.0 + (-1f64).exp()))).abs() < 1e-12);
        // Sample 1: OUT for both, uniform logits both times.
        assert!((msp[1] - 0.5).abs() < 1e-12);
        let energy = out_model_energy(&keep, &logits, 0).unwrap();
        assert!((energy[1] - -(2f64.ln() + (2.0 + 2f64.ln())) / 2.0).abs() < 1e-12);
        let feats = out_model_logits(&keep, &logits, 0).unwrap();
        assert_eq!(feats, array![[1.0f32, 0.0], [1.0, 1.0]]);
        let all_in = KeepMatrix::from_array(array![[true, false], [true, false]]).unwrap();
        assert!(
            out_model_energy(&all_in, &logits, 0)
                .unwrap_err()
                .to_string()
                .contains("sample 0 is IN for 2")
        );
        assert!(out_model_energy(&keep, &logits, 1).is_err());
    }
}
