-- orders 0.33.0 -> 0.34.0
--  * A customer's verdicts on sites (orders.order_site_selections: through
--    review_sites or a PATCH) are judged again at the end of the statement
--    on the orders touched, as locked (customer_edit_recheck, trigger
--    sites_customer_recheck): still the caller's, open and unpaid, else
--    42501 and nothing written.  Rejecting a suggested site while the order
--    was paid landed in the paid order (approvals and takings back locked
--    the order; other verdicts did not).
--  * share_review_sites judges its order again once the review's sites and
--    group are locked, on the order as locked (OR073): the check before the
--    review read it without a lock.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.34.0'" to load this file. \quit

-- (library) customer_edit_recheck finds the orders of a sites statement
-- through their groups; fires after site_counts_update (name order), which
-- locks the groups: sites, group, order is the lock order of every writer.
CREATE TRIGGER sites_customer_recheck AFTER UPDATE ON orders.order_site_selections
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders.customer_edit_recheck();

CREATE OR REPLACE FUNCTION orders.share_review_sites(token text, order_group_id uuid, selections jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(share_review_sites.token, 'approve');
    g orders.order_groups;
    o orders.orders;
BEGIN
    IF NOT EXISTS (SELECT FROM orders.order_groups og
                    WHERE og.id = share_review_sites.order_group_id AND og.order_id = t.order_id) THEN
        PERFORM orders.group_not_found(share_review_sites.order_group_id);
    END IF;
    -- (0.28.0) a link reviews what its order's customer may: the sites of an
    -- open, unpaid order (a customer's own link rewrote a paid order's
    -- approved site and rejected the others).  Judged before the review,
    -- then (0.34.0) again on the order as locked, after the review's sites
    -- and group (the lock order of every writer of sites): a payment that
    -- committed while the review ran stops it.
    FOR pass IN 1..2 LOOP
        IF pass = 1 THEN
            SELECT * INTO o FROM orders.orders x WHERE x.id = t.order_id;
        ELSE
            g := orders.apply_review(share_review_sites.order_group_id, share_review_sites.selections, 'share:' || t.id);
            SELECT * INTO o FROM orders.orders x WHERE x.id = t.order_id FOR NO KEY UPDATE;
        END IF;
        IF o.paid_at IS NOT NULL OR orders.status_category(o.lifecycle, o.status) <> 'open' THEN
            RAISE EXCEPTION 'order "%" is %: its sites are final', o.order_number,
                            CASE WHEN o.paid_at IS NOT NULL THEN 'paid' ELSE o.status END
                USING ERRCODE = 'OR073', HINT = 'A share link reviews the sites of an order until it is paid.';
        END IF;
    END LOOP;
    RETURN jsonb_build_object('id', g.id, 'link_count', g.link_count, 'approved', g.approved_count,
                              'rejected', g.rejected_count, 'suggested', g.suggested_count,
                              'group_status', g.group_status);
END
$$;
