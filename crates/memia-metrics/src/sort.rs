//! Order-preserving keys for `f64` and a least-significant-digit radix sort over them.
//!
//! Sorting dominates every ROC computation; a radix sort of plain `u64` keys (no payload, the
//! classes are sorted separately) is several times faster than a comparison sort at 10^7.

/// Maps a finite `f64` to a `u64` whose unsigned order is the float order (-0.0 equals 0.0).
#[inline]
pub(crate) fn key(x: f64) -> u64 {
    let bits = (x + 0.0).to_bits(); // + 0.0 turns -0.0 into 0.0
    if bits >> 63 == 1 { !bits } else { bits | (1 << 63) }
}

/// Inverse of [`key`].
#[inline]
pub(crate) fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// Sorts `keys` ascending.
pub(crate) fn radix_sort(keys: &mut Vec<u64>) {
    const SMALL: usize = 256;
    if keys.len() <= SMALL {
        keys.sort_unstable();
        return;
    }
    let mut counts = vec![[0usize; 256]; 8];
    for &k in keys.iter() {
        for (digit, c) in counts.iter_mut().enumerate() {
            c[((k >> (8 * digit)) & 0xFF) as usize] += 1;
        }
    }
    let n = keys.len();
    let mut scratch = vec![0u64; n];
    for (digit, c) in counts.iter().enumerate() {
        if c.iter().any(|&x| x == n) {
            continue; // every key has the same byte here
        }
        let mut offsets = [0usize; 256];
        let mut sum = 0;
        for (o, &count) in offsets.iter_mut().zip(c.iter()) {
            *o = sum;
            sum += count;
        }
        let shift = 8 * digit;
        for &k in keys.iter() {
            let b = ((k >> shift) & 0xFF) as usize;
            scratch[offsets[b]] = k;
            offsets[b] += 1;
        }
        std::mem::swap(keys, &mut scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order_and_invert() {
        let values = [f64::MIN, -1e300, -2.5, -1e-300, -0.0, 0.0, 1e-300, 3.0, f64::MAX];
        for w in values.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{} vs {}", w[0], w[1]);
        }
        assert_eq!(key(-0.0), key(0.0));
        for &v in &values {
            assert_eq!(unkey(key(v)), v + 0.0);
        }
    }

    #[test]
    fn radix_sort_matches_std_sort() {
        let mut state = 12345u64;
        let mut values: Vec<u64> = (0..100_000)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if i % 7 == 0 { state >> 40 } else { state }
            })
            .collect();
        let mut expected = values.clone();
        expected.sort_unstable();
        radix_sort(&mut values);
        assert_eq!(values, expected);
    }
}
