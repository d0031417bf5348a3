#!/usr/bin/env bash
# A throwaway single-node SLURM on this machine, for testing profiles/slurm against a real scheduler.
#
#   sudo scripts/slurm_cluster.sh start    # install (once) and start munge, MariaDB, slurmdbd, slurmctld, slurmd
#   sudo scripts/slurm_cluster.sh status   # daemons, node state, partitions, fake GPUs
#   sudo scripts/slurm_cluster.sh stop     # stop exactly the processes `start` started (by PID)
#
# Debian 12 (SLURM 22.05), run as root, no systemd needed: every daemon is started in the foreground
# under setsid and its PID is recorded in $STATE/pids; `stop` signals only those PIDs (and only if
# the PID still runs the same program). Accounting runs through slurmdbd + MariaDB so `sacct` works as
# on real clusters (the Snakemake SLURM executor polls job states with sacct).
#
# Fake GPUs: $VIDCAP_SLURM_GPUS (default 2) character devices /dev/vidcap-fakegpu<i> (copies of
# /dev/null, `mknod c 1 3`) declared as gres `gpu`; SLURM then sets CUDA_VISIBLE_DEVICES for jobs that
# ask for --gpus/--gres, exactly as on a GPU node. (A plain file gives an empty CUDA_VISIBLE_DEVICES.)
#
# The config must live at /etc/slurm/slurm.conf: the Snakemake job-step plugin clears every SLURM_*
# variable (SLURM_CONF included) before its inner srun. A slurm.conf not written by this script is
# kept as slurm.conf.vidcap-backup and put back by `stop`.
#
# Settings (environment): VIDCAP_SLURM_GPUS (2), VIDCAP_SLURM_CPUS (the machine's, from slurmd -C),
# VIDCAP_SLURM_STATE (/var/lib/vidcap-slurm), VIDCAP_SLURM_ACCOUNT (vidcap: an account with root in it).
set -euo pipefail

GPUS=${VIDCAP_SLURM_GPUS:-2}
STATE=${VIDCAP_SLURM_STATE:-/var/lib/vidcap-slurm}
ACCOUNT=${VIDCAP_SLURM_ACCOUNT:-vidcap}
CLUSTER=vidcap
PARTITION=debug
CONF_DIR=/etc/slurm
MARK="# written by vidcap scripts/slurm_cluster.sh"
PIDS="$STATE/pids"
LOGS="$STATE/log"
DB_SOCK=/run/mysqld/mysqld.sock
DB_PASS=vidcap-throwaway   # local socket only, throwaway cluster
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server mariadb-client)

log() { echo "slurm_cluster: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [[ $(id -u) == 0 ]] || die "run as root (it installs packages and writes /etc/slurm)"; }

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        # Package scripts must not start daemons (there is no init system to ask anyway).
        local had_policy=0
        [[ -e /usr/sbin/policy-rc.d ]] && had_policy=1
        if ((!had_policy)); then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
        if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -q >/dev/null; fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                 "${missing[@]}" >/dev/null; }
        ((had_policy)) || rm -f /usr/sbin/policy-rc.d
    fi
}

# pid_alive PID NAME: the PID exists and runs NAME (guards against a recycled PID).
pid_alive() {
    [[ -r /proc/$1/comm ]] && [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2"* ]]
}

recorded() { [[ -f $PIDS ]] && awk -v n="$1" '$1 == n {print $2}' "$PIDS" | tail -1; }

running() { local pid; pid=$(recorded "$1"); [[ -n $pid ]] && pid_alive "$pid" "$1"; }

# launch NAME CMD...: start CMD (which must stay in the foreground) detached, record NAME PID.
launch() {
    local name=$1; shift
    if running "$name"; then log "$name already running (pid $(recorded "$name"))"; return; fi
    setsid "$@" >>"$LOGS/$name.out" 2>&1 </dev/null &
    local pid=$!
    echo "$name $pid" >>"$PIDS"
    sleep 0.3
    pid_alive "$pid" "$name" || { tail -20 "$LOGS/$name.out" "$LOGS/$name.log" 2>/dev/null >&2 || true
                                  die "$name exited at start (logs: $LOGS)"; }
    log "started $name (pid $pid)"
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD...
    local t=$1 what=$2; shift 2
    local end=$((SECONDS + t))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || die "timed out after ${t}s waiting for $what (logs: $LOGS)"
        sleep 0.2
    done
}

write_config() {
    local node cpus mem gres_lines=""
    node=$(hostname -s)
    # The node line as slurmd sees the machine; CPUs can be raised for tests (config_overrides).
    read -r cpus mem < <(slurmd -C | awk '/^NodeName/ {for (i = 1; i <= NF; i++) {split($i, kv, "=");
        if (kv[1] == "CPUs") c = kv[2]; if (kv[1] == "RealMemory") m = kv[2]}} END {print c, m}')
    cpus=${VIDCAP_SLURM_CPUS:-$cpus}
    mem=$((mem > 2048 ? mem - 1024 : mem))   # leave the daemons some memory
    for ((i = 0; i < GPUS; i++)); do
        [[ -c /dev/vidcap-fakegpu$i ]] || { rm -f "/dev/vidcap-fakegpu$i"; mknod "/dev/vidcap-fakegpu$i" c 1 3; }
        gres_lines+="Name=gpu File=/dev/vidcap-fakegpu$i"$'\n'
    done
    mkdir -p "$CONF_DIR"
    if [[ -f $CONF_DIR/slurm.conf ]] && ! grep -qF "$MARK" "$CONF_DIR/slurm.conf"; then
        cp -p "$CONF_DIR/slurm.conf" "$CONF_DIR/slurm.conf.vidcap-backup"
        log "kept the existing slurm.conf as slurm.conf.vidcap-backup"
    fi
    local gres_node=""
    ((GPUS > 0)) && gres_node="Gres=gpu:$GPUS"
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
DefMemPerCPU=1000
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MinJobAge=300
KillWait=5
InactiveLimit=0
MpiDefault=none
GresTypes=gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $gres_node State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    printf '%s\n%s' "$MARK" "$gres_lines" >"$CONF_DIR/gres.conf"
    cat >"$CONF_DIR/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$CONF_DIR/slurmdbd.conf"
    # plugstack.conf from the package may include files that do not exist; keep it harmless.
    [[ -f $CONF_DIR/plugstack.conf ]] || : >"$CONF_DIR/plugstack.conf"
}

start_munge() {
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    [[ -s /etc/munge/munge.key ]] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
                                       chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    # setpriv execs (no forking wrapper), so the recorded PID is munged's own.
    launch munged setpriv --reuid=munge --regid=munge --init-groups munged --foreground
    wait_for 10 munge munge -n
}

start_mariadb() {
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    if [[ ! -d /var/lib/mysql/mysql ]]; then
        log "initialising MariaDB data directory"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$LOGS/mariadb-install.out" 2>&1
    fi
    launch mariadbd mariadbd --user=mysql --datadir=/var/lib/mysql --socket=$DB_SOCK \
        --bind-address=127.0.0.1 --port=3306 --log-error="$LOGS/mariadbd.log"
    wait_for 60 MariaDB mariadb-admin --socket=$DB_SOCK ping
    mariadb --socket=$DB_SOCK -u root <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
}

start() {
    need_root
    install_packages
    mkdir -p "$STATE/ctld" "$STATE/d" "$LOGS"
    write_config
    start_munge
    start_mariadb
    launch slurmdbd slurmdbd -D
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true
    sacctmgr -i -Q add account "$ACCOUNT" Cluster="$CLUSTER" Description=vidcap-tests Organization=vidcap \
        >/dev/null 2>&1 || true
    sacctmgr -i -Q add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null 2>&1 || true
    launch slurmctld slurmctld -D
    wait_for 30 slurmctld scontrol ping
    launch slurmd slurmd -D
    wait_for 30 "node $(hostname -s) idle" bash -c "sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'"
    # A node left DOWN/DRAIN by an earlier run of this script comes back.
    scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
    log "up: partition $PARTITION, account $ACCOUNT, $GPUS fake GPU(s); logs in $LOGS"
    status
}

stop() {
    need_root
    if [[ ! -f $PIDS ]]; then log "nothing recorded in $PIDS: nothing to stop"; return 0; fi
    # Reverse start order; only the PIDs this script recorded, only while they run the same program.
    local entries; entries=$(tac "$PIDS")
    while read -r name pid; do
        [[ -n $name ]] || continue
        if pid_alive "$pid" "$name"; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do pid_alive "$pid" "$name" || break; sleep 0.2; done
            if pid_alive "$pid" "$name"; then log "$name (pid $pid) ignored SIGTERM: SIGKILL"; kill -KILL "$pid" || true; fi
            log "stopped $name (pid $pid)"
        fi
    done <<<"$entries"
    rm -f "$PIDS"
    if [[ -f $CONF_DIR/slurm.conf.vidcap-backup ]]; then
        mv "$CONF_DIR/slurm.conf.vidcap-backup" "$CONF_DIR/slurm.conf"
        log "restored the previous slurm.conf"
    fi
}

status() {
    local rc=0 name
    for name in munged mariadbd slurmdbd slurmctld slurmd; do
        if running "$name"; then echo "$name: running (pid $(recorded "$name"))"
        else echo "$name: not running"; rc=3; fi
    done
    if ((rc == 0)); then
        sinfo -N -o "%N %P %t %c %m %G" || rc=3
        sacct -n -X -S now-1minutes >/dev/null 2>&1 && echo "sacct: ok" || { echo "sacct: FAILING"; rc=3; }
    fi
    return $rc
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    restart) stop; start ;;
    *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
