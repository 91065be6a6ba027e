//! Showing an import's progress: an indicatif bar on a terminal (share of the file, rows,
//! rate and time left), a plain line at most every few seconds otherwise (logs, pipes, CI).

use std::time::{Duration, Instant};

use contact_contract::{ImportState, ImportStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const PLAIN_LINE_EVERY: Duration = Duration::from_secs(2);
const BAR_WIDTH: usize = 24;
/// How often the bar redraws by itself, so that its clock moves while no event arrives.
const BAR_TICK: Duration = Duration::from_millis(200);

pub struct Progress {
    /// When the import left the queue: its rate and time left count from there.
    running_since: Option<Instant>,
    display: Display,
}

enum Display {
    /// The bar's length and position are the file's bytes (what ingest has read and the
    /// writers applied), the only measure known before the end of the file.
    Bar(ProgressBar),
    Lines {
        last: Option<Instant>,
    },
}

impl Progress {
    pub fn new(terminal: bool) -> Self {
        let display = if terminal {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{bar:24}] {percent:>3}% {msg}")
                    .expect("the template is valid")
                    .progress_chars("#>."),
            );
            bar.set_message("queued");
            bar.enable_steady_tick(BAR_TICK);
            Display::Bar(bar)
        } else {
            Display::Lines { last: None }
        };
        Self {
            running_since: None,
            display,
        }
    }

    pub fn show(&mut self, status: &ImportStatus) {
        if status.status != ImportState::Queued && self.running_since.is_none() {
            self.running_since = Some(Instant::now());
        }
        let elapsed = self
            .running_since
            .map_or(Duration::ZERO, |since| since.elapsed());
        match &mut self.display {
            Display::Bar(bar) => {
                if let Some(total) = status.bytes_total {
                    bar.set_length(total.max(1));
                    bar.set_position(status.bytes_done.min(total));
                }
                bar.set_message(format!(
                    "{}{}",
                    rows(status, elapsed),
                    time_left(status, elapsed)
                ));
            }
            Display::Lines { last } => {
                let due = last.is_none_or(|last| last.elapsed() >= PLAIN_LINE_EVERY);
                if due || status.status.is_terminal() {
                    eprintln!("{}", describe(status, elapsed));
                    *last = Some(Instant::now());
                }
            }
        }
    }

    pub fn quiet(&mut self, waited: Duration) {
        let line = format!(
            "no progress for {}s: the import waits in the queue (are contact-ingest, contact-mapper and contact-writer running?)",
            waited.as_secs()
        );
        match &self.display {
            Display::Bar(bar) => bar.println(line),
            Display::Lines { .. } => eprintln!("{line}"),
        }
    }

    /// Leaves the bar as it last stood, above the summary that follows.
    pub fn finish(&mut self) {
        if let Display::Bar(bar) = &self.display {
            bar.abandon();
        }
    }
}

/// Rows so far and their rate, short enough for the bar to fit on 80 columns.
fn rows(status: &ImportStatus, elapsed: Duration) -> String {
    if status.status == ImportState::Queued {
        return "queued".to_string();
    }
    let rate = status.rows_total as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{} rows, {} failed, {:.0}/s",
        status.rows_total, status.failed, rate
    )
}

fn describe(status: &ImportStatus, elapsed: Duration) -> String {
    if status.status == ImportState::Queued {
        return "queued".to_string();
    }
    let fraction = file_fraction(status).unwrap_or(0.0);
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}% {}{}",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        fraction * 100.0,
        rows(status, elapsed),
        time_left(status, elapsed)
    )
}

/// The share of the file done so far, once its size is known.
fn file_fraction(status: &ImportStatus) -> Option<f64> {
    match status.bytes_total {
        Some(total) if total > 0 => Some((status.bytes_done as f64 / total as f64).clamp(0.0, 1.0)),
        _ => None,
    }
}

/// ", 0:30 left" while part of the file is done and part is not; nothing otherwise (the time
/// cannot be told before the first chunk, and is none at the end).
fn time_left(status: &ImportStatus, elapsed: Duration) -> String {
    match file_fraction(status) {
        Some(fraction) if fraction > 0.0 && fraction < 1.0 => {
            let seconds = elapsed.as_secs_f64() * (1.0 - fraction) / fraction;
            format!(", {} left", clock(seconds))
        }
        _ => String::new(),
    }
}

fn clock(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    format!("{}:{:02}", whole / 60, whole % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{AccountId, ImportId};

    fn running(bytes_done: u64, rows: u64) -> ImportStatus {
        let mut status = ImportStatus::queued(
            AccountId::new("a").expect("valid"),
            ImportId::new("i").expect("valid"),
        );
        status.status = ImportState::Running;
        status.bytes_total = Some(1000);
        status.bytes_done = bytes_done;
        status.rows_total = rows;
        status.created = rows;
        status
    }

    #[test]
    fn the_bar_shows_share_rate_and_time_left() {
        let line = describe(&running(250, 500), Duration::from_secs(10));
        assert!(
            line.starts_with("[######..................]  25% 500 rows, 0 failed, 50/s, 0:30 left"),
            "{line}"
        );
    }

    #[test]
    fn a_finished_import_shows_no_time_left() {
        let line = describe(&running(1000, 900), Duration::from_secs(3));
        assert!(line.contains("100%") && !line.contains("left"), "{line}");
    }
}
