#!/usr/bin/env bash
# Scale-out with PL/Proxy (TAP, issue 15; doc/scale-out.md): one proxy
# cluster and N node clusters (default 2; a power of two), each node running
# the unmodified extension in a database whose orders.partition is its
# number, the proxy running sql/proxy/orders_proxy.sql.  Checks:
#   the proxy's API has the nodes' signatures; each call runs on the node of
#   the id it names, as the caller (PostgREST-shaped requests: a login
#   switching to an API role with JWT claims), with the node's refusals and
#   their SQLSTATEs; a direct login cannot make the nodes believe claims;
#   reads over every node merge exactly; signed shop deliveries placed on
#   the node of their shop order, else of their customer's phone — exactly
#   once also when eight race; a 16-client soak through the proxy
#   while one node is stopped and restarted: calls to it fail with 08001
#   (not reached) or 08006 (connection lost during the call) and nothing else, calls to the others go on, and every counter equals a
#   recount on each node.
# Usage: test/scale_out.sh [nodes, default 2] — its own clusters, ports
# ORDERS_SCALE_PORT (default 54344) and the next N.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tap.sh"

NODES=${1:-2}
case $NODES in 2|4|8) ;; *) echo "nodes must be 2, 4 or 8 (PL/Proxy: a power of two)" >&2; exit 2 ;; esac
SECS=${ORDERS_SCALE_SECONDS:-12}
BASE=${ORDERS_SCALE_DIR:-/tmp/orders-scale}
PPORT=${ORDERS_SCALE_PORT:-54344}
node_dir() { echo "$BASE/node$1"; }
node_port() { echo $((PPORT + 1 + $1)); }

cleanup() {
    stop_cluster "$BASE/proxy"
    for k in $(seq 0 $((NODES - 1))); do stop_cluster "$(node_dir $k)"; done
    rm -rf "$BASE"
}
trap cleanup EXIT
cleanup
unset PGHOST PGPORT
export PGOPTIONS="-c client_min_messages=warning"

# proxy [psql args] / node K [psql args] — superuser psql in the orders database
proxy() { q orders -h "$BASE/proxy" -p "$PPORT" -U postgres "$@"; }
node() { local k=$1; shift; q orders -h "$(node_dir $k)" -p "$(node_port $k)" -U postgres "$@"; }

# api SUB SQL [ROLE] — one PostgREST-shaped request to the proxy: the login
# authenticator switches to ROLE (default authenticated) with the JWT claims
# of SUB, then SQL; prints the result, or the error's SQLSTATE ("ERROR OR001").
api() {
    psql -X -q -t -A -h "$BASE/proxy" -p "$PPORT" -U authenticator -d orders -v VERBOSITY=sqlstate 2>&1 <<SQL |
BEGIN;
SELECT set_config('role', '${3:-authenticated}', true), set_config('request.jwt.claims', '{"sub":"$1","role":"${3:-authenticated}"}', true) \g /dev/null
$2;
COMMIT;
SQL
        sed -E 's/^(psql:[^ ]* )?ERROR:  ([0-9A-Z]{5}).*/ERROR \2/' | grep -v '^ROLLBACK$'
}

# proxy_refusal SQL — "SQLSTATE message" of the error the superuser's SQL
# (one PL/pgSQL statement) raises in the proxy, or nothing
proxy_refusal() {
    proxy -c "DO \$\$ BEGIN $1; EXCEPTION WHEN OTHERS THEN RAISE WARNING '% %', SQLSTATE, SQLERRM; END \$\$" 2>&1 |
        sed 's/^WARNING:  //'
}

ADMIN=44444444-4444-4444-4444-444444444444
AGENT=77777777-7777-7777-7777-777777777777        # a delivery agent's account
AGENT_STAFF=00000000-0000-0000-0000-0000000000e7
SERVICE=5e000000-0000-0000-0000-000000000001

# ------------------------------------------------------------ clusters --
scale_out_clusters "$BASE" "$PPORT" "$NODES"
q postgres -h "$BASE/proxy" -p "$PPORT" -U postgres -c "CREATE ROLE direct_login LOGIN"
for k in $(seq 0 $((NODES - 1))); do
    node $k <<SQL
-- reference data, the same on every node (doc/scale-out.md: replicated)
INSERT INTO orders.staff (id, account_id, full_name, role) VALUES
  ('00000000-0000-0000-0000-0000000000e8', '$ADMIN', 'Admin', 'admin'),
  ('$AGENT_STAFF', '$AGENT', 'Agent', 'delivery_agent');
-- this node's customers (account ids 1000000k-…-000000000001..20), each
-- with 5 cod orders, and a lead campaign with 500 leads
INSERT INTO orders.customers (account_id, full_name, phone)
SELECT ('1000000$k-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'Node $k customer ' || n, '+1555$k' || n
  FROM generate_series(1, 20) n;
INSERT INTO orders.orders (customer_id, lifecycle, total_amount)
SELECT c.id, 'cod', 10 * n FROM orders.customers c, generate_series(1, 5) n;
INSERT INTO orders.orders (customer_id, lifecycle, leads_purchased)
SELECT (SELECT id FROM orders.customers ORDER BY full_name LIMIT 1), 'campaign', 1000000000 FROM generate_series(1, 4);
UPDATE orders.orders SET status = 'active' WHERE lifecycle = 'campaign';
INSERT INTO orders.leads (customer_id, status, company_name)
SELECT (SELECT id FROM orders.customers ORDER BY full_name LIMIT 1), (ARRAY['new', 'approved', 'lead', 'rejected'])[1 + n % 4], 'lead ' || n
  FROM generate_series(1, 500) n;
-- the dashboard's data: even customers in area north, odd in south, every
-- third a VIP; their orders of 40 and 50 ready for pickup in the
-- customer's area, those of 50 in the south assigned to the agent
UPDATE orders.customers SET area = CASE WHEN split_part(full_name, ' ', 4)::int % 2 = 0 THEN 'north' ELSE 'south' END,
       tags = CASE WHEN split_part(full_name, ' ', 4)::int % 3 = 0 THEN '[{"id": "vip"}]'::jsonb ELSE tags END;
UPDATE orders.orders o SET delivery_area = c.area FROM orders.customers c WHERE c.id = o.customer_id AND o.lifecycle = 'cod';
UPDATE orders.orders SET status = 'confirmed' WHERE lifecycle = 'cod' AND total_amount IN (40, 50);
UPDATE orders.orders SET status = 'being_prepared' WHERE lifecycle = 'cod' AND total_amount IN (40, 50);
UPDATE orders.orders SET status = 'ready_for_pickup' WHERE lifecycle = 'cod' AND total_amount IN (40, 50);
UPDATE orders.orders SET assigned_agent_id = '$AGENT_STAFF' WHERE lifecycle = 'cod' AND total_amount = 50 AND delivery_area = 'south';
-- an agency order (review lifecycle) for a prospect without an account,
-- with one client group of two links
INSERT INTO orders.customers (full_name) VALUES ('Node $k prospect');
INSERT INTO orders.orders (customer_id, lifecycle, requires_client_review)
SELECT id, 'review', true FROM orders.customers WHERE full_name = 'Node $k prospect';
INSERT INTO orders.order_groups (order_id, client_id, link_count)
SELECT o.id, o.customer_id, 2 FROM orders.orders o WHERE o.lifecycle = 'review';
-- three slots of one service on every node (the first with room for one)
INSERT INTO orders.service_capacity (service_id, starts_at, ends_at, max_capacity)
SELECT '$SERVICE', date_trunc('hour', now()) + (2 * n + $k) * interval '1 hour',
       date_trunc('hour', now()) + (2 * n + $k) * interval '1 hour' + interval '50 minutes', CASE n WHEN 1 THEN 1 ELSE 10 END
  FROM generate_series(1, 3) n;
SQL
done

# ------------------------------------------------------------- set-up --
check "check_nodes: every partition is served by the node that says so" "$NODES" "$(proxy -c "SELECT orders_proxy.check_nodes()")"
swapped="SET p0 'host=$(node_dir 1) port=$(node_port 1) dbname=orders', SET p1 'host=$(node_dir 0) port=$(node_port 0) dbname=orders'"
check "check_nodes refuses a server whose partitions point at the wrong nodes (55000, naming the partition)" \
    "55000 partition 0 of server orders_nodes is a node serving partition 1" \
    "$(proxy -c "ALTER SERVER orders_nodes OPTIONS ($swapped)"; proxy_refusal "PERFORM orders_proxy.check_nodes()")"
proxy -c "ALTER SERVER orders_nodes OPTIONS (SET p0 'host=$(node_dir 0) port=$(node_port 0) dbname=orders', SET p1 'host=$(node_dir 1) port=$(node_port 1) dbname=orders')"
check "... and accepts it once they are put back" "$NODES" "$(proxy -c "SELECT orders_proxy.check_nodes()")"
# signatures: a printf format, %s the SQL list of the function names to show
signatures="SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' || pg_get_function_result(p.oid)
              FROM pg_proc p WHERE p.pronamespace = 'orders'::regnamespace AND p.proname IN (%s) ORDER BY 1"
api_names=$(proxy -c "SELECT string_agg(quote_literal(proname), ',') FROM pg_proc WHERE pronamespace = 'orders'::regnamespace")
proxy_sigs=$(proxy -c "$(printf "$signatures" "$api_names")")
node_sigs=$(node 0 -c "$(printf "$signatures" "$api_names")")
check "the proxy's API has the node's names, arguments and result types" "$node_sigs" "$proxy_sigs"
types="SELECT string_agg(c.relname || ':' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY c.relname, a.attnum)
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relnamespace = 'orders'::regnamespace
          AND c.relname IN ('orders', 'order_groups', 'leads', 'slot_reservations', 'workflow_executions', 'notifications', 'outbox',
                            'stock_movements', 'order_summary', 'order_details_view', 'ledger_discrepancies', 'todays_order_summary',
                            'daily_financial_summary', 'agent_performance_view', 'low_stock_view')"
check "... and its row types the node's columns" "$(node 0 -c "$types")" "$(proxy -c "$types")"

check "sync_types again: nothing to make while the proxy's types match the node's" "0" "$(proxy -c "SELECT orders_proxy.sync_types()")"
check "... and a row type that no longer matches is refused (55000, naming it)" "55000 type orders.leads of the proxy differs from partition 0's" \
    "$(proxy -c "ALTER TYPE orders.leads ADD ATTRIBUTE stale integer"; proxy_refusal "PERFORM orders_proxy.sync_types()")"
proxy -c "ALTER TYPE orders.leads DROP ATTRIBUTE stale"

# ----------------------------------------------- calls routed by id --
o0=$(node 0 -c "SELECT id FROM orders.orders WHERE lifecycle = 'cod' ORDER BY order_number LIMIT 1")
o1=$(node 1 -c "SELECT id FROM orders.orders WHERE lifecycle = 'cod' ORDER BY order_number LIMIT 1")
check "ids say where they were made" "0 1" "$(proxy -c "SELECT orders_proxy.partition_of('$o0') || ' ' || orders_proxy.partition_of('$o1')")"
check "order numbers are unique over the nodes (interleaved sequences)" "0" \
    "$( (node 0 -c "SELECT order_number FROM orders.orders"; node 1 -c "SELECT order_number FROM orders.orders") | sort | uniq -d | wc -l)"
check "an admin's request: allowed_transitions of an order of node 1, through the proxy" \
    "cancelled,confirmation_pending,confirmed" "$(api $ADMIN "SELECT string_agg(t, ',' ORDER BY t) FROM orders.allowed_transitions('$o1') t")"
check "... transition runs on node 1 and returns the order's row" "confirmed" \
    "$(api $ADMIN "SELECT status FROM orders.transition('$o1', 'confirmed', 'through the proxy')")"
check "... where the history names the caller of the request (the claims went along)" "$ADMIN confirmed" \
    "$(node 1 -c "SELECT changed_by || ' ' || new_status FROM orders.order_history WHERE order_id = '$o1' ORDER BY id DESC LIMIT 1")"
check "... and node 0 knows nothing of it" "0" "$(node 0 -c "SELECT count(*) FROM orders.orders WHERE id = '$o1'")"
check "a node's refusal reaches the caller with its SQLSTATE (OR001 invalid transition)" "ERROR OR001" \
    "$(api $ADMIN "SELECT status FROM orders.transition('$o1', 'new')")"
check "... and changed nothing" "confirmed" "$(node 1 -c "SELECT status FROM orders.orders WHERE id = '$o1'")"
cust1=$(node 1 -c "SELECT account_id FROM orders.customers c JOIN orders.orders o ON o.customer_id = c.id WHERE o.id = '$o1'")
other=$(node 1 -c "SELECT account_id FROM orders.customers c WHERE NOT EXISTS (SELECT FROM orders.orders o WHERE o.customer_id = c.id AND o.id = '$o1') LIMIT 1")
custid1=$(node 1 -c "SELECT customer_id FROM orders.orders WHERE id = '$o1'")
check "a customer reads its own order history through the proxy (node 1's row level security)" \
    "$(node 1 -c "SELECT count(*) FROM orders.orders WHERE customer_id = '$custid1'")" \
    "$(api $cust1 "SELECT count(*) FROM orders.customer_order_history('$custid1')")"
check "... another customer reads none of it" "0" "$(api $other "SELECT count(*) FROM orders.customer_order_history('$custid1')")"
check "... another customer may not touch it: OR006 from node 1's row level security" "ERROR OR006" \
    "$(api $other "SELECT status FROM orders.transition('$o1', 'cancelled')")"
check "a direct login that sets the claims itself is not believed by the proxy's API (no EXECUTE: 42501)" "ERROR 42501" \
    "$(psql -X -q -t -A -h "$BASE/proxy" -p "$PPORT" -U direct_login -d orders -v VERBOSITY=sqlstate 2>&1 <<SQL |
SELECT set_config('request.jwt.claims', '{"sub":"$ADMIN"}', false) \g /dev/null
SELECT orders.transition('$o1', 'cancelled');
SQL
       sed -E 's/^(psql:[^ ]* )?ERROR:  ([0-9A-Z]{5}).*/ERROR \2/')"
token=$(api $ADMIN "SELECT orders.create_share_token('$o1')")
check "a share token made through the proxy routes to its node" "1" "$(proxy -c "SELECT orders_proxy.token_partition('$token')")"
check "... and an anonymous holder reads the shared order through the proxy" "$(node 1 -c "SELECT order_number FROM orders.orders WHERE id = '$o1'")" \
    "$(api '' "SELECT orders.shared_order('$token') ->> 'order_number'" anon)"

# the agency's review on node 1: analysis, review, share link, conversion
ro1=$(node 1 -c "SELECT id FROM orders.orders WHERE lifecycle = 'review'")
g1=$(node 1 -c "SELECT id FROM orders.order_groups WHERE order_id = '$ro1'")
check "review order of node 1: to analyzing, then start_analysis through the proxy" "analyzing|analyzing" \
    "$(api $ADMIN "SELECT status FROM orders.transition('$ro1', 'analyzing')")|$(api $ADMIN "SELECT group_status FROM orders.start_analysis('$g1', gen_random_uuid())")"
check "... complete_analysis suggests three sites and moves the order to reviewing (on node 1)" "reviewing|3|reviewing" \
    "$(api $ADMIN "SELECT group_status || '|' || suggested_count FROM orders.complete_analysis('$g1',
         '[{\"domain\": \"a.example\"}, {\"domain\": \"b.example\"}, {\"domain\": \"c.example\"}]')")|$(node 1 -c "SELECT status FROM orders.orders WHERE id = '$ro1'")"
check "... review_sites approves one: counted, and an item on node 1" "1|1" \
    "$(api $ADMIN "SELECT approved_count FROM orders.review_sites('$g1', '[{\"domain\": \"a.example\", \"status\": \"approved\"}]')")|$(node 1 -c "SELECT count(*) FROM orders.order_items WHERE order_id = '$ro1'")"
rtoken=$(api $ADMIN "SELECT orders.create_share_token('$ro1', '7 days', '{view,approve,convert}')")
check "... a share link made through the proxy routes to node 1" "1" "$(proxy -c "SELECT orders_proxy.token_partition('$rtoken')")"
check "... its holder approves the second site without logging in (share_review_sites)" "2" \
    "$(api '' "SELECT orders.share_review_sites('$rtoken', '$g1', '[{\"domain\": \"b.example\", \"status\": \"approved\"}]') ->> 'approved'" anon)"
prospect=55555555-5555-5555-5555-555555555555
check "... a prospect who logged in converts it: the order's customer becomes its account (on node 1)" \
    "$(node 1 -c "SELECT customer_id FROM orders.orders WHERE id = '$ro1'")|$prospect" \
    "$(api $prospect "SELECT orders.convert_share_token('$rtoken')")|$(node 1 -c "SELECT c.account_id FROM orders.customers c JOIN orders.orders o ON o.customer_id = c.id WHERE o.id = '$ro1'")"
check "... a retry by the prospect answers as its conversion did; another account's is refused by node 1 (OR080: single use)" \
    "$(node 1 -c "SELECT customer_id FROM orders.orders WHERE id = '$ro1'")|ERROR OR080" \
    "$(api $prospect "SELECT orders.convert_share_token('$rtoken')")|$(api 66666666-6666-6666-6666-666666666666 "SELECT orders.convert_share_token('$rtoken')")"
rtoken_id=$(node 1 -c "SELECT id FROM orders.order_share_tokens WHERE order_id = '$ro1'")
check "... revoke_share_token by the link's id, through the proxy: the link no longer opens (OR080)" "|ERROR OR080" \
    "$(api $ADMIN "SELECT orders.revoke_share_token('$rtoken_id')")|$(api '' "SELECT orders.shared_order('$rtoken')" anon)"
check "... and node 1's group counters equal a recount" "0" "$(node 1 -c "SELECT count(*) FROM orders.recount_site_counts()")"

# slots: a hold routes by the slot, a booking or release by the reservation
slots="SELECT string_agg(capacity_id || '|' || remaining, ',' ORDER BY starts_at, capacity_id)
         FROM orders.available_slots('$SERVICE', now(), now() + interval '1 day')"
all_slots() { for k in $(seq 0 $((NODES - 1))); do node $k -c "SELECT capacity_id || '|' || remaining || '|' || starts_at FROM orders.available_slots('$SERVICE', now(), now() + interval '1 day')"; done |
               sort -t'|' -k3,3 -k1,1 | cut -d'|' -f1,2 | paste -sd,; }
check "available_slots through the proxy: every node's slots of the service, by time (anonymous)" \
    "$(all_slots)" "$(api '' "$slots" anon)"
s0=$(node 0 -c "SELECT id FROM orders.service_capacity WHERE max_capacity = 10 ORDER BY starts_at LIMIT 1")
s1=$(node 1 -c "SELECT id FROM orders.service_capacity WHERE max_capacity = 1")
hold=$(api $cust1 "SELECT orders.reserve_time_slot('$s1')")
check "a customer's hold on a slot of node 1 is made there (its id says so)" "1" \
    "$(proxy -c "SELECT orders_proxy.partition_of('$hold')")"
check "... the slot is full for another customer: the node's OR023" "ERROR OR023" \
    "$(api $other "SELECT orders.reserve_time_slot('$s1')")"
check "... who may not confirm the hold either (42501)" "ERROR 42501" \
    "$(api $other "SELECT status FROM orders.confirm_booking('$hold')")"
check "... nor may the holder without naming the item it books for (OR028: nobody could give it back)" "ERROR OR028" \
    "$(api $cust1 "SELECT status FROM orders.confirm_booking('$hold')")"
session1=$(node 1 -c "WITH i AS (INSERT INTO orders.order_items (order_id, name, item_type) VALUES ('$o1', 'Session', 'service') RETURNING id)
                      SELECT id FROM i")
check "... the holder confirms it through the proxy, for the item of its order on node 1" "confirmed" \
    "$(api $cust1 "SELECT status FROM orders.confirm_booking('$hold', '$session1')")"
check "... node 1 counts it booked, and its slots equal a recount" "1|0|0" \
    "$(node 1 -c "SELECT booked_count || '|' || held_count || '|' || (SELECT count(*) FROM orders.recount_slots())
                    FROM orders.service_capacity WHERE id = '$s1'")"
check "... and the full slot is offered no more" "$(all_slots)|f" \
    "$(api '' "$slots" anon)|$(api '' "SELECT count(*) > 0 FROM orders.available_slots('$SERVICE', now(), now() + interval '1 day') WHERE capacity_id = '$s1'" anon)"
hold0=$(api $cust1 "SELECT orders.reserve_time_slot('$s0')")
check "a hold on a slot of node 0, released through the proxy: true, the place given back" "t|0" \
    "$(api $cust1 "SELECT orders.release_reservation('$hold0')")|$(node 0 -c "SELECT held_count FROM orders.service_capacity WHERE id = '$s0'")"
check "reserve_time_slot with a NULL slot: 22004, as on one database" "ERROR 22004" \
    "$(api $cust1 "SELECT orders.reserve_time_slot(NULL)")"

# bad input through the proxy: the node's refusal, or the proxy's for a
# call that cannot be routed
check "transition with a NULL order id: 22004, as on one database" "ERROR 22004" \
    "$(api $ADMIN "SELECT status FROM orders.transition(NULL, 'confirmed')")"
check "shared_order with a NULL token: as on one database" "$(node 0 -v VERBOSITY=sqlstate -c "SELECT orders.shared_order(NULL)" 2>&1 | sed -E 's/^(psql:[^ ]* )?ERROR:  ([0-9A-Z]{5}).*/ERROR \2/')" \
    "$(api '' "SELECT orders.shared_order(NULL)" anon)"
node_state() { node 0 -v VERBOSITY=sqlstate -c "$1" 2>&1 | sed -E 's/^(psql:[^ ]* )?ERROR:  ([0-9A-Z]{5}).*/ERROR \2/'; }
for call in "orders.start_analysis(NULL, NULL)" "orders.complete_analysis(NULL, '[]')" \
            "orders.share_review_sites(NULL, NULL, '[]')" "orders.convert_share_token(NULL)" \
            "orders.revoke_share_token(NULL)" "orders.confirm_booking(NULL)"; do
    check "$call through the proxy: refused as on one database ($(node_state "SELECT $call"))" \
        "$(node_state "SELECT $call")" "$(api $ADMIN "SELECT $call")"
done
check "share_review_sites with a 100,000-character token: OR080" "ERROR OR080" \
    "$(api '' "SELECT orders.share_review_sites(repeat('x', 100000), '$g1', '[]')" anon)"
check "a 100,000-character token: refused by partition 0's node as unknown (OR080)" "ERROR OR080" \
    "$(api '' "SELECT orders.shared_order(repeat('x', 100000))" anon)"
check "a forged token of the right shape: OR080" "ERROR OR080" \
    "$(api '' "SELECT orders.shared_order(translate(encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_'))" anon)"

# ---------------------------------------------- shop webhooks, placed --
# The same signed Shopify webhook on every node (reference data); deliveries
# go through the proxy as anon.  A new shop order lands on the partition of
# its customer's phone hash (hashtext('phone ' || phone), low bits, as
# PL/Proxy's RUN ON takes it), every later delivery of it — again, racing,
# or an update with another phone — on the node that has it.  Signatures are
# computed here with pgcrypto (the proxy cluster's postgres database only).
for k in $(seq 0 $((NODES - 1))); do
    node $k -c "INSERT INTO orders.webhooks (id, name, source, endpoint, secret, field_mapping)
                VALUES ('5e000000-0000-0000-0000-0000000000a1', 'Shop', 'shopify', 'shop', 'scale-secret',
                        orders.webhook_mapping('shopify'))"
done
q postgres -h "$BASE/proxy" -p "$PPORT" -U postgres -c "CREATE EXTENSION IF NOT EXISTS pgcrypto"
sign() { q postgres -h "$BASE/proxy" -p "$PPORT" -U postgres -v body="$1" <<<"SELECT encode(hmac(convert_to(:'body', 'UTF8'), 'scale-secret', 'sha256'), 'base64')"; }
shop_order() {   # shop_order ID PHONE [CITY] — a Shopify order payload
    printf '{"id": %s, "name": "#%s", "phone": "%s", "email": "buyer%s@example.com", "currency": "EUR", "total_price": "30.00", "updated_at": "2026-12-0%sT10:00:00Z", "shipping_address": {"address1": "1 Main St", "city": "%s"}, "line_items": [{"sku": "SKU-%s", "title": "Thing", "quantity": 1, "price": "30.00"}]}' \
        "$1" "$1" "$2" "$1" "${4:-1}" "${3:-Lyon}" "$1"
}
deliver() {      # deliver PAYLOAD DELIVERY_ID [TOPIC] — the result's status through the proxy, as anon
    api '' "SELECT orders.ingest_webhook('shop', \$b\$$1\$b\$, '$(sign "$1")', '$2', '${3:-orders/create}') ->> 'status'" anon
}
where_is() {     # where_is SHOP_ORDER_ID — the nodes that have it, as "node:count" lines
    for k in $(seq 0 $((NODES - 1))); do
        c=$(node $k -c "SELECT count(*) FROM orders.orders WHERE webhook_source = 'shop' AND external_id = '$1'")
        [ "$c" = 0 ] || echo "$k:$c"
    done
}
expected_node() { proxy -c "SELECT hashtext('phone ' || '$1') & ($NODES - 1)"; }
p1=$(shop_order 9001 '+33100000001')
check "a new shop order through the proxy: created" "created" "$(deliver "$p1" d-9001-a)"
check "... on the partition of its customer's phone" "$(expected_node '+33100000001'):1" "$(where_is 9001)"
check "the same delivery again: a duplicate, found on that node" "duplicate" "$(deliver "$p1" d-9001-a)"
check "another delivery of the same order: a duplicate" "duplicate" "$(deliver "$p1" d-9001-b)"
p1u=$(shop_order 9001 '+33100000099' Paris 2)
check "an update of the order with another phone goes where the order is: updated" "updated" "$(deliver "$p1u" d-9001-c orders/updated)"
check "... still one order, on the same node, its city now the update's" \
    "$(expected_node '+33100000001'):1|Paris" \
    "$(where_is 9001)|$(node "$(expected_node '+33100000001')" -c "SELECT delivery_area FROM orders.orders WHERE external_id = '9001'")"
check "the HTTP status reaches the proxy's response (response.status, for PostgREST)" "201" \
    "$(api '' "SELECT orders.ingest_webhook('shop', \$b\$$(shop_order 9002 '+33100000002')\$b\$, '$(sign "$(shop_order 9002 '+33100000002')")', 'd-9002') IS NOT NULL AND true \\g /dev/null
SELECT current_setting('response.status')" anon)"
check "a wrongly signed delivery: rejected (401), logged by partition 0's node, nothing created anywhere" \
    "401|1|" \
    "$(api '' "SELECT orders.ingest_webhook('shop', \$b\$$(shop_order 9003 '+33100000003')\$b\$, 'AAAA', 'd-9003') ->> 'http_status'" anon)|$(node 0 -c "SELECT count(*) FROM orders.webhook_logs WHERE delivery_id = 'd-9003' AND response_status = 401")|$(where_is 9003)"
# eight customers' orders: each on its phone's partition, and more than one node used
spread=""; want=""
for i in 1 2 3 4 5 6 7 8; do
    deliver "$(shop_order 910$i "+3320000000$i")" "d-910$i" >/dev/null
    spread="$spread $(where_is 910$i)"; want="$want $(expected_node "+3320000000$i"):1"
done
check "eight new customers' orders: each on the partition of its phone" "$want" "$spread"
check "... which spreads them over more than one node" "t" \
    "$(echo $spread | tr ' ' '\n' | cut -d: -f1 | sort -u | awk 'END {print (NR > 1 ? "t" : "f")}')"
# eight deliveries of one new order at once: one order, seven duplicates
p4=$(shop_order 9004 '+33100000004')
for i in 1 2 3 4 5 6 7 8; do deliver "$p4" "d-9004-$i" > "$BASE/race.$i" & done; wait
check "eight racing deliveries of a new order: one created, seven duplicates" "1 created|7 duplicate" \
    "$(cat "$BASE"/race.* | sort | uniq -c | awk '{print $1, $2}' | paste -sd'|')"
check "... and one order, on its customer's partition" "$(expected_node '+33100000004'):1" "$(where_is 9004)"

# ---------------------------- workflows, notifications and the outbox --
# A manual workflow on every node (reference data) that notifies the admins
# in the app and sends a webhook (an outbox message), run through the proxy
# for an order of each node: the run, the notification and the message are
# written on that order's node; the admin's notifications are read and
# marked over every node; a worker (here the DBA) claims messages over every
# node, at most "batch", and completes or revives each on its node.
WF=5e000000-0000-0000-0000-0000000000b1
for k in $(seq 0 $((NODES - 1))); do
    node $k -c "INSERT INTO orders.workflows (id, name, trigger_type, workflow_steps)
                VALUES ('$WF', 'Ping', 'manual',
                        '[{\"id\": \"app\", \"type\": \"send_notification\", \"config\": {\"target\": \"admin\", \"title\": \"Look at {{order_number}}\"}},
                          {\"id\": \"hook\", \"type\": \"send_notification\", \"config\": {\"channel\": \"webhook\", \"url\": \"https://hooks.example.com/o\", \"title\": \"t\"}}]')"
done
runs_on() { for k in $(seq 0 $((NODES - 1))); do echo -n "$k:$(node $k -c "SELECT count(*) FROM orders.workflow_executions WHERE order_id = '$1'") "; done; }
check "run_workflow through the proxy for an order of node 1: completed, the run on node 1 only" \
    "completed|$(for k in $(seq 0 $((NODES - 1))); do echo -n "$k:$([ $k = 1 ] && echo 1 || echo 0) "; done)" \
    "$(api $ADMIN "SELECT status FROM orders.run_workflow('$WF', '$o1')")|$(runs_on "$o1")"
check "... and for an order of node 0: on node 0 only" \
    "completed|$(for k in $(seq 0 $((NODES - 1))); do echo -n "$k:$([ $k = 0 ] && echo 1 || echo 0) "; done)" \
    "$(api $ADMIN "SELECT status FROM orders.run_workflow('$WF', '$o0')")|$(runs_on "$o0")"
check "... an unknown workflow: the node's OR114" "ERROR OR114" \
    "$(api $ADMIN "SELECT status FROM orders.run_workflow(gen_random_uuid(), '$o1')")"
check "... a customer may not run workflows: the node's 42501, nothing run" "ERROR 42501|1" \
    "$(api $cust1 "SELECT status FROM orders.run_workflow('$WF', '$o1')")|$(node 1 -c "SELECT count(*) FROM orders.workflow_executions WHERE order_id = '$o1'")"
check "unread_notifications through the proxy: the admin's of both nodes, newest first" "Look at $(node 0 -c "SELECT order_number FROM orders.orders WHERE id = '$o0'"),Look at $(node 1 -c "SELECT order_number FROM orders.orders WHERE id = '$o1'")" \
    "$(api $ADMIN "SELECT string_agg(title, ',') FROM (SELECT title FROM orders.unread_notifications()) n")"
n1=$(node 1 -c "SELECT id FROM orders.notifications")
check "mark_notifications_read of node 1's notification: 1 marked, node 0's still unread" "1|1|f" \
    "$(api $ADMIN "SELECT orders.mark_notifications_read(ARRAY['$n1'::uuid])")|$(api $ADMIN "SELECT count(*) FROM orders.unread_notifications()")|$(node 0 -c "SELECT is_read FROM orders.notifications")"
check "... mark all read: the rest (1) over every node, none unread" "1|0" \
    "$(api $ADMIN "SELECT orders.mark_notifications_read()")|$(api $ADMIN "SELECT count(*) FROM orders.unread_notifications()")"
check "... a caller who is no staff member: the nodes' 42501" "ERROR 42501" \
    "$(api $cust1 "SELECT orders.mark_notifications_read()")"
messages=$(for k in $(seq 0 $((NODES - 1))); do node $k -c "SELECT count(*) FROM orders.outbox"; done | paste -sd' ')
check "the outbox: the runs' webhook messages, one on each node the runs ran on" "1 1$([ "$NODES" -gt 2 ] && printf ' 0%.0s' $(seq 3 "$NODES"))" "$messages"
node 1 -c "UPDATE orders.outbox SET max_attempts = 1 WHERE kind = 'webhook'"
first=$(proxy -c "SELECT id FROM orders.claim_outbox('w1', 1)")
check "claim_outbox through the proxy, batch 1: one message" "1" "$(echo "$first" | grep -c .)"
rest=$(proxy -c "SELECT id FROM orders.claim_outbox('w1', 10)")
check "... batch 10: the other one (every node asked), then none left" "1|0" \
    "$(echo "$rest" | grep -c .)|$(proxy -c "SELECT count(*) FROM orders.claim_outbox('w1', 10)")"
m0=$(node 0 -c "SELECT id FROM orders.outbox WHERE kind = 'webhook'")
m1=$(node 1 -c "SELECT id FROM orders.outbox WHERE kind = 'webhook'")
check "... each claimed once, by w1, on its node" "w1|w1" \
    "$(node 0 -c "SELECT locked_by FROM orders.outbox WHERE id = '$m0'")|$(node 1 -c "SELECT locked_by FROM orders.outbox WHERE id = '$m1'")"
check "complete_outbox through the proxy: node 0's done, node 1's failed on its last attempt (dead)" "done|dead" \
    "$(proxy -c "SELECT orders.complete_outbox('$m0', NULL, 'w1')")|$(proxy -c "SELECT orders.complete_outbox('$m1', 'HTTP 500', 'w1')")"
check "... another worker may not complete it: the node's OR101" "OR101" \
    "$(proxy_refusal "PERFORM orders.complete_outbox('$m0', NULL, 'w2')" | cut -d' ' -f1)"
check "revive_outbox through the proxy: node 1's message pending again, claimed by the next claim" "|$m1" \
    "$(proxy -c "SELECT orders.revive_outbox('$m1')")|$(proxy -c "SELECT id FROM orders.claim_outbox('w1', 10)")"
check "... reviving one that is not dead: the node's OR102" "OR102" \
    "$(proxy_refusal "PERFORM orders.revive_outbox('$m0')" | cut -d' ' -f1)"
check "claim_outbox with batch 0: 22023 from the node asked first" "22023" \
    "$(proxy_refusal "PERFORM orders.claim_outbox('w1', 0)" | cut -d' ' -f1)"
check "an API role cannot claim the outbox through the proxy (the nodes' grants: 42501)" "ERROR 42501" \
    "$(api $ADMIN "SELECT count(*) FROM orders.claim_outbox('w1', 10)")"

# --------------------------------------------------------------- stock --
# The catalog on every node (reference data) without its stock: each
# partition holds its own share of a product's stock, and an order takes
# from its own node's share.  Goods are received on the partition of the
# movement's id, moved between shares by transfers (two halves, once each),
# and no share goes below 0 — so nothing is sold twice.
LAMP=5e000000-0000-0000-0000-0000000000c1
for k in $(seq 0 $((NODES - 1))); do
    node $k -c "INSERT INTO orders.products (id, name, sku, price) VALUES ('$LAMP', 'Lamp', 'SO-LAMP', 10)"
done
# (0.44.0) the storefront's catalog, which every node holds alike: any node
# answers through the proxy, as anon, a page at a time; its refusals are the node's
catalog="SELECT string_agg(name || ' ' || price, ',') FROM orders.product_catalog(max_products => 5)"
check "product_catalog through the proxy (anon): the page every node gives" "$(node 0 -c "$catalog")|$(node 0 -c "$catalog")" \
    "$(api '' "$catalog" anon)|$(node $((NODES - 1)) -c "$catalog")"
check "... max_products 0 through the proxy: the node's 22023" "ERROR 22023" \
    "$(api '' "SELECT count(*) FROM orders.product_catalog(max_products => 0)" anon)"
shares() { proxy -c "SELECT string_agg(partition || ':' || stock_quantity, ' ' ORDER BY partition) FROM orders_proxy.stock_levels('$LAMP')"; }
zeros() { for k in $(seq "$1" $((NODES - 1))); do printf ' %s:0' "$k"; done; }
rcv=$(proxy -c "SELECT orders_proxy.new_id(0)")
check "goods received through the proxy (an admin's move_stock, an id of partition 0): 6 lamps in partition 0's share" \
    "6|0:6$(zeros 1)" "$(api $ADMIN "SELECT stock_after FROM orders.move_stock('$rcv', '$LAMP', 6, reason => 'delivery')")|$(shares)"
check "... the same request again: the same answer, nothing moved" \
    "6|0:6$(zeros 1)" "$(api $ADMIN "SELECT stock_after FROM orders.move_stock('$rcv', '$LAMP', 6, reason => 'delivery')")|$(shares)"
check "... a customer may not move stock: the node's 42501" "ERROR 42501" \
    "$(api $cust1 "SELECT stock_after FROM orders.move_stock(orders_proxy.new_id(1), '$LAMP', 6)")"
t1=$(proxy -c "SELECT gen_random_uuid()")
check "transfer_stock: 2 lamps from partition 0 to 1 — the two shares after it" "4|2|0:4 1:2$(zeros 2)" \
    "$(api $ADMIN "SELECT from_stock || '|' || to_stock FROM orders_proxy.transfer_stock('$t1', '$LAMP', 2, 0, 1)")|$(shares)"
check "... the same transfer again: the same answer, nothing moved" "4|2|0:4 1:2$(zeros 2)" \
    "$(api $ADMIN "SELECT from_stock || '|' || to_stock FROM orders_proxy.transfer_stock('$t1', '$LAMP', 2, 0, 1)")|$(shares)"
check "... its two halves, one movement on each side with the transfer's id" "-2 1|2 0" \
    "$(node 0 -c "SELECT quantity || ' ' || transfer_partition FROM orders.stock_movements WHERE id = '$t1'")|$(node 1 -c "SELECT quantity || ' ' || transfer_partition FROM orders.stock_movements WHERE id = '$t1'")"
check "a transfer beyond partition 0's share: partition 0's OR050, nothing moved anywhere" "ERROR OR050|0:4 1:2$(zeros 2)" \
    "$(api $ADMIN "SELECT from_stock FROM orders_proxy.transfer_stock(gen_random_uuid(), '$LAMP', 5, 0, 1)")|$(shares)"
check "a transfer whose id partition 0 already used (the goods received): OR119 before anything moves" "ERROR OR119|0:4 1:2$(zeros 2)" \
    "$(api $ADMIN "SELECT from_stock FROM orders_proxy.transfer_stock('$rcv', '$LAMP', 1, 1, 0)")|$(shares)"
check "new_id of a partition the cluster lacks, and move_stock of an id of one: 22023" "22023|22023" \
    "$(proxy_refusal "PERFORM orders_proxy.new_id($NODES)" | cut -d' ' -f1)|$(proxy_refusal "PERFORM orders.move_stock(encode(set_byte(set_byte(uuid_send(gen_random_uuid()), 6, 128), 7, $NODES), 'hex')::uuid, '$LAMP', 1)" | cut -d' ' -f1)"
# the second half refused by its node: a product partition 1 lacks
BULB=5e000000-0000-0000-0000-0000000000c3
node 0 -c "INSERT INTO orders.products (id, name, sku, price) VALUES ('$BULB', 'Bulb', 'SO-BULB', 2)"
proxy -c "SELECT orders.move_stock(orders_proxy.new_id(0), '$BULB', 2)" >/dev/null
t3=$(proxy -c "SELECT gen_random_uuid()")
check "a transfer into a partition without the product: partition 1's OR120, saying the units left partition 0" \
    "OR120 stock transfer $t3 left partition 0 but did not reach partition 1|1" \
    "$(proxy_refusal "PERFORM orders_proxy.transfer_stock('$t3', '$BULB', 1, 0, 1)")|$(node 0 -c "SELECT stock_quantity FROM orders.products WHERE id = '$BULB'")"
check "... in transit, once" "$t3 1 0 1" \
    "$(proxy -c "SELECT transfer_id || ' ' || quantity || ' ' || from_partition || ' ' || to_partition FROM orders_proxy.stock_in_transit()")"
check "... complete_stock_transfers passes it over while the product is missing (0 delivered, a warning naming it)" "0|1" \
    "$(proxy -c "SELECT orders_proxy.complete_stock_transfers()")|$(proxy -c "SELECT orders_proxy.complete_stock_transfers()" 2>&1 | grep -c "WARNING:  stock transfer $t3 could not be delivered to partition 1: OR120")"
node 1 -c "INSERT INTO orders.products (id, name, sku, price) VALUES ('$BULB', 'Bulb', 'SO-BULB', 2)"
check "... and delivers it once the product is there: nothing in transit, one bulb on each side" "1|0|1|1" \
    "$(proxy -c "SELECT orders_proxy.complete_stock_transfers()")|$(proxy -c "SELECT count(*) FROM orders_proxy.stock_in_transit()")|$(node 0 -c "SELECT stock_quantity FROM orders.products WHERE id = '$BULB'")|$(node 1 -c "SELECT stock_quantity FROM orders.products WHERE id = '$BULB'")"
check "a transfer within one partition, or to one outside the cluster: 22023" "22023|22023" \
    "$(proxy_refusal "PERFORM orders_proxy.transfer_stock(gen_random_uuid(), '$LAMP', 1, 0, 0)" | cut -d' ' -f1)|$(proxy_refusal "PERFORM orders_proxy.transfer_stock(gen_random_uuid(), '$LAMP', 1, 0, $NODES)" | cut -d' ' -f1)"
# an order takes from its own node's share only: node 1 has 2 of the 6
lamp_order() {   # lamp_order QUANTITY — a new cod order of node 1 with that many lamps; prints its id
    node 1 -c "WITH o AS (INSERT INTO orders.orders (customer_id, lifecycle) SELECT customer_id, 'cod' FROM orders.orders WHERE id = '$o1' RETURNING id),
                    i AS (INSERT INTO orders.order_items (order_id, product_id, name, quantity, unit_price) SELECT id, '$LAMP', 'Lamp', $1, 10 FROM o)
               SELECT id FROM o"
}
big=$(lamp_order 3); small=$(lamp_order 2)
check "an order of 3 lamps on node 1 (its share 2, the cluster 6): node 1's OR050 — no share is sold twice" "ERROR OR050" \
    "$(api $ADMIN "SELECT status FROM orders.transition('$big', 'confirmed')")"
check "... an order of 2 is confirmed and empties node 1's share" "confirmed|0:4 1:0$(zeros 2)" \
    "$(api $ADMIN "SELECT status FROM orders.transition('$small', 'confirmed')")|$(shares)"
# two transfers racing for partition 0's four lamps, three each: one goes
for i in 1 2; do api $ADMIN "SELECT to_stock FROM orders_proxy.transfer_stock(gen_random_uuid(), '$LAMP', 3, 0, 1)" > "$BASE/tr.$i" & done; wait
check "two transfers of 3 racing for partition 0's 4 lamps: one done, the other refused (OR050)" "3|ERROR OR050" \
    "$(cat "$BASE"/tr.* | sort | paste -sd'|')"
check "... the shares and the order's two add up to the 6 received" "6|0:1 1:3$(zeros 2)" \
    "$(proxy -c "SELECT sum(stock_quantity) + 2 FROM orders_proxy.stock_levels('$LAMP')")|$(shares)"

# -------------------------------------------- reads over every node --
all_recent() { for k in $(seq 0 $((NODES - 1))); do node $k -c "SELECT $1 FROM orders.recent_orders(max_rows => 1000) ORDER BY 1"; done | sort; }
check "recent_orders over every node: the union of the nodes' answers" "$(all_recent order_number)" \
    "$(api $ADMIN "SELECT order_number FROM orders.recent_orders(max_rows => 1000)" | sort)"
check "... and its first 30 are the 30 newest of that union (priority, then time)" \
    "$(all_recent "priority || '|' || created_at" | sort -t'|' -k1,1nr -k2,2r | head -30)" \
    "$(api $ADMIN "SELECT priority || '|' || created_at FROM orders.recent_orders(max_rows => 30)")"
check "order_stats is the sum of the nodes' order_stats" \
    "$(for k in $(seq 0 $((NODES - 1))); do node $k -c "SELECT total, active FROM orders.order_stats()"; done | awk -F'|' '{t += $1; a += $2} END {print t "|" a}')" \
    "$(api $ADMIN "SELECT total || '|' || active FROM orders.order_stats()")"
# the rest of the dashboard (0.14.0): every node answers, the proxy merges
union_of() { for k in $(seq 0 $((NODES - 1))); do node $k -c "$1"; done | sort; }
deliveries="SELECT order_number FROM orders.agent_active_deliveries('$AGENT_STAFF')"
check "agent_active_deliveries over every node, as the agent: the union of the nodes' answers ($((10 * NODES)) orders)" \
    "$(union_of "$deliveries")|$((10 * NODES))" \
    "$(api $AGENT "$deliveries" | sort)|$(api $AGENT "SELECT count(*) FROM orders.agent_active_deliveries('$AGENT_STAFF')")"
unassigned="SELECT order_number FROM orders.unassigned_orders_in_area('north')"
check "unassigned_orders_in_area over every node: the union of the nodes' answers ($((20 * NODES)) orders)" \
    "$(union_of "$unassigned")|$((20 * NODES))" \
    "$(api $ADMIN "$unassigned" | sort)|$(api $ADMIN "SELECT count(*) FROM orders.unassigned_orders_in_area('north')")"
check "vip_customers over every node: the union of the nodes' answers ($((3 * NODES)) customers), biggest spenders first" \
    "$(union_of "SELECT phone FROM orders.vip_customers('north')")|$((3 * NODES))|t" \
    "$(api $ADMIN "SELECT phone FROM orders.vip_customers('north')" | sort)|$(api $ADMIN "SELECT count(*) FROM orders.vip_customers('north')")|$(api $ADMIN "SELECT bool_and(s >= n) FROM (SELECT total_spent AS s, lead(total_spent) OVER () AS n FROM orders.vip_customers('north')) v WHERE n IS NOT NULL")"
check "... and the agent, who serves only the south, reaches none of them (each node's policy, the claims went along)" "0" \
    "$(api $AGENT "SELECT count(*) FROM orders.vip_customers('north')")"
check "... but the south's VIPs, whom it serves: the union of the nodes' answers ($((3 * NODES)) customers)" \
    "$(union_of "SELECT phone FROM orders.vip_customers('south')")|$((3 * NODES))" \
    "$(api $AGENT "SELECT phone FROM orders.vip_customers('south')" | sort)|$(api $AGENT "SELECT count(*) FROM orders.vip_customers('south')")"
# the dashboard's views (0.22.0): rows unioned, figures summed, averages
# and low stock recomputed over every node.  Data: an expense of today on
# every node; the agent's deliveries rated 1 and 5 (one order) and 2 (a
# second) on node 0, 4, 4 and 4 (one order) on node 1 — (0.39.0) each
# order's ratings averaged first, the cluster's average is 3.00 (orders
# 3, 2, 4), not the mean of the nodes' (3.25) nor of the rows (3.33)
for k in $(seq 0 $((NODES - 1))); do
    node $k -c "INSERT INTO orders.expenses (category, amount, currency) VALUES ('fuel', 10 + $k, 'EUR')"
    node $k -c "INSERT INTO orders.deliveries (order_id, agent_id, rating)
                SELECT o.id, '$AGENT_STAFF', r.rating
                  FROM (VALUES (0, 1, 1), (0, 1, 5), (0, 2, 2), (1, 1, 4), (1, 1, 4), (1, 1, 4)) r (k, n, rating)
                  JOIN (SELECT x.id, row_number() OVER (ORDER BY x.order_number) AS n FROM orders.orders x
                         WHERE x.assigned_agent_id = '$AGENT_STAFF') o ON o.n = r.n
                 WHERE r.k = $k"
done
sum_of() { for k in $(seq 0 $((NODES - 1))); do node $k -c "$1"; done | awk -F'|' '{ for (i = 1; i <= NF; i++) t[i] += $i } END { for (i = 1; i <= NF; i++) printf "%s%s", (i > 1 ? "|" : ""), t[i]; print "" }'; }
check "todays_order_summary over every node: each figure the sum of the nodes'" \
    "$(sum_of "SELECT orders_today, delivered_count, collected_amount::int, pending_amount::int, cancelled_count, returned_count FROM orders.todays_order_summary")" \
    "$(api $ADMIN "SELECT orders_today || '|' || delivered_count || '|' || collected_amount::int || '|' || pending_amount::int || '|' || cancelled_count || '|' || returned_count FROM orders.todays_order_summary")"
check "daily_financial_summary over every node: today's expenses summed per currency" \
    "$(sum_of "SELECT total_expenses::int, net_profit::int FROM orders.daily_financial_summary WHERE date = current_date AND currency = 'EUR'")" \
    "$(api $ADMIN "SELECT total_expenses::int || '|' || net_profit::int FROM orders.daily_financial_summary WHERE date = current_date AND currency = 'EUR'")"
check "order_details_view, order_summary and ledger_discrepancies over every node: the union of the nodes' rows" \
    "$(union_of "SELECT order_number FROM orders.order_details_view" | md5sum)|$(union_of "SELECT order_number FROM orders.order_summary" | md5sum)|$(union_of "SELECT order_number FROM orders.ledger_discrepancies" | wc -l)" \
    "$(api $ADMIN "SELECT order_number FROM orders.order_details_view" | sort | md5sum)|$(api $ADMIN "SELECT order_number FROM orders.order_summary" | sort | md5sum)|$(api $ADMIN "SELECT order_number FROM orders.ledger_discrepancies" | grep -c .)"
check "agent_performance_view over every node: deliveries summed, the average over every rated order (3.00)" \
    "$(sum_of "SELECT total_deliveries, completed_deliveries, successful_orders FROM orders.agent_performance_view WHERE agent_id = '$AGENT_STAFF'")|3.00" \
    "$(api $ADMIN "SELECT total_deliveries || '|' || completed_deliveries || '|' || successful_orders || '|' || average_rating FROM orders.agent_performance_view WHERE agent_id = '$AGENT_STAFF'")"
check "... a customer reads none of it (each node's policies)" "0" \
    "$(api $cust1 "SELECT count(*) FROM orders.agent_performance_view WHERE total_deliveries > 0")"
SHADE=5e000000-0000-0000-0000-0000000000c2
for k in 0 1; do
    node $k -c "INSERT INTO orders.products (id, name, sku, price) VALUES ('$SHADE', 'Shade', 'SO-SHADE', 5)"
    node $k -c "SELECT orders.move_stock(gen_random_uuid(), '$SHADE', 3)" >/dev/null
done
check "low_stock_view over every node: a SKU is low when all shares together are (lamps: 1 + 3 = 4 <= 5, listed once), not when one is (shades: 3 + 3 = 6)" \
    "SO-LAMP 4" "$(api $ADMIN "SELECT sku || ' ' || stock_quantity FROM orders.low_stock_view WHERE sku IN ('SO-LAMP', 'SO-SHADE')")"

# ------------------------------------------------ soak, a node down --
# 16 clients assign and unassign leads through the proxy on every node, and
# move stock of one product between the partitions' shares (1 to 3 units,
# from a random partition to another); the soak's step catches what a call
# raises and records its SQLSTATE (for a transfer, as node 1's when it
# involves node 1), so that the clients go on while node 1 is stopped and
# restarted.  Every share starts with 500 units.
SOAK_SKU=5e000000-0000-0000-0000-0000000000c4
for k in $(seq 0 $((NODES - 1))); do
    node $k -c "INSERT INTO orders.products (id, name, sku, price) VALUES ('$SOAK_SKU', 'Soak', 'SO-SOAK', 1)"
    proxy -c "SELECT orders.move_stock(orders_proxy.new_id($k), '$SOAK_SKU', 500)" >/dev/null
done
proxy >/dev/null <<SQL
CREATE SCHEMA soak;
CREATE TABLE soak.work (node int, n int, lead uuid, campaign uuid[], PRIMARY KEY (node, n));
CREATE TABLE soak.outcome (node int, sqlstate text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION soak.step(node int, n int, c int) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    w soak.work;
    dest int := (node + 1 + n % ($NODES - 1)) % $NODES;
    who int := CASE WHEN c = 5 AND dest = 1 THEN 1 ELSE node END;
BEGIN
    IF c = 5 THEN
        PERFORM orders_proxy.transfer_stock(gen_random_uuid(), '$SOAK_SKU', 1 + n % 3, node, dest);
    ELSE
        SELECT * INTO w FROM soak.work WHERE work.node = step.node AND work.n = step.n;
        PERFORM orders.assign_lead(w.lead, CASE WHEN c = 0 THEN NULL ELSE w.campaign[c] END);
    END IF;
    INSERT INTO soak.outcome (node, sqlstate) VALUES (who, 'ok');
EXCEPTION WHEN OTHERS THEN
    INSERT INTO soak.outcome (node, sqlstate) VALUES (who, SQLSTATE);
END
\$\$;
GRANT USAGE ON SCHEMA soak TO authenticated;
GRANT SELECT ON soak.work TO authenticated;
GRANT INSERT ON soak.outcome TO authenticated;
SQL
for k in $(seq 0 $((NODES - 1))); do
    node $k -c "SELECT $k, row_number() OVER (ORDER BY id), id,
                       (SELECT array_agg(o.id ORDER BY o.id) FROM orders.orders o WHERE o.lifecycle = 'campaign')
                  FROM orders.leads" | proxy -c "COPY soak.work FROM STDIN WITH (DELIMITER '|')"
done
cat > "$BASE/soak.pgbench" <<PGB
\set node random(0, $((NODES - 1)))
\set n random(1, 500)
\set c random(0, 5)
BEGIN;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"sub":"$ADMIN","role":"authenticated"}', true);
SELECT soak.step(:node, :n, :c);
COMMIT;
PGB
pgbench -n -c 16 -j 2 -T "$SECS" -h "$BASE/proxy" -p "$PPORT" -U authenticator -f "$BASE/soak.pgbench" orders \
    >"$BASE/pgbench.log" 2>&1 &
bench=$!
sleep $((SECS / 3))
stop_cluster "$(node_dir 1)"
sleep 2
as_pg $PG_BIN/pg_ctl -D "$(node_dir 1)/data" -l "$(node_dir 1)/server.log" -w -t 60 start >/dev/null
wait $bench
check "the soak's clients all ran to the end" "0" "$(grep -c 'aborted\|error' "$BASE/pgbench.log" || true)"
check "calls to the stopped node failed with 08001 (not reached) or 08006 (lost on the way), nothing else (but OR050 for a short share)" "t" \
    "$(proxy -c "SELECT bool_and(node = 1 AND sqlstate IN ('08001', '08006')) AND bool_or(sqlstate = '08001')
                   FROM soak.outcome WHERE sqlstate NOT IN ('ok', 'OR050')")"
check "calls to every node succeeded, node 1 also after its restart" "$NODES|true" \
    "$(proxy -c "SELECT count(DISTINCT node) || '|' || bool_or(node = 1 AND at > (SELECT max(at) FROM soak.outcome WHERE sqlstate = '08001'))
                  FROM soak.outcome WHERE sqlstate = 'ok'")"
for k in $(seq 0 $((NODES - 1))); do
    check "node $k: every stored leads_delivered equals a recount" "0" "$(node $k -c "SELECT count(*) FROM orders.recount_leads()")"
    check "node $k: every customer's statistics equal a recount" "0" "$(node $k -c "SELECT count(*) FROM orders.recount_customer_stats()")"
done
check "stock transfers ran (some of them refused for a short share is fine)" "t" \
    "$(proxy -c "SELECT count(*) > 0 FROM orders_proxy.stock_levels('$SOAK_SKU') WHERE stock_quantity <> 500")"
proxy -c "SELECT orders_proxy.complete_stock_transfers()" >/dev/null
check "after the soak, with the transfers in transit completed: nothing in transit, and the shares add up to the $((500 * NODES)) units received" \
    "0|$((500 * NODES))" \
    "$(proxy -c "SELECT count(*) FROM orders_proxy.stock_in_transit()")|$(proxy -c "SELECT sum(stock_quantity) FROM orders_proxy.stock_levels('$SOAK_SKU')")"
for k in $(seq 0 $((NODES - 1))); do
    check "node $k: its share equals a recount of its movements" "0" \
        "$(node $k -c "SELECT p.stock_quantity - coalesce((SELECT sum(m.quantity) FROM orders.stock_movements m WHERE m.product_id = p.id), 0)
                         FROM orders.products p WHERE p.id = '$SOAK_SKU'")"
done
check "the proxy's order_stats equals the sum over the nodes after the soak" \
    "$(for k in $(seq 0 $((NODES - 1))); do node $k -c "SELECT total, active FROM orders.order_stats()"; done | awk -F'|' '{t += $1; a += $2} END {print t "|" a}')" \
    "$(api $ADMIN "SELECT total || '|' || active FROM orders.order_stats()")"
# ------------------------------------- a node down: reads and set-up --
# A read over every node needs every node: with node 1 down it fails as a
# whole (08001, nothing partial); calls routed to another node go on; the
# set-up functions say which node is missing instead of PL/Proxy's XX000.
before=$(api $ADMIN "SELECT string_agg(t, ',' ORDER BY t) FROM orders.allowed_transitions('$o0') t")
node 0 -c "SELECT orders.enqueue_outbox('test', '{}', 'while node 1 is down')" >/dev/null
stop_cluster "$(node_dir 1)"
check "node 1 down: unread_notifications over every node fails with 08001" "ERROR 08001" \
    "$(api $ADMIN "SELECT count(*) FROM orders.unread_notifications()")"
check "node 1 down: claim_outbox passes over it and claims node 0's message" "while node 1 is down" \
    "$(proxy -c "SELECT idempotency_key FROM orders.claim_outbox('w1', 10)")"
check "node 1 down: recent_orders over every node fails with 08001" "ERROR 08001" \
    "$(api $ADMIN "SELECT count(*) FROM orders.recent_orders(max_rows => 1000)")"
check "node 1 down: order_stats over every node fails with 08001" "ERROR 08001" \
    "$(api $ADMIN "SELECT total FROM orders.order_stats()")"
check "node 1 down: agent_active_deliveries over every node fails with 08001" "ERROR 08001" \
    "$(api $AGENT "SELECT count(*) FROM orders.agent_active_deliveries('$AGENT_STAFF')")"
check "node 1 down: available_slots over every node fails with 08001" "ERROR 08001" \
    "$(api '' "SELECT count(*) FROM orders.available_slots('$SERVICE', now(), now() + interval '1 day')" anon)"
check "node 1 down: a shop delivery fails with 08001 (placing it needs every node), nothing logged on node 0" \
    "ERROR 08001|0" \
    "$(deliver "$(shop_order 9005 '+33100000005')" d-9005)|$(node 0 -c "SELECT count(*) FROM orders.webhook_logs WHERE delivery_id = 'd-9005'")"
check "node 1 down: a call routed to node 0 answers as before ($before)" "$before" \
    "$(api $ADMIN "SELECT string_agg(t, ',' ORDER BY t) FROM orders.allowed_transitions('$o0') t")"
check "node 1 down: check_nodes fails with 08001 (a node unreachable)" "08001 a node of the orders cluster is unreachable" \
    "$(proxy_refusal "PERFORM orders_proxy.check_nodes()")"
t2=$(proxy -c "SELECT gen_random_uuid()")
check "node 1 down: a transfer from partition 0 to 1 fails with 08001 before anything moves (the receiving side is asked first)" \
    "08001 a node of the orders cluster is unreachable|1" \
    "$(proxy_refusal "PERFORM orders_proxy.transfer_stock('$t2', '$LAMP', 1, 0, 1)")|$(node 0 -c "SELECT stock_quantity FROM orders.products WHERE id = '$LAMP'")"
check "node 1 down: stock_in_transit needs every node (08001)" "08001" \
    "$(proxy_refusal "PERFORM orders_proxy.stock_in_transit()" | cut -d' ' -f1)"
stop_cluster "$(node_dir 0)"
check "node 0 down: sync_types fails with 08001" "08001 a node of the orders cluster is unreachable" \
    "$(proxy_refusal "PERFORM orders_proxy.sync_types()")"
check "node 0 down: a transfer from partition 0 fails with 08001" \
    "08001 a node of the orders cluster is unreachable" \
    "$(proxy_refusal "PERFORM orders_proxy.transfer_stock(gen_random_uuid(), '$LAMP', 1, 0, 1)")"
if [ "$NODES" = 2 ]; then
    check "both down: claim_outbox, reaching no node, fails with 08001" "08001 a node of the orders cluster is unreachable" \
        "$(proxy_refusal "PERFORM orders.claim_outbox('w1', 10)")"
fi
for k in 0 1; do
    as_pg $PG_BIN/pg_ctl -D "$(node_dir $k)/data" -l "$(node_dir $k)/server.log" -w -t 60 start >/dev/null
done
check "both back: check_nodes answers for every partition again" "$NODES" "$(proxy -c "SELECT orders_proxy.check_nodes()")"
check "both back: nothing in transit; the same transfer again goes through, once" "|0|4|0:0 1:4$(zeros 2)" \
    "$(proxy -c "SELECT * FROM orders_proxy.stock_in_transit()")|$(proxy -c "SELECT from_stock || '|' || to_stock FROM orders_proxy.transfer_stock('$t2', '$LAMP', 1, 0, 1)")|$(shares)"
check "the scale-out demo (test/demo_scale_out.sql) runs through the proxy" "ok" \
    "$(psql -X -q -v ON_ERROR_STOP=1 -h "$BASE/proxy" -p "$PPORT" -U postgres -d orders -f "$REPO_DIR/test/demo_scale_out.sql" >"$BASE/demo.log" 2>&1 \
       && echo ok || tail -5 "$BASE/demo.log")"

echo "# soak: $(proxy -c "SELECT string_agg(sqlstate || ' ' || c, ', ') FROM (SELECT sqlstate, count(*) c FROM soak.outcome GROUP BY 1 ORDER BY 1) x") calls"
tap_done
