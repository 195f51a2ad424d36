#!/usr/bin/env bash
# Workflow benchmark (issue 13): what workflows cost a status change.
# 8 pgbench clients change random orders' status through orders.transition()
# (test/bench/transition_api.pgbench, orders.notify off), in turn
#   (a) floor: the workflow triggers (stats_then_workflows_*) disabled on orders.orders
#   (b) the triggers, no workflow
#   (c) one active order_status workflow that no bench change meets (the
#       cached conditions are checked on every change)
#   (d) one workflow that every change into status b meets (half of the
#       changes): a run with one create_task step (a notification row)
#   (e) (0.38.0) the same workflow with an author, an admin with a login:
#       each run first asks, as the author, whether it may
#       (workflow_author_refusal); (d)'s has none (a DBA's)
# in the same run, interleaved per round; ratios against (a).
# Usage: test/bench/workflows.sh [seconds per case, default 20] [rounds, default 3]
source "$(dirname "$0")/../lib.sh"
SECS=${1:-20}
ROUNDS=${2:-3}

bench_prepare
bench_db setup_transition.sql
psql -q -X -d orders_bench <<'SQL'
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('b1000000-0000-0000-0000-000000000001', 'b1000000-0000-0000-0000-0000000000a1', 'Bench admin', 'admin');
INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps, is_active) VALUES
  ('b2000000-0000-0000-0000-000000000001', 'never', 'order_status',
   '{"conditions": {"status": ["delivered"], "payment_status": ["collected"]}}',
   '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "x"}}]', false),
  ('b2000000-0000-0000-0000-000000000002', 'into b', 'order_status',
   '{"conditions": {"lifecycle": "bench", "status": ["b"]}}',
   '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "{{order_number}} is b"}}]', false);
INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps, is_active, created_by_user_id) VALUES
  ('b2000000-0000-0000-0000-000000000003', 'into b, authored', 'order_status',
   '{"conditions": {"lifecycle": "bench", "status": ["b"]}}',
   '[{"type": "create_task", "config": {"assigned_to": "admin", "title": "{{order_number}} is b"}}]', false,
   'b1000000-0000-0000-0000-000000000001');
SQL
setup() {   # setup CASE — triggers and workflows for the case
    local on=ENABLE never=false intob=false authored=false
    case $1 in
        floor) on=DISABLE ;;
        nonmatching) never=true ;;
        matching) intob=true ;;
        authored) authored=true ;;
    esac
    psql -q -X -d orders_bench \
        -c "ALTER TABLE orders.orders $on TRIGGER stats_then_workflows_insert, $on TRIGGER stats_then_workflows_update" \
        -c "UPDATE orders.workflows SET is_active = (name = 'never' AND $never) OR (name = 'into b' AND $intob)
                                                 OR (name = 'into b, authored' AND $authored)"
}
run() {
    PGOPTIONS="-c orders.notify=off" pgbench -n -M prepared -c 8 -j 2 -T "$SECS" -D i=0 \
        -f "$REPO_DIR/test/bench/transition_api.pgbench" orders_bench 2>&1 | awk '/^tps/ {print int($3)}'
}
reset() {   # equal start for every case: all orders in 'a', empty history, logs and notifications, vacuumed
    psql -q -X -d orders_bench -c "SET session_replication_role = replica" \
        -c "UPDATE orders.orders SET status = 'a' WHERE lifecycle = 'bench' AND status <> 'a'" \
        -c "TRUNCATE orders.order_history, orders.activity_logs, orders.workflow_executions, orders.notifications" \
        -c "VACUUM ANALYZE orders.orders, orders.order_history, orders.activity_logs, orders.workflow_executions, orders.notifications" \
        -c "CHECKPOINT"
}
cases="floor none nonmatching matching authored"
declare -A sum
for c in $cases; do sum[$c]=0; done
for r in $(seq 1 "$ROUNDS"); do
    for c in $cases; do
        setup "$c"; reset
        tps=$(run)
        runs=$(psql -X -t -A -d orders_bench -c "SELECT count(*) FROM orders.workflow_executions")
        echo "round $r  $c: $tps tps ($runs runs)"
        sum[$c]=$((sum[$c] + tps))
    done
done
setup none
echo
echo "== status changes through orders.transition(), notify off, 8 clients, ${ROUNDS}x${SECS}s per case (mean tps, ratio to the floor)"
for c in $cases; do
    echo "$c: $((sum[$c] / ROUNDS)) tps, $(ratio ${sum[$c]} ${sum[floor]})x"
    [ "$c" = floor ] || bench_result "workflows: status change, $c / no trigger" "$(ratio ${sum[$c]} ${sum[floor]})" "-"
done
