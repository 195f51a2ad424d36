-- orders_proxy.sql — the orders API in front of several databases (PL/Proxy).
--
-- Run with psql in the proxy database (not a node), as a superuser, after
-- the DBA made the cluster (doc/scale-out.md):
--
--   CREATE EXTENSION plproxy;
--   CREATE SERVER orders_nodes FOREIGN DATA WRAPPER plproxy
--       OPTIONS (p0 'host=node-a dbname=orders', p1 'host=node-b dbname=orders');
--   CREATE USER MAPPING FOR PUBLIC SERVER orders_nodes;
--   psql -d proxy -f sql/proxy/orders_proxy.sql
--
-- Partition k of the server is the node database whose setting
-- orders.partition is k (orders_proxy.check_nodes() verifies it); their
-- number is a power of two.  The application calls schema orders here with
-- the names, arguments and result types it calls on one database; each call
-- runs on the node of the id it names (orders_proxy.partition_of: the id
-- says where it was made; a shop's delivery, of the order or customer it
-- names: ingest_webhook), or on every node and is merged (recent_orders,
-- order_stats, available_slots, agent_active_deliveries,
-- unassigned_orders_in_area, vip_customers, unread_notifications,
-- mark_notifications_read), or node after node (claim_outbox); stock is
-- held in one share per partition (move_stock, transfer_stock).  PL/Proxy
-- connects as the caller's current role (PostgREST's anon / authenticated,
-- a DBA), and the request's JWT claims and headers go
-- along with each call (set for that call only), so every node applies its
-- own row level security, triggers and refusals to the same caller.
\set ON_ERROR_STOP 1

CREATE SCHEMA orders;
CREATE SCHEMA orders_proxy;
COMMENT ON SCHEMA orders_proxy IS 'Routing of the orders API to the node databases (PL/Proxy)';

-- partition_of — the partition an id was made in: the node function of the
-- same name (src/ids.c), in SQL: 12 bits of a version-8 uuid, else 0 (ids
-- made before 0.12.0 live in partition 0: the database that was alone).
-- NULL routes to partition 0 too, whose node answers it as one database
-- would (PL/Proxy cannot run a call on a NULL partition).
CREATE FUNCTION orders_proxy.partition_of(id uuid) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN id IS NULL THEN 0
            WHEN pg_catalog.get_byte(pg_catalog.uuid_send(id), 6) >> 4 = 8
            THEN ((pg_catalog.get_byte(pg_catalog.uuid_send(id), 6) & 15) << 8)
                 | pg_catalog.get_byte(pg_catalog.uuid_send(id), 7)
            ELSE 0 END;

-- token_partition — the partition of a share token: its first 16 bytes are
-- an id of the node that made it.  Anything else routes to partition 0,
-- whose node refuses it as it refuses any unknown token (NULL too).
CREATE FUNCTION orders_proxy.token_partition(token text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN token ~ '^[A-Za-z0-9_-]{43}$'
            THEN orders_proxy.partition_of(pg_catalog.encode(pg_catalog.substring(
                     pg_catalog.decode(pg_catalog.translate(token, '-_', '+/') || '=', 'base64'), 1, 16), 'hex')::uuid)
            ELSE 0 END;

-- claims / headers — what goes along with each call: the request's JWT
-- claims and headers as PostgREST set them here ('' when unset).
CREATE FUNCTION orders_proxy.claims() RETURNS text
    LANGUAGE sql STABLE
RETURN coalesce(pg_catalog.current_setting('request.jwt.claims', true), '');
CREATE FUNCTION orders_proxy.headers() RETURNS text
    LANGUAGE sql STABLE
RETURN coalesce(pg_catalog.current_setting('request.headers', true), '');

-- node_failure — what a node's failure means to the caller: PL/Proxy
-- reports a node it cannot reach as an internal error (XX000): '08001'
-- (could not connect: nothing was done on the node); a connection lost
-- during the call, or a node shutting down under it (57P01/57P02): '08006'
-- (the call's outcome on the node is unknown: retry with the same
-- idempotency key, or read back); NULL for any other error.
CREATE FUNCTION orders_proxy.node_failure(state text, message text) RETURNS text
    LANGUAGE sql IMMUTABLE
RETURN CASE WHEN state = 'XX000' AND message ~ '^PL/Proxy function .*\] (PQconnectStart|PQconnectPoll):' THEN '08001'
            WHEN (state = 'XX000' AND message ~ '^PL/Proxy function .*\] (PQconsumeInput|PQflush|PQsendQuery|PQsendQueryParams):')
                 OR state IN ('57P01', '57P02') THEN '08006' END;

-- raise_node_failure — raise a node's failure as the caller sees it (above;
-- PostgREST answers 503 to both); any other error is raised again as it was.
CREATE FUNCTION orders_proxy.raise_node_failure(state text, message text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE orders_proxy.node_failure(state, message)
    WHEN '08001' THEN
        RAISE EXCEPTION 'a node of the orders cluster is unreachable'
            USING ERRCODE = '08001', DETAIL = message,
                  HINT = 'Nothing was done on that node (a call over several nodes may have been done on the others). Retry when the node is back; calls for other nodes go on.';
    WHEN '08006' THEN
        RAISE EXCEPTION 'a node of the orders cluster was lost during the call'
            USING ERRCODE = '08006', DETAIL = message,
                  HINT = 'The call may or may not have taken effect on the node: retry with the same idempotency key, or read it back.';
    ELSE
        RAISE EXCEPTION '%', message USING ERRCODE = state;
    END CASE;
END
$$;

-- node_partition — the partition node number "p" says it serves (its
-- orders.partition, read from an id it makes: the setting exists once the
-- extension's library is loaded).
CREATE FUNCTION orders_proxy.node_partition(p integer) RETURNS integer
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON p;
    SELECT orders.partition_of(orders.new_id());
$$;

-- check_nodes — every partition of the cluster is served by a node that
-- says it serves that partition; refuses (55000, naming the partition)
-- otherwise: a node set up with the wrong orders.partition would make ids
-- that route to another node.  A node it cannot reach: 08001.
-- partitions — how many partitions the server orders_nodes has (its
-- options p0, p1, ...).
CREATE FUNCTION orders_proxy.partitions() RETURNS integer
    LANGUAGE sql STABLE
RETURN (SELECT count(*)::integer
          FROM pg_catalog.pg_foreign_server s, pg_catalog.pg_options_to_table(s.srvoptions) o
         WHERE s.srvname = 'orders_nodes' AND o.option_name ~ '^p[0-9]+$');

CREATE FUNCTION orders_proxy.check_nodes() RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := orders_proxy.partitions();
    said integer;
BEGIN
    FOR p IN 0 .. n - 1 LOOP
        said := orders_proxy.node_partition(p);
        IF said IS DISTINCT FROM p THEN
            RAISE EXCEPTION 'partition % of server orders_nodes is a node serving partition %', p, said
                USING ERRCODE = '55000',
                      HINT = format('Set orders.partition = %s in that node''s database (ALTER DATABASE ... SET orders.partition = %s), or fix the order of the server''s options.', p, p);
        END IF;
    END LOOP;
    RETURN n;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- sync_types — the row types the API returns (orders.orders, ...) and the
-- domains they use, made here as the node of partition 0 defines them, so
-- that the proxy's functions have the node's signatures exactly.  Run at
-- set-up; run again after ALTER EXTENSION orders UPDATE on the nodes: it
-- makes what is new and refuses (55000, naming the type) a row type that
-- no longer matches the node's — then re-create the proxy's schemas.
CREATE FUNCTION orders_proxy.node_types(names text[], OUT kind text, OUT name text, OUT definition text)
    RETURNS SETOF record
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON 0;
    SELECT 'domain'::text AS kind, t.typname::text AS name, pg_catalog.format_type(t.typbasetype, t.typtypmod) AS definition
      FROM pg_catalog.pg_type t
     WHERE t.typnamespace = 'orders'::regnamespace AND t.typtype = 'd'
    UNION ALL
    SELECT 'type', c.relname::text,
           pg_catalog.string_agg(pg_catalog.quote_ident(a.attname) || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod),
                                 ', ' ORDER BY a.attnum)
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relnamespace = 'orders'::regnamespace AND c.relname = ANY (names)
     GROUP BY c.relname;
$$;

CREATE FUNCTION orders_proxy.sync_types() RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d record;
    here text;
    made integer := 0;
BEGIN
    FOR d IN SELECT * FROM orders_proxy.node_types(ARRAY['orders', 'order_groups', 'leads', 'slot_reservations',
                                                      'workflow_executions', 'notifications', 'outbox',
                                                      'stock_movements'])
              ORDER BY kind LOOP        -- domains before the types using them
        IF to_regtype('orders.' || quote_ident(d.name)) IS NULL THEN
            EXECUTE format(CASE d.kind WHEN 'domain' THEN 'CREATE DOMAIN orders.%I AS %s'
                                       ELSE 'CREATE TYPE orders.%I AS (%s)' END, d.name, d.definition);
            made := made + 1;
            CONTINUE;
        END IF;
        -- what the proxy has, described as node_types describes the node's
        IF d.kind = 'domain' THEN
            SELECT format_type(t.typbasetype, t.typtypmod) INTO here
              FROM pg_type t WHERE t.oid = to_regtype('orders.' || quote_ident(d.name));
        ELSE
            SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
              INTO here
              FROM pg_attribute a
             WHERE a.attrelid = to_regclass('orders.' || quote_ident(d.name)) AND a.attnum > 0 AND NOT a.attisdropped;
        END IF;
        IF here IS DISTINCT FROM d.definition THEN
            RAISE EXCEPTION '% orders.% of the proxy differs from partition 0''s', d.kind, d.name
                USING ERRCODE = '55000',
                      DETAIL = format('The proxy has (%s), the node (%s).', here, d.definition),
                      HINT = 'Re-create the proxy''s API: DROP SCHEMA orders, orders_proxy CASCADE, then run sql/proxy/orders_proxy.sql again.';
        END IF;
    END LOOP;
    RETURN made;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    -- node 0 unreachable: nothing made (the block's types are rolled back)
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
SELECT orders_proxy.sync_types() AS types_made \gset

-- ------------------------------------------------- calls routed by id --
-- Each call's remote query first sets the request's claims and headers for
-- this call only, then calls the node's function of the same name (the
-- function's arguments depend on the settings, so they are made first).

CREATE FUNCTION orders_proxy.transition(claims text, headers text, order_id uuid, to_status text, notes text,
                                        idempotency_key text)
    RETURNS SETOF orders.orders
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(order_id);
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.transition(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN order_id END,
                                           to_status, notes, idempotency_key) r;
$$;
CREATE FUNCTION orders.transition(order_id uuid, to_status text, notes text DEFAULT NULL,
                                  idempotency_key text DEFAULT NULL)
    RETURNS orders.orders
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result orders.orders;
BEGIN
    SELECT * INTO result FROM orders_proxy.transition(orders_proxy.claims(), orders_proxy.headers(), order_id, to_status, notes,
                                              idempotency_key);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.allowed_transitions(claims text, headers text, order_id uuid)
    RETURNS SETOF text
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(order_id);
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.allowed_transitions(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN order_id END) r (r);
$$;
CREATE FUNCTION orders.allowed_transitions(order_id uuid)
    RETURNS SETOF text
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.allowed_transitions(orders_proxy.claims(), orders_proxy.headers(), order_id);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.assign_lead(claims text, headers text, lead_id uuid, order_id uuid)
    RETURNS SETOF orders.leads
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(lead_id);
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.assign_lead(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN lead_id END, order_id) r;
$$;
CREATE FUNCTION orders.assign_lead(lead_id uuid, order_id uuid)
    RETURNS orders.leads
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result orders.leads;
BEGIN
    SELECT * INTO result FROM orders_proxy.assign_lead(orders_proxy.claims(), orders_proxy.headers(), lead_id, order_id);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.review_sites(claims text, headers text, order_group_id uuid, selections jsonb)
    RETURNS SETOF orders.order_groups
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(order_group_id);
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.review_sites(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN order_group_id END,
                                             selections) r;
$$;
CREATE FUNCTION orders.review_sites(order_group_id uuid, selections jsonb)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result orders.order_groups;
BEGIN
    SELECT * INTO result FROM orders_proxy.review_sites(orders_proxy.claims(), orders_proxy.headers(), order_group_id, selections);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.create_share_token(claims text, headers text, order_id uuid, expires_in interval,
                                                allowed_actions text[], metadata jsonb)
    RETURNS text
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(order_id);
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.create_share_token(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN order_id END,
                                                   expires_in, allowed_actions, metadata) r (r);
$$;
CREATE FUNCTION orders.create_share_token(order_id uuid, expires_in interval DEFAULT '7 days',
                                          allowed_actions text[] DEFAULT '{view}', metadata jsonb DEFAULT '{}')
    RETURNS text
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result text;
BEGIN
    result := orders_proxy.create_share_token(orders_proxy.claims(), orders_proxy.headers(), order_id, expires_in,
                                               allowed_actions, metadata);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.shared_order(claims text, headers text, token text)
    RETURNS jsonb
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.token_partition(token);
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.shared_order(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN token END) r (r);
$$;
CREATE FUNCTION orders.shared_order(token text)
    RETURNS jsonb
    LANGUAGE plpgsql STABLE
AS $$
DECLARE
    result jsonb;
BEGIN
    result := orders_proxy.shared_order(orders_proxy.claims(), orders_proxy.headers(), token);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.customer_order_history(claims text, headers text, customer_id uuid, max_rows integer)
    RETURNS TABLE (id uuid, order_number text, status text, total_amount numeric, created_at timestamptz,
                   delivered_at timestamptz)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(customer_id);
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.customer_order_history(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN customer_id END,
                                                       max_rows) r;
$$;
CREATE FUNCTION orders.customer_order_history(customer_id uuid, max_rows integer DEFAULT 100)
    RETURNS TABLE (id uuid, order_number text, status text, total_amount numeric, created_at timestamptz,
                   delivered_at timestamptz)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.customer_order_history(orders_proxy.claims(), orders_proxy.headers(), customer_id, max_rows);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- The agency's review (0.13.0): a group lives on its order's node (its id
-- says which); a share link on its order's node (the token starts with an
-- id made there, and a token's row id likewise).
CREATE FUNCTION orders_proxy.start_analysis(claims text, headers text, order_group_id uuid, analysis_project_id uuid)
    RETURNS SETOF orders.order_groups
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(order_group_id);
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.start_analysis(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN order_group_id END,
                                               analysis_project_id) r;
$$;
CREATE FUNCTION orders.start_analysis(order_group_id uuid, analysis_project_id uuid)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result orders.order_groups;
BEGIN
    SELECT * INTO result FROM orders_proxy.start_analysis(orders_proxy.claims(), orders_proxy.headers(), order_group_id,
                                                          analysis_project_id);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.complete_analysis(claims text, headers text, order_group_id uuid, suggestions jsonb)
    RETURNS SETOF orders.order_groups
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(order_group_id);
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.complete_analysis(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN order_group_id END,
                                                  suggestions) r;
$$;
CREATE FUNCTION orders.complete_analysis(order_group_id uuid, suggestions jsonb)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result orders.order_groups;
BEGIN
    SELECT * INTO result FROM orders_proxy.complete_analysis(orders_proxy.claims(), orders_proxy.headers(), order_group_id,
                                                             suggestions);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.share_review_sites(claims text, headers text, token text, order_group_id uuid,
                                                selections jsonb)
    RETURNS jsonb
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.token_partition(token);
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.share_review_sites(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN token END,
                                                   order_group_id, selections) r (r);
$$;
CREATE FUNCTION orders.share_review_sites(token text, order_group_id uuid, selections jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN orders_proxy.share_review_sites(orders_proxy.claims(), orders_proxy.headers(), token, order_group_id, selections);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.convert_share_token(claims text, headers text, token text)
    RETURNS uuid
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.token_partition(token);
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.convert_share_token(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN token END) r (r);
$$;
CREATE FUNCTION orders.convert_share_token(token text)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN orders_proxy.convert_share_token(orders_proxy.claims(), orders_proxy.headers(), token);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- (the node's function returns void: the remote query answers 1 once it ran)
CREATE FUNCTION orders_proxy.revoke_share_token(claims text, headers text, token_id uuid)
    RETURNS integer
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(token_id);
    SELECT 1 FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                          pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.revoke_share_token(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN token_id END) r;
$$;
CREATE FUNCTION orders.revoke_share_token(token_id uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM orders_proxy.revoke_share_token(orders_proxy.claims(), orders_proxy.headers(), token_id);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- Slots (0.13.0): a slot and its reservations live on the node that made
-- the slot, so a hold routes by the slot's id and a booking or release by
-- the reservation's (made on that node: the same partition).
CREATE FUNCTION orders_proxy.reserve_time_slot(claims text, headers text, capacity_id uuid, duration_minutes integer,
                                               quantity integer)
    RETURNS uuid
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(capacity_id);
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.reserve_time_slot(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN capacity_id END,
                                                  duration_minutes, quantity) r (r);
$$;
CREATE FUNCTION orders.reserve_time_slot(capacity_id uuid, duration_minutes integer DEFAULT NULL,
                                         quantity integer DEFAULT 1)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN orders_proxy.reserve_time_slot(orders_proxy.claims(), orders_proxy.headers(), capacity_id, duration_minutes,
                                          quantity);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.confirm_booking(claims text, headers text, reservation_id uuid, order_item_id uuid)
    RETURNS SETOF orders.slot_reservations
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(reservation_id);
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.confirm_booking(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN reservation_id END,
                                                order_item_id) r;
$$;
CREATE FUNCTION orders.confirm_booking(reservation_id uuid, order_item_id uuid DEFAULT NULL)
    RETURNS orders.slot_reservations
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result orders.slot_reservations;
BEGIN
    SELECT * INTO result FROM orders_proxy.confirm_booking(orders_proxy.claims(), orders_proxy.headers(), reservation_id,
                                                           order_item_id);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.release_reservation(claims text, headers text, reservation_id uuid)
    RETURNS boolean
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(reservation_id);
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.release_reservation(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN reservation_id END) r (r);
$$;
CREATE FUNCTION orders.release_reservation(reservation_id uuid)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN orders_proxy.release_reservation(orders_proxy.claims(), orders_proxy.headers(), reservation_id);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- Shop webhooks (0.15.0): a delivery has no id of ours yet, so it is placed
-- in two steps.  Every node says whether it has the shop order the payload
-- names (orders.webhook_placement: only for a request the webhook accepts;
-- a signed webhook's, only with the right signature) and gives the same
-- hash of the customer's phone, else email; the delivery goes to the node
-- that has the order, else to the partition of that hash (the hash's low
-- bits, as PL/Proxy's RUN ON takes a number), else — a request the node
-- will refuse — to partition 0, which logs it.  So every delivery of one
-- shop order meets the others on one node, whose lock and unique index
-- keep it exactly once, also when they race; a returning customer with the
-- same phone (or, without one, email) has its orders on one node.
CREATE FUNCTION orders_proxy.webhook_placement(claims text, headers text, endpoint text, payload json,
                                               signature text, delivery_id text)
    RETURNS TABLE (node integer, known boolean, route integer)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT orders.partition_of(orders.new_id()) AS node, (p.p ->> 'known')::boolean AS known,
           (p.p ->> 'route')::integer AS route
      FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.webhook_placement(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN endpoint END,
                                                  payload, signature, delivery_id) p (p);
$$;
CREATE FUNCTION orders_proxy.ingest_webhook(claims text, headers text, route integer, endpoint text, payload json,
                                            signature text, delivery_id text, topic text)
    RETURNS jsonb
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON route;
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.ingest_webhook(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN endpoint END,
                                               payload, signature, delivery_id, topic) r (r);
$$;
-- webhook_route — where a delivery goes: the node that has its order, else
-- the customer's hash, else 0.
CREATE FUNCTION orders_proxy.webhook_route(endpoint text, payload json, signature text, delivery_id text)
    RETURNS integer
    LANGUAGE sql VOLATILE
RETURN (SELECT CASE WHEN p.known THEN p.node ELSE coalesce(p.route, 0) END
          FROM orders_proxy.webhook_placement(orders_proxy.claims(), orders_proxy.headers(), endpoint, payload,
                                              signature, delivery_id) p
         ORDER BY p.known DESC, p.node
         LIMIT 1);
-- ingest_webhook — as on one database; the node's HTTP status is this
-- response's too (response.status, for PostgREST).
CREATE FUNCTION orders.ingest_webhook(endpoint text, payload json, signature text DEFAULT NULL,
                                      delivery_id text DEFAULT NULL, topic text DEFAULT NULL)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result jsonb;
BEGIN
    result := orders_proxy.ingest_webhook(orders_proxy.claims(), orders_proxy.headers(),
                                          orders_proxy.webhook_route(endpoint, payload, signature, delivery_id),
                                          endpoint, payload, signature, delivery_id, topic);
    PERFORM pg_catalog.set_config('response.status', result ->> 'http_status', true);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- Workflows, notifications and the outbox (issue 15): a workflow runs on
-- the node of the order (else the customer) it runs for, where its run,
-- outbox message and notification rows are written; a message is completed
-- or revived on the node that made it (its id says which).  A staff
-- member's notifications are on every node its workflows ran on: the
-- reads and "mark read" go to every node and are merged.  A claim takes at
-- most "batch" messages over all nodes, node after node from one chosen at
-- random (no node starves); each node's claim commits there as it is made.
-- A node that cannot answer is passed over (its messages wait; 08001 or
-- 08006 only when no node answers): a claim lost on the way (08006) left
-- its messages to come back when their lease runs out, exactly as a worker
-- that crashed after claiming.
CREATE FUNCTION orders_proxy.run_workflow(claims text, headers text, workflow_id uuid, order_id uuid, customer_id uuid)
    RETURNS SETOF orders.workflow_executions
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(COALESCE(order_id, customer_id));
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.run_workflow(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN workflow_id END,
                                             order_id, customer_id) r;
$$;
CREATE FUNCTION orders.run_workflow(workflow_id uuid, order_id uuid DEFAULT NULL, customer_id uuid DEFAULT NULL)
    RETURNS orders.workflow_executions
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result orders.workflow_executions;
BEGIN
    SELECT * INTO result FROM orders_proxy.run_workflow(orders_proxy.claims(), orders_proxy.headers(), workflow_id,
                                                        order_id, customer_id);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.unread_notifications(claims text, headers text)
    RETURNS SETOF orders.notifications
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.unread_notifications() r WHERE s.c IS NOT NULL AND s.h IS NOT NULL;
$$;
CREATE FUNCTION orders.unread_notifications()
    RETURNS SETOF orders.notifications
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.unread_notifications(orders_proxy.claims(), orders_proxy.headers()) r
         ORDER BY r.created_at DESC, r.id;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.mark_notifications_read(claims text, headers text, ids uuid[])
    RETURNS SETOF integer
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.mark_notifications_read(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN ids END) r (r);
$$;
CREATE FUNCTION orders.mark_notifications_read(ids uuid[] DEFAULT NULL)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN (SELECT sum(r.n)::integer
              FROM orders_proxy.mark_notifications_read(orders_proxy.claims(), orders_proxy.headers(), ids) r (n));
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.claim_outbox(claims text, headers text, p integer, worker text, batch integer,
                                          lease interval)
    RETURNS SETOF orders.outbox
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON p;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.claim_outbox(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN worker END,
                                             batch, lease) r;
$$;
CREATE FUNCTION orders.claim_outbox(worker text, batch integer DEFAULT 10, lease interval DEFAULT '1 min')
    RETURNS SETOF orders.outbox
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    n integer := orders_proxy.partitions();
    start_at integer := pg_catalog.floor(pg_catalog.random() * n)::integer;
    got integer := 0;
    failed integer := 0;
    failure text[];
    m orders.outbox;
BEGIN
    -- the first node is always asked: it refuses a bad worker, batch or
    -- lease; a node that cannot answer is passed over, unless none can
    FOR i IN 0 .. n - 1 LOOP
        BEGIN
            FOR m IN SELECT * FROM orders_proxy.claim_outbox(orders_proxy.claims(), orders_proxy.headers(),
                                                             (start_at + i) % n, worker, batch - got, lease) LOOP
                got := got + 1;
                RETURN NEXT m;
            END LOOP;
        EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
            IF orders_proxy.node_failure(SQLSTATE, SQLERRM) IS NULL THEN
                RAISE;
            END IF;
            failed := failed + 1;
            failure := ARRAY[SQLSTATE, SQLERRM];
        END;
        EXIT WHEN got >= batch;
    END LOOP;
    IF failed = n THEN
        PERFORM orders_proxy.raise_node_failure(failure[1], failure[2]);
    END IF;
    RETURN;
END
$$;

CREATE FUNCTION orders_proxy.complete_outbox(claims text, headers text, id uuid, error text, worker text)
    RETURNS SETOF text
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(id);
    SELECT r.r FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.complete_outbox(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN id END,
                                                error, worker) r (r);
$$;
CREATE FUNCTION orders.complete_outbox(id uuid, error text DEFAULT NULL, worker text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    RETURN (SELECT r FROM orders_proxy.complete_outbox(orders_proxy.claims(), orders_proxy.headers(), id, error, worker) r);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.revive_outbox(claims text, headers text, id uuid)
    RETURNS SETOF integer
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON orders_proxy.partition_of(id);
    SELECT 1 FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                          pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.revive_outbox(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN id END) r;
$$;
CREATE FUNCTION orders.revive_outbox(id uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    PERFORM orders_proxy.revive_outbox(orders_proxy.claims(), orders_proxy.headers(), id);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- Stock (0.22.0; doc/scale-out.md "Stock"): every partition holds its own
-- share of each product's stock (the catalog is reference data, its
-- stock_quantity is not), and an order takes stock from its own
-- partition's share in its own transaction, as on one database: no stock
-- is sold twice, since no share goes below 0 and the shares add up to the
-- stock.  Units are received on the partition of the movement's id
-- (orders_proxy.new_id(k) makes one for partition k; any other uuid means
-- partition 0) and moved between shares with orders_proxy.transfer_stock:
-- out of one partition, then into the other, each half a move_stock of the
-- transfer's id (once each, whatever is retried).  A transfer whose second
-- half failed is "in transit" (out of the first share, in none: nothing
-- can be oversold meanwhile) until orders_proxy.complete_stock_transfers()
-- or the same transfer again delivers it.
CREATE FUNCTION orders_proxy.new_id(p integer) RETURNS uuid
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p IS NULL OR p NOT BETWEEN 0 AND orders_proxy.partitions() - 1 THEN
        RAISE EXCEPTION 'orders_proxy.new_id: % is not a partition of the cluster (0 to %)', p, orders_proxy.partitions() - 1
            USING ERRCODE = '22023';
    END IF;
    RETURN encode(set_byte(set_byte(uuid_send(gen_random_uuid()), 6, 128 | (p >> 8)), 7, p & 255), 'hex')::uuid;
END
$$;

CREATE FUNCTION orders_proxy.move_stock_on(claims text, headers text, p integer, movement_id uuid, product_id uuid,
                                           quantity integer, variant_id uuid, reason text, transfer_partition integer)
    RETURNS SETOF orders.stock_movements
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON p;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.move_stock(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN movement_id END,
                                           product_id, quantity, variant_id, reason, transfer_partition) r;
$$;
CREATE FUNCTION orders.move_stock(movement_id uuid, product_id uuid, quantity integer, variant_id uuid DEFAULT NULL,
                                  reason text DEFAULT NULL, transfer_partition integer DEFAULT NULL)
    RETURNS orders.stock_movements
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    result orders.stock_movements;
BEGIN
    IF orders_proxy.partition_of(movement_id) >= orders_proxy.partitions() THEN
        RAISE EXCEPTION 'stock movement % names partition %, which the cluster does not have', movement_id,
                        orders_proxy.partition_of(movement_id)
            USING ERRCODE = '22023', HINT = 'orders_proxy.new_id(k) makes a movement id of partition k.';
    END IF;
    SELECT * INTO result FROM orders_proxy.move_stock_on(orders_proxy.claims(), orders_proxy.headers(),
                                                         orders_proxy.partition_of(movement_id), movement_id, product_id,
                                                         quantity, variant_id, reason, transfer_partition);
    RETURN result;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- movement_on — the movement "id" of partition p, if it has one.
CREATE FUNCTION orders_proxy.movement_on(claims text, headers text, p integer, movement_id uuid)
    RETURNS SETOF orders.stock_movements
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON p;
    SELECT x.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT m.* FROM orders.stock_movements m
                           WHERE m.id = movement_id AND s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;

-- transfer_stock — move "quantity" units of a product (variant) from one
-- partition's share to another's, once per transfer_id: out of
-- from_partition (OR050 there when its share is short: nothing moved),
-- then into to_partition.  Returns both shares after it.  The same call
-- again repeats the answer and delivers a transfer left in transit.  A
-- partition that is not in the cluster, or the same for both: 22023; an
-- id to_partition already used for another movement: OR119, before
-- anything moves.  When the second half fails — its node unreachable
-- (08001), lost (08006) or refusing (its SQLSTATE, e.g. OR120 for a
-- product it lacks) — the error says the units left from_partition: they
-- are in transit (stock_in_transit) until delivered.
CREATE FUNCTION orders_proxy.transfer_stock(transfer_id uuid, product_id uuid, quantity integer,
                                            from_partition integer, to_partition integer,
                                            variant_id uuid DEFAULT NULL,
                                            OUT from_stock integer, OUT to_stock integer)
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := orders_proxy.partitions();
    there orders.stock_movements;
    state text;
BEGIN
    IF from_partition IS NULL OR to_partition IS NULL OR from_partition NOT BETWEEN 0 AND n - 1
       OR to_partition NOT BETWEEN 0 AND n - 1 OR from_partition = to_partition THEN
        RAISE EXCEPTION 'transfer_stock: from_partition and to_partition must be two partitions of the cluster (0 to %), not % and %',
                        n - 1, from_partition, to_partition USING ERRCODE = '22023';
    ELSIF quantity IS NULL OR quantity < 1 THEN
        RAISE EXCEPTION 'transfer_stock: quantity must be at least 1, not %', quantity USING ERRCODE = '22023';
    END IF;
    -- an id the receiving side used for something else would never let the
    -- units arrive: refused before they leave
    SELECT * INTO there FROM orders_proxy.movement_on(orders_proxy.claims(), orders_proxy.headers(), to_partition, transfer_id);
    IF there.id IS NOT NULL
       AND (there.product_id, there.variant_id, there.quantity, there.transfer_partition)
           IS DISTINCT FROM (product_id, variant_id, quantity, from_partition) THEN
        RAISE EXCEPTION 'stock movement % was already made with other values on partition %', transfer_id, to_partition
            USING ERRCODE = 'OR119',
                  DETAIL = format('It moved %s units of product %s%s.', there.quantity, there.product_id,
                                  coalesce(' (variant ' || there.variant_id || ')', '')),
                  HINT = 'Use a new transfer id; nothing was moved.';
    END IF;
    SELECT m.stock_after INTO from_stock
      FROM orders_proxy.move_stock_on(orders_proxy.claims(), orders_proxy.headers(), from_partition, transfer_id, product_id,
                                      -quantity, variant_id, format('transfer to partition %s', to_partition), to_partition) m;
    BEGIN
        SELECT m.stock_after INTO to_stock
          FROM orders_proxy.move_stock_on(orders_proxy.claims(), orders_proxy.headers(), to_partition, transfer_id,
                                          product_id, quantity, variant_id, format('transfer from partition %s', from_partition),
                                          from_partition) m;
    EXCEPTION WHEN OTHERS THEN
        state := coalesce(orders_proxy.node_failure(SQLSTATE, SQLERRM), SQLSTATE);
        RAISE EXCEPTION 'stock transfer % left partition % but did not reach partition %', transfer_id, from_partition, to_partition
            USING ERRCODE = state, DETAIL = SQLERRM,
                  HINT = 'The units are in transit (orders_proxy.stock_in_transit()): nothing can be sold twice. '
                         'Fix the cause, then call orders_proxy.complete_stock_transfers(), or this transfer again.';
    END;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- stock_in_transit — transfers out of one partition not (yet) into the
-- other: the halves every node has, matched by id.  Needs every node.
CREATE FUNCTION orders_proxy.transfer_halves(claims text, headers text)
    RETURNS TABLE (partition integer, id uuid, product_id uuid, variant_id uuid, quantity integer,
                   transfer_partition integer, created_at timestamptz)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT orders.partition_of(orders.new_id()) AS partition, m.*
      FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT x.id, x.product_id, x.variant_id, x.quantity, x.transfer_partition, x.created_at
                            FROM orders.stock_movements x
                           WHERE x.transfer_partition IS NOT NULL AND s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) m;
$$;
CREATE FUNCTION orders_proxy.stock_in_transit()
    RETURNS TABLE (transfer_id uuid, product_id uuid, variant_id uuid, quantity integer, from_partition integer,
                   to_partition integer, left_at timestamptz)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    WITH halves AS (SELECT * FROM orders_proxy.transfer_halves(orders_proxy.claims(), orders_proxy.headers()))
    SELECT o.id, o.product_id, o.variant_id, -o.quantity, o.partition, o.transfer_partition, o.created_at
      FROM halves o
     WHERE o.quantity < 0
       AND NOT EXISTS (SELECT 1 FROM halves i
                        WHERE i.id = o.id AND i.partition = o.transfer_partition AND i.transfer_partition = o.partition
                          AND i.quantity = -o.quantity AND i.product_id = o.product_id
                          AND i.variant_id IS NOT DISTINCT FROM o.variant_id)
     ORDER BY o.created_at, o.id;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- complete_stock_transfers — deliver every transfer in transit (the second
-- half, once); the number delivered.  A transfer that cannot be delivered
-- now (its partition down or outside the cluster, a product it lacks) is
-- passed over with a WARNING naming it and the cause; the others go on.
-- Needs every node to list them (08001 otherwise), and a caller who may
-- read and move stock on the nodes: run it (a pg_cron job of the proxy,
-- every minute) as a role the nodes' user mapping connects as their owner.
CREATE FUNCTION orders_proxy.complete_stock_transfers() RETURNS integer
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
    n integer := 0;
    parts integer := orders_proxy.partitions();
BEGIN
    FOR t IN SELECT * FROM orders_proxy.stock_in_transit() LOOP
        IF t.to_partition >= parts THEN
            RAISE WARNING 'stock transfer % names partition %, which the cluster does not have: not delivered',
                          t.transfer_id, t.to_partition;
            CONTINUE;
        END IF;
        BEGIN
            PERFORM orders_proxy.move_stock_on(orders_proxy.claims(), orders_proxy.headers(), t.to_partition, t.transfer_id,
                                               t.product_id, t.quantity, t.variant_id,
                                               format('transfer from partition %s', t.from_partition), t.from_partition);
            n := n + 1;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'stock transfer % could not be delivered to partition %: % %', t.transfer_id, t.to_partition,
                          coalesce(orders_proxy.node_failure(SQLSTATE, SQLERRM), SQLSTATE), SQLERRM;
        END;
    END LOOP;
    RETURN n;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- stock_levels — each partition's share of a product's stock (and of its
-- variants'), as the caller may read it there.  Needs every node.
CREATE FUNCTION orders_proxy.stock_shares(claims text, headers text, product uuid)
    RETURNS TABLE (partition integer, variant_id uuid, stock_quantity integer)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT orders.partition_of(orders.new_id()) AS partition, x.*
      FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT NULL::uuid AS variant_id, p.stock_quantity::integer AS stock_quantity FROM orders.products p
                           WHERE p.id = product AND s.c IS NOT NULL AND s.h IS NOT NULL
                          UNION ALL
                          SELECT v.id, v.stock_quantity::integer FROM orders.product_variants v
                           WHERE v.product_id = product AND s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;
CREATE FUNCTION orders_proxy.stock_levels(product_id uuid)
    RETURNS TABLE (partition integer, variant_id uuid, stock_quantity integer)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.stock_shares(orders_proxy.claims(), orders_proxy.headers(), product_id) r
         ORDER BY r.variant_id NULLS FIRST, r.partition;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- -------------------------------------------- reads over every node --
-- Each node answers for its own orders; the proxy merges: the newest
-- max_rows of all nodes' newest max_rows (exact), and sums of counts.

CREATE FUNCTION orders_proxy.recent_orders(claims text, headers text, statuses text[], max_rows integer)
    RETURNS TABLE (id uuid, order_number text, status text, priority integer, total_amount numeric,
                   created_at timestamptz, customer_name text, customer_phone text)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.recent_orders(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN statuses END,
                                              max_rows) r;
$$;
CREATE FUNCTION orders.recent_orders(statuses text[] DEFAULT ARRAY['new', 'confirmation_pending', 'confirmed'],
                                     max_rows integer DEFAULT 50)
    RETURNS TABLE (id uuid, order_number text, status text, priority integer, total_amount numeric,
                   created_at timestamptz, customer_name text, customer_phone text)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.recent_orders(orders_proxy.claims(), orders_proxy.headers(), statuses, max_rows) r
         ORDER BY r.priority DESC, r.created_at DESC
         LIMIT max_rows;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.order_stats(claims text, headers text)
    RETURNS TABLE (total bigint, active bigint, overdue bigint, near_capacity bigint, completed_this_month bigint)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.order_stats() r WHERE s.c IS NOT NULL AND s.h IS NOT NULL;
$$;
CREATE FUNCTION orders.order_stats()
    RETURNS TABLE (total bigint, active bigint, overdue bigint, near_capacity bigint, completed_this_month bigint)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT sum(r.total)::bigint, sum(r.active)::bigint, sum(r.overdue)::bigint, sum(r.near_capacity)::bigint,
               sum(r.completed_this_month)::bigint
          FROM orders_proxy.order_stats(orders_proxy.claims(), orders_proxy.headers()) r;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- The rest of the dashboard (0.14.0): an agent's orders, an area's orders
-- and an area's customers are spread over every node (orders and customers
-- are placed by customer), so every node answers for its own and the proxy
-- merges them in the node function's order (exact: each node returns all
-- its rows).
CREATE FUNCTION orders_proxy.agent_active_deliveries(claims text, headers text, agent_id uuid)
    RETURNS TABLE (id uuid, order_number text, status text, delivery_address text, delivery_area text,
                   customer_notes text, customer_phone text, total_amount numeric, priority integer,
                   created_at timestamptz)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.agent_active_deliveries(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL
                                                             THEN agent_id END) r;
$$;
CREATE FUNCTION orders.agent_active_deliveries(agent_id uuid)
    RETURNS TABLE (id uuid, order_number text, status text, delivery_address text, delivery_area text,
                   customer_notes text, customer_phone text, total_amount numeric, priority integer,
                   created_at timestamptz)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.agent_active_deliveries(orders_proxy.claims(), orders_proxy.headers(),
                                                                    agent_id) r
         ORDER BY r.priority DESC, r.created_at;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.unassigned_orders_in_area(claims text, headers text, area text)
    RETURNS TABLE (id uuid, order_number text, delivery_address text, delivery_area text, priority integer,
                   total_amount numeric, customer_name text, customer_phone text, created_at timestamptz)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.unassigned_orders_in_area(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL
                                                               THEN area END) r;
$$;
CREATE FUNCTION orders.unassigned_orders_in_area(area text)
    RETURNS TABLE (id uuid, order_number text, delivery_address text, delivery_area text, priority integer,
                   total_amount numeric, customer_name text, customer_phone text, created_at timestamptz)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.unassigned_orders_in_area(orders_proxy.claims(), orders_proxy.headers(),
                                                                      area) r
         ORDER BY r.priority DESC, r.created_at;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

CREATE FUNCTION orders_proxy.vip_customers(claims text, headers text, customer_area text, tag text)
    RETURNS TABLE (id uuid, full_name text, phone text, area text, total_orders integer, total_spent numeric)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.vip_customers(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL
                                                   THEN customer_area END, tag) r;
$$;
CREATE FUNCTION orders.vip_customers(customer_area text, tag text DEFAULT 'vip')
    RETURNS TABLE (id uuid, full_name text, phone text, area text, total_orders integer, total_spent numeric)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.vip_customers(orders_proxy.claims(), orders_proxy.headers(),
                                                          customer_area, tag) r
         ORDER BY r.total_spent DESC;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- available_slots: a service's slots may have been made on any node (the
-- proxy does not know where a service lives), so every node answers for
-- its own and the proxy merges them in the node's order (time, then id).
CREATE FUNCTION orders_proxy.available_slots(claims text, headers text, service_id uuid, from_time timestamptz,
                                             to_time timestamptz)
    RETURNS TABLE (capacity_id uuid, starts_at timestamptz, ends_at timestamptz,
                   max_capacity integer, booked integer, held integer, remaining integer)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.available_slots(CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN service_id END,
                                                from_time, to_time) r;
$$;
CREATE FUNCTION orders.available_slots(service_id uuid, "from" timestamptz, "to" timestamptz)
    RETURNS TABLE (capacity_id uuid, starts_at timestamptz, ends_at timestamptz,
                   max_capacity integer, booked integer, held integer, remaining integer)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.available_slots(orders_proxy.claims(), orders_proxy.headers(), service_id,
                                                            "from", "to") r
         ORDER BY r.starts_at, r.capacity_id;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;

-- (0.44.0) product_catalog — a storefront's page of the catalog, which every
-- node holds alike (replicated reference data): any one node answers, as
-- the caller.  Three layers: the remote call; a PL/pgSQL function that
-- maps a node's failure to 08001 (its inputs renamed: PL/pgSQL keeps no
-- input named like an output column, here category); the API's function,
-- in SQL, with the node's signature.
CREATE FUNCTION orders_proxy.product_catalog_remote(claims text, headers text, in_category text, in_max integer,
                                                    in_after_name text, in_after_id uuid)
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, variant_name text, sku text,
                   description text, category text, price numeric, attributes jsonb, images jsonb)
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ANY;
    SELECT r.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                            pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL orders.product_catalog(in_category,
                                                CASE WHEN s.c IS NOT NULL AND s.h IS NOT NULL THEN in_max END,
                                                in_after_name, in_after_id) r;
$$;
CREATE FUNCTION orders_proxy.product_catalog(in_category text, in_max integer, in_after_name text, in_after_id uuid)
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, variant_name text, sku text,
                   description text, category text, price numeric, attributes jsonb, images jsonb)
    LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN QUERY SELECT * FROM orders_proxy.product_catalog_remote(orders_proxy.claims(), orders_proxy.headers(),
                                                                   in_category, in_max, in_after_name, in_after_id);
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
CREATE FUNCTION orders.product_catalog(category text DEFAULT NULL, max_products integer DEFAULT 100,
                                       after_name text DEFAULT NULL, after_id uuid DEFAULT NULL)
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, variant_name text, sku text,
                   description text, category text, price numeric, attributes jsonb, images jsonb)
    LANGUAGE sql STABLE
AS $$
    SELECT * FROM orders_proxy.product_catalog($1, $2, $3, $4)
$$;

-- ------------------------------------ the dashboard's views, merged --
-- Seed 004's dashboard views, under the same names and columns: each node
-- answers for its own rows (as the caller, with the request's claims) and
-- the proxy merges them — rows of orders are their union (every order is on
-- one node); a day's or today's figures are the sums (orders are counted on
-- one node each, so the distinct counts add up); an agent's figures are
-- the sums, the average rating recomputed from each node's rated orders
-- (each order's ratings averaged first, as on a node: 0.39.0); a SKU is low when the shares of all partitions together are
-- at or below its threshold.  A view is read whole from every node (the
-- caller's filters apply on the proxy): for large lists prefer the
-- functions (recent_orders, agent_active_deliveries, ...), which take
-- their limits to the nodes.  A node down: 08001, as the functions.

CREATE TYPE orders_proxy.order_summary AS (id uuid, order_number text, customer_id uuid, client_name text, name text, status text, leads_purchased integer, leads_delivered integer, leads_remaining integer, target_delivery_date date, start_date date, completion_date date, completion_percentage numeric, days_remaining integer, priority integer, created_at timestamptz, updated_at timestamptz);
CREATE FUNCTION orders_proxy.order_summary_of_nodes(claims text, headers text)
    RETURNS SETOF orders_proxy.order_summary
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT x.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT v.* FROM orders.order_summary v WHERE s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;
CREATE FUNCTION orders_proxy.order_summary()
    RETURNS SETOF orders_proxy.order_summary
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT r.* FROM orders_proxy.order_summary_of_nodes(orders_proxy.claims(), orders_proxy.headers()) r;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
CREATE VIEW orders.order_summary WITH (security_invoker = true) AS SELECT * FROM orders_proxy.order_summary();

CREATE TYPE orders_proxy.order_details_view AS (id uuid, order_number text, lifecycle text, status text, priority integer, total_amount orders.amount, currency character(3), payment_status text, payment_method text, source text, delivery_address text, delivery_area text, customer_notes text, created_at timestamptz, confirmed_at timestamptz, delivered_at timestamptz, customer_id uuid, customer_name text, customer_phone text, customer_email text, rep_id uuid, rep_name text, agent_id uuid, agent_name text, agent_phone text, agent_availability text);
CREATE FUNCTION orders_proxy.order_details_view_of_nodes(claims text, headers text)
    RETURNS SETOF orders_proxy.order_details_view
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT x.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT v.* FROM orders.order_details_view v WHERE s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;
CREATE FUNCTION orders_proxy.order_details_view()
    RETURNS SETOF orders_proxy.order_details_view
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT r.* FROM orders_proxy.order_details_view_of_nodes(orders_proxy.claims(), orders_proxy.headers()) r;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
CREATE VIEW orders.order_details_view WITH (security_invoker = true) AS SELECT * FROM orders_proxy.order_details_view();

CREATE TYPE orders_proxy.ledger_discrepancies AS (order_id uuid, order_number text, earned numeric(14,2), posted numeric(14,2));
CREATE FUNCTION orders_proxy.ledger_discrepancies_of_nodes(claims text, headers text)
    RETURNS SETOF orders_proxy.ledger_discrepancies
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT x.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT v.* FROM orders.ledger_discrepancies v WHERE s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;
CREATE FUNCTION orders_proxy.ledger_discrepancies()
    RETURNS SETOF orders_proxy.ledger_discrepancies
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT r.* FROM orders_proxy.ledger_discrepancies_of_nodes(orders_proxy.claims(), orders_proxy.headers()) r;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
CREATE VIEW orders.ledger_discrepancies WITH (security_invoker = true) AS SELECT * FROM orders_proxy.ledger_discrepancies();

CREATE TYPE orders_proxy.todays_order_summary AS (orders_today integer, delivered_count integer, collected_amount numeric, pending_amount numeric, cancelled_count integer, returned_count integer);
CREATE FUNCTION orders_proxy.todays_order_summary_of_nodes(claims text, headers text)
    RETURNS SETOF orders_proxy.todays_order_summary
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT x.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT v.* FROM orders.todays_order_summary v WHERE s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;
CREATE FUNCTION orders_proxy.todays_order_summary()
    RETURNS SETOF orders_proxy.todays_order_summary
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT coalesce(sum(r.orders_today), 0)::integer, coalesce(sum(r.delivered_count), 0)::integer, coalesce(sum(r.collected_amount), 0), coalesce(sum(r.pending_amount), 0), coalesce(sum(r.cancelled_count), 0)::integer, coalesce(sum(r.returned_count), 0)::integer FROM orders_proxy.todays_order_summary_of_nodes(orders_proxy.claims(), orders_proxy.headers()) r;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
CREATE VIEW orders.todays_order_summary WITH (security_invoker = true) AS SELECT * FROM orders_proxy.todays_order_summary();

CREATE TYPE orders_proxy.daily_financial_summary AS (date date, currency character(3), total_revenue numeric(14,2), total_refunds numeric(14,2), total_expenses numeric(14,2), net_revenue numeric(14,2), net_profit numeric(14,2), paid_orders integer);
CREATE FUNCTION orders_proxy.daily_financial_summary_of_nodes(claims text, headers text)
    RETURNS SETOF orders_proxy.daily_financial_summary
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT x.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT v.* FROM orders.daily_financial_summary v WHERE s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;
CREATE FUNCTION orders_proxy.daily_financial_summary()
    RETURNS SETOF orders_proxy.daily_financial_summary
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY SELECT r.date, r.currency, sum(r.total_revenue)::numeric(14,2), sum(r.total_refunds)::numeric(14,2), sum(r.total_expenses)::numeric(14,2), sum(r.net_revenue)::numeric(14,2), sum(r.net_profit)::numeric(14,2), sum(r.paid_orders)::integer FROM orders_proxy.daily_financial_summary_of_nodes(orders_proxy.claims(), orders_proxy.headers()) r GROUP BY r.date, r.currency;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
CREATE VIEW orders.daily_financial_summary WITH (security_invoker = true) AS SELECT * FROM orders_proxy.daily_financial_summary();

CREATE TYPE orders_proxy.agent_performance AS (agent_id uuid, agent_name text, is_active boolean,
    availability_status text, total_deliveries bigint, completed_deliveries bigint, successful_orders bigint,
    rated bigint, rating_sum numeric);
CREATE FUNCTION orders_proxy.agent_performance_of_nodes(claims text, headers text)
    RETURNS SETOF orders_proxy.agent_performance
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT x.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT v.agent_id, v.agent_name, v.is_active, v.availability_status, v.total_deliveries,
                                 v.completed_deliveries, v.successful_orders, d.rated, d.rating_sum
                            FROM orders.agent_performance_view v
                            CROSS JOIN LATERAL (SELECT count(*) AS rated, sum(p.rating) AS rating_sum
                                                  FROM (SELECT avg(t.rating) AS rating FROM orders.deliveries t
                                                         WHERE t.agent_id = v.agent_id AND t.rating IS NOT NULL
                                                         GROUP BY t.order_id) p) d
                           WHERE s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;
CREATE FUNCTION orders_proxy.agent_performance_view()
    RETURNS TABLE (agent_id uuid, agent_name text, is_active boolean, availability_status text,
                   total_deliveries bigint, average_rating numeric, completed_deliveries bigint, successful_orders bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT r.agent_id, r.agent_name, r.is_active, r.availability_status, sum(r.total_deliveries)::bigint,
           round(sum(r.rating_sum) / nullif(sum(r.rated), 0), 2), sum(r.completed_deliveries)::bigint,
           sum(r.successful_orders)::bigint
      FROM orders_proxy.agent_performance_of_nodes(orders_proxy.claims(), orders_proxy.headers()) r
     GROUP BY r.agent_id, r.agent_name, r.is_active, r.availability_status;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
CREATE VIEW orders.agent_performance_view WITH (security_invoker = true) AS SELECT * FROM orders_proxy.agent_performance_view();

-- (the node view's rows before its is_low filter: products without
-- variants, and variants of active products)
CREATE TYPE orders_proxy.stock_share AS (product_id uuid, variant_id uuid, name text, sku orders.label, category text,
    stock_quantity orders.units, low_stock_threshold orders.units, is_active boolean);
CREATE FUNCTION orders_proxy.stock_share_of_nodes(claims text, headers text)
    RETURNS SETOF orders_proxy.stock_share
    LANGUAGE plproxy AS $$
    CLUSTER 'orders_nodes';
    RUN ON ALL;
    SELECT x.* FROM (SELECT pg_catalog.set_config('request.jwt.claims', claims, true) AS c,
                   pg_catalog.set_config('request.headers', headers, true) AS h OFFSET 0) s
      CROSS JOIN LATERAL (SELECT p.id AS product_id, NULL::uuid AS variant_id, p.name::text AS name, p.sku, p.category,
                                 p.stock_quantity, p.low_stock_threshold, p.is_active
                            FROM orders.products p
                           WHERE NOT EXISTS (SELECT 1 FROM orders.product_variants v WHERE v.product_id = p.id)
                             AND s.c IS NOT NULL AND s.h IS NOT NULL
                          UNION ALL
                          SELECT p.id, v.id, p.name || ' / ' || v.name, v.sku, p.category,
                                 v.stock_quantity, v.low_stock_threshold, v.is_active AND p.is_active
                            FROM orders.product_variants v JOIN orders.products p ON p.id = v.product_id
                           WHERE s.c IS NOT NULL AND s.h IS NOT NULL OFFSET 0) x;
$$;
CREATE FUNCTION orders_proxy.low_stock_view()
    RETURNS TABLE (product_id uuid, variant_id uuid, name text, sku orders.label, category text,
                   stock_quantity orders.units, low_stock_threshold orders.units)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT r.product_id, r.variant_id, r.name, r.sku, r.category, sum(r.stock_quantity)::integer::orders.units,
           r.low_stock_threshold
      FROM orders_proxy.stock_share_of_nodes(orders_proxy.claims(), orders_proxy.headers()) r
     GROUP BY r.product_id, r.variant_id, r.name, r.sku, r.category, r.low_stock_threshold
    HAVING bool_and(r.is_active) AND sum(r.stock_quantity) <= r.low_stock_threshold;
EXCEPTION WHEN internal_error OR admin_shutdown OR crash_shutdown THEN
    PERFORM orders_proxy.raise_node_failure(SQLSTATE, SQLERRM);
END
$$;
CREATE VIEW orders.low_stock_view WITH (security_invoker = true) AS SELECT * FROM orders_proxy.low_stock_view();

-- ----------------------------------------------------------- grants --
-- The API roles call schema orders; the routing functions are theirs to
-- call only through it (PL/Proxy connects as the caller: USAGE on the server).
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA orders_proxy FROM PUBLIC;
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE format('GRANT USAGE ON SCHEMA orders, orders_proxy TO %I', r);
            EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA orders, orders_proxy TO %I', r);
            EXECUTE format('GRANT USAGE ON FOREIGN SERVER orders_nodes TO %I', r);
            EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA orders TO %I', r);
        END IF;
    END LOOP;
END
$$;
