//! Latency histograms and CPU/memory readings from `/proc`.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies in microseconds, 1 µs to 1 hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` (saturating) in `h`.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    let _ = h.record(us.min(h.high()));
}

/// A latency distribution's percentiles, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Number of samples.
    pub samples: u64,
}

impl Latency {
    /// The percentiles of `h`; `None` when it has no samples.
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Some(Latency {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            samples: h.len(),
        })
    }
}

/// `p50 p90 p99 p99.9 max` in milliseconds.
pub fn summary(h: &Histogram<u64>) -> String {
    let Some(l) = Latency::of(h) else {
        return "no samples".into();
    };
    format!(
        "p50 {:.2} ms  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  (n={})",
        l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
    )
}

/// User + system CPU seconds of process `pid` (`self` for this one).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Resident memory of process `pid` in KiB.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU use (in cores) of `pid` over a period: call `start`, then `cores`.
pub struct CpuMeter {
    pid: String,
    cpu: Option<f64>,
    at: std::time::Instant,
}

impl CpuMeter {
    /// Starts measuring `pid` (`self` for the generator).
    pub fn start(pid: &str) -> CpuMeter {
        CpuMeter {
            pid: pid.to_owned(),
            cpu: cpu_seconds(pid),
            at: std::time::Instant::now(),
        }
    }

    /// Average cores used since `start`.
    pub fn cores(&self) -> Option<f64> {
        let now = cpu_seconds(&self.pid)?;
        let secs = self.at.elapsed().as_secs_f64();
        Some((now - self.cpu?) / secs.max(1e-9))
    }
}
