# test/lib.sh — shared shell functions of the quick start and the test suite:
# install missing packages, build, and run a throwaway PostgreSQL 15 cluster
# owned by an unprivileged user (PostgreSQL refuses to run as root).
# Source it; it sets PGHOST, PGPORT, PGUSER for psql and friends.

set -eu

# ORDERS_PG_BIN: another PostgreSQL 15 bin directory (e.g. a private copy
# with the extension installed under DESTDIR); it finds its share and lib
# directories relative to itself.
PG_BIN=${ORDERS_PG_BIN:-/usr/lib/postgresql/15/bin}
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap postgresql-15-plproxy libtap-parser-sourcehandler-pgtap-perl make gcc"
PG_OS_USER=orders-pg        # used only when running as root
# PostgreSQL 15.0-15.19 can fail an UPDATE with XX000 "new multixact has more
# than one updating member" (fixed in 15.20, doc/multixact.md): Debian's
# packages below this version are upgraded, not merely found present.
PG_MIN_DEBIAN_VERSION=15.20

log() { printf '\n== %s\n' "$*"; }

# as_root CMD... — run CMD with root rights (sudo when not root).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "need root for: $* (run as root or install sudo)" >&2; return 1
    fi
}

# package_present PKG — PKG is installed, or an installed package provides it
# (e.g. NodeSource's nodejs provides, and conflicts with, Debian's npm).
package_present() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" && return 0
    dpkg-query -W -f='${Status}|${Provides}\n' 2>/dev/null | grep "^install ok installed|" | cut -d'|' -f2 |
        tr ',' '\n' | sed 's/ *(.*//; s/^ *//' | grep -qxF "$1"
}

# ensure_packages [PKG...] — install the Debian packages that are missing
# (default: $PACKAGES, and PostgreSQL 15 upgraded when it is older than
# $PG_MIN_DEBIAN_VERSION); a no-op when all are present.
ensure_packages() {
    local missing=""
    for p in ${*:-$PACKAGES}; do
        package_present "$p" || missing="$missing $p"
    done
    if [ $# -eq 0 ] && package_present postgresql-15 &&
       dpkg --compare-versions "$(dpkg-query -W -f='${Version}' postgresql-15)" lt "$PG_MIN_DEBIAN_VERSION"; then
        missing="$missing postgresql-15 postgresql-client-15 postgresql-server-dev-15 libpq5 libpq-dev"
    fi
    if [ -n "$missing" ]; then
        log "installing:$missing"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
}

# build_install — compile with -Werror and install into PostgreSQL 15.
build_install() {
    log "building the extension"
    make -s -C "$REPO_DIR" PG_CONFIG=$PG_BIN/pg_config
    as_root make -s -C "$REPO_DIR" PG_CONFIG=$PG_BIN/pg_config install
}

# as_pg CMD... — run CMD as the cluster's OS user.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

# start_cluster DIR PORT [CONF_LINE...] — initdb (if needed) and start a
# cluster in DIR, listening on a socket in DIR and on 127.0.0.1:PORT, pg_cron
# preloaded; CONF_LINEs are added to postgresql.conf at initdb.
start_cluster() {
    local dir=$1 port=$2; shift 2
    if [ "$(id -u)" -eq 0 ] && ! id "$PG_OS_USER" >/dev/null 2>&1; then
        useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OS_USER"
    fi
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown "$PG_OS_USER" "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg $PG_BIN/initdb -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
        cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
max_connections = 60
fsync = ${ORDERS_FSYNC:-off}
log_min_messages = warning
CONF
        [ $# -eq 0 ] || printf '%s\n' "$@" >> "$dir/data/postgresql.conf"
    fi
    as_pg $PG_BIN/pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
    export PGHOST=$dir PGPORT=$port PGUSER=postgres
}

# stop_cluster DIR — stop the cluster of DIR (quietly if it is not running).
stop_cluster() {
    as_pg $PG_BIN/pg_ctl -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}

# start_bench_cluster — a fresh cluster for a benchmark run (fsync on,
# synchronous_commit off: figures measure CPU work, not this machine's disk),
# stopped when the calling script exits.  Sets BENCH_DIR.
start_bench_cluster() {
    BENCH_DIR=${ORDERS_BENCH_DIR:-/tmp/orders-bench}
    local port=${ORDERS_BENCH_PORT:-54332}
    stop_cluster "$BENCH_DIR"; rm -rf "$BENCH_DIR"
    ORDERS_FSYNC=on start_cluster "$BENCH_DIR" "$port"
    trap 'stop_cluster "$BENCH_DIR"' EXIT
    psql -q -X -d postgres -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
}

# scale_out_clusters BASE PORT NODES — a PL/Proxy proxy cluster (BASE/proxy,
# PORT) in front of NODES node clusters (BASE/node<k>, PORT + 1 + k), for
# test/scale_out.sh and the demo's --scale-out.  Each node: a database
# "orders" whose orders.partition is k (set before the extension makes any
# id), the extension, grant_api(), order numbers interleaved over the nodes,
# and the API roles able to log in (PL/Proxy connects as the caller's role;
# in production pg_hba lets only the proxies do so).  The proxy: the roles of
# a PostgREST deployment, a database "orders" with plproxy, the server
# orders_nodes (partition k = node k) and sql/proxy/orders_proxy.sql.
scale_out_clusters() {
    local base=$1 port=$2 nodes=$3 k parts=""
    ensure_packages postgresql-15-plproxy
    for k in $(seq 0 $((nodes - 1))); do
        start_cluster "$base/node$k" $((port + 1 + k)) "max_connections = 100"
        psql -X -q -v ON_ERROR_STOP=1 -h "$base/node$k" -p $((port + 1 + k)) -U postgres -d postgres <<SQL
CREATE ROLE anon LOGIN;
CREATE ROLE authenticated LOGIN;
CREATE DATABASE orders;
ALTER DATABASE orders SET orders.partition = $k;
SQL
        psql -X -q -v ON_ERROR_STOP=1 -h "$base/node$k" -p $((port + 1 + k)) -U postgres -d orders <<SQL
CREATE EXTENSION orders;
SELECT orders.grant_api() \g /dev/null
ALTER SEQUENCE orders.order_number_seq INCREMENT BY $nodes RESTART WITH $((k + 1));
SQL
        parts="$parts${parts:+, }p$k 'host=$base/node$k port=$((port + 1 + k)) dbname=orders'"
    done
    start_cluster "$base/proxy" "$port" "max_connections = 100"
    psql -X -q -v ON_ERROR_STOP=1 -h "$base/proxy" -p "$port" -U postgres -d postgres <<SQL
CREATE ROLE anon NOLOGIN;
CREATE ROLE authenticated NOLOGIN;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated TO authenticator;
CREATE DATABASE orders;
SQL
    proxy_api "$base/proxy" "$port" orders "$parts"
    unset PGHOST PGPORT
}

# proxy_api HOST PORT DB PARTITIONS — in the proxy's database DB: plproxy,
# the server orders_nodes with PARTITIONS ("p0 'host=… dbname=orders', …"),
# a user mapping for everybody, and sql/proxy/orders_proxy.sql.
proxy_api() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$1" -p "$2" -U postgres -d "$3" >/dev/null <<SQL
CREATE EXTENSION plproxy;
CREATE SERVER orders_nodes FOREIGN DATA WRAPPER plproxy OPTIONS ($4);
CREATE USER MAPPING FOR PUBLIC SERVER orders_nodes;
\i $REPO_DIR/sql/proxy/orders_proxy.sql
SQL
}

# bench_prepare — what every benchmark starts with: the packages, the
# extension built and installed (not with ORDERS_BENCH_NO_INSTALL=1:
# test/bench/all.sh did it once), its own throwaway cluster.
bench_prepare() {
    if [ "${ORDERS_BENCH_NO_INSTALL:-0}" != 1 ]; then
        ensure_packages
        build_install
    fi
    start_bench_cluster
}

# bench_db SETUP_FILE [psql options...] — a fresh database orders_bench with
# the extension and a benchmark's fixtures.
bench_db() {
    local setup=$1; shift
    psql -q -X -d postgres -c "DROP DATABASE IF EXISTS orders_bench" -c "CREATE DATABASE orders_bench"
    psql -q -X -d orders_bench "$@" -c "CREATE EXTENSION orders" -f "$REPO_DIR/test/bench/$setup"
}

# bench_result NAME RATIO TARGET — one ratio of a benchmark's summary for
# test/bench/all.sh's table (a line appended to $ORDERS_BENCH_RESULTS when
# set; TARGET is the issue's, e.g. ">= 0.80", or "-" when it only reports).
bench_result() {
    [ -z "${ORDERS_BENCH_RESULTS:-}" ] || printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$ORDERS_BENCH_RESULTS"
}

# ratio A B — A / B with two decimals (benchmark summaries).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# cluster_cpu DIR — CPU seconds the cluster of DIR used so far: its
# postmaster's own and that of the backends it reaped (a backend's time
# lands there when it exits; pgbench's connections end with each run).  A
# lower bound: the WAL writer and checkpointer never exit, so their share is
# not in it (an autovacuum worker that exits during a run is).  CPU per
# transaction is steadier than tps on a shared machine: time other work
# takes from the cores is not in it.
cluster_cpu() {
    awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / t}' "/proc/$(head -1 "$1/data/postmaster.pid")/stat"
}
