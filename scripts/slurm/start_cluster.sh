#!/usr/bin/env bash
# Start a throwaway single-node SLURM cluster on this machine, for testing the SLURM profile
# (tests/test_slurm.py). Needs root and Debian/Ubuntu packages:
#   apt-get install -y slurmctld slurmd slurm-client munge
# Usage: scripts/slurm/start_cluster.sh STATE_DIR [GPUS]
#   STATE_DIR  holds the state, logs and PID files (stop with scripts/slurm/stop_cluster.sh STATE_DIR)
#   GPUS       fake GPUs the node advertises (gres gpu, no device behind them; default 2)
# The node is this host on 127.0.0.1, with processes tracked by /proc (no cgroups, no systemd),
# memory as a consumable resource and jobs killed when they exceed their --mem (jobacct_gather
# polls every second). No accounting database: use the plugin's `squeue` status command; jobs
# stay visible to squeue for MinJobAge seconds after they end.
# slurm.conf is written to /etc/slurm/ (the plugin's job step drops SLURM_CONF before its inner
# srun, so the default path must hold it); an existing slurm.conf not written by this script is
# left alone and the script fails.
set -euo pipefail
state=$(realpath -m "${1:?usage: start_cluster.sh STATE_DIR [GPUS]}")
gpus=${2:-2}
[[ $(id -u) == 0 ]] || { echo "start_cluster.sh: needs root" >&2; exit 2; }
for tool in slurmctld slurmd scontrol munged sinfo; do
    command -v "$tool" >/dev/null || { echo "start_cluster.sh: $tool not installed" >&2; exit 3; }
done
conf=/etc/slurm/slurm.conf
marker="# written by sps scripts/slurm/start_cluster.sh"
if [[ -e $conf ]] && ! grep -qF "$marker" "$conf"; then
    echo "start_cluster.sh: $conf exists and is not ours; not touching it" >&2
    exit 4
fi
if scontrol ping 2>/dev/null | grep -q "is UP"; then
    echo "start_cluster.sh: a slurmctld already answers; stop it first" >&2
    exit 5
fi
mkdir -p "$state"/{ctld,d,log} /etc/slurm
node=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
cat > "$conf" <<CONF
$marker (state in $state)
ClusterName=spstest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
MinJobAge=300
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MpiDefault=none
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$gpus State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
# one device file per fake GPU (slurmd counts gpu gres by their File entries; nothing opens them)
: > /etc/slurm/gres.conf
for i in $(seq 0 $((gpus - 1))); do
    dev=/dev/null; (( i > 0 )) && dev=$state/fake-gpu$i && touch "$dev"
    echo "Name=gpu File=$dev" >> /etc/slurm/gres.conf
done
cp "$conf" /etc/slurm/gres.conf "$state/"

# munge: reuse a running daemon, else start one as the munge user
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
    runuser -u munge -- munged
    sleep 1
fi
munge -n | unmunge >/dev/null

setsid slurmctld -D >"$state/log/slurmctld.out" 2>&1 </dev/null &
echo $! > "$state/slurmctld.pid.bg"
for _ in $(seq 60); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.5; done
scontrol ping | grep -q "is UP" || { echo "slurmctld did not start:" >&2; tail -20 "$state/log/slurmctld.log" >&2; exit 6; }
setsid slurmd -D -N "$node" >"$state/log/slurmd.out" 2>&1 </dev/null &
echo $! > "$state/slurmd.pid.bg"
for _ in $(seq 60); do
    sinfo -h -N -o %t 2>/dev/null | grep -qx idle && break
    sleep 0.5
done
if ! sinfo -h -N -o %t | grep -qx idle; then
    echo "slurmd did not come up idle:" >&2
    sinfo -N >&2; tail -20 "$state/log/slurmd.log" >&2
    exit 7
fi
sinfo -N -o "%N %t %c %m %G"
