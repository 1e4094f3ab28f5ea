//! CPU accounting from `/proc`: how much of the machine the server, the load generator and
//! everything else (e.g. PostgreSQL) used during a run.

use std::process::Command;
use std::time::{Duration, Instant};

/// A reading of the CPU clocks, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub server: f64,
    pub bench: f64,
    /// All processes named `postgres` (the database server, when the store is PostgreSQL).
    pub database: f64,
    /// All cores: time spent busy, from `/proc/stat`.
    pub machine_busy: f64,
}

/// CPU used between two readings, in cores (CPU seconds per wall second) and busy fraction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub server_cores: f64,
    pub bench_cores: f64,
    pub database_cores: f64,
    /// Cores busy with anything else: the database server, or other people's jobs.
    pub other_cores: f64,
    pub server_seconds: f64,
}

pub fn read(server_pid: u32) -> Reading {
    let machine_busy = machine().map_or(0.0, |(busy, _)| busy);
    Reading {
        server: process(&server_pid.to_string()).unwrap_or(0.0),
        bench: process("self").unwrap_or(0.0),
        database: postgres(),
        machine_busy,
    }
}

pub fn usage(before: Reading, after: Reading, wall_seconds: f64) -> Usage {
    let server_cores = (after.server - before.server) / wall_seconds;
    let bench_cores = (after.bench - before.bench) / wall_seconds;
    let database_cores = ((after.database - before.database) / wall_seconds).max(0.0);
    let busy_cores = (after.machine_busy - before.machine_busy) / wall_seconds;
    Usage {
        server_cores,
        bench_cores,
        database_cores,
        other_cores: (busy_cores - server_cores - bench_cores - database_cores).max(0.0),
        server_seconds: after.server - before.server,
    }
}

/// Waits (up to `max`) for a one-second window in which the machine is at most `threshold`
/// busy, so shared machines are measured quiet; returns the last window's busy fraction.
pub fn wait_until_idle(max: Duration, threshold: f64) -> f64 {
    let deadline = Instant::now() + max;
    loop {
        let before = machine();
        std::thread::sleep(Duration::from_secs(1));
        let busy = match (before, machine()) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) / (t1 - t0),
            _ => return 0.0,
        };
        if busy <= threshold || Instant::now() >= deadline {
            return busy;
        }
    }
}

/// User + system time of one process, from `/proc/PID/stat`.
fn process(pid: &str) -> Option<f64> {
    stat_seconds(pid, 11)
}

/// User + system time of this process's finished (waited-for) children, e.g. `openssl speed`.
pub fn children_seconds() -> f64 {
    stat_seconds("self", 13).unwrap_or(0.0)
}

/// Sum of two adjacent time fields of `/proc/PID/stat`, counted from the first field after the
/// parenthesised command name (index 11: utime, 12: stime; 13: cutime, 14: cstime).
fn stat_seconds(pid: &str, index: usize) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(index)?.parse::<u64>().ok()? + fields.get(index + 1)?.parse::<u64>().ok()?;
    Some(ticks as f64 / ticks_per_second())
}

/// CPU time of every process whose command name is `postgres`.
fn postgres() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .filter_map(|pid| process(&pid))
        .sum()
}

/// (busy, total) seconds summed over all cores, from the `cpu` line of `/proc/stat`.
fn machine() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().take(8).sum();
    Some(((total - idle) as f64 / ticks_per_second(), total as f64 / ticks_per_second()))
}

fn ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}
