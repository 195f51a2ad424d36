-- orders 0.37.0 -> 0.38.0
--  * lifecycle_graph shows each edge's allowed_staff and gate (the staff
--    roles that take it in an API request, and the check it waits for):
--    an API client reading the graph saw only allowed_roles, the database
--    roles, which API requests never are.
--  * share_creator_may_share: a link that converts stands while its
--    creator is an admin (only admins make one): an admin demoted to
--    customer rep kept a converting link, and another account of theirs
--    redeemed it to take the customer over.
--  * todays_order_summary: collected_amount and pending_amount are 0.00
--    when no order counts, as when some do (a customer saw 0, staff 0.00).
--  * (library) the caller's identity (staff row, role, permissions,
--    customer rows) is looked up again when the statement's snapshot sees
--    other committed rows: a READ COMMITTED transaction's read-only
--    statements kept a deactivated staff member's authority until its
--    first write.
--  * (library) a status change run by a trigger of another (a DBA's
--    trigger calling orders.transition()) leaves the outer change its
--    notes, idempotency key and actor.
--  * (library) a generated order number comes back when its INSERT is
--    rolled back to a savepoint, and an upsert may send an order's own
--    number back (OR009 only for an ORD- number no order has).

\echo Use "ALTER EXTENSION orders UPDATE TO '0.38.0'" to load this file. \quit

CREATE OR REPLACE VIEW orders.lifecycle_graph WITH (security_invoker = true) AS
SELECT t.lifecycle, t.from_status, fs.category AS from_category,
       t.to_status, ts.category AS to_category, t.stamp_column, t.allowed_roles,
       t.allowed_staff, t.gate
  FROM orders.lifecycle_transitions t
  JOIN orders.lifecycle_states fs ON fs.lifecycle = t.lifecycle AND fs.status = t.from_status
  JOIN orders.lifecycle_states ts ON ts.lifecycle = t.lifecycle AND ts.status = t.to_status
 ORDER BY t.lifecycle, fs.position, ts.position;

CREATE OR REPLACE VIEW orders.todays_order_summary WITH (security_invoker = true) AS
SELECT count(*)::integer AS orders_today,
       (count(*) FILTER (WHERE s.category = 'fulfilled'))::integer AS delivered_count,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'collected'), 0.00)
           AS collected_amount,
       coalesce(sum(o.total_amount) FILTER (WHERE s.category = 'fulfilled' AND o.payment_status = 'pending'), 0.00)
           AS pending_amount,
       (count(*) FILTER (WHERE s.category = 'cancelled'))::integer AS cancelled_count,
       (count(*) FILTER (WHERE s.category = 'returned'))::integer AS returned_count
  FROM orders.orders o
  JOIN orders.lifecycle_states s ON s.lifecycle = o.lifecycle AND s.status = o.status
 WHERE o.created_at >= CURRENT_DATE::timestamptz AND o.created_at < (CURRENT_DATE + 1)::timestamptz;

CREATE OR REPLACE FUNCTION orders.share_creator_may_share(t orders.order_share_tokens) RETURNS boolean
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims text := current_setting('request.jwt.claims', true);
    may boolean;
BEGIN
    IF t.created_by IS NULL THEN
        RETURN true;
    END IF;
    PERFORM set_config('request.jwt.claims', json_build_object('sub', t.created_by)::text, true);
    may := orders.actor_account() IS NULL
           OR (orders.may_share(t.order_id)
               AND (NOT 'convert' = ANY (t.allowed_actions) OR orders.current_staff_role() IS NOT DISTINCT FROM 'admin'));
    PERFORM set_config('request.jwt.claims', coalesce(claims, ''), true);
    RETURN may;
END
$$;
