//! Choosing attack candidates by memorization (or any per-sample score).
//!
//! Undetermined samples (NaN scores) are never selected and fall in no bin.

use crate::error::{Result, invalid};

/// Indices of the samples whose score is at least `threshold`, in index order.
pub fn above_threshold(scores: &[f64], threshold: f64) -> Vec<usize> {
    (0..scores.len())
        .filter(|&i| scores[i] >= threshold)
        .collect()
}

/// Indices of the `k` highest scores, highest first (ties broken by lower index). Fewer than
/// `k` if fewer samples have a score.
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).filter(|&i| !scores[i].is_nan()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Bin edges `[-1, 0.1, 0.2, ..., 0.9, 1]`: ten memorization bins, the first gathering the
/// negative and near-zero estimates of samples that are not memorized.
pub fn decile_edges() -> Vec<f64> {
    std::iter::once(-1.0)
        .chain((1..=10).map(|i| f64::from(i) / 10.0))
        .collect()
}

/// Groups sample indices into the bins `[edges[b], edges[b + 1])` (the last bin closed).
/// Scores outside `[edges[0], edges[last]]` and NaN fall in no bin. Edges must be finite and
/// strictly increasing, at least two.
pub fn bins(scores: &[f64], edges: &[f64]) -> Result<Vec<Vec<usize>>> {
    if edges.len() < 2 {
        return Err(invalid(
            "edges",
            format!("{} edges make no bin (need at least 2)", edges.len()),
        ));
    }
    if edges.iter().any(|e| !e.is_finite()) || edges.windows(2).any(|w| w[0] >= w[1]) {
        return Err(invalid(
            "edges",
            format!("{edges:?} are not finite and strictly increasing"),
        ));
    }
    let last = edges.len() - 2;
    let mut out = vec![Vec::new(); edges.len() - 1];
    for (i, &s) in scores.iter().enumerate() {
        if !(s >= edges[0] && s <= edges[last + 1]) {
            continue;
        }
        let b = (edges.partition_point(|&e| e <= s) - 1).min(last);
        out[b].push(i);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_skips_missing_values() {
        let s = [0.9, f64::NAN, 0.2, 0.9, -0.1];
        assert_eq!(above_threshold(&s, 0.5), vec![0, 3]);
        assert_eq!(top_k(&s, 3), vec![0, 3, 2]);
        assert_eq!(top_k(&s, 10).len(), 4);
    }

    #[test]
    fn binning() {
        let s = [-0.5, 0.0, 0.1, 0.95, 1.0, f64::NAN, 1.5];
        let b = bins(&s, &decile_edges()).unwrap();
        assert_eq!(b.len(), 10);
        assert_eq!(b[0], vec![0, 1]);
        assert_eq!(b[1], vec![2]);
        assert_eq!(b[9], vec![3, 4], "the last bin is closed");
        assert_eq!(b.iter().map(Vec::len).sum::<usize>(), 5);
        assert!(bins(&s, &[0.5]).is_err());
        assert!(bins(&s, &[0.5, 0.5]).is_err());
        assert!(bins(&s, &[0.0, f64::NAN]).is_err());
    }
}
