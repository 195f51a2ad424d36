
---------------------------------------------------------------------------
-- Erasure (0.45.0; doc/operations.md "Erasing a person's data"): what the
-- extension keeps of a customer who asks to be forgotten, overwritten or
-- deleted in one call of the owner's.  A PL/pgSQL body: the tables it
-- names are those of the files before and after this one.
---------------------------------------------------------------------------

-- erase_customer — overwrite what names or locates customer "customer_id"
-- (the customer row, its orders' addresses, notes and proofs, its
-- deliveries' feedback and proofs, the notes staff and accountants wrote
-- on its orders, its sites' client and internal notes, its share links'
-- metadata, its shop payloads; its login's id where it was recorded as
-- an actor on its orders and the orders of the groups it is the client
-- of) and delete what only repeats it (staff notes on its orders, its
-- workflow runs, the notifications and outbox messages about it or its
-- orders, the activity log of it and its orders, this call's own rows
-- included); its share links are revoked.  The orders themselves, their
-- items, money, history and counts stay: the shop's record.  Refused
-- while an order of the customer is open (OR123: a delivery still needs
-- the address), for an unknown customer (OR116), for NULL (22004), at
-- REPEATABLE READ or SERIALIZABLE (25000: rows written meanwhile by
-- others would be missed), and for a caller whom row level security
-- holds on any table it erases in (42501: a policy that hides rows, or
-- allows no UPDATE or DELETE, would leave them — a partial erasure
-- reported as done).  The orders are locked first, then the customer (a
-- status change locks them in that order), then the orders again: an
-- order made meanwhile is seen.  Returns how many rows of each table it
-- changed or deleted.  Owner only: it runs with the caller's rights.
CREATE FUNCTION orders.erase_customer(customer_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    who uuid := erase_customer.customer_id;
    order_ids uuid[];
    order_keys text[];
    reach uuid[];          -- its orders and those of the groups it is the client of
    account text;
    more bigint;
    open_orders text[];
    run_keys text[];
    done jsonb;
    n bigint;
BEGIN
    IF who IS NULL THEN
        RAISE EXCEPTION 'orders.erase_customer: customer_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM orders.require_read_committed('orders.erase_customer',
        'It reads what others committed after taking its locks; at REPEATABLE READ rows they wrote meanwhile would stay.');
    IF EXISTS (SELECT 1 FROM unnest(ARRAY['customers', 'orders', 'order_items', 'order_history', 'order_notes', 'deliveries',
                                          'financial_transactions', 'order_groups', 'order_site_selections',
                                          'order_share_tokens', 'webhook_logs', 'workflow_executions', 'notifications',
                                          'outbox', 'activity_logs', 'lifecycle_states']) t
                WHERE row_security_active('orders.' || t)) THEN
        RAISE EXCEPTION 'orders.erase_customer runs as the owner of the extension''s tables, or a role that bypasses row level security'
            USING ERRCODE = '42501',
                  DETAIL = format('Row level security applies to %s here: rows it hides or lets no one change would stay.', current_user),
                  HINT = 'Call it as the extension''s owner (a SECURITY DEFINER function of yours must be owned by it).';
    END IF;
    -- in an API request the column rules of the orders hold for all but the
    -- owner (its review stamp): refused here rather than by them halfway
    IF orders.api_request() AND NOT orders.by_maintainer('orders.orders'::regclass) THEN
        RAISE EXCEPTION 'orders.erase_customer in an API request runs as the owner of the extension''s tables only'
            USING ERRCODE = '42501',
                  HINT = 'Call it as the extension''s owner (a SECURITY DEFINER function of yours must be owned by it).';
    END IF;
    PERFORM 1 FROM orders.orders o WHERE o.customer_id = who ORDER BY o.id FOR UPDATE;
    -- (a uuid's text is lower case; a JWT sub may carry capitals: compared lowered)
    SELECT c.account_id::text INTO account FROM orders.customers c WHERE c.id = who FOR UPDATE;
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

    SELECT order_ids || coalesce(array_agg(DISTINCT g.order_id), '{}') INTO reach
      FROM orders.order_groups g WHERE g.client_id = who;
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
    UPDATE orders.order_site_selections s
       SET client_notes = NULL, internal_notes = NULL,
           reviewed_by = CASE WHEN lower(s.reviewed_by) = account THEN 'erased' ELSE s.reviewed_by END
      FROM orders.order_groups g
     WHERE g.id = s.order_group_id AND (g.order_id = ANY (order_ids) OR g.client_id = who)
       AND (s.client_notes IS NOT NULL OR s.internal_notes IS NOT NULL OR lower(s.reviewed_by) = account);
    GET DIAGNOSTICS n = ROW_COUNT;
    done := done || jsonb_build_object('order_site_selections', n);
    UPDATE orders.order_share_tokens t
       SET revoked_at = coalesce(t.revoked_at, now()), converted_to_account_id = NULL, metadata = '{}',
           created_by = CASE WHEN lower(t.created_by) = account THEN 'erased' ELSE t.created_by END
     WHERE (t.order_id = ANY (order_ids) OR t.customer_id = who)
       AND (t.revoked_at IS NULL OR t.converted_to_account_id IS NOT NULL OR t.metadata <> '{}'
            OR lower(t.created_by) = account);
    GET DIAGNOSTICS n = ROW_COUNT;
    -- the links of its client groups' orders it reviewed through ("share:<link>"):
    -- their metadata (whom they were sent to) goes; the links stay the agency's
    UPDATE orders.order_share_tokens t SET metadata = '{}'
     WHERE t.order_id = ANY (reach) AND t.metadata <> '{}'
       AND EXISTS (SELECT 1 FROM orders.order_site_selections s JOIN orders.order_groups g ON g.id = s.order_group_id
                    WHERE g.client_id = who AND s.reviewed_by = 'share:' || t.id);
    GET DIAGNOSTICS more = ROW_COUNT;
    done := done || jsonb_build_object('order_share_tokens', n + more);
    -- its login's id where it was recorded as the actor (the JWT subject)
    IF account IS NOT NULL THEN
        UPDATE orders.order_history h SET changed_by = 'erased' WHERE h.order_id = ANY (reach) AND lower(h.changed_by) = account;
        GET DIAGNOSTICS n = ROW_COUNT;
        UPDATE orders.orders o SET reviewed_by = 'erased' WHERE o.id = ANY (reach) AND lower(o.reviewed_by) = account;
        GET DIAGNOSTICS more = ROW_COUNT;
        n := n + more;
        UPDATE orders.order_items i SET snapshot = jsonb_set(i.snapshot, '{approved_by}', '"erased"')
         WHERE i.order_id = ANY (reach) AND lower(i.snapshot ->> 'approved_by') = account;
        GET DIAGNOSTICS more = ROW_COUNT;
        done := done || jsonb_build_object('actor_stamps', n + more);
    END IF;
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
        OR a.details -> 'changes' -> 'customer_id' ->> 'new' = who::text
        -- the orders of the groups it is the client of: what it did there, its id as their reviewer
        OR (a.entity_id = ANY (reach::text[])
            AND (lower(a.actor) = account OR lower(a.details -> 'changes' -> 'reviewed_by' ->> 'old') = account
                 OR lower(a.details -> 'changes' -> 'reviewed_by' ->> 'new') = account));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN done || jsonb_build_object('activity_logs', n);
END
$$;
COMMENT ON FUNCTION orders.erase_customer(uuid) IS
    'Erase a customer who asked to be forgotten: personal data overwritten or deleted, orders and money kept (doc/operations.md); owner only';
REVOKE ALL ON FUNCTION orders.erase_customer(uuid) FROM PUBLIC;
