//! The same topology, read through hwloc (feature `hwloc`). hwloc knows more
//! machines than Linux sysfs describes well (odd firmware tables, container
//! views), so builds that can link libhwloc prefer it.

use hwlocality::object::types::ObjectType;
use hwlocality::Topology as HwTopology;

use super::Cpu;

/// The allowed CPUs with their core, package and NUMA node, by hwloc.
pub fn cpus(allowed: &[usize]) -> Result<Vec<Cpu>, String> {
    let topo = HwTopology::new().map_err(|e| format!("hwloc topology: {e}"))?;
    let nodes: Vec<_> = topo.objects_with_type(ObjectType::NUMANode).collect();
    let mut out = Vec::new();
    for pu in topo.objects_with_type(ObjectType::PU) {
        let Some(id) = pu.os_index() else { continue };
        if !allowed.contains(&id) {
            continue;
        }
        let index_of = |ty| pu.first_ancestor_with_type(ty).and_then(|o| o.os_index());
        // hwloc 2 puts NUMA nodes beside the CPUs, not above them: find the
        // node whose cpuset holds this CPU.
        let numa_node = nodes
            .iter()
            .find(|n| n.cpuset().is_some_and(|set| set.is_set(id)))
            .and_then(|n| n.os_index())
            .unwrap_or(0);
        out.push(Cpu { id, core: index_of(ObjectType::Core).unwrap_or(id), package: index_of(ObjectType::Package).unwrap_or(0), numa_node });
    }
    if out.is_empty() {
        return Err("hwloc saw none of the allowed CPUs".into());
    }
    out.sort_by_key(|c| c.id);
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// hwloc and sysfs must agree on this machine: same CPUs, same cores,
    /// packages and nodes.
    #[test]
    fn hwloc_agrees_with_sysfs() {
        let allowed = super::super::allowed_cpus();
        let from_hwloc = super::cpus(&allowed).expect("hwloc reads the topology");
        let from_sysfs = super::super::Topology::from_sysfs_root(std::path::Path::new("/sys"), &allowed).cpus;
        assert_eq!(from_hwloc, from_sysfs);
    }
}
