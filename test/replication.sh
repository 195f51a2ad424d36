#!/usr/bin/env bash
# Logical replication (TAP): a publisher and a subscriber cluster of their
# own (wal_level = logical), the extension installed on both, the business
# tables published (the lifecycle tables without their built-in rows), an
# initial copy and then a workload on the publisher — a 4-client pgbench
# stock-and-money run (test/soak/stock.*) while orders go through their
# lifecycles, a campaign fills until it completes itself, slots are held,
# booked, released, lapse and are cancelled, orders are returned, deleted and
# a user lifecycle grows.  Once the subscriber has caught up, every published
# table is identical on both sides; counters, statistics, slot counts, stock,
# ledger and history equal the publisher's and a recount on the subscriber.
# Also: which triggers fire under the apply worker (the extension's, ENABLE
# ORIGIN, do not; statement triggers never do, even ENABLE ALWAYS), that a
# subscriber session's cached lifecycle graph needs a row-level copy of
# lifecycle_changed ENABLE REPLICA (stale without it), that an ENABLE ALWAYS
# row trigger (status_audit) writes history twice, and that the promotion
# steps (sequences) let the subscriber take writes.
# See doc/operations.md.  Needs nothing running: it starts and stops its own
# clusters (ports ORDERS_REPL_PORT, default 54334, and the next one).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tap.sh"

BASE=${ORDERS_REPL_DIR:-/tmp/orders-repl}
PUB_PORT=${ORDERS_REPL_PORT:-54334} SUB_PORT=$(( ${ORDERS_REPL_PORT:-54334} + 1 ))
PUB_DIR=$BASE/pub SUB_DIR=$BASE/sub
SECS=${ORDERS_REPL_SECONDS:-8}
DB=orders_repl
PGBENCH_LOG=$BASE-pgbench.log

cleanup() { stop_cluster "$PUB_DIR"; stop_cluster "$SUB_DIR"; rm -rf "$BASE"; }
trap cleanup EXIT
cleanup
start_cluster "$PUB_DIR" "$PUB_PORT" "wal_level = logical" "max_wal_senders = 10" "max_replication_slots = 10"
start_cluster "$SUB_DIR" "$SUB_PORT" "wal_level = logical" "max_logical_replication_workers = 6" \
    "max_sync_workers_per_subscription = 4" "wal_retrieve_retry_interval = '1s'"
unset PGHOST PGPORT
export PGOPTIONS="-c client_min_messages=warning"

PUB="psql -X -q -t -A -v ON_ERROR_STOP=1 -h $PUB_DIR -p $PUB_PORT -U postgres -d $DB"
SUB="psql -X -q -t -A -v ON_ERROR_STOP=1 -h $SUB_DIR -p $SUB_PORT -U postgres -d $DB"
pub() { $PUB "$@"; }
sub() { $SUB "$@"; }

# caught_up — wait (at most 120 s) until every table of the subscription is
# synchronized and the subscriber has applied all the publisher has written.
caught_up() {
    local lsn deadline=$((SECONDS + 120))
    lsn=$(pub -c "SELECT pg_current_wal_lsn()")
    while [ $SECONDS -lt $deadline ]; do
        if [ "$(sub -c "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")" = 0 ] &&
           [ "$(pub -c "SELECT coalesce(bool_and(replay_lsn >= '$lsn'), false) FROM pg_stat_replication
                         WHERE application_name = 'orders_sub'")" = t ]; then
            return 0
        fi
        sleep 0.3
    done
    echo "# the subscriber did not catch up with $lsn in 120 s"; return 1
}

# ---------------------------------------------------------------- set up --
# Both sides: the same extension version.  The lifecycle tables are published
# with a row filter on "builtin" (the built-in rows exist on both sides);
# UPDATE and DELETE of a filtered table need the filter's columns in the
# replica identity, hence REPLICA IDENTITY FULL (small tables, rarely
# changed).  The apply worker fires row triggers only (and only ENABLE
# REPLICA or ALWAYS ones), never statement triggers such as
# lifecycle_changed: the extension's row-level copy of it,
# lifecycle_changed_applied (ENABLE REPLICA), invalidates every session's
# cached graph on the subscriber when a change is applied.
for side in pub sub; do
    psql -X -q -v ON_ERROR_STOP=1 -h "$([ $side = pub ] && echo "$PUB_DIR" || echo "$SUB_DIR")" \
         -p "$([ $side = pub ] && echo "$PUB_PORT" || echo "$SUB_PORT")" -U postgres -d postgres -c "CREATE DATABASE $DB"
    $side -c "CREATE EXTENSION orders" \
          -c "ALTER TABLE orders.lifecycles REPLICA IDENTITY FULL" \
          -c "ALTER TABLE orders.lifecycle_states REPLICA IDENTITY FULL" \
          -c "ALTER TABLE orders.lifecycle_transitions REPLICA IDENTITY FULL"
done

# Data before the subscription (the initial copy): the stock soak's fixtures
# (600 cod orders with items, 6 products, variants), a user lifecycle, a
# product of our own.
pub -f "$REPO_DIR/test/soak/stock_setup.sql" >/dev/null
pub >/dev/null <<'SQL'
INSERT INTO orders.lifecycles (name, initial_status) VALUES ('rental', 'reserved');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES
  ('rental', 'reserved', 'open', 1), ('rental', 'out', 'open', 2), ('rental', 'back', 'fulfilled', 3);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, stamp_column) VALUES
  ('rental', 'reserved', 'out', 'shipped_at'), ('rental', 'out', 'back', 'completed_at');
INSERT INTO orders.customers (id, full_name) VALUES ('a0000000-0000-0000-0000-0000000000c1', 'Replicated');
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('a0000000-0000-0000-0000-0000000000e1', 'R-1', 'a0000000-0000-0000-0000-0000000000c1', 'rental');
INSERT INTO orders.products (id, name, sku, price, stock_quantity) VALUES
  ('a0000000-0000-0000-0000-0000000000b1', 'Lamp', 'R-LAMP', 20, 50);
INSERT INTO soak.initial VALUES ('a0000000-0000-0000-0000-0000000000b1', 50);
SQL

TABLES="lifecycles lifecycle_states lifecycle_transitions customers staff orders order_items order_history leads
        service_capacity slot_reservations deliveries products product_variants financial_transactions expenses"
pub -c "CREATE PUBLICATION orders_pub FOR TABLE
          orders.lifecycles WHERE (NOT builtin),
          orders.lifecycle_states WHERE (NOT builtin),
          orders.lifecycle_transitions WHERE (NOT builtin),
          orders.customers, orders.staff, orders.orders, orders.order_items, orders.order_history,
          orders.leads, orders.service_capacity, orders.slot_reservations, orders.deliveries,
          orders.products, orders.product_variants, orders.financial_transactions, orders.expenses"
sub -c "CREATE SUBSCRIPTION orders_sub CONNECTION 'host=$PUB_DIR port=$PUB_PORT user=postgres dbname=$DB'
        PUBLICATION orders_pub"
check "the publication holds every business table" 16 \
    "$(pub -c "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'orders_pub'")"
check "the publisher can still change lifecycle rows, built-in or not (the replica identity covers the row filter)" 2 \
    "$(pub -c "UPDATE orders.lifecycle_states SET description = 'at the customer''s' WHERE lifecycle = 'rental' AND status = 'out'" \
           -c "UPDATE orders.lifecycle_states SET description = 'being packed' WHERE lifecycle = 'cod' AND status = 'being_prepared'" \
           -c "SELECT count(*) FROM orders.lifecycle_states WHERE description IN ('at the customer''s', 'being packed')")"
# the built-in row's change is not replicated (the filter excludes it): keep
# the two sides equal by making it on the subscriber too, as for DDL
sub -c "UPDATE orders.lifecycle_states SET description = 'being packed' WHERE lifecycle = 'cod' AND status = 'being_prepared'"

# -------------------------------------------------------------- workload --
pgbench -n -c 4 -j 2 -T "$SECS" --max-tries=20 -f "$REPO_DIR/test/soak/stock.pgbench" \
    -h "$PUB_DIR" -p "$PUB_PORT" -U postgres $DB > "$PGBENCH_LOG" 2>&1 &
bench=$!
pub >/dev/null <<'SQL'
-- the user lifecycle grows; an order walks it
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES ('rental', 'lost', 'cancelled', 4);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status) VALUES ('rental', 'out', 'lost');
SELECT orders.transition('a0000000-0000-0000-0000-0000000000e1', 'out', 'handed over', 'rent-1');
-- campaigns: one filled until it completes itself, one half way with moves
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle, leads_purchased) VALUES
  ('a0000000-0000-0000-0000-0000000000e2', 'R-C1', 'a0000000-0000-0000-0000-0000000000c1', 'campaign', 5),
  ('a0000000-0000-0000-0000-0000000000e3', 'R-C2', 'a0000000-0000-0000-0000-0000000000c1', 'campaign', 10);
SELECT orders.transition('a0000000-0000-0000-0000-0000000000e2', 'active');
SELECT orders.transition('a0000000-0000-0000-0000-0000000000e3', 'active');
INSERT INTO orders.leads (id, customer_id, order_id, status, company_name)
SELECT ('a0000000-0000-0000-0000-0000000001' || lpad(g::text, 2, '0'))::uuid, 'a0000000-0000-0000-0000-0000000000c1',
       CASE WHEN g <= 3 THEN 'a0000000-0000-0000-0000-0000000000e2'::uuid ELSE 'a0000000-0000-0000-0000-0000000000e3' END,
       CASE WHEN g <= 3 THEN 'approved' ELSE 'new' END, 'Lead ' || g
  FROM generate_series(1, 8) g;
UPDATE orders.leads SET status = 'approved' WHERE order_id = 'a0000000-0000-0000-0000-0000000000e3';
UPDATE orders.leads SET status = 'rejected' WHERE id = 'a0000000-0000-0000-0000-000000000104';
SELECT orders.assign_lead('a0000000-0000-0000-0000-000000000105', NULL);
DELETE FROM orders.leads WHERE id = 'a0000000-0000-0000-0000-000000000106';
INSERT INTO orders.leads (customer_id, order_id, status) VALUES
  ('a0000000-0000-0000-0000-0000000000c1', 'a0000000-0000-0000-0000-0000000000e2', 'lead');
INSERT INTO orders.leads (customer_id, order_id, status) VALUES
  ('a0000000-0000-0000-0000-0000000000c1', 'a0000000-0000-0000-0000-0000000000e2', 'approved');
-- slots: a booking, a released hold, a lapsed hold cleaned up, a live hold,
-- a booking released by cancelling its order
INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at, max_capacity) VALUES
  ('a0000000-0000-0000-0000-0000000000f1', 'a0000000-0000-0000-0000-0000000000f0',
   date_trunc('hour', now()) + interval '1 day', date_trunc('hour', now()) + interval '1 day 1 hour', 4);
INSERT INTO orders.orders (id, order_number, customer_id, lifecycle) VALUES
  ('a0000000-0000-0000-0000-0000000000e4', 'R-B1', 'a0000000-0000-0000-0000-0000000000c1', 'booking'),
  ('a0000000-0000-0000-0000-0000000000e5', 'R-B2', 'a0000000-0000-0000-0000-0000000000c1', 'booking');
INSERT INTO orders.order_items (id, order_id, item_type, name, unit_price) VALUES
  ('a0000000-0000-0000-0000-0000000002a4', 'a0000000-0000-0000-0000-0000000000e4', 'service', 'Visit', 30),
  ('a0000000-0000-0000-0000-0000000002a5', 'a0000000-0000-0000-0000-0000000000e5', 'service', 'Visit', 30);
SELECT orders.confirm_booking(orders.reserve_time_slot('a0000000-0000-0000-0000-0000000000f1'), 'a0000000-0000-0000-0000-0000000002a4');
SELECT orders.transition('a0000000-0000-0000-0000-0000000000e4', 'confirmed');
SELECT orders.release_reservation(orders.reserve_time_slot('a0000000-0000-0000-0000-0000000000f1'));
SELECT orders.reserve_time_slot('a0000000-0000-0000-0000-0000000000f1') AS lapsing \gset
UPDATE orders.slot_reservations SET expires_at = now() - interval '1 second' WHERE id = :'lapsing';
SELECT orders.cleanup_expired_reservations();
SELECT orders.reserve_time_slot('a0000000-0000-0000-0000-0000000000f1');
SELECT orders.confirm_booking(orders.reserve_time_slot('a0000000-0000-0000-0000-0000000000f1'), 'a0000000-0000-0000-0000-0000000002a5');
SELECT orders.transition('a0000000-0000-0000-0000-0000000000e5', 'cancelled', 'customer cancelled');
-- cod: staff, one order delivered and collected, one returned after
-- delivery (refund), one cancelled after confirmation (stock back), one deleted
INSERT INTO orders.staff (id, full_name, role) VALUES
  ('a0000000-0000-0000-0000-0000000000a1', 'Agent', 'delivery_agent'),
  ('a0000000-0000-0000-0000-0000000000a2', 'Rep', 'customer_rep');
-- (their totals come from their items: 40, 60, 20, 20)
INSERT INTO orders.orders (id, order_number, customer_id, payment_method, assigned_rep_id) VALUES
  ('a0000000-0000-0000-0000-0000000000e6', 'R-K1', 'a0000000-0000-0000-0000-0000000000c1', 'cod', 'a0000000-0000-0000-0000-0000000000a2'),
  ('a0000000-0000-0000-0000-0000000000e7', 'R-K2', 'a0000000-0000-0000-0000-0000000000c1', 'cod', 'a0000000-0000-0000-0000-0000000000a2'),
  ('a0000000-0000-0000-0000-0000000000e8', 'R-K3', 'a0000000-0000-0000-0000-0000000000c1', 'cod', NULL),
  ('a0000000-0000-0000-0000-0000000000e9', 'R-K4', 'a0000000-0000-0000-0000-0000000000c1', 'cod', NULL);
INSERT INTO orders.order_items (order_id, name, quantity, unit_price, product_id)
SELECT o, 'Lamp', q, 20, 'a0000000-0000-0000-0000-0000000000b1'
  FROM (VALUES ('a0000000-0000-0000-0000-0000000000e6'::uuid, 2), ('a0000000-0000-0000-0000-0000000000e7', 3),
               ('a0000000-0000-0000-0000-0000000000e8', 1), ('a0000000-0000-0000-0000-0000000000e9', 1)) v(o, q);
SELECT orders.transition(o, s, NULL, o::text || s)
  FROM unnest(ARRAY['a0000000-0000-0000-0000-0000000000e6', 'a0000000-0000-0000-0000-0000000000e7']::uuid[]) o,
       unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup']) s;
UPDATE orders.orders SET assigned_agent_id = 'a0000000-0000-0000-0000-0000000000a1'
 WHERE id IN ('a0000000-0000-0000-0000-0000000000e6', 'a0000000-0000-0000-0000-0000000000e7');
SELECT orders.transition(o, s)
  FROM unnest(ARRAY['a0000000-0000-0000-0000-0000000000e6', 'a0000000-0000-0000-0000-0000000000e7']::uuid[]) o,
       unnest(ARRAY['out_for_delivery', 'delivered']) s;
UPDATE orders.orders SET payment_status = 'collected'
 WHERE id IN ('a0000000-0000-0000-0000-0000000000e6', 'a0000000-0000-0000-0000-0000000000e7');
INSERT INTO orders.deliveries (order_id, agent_id, pickup_time, delivery_time, rating) VALUES
  ('a0000000-0000-0000-0000-0000000000e6', 'a0000000-0000-0000-0000-0000000000a1', now() - interval '1 hour', now(), 5);
SELECT orders.transition('a0000000-0000-0000-0000-0000000000e7', 'returned', 'broken on arrival');
UPDATE orders.orders SET payment_status = 'refunded' WHERE id = 'a0000000-0000-0000-0000-0000000000e7';
SELECT orders.transition('a0000000-0000-0000-0000-0000000000e8', 'confirmed');
SELECT orders.transition('a0000000-0000-0000-0000-0000000000e8', 'cancelled');
DELETE FROM orders.orders WHERE id = 'a0000000-0000-0000-0000-0000000000e9';
INSERT INTO orders.expenses (category, amount, description) VALUES ('fuel', 12.5, 'delivery run');
SQL
wait $bench || true
grep -E "actually processed|number of failed" "$PGBENCH_LOG" | sed 's/^/# pgbench: /'
processed=$(awk '/actually processed/ {print $NF}' "$PGBENCH_LOG" | cut -d/ -f1)
check "the publisher's pgbench workload ran (transactions > 100, no client aborted)" "1 0" \
    "$([ "${processed:-0}" -gt 100 ] && echo 1 || echo 0) $(grep -c 'aborted in command' "$PGBENCH_LOG" || true)"
check "the campaign filled up and completed itself on the publisher" "5 completed" \
    "$(pub -c "SELECT leads_delivered || ' ' || status FROM orders.orders WHERE order_number = 'R-C1'")"

# ------------------------------------------------------------- compare --
check "the subscriber caught up (all tables synchronized, publisher's WAL applied)" 0 "$(caught_up >/dev/null && echo 0 || echo 1)"

for t in $TABLES; do
    sql="SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM orders.$t x"
    check "orders.$t identical on the subscriber" "$(pub -c "$sql")" "$(sub -c "$sql")"
done

# the figures the triggers maintain, named one by one
figure() {   # figure DESCRIPTION SQL — equal on both sides
    check "$1: subscriber = publisher" "$(pub -c "$2")" "$(sub -c "$2")"
}
figure "leads_delivered and status of every campaign" \
    "SELECT string_agg(order_number || '=' || leads_delivered || '/' || status, ',' ORDER BY order_number) FROM orders.orders WHERE lifecycle = 'campaign'"
figure "customer statistics" \
    "SELECT string_agg(concat_ws('/', total_orders, total_spent, returned_orders, return_rate), ',' ORDER BY id) FROM orders.customers"
figure "slot counts" \
    "SELECT string_agg(booked_count || '/' || held_count, ',' ORDER BY id) FROM orders.service_capacity"
figure "stock of products and variants" \
    "SELECT string_agg(sku || '=' || stock_quantity, ',' ORDER BY sku) FROM (SELECT sku, stock_quantity FROM orders.products
     UNION ALL SELECT sku, stock_quantity FROM orders.product_variants) s"
figure "ledger (rows, net)" \
    "SELECT count(*) || ' ' || coalesce(sum(CASE type WHEN 'revenue' THEN amount ELSE -amount END), 0) FROM orders.financial_transactions"
figure "history (rows, last id)" "SELECT count(*) || ' ' || max(id) FROM orders.order_history"

# and what a recount finds on the subscriber
check "subscriber: recount_leads() finds nothing wrong" 0 "$(sub -c "SELECT count(*) FROM orders.recount_leads()")"
check "subscriber: recount_customer_stats() finds nothing wrong" 0 "$(sub -c "SELECT count(*) FROM orders.recount_customer_stats()")"
check "subscriber: recount_slots() finds nothing wrong" 0 "$(sub -c "SELECT count(*) FROM orders.recount_slots()")"
check "subscriber: the ledger agrees with every order" 0 "$(sub -c "SELECT count(*) FROM orders.ledger_discrepancies")"
held="SELECT coalesce(i.variant_id, i.product_id) AS id, sum(i.quantity) AS units
        FROM orders.order_items i JOIN orders.orders o ON o.id = i.order_id
        JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
       WHERE s.holds_stock AND i.product_id IS NOT NULL GROUP BY 1"
check "subscriber: stock + units held by its orders = the publisher's starting stock + restocks" \
    "$(pub -c "SELECT string_agg(id || '=' || (stock_quantity + coalesce(r.units, 0)), ',' ORDER BY id)
                 FROM soak.initial LEFT JOIN (SELECT id, sum(units) AS units FROM soak.restocks GROUP BY id) r USING (id)")" \
    "$(sub -c "WITH held AS ($held)
               SELECT string_agg(id || '=' || (stock_quantity + coalesce(h.units, 0)), ',' ORDER BY id)
                 FROM (SELECT id, stock_quantity FROM orders.products UNION ALL SELECT id, stock_quantity FROM orders.product_variants) k
                 LEFT JOIN held h USING (id)")"
check "subscriber: one history row per status change of the rental order, none twice" "reserved>out" \
    "$(sub -c "SELECT string_agg(old_status || '>' || new_status, ',' ORDER BY id) FROM orders.order_history WHERE order_id = 'a0000000-0000-0000-0000-0000000000e1'")"
check "subscriber: one revenue and one refund for the returned order" "revenue 60.00,refund 60.00" \
    "$(sub -c "SELECT string_agg(type || ' ' || amount, ',' ORDER BY created_at, type DESC) FROM orders.financial_transactions
               WHERE order_id = 'a0000000-0000-0000-0000-0000000000e7'")"

# ------------------------------------------------ triggers on the subscriber --
check "subscriber: every extension trigger is ENABLE ORIGIN (silent under the apply worker) but the cache triggers' row copies, ENABLE REPLICA" \
    "api_roles_changed_applied:R,lifecycle_changed_applied:R,lifecycle_changed_applied:R,lifecycle_changed_applied:R,lifecycle_changed_applied:R,workflows_changed_applied:R" \
    "$(sub -c "SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger
               WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'orders.%' AND tgenabled <> 'O'")"

# A session on the subscriber that has read the lifecycle graph sees a state
# the publisher adds when a row trigger invalidates its cache.
# sub_session STATE CATEGORY — in one session: the category of rental/STATE,
# then (publisher adds it, subscriber applies it) the category again.
sub_session() {
    sub <<SQL
SELECT coalesce(orders.status_category('rental', '$1'), 'unknown');
\! $PUB -c "INSERT INTO orders.lifecycle_states (lifecycle, status, category, position) VALUES ('rental', '$1', '$2', 9)"
\! t=0; until [ "\$($SUB -c "SELECT count(*) FROM orders.lifecycle_states WHERE status = '$1'")" = 1 ] || [ \$t -gt 300 ]; do sleep 0.2; t=\$((t + 1)); done
SELECT coalesce(orders.status_category('rental', '$1'), 'unknown');
SQL
}
check "a subscriber session sees a replicated lifecycle state at once (row trigger lifecycle_changed_applied, ENABLE REPLICA)" \
    "unknown fulfilled" "$(sub_session found fulfilled | tr '\n' ' ' | sed 's/ $//')"
sub -c "ALTER TABLE orders.lifecycle_states DISABLE TRIGGER lifecycle_changed_applied" \
    -c "ALTER TABLE orders.lifecycle_states ENABLE ALWAYS TRIGGER lifecycle_changed"
check "without it the session keeps a stale graph, even with the statement trigger lifecycle_changed ENABLE ALWAYS" \
    "unknown unknown" "$(sub_session mislaid cancelled | tr '\n' ' ' | sed 's/ $//')"
check "(a new session sees the state: only cached graphs are stale)" cancelled \
    "$(sub -c "SELECT orders.status_category('rental', 'mislaid')")"
sub -c "ALTER TABLE orders.lifecycle_states ENABLE TRIGGER lifecycle_changed" \
    -c "ALTER TABLE orders.lifecycle_states ENABLE REPLICA TRIGGER lifecycle_changed_applied"

# The counters are statement triggers: the apply worker never fires them,
# even ENABLE ALWAYS.  (The initial table copy does fire ALWAYS statement
# triggers for INSERT, which would count the copied rows again: leave them
# ENABLE ORIGIN.)  A row trigger made ALWAYS does fire, and writes twice
# what the publisher wrote once: status_audit adds a second history row.
sub -c "ALTER TABLE orders.orders ENABLE ALWAYS TRIGGER post_revenue_update" \
    -c "ALTER TABLE orders.orders ENABLE ALWAYS TRIGGER status_audit" \
    -c "SELECT setval('orders.order_history_id_seq', 1000000)" >/dev/null
pub >/dev/null <<'SQL'
INSERT INTO orders.orders (id, order_number, customer_id, total_amount, payment_method) VALUES
  ('a0000000-0000-0000-0000-0000000000ea', 'R-K9', 'a0000000-0000-0000-0000-0000000000c1', 25, 'cod');
SELECT orders.transition('a0000000-0000-0000-0000-0000000000ea', s)
  FROM unnest(ARRAY['confirmed', 'being_prepared', 'ready_for_pickup', 'out_for_delivery', 'delivered']) s;
UPDATE orders.orders SET payment_status = 'collected' WHERE id = 'a0000000-0000-0000-0000-0000000000ea';
SQL
caught_up >/dev/null || true
revenue="SELECT count(*) || ' ' || sum(amount) FROM orders.financial_transactions WHERE order_id = 'a0000000-0000-0000-0000-0000000000ea'"
check "post_revenue_update ENABLE ALWAYS on the subscriber: still one revenue row (no statement trigger fires under apply)" \
    "1 25.00 | 1 25.00" "$(pub -c "$revenue") | $(sub -c "$revenue")"
history="SELECT count(*) FROM orders.order_history WHERE order_id = 'a0000000-0000-0000-0000-0000000000ea'"
check "status_audit (a row trigger) ENABLE ALWAYS on the subscriber: every status change written twice" \
    "5 | 10" "$(pub -c "$history") | $(sub -c "$history")"
sub -c "ALTER TABLE orders.orders ENABLE TRIGGER post_revenue_update" \
    -c "ALTER TABLE orders.orders ENABLE TRIGGER status_audit" \
    -c "DELETE FROM orders.order_history WHERE id > 1000000" >/dev/null
sql="SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM orders.order_history x"
check "back to ENABLE ORIGIN and the subscriber's own rows removed, the histories agree again" "$(pub -c "$sql")" "$(sub -c "$sql")"

# ------------------------------------------------------------ promotion --
# The subscriber becomes the primary: stop the subscription, move the
# sequences past the replicated rows (logical replication does not carry
# sequences), then it takes writes with every trigger working.
sub >/dev/null <<'SQL'
ALTER SUBSCRIPTION orders_sub DISABLE;
SELECT setval('orders.order_history_id_seq', (SELECT max(id) FROM orders.order_history));
SELECT setval('orders.order_number_seq',
              (SELECT max(substring(order_number FROM '^ORD-[0-9]{4}-([0-9]+)$')::bigint) FROM orders.orders));
SQL
check "after promotion the subscriber takes a new order through confirmation (fresh number and history id, stock taken)" \
    "confirmed 1 47" \
    "$(sub -c "INSERT INTO orders.orders (id, customer_id, total_amount) VALUES
                 ('a0000000-0000-0000-0000-0000000000eb', 'a0000000-0000-0000-0000-0000000000c1', 20)" \
           -c "INSERT INTO orders.order_items (order_id, name, quantity, product_id) VALUES
                 ('a0000000-0000-0000-0000-0000000000eb', 'Lamp', 1, 'a0000000-0000-0000-0000-0000000000b1')" \
           -c "SELECT status FROM orders.transition('a0000000-0000-0000-0000-0000000000eb', 'confirmed')" \
           -c "SELECT count(*) FROM orders.orders WHERE order_number = (SELECT order_number FROM orders.orders
                                                                        WHERE id = 'a0000000-0000-0000-0000-0000000000eb')" \
           -c "SELECT stock_quantity FROM orders.products WHERE sku = 'R-LAMP'" | tr '\n' ' ' | sed 's/ $//')"
check "and its counters still equal a recount" "0 0 0 0" \
    "$(sub -c "SELECT (SELECT count(*) FROM orders.recount_leads()) || ' ' || (SELECT count(*) FROM orders.recount_customer_stats())
               || ' ' || (SELECT count(*) FROM orders.recount_slots()) || ' ' || (SELECT count(*) FROM orders.ledger_discrepancies)")"
sub -c "DROP SUBSCRIPTION orders_sub" >/dev/null

tap_done
