#!/usr/bin/env bash
# Start a throw-away single-node SLURM (Debian 12, Slurm 22.05) with slurmdbd accounting,
# for tests/test_slurm.py. No systemd: every daemon runs in the foreground under setsid,
# its PID recorded in $BASE/pids; tests/e2e/slurm/stop_local_slurm.sh stops exactly those.
#
#   tests/e2e/slurm/start_local_slurm.sh BASE     (or BASE=... in the environment)
#
# Everything lives under BASE: configs, munge key and socket, state, logs, MariaDB datadir.
# Nothing in /etc is read or written, so a machine with a SLURM of its own keeps it. To use
# the cluster, every SLURM command needs its config and a shim on PATH:
#   export SLURM_CONF=$BASE/etc/slurm.conf PATH=$BASE/bin:$PATH
# (the plugin's job step drops every SLURM_* variable from its inner srun, which would then
# read /etc/slurm/slurm.conf: $BASE/bin/srun puts SLURM_CONF back). Needs root and the packages
#   slurmctld slurmd slurm-client slurmdbd munge mariadb-server
# Knobs: SLURM_REAL_MEMORY (MB, default 8000; jobs asking more pend forever), SLURM_CPUS
# (default: nproc), SLURM_DB_PORT (default 3306).
set -euo pipefail

BASE=${1:-${BASE:-}}
[ -n "$BASE" ] || { echo "usage: $0 BASE_DIR (state dir, e.g. a tmp dir)" >&2; exit 2; }
mkdir -p "$BASE"
BASE=$(cd "$BASE" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
HOST=$(hostname)
REAL_MEMORY=${SLURM_REAL_MEMORY:-8000}
CPUS=${SLURM_CPUS:-$(nproc)}
DB_PORT=${SLURM_DB_PORT:-3306}
DB_PASS=slurm-test-only
ETC=$BASE/etc
MUNGE=$BASE/munge
export SLURM_CONF=$ETC/slurm.conf   # for the daemons and the checks below

die() { echo "start_local_slurm: $*" >&2; exit 1; }

for bin in slurmctld slurmd slurmdbd sacct munged mariadbd mariadb-install-db; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || die "'$bin' not found: apt-get install" \
    "-y --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge mariadb-server"
done
[ "$(id -u)" = 0 ] || die "must run as root (daemons run as root/munge/mysql)"

alive() { [ -s "$BASE/pids/$1" ] && kill -0 "$(cat "$BASE/pids/$1")" 2>/dev/null; }
if alive slurmctld && alive slurmd && scontrol ping 2>/dev/null | grep -q UP; then
  echo "start_local_slurm: already running under $BASE"; exit 0
fi
"$HERE/stop_local_slurm.sh" "$BASE" >/dev/null 2>&1 || true   # leftovers of a half start

for port in "$DB_PORT" 6817 6818 6819; do
  ! ss -Hltn "sport = :$port" | grep -q . || die "port $port is in use by another program"
done

# wait_for SECONDS DAEMON_NAME COMMAND...: poll until COMMAND succeeds; on timeout show the log
wait_for() {
  local secs=$1 name=$2; shift 2
  for _ in $(seq $((secs * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  tail -n 20 "$BASE/log/$name"* >&2 || true
  "$HERE/stop_local_slurm.sh" "$BASE" >&2 || true
  die "$name did not come up within ${secs}s (logs in $BASE/log)"
}

# start NAME COMMAND...: run a foreground daemon in its own session and record its PID
# (setsid and setpriv exec, so $! is the daemon itself)
start() {
  local name=$1; shift
  setsid "$@" >"$BASE/log/$name.out" 2>&1 </dev/null &
  echo $! >"$BASE/pids/$name"
}

mkdir -p "$BASE"/{state,spool,log,pids,mysql,mysqlrun,bin} "$ETC" "$MUNGE"
chown mysql:mysql "$BASE/mysql" "$BASE/mysqlrun"   # mariadbd (as mysql) writes socket/pid there

# ---- srun shim (see the header): every other SLURM command keeps the caller's SLURM_CONF
SRUN=$(PATH=${PATH//$BASE\/bin:/} command -v srun) || die "no srun: apt-get install slurm-client"
cat >"$BASE/bin/srun" <<SHIM
#!/bin/sh
export SLURM_CONF="$ETC/slurm.conf"
exec "$SRUN" "\$@"
SHIM
chmod 755 "$BASE/bin/srun"

# ---- munge: our own munged, key and socket (SLURM finds the socket through AuthInfo)
[ -s "$MUNGE/munge.key" ] || mungekey --create --keyfile="$MUNGE/munge.key" >/dev/null
chown -R munge:munge "$MUNGE" && chmod 755 "$MUNGE" && chmod 400 "$MUNGE/munge.key"
start munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F \
  --key-file="$MUNGE/munge.key" --socket="$MUNGE/munge.socket" --pid-file="$MUNGE/munged.pid" \
  --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/munged.seed"
wait_for 15 munged sh -c "munge -S '$MUNGE/munge.socket' -n </dev/null | unmunge -S '$MUNGE/munge.socket'"

# ---- MariaDB for slurmdbd (own datadir; TCP on 127.0.0.1 only)
if [ ! -d "$BASE/mysql/mysql" ]; then
  mariadb-install-db --user=mysql --datadir="$BASE/mysql" --skip-test-db \
    --auth-root-authentication-method=socket >"$BASE/log/mysql_install.log" 2>&1 \
    || die "mariadb-install-db failed: see $BASE/log/mysql_install.log"
fi
SOCK=$BASE/mysqlrun/mysql.sock
start mariadbd /usr/sbin/mariadbd --user=mysql --datadir="$BASE/mysql" --socket="$SOCK" \
  --bind-address=127.0.0.1 --port="$DB_PORT" --pid-file="$BASE/mysqlrun/mariadbd.pid" \
  --log-error="$BASE/log/mariadbd.err" --skip-log-bin \
  --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900
wait_for 30 mariadbd mariadb -S "$SOCK" -e 'select 1'
mariadb -S "$SOCK" -e "
  CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
  FLUSH PRIVILEGES;"

# ---- configs
cat >"$ETC/slurmdbd.conf" <<CONF
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket
DbdHost=localhost
DbdPort=6819
SlurmUser=root
PidFile=$BASE/pids/slurmdbd.pid
LogFile=$BASE/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
CONF
chmod 600 "$ETC/slurmdbd.conf"   # slurmdbd refuses a readable file with a password

# MinJobAge 300: the plugin falls back to sacct if it is < 3x its first status delay.
cat >"$ETC/slurm.conf" <<CONF
ClusterName=localcluster
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/pids/slurmctld.pid
SlurmdPidFile=$BASE/pids/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStoragePass=$MUNGE/munge.socket
JobCompType=jobcomp/none
AccountingStoreFlags=job_comment
NodeName=$HOST CPUs=$CPUS RealMemory=$REAL_MEMORY State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

# ---- slurmdbd -> slurmctld (registers the cluster and the root account) -> slurmd
start slurmdbd /usr/sbin/slurmdbd -D
wait_for 30 slurmdbd sacctmgr -n show cluster
start slurmctld /usr/sbin/slurmctld -D
wait_for 30 slurmctld sh -c 'scontrol ping | grep -q UP'
start slurmd /usr/sbin/slurmd -D
wait_for 30 slurmd sh -c "sinfo -h -o %t | grep -qE '^(idle|mix|alloc)'"
wait_for 30 slurmctld sh -c "sacctmgr -n show assoc user=root format=account | grep -q root"
echo "start_local_slurm: up (state and logs in $BASE)"
