//! This node's load for its registry record: CPU from /proc/self/stat and
//! media bandwidth from the shards' byte counters, as rates between two
//! refreshes. The arithmetic is sans-IO; `read_cpu_ticks` is the only read.

/// utime + stime of this process, in clock ticks (None off Linux or on a
/// malformed line).
pub fn read_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat)
}

/// Fields 14 and 15 of /proc/<pid>/stat, counted after the command name,
/// which is in parentheses and may itself contain spaces.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) is index 11, stime (15) index 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// Percent of one core used between two samples `secs` apart.
pub fn cpu_percent(prev_ticks: u64, now_ticks: u64, secs: f64, hz: u64) -> f32 {
    if secs <= 0.0 || hz == 0 {
        return 0.0;
    }
    let used = now_ticks.saturating_sub(prev_ticks) as f64 / hz as f64;
    (used / secs * 100.0) as f32
}

/// Bits per second between two byte totals `secs` apart.
pub fn bandwidth_bps(prev_bytes: u64, now_bytes: u64, secs: f64) -> u64 {
    if secs <= 0.0 {
        return 0;
    }
    (now_bytes.saturating_sub(prev_bytes) as f64 * 8.0 / secs) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let line = "1234 (sfud worker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(line), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert!(read_cpu_ticks().is_some());
    }

    #[test]
    fn rates() {
        assert_eq!(cpu_percent(100, 150, 1.0, 100), 50.0);
        assert_eq!(cpu_percent(150, 100, 1.0, 100), 0.0);
        assert_eq!(bandwidth_bps(0, 1000, 2.0), 4000);
        assert_eq!(bandwidth_bps(0, 1000, 0.0), 0);
    }
}
