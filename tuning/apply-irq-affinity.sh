#!/usr/bin/env bash
# Pin a NIC's interrupts (and optionally RPS/XPS masks) to CPUs.
#
#   apply-irq-affinity.sh [--apply] --plan FILE|-    lines from `sfud tune`
#   apply-irq-affinity.sh [--apply] IFACE CPULIST    e.g. eth0 4-7,12
#
# Dry run by default: prints what it would write and the current value.
# --apply writes (as root) and reads each value back. From a plan, only
# lines of these exact shapes are taken, never anything else:
#   echo CPULIST > /proc/irq/N/smp_affinity_list
#   echo HEXMASK > /sys/class/net/IF/queues/{rx,tx}-N/{rps,xps}_cpus
# With IFACE and CPULIST, the interface's IRQs (its PCI function's
# msi_irqs, and /proc/interrupts lines named after it or its device) are
# spread round-robin over the CPUs.
#
# irqbalance moves IRQs back; stop it (or ban these IRQs in its config)
# first. Settings do not survive a reboot: run this from a boot unit, or
# see docs/tuning.md. SYSFS and PROCFS override /sys and /proc (tests).
set -euo pipefail

SYSFS=${SYSFS:-/sys}
PROCFS=${PROCFS:-/proc}
apply=0
plan=""
args=()

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --apply) apply=1 ;;
        --plan) [ $# -ge 2 ] || usage; plan=$2; shift ;;
        -h|--help) usage ;;
        -*) echo "unknown option $1" >&2; usage ;;
        *) args+=("$1") ;;
    esac
    shift
done

# "0-3,8" -> "0 1 2 3 8"; rejects anything else.
expand_cpulist() {
    local list=$1 part lo hi out=()
    [[ $list =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] || return 1
    IFS=, read -ra parts <<<"$list"
    for part in "${parts[@]}"; do
        lo=${part%-*}; hi=${part#*-}
        [ "$lo" -le "$hi" ] && [ "$hi" -lt 65536 ] || return 1
        for ((c = lo; c <= hi; c++)); do out+=("$c"); done
    done
    echo "${out[@]}"
}

# The interface's IRQ numbers, one per line, sorted and unique.
nic_irqs() {
    local ifc=$1 dir="$SYSFS/class/net/$1" dev=""
    {
        for d in "$dir/device/msi_irqs" "$dir/device/../msi_irqs"; do
            [ -d "$d" ] && ls "$d"
        done
        if [ -L "$dir/device" ]; then dev=$(basename "$(readlink "$dir/device")"); fi
        awk -v a="$ifc" -v b="$dev" '
            $1 ~ /^[0-9]+:$/ {
                name = $NF; n = substr($1, 1, length($1) - 1)
                if (name == a || index(name, a "-") == 1 || index(name, a "@") == 1 ||
                    (b != "" && (name == b || index(name, b "-") == 1))) print n
            }' "$PROCFS/interrupts"
    } | grep -E '^[0-9]+$' | sort -n -u
}

# One write: target file and value; dry run shows the current value.
failures=0
write() {
    local value=$1 file=$2 current
    current=$(cat "$file" 2>/dev/null || echo "?")
    current=${current//$'\n'/}
    if [ "$apply" = 0 ]; then
        echo "would write $value > $file (now: $current)"
        return
    fi
    if ! { echo "$value" >"$file"; } 2>/dev/null; then
        # Kernel-managed IRQs (some virtio, NVMe) refuse with EIO: expected.
        echo "FAILED  $value > $file (now: $current)" >&2
        failures=$((failures + 1))
        return
    fi
    echo "wrote   $value > $file (was: $current, now: $(cat "$file" 2>/dev/null | tr -d '\n'))"
}

lines=()
if [ -n "$plan" ]; then
    [ ${#args[@]} -eq 0 ] || usage
    if [ "$plan" = - ]; then plan_text=$(cat); else plan_text=$(cat -- "$plan"); fi
    irq_re='^echo ([0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*) > /proc/irq/([0-9]+)/smp_affinity_list( |$)'
    q_re='^echo ([0-9a-f]+(,[0-9a-f]+)*) > /sys/class/net/([A-Za-z0-9_.:@-]{1,15})/queues/((rx|tx)-[0-9]+)/(rps|xps)_cpus$'
    while IFS= read -r line; do
        if [[ $line =~ $irq_re ]]; then
            lines+=("${BASH_REMATCH[1]}|$PROCFS/irq/${BASH_REMATCH[5]}/smp_affinity_list")
        elif [[ $line =~ $q_re ]]; then
            [[ ${BASH_REMATCH[3]} == *..* ]] && continue
            lines+=("${BASH_REMATCH[1]}|$SYSFS/class/net/${BASH_REMATCH[3]}/queues/${BASH_REMATCH[4]}/${BASH_REMATCH[6]}_cpus")
        fi
    done <<<"$plan_text"
    [ ${#lines[@]} -gt 0 ] || { echo "no IRQ or queue lines in the plan" >&2; exit 1; }
else
    [ ${#args[@]} -eq 2 ] || usage
    ifc=${args[0]}
    [[ $ifc =~ ^[A-Za-z0-9_.:@-]{1,15}$ && $ifc != . && $ifc != .. ]] || { echo "bad interface name $ifc" >&2; exit 2; }
    [ -e "$SYSFS/class/net/$ifc" ] || { echo "no interface $ifc" >&2; exit 1; }
    cpus=$(expand_cpulist "${args[1]}") || { echo "bad CPU list ${args[1]}" >&2; exit 2; }
    read -ra cpu_arr <<<"$cpus"
    mapfile -t irqs < <(nic_irqs "$ifc")
    [ ${#irqs[@]} -gt 0 ] || { echo "no IRQs found for $ifc (virtual NIC?): use RPS instead, see docs/tuning.md" >&2; exit 1; }
    i=0
    for irq in "${irqs[@]}"; do
        lines+=("${cpu_arr[$((i % ${#cpu_arr[@]}))]}|$PROCFS/irq/$irq/smp_affinity_list")
        i=$((i + 1))
    done
fi

if [ "$apply" = 1 ] && [ "$PROCFS" = /proc ]; then
    if systemctl is-active --quiet irqbalance 2>/dev/null || pgrep -x irqbalance >/dev/null 2>&1; then
        echo "warning: irqbalance is running and will move these IRQs again" >&2
    fi
fi
[ "$apply" = 1 ] || echo "# dry run: nothing is written; add --apply"
for l in "${lines[@]}"; do
    write "${l%%|*}" "${l#*|}"
done
[ "$failures" = 0 ] || { echo "$failures write(s) failed" >&2; exit 1; }
