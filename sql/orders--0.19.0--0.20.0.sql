-- orders 0.19.0 -> 0.20.0
--  * The activity log keeps no statistics of its details: nothing is planned
--    by their values, and ANALYZE sorting a sample of documents cost a busy
--    server ~2 % of its CPU while the log grew.  (The library of 0.20.0 also
--    builds a log row's details without writing and parsing JSON text, and
--    draws the random part of ids a block at a time: no SQL change.)
\echo Use "ALTER EXTENSION orders UPDATE TO '0.20.0'" to load this file. \quit
ALTER TABLE orders.activity_logs ALTER COLUMN details SET STATISTICS 0;
