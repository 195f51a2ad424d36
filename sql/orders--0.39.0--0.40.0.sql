-- orders 0.39.0 -> 0.40.0
--  * Length bounds on the indexed text columns writers fill: customers'
--    email (320), phone (64) and area (255), staff's email (320),
--    products' and variants' SKU (255) and products' category (200),
--    items' SKU (255), orders' delivery_area (255), external_id (255) and
--    webhook_source (100), expenses' category (200), products' name (500:
--    its full-text index took 1 MB of words as 54000 too), lifecycle and
--    status names (63, in every column that holds one): a 40 kB value was the
--    index's 54000 "index row size … exceeds maximum" (HTTP 500 under
--    PostgREST), now the column's CHECK, 23514 (HTTP 400).  Rows already
--    longer stop the update (23514, naming every column and how many rows;
--    shorten them, then update): a bound left NOT VALID would not survive
--    a dump — the restore's CREATE EXTENSION makes it valid and its COPY
--    would refuse the rows.
--  * check_assignment and check_workflow take a restore's rows as dumped
--    (orders.restoring): an order assigned to an agent deactivated since
--    (OR041), a workflow written under older rules (a step id with ':',
--    a webhook URL the update to 0.39.0 stopped: OR111) or whose webhook
--    trigger's webhook was deleted since failed the restore's COPY — a
--    plain restore stopped there, pg_restore lost the table.
--  * check_workflow holds the author's staff row FOR SHARE (was FOR KEY
--    SHARE, which a deactivation — a NO KEY UPDATE — neither waited for
--    nor was held off by): an author's edit switching on an inactive
--    workflow, or taking over another admin's, beside its deactivation
--    left the workflow active under an inactive author; at REPEATABLE
--    READ a deactivation committed after the snapshot is now 40001.
--  * lock_order_leads (new, C) and leads_follow_order: a move of an order
--    to another customer locks the order's leads by one advisory lock per
--    order (as before, same keys) — a customer moving 20,000 of its orders
--    in one PATCH ran the cluster's lock table out (53200 for every
--    session to its commit); lead statements over many orders likewise
--    (library).  An API request now takes at most 200 such locks (OR121,
--    nothing done: split the request); a DBA outside the API as many as it
--    needs.
--  * create_share_token: allowed_actions must be a list ('{{view},{view}}'
--    was stored as given; 22023 now), and expires_in at most 90 days from
--    now as a span ('3 mons' compared as 90 days but ran up to 92).
--  * (library) a JWT subject longer than 255 bytes is refused (22023): a
--    40 kB one met the slot holds' holder index (54000).
--  * (library) orders.restoring and the C triggers' restore test ask about
--    the session's role (SET ROLE's), not a SECURITY DEFINER function's:
--    inside the owner's checks any loader with BYPASSRLS was the owner.

\echo Use "ALTER EXTENSION orders UPDATE TO '0.40.0'" to load this file. \quit

DO $upgrade$
DECLARE
    bound record;
    n bigint;
    long_rows text := '';
BEGIN
    FOR bound IN
        SELECT * FROM (VALUES
            ('customers', 'email', 320), ('customers', 'phone', 64), ('customers', 'area', 255),
            ('staff', 'email', 320),
            ('products', 'sku', 255), ('product_variants', 'sku', 255), ('products', 'category', 200),
            ('order_items', 'sku', 255),
            ('orders', 'delivery_area', 255), ('orders', 'external_id', 255), ('orders', 'webhook_source', 100),
            ('expenses', 'category', 200), ('products', 'name', 500),
            ('lifecycles', 'name', 63), ('lifecycle_states', 'status', 63)) b (tab, col, len)
    LOOP
        EXECUTE format('SELECT count(*) FROM orders.%I WHERE length(%I) > %s', bound.tab, bound.col, bound.len) INTO n;
        IF n > 0 THEN
            long_rows := long_rows || format('%sorders.%s.%s: %s rows longer than %s characters',
                                             CASE WHEN long_rows = '' THEN '' ELSE '; ' END,
                                             bound.tab, bound.col, n, bound.len);
        END IF;
    END LOOP;
    IF long_rows <> '' THEN
        RAISE EXCEPTION 'orders 0.40.0 bounds the lengths of indexed text columns, and rows are longer'
            USING ERRCODE = '23514', DETAIL = long_rows || '.',
                  HINT = 'Shorten them (e.g. SELECT id FROM orders.customers WHERE length(email) > 320), then ALTER EXTENSION orders UPDATE again.';
    END IF;
END
$upgrade$;

ALTER TABLE orders.customers
    ADD CONSTRAINT customers_email_check CHECK (length(email) <= 320),
    ADD CONSTRAINT customers_phone_check CHECK (length(phone) <= 64),
    ADD CONSTRAINT customers_area_check CHECK (length(area) <= 255);
ALTER TABLE orders.staff ADD CONSTRAINT staff_email_check CHECK (length(email) <= 320);
ALTER TABLE orders.products
    ADD CONSTRAINT products_sku_check CHECK (length(sku) <= 255),
    ADD CONSTRAINT products_category_check CHECK (length(category) <= 200);
ALTER TABLE orders.product_variants ADD CONSTRAINT product_variants_sku_check CHECK (length(sku) <= 255);
ALTER TABLE orders.order_items ADD CONSTRAINT order_items_sku_check CHECK (length(sku) <= 255);
ALTER TABLE orders.orders
    ADD CONSTRAINT orders_delivery_area_check CHECK (length(delivery_area) <= 255),
    ADD CONSTRAINT orders_external_id_check CHECK (length(external_id) <= 255),
    ADD CONSTRAINT orders_webhook_source_check CHECK (length(webhook_source) <= 100);
ALTER TABLE orders.expenses
    DROP CONSTRAINT expenses_category_check,
    ADD CONSTRAINT expenses_category_check CHECK (category <> '' AND length(category) <= 200);
ALTER TABLE orders.products ADD CONSTRAINT products_name_check CHECK (length(name) <= 500);
ALTER TABLE orders.lifecycles
    DROP CONSTRAINT lifecycles_name_check,
    ADD CONSTRAINT lifecycles_name_check CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$');
ALTER TABLE orders.lifecycle_states
    DROP CONSTRAINT lifecycle_states_status_check,
    ADD CONSTRAINT lifecycle_states_status_check CHECK (status ~ '^[a-z][a-z0-9_]{0,62}$'),
    ADD CONSTRAINT lifecycle_states_lifecycle_check CHECK (length(lifecycle) <= 63);
ALTER TABLE orders.lifecycle_transitions
    ADD CONSTRAINT lifecycle_transitions_lifecycle_check CHECK (length(lifecycle) <= 63),
    ADD CONSTRAINT lifecycle_transitions_from_status_check CHECK (length(from_status) <= 63),
    ADD CONSTRAINT lifecycle_transitions_to_status_check CHECK (length(to_status) <= 63);

CREATE OR REPLACE FUNCTION orders.check_assignment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s orders.staff;
BEGIN
    IF orders.restoring(TG_RELID) THEN
        RETURN NEW;
    END IF;
    IF NEW.assigned_agent_id IS NOT NULL
       AND NEW.assigned_agent_id IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.assigned_agent_id END) THEN
        SELECT * INTO s FROM orders.staff WHERE id = NEW.assigned_agent_id FOR SHARE;
        IF FOUND AND s.role <> 'delivery_agent' THEN
            RAISE EXCEPTION 'order "%": % (role %) is not a delivery agent', NEW.order_number, s.full_name, s.role
                USING ERRCODE = 'OR040', HINT = 'Assign a staff member whose role is delivery_agent.';
        ELSIF FOUND AND NOT s.is_active THEN
            RAISE EXCEPTION 'order "%": delivery agent % is inactive', NEW.order_number, s.full_name
                USING ERRCODE = 'OR041', HINT = 'Reactivate the agent or choose an active one.';
        END IF;
    END IF;
    IF NEW.assigned_rep_id IS NOT NULL
       AND NEW.assigned_rep_id IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.assigned_rep_id END) THEN
        SELECT * INTO s FROM orders.staff WHERE id = NEW.assigned_rep_id FOR SHARE;
        IF FOUND AND s.role NOT IN ('customer_rep', 'manager', 'admin') THEN
            RAISE EXCEPTION 'order "%": % (role %) is not a customer rep', NEW.order_number, s.full_name, s.role
                USING ERRCODE = 'OR040', HINT = 'Assign a customer_rep (or a manager or admin).';
        ELSIF FOUND AND NOT s.is_active THEN
            RAISE EXCEPTION 'order "%": customer rep % is inactive', NEW.order_number, s.full_name
                USING ERRCODE = 'OR041';
        END IF;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION orders.check_workflow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.40.0) a restore (orders.restoring) loads the rows as dumped: a
    -- workflow written under older rules (a step id with ':', a webhook URL
    -- the update to 0.39.0 stopped) or whose trigger's webhook was deleted
    -- since failed the COPY, and with it every workflow and run
    IF orders.restoring(TG_RELID) THEN
        RETURN NEW;
    END IF;
    -- (0.29.0) the policies' rights first: this trigger runs before them, and
    -- a caller who may not write workflows heard what was wrong with its
    -- config instead — and whether a webhook id exists
    IF TG_OP = 'INSERT' AND orders.api_request() AND NOT orders.has_permission('workflows', 'create') THEN
        RAISE EXCEPTION 'creating workflows needs the workflows.create permission' USING ERRCODE = '42501';
    END IF;
    IF NEW.trigger_type NOT IN ('webhook', 'order_status', 'customer_tag', 'time_based', 'manual') THEN
        RAISE EXCEPTION 'unknown workflow trigger type %', left(NEW.trigger_type, 64)
            USING ERRCODE = 'OR110', HINT = 'Trigger types: order_status, customer_tag, webhook, time_based, manual.';
    END IF;
    -- (0.38.0) judged when written: a webhook deleted since no longer
    -- refuses every other change of the workflow (deleting its author
    -- deactivates it, and failed with OR110)
    IF NEW.trigger_config IS NOT NULL
       AND (TG_OP = 'INSERT' OR (NEW.trigger_type, NEW.trigger_config) IS DISTINCT FROM (OLD.trigger_type, OLD.trigger_config)) THEN
        PERFORM orders.check_workflow_trigger(NEW.trigger_type, NEW.trigger_config);
    END IF;
    -- (0.39.0) and when it is activated: a workflow stopped by the update to
    -- 0.39.0 (its webhook URL refused now) was switched on again unchecked
    IF NEW.workflow_steps IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.workflow_steps IS DISTINCT FROM OLD.workflow_steps
                                           OR (NEW.is_active AND NOT OLD.is_active)) THEN
        PERFORM orders.check_workflow_steps(NEW.workflow_steps);
    END IF;
    -- (0.38.0) created_by_user_id is the workflow's author, whose authority
    -- it runs with (workflow_author_refusal): its creator, then whoever
    -- last changed it through the API leaving it active or (0.39.0) changing
    -- what it does (its trigger or steps: a rep's PATCH that stopped an
    -- admin's workflow and rewrote its steps kept the admin as author) —
    -- what it does is theirs now.  A stop alone keeps the author (the
    -- deactivation of a deleted or deactivated author's workflows too), and
    -- so does the foreign key's SET NULL of a deleted author (its staff row
    -- gone).  (0.39.0) At any trigger depth: a caller's own trigger that
    -- rewrote steps (depth 2) kept the previous author.
    IF orders.api_request() THEN
        IF TG_OP = 'INSERT' OR NEW.is_active
           OR (NEW.trigger_type, NEW.trigger_config, NEW.workflow_steps)
              IS DISTINCT FROM (OLD.trigger_type, OLD.trigger_config, OLD.workflow_steps) THEN
            NEW.created_by_user_id := orders.current_staff_id();
            -- (0.39.0) an author there must be: an admin whose staff row was
            -- deleted while its request waited (or by its own statement's
            -- CTE) left an active workflow without one — a DBA's, which
            -- runs unchecked
            -- (0.39.0) and still active as the latest commit shows it, held
            -- so until this commits: an author's own edit that waited for
            -- its deactivation (which stopped its workflows) switched the
            -- workflow on again, with the identity of the statement's
            -- snapshot.  (0.40.0) FOR SHARE: a deactivation is a NO KEY
            -- UPDATE, which FOR KEY SHARE neither waited for nor held off —
            -- an edit switching on an inactive workflow, or taking over
            -- another's, went through beside it (the deactivation's stop
            -- saw the rows as before the edit); at REPEATABLE READ a
            -- deactivation committed after the snapshot is now 40001.
            IF NEW.created_by_user_id IS NULL
               OR NOT EXISTS (SELECT FROM orders.staff st WHERE st.id = NEW.created_by_user_id AND st.is_active FOR SHARE) THEN
                RAISE EXCEPTION 'workflow "%": only active staff change workflows through the API', left(NEW.name, 64)
                    USING ERRCODE = '42501', HINT = 'Whoever changes a workflow becomes its author, and runs it with their authority.';
            END IF;
            -- (0.39.0) tag steps are taken on only by staff who may change
            -- tags (customers.edit), as they run only for such an author: an
            -- agent with workflows.create tagged customers it may not edit
            IF NEW.workflow_steps @? '$[*] ? (@.type == "update_customer_tag")'
               AND NOT orders.has_permission('customers', 'edit') THEN
                RAISE EXCEPTION 'workflow "%": steps that change customers'' tags need the customers.edit permission', left(NEW.name, 64)
                    USING ERRCODE = '42501', HINT = 'Whoever changes a workflow becomes its author.';
            END IF;
        ELSIF NOT (NEW.created_by_user_id IS NULL AND OLD.created_by_user_id IS NOT NULL
                   AND NOT EXISTS (SELECT FROM orders.staff st WHERE st.id = OLD.created_by_user_id)) THEN
            NEW.created_by_user_id := OLD.created_by_user_id;
        END IF;
    ELSIF TG_OP = 'INSERT' AND NEW.created_by_user_id IS NULL THEN
        NEW.created_by_user_id := orders.current_staff_id();
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

-- (0.40.0) a move's lock of an order's leads, at most 200 per API request
-- (src/lead_move_lock.c): one advisory lock per moved order ran the
-- cluster's lock table out (53200) for a customer moving 20,000 orders
CREATE FUNCTION orders.lock_order_leads(order_id uuid) RETURNS void
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'orders_lock_order_leads_sql';
COMMENT ON FUNCTION orders.lock_order_leads(uuid) IS
    'A move''s lock of the order''s leads against lead statements, to the end of the transaction (leads_follow_order)';
REVOKE ALL ON FUNCTION orders.lock_order_leads(uuid) FROM PUBLIC;

CREATE OR REPLACE FUNCTION orders.leads_follow_order() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.lock_order_leads(NEW.id);
    UPDATE orders.leads l SET customer_id = NEW.customer_id
     WHERE l.order_id = NEW.id AND l.customer_id IS DISTINCT FROM NEW.customer_id;
    -- at REPEATABLE READ the UPDATE saw its snapshot's leads only: a lead
    -- committed after it (the lock waited for its statement) would stay
    IF pg_catalog.current_setting('transaction_isolation') IN ('repeatable read', 'serializable')
       AND orders.leads_left_behind(NEW.id, NEW.customer_id) THEN
        RAISE EXCEPTION 'could not serialize access: a lead of order % was written after this transaction''s snapshot',
                        NEW.order_number
            USING ERRCODE = '40001';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION orders.create_share_token(order_id uuid, expires_in interval DEFAULT '7 days',
                                          allowed_actions text[] DEFAULT '{view}', metadata jsonb DEFAULT '{}')
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    token text;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF create_share_token.order_id IS NULL THEN
        RAISE EXCEPTION 'orders.create_share_token: argument "order_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.may_share(create_share_token.order_id) THEN
        RAISE EXCEPTION 'order % does not exist', create_share_token.order_id
            USING ERRCODE = 'OR006',
                  HINT = 'Either no order has this id, row level security hides it, or you may not share it.';
    END IF;
    -- (0.40.0) and as a span from now: '3 mons' compares as 90 days but
    -- ran up to 92 ('1 mon -30 days' compares as 0 but may end tomorrow)
    IF expires_in IS NULL OR expires_in <= interval '0' OR expires_in > interval '90 days'
       OR now() + expires_in > now() + interval '90 days' OR now() + expires_in <= now() THEN
        RAISE EXCEPTION 'orders.create_share_token: expires_in must be between 0 and 90 days'
            USING ERRCODE = '22023';
    END IF;
    -- (0.40.0) a list: '{{view},{view}}' was stored as given
    IF cardinality(allowed_actions) = 0 OR array_ndims(allowed_actions) <> 1
       OR NOT allowed_actions <@ ARRAY['view', 'approve', 'convert'] THEN
        RAISE EXCEPTION 'orders.create_share_token: allowed_actions must be some of view, approve, convert, not %',
                        left(allowed_actions::text, 100)
            USING ERRCODE = '22023';
    END IF;
    -- (0.37.0) what a link carries for the marketing (UTM and the like) is
    -- small: it was unbounded, a store of any size for whoever may share
    IF octet_length(create_share_token.metadata::text) > 4096 THEN
        RAISE EXCEPTION 'orders.create_share_token: metadata may have at most 4096 bytes, not %',
                        octet_length(create_share_token.metadata::text)
            USING ERRCODE = '22001';
    END IF;
    -- (0.28.0) a link that converts hands the order's customer row to
    -- whoever redeems it: staff who may edit customers make those (a
    -- delivery agent made one for a shop customer and took it over)
    -- (0.35.0) by admins only, as customers.account_id is written (0.29.0):
    -- a customer rep made one for a shop customer without a login in its
    -- scope, converted it with another account of its own and read that
    -- customer's other orders
    IF 'convert' = ANY (allowed_actions) AND orders.api_request() AND orders.current_staff_role() IS DISTINCT FROM 'admin' THEN
        RAISE EXCEPTION 'a share link that converts (allowed_actions "convert") is made by admins'
            USING ERRCODE = '42501',
                  HINT = 'Leave "convert" out: the link still shows (and may let approve) the order.';
    END IF;
    -- an id of this database's partition (a proxy routes the token by it),
    -- then a random uuid: 184 random bits in all
    token := translate(encode(uuid_send(orders.new_id()) || uuid_send(gen_random_uuid()), 'base64'), '+/=', '-_');
    INSERT INTO orders.order_share_tokens (order_id, token_hash, expires_at, allowed_actions, created_by, metadata)
    VALUES (create_share_token.order_id, sha256(convert_to(token, 'UTF8')), now() + expires_in,
            coalesce(create_share_token.allowed_actions, '{view}'), orders.current_actor(),
            coalesce(create_share_token.metadata, '{}'));
    RETURN token;
END
$$;
