# shellcheck shell=bash
# Shared helpers for scripts/services-start and scripts/services-stop.
# Sourced, not executed. Progress goes to stderr so that stdout of
# services-start carries only the `export` lines (eval "$(scripts/services-start)").

# ---------------------------------------------------------------- settings --
# (Used by the scripts that source this file.)
# shellcheck disable=SC2034
STATE_DIR="${REACTOR_SERVICES_DIR:-${TMPDIR:-/tmp}/reactor-services}"
TOOLS_DIR="${REACTOR_TOOLS_DIR:-${HOME:-/tmp}/.cache/reactor/tools}"
SERVICES_TIMEOUT="${REACTOR_SERVICES_TIMEOUT:-60}"

KAFKA_PORT="${KAFKA_PORT:-19092}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-18123}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-19000}"
CLICKHOUSE_HTTPS_PORT="${CLICKHOUSE_HTTPS_PORT:-18443}"
SCHEMA_REGISTRY_PORT="${SCHEMA_REGISTRY_PORT:-18081}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-19090}"

HOST=127.0.0.1
ALL_SERVICES=(kafka clickhouse schema-registry prometheus)

RUN_DIR="$STATE_DIR/run"
LOG_DIR="$STATE_DIR/logs"
# Marker that tells services-stop --clean the directory is ours to delete.
STATE_MARKER="$STATE_DIR/.reactor-services"

# No job control, even if SHELLOPTS asks for it: launch() relies on background
# jobs not being process-group leaders.
set +m

# ---------------------------------------------------------------- output ----
say() { printf '==> %s\n' "$*" >&2; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die() {
    printf '==> ERROR: %s\n' "$*" >&2
    exit 1
}

# show_logs FILE... : the last 30 lines of each non-empty log file, to stderr.
show_logs() {
    local f
    for f in "$@"; do
        if [[ -s $f ]]; then
            printf -- '---- last 30 lines of %s ----\n' "$f" >&2
            tail -n 30 "$f" >&2
            printf -- '---- end of %s ----\n' "$f" >&2
        fi
    done
}

# canonical_service NAME : print the canonical service name, or fail.
canonical_service() {
    case "$1" in
        kafka | tansu) echo kafka ;;
        clickhouse | ch) echo clickhouse ;;
        schema-registry | schema_registry | registry | sr) echo schema-registry ;;
        prometheus | prom) echo prometheus ;;
        *) return 1 ;;
    esac
}

# port_vars SERVICE : the environment variables that set SERVICE's ports.
port_vars() {
    case "$1" in
        kafka) echo KAFKA_PORT ;;
        clickhouse) echo "CLICKHOUSE_HTTP_PORT / CLICKHOUSE_TCP_PORT / CLICKHOUSE_HTTPS_PORT" ;;
        schema-registry) echo SCHEMA_REGISTRY_PORT ;;
        prometheus) echo PROMETHEUS_PORT ;;
    esac
}

# ---------------------------------------------------------------- processes --
# pid_alive PID : true if PID exists and is not a zombie.
pid_alive() {
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/stat ]]; then
        # Field 3 of /proc/PID/stat is the state; the command name (field 2)
        # is in parentheses and may contain spaces, so cut after the last ')'.
        state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
        [[ $state != Z && $state != X ]]
    fi
}

# pid_cmdline PID : the command line of PID with NULs turned into spaces.
pid_cmdline() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
}

# service_pid SERVICE PATTERN : print the pid from the service's pid file if
# that process is alive and its command line contains PATTERN (guards against
# a stale pid file whose pid was reused by an unrelated process).
service_pid() {
    local pidfile="$RUN_DIR/$1.pid" pid
    [[ -f $pidfile ]] || return 1
    pid=$(head -n1 "$pidfile" 2>/dev/null) || return 1
    pid_alive "$pid" || return 1
    if [[ -r /proc/$pid/cmdline ]] && [[ $(pid_cmdline "$pid") != *"$2"* ]]; then
        return 1
    fi
    echo "$pid"
}

# launch SERVICE LOGFILE WORKDIR CMD... : start CMD in the background in its
# own session (so a terminal hang-up or Ctrl-C does not reach it), with stdin
# from /dev/null, stdout+stderr appended to LOGFILE, and the lock fd closed.
# Writes the pid file and sets LAUNCHED_PID.
launch() {
    local service=$1 logfile=$2 workdir=$3
    shift 3
    mkdir -p "$RUN_DIR" "$(dirname "$logfile")"
    printf '\n==== %s: starting at %s: %s\n' "$service" "$(date -u +%FT%TZ)" "$*" >>"$logfile"
    # In a non-interactive shell a background job is never a process-group
    # leader, so setsid(1) calls setsid(2) and execs without forking: $! is
    # the server's own pid.
    (cd "$workdir" && exec setsid "$@" </dev/null >>"$logfile" 2>&1 9>&-) &
    LAUNCHED_PID=$!
    echo "$LAUNCHED_PID" >"$RUN_DIR/$service.pid"
}

# stop_pid NAME PID [TIMEOUT] [SIGNAL] : send SIGNAL (default TERM), wait up
# to TIMEOUT s, then SIGKILL.
stop_pid() {
    local name=$1 pid=$2 timeout=${3:-30} signal=${4:-TERM} deadline
    kill -"$signal" "$pid" 2>/dev/null || return 0
    deadline=$((SECONDS + timeout))
    local noted=false start=$SECONDS
    while pid_alive "$pid"; do
        if ! $noted && ((SECONDS - start >= 3)); then
            say "$name: still shutting down (it waits for open client connections; up to ${timeout}s before SIGKILL)"
            noted=true
        fi
        if ((SECONDS >= deadline)); then
            warn "$name (pid $pid) did not exit within ${timeout}s of SIG$signal; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
}

# ---------------------------------------------------------------- probes ----
# kafka_answers HOST PORT : true if HOST:PORT answers a Kafka ApiVersions v0
# request (correlation id 7) with a response carrying that correlation id.
# Stricter than a bare TCP connect: a non-Kafka server on the port fails it.
kafka_answers() {
    local reply
    # shellcheck disable=SC2016 # expanded by the inner bash
    reply=$(timeout 2 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "\x00\x00\x00\x0b\x00\x12\x00\x00\x00\x00\x00\x07\x00\x01r" >&3
        head -c 8 <&3 | od -An -tx1' _ "$1" "$2" 2>/dev/null | tr -d ' \n') || return 1
    [[ $reply =~ ^[0-9a-f]{8}00000007$ ]]
}

# http_ok URL [EXPECTED_BODY] : true if URL answers 2xx (and the body equals
# EXPECTED_BODY, trailing whitespace ignored, when given).
http_ok() {
    local body
    body=$(curl -sf --max-time 2 "$1" 2>/dev/null) || return 1
    [[ $# -lt 2 ]] && return 0
    [[ ${body%%[[:space:]]} == "$2" ]]
}

# wait_for NAME PID LOGFILE... -- CMD... : poll CMD every 50 ms until it
# succeeds. Fails (printing the log tails and a hint) when the deadline of
# $SERVICES_TIMEOUT seconds passes or when PID (if non-empty) has exited.
wait_for() {
    local name=$1 pid=$2
    shift 2
    local logs=()
    while [[ $# -gt 0 && $1 != -- ]]; do
        logs+=("$1")
        shift
    done
    [[ ${1:-} == -- ]] && shift
    local deadline=$((SECONDS + SERVICES_TIMEOUT))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [[ -n $pid ]] && ! pid_alive "$pid"; then
            show_logs "${logs[@]}"
            die "$name: the process (pid $pid) exited before it became ready; see the log above (full logs: ${logs[*]}). Fix the cause (often: a port is taken; choose others with $(port_vars "$name")) and run scripts/services-start again."
        fi
        if ((SECONDS >= deadline)); then
            show_logs "${logs[@]}"
            die "$name: not ready after ${SERVICES_TIMEOUT}s; see the log above (full logs: ${logs[*]}). Run scripts/services-stop $name and scripts/services-start $name to retry, or raise REACTOR_SERVICES_TIMEOUT."
        fi
        sleep 0.05
    done
}

# ---------------------------------------------------------------- installs --
# as_root CMD... : run CMD as root (directly, or through sudo when not root).
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $* (install the package yourself, or run as root)"
    fi
}

# apt_install LOGFILE PACKAGE... : apt-get install, running apt-get update
# first only when the install fails without it.
apt_install() {
    local logfile=$1
    shift
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found: install $* with your system's package manager and run again"
    mkdir -p "$(dirname "$logfile")"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -y -q)
    if as_root "${apt[@]}" install --no-install-recommends "$@" >>"$logfile" 2>&1; then
        return 0
    fi
    say "apt-get install failed without a package-list update; running apt-get update"
    if as_root "${apt[@]}" update >>"$logfile" 2>&1 &&
        as_root "${apt[@]}" install --no-install-recommends "$@" >>"$logfile" 2>&1; then
        return 0
    fi
    show_logs "$logfile"
    die "could not install $* with apt-get (log: $logfile); install it by hand and run again"
}

# stop_package_service NAME USER : right after we installed a Debian package,
# stop the system service its postinst may have started (it runs as the
# package's USER; ours run as the invoking user, on our own port, bound to
# 127.0.0.1 only). The package stays installed; its service is not disabled.
stop_package_service() {
    local name=$1 user=$2
    pgrep -u "$user" -f "$name" >/dev/null 2>&1 || return 0
    say "$name: stopping the system service the package started (we run our own instance)"
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        as_root systemctl stop "$name" >/dev/null 2>&1 || true
    elif [[ -x /etc/init.d/$name ]]; then
        as_root /etc/init.d/"$name" stop >/dev/null 2>&1 || true
    fi
}
