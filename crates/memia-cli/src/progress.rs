//! Progress on long work: a bar on a terminal, plain lines otherwise (logs, CI).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Progress of `total` units of work called `unit`.
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    what: String,
    unit: &'static str,
    last_line: Instant,
}

impl Progress {
    /// Starts showing progress (nothing if `quiet`).
    pub fn new(what: &str, unit: &'static str, total: u64, quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} {unit} ({per_sec}, ETA {eta})",
                )
                .expect("valid template")
                .with_key("unit", move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(unit);
                }),
            );
            bar.set_message(what.to_string());
            bar
        });
        Progress {
            bar,
            lines: !quiet && !terminal,
            what: what.to_string(),
            unit,
            last_line: Instant::now() - Duration::from_secs(60),
        }
    }

    /// `done` of `total` finished; `rate` per second and `eta` when known.
    pub fn update(&mut self, done: u64, total: u64, eta: Option<Duration>) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        } else if self.lines
            && (done == total || self.last_line.elapsed() >= Duration::from_secs(2))
        {
            self.last_line = Instant::now();
            let eta = eta.map_or(String::new(), |d| {
                format!(", about {:.0} s left", d.as_secs_f64())
            });
            eprintln!("{}: {done}/{total} {}{eta}", self.what, self.unit);
        }
    }

    /// Stops the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish();
        }
    }
}

/// A status line on standard error unless `quiet`.
pub fn status(quiet: bool, line: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", line.as_ref());
    }
}
