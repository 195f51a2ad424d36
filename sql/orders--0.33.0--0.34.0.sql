-- orders 0.33.0 -> 0.34.0
--  * (library) A customer's statement on orders.order_site_selections
--    (review_sites, a PATCH) is judged at its end on every order it
--    touched, locked in id order after the groups in the pass that
--    re-checks approvals (site_counts): still the caller's, open and
--    unpaid, else 42501 and nothing written.  Rejecting a suggested site
--    while the order was paid landed in the paid order (approvals and
--    takings back locked the order; other verdicts did not).
--  * (library) orders.apply_review, the review of a share link, judges its
--    order (OR073, "its sites are final") before the review and again on
--    the order locked after the review's sites and group, with the latest
--    snapshot: share_review_sites leaves the check to it.
--  * (library) A trigger reading a key column that a DBA dropped or gave
--    another type is refused (55000) instead of reading garbage.
\echo Use "ALTER EXTENSION orders UPDATE TO '0.34.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION orders.share_review_sites(token text, order_group_id uuid, selections jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t orders.order_share_tokens := orders.share_token_row(share_review_sites.token, 'approve');
    g orders.order_groups;
BEGIN
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
