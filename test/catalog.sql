-- test/catalog.sql — everything the extension puts in a database, one line
-- per fact, sorted: test/catalog_identity.sh compares a fresh install with
-- 0.1.0 + ALTER EXTENSION UPDATE.  OIDs and the order objects were created
-- in never appear; column order does (it is the row type).  Privileges are
-- compared as they take effect (a default ACL and the same ACL written out
-- are equal).
\pset tuples_only on
\pset format unaligned
CREATE FUNCTION pg_temp.acl(a aclitem[]) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN (SELECT string_agg(i::text, ',' ORDER BY i::text) FROM unnest(a) i);
WITH ext AS (SELECT * FROM pg_extension WHERE extname = 'orders'),
nsp AS (SELECT 'orders'::regnamespace AS oid),
rel AS (SELECT c.* FROM pg_class c, nsp WHERE c.relnamespace = nsp.oid),
facts (f) AS (
    SELECT 'extension ' || extversion || ' relocatable=' || extrelocatable || ' schema=' || extnamespace::regnamespace FROM ext
    UNION ALL
    SELECT 'extension depends on ' || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) || ' ' || d.deptype::text
      FROM pg_depend d, ext WHERE d.classid = 'pg_extension'::regclass AND d.objid = ext.oid
    UNION ALL
    SELECT 'config ' || c::regclass || ' ' || coalesce(w, '')
      FROM ext, unnest(extconfig, extcondition) AS u(c, w)
    UNION ALL
    SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
      FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
       AND d.deptype = 'e'
    UNION ALL
    SELECT 'schema acl ' || pg_temp.acl(coalesce(nspacl, acldefault('n', nspowner)))
      FROM pg_namespace WHERE nspname = 'orders'
    UNION ALL
    SELECT 'schema initprivs ' || privtype::text || ' ' || pg_temp.acl(initprivs)
      FROM pg_init_privs, nsp WHERE objoid = nsp.oid AND classoid = 'pg_namespace'::regclass AND objsubid = 0
    UNION ALL
    SELECT format('relation %s kind=%s options=%s rls=%s force_rls=%s acl=%s comment=%s',
                  relname, relkind, reloptions, relrowsecurity, relforcerowsecurity,
                  pg_temp.acl(coalesce(relacl, acldefault((CASE WHEN relkind = 'S' THEN 's' ELSE 'r' END)::"char", relowner))),
                  obj_description(oid, 'pg_class'))
      FROM rel
    UNION ALL
    SELECT format('column %s.%s #%s %s notnull=%s generated=%s identity=%s default=%s acl=%s comment=%s',
                  r.relname, a.attname,
                  (SELECT count(*) FROM pg_attribute b
                    WHERE b.attrelid = a.attrelid AND b.attnum > 0 AND NOT b.attisdropped AND b.attnum <= a.attnum),
                  format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated, a.attidentity,
                  pg_get_expr(ad.adbin, ad.adrelid), pg_temp.acl(a.attacl), col_description(r.oid, a.attnum))
      FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
     WHERE r.relkind IN ('r', 'v', 'p')
    UNION ALL
    SELECT format('constraint %s.%s %s', r.relname, c.conname, pg_get_constraintdef(c.oid))
      FROM rel r JOIN pg_constraint c ON c.conrelid = r.oid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM rel r JOIN pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM rel r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT format('policy %s.%s %s', tablename, policyname, row(permissive, roles, cmd, qual, with_check))
      FROM pg_policies WHERE schemaname = 'orders'
    UNION ALL
    SELECT format('view %s %s', r.relname, pg_get_viewdef(r.oid)) FROM rel r WHERE r.relkind = 'v'
    UNION ALL
    SELECT format('sequence %s %s', s.seqrelid::regclass,
                  row(s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle))
      FROM pg_sequence s JOIN rel r ON r.oid = s.seqrelid
    UNION ALL
    SELECT format('function %s(%s) returns %s kind=%s volatile=%s strict=%s secdef=%s leakproof=%s parallel=%s cost=%s rows=%s config=%s acl=%s comment=%s def=%s',
                  p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
                  p.prokind, p.provolatile, p.proisstrict, p.prosecdef, p.proleakproof, p.proparallel,
                  p.procost, p.prorows, p.proconfig, pg_temp.acl(coalesce(p.proacl, acldefault('f', p.proowner))),
                  obj_description(p.oid, 'pg_proc'), pg_get_functiondef(p.oid))
      FROM pg_proc p, nsp WHERE p.pronamespace = nsp.oid
    UNION ALL
    SELECT format('type %s type=%s base=%s notnull=%s default=%s acl=%s',
                  t.typname, t.typtype, t.typbasetype::regtype, t.typnotnull, t.typdefault,
                  pg_temp.acl(coalesce(t.typacl, acldefault('T', t.typowner))))
      FROM pg_type t, nsp WHERE t.typnamespace = nsp.oid AND t.typtype = 'd'
    UNION ALL
    SELECT format('domain constraint %s.%s %s', t.typname, c.conname, pg_get_constraintdef(c.oid))
      FROM pg_type t JOIN pg_constraint c ON c.contypid = t.oid, nsp WHERE t.typnamespace = nsp.oid
    UNION ALL
    SELECT 'lifecycle ' || row(l.*)::text FROM orders.lifecycles l
    UNION ALL
    SELECT 'state ' || row(s.*)::text FROM orders.lifecycle_states s
    UNION ALL
    SELECT 'transition ' || row(t.*)::text FROM orders.lifecycle_transitions t
)
SELECT f FROM facts ORDER BY f COLLATE "C";
