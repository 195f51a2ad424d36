#!/usr/bin/env bash
# test/multixact/server_window.sh — the server this suite runs on does not
# have PostgreSQL's multixact bug of doc/multixact.md (TAP output).
# test/multixact/abort_window.sh holds an aborting updater of a key-share
# locked row (a subtransaction, then a top-level transaction; the key-share
# lock taken before the update, then after it) with gdb in the
# window where the commit log says aborted and the procarray still says
# running, and updates the row from a third session meanwhile.  An affected
# server (PostgreSQL 15.0 to 15.19) fails that UPDATE with XX000 "new multixact has more
# than one updating member"; a fixed one makes it wait and apply.
# Needs gdb, root (ptrace of the backend) and PGHOST/PGPORT/PGUSER of a
# running cluster.
set -eu
source "$(dirname "$0")/../tap.sh"
db=orders_multixact_window
for run in "sub keyshare-first" "top keyshare-first" "sub update-first" "top update-first"; do
    mode="$run"
    out=$(RECIPE_DB=$db bash "$(dirname "$0")/abort_window.sh" $run 2>&1)
    held=$(grep -c 'held: ' <<<"$out" || true)
    check "$mode: gdb held the aborting updater in its window (between the commit log and the procarray)" 1 "$held"
    check "$mode: an UPDATE of the row meanwhile does not fail (server $(q postgres -c 'SHOW server_version'))" "" \
        "$(grep '^A: ' <<<"$out" | sed 's/^A: //' | tr '\n' ' ')"
    check "$mode: it waited for the aborting updater and applied its own change only" 10 \
        "$(q $db -c "SELECT v FROM p WHERE id = 1")"
done
q postgres -c "DROP DATABASE $db"
tap_done
