
---------------------------------------------------------------------------
-- Erasure (0.45.0; doc/operations.md "Erasing a person's data"): what the
-- extension keeps of a customer who asks to be forgotten, overwritten or
-- deleted in one call of the owner's.  A PL/pgSQL body: the tables it
-- names are those of the files before and after this one.
---------------------------------------------------------------------------

-- erase_customer — overwrite what names or locates customer "customer_id"
-- (the customer row, its orders' addresses, notes and proofs, its
-- deliveries' feedback and proofs, the notes staff and accountants wrote
-- on its orders, its sites' client notes, its shop payloads) and delete
-- what only repeats it (staff notes on its orders, its workflow runs, the
-- notifications and outbox messages about it or its orders, the activity
-- log of it and its orders, this call's own rows included); its share
-- links are revoked.  The orders themselves, their items, money, history
-- and counts stay: the shop's record.  Refused while an order of the
-- customer is open (OR123: a delivery still needs the address) and for
-- an unknown customer (OR116); NULL is 22004.  The orders are locked
-- first, then the customer (a status change locks them in that order),
-- then the orders again: an order made meanwhile is seen.  Returns how
-- many rows of each table it changed or deleted.  Owner only: it runs
-- with the caller's rights.
CREATE FUNCTION orders.erase_customer(customer_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    who uuid := erase_customer.customer_id;
    order_ids uuid[];
    order_keys text[];
    open_orders text[];
    run_keys text[];
    done jsonb;
    n bigint;
BEGIN
    IF who IS NULL THEN
        RAISE EXCEPTION 'orders.erase_customer: customer_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM 1 FROM orders.orders o WHERE o.customer_id = who ORDER BY o.id FOR UPDATE;
    PERFORM 1 FROM orders.customers c WHERE c.id = who FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'customer % does not exist', who USING ERRCODE = 'OR116';
    END IF;
    SELECT coalesce(array_agg(x.id ORDER BY x.id), '{}') INTO order_ids
      FROM (SELECT o.id FROM orders.orders o WHERE o.customer_id = who ORDER BY o.id FOR UPDATE) x;
    order_keys := order_ids::text[];
    SELECT array_agg(o.order_number ORDER BY o.created_at, o.order_number) INTO open_orders
      FROM orders.orders o
      JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
     WHERE o.id = ANY (order_ids) AND s.category = 'open';
    IF open_orders IS NOT NULL THEN
        RAISE EXCEPTION 'customer % has % open orders: it can be erased once they are closed', who, cardinality(open_orders)
            USING ERRCODE = 'OR123',
                  DETAIL = format('Open: %s%s.', array_to_string(open_orders[1:5], ', '),
                                  CASE WHEN cardinality(open_orders) > 5 THEN ', ...' ELSE '' END),
                  HINT = 'Deliver, complete or cancel them first: an open order still needs its address.';
    END IF;

    UPDATE orders.customers c
       SET full_name = 'Erased customer', email = NULL, phone = NULL, address = NULL, city = NULL,
           area = NULL, postal_code = NULL, notes = NULL, tags = '[]', account_id = NULL
     WHERE c.id = who;
    done := jsonb_build_object('customer', who, 'orders', cardinality(order_ids));
    UPDATE orders.orders o
       SET delivery_address = NULL, delivery_area = NULL, customer_notes = NULL, notes = NULL,
           delivery_proof = NULL, return_reason = NULL
     WHERE o.id = ANY (order_ids)
       AND (o.delivery_address IS NOT NULL OR o.delivery_area IS NOT NULL OR o.customer_notes IS NOT NULL
            OR o.notes IS NOT NULL OR o.delivery_proof IS NOT NULL OR o.return_reason IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('orders_overwritten', n);
    UPDATE orders.order_history h SET notes = NULL WHERE h.order_id = ANY (order_ids) AND h.notes IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('order_history', n);
    DELETE FROM orders.order_notes x WHERE x.order_id = ANY (order_ids);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('order_notes', n);
    UPDATE orders.deliveries d
       SET customer_feedback = NULL, proof_of_delivery = NULL, signature_url = NULL, photo_url = NULL, route_data = NULL
     WHERE d.order_id = ANY (order_ids)
       AND (d.customer_feedback IS NOT NULL OR d.proof_of_delivery IS NOT NULL OR d.signature_url IS NOT NULL
            OR d.photo_url IS NOT NULL OR d.route_data IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('deliveries', n);
    -- an accountant's notes; the lifecycle's own rows say "automatic: order <number>"
    UPDATE orders.financial_transactions f SET notes = NULL
     WHERE f.order_id = ANY (order_ids) AND NOT f.automatic AND f.notes IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('financial_transactions', n);
    -- its orders' sites, and the sites it reviewed as an agency's client
    UPDATE orders.order_site_selections s SET client_notes = NULL
      FROM orders.order_groups g
     WHERE g.id = s.order_group_id AND (g.order_id = ANY (order_ids) OR g.client_id = who)
       AND s.client_notes IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('order_site_selections', n);
    UPDATE orders.order_share_tokens t
       SET revoked_at = coalesce(t.revoked_at, now()), converted_to_account_id = NULL
     WHERE (t.order_id = ANY (order_ids) OR t.customer_id = who)
       AND (t.revoked_at IS NULL OR t.converted_to_account_id IS NOT NULL);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('order_share_tokens', n);
    UPDATE orders.webhook_logs l SET request_payload = NULL
     WHERE l.order_created_id = ANY (order_ids) AND l.request_payload IS NOT NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('webhook_logs', n);
    WITH gone AS (DELETE FROM orders.workflow_executions x
                   WHERE x.customer_id = who OR x.order_id = ANY (order_ids) RETURNING x.id)
    SELECT coalesce(array_agg(gone.id::text), '{}') INTO run_keys FROM gone;
    done := done || jsonb_build_object('workflow_executions', cardinality(run_keys));
    -- a run's notifications and messages carry its order and customer (and name) in "data"
    DELETE FROM orders.notifications x
     WHERE x.data ->> 'customer_id' = who::text OR x.data ->> 'order_id' = ANY (order_keys)
        OR x.data ->> 'execution_id' = ANY (run_keys);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('notifications', n);
    DELETE FROM orders.outbox x
     WHERE x.payload ->> 'customer_id' = who::text OR x.payload -> 'data' ->> 'customer_id' = who::text
        OR x.payload -> 'data' ->> 'order_id' = ANY (order_keys);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('outbox', n);
    -- last: the rows the writes above logged go with the others (a deleted
    -- order's row is found by the customer it had)
    DELETE FROM orders.activity_logs a
     WHERE a.entity_id = who::text OR a.entity_id = ANY (order_keys)
        OR a.details -> 'changes' -> 'customer_id' ->> 'old' = who::text
        OR a.details -> 'changes' -> 'customer_id' ->> 'new' = who::text;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN done || jsonb_build_object('activity_logs', n);
END
$$;
COMMENT ON FUNCTION orders.erase_customer(uuid) IS
    'Erase a customer who asked to be forgotten: personal data overwritten or deleted, orders and money kept (doc/operations.md); owner only';
REVOKE ALL ON FUNCTION orders.erase_customer(uuid) FROM PUBLIC;
