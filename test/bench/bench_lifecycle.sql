-- The benchmarks' two-state lifecycle "bench" (a <-> b; a -> b stamps
-- confirmed_at), in a fresh schema bench: \ir-ed by the setup files, and by
-- test/bench/scale_out.sh on each node.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

INSERT INTO orders.lifecycles (name, initial_status) VALUES ('bench', 'a');
INSERT INTO orders.lifecycle_states (lifecycle, status, category, position)
VALUES ('bench', 'a', 'open', 1), ('bench', 'b', 'open', 2);
INSERT INTO orders.lifecycle_transitions (lifecycle, from_status, to_status, stamp_column)
VALUES ('bench', 'a', 'b', 'confirmed_at'), ('bench', 'b', 'a', NULL);
