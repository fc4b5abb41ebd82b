//! Progress of long calls, handed to a Python callable `progress(stage, done, total)`.
//!
//! The work runs with the GIL released; each report takes the GIL for the call, at most ten
//! times a second (and always for the last step of a stage), so that a notebook's progress bar
//! costs nothing measurable. Each call reports `0` of its total before any work, so that a
//! callable that fails (wrong arguments, say) stops it at once. The first exception the
//! callable raises (a `KeyboardInterrupt` delivered while it ran, say) stops further reports
//! and is raised when the call returns; Ctrl-C between reports is noticed at the next one.
//! Training stops after the group in progress; the other calls finish their work first.

use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// The reports of one call.
pub(crate) struct Reporter {
    callback: Option<Py<PyAny>>,
    last: Option<Instant>,
    error: Option<PyErr>,
}

const EVERY: Duration = Duration::from_millis(100);

impl Reporter {
    /// Reports to `callback`; without one, reports still notice Ctrl-C.
    pub(crate) fn new(callback: Option<Py<PyAny>>) -> Self {
        Reporter {
            callback,
            last: None,
            error: None,
        }
    }

    /// `done` of `total` steps of `stage`.
    pub(crate) fn report(&mut self, stage: &str, done: usize, total: usize) {
        if self.error.is_some() {
            return;
        }
        let now = Instant::now();
        if done < total && self.last.is_some_and(|t| now.duration_since(t) < EVERY) {
            return;
        }
        self.last = Some(now);
        let result = Python::attach(|py| {
            py.check_signals()?;
            match &self.callback {
                Some(callback) => callback.call1(py, (stage, done, total)).map(drop),
                None => Ok(()),
            }
        });
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// The stage's first report, `0` of `total`, before its work: a callable that cannot take
    /// the report (or Ctrl-C already pressed) stops the call before anything is done. Whether
    /// to go on.
    pub(crate) fn start(&mut self, stage: &str, total: usize) -> bool {
        self.report(stage, 0, total);
        !self.stopped()
    }

    /// Whether the callable raised (or Ctrl-C was pressed): long work that can stop between
    /// steps without losing what is finished (training) stops.
    pub(crate) fn stopped(&self) -> bool {
        self.error.is_some()
    }

    /// The call's result, or the callable's exception when it raised one.
    pub(crate) fn finish<T>(self, result: PyResult<T>) -> PyResult<T> {
        let value = result?;
        match self.error {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}
