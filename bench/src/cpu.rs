//! Where the CPU goes during a measured window: the CPU time of chosen processes (the worker or
//! the baseline consumer, the broker, the storage emulator) per record, and how busy the whole
//! machine was. Read from `/proc` (Linux); every figure is `None` elsewhere or when a process is
//! gone.
//!
//! On a machine with a few cores the worker shares the CPU with the broker and the emulator, so
//! its rate is bounded by what they cost per record as much as by its own cost:
//! [`ceiling_records_per_s`] is the rate a worker that cost nothing at all could reach.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Clock ticks per second of the `/proc` CPU counters (`USER_HZ`, 100 on every Linux ABI the
/// workspace builds for).
pub const TICKS_PER_S: f64 = 100.0;

/// CPU seconds (user + system) a process has used, from `/proc/{pid}/stat`.
pub fn process_seconds(pid: u32) -> Option<f64> {
    parse_process_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime + stime` of a `/proc/{pid}/stat` line, in seconds. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted after the last
/// `)`: the state is field 3, `utime` and `stime` fields 14 and 15.
pub fn parse_process_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_S)
}

/// CPU seconds the whole machine spent busy (every state but idle and iowait), summed over its
/// cores, from `/proc/stat`.
pub fn machine_busy_seconds() -> Option<f64> {
    parse_machine_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Busy seconds of the aggregate `cpu` line of `/proc/stat` (guest time is already inside user
/// time and is not counted twice).
pub fn parse_machine_stat(stat: &str) -> Option<f64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle) as f64 / TICKS_PER_S)
}

/// Cores the machine offers this process.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// CPU counters at one moment, with the records done by then.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When it was read.
    pub at: Instant,
    /// Records done (landed, or read by the baseline) at that moment.
    pub records: u64,
    /// CPU seconds of each watched process (in the order given), `None` if unreadable.
    pub processes: Vec<Option<f64>>,
    /// Machine busy seconds.
    pub busy: Option<f64>,
}

impl Snapshot {
    /// Reads the counters of `pids` (a `None` pid stays `None`) and of the machine.
    pub fn take(pids: &[Option<u32>], records: u64) -> Self {
        Snapshot {
            at: Instant::now(),
            records,
            processes: pids.iter().map(|p| p.and_then(process_seconds)).collect(),
            busy: machine_busy_seconds(),
        }
    }
}

/// The CPU figures of a window between two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// CPU microseconds per record of each watched process, in the order given.
    pub us_per_record: Vec<Option<f64>>,
    /// Share of the machine's cores that were busy, in percent.
    pub machine_busy_pct: Option<f64>,
}

/// The figures between `from` and `to`; `None` when no record or no time passed between them.
pub fn window(from: &Snapshot, to: &Snapshot) -> Option<Window> {
    let records = to.records.checked_sub(from.records).filter(|&n| n > 0)? as f64;
    let seconds = to.at.checked_duration_since(from.at)?.as_secs_f64();
    if seconds <= 0.0 {
        return None;
    }
    let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?).filter(|d| *d >= 0.0);
    Some(Window {
        us_per_record: from
            .processes
            .iter()
            .zip(&to.processes)
            .map(|(a, b)| delta(*a, *b).map(|d| d * 1e6 / records))
            .collect(),
        machine_busy_pct: delta(from.busy, to.busy).map(|d| d / (seconds * cores() as f64) * 100.0),
    })
}

/// The first and the last snapshot of the sustained window: the first taken once
/// `from × total` records were done, the first taken once `to × total` were.
pub fn window_of(snapshots: &[Snapshot], total: u64, from: f64, to: f64) -> Option<Window> {
    let mark = |share: f64| (share * total as f64).ceil() as u64;
    let a = snapshots.iter().find(|s| s.records >= mark(from))?;
    let b = snapshots.iter().find(|s| s.records >= mark(to))?;
    window(a, b)
}

/// The records/s a consumer costing no CPU at all could reach when the other processes on the
/// machine cost `others_us_per_record` CPU microseconds per record together and `cores` cores are
/// fully used: an upper bound (it ignores kernel time no process is charged with, and that a
/// single-threaded emulator cannot use more than one core).
pub fn ceiling_records_per_s(cores: usize, others_us_per_record: f64) -> Option<f64> {
    (others_us_per_record > 0.0).then(|| cores as f64 * 1e6 / others_us_per_record)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn process_stat_fields_are_counted_after_the_command_name() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let line = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_process_stat(line), Some(3.25));
        assert_eq!(parse_process_stat("4242 (x) S 1 2"), None);
    }

    #[test]
    fn machine_busy_leaves_out_idle_and_iowait() {
        let stat = "cpu  100 10 50 1000 40 5 5 0 30 0\ncpu0 50 5 25 500 20 2 3 0 15 0\n";
        // user + nice + system + irq + softirq + steal = 170 ticks; guest is inside user.
        assert_eq!(parse_machine_stat(stat), Some(1.7));
        assert_eq!(parse_machine_stat("intr 1 2 3\n"), None);
    }

    #[test]
    fn this_process_and_the_machine_are_readable_here() {
        let me = process_seconds(std::process::id()).expect("our own /proc/self/stat");
        assert!(me >= 0.0);
        assert!(machine_busy_seconds().expect("/proc/stat") > 0.0);
        assert!(process_seconds(u32::MAX).is_none(), "no such process");
    }

    fn snap(at: Instant, records: u64, procs: &[Option<f64>], busy: Option<f64>) -> Snapshot {
        Snapshot {
            at,
            records,
            processes: procs.to_vec(),
            busy,
        }
    }

    #[test]
    fn a_window_gives_cpu_per_record_for_each_process() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        let a = snap(t0, 100_000, &[Some(1.0), Some(5.0), None], Some(10.0));
        let b = snap(t1, 500_000, &[Some(2.0), Some(5.8), Some(1.0)], Some(12.0));
        let w = window(&a, &b).expect("records and time passed");
        // 1 CPU second over 400 000 records = 2.5 µs each; 0.8 s = 2 µs; unknown stays unknown.
        assert_eq!(w.us_per_record.len(), 3);
        assert!((w.us_per_record[0].expect("worker read") - 2.5).abs() < 1e-9);
        assert!((w.us_per_record[1].expect("broker read") - 2.0).abs() < 1e-9);
        assert_eq!(w.us_per_record[2], None);
        let busy = w.machine_busy_pct.expect("both read");
        assert!((busy - 100.0 / cores() as f64).abs() < 1e-9, "{busy}");
        assert_eq!(window(&b, &a), None, "backwards");
        assert_eq!(window(&a, &a), None, "no records");
    }

    #[test]
    fn the_sustained_window_runs_between_the_marks() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let snaps = vec![
            snap(at(0), 0, &[Some(0.0)], None),
            snap(at(1), 50, &[Some(1.0)], None),
            snap(at(2), 120, &[Some(2.0)], None), // first at >= 10 % of 1000
            snap(at(3), 600, &[Some(3.0)], None),
            snap(at(4), 920, &[Some(4.6)], None), // first at >= 90 %
            snap(at(5), 1000, &[Some(9.0)], None),
        ];
        let w = window_of(&snaps, 1000, 0.1, 0.9).expect("both marks crossed");
        // 2.6 CPU s over 800 records.
        assert!((w.us_per_record[0].expect("worker read") - 3250.0).abs() < 1e-6);
        assert_eq!(window_of(&snaps[..3], 1000, 0.1, 0.9), None);
    }

    #[test]
    fn the_ceiling_is_what_the_others_leave_of_the_cores() {
        // Broker and emulator at 8 µs a record together on 2 cores: at most 250 000 records/s.
        assert_eq!(ceiling_records_per_s(2, 8.0), Some(250_000.0));
        assert_eq!(ceiling_records_per_s(2, 0.0), None);
    }
}
