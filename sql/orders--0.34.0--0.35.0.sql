-- orders 0.34.0 -> 0.35.0
--  * (library) Every kept statement of the library is planned at once with
--    JIT off: a plan costed past jit_above_cost was compiled at every
--    execution (a keyed plan over a DBA's child table without an index:
--    105 ms per status change).  A plan the plan cache made again by
--    itself is prepared again at its next use.
--  * (library) A cancelled order's bookings are read through its items'
--    index, then theirs, whatever the statistics (a plan made before them
--    read every reservation at each cancellation).
--  * (library) A DO INSTEAD rule that replaces one of the extension's
--    writes is refused with 09000 naming its table (was XX000); a stock
--    move that a DBA's BEFORE trigger skipped, 09000 (was OR050).
--  * (library) A delivery agent changes no site's domain or metrics
--    (OR060): an approved site's item is priced from its metrics.
--  * (library) An approved site inserted where a site of its id, or of its
--    group and domain, exists makes no item (an INSERT ... ON CONFLICT
--    made one for the proposed row, never inserted).
--  * A delivery agent inserts no site (the sites' insert policy).
--  * A share link that converts is made by admins (was: customers.edit — a
--    customer rep took over a customer without a login).
--  * webhook_value, webhook_amount, webhook_time: the owner's (no longer
--    PUBLIC: an anonymous call allocated 1 GB).
--  * order_groups: a group's analysis (project, stamps, group_status) is
--    staff's in an API request (group_analysis_guard, OR060).
--  * order_site_selections: a site stays with its order (site_stays,
--    OR074); target_page_url at most 2,048 characters.
--  * order_items: an approved site's item goes with the site's approval
--    (site_item_guard, OR078: not deleted, not moved to another order;
--    OR073: its price and quantity stay once the order is paid or closed).
--  * A NULL id to start_analysis, complete_analysis, site_internal_notes,
--    site_internal_metrics, set_site_internal_notes, create_share_token,
--    revive_outbox (and, in the library, review_sites): 22004 (was a "does
--    not exist" of <NULL>).  complete_analysis names a suggestion whose
--    metrics is no object (22023; was the INSERT's 23514).
--  * (library) review_sites: an entry naming no site is 22023 (was OR076
--    "site null"); a quoted value cut at 64 characters ends with "...".
\echo Use "ALTER EXTENSION orders UPDATE TO '0.35.0'" to load this file. \quit

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
    IF expires_in IS NULL OR expires_in <= interval '0' OR expires_in > interval '90 days' THEN
        RAISE EXCEPTION 'orders.create_share_token: expires_in must be between 0 and 90 days'
            USING ERRCODE = '22023';
    END IF;
    IF cardinality(allowed_actions) = 0 OR NOT allowed_actions <@ ARRAY['view', 'approve', 'convert'] THEN
        RAISE EXCEPTION 'orders.create_share_token: allowed_actions must be some of view, approve, convert, not %',
                        left(allowed_actions::text, 100)
            USING ERRCODE = '22023';
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


ALTER POLICY insert_right ON orders.order_site_selections
    WITH CHECK (NOT (SELECT orders.api_request())
                OR ((SELECT orders.has_permission('orders', 'edit'))
                    AND (SELECT orders.current_staff_role()) IS DISTINCT FROM 'delivery_agent'));


-- group_analysis_guard — in an API request the analysis of a client group
-- (its project, its stamps, its status) is staff's (0.35.0, OR060): a
-- client stamped its group analysed and the order moved to "reviewing"
-- with the next group's analysis, its own never made.
CREATE FUNCTION orders.group_analysis_guard() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col text;
BEGIN
    IF orders.by_maintainer(TG_RELID) OR orders.current_staff_role() IS NOT NULL THEN
        RETURN NEW;
    END IF;
    col := CASE WHEN TG_OP = 'INSERT' THEN
                    CASE WHEN NEW.analysis_project_id IS NOT NULL THEN 'analysis_project_id'
                         WHEN NEW.analysis_started_at IS NOT NULL THEN 'analysis_started_at'
                         WHEN NEW.analysis_completed_at IS NOT NULL THEN 'analysis_completed_at'
                         WHEN NEW.group_status <> 'pending' THEN 'group_status' END
                WHEN NEW.analysis_project_id IS DISTINCT FROM OLD.analysis_project_id THEN 'analysis_project_id'
                WHEN NEW.analysis_started_at IS DISTINCT FROM OLD.analysis_started_at THEN 'analysis_started_at'
                WHEN NEW.analysis_completed_at IS DISTINCT FROM OLD.analysis_completed_at THEN 'analysis_completed_at'
                WHEN NEW.group_status IS DISTINCT FROM OLD.group_status THEN 'group_status' END;
    IF col IS NOT NULL THEN
        PERFORM orders.refuse_column('orders.order_groups', col, 'staff');
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER group_analysis_guard
    BEFORE INSERT OR UPDATE OF analysis_project_id, analysis_started_at, analysis_completed_at, group_status
    ON orders.order_groups FOR EACH ROW WHEN (orders.api_request()) EXECUTE FUNCTION orders.group_analysis_guard();


-- site_stays — a site stays with its order (0.35.0, OR074, as its group
-- does): moved to a group of another order, an approved site left its item
-- in the first order and was then taken back there — from an order already
-- paid (OR073 was judged on the new group's order).  The groups are read as
-- the owner (the caller may not see the other group).  Its WHEN clause asks
-- for a move: other changes pay no call.
CREATE FUNCTION orders.site_stays() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (SELECT g.order_id FROM orders.order_groups g WHERE g.id = NEW.order_group_id)
       IS DISTINCT FROM (SELECT g.order_id FROM orders.order_groups g WHERE g.id = OLD.order_group_id) THEN
        RAISE EXCEPTION 'site % of client group % stays with its order', left(OLD.domain, 64), OLD.order_group_id
            USING ERRCODE = 'OR074',
                  DETAIL = 'Client group ' || NEW.order_group_id || ' belongs to another order; an approved site''s item is its order''s.',
                  HINT = 'Add the site to the other order''s group instead.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER site_stays BEFORE UPDATE OF order_group_id ON orders.order_site_selections
    FOR EACH ROW WHEN (NEW.order_group_id IS DISTINCT FROM OLD.order_group_id) EXECUTE FUNCTION orders.site_stays();

-- site_item_guard — an approved site's item goes with the site's approval
-- (0.35.0, OR078; OR073 for its price and quantity once the order is paid
-- or closed), for everybody: staff deleted such an item from a paid order
-- (the site stayed approved without it) or moved it to another order.  In
-- C (src/site_items.c); its WHEN clause asks for an item made for a site.
CREATE FUNCTION orders.site_item_guard() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_site_item_guard';
CREATE TRIGGER site_item_guard BEFORE DELETE OR UPDATE OF order_id, unit_price, quantity ON orders.order_items
    FOR EACH ROW WHEN (OLD.snapshot ? 'site_selection_id') EXECUTE FUNCTION orders.site_item_guard();

REVOKE ALL ON FUNCTION orders.group_analysis_guard(), orders.site_stays(), orders.site_item_guard() FROM PUBLIC;

ALTER TABLE orders.order_site_selections
    ADD CONSTRAINT order_site_selections_target_page_url_check CHECK (length(target_page_url) <= 2048);

REVOKE ALL ON FUNCTION orders.webhook_value(jsonb, text), orders.webhook_amount(jsonb, text),
                       orders.webhook_time(text) FROM PUBLIC;

-- (0.35.0) a NULL id: 22004, as the other API functions; complete_analysis:
-- metrics that is no object named (22023)

CREATE OR REPLACE FUNCTION orders.start_analysis(order_group_id uuid, analysis_project_id uuid)
    RETURNS orders.order_groups
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g orders.order_groups;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF start_analysis.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.start_analysis: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE orders.order_groups og
       SET analysis_project_id = start_analysis.analysis_project_id,
           analysis_started_at = now(), analysis_completed_at = NULL, group_status = 'analyzing'
     WHERE og.id = start_analysis.order_group_id
    RETURNING og.* INTO g;
    IF NOT FOUND THEN
        PERFORM orders.group_not_found(start_analysis.order_group_id);
    END IF;
    RETURN g;
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
    INSERT INTO orders.order_site_selections (order_group_id, domain, domain_id, metrics)
    SELECT complete_analysis.order_group_id, orders.normalize_domain(s ->> 'domain'),
           (s ->> 'domain_id')::uuid, coalesce(s -> 'metrics', '{}')
      FROM jsonb_array_elements(suggestions) s
    ON CONFLICT ON CONSTRAINT order_site_selections_order_group_id_domain_key DO NOTHING;
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

CREATE OR REPLACE FUNCTION orders.site_internal_notes(order_group_id uuid)
    RETURNS TABLE (selection_id uuid, domain text, internal_notes text)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF site_internal_notes.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.site_internal_notes: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.has_permission('orders', 'view') OR NOT orders.staff_sees_group(site_internal_notes.order_group_id) THEN
        PERFORM orders.group_not_found(site_internal_notes.order_group_id);
    END IF;
    RETURN QUERY SELECT x.id, x.domain, x.internal_notes FROM orders.order_site_selections x
                  WHERE x.order_group_id = site_internal_notes.order_group_id ORDER BY x.domain;
END
$$;

CREATE OR REPLACE FUNCTION orders.site_internal_metrics(order_group_id uuid)
    RETURNS TABLE (selection_id uuid, domain text, internal_metrics jsonb)
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF site_internal_metrics.order_group_id IS NULL THEN
        RAISE EXCEPTION 'orders.site_internal_metrics: argument "order_group_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT orders.has_permission('orders', 'view') OR NOT orders.staff_sees_group(site_internal_metrics.order_group_id) THEN
        PERFORM orders.group_not_found(site_internal_metrics.order_group_id);
    END IF;
    RETURN QUERY SELECT x.id, x.domain, x.internal_metrics FROM orders.order_site_selections x
                  WHERE x.order_group_id = site_internal_metrics.order_group_id ORDER BY x.domain;
END
$$;

CREATE OR REPLACE FUNCTION orders.set_site_internal_notes(selection_id uuid, internal_notes text)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grp uuid := (SELECT x.order_group_id FROM orders.order_site_selections x WHERE x.id = set_site_internal_notes.selection_id);
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF set_site_internal_notes.selection_id IS NULL THEN
        RAISE EXCEPTION 'orders.set_site_internal_notes: argument "selection_id" must not be null' USING ERRCODE = '22004';
    END IF;
    IF grp IS NULL OR NOT orders.has_permission('orders', 'edit') OR NOT orders.staff_sees_group(grp) THEN
        RAISE EXCEPTION 'site % does not exist', set_site_internal_notes.selection_id
            USING ERRCODE = 'OR076', HINT = 'Either no site has this id or you may not edit its order.';
    END IF;
    UPDATE orders.order_site_selections x SET internal_notes = set_site_internal_notes.internal_notes
     WHERE x.id = set_site_internal_notes.selection_id;
END
$$;

CREATE OR REPLACE FUNCTION orders.revive_outbox(id uuid)
    RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m orders.outbox%ROWTYPE;
BEGIN
    -- (0.35.0) 22004, as the other API functions (was: a "does not exist" of <NULL>)
    IF revive_outbox.id IS NULL THEN
        RAISE EXCEPTION 'orders.revive_outbox: argument "id" must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM orders.outbox o WHERE o.id = revive_outbox.id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', revive_outbox.id USING ERRCODE = 'OR100';
    ELSIF m.dead_at IS NULL THEN
        RAISE EXCEPTION 'outbox message % is not dead', revive_outbox.id
            USING ERRCODE = 'OR102',
                  DETAIL = CASE WHEN m.done_at IS NOT NULL THEN 'It is done.' ELSE 'It is still pending.' END;
    END IF;
    UPDATE orders.outbox o
       SET dead_at = NULL, run_after = now(), attempts = 0, locked_by = NULL
     WHERE o.id = m.id;
END
$$;
