-- orders 0.21.0 -> 0.22.0
--  * orders.move_stock(movement_id, product_id, quantity, variant_id,
--    reason, transfer_partition) moves stock by hand exactly once per
--    movement id (goods received, a count corrected, a transfer between
--    the partitions of a scaled-out cluster), never below 0 (OR050), and
--    records it in orders.stock_movements.
--  * grant_api grants the API's authenticated role the function and the
--    movements (read by products.view); the roles it configured get them now.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.22.0'" to load this file. \quit
---------------------------------------------------------------------------
-- Stock moved by hand, exactly once per movement id (0.22.0;
-- doc/stock_and_money.md "Moving stock"): goods received, a count
-- corrected, units transferred between the partitions of a scaled-out
-- cluster (doc/scale-out.md "Stock").  A client that retries a call —
-- PostgREST after a timeout, a warehouse webhook — moves the units once.
---------------------------------------------------------------------------

CREATE TABLE orders.stock_movements (
    id                  uuid PRIMARY KEY,
    product_id          uuid NOT NULL REFERENCES orders.products (id) ON DELETE CASCADE,
    variant_id          uuid,
    quantity            integer NOT NULL CHECK (quantity <> 0),
    stock_after         integer,
    reason              text CHECK (length(reason) <= 500),
    transfer_partition  integer CHECK (transfer_partition BETWEEN 0 AND 4095),
    moved_by            text NOT NULL DEFAULT orders.current_actor(),
    created_at          timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (product_id, variant_id) REFERENCES orders.product_variants (product_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE orders.stock_movements IS
    'Stock moved by orders.move_stock, one row per movement id (written by the extension only)';
COMMENT ON COLUMN orders.stock_movements.stock_after IS
    'Units of the product (or variant) in stock right after the movement';
COMMENT ON COLUMN orders.stock_movements.transfer_partition IS
    'For a transfer between partitions (doc/scale-out.md): the partition the units went to (quantity < 0) or came from (> 0)';
CREATE INDEX stock_movements_product_idx ON orders.stock_movements (product_id, created_at);
CREATE INDEX stock_movements_transfer_idx ON orders.stock_movements (transfer_partition, created_at)
    WHERE transfer_partition IS NOT NULL;

-- staff who may see products see how their stock moved
ALTER TABLE orders.stock_movements ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.stock_movements USING ((SELECT orders.has_permission('products', 'view')));
REVOKE ALL ON orders.stock_movements FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('orders.stock_movements', '');

-- move_stock — add "quantity" units (negative: take them) to the stock of a
-- product, or of one of its variants, once per movement_id: the same id
-- again returns the first movement's row and moves nothing (also when two
-- calls race: the second waits for the first; at REPEATABLE READ it then
-- fails with 40001 — retry); the same id with other values is refused
-- (OR119).  Never below 0: taking more than is in stock is refused (OR050,
-- naming the product, its SKU and both numbers to a caller who may read
-- products) under the product's row lock, so two movements (or a movement
-- and an order's confirmation) racing for the last units never both
-- succeed.  An unknown product or variant: OR120.  transfer_partition (the
-- other side of a transfer between partitions) must name another
-- partition than this database's (22023).  In an API request the caller
-- needs products.edit (42501); the owner, DBAs and jobs may always.
-- Returns the movement, with the stock right after it.
CREATE FUNCTION orders.move_stock(movement_id uuid, product_id uuid, quantity integer, variant_id uuid DEFAULT NULL,
                                  reason text DEFAULT NULL, transfer_partition integer DEFAULT NULL)
    RETURNS orders.stock_movements
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.stock_movements;
    after integer;
    what text;
    units integer;
BEGIN
    IF movement_id IS NULL OR product_id IS NULL OR quantity IS NULL THEN
        RAISE EXCEPTION 'orders.move_stock: movement_id, product_id and quantity must not be NULL' USING ERRCODE = '22004';
    ELSIF quantity = 0 THEN
        RAISE EXCEPTION 'orders.move_stock: quantity must not be 0' USING ERRCODE = '22023';
    ELSIF length(reason) > 500 THEN
        RAISE EXCEPTION 'orders.move_stock: reason must be at most 500 characters, not %', length(reason)
            USING ERRCODE = '22023';
    ELSIF transfer_partition NOT BETWEEN 0 AND 4095 OR transfer_partition = orders.partition_of(orders.new_id()) THEN
        RAISE EXCEPTION 'orders.move_stock: transfer_partition must be another partition (0 to 4095), not %', transfer_partition
            USING ERRCODE = '22023', DETAIL = 'This database is partition ' || orders.partition_of(orders.new_id()) || '.';
    ELSIF orders.api_request() AND NOT orders.has_permission('products', 'edit') THEN
        RAISE EXCEPTION 'moving stock needs the products.edit permission' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM orders.products p WHERE p.id = move_stock.product_id) THEN
        RAISE EXCEPTION 'product % does not exist', product_id USING ERRCODE = 'OR120';
    ELSIF variant_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM orders.product_variants v
                                                  WHERE v.id = move_stock.variant_id AND v.product_id = move_stock.product_id) THEN
        RAISE EXCEPTION 'product % has no variant %', product_id, variant_id USING ERRCODE = 'OR120';
    END IF;
    -- the movement's id first: a second call with this id waits here for
    -- the first one's transaction, then finds its row
    INSERT INTO orders.stock_movements AS s (id, product_id, variant_id, quantity, reason, transfer_partition)
    VALUES (movement_id, move_stock.product_id, move_stock.variant_id, move_stock.quantity, move_stock.reason,
            move_stock.transfer_partition)
    ON CONFLICT (id) DO NOTHING
    RETURNING * INTO m;
    IF m.id IS NULL THEN
        SELECT * INTO m FROM orders.stock_movements s WHERE s.id = movement_id;
        IF (m.product_id, m.variant_id, m.quantity, m.transfer_partition)
           IS DISTINCT FROM (move_stock.product_id, move_stock.variant_id, move_stock.quantity, move_stock.transfer_partition) THEN
            RAISE EXCEPTION 'stock movement % was already made with other values', movement_id
                USING ERRCODE = 'OR119',
                      DETAIL = format('It moved %s units of product %s%s.', m.quantity, m.product_id,
                                      coalesce(' (variant ' || m.variant_id || ')', '')),
                      HINT = 'Use a new movement id for another movement; the same id again only repeats the answer.';
        END IF;
        RETURN m;
    END IF;
    -- the row lock decides between racing takers; the product (variant)
    -- exists: the movement's foreign key holds it
    IF variant_id IS NULL THEN
        UPDATE orders.products p SET stock_quantity = p.stock_quantity + move_stock.quantity
         WHERE p.id = move_stock.product_id AND p.stock_quantity + move_stock.quantity >= 0
        RETURNING p.stock_quantity INTO after;
    ELSE
        UPDATE orders.product_variants v SET stock_quantity = v.stock_quantity + move_stock.quantity
         WHERE v.id = move_stock.variant_id AND v.product_id = move_stock.product_id
           AND v.stock_quantity + move_stock.quantity >= 0
        RETURNING v.stock_quantity INTO after;
    END IF;
    IF after IS NULL THEN
        IF variant_id IS NULL THEN
            SELECT format('"%s" (SKU %s)', p.name, p.sku), p.stock_quantity INTO what, units
              FROM orders.products p WHERE p.id = move_stock.product_id;
        ELSE
            SELECT format('"%s / %s" (SKU %s)', p.name, v.name, v.sku), v.stock_quantity INTO what, units
              FROM orders.product_variants v JOIN orders.products p ON p.id = v.product_id
             WHERE v.id = move_stock.variant_id;
        END IF;
        IF orders.api_request() AND NOT orders.has_permission('products', 'view') THEN
            -- as the lifecycle's refusal: only the caller's own ids to one
            -- who may not read the product
            what := coalesce(variant_id::text, product_id::text);
            units := NULL;
        END IF;
        RAISE EXCEPTION 'insufficient stock for product %: % needed, % in stock', what, -(quantity::bigint),
                        coalesce(units::text, 'not enough')
            USING ERRCODE = 'OR050', DETAIL = 'Stock never goes below 0; nothing was moved.';
    END IF;
    UPDATE orders.stock_movements s SET stock_after = after WHERE s.id = m.id RETURNING * INTO m;
    RETURN m;
END
$$;
REVOKE ALL ON FUNCTION orders.move_stock(uuid, uuid, integer, uuid, text, integer) FROM PUBLIC;

-- grant_api: the movements and move_stock for the authenticated role
CREATE OR REPLACE FUNCTION orders.grant_api(anon_role name DEFAULT 'anon', authenticated_role name DEFAULT 'authenticated')
    RETURNS void
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    role_name name;
BEGIN
    FOREACH role_name IN ARRAY ARRAY[anon_role, authenticated_role] LOOP
        SELECT * INTO r FROM pg_roles WHERE rolname = role_name;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'orders.grant_api: role "%" does not exist', role_name
                USING ERRCODE = '42704', HINT = 'CREATE ROLE ' || quote_ident(role_name) || ' NOLOGIN;';
        ELSIF r.rolsuper OR r.rolbypassrls
              OR pg_has_role(r.oid, (SELECT c.relowner FROM pg_class c WHERE c.oid = 'orders.orders'::regclass), 'MEMBER') THEN
            RAISE EXCEPTION 'orders.grant_api: role "%" would bypass row level security', role_name
                USING ERRCODE = '22023',
                      DETAIL = 'It is a superuser, has BYPASSRLS or is a member of the extension''s owner.',
                      HINT = 'API roles must be plain NOLOGIN roles.';
        END IF;
    END LOOP;

    -- anon: the lifecycle definitions and the public functions (PUBLIC
    -- already has them; granted again so revoking from PUBLIC keeps the API)
    EXECUTE format('GRANT USAGE ON SCHEMA orders TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.lifecycles, orders.lifecycle_states, orders.lifecycle_transitions,
                    orders.lifecycle_graph TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.current_actor(), orders.status_category(text, text),
                    orders.available_slots(uuid, timestamptz, timestamptz), orders.allowed_transitions(uuid),
                    orders.has_permission(text, text) TO %I, %I', anon_role, authenticated_role);

    -- authenticated: tables (policies decide the rows), views, functions
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orders.lifecycles, orders.lifecycle_states,
                    orders.lifecycle_transitions, orders.customers, orders.staff, orders.products,
                    orders.product_variants, orders.orders, orders.order_items, orders.order_notes,
                    orders.leads, orders.service_capacity, orders.deliveries TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON orders.financial_transactions, orders.expenses TO %I',
                   authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.order_history, orders.slot_reservations, orders.staff_role_defaults,
                    orders.order_details_view, orders.agent_performance_view, orders.order_summary,
                    orders.low_stock_view, orders.todays_order_summary, orders.daily_financial_summary,
                    orders.ledger_discrepancies TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orders.order_groups, orders.order_requirements TO %I',
                   authenticated_role);
    -- columns no API role may touch: internal notes of sites, token hashes
    EXECUTE format('GRANT SELECT (id, order_group_id, domain, domain_id, metrics, status, target_page_url, anchor_text,
                                  reviewed_at, reviewed_by, client_notes, order_item_id, created_at, updated_at),
                          INSERT (id, order_group_id, domain, domain_id, metrics, status, target_page_url, anchor_text,
                                  client_notes),
                          UPDATE (status, client_notes, target_page_url, anchor_text, domain, domain_id, metrics),
                          DELETE
                    ON orders.order_site_selections TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT (id, order_id, expires_at, allowed_actions, created_by, used_at,
                                  converted_to_account_id, revoked_at, metadata, created_at)
                    ON orders.order_share_tokens TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.lifecycle_gates TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.shared_order(text), orders.share_review_sites(text, uuid, jsonb),
                    orders.convert_share_token(text) TO %I, %I', anon_role, authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.start_analysis(uuid, uuid), orders.complete_analysis(uuid, jsonb),
                    orders.review_sites(uuid, jsonb), orders.create_share_token(uuid, interval, text[], jsonb),
                    orders.revoke_share_token(uuid), orders.site_internal_notes(uuid),
                    orders.set_site_internal_notes(uuid, text) TO %I', authenticated_role);
    -- notifications (0.9.0): staff read, mark read and delete their own
    EXECUTE format('GRANT SELECT, DELETE, UPDATE (is_read) ON orders.notifications TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.unread_notifications(), orders.mark_notifications_read(uuid[]) TO %I',
                   authenticated_role);
    -- workflows (0.10.0): staff with the workflows permissions define them
    -- and read their runs; runs are written by the extension
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orders.workflows TO %I', authenticated_role);
    EXECUTE format('GRANT SELECT ON orders.workflow_executions TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.run_workflow(uuid, uuid, uuid) TO %I', authenticated_role);
    -- stock movements (0.22.0): staff with products.edit move stock, staff
    -- with products.view read how it moved
    EXECUTE format('GRANT SELECT ON orders.stock_movements TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.move_stock(uuid, uuid, integer, uuid, text, integer) TO %I',
                   authenticated_role);
    EXECUTE format('GRANT USAGE ON SEQUENCE orders.order_number_seq TO %I', authenticated_role);
    EXECUTE format('GRANT EXECUTE ON FUNCTION orders.transition(uuid, text, text, text),
                    orders.assign_lead(uuid, uuid), orders.order_stats(),
                    orders.reserve_time_slot(uuid, integer, integer), orders.confirm_booking(uuid, uuid),
                    orders.release_reservation(uuid),
                    orders.current_customer_ids(), orders.current_staff_id(), orders.current_staff_role(),
                    orders.actor_account(), orders.staff_sees_order(uuid, uuid, text, text),
                    orders.customer_may_edit_items(uuid), orders.agent_serves_customer(uuid),
                    orders.sees_order(uuid, uuid, uuid, text, text), orders.sees_customer(uuid, uuid),
                    orders.recent_orders(text[], integer), orders.agent_active_deliveries(uuid),
                    orders.unassigned_orders_in_area(text), orders.customer_order_history(uuid, integer),
                    orders.vip_customers(text, text) TO %I', authenticated_role);

    INSERT INTO orders.api_roles (role_oid, kind)
    VALUES (anon_role::regrole, 'anon'), (authenticated_role::regrole, 'authenticated')
    ON CONFLICT (role_oid) DO UPDATE SET kind = EXCLUDED.kind
        WHERE orders.api_roles.kind IS DISTINCT FROM EXCLUDED.kind;
END
$$;

DO $$
DECLARE
    r regrole;
BEGIN
    FOR r IN SELECT a.role_oid FROM orders.api_roles a WHERE a.kind = 'authenticated' LOOP
        EXECUTE pg_catalog.format('GRANT SELECT ON orders.stock_movements TO %s', r);
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION orders.move_stock(uuid, uuid, integer, uuid, text, integer) TO %s', r);
    END LOOP;
END
$$;
