-- orders 0.38.0 -> 0.39.0
--  * advance_analysed_orders (new, AFTER DELETE statement trigger on
--    order_groups): a deleted client group that was still being analysed
--    left its order "analyzing" with every remaining group analysed —
--    nothing moved it on (complete_analysis, which does, was not called
--    again).  Such an order now moves to "reviewing" ('analysis
--    complete') at the end of the DELETE, by the caller when its
--    lifecycle has the edge and the caller may take it now (a client
--    leaves the move to staff).
--  * staff_holds_lapse (new, AFTER UPDATE OF is_active, account_id and
--    AFTER DELETE row triggers on staff): a staff member deactivated,
--    deleted or given another login — its account's live slot holds lapse
--    now (expires_at = now()): a staff hold of up to 24 hours kept its
--    places after the member left (confirm_booking refused it, OR028).
--  * leads policy "reach": a campaign's leads are staff's to read (and so
--    to change or delete) only when they read the campaign's order — a rep
--    read another rep's campaign's contacts and deleted its leads with
--    orders.delete, its leads_delivered falling.  assign_lead names a
--    target order outside the caller's scope (42501, "lead … may not be
--    assigned to order …"; the policy's own words before).
--  * order_columns_guard: payment_method is fixed for delivery agents (an
--    agent relabelled its cash order "card" before collecting it, and the
--    ledger's revenue row said card), and a customer's only while the
--    order is open, not shipped and its payment neither collected nor
--    refunded.  The trigger is re-created with the column, keeping a DBA's
--    DISABLE or ENABLE ALWAYS, left dropped when dropped.
--  * the trigger check_assignment is renamed orders_assignment_check, to
--    fire after order_columns_guard (BEFORE triggers fire in name order):
--    an API caller who may not assign hears OR060 first — the check told a
--    customer a staff member's name, role and whether it is active (OR040,
--    OR041).  Its function is unchanged.
--  * agent_performance_view: average_rating averages each order's ratings
--    first (a rep recorded ten one-star deliveries of one order), and
--    completed_deliveries counts only orders that were delivered
--    (delivered_at; an agent recorded deliveries of an order still new).
--  * webhook_ingest: a shop's update locks the order's items (id order)
--    before the order, as every writer of items does — a staff member's
--    item UPDATE and the update, which replaces the items once it holds
--    the order, deadlocked (40P01, answered 503).
--  * site_price_check (new trigger on order_site_selections): a site's
--    metrics.price, when given, is a JSON number from 0 to 9999999999.99
--    for every writer (22023) — staff PATCHed a price as text and the
--    client's approval made a free item; a huge or negative one failed
--    the approval later (22003, 23514).  A restore (orders.restoring, new:
--    the owner's top-level COPY in a session with row_security off, as the
--    C triggers ask) takes the rows as dumped.  Prices already stored are
--    not checked until written again: this update warns about them.
--  * customer_columns_guard: a customer row keeps its id in an API request
--    (OR060) — a customer re-keyed its own row, or learnt from 23505 which
--    ids other customers have.  Its trigger is re-created with the column,
--    keeping a DBA's DISABLE or ENABLE ALWAYS, left dropped when dropped.
--  * workflow_task_step: "due_days": 3.0 (a whole number check_workflow
--    accepts) failed every run (22P02); read through numeric.
--  * share_review_sites and complete_outbox: a NULL id is 22004 naming the
--    argument (was OR075 / OR100 naming <NULL>).
--  * complete_analysis: a domain that normalises to no host name is 22023
--    naming the suggestion (was the INSERT's check, 23514, naming none).
--  * assign_lead: an unknown order outside an API request is OR006 (was
--    the foreign key's 23503).
--  * cron_field_values: a range no cron field has is 22023 (was XX000, an
--    allocation too large).
--  * workflow_author_deactivated (new trigger on staff): a deactivated
--    author's workflows are set inactive, as a deleted author's (they
--    failed every run, 42501 — a time-based one on every tick).
--  * workflows (a review of the automation): tag steps are written only by
--    staff with customers.edit (42501) and run only for such an author
--    (workflow_author_refusal takes a fourth argument, tags); one
--    top-level run starts at most 64 others (OR118: customer_tag workflows
--    that remove and add their own tag fanned out exponentially); a
--    message or title template holds at most 2,000 characters and a
--    rendered message is cut there (a run wrote 600 MB of notifications),
--    a template name and a tag label at most 100, a color 32; a webhook
--    step's URL names its receiver by a public DNS host name — no IP
--    address in any spelling, no localhost, no user information
--    (check_webhook_url, new; OR111); a step id holds no ":" (the outbox
--    keys of two steps collided and one message was lost); steps are
--    checked again when a workflow is activated; whoever changes a
--    workflow's trigger or steps through the API becomes its author, also
--    when stopping it or from a trigger of their own (a rep's rewrite ran
--    with the admin's authority), and an API change always leaves an
--    author, active staff as the latest commit shows (42501 otherwise: an
--    author's edit that waited for its deactivation switched the workflow
--    on again).  This update stops the active workflows
--    whose webhook URL check_webhook_url refuses (a WARNING names them)
--    and warns of other steps the checks would refuse.
--  * workflow_render and workflow_recipients in PL/pgSQL (same results):
--    as SQL functions with a SET clause they were never inlined, and their
--    bodies were parsed and planned on every call — a quarter of a
--    matching workflow run's CPU.

\echo Use "ALTER EXTENSION orders UPDATE TO '0.39.0'" to load this file. \quit

CREATE FUNCTION orders.advance_analysed_orders() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o orders.orders;
    candidate uuid;
BEGIN
    FOR candidate IN SELECT DISTINCT g.order_id FROM gone g WHERE g.analysis_completed_at IS NULL ORDER BY 1 LOOP
        -- locked only when the caller may move it (it then has UPDATE on
        -- orders): a writer who may delete groups but not move orders
        -- deletes them as before
        IF EXISTS (SELECT FROM orders.orders x WHERE x.id = candidate AND x.status = 'analyzing')
           AND has_table_privilege('orders.orders', 'UPDATE')
           AND 'reviewing' IN (SELECT t FROM orders.allowed_transitions(candidate) t) THEN
            SELECT * INTO o FROM orders.orders x WHERE x.id = candidate FOR NO KEY UPDATE;
            IF FOUND AND o.status = 'analyzing'
               AND EXISTS (SELECT FROM orders.order_groups og WHERE og.order_id = o.id)
               AND NOT EXISTS (SELECT FROM orders.order_groups og
                                WHERE og.order_id = o.id AND og.analysis_completed_at IS NULL) THEN
                PERFORM orders.transition(o.id, 'reviewing', 'analysis complete');
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
CREATE TRIGGER advance_analysed_orders AFTER DELETE ON orders.order_groups
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION orders.advance_analysed_orders();
REVOKE ALL ON FUNCTION orders.advance_analysed_orders() FROM PUBLIC;

CREATE FUNCTION orders.staff_holds_lapse() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.slot_reservations r SET expires_at = now()
     WHERE r.id IN (SELECT h.id FROM orders.slot_reservations h
                     WHERE lower(h.holder) = OLD.account_id::text AND h.status = 'held' AND h.expires_at > now()
                     ORDER BY h.id FOR UPDATE)
       AND r.status = 'held' AND r.expires_at > now();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION orders.staff_holds_lapse() FROM PUBLIC;
CREATE TRIGGER staff_holds_lapse AFTER UPDATE OF is_active, account_id ON orders.staff
    FOR EACH ROW WHEN (OLD.account_id IS NOT NULL
                       AND ((OLD.is_active AND NOT NEW.is_active) OR NEW.account_id IS DISTINCT FROM OLD.account_id))
    EXECUTE FUNCTION orders.staff_holds_lapse();
CREATE TRIGGER staff_holds_lapse_delete AFTER DELETE ON orders.staff
    FOR EACH ROW WHEN (OLD.account_id IS NOT NULL) EXECUTE FUNCTION orders.staff_holds_lapse();

CREATE OR REPLACE FUNCTION orders.assign_lead(lead_id uuid, order_id uuid)
    RETURNS orders.leads
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result orders.leads;
BEGIN
    IF assign_lead.lead_id IS NULL THEN
        RAISE EXCEPTION 'orders.assign_lead: argument "lead_id" must not be null'
            USING ERRCODE = '22004';
    END IF;
    -- (0.39.0) named here: the leads policy's check of the new row said
    -- only "new row violates row-level security policy"
    IF NOT orders.order_in_scope(assign_lead.order_id) THEN
        RAISE EXCEPTION 'lead % may not be assigned to order %', assign_lead.lead_id, assign_lead.order_id
            USING ERRCODE = '42501',
                  HINT = 'A lead counts toward an order in your scope; either no order has this id or row level security hides it from you.';
    END IF;
    -- (0.39.0) outside the API (where the scope check answers first) an
    -- unknown order is named (was the foreign key's 23503)
    IF assign_lead.order_id IS NOT NULL AND NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = assign_lead.order_id) THEN
        RAISE EXCEPTION 'order % does not exist', assign_lead.order_id USING ERRCODE = 'OR006';
    END IF;
    UPDATE orders.leads l
       SET order_id = assign_lead.order_id,
           customer_id = coalesce(l.customer_id,
                                  (SELECT o.customer_id FROM orders.orders o WHERE o.id = assign_lead.order_id))
     WHERE l.id = assign_lead.lead_id
    RETURNING l.* INTO result;
    IF NOT FOUND THEN
        -- (0.29.0) a lead the caller reads but may not change is no "unknown lead"
        IF EXISTS (SELECT FROM orders.leads l WHERE l.id = assign_lead.lead_id) THEN
            RAISE EXCEPTION 'lead % may not be changed by you', assign_lead.lead_id
                USING ERRCODE = '42501',
                      HINT = 'Changing a lead takes permission orders.edit, for a lead of an order in your scope.';
        END IF;
        RAISE EXCEPTION 'lead % does not exist', assign_lead.lead_id
            USING ERRCODE = 'OR015',
                  HINT = 'Either no lead has this id or row level security hides it from you.';
    END IF;
    RETURN result;
END
$$;

-- a campaign's leads are read (and so changed, deleted) only by staff who
-- read the campaign's order
DROP POLICY reach ON orders.leads;
CREATE POLICY reach ON orders.leads
    USING (customer_id = ANY ((SELECT orders.current_customer_ids())::uuid[])
           OR ((SELECT orders.has_permission('orders', 'view'))
               AND (SELECT orders.current_staff_role()) <> 'delivery_agent'
               AND (order_id IS NULL OR EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id))));

CREATE OR REPLACE FUNCTION orders.order_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    staff_only constant jsonb := '{"priority": 0, "delivery_fee": 0, "total_amount": 0, "adjustment": 0,
        "payment_status": "pending", "assigned_rep_id": null, "assigned_agent_id": null,
        "webhook_source": null, "delivery_proof": null, "leads_purchased": 0, "external_id": null}';
    stamps constant text[] := '{confirmed_at,started_at,paused_at,reviewed_at,paid_at,shipped_at,delivered_at,
        returned_at,completed_at,cancelled_at,review_completed_at,reviewed_by}';
    -- (0.29.0) customer_id: an agent moved its order to another customer, whom it then read
    agent_fixed constant text[] := '{total_amount,adjustment,delivery_fee,currency,leads_purchased,source,customer_id,payment_method}';
    new_row jsonb;
    old_row jsonb;
    col text;
    role text;
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;				-- before any work: every INSERT of an order comes here
    END IF;
    new_row := to_jsonb(NEW);
    old_row := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE staff_only END;
    FOREACH col IN ARRAY stamps LOOP
        IF new_row -> col IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> col ELSE 'null' END) THEN
            PERFORM orders.refuse_column('orders.orders', col, 'the lifecycle''s edges (orders.transition)');
        END IF;
    END LOOP;
    role := orders.current_staff_role();
    -- (an INSERT of an order that exists — an upsert, which sends the row as
    -- it was read — is judged by its conflict action's UPDATE, if any; the
    -- row is locked FOR KEY SHARE: one being deleted is waited for, and gone,
    -- the INSERT is judged — a customer's insert racing a delete of the same
    -- id stored a forbidden value)
    IF (new_row -> 'metadata' -> 'webhook' IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> 'metadata' -> 'webhook' END)
        OR (NEW.created_at IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.created_at ELSE now() END)
            AND (role IS NULL OR role NOT IN ('admin', 'manager')
                 OR NOT orders.has_permission('orders', CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'edit' END))))
       AND (TG_OP = 'UPDATE' OR NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = NEW.id OR o.order_number = NEW.order_number
                                            FOR KEY SHARE)) THEN
        IF new_row -> 'metadata' -> 'webhook' IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN old_row -> 'metadata' -> 'webhook' END) THEN
            PERFORM orders.refuse_column('orders.orders', 'metadata', 'the webhook ingest (its key "webhook")');
        END IF;
        PERFORM orders.refuse_column('orders.orders', 'created_at', 'admins and managers (an import of past orders)');
    END IF;
    -- (0.29.0) staff without the right to this write reach the order only as
    -- its customer (a staff member may be a customer too): a customer's
    -- rules — an accountant placed its own order "collected" with total 0
    IF role IS NULL OR NOT orders.has_permission('orders', CASE TG_OP WHEN 'INSERT' THEN 'create' ELSE 'edit' END) THEN
        FOR col IN SELECT jsonb_object_keys(staff_only) LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff');
            END IF;
        END LOOP;
        IF NEW.source NOT IN ('manual', 'api')
           AND NEW.source IS DISTINCT FROM (CASE WHEN TG_OP = 'UPDATE' THEN OLD.source END) THEN
            PERFORM orders.refuse_column('orders.orders', 'source', 'staff');
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.currency IS DISTINCT FROM OLD.currency THEN
            PERFORM orders.refuse_column('orders.orders', 'currency', 'staff');
        END IF;
        -- (0.38.0) where it goes is the customer's until it has left or is
        -- closed: a customer changed the address of a delivered order;
        -- (0.39.0) how it is paid likewise, and not once paid
        IF TG_OP = 'UPDATE' AND (OLD.shipped_at IS NOT NULL OR orders.status_category(OLD.lifecycle, OLD.status) <> 'open') THEN
            FOREACH col IN ARRAY ARRAY['delivery_address', 'delivery_area', 'payment_method'] LOOP
                IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                    PERFORM orders.refuse_column('orders.orders', col, 'staff once the order has shipped or is closed');
                END IF;
            END LOOP;
        END IF;
        IF TG_OP = 'UPDATE' AND OLD.payment_status IN ('collected', 'refunded')
           AND NEW.payment_method IS DISTINCT FROM OLD.payment_method THEN
            PERFORM orders.refuse_column('orders.orders', 'payment_method', 'staff once the payment is collected');
        END IF;
        RETURN NEW;
    END IF;
    IF role NOT IN ('admin', 'manager') THEN
        FOREACH col IN ARRAY ARRAY['external_id', 'webhook_source'] LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'admins and managers');
            END IF;
        END LOOP;
    END IF;
    IF role = 'delivery_agent' AND TG_OP = 'UPDATE' THEN
        FOREACH col IN ARRAY agent_fixed LOOP
            IF new_row -> col IS DISTINCT FROM old_row -> col THEN
                PERFORM orders.refuse_column('orders.orders', col, 'staff other than delivery agents');
            END IF;
        END LOOP;
        IF NEW.payment_status IS DISTINCT FROM OLD.payment_status
           AND NOT (OLD.payment_status IN ('pending', 'failed') AND NEW.payment_status IN ('pending', 'failed', 'collected')) THEN
            PERFORM orders.refuse_column('orders.orders', 'payment_status',
                                         'staff other than delivery agents (an agent collects, fails or retries a payment not yet collected)');
        END IF;
    END IF;
    IF (new_row -> 'assigned_rep_id', new_row -> 'assigned_agent_id')
          IS DISTINCT FROM (old_row -> 'assigned_rep_id', old_row -> 'assigned_agent_id')
          AND NOT orders.has_permission('orders', 'assign') THEN
        PERFORM orders.refuse_column('orders.orders',
            CASE WHEN new_row -> 'assigned_rep_id' IS DISTINCT FROM old_row -> 'assigned_rep_id'
                 THEN 'assigned_rep_id' ELSE 'assigned_agent_id' END, 'staff with permission orders.assign');
    END IF;
    RETURN NEW;
END
$$;

DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = 'order_columns_guard';
    IF was IS NOT NULL THEN         -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER order_columns_guard
            BEFORE INSERT OR UPDATE OF priority, delivery_fee, total_amount, adjustment, payment_status,
                assigned_rep_id, assigned_agent_id, source, webhook_source, delivery_proof, review_completed_at, reviewed_by,
                leads_purchased, external_id, currency, confirmed_at, started_at, paused_at, reviewed_at, paid_at, shipped_at,
                delivered_at, returned_at, completed_at, cancelled_at, customer_id, created_at, metadata,
                delivery_address, delivery_area, payment_method
            ON orders.orders FOR EACH ROW WHEN (orders.api_request())
            EXECUTE FUNCTION orders.order_columns_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.orders %s TRIGGER order_columns_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;


CREATE OR REPLACE VIEW orders.agent_performance_view WITH (security_invoker = true) AS
SELECT s.id AS agent_id, s.full_name AS agent_name, s.is_active, s.availability_status,
       count(d.id) AS total_deliveries,
       -- (0.39.0) over orders, each order's ratings averaged first: a rep
       -- recorded ten one-star deliveries of one order
       (SELECT round(avg(r.rating), 2)
          FROM (SELECT avg(x.rating) AS rating FROM orders.deliveries x
                 WHERE x.agent_id = s.id AND x.rating IS NOT NULL GROUP BY x.order_id) r) AS average_rating,
       -- (0.29.0) orders, not rows: an agent recorded ten completed deliveries
       -- of one order; (0.39.0) orders that were delivered (delivered_at):
       -- an agent recorded deliveries of an order still new
       count(DISTINCT d.order_id) FILTER (WHERE d.delivery_time IS NOT NULL
                                           AND EXISTS (SELECT FROM orders.orders o
                                                        WHERE o.id = d.order_id AND o.delivered_at IS NOT NULL)) AS completed_deliveries,
       (SELECT count(*) FROM orders.orders o
         JOIN orders.lifecycle_states st ON st.lifecycle = o.lifecycle AND st.status = o.status
        WHERE o.assigned_agent_id = s.id AND st.category = 'fulfilled') AS successful_orders
  FROM orders.staff s
  LEFT JOIN orders.deliveries d ON d.agent_id = s.id
 WHERE s.role = 'delivery_agent'
 GROUP BY s.id;

CREATE OR REPLACE FUNCTION orders.webhook_ingest(endpoint text, body text, doc jsonb, signature text,
                                      delivery_id text, topic text)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
<<ingest>>
DECLARE
    headers jsonb;
    w orders.webhooks%ROWTYPE;
    m jsonb;
    d jsonb;
    max_bytes bigint;
    ext_id text;
    known uuid;
    result_status text;
    http integer;
    code text;
    err text;
    order_id uuid;
    customer_id uuid;
    c_phone text;
    c_email text;
    items jsonb;
    resolved jsonb;
    item_count integer;
    matched integer;
    items_sum numeric;
    fee numeric;
    total numeric;
    adj numeric;
    incoming_at text;
    stored_at text;
    log_id uuid;
    phone_owned boolean;
    cancel_spec text;
    cancelled boolean := false;
    cancel_to text;
    cancellation text;
    was_status text;
    was_payment text;
    was_total numeric;
    acting_before text;
    too_many boolean := false;
    max_items integer;
    cancel_err text;
BEGIN
    -- the locks below serialise deliveries of one order; a transaction
    -- snapshot taken before them would not see the delivery it waited for
    PERFORM orders.require_read_committed('orders.ingest_webhook',
        'A transaction snapshot would not see the delivery of the same order it waited for.');
    -- through PostgREST, signature, delivery id and topic may come as headers
    headers := coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb;
    signature := coalesce(nullif(signature, ''), headers ->> 'x-shopify-hmac-sha256', headers ->> 'x-wc-webhook-signature');
    delivery_id := left(coalesce(nullif(delivery_id, ''), headers ->> 'x-shopify-webhook-id',
                                 headers ->> 'x-wc-webhook-delivery-id'), 255);
    topic := coalesce(nullif(topic, ''), headers ->> 'x-shopify-topic', headers ->> 'x-wc-webhook-topic');

    -- FOR KEY SHARE: a rename of the endpoint waits for the deliveries under
    -- way.  Other changes (is_active, the secret, the mapping) apply to the
    -- deliveries that start after they commit: FOR SHARE would make them
    -- wait for the deliveries under way, but also every delivery wait for
    -- a change of the webhook's name in an open transaction (0.34.0's first
    -- cut; its wait failed the call before the log)
    SELECT * INTO w FROM orders.webhooks wh WHERE wh.endpoint = webhook_ingest.endpoint AND wh.is_active FOR KEY SHARE;
    -- (0.32.0) what the delivery changes is the shop's: history and the
    -- activity log name "webhook:<endpoint>", not the extension's owner
    -- (orders.acting_for, superusers' only; put back as it was before the
    -- result is returned, and by the rollback of an error)
    acting_before := current_setting('orders.acting_for', true);
    IF w.id IS NOT NULL THEN
        PERFORM set_config('orders.acting_for', 'webhook:' || w.endpoint, true);
    END IF;
    max_bytes := CASE WHEN w.id IS NULL THEN 65536
                      ELSE coalesce((w.defaults ->> 'max_payload_bytes')::bigint, 1048576) END;
    IF w.id IS NULL THEN
        http := 404; code := 'OR090';
        err := format('no active webhook with endpoint "%s"', left(endpoint, 64));
    ELSIF body IS NULL THEN
        http := 400; code := 'OR094';
        err := format('the request to webhook "%s" has no payload', w.endpoint);
    ELSIF octet_length(body) > max_bytes THEN
        http := 413; code := 'OR093';
        err := format('payload of %s bytes is larger than the %s bytes webhook "%s" accepts',
                      octet_length(body), max_bytes, w.endpoint);
    ELSIF w.secret IS NOT NULL AND (signature IS NULL OR NOT orders.webhook_signature_ok(w.secret, body, signature)) THEN
        http := 401; code := 'OR091';
        err := CASE WHEN signature IS NULL THEN format('webhook "%s" needs a signature', w.endpoint)
                    ELSE format('the signature does not match the payload for webhook "%s"', w.endpoint) END;
    END IF;
    IF doc IS NULL AND http IS NULL THEN
        BEGIN
            doc := body::jsonb;
        -- (0.29.0) a body nested past the stack's depth is no JSON either;
        -- (0.34.0) nor one with a number past numeric's range (valid JSON,
        -- as a \u0000 escape or a lone surrogate is, which jsonb refuses)
        EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR statement_too_complex
                       OR numeric_value_out_of_range THEN
            IF http IS NULL THEN
                http := 400; code := 'OR094';
                err := format('the payload for webhook "%s" is not JSON: %s', w.endpoint, left(SQLERRM, 200));
            END IF;
        END;
    END IF;
    IF http IS NULL AND jsonb_typeof(doc) <> 'object' THEN
        http := 400; code := 'OR094';
        err := format('the payload for webhook "%s" is not a JSON object', w.endpoint);
    END IF;
    -- (0.34.0) a Shopify or WooCommerce topic whose payload is not an order
    -- (refunds/create, orders/delete's bare id, orders/edited's order edit,
    -- order_transactions/create; WooCommerce's order.deleted, product.*,
    -- action.*) sent to an order webhook: logged and answered 200, nothing
    -- changed (a refund's id was taken for a shop order's, the delivery
    -- refused as an order without a customer, 422, retried by the shop for
    -- ever).  Other sources' topics are theirs: any may be an order's.
    IF http IS NULL AND topic IS NOT NULL
       AND ((w.source = 'shopify'
             AND lower(topic) !~ '^orders/(create|updated|cancelled|paid|fulfilled|partially_fulfilled)$')
         OR (w.source = 'woocommerce' AND lower(topic) !~ '^order\.(created|updated|restored)$')) THEN
        http := 200; result_status := 'ignored';
        err := format('webhook "%s": topic "%s" is not about orders: nothing done', w.endpoint, left(topic, 64));
    END IF;

    IF http IS NULL THEN
        m := w.field_mapping;
        d := w.defaults;
        max_items := coalesce((d ->> 'max_items')::integer, 500);
        ext_id := left(orders.webhook_value(doc, m -> 'order' ->> 'external_id'), 255);
        -- (0.29.0) the shop cancelled the order: "path" (any value but empty,
        -- false or 0: Shopify's cancelled_at) or "path = a, b" (one of the
        -- values: WooCommerce's status)
        cancel_spec := m -> 'order' ->> 'cancelled';
        IF strpos(cancel_spec, '=') > 0 THEN
            cancelled := coalesce(orders.webhook_value(doc, split_part(cancel_spec, '=', 1))
                                  IN (SELECT btrim(v) FROM unnest(string_to_array(split_part(cancel_spec, '=', 2), ',')) v), false);
        ELSIF cancel_spec IS NOT NULL THEN
            cancelled := coalesce(orders.webhook_value(doc, cancel_spec) NOT IN ('false', '0'), false);
        END IF;
        -- (0.34.0) from the advisory lock on, inside the subtransaction: a
        -- wait that runs out (a lock timeout, a deadlock) — for another
        -- delivery of the order, a keyed transition holding it — is
        -- answered 503 and logged; it failed the call unlogged
        BEGIN
            IF ext_id IS NOT NULL OR delivery_id IS NOT NULL THEN
                PERFORM pg_advisory_xact_lock(hashtextextended(
                    'orders.webhook ' || w.id || ' ' || coalesce('order ' || ext_id, 'delivery ' || delivery_id), 0));
            END IF;
            -- a delivery id alone names the request only when the payload has no
            -- shop order id: the signature does not cover the delivery id, so a
            -- replayed body under another order's future delivery id must not
            -- make that order a "duplicate"
            IF ext_id IS NULL AND delivery_id IS NOT NULL THEN
                -- (0.34.0) one that made or named an order: an "ignored" topic's
                -- 200 names none, and made a later order of its delivery id a
                -- "duplicate"
                SELECT l.order_created_id INTO known
                  FROM orders.webhook_logs l
                 WHERE l.webhook_id = w.id AND l.delivery_id = webhook_ingest.delivery_id
                   AND l.response_status BETWEEN 200 AND 299 AND l.order_created_id IS NOT NULL
                 ORDER BY l.created_at LIMIT 1;
                IF FOUND THEN
                    result_status := 'duplicate'; http := 200;
                    -- (0.34.0) the order as it is, kept until the log row names
                    -- it (one deleted meanwhile failed the log row's key,
                    -- unlogged): deleted while this waited, the answer names
                    -- none; a later retry makes it anew (its log rows name
                    -- none any more)
                    SELECT o.id INTO order_id FROM orders.orders o WHERE o.id = known FOR KEY SHARE;
                END IF;
            END IF;
            IF http IS NULL AND ext_id IS NOT NULL THEN
                -- (0.34.0) FOR KEY SHARE: a deletion of the order waits for the
                -- delivery, or the delivery for it — then the shop order is
                -- unknown again and made anew, as a later retry would (an update
                -- of a vanished order failed on its log row's key, unlogged)
                SELECT o.id INTO known FROM orders.orders o
                 WHERE o.webhook_source = w.endpoint AND o.external_id = ext_id FOR KEY SHARE;
                IF FOUND THEN
                    order_id := known; http := 200;
                    result_status := CASE WHEN topic ~* 'update' OR cancelled THEN 'updated' ELSE 'duplicate' END;
                END IF;
            END IF;
            IF http IS NULL OR result_status = 'updated' THEN
                -- (0.29.0) the order is judged for its workflows once, at the end:
                -- not on the totals it passes through (inserted, its items, its
                -- adjustment; its items replaced), which fired a min_order_value
                -- workflow for an order whose total ended below it, and again on
                -- every update
                PERFORM orders.hold_order_workflows();
                items := CASE WHEN m -> 'order' ->> 'items' IS NULL THEN '[]'
                              ELSE coalesce(doc #> string_to_array(m -> 'order' ->> 'items', '.'), '[]') END;
                IF jsonb_typeof(items) <> 'array' THEN
                    RAISE EXCEPTION 'the items of the payload ("%") are not an array', m -> 'order' ->> 'items'
                        USING ERRCODE = 'OR092';
                -- (0.36.0) a bound on the rows one delivery writes: a 1 MB
                -- payload of empty items made 340,000 of them (10 s), from an
                -- endpoint without a secret anybody can reach.  A new order is
                -- refused; an update of a known one (a cancellation, an address)
                -- is applied without its items, which stay as they are, with
                -- their amounts (as for a payload without items)
                ELSIF jsonb_array_length(items) > max_items THEN
                    IF result_status = 'updated' THEN
                        too_many := true;
                        err := format('webhook "%s": the payload has %s items, more than the %s it takes: the order''s items and amounts are left as they were',
                                      w.endpoint, jsonb_array_length(items), max_items);
                        items := '[]';
                    ELSE
                        RAISE EXCEPTION 'the payload has % items, more than the % webhook "%" takes',
                                        jsonb_array_length(items), max_items, w.endpoint
                            USING ERRCODE = 'OR092',
                                  HINT = 'Raise defaults.max_items of the webhook (orders.webhooks) if its shop sends such orders.';
                    END IF;
                ELSIF EXISTS (SELECT FROM jsonb_array_elements(items) i WHERE jsonb_typeof(i) <> 'object') THEN
                    RAISE EXCEPTION 'the items of the payload ("%") are not all objects', m -> 'order' ->> 'items'
                        USING ERRCODE = 'OR092';
                END IF;
                -- each item resolved once: its values, its variant or product by SKU
                SELECT count(*), count(x.product_id), sum(x.unit_price * x.quantity),
                       coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.ord), '[]')
                  INTO item_count, matched, items_sum, resolved
                  FROM (SELECT y.sku, left(coalesce(y.name, v.name, p.name, y.sku, 'item'), 500) AS name, y.quantity,
                               coalesce(y.price, v.price, p.price, 0) AS unit_price,
                               coalesce(v.product_id, p.id) AS product_id, v.id AS variant_id, y.ord
                          FROM (SELECT left(orders.webhook_value(i.value, m -> 'items' ->> 'sku'), 255) AS sku,
                                       orders.webhook_value(i.value, m -> 'items' ->> 'name') AS name,
                                       coalesce(orders.webhook_value(i.value, m -> 'items' ->> 'quantity')::integer, 1) AS quantity,
                                       orders.webhook_amount(i.value, m -> 'items' ->> 'price') AS price,
                                       i.ordinality AS ord
                                  FROM jsonb_array_elements(items) WITH ORDINALITY i) y
                          LEFT JOIN orders.product_variants v ON v.sku = y.sku
                          LEFT JOIN orders.products p ON v.id IS NULL AND p.sku = y.sku) x;
                IF matched < item_count AND coalesce((d ->> 'require_sku_match')::boolean, false) THEN
                    RAISE EXCEPTION '% of % items of the payload have no product with their SKU', item_count - matched, item_count
                        USING ERRCODE = 'OR095', HINT = 'Create the products (or variants) with these SKUs, or set require_sku_match to false.';
                END IF;
                fee := coalesce(orders.webhook_amount(doc, m -> 'order' ->> 'delivery_fee'), 0);
                total := orders.webhook_amount(doc, m -> 'order' ->> 'total');

                IF result_status = 'updated' THEN
                    incoming_at := orders.webhook_value(doc, m -> 'order' ->> 'updated_at');
                    -- (0.39.0) the order's items first (id order), then the order,
                    -- as every writer of items locks them (its statement's items,
                    -- then their order at the statement's end): an item UPDATE by
                    -- staff and this delivery, which replaces the items once it
                    -- holds the order, deadlocked (40P01, answered 503)
                    PERFORM FROM orders.order_items it WHERE it.order_id = ingest.order_id ORDER BY it.id FOR UPDATE;
                    SELECT o.metadata -> 'webhook' ->> 'updated_at', o.status, o.payment_status, o.total_amount
                      INTO stored_at, was_status, was_payment, was_total
                      FROM orders.orders o WHERE o.id = order_id FOR UPDATE;
                    -- (0.28.0) strictly older only: shops stamp whole seconds, and a
                    -- second update within the same second was dropped as stale; a
                    -- Shopify retry of an update already applied (its delivery id —
                    -- X-Shopify-Webhook-Id, the same on every retry — logged for this
                    -- order) is a duplicate: not applied, no workflow again (a webhook
                    -- of another source fed by Shopify: by its header).  Not for
                    -- WooCommerce: its delivery ids are new on every attempt and may
                    -- repeat within a second.
                    IF (w.source = 'shopify' OR headers ? 'x-shopify-webhook-id') AND delivery_id IS NOT NULL AND EXISTS (
                           SELECT FROM orders.webhook_logs l
                            WHERE l.webhook_id = w.id AND l.delivery_id = webhook_ingest.delivery_id
                              AND l.order_created_id = order_id AND l.response_status BETWEEN 200 AND 299) THEN
                        result_status := 'duplicate';
                    ELSIF orders.webhook_time(incoming_at) < orders.webhook_time(stored_at) THEN
                        result_status := 'stale';		-- an older update delivered late: nothing changes
                    ELSE
                        UPDATE orders.orders o
                           -- a note the payload leaves out stays; one it sends empty or null goes
                           -- (a note mapped by a plain path; one of alternatives "a | b" or
                           -- parts "a + b" is kept when they all are empty)
                           SET customer_notes = CASE
                                   WHEN orders.webhook_value(doc, m -> 'order' ->> 'notes') IS NOT NULL
                                       THEN orders.webhook_value(doc, m -> 'order' ->> 'notes')
                                   WHEN doc #> string_to_array(m -> 'order' ->> 'notes', '.') IS NOT NULL THEN NULL
                                   ELSE o.customer_notes END,
                               delivery_address = coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'address'), o.delivery_address),
                               delivery_area = coalesce(left(orders.webhook_value(doc, m -> 'customer' ->> 'city'), 255), o.delivery_area),
                               metadata = CASE WHEN orders.webhook_time(incoming_at) IS NULL THEN o.metadata
                                               ELSE o.metadata || jsonb_build_object('webhook',
                                                        coalesce(o.metadata -> 'webhook', '{}') || jsonb_build_object('updated_at', incoming_at)) END
                         WHERE o.id = order_id;
                        -- items and amounts follow the shop only before the order leaves
                        -- its initial status, and (0.28.0) only from a payload that has
                        -- its items: an update without them emptied the order (total 0);
                        -- its currency with them, when the payload names one (it kept
                        -- the old currency under the new amounts)
                        IF EXISTS (SELECT 1 FROM orders.orders o JOIN orders.lifecycles l ON l.name = o.lifecycle
                                    WHERE o.id = order_id AND o.status = l.initial_status)
                           AND NOT too_many
                           AND doc #> string_to_array(m -> 'order' ->> 'items', '.') IS NOT NULL THEN
                            UPDATE orders.orders o
                               SET currency = upper(coalesce(orders.webhook_value(doc, m -> 'order' ->> 'currency'), o.currency))
                             WHERE o.id = order_id;
                            SELECT o.adjustment INTO adj FROM orders.orders o WHERE o.id = order_id;
                            -- (0.29.0) the items are replaced only when they changed (a
                            -- cancellation carries them as they were), and not while a
                            -- slot books one of them (its place is given back by
                            -- cancelling the order: OR031 refused the whole delivery,
                            -- its cancellation with it); the amounts follow either way
                            IF (SELECT coalesce(jsonb_agg(jsonb_build_array(it.sku, it.name, it.quantity, it.unit_price,
                                                                            it.product_id, it.variant_id)
                                                          ORDER BY it.sku, it.name, it.quantity, it.unit_price), '[]')
                                  FROM orders.order_items it WHERE it.order_id = ingest.order_id)
                               IS DISTINCT FROM
                               (SELECT coalesce(jsonb_agg(jsonb_build_array(x.sku, x.name, x.quantity, x.unit_price,
                                                                            x.product_id, x.variant_id)
                                                          ORDER BY x.sku, x.name, x.quantity, x.unit_price), '[]')
                                  FROM jsonb_to_recordset(resolved) AS x(sku text, name text, quantity integer, unit_price numeric,
                                                                        product_id uuid, variant_id uuid))
                               AND NOT EXISTS (SELECT FROM orders.order_items it
                                                 JOIN orders.slot_reservations sr ON sr.order_item_id = it.id
                                                WHERE it.order_id = ingest.order_id AND sr.status IN ('held', 'confirmed'))
                               -- (0.35.0) nor while an approved site's item is among them
                               -- (it goes with the site's approval: OR078 refused the
                               -- whole delivery)
                               AND NOT EXISTS (SELECT FROM orders.order_items it
                                                 JOIN orders.order_site_selections x ON x.order_item_id = it.id
                                                WHERE it.order_id = ingest.order_id AND x.status = 'approved') THEN
                                -- without its items a discount larger than the fee would make the
                                -- total negative (refused): a negative adjustment waits for them
                                IF adj < 0 THEN
                                    UPDATE orders.orders o SET adjustment = 0 WHERE o.id = order_id;
                                END IF;
                                DELETE FROM orders.order_items it WHERE it.order_id = ingest.order_id;
                                PERFORM orders.webhook_insert_items(order_id, resolved);
                            END IF;
                            IF total IS NOT NULL THEN
                                -- the parts written, the shop's total follows exactly (a total
                                -- written equal to the one stored would not count as written)
                                UPDATE orders.orders o SET delivery_fee = fee, adjustment = total - o.subtotal - fee
                                 WHERE o.id = order_id;
                            ELSE
                                UPDATE orders.orders o SET delivery_fee = fee, adjustment = adj WHERE o.id = order_id;
                            END IF;
                        END IF;
                    END IF;
                ELSE
                    c_phone := left(orders.webhook_value(doc, m -> 'customer' ->> 'phone'), 64);
                    c_email := left(lower(orders.webhook_value(doc, m -> 'customer' ->> 'email')), 255);
                    IF c_phone IS NULL AND c_email IS NULL THEN
                        RAISE EXCEPTION 'the payload has neither a phone nor an email of the customer'
                            USING ERRCODE = 'OR092', HINT = 'Check the customer section of the webhook''s field_mapping.';
                    END IF;
                    -- one customer per phone and per email, also when new orders of a new
                    -- customer race: a lock per key the lookup uses, the phone's first.
                    -- (0.28.0) Only customers without a login: a logged-in customer
                    -- writes its own phone and email, and took over a shopper's orders
                    -- by writing theirs.  A phone only customers with a login have
                    -- makes a new customer (the email is not asked then: it would find
                    -- a row that somebody else's order made with that email).
                    IF c_phone IS NOT NULL THEN
                        PERFORM pg_advisory_xact_lock(hashtextextended('orders.customer phone ' || c_phone, 0));
                    END IF;
                    IF c_email IS NOT NULL THEN
                        PERFORM pg_advisory_xact_lock(hashtextextended('orders.customer email ' || c_email, 0));
                    END IF;
                    IF c_phone IS NOT NULL THEN
                        SELECT c.id, c.account_id IS NOT NULL INTO customer_id, phone_owned FROM orders.customers c
                         WHERE c.phone = c_phone ORDER BY c.account_id IS NOT NULL, c.created_at, c.id LIMIT 1;
                        IF phone_owned THEN
                            customer_id := NULL;
                        END IF;
                    END IF;
                    IF customer_id IS NULL AND phone_owned IS NOT TRUE AND c_email IS NOT NULL THEN
                        SELECT c.id INTO customer_id FROM orders.customers c
                         WHERE c.email = c_email AND c.account_id IS NULL ORDER BY c.created_at, c.id LIMIT 1;
                    END IF;
                    IF customer_id IS NULL THEN
                        INSERT INTO orders.customers (full_name, email, phone, address, city, postal_code)
                        VALUES (left(coalesce(orders.webhook_value(doc, m -> 'customer' ->> 'name'), c_email, c_phone), 200),
                                c_email, c_phone,
                                orders.webhook_value(doc, m -> 'customer' ->> 'address'),
                                left(orders.webhook_value(doc, m -> 'customer' ->> 'city'), 255),
                                left(orders.webhook_value(doc, m -> 'customer' ->> 'postal_code'), 64))
                        RETURNING id INTO customer_id;
                    END IF;
                    -- the adjustment makes the total the shop's (tax, discounts); until the
                    -- items are in, the total is fee + adjustment, which a discount larger
                    -- than the fee would make negative (refused): that part waits for them
                    adj := coalesce(total - coalesce(items_sum, 0) - fee, 0);
                    INSERT INTO orders.orders (customer_id, lifecycle, priority, currency, delivery_fee, adjustment,
                                               customer_notes, delivery_address, delivery_area,
                                               source, webhook_source, external_id, metadata)
                    VALUES (customer_id, coalesce(d ->> 'lifecycle', 'cod'), coalesce((d ->> 'priority')::integer, 0),
                            upper(coalesce(orders.webhook_value(doc, m -> 'order' ->> 'currency'), d ->> 'currency', 'USD')),
                            fee, greatest(adj, -fee),
                            orders.webhook_value(doc, m -> 'order' ->> 'notes'),
                            orders.webhook_value(doc, m -> 'customer' ->> 'address'),
                            left(orders.webhook_value(doc, m -> 'customer' ->> 'city'), 255),
                            'webhook', w.endpoint, ext_id,
                            jsonb_build_object('webhook', jsonb_strip_nulls(jsonb_build_object(
                                'source', w.source,
                                'order_number', orders.webhook_value(doc, m -> 'order' ->> 'order_number'),
                                'updated_at', CASE WHEN orders.webhook_time(orders.webhook_value(doc, m -> 'order' ->> 'updated_at')) IS NOT NULL
                                                   THEN orders.webhook_value(doc, m -> 'order' ->> 'updated_at') END))))
                    RETURNING id INTO order_id;
                    PERFORM orders.webhook_insert_items(order_id, resolved);
                    IF adj < -fee THEN
                        UPDATE orders.orders o SET adjustment = adj WHERE o.id = order_id;
                    END IF;
                    result_status := 'created'; http := 201;
                END IF;
                -- (0.29.0) a cancellation by the shop takes the order's edge to a
                -- cancelled status (the one named "cancelled" first), with its
                -- history, stock and statistics; an order already cancelled stays;
                -- one without such an edge (delivered, paid) is left to staff, and
                -- so is a cancellation the lifecycle refuses (a gate, a rule): the
                -- rest of the delivery stands and the log says why (the shop gets
                -- its 200 and does not retry what only staff can settle)
                IF cancelled AND result_status IN ('created', 'updated') THEN
                    SELECT t.to_status INTO cancel_to
                      FROM orders.orders o
                      JOIN orders.lifecycle_transitions t ON t.lifecycle = o.lifecycle AND t.from_status = o.status
                      JOIN orders.lifecycle_states s ON s.lifecycle = t.lifecycle AND s.status = t.to_status
                     WHERE o.id = order_id AND s.category = 'cancelled'
                     ORDER BY t.to_status <> 'cancelled', s.position, t.to_status
                     LIMIT 1;
                    IF cancel_to IS NOT NULL AND EXISTS (SELECT FROM orders.orders o WHERE o.id = order_id
                                                            AND (o.paid_at IS NOT NULL OR o.payment_status NOT IN ('pending', 'failed'))) THEN
                        -- paid or collected: a refund is staff's (0.29.0)
                        SELECT format('not applied: the order is "%s" and paid (payment "%s"): a refund is staff''s', o.status, o.payment_status)
                          INTO cancellation FROM orders.orders o WHERE o.id = order_id;
                    ELSIF cancel_to IS NOT NULL THEN
                        BEGIN
                            PERFORM orders.transition(order_id, cancel_to, 'cancelled in the shop');
                            cancellation := 'applied';
                        EXCEPTION WHEN OTHERS THEN
                            GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, cancel_err = MESSAGE_TEXT;
                            -- a rule's refusal (a gate, a staff edge, stock) is staff's to
                            -- settle: 200 and the log says why; anything else — a lock
                            -- timeout, a deadlock, a serialization failure — fails the
                            -- delivery (503: the shop retries; a 2xx would make its retry
                            -- a "duplicate", the cancellation lost)
                            IF NOT (code LIKE 'OR%' OR code LIKE '23%' OR code = '42501') THEN
                                RAISE;
                            END IF;
                            cancellation := format('not applied (%s): %s', code, left(cancel_err, 300));
                        END;
                    ELSIF NOT EXISTS (SELECT FROM orders.orders o
                                        JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
                                       WHERE o.id = order_id AND s.category = 'cancelled') THEN
                        SELECT format('not applied: the order is "%s", which has no edge to a cancelled status', o.status)
                          INTO cancellation FROM orders.orders o WHERE o.id = order_id;
                    END IF;
                    -- (0.37.0) beside the note of items left as they were, not over it
                    IF cancellation LIKE 'not applied%' THEN
                        err := concat_ws('; ', err, format('webhook "%s": the shop cancelled the order; %s', w.endpoint, cancellation));
                        code := NULL;
                    END IF;
                END IF;
                PERFORM orders.judge_order_workflows(order_id, was_status, was_payment, was_total);
                -- webhook workflows (sql/schema/99_workflows.sql) run with the
                -- order, inside the subtransaction (0.34.0): one that meets a lock
                -- (a lock timeout, a deadlock, a serialization failure) fails the
                -- delivery with 503, logged, the order undone — it failed the
                -- call, unlogged, after the log row
                IF result_status IN ('created', 'updated') THEN
                    log_id := orders.new_id();
                    PERFORM orders.fire_webhook_workflows(w.id, order_id,
                                                          CASE result_status WHEN 'created' THEN 'order.created' ELSE 'order.updated' END,
                                                          log_id);
                END IF;
            END IF;
        EXCEPTION
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, err = MESSAGE_TEXT;
                http := CASE WHEN code IN ('40001', '40P01', '55P03') THEN 503
                             WHEN code LIKE '22%' OR code LIKE '23%' OR code LIKE 'OR%' OR code LIKE '54%' THEN 422
                             ELSE 500 END;
                err := format('webhook "%s": %s', w.endpoint, left(err, 500));
                -- what the block set is undone with it (0.34.0: a cancellation
                -- rolled back was answered "applied")
                result_status := NULL; order_id := NULL; log_id := NULL;
                cancellation := NULL; cancel_to := NULL; known := NULL;
        END;
    END IF;

    INSERT INTO orders.webhook_logs (id, webhook_id, delivery_id, request_payload, response_status, order_created_id, error_message)
    VALUES (coalesce(log_id, orders.new_id()), w.id, delivery_id, CASE WHEN http NOT IN (401, 404, 413) THEN doc END,
            http, order_id, err)
    RETURNING id INTO log_id;
    PERFORM set_config('response.status', http::text, true);
    PERFORM set_config('orders.acting_for', coalesce(acting_before, ''), true);
    RETURN jsonb_strip_nulls(jsonb_build_object(
        'status', coalesce(result_status, 'rejected'), 'http_status', http, 'order_id', order_id,
        'log_id', log_id, 'code', CASE WHEN http >= 300 THEN code END,
        'error', CASE WHEN http >= 300 OR result_status = 'ignored' THEN err END,
        'cancellation', cancellation));
END
$$;

CREATE FUNCTION orders.restoring(rel oid) RETURNS boolean
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'orders_restoring';
GRANT EXECUTE ON FUNCTION orders.restoring(oid) TO PUBLIC;

CREATE FUNCTION orders.site_price_check() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.restoring(TG_RELID) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'site %: metrics.price % is not an amount', left(NEW.domain, 64), left((NEW.metrics -> 'price')::text, 64)
        USING ERRCODE = '22023',
              HINT = 'metrics.price is what the client pays for the site: a JSON number from 0 to 9999999999.99 (or leave it out).';
END
$$;
CREATE TRIGGER site_price_check BEFORE INSERT OR UPDATE OF metrics ON orders.order_site_selections
    FOR EACH ROW WHEN (CASE WHEN jsonb_typeof(NEW.metrics -> 'price') = 'number'
                            THEN (NEW.metrics ->> 'price')::numeric NOT BETWEEN 0 AND 9999999999.99
                            ELSE coalesce(jsonb_typeof(NEW.metrics -> 'price'), 'null') <> 'null' END)
    EXECUTE FUNCTION orders.site_price_check();
REVOKE ALL ON FUNCTION orders.site_price_check() FROM PUBLIC;

CREATE OR REPLACE FUNCTION orders.customer_columns_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF orders.by_maintainer(TG_RELID) OR NOT orders.api_request() THEN
        RETURN NEW;
    END IF;
    -- (0.29.0) whose login a customer row is: its own (a sign-up), or an
    -- admin's decision — a customer rep re-pointed a customer's account_id
    -- to its own account and read that customer's orders outside its scope
    IF (CASE WHEN TG_OP = 'INSERT' THEN NEW.account_id IS NOT NULL AND NEW.account_id IS DISTINCT FROM orders.actor_account()
             ELSE NEW.account_id IS DISTINCT FROM OLD.account_id END)
       AND orders.current_staff_role() IS DISTINCT FROM 'admin' THEN
        PERFORM orders.refuse_column('orders.customers', 'account_id', 'admins (and a customer signing up, its own)');
    END IF;
    -- (0.39.0) a customer row keeps its id: a customer re-keyed its own row
    -- (one without orders), or learnt from 23505 which ids other customers have
    IF TG_OP = 'UPDATE' AND NEW.id IS DISTINCT FROM OLD.id THEN
        PERFORM orders.refuse_column('orders.customers', 'id', 'the extension (a row keeps its id)');
    END IF;
    IF orders.has_permission('customers', 'edit') THEN
        RETURN NEW;
    END IF;
    IF (TG_OP = 'INSERT' AND NEW.tags <> '[]') OR (TG_OP = 'UPDATE' AND NEW.tags IS DISTINCT FROM OLD.tags) THEN
        PERFORM orders.refuse_column('orders.customers', 'tags', 'staff');
    END IF;
    RETURN NEW;
END
$$;

DO $upgrade$
DECLARE
    was "char";
BEGIN
    SELECT tgenabled INTO was FROM pg_catalog.pg_trigger
     WHERE tgrelid = 'orders.customers'::pg_catalog.regclass AND tgname = 'customer_columns_guard';
    IF was IS NOT NULL THEN         -- dropped by a DBA: left dropped
        CREATE OR REPLACE TRIGGER customer_columns_guard BEFORE INSERT OR UPDATE OF tags, account_id, id
            ON orders.customers FOR EACH ROW WHEN (orders.api_request())
            EXECUTE FUNCTION orders.customer_columns_guard();
        IF was <> 'O' THEN
            EXECUTE pg_catalog.format('ALTER TABLE orders.customers %s TRIGGER customer_columns_guard',
                                      CASE was WHEN 'A' THEN 'ENABLE ALWAYS' WHEN 'R' THEN 'ENABLE REPLICA'
                                               ELSE 'DISABLE' END);
        END IF;
    END IF;
END
$upgrade$;

CREATE OR REPLACE FUNCTION orders.workflow_task_step(config jsonb, ctx jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- (0.39.0) through numeric: 3.0 passes check_workflow_steps as a whole
    -- number, and as text it failed every run (22P02)
    due date := CASE WHEN config ? 'due_days' THEN current_date + (config ->> 'due_days')::numeric::integer END;
    n integer;
BEGIN
    IF config ->> 'assigned_to' IN ('assigned_rep', 'assigned_agent') AND ctx ->> 'order_id' IS NULL THEN
        RAISE EXCEPTION 'create_task for the % needs an order', config ->> 'assigned_to' USING ERRCODE = 'OR116';
    END IF;
    INSERT INTO orders.notifications (user_id, type, title, message, data)
    SELECT s.id, 'workflow', left(orders.workflow_render(config ->> 'title', ctx -> 'data'), 200),
           left(orders.workflow_render(config ->> 'message', ctx -> 'data'), 2000),
           ctx -> 'data' || jsonb_strip_nulls(jsonb_build_object('task', true, 'due_date', due,
                                              'workflow_id', ctx ->> 'workflow_id', 'execution_id', ctx ->> 'execution_id'))
      FROM orders.workflow_recipients(config ->> 'assigned_to', (ctx ->> 'order_id')::uuid) s;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'create_task: % names no active staff member', config ->> 'assigned_to' USING ERRCODE = 'OR117';
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object('tasks', n, 'due_date', due));
END
$$;

CREATE OR REPLACE FUNCTION orders.share_review_sites(token text, order_group_id uuid, selections jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(share_review_sites.token, 'approve');
    g orders.order_groups;
BEGIN
    -- (0.39.0) 22004, as review_sites (was OR075 naming <NULL>)
    IF share_review_sites.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.share_review_sites: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT FROM orders.order_groups og
                    WHERE og.id = share_review_sites.order_group_id AND og.order_id = t.order_id) THEN
        PERFORM orders.group_not_found(share_review_sites.order_group_id);
    END IF;
    -- (0.28.0) a link reviews what its order's customer may: the sites of an
    -- open, unpaid order (a customer's own link rewrote a paid order's
    -- approved site and rejected the others) — judged by apply_review
    -- (0.34.0) before the review and again on the order locked after its
    -- sites and group (OR073)
    g := orders.apply_review(share_review_sites.order_group_id, share_review_sites.selections, 'share:' || t.id);
    RETURN jsonb_build_object('id', g.id, 'link_count', g.link_count, 'approved', g.approved_count,
                              'rejected', g.rejected_count, 'suggested', g.suggested_count,
                              'group_status', g.group_status);
END
$$;

CREATE OR REPLACE FUNCTION orders.complete_outbox(id uuid, error text DEFAULT NULL, worker text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
    -- (0.39.0) 22004 (was OR100 naming <NULL>)
    IF complete_outbox.id IS NULL THEN
        RAISE EXCEPTION 'orders.complete_outbox: argument "id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF worker IS NULL OR worker = '' THEN
        RAISE EXCEPTION 'orders.complete_outbox: worker must name the worker that claimed the message'
            USING ERRCODE = '22023',
                  HINT = 'Pass the name given to orders.claim_outbox: without it a late worker could complete another''s claim.';
    END IF;
    SELECT * INTO m FROM orders.outbox o WHERE o.id = complete_outbox.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', complete_outbox.id
            USING ERRCODE = 'OR100';
    ELSIF m.done_at IS NOT NULL AND error IS NULL AND worker = m.locked_by THEN
        RETURN 'done';			-- the completing worker's retried call
    ELSIF m.done_at IS NOT NULL OR m.dead_at IS NOT NULL OR m.locked_until IS NULL
          OR m.locked_until < clock_timestamp() OR m.locked_by IS DISTINCT FROM worker THEN
        RAISE EXCEPTION 'outbox message % is not held by %', complete_outbox.id,
                        'worker ' || quote_literal(left(worker, 64))
            USING ERRCODE = 'OR101',
                  DETAIL = CASE WHEN m.done_at IS NOT NULL THEN 'It is done.'
                                WHEN m.dead_at IS NOT NULL THEN 'It is dead.'
                                WHEN m.locked_until IS NULL THEN 'Nobody has claimed it since its last attempt.'
                                ELSE 'Its lease ran out or another worker holds it; it will be (or was) tried again.' END,
                  HINT = 'Claim messages with orders.claim_outbox and complete them within the lease.';
    END IF;
    IF error IS NULL THEN
        -- locked_by stays: the completing worker (its retried call answers done)
        UPDATE orders.outbox o SET done_at = now(), locked_until = NULL WHERE o.id = m.id;
        RETURN 'done';
    ELSIF m.attempts >= m.max_attempts THEN
        UPDATE orders.outbox o SET dead_at = now(), locked_until = NULL, last_error = left(error, 1000)
         WHERE o.id = m.id;
        RETURN 'dead';
    END IF;
    UPDATE orders.outbox o
       SET run_after = clock_timestamp() + least(interval '1 second' * power(2, least(m.attempts, 12)), interval '1 hour'),
           locked_by = NULL, locked_until = NULL, last_error = left(error, 1000)
     WHERE o.id = m.id;
    RETURN 'retry';
END
$$;

CREATE OR REPLACE FUNCTION orders.complete_analysis(order_group_id uuid, suggestions jsonb)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
    o orders.orders;
    bad jsonb;
    bad_n bigint;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF complete_analysis.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.complete_analysis: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF jsonb_typeof(suggestions) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestions must be a JSON array of {domain, domain_id, metrics}'
            USING ERRCODE = '22023';
    END IF;
    -- a suggestion the INSERT would refuse in its own words, named here
    SELECT x.v, x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE coalesce(orders.normalize_domain(x.v ->> 'domain'), '') = ''
        OR NOT coalesce(x.v ->> 'domain_id', '00000000-0000-0000-0000-000000000000')
               ~* '^\{?[0-9a-f]{4}(-?[0-9a-f]{4}){7}\}?$'
     ORDER BY x.n LIMIT 1;
    IF FOUND AND coalesce(orders.normalize_domain(bad ->> 'domain'), '') = '' THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion % has no domain', bad_n
            USING ERRCODE = '22023', HINT = 'Each suggestion is {domain, domain_id, metrics}: domain is the site''s host name.';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: domain_id "%" is not a uuid', bad_n, left(bad ->> 'domain_id', 64)
            USING ERRCODE = '22P02', HINT = 'domain_id is the analysis''s id of the domain (a uuid); leave it out when there is none.';
    END IF;
    -- (0.39.0) a domain that normalises to no host name (a number, "a_b.com",
    -- "-x.org", "localhost", over 253 characters) failed the INSERT's check,
    -- 23514, without naming the suggestion
    SELECT x.v -> 'domain', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE NOT (orders.normalize_domain(x.v ->> 'domain') ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
                AND length(orders.normalize_domain(x.v ->> 'domain')) <= 253)
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: domain "%" is not a host name', bad_n, left(bad #>> '{}', 64)
            USING ERRCODE = '22023', HINT = 'A domain is a host name such as blog.example.com (letters, digits and hyphens, dot-separated).';
    END IF;
    -- (0.35.0) metrics, when given, an object (an array failed the INSERT's
    -- check, 23514, without naming the suggestion)
    SELECT x.v -> 'metrics', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE coalesce(jsonb_typeof(x.v -> 'metrics'), 'null') NOT IN ('object', 'null')
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: metrics % is not a JSON object', bad_n, left(bad::text, 64)
            USING ERRCODE = '22023', HINT = 'metrics is an object such as {"dr": 54, "traffic": 1200, "price": 90}.';
    END IF;
    -- (0.29.0) the price the client pays for a site: a JSON number of at
    -- least 0 (a price sent as text made an item of 0; a negative or huge
    -- one failed the client's approval later with 23514 or 22003)
    SELECT x.v -> 'metrics' -> 'price', x.n INTO bad, bad_n FROM jsonb_array_elements(suggestions) WITH ORDINALITY x (v, n)
     WHERE jsonb_typeof(x.v -> 'metrics') = 'object'
       AND coalesce(jsonb_typeof(x.v -> 'metrics' -> 'price'), 'null') <> 'null'
       AND CASE WHEN jsonb_typeof(x.v -> 'metrics' -> 'price') = 'number'
                THEN (x.v -> 'metrics' ->> 'price')::numeric NOT BETWEEN 0 AND 9999999999.99
                ELSE true END
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'orders.complete_analysis: suggestion %: metrics.price % is not an amount', bad_n, left(bad::text, 64)
            USING ERRCODE = '22023',
                  HINT = 'metrics.price is what the client pays for the site: a JSON number from 0 to 9999999999.99.';
    END IF;
    IF NOT EXISTS (SELECT FROM orders.orders ord JOIN orders.order_groups og ON og.order_id = ord.id
                    WHERE og.id = complete_analysis.order_group_id) THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    -- (0.37.0) a group deleted while the INSERT's foreign key waited for it
    -- is the group_not_found it would have been a moment earlier (was 23503)
    BEGIN
        INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics)
        SELECT complete_analysis.order_group_id, orders.normalize_domain(s ->> 'domain'),
               (s ->> 'domain_id')::uuid, coalesce(nullif(s -> 'metrics', 'null'::jsonb), '{}')
          FROM jsonb_array_elements(suggestions) s
        ON CONFLICT ON CONSTRAINT order_site_selections_order_group_id_domain_key DO NOTHING;
    EXCEPTION WHEN foreign_key_violation THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END;
    UPDATE orders.order_groups og
       SET analysis_started_at = coalesce(og.analysis_started_at, now()), analysis_completed_at = now(),
           group_status = CASE WHEN og.approved_count >= og.link_count THEN 'complete' ELSE 'reviewing' END
     WHERE og.id = complete_analysis.order_group_id
    RETURNING og.* INTO g;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(complete_analysis.order_group_id);
    END IF;
    SELECT * INTO o FROM orders.orders WHERE id = g.order_id FOR NO KEY UPDATE;
    IF FOUND AND o.status = 'analyzing'
       AND NOT EXISTS (SELECT FROM orders.order_groups og
                        WHERE og.order_id = o.id AND og.analysis_completed_at IS NULL) THEN
        PERFORM orders.transition(o.id, 'reviewing', 'analysis complete');
    END IF;
    RETURN g;
END
$$;

CREATE OR REPLACE FUNCTION orders.cron_field_values(field text, lo integer, hi integer)
    RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text;
    m text[];
    a integer;
    b integer;
    step integer;
    vals integer[] := '{}';
BEGIN
    -- (0.39.0) the range of a cron field (0-59 at most): "*" of a range of
    -- two billion values failed with XX000 (an allocation too large)
    IF lo < 0 OR hi > 59 OR lo > hi THEN
        RAISE EXCEPTION 'orders.cron_field_values: the range %-% is no cron field''s', lo, hi
            USING ERRCODE = '22023', HINT = 'A cron field''s values lie within 0-59 (minutes), 0-23, 1-31, 1-12 or 0-7.';
    END IF;
    FOREACH part IN ARRAY string_to_array(field, ',') LOOP
        m := regexp_match(part, '^(?:(\*)|([0-9]{1,2})-([0-9]{1,2})|([0-9]{1,2}))(?:/([0-9]{1,2}))?$');
        IF m IS NULL THEN
            RETURN NULL;
        END IF;
        IF m[1] = '*' THEN
            a := lo; b := hi;
        ELSIF m[2] IS NOT NULL THEN
            a := m[2]::integer; b := m[3]::integer;
        ELSE
            a := m[4]::integer; b := CASE WHEN m[5] IS NOT NULL THEN hi ELSE a END;
        END IF;
        step := coalesce(m[5]::integer, 1);
        IF a < lo OR b > hi OR a > b OR step < 1 THEN
            RETURN NULL;
        END IF;
        vals := vals || ARRAY(SELECT generate_series(a, b, step));
    END LOOP;
    RETURN vals;
END
$$;

-- a deactivated author's workflows stop, as a deleted author's
CREATE TRIGGER workflow_author_deactivated AFTER UPDATE OF is_active ON orders.staff
    FOR EACH ROW WHEN (OLD.is_active AND NOT NEW.is_active) EXECUTE FUNCTION orders.workflow_author_deleted();

DO $upgrade$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger
                WHERE tgrelid = 'orders.orders'::pg_catalog.regclass AND tgname = 'check_assignment') THEN
        ALTER TRIGGER check_assignment ON orders.orders RENAME TO orders_assignment_check;
    END IF;
END
$upgrade$;

-- prices stored before site_price_check that it would refuse: reported
DO $upgrade$
DECLARE
    n bigint;
BEGIN
    SELECT pg_catalog.count(*) INTO n FROM orders.order_site_selections x
     WHERE CASE WHEN pg_catalog.jsonb_typeof(x.metrics OPERATOR(pg_catalog.->) 'price') OPERATOR(pg_catalog.=) 'number'
                THEN (x.metrics OPERATOR(pg_catalog.->>) 'price')::pg_catalog.numeric NOT BETWEEN 0 AND 9999999999.99
                ELSE coalesce(pg_catalog.jsonb_typeof(x.metrics OPERATOR(pg_catalog.->) 'price'), 'null') OPERATOR(pg_catalog.<>) 'null' END;
    IF n > 0 THEN
        RAISE WARNING 'orders 0.39.0: % sites have a metrics.price that is no amount from 0 to 9999999999.99 (an approved one''s item is priced 0, or its approval fails)', n
            USING HINT = 'SELECT id, domain, metrics FROM orders.order_site_selections WHERE CASE WHEN jsonb_typeof(metrics -> ''price'') = ''number'' THEN (metrics ->> ''price'')::numeric NOT BETWEEN 0 AND 9999999999.99 ELSE coalesce(jsonb_typeof(metrics -> ''price''), ''null'') <> ''null'' END; then write each price as such a JSON number.';
    END IF;
END
$upgrade$;

-- (0.39.0) workflows: tag steps need customers.edit (a fourth argument)
DROP FUNCTION orders.workflow_author_refusal(uuid, uuid, uuid);

CREATE FUNCTION orders.workflow_author_refusal(author uuid, order_id uuid, customer_id uuid, tags boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account uuid;
    saved text[];
    refusal text;
BEGIN
    IF author IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT s.account_id INTO account FROM orders.staff s WHERE s.id = author;
    IF account IS NULL THEN
        RETURN 'its author has no login: nobody to answer for it';
    END IF;
    saved := orders.act_as(account);
    refusal := CASE
        WHEN NOT (orders.has_permission('workflows', 'create') OR orders.has_permission('workflows', 'edit'))
            THEN 'its author is not active staff with workflows.create or workflows.edit'
        -- (0.39.0) tag steps are the author's only with customers.edit: an
        -- agent given workflows.create tagged and untagged customers it may
        -- not edit (its tags fired other workflows)
        WHEN workflow_author_refusal.tags AND NOT orders.has_permission('customers', 'edit')
            THEN 'its author may not change customers'' tags (customers.edit)'
        WHEN workflow_author_refusal.order_id IS NOT NULL AND NOT EXISTS (
                 SELECT FROM orders.orders o
                  WHERE o.id = workflow_author_refusal.order_id AND orders.has_permission('orders', 'view')
                    AND orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status))
            THEN 'the order is outside its author''s reach'
        WHEN workflow_author_refusal.customer_id IS NOT NULL AND NOT EXISTS (
                 SELECT FROM orders.customers c
                  WHERE c.id = workflow_author_refusal.customer_id AND orders.sees_customer(c.id, c.account_id))
            THEN 'the customer is outside its author''s reach' END;
    PERFORM orders.act_back(saved);
    RETURN refusal;
END
$$;

CREATE FUNCTION orders.check_webhook_url(url text, step_id text)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    authority text := substring(url FROM '^[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)');
    host text;
BEGIN
    -- the whole authority, up to the path: a "\" or "@" in it is user
    -- information to some clients (curl, Python read hooks.example.com\@10.0.0.1
    -- as a user before the host 10.0.0.1)
    IF authority ~ '[@\\]' THEN
        RAISE EXCEPTION 'workflow step "%": a webhook URL carries no user or password', left(step_id, 64)
            USING ERRCODE = 'OR111';
    END IF;
    host := lower(rtrim(regexp_replace(coalesce(authority, ''), ':[0-9]{0,5}$', ''), '.'));
    IF host !~ '^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
       OR host ~ '(^|\.)(0x[0-9a-f]*|[0-9]+)$' OR host ~ '(^|\.)localhost$' OR length(host) > 253 THEN
        RAISE EXCEPTION 'workflow step "%": a webhook URL names its receiver by a public host name, not "%"',
                        left(step_id, 64), left(host, 64)
            USING ERRCODE = 'OR111',
                  HINT = 'IP addresses (in any spelling) and localhost are refused, Unicode names are written in punycode (xn--); the outbox worker checks where the name resolves.';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION orders.check_workflow_steps(steps jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    step jsonb;
    n integer := 0;
    sid text;
    cfg jsonb;
    ids text[] := '{}';
BEGIN
    IF jsonb_array_length(steps) NOT BETWEEN 1 AND 50 THEN
        RAISE EXCEPTION 'workflow_steps must hold 1 to 50 steps, not %', jsonb_array_length(steps) USING ERRCODE = 'OR111';
    END IF;
    FOR step IN SELECT s FROM jsonb_array_elements(steps) s LOOP
        n := n + 1;
        IF jsonb_typeof(step) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'workflow step % is not an object', n USING ERRCODE = 'OR111';
        END IF;
        sid := coalesce(step ->> 'id', 'step-' || n);
        PERFORM orders.check_workflow_keys(step, '{id,type,config,order}', format('workflow step "%s"', left(sid, 64)), 'OR111');
        -- (0.39.0) no ":": the outbox keys are "workflow:<run>:<step>[:customer|:<staff>]",
        -- and a step "s:customer" had the key of step "s"'s customer message (one of them lost)
        IF step ? 'id' AND (jsonb_typeof(step -> 'id') <> 'string' OR sid = '' OR length(sid) > 64 OR sid ~ ':') THEN
            RAISE EXCEPTION 'workflow step %: "id" must be a name of 1 to 64 characters without ":"', n USING ERRCODE = 'OR111';
        ELSIF sid = ANY (ids) THEN
            RAISE EXCEPTION 'workflow step id "%" is used twice', sid USING ERRCODE = 'OR111';
        ELSIF step ? 'order' AND jsonb_typeof(step -> 'order') <> 'number' THEN
            RAISE EXCEPTION 'workflow step "%": "order" must be a number', sid USING ERRCODE = 'OR111';
        END IF;
        ids := ids || sid;
        cfg := coalesce(step -> 'config', '{}');
        IF jsonb_typeof(cfg) <> 'object' THEN
            RAISE EXCEPTION 'workflow step "%": "config" must be an object', sid USING ERRCODE = 'OR111';
        -- (0.39.0) a message's template at most 2,000 characters (rendered, it
        -- is cut there too): a run wrote 600 MB of notifications from 50
        -- steps of {{customer_name}} repeated 60,000 times
        ELSIF length(cfg ->> 'message') > 2000 OR length(cfg ->> 'title') > 2000 THEN
            RAISE EXCEPTION 'workflow step "%": "message" and "title" hold at most 2000 characters', sid USING ERRCODE = 'OR111';
        -- (0.39.0) and the names that go verbatim into outbox payloads and
        -- customers' tags: a template, a tag's label and color (1 MB each
        -- made 48 MB of outbox messages from one run)
        ELSIF length(cfg ->> 'template') > 100 OR length(cfg ->> 'label') > 100 OR length(cfg ->> 'color') > 32 THEN
            RAISE EXCEPTION 'workflow step "%": "template" and "label" hold at most 100 characters, "color" 32', sid USING ERRCODE = 'OR111';
        END IF;
        CASE step ->> 'type'
        WHEN 'update_customer_tag' THEN
            PERFORM orders.check_workflow_keys(cfg, '{tag_id,action,label,color,condition}',
                                               format('workflow step "%s"', sid), 'OR111');
            IF jsonb_typeof(cfg -> 'tag_id') IS DISTINCT FROM 'string' OR cfg ->> 'tag_id' = ''
               OR length(cfg ->> 'tag_id') > 64 THEN
                RAISE EXCEPTION 'workflow step "%": "tag_id" must name the tag (1 to 64 characters)', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'action' AND coalesce(cfg ->> 'action', '') NOT IN ('add', 'remove') THEN
                RAISE EXCEPTION 'workflow step "%": "action" must be add or remove', sid USING ERRCODE = 'OR111';
            ELSIF jsonb_path_exists(cfg, '$.label ? (@.type() != "string")')
                  OR jsonb_path_exists(cfg, '$.color ? (@.type() != "string")') THEN
                RAISE EXCEPTION 'workflow step "%": "label" and "color" must be strings', sid USING ERRCODE = 'OR111';
            END IF;
            IF cfg ? 'condition' THEN
                IF jsonb_typeof(cfg -> 'condition') <> 'string' THEN
                    RAISE EXCEPTION 'workflow step "%": "condition" must be a string', sid USING ERRCODE = 'OR113';
                END IF;
                PERFORM orders.workflow_condition(cfg ->> 'condition');
            END IF;
        WHEN 'send_notification' THEN
            PERFORM orders.check_workflow_keys(cfg, '{target,channel,template,title,message,type,url}',
                                               format('workflow step "%s"', sid), 'OR111');
            IF cfg ? 'channel' AND coalesce(cfg ->> 'channel', '') NOT IN ('in_app', 'sms', 'email', 'webhook') THEN
                RAISE EXCEPTION 'workflow step "%": "channel" must be in_app, sms, email or webhook', sid USING ERRCODE = 'OR111';
            ELSIF cfg ->> 'channel' = 'webhook' THEN
                IF coalesce(cfg ->> 'url', '') !~* '^https?://\S+$' OR length(cfg ->> 'url') > 2000 THEN
                    RAISE EXCEPTION 'workflow step "%": a webhook notification needs "url" (http or https)', sid USING ERRCODE = 'OR111';
                END IF;
                PERFORM orders.check_webhook_url(cfg ->> 'url', sid);
            ELSE
                PERFORM orders.check_workflow_recipient(cfg -> 'target', sid, 'target', true);
                IF cfg ->> 'target' = 'customer' AND cfg ->> 'channel' = 'in_app' THEN
                    RAISE EXCEPTION 'workflow step "%": customers have no in-app notifications', sid
                        USING ERRCODE = 'OR111', HINT = 'Use channel sms or email for the customer.';
                END IF;
            END IF;
            IF jsonb_typeof(cfg -> 'template') IS DISTINCT FROM 'string' AND jsonb_typeof(cfg -> 'title') IS DISTINCT FROM 'string' THEN
                RAISE EXCEPTION 'workflow step "%": a notification needs a "template" or a "title"', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'type' AND coalesce(cfg ->> 'type', '') NOT IN ('order', 'delivery', 'system', 'workflow', 'alert') THEN
                RAISE EXCEPTION 'workflow step "%": "type" must be order, delivery, system, workflow or alert', sid USING ERRCODE = 'OR111';
            END IF;
        WHEN 'create_task' THEN
            PERFORM orders.check_workflow_keys(cfg, '{assigned_to,title,message,due_days}',
                                               format('workflow step "%s"', sid), 'OR111');
            PERFORM orders.check_workflow_recipient(cfg -> 'assigned_to', sid, 'assigned_to', false);
            IF jsonb_typeof(cfg -> 'title') IS DISTINCT FROM 'string' OR cfg ->> 'title' = '' THEN
                RAISE EXCEPTION 'workflow step "%": a task needs a "title"', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'due_days' AND (jsonb_typeof(cfg -> 'due_days') <> 'number'
                  OR (cfg ->> 'due_days')::numeric NOT BETWEEN 0 AND 365 OR (cfg ->> 'due_days')::numeric % 1 <> 0) THEN
                RAISE EXCEPTION 'workflow step "%": "due_days" must be a whole number from 0 to 365', sid USING ERRCODE = 'OR111';
            END IF;
        ELSE
            RAISE EXCEPTION 'workflow step "%": unknown step type %', sid, coalesce(left(step ->> 'type', 64), '(none)')
                USING ERRCODE = 'OR111', HINT = 'Step types: update_customer_tag, send_notification, create_task.';
        END CASE;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION orders.check_workflow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
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
            -- so until this commits (FOR KEY SHARE): an author's own edit
            -- that waited for its deactivation (which stopped its
            -- workflows) switched the workflow on again, with the identity
            -- of the statement's snapshot
            IF NEW.created_by_user_id IS NULL
               OR NOT EXISTS (SELECT FROM orders.staff st WHERE st.id = NEW.created_by_user_id AND st.is_active FOR KEY SHARE) THEN
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

CREATE OR REPLACE FUNCTION orders.workflow_notify_step(config jsonb, step_id text, ctx jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target text := config ->> 'target';
    channel text := coalesce(config ->> 'channel', CASE WHEN config ->> 'target' = 'customer' THEN 'sms' ELSE 'in_app' END);
    data jsonb := ctx -> 'data';
    title text := left(orders.workflow_render(coalesce(config ->> 'title', initcap(replace(config ->> 'template', '_', ' '))), data), 200);
    body text := left(orders.workflow_render(config ->> 'message', data), 2000);
    key text := 'workflow:' || (ctx ->> 'execution_id') || ':' || step_id;
    ids jsonb := '[]';
    s record;
    address text;
BEGIN
    IF channel = 'webhook' THEN
        ids := ids || to_jsonb(orders.enqueue_outbox('webhook',
            jsonb_build_object('url', config ->> 'url', 'template', config ->> 'template', 'title', title,
                               'message', body, 'data', data), key));
        RETURN jsonb_build_object('channel', channel, 'outbox_ids', ids);
    ELSIF target = 'customer' THEN
        SELECT CASE channel WHEN 'sms' THEN c.phone ELSE c.email END INTO address
          FROM orders.customers c WHERE c.id = (ctx ->> 'customer_id')::uuid;
        IF ctx ->> 'customer_id' IS NULL THEN
            RAISE EXCEPTION 'send_notification to the customer needs a customer' USING ERRCODE = 'OR116',
                  DETAIL = 'The run has no order and no customer.';
        ELSIF coalesce(address, '') = '' THEN
            RAISE EXCEPTION 'the customer has no % for send_notification', CASE channel WHEN 'sms' THEN 'phone' ELSE 'e-mail' END
                USING ERRCODE = 'OR117', DETAIL = format('customer %s', ctx ->> 'customer_id');
        END IF;
        ids := ids || to_jsonb(orders.enqueue_outbox(channel,
            jsonb_build_object('to', address, 'customer_id', ctx ->> 'customer_id', 'template', config ->> 'template',
                               'title', title, 'message', body, 'data', data), key || ':customer'));
        RETURN jsonb_build_object('channel', channel, 'outbox_ids', ids);
    END IF;
    IF target IN ('assigned_rep', 'assigned_agent') AND ctx ->> 'order_id' IS NULL THEN
        RAISE EXCEPTION 'send_notification to the % needs an order', target USING ERRCODE = 'OR116';
    END IF;
    FOR s IN SELECT * FROM orders.workflow_recipients(target, (ctx ->> 'order_id')::uuid) LOOP
        IF channel = 'in_app' THEN
            INSERT INTO orders.notifications (user_id, type, title, message, data)
            VALUES (s.id, coalesce(config ->> 'type', 'workflow'), coalesce(nullif(title, ''), ctx ->> 'workflow_name'), body,
                    data || jsonb_build_object('workflow_id', ctx ->> 'workflow_id', 'execution_id', ctx ->> 'execution_id'));
            ids := ids || to_jsonb(s.id);
        ELSE
            address := CASE channel WHEN 'sms' THEN s.phone ELSE s.email END;
            CONTINUE WHEN coalesce(address, '') = '';
            ids := ids || to_jsonb(orders.enqueue_outbox(channel,
                jsonb_build_object('to', address, 'staff_id', s.id, 'template', config ->> 'template',
                                   'title', title, 'message', body, 'data', data), key || ':' || s.id));
        END IF;
    END LOOP;
    IF ids = '[]' THEN
        RAISE EXCEPTION 'send_notification: % names no active staff member%', target,
                        CASE WHEN channel = 'in_app' THEN '' ELSE ' with a ' || CASE channel WHEN 'sms' THEN 'phone' ELSE 'e-mail' END END
            USING ERRCODE = 'OR117';
    END IF;
    RETURN jsonb_build_object('channel', channel,
                              CASE WHEN channel = 'in_app' THEN 'notified' ELSE 'outbox_ids' END, ids);
END
$$;

CREATE OR REPLACE FUNCTION orders.execute_workflow(workflow_id uuid, order_id uuid, customer_id uuid, trigger_event jsonb)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    o orders.orders%ROWTYPE;
    exec_id uuid := orders.new_id();
    ctx jsonb;
    step jsonb;
    sid text;
    started timestamptz := clock_timestamp();
    step_started timestamptz;
    output jsonb;
    done jsonb := '[]';
    errors jsonb := '[]';
    depth integer := CASE WHEN current_setting('orders_workflow.depth', true) ~ '^[0-9]{1,2}$'
                          THEN current_setting('orders_workflow.depth', true)::integer ELSE 0 END;
    -- (0.39.0) the runs one top-level run started, at any depth: customer_tag
    -- workflows that remove and add their own tag fanned out exponentially
    -- (two adds per run, 8 deep: 512 runs; three: over two minutes)
    nested integer := CASE WHEN current_setting('orders_workflow.nested', true) ~ '^[0-9]{1,9}$'
                           THEN current_setting('orders_workflow.nested', true)::integer ELSE 0 END;
    e_code text;
    e_msg text;
    e_detail text;
    e_hint text;
    refusal text;
BEGIN
    -- the workflow as this transaction sees it, kept from being deleted
    -- until the run is stored: one deleted, deactivated or created after
    -- the transaction's snapshot does not run
    SELECT * INTO w FROM orders.workflows x
     WHERE x.id = execute_workflow.workflow_id AND x.is_active
       FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF order_id IS NOT NULL THEN
        SELECT * INTO o FROM orders.orders x WHERE x.id = execute_workflow.order_id;
        customer_id := coalesce(customer_id, o.customer_id);
    END IF;
    ctx := jsonb_build_object(
        'execution_id', exec_id, 'workflow_id', w.id, 'workflow_name', w.name,
        'order_id', order_id, 'customer_id', customer_id,
        'data', jsonb_strip_nulls(jsonb_build_object(
            'order_id', order_id, 'order_number', o.order_number, 'status', o.status,
            'payment_status', o.payment_status, 'total_amount', o.total_amount, 'currency', o.currency,
            'customer_id', customer_id,
            -- (0.37.0) at most 200 characters: a customer's 1.9 MB name went into
            -- every notification and outbox message of its workflows
            'customer_name', (SELECT left(c.full_name, 200) FROM orders.customers c WHERE c.id = customer_id),
            'workflow', w.name)));
    nested := CASE WHEN depth = 0 THEN 0 ELSE nested + 1 END;
    PERFORM set_config('orders_workflow.nested', nested::text, true);
    IF nested > 65 THEN
        RETURN NULL;        -- the 65th was stored failed: the rest neither run nor write
    END IF;
    refusal := CASE WHEN depth < 8 AND nested <= 64 THEN
                   orders.workflow_author_refusal(w.created_by_user_id, order_id, customer_id,
                                                  w.workflow_steps @? '$[*] ? (@.type == "update_customer_tag")') END;
    IF depth >= 8 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'workflow runs nested more than 8 deep (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
    ELSIF nested > 64 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'one workflow run started more than 64 others (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
    ELSIF refusal IS NOT NULL THEN
        -- (0.38.0) its author may not run it now: no step runs
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', format('workflow "%s" did not run: %s', left(w.name, 64), refusal),
            'error_code', '42501',
            'details', jsonb_build_object('author', w.created_by_user_id,
                                          'hint', 'An admin who changes the workflow becomes its author.'),
            'timestamp', clock_timestamp()));
    ELSE
        PERFORM set_config('orders_workflow.depth', (depth + 1)::text, true);
        -- a step without an id is "step-<its place in the list>", as validated
        FOR step IN SELECT s || jsonb_build_object('id', coalesce(s ->> 'id', 'step-' || i))
                      FROM jsonb_array_elements(w.workflow_steps) WITH ORDINALITY e(s, i)
                     ORDER BY (s ->> 'order')::numeric NULLS LAST, i LOOP
            sid := step ->> 'id';
            step_started := clock_timestamp();
            BEGIN
                output := CASE step ->> 'type'
                    WHEN 'update_customer_tag' THEN orders.workflow_tag_step(step -> 'config', customer_id)
                    WHEN 'send_notification' THEN orders.workflow_notify_step(step -> 'config', sid, ctx)
                    WHEN 'create_task' THEN orders.workflow_task_step(step -> 'config', ctx) END;
                done := done || jsonb_build_object(
                    'step_id', sid, 'status', CASE WHEN output ? 'skipped' THEN 'skipped' ELSE 'completed' END,
                    'started_at', step_started, 'completed_at', clock_timestamp(), 'output', output);
            EXCEPTION
                WHEN serialization_failure OR deadlock_detected OR lock_not_available THEN
                    RAISE;
                WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS e_code = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                    errors := errors || jsonb_build_object(
                        'step_id', sid, 'error', left(e_msg, 1000), 'error_code', e_code,
                        'details', jsonb_strip_nulls(jsonb_build_object('detail', nullif(e_detail, ''), 'hint', nullif(e_hint, ''))),
                        'timestamp', clock_timestamp());
                    EXIT;
            END;
        END LOOP;
        PERFORM set_config('orders_workflow.depth', depth::text, true);
    END IF;
    INSERT INTO orders.workflow_executions (id, workflow_id, order_id, customer_id, status, trigger_event,
                                            steps_completed, error_log, started_at, completed_at)
    VALUES (exec_id, w.id, order_id, customer_id, CASE WHEN errors = '[]' THEN 'completed' ELSE 'failed' END,
            coalesce(trigger_event, '{}'), done, errors, started, clock_timestamp())
    ON CONFLICT DO NOTHING;
    RETURN exec_id;
END
$$;
REVOKE ALL ON FUNCTION orders.workflow_author_refusal(uuid, uuid, uuid, boolean) FROM PUBLIC;

-- workflows written before 0.39.0 that its checks refuse: those posting to
-- a URL check_webhook_url refuses are stopped (they sent order data to an
-- address inside the network, or to a name not yet checked by a worker);
-- the others are reported
DO $upgrade$
DECLARE
    stopped text[];
    stopped_ids uuid[];
    flagged text[];
    r record;
BEGIN
    FOR r IN SELECT x.id, x.name, s #>> '{config,url}' AS url, s ->> 'id' AS sid
               FROM orders.workflows x,
                    pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(x.workflow_steps) = 'array'
                                                         THEN x.workflow_steps ELSE '[]' END) s
              WHERE x.is_active AND s #>> '{config,channel}' = 'webhook' LOOP
        CONTINUE WHEN r.id OPERATOR(pg_catalog.=) ANY (coalesce(stopped_ids, '{}'));
        BEGIN
            PERFORM orders.check_webhook_url(r.url, coalesce(r.sid, '-'));
        EXCEPTION WHEN SQLSTATE 'OR111' THEN
            stopped_ids := pg_catalog.array_append(stopped_ids, r.id);
            stopped := pg_catalog.array_append(stopped, r.name);
        END;
    END LOOP;
    IF stopped IS NOT NULL THEN
        UPDATE orders.workflows w SET is_active = false WHERE w.id OPERATOR(pg_catalog.=) ANY (stopped_ids);
        RAISE WARNING 'orders 0.39.0: % workflows stopped: a webhook step posts to a URL that is no public host name: %',
            pg_catalog.cardinality(stopped), pg_catalog.array_to_string(stopped[1:10], ', ')
            USING HINT = 'Give their webhook steps a URL with a public host name, then activate them again.';
    END IF;
    SELECT pg_catalog.array_agg(w.name ORDER BY w.name) INTO flagged
      FROM orders.workflows w
     WHERE EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(w.workflow_steps) = 'array'
                                                                  THEN w.workflow_steps ELSE '[]' END) s
                    WHERE s ->> 'id' OPERATOR(pg_catalog.~) ':'
                       OR pg_catalog.length(s #>> '{config,message}') > 2000 OR pg_catalog.length(s #>> '{config,title}') > 2000
                       OR pg_catalog.length(s #>> '{config,template}') > 100 OR pg_catalog.length(s #>> '{config,label}') > 100
                       OR pg_catalog.length(s #>> '{config,color}') > 32);
    IF flagged IS NOT NULL THEN
        RAISE WARNING 'orders 0.39.0: % workflows have steps 0.39.0 would refuse (a step id with ":", a message or title over 2000 characters, a template or label over 100, a color over 32): %',
            pg_catalog.cardinality(flagged), pg_catalog.array_to_string(flagged[1:10], ', ')
            USING HINT = 'They run as before; the next change of their steps must correct them.';
    END IF;
END
$upgrade$;

CREATE OR REPLACE FUNCTION orders.workflow_recipients(recipient text, order_id uuid)
    RETURNS SETOF orders.staff
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT s.* FROM orders.staff s
     WHERE s.is_active
       AND CASE workflow_recipients.recipient
           WHEN 'assigned_rep' THEN s.id = (SELECT o.assigned_rep_id FROM orders.orders o WHERE o.id = workflow_recipients.order_id)
           WHEN 'assigned_agent' THEN s.id = (SELECT o.assigned_agent_id FROM orders.orders o WHERE o.id = workflow_recipients.order_id)
           ELSE s.role = workflow_recipients.recipient
                OR s.id = CASE WHEN workflow_recipients.recipient ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                               THEN workflow_recipients.recipient::uuid END
           END
     ORDER BY s.id
       FOR KEY SHARE OF s;
END
$$;

CREATE OR REPLACE FUNCTION orders.workflow_render(text text, data jsonb)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT string_agg(s.part, '' ORDER BY s.n)
              FROM (SELECT p.n * 2 - 1 AS n, p.part
                      FROM regexp_split_to_table(workflow_render.text, '\{\{[^{}]*\}\}') WITH ORDINALITY AS p(part, n)
                    UNION ALL
                    SELECT k.n * 2, coalesce(workflow_render.data ->> btrim(k.m[1], E' \t\r\n'), '')
                      FROM regexp_matches(workflow_render.text, '\{\{([^{}]*)\}\}', 'g') WITH ORDINALITY AS k(m, n)) s);
END
$$;
