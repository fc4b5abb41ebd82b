#!/usr/bin/env bash
# A one-node Slurm cluster on localhost from Debian's slurm-wlm and munge, for the tests.
#
#   .ci/slurm-cluster.sh start DIR   configure in DIR, start munged (if none runs), slurmctld and
#                                    slurmd, wait until the node is idle; prints SLURM_CONF=...
#   .ci/slurm-cluster.sh stop DIR    stop the daemons this script started (by their pid files)
#
# Runs as root (slurmd must). Facts it relies on: munge needs /etc/munge/munge.key (1,024 random
# bytes, owner munge, mode 400) and munged started as user munge with /run/munge owned by it.
set -euo pipefail
action=${1:?start or stop}
dir=${2:?a directory for the cluster state}

stop_pid() {
  local file=$1
  if [[ -s $file ]]; then
    local pid
    pid=$(cat "$file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$file"
  fi
}

case $action in
start)
  mkdir -p "$dir"/state "$dir"/spool "$dir"/log
  dir=$(cd "$dir" && pwd)
  if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if ! munge -n </dev/null >/dev/null 2>&1; then
    # munged runs as munge: its pid file goes where that user may write.
    mkdir -p "$dir/munge"
    chown munge:munge "$dir/munge"
    runuser -u munge -- /usr/sbin/munged --pid-file="$dir/munge/munged.pid"
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  host=$(hostname -s)
  cat >"$dir/slurm.conf" <<CONF
ClusterName=memia-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${MEMIA_SLURMCTLD_PORT:-6817}
SlurmdPort=${MEMIA_SLURMD_PORT:-6818}
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 100); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qx 'idle'; then
      echo "SLURM_CONF=$SLURM_CONF"
      exit 0
    fi
    sleep 0.2
  done
  echo "the node did not become idle; sinfo says: $(sinfo 2>&1)" >&2
  tail -20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
  exit 1
  ;;
stop)
  stop_pid "$dir/slurmd.pid"
  stop_pid "$dir/slurmctld.pid"
  stop_pid "$dir/munge/munged.pid"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
