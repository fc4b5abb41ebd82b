//! The model an audit attacks: a model of the run, or one trained elsewhere (its logits, with or
//! without its membership). One owned type ([`AuditTarget`]) that lends the report's and the
//! sequential audit's [`memia_report::Target`].

use std::path::Path;

use memia_core::Logits;
use memia_core::npy::read_npy_any;
use memia_report::{ExternalTarget, Target};

use crate::error::{Result, usage};

/// The model an audit attacks.
#[derive(Debug, Clone)]
pub enum AuditTarget {
    /// Model `t` of the run: the other models are its shadow models, its keep row is its
    /// membership.
    Model(usize),
    /// A model trained elsewhere: every model of the run is a shadow model.
    Outside(OutsideModel),
}

/// A model trained elsewhere, as an audit reads it.
#[derive(Debug, Clone)]
pub struct OutsideModel {
    /// How reports name it (the logits file, say).
    pub name: String,
    /// Its logits on the pool: 1 x N x A x C.
    pub logits: Logits,
    /// Which samples it trained on, when known (without: scores, but no ROC curve).
    pub members: Option<Vec<bool>>,
    /// Whether its file held float64 values, converted to float32 (a front-end may say so).
    pub converted_from_f64: bool,
}

impl AuditTarget {
    /// As the report and the sequential audit take it.
    pub fn as_report(&self) -> Target<'_> {
        match self {
            AuditTarget::Model(t) => Target::Model(*t),
            AuditTarget::Outside(m) => Target::External(ExternalTarget {
                logits: &m.logits,
                members: m.members.as_deref(),
                name: &m.name,
            }),
        }
    }
}

impl OutsideModel {
    /// Reads a model's logits file (N x C, N x A x C or 1 x N x A x C; float32 or float64) by
    /// memia's one reader, checked against `expected` (`[N, A, C]`); membership unknown.
    pub fn read(logits: &Path, expected: [usize; 3]) -> Result<Self> {
        let read = memia_core::read_model_logits(logits, Some(expected))?;
        Ok(OutsideModel {
            name: logits.display().to_string(),
            logits: Logits::from_models(&[read.logits.view()])?,
            members: None,
            converted_from_f64: read.converted_from_f64,
        })
    }

    /// A model's logits on the run's pool, in memory (N x A x C, checked against `expected`),
    /// named `name`; membership unknown.
    pub fn from_logits(
        name: impl Into<String>,
        logits: ndarray::ArrayView3<'_, f32>,
        expected: [usize; 3],
    ) -> Result<Self> {
        let name = name.into();
        if logits.shape() != expected {
            return Err(usage(format!(
                "{name}: logits of shape {:?}, the run's models have {expected:?} (samples x queries x classes)",
                logits.shape()
            )));
        }
        Ok(OutsideModel {
            logits: Logits::from_models(&[logits])?,
            name,
            members: None,
            converted_from_f64: false,
        })
    }

    /// With its membership (`members`, one entry per sample; `origin` names them in errors).
    pub fn with_members(mut self, members: Vec<bool>, origin: &str) -> Result<Self> {
        let samples = self.logits.samples();
        if members.len() != samples {
            return Err(usage(format!(
                "{origin}: {} membership entries for the run's {samples} samples",
                members.len(),
            )));
        }
        self.members = Some(members);
        Ok(self)
    }

    /// With its membership read from `path` (N booleans, or N integers 0 / 1).
    pub fn with_members_file(self, path: &Path) -> Result<Self> {
        let m = read_membership(path)?;
        self.with_members(m, &path.display().to_string())
    }
}

/// A membership file: N bool, or N integers 0 / 1.
pub fn read_membership(path: &Path) -> Result<Vec<bool>> {
    let any = read_npy_any(path)?;
    let location = path.display().to_string();
    if let memia_core::npy::AnyArray::Bool(b) = &any {
        if b.ndim() != 1 {
            return Err(usage(format!(
                "{location}: membership must be one-dimensional, found shape {:?}",
                b.shape()
            )));
        }
        return Ok(b.iter().copied().collect());
    }
    let values = any.to_i64_vec(&location)?;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(usage(format!(
                "{location}: membership must be 0 or 1, entry {i} is {v}"
            ))),
        })
        .collect()
}
