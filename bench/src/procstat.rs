//! What the kernel says a process used: user+sys CPU from /proc/PID/stat
//! and resident memory from /proc/PID/status.

use std::fs;

/// utime + stime in clock ticks (all threads).
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some(ut + st)
}

pub fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// VmRSS in KiB.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_self() {
        let pid = std::process::id() as i32;
        assert!(super::cpu_ticks(pid).is_some());
        assert!(super::rss_kib(pid).unwrap() > 0);
    }
}

/// (busy, total) jiffies of one CPU from /proc/stat; busy counts user,
/// nice, system, irq, softirq and steal, so kernel work done on the core for
/// the target's packets (loopback softirqs, ksoftirqd) is seen too.
pub fn core_jiffies(cpu: usize) -> Option<(u64, u64)> {
    let s = fs::read_to_string("/proc/stat").ok()?;
    let tag = format!("cpu{cpu} ");
    let line = s.lines().find(|l| l.starts_with(&tag))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    let total = busy + get(3) + get(4);
    Some((busy, total))
}

/// softirq jiffies of one CPU.
pub fn core_softirq(cpu: usize) -> Option<u64> {
    let s = fs::read_to_string("/proc/stat").ok()?;
    let tag = format!("cpu{cpu} ");
    let line = s.lines().find(|l| l.starts_with(&tag))?;
    line.split_whitespace().nth(7)?.parse().ok()
}
