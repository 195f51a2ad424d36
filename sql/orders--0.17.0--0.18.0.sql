-- orders 0.17.0 -> 0.18.0
--  * The library: the activity log leaves out the derived writes of the
--    extension — a customer's statistics, an order's delivered leads and
--    subtotal (with its total), the stock an order moves, a group's site
--    counts — when the extension writes them and nothing else in the row
--    changed; their cause is logged (the status or payment change) or is a
--    row of its own (the lead, the item).  The same columns written by anybody else are logged
--    as before (doc/activity.md, "Derived writes").
\echo Use "ALTER EXTENSION orders UPDATE TO '0.18.0'" to load this file. \quit
COMMENT ON TABLE orders.activity_logs IS
    'Who changed what (seed 004): one row per changed row of a tracked table, written by orders.track_changes as the owner; not the counters, stock and subtotals the extension derives from other rows';
