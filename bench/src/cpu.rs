//! Process CPU time, for CPU cost per message, and resident memory.
//!
//! The whole process is counted: the application thread, librdkafka's
//! threads and, on the mock cluster, the in-process brokers. Plain and
//! meshflow runs pay the same broker share, so the difference between them
//! is what meshflow adds.

/// CPU time used by this process so far, in nanoseconds.
pub fn process_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id is a constant
    // every Linux kernel supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Resident memory of this process, in MiB (0 when unknown).
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Wall and CPU time of one measured stretch.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: std::time::Instant,
    cpu_ns: u64,
}

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Self {
        Stopwatch {
            wall: std::time::Instant::now(),
            cpu_ns: process_ns(),
        }
    }

    /// A finished run of `messages` messages since the start.
    pub fn run(&self, messages: u64) -> Run {
        Run {
            messages,
            secs: self.wall.elapsed().as_secs_f64(),
            cpu_ns: process_ns().saturating_sub(self.cpu_ns),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Run {
    /// Messages that made it (acknowledged, or consumed).
    pub messages: u64,
    /// Wall-clock seconds.
    pub secs: f64,
    /// Process CPU nanoseconds.
    pub cpu_ns: u64,
}

impl Run {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.secs.max(1e-9)
    }

    /// Process CPU microseconds per message.
    pub fn cpu_us_per_message(&self) -> f64 {
        self.cpu_ns as f64 / 1e3 / self.messages.max(1) as f64
    }
}
