#!/usr/bin/env bash
# test/multixact/abort_window.sh — deterministic recipe for PostgreSQL's
# "new multixact has more than one updating member" (doc/multixact.md), on
# plain PostgreSQL (no extension), three sessions:
#   K  inserts a child row: the FK check key-share locks p(1)
#   B  updates p(1) in a savepoint (sub) or transaction (top) and rolls it
#      back; gdb holds B after its clog abort, before its removal from the
#      procarray (XidCacheRemoveRunningXids / ProcArrayEndTransaction)
#   A  updates p(1) while B is held there.
# ORDER keyshare-first: K's lock comes first, xmax = {K keysh, B nokeyupd}.
# ORDER update-first (the stock soak's pattern): p has a BEFORE UPDATE
# trigger, B updates first, then K's insert key-share locks B's row version
# and commits, and A's trigger lock (fornokeyupd) and update meet B.
# PostgreSQL up to 15.19 lets A go on (DoesMultiXactIdConflict and
# heap_update test the updater with TransactionIdDidAbort() alone) and A fails
# with the error; 15.20 makes A wait for B (printed: A's wait, its duration,
# no error).  Needs gdb, root (ptrace of the backend) and PGHOST/PGPORT/PGUSER
# of a throwaway cluster with contrib (pgrowlocks).  test/multixact/
# server_window.sh runs it as a check of the server.
# Usage: test/multixact/abort_window.sh [sub|top] [keyshare-first|update-first]
set -u
mode=${1:-sub}
order=${2:-keyshare-first}
db=${RECIPE_DB:-multixact_race}
P="psql -X -q -v ON_ERROR_STOP=1"
$P -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
$P -d $db <<'SQL'
CREATE EXTENSION IF NOT EXISTS pgrowlocks;
CREATE TABLE p (id int PRIMARY KEY, v int NOT NULL);
CREATE TABLE c (pid int REFERENCES p);
INSERT INTO p VALUES (1, 0);
SQL
[ "$order" = update-first ] && $P -d $db <<'SQL'
ALTER TABLE p ADD COLUMN updated_at timestamptz;
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END$$;
CREATE TRIGGER p_updated_at BEFORE UPDATE ON p FOR EACH ROW EXECUTE FUNCTION set_updated_at();
SQL
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
session() {  # session NAME — a psql reading from fifo $work/NAME.in
    mkfifo "$work/$1.in"
    $P -d $db -f "$work/$1.in" > "$work/$1.out" 2>&1 &
    exec {fd}>"$work/$1.in"; eval "fd_$1=$fd"
}
send() { local fd; eval "fd=\$fd_$1"; printf '%s\n' "$2" >&$fd; }
session k; session b
# K: the foreign key check of an inserted child row takes FOR KEY SHARE on p(1)
[ "$order" = keyshare-first ] && send k "BEGIN; INSERT INTO c VALUES (1);"
# B: updates p(1) — its xmax becomes the multixact {K keysh, B nokeyupd}
if [ "$mode" = sub ]; then
    send b "BEGIN; SELECT 1; SAVEPOINT s; UPDATE p SET v = v + 1 WHERE id = 1;"
    send b "\\copy (SELECT pg_backend_pid()) TO '$work/b.pid'"
    stop_at=XidCacheRemoveRunningXids      # subtransaction abort: after clog, before procarray
else
    send b "BEGIN; UPDATE p SET v = v + 1 WHERE id = 1;"
    send b "\\copy (SELECT pg_backend_pid()) TO '$work/b.pid'"
    stop_at=ProcArrayEndTransaction        # top-level abort: after clog, before procarray
fi
for i in $(seq 50); do [ -s "$work/b.pid" ] && break; sleep 0.1; done
bpid=$(tr -dc 0-9 < "$work/b.pid")
# update-first: K key-share locks B's row version and commits (xmax = {B nokeyupd, K keysh})
[ "$order" = update-first ] && { send k "BEGIN; INSERT INTO c VALUES (1); COMMIT;"; sleep 1; }
$P -d $db -c "SELECT 'before: ' || x.* FROM pgrowlocks('p') x" 2>/dev/null || true
# hold B in the window: clog says aborted, the procarray still says running
gdb -q -batch -p "$bpid" -ex "break $stop_at" -ex continue -ex "shell touch $work/held" -ex "shell sleep 6" -ex detach > "$work/gdb.log" 2>&1 &
gdbpid=$!
sleep 2
if [ "$mode" = sub ]; then send b "ROLLBACK TO SAVEPOINT s;"; else send b "ROLLBACK;"; fi
for i in $(seq 50); do [ -e "$work/held" ] && break; sleep 0.1; done
[ -e "$work/held" ] || { echo "gdb did not stop B"; cat "$work/gdb.log"; }
# A: an UPDATE at READ COMMITTED of the same row, while B is in the window
$P -d $db -c "SELECT 'held: ' || x.* FROM pgrowlocks('p') x" 2>/dev/null || true
date +%T.%N
($P -d $db -c "UPDATE p SET v = v + 10 WHERE id = 1" 2>&1 | sed 's/^/A: /') &
apid=$!
sleep 1; $P -d $db -c "SELECT pid, wait_event_type, wait_event, backend_xid, left(query, 40) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" -c "SELECT l.pid, locktype, transactionid, mode, granted FROM pg_locks l WHERE NOT granted OR locktype IN ('transactionid', 'tuple') ORDER BY 1"
wait $apid
date +%T.%N
wait $gdbpid
[ "$order" = keyshare-first ] && send k "COMMIT;"
send b "COMMIT;"
exec {fd_k}>&- {fd_b}>&-
wait
$P -d $db -c "SELECT * FROM p"
