//! Attacks that need no shadow model: a threshold on the target's own signal.

use memia_core::KeepMatrix;
use ndarray::{Array1, ArrayView2, ArrayView3, Axis};

use crate::error::{Result, check_shadow, check_target};
use crate::{FittedTest, MembershipTest};

/// A global threshold on the target's signal, averaged over queries: the LOSS attack (Yeom et
/// al. 2018) on the loss signal, or the LiRA reference's `generate_global` on `phi`.
/// Fitting only records the shapes; the shadow models are not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Threshold {
    /// Whether a larger signal means member (`phi`) or a smaller one (loss).
    pub higher_is_member: bool,
}

impl Threshold {
    /// On `phi` (or any confidence): the reference's global threshold.
    pub fn global() -> Self {
        Threshold {
            higher_is_member: true,
        }
    }

    /// On the cross-entropy loss: the LOSS attack (score = minus the mean loss).
    pub fn loss() -> Self {
        Threshold {
            higher_is_member: false,
        }
    }
}

/// A fitted [`Threshold`].
#[derive(Debug, Clone, Copy)]
pub struct FittedThreshold {
    threshold: Threshold,
    samples: usize,
    queries: usize,
}

impl MembershipTest for Threshold {
    type Fitted = FittedThreshold;

    fn fit(&self, keep: &KeepMatrix, shadow: ArrayView3<'_, f64>) -> Result<FittedThreshold> {
        check_shadow(keep, &shadow)?;
        Ok(FittedThreshold {
            threshold: *self,
            samples: shadow.dim().1,
            queries: shadow.dim().2,
        })
    }
}

impl FittedTest for FittedThreshold {
    fn samples(&self) -> usize {
        self.samples
    }

    fn score(&self, target: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        check_target(self.samples, self.queries, &target)?;
        let mean = target.mean_axis(Axis(1)).expect("A >= 1");
        Ok(if self.threshold.higher_is_member {
            mean
        } else {
            -mean
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, array};

    #[test]
    fn averages_queries_and_orients() {
        let keep = KeepMatrix::balanced(2, 2, 0).unwrap();
        let shadow = Array3::<f64>::zeros((2, 2, 2));
        let target = array![[1.0, 3.0], [0.5, 0.5]];
        let g = Threshold::global()
            .fit(&keep, shadow.view())
            .unwrap()
            .score(target.view())
            .unwrap();
        assert_eq!(g.to_vec(), vec![2.0, 0.5]);
        let l = Threshold::loss()
            .fit(&keep, shadow.view())
            .unwrap()
            .score(target.view())
            .unwrap();
        assert_eq!(l.to_vec(), vec![-2.0, -0.5]);
    }
}
