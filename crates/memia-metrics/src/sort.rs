//! Order-preserving keys for `f64` and a least-significant-digit radix sort over them.
//!
//! Sorting dominates every ROC computation; a radix sort of plain `u64` keys (no payload, the
//! classes are sorted separately) is several times faster than a comparison sort at 10^7.

/// Maps a finite `f64` to a `u64` whose unsigned order is the float order (-0.0 equals 0.0).
#[inline]
pub(crate) fn key(x: f64) -> u64 {
    let bits = (x + 0.0).to_bits(); // + 0.0 turns -0.0 into 0.0
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Inverse of [`key`].
#[inline]
pub(crate) fn unkey(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

const DIGIT_BITS: u32 = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;
const PASSES: usize = 64_usize.div_ceil(DIGIT_BITS as usize);

/// Sorts `keys` ascending: six passes of 11-bit digits, skipping digits all keys share.
pub(crate) fn radix_sort(keys: &mut Vec<u64>) {
    const SMALL: usize = 256;
    if keys.len() <= SMALL {
        keys.sort_unstable();
        return;
    }
    let digit =
        |k: u64, pass: usize| ((k >> (DIGIT_BITS as usize * pass)) as usize) & (BUCKETS - 1);
    let mut counts = vec![[0usize; BUCKETS]; PASSES];
    for &k in keys.iter() {
        for (pass, c) in counts.iter_mut().enumerate() {
            c[digit(k, pass)] += 1;
        }
    }
    let n = keys.len();
    let mut scratch = vec![0u64; n];
    for (pass, c) in counts.iter().enumerate() {
        if c.contains(&n) {
            continue; // every key has the same digit here
        }
        let mut offsets = [0usize; BUCKETS];
        let mut sum = 0;
        for (o, &count) in offsets.iter_mut().zip(c.iter()) {
            *o = sum;
            sum += count;
        }
        for &k in keys.iter() {
            let b = digit(k, pass);
            scratch[offsets[b]] = k;
            offsets[b] += 1;
        }
        std::mem::swap(keys, &mut scratch);
    }
}

/// The median as numpy computes it (the mean of the two middle values for an even count);
/// `None` for no values. Reorders `values`; NaN sorts last (as `f64::total_cmp` orders it).
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (lower, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    Some(if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (below + upper) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order_and_invert() {
        let values = [
            f64::MIN,
            -1e300,
            -2.5,
            -1e-300,
            -0.0,
            0.0,
            1e-300,
            3.0,
            f64::MAX,
        ];
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
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 7 == 0 { state >> 40 } else { state }
            })
            .collect();
        let mut expected = values.clone();
        expected.sort_unstable();
        radix_sort(&mut values);
        assert_eq!(values, expected);
    }
}
