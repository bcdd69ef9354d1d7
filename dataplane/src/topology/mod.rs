//! Which CPUs the shards run on.
//!
//! With the `hwloc` feature the topology comes from hwloc (`hwloc.rs`);
//! otherwise, and as a fallback, it is read from Linux sysfs, the same files
//! hwloc reads on Linux, so the default build needs no system library: `cpuN/topology/{core_id,
//! physical_package_id}` for cores and packages, and `nodeN/cpulist` for
//! NUMA nodes. Only CPUs in the calling thread's affinity mask count, so
//! `Topology::detect` must run before any thread is pinned (a pinned thread
//! would see a single CPU) and respects `taskset`, cgroups' cpusets and
//! systemd's `CPUAffinity=`.
//!
//! Placement policy: one hyperthread of every physical core before any
//! sibling, since two shards on siblings share one core's execution units
//! and caches; and, among equals, CPUs on the NIC's NUMA node first, so
//! packet buffers stay in the memory the NIC writes to.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

#[cfg(feature = "hwloc")]
mod hwloc;

const SYSFS: &str = "/sys";

/// Where a `Topology` came from (shown by `sfud tune` and at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Hwloc,
    Sysfs,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Hwloc => "hwloc",
            Source::Sysfs => "sysfs",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cpu {
    /// The CPU number the kernel uses (for affinity masks).
    pub id: usize,
    /// Physical core id, unique only within `package`.
    pub core: usize,
    pub package: usize,
    pub numa_node: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Only CPUs in the allowed mask, sorted by id.
    pub cpus: Vec<Cpu>,
    pub source: Source,
    sysfs_root: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("CPU {cpu} is not available to this process (allowed: {allowed})")]
    CpuNotAllowed { cpu: usize, allowed: String },
    #[error("CPU {0} is listed twice")]
    DuplicateCpu(usize),
}

impl Topology {
    /// Reads the machine's topology for the CPUs the calling thread may run
    /// on. Never fails: without sysfs every allowed CPU is taken as its own
    /// core on package 0, node 0.
    pub fn detect() -> Topology {
        let allowed = allowed_cpus();
        #[cfg(feature = "hwloc")]
        match hwloc::cpus(&allowed) {
            Ok(cpus) => {
                return Topology { cpus, source: Source::Hwloc, sysfs_root: PathBuf::from(SYSFS) };
            }
            Err(e) => tracing::warn!(error = %e, "hwloc failed; reading the topology from sysfs"),
        }
        Self::from_sysfs_root(Path::new(SYSFS), &allowed)
    }

    /// As `detect`, with `root` standing in for `/sys` and `allowed` for the
    /// affinity mask; tests point it at a fake tree.
    pub fn from_sysfs_root(root: &Path, allowed: &[usize]) -> Topology {
        let mut ids = allowed.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let nodes = read_numa_nodes(root);
        let cpus = ids
            .into_iter()
            .map(|id| {
                let dir = root.join(format!("devices/system/cpu/cpu{id}/topology"));
                Cpu {
                    id,
                    // Without topology files, treat each CPU as its own core:
                    // that neither merges nor splits real siblings wrongly in
                    // a way that matters, since there is nothing to prefer.
                    core: read_index(&dir.join("core_id")).unwrap_or(id),
                    package: read_index(&dir.join("physical_package_id")).unwrap_or(0),
                    numa_node: nodes.get(&id).copied().unwrap_or(0),
                }
            })
            .collect();
        Topology {
            cpus,
            source: Source::Sysfs,
            sysfs_root: root.to_path_buf(),
        }
    }

    /// A topology from known CPUs (tests of other modules, or callers that
    /// computed placement elsewhere). NIC queries read the real `/sys`.
    pub fn from_cpus(mut cpus: Vec<Cpu>) -> Topology {
        cpus.sort_by_key(|c| c.id);
        cpus.dedup_by_key(|c| c.id);
        Topology {
            cpus,
            source: Source::Sysfs,
            sysfs_root: PathBuf::from(SYSFS),
        }
    }

    /// The NUMA node a network interface's device sits on, if the kernel
    /// knows it (virtual NICs and single-node machines report none).
    pub fn nic_numa_node(&self, iface: &str) -> Option<usize> {
        if !is_interface_name(iface) {
            return None;
        }
        read_index(
            &self
                .sysfs_root
                .join("class/net")
                .join(iface)
                .join("device/numa_node"),
        )
    }

    /// The one NUMA node all of `ifaces` (empty: every interface but `lo`)
    /// with a known node share; `None` when unknown or when they disagree,
    /// because then no single node is the right preference.
    pub fn interfaces_numa_node(&self, ifaces: &[String]) -> Option<usize> {
        let names: Vec<String> = if ifaces.is_empty() {
            std::fs::read_dir(self.sysfs_root.join("class/net"))
                .ok()?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n != "lo")
                .collect()
        } else {
            ifaces.to_vec()
        };
        let mut found = None;
        for node in names.iter().filter_map(|n| self.nic_numa_node(n)) {
            match found {
                None => found = Some(node),
                Some(f) if f != node => return None,
                Some(_) => {}
            }
        }
        found
    }

    /// CPUs for `shards` shards (0: one per allowed CPU), in shard order:
    /// one hyperthread per physical core before any sibling, and among
    /// those, CPUs on `prefer_node` first. More shards than CPUs reuse CPUs
    /// in the same order, so shards then share CPUs.
    pub fn choose_shard_cpus(&self, shards: usize, prefer_node: Option<usize>) -> Vec<usize> {
        let n = if shards == 0 {
            self.cpus.len().max(1)
        } else {
            shards
        };
        let order = self.preference_order(prefer_node);
        if order.is_empty() {
            // Unreachable from `detect`, which always finds a CPU; CPU 0
            // exists on every Linux machine.
            return vec![0; n];
        }
        order.iter().copied().cycle().take(n).collect()
    }

    /// `dataplane.cores` when given (checked against the allowed CPUs),
    /// else `choose_shard_cpus`. With `shards` non-zero the result has that
    /// length; the explicit list is reused in order if it is shorter.
    pub fn plan_shards(
        &self,
        shards: usize,
        explicit: &[usize],
        prefer_node: Option<usize>,
    ) -> Result<Vec<usize>, TopologyError> {
        if explicit.is_empty() {
            return Ok(self.choose_shard_cpus(shards, prefer_node));
        }
        for (i, &cpu) in explicit.iter().enumerate() {
            if explicit[..i].contains(&cpu) {
                return Err(TopologyError::DuplicateCpu(cpu));
            }
            if !self.cpus.iter().any(|c| c.id == cpu) {
                return Err(TopologyError::CpuNotAllowed {
                    cpu,
                    allowed: format_cpulist(self.cpus.iter().map(|c| c.id)),
                });
            }
        }
        let n = if shards == 0 { explicit.len() } else { shards };
        Ok(explicit.iter().copied().cycle().take(n).collect())
    }

    /// Allowed CPUs in preference order, each once.
    fn preference_order(&self, prefer_node: Option<usize>) -> Vec<usize> {
        let prefer = prefer_node.filter(|n| self.cpus.iter().any(|c| c.numa_node == *n));
        let mut seen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        // `cpus` is sorted by id, so the lowest-numbered hyperthread of a core
        // gets rank 0, the next rank 1, and so on.
        let mut ranked: Vec<(usize, bool, usize, usize, usize, usize)> = self
            .cpus
            .iter()
            .map(|c| {
                let rank = seen.entry((c.package, c.core)).or_insert(0);
                let this = *rank;
                *rank += 1;
                let off_node = prefer.is_some_and(|p| p != c.numa_node);
                (this, off_node, c.numa_node, c.package, c.core, c.id)
            })
            .collect();
        ranked.sort_unstable();
        ranked.into_iter().map(|r| r.5).collect()
    }
}

/// The CPUs the calling thread may run on: `sched_getaffinity`, else
/// `core_affinity`, else `0..available_parallelism`.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; a zeroed set is valid, and the kernel
    // writes at most `size_of::<cpu_set_t>()` bytes into it.
    let from_kernel = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&i| libc::CPU_ISSET(i, &set))
                .collect()
        } else {
            Vec::new()
        }
    };
    if !from_kernel.is_empty() {
        return from_kernel;
    }
    if let Some(ids) = core_affinity::get_core_ids().filter(|ids| !ids.is_empty()) {
        return ids.into_iter().map(|c| c.id).collect();
    }
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).collect()
}

/// CPU id to NUMA node, from `devices/system/node/nodeN/cpulist`.
fn read_numa_nodes(root: &Path) -> BTreeMap<usize, usize> {
    let mut map = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(root.join("devices/system/node")) else {
        return map;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(node) = name
            .to_str()
            .and_then(|n| n.strip_prefix("node"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let Ok(list) = std::fs::read_to_string(entry.path().join("cpulist")) else {
            continue;
        };
        for cpu in parse_cpulist(&list).unwrap_or_default() {
            map.insert(cpu, node);
        }
    }
    map
}

/// A non-negative integer file; sysfs uses -1 for "unknown".
fn read_index(path: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: i64 = text.trim().parse().ok()?;
    usize::try_from(v).ok()
}

/// Largest CPU id accepted from a cpulist, so a corrupt file cannot make us
/// allocate a huge range.
const MAX_CPULIST_ID: usize = 1 << 16;

/// Parses the kernel's cpulist format: `0-3,8-11,16`, or empty.
pub fn parse_cpulist(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let v: usize = part.trim().parse().ok()?;
                (v, v)
            }
        };
        if lo > hi || hi > MAX_CPULIST_ID {
            return None;
        }
        cpus.extend(lo..=hi);
    }
    Some(cpus)
}

/// The inverse of `parse_cpulist`, for messages.
pub fn format_cpulist(ids: impl IntoIterator<Item = usize>) -> String {
    let mut ids: Vec<usize> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&start) = ids.get(i) {
        let mut end = start;
        while ids.get(i + 1) == Some(&(end + 1)) {
            end += 1;
            i += 1;
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// Interface names become sysfs path components: refuse anything that could
/// leave `class/net`.
fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
}

/// RLIMIT_MEMLOCK in bytes; `u64::MAX` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemlockLimit {
    pub soft: u64,
    pub hard: u64,
}

impl MemlockLimit {
    /// Whether `bytes` more can be locked under the soft limit (ignoring
    /// what is already locked) or the process may exceed it anyway.
    pub fn allows(&self, bytes: u64) -> bool {
        self.soft >= bytes
    }
}

impl fmt::Display for MemlockLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: u64| {
            if v == u64::MAX {
                "unlimited".to_string()
            } else {
                format!("{v} bytes")
            }
        };
        write!(f, "soft {}, hard {}", show(self.soft), show(self.hard))
    }
}

/// The process's RLIMIT_MEMLOCK; 0/0 if it cannot be read.
pub fn memlock_limit() -> MemlockLimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return MemlockLimit { soft: 0, hard: 0 };
    }
    // rlim_t is 32 bits on some targets, hence the cast.
    #[allow(clippy::unnecessary_cast)]
    let bytes = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            v as u64
        }
    };
    MemlockLimit {
        soft: bytes(r.rlim_cur),
        hard: bytes(r.rlim_max),
    }
}

/// Locked memory glommio needs per executor beyond its `io_memory`
/// registration (measured: below this the executor fails to start).
pub const MEMLOCK_PER_SHARD_OVERHEAD: u64 = 512 * 1024;

/// Estimated locked memory for `shards` executors of `io_memory` bytes each,
/// to compare with `memlock_limit()` at start-up.
pub fn memlock_needed(shards: usize, io_memory: usize) -> u64 {
    (shards as u64).saturating_mul((io_memory as u64).saturating_add(MEMLOCK_PER_SHARD_OVERHEAD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A throwaway sysfs tree, removed on drop.
    struct FakeSys(PathBuf);

    impl FakeSys {
        fn new() -> FakeSys {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "sfud-topology-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            FakeSys(dir)
        }

        fn write(&self, rel: &str, contents: &str) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        }

        fn cpu(&self, id: usize, package: usize, core: usize) {
            let dir = format!("devices/system/cpu/cpu{id}/topology");
            self.write(&format!("{dir}/core_id"), &format!("{core}\n"));
            self.write(
                &format!("{dir}/physical_package_id"),
                &format!("{package}\n"),
            );
        }

        /// 2 packages x 2 cores x 2 threads, one NUMA node per package.
        /// `interleaved`: siblings numbered next to each other (0,1 share a
        /// core), as some BIOSes do; otherwise Linux's usual order, where
        /// cpu0-3 are first threads and cpu4-7 their siblings.
        fn two_socket(interleaved: bool) -> FakeSys {
            let s = FakeSys::new();
            for id in 0..8 {
                let (package, core) = if interleaved {
                    (id / 4, (id / 2) % 2)
                } else {
                    ((id % 4) / 2, id % 2)
                };
                s.cpu(id, package, core);
            }
            if interleaved {
                s.write("devices/system/node/node0/cpulist", "0-3\n");
                s.write("devices/system/node/node1/cpulist", "4-7\n");
            } else {
                s.write("devices/system/node/node0/cpulist", "0-1,4-5\n");
                s.write("devices/system/node/node1/cpulist", "2-3,6-7\n");
            }
            s.write("devices/system/node/online", "0-1\n");
            s.write("class/net/eth0/device/numa_node", "1\n");
            s.write("class/net/eth1/device/numa_node", "-1\n");
            s.write("class/net/eth2/device/numa_node", "0\n");
            std::fs::create_dir_all(s.0.join("class/net/lo")).unwrap();
            s
        }

        fn topo(&self, allowed: &[usize]) -> Topology {
            Topology::from_sysfs_root(&self.0, allowed)
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn reads_two_socket_tree() {
        let s = FakeSys::two_socket(false);
        let t = s.topo(&[7, 0, 1, 2, 3, 4, 5, 6, 3]);
        assert_eq!(t.cpus.len(), 8);
        assert_eq!(
            t.cpus[6],
            Cpu {
                id: 6,
                core: 0,
                package: 1,
                numa_node: 1
            }
        );
        assert_eq!(
            t.cpus[1],
            Cpu {
                id: 1,
                core: 1,
                package: 0,
                numa_node: 0
            }
        );
    }

    #[test]
    fn physical_cores_before_siblings() {
        let s = FakeSys::two_socket(false);
        let t = s.topo(&(0..8).collect::<Vec<_>>());
        assert_eq!(t.choose_shard_cpus(0, None), vec![0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(t.choose_shard_cpus(4, None), vec![0, 1, 2, 3]);

        let s = FakeSys::two_socket(true);
        let t = s.topo(&(0..8).collect::<Vec<_>>());
        assert_eq!(t.choose_shard_cpus(0, None), vec![0, 2, 4, 6, 1, 3, 5, 7]);
        assert_eq!(t.choose_shard_cpus(2, None), vec![0, 2]);
    }

    #[test]
    fn preferred_node_first_among_equals() {
        let s = FakeSys::two_socket(false);
        let t = s.topo(&(0..8).collect::<Vec<_>>());
        assert_eq!(t.choose_shard_cpus(2, Some(1)), vec![2, 3]);
        // Whole cores elsewhere beat siblings on the preferred node.
        assert_eq!(t.choose_shard_cpus(5, Some(1)), vec![2, 3, 0, 1, 6]);
        assert_eq!(
            t.choose_shard_cpus(0, Some(1)),
            vec![2, 3, 0, 1, 6, 7, 4, 5]
        );
        // An unknown node is no preference.
        assert_eq!(t.choose_shard_cpus(2, Some(9)), vec![0, 1]);

        let s = FakeSys::two_socket(true);
        let t = s.topo(&(0..8).collect::<Vec<_>>());
        assert_eq!(t.choose_shard_cpus(3, Some(1)), vec![4, 6, 0]);
    }

    #[test]
    fn only_allowed_cpus_count() {
        let s = FakeSys::two_socket(false);
        // cpu0 and cpu4 are siblings; cpu5 is a sibling of cpu1, which is not allowed.
        let t = s.topo(&[0, 4, 5]);
        assert_eq!(
            t.cpus.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![0, 4, 5]
        );
        assert_eq!(t.choose_shard_cpus(0, None), vec![0, 5, 4]);
    }

    #[test]
    fn more_shards_than_cpus_wraps() {
        let s = FakeSys::two_socket(false);
        let t = s.topo(&[2, 3]);
        assert_eq!(t.choose_shard_cpus(5, None), vec![2, 3, 2, 3, 2]);
        let empty = s.topo(&[]);
        assert_eq!(empty.choose_shard_cpus(0, None), vec![0]);
    }

    #[test]
    fn small_vm_without_node_dir() {
        let s = FakeSys::new();
        s.cpu(0, 0, 0);
        s.cpu(1, 0, 1);
        let t = s.topo(&[0, 1]);
        assert!(t.cpus.iter().all(|c| c.numa_node == 0 && c.package == 0));
        assert_eq!(t.choose_shard_cpus(0, None), vec![0, 1]);
        assert_eq!(t.choose_shard_cpus(1, Some(0)), vec![0]);
        assert_eq!(t.nic_numa_node("eth0"), None);
        assert_eq!(t.interfaces_numa_node(&[]), None);
    }

    #[test]
    fn no_sysfs_at_all() {
        let s = FakeSys::new();
        let t = s.topo(&[0, 1, 2]);
        assert_eq!(
            t.cpus.iter().map(|c| c.core).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(t.choose_shard_cpus(0, None), vec![0, 1, 2]);
    }

    #[test]
    fn nic_numa_nodes() {
        let s = FakeSys::two_socket(false);
        let t = s.topo(&[0]);
        assert_eq!(t.nic_numa_node("eth0"), Some(1));
        assert_eq!(t.nic_numa_node("eth1"), None);
        assert_eq!(t.nic_numa_node("lo"), None);
        assert_eq!(t.nic_numa_node("missing"), None);
        assert_eq!(t.nic_numa_node("../../devices"), None);
        assert_eq!(t.nic_numa_node(""), None);
        assert_eq!(
            t.interfaces_numa_node(&["eth0".into(), "eth1".into()]),
            Some(1)
        );
        assert_eq!(
            t.interfaces_numa_node(&["eth0".into(), "eth2".into()]),
            None
        );
        // All interfaces: eth0 (1) and eth2 (0) disagree.
        assert_eq!(t.interfaces_numa_node(&[]), None);
    }

    #[test]
    fn plan_with_explicit_cores() {
        let s = FakeSys::two_socket(false);
        let t = s.topo(&[0, 1, 2, 3]);
        assert_eq!(t.plan_shards(0, &[3, 1], None), Ok(vec![3, 1]));
        assert_eq!(t.plan_shards(3, &[3, 1], None), Ok(vec![3, 1, 3]));
        assert_eq!(t.plan_shards(2, &[], Some(1)), Ok(vec![2, 3]));
        assert_eq!(
            t.plan_shards(0, &[5], None),
            Err(TopologyError::CpuNotAllowed {
                cpu: 5,
                allowed: "0-3".into()
            })
        );
        assert_eq!(
            t.plan_shards(0, &[1, 1], None),
            Err(TopologyError::DuplicateCpu(1))
        );
    }

    #[test]
    fn cpulists() {
        assert_eq!(
            parse_cpulist("0-3,8-9,12\n"),
            Some(vec![0, 1, 2, 3, 8, 9, 12])
        );
        assert_eq!(parse_cpulist(""), Some(vec![]));
        assert_eq!(parse_cpulist("\n"), Some(vec![]));
        assert_eq!(parse_cpulist("3-1"), None);
        assert_eq!(parse_cpulist("a"), None);
        assert_eq!(parse_cpulist("0-99999999999"), None);
        assert_eq!(format_cpulist([12, 0, 1, 2, 3, 9, 8]), "0-3,8-9,12");
        assert_eq!(format_cpulist([]), "");
    }

    #[test]
    fn detect_on_this_machine() {
        let t = Topology::detect();
        assert!(!t.cpus.is_empty());
        let chosen = t.choose_shard_cpus(0, None);
        assert_eq!(chosen.len(), t.cpus.len());
        assert!(chosen.iter().all(|id| t.cpus.iter().any(|c| c.id == *id)));
    }

    #[test]
    fn memlock() {
        let m = memlock_limit();
        assert!(m.soft <= m.hard, "{m}");
        assert_eq!(memlock_needed(2, 1 << 20), 2 * ((1 << 20) + 512 * 1024));
        assert_eq!(memlock_needed(usize::MAX, usize::MAX), u64::MAX);
        assert!(MemlockLimit {
            soft: u64::MAX,
            hard: u64::MAX
        }
        .allows(u64::MAX));
        assert!(!MemlockLimit {
            soft: 65536,
            hard: 65536
        }
        .allows(65537));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn cpulist_never_panics(text in "[0-9,\\- \n]{0,40}") {
                let _ = parse_cpulist(&text);
            }

            #[test]
            fn cpulist_round_trips(ids in proptest::collection::btree_set(0usize..300, 0..40)) {
                let ids: Vec<usize> = ids.into_iter().collect();
                prop_assert_eq!(parse_cpulist(&format_cpulist(ids.clone())), Some(ids));
            }

            #[test]
            fn choice_is_a_permutation_of_allowed(
                cpus in proptest::collection::vec((0usize..4, 0usize..4, 0usize..2), 1..24),
                prefer in proptest::option::of(0usize..3),
            ) {
                let cpus: Vec<Cpu> = cpus
                    .into_iter()
                    .enumerate()
                    .map(|(id, (core, package, numa_node))| Cpu { id, core, package, numa_node })
                    .collect();
                let t = Topology::from_cpus(cpus.clone());
                let mut chosen = t.choose_shard_cpus(0, prefer);
                // No sibling comes before a CPU whose core has not been used yet.
                let mut used = std::collections::BTreeSet::new();
                let mut saw_sibling = false;
                for id in &chosen {
                    let c = cpus[*id];
                    let fresh = used.insert((c.package, c.core));
                    prop_assert!(!(fresh && saw_sibling), "fresh core after a sibling: {:?}", chosen);
                    saw_sibling |= !fresh;
                }
                chosen.sort_unstable();
                prop_assert_eq!(chosen, (0..cpus.len()).collect::<Vec<_>>());
            }
        }
    }
}
