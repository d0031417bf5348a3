#!/usr/bin/env bash
# A throwaway SLURM on this machine (one node, or several in namespaces), for testing profiles/slurm
# against a real scheduler.
#
#   sudo scripts/slurm_cluster.sh start    # install (once) and start munge, MariaDB, slurmdbd, slurmctld, slurmd(s)
#   sudo scripts/slurm_cluster.sh status   # daemons, node state, partitions, fake GPUs
#   sudo scripts/slurm_cluster.sh stop     # stop exactly the processes `start` started (by PID), remove namespaces
#   sudo scripts/slurm_cluster.sh kill-node NAME    # power cut: SIGKILL every process in that node's namespaces
#   sudo scripts/slurm_cluster.sh start-node NAME   # start that node's slurmd again (it returns to service)
#
# Several nodes (VIDCAP_SLURM_NODES=N, N > 1; CI uses 2): slurmctld, slurmdbd and munged run on this
# machine (the "head node"); each node vidcap-n<i> is one slurmd in its own network and UTS namespace
# (its own hostname, address $NET.<i+1> on a veth pair plugged into the bridge vidcap-br0, whose
# address $NET.1 is the head node's; no route leaves the bridge). The nodes share this machine's
# filesystem as cluster nodes share NFS, munge's socket and key included. `ip netns` names the network
# namespaces; the UTS ones are bind-mounted at $STATE/uts/<node>. Enter a node with
#   nsenter --net=/run/netns/vidcap-n1 --uts=$STATE/uts/vidcap-n1 CMD
# $STATE/nodes lists "name address netns-file uts-file" per node (empty file for one node).
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
# Settings (environment): VIDCAP_SLURM_GPUS (2, per node), VIDCAP_SLURM_CPUS (the machine's, from
# slurmd -C, per node), VIDCAP_SLURM_STATE (/var/lib/vidcap-slurm), VIDCAP_SLURM_ACCOUNT (vidcap: an
# account with root in it), VIDCAP_SLURM_NODES (1), VIDCAP_SLURM_NET (10.77.0: the bridge's /24),
# VIDCAP_SLURM_SLURMD_TIMEOUT (20: seconds without an answer before slurmctld marks a node DOWN).
set -euo pipefail

GPUS=${VIDCAP_SLURM_GPUS:-2}
NODES=${VIDCAP_SLURM_NODES:-1}
NET=${VIDCAP_SLURM_NET:-10.77.0}
SLURMD_TIMEOUT=${VIDCAP_SLURM_SLURMD_TIMEOUT:-20}
BRIDGE=vidcap-br0
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

# pid_alive PID NAME: the PID exists and runs NAME (guards against a recycled PID); NAME may carry
# an @suffix (slurmd@vidcap-n1) that is not part of the program's name.
pid_alive() {
    [[ -r /proc/$1/comm ]] && [[ $(cat "/proc/$1/comm" 2>/dev/null) == "${2%@*}"* ]]
}

multi() { ((NODES > 1)); }
node_names() { if multi; then for ((i = 1; i <= NODES; i++)); do echo "vidcap-n$i"; done; else hostname -s; fi; }
ctld_addr() { if multi; then echo "$NET.1"; else echo 127.0.0.1; fi; }

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
    local node cpus mem gres_lines="" node_lines="" nodes i
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
    if multi; then
        for ((i = 1; i <= NODES; i++)); do
            node_lines+="NodeName=vidcap-n$i NodeAddr=$NET.$((i + 1)) CPUs=$cpus RealMemory=$mem $gres_node State=UNKNOWN"$'\n'
        done
        nodes="vidcap-n[1-$NODES]"
    else
        node_lines="NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem $gres_node State=UNKNOWN"
        nodes=$node
    fi
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK
ClusterName=$CLUSTER
SlurmctldHost=$node($(ctld_addr))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d/%n
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd-%n.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
DefMemPerCPU=1000
ReturnToService=2
SlurmdTimeout=$SLURMD_TIMEOUT
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
$node_lines
PartitionName=$PARTITION Nodes=$nodes Default=YES MaxTime=INFINITE State=UP LLN=YES
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

# The namespaces of node NAME: network (ip netns) and UTS (bind-mounted file).
netns_file() { echo "/run/netns/$1"; }
uts_file() { echo "$STATE/uts/$1"; }
NODE_FILE="$STATE/nodes"

setup_nodes() {   # bridge on the head node, one namespace pair per node, listed in $NODE_FILE
    : >"$NODE_FILE"
    multi || return 0
    ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
    ip addr replace "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    mkdir -p "$STATE/uts"
    local i name addr
    for ((i = 1; i <= NODES; i++)); do
        name=vidcap-n$i addr=$NET.$((i + 1))
        if [[ ! -e $(netns_file "$name") ]]; then
            ip netns add "$name"
            ip link add "$name-h" type veth peer name "$name-n"
            ip link set "$name-h" master "$BRIDGE"
            ip link set "$name-h" up
            ip link set "$name-n" netns "$name"
            ip -n "$name" addr add "$addr/24" dev "$name-n"
            ip -n "$name" link set "$name-n" up
            ip -n "$name" link set lo up
        fi
        if ! mountpoint -q "$(uts_file "$name")" 2>/dev/null; then
            touch "$(uts_file "$name")"
            unshare --uts="$(uts_file "$name")" hostname "$name"
        fi
        echo "$name $addr $(netns_file "$name") $(uts_file "$name")" >>"$NODE_FILE"
    done
    log "namespaces up: ${NODES} node(s) on $BRIDGE ($NET.0/24, head node $NET.1)"
}

teardown_nodes() {   # everything setup_nodes made, from $NODE_FILE
    [[ -s $NODE_FILE ]] || { rm -f "$NODE_FILE"; return 0; }
    local name addr nsf utsf pid
    while read -r name addr nsf utsf; do
        [[ -n $name ]] || continue
        # processes left in the node (jobs of a killed slurmd): started by this cluster, ended by PID
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$name" 2>/dev/null || true
        ip link del "$name-h" 2>/dev/null || true
        umount "$utsf" 2>/dev/null || true
        rm -f "$utsf"
    done <"$NODE_FILE"
    ip link del "$BRIDGE" 2>/dev/null || true
    rm -f "$NODE_FILE"
    log "namespaces removed"
}

start_node() {   # start_node NAME: that node's slurmd, in its namespaces
    local name=$1
    if multi; then
        [[ -e $(netns_file "$name") ]] || die "no node $name (see $NODE_FILE)"
        mkdir -p "$STATE/d/$name"
        launch "slurmd@$name" nsenter --net="$(netns_file "$name")" --uts="$(uts_file "$name")" slurmd -D -N "$name"
    else
        mkdir -p "$STATE/d/$name"
        launch slurmd slurmd -D
    fi
}

kill_node() {   # kill_node NAME: a power cut. SIGKILL every process in the node's network namespace.
    local name=$1 pid left
    multi || die "kill-node needs a cluster of several nodes (VIDCAP_SLURM_NODES > 1)"
    [[ -e $(netns_file "$name") ]] || die "no node $name"
    for _ in $(seq 1 20); do
        left=$(ip netns pids "$name")
        [[ -n $left ]] || break
        for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
        sleep 0.1
    done
    [[ -z $(ip netns pids "$name") ]] || die "processes left in $name: $(ip netns pids "$name" | tr '\n' ' ')"
    log "node $name: every process killed"
}

slurmd_names() { if multi; then node_names | sed 's/^/slurmd@/'; else echo slurmd; fi; }

start() {
    need_root
    install_packages
    mkdir -p "$STATE/ctld" "$STATE/d" "$LOGS"
    write_config
    setup_nodes
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
    local name
    for name in $(node_names); do start_node "$name"; done
    for name in $(node_names); do
        wait_for 30 "node $name idle" bash -c "sinfo -h -N -n $name -o %t | grep -qE '^(idle|mix|alloc)'"
        # A node left DOWN/DRAIN by an earlier run of this script comes back.
        scontrol update NodeName="$name" State=RESUME >/dev/null 2>&1 || true
    done
    log "up: partition $PARTITION, account $ACCOUNT, $NODES node(s) with $GPUS fake GPU(s) each; logs in $LOGS"
    status
}

stop() {
    need_root
    if [[ ! -f $PIDS ]]; then log "nothing recorded in $PIDS: nothing to stop"; teardown_nodes; return 0; fi
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
    teardown_nodes
    if [[ -f $CONF_DIR/slurm.conf.vidcap-backup ]]; then
        mv "$CONF_DIR/slurm.conf.vidcap-backup" "$CONF_DIR/slurm.conf"
        log "restored the previous slurm.conf"
    fi
}

status() {
    local rc=0 name
    for name in munged mariadbd slurmdbd slurmctld $(slurmd_names); do
        if running "$name"; then echo "$name: running (pid $(recorded "$name"))"
        else echo "$name: not running"; rc=3; fi
    done
    if ((rc == 0)); then
        sinfo -N -o "%N %P %t %c %m %G" || rc=3
        sacct -n -X -S now-1minutes >/dev/null 2>&1 && echo "sacct: ok" || { echo "sacct: FAILING"; rc=3; }
    fi
    return $rc
}

# A cluster that is up keeps the node count it was started with.
if [[ ${1:-} != start && ${1:-} != restart && -s $NODE_FILE ]]; then NODES=$(wc -l <"$NODE_FILE"); fi
case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    restart) stop; start ;;
    kill-node) need_root; kill_node "${2:?node name}" ;;
    start-node) need_root; start_node "${2:?node name}"
                wait_for 60 "node $2 back" bash -c "sinfo -h -N -n $2 -o %t | grep -qE '^(idle|mix|alloc)'" ;;
    *) echo "usage: $0 start|stop|status|restart|kill-node NAME|start-node NAME" >&2; exit 2 ;;
esac
