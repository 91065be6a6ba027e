//! CPU time as Linux accounts it: of one process (`/proc/PID/stat`) and of the whole machine
//! (`/proc/stat`), read before and after an import so the difference is the import's.
//!
//! The whole machine counts everything that ran meanwhile: PostgreSQL and NATS, which the
//! import needs, and anything else on the machine, which it does not; a machine shared with
//! other work shows it there.

/// The kernel reports both files in clock ticks of `USER_HZ`, which is 100 on every Linux
/// architecture that matters here (what `getconf CLK_TCK` prints); a constant spares a libc
/// dependency for `sysconf`.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user and system) a process has used since it started; `None` when it is gone.
pub fn process_cpu_seconds(process_id: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{process_id}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself:
    // fields are counted from the last closing one. There, field 3 (state) comes first, so
    // utime (field 14) and stime (field 15) are the 12th and 13th.
    let after_command = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_command.split_whitespace().skip(11);
    let user_ticks: u64 = fields.next()?.parse().ok()?;
    let system_ticks: u64 = fields.next()?.parse().ok()?;
    Some((user_ticks + system_ticks) as f64 / TICKS_PER_SECOND)
}

/// The machine's CPU counters at one moment, all cores together.
#[derive(Debug, Clone, Copy)]
pub struct MachineCpu {
    busy_ticks: u64,
}

impl MachineCpu {
    /// Reads the first line of `/proc/stat`: user, nice, system, idle, iowait, irq, softirq,
    /// steal, guest, guest_nice. Busy is everything but idle and iowait; guest time is already
    /// inside user time, so it is not added again.
    pub fn now() -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        let first_line = stat.lines().next().unwrap_or_default();
        let ticks: Vec<u64> = first_line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        anyhow::ensure!(
            ticks.len() >= 8,
            "/proc/stat has an unknown layout: {first_line}"
        );
        let (user, nice, system, irq, softirq, steal) =
            (ticks[0], ticks[1], ticks[2], ticks[5], ticks[6], ticks[7]);
        Ok(Self {
            busy_ticks: user + nice + system + irq + softirq + steal,
        })
    }

    /// CPU seconds the machine was busy between `earlier` and `self`.
    pub fn busy_seconds_since(&self, earlier: &MachineCpu) -> f64 {
        self.busy_ticks.saturating_sub(earlier.busy_ticks) as f64 / TICKS_PER_SECOND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu_and_the_machine_counts_forward() {
        let before = MachineCpu::now().expect("reading /proc/stat");
        let mut spin: u64 = 0;
        for number in 0..20_000_000_u64 {
            spin = spin.wrapping_add(number * number);
        }
        assert_ne!(spin, 1);
        let after = MachineCpu::now().expect("reading /proc/stat");
        assert!(after.busy_seconds_since(&before) >= 0.0);
        assert!(process_cpu_seconds(std::process::id()).is_some_and(|seconds| seconds >= 0.0));
        assert_eq!(process_cpu_seconds(u32::MAX), None);
    }
}
