//! The report's 8-bit thumbnails of the samples it singles out, rendered from the pool's
//! pixels.

use std::collections::BTreeMap;

use crate::audit::{Panel, SampleImages, Thumbnail};

/// One thumbnail per sample of the panels (a sample shown twice is rendered once); none
/// without the pool's pixels.
pub(crate) fn render(
    images: Option<&SampleImages<'_>>,
    panels: &[Panel],
) -> BTreeMap<usize, Thumbnail> {
    images
        .map(|images| {
            panels
                .iter()
                .flat_map(|p| p.samples.iter().copied())
                .map(|i| (i, thumbnail(images, i)))
                .collect()
        })
        .unwrap_or_default()
}

/// Sample `i` as an 8-bit image, its values stretched to its own range (a constant image is
/// mid-grey).
fn thumbnail(images: &SampleImages<'_>, i: usize) -> Thumbnail {
    let [ch, h, w] = images.shape;
    let size = ch * h * w;
    let values = &images.pixels[i * size..(i + 1) * size];
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| {
            (l.min(v), u.max(v))
        });
    let byte = |v: f32| -> u8 {
        if hi <= lo || !hi.is_finite() || !v.is_finite() {
            128
        } else {
            ((v - lo) / (hi - lo) * 255.0).round().clamp(0.0, 255.0) as u8
        }
    };
    // Channel-major (C x H x W) to interleaved rows.
    let mut bytes = Vec::with_capacity(size);
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                bytes.push(byte(values[c * h * w + y * w + x]));
            }
        }
    }
    Thumbnail {
        channels: ch,
        height: h,
        width: w,
        bytes,
    }
}
