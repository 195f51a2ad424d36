#!/usr/bin/env bash
# Quick start: install what is missing, build, start a throwaway cluster with
# pg_cron preloaded, install the extension and run the demo.  The cluster
# keeps running afterwards so that you can look around with psql.
# --scale-out: then also a PL/Proxy proxy in front of two node databases
# (doc/scale-out.md), each with a customer, orders and slots, and the
# scale-out demo through the proxy (test/demo_scale_out.sql).
source "$(dirname "$0")/lib.sh"

DEMO_DIR=${ORDERS_DEMO_DIR:-/tmp/orders-demo}
DEMO_PORT=${ORDERS_DEMO_PORT:-54329}

ensure_packages
build_install
stop_cluster "$DEMO_DIR"
log "starting a throwaway cluster in $DEMO_DIR (port $DEMO_PORT)"
start_cluster "$DEMO_DIR" "$DEMO_PORT"
psql -q -X -d postgres -c "DROP DATABASE IF EXISTS orders_demo" -c "CREATE DATABASE orders_demo"
psql -q -X -d orders_demo -v ON_ERROR_STOP=1 -c "CREATE EXTENSION orders"
log "demo"
psql -X -d orders_demo -v ON_ERROR_STOP=1 -f "$REPO_DIR/test/demo.sql"

as_root=$( [ "$(id -u)" -eq 0 ] && echo "runuser -u $PG_OS_USER -- " )
cat <<MSG

== the cluster is still running
  connect:  psql -h $DEMO_DIR -p $DEMO_PORT -U postgres orders_demo
  stop:     $as_root$PG_BIN/pg_ctl -D $DEMO_DIR/data stop
MSG

[ "${1:-}" = --scale-out ] || exit 0
SCALE_DIR=$DEMO_DIR-scale
SCALE_PORT=${ORDERS_DEMO_SCALE_PORT:-54339}
for d in proxy node0 node1; do stop_cluster "$SCALE_DIR/$d"; done
rm -rf "$SCALE_DIR"
log "scale-out: a proxy (port $SCALE_PORT) and two nodes (ports $((SCALE_PORT + 1)), $((SCALE_PORT + 2))) in $SCALE_DIR"
scale_out_clusters "$SCALE_DIR" "$SCALE_PORT" 2
for k in 0 1; do
    psql -X -q -v ON_ERROR_STOP=1 -h "$SCALE_DIR/node$k" -p $((SCALE_PORT + 1 + k)) -U postgres -d orders <<SQL
INSERT INTO orders.customers (full_name, phone) VALUES ('Customer of node $k', '+1555000$k');
INSERT INTO orders.orders (customer_id, lifecycle, total_amount)
SELECT (SELECT id FROM orders.customers), 'cod', 10 * (n + $k) FROM generate_series(1, 2) n;
INSERT INTO orders.service_capacity (service_id, starts_at, ends_at, max_capacity)
VALUES ('5e000000-0000-0000-0000-000000000001', date_trunc('hour', now()) + interval '2 hours' + $k * interval '1 hour',
        date_trunc('hour', now()) + interval '2 hours 50 minutes' + $k * interval '1 hour', 5);
-- the catalog is the same on every node; each node holds its own share of the stock
INSERT INTO orders.products (id, name, sku, price) VALUES ('5e000000-0000-0000-0000-0000000000c1', 'Lamp', 'SO-LAMP', 10);
SQL
done
psql -X -h "$SCALE_DIR/proxy" -p "$SCALE_PORT" -U postgres -d orders -v ON_ERROR_STOP=1 -f "$REPO_DIR/test/demo_scale_out.sql"
cat <<MSG

== the proxy and its two nodes are still running
  connect:  psql -h $SCALE_DIR/proxy -p $SCALE_PORT -U postgres orders      (nodes: -h $SCALE_DIR/node0 -p $((SCALE_PORT + 1)), node1 -p $((SCALE_PORT + 2)))
  stop:     for d in proxy node0 node1; do $as_root$PG_BIN/pg_ctl -D $SCALE_DIR/\$d/data stop; done
MSG
