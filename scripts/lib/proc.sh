# shellcheck shell=bash
# Processes, sourced by scripts/stack.sh and bench/run.sh: pid files that record the PID plus the
# kernel start time (a recycled PID is never taken for ours), stopping one process group by its
# recorded PID, waiting, and whether a TCP port accepts. Nothing here finds a process by name.
# Needs from the sourcing script: log, die.

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

start_time_of() {  # PID -> start time in clock ticks since boot (field 22 of /proc/PID/stat)
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    printf '%s\n' "${fields[19]}"
}

pidfile_alive() {  # PIDFILE -> prints the PID if that process (same start time) is alive
    local f=$1 pid want now
    [ -f "$f" ] || return 1
    pid=$(head -n1 "$f" 2>/dev/null) || return 1
    is_uint "$pid" || return 1
    want=$(cat "$f.start" 2>/dev/null) || return 1
    now=$(start_time_of "$pid") || return 1
    [ "$want" = "$now" ] || return 1
    printf '%s\n' "$pid"
}

record_pid() {  # PIDFILE PID: the PID and, in PIDFILE.start, its start time
    printf '%s\n' "$2" >"$1"
    record_start "$1" || true   # already gone: the caller's health check says why
}

record_start() {  # PIDFILE: records the start time of the PID a daemon wrote there itself
    local pid
    pid=$(head -n1 "$1" 2>/dev/null) && is_uint "$pid" || return 1
    start_time_of "$pid" >"$1.start"
}

forget_pid() {  # PIDFILE
    rm -f "$1" "$1.start"
}

children_of() {  # PID -> the PIDs of its children, one a line
    local f stat ppid
    local -a kids
    if [ -r "/proc/$1/task/$1/children" ]; then   # the kernel's list (CONFIG_PROC_CHILDREN)
        for f in /proc/"$1"/task/*/children; do
            read -r -a kids <"$f" || true
            [ ${#kids[@]} -eq 0 ] || printf '%s\n' "${kids[@]}"
        done
        return 0
    fi
    for f in /proc/[0-9]*/stat; do   # else every process's parent (slow: a file per process)
        stat=$(cat "$f" 2>/dev/null) || continue
        read -r _ ppid _ <<<"${stat##*) }"
        [ "$ppid" = "$1" ] && { f=${f#/proc/}; echo "${f%/stat}"; }
    done
    return 0
}

wait_gone() {  # PID SECONDS
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        [ $SECONDS -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

stop_group() {  # NAME PID GRACE_SIGNAL SECONDS: graceful signal, then SIGKILL to its process group
    local name=$1 pid=$2 sig=$3 grace=$4
    log "stopping $name (pid $pid, SIG$sig)"
    kill -s "$sig" "$pid" 2>/dev/null || return 0
    if ! wait_gone "$pid" "$grace"; then
        log "$name did not stop within ${grace}s: SIGKILL to its process group $pid"
        kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || log "warning: $name (pid $pid) is still there"
    fi
}

tcp_open() {  # HOST PORT: something accepts connections
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
