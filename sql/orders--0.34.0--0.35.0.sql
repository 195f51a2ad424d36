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

REVOKE ALL ON FUNCTION orders.group_analysis_guard(), orders.site_stays() FROM PUBLIC;

ALTER TABLE orders.order_site_selections
    ADD CONSTRAINT order_site_selections_target_page_url_check CHECK (length(target_page_url) <= 2048);

REVOKE ALL ON FUNCTION orders.webhook_value(jsonb, text), orders.webhook_amount(jsonb, text),
                       orders.webhook_time(text) FROM PUBLIC;
