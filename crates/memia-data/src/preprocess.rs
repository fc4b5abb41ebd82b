//! Preprocessing: per-channel normalisation, flattening, image conversion, seeded shuffles and
//! splits.

use memia_core::rng::seeded_rng;
use rand::seq::SliceRandom;

use crate::dataset::{Dataset, InMemoryDataset};
use crate::error::{Result, invalid};

/// Per-channel mean and standard deviation, to be fitted on one data set and applied to others.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// Mean of each channel.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel (population), at least 1e-8.
    pub std: Vec<f32>,
}

/// Channels of a sample shape: the first axis of `[C, H, W]`, or 1 for flat vectors.
fn channels(shape: &[usize]) -> usize {
    if shape.len() == 3 { shape[0] } else { 1 }
}

impl Normalization {
    /// Fits the per-channel statistics of `ds` (one channel for flat samples).
    pub fn fit(ds: &dyn Dataset) -> Result<Self> {
        if ds.is_empty() {
            return Err(invalid("dataset", format!("{} is empty", ds.name())));
        }
        let c = channels(ds.feature_shape());
        let per = ds.feature_len() / c;
        let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
        for i in 0..ds.len() {
            for (ch, block) in ds.features(i).chunks_exact(per).enumerate() {
                for &v in block {
                    sum[ch] += f64::from(v);
                    sq[ch] += f64::from(v) * f64::from(v);
                }
            }
        }
        let n = (ds.len() * per) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        Ok(Normalization {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: sq
                .iter()
                .zip(&mean)
                .map(|(s, m)| ((s / n - m * m).max(0.0).sqrt() as f32).max(1e-8))
                .collect(),
        })
    }

    /// Standardises `ds`: `(x - mean) / std` per channel. A result that is not finite (a zero
    /// or NaN `std` set by hand) is an error, and `ds` is consumed rather than left half done.
    pub fn apply(&self, ds: InMemoryDataset) -> Result<InMemoryDataset> {
        let c = channels(ds.feature_shape());
        if c != self.mean.len() || c != self.std.len() {
            return Err(invalid(
                "normalization",
                format!(
                    "fitted on {} channels ({} deviations), data set has {c}",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        let per = ds.feature_len() / c;
        ds.map_samples(|sample| {
            for (ch, block) in sample.chunks_exact_mut(per).enumerate() {
                block
                    .iter_mut()
                    .for_each(|v| *v = (*v - self.mean[ch]) / self.std[ch]);
            }
        })
    }
}

/// Makes every sample a flat vector (`[C, H, W]` -> `[C * H * W]`).
pub fn flatten(ds: &mut InMemoryDataset) {
    let d = ds.feature_len();
    ds.reshape(vec![d]).expect("same number of values");
}

/// A seeded random permutation of `0..n`.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut seeded_rng(seed));
    idx
}

/// Splits `0..n` at random into a first part of `round(fraction * n)` indices and the rest.
pub fn split_indices(n: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(invalid("fraction", format!("{fraction} is not in [0, 1]")));
    }
    let mut idx = shuffled_indices(n, seed);
    let second = idx.split_off((fraction * n as f64).round() as usize);
    Ok((idx, second))
}

/// Converts one image from `from` (`[C, H, W]`) to `to`: channels by luminance (3 -> 1,
/// ITU-R 601 weights) or repetition (1 -> 3), size by bilinear interpolation with pixel
/// centres aligned (as `torch.nn.functional.interpolate(..., align_corners=False)`).
/// Flat shapes must already agree.
pub fn convert_image(pixels: &[f32], from: &[usize], to: &[usize]) -> Result<Vec<f32>> {
    if from == to {
        return Ok(pixels.to_vec());
    }
    let (&[c0, h0, w0], &[c1, h1, w1]) = (from, to) else {
        return Err(invalid(
            "shape",
            format!(
                "cannot convert samples of shape {from:?} to {to:?}: both must be [C, H, W] images"
            ),
        ));
    };
    if h1 == 0 || w1 == 0 || pixels.len() != c0 * h0 * w0 {
        return Err(invalid(
            "shape",
            format!(
                "{} values do not form a {from:?} image, or {to:?} is empty",
                pixels.len()
            ),
        ));
    }
    let plane = h0 * w0;
    let channels: Vec<Vec<f32>> = match (c0, c1) {
        (a, b) if a == b => pixels.chunks_exact(plane).map(<[f32]>::to_vec).collect(),
        (3, 1) => vec![
            (0..plane)
                .map(|p| {
                    0.299 * pixels[p] + 0.587 * pixels[plane + p] + 0.114 * pixels[2 * plane + p]
                })
                .collect(),
        ],
        (1, n) => vec![pixels.to_vec(); n],
        _ => {
            return Err(invalid(
                "shape",
                format!("cannot convert {c0} channels to {c1}"),
            ));
        }
    };
    let mut out = Vec::with_capacity(c1 * h1 * w1);
    for ch in &channels {
        for y in 0..h1 {
            let sy = ((y as f32 + 0.5) * h0 as f32 / h1 as f32 - 0.5).clamp(0.0, (h0 - 1) as f32);
            let (y0, fy) = (sy.floor() as usize, sy - sy.floor());
            let y1 = (y0 + 1).min(h0 - 1);
            for x in 0..w1 {
                let sx =
                    ((x as f32 + 0.5) * w0 as f32 / w1 as f32 - 0.5).clamp(0.0, (w0 - 1) as f32);
                let (x0, fx) = (sx.floor() as usize, sx - sx.floor());
                let x1 = (x0 + 1).min(w0 - 1);
                let top = ch[y0 * w0 + x0] * (1.0 - fx) + ch[y0 * w0 + x1] * fx;
                let bottom = ch[y1 * w0 + x0] * (1.0 - fx) + ch[y1 * w0 + x1] * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_standardises_each_channel() {
        let ds = InMemoryDataset::new(
            "x",
            vec![2, 1, 2],
            vec![0.0, 2.0, 10.0, 10.0, 4.0, 6.0, 30.0, 30.0],
            vec![0, 0],
            1,
        )
        .unwrap();
        let norm = Normalization::fit(&ds).unwrap();
        assert_eq!(norm.mean, vec![3.0, 20.0]);
        let mut ds = norm.apply(ds).unwrap();
        let ch0: Vec<f32> = [0usize, 1, 4, 5]
            .iter()
            .map(|&i| ds.as_slice()[i])
            .collect();
        let mean: f32 = ch0.iter().sum::<f32>() / 4.0;
        let var: f32 = ch0.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        flatten(&mut ds);
        assert_eq!(ds.feature_shape(), &[4]);
        let zero = Normalization {
            mean: vec![0.0],
            std: vec![0.0],
        };
        let err = zero.apply(ds).unwrap_err();
        assert!(err.to_string().contains("non-finite"), "{err}");
    }

    #[test]
    fn splits_are_seeded_partitions() {
        let (a, b) = split_indices(10, 0.7, 3).unwrap();
        assert_eq!((a.len(), b.len()), (7, 3));
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!(split_indices(10, 0.7, 3).unwrap(), (a, b));
        assert_ne!(shuffled_indices(50, 1), shuffled_indices(50, 2));
        assert!(split_indices(10, 1.5, 0).is_err());
    }

    #[test]
    fn image_conversion() {
        // Grayscale of a pure-green 1x1 image; repetition; identity.
        assert_eq!(
            convert_image(&[0.0, 1.0, 0.0], &[3, 1, 1], &[1, 1, 1]).unwrap(),
            vec![0.587]
        );
        assert_eq!(
            convert_image(&[0.25], &[1, 1, 1], &[3, 1, 1]).unwrap(),
            vec![0.25; 3]
        );
        // Upsampling a 2x2 checker to 4x4 keeps corners and interpolates between.
        let up = convert_image(&[0.0, 1.0, 1.0, 0.0], &[1, 2, 2], &[1, 4, 4]).unwrap();
        assert_eq!(up[0], 0.0);
        assert_eq!(up[3], 1.0);
        assert!((up[1] - 0.25).abs() < 1e-6);
        // Downsampling a constant image stays constant.
        assert!(
            convert_image(&[0.5; 16], &[1, 4, 4], &[1, 2, 2])
                .unwrap()
                .iter()
                .all(|&v| (v - 0.5).abs() < 1e-6)
        );
        assert!(convert_image(&[0.0; 4], &[4], &[1, 2, 2]).is_err());
        assert!(convert_image(&[0.0; 8], &[2, 2, 2], &[3, 2, 2]).is_err());
    }
}
