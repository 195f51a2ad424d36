#!/usr/bin/env bash
# Quick start: install what is missing, build, start a throwaway cluster with
# pg_cron preloaded, install the extension and run the demo.  The cluster
# keeps running afterwards so that you can look around with psql.
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

cat <<MSG

== the cluster is still running
  connect:  psql -h $DEMO_DIR -p $DEMO_PORT -U postgres orders_demo
  stop:     $( [ "$(id -u)" -eq 0 ] && echo "runuser -u $PG_OS_USER -- " )$PG_BIN/pg_ctl -D $DEMO_DIR/data stop
MSG
