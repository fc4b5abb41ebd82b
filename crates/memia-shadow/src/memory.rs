//! How much memory a plan may use, and the error that refuses one that needs more.
//!
//! A plan's sizes come from users (`--models 1000000000`, `hidden = [1000000000]`): without a
//! check, the first allocation of a keep matrix or of a model's parameters aborts the process
//! ("memory allocation of 1797000000000 bytes failed") or drives the machine into swap. memia
//! instead counts, with checked arithmetic and before allocating, the bytes a step needs at
//! least, and refuses a step that needs more than the memory available: the error names the
//! setting, the size needed and the limit.
//!
//! The limit, in this order:
//! 1. `MEMIA_MEMORY_LIMIT` (bytes, or with a suffix: `512M`, `16G`, `1.5T`, powers of 1000;
//!    `16GiB`, powers of 1024): to plan on a small login node a run meant for a larger machine,
//!    or to refuse earlier;
//! 2. on Linux, the memory available now: `MemAvailable` in `/proc/meminfo`, or less where a
//!    cgroup (v2: `memory.max` minus `memory.current`; v1: `memory.limit_in_bytes` minus
//!    `memory.usage_in_bytes`) caps the process lower (Slurm jobs, containers);
//! 3. elsewhere, a fixed [`FALLBACK_LIMIT`] of 256 GB.
//!
//! The counts are lower bounds (the arrays memia must hold, not every temporary), so a step
//! that is refused could never have run; one that passes may still need somewhat more.

use std::path::Path;

/// The limit where the available memory cannot be read (not Linux, no `/proc`): 256 GB,
/// more than most single machines hold, so that only sizes no machine memia runs on could
/// hold are refused there.
pub const FALLBACK_LIMIT: u64 = 256_000_000_000;

/// The environment variable that sets the limit.
pub const LIMIT_VARIABLE: &str = "MEMIA_MEMORY_LIMIT";

/// The memory a plan may use, and where the number comes from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryLimit {
    /// Bytes.
    pub bytes: u64,
    /// Where `bytes` comes from, e.g. `MemAvailable in /proc/meminfo`.
    pub source: String,
}

impl MemoryLimit {
    /// The limit of this process now: `MEMIA_MEMORY_LIMIT`, else the memory available to it
    /// (Linux), else [`FALLBACK_LIMIT`] (see the module's documentation).
    ///
    /// Fails only on a `MEMIA_MEMORY_LIMIT` that does not parse, with the variable named.
    pub fn detect() -> crate::Result<Self> {
        if let Some(text) = std::env::var_os(LIMIT_VARIABLE) {
            let text = text.to_string_lossy();
            let bytes = parse_bytes(&text).ok_or_else(|| {
                crate::error::invalid(
                    LIMIT_VARIABLE,
                    format!(
                        "'{text}' is not a size: give bytes, optionally with a suffix such as 512M, 16G, 1.5T (powers of 1000) or 16GiB (powers of 1024)"
                    ),
                )
            })?;
            return Ok(MemoryLimit {
                bytes,
                source: format!("{LIMIT_VARIABLE}={text}"),
            });
        }
        Ok(Self::available().unwrap_or(MemoryLimit {
            bytes: FALLBACK_LIMIT,
            source: format!(
                "memia's fixed limit where the available memory cannot be read; {LIMIT_VARIABLE} sets another"
            ),
        }))
    }

    /// The memory available to this process now (Linux): `MemAvailable`, or less where a
    /// cgroup caps the process; `None` where `/proc/meminfo` cannot be read.
    pub fn available() -> Option<Self> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib: u64 = meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix("MemAvailable:")?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })?;
        let mut limit = MemoryLimit {
            bytes: kib.saturating_mul(1024),
            source: format!("MemAvailable in /proc/meminfo; {LIMIT_VARIABLE} sets another limit"),
        };
        if let Some((left, file)) = cgroup_room()
            && left < limit.bytes
        {
            limit = MemoryLimit {
                bytes: left,
                source: format!(
                    "what this process's cgroup ({file}) has left; {LIMIT_VARIABLE} sets another limit"
                ),
            };
        }
        Some(limit)
    }

    /// `Ok` when `needed` bytes (`None`: a count that overflowed) fit in the limit; otherwise
    /// the error that refuses `setting = value`, saying what `what` needs.
    pub fn check(
        &self,
        setting: &'static str,
        value: impl Into<String>,
        what: impl Into<String>,
        needed: Option<u64>,
    ) -> crate::Result<()> {
        match needed {
            Some(bytes) if bytes <= self.bytes => Ok(()),
            _ => Err(crate::ShadowError::TooLarge(Box::new(TooLarge {
                setting,
                value: value.into(),
                what: what.into(),
                needed,
                limit: self.clone(),
                hint: None,
            }))),
        }
    }
}

/// What [`crate::ShadowError::TooLarge`] reports: the setting at fault and its value, what
/// needs the memory and how much, and the limit it exceeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// The setting at fault (`models`, `group_size`, `model`, `queries`).
    pub setting: &'static str,
    /// Its value.
    pub value: String,
    /// What needs the memory, e.g. `the keep matrix (1000000000 models x 1797 samples)`.
    pub what: String,
    /// Bytes needed at least (`None`: more than 64 bits can count).
    pub needed: Option<u64>,
    /// The limit it exceeds.
    pub limit: MemoryLimit,
    /// What would fit instead, where memia can say.
    pub hint: Option<String>,
}

impl std::fmt::Display for TooLarge {
    /// `models = 1000000000: the keep matrix (...) alone needs 1.8 TB; this machine has ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} = {}: {} needs {}; {}",
            self.setting,
            self.value,
            self.what,
            describe_need(self.needed),
            self.limit
        )?;
        match &self.hint {
            Some(hint) => write!(f, "; {hint}"),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for MemoryLimit {
    /// `this machine has 23.5 GB available (MemAvailable in /proc/meminfo; ...)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.source.starts_with(LIMIT_VARIABLE) {
            write!(
                f,
                "the limit is {} ({})",
                human_bytes(self.bytes),
                self.source
            )
        } else {
            write!(
                f,
                "this machine has {} available ({})",
                human_bytes(self.bytes),
                self.source
            )
        }
    }
}

/// Refuses a keep matrix of `models` x `samples` (one byte an entry) that does not fit in
/// `limit`: the plan's first allocation, so the one that aborted before this check.
pub fn check_keep_matrix(models: usize, samples: usize, limit: &MemoryLimit) -> crate::Result<()> {
    limit.check(
        "models",
        models.to_string(),
        format!("the keep matrix ({models} models x {samples} samples, a byte each) alone"),
        checked_product(&[models as u64, samples as u64]),
    )
}

/// Refuses training with `trainer` on `pool` that does not fit in `limit`: one model alone
/// (the error names the trainer's setting, such as the model), then `group` models together
/// (the error names the group size and the largest one that fits).
pub fn check_training(
    trainer: &dyn crate::ShadowTrainer,
    pool: &dyn memia_data::Dataset,
    group: usize,
    limit: &MemoryLimit,
) -> crate::Result<()> {
    let fits = |models: usize| {
        trainer
            .memory_needed(pool, models)
            .bytes
            .is_some_and(|b| b <= limit.bytes)
    };
    let one = trainer.memory_needed(pool, 1);
    limit.check(
        one.setting,
        one.value,
        format!("training one model ({})", one.what),
        one.bytes,
    )?;
    if group <= 1 || fits(group) {
        return Ok(());
    }
    // The need grows with the group: the largest group that fits, by bisection.
    let (mut lo, mut hi) = (1, group);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) { lo = mid } else { hi = mid }
    }
    let all = trainer.memory_needed(pool, group);
    Err(crate::ShadowError::TooLarge(Box::new(TooLarge {
        setting: "group_size",
        value: group.to_string(),
        what: format!("training {group} models together ({})", all.what),
        needed: all.bytes,
        limit: limit.clone(),
        hint: Some(format!(
            "{lo} at a time fit{}: use a smaller group size",
            if lo == 1 { "s" } else { "" }
        )),
    })))
}

/// The room left under this process's cgroup memory limit, and the file that sets it: v2
/// (`/sys/fs/cgroup/<path>/memory.max`) or v1 (`memory/<path>/memory.limit_in_bytes`).
fn cgroup_room() -> Option<(u64, String)> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let read =
        |path: &Path| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        let (dir, max, current) = if controllers.is_empty() {
            (
                Path::new("/sys/fs/cgroup").join(path),
                "memory.max",
                "memory.current",
            )
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                Path::new("/sys/fs/cgroup/memory").join(path),
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        // "max" (no limit) does not parse: no cap from this cgroup.
        if let Some(limit) = read(&dir.join(max)) {
            let used = read(&dir.join(current)).unwrap_or(0);
            return Some((
                limit.saturating_sub(used),
                dir.join(max).display().to_string(),
            ));
        }
    }
    None
}

/// Parses `123`, `512M`, `16G`, `1.5T`, `16GiB`, `2kB` (case-insensitive; `B` optional).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let (prefix, binary) = match unit.strip_suffix('i') {
        Some(p) => (p, true),
        None => (unit, false),
    };
    let power = match prefix {
        "" if !binary => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let bytes = number * base.powi(power);
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Bytes for people: `812 bytes`, `1.8 TB`, `23.5 GB` (powers of 1000).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = "";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

/// `needed` as words: its size, or that it overflows 64 bits.
fn describe_need(needed: Option<u64>) -> String {
    match needed {
        Some(bytes) => human_bytes(bytes),
        None => "more than 18.4 EB (the count overflows 64 bits)".into(),
    }
}

/// `a x b x ...` bytes with checked arithmetic: `None` on overflow.
pub fn checked_product(factors: &[u64]) -> Option<u64> {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_bytes("123"), Some(123));
        assert_eq!(parse_bytes("512M"), Some(512_000_000));
        assert_eq!(parse_bytes("16G"), Some(16_000_000_000));
        assert_eq!(parse_bytes("16 GB"), Some(16_000_000_000));
        assert_eq!(parse_bytes("1.5t"), Some(1_500_000_000_000));
        assert_eq!(parse_bytes("16GiB"), Some(16 << 30));
        assert_eq!(parse_bytes("2KiB"), Some(2048));
        for bad in [
            "",
            "G",
            "12X",
            "-1G",
            "1e99",
            "1..2G",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        assert_eq!(human_bytes(812), "812 bytes");
        assert_eq!(human_bytes(1_797_000_000_000), "1.8 TB");
        assert_eq!(human_bytes(23_527_052 * 1024), "24.1 GB");
        assert_eq!(human_bytes(u64::MAX), "18.4 EB");
        assert_eq!(checked_product(&[1 << 32, 1 << 31]), Some(1 << 63));
        assert_eq!(checked_product(&[1 << 32, 1 << 32]), None);
    }

    /// `memia plan --models 1000000000` aborted on its keep matrix ("memory allocation of
    /// 1797000000000 bytes failed"); now the plan is refused, naming the setting, the size and
    /// the limit, and a count that overflows is refused too.
    #[test]
    fn plans_larger_than_memory_are_refused_before_allocating() {
        use crate::{InclusionScheme, Plan, ShadowError, SoftmaxRegression};
        let pool = memia_data::embedded::digits();
        let trainer = SoftmaxRegression::default();
        let scheme = InclusionScheme::Bernoulli { p: 0.5 };
        let err = Plan::new(&pool, 1_000_000_000, scheme.clone(), 0, &trainer).unwrap_err();
        assert!(
            matches!(&err, ShadowError::TooLarge(t) if t.setting == "models"),
            "{err:?}"
        );
        let text = err.to_string();
        for part in ["models = 1000000000", "keep matrix", "1.8 TB", "available"] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let err = Plan::new(&pool, usize::MAX, scheme.clone(), 0, &trainer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("overflows"), "{err}");
        // A plan read from a plan.json with a huge model count: its keep matrix is refused.
        let mut plan = Plan::new(&pool, 4, scheme, 0, &trainer).unwrap();
        plan.models = 1 << 40;
        let err = plan.keep_matrix().unwrap_err().to_string();
        assert!(err.contains("models = 1099511627776"), "{err}");
        // Against an explicit limit: 5,000,000 models of 1,797 samples need 9.0 GB.
        let limit = MemoryLimit {
            bytes: 1_000_000_000,
            source: format!("{LIMIT_VARIABLE}=1G"),
        };
        let err = check_keep_matrix(5_000_000, 1797, &limit)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("9.0 GB") && err.contains("the limit is 1.0 GB (MEMIA_MEMORY_LIMIT=1G)"),
            "{err}"
        );
        assert!(check_keep_matrix(500_000, 1797, &limit).is_ok());
    }

    /// A trainer whose models need 1 GB each: one fits a 3.5 GB limit, a group of 8 does not,
    /// and the error names the group size and the largest group that fits (3).
    #[test]
    fn a_group_that_does_not_fit_names_the_group_size() {
        struct Big;
        impl crate::ShadowTrainer for Big {
            fn config(&self) -> serde_json::Value {
                serde_json::Value::Null
            }
            fn queries(&self) -> usize {
                1
            }
            fn memory_needed(
                &self,
                _: &dyn memia_data::Dataset,
                models: usize,
            ) -> crate::MemoryNeed {
                crate::MemoryNeed {
                    bytes: (models as u64).checked_mul(1_000_000_000),
                    setting: "model",
                    value: "big".into(),
                    what: "a gigabyte per model".into(),
                }
            }
            fn train_group(
                &self,
                _: &dyn memia_data::Dataset,
                _: &[crate::ModelJob],
            ) -> Result<Vec<ndarray::Array3<f32>>, crate::TrainerError> {
                Err("not trained".into())
            }
        }
        let pool = memia_data::embedded::digits();
        let limit = MemoryLimit {
            bytes: 3_500_000_000,
            source: format!("{LIMIT_VARIABLE}=3.5G"),
        };
        check_training(&Big, &pool, 3, &limit).unwrap();
        let err = check_training(&Big, &pool, 8, &limit)
            .unwrap_err()
            .to_string();
        for part in ["group_size = 8", "8.0 GB", "3 at a time fit", "3.5 GB"] {
            assert!(err.contains(part), "{part}: {err}");
        }
        let small = MemoryLimit {
            bytes: 1000,
            ..limit
        };
        let err = check_training(&Big, &pool, 8, &small)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("model = big: training one model"), "{err}");
    }

    /// This machine's limit is read (on Linux from /proc/meminfo) and is not zero.
    #[test]
    fn the_limit_is_read() {
        if std::env::var_os(LIMIT_VARIABLE).is_none() {
            let limit = MemoryLimit::detect().unwrap();
            assert!(limit.bytes > 0, "{limit}");
            if cfg!(target_os = "linux") {
                assert!(limit.source.contains("/proc/meminfo") || limit.source.contains("cgroup"));
            }
        }
    }
}
