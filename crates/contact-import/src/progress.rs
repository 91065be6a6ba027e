//! Showing an import's progress: a redrawn bar on a terminal, a plain line at most every few
//! seconds otherwise (logs, pipes, CI).

use std::io::Write;
use std::time::{Duration, Instant};

use contact_contract::{ImportState, ImportStatus};

const PLAIN_LINE_EVERY: Duration = Duration::from_secs(2);
const BAR_WIDTH: usize = 30;

pub struct Progress {
    terminal: bool,
    started: Instant,
    last_plain_line: Option<Instant>,
    drew_bar: bool,
}

impl Progress {
    pub fn new(terminal: bool) -> Self {
        Self {
            terminal,
            started: Instant::now(),
            last_plain_line: None,
            drew_bar: false,
        }
    }

    pub fn show(&mut self, status: &ImportStatus) {
        let line = describe(status, self.started.elapsed());
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
            self.drew_bar = true;
        } else {
            let due = self
                .last_plain_line
                .is_none_or(|last| last.elapsed() >= PLAIN_LINE_EVERY);
            if due || status.status.is_terminal() {
                eprintln!("{line}");
                self.last_plain_line = Some(Instant::now());
            }
        }
    }

    pub fn quiet(&mut self, waited: Duration) {
        self.finish();
        eprintln!(
            "no progress for {}s: the import waits in the queue (are contact-ingest, contact-mapper and contact-writer running?)",
            waited.as_secs()
        );
    }

    pub fn finish(&mut self) {
        if self.drew_bar {
            eprintln!();
            self.drew_bar = false;
        }
    }
}

fn describe(status: &ImportStatus, elapsed: Duration) -> String {
    if status.status == ImportState::Queued {
        return "queued".to_string();
    }
    let fraction = match status.bytes_total {
        Some(total) if total > 0 => (status.bytes_done as f64 / total as f64).clamp(0.0, 1.0),
        _ => 0.0,
    };
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    let seconds = elapsed.as_secs_f64().max(0.001);
    let rate = status.rows_total as f64 / seconds;
    let time_left = if fraction > 0.0 && fraction < 1.0 {
        format!(", {} left", clock(seconds * (1.0 - fraction) / fraction))
    } else {
        String::new()
    };
    format!(
        "[{}{}] {:>3.0}% {} rows ({} failed), {:.0} rows/s{}",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        fraction * 100.0,
        status.rows_total,
        status.failed,
        rate,
        time_left
    )
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
            line.starts_with(
                "[########......................]  25% 500 rows (0 failed), 50 rows/s, 0:30 left"
            ),
            "{line}"
        );
    }

    #[test]
    fn a_finished_import_shows_no_time_left() {
        let line = describe(&running(1000, 900), Duration::from_secs(3));
        assert!(line.contains("100%") && !line.contains("left"), "{line}");
    }
}
