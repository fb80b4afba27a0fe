#!/usr/bin/env bash
# Private PostgreSQL and Redis instances for Keygate's tests and benchmarks.
#
#   scripts/services.sh start    start both (idempotent), wait until they accept connections
#   scripts/services.sh stop     stop both (idempotent)
#   scripts/services.sh status   say what runs; exit 0 only if both are up
#   scripts/services.sh env      print the variables the app and tests read:
#                                  eval "$(scripts/services.sh env)"
#
# Both listen on 127.0.0.1 only, on non-default ports so they never clash with a system
# instance, and keep their data under $KEYGATE_SERVICES_DIR (default /tmp/keygate-services).
# PostgreSQL trusts loopback connections: the role `keygate` (password `keygate`, superuser so
# Django's test runner can create and drop test databases) owns the database `keygate`.
# Durability is traded for speed (fsync off): this data is disposable.
#
# Overridable: KEYGATE_SERVICES_DIR, KEYGATE_PG_PORT (54329), KEYGATE_REDIS_PORT (63799),
# KEYGATE_PG_BINDIR (default: newest /usr/lib/postgresql/*/bin).
set -euo pipefail

SERVICES_DIR=${KEYGATE_SERVICES_DIR:-/tmp/keygate-services}
PG_PORT=${KEYGATE_PG_PORT:-54329}
REDIS_PORT=${KEYGATE_REDIS_PORT:-63799}
HOST=127.0.0.1
DB_NAME=keygate
DB_USER=keygate
DB_PASSWORD=keygate

PG_DIR=$SERVICES_DIR/postgres
PG_DATA=$PG_DIR/data
PG_LOG=$PG_DIR/postgres.log
PG_SOCKET_DIR=$PG_DIR/run
REDIS_DIR=$SERVICES_DIR/redis
REDIS_LOG=$REDIS_DIR/redis.log
REDIS_PID=$REDIS_DIR/redis.pid

log() { printf '[services] %s\n' "$*"; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# --- PostgreSQL -----------------------------------------------------------------------------

_pg_bindir() {
    if [[ -n ${KEYGATE_PG_BINDIR:-} ]]; then
        echo "$KEYGATE_PG_BINDIR"
        return
    fi
    # Debian keeps the server binaries off PATH (/usr/bin/pg_ctl is a wrapper that wants a
    # cluster managed by pg_ctlcluster), so pick the newest versioned bin directory.
    local dir
    dir=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ -n $dir && -x $dir/initdb ]]; then
        echo "$dir"
    elif command -v pg_config >/dev/null 2>&1 && [[ -x $(pg_config --bindir)/initdb ]]; then
        pg_config --bindir
    else
        die "no PostgreSQL server binaries found (run scripts/install_system_deps.sh)"
    fi
}

# PostgreSQL refuses to run as root, so as root we run the server as the `postgres` user.
_as_pg_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user"
        # cd somewhere the postgres user may enter, or every command warns about the cwd.
        (cd "$PG_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$PG_DIR" && "$@")
    fi
}

_psql() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" -U postgres "$@"
}

_pg_is_running() {
    [[ -f $PG_DATA/PG_VERSION ]] && _as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

_pg_fail() {
    printf '[services] ERROR: %s\n--- last lines of %s ---\n' "$1" "$PG_LOG" >&2
    tail -n 30 "$PG_LOG" >&2 2>/dev/null || true
    exit 1
}

_pg_init() {
    mkdir -p "$PG_DIR" "$PG_SOCKET_DIR"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$PG_DIR" "$PG_SOCKET_DIR"
        runuser -u postgres -- test -x "$PG_DIR" \
            || die "the postgres user cannot enter $PG_DIR: choose a KEYGATE_SERVICES_DIR it can reach (e.g. under /tmp)"
    fi
    [[ -f $PG_DATA/PG_VERSION ]] && return 0
    log "postgres: initdb $PG_DATA"
    # --no-locale: C collation with UTF-8 encoding, identical on every machine (no locale
    # packages needed). Trust auth: the server only listens on loopback and a private socket.
    _as_pg_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --encoding=UTF8 --no-locale \
        --auth-local=trust --auth-host=trust >"$PG_DIR/initdb.log" 2>&1 \
        || { tail -n 30 "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- keygate test instance (scripts/services.sh) ---
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_SOCKET_DIR'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

pg_start() {
    PG_BIN=$(_pg_bindir)
    _pg_init
    if _pg_is_running; then
        log "postgres: already running on $HOST:$PG_PORT"
    else
        log "postgres: starting on $HOST:$PG_PORT ($PG_BIN)"
        : >"$PG_LOG"
        [[ $(id -u) -eq 0 ]] && chown postgres: "$PG_LOG"
        # 9>&-: the daemon must not inherit (and so keep holding) our lock file.
        _as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null 9>&- \
            || _pg_fail "postgres did not start"
    fi
    for _ in $(seq 1 60); do
        "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" && break
        sleep 0.5
    done
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" \
        || _pg_fail "postgres does not accept connections on $HOST:$PG_PORT"

    _psql -d postgres <<EOF || _pg_fail "could not create role/database"
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
        CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD '$DB_PASSWORD';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
EOF
    log "postgres: ready ($("$PG_BIN/postgres" --version))"
}

pg_stop() {
    PG_BIN=$(_pg_bindir)
    if _pg_is_running; then
        log "postgres: stopping"
        _as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null \
            || _pg_fail "postgres did not stop"
    else
        log "postgres: not running"
    fi
}

pg_status() {
    PG_BIN=$(_pg_bindir)
    if _pg_is_running && "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT"; then
        log "postgres: running on $HOST:$PG_PORT (data $PG_DATA)"
    else
        log "postgres: stopped"
        return 1
    fi
}

# --- Redis ----------------------------------------------------------------------------------

_redis_cli() { redis-cli -h "$HOST" -p "$REDIS_PORT" "$@"; }

_redis_is_running() { [[ $(_redis_cli ping 2>/dev/null) == PONG ]]; }

_redis_fail() {
    printf '[services] ERROR: %s\n--- last lines of %s ---\n' "$1" "$REDIS_LOG" >&2
    tail -n 30 "$REDIS_LOG" >&2 2>/dev/null || true
    exit 1
}

redis_start() {
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found (run scripts/install_system_deps.sh)"
    mkdir -p "$REDIS_DIR"
    if _redis_is_running; then
        log "redis: already running on $HOST:$REDIS_PORT"
    else
        log "redis: starting on $HOST:$REDIS_PORT"
        : >"$REDIS_LOG"
        # No persistence: the cache, counters and pub/sub are rebuilt by the tests.
        redis-server --bind "$HOST" --port "$REDIS_PORT" --save '' --appendonly no \
            --daemonize yes --dir "$REDIS_DIR" --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" 9>&- \
            || _redis_fail "redis-server did not start"
    fi
    for _ in $(seq 1 50); do
        _redis_is_running && break
        sleep 0.2
    done
    _redis_is_running || _redis_fail "redis does not answer PING on $HOST:$REDIS_PORT"
    log "redis: ready ($(redis-server --version | cut -d' ' -f1-3))"
}

redis_stop() {
    if _redis_is_running; then
        log "redis: stopping"
        _redis_cli shutdown nosave >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do
            _redis_is_running || break
            sleep 0.2
        done
        _redis_is_running && _redis_fail "redis did not stop"
    else
        log "redis: not running"
    fi
    rm -f "$REDIS_PID"
}

redis_status() {
    if _redis_is_running; then
        log "redis: running on $HOST:$REDIS_PORT"
    else
        log "redis: stopped"
        return 1
    fi
}

# --- commands -------------------------------------------------------------------------------

print_env() {
    echo "export DATABASE_URL=postgres://$DB_USER:$DB_PASSWORD@$HOST:$PG_PORT/$DB_NAME"
    echo "export REDIS_URL=redis://$HOST:$REDIS_PORT/0"
}

with_lock() {
    # Two concurrent `start`s (parallel jobs, a retry) must not both run initdb.
    mkdir -p "$SERVICES_DIR"
    chmod 755 "$SERVICES_DIR"
    exec 9>"$SERVICES_DIR/.lock"
    flock -w 120 9 || die "another services.sh holds $SERVICES_DIR/.lock"
    "$@"
}

start_all() { pg_start; redis_start; }
stop_all() { pg_stop; redis_stop; }

cmd=${1:-}
case $cmd in
    start)
        with_lock start_all
        print_env | sed 's/^/[services] /'
        ;;
    stop)
        with_lock stop_all
        ;;
    status)
        rc=0
        pg_status || rc=3
        redis_status || rc=3
        exit $rc
        ;;
    env)
        print_env
        ;;
    *)
        echo "usage: $0 start|stop|status|env" >&2
        exit 2
        ;;
esac
