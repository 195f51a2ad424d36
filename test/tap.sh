# test/tap.sh — TAP output for the shell tests (dump/restore, operations,
# replication, soaks).  Source it; call check or todo per assertion and end
# with tap_done, whose status is the test's.
n=0 failed=0

# check DESCRIPTION EXPECTED ACTUAL — one assertion: equal strings pass.
check() {
    n=$((n + 1))
    if [ "$2" = "$3" ]; then echo "ok $n - $1"
    else echo "not ok $n - $1"; echo "#   expected: $2"; echo "#   actual:   $3"; failed=$((failed + 1)); fi
}

# todo DESCRIPTION REASON EXPECTED ACTUAL — a known defect, reported as a
# TAP TODO (shown, not counted) until it is fixed and becomes a check.
todo() {
    n=$((n + 1))
    if [ "$3" = "$4" ]; then echo "ok $n - $1 # TODO $2"
    else echo "not ok $n - $1 # TODO $2"; echo "#   expected: $3"; echo "#   actual:   $4"; fi
}

# q DATABASE [psql arguments] — run psql quietly, unaligned, tuples only.
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$@"; }

# tap_done — the plan line; fails when any check failed.
tap_done() { echo "1..$n"; [ "$failed" -eq 0 ]; }
