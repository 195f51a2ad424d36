-- Stock moved through PostgREST (0.22.0): POST /rpc/move_stock needs
-- products.edit (an admin); a customer rep, who may see products, and a
-- client are refused with 42501 and move nothing; the movements are read
-- by staff who may see products, by no client.
BEGIN;
SELECT plan(8);

-- pg_temp.as(sub) — the request's role and claims, as PostgREST sets them
CREATE FUNCTION pg_temp.as_sub(sub text) RETURNS void LANGUAGE sql AS $$
    SELECT set_config('role', 'authenticated', true),
           set_config('request.jwt.claims', json_build_object('sub', sub, 'role', 'authenticated')::text, true);
$$;

SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT stock_after || ' ' || moved_by
             FROM orders.move_stock('00000000-0000-0000-0000-0000000001a1', '00000000-0000-0000-0000-0000000000e1', 4,
                                    reason => 'delivery')),
          '9 44444444-4444-4444-4444-444444444444', 'POST /rpc/move_stock as the admin: four lamps in (5 + 4), moved by the admin');
SELECT is((SELECT stock_after FROM orders.move_stock('00000000-0000-0000-0000-0000000001a1', '00000000-0000-0000-0000-0000000000e1', 4)),
          9, '... the same request again (a retry): the same answer');
SELECT is((SELECT stock_quantity::int FROM orders.products WHERE id = '00000000-0000-0000-0000-0000000000e1'), 9,
          '... moved once');

SELECT pg_temp.as_sub('55555555-5555-5555-5555-555555555555');
SELECT throws_ok($$SELECT orders.move_stock(gen_random_uuid(), '00000000-0000-0000-0000-0000000000e1', -9)$$, '42501',
                 'moving stock needs the products.edit permission', 'as a customer rep (products.view only): 42501');
SELECT is((SELECT count(*)::int FROM orders.stock_movements), 1, '... who reads the one movement (products.view)');

SELECT pg_temp.as_sub('11111111-1111-1111-1111-111111111111');
SELECT throws_ok($$SELECT orders.move_stock(gen_random_uuid(), '00000000-0000-0000-0000-0000000000e1', -9)$$, '42501', NULL,
                 'as a client: 42501');
SELECT is((SELECT count(*)::int FROM orders.stock_movements), 0, '... who reads no movement');

SELECT pg_temp.as_sub('44444444-4444-4444-4444-444444444444');
SELECT is((SELECT stock_quantity::int FROM orders.products WHERE id = '00000000-0000-0000-0000-0000000000e1'), 9,
          'the refused requests moved nothing');
SELECT * FROM finish();
ROLLBACK;
