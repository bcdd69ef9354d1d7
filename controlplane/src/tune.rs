//! `sfud tune`: a core plan for this host and the commands that apply it.
//!
//! Shard CPUs come from `Topology::plan_shards`, the same call sfud makes at
//! start-up, so the plan cannot disagree with what the server does. What
//! this module adds is the rest of the machine: which CPUs the controlplane
//! and the NIC's interrupts should use so they do not steal cycles from
//! shards, and the IRQ affinity, RPS/XPS, sysctl and config lines to get
//! there. It only prints; applying is the operator's call (see
//! tuning/apply-irq-affinity.sh and docs/tuning.md).
//!
//! Policy, when the config does not fix the shards:
//! - one shard per physical core, minus a reserve: with hyperthreads one
//!   whole core for the controlplane on hosts with 4+ cores; without them,
//!   one CPU on 4-7 cores and two (controlplane, IRQs) on 8+;
//! - NIC IRQs on the sibling hyperthreads of shard cores (the softirq work
//!   then shares L2 with the shard that reads the packet), else on a spare
//!   CPU on the NIC's NUMA node, else spread over the shard CPUs;
//! - the controlplane on what is left, or shared when nothing is.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use dataplane::topology::{format_cpulist, memlock_needed, Topology};

use crate::config::Config;

/// The sysctl drop-in the package installs; printed from the same file so
/// the two cannot drift.
pub const SYSCTL_DROP_IN: &str = include_str!("../../systemd/60-sfud.conf");
/// Where the package installs `SYSCTL_DROP_IN`.
pub const SYSCTL_DROP_IN_PATH: &str = "/usr/lib/sysctl.d/60-sfud.conf";
/// `LimitMEMLOCK=` in systemd/sfud.service, in bytes.
pub const UNIT_MEMLOCK_LIMIT: u64 = 256 * 1024 * 1024;

/// An interrupt line of the NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Irq {
    pub number: u32,
    /// Its name in /proc/interrupts (`eth0-TxRx-0`, `virtio2-input.0`), or
    /// empty when only sysfs lists it.
    pub name: String,
}

/// What the plan needs to know about the network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicInfo {
    pub name: String,
    pub irqs: Vec<Irq>,
    pub rx_queues: usize,
    pub tx_queues: usize,
}

/// Host facts besides the CPU topology, read once so `plan_with` is pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInfo {
    pub nic: Option<NicInfo>,
    /// MemTotal, bytes.
    pub mem_total: Option<u64>,
}

/// One IRQ and the CPU it should be pinned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrqPin {
    pub irq: u32,
    pub name: String,
    pub cpu: usize,
}

/// The plan. `Display` prints it as an annotated shell script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunePlan {
    /// CPUs this process may use.
    pub allowed: Vec<usize>,
    pub physical_cores: usize,
    /// Where the topology came from: hwloc, or sysfs.
    pub topology_source: dataplane::topology::Source,
    pub hyperthreads: bool,
    /// The interface IRQs are planned for.
    pub interface: Option<String>,
    /// The NIC's NUMA node, when the kernel knows it.
    pub nic_node: Option<usize>,
    /// Shard CPUs in shard order; empty when `error` is set.
    pub shard_cpus: Vec<usize>,
    /// Why these shard CPUs (defaults, or the config's).
    pub shard_reason: String,
    pub control_cpus: Vec<usize>,
    /// What the controlplane's CPUs are shared with, if anything.
    pub control_shared_with: Option<&'static str>,
    pub irq_cpus: Vec<usize>,
    pub irq_reason: &'static str,
    pub irq_pins: Vec<IrqPin>,
    /// `(queue, hex cpumask)` for `queues/<queue>/rps_cpus`.
    pub rps: Vec<(String, String)>,
    /// `(queue, hex cpumask)` for `queues/<queue>/xps_cpus`.
    pub xps: Vec<(String, String)>,
    /// `(key, value)` sysctl settings.
    pub sysctls: Vec<(String, String)>,
    /// `net.ipv4.udp_mem` sized for RAM, in pages: min, pressure, max.
    pub udp_mem: Option<[u64; 3]>,
    pub memlock_needed: u64,
    /// `key = value` lines for the sfud config, by section.
    pub config: Vec<(&'static str, String)>,
    pub notes: Vec<String>,
    /// The config's shard settings do not fit this host.
    pub error: Option<String>,
}

/// Plans for this host: reads the NIC (the first of `rtc.interfaces`, else
/// the first interface backed by a device) and RAM from /sys and /proc.
pub fn plan(topo: &Topology, cfg: &Config) -> TunePlan {
    plan_interface(topo, cfg, None)
}

/// As `plan`, for the NIC `iface` when given (`sfud tune --interface IF`).
pub fn plan_interface(topo: &Topology, cfg: &Config, iface: Option<&str>) -> TunePlan {
    plan_with(topo, cfg, &HostInfo::read(cfg, iface))
}

impl HostInfo {
    pub fn read(cfg: &Config, iface: Option<&str>) -> HostInfo {
        HostInfo::read_from(Path::new("/sys"), Path::new("/proc"), cfg, iface)
    }

    /// As `read`, with `sys` and `proc` standing in for `/sys` and `/proc`.
    pub fn read_from(sys: &Path, proc_: &Path, cfg: &Config, iface: Option<&str>) -> HostInfo {
        let iface = iface
            .map(str::to_string)
            .or_else(|| cfg.rtc.interfaces.first().cloned())
            .or_else(|| default_interface(sys));
        HostInfo {
            nic: iface.and_then(|i| NicInfo::read_from(sys, proc_, &i)),
            mem_total: read_mem_total(proc_),
        }
    }
}

impl NicInfo {
    /// `None` when the interface does not exist.
    pub fn read_from(sys: &Path, proc_: &Path, iface: &str) -> Option<NicInfo> {
        if !is_interface_name(iface) {
            return None;
        }
        let dir = sys.join("class/net").join(iface);
        if !dir.exists() {
            return None;
        }
        let count_queues = |prefix: &str| {
            std::fs::read_dir(dir.join("queues")).map_or(0, |d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                    .count()
            })
        };
        // Drivers name their vectors after the interface (`eth0-TxRx-0`) or
        // the device (`virtio2-input.0`); some (mlx5) after neither, which
        // the PCI function's msi_irqs list covers. virtio's netdev device is
        // a child of the PCI function, hence the `..`.
        let device_name = std::fs::read_link(dir.join("device"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        let mut msi: BTreeSet<u32> = BTreeSet::new();
        for rel in ["device/msi_irqs", "device/../msi_irqs"] {
            if let Ok(d) = std::fs::read_dir(dir.join(rel)) {
                msi.extend(
                    d.flatten()
                        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok()),
                );
            }
        }
        let names = read_interrupt_names(proc_);
        let mut irqs: BTreeMap<u32, String> = BTreeMap::new();
        for (&n, name) in &names {
            let mine = irq_name_matches(name, iface)
                || device_name
                    .as_deref()
                    .is_some_and(|d| irq_name_matches(name, d));
            if mine {
                irqs.insert(n, name.clone());
            }
        }
        for n in msi {
            irqs.entry(n)
                .or_insert_with(|| names.get(&n).cloned().unwrap_or_default());
        }
        Some(NicInfo {
            name: iface.to_string(),
            irqs: irqs
                .into_iter()
                .map(|(number, name)| Irq { number, name })
                .collect(),
            rx_queues: count_queues("rx-"),
            tx_queues: count_queues("tx-"),
        })
    }
}

/// Builds the plan from known facts.
pub fn plan_with(topo: &Topology, cfg: &Config, host: &HostInfo) -> TunePlan {
    let allowed: Vec<usize> = topo.cpus.iter().map(|c| c.id).collect();
    let mut cores: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for c in &topo.cpus {
        cores.entry((c.package, c.core)).or_default().push(c.id);
    }
    let physical = cores.len().max(1);
    let hyperthreads = cores.values().any(|v| v.len() > 1);
    let node_of = |id: usize| topo.cpus.iter().find(|c| c.id == id).map(|c| c.numa_node);
    let core_of = |id: usize| {
        topo.cpus
            .iter()
            .find(|c| c.id == id)
            .map(|c| (c.package, c.core))
    };
    let interface = host.nic.as_ref().map(|n| n.name.clone());
    let nic_node = interface.as_deref().and_then(|i| topo.nic_numa_node(i));
    let mut notes = Vec::new();
    // The node sfud prefers at start-up, so the plan matches it. With no
    // `rtc.interfaces`, the plan suggests naming the NIC (below), which
    // makes sfud prefer the NIC's node.
    let prefer = if cfg.rtc.interfaces.is_empty() {
        nic_node.or_else(|| topo.interfaces_numa_node(&[]))
    } else {
        if let Some(i) = interface
            .as_ref()
            .filter(|i| !cfg.rtc.interfaces.contains(i))
        {
            notes.push(format!(
                "planned for {i}, but rtc.interfaces is {:?}: sfud places shards by those",
                cfg.rtc.interfaces
            ));
        }
        topo.interfaces_numa_node(&cfg.rtc.interfaces)
    };

    let explicit = cfg.dataplane.shards != 0 || !cfg.dataplane.cores.is_empty();
    let (count, shard_reason) = if explicit {
        (
            cfg.shard_count(allowed.len()),
            "from the config (dataplane.shards/cores)".to_string(),
        )
    } else {
        let reserve = match (hyperthreads, physical) {
            (true, p) if p >= 4 => 1,
            (false, p) if p >= 8 => 2,
            (false, p) if p >= 4 => 1,
            _ => 0,
        };
        let why = if reserve == 0 {
            "one per physical core; too few cores to keep any free".to_string()
        } else {
            format!("one per physical core, {reserve} kept free of shards")
        };
        ((physical - reserve).max(1), why)
    };
    let (shard_cpus, error) = match topo.plan_shards(count, &cfg.dataplane.cores, prefer) {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(format!("dataplane.cores: {e}"))),
    };
    if explicit && shard_cpus.len() > physical {
        notes.push(format!(
            "{} shards on {physical} physical cores: shards share cores; one per core is usually faster",
            shard_cpus.len()
        ));
    }

    let shard_set: BTreeSet<usize> = shard_cpus.iter().copied().collect();
    let shard_cores: BTreeSet<(usize, usize)> =
        shard_cpus.iter().filter_map(|&c| core_of(c)).collect();
    let on_nic_node = |c: &usize| nic_node.is_none() || node_of(*c) == nic_node;
    // Spare CPUs, the NIC's node first.
    let mut rest: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|c| !shard_set.contains(c))
        .collect();
    rest.sort_by_key(|&c| (!on_nic_node(&c), c));

    let siblings: Vec<usize> = rest
        .iter()
        .copied()
        .filter(|&c| core_of(c).is_some_and(|k| shard_cores.contains(&k)))
        .collect();
    let siblings_on_node: Vec<usize> = siblings.iter().copied().filter(on_nic_node).collect();
    let (irq_cpus, irq_reason) = if !siblings.is_empty() {
        let s = if siblings_on_node.is_empty() {
            siblings
        } else {
            siblings_on_node
        };
        (s, "sibling hyperthreads of shard cores")
    } else if rest.len() >= 2 {
        (
            rest.iter().copied().take(1).collect(),
            "a spare CPU on the NIC's node",
        )
    } else if !rest.is_empty() {
        (
            rest.clone(),
            "the one spare CPU, shared with the controlplane",
        )
    } else {
        let mut s: Vec<usize> = shard_set.iter().copied().filter(on_nic_node).collect();
        if s.is_empty() {
            s = shard_set.iter().copied().collect();
        }
        (s, "no spare CPU: spread over the shard CPUs")
    };
    let irq_set: BTreeSet<usize> = irq_cpus.iter().copied().collect();
    let mut control_cpus: Vec<usize> = rest
        .iter()
        .copied()
        .filter(|c| !irq_set.contains(c))
        .collect();
    let mut control_shared_with = None;
    if control_cpus.is_empty() {
        if rest.is_empty() {
            control_cpus = allowed.clone();
            control_shared_with = Some("shards");
        } else {
            control_cpus = rest.clone();
            control_shared_with = Some("NIC IRQs");
        }
    }
    control_cpus.sort_unstable();

    let (irq_pins, rps, xps) = match &host.nic {
        Some(nic) => queue_plan(nic, &irq_cpus, &shard_cpus),
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    if let Some(nic) = &host.nic {
        if nic.irqs.is_empty() {
            notes.push(format!(
                "no IRQs found for {}: a virtual or software interface; RPS does the spreading",
                nic.name
            ));
        }
    } else {
        notes.push("no network interface found: run `sfud tune --interface IF`".into());
    }

    let sysctls = sysctl_plan(cfg.dataplane.socket_buffer);
    let udp_mem = host.mem_total.map(udp_mem_for);
    let memlock = memlock_needed(shard_cpus.len(), cfg.dataplane.io_memory);
    if memlock > UNIT_MEMLOCK_LIMIT {
        notes.push(format!(
            "locked memory needed ({memlock} bytes) exceeds the unit's LimitMEMLOCK=256M: \
             add a drop-in with LimitMEMLOCK={memlock}"
        ));
    }

    let mut config = Vec::new();
    if !shard_cpus.is_empty() {
        config.push(("dataplane", format!("cores = {:?}", distinct(&shard_cpus))));
    }
    if cfg.rtc.interfaces.is_empty() && nic_node.is_some() {
        if let Some(i) = &interface {
            // It also limits the announced addresses to this NIC's.
            config.push(("rtc", format!("interfaces = [{i:?}]")));
        }
    }
    let max_buf = sysctls
        .iter()
        .filter(|(k, _)| k == "net.core.rmem_max")
        .find_map(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    if cfg.dataplane.socket_buffer > max_buf {
        notes.push("dataplane.socket_buffer exceeds the drop-in's rmem_max; raised above".into());
    }

    TunePlan {
        allowed,
        physical_cores: physical,
        topology_source: topo.source,
        hyperthreads,
        interface,
        nic_node,
        shard_cpus,
        shard_reason,
        control_cpus,
        control_shared_with,
        irq_cpus,
        irq_reason,
        irq_pins,
        rps,
        xps,
        sysctls,
        udp_mem,
        memlock_needed: memlock,
        config,
        notes,
        error,
    }
}

type QueuePlan = (Vec<IrqPin>, Vec<(String, String)>, Vec<(String, String)>);

/// IRQs round-robin over `irq_cpus`; RPS when the NIC has fewer RX queues
/// than IRQ CPUs (RSS alone would leave some idle, or all work on one);
/// XPS so each shard transmits on its own queue where there are enough.
fn queue_plan(nic: &NicInfo, irq_cpus: &[usize], shard_cpus: &[usize]) -> QueuePlan {
    let pins = if irq_cpus.is_empty() {
        Vec::new()
    } else {
        nic.irqs
            .iter()
            .zip(irq_cpus.iter().cycle())
            .map(|(irq, &cpu)| IrqPin {
                irq: irq.number,
                name: irq.name.clone(),
                cpu,
            })
            .collect()
    };
    let rps = if nic.rx_queues > 0 && nic.rx_queues < irq_cpus.len() {
        let mask = cpumask(irq_cpus);
        (0..nic.rx_queues)
            .map(|q| (format!("rx-{q}"), mask.clone()))
            .collect()
    } else {
        (0..nic.rx_queues)
            .map(|q| (format!("rx-{q}"), "0".to_string()))
            .collect()
    };
    let shards = distinct(shard_cpus);
    let xps = (0..nic.tx_queues)
        .map(|q| {
            let cpus: Vec<usize> = shards
                .iter()
                .enumerate()
                .filter(|(i, _)| i % nic.tx_queues == q)
                .map(|(_, &c)| c)
                .collect();
            (format!("tx-{q}"), cpumask(&cpus))
        })
        .collect();
    (pins, rps, xps)
}

/// The drop-in's settings, with the buffer maxima raised to fit
/// `socket_buffer` when it asks for more.
fn sysctl_plan(socket_buffer: usize) -> Vec<(String, String)> {
    SYSCTL_DROP_IN
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let (k, mut v) = (k.trim().to_string(), v.trim().to_string());
            if k == "net.core.rmem_max" || k == "net.core.wmem_max" {
                if let Ok(n) = v.parse::<usize>() {
                    v = n.max(socket_buffer).to_string();
                }
            }
            Some((k, v))
        })
        .collect()
}

/// udp_mem in 4 KiB pages: the kernel's boot-time min (3/32 of RAM) and
/// pressure (1/8), with the hard cap raised from its 3/16 to 1/4, because
/// an SFU is the main user of UDP memory on its host.
fn udp_mem_for(mem_total: u64) -> [u64; 3] {
    let pages = mem_total / 4096;
    [pages / 32 * 3, pages / 8, pages / 4]
}

/// Kernel cpumask syntax for sysfs: hex, 32-bit groups separated by commas,
/// most significant first.
pub fn cpumask(cpus: &[usize]) -> String {
    let Some(&max) = cpus.iter().max() else {
        return "0".into();
    };
    let mut words = vec![0u32; max / 32 + 1];
    for &c in cpus {
        if let Some(w) = words.get_mut(c / 32) {
            *w |= 1 << (c % 32);
        }
    }
    let mut out = String::new();
    for (i, w) in words.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&format!("{w:x}"));
        } else {
            out.push_str(&format!(",{w:08x}"));
        }
    }
    out
}

fn distinct(cpus: &[usize]) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    cpus.iter().copied().filter(|c| seen.insert(*c)).collect()
}

/// `name` is `prefix` or `prefix-...` (queue vectors), e.g. `eth0-rx-0`.
fn irq_name_matches(name: &str, prefix: &str) -> bool {
    name == prefix
        || name
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('-') || rest.starts_with('@'))
}

/// IRQ number to name, from /proc/interrupts (numbered lines only).
fn read_interrupt_names(proc_: &Path) -> BTreeMap<u32, String> {
    let text = std::fs::read_to_string(proc_.join("interrupts")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (num, rest) = line.trim_start().split_once(':')?;
            let n: u32 = num.trim().parse().ok()?;
            let name = rest.split_whitespace().last().unwrap_or_default();
            Some((n, name.to_string()))
        })
        .collect()
}

fn read_mem_total(proc_: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(proc_.join("meminfo")).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The first interface with a backing device (skips lo, bridges, ifb...).
fn default_interface(sys: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys.join("class/net"))
        .ok()?
        .flatten()
        .filter(|e| e.path().join("device").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// Interface names become sysfs path components.
fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
}

impl fmt::Display for TunePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |c: &[usize]| {
            if c.is_empty() {
                "-".to_string()
            } else {
                format_cpulist(c.iter().copied())
            }
        };
        writeln!(
            f,
            "# sfud tune: a core plan for this host (nothing is changed; review, then apply)"
        )?;
        writeln!(
            f,
            "# CPUs available: {} ({} physical cores, hyperthreads: {}; topology: {})",
            list(&self.allowed),
            self.physical_cores,
            if self.hyperthreads { "yes" } else { "no" },
            self.topology_source
        )?;
        match &self.interface {
            Some(i) => writeln!(
                f,
                "# NIC: {i}, NUMA node {}",
                self.nic_node
                    .map_or("unknown (single node or virtual NIC)".to_string(), |n| n
                        .to_string())
            )?,
            None => writeln!(f, "# NIC: none found")?,
        }
        if let Some(e) = &self.error {
            writeln!(f, "#\n# ERROR: {e}")?;
        }
        writeln!(f, "#\n# == Core plan ==")?;
        writeln!(
            f,
            "# shards:       {:<12} {}",
            // Shard order matters (shard i on the i-th CPU): show the list as is.
            self.shard_cpus
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(","),
            self.shard_reason
        )?;
        writeln!(
            f,
            "# controlplane: {:<12} {}",
            list(&self.control_cpus),
            self.control_shared_with
                .map_or(String::new(), |w| format!("shared with {w}"))
        )?;
        writeln!(
            f,
            "# NIC IRQs:     {:<12} {}",
            list(&self.irq_cpus),
            self.irq_reason
        )?;
        for n in &self.notes {
            writeln!(f, "# note: {n}")?;
        }

        writeln!(f, "#\n# == sfud config: /etc/sfud/sfud.toml ==")?;
        let mut section = "";
        for (s, line) in &self.config {
            if *s != section {
                writeln!(f, "# [{s}]")?;
                section = s;
            }
            writeln!(f, "# {line}")?;
        }
        writeln!(
            f,
            "# locked memory for the shards: {} bytes (the unit allows {}: LimitMEMLOCK=256M)",
            self.memlock_needed, UNIT_MEMLOCK_LIMIT
        )?;

        writeln!(
            f,
            "#\n# == IRQ affinity (root; stop irqbalance first or it moves them back) =="
        )?;
        if let Some(i) = &self.interface {
            if !self.irq_pins.is_empty() {
                writeln!(f, "systemctl stop irqbalance 2>/dev/null || true")?;
            }
            for p in &self.irq_pins {
                writeln!(
                    f,
                    "echo {} > /proc/irq/{}/smp_affinity_list  # {}",
                    p.cpu, p.irq, p.name
                )?;
            }
            writeln!(f, "#\n# == RPS/XPS for {i} ==")?;
            for (q, m) in &self.rps {
                writeln!(f, "echo {m} > /sys/class/net/{i}/queues/{q}/rps_cpus")?;
            }
            for (q, m) in &self.xps {
                writeln!(f, "echo {m} > /sys/class/net/{i}/queues/{q}/xps_cpus")?;
            }
        } else {
            writeln!(f, "# (no interface: pass --interface IF)")?;
        }

        writeln!(
            f,
            "#\n# == sysctl (the package installs {SYSCTL_DROP_IN_PATH}; or apply now) =="
        )?;
        for (k, v) in &self.sysctls {
            writeln!(f, "sysctl -w {k}={v}")?;
        }
        if let Some([a, b, c]) = self.udp_mem {
            writeln!(
                f,
                "# only if UdpRcvbufErrors rise while udp_mem's pressure level is reached:"
            )?;
            writeln!(f, "# sysctl -w net.ipv4.udp_mem=\"{a} {b} {c}\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::topology::Cpu;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A throwaway /sys + /proc pair, removed on drop.
    struct Fake(PathBuf);

    impl Fake {
        fn new() -> Fake {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "sfud-tune-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Fake(dir)
        }
        fn sys(&self) -> PathBuf {
            self.0.join("sys")
        }
        fn proc_(&self) -> PathBuf {
            self.0.join("proc")
        }
        fn write(&self, rel: &str, contents: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
        }
        fn mkdir(&self, rel: &str) {
            std::fs::create_dir_all(self.0.join(rel)).unwrap();
        }
        /// 2 packages x 2 cores x 2 threads (cpu i and i+4 are siblings),
        /// node = package; eth0 on node 1 with 4 queue IRQs + 1 admin IRQ
        /// named by interface, listed by msi_irqs too.
        fn two_socket() -> Fake {
            let s = Fake::new();
            for id in 0..8 {
                let dir = format!("sys/devices/system/cpu/cpu{id}/topology");
                s.write(&format!("{dir}/core_id"), &format!("{}\n", id % 2));
                s.write(
                    &format!("{dir}/physical_package_id"),
                    &format!("{}\n", (id % 4) / 2),
                );
            }
            s.write("sys/devices/system/node/node0/cpulist", "0-1,4-5\n");
            s.write("sys/devices/system/node/node1/cpulist", "2-3,6-7\n");
            s.mkdir("sys/devices/pci0000:00/0000:00:03.0/msi_irqs/40");
            for n in 41..45 {
                s.mkdir(&format!("sys/devices/pci0000:00/0000:00:03.0/msi_irqs/{n}"));
            }
            s.write("sys/devices/pci0000:00/0000:00:03.0/numa_node", "1\n");
            s.mkdir("sys/class/net/eth0");
            std::os::unix::fs::symlink(
                s.sys().join("devices/pci0000:00/0000:00:03.0"),
                s.sys().join("class/net/eth0/device"),
            )
            .unwrap();
            for q in 0..4 {
                s.mkdir(&format!("sys/class/net/eth0/queues/rx-{q}"));
                s.mkdir(&format!("sys/class/net/eth0/queues/tx-{q}"));
            }
            s.mkdir("sys/class/net/lo");
            s.write(
                "proc/interrupts",
                "           CPU0       CPU1\n  \
                 0:         10          0   IO-APIC   2-edge      timer\n \
                 40:          0          0   PCI-MSI 1-edge      eth0\n \
                 41:          5          0   PCI-MSI 2-edge      eth0-TxRx-0\n \
                 42:          5          0   PCI-MSI 3-edge      eth0-TxRx-1\n \
                 43:          5          0   PCI-MSI 4-edge      eth0-TxRx-2\n \
                 44:          5          0   PCI-MSI 5-edge      eth0-TxRx-3\n \
                 45:          5          0   PCI-MSI 6-edge      eth01-TxRx-0\n\
                 NMI:          0          0   Non-maskable interrupts\n",
            );
            s.write(
                "proc/meminfo",
                "MemTotal:       16384000 kB\nMemFree: 1 kB\n",
            );
            s
        }
        fn topo(&self, allowed: &[usize]) -> Topology {
            Topology::from_sysfs_root(&self.sys(), allowed)
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn cfg_with_iface(i: &str) -> Config {
        let mut c = Config::default();
        c.rtc.interfaces = vec![i.to_string()];
        c
    }

    #[test]
    fn reads_nic_irqs_and_queues() {
        let s = Fake::two_socket();
        let nic = NicInfo::read_from(&s.sys(), &s.proc_(), "eth0").unwrap();
        assert_eq!(
            nic.irqs.iter().map(|i| i.number).collect::<Vec<_>>(),
            vec![40, 41, 42, 43, 44]
        );
        assert_eq!(nic.irqs[1].name, "eth0-TxRx-0");
        assert_eq!((nic.rx_queues, nic.tx_queues), (4, 4));
        assert_eq!(NicInfo::read_from(&s.sys(), &s.proc_(), "eth9"), None);
        assert_eq!(NicInfo::read_from(&s.sys(), &s.proc_(), "../x"), None);
        let host = HostInfo::read_from(&s.sys(), &s.proc_(), &Config::default(), None);
        assert_eq!(host.nic.map(|n| n.name), Some("eth0".to_string()));
        assert_eq!(host.mem_total, Some(16384000 * 1024));
    }

    #[test]
    fn two_socket_plan_uses_siblings_for_irqs() {
        let s = Fake::two_socket();
        let topo = s.topo(&(0..8).collect::<Vec<_>>());
        let cfg = cfg_with_iface("eth0");
        let p = plan_with(
            &topo,
            &cfg,
            &HostInfo::read_from(&s.sys(), &s.proc_(), &cfg, None),
        );
        assert_eq!(p.nic_node, Some(1));
        assert!(p.hyperthreads);
        assert_eq!(p.physical_cores, 4);
        // The same answer sfud computes at start-up for 3 shards.
        assert_eq!(p.shard_cpus, topo.plan_shards(3, &[], Some(1)).unwrap());
        assert_eq!(p.shard_cpus, vec![2, 3, 0]);
        // Siblings of shard cores on the NIC's node.
        assert_eq!(p.irq_cpus, vec![6, 7]);
        assert_eq!(p.control_cpus, vec![1, 4, 5]);
        assert_eq!(p.control_shared_with, None);
        assert_eq!(
            p.irq_pins
                .iter()
                .map(|x| (x.irq, x.cpu))
                .collect::<Vec<_>>(),
            vec![(40, 6), (41, 7), (42, 6), (43, 7), (44, 6)]
        );
        // 4 RX queues for 2 IRQ CPUs: RSS is enough, RPS off.
        assert!(p.rps.iter().all(|(_, m)| m == "0"));
        assert_eq!(p.xps[0], ("tx-0".to_string(), "4".to_string()));
        assert_eq!(p.xps[2], ("tx-2".to_string(), "1".to_string()));
        assert_eq!(p.xps[3], ("tx-3".to_string(), "0".to_string()));
        assert!(p
            .config
            .contains(&("dataplane", "cores = [2, 3, 0]".to_string())));
        assert_eq!(p.memlock_needed, memlock_needed(3, cfg.dataplane.io_memory));
        assert_eq!(p.error, None);

        let text = p.to_string();
        assert!(
            text.contains("echo 6 > /proc/irq/40/smp_affinity_list  # eth0"),
            "{text}"
        );
        assert!(
            text.contains("sysctl -w net.core.rmem_max=16777216"),
            "{text}"
        );
        assert!(
            text.contains("echo 0 > /sys/class/net/eth0/queues/rx-0/rps_cpus"),
            "{text}"
        );
        assert!(text.contains("# shards:       2,3,0"), "{text}");
        assert!(
            text.contains("# sysctl -w net.ipv4.udp_mem=\"384000 512000 1024000\""),
            "{text}"
        );
    }

    #[test]
    fn unnamed_nic_is_suggested_and_preferred() {
        let s = Fake::two_socket();
        let topo = s.topo(&(0..8).collect::<Vec<_>>());
        let cfg = Config::default();
        let p = plan_with(
            &topo,
            &cfg,
            &HostInfo::read_from(&s.sys(), &s.proc_(), &cfg, None),
        );
        assert_eq!(p.interface.as_deref(), Some("eth0"));
        assert_eq!(p.shard_cpus, vec![2, 3, 0]);
        assert!(p
            .config
            .contains(&("rtc", "interfaces = [\"eth0\"]".to_string())));

        // --interface naming a NIC the config does not: said, and the
        // config's interfaces still decide placement.
        let mut cfg = cfg_with_iface("eth1");
        cfg.dataplane.shards = 2;
        let host = HostInfo::read_from(&s.sys(), &s.proc_(), &cfg, Some("eth0"));
        let p = plan_with(&topo, &cfg, &host);
        assert_eq!(p.interface.as_deref(), Some("eth0"));
        assert_eq!(p.shard_cpus, topo.plan_shards(2, &[], None).unwrap());
        assert!(
            p.notes.iter().any(|n| n.contains("rtc.interfaces")),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn explicit_cores_are_kept() {
        let s = Fake::two_socket();
        let topo = s.topo(&(0..8).collect::<Vec<_>>());
        let mut cfg = cfg_with_iface("eth0");
        cfg.dataplane.cores = vec![3, 2];
        let p = plan_with(
            &topo,
            &cfg,
            &HostInfo::read_from(&s.sys(), &s.proc_(), &cfg, None),
        );
        assert_eq!(p.shard_cpus, vec![3, 2]);
        assert_eq!(p.irq_cpus, vec![6, 7]);

        cfg.dataplane.cores = vec![9];
        let p = plan_with(&topo, &cfg, &HostInfo::default());
        assert!(
            p.error.as_deref().unwrap().contains("CPU 9"),
            "{:?}",
            p.error
        );
        assert!(p.shard_cpus.is_empty());
        assert!(p.to_string().contains("ERROR"));
    }

    fn flat(n: usize) -> Topology {
        Topology::from_cpus(
            (0..n)
                .map(|id| Cpu {
                    id,
                    core: id,
                    package: 0,
                    numa_node: 0,
                })
                .collect(),
        )
    }

    fn single_queue_nic() -> HostInfo {
        HostInfo {
            nic: Some(NicInfo {
                name: "ens3".into(),
                irqs: vec![
                    Irq {
                        number: 24,
                        name: "virtio0-input.0".into(),
                    },
                    Irq {
                        number: 25,
                        name: "virtio0-output.0".into(),
                    },
                ],
                rx_queues: 1,
                tx_queues: 1,
            }),
            mem_total: None,
        }
    }

    #[test]
    fn small_vm_shares_everything() {
        let topo = flat(2);
        let p = plan_with(&topo, &Config::default(), &single_queue_nic());
        assert_eq!(p.shard_cpus, vec![0, 1]);
        assert_eq!(p.irq_cpus, vec![0, 1]);
        assert_eq!(p.control_cpus, vec![0, 1]);
        assert_eq!(p.control_shared_with, Some("shards"));
        // One RX queue for two IRQ CPUs: RPS spreads the protocol work.
        assert_eq!(p.rps, vec![("rx-0".to_string(), "3".to_string())]);
        assert_eq!(p.xps, vec![("tx-0".to_string(), "3".to_string())]);
        assert_eq!(p.udp_mem, None);
    }

    #[test]
    fn no_hyperthreads_reserves_cpus() {
        let p = plan_with(&flat(4), &Config::default(), &single_queue_nic());
        assert_eq!(p.shard_cpus, vec![0, 1, 2]);
        assert_eq!(p.irq_cpus, vec![3]);
        assert_eq!(p.control_cpus, vec![3]);
        assert_eq!(p.control_shared_with, Some("NIC IRQs"));

        let p = plan_with(&flat(8), &Config::default(), &single_queue_nic());
        assert_eq!(p.shard_cpus, (0..6).collect::<Vec<_>>());
        assert_eq!(p.irq_cpus, vec![6]);
        assert_eq!(p.control_cpus, vec![7]);
        assert_eq!(p.control_shared_with, None);
    }

    #[test]
    fn without_a_nic() {
        let p = plan_with(&flat(2), &Config::default(), &HostInfo::default());
        assert!(p.irq_pins.is_empty());
        let text = p.to_string();
        assert!(text.contains("--interface"), "{text}");
    }

    #[test]
    fn big_socket_buffer_raises_maxima() {
        let mut cfg = Config::default();
        cfg.dataplane.socket_buffer = 64 << 20;
        let p = plan_with(&flat(2), &cfg, &HostInfo::default());
        assert!(p
            .sysctls
            .contains(&("net.core.wmem_max".to_string(), (64u64 << 20).to_string())));
        assert!(p
            .sysctls
            .iter()
            .any(|(k, _)| k == "net.core.netdev_max_backlog"));
    }

    #[test]
    fn cpumasks() {
        assert_eq!(cpumask(&[]), "0");
        assert_eq!(cpumask(&[0, 1]), "3");
        assert_eq!(cpumask(&[2, 3]), "c");
        assert_eq!(cpumask(&[0, 32]), "1,00000001");
        assert_eq!(cpumask(&(0..40).collect::<Vec<_>>()), "ff,ffffffff");
    }

    #[test]
    fn irq_names() {
        assert!(irq_name_matches("eth0", "eth0"));
        assert!(irq_name_matches("eth0-TxRx-3", "eth0"));
        assert!(irq_name_matches("virtio2-input.0", "virtio2"));
        assert!(!irq_name_matches("eth01-TxRx-0", "eth0"));
        assert!(!irq_name_matches("virtio20-input.0", "virtio2"));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn plan_is_consistent(
                cpus in proptest::collection::vec((0usize..4, 0usize..2, 0usize..2), 1..16),
                shards in 0usize..6,
                rx in 0usize..5,
            ) {
                let topo = Topology::from_cpus(cpus.into_iter().enumerate()
                    .map(|(id, (core, package, numa_node))| Cpu { id, core, package, numa_node })
                    .collect());
                let mut cfg = Config::default();
                cfg.dataplane.shards = shards;
                let mut host = single_queue_nic();
                if let Some(n) = host.nic.as_mut() { n.rx_queues = rx; n.tx_queues = rx; }
                let p = plan_with(&topo, &cfg, &host);
                let allowed: BTreeSet<usize> = topo.cpus.iter().map(|c| c.id).collect();
                prop_assert!(!p.shard_cpus.is_empty());
                for c in p.shard_cpus.iter().chain(&p.irq_cpus).chain(&p.control_cpus) {
                    prop_assert!(allowed.contains(c));
                }
                prop_assert!(!p.irq_cpus.is_empty());
                prop_assert!(!p.control_cpus.is_empty());
                let _ = p.to_string();
            }

            #[test]
            fn interrupts_parse_never_panics(text in "[ -~\n]{0,200}") {
                let f = Fake::new();
                f.write("proc/interrupts", &text);
                let _ = read_interrupt_names(&f.proc_());
            }
        }
    }
}
