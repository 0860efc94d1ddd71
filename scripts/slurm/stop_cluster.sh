#!/usr/bin/env bash
# Stop the cluster started by scripts/slurm/start_cluster.sh STATE_DIR (by the PIDs it saved;
# munged is left running, it is harmless and other users of the host may share it).
set -uo pipefail
state=$(realpath -m "${1:?usage: stop_cluster.sh STATE_DIR}")
for daemon in slurmd slurmctld; do
    pidfile=$state/$daemon.pid.bg
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
done
# the slurm.conf the start script wrote (only ours: it carries the marker)
grep -qF "written by sps scripts/slurm/start_cluster.sh" /etc/slurm/slurm.conf 2>/dev/null \
    && rm -f /etc/slurm/slurm.conf /etc/slurm/gres.conf
exit 0
