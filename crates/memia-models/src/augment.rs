//! Image augmentation for training, and the queries (transformed inputs) at inference.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Random training-time augmentation of `[C, H, W]` images: a shift by up to `max_shift` pixels
/// in each direction (uncovered pixels are zero) and, if `flip`, a horizontal mirror with
/// probability 1/2. Drawn per sample from the model's own random stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augmentation {
    /// Largest shift in pixels (0: none).
    pub max_shift: usize,
    /// Random horizontal flips (for natural images; not for digits or letters).
    pub flip: bool,
}

impl Augmentation {
    /// Whether it changes anything.
    pub fn is_identity(&self) -> bool {
        self.max_shift == 0 && !self.flip
    }

    /// Checks it against the samples' shape: an augmentation needs `[C, H, W]` images, and a
    /// shift smaller than the image. Returns the image shape when it augments.
    pub fn check(&self, shape: &[usize]) -> Result<Option<[usize; 3]>> {
        if self.is_identity() {
            return Ok(None);
        }
        let image = image_for("augmentation", shape)?;
        let [_, h, w] = image;
        if self.max_shift >= h.min(w) {
            return Err(ModelError::InvalidSetting {
                name: "augmentation.max_shift",
                reason: format!(
                    "{} pixels would shift a {h} x {w} image out of sight",
                    self.max_shift
                ),
            });
        }
        Ok(Some(image))
    }
}

/// An input transformation under which the trained models are queried; LiRA averages its
/// score over queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// The input as it is.
    Plain,
    /// The horizontal mirror image.
    Mirror,
    /// The image shifted by `(dx, dy)` pixels, uncovered pixels zero.
    Shift {
        /// Horizontal shift (positive: right).
        dx: i32,
        /// Vertical shift (positive: down).
        dy: i32,
    },
}

/// Writes `src` (one `[C, H, W]` image) mirrored if `mirror` and shifted by `(dx, dy)` into
/// `dst` (same size).
pub(crate) fn transform(
    src: &[f32],
    dst: &mut [f32],
    shape: [usize; 3],
    mirror: bool,
    dx: i32,
    dy: i32,
) {
    let [c, h, w] = shape;
    for ch in 0..c {
        for y in 0..h {
            let sy = y as i32 - dy;
            for x in 0..w {
                let sx = x as i32 - dx;
                let value = if sy < 0 || sy >= h as i32 || sx < 0 || sx >= w as i32 {
                    0.0
                } else {
                    let sx = if mirror { w as i32 - 1 - sx } else { sx } as usize;
                    src[(ch * h + sy as usize) * w + sx]
                };
                dst[(ch * h + y) * w + x] = value;
            }
        }
    }
}

/// The image shape of a sample shape, or an error saying that `what` needs images.
pub(crate) fn image_for(what: &str, shape: &[usize]) -> Result<[usize; 3]> {
    match *shape {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(ModelError::NotAnImage {
            what: what.to_string(),
            shape: shape.to_vec(),
        }),
    }
}

impl Query {
    /// Checks it against the samples' shape: mirrors and shifts need `[C, H, W]` images, and a
    /// shift smaller than the image.
    pub fn check(&self, shape: &[usize]) -> Result<()> {
        let Query::Shift { dx, dy } = *self else {
            if *self == Query::Mirror {
                image_for("query Mirror", shape)?;
            }
            return Ok(());
        };
        let [_, h, w] = image_for(&format!("query {self:?}"), shape)?;
        if dx.unsigned_abs() as usize >= w || dy.unsigned_abs() as usize >= h {
            return Err(ModelError::InvalidSetting {
                name: "queries",
                reason: format!("shift ({dx}, {dy}) moves a {h} x {w} image out of sight"),
            });
        }
        Ok(())
    }
}

/// Applies a query to every row of `features` (n x d) of sample shape `shape`.
pub fn apply_query(features: &[f32], shape: &[usize], query: Query) -> Result<Vec<f32>> {
    if query == Query::Plain {
        return Ok(features.to_vec());
    }
    query.check(shape)?;
    let img = image_for(&format!("query {query:?}"), shape)?;
    let d: usize = img.iter().product();
    let (mirror, dx, dy) = match query {
        Query::Mirror => (true, 0, 0),
        Query::Shift { dx, dy } => (false, dx, dy),
        Query::Plain => unreachable!(),
    };
    let mut out = vec![0f32; features.len()];
    for (src, dst) in features.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        transform(src, dst, img, mirror, dx, dy);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_and_shift() {
        // One 2 x 3 image: [[1, 2, 3], [4, 5, 6]].
        let img = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            apply_query(&img, &[1, 2, 3], Query::Mirror).unwrap(),
            vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0]
        );
        assert_eq!(
            apply_query(&img, &[1, 2, 3], Query::Shift { dx: 1, dy: 0 }).unwrap(),
            vec![0.0, 1.0, 2.0, 0.0, 4.0, 5.0]
        );
        assert_eq!(
            apply_query(&img, &[1, 2, 3], Query::Shift { dx: 0, dy: -1 }).unwrap(),
            vec![4.0, 5.0, 6.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            apply_query(&img, &[1, 2, 3], Query::Plain).unwrap(),
            img.to_vec()
        );
        assert!(apply_query(&img, &[6], Query::Mirror).is_err());
    }
}
