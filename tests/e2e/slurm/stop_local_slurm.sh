#!/usr/bin/env bash
# Stop the daemons tests/e2e/slurm/start_local_slurm.sh started under BASE, by their recorded
# PIDs only (TERM, then KILL after 10 s): slurmd and slurmctld first, then slurmdbd (so the
# controller can flush its accounting), then MariaDB and munged. Leaves BASE itself (its
# configs, state and logs) in place.
#   tests/e2e/slurm/stop_local_slurm.sh BASE      (or BASE=... in the environment)
set -uo pipefail
BASE=${1:-${BASE:-}}
[ -n "$BASE" ] || { echo "usage: $0 BASE_DIR" >&2; exit 2; }
[ -d "$BASE" ] || exit 0
BASE=$(cd "$BASE" && pwd)

# stop NAME...: TERM the recorded PIDs together, wait for all of them, KILL stragglers
stop() {
  local name pid pids=()
  for name in "$@"; do
    [ -s "$BASE/pids/$name" ] || continue
    pid=$(cat "$BASE/pids/$name")
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$BASE/pids/$name"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop_local_slurm: PID $pid ignored TERM: KILL" >&2
      kill -9 "$pid"
    fi
  done
}
stop slurmd slurmctld
stop slurmdbd
stop mariadbd munged
exit 0
