//! Convolutions computed directly on channel-planar images, without a patch matrix: the
//! arithmetic of memia's fused CNN and ResNet kernels.
//!
//! An image is kept channel-planar (`[c, h, w]`) with a zero border, and each output row is a
//! sum over `(channel, dy, dx)` of a weight times an input row shifted by `dx`: eight output
//! pixels per vector, several output channels per loaded input vector. Gathering a patch matrix
//! for a matrix product ("im2col") cost about as much as the product it fed on the CNN workload,
//! and the first layers' few output channels fill a product's tiles poorly (see
//! docs/PERFORMANCE.md). Rows are computed over a width rounded up to a multiple of 8 (`wv`);
//! the extra columns are never read as outputs and must get a zero gradient.
//!
//! **Strides.** For a stride s, each padded input row is stored as s *phases* (columns
//! `q, q + s, q + 2s, ...`), so that the inputs of eight consecutive outputs are again one
//! contiguous load. The input gradient of a strided convolution is computed by phases: each of
//! the s^2 phases of the input grid is a small convolution of the output gradient through the
//! kernel taps that reach it ([`input_grad`]), a quarter of the work of spreading the output
//! gradient onto the input grid at stride 2, with the same bits.
//!
//! **Kernels** ([`Kernels`], chosen at run time): with AVX2 and FMA the kernels use them; with
//! AVX-512 as well, 16-lane vectors for the same sums (bit-identical to the AVX2 kernels, see
//! `avx512`); elsewhere a portable version sums the same terms with
//! separate multiply and add. Either way a model's arithmetic does not depend on the other
//! models of its group.
//!
//! Weights are in Burn's order, `[out, in, dy, dx]`.

/// Why a convolution geometry is refused by [`Planar::new`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GeometryError {
    /// A size that must be at least 1 is zero.
    #[error("the {0} of a convolution is zero")]
    Zero(&'static str),
    /// "Same" padding needs an odd kernel.
    #[error("kernel size {0} is even (a \"same\" convolution needs an odd kernel)")]
    EvenKernel(usize),
    /// The stored images' border is narrower than half the kernel: the kernel would read
    /// before the first stored row or column.
    #[error("padding {pad} is less than half the kernel ({k} / 2)")]
    Padding {
        /// The padding asked for.
        pad: usize,
        /// The kernel size.
        k: usize,
    },
    /// A size or an index the kernels compute does not fit in memory (it would overflow, or
    /// exceed `isize::MAX` bytes).
    #[error("the convolution is too large: its {0} overflows")]
    TooLarge(&'static str),
}

impl From<GeometryError> for crate::error::ModelError {
    fn from(e: GeometryError) -> Self {
        crate::error::architecture(format!("convolution geometry: {e}"))
    }
}

/// The most `f32` values a buffer (and so any offset into it) may hold: `isize::MAX` bytes,
/// the limit of an allocation and of a pointer offset.
const MAX_VALUES: usize = isize::MAX as usize / std::mem::size_of::<f32>();

/// The geometry of one convolution with "same" padding (`k / 2`, k odd) and a stride, and the
/// layout of its padded input images.
///
/// **The kernels' raw-pointer reads and writes trust this type.** Its fields are private, and
/// it is made only by [`Planar::new`] (or [`Planar::same`] and [`Planar::transposed`], through
/// the same checks), which refuses every geometry whose reads would leave the
/// padded image (padding less than half the kernel, an even kernel, a zero size) and every
/// geometry whose sizes do not fit in memory, computing each size once with checked
/// arithmetic. What the kernels then compute per pixel is bounded by these sizes, so it cannot
/// wrap; a call checks only that its buffers are as long as the sizes (once per call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Planar {
    cin: usize,
    cout: usize,
    /// Kernel size (odd).
    k: usize,
    /// Input size.
    h: usize,
    w: usize,
    /// Output `(y, x)` reads the inputs around `(stride y, stride x)`.
    stride: usize,
    /// Zero border of the stored input images, at least `k / 2` (a 1 x 1 convolution reads an
    /// image stored for the 3 x 3 ones beside it).
    pad: usize,
    /// Border columns and rows skipped before the kernel's first tap: `pad - k / 2`.
    lead: usize,
    /// Output rows and columns, and the output row width (`wo` rounded up to whole vectors).
    ho: usize,
    wo: usize,
    wv: usize,
    /// `w` rounded up to whole vectors of 8.
    input_wv: usize,
    /// Padded input rows per channel.
    hp: usize,
    /// Values per phase of a padded input row.
    wq: usize,
    /// Values of one padded input image, of one output image, of the weights.
    image_len: usize,
    out_len: usize,
    weights_len: usize,
}

impl Planar {
    /// A convolution of `cin` -> `cout` channels with a `k x k` kernel (odd) on `h x w`
    /// inputs, with a stride, reading input images stored with a zero border of `pad`.
    ///
    /// Refused: a zero size, stride or kernel; an even kernel; `pad < k / 2`; sizes that
    /// overflow or exceed `isize::MAX` bytes, for this convolution or for the stride-1
    /// convolutions of its input gradient ([`Planar::transposed`], and that one's own).
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        [h, w]: [usize; 2],
        stride: usize,
        pad: usize,
    ) -> Result<Planar, GeometryError> {
        let planar = Planar::build(cin, cout, k, [h, w], stride, pad)?;
        // The transposed convolution, and its own transposed one (whose transposed is the
        // first again): `transposed()` cannot then fail.
        Planar::build(cout, cin, k, [h, w], 1, k / 2)?;
        Planar::build(cin, cout, k, [h, w], 1, k / 2)?;
        Ok(planar)
    }

    /// A stride-1 "same" convolution reading images padded by `k / 2`.
    pub fn same(
        cin: usize,
        cout: usize,
        k: usize,
        h: usize,
        w: usize,
    ) -> Result<Planar, GeometryError> {
        Planar::new(cin, cout, k, [h, w], 1, k / 2)
    }

    /// One geometry, checked, its sizes computed.
    fn build(
        cin: usize,
        cout: usize,
        k: usize,
        [h, w]: [usize; 2],
        stride: usize,
        pad: usize,
    ) -> Result<Planar, GeometryError> {
        use GeometryError::{EvenKernel, Padding, TooLarge, Zero};
        for (what, size) in [
            ("input channels", cin),
            ("output channels", cout),
            ("kernel size", k),
            ("input height", h),
            ("input width", w),
            ("stride", stride),
        ] {
            if size == 0 {
                return Err(Zero(what));
            }
        }
        if k.is_multiple_of(2) {
            return Err(EvenKernel(k));
        }
        let lead = pad.checked_sub(k / 2).ok_or(Padding { pad, k })?;
        let too_large = |what| move || TooLarge(what);
        // h, w >= 1 and stride >= 1: no wrap, and ho <= h, wo <= w.
        let (ho, wo) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
        let vectors = |n: usize| n.div_ceil(8).checked_mul(8);
        let wv = vectors(wo).ok_or_else(too_large("output row width"))?;
        let input_wv = vectors(w).ok_or_else(too_large("input row width"))?;
        let border = pad.checked_mul(2).ok_or_else(too_large("padding"))?;
        let hp = h
            .checked_add(border)
            .ok_or_else(too_large("padded height"))?;
        // Every column, and every vector load: the last tap of the last vector of a phase
        // row ends at `(lead + k - 1) / stride + wv <= 2 pad / stride + wv` (lead + k - 1 =
        // pad + k / 2 <= 2 pad). Independent of the kernel, so that convolutions of different
        // kernels with the same stride and padding read the same stored image.
        let loads = wv
            .checked_add(border / stride)
            .ok_or_else(too_large("padded row"))?;
        let columns = w
            .checked_add(border)
            .ok_or_else(too_large("padded row"))?
            .div_ceil(stride);
        let wq = loads.max(columns);
        let row_len = stride.checked_mul(wq).ok_or_else(too_large("padded row"))?;
        let image_len = hp
            .checked_mul(row_len)
            .and_then(|plane| plane.checked_mul(cin))
            .filter(|&n| n <= MAX_VALUES)
            .ok_or_else(too_large("padded image"))?;
        let out_len = ho
            .checked_mul(wv)
            .and_then(|plane| plane.checked_mul(cout))
            .filter(|&n| n <= MAX_VALUES)
            .ok_or_else(too_large("output image"))?;
        let weights_len = k
            .checked_mul(k)
            .and_then(|n| n.checked_mul(cin))
            .and_then(|n| n.checked_mul(cout))
            .filter(|&n| n <= MAX_VALUES)
            .ok_or_else(too_large("weights"))?;
        // What the kernels' offsets rely on, stated once: the last row a kernel reads is a
        // padded row, and the last value of a row's last vector load is in its row.
        let last_row = stride * (ho - 1) + (k - 1) + lead;
        let last_column = (lead + k - 1) / stride + wv;
        if last_row >= hp || last_column > wq {
            return Err(Padding { pad, k });
        }
        Ok(Planar {
            cin,
            cout,
            k,
            h,
            w,
            stride,
            pad,
            lead,
            ho,
            wo,
            wv,
            input_wv,
            hp,
            wq,
            image_len,
            out_len,
            weights_len,
        })
    }

    /// Input channels.
    pub fn cin(&self) -> usize {
        self.cin
    }

    /// Output channels.
    pub fn cout(&self) -> usize {
        self.cout
    }

    /// Kernel size.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Input rows.
    pub fn h(&self) -> usize {
        self.h
    }

    /// Input columns.
    pub fn w(&self) -> usize {
        self.w
    }

    /// Stride.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Zero border of the stored input images.
    pub fn pad(&self) -> usize {
        self.pad
    }

    /// Output rows.
    pub fn ho(&self) -> usize {
        self.ho
    }

    /// Output columns.
    pub fn wo(&self) -> usize {
        self.wo
    }

    /// Output row width: `wo` rounded up to whole vectors of 8.
    pub fn wv(&self) -> usize {
        self.wv
    }

    /// Row width of input gradients (`[cin, h, input_wv]`, see [`input_grad`]): `w` rounded up
    /// to whole vectors of 8.
    pub fn input_wv(&self) -> usize {
        self.input_wv
    }

    /// Values per padded input row (all its phases).
    fn row_len(&self) -> usize {
        self.stride * self.wq
    }

    /// Values of one padded input image.
    pub fn image_len(&self) -> usize {
        self.image_len
    }

    /// Values of one output image (`[cout, ho, wv]`).
    pub fn out_len(&self) -> usize {
        self.out_len
    }

    fn weights_per_output(&self) -> usize {
        self.cin * self.k * self.k
    }

    /// Where the rows of its padded input images are.
    pub fn rows(&self) -> Rows {
        Rows {
            plane: self.hp * self.row_len(),
            row: self.row_len(),
            wq: self.wq,
            pad: self.pad,
            stride: self.stride,
            w: self.w,
        }
    }

    /// Where the inputs of output column 0 for kernel column `dx` start in a padded row.
    fn tap(&self, dx: usize) -> usize {
        let t = dx + self.lead;
        (t % self.stride) * self.wq + t / self.stride
    }

    /// The convolution that takes gradients back from the outputs to the inputs: `cout` input
    /// channels, `cin` outputs, stride 1 at the input's size (see [`input_grad`]).
    pub fn transposed(&self) -> Planar {
        Planar::build(self.cout, self.cin, self.k, [self.h, self.w], 1, self.k / 2)
            .expect("Planar::new checked the transposed geometry")
    }

    /// Writes a channel-major sample (`[cin, h, w]`) into a padded image whose border is zero
    /// (and stays zero: only the inputs' places are written).
    pub fn put(&self, src: &[f32], dst: &mut [f32]) {
        let (h, w, rows) = (self.h, self.w, self.rows());
        for c in 0..self.cin {
            for y in 0..h {
                rows.put(c, y, &src[(c * h + y) * w..(c * h + y + 1) * w], dst);
            }
        }
    }

    /// Asserts the lengths the kernels rely on (once per call: the offsets within them were
    /// bounded when the geometry was built).
    fn check(&self, image: &[f32], weights: &[f32], out: &[f32]) {
        assert!(
            image.len() >= self.image_len
                && weights.len() >= self.weights_len
                && out.len() >= self.out_len,
            "direct convolution: buffers too short for {self:?}"
        );
    }
}

/// Where the rows of a [`Planar`] convolution's padded input images are: row `(c, y)` of the
/// input starts at `c plane + (y + pad) row`, and its column `x` is in phase `(x + pad) % stride`
/// (`wq` values each) at index `(x + pad) / stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rows {
    plane: usize,
    row: usize,
    wq: usize,
    pad: usize,
    stride: usize,
    w: usize,
}

impl Rows {
    /// Where padded row `y + pad` of channel `c` starts.
    fn start(&self, c: usize, y: usize) -> usize {
        c * self.plane + (y + self.pad) * self.row
    }

    /// Where input row `(c, y)`'s `w` values start (stride 1: they are contiguous).
    pub fn interior(&self, c: usize, y: usize) -> usize {
        debug_assert_eq!(self.stride, 1, "strided rows are stored in phases");
        self.start(c, y) + self.pad
    }

    /// Where input value `(c, y, x)` is.
    pub fn at(&self, c: usize, y: usize, x: usize) -> usize {
        let (xx, s) = (x + self.pad, self.stride);
        self.start(c, y) + (xx % s) * self.wq + xx / s
    }

    /// Writes the `w` values of input row `(c, y)` into a padded image.
    pub fn put(&self, c: usize, y: usize, row: &[f32], dst: &mut [f32]) {
        let w = self.w;
        if self.stride == 1 {
            let at = self.interior(c, y);
            dst[at..at + w].copy_from_slice(&row[..w]);
        } else {
            // Phase by phase, each a contiguous run.
            let s = self.stride;
            for q in 0..s {
                let first = (q + s - self.pad % s) % s;
                let at = self.at(c, y, first);
                for (d, &v) in dst[at..]
                    .iter_mut()
                    .zip(row[..w].iter().skip(first).step_by(s))
                {
                    *d = v;
                }
            }
        }
    }

    /// Reads the `w` values of input row `(c, y)` of a padded image into `row`.
    pub fn get(&self, c: usize, y: usize, image: &[f32], row: &mut [f32]) {
        let w = self.w;
        if self.stride == 1 {
            let at = self.interior(c, y);
            row[..w].copy_from_slice(&image[at..at + w]);
        } else {
            let s = self.stride;
            for q in 0..s {
                let first = (q + s - self.pad % s) % s;
                let at = self.at(c, y, first);
                for (v, &d) in row[..w].iter_mut().skip(first).step_by(s).zip(&image[at..]) {
                    *v = d;
                }
            }
        }
    }
}

/// `out[o, y, x] = sum over (c, dy, dx) of weights[o, c, dy, dx] * input[c, s y + dy - k/2,
/// s x + dx - k/2]` (zero outside the image), without bias: `out` is `[cout, ho, wv]`.
pub(crate) fn forward(g: &Planar, image: &[f32], weights: &[f32], out: &mut [f32]) {
    g.check(image, weights, out);
    // SAFETY (both x86 arms): the CPU has the kernel's features; the buffers are as long as
    // the geometry's sizes (checked above), and `Planar::new` bounded every offset the kernels
    // form by them.
    match Kernels::detect() {
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx512 => unsafe { avx512::forward(g, image, weights, out) },
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx2 => unsafe { x86::forward(g, image, weights, out) },
        Kernels::Portable => portable_forward(g, image, weights, out),
    }
}

/// Adds `sum over (y, x) of dz[o, y, x] * input[c, s y + dy - k/2, s x + dx - k/2]` to
/// `grad[o, c, dy, dx]`: the weight gradient of [`forward`] for one image, `dz` being
/// `[cout, ho, wv]` and zero in the columns past `wo`.
pub(crate) fn weight_grad(g: &Planar, image: &[f32], dz: &[f32], grad: &mut [f32]) {
    g.check(image, grad, dz);
    // SAFETY: as in `forward` (`dz` is output-shaped, `grad` weight-shaped).
    match Kernels::detect() {
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx512 => unsafe { avx512::weight_grad(g, image, dz, grad) },
        #[cfg(target_arch = "x86_64")]
        Kernels::Avx2 => unsafe { x86::weight_grad(g, image, dz, grad) },
        Kernels::Portable => portable_weight_grad(g, image, dz, grad),
    }
}

/// The input gradient of [`forward`] for one image: from `dz` (`[cout, ho, wv]`, zero past
/// `wo`) and `flipped` ([`flip_weights`]) into `out` (`[cin, h, wv]` of
/// [`Planar::transposed`]; the columns past `w` are not part of the result). `scratch` holds one
/// padded image of the transposed convolution (`transposed().image_len()` values, zero where it
/// was never written), and is used by one geometry only.
///
/// With stride 1 this is the transposed convolution of `dz`. With a stride s it is computed by
/// phases ([`Phases`]): the input pixels `(s i + py, s j + px)` of one phase receive the output
/// gradients through a fixed subset of the kernel's taps, so each phase is a small convolution
/// of `dz` at the output's resolution, 1 / s^2 of the work of spreading `dz` onto the input's
/// grid (zeros between) and convolving that. The terms are summed in the spread version's order
/// and it only skipped its zero terms, so the two give the same values (tested bit for bit).
pub(crate) fn input_grad(
    g: &Planar,
    dz: &[f32],
    flipped: &[f32],
    scratch: &mut [f32],
    out: &mut [f32],
) {
    let back = g.transposed();
    let (ho, wo, wv, s) = (g.ho(), g.wo(), g.wv(), g.stride);
    if s > 1 {
        return Phases::new(g).input_grad(dz, flipped, scratch, out);
    }
    let rows = back.rows();
    // The border is never written, so it stays zero.
    for o in 0..g.cout {
        for y in 0..ho {
            let at = rows.interior(o, y);
            scratch[at..at + wo].copy_from_slice(&dz[(o * ho + y) * wv..][..wo]);
        }
    }
    forward(&back, scratch, flipped, out);
}

/// The polyphase input gradient of a strided convolution. Input pixel `(s i + py, s j + px)`
/// receives `weights[o, c, dy, dx] dz[o, i + oy, j + ox]` for the taps with `py + k/2 - dy = s oy`
/// and `px + k/2 - dx = s ox`; `dz` is stored with a zero border of `border` (at least every
/// `|oy|`, `|ox|`, and at most `k / 2`, so it fits in the transposed convolution's scratch) in
/// rows of `row` values.
#[derive(Debug)]
struct Phases {
    g: Planar,
    border: usize,
    row: usize,
    plane: usize,
    /// Per phase `py s + px`: each tap's offset in a padded plane (from the phase pixel's own
    /// place, shifted by the border) and its index within a flipped kernel (`(k-1-dy) k +
    /// (k-1-dx)`), in the flipped kernel's order (the order the spread version sums in).
    taps: Vec<Vec<(usize, usize)>>,
}

impl Phases {
    fn new(g: &Planar) -> Phases {
        let (k, s, p) = (g.k as isize, g.stride as isize, (g.k / 2) as isize);
        // Each phase's taps as (oy, ox, flipped index).
        let offsets = |phase: isize| -> Vec<(isize, usize)> {
            (0..k)
                .rev()
                .filter(|&d| (phase + p - d).rem_euclid(s) == 0)
                .map(|d| ((phase + p - d).div_euclid(s), (k - 1 - d) as usize))
                .collect()
        };
        let per_phase: Vec<Vec<(isize, usize)>> = (0..s).map(offsets).collect();
        let border = per_phase
            .iter()
            .flatten()
            .map(|&(o, _)| o.unsigned_abs())
            .max()
            .unwrap_or(0);
        let row = g.wv + 2 * border;
        let plane = (g.ho + 2 * border) * row;
        let b = border as isize;
        let mut taps = Vec::with_capacity(g.stride * g.stride);
        for ys in &per_phase {
            for xs in &per_phase {
                let mut phase: Vec<(usize, usize)> = ys
                    .iter()
                    .flat_map(|&(oy, fy)| {
                        xs.iter().map(move |&(ox, fx)| {
                            let at = (oy + b) * row as isize + ox + b;
                            (at as usize, fy * g.k + fx)
                        })
                    })
                    .collect();
                phase.sort_by_key(|&(_, flipped)| flipped);
                taps.push(phase);
            }
        }
        Phases {
            g: *g,
            border,
            row,
            plane,
            taps,
        }
    }

    /// See [`input_grad`].
    fn input_grad(&self, dz: &[f32], flipped: &[f32], scratch: &mut [f32], out: &mut [f32]) {
        self.input_grad_with(Kernels::detect(), dz, flipped, scratch, out);
    }

    /// [`Phases::input_grad`] with the portable kernel, whatever the CPU.
    #[cfg(test)]
    fn input_grad_portable(
        &self,
        dz: &[f32],
        flipped: &[f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        self.input_grad_with(Kernels::Portable, dz, flipped, scratch, out);
    }

    fn input_grad_with(
        &self,
        kernels: Kernels,
        dz: &[f32],
        flipped: &[f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) {
        let g = &self.g;
        let (ho, wo, wv) = (g.ho, g.wo, g.wv);
        let padded = g.cout * self.plane;
        assert!(
            padded <= scratch.len()
                && dz.len() >= g.out_len
                && flipped.len() >= g.weights_len
                && out.len() >= g.cin * g.h * g.input_wv,
            "polyphase input gradient: buffers too short for {g:?}"
        );
        let scratch = &mut scratch[..padded];
        scratch.fill(0.0);
        for o in 0..g.cout {
            for y in 0..ho {
                let at = o * self.plane + (y + self.border) * self.row + self.border;
                scratch[at..at + wo].copy_from_slice(&dz[(o * ho + y) * wv..][..wo]);
            }
        }
        match kernels {
            // SAFETY: the CPU has AVX2 and FMA; the lengths are asserted above, and every
            // offset the kernel forms is bounded by the padded layout (see `phase_rows`).
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 | Kernels::Avx2 => unsafe { x86::phases(self, scratch, flipped, out) },
            Kernels::Portable => self.portable(scratch, flipped, out),
        }
        // The columns past `w` are not part of the gradient: zero, not stale values.
        let (h, w, iwv) = (g.h, g.w, g.input_wv);
        for row in out[..g.cin * h * iwv].chunks_exact_mut(iwv) {
            row[w..].fill(0.0);
        }
    }

    /// Rows of phase `py` (input rows `s i + py`, `i` below the count) and its columns (`s j +
    /// px`, `j` below the count): at most `ho` and `wo`, so every tap of every vector of 8
    /// reads within the padded plane.
    fn phase_rows(&self, py: usize) -> usize {
        (self.g.h - py).div_ceil(self.g.stride)
    }

    fn phase_columns(&self, px: usize) -> usize {
        (self.g.w - px).div_ceil(self.g.stride)
    }

    /// Writes the `columns` first of `values` (phase columns `j0..`) into input row `y`'s
    /// columns `s j + px` of channel `c`.
    fn scatter(&self, out: &mut [f32], c: usize, y: usize, px: usize, j0: usize, values: &[f32]) {
        let g = &self.g;
        let row = &mut out[(c * g.h + y) * g.input_wv..][..g.w];
        let columns = self.phase_columns(px);
        for (j, &v) in values.iter().enumerate().take(columns.saturating_sub(j0)) {
            row[g.stride * (j0 + j) + px] = v;
        }
    }

    fn portable(&self, dz: &[f32], flipped: &[f32], out: &mut [f32]) {
        let g = &self.g;
        let (s, kk) = (g.stride, g.k * g.k);
        let per_flipped = g.cout * kk;
        let mut acc = vec![0f32; g.wv];
        for c in 0..g.cin {
            for py in 0..s {
                for px in 0..s {
                    let taps = &self.taps[py * s + px];
                    for i in 0..self.phase_rows(py) {
                        acc.fill(0.0);
                        for o in 0..g.cout {
                            let base = o * self.plane + i * self.row;
                            for &(at, f) in taps {
                                let wgt = flipped[c * per_flipped + o * kk + f];
                                for (a, &v) in acc.iter_mut().zip(&dz[base + at..][..g.wv]) {
                                    *a += wgt * v;
                                }
                            }
                        }
                        self.scatter(out, c, s * i + py, px, 0, &acc);
                    }
                }
            }
        }
    }
}

/// Writes the weights of [`Planar::transposed`] for `weights` of `g` (`[cout, cin, k, k]`):
/// `flipped[c, o, k - 1 - dy, k - 1 - dx] = weights[o, c, dy, dx]`.
pub(crate) fn flip_weights(g: &Planar, weights: &[f32], flipped: &mut [f32]) {
    let (k, per) = (g.k, g.weights_per_output());
    let per_flipped = g.cout * k * k;
    for o in 0..g.cout {
        for c in 0..g.cin {
            for dy in 0..k {
                for dx in 0..k {
                    flipped[c * per_flipped + (o * k + k - 1 - dy) * k + k - 1 - dx] =
                        weights[o * per + (c * k + dy) * k + dx];
                }
            }
        }
    }
}

/// Which kernels run the convolutions, chosen at run time from the CPU's features. The AVX-512
/// and AVX2 ones compute the same bits; the portable ones (no FMA) round differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernels {
    /// AVX-512F with AVX2 and FMA: 16 lanes, the AVX2 kernels' sums (the polyphase input
    /// gradient keeps the AVX2 kernel).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 and FMA: 8 lanes.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Any CPU: separate multiply and add.
    Portable,
}

impl Kernels {
    /// The fastest kernels this CPU runs (the features are detected once by the standard
    /// library and cached).
    pub(crate) fn detect() -> Kernels {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
            if fma && std::is_x86_feature_detected!("avx512f") {
                return Kernels::Avx512;
            }
            if fma {
                return Kernels::Avx2;
            }
        }
        Kernels::Portable
    }
}

/// A convolution's offsets, computed once per call rather than in the inner loops.
struct Offsets {
    /// Values per padded input plane and row.
    plane: usize,
    row: usize,
    stride: usize,
    lead: usize,
    /// [`Planar::tap`] of every kernel column.
    taps: Vec<usize>,
}

impl Offsets {
    fn new(g: &Planar) -> Self {
        Offsets {
            plane: g.hp * g.row_len(),
            row: g.row_len(),
            stride: g.stride,
            lead: g.lead,
            taps: (0..g.k).map(|dx| g.tap(dx)).collect(),
        }
    }

    /// Where padded input row `stride y + dy` (after the lead) of channel `c` starts.
    #[inline(always)]
    fn input_row(&self, c: usize, y: usize, dy: usize) -> usize {
        c * self.plane + (self.stride * y + dy + self.lead) * self.row
    }
}

fn portable_forward(g: &Planar, image: &[f32], weights: &[f32], out: &mut [f32]) {
    let (k, ho, wv, per) = (g.k, g.ho(), g.wv(), g.weights_per_output());
    let at = Offsets::new(g);
    for o in 0..g.cout {
        for y in 0..ho {
            let dst = &mut out[(o * ho + y) * wv..(o * ho + y + 1) * wv];
            dst.fill(0.0);
            for c in 0..g.cin {
                for dy in 0..k {
                    let row = at.input_row(c, y, dy);
                    for dx in 0..k {
                        let wgt = weights[o * per + (c * k + dy) * k + dx];
                        let src = &image[row + at.taps[dx]..][..wv];
                        for (v, &x) in dst.iter_mut().zip(src) {
                            *v += wgt * x;
                        }
                    }
                }
            }
        }
    }
}

fn portable_weight_grad(g: &Planar, image: &[f32], dz: &[f32], grad: &mut [f32]) {
    let (k, ho, wv, per) = (g.k, g.ho(), g.wv(), g.weights_per_output());
    let at = Offsets::new(g);
    for o in 0..g.cout {
        for c in 0..g.cin {
            for dy in 0..k {
                for dx in 0..k {
                    let mut sum = 0f32;
                    for y in 0..ho {
                        let src = &image[at.input_row(c, y, dy) + at.taps[dx]..][..wv];
                        let d = &dz[(o * ho + y) * wv..][..wv];
                        for (&gz, &x) in d.iter().zip(src) {
                            sum += gz * x;
                        }
                    }
                    grad[o * per + (c * k + dy) * k + dx] += sum;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512;

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! AVX2 + FMA kernels. Every function requires the CPU features (checked by the callers)
    //! and buffers of the lengths `Planar::check` asserts. The geometry itself needs no
    //! check here: a `Planar` exists only as `Planar::new` accepted it, which bounds every
    //! offset below (formed without checks, per pixel) by those lengths, so none can wrap.

    use std::arch::x86_64::*;

    use super::{Offsets, Phases, Planar};

    // Tiles of up to 6 output channels: in the forward pass with 2 vectors of pixels, 12
    // accumulators (with the 2 input vectors and the broadcast weight, 15 of the 16 registers:
    // a wider tile spilled); in the weight gradient with 2 kernel columns, 12 accumulators.

    /// Calls `$tile::<O>(args.., o)` for every block of up to 6 output channels starting at
    /// `o`, with `O` the block's size as a constant (so that its accumulators are registers).
    macro_rules! by_channel_blocks {
        ($cout:expr, $tile:ident($($arg:expr),*)) => {{
            let mut o = 0;
            while o < $cout {
                let take = ($cout - o).min(6);
                match take {
                    1 => $tile::<1>($($arg,)* o),
                    2 => $tile::<2>($($arg,)* o),
                    3 => $tile::<3>($($arg,)* o),
                    4 => $tile::<4>($($arg,)* o),
                    5 => $tile::<5>($($arg,)* o),
                    _ => $tile::<6>($($arg,)* o),
                }
                o += take;
            }
        }};
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward(g: &Planar, image: &[f32], weights: &[f32], out: &mut [f32]) {
        let at = Offsets::new(g);
        // SAFETY: as this function's.
        unsafe { by_channel_blocks!(g.cout, forward_channels(g, &at, image, weights, out)) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_channels<const O: usize>(
        g: &Planar,
        at: &Offsets,
        image: &[f32],
        weights: &[f32],
        out: &mut [f32],
        o: usize,
    ) {
        // Vectors of 8 outputs, row by row; a tile takes two, from the next row if need be
        // (rows of 8 would otherwise leave half the accumulators idle).
        let per_row = g.wv() / 8;
        let vectors = g.ho() * per_row;
        let place = |v: usize| (v / per_row, v % per_row * 8);
        let mut v = 0;
        // SAFETY: as this function's; every place is an output vector.
        unsafe {
            while v + 2 <= vectors {
                let places = [place(v), place(v + 1)];
                forward_tile::<O, 2>(g, at, image, weights, out, o, places);
                v += 2;
            }
            if v < vectors {
                forward_tile::<O, 1>(g, at, image, weights, out, o, [place(v)]);
            }
        }
    }

    /// Output channels `o..o + O` at the X vectors of 8 pixels starting at `places` (row,
    /// column).
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn forward_tile<const O: usize, const X: usize>(
        g: &Planar,
        at: &Offsets,
        image: &[f32],
        weights: &[f32],
        out: &mut [f32],
        o: usize,
        places: [(usize, usize); X],
    ) {
        let (k, ho, wv) = (g.k, g.ho(), g.wv());
        let per = g.weights_per_output();
        let mut acc = [[_mm256_setzero_ps(); X]; O];
        let (ip, wgt) = (image.as_ptr(), weights.as_ptr());
        // SAFETY: rows s y + dy + lead < hp, and within a phase x0 + (column of the tap) + 8
        // <= wq (both checked by `Planar::build`, so the offsets stay below `image_len`);
        // weights within cout x per; outputs within cout x ho x wv (lengths checked by the
        // callers).
        unsafe {
            for c in 0..g.cin {
                for dy in 0..k {
                    // A plain loop: `array::map` is a call here, which spills every
                    // accumulator around it.
                    let mut rows = [ip; X];
                    for (row, &(y, x0)) in rows.iter_mut().zip(&places) {
                        *row = ip.add(at.input_row(c, y, dy) + x0);
                    }
                    let wrow = wgt.add(o * per + (c * k + dy) * k);
                    for (dx, &tap) in at.taps.iter().enumerate() {
                        let mut v = [_mm256_setzero_ps(); X];
                        for (v, &row) in v.iter_mut().zip(&rows) {
                            *v = _mm256_loadu_ps(row.add(tap));
                        }
                        for (oi, acc) in acc.iter_mut().enumerate() {
                            let w = _mm256_broadcast_ss(&*wrow.add(oi * per + dx));
                            for (a, &v) in acc.iter_mut().zip(&v) {
                                *a = _mm256_fmadd_ps(w, v, *a);
                            }
                        }
                    }
                }
            }
            let op = out.as_mut_ptr();
            for (oi, acc) in acc.iter().enumerate() {
                for (&a, &(y, x0)) in acc.iter().zip(&places) {
                    _mm256_storeu_ps(op.add(((o + oi) * ho + y) * wv + x0), a);
                }
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn weight_grad(g: &Planar, image: &[f32], dz: &[f32], grad: &mut [f32]) {
        let at = Offsets::new(g);
        // SAFETY: as this function's.
        unsafe { by_channel_blocks!(g.cout, grad_channels(g, &at, image, dz, grad)) }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn grad_channels<const O: usize>(
        g: &Planar,
        at: &Offsets,
        image: &[f32],
        dz: &[f32],
        grad: &mut [f32],
        o: usize,
    ) {
        for c in 0..g.cin {
            for dy in 0..g.k {
                let mut dx = 0;
                // SAFETY: as this function's; dx + D <= k.
                unsafe {
                    while dx + 2 <= g.k {
                        grad_tile::<O, 2>(g, at, image, dz, grad, o, c, dy, dx);
                        dx += 2;
                    }
                    if dx < g.k {
                        grad_tile::<O, 1>(g, at, image, dz, grad, o, c, dy, dx);
                    }
                }
            }
        }
    }

    /// The gradient of weights `[o..o + O, c, dy, dx..dx + D]` over the whole image.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn grad_tile<const O: usize, const D: usize>(
        g: &Planar,
        at: &Offsets,
        image: &[f32],
        dz: &[f32],
        grad: &mut [f32],
        o: usize,
        c: usize,
        dy: usize,
        dx: usize,
    ) {
        let (k, ho, wv) = (g.k, g.ho(), g.wv());
        let per = g.weights_per_output();
        let mut acc = [[_mm256_setzero_ps(); D]; O];
        let (ip, dp) = (image.as_ptr(), dz.as_ptr());
        let taps: [usize; D] = std::array::from_fn(|d| at.taps[dx + d]);
        // SAFETY: as in `forward_tile`; dz within cout x ho x wv.
        unsafe {
            for y in 0..ho {
                let row = ip.add(at.input_row(c, y, dy));
                let mut x = 0;
                while x < wv {
                    let mut v = [_mm256_setzero_ps(); D];
                    for (v, &t) in v.iter_mut().zip(&taps) {
                        *v = _mm256_loadu_ps(row.add(t + x));
                    }
                    for (oi, acc) in acc.iter_mut().enumerate() {
                        let gz = _mm256_loadu_ps(dp.add(((o + oi) * ho + y) * wv + x));
                        for (a, &v) in acc.iter_mut().zip(&v) {
                            *a = _mm256_fmadd_ps(gz, v, *a);
                        }
                    }
                    x += 8;
                }
            }
            for (oi, acc) in acc.iter().enumerate() {
                for (d, &a) in acc.iter().enumerate() {
                    grad[(o + oi) * per + (c * k + dy) * k + dx + d] += horizontal_sum(a);
                }
            }
        }
    }

    /// [`Phases`]'s input gradient: blocks of up to 6 input channels, vectors of 8 phase
    /// columns, two at a time.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn phases(p: &Phases, dz: &[f32], flipped: &[f32], out: &mut [f32]) {
        // SAFETY: as this function's.
        unsafe { by_channel_blocks!(p.g.cin, phase_channels(p, dz, flipped, out)) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn phase_channels<const O: usize>(
        p: &Phases,
        dz: &[f32],
        flipped: &[f32],
        out: &mut [f32],
        c: usize,
    ) {
        let (s, vectors) = (p.g.stride, p.g.wv / 8);
        for py in 0..s {
            for px in 0..s {
                let taps = &p.taps[py * s + px];
                for i in 0..p.phase_rows(py) {
                    let mut v = 0;
                    // SAFETY: as this function's; every vector is one of the row's.
                    unsafe {
                        while v + 2 <= vectors {
                            phase_tile::<O, 2>(p, taps, dz, flipped, out, c, [py, px, i], v * 8);
                            v += 2;
                        }
                        if v < vectors {
                            phase_tile::<O, 1>(p, taps, dz, flipped, out, c, [py, px, i], v * 8);
                        }
                    }
                }
            }
        }
    }

    /// Input channels `c..c + O` at X vectors of 8 phase columns from `j0`, of phase row `i`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn phase_tile<const O: usize, const X: usize>(
        p: &Phases,
        taps: &[(usize, usize)],
        dz: &[f32],
        flipped: &[f32],
        out: &mut [f32],
        c: usize,
        [py, px, i]: [usize; 3],
        j0: usize,
    ) {
        let g = &p.g;
        let kk = g.k * g.k;
        let per_flipped = g.cout * kk;
        let mut acc = [[_mm256_setzero_ps(); X]; O];
        let (dp, fp) = (dz.as_ptr(), flipped.as_ptr());
        // SAFETY: phase row i < ho and vector j0 + 8 <= wv, so with a tap's offset (at most 2
        // borders in each direction) the loads stay within channel o's padded plane of `(ho + 2
        // border) x (wv + 2 border)`, all within `cout x plane` (asserted by the caller); the
        // weights within `cin x cout x k x k`.
        unsafe {
            for o in 0..g.cout {
                let base = dp.add(o * p.plane + i * p.row + j0);
                let wrow = fp.add(c * per_flipped + o * kk);
                for &(at, f) in taps {
                    let mut v = [_mm256_setzero_ps(); X];
                    for (x, v) in v.iter_mut().enumerate() {
                        *v = _mm256_loadu_ps(base.add(at + 8 * x));
                    }
                    for (ci, acc) in acc.iter_mut().enumerate() {
                        let w = _mm256_broadcast_ss(&*wrow.add(ci * per_flipped + f));
                        for (a, &v) in acc.iter_mut().zip(&v) {
                            *a = _mm256_fmadd_ps(w, v, *a);
                        }
                    }
                }
            }
        }
        let mut values = [0f32; 16];
        for (ci, acc) in acc.iter().enumerate() {
            for (x, &a) in acc.iter().enumerate() {
                // SAFETY: 8 values into a 16-value array at 0 or 8.
                unsafe { _mm256_storeu_ps(values.as_mut_ptr().add(8 * x), a) };
            }
            p.scatter(out, c + ci, g.stride * i + py, px, j0, &values[..8 * X]);
        }
    }

    /// The sum of a vector's 8 values, in a fixed order.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn horizontal_sum(v: __m256) -> f32 {
        let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both kernels against plain sums (f64) of a convolution, its weight gradient and its
    /// input gradient, for a stride-1 5 x 5 convolution and a strided 3 x 3 and 1 x 1 one (the
    /// latter reading an image padded for 3 x 3), on odd sizes with more channels than one tile.
    #[test]
    fn direct_convolution_matches_the_definition() {
        let same = Planar::same(3, 8, 5, 11, 13).unwrap();
        let strided = Planar::new(5, 7, 3, [9, 10], 2, 1).unwrap();
        let projection = Planar::new(4, 13, 1, [9, 11], 2, 1).unwrap();
        for g in [same, strided, projection] {
            check_geometry(&g);
        }
    }

    /// The AVX-512 kernels compute the AVX2 kernels' bits exactly (the same fused multiply-adds
    /// in the same order), on geometries that take every path: rows of 8, 16, 24, 40 and 56
    /// outputs (pairs of vectors within a row and across rows, tiles of 3 and fewer, a vector
    /// left over), channel counts that leave blocks, pairs and single channels, kernels of 1, 3,
    /// 5 and 7 (tap chunks of 9 and fewer), strides 1, 2 and 3. Skipped, with a line saying so,
    /// on a CPU without AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_kernels_equal_the_avx2_ones_bit_for_bit() {
        if Kernels::detect() != Kernels::Avx512 {
            println!("skipped: this CPU has no AVX-512F (or no AVX2 and FMA)");
            return;
        }
        let geometries = [
            Planar::same(3, 8, 5, 11, 13).unwrap(),
            Planar::same(16, 16, 3, 8, 8).unwrap(),
            Planar::same(5, 13, 3, 7, 20).unwrap(),
            Planar::same(4, 11, 7, 9, 33).unwrap(),
            Planar::same(3, 6, 5, 32, 32).unwrap(),
            Planar::same(2, 17, 3, 5, 56).unwrap(),
            Planar::new(5, 7, 3, [9, 10], 2, 1).unwrap(),
            Planar::new(16, 32, 3, [32, 32], 2, 1).unwrap(),
            Planar::new(4, 13, 1, [9, 11], 2, 1).unwrap(),
            Planar::new(6, 9, 3, [17, 50], 3, 1).unwrap(),
        ];
        for g in geometries {
            let image: Vec<f32> = (0..g.image_len())
                .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
                .collect();
            let weights: Vec<f32> = (0..g.weights_len)
                .map(|i| ((i * 104_729 % 997) as f32 / 997.0) - 0.5)
                .collect();
            let dz: Vec<f32> = (0..g.out_len())
                .map(|i| ((i * 31 % 17) as f32 / 17.0) - 0.5)
                .collect();
            let (mut out2, mut out512) = (vec![f32::NAN; g.out_len()], vec![f32::NAN; g.out_len()]);
            let start = vec![0.5f32; g.weights_len];
            let (mut grad2, mut grad512) = (start.clone(), start.clone());
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked above); the buffers have the
            // geometry's lengths.
            unsafe {
                x86::forward(&g, &image, &weights, &mut out2);
                avx512::forward(&g, &image, &weights, &mut out512);
                x86::weight_grad(&g, &image, &dz, &mut grad2);
                avx512::weight_grad(&g, &image, &dz, &mut grad512);
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out2), bits(&out512), "forward, {g:?}");
            assert!(
                out512.iter().all(|v| v.is_finite()),
                "forward wrote every output"
            );
            assert_eq!(bits(&grad2), bits(&grad512), "weight gradient, {g:?}");
            let changed = grad512.iter().zip(&start).filter(|(a, b)| a != b).count();
            assert!(
                changed > g.weights_len / 2,
                "{g:?}: {changed} weights changed"
            );
        }
    }

    /// The polyphase input gradient of strided convolutions gives the bits of the spread
    /// version it replaced (the output gradient spread onto the input grid, zeros between, then
    /// the stride-1 transposed convolution), with the dispatched and the portable kernels, on
    /// strides 2 and 3, kernels 1, 3, 5 and 7, odd sizes and channel counts that leave blocks.
    #[test]
    fn polyphase_input_gradient_equals_the_spread_one_bit_for_bit() {
        let geometries = [
            Planar::new(5, 7, 3, [9, 10], 2, 1).unwrap(),
            Planar::new(16, 32, 3, [32, 32], 2, 1).unwrap(),
            Planar::new(4, 13, 1, [9, 11], 2, 1).unwrap(),
            Planar::new(6, 9, 3, [17, 50], 3, 1).unwrap(),
            Planar::new(3, 5, 5, [13, 7], 2, 2).unwrap(),
            Planar::new(2, 3, 7, [16, 21], 3, 3).unwrap(),
            Planar::new(7, 8, 3, [8, 8], 2, 1).unwrap(),
        ];
        type Conv = fn(&Planar, &[f32], &[f32], &mut [f32]);
        for g in geometries {
            let weights: Vec<f32> = (0..g.weights_len)
                .map(|i| ((i * 104_729 % 997) as f32 / 997.0) - 0.5)
                .collect();
            let dz: Vec<f32> = (0..g.out_len())
                .map(|i| {
                    if i % g.wv() < g.wo() {
                        ((i * 31 % 17) as f32 / 17.0) - 0.5
                    } else {
                        0.0
                    }
                })
                .collect();
            let mut flipped = vec![0f32; weights.len()];
            flip_weights(&g, &weights, &mut flipped);
            let back = g.transposed();
            let phases = Phases::new(&g);
            let kernels: [(&str, Conv); 2] =
                [("dispatched", forward), ("portable", portable_forward)];
            for (name, conv) in kernels {
                // The spread version.
                let mut spread = vec![0f32; back.image_len()];
                let rows = back.rows();
                for o in 0..g.cout {
                    for y in 0..g.ho() {
                        for x in 0..g.wo() {
                            spread[rows.at(o, g.stride * y, g.stride * x)] =
                                dz[(o * g.ho() + y) * g.wv() + x];
                        }
                    }
                }
                let mut want = vec![f32::NAN; back.out_len()];
                conv(&back, &spread, &flipped, &mut want);
                let mut scratch = vec![f32::NAN; back.image_len()];
                let mut got = vec![f32::NAN; back.out_len()];
                if name == "dispatched" {
                    input_grad(&g, &dz, &flipped, &mut scratch, &mut got);
                } else {
                    phases.input_grad_portable(&dz, &flipped, &mut scratch, &mut got);
                }
                for c in 0..g.cin {
                    for y in 0..g.h {
                        let at = (c * g.h + y) * g.input_wv;
                        let (a, b) = (&got[at..at + g.w], &want[at..at + g.w]);
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(a), bits(b), "{name} {g:?}: channel {c} row {y}");
                        assert!(got[at + g.w..at + g.input_wv].iter().all(|&v| v == 0.0));
                    }
                }
            }
        }
    }

    /// A kernel wider than the border would read before the first stored row and column:
    /// `pad - k / 2` would wrap in a release build and the kernels would read far outside the
    /// image. Refused, whatever the stride; a border at least half the kernel is accepted.
    #[test]
    fn too_little_padding_is_refused() {
        for (k, pad, stride) in [(5, 1, 1), (3, 0, 1), (3, 0, 2), (7, 2, 3)] {
            assert_eq!(
                Planar::new(2, 3, k, [8, 8], stride, pad),
                Err(GeometryError::Padding { pad, k }),
                "k {k}, pad {pad}, stride {stride}"
            );
        }
        // A 1 x 1 convolution reading an image stored for 3 x 3 ones (lead 1), and a border
        // wider than needed.
        assert!(Planar::new(2, 3, 1, [8, 8], 2, 1).is_ok());
        assert!(Planar::new(2, 3, 3, [8, 8], 1, 4).is_ok());
    }

    #[test]
    fn zero_sizes_and_even_kernels_are_refused() {
        let refused = |cin, cout, k, h, w, stride| Planar::new(cin, cout, k, [h, w], stride, 2);
        assert_eq!(
            refused(0, 3, 3, 8, 8, 1),
            Err(GeometryError::Zero("input channels"))
        );
        assert_eq!(
            refused(2, 0, 3, 8, 8, 1),
            Err(GeometryError::Zero("output channels"))
        );
        assert_eq!(
            refused(2, 3, 0, 8, 8, 1),
            Err(GeometryError::Zero("kernel size"))
        );
        assert_eq!(
            refused(2, 3, 3, 0, 8, 1),
            Err(GeometryError::Zero("input height"))
        );
        assert_eq!(
            refused(2, 3, 3, 8, 0, 1),
            Err(GeometryError::Zero("input width"))
        );
        assert_eq!(
            refused(2, 3, 3, 8, 8, 0),
            Err(GeometryError::Zero("stride"))
        );
        assert_eq!(refused(2, 3, 4, 8, 8, 1), Err(GeometryError::EvenKernel(4)));
    }

    /// Sizes that would wrap in a release build, or exceed what an allocation (and a pointer
    /// offset) can hold, are refused before any buffer exists; so is a geometry whose own
    /// sizes fit but whose input gradient's convolution would not.
    #[test]
    fn sizes_that_overflow_are_refused() {
        let too_large =
            |r: Result<Planar, GeometryError>| matches!(r, Err(GeometryError::TooLarge(_)));
        let big = usize::MAX;
        // Width rounded up to vectors, padded height, twice the padding.
        assert!(too_large(Planar::same(1, 1, 1, 4, big)));
        assert!(too_large(Planar::same(1, 1, 3, big, 4)));
        assert!(too_large(Planar::new(1, 1, 3, [4, 4], 1, big / 2 + 1)));
        // channels x rows x row length wraps; fits in usize but not in isize::MAX bytes.
        assert!(too_large(Planar::same(big / 8, 1, 1, 8, 8)));
        assert!(too_large(Planar::same(1 << 46, 1, 1, 1 << 12, 1)));
        assert!(too_large(Planar::same(1, 1 << 60, 1, 1, 1)));
        assert!(too_large(Planar::same(1 << 31, 1 << 31, 1, 1, 1)));
        // Strided to a single output, it fits; its input gradient (2^40 channels at the full
        // 2^12 x 2^12 size) would not.
        let (c, side) = (1 << 40, 1 << 12);
        assert!(Planar::build(1, c, 1, [side, side], side, 0).is_ok());
        assert!(too_large(Planar::new(1, c, 1, [side, side], side, 0)));
        // The error of the crate names the reason.
        let e = crate::error::ModelError::from(Planar::same(1, 1, 2, 4, 4).unwrap_err());
        assert!(
            matches!(&e, crate::error::ModelError::Architecture { reason } if reason.contains("even")),
            "{e}"
        );
    }

    /// Buffers shorter than the geometry's sizes are refused (a panic, before any raw
    /// pointer is formed), by both kernels and for each buffer.
    #[test]
    fn short_buffers_are_refused() {
        let g = Planar::new(3, 7, 3, [9, 10], 2, 1).unwrap();
        let image = vec![0f32; g.image_len()];
        let weights = vec![0f32; g.weights_len];
        let out = vec![0f32; g.out_len()];
        let short = |v: &[f32]| v[..v.len() - 1].to_vec();
        type Kernel = fn(&Planar, &[f32], &[f32], &mut [f32]);
        let kernels: [Kernel; 2] = [forward, weight_grad];
        for (name, kernel) in ["forward", "weight gradient"].into_iter().zip(kernels) {
            for which in 0..3 {
                let mut bufs = [image.clone(), weights.clone(), out.clone()];
                bufs[which] = short(&bufs[which]);
                let [image, weights, mut out] = bufs;
                let refused = std::panic::catch_unwind(move || {
                    if name == "forward" {
                        kernel(&g, &image, &weights, &mut out);
                    } else {
                        // weight_grad(g, image, dz, grad): dz is output-shaped, grad weights.
                        kernel(&g, &image, &out, &mut weights.clone());
                    }
                });
                assert!(refused.is_err(), "{name}: short buffer {which} accepted");
            }
            // And the full lengths are accepted.
            let (mut o, mut w) = (out.clone(), weights.clone());
            if name == "forward" {
                kernel(&g, &image, &weights, &mut o);
            } else {
                kernel(&g, &image, &out, &mut w);
            }
        }
    }

    fn check_geometry(g: &Planar) {
        let (k, h, w, s, per) = (g.k, g.h, g.w, g.stride, g.weights_per_output());
        let (ho, wo) = (g.ho(), g.wo());
        let sample: Vec<f32> = (0..g.cin * h * w)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let weights: Vec<f32> = (0..g.cout * per)
            .map(|i| ((i * 104_729 % 997) as f32 / 997.0) - 0.5)
            .collect();
        // The output gradient, zero in the columns past `wo`.
        let dz: Vec<f32> = (0..g.out_len())
            .map(|i| {
                if i % g.wv() < wo {
                    ((i * 31 % 17) as f32 / 17.0) - 0.5
                } else {
                    0.0
                }
            })
            .collect();
        let pad = (k / 2) as isize;
        let inside = |y: isize, x: isize| y >= 0 && x >= 0 && y < h as isize && x < w as isize;
        let weight = |o: usize, c: usize, dy: usize, dx: usize| -> f64 {
            weights[o * per + (c * k + dy) * k + dx] as f64
        };
        let mut out_def = vec![0f64; g.cout * ho * wo];
        let mut input_grad_def = vec![0f64; g.cin * h * w];
        let mut weight_grad_def = vec![0f64; weights.len()];
        for o in 0..g.cout {
            for c in 0..g.cin {
                for dy in 0..k {
                    for dx in 0..k {
                        for y in 0..ho {
                            for x in 0..wo {
                                let sy = (s * y + dy) as isize - pad;
                                let sx = (s * x + dx) as isize - pad;
                                if !inside(sy, sx) {
                                    continue;
                                }
                                let input = (c * h + sy as usize) * w + sx as usize;
                                let z = dz[(o * ho + y) * g.wv() + x] as f64;
                                out_def[(o * ho + y) * wo + x] +=
                                    weight(o, c, dy, dx) * sample[input] as f64;
                                weight_grad_def[o * per + (c * k + dy) * k + dx] +=
                                    z * sample[input] as f64;
                                input_grad_def[input] += weight(o, c, dy, dx) * z;
                            }
                        }
                    }
                }
            }
        }
        let mut image = vec![0f32; g.image_len()];
        g.put(&sample, &mut image);
        let back = g.transposed();
        let mut flipped = vec![0f32; weights.len()];
        flip_weights(g, &weights, &mut flipped);
        let close = |a: f32, b: f64, what: String| {
            assert!((a as f64 - b).abs() < 1e-4, "{g:?} {what}: {a} vs {b}")
        };
        type Kernel = fn(&Planar, &[f32], &[f32], &mut [f32]);
        let kernels: [(&str, Kernel, Kernel); 2] = [
            ("dispatched", forward, weight_grad),
            ("portable", portable_forward, portable_weight_grad),
        ];
        println!(
            "direct convolution kernels of this CPU: {:?}",
            Kernels::detect()
        );
        for (name, conv, grad) in kernels {
            let mut out = vec![f32::NAN; g.out_len()];
            conv(g, &image, &weights, &mut out);
            for (i, &def) in out_def.iter().enumerate() {
                close(
                    out[i / wo * g.wv() + i % wo],
                    def,
                    format!("{name} output {i}"),
                );
            }
            let mut scratch = vec![0f32; back.image_len()];
            let mut input_grad = vec![f32::NAN; back.out_len()];
            super::input_grad(g, &dz, &flipped, &mut scratch, &mut input_grad);
            for (i, &def) in input_grad_def.iter().enumerate() {
                let got = input_grad[i / w * back.wv() + i % w];
                close(got, def, format!("input gradient {i}"));
            }
            // Accumulated onto a starting value of 1.
            let mut wg = vec![1f32; weights.len()];
            grad(g, &image, &dz, &mut wg);
            for (i, (&a, &b)) in wg.iter().zip(&weight_grad_def).enumerate() {
                close(a - 1.0, b, format!("{name} weight gradient {i}"));
            }
        }
    }
}

/// A speed probe, not run by default: `cargo test --release -p memia-models --lib
/// kernel_throughput -- --ignored --nocapture` prints each kernel's GFLOP/s on the CNN's and the
/// ResNet's convolutions (docs/PERFORMANCE.md), checking on the way that the AVX-512 and AVX2
/// weight gradients it timed agree bit for bit.
#[cfg(all(test, target_arch = "x86_64"))]
mod speed {
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore = "a speed probe: run it by name with --ignored --nocapture"]
    fn kernel_throughput() {
        if Kernels::detect() != Kernels::Avx512 {
            println!("skipped: this CPU has no AVX-512F (or no AVX2 and FMA)");
            return;
        }
        let geometries = [
            (
                "ResNet stem 3->16, 32x32",
                Planar::same(3, 16, 3, 32, 32).unwrap(),
            ),
            (
                "ResNet 16->16, 32x32",
                Planar::same(16, 16, 3, 32, 32).unwrap(),
            ),
            (
                "ResNet 16->32, stride 2",
                Planar::new(16, 32, 3, [32, 32], 2, 1).unwrap(),
            ),
            (
                "ResNet 32->32, 16x16",
                Planar::same(32, 32, 3, 16, 16).unwrap(),
            ),
            ("ResNet 64->64, 8x8", Planar::same(64, 64, 3, 8, 8).unwrap()),
            (
                "CNN 3->6, 5x5, 32x32",
                Planar::same(3, 6, 5, 32, 32).unwrap(),
            ),
            (
                "CNN 6->16, 5x5, 16x16",
                Planar::same(6, 16, 5, 16, 16).unwrap(),
            ),
        ];
        println!("GFLOP/s, one core: forward AVX2, AVX-512 | weight gradient AVX2, AVX-512");
        for (name, g) in geometries {
            let image = vec![0.5f32; g.image_len()];
            let weights = vec![0.25f32; g.weights_len];
            let dz = vec![0.1f32; g.out_len()];
            let mut out = vec![0f32; g.out_len()];
            let (mut avx2, mut wide) = (vec![0f32; g.weights_len], vec![0f32; g.weights_len]);
            let flops = 2.0 * (g.cout * g.ho() * g.wo() * g.cin * g.k * g.k) as f64;
            let reps = (5e9 / flops) as usize + 1;
            let rate = |f: &mut dyn FnMut()| {
                f();
                let t = Instant::now();
                for _ in 0..reps {
                    f();
                }
                flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9
            };
            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (checked above); the buffers have the
            // geometry's lengths.
            let (forward, forward512, grad2, grad512) = unsafe {
                (
                    rate(&mut || x86::forward(&g, &image, &weights, &mut out)),
                    rate(&mut || avx512::forward(&g, &image, &weights, &mut out)),
                    rate(&mut || x86::weight_grad(&g, &image, &dz, &mut avx2)),
                    rate(&mut || avx512::weight_grad(&g, &image, &dz, &mut wide)),
                )
            };
            assert_eq!(avx2, wide, "{name}: the kernels' sums differ");
            println!("{name:26} {forward:6.1} {forward512:6.1} | {grad2:6.1} {grad512:6.1}");
        }
    }
}
