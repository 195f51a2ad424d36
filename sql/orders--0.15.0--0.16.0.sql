-- orders 0.15.0 -> 0.16.0
--  * orders.staff_id_of(text) is dropped: unused since 0.13.0 (the staff
--    row is looked up in C), kept until now for sessions still running a
--    0.12.0 library.
--  * The library (no catalog change for this): request.jwt.claims and
--    jwt.claims.sub are defined by the library with an assign hook, so the
--    policies compare a counter of their changes per row instead of
--    reading and comparing the claims (doc/security.md, "Who is who").
\echo Use "ALTER EXTENSION orders UPDATE TO '0.16.0'" to load this file. \quit
DROP FUNCTION orders.staff_id_of(text);
