
---------------------------------------------------------------------------
-- Workflows (issue 13, seed 004; doc/workflows.md): "when an order is
-- delivered and collected and worth at least 100, tag the customer VIP,
-- notify the rep, text the customer" as data.  A workflow names its trigger
-- (order_status, customer_tag, webhook, time_based, manual) with a config
-- and a list of steps (update_customer_tag, send_notification,
-- create_task); both are validated on write.  An execution runs inside the
-- transaction of the change that fired it, as the extension's owner: its
-- row and its in-database effects commit or roll back with that change, and
-- what must leave the database goes to the outbox.  A failing step fails
-- the execution (visible in workflow_executions.error_log) and undoes only
-- its own effects, never the change that fired it.
---------------------------------------------------------------------------

CREATE TABLE orders.workflows (
    id                  uuid PRIMARY KEY DEFAULT orders.new_id(),
    name                orders.label NOT NULL CHECK (length(name) <= 200),
    description         text CHECK (length(description) <= 10000),
    trigger_type        text NOT NULL
                        CHECK (trigger_type IN ('webhook', 'order_status', 'customer_tag', 'time_based', 'manual')),
    trigger_config      orders.json_object NOT NULL DEFAULT '{}' CHECK (orders.jsonb_within(trigger_config, 65536)),
    workflow_steps      orders.json_array NOT NULL DEFAULT '[]' CHECK (orders.jsonb_within(workflow_steps, 262144)),
    is_active           boolean NOT NULL DEFAULT true,
    created_by_user_id  uuid REFERENCES orders.staff (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE orders.workflows IS
    'Automations (seed 004): a trigger and its config, and the steps to run; validated on write';
CREATE INDEX workflows_trigger_type_idx ON orders.workflows (trigger_type) WHERE is_active;
CREATE INDEX workflows_created_by_idx ON orders.workflows (created_by_user_id);
CREATE INDEX workflows_trigger_config_idx ON orders.workflows USING gin (trigger_config jsonb_path_ops);

CREATE TABLE orders.workflow_executions (
    id               uuid PRIMARY KEY DEFAULT orders.new_id(),
    workflow_id      uuid NOT NULL REFERENCES orders.workflows (id) ON DELETE CASCADE,
    order_id         uuid REFERENCES orders.orders (id) ON DELETE SET NULL,
    customer_id      uuid REFERENCES orders.customers (id) ON DELETE SET NULL,
    status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
    trigger_event    orders.json_object NOT NULL DEFAULT '{}',
    steps_completed  orders.json_array NOT NULL DEFAULT '[]',
    error_log        orders.json_array NOT NULL DEFAULT '[]',
    started_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);
COMMENT ON TABLE orders.workflow_executions IS
    'One row per run of a workflow (seed 004), written as the owner in the transaction of the change that fired it';
COMMENT ON COLUMN orders.workflow_executions.trigger_event IS
    'What fired the run: the status change, the tag added, the webhook delivery, the scheduled minute or the manual call';
CREATE INDEX workflow_executions_workflow_idx ON orders.workflow_executions (workflow_id, started_at DESC);
CREATE INDEX workflow_executions_order_idx ON orders.workflow_executions (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX workflow_executions_customer_idx ON orders.workflow_executions (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX workflow_executions_failed_idx ON orders.workflow_executions (started_at DESC) WHERE status = 'failed';
CREATE INDEX workflow_executions_started_idx ON orders.workflow_executions (started_at DESC);
-- a time-based workflow runs once per scheduled minute, however often pg_cron calls
CREATE UNIQUE INDEX workflow_executions_scheduled_idx
    ON orders.workflow_executions (workflow_id, (trigger_event ->> 'scheduled_for'))
    WHERE trigger_event ? 'scheduled_for';

---------------------------------------------------------------------------
-- The fixed grammars: cron schedules and step conditions are parsed, never
-- executed as SQL.
---------------------------------------------------------------------------

-- cron_field_values — the values one field of a five-field cron schedule
-- allows within lo..hi ("*", "n", "a-b", each optionally "/step" — "n/step"
-- is n..hi — joined by commas), or NULL when the field is not of that form
-- or leaves the range.  (pg_cron refuses "n/step"; it gets only the minute
-- field, which schedule_matches checks for it.)
CREATE FUNCTION orders.cron_field_values(field text, lo integer, hi integer)
    RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    part text;
    m text[];
    a integer;
    b integer;
    step integer;
    vals integer[] := '{}';
BEGIN
    -- (0.39.0) the range of a cron field (0-59 at most): "*" of a range of
    -- two billion values failed with XX000 (an allocation too large)
    IF lo < 0 OR hi > 59 OR lo > hi THEN
        RAISE EXCEPTION 'orders.cron_field_values: the range %-% is no cron field''s', lo, hi
            USING ERRCODE = '22023', HINT = 'A cron field''s values lie within 0-59 (minutes), 0-23, 1-31, 1-12 or 0-7.';
    END IF;
    FOREACH part IN ARRAY string_to_array(field, ',') LOOP
        m := regexp_match(part, '^(?:(\*)|([0-9]{1,2})-([0-9]{1,2})|([0-9]{1,2}))(?:/([0-9]{1,2}))?$');
        IF m IS NULL THEN
            RETURN NULL;
        END IF;
        IF m[1] = '*' THEN
            a := lo; b := hi;
        ELSIF m[2] IS NOT NULL THEN
            a := m[2]::integer; b := m[3]::integer;
        ELSE
            a := m[4]::integer; b := CASE WHEN m[5] IS NOT NULL THEN hi ELSE a END;
        END IF;
        step := coalesce(m[5]::integer, 1);
        IF a < lo OR b > hi OR a > b OR step < 1 THEN
            RETURN NULL;
        END IF;
        vals := vals || ARRAY(SELECT generate_series(a, b, step));
    END LOOP;
    RETURN vals;
END
$$;

-- schedule_matches — does the five-field cron schedule (minute hour
-- day-of-month month day-of-week, as pg_cron and cron read them: a day of
-- month and a day of week that both do not start with "*" match either,
-- else both must — "*/2" counts as starting with "*", 0.28.0) match the
-- local time "at"?  NULL for a schedule that is not valid, and (0.28.0) for
-- an "n/step" minute field: pg_cron gets the minutes and refuses that form
-- (the workflow never got its job), and (0.37.0) for one longer than 1000
-- characters (its fields' lists are read in time growing with their square:
-- a 100 kB schedule ran for minutes; every value of every field listed
-- one by one is under 400).
CREATE FUNCTION orders.schedule_matches(schedule text, at timestamp)
    RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f text[] := regexp_split_to_array(btrim(schedule), '\s+');
    mi integer[];
    hr integer[];
    dom integer[];
    mon integer[];
    dow integer[];
    day_ok boolean;
BEGIN
    IF length(schedule) > 1000 OR array_length(f, 1) IS DISTINCT FROM 5 OR f[1] ~ '(^|,)[0-9]{1,2}/' THEN
        RETURN NULL;
    END IF;
    mi := orders.cron_field_values(f[1], 0, 59);
    hr := orders.cron_field_values(f[2], 0, 23);
    dom := orders.cron_field_values(f[3], 1, 31);
    mon := orders.cron_field_values(f[4], 1, 12);
    dow := orders.cron_field_values(f[5], 0, 7);
    IF mi IS NULL OR hr IS NULL OR dom IS NULL OR mon IS NULL OR dow IS NULL THEN
        RETURN NULL;
    END IF;
    day_ok := CASE
        WHEN left(f[3], 1) = '*' OR left(f[5], 1) = '*' THEN
             extract(day FROM at)::integer = ANY (dom)
             AND (extract(dow FROM at)::integer = ANY (dow) OR (extract(dow FROM at) = 0 AND 7 = ANY (dow)))
        ELSE extract(day FROM at)::integer = ANY (dom)
             OR extract(dow FROM at)::integer = ANY (dow) OR (extract(dow FROM at) = 0 AND 7 = ANY (dow))
    END;
    RETURN day_ok AND extract(minute FROM at)::integer = ANY (mi) AND extract(hour FROM at)::integer = ANY (hr)
       AND extract(month FROM at)::integer = ANY (mon);
END
$$;

-- workflow_cron_schedule — the schedule pg_cron runs a time-based workflow's
-- job on (pg_cron reads schedules in GMT): the workflow's minutes of every
-- hour when the time zone is a whole number of hours from UTC all year,
-- else every minute; orders.run_scheduled_workflow then matches the full
-- schedule against the local time, so daylight saving time is honoured.
CREATE FUNCTION orders.workflow_cron_schedule(schedule text, timezone text)
    RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN bool_and(extract(minute FROM (t AT TIME ZONE timezone) - (t AT TIME ZONE 'UTC')) = 0)
                THEN (regexp_split_to_array(btrim(schedule), '\s+'))[1] || ' * * * *'
                ELSE '* * * * *' END
      FROM generate_series(date_trunc('year', now()), date_trunc('year', now()) + interval '11 months',
                           interval '1 month') AS t;
END;

-- (0.43.0) schedule_due — the local time (in "timezone") at which
-- "schedule" is due in the minute of "at": that minute's own local time
-- when the schedule matches it; else, when the wall-clock time an hour
-- before did not exist (a spring-forward hour skipped it), that time if
-- the schedule matches it — a daily 02:30 runs at 03:30 on the day the
-- clocks skip 02:00–03:00 (cron's way; it did not run that day); NULL when
-- not due.
CREATE FUNCTION orders.schedule_due(schedule text, timezone text, at timestamptz)
    RETURNS timestamp
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN orders.schedule_matches(schedule, l) THEN l
                WHEN ((l - interval '1 hour') AT TIME ZONE timezone) AT TIME ZONE timezone <> l - interval '1 hour'
                     AND orders.schedule_matches(schedule, l - interval '1 hour') THEN l - interval '1 hour' END
      FROM (SELECT date_trunc('minute', at) AT TIME ZONE timezone AS l) x;
END;

-- workflow_condition — a step's condition "field comparison literal" over
-- the customer's columns (total_orders >= 10, city = 'Cairo'): parsed into
-- {field, op, value}; refused (OR113) when it is not of that form, names
-- another column, or compares a text column with < or >.
CREATE FUNCTION orders.workflow_condition(condition text)
    RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m text[] := regexp_match(condition,
        '^\s*([a-z_]+)\s*(>=|<=|<>|!=|=|<|>)\s*(-?[0-9]{1,12}(\.[0-9]{1,4})?|''[^'']{0,200}'')\s*$');
    numeric_field boolean;
BEGIN
    IF m IS NULL THEN
        RAISE EXCEPTION 'workflow condition "%" is not "field comparison literal"', left(condition, 64)
            USING ERRCODE = 'OR113',
                  HINT = 'For example total_orders >= 10 or city = ''Cairo''; comparisons: = != < <= > >=.';
    END IF;
    numeric_field := m[1] IN ('total_orders', 'total_spent', 'return_rate', 'returned_orders');
    IF NOT numeric_field AND m[1] NOT IN ('city', 'area', 'postal_code') THEN
        RAISE EXCEPTION 'workflow condition "%": "%" is not a customer field a condition may use', left(condition, 64), left(m[1], 64)
            USING ERRCODE = 'OR113',
                  HINT = 'Fields: total_orders, total_spent, return_rate, returned_orders, city, area, postal_code.';
    ELSIF numeric_field <> (left(m[3], 1) <> '''') THEN
        RAISE EXCEPTION 'workflow condition "%": % compares with a %', left(condition, 64), m[1],
                        CASE WHEN numeric_field THEN 'text' ELSE 'number' END
            USING ERRCODE = 'OR113';
    ELSIF NOT numeric_field AND m[2] NOT IN ('=', '!=', '<>') THEN
        RAISE EXCEPTION 'workflow condition "%": text fields compare with = or != only', left(condition, 64)
            USING ERRCODE = 'OR113';
    END IF;
    RETURN jsonb_build_object('field', m[1], 'op', CASE m[2] WHEN '<>' THEN '!=' ELSE m[2] END,
                              'value', CASE WHEN numeric_field THEN to_jsonb(m[3]::numeric)
                                            ELSE to_jsonb(substr(m[3], 2, length(m[3]) - 2)) END);
END
$$;

-- workflow_condition_holds — does the customer satisfy the condition?
CREATE FUNCTION orders.workflow_condition_holds(condition text, customer_id uuid)
    RETURNS boolean
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c jsonb := orders.workflow_condition(condition);
    v jsonb;
BEGIN
    SELECT to_jsonb(x) -> (c ->> 'field') INTO v FROM orders.customers x WHERE x.id = customer_id;
    IF v IS NULL OR v = 'null' THEN
        RETURN false;
    ELSIF jsonb_typeof(c -> 'value') = 'number' THEN
        RETURN CASE c ->> 'op'
            WHEN '=' THEN v::numeric = (c ->> 'value')::numeric
            WHEN '!=' THEN v::numeric <> (c ->> 'value')::numeric
            WHEN '<' THEN v::numeric < (c ->> 'value')::numeric
            WHEN '<=' THEN v::numeric <= (c ->> 'value')::numeric
            WHEN '>' THEN v::numeric > (c ->> 'value')::numeric
            ELSE v::numeric >= (c ->> 'value')::numeric END;
    ELSE
        RETURN CASE c ->> 'op' WHEN '=' THEN v #>> '{}' = c ->> 'value' ELSE v #>> '{}' <> c ->> 'value' END;
    END IF;
END
$$;

---------------------------------------------------------------------------
-- Validation on write
---------------------------------------------------------------------------

-- check_workflow_recipient — a recipient of a step: the order's
-- assigned_rep or assigned_agent, a staff role (every active member), a
-- staff id, or (with "customer_ok") the order's customer.
CREATE FUNCTION orders.check_workflow_recipient(recipient jsonb, step_id text, key text, customer_ok boolean)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF jsonb_typeof(recipient) IS DISTINCT FROM 'string'
       OR NOT (recipient #>> '{}' IN ('assigned_rep', 'assigned_agent', 'admin', 'manager', 'customer_rep',
                                      'delivery_agent', 'accountant')
               OR (customer_ok AND recipient #>> '{}' = 'customer')
               OR recipient #>> '{}' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') THEN
        RAISE EXCEPTION 'workflow step "%": % must name a recipient, not %', step_id, key, coalesce(left(recipient::text, 64), 'nothing')
            USING ERRCODE = 'OR111',
                  HINT = 'assigned_rep, assigned_agent, a staff role (admin, manager, customer_rep, delivery_agent, accountant), a staff id'
                         || CASE WHEN customer_ok THEN ' or customer.' ELSE '.' END;
    END IF;
END
$$;

-- check_workflow_keys — refuse (with "code") keys of "obj" outside "allowed".
CREATE FUNCTION orders.check_workflow_keys(obj jsonb, allowed text[], what text, code text)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    extra text;
BEGIN
    SELECT k INTO extra FROM jsonb_object_keys(obj) k WHERE k <> ALL (allowed) ORDER BY k LIMIT 1;
    IF extra IS NOT NULL THEN
        RAISE EXCEPTION '%: unknown key "%"', what, left(extra, 64)
            USING ERRCODE = code, HINT = 'Keys: ' || array_to_string(allowed, ', ') || '.';
    END IF;
END
$$;

-- json_string_list — is "v" a non-empty JSON array of strings, each one of
-- "allowed" when that is given?
CREATE FUNCTION orders.json_string_list(v jsonb, allowed text[] DEFAULT NULL)
    RETURNS boolean
    LANGUAGE sql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN jsonb_typeof(v) IS DISTINCT FROM 'array' OR v = '[]' THEN false
                ELSE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(v) e
                                  WHERE jsonb_typeof(e) <> 'string'
                                     OR (allowed IS NOT NULL AND NOT (e #>> '{}' = ANY (allowed)))) END;
END;

-- check_workflow_trigger — the trigger config of a trigger type (OR110;
-- schedules and time zones OR112).
CREATE FUNCTION orders.check_workflow_trigger(trigger_type text, config jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    what text := format('workflow trigger config (%s)', trigger_type);
    cond jsonb := config -> 'conditions';
    lifecycles text[];
    s text;
BEGIN
    IF config ? 'type' AND config ->> 'type' IS DISTINCT FROM trigger_type THEN
        RAISE EXCEPTION '%: "type" is %, not the workflow''s trigger_type', what, left(config ->> 'type', 64)
            USING ERRCODE = 'OR110';
    END IF;
    CASE trigger_type
    WHEN 'order_status' THEN
        PERFORM orders.check_workflow_keys(config, '{type,conditions}', what, 'OR110');
        IF jsonb_typeof(cond) IS DISTINCT FROM 'object' OR NOT (cond ? 'status' OR cond ? 'payment_status') THEN
            RAISE EXCEPTION '%: "conditions" must name a status or payment_status list (the changes that fire it)', what
                USING ERRCODE = 'OR110',
                      HINT = 'Conditions: status, payment_status (at least one), and the filters min_order_value, lifecycle.';
        END IF;
        PERFORM orders.check_workflow_keys(cond, '{status,payment_status,min_order_value,lifecycle}',
                                           what || ' conditions', 'OR110');
        IF cond ? 'lifecycle' THEN
            IF jsonb_typeof(cond -> 'lifecycle') = 'string' THEN
                lifecycles := ARRAY[cond ->> 'lifecycle'];
            ELSIF orders.json_string_list(cond -> 'lifecycle') THEN
                lifecycles := ARRAY(SELECT jsonb_array_elements_text(cond -> 'lifecycle'));
            ELSE
                RAISE EXCEPTION '%: "lifecycle" must be a lifecycle name or a list of them', what USING ERRCODE = 'OR110';
            END IF;
            SELECT l INTO s FROM unnest(lifecycles) l
             WHERE NOT EXISTS (SELECT 1 FROM orders.lifecycles x WHERE x.name = l) LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION '%: lifecycle "%" does not exist', what, left(s, 64) USING ERRCODE = 'OR110';
            END IF;
        END IF;
        IF cond ? 'status' THEN
            IF NOT orders.json_string_list(cond -> 'status') THEN
                RAISE EXCEPTION '%: "status" must be a non-empty list of statuses', what USING ERRCODE = 'OR110';
            END IF;
            SELECT x INTO s FROM jsonb_array_elements_text(cond -> 'status') x
             WHERE NOT EXISTS (SELECT 1 FROM orders.lifecycle_states st
                                WHERE st.status = x AND (lifecycles IS NULL OR st.lifecycle = ANY (lifecycles)))
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION '%: status "%" is no status of %', what, left(s, 64),
                                coalesce('lifecycle ' || array_to_string(lifecycles, ', '), 'any lifecycle')
                    USING ERRCODE = 'OR110';
            END IF;
        END IF;
        IF cond ? 'payment_status'
           AND NOT orders.json_string_list(cond -> 'payment_status', '{pending,collected,failed,refunded}') THEN
            RAISE EXCEPTION '%: "payment_status" must be a non-empty list of pending, collected, failed, refunded', what
                USING ERRCODE = 'OR110';
        END IF;
        IF cond ? 'min_order_value' AND (jsonb_typeof(cond -> 'min_order_value') IS DISTINCT FROM 'number'
               OR (cond ->> 'min_order_value')::numeric < 0) THEN
            RAISE EXCEPTION '%: "min_order_value" must be a number of at least 0', what USING ERRCODE = 'OR110';
        END IF;
    WHEN 'customer_tag' THEN
        PERFORM orders.check_workflow_keys(config, '{type,tag_id}', what, 'OR110');
        IF jsonb_typeof(config -> 'tag_id') IS DISTINCT FROM 'string' OR config ->> 'tag_id' = ''
           OR length(config ->> 'tag_id') > 64 THEN
            RAISE EXCEPTION '%: "tag_id" must name the tag (1 to 64 characters)', what USING ERRCODE = 'OR110';
        END IF;
    WHEN 'webhook' THEN
        PERFORM orders.check_workflow_keys(config, '{type,webhook_id,event_types}', what, 'OR110');
        IF config ? 'webhook_id' AND NOT EXISTS (
               SELECT 1 FROM orders.webhooks h
                WHERE jsonb_typeof(config -> 'webhook_id') = 'string'
                  AND h.id::text = lower(config ->> 'webhook_id')) THEN
            RAISE EXCEPTION '%: "webhook_id" names no webhook', what USING ERRCODE = 'OR110';
        END IF;
        IF config ? 'event_types'
           AND NOT orders.json_string_list(config -> 'event_types', '{order.created,order.updated}') THEN
            RAISE EXCEPTION '%: "event_types" must be a non-empty list of order.created, order.updated', what
                USING ERRCODE = 'OR110';
        END IF;
    WHEN 'time_based' THEN
        PERFORM orders.check_workflow_keys(config, '{type,schedule,timezone}', what, 'OR110');
        IF jsonb_typeof(config -> 'schedule') IS DISTINCT FROM 'string'
           OR orders.schedule_matches(config ->> 'schedule', localtimestamp) IS NULL THEN
            RAISE EXCEPTION '%: "schedule" % is not a five-field cron schedule', what,
                            coalesce(left(config ->> 'schedule', 64), 'missing')
                USING ERRCODE = 'OR112',
                      HINT = 'minute hour day-of-month month day-of-week, each *, n, a-b, optionally /step (no n/step in the minutes: pg_cron refuses it), joined by commas, 1000 characters at most; for example 0 9 * * 1-5.';
        END IF;
        IF config ? 'timezone' AND (jsonb_typeof(config -> 'timezone') IS DISTINCT FROM 'string'
               OR NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = config ->> 'timezone')) THEN
            RAISE EXCEPTION '%: "timezone" % is not a time zone name', what, left(config ->> 'timezone', 64)
                USING ERRCODE = 'OR112', HINT = 'A name of pg_timezone_names, such as America/New_York or UTC.';
        END IF;
    ELSE        -- manual
        PERFORM orders.check_workflow_keys(config, '{type}', what, 'OR110');
    END CASE;
END
$$;

-- check_webhook_url (0.39.0) — refuse (OR111) a webhook step's URL unless
-- its host is a plain DNS name: letters, digits and hyphens in dot-separated
-- labels, its last label not all digits, not localhost — so no IP literal
-- in any of its spellings (octal, hex, short, IPv6 and IPv4-mapped,
-- percent-encoded, full-width), and no user or password.  The outbox worker
-- would post the run's order data there from inside the network (a cloud's
-- metadata service, an admin port on localhost).  A name is not resolved
-- here: the worker must check where it leads before it connects
-- (doc/outbox.md).
CREATE FUNCTION orders.check_webhook_url(url text, step_id text)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    authority text := substring(url FROM '^[Hh][Tt][Tt][Pp][Ss]?://([^/?#]*)');
    host text;
BEGIN
    -- the whole authority, up to the path: a "\" or "@" in it is user
    -- information to some clients (curl, Python read hooks.example.com\@10.0.0.1
    -- as a user before the host 10.0.0.1)
    IF authority ~ '[@\\]' THEN
        RAISE EXCEPTION 'workflow step "%": a webhook URL carries no user or password', left(step_id, 64)
            USING ERRCODE = 'OR111';
    END IF;
    host := lower(rtrim(regexp_replace(coalesce(authority, ''), ':[0-9]{0,5}$', ''), '.') COLLATE "C");
    IF host !~ '^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
       OR host ~ '(^|\.)(0x[0-9a-f]*|[0-9]+)$' OR host ~ '(^|\.)localhost$' OR length(host) > 253 THEN
        RAISE EXCEPTION 'workflow step "%": a webhook URL names its receiver by a public host name, not "%"',
                        left(step_id, 64), left(host, 64)
            USING ERRCODE = 'OR111',
                  HINT = 'IP addresses (in any spelling) and localhost are refused, Unicode names are written in punycode (xn--); the outbox worker checks where the name resolves.';
    END IF;
END
$$;

-- check_workflow_steps — the steps (OR111; conditions OR113): 1 to 50
-- objects {id, type, config, order}, ids unique.
CREATE FUNCTION orders.check_workflow_steps(steps jsonb)
    RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    step jsonb;
    n integer := 0;
    sid text;
    cfg jsonb;
    ids text[] := '{}';
BEGIN
    IF jsonb_array_length(steps) NOT BETWEEN 1 AND 50 THEN
        RAISE EXCEPTION 'workflow_steps must hold 1 to 50 steps, not %', jsonb_array_length(steps) USING ERRCODE = 'OR111';
    END IF;
    FOR step IN SELECT s FROM jsonb_array_elements(steps) s LOOP
        n := n + 1;
        IF jsonb_typeof(step) IS DISTINCT FROM 'object' THEN
            RAISE EXCEPTION 'workflow step % is not an object', n USING ERRCODE = 'OR111';
        END IF;
        sid := coalesce(step ->> 'id', 'step-' || n);
        PERFORM orders.check_workflow_keys(step, '{id,type,config,order}', format('workflow step "%s"', left(sid, 64)), 'OR111');
        -- (0.39.0) no ":": the outbox keys are "workflow:<run>:<step>[:customer|:<staff>]",
        -- and a step "s:customer" had the key of step "s"'s customer message (one of them lost)
        IF step ? 'id' AND (jsonb_typeof(step -> 'id') <> 'string' OR sid = '' OR length(sid) > 64 OR sid ~ ':') THEN
            RAISE EXCEPTION 'workflow step %: "id" must be a name of 1 to 64 characters without ":"', n USING ERRCODE = 'OR111';
        ELSIF sid = ANY (ids) THEN
            RAISE EXCEPTION 'workflow step id "%" is used twice', sid USING ERRCODE = 'OR111';
        ELSIF step ? 'order' AND jsonb_typeof(step -> 'order') <> 'number' THEN
            RAISE EXCEPTION 'workflow step "%": "order" must be a number', sid USING ERRCODE = 'OR111';
        END IF;
        ids := ids || sid;
        cfg := coalesce(step -> 'config', '{}');
        IF jsonb_typeof(cfg) <> 'object' THEN
            RAISE EXCEPTION 'workflow step "%": "config" must be an object', sid USING ERRCODE = 'OR111';
        -- (0.39.0) a message's template at most 2,000 characters (rendered, it
        -- is cut there too): a run wrote 600 MB of notifications from 50
        -- steps of {{customer_name}} repeated 60,000 times
        ELSIF length(cfg ->> 'message') > 2000 OR length(cfg ->> 'title') > 2000 THEN
            RAISE EXCEPTION 'workflow step "%": "message" and "title" hold at most 2000 characters', sid USING ERRCODE = 'OR111';
        -- (0.39.0) and the names that go verbatim into outbox payloads and
        -- customers' tags: a template, a tag's label and color (1 MB each
        -- made 48 MB of outbox messages from one run)
        ELSIF length(cfg ->> 'template') > 100 OR length(cfg ->> 'label') > 100 OR length(cfg ->> 'color') > 32 THEN
            RAISE EXCEPTION 'workflow step "%": "template" and "label" hold at most 100 characters, "color" 32', sid USING ERRCODE = 'OR111';
        END IF;
        CASE step ->> 'type'
        WHEN 'update_customer_tag' THEN
            PERFORM orders.check_workflow_keys(cfg, '{tag_id,action,label,color,condition}',
                                               format('workflow step "%s"', sid), 'OR111');
            IF jsonb_typeof(cfg -> 'tag_id') IS DISTINCT FROM 'string' OR cfg ->> 'tag_id' = ''
               OR length(cfg ->> 'tag_id') > 64 THEN
                RAISE EXCEPTION 'workflow step "%": "tag_id" must name the tag (1 to 64 characters)', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'action' AND coalesce(cfg ->> 'action', '') NOT IN ('add', 'remove') THEN
                RAISE EXCEPTION 'workflow step "%": "action" must be add or remove', sid USING ERRCODE = 'OR111';
            ELSIF jsonb_path_exists(cfg, '$.label ? (@.type() != "string")')
                  OR jsonb_path_exists(cfg, '$.color ? (@.type() != "string")') THEN
                RAISE EXCEPTION 'workflow step "%": "label" and "color" must be strings', sid USING ERRCODE = 'OR111';
            END IF;
            IF cfg ? 'condition' THEN
                IF jsonb_typeof(cfg -> 'condition') <> 'string' THEN
                    RAISE EXCEPTION 'workflow step "%": "condition" must be a string', sid USING ERRCODE = 'OR113';
                END IF;
                PERFORM orders.workflow_condition(cfg ->> 'condition');
            END IF;
        WHEN 'send_notification' THEN
            PERFORM orders.check_workflow_keys(cfg, '{target,channel,template,title,message,type,url}',
                                               format('workflow step "%s"', sid), 'OR111');
            IF cfg ? 'channel' AND coalesce(cfg ->> 'channel', '') NOT IN ('in_app', 'sms', 'email', 'webhook') THEN
                RAISE EXCEPTION 'workflow step "%": "channel" must be in_app, sms, email or webhook', sid USING ERRCODE = 'OR111';
            ELSIF cfg ->> 'channel' = 'webhook' THEN
                IF coalesce(cfg ->> 'url', '') !~* '^https?://\S+$' OR length(cfg ->> 'url') > 2000 THEN
                    RAISE EXCEPTION 'workflow step "%": a webhook notification needs "url" (http or https)', sid USING ERRCODE = 'OR111';
                END IF;
                PERFORM orders.check_webhook_url(cfg ->> 'url', sid);
            ELSE
                PERFORM orders.check_workflow_recipient(cfg -> 'target', sid, 'target', true);
                IF cfg ->> 'target' = 'customer' AND cfg ->> 'channel' = 'in_app' THEN
                    RAISE EXCEPTION 'workflow step "%": customers have no in-app notifications', sid
                        USING ERRCODE = 'OR111', HINT = 'Use channel sms or email for the customer.';
                END IF;
            END IF;
            IF jsonb_typeof(cfg -> 'template') IS DISTINCT FROM 'string' AND jsonb_typeof(cfg -> 'title') IS DISTINCT FROM 'string' THEN
                RAISE EXCEPTION 'workflow step "%": a notification needs a "template" or a "title"', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'type' AND coalesce(cfg ->> 'type', '') NOT IN ('order', 'delivery', 'system', 'workflow', 'alert') THEN
                RAISE EXCEPTION 'workflow step "%": "type" must be order, delivery, system, workflow or alert', sid USING ERRCODE = 'OR111';
            END IF;
        WHEN 'create_task' THEN
            PERFORM orders.check_workflow_keys(cfg, '{assigned_to,title,message,due_days}',
                                               format('workflow step "%s"', sid), 'OR111');
            PERFORM orders.check_workflow_recipient(cfg -> 'assigned_to', sid, 'assigned_to', false);
            IF jsonb_typeof(cfg -> 'title') IS DISTINCT FROM 'string' OR cfg ->> 'title' = '' THEN
                RAISE EXCEPTION 'workflow step "%": a task needs a "title"', sid USING ERRCODE = 'OR111';
            ELSIF cfg ? 'due_days' AND (jsonb_typeof(cfg -> 'due_days') <> 'number'
                  OR (cfg ->> 'due_days')::numeric NOT BETWEEN 0 AND 365 OR (cfg ->> 'due_days')::numeric % 1 <> 0) THEN
                RAISE EXCEPTION 'workflow step "%": "due_days" must be a whole number from 0 to 365', sid USING ERRCODE = 'OR111';
            END IF;
        ELSE
            RAISE EXCEPTION 'workflow step "%": unknown step type %', sid, coalesce(left(step ->> 'type', 64), '(none)')
                USING ERRCODE = 'OR111', HINT = 'Step types: update_customer_tag, send_notification, create_task.';
        END CASE;
    END LOOP;
END
$$;

-- check_workflow — BEFORE INSERT OR UPDATE on workflows: the config and the
-- steps are valid (else nothing is stored), updated_at moves, and an API
-- caller cannot name another creator.  Runs as the owner: the checks read
-- webhooks, which API roles cannot.
CREATE FUNCTION orders.check_workflow() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- (0.40.0) a restore (orders.restoring) loads the rows as dumped: a
    -- workflow written under older rules (a step id with ':', a webhook URL
    -- the update to 0.39.0 stopped) or whose trigger's webhook was deleted
    -- since failed the COPY, and with it every workflow and run
    IF orders.restoring(TG_RELID) THEN
        RETURN NEW;
    END IF;
    -- (0.29.0) the policies' rights first: this trigger runs before them, and
    -- a caller who may not write workflows heard what was wrong with its
    -- config instead — and whether a webhook id exists
    IF TG_OP = 'INSERT' AND orders.api_request() AND NOT orders.has_permission('workflows', 'create') THEN
        RAISE EXCEPTION 'creating workflows needs the workflows.create permission' USING ERRCODE = '42501';
    END IF;
    IF NEW.trigger_type NOT IN ('webhook', 'order_status', 'customer_tag', 'time_based', 'manual') THEN
        RAISE EXCEPTION 'unknown workflow trigger type %', left(NEW.trigger_type, 64)
            USING ERRCODE = 'OR110', HINT = 'Trigger types: order_status, customer_tag, webhook, time_based, manual.';
    END IF;
    -- (0.38.0) judged when written: a webhook deleted since no longer
    -- refuses every other change of the workflow (deleting its author
    -- deactivates it, and failed with OR110)
    IF NEW.trigger_config IS NOT NULL
       AND (TG_OP = 'INSERT' OR (NEW.trigger_type, NEW.trigger_config) IS DISTINCT FROM (OLD.trigger_type, OLD.trigger_config)) THEN
        PERFORM orders.check_workflow_trigger(NEW.trigger_type, NEW.trigger_config);
    END IF;
    -- (0.39.0) and when it is activated: a workflow stopped by the update to
    -- 0.39.0 (its webhook URL refused now) was switched on again unchecked
    IF NEW.workflow_steps IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.workflow_steps IS DISTINCT FROM OLD.workflow_steps
                                           OR (NEW.is_active AND NOT OLD.is_active)) THEN
        PERFORM orders.check_workflow_steps(NEW.workflow_steps);
    END IF;
    -- (0.38.0) created_by_user_id is the workflow's author, whose authority
    -- it runs with (workflow_author_refusal): its creator, then whoever
    -- last changed it through the API leaving it active or (0.39.0) changing
    -- what it does (its trigger or steps: a rep's PATCH that stopped an
    -- admin's workflow and rewrote its steps kept the admin as author) —
    -- what it does is theirs now.  A stop alone keeps the author (the
    -- deactivation of a deleted or deactivated author's workflows too), and
    -- so does the foreign key's SET NULL of a deleted author (its staff row
    -- gone).  (0.39.0) At any trigger depth: a caller's own trigger that
    -- rewrote steps (depth 2) kept the previous author.
    IF orders.api_request() THEN
        IF TG_OP = 'INSERT' OR NEW.is_active
           OR (NEW.trigger_type, NEW.trigger_config, NEW.workflow_steps)
              IS DISTINCT FROM (OLD.trigger_type, OLD.trigger_config, OLD.workflow_steps) THEN
            NEW.created_by_user_id := orders.current_staff_id();
            -- (0.39.0) an author there must be: an admin whose staff row was
            -- deleted while its request waited (or by its own statement's
            -- CTE) left an active workflow without one — a DBA's, which
            -- runs unchecked
            -- (0.39.0) and still active as the latest commit shows it, held
            -- so until this commits: an author's own edit that waited for
            -- its deactivation (which stopped its workflows) switched the
            -- workflow on again, with the identity of the statement's
            -- snapshot.  (0.40.0) FOR SHARE: a deactivation is a NO KEY
            -- UPDATE, which FOR KEY SHARE neither waited for nor held off —
            -- an edit switching on an inactive workflow, or taking over
            -- another's, went through beside it (the deactivation's stop
            -- saw the rows as before the edit); at REPEATABLE READ a
            -- deactivation committed after the snapshot is now 40001.
            IF NEW.created_by_user_id IS NULL
               OR NOT EXISTS (SELECT FROM orders.staff st WHERE st.id = NEW.created_by_user_id AND st.is_active FOR SHARE) THEN
                RAISE EXCEPTION 'workflow "%": only active staff change workflows through the API', left(NEW.name, 64)
                    USING ERRCODE = '42501', HINT = 'Whoever changes a workflow becomes its author, and runs it with their authority.';
            END IF;
            -- (0.39.0) tag steps are taken on only by staff who may change
            -- tags (customers.edit), as they run only for such an author: an
            -- agent with workflows.create tagged customers it may not edit
            IF NEW.workflow_steps @? '$[*] ? (@.type == "update_customer_tag")'
               AND NOT orders.has_permission('customers', 'edit') THEN
                RAISE EXCEPTION 'workflow "%": steps that change customers'' tags need the customers.edit permission', left(NEW.name, 64)
                    USING ERRCODE = '42501', HINT = 'Whoever changes a workflow becomes its author.';
            END IF;
        ELSIF NOT (NEW.created_by_user_id IS NULL AND OLD.created_by_user_id IS NOT NULL
                   AND NOT EXISTS (SELECT FROM orders.staff st WHERE st.id = OLD.created_by_user_id)) THEN
            NEW.created_by_user_id := OLD.created_by_user_id;
        END IF;
    ELSIF TG_OP = 'INSERT' AND NEW.created_by_user_id IS NULL THEN
        NEW.created_by_user_id := orders.current_staff_id();
    END IF;
    IF TG_OP = 'UPDATE' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER check_workflow BEFORE INSERT OR UPDATE ON orders.workflows
    FOR EACH ROW EXECUTE FUNCTION orders.check_workflow();

-- workflow_author_deleted — (0.38.0) BEFORE DELETE on staff: the deleted
-- member's workflows stop (is_active false).  Their created_by_user_id
-- goes NULL with the row (ON DELETE SET NULL), which would make them a
-- DBA's, run with nobody to answer for them (workflow_author_refusal).
-- (0.39.0) Also AFTER a deactivation (trigger workflow_author_deactivated):
-- the member's workflows failed every run (42501), a time-based one on
-- every tick; an admin who takes one over activates it again.
-- Runs as the owner: whoever may delete staff need not write workflows.
CREATE FUNCTION orders.workflow_author_deleted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE orders.workflows w SET is_active = false
     WHERE w.created_by_user_id = OLD.id AND w.is_active;
    RETURN OLD;
END
$$;
REVOKE ALL ON FUNCTION orders.workflow_author_deleted() FROM PUBLIC;
CREATE TRIGGER workflow_author_deleted BEFORE DELETE ON orders.staff
    FOR EACH ROW EXECUTE FUNCTION orders.workflow_author_deleted();
CREATE TRIGGER workflow_author_deactivated AFTER UPDATE OF is_active ON orders.staff
    FOR EACH ROW WHEN (OLD.is_active AND NOT NEW.is_active) EXECUTE FUNCTION orders.workflow_author_deleted();

---------------------------------------------------------------------------
-- Running
---------------------------------------------------------------------------

-- workflow_recipients — the active staff members a recipient names for the
-- order (assigned_rep, assigned_agent, a role, a staff id), locked FOR KEY
-- SHARE (0.38.0): one being deleted is waited for and then left out — its
-- notification failed the step on the foreign key (23503), after the
-- run's earlier steps had taken effect, and the other recipients lost
-- theirs.  (0.39.0) PL/pgSQL, whose plan is kept: as an SQL function
-- (SET search_path: never inlined) its body was parsed and planned on
-- every call — with workflow_render, a quarter of a matching run's CPU.
CREATE FUNCTION orders.workflow_recipients(recipient text, order_id uuid)
    RETURNS SETOF orders.staff
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT s.* FROM orders.staff s
     WHERE s.is_active
       AND CASE workflow_recipients.recipient
           WHEN 'assigned_rep' THEN s.id = (SELECT o.assigned_rep_id FROM orders.orders o WHERE o.id = workflow_recipients.order_id)
           WHEN 'assigned_agent' THEN s.id = (SELECT o.assigned_agent_id FROM orders.orders o WHERE o.id = workflow_recipients.order_id)
           ELSE s.role = workflow_recipients.recipient
                OR s.id = CASE WHEN workflow_recipients.recipient ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                               THEN workflow_recipients.recipient::uuid END
           END
     ORDER BY s.id
       FOR KEY SHARE OF s;
END
$$;

-- workflow_render — "text" with each {{key}} replaced by data's value of key
-- (unknown keys by nothing); every other character as it is (0.36.0: a
-- lone "{{" or "}}" made the text around it a key — "Sale: 50% }} off
-- {{order_number}}" became "Sale: 50% order_number").  The text between
-- the placeholders, then each placeholder's value, interleaved.  (0.39.0)
-- PL/pgSQL for its kept plan (see workflow_recipients).
CREATE FUNCTION orders.workflow_render(text text, data jsonb)
    RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT string_agg(s.part, '' ORDER BY s.n)
              FROM (SELECT p.n * 2 - 1 AS n, p.part
                      FROM regexp_split_to_table(workflow_render.text, '\{\{[^{}]*\}\}') WITH ORDINALITY AS p(part, n)
                    UNION ALL
                    SELECT k.n * 2, coalesce(workflow_render.data ->> btrim(k.m[1], E' \t\r\n'), '')
                      FROM regexp_matches(workflow_render.text, '\{\{([^{}]*)\}\}', 'g') WITH ORDINALITY AS k(m, n)) s);
END
$$;

-- workflow_tag_step — update_customer_tag: add or remove a tag object
-- {"id", "label", "color"} when the condition (if any) holds.
CREATE FUNCTION orders.workflow_tag_step(config jsonb, customer_id uuid)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tag text := config ->> 'tag_id';
    n integer;
BEGIN
    IF customer_id IS NULL THEN
        RAISE EXCEPTION 'update_customer_tag needs a customer' USING ERRCODE = 'OR116',
              DETAIL = 'The run has no order and no customer.';
    ELSIF config ? 'condition' AND NOT orders.workflow_condition_holds(config ->> 'condition', customer_id) THEN
        RETURN jsonb_build_object('skipped', true, 'condition', config ->> 'condition');
    END IF;
    IF coalesce(config ->> 'action', 'add') = 'add' THEN
        UPDATE orders.customers c
           SET tags = c.tags || jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
                          'id', tag, 'label', coalesce(config ->> 'label', tag), 'color', config ->> 'color')))
         WHERE c.id = customer_id
           AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(c.tags) t WHERE t ->> 'id' = tag OR t #>> '{}' = tag);
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN jsonb_build_object('tag_added', n > 0, 'tag_id', tag);
    ELSE
        UPDATE orders.customers c
           SET tags = coalesce((SELECT jsonb_agg(t ORDER BY i) FROM jsonb_array_elements(c.tags) WITH ORDINALITY e(t, i)
                                 WHERE NOT (t ->> 'id' IS NOT DISTINCT FROM tag OR t #>> '{}' = tag)), '[]')
         WHERE c.id = customer_id
           AND EXISTS (SELECT 1 FROM jsonb_array_elements(c.tags) t WHERE t ->> 'id' = tag OR t #>> '{}' = tag);
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN jsonb_build_object('tag_removed', n > 0, 'tag_id', tag);
    END IF;
END
$$;

-- workflow_notify_step — send_notification: staff recipients on channel
-- in_app get a notifications row (and a NOTIFY on orders_notifications);
-- sms, email and the customer go to the outbox with the template and the
-- data; webhook posts the data to "url" through the outbox.  The outbox's
-- idempotency key is execution, step and recipient.  OR117 when the target
-- names nobody who can be reached that way.
CREATE FUNCTION orders.workflow_notify_step(config jsonb, step_id text, ctx jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target text := config ->> 'target';
    channel text := coalesce(config ->> 'channel', CASE WHEN config ->> 'target' = 'customer' THEN 'sms' ELSE 'in_app' END);
    data jsonb := ctx -> 'data';
    title text := left(orders.workflow_render(coalesce(config ->> 'title', initcap(replace(config ->> 'template', '_', ' '))), data), 200);
    body text := left(orders.workflow_render(config ->> 'message', data), 2000);
    key text := 'workflow:' || (ctx ->> 'execution_id') || ':' || step_id;
    ids jsonb := '[]';
    s record;
    address text;
BEGIN
    IF channel = 'webhook' THEN
        ids := ids || to_jsonb(orders.enqueue_outbox('webhook',
            jsonb_build_object('url', config ->> 'url', 'template', config ->> 'template', 'title', title,
                               'message', body, 'data', data), key));
        RETURN jsonb_build_object('channel', channel, 'outbox_ids', ids);
    ELSIF target = 'customer' THEN
        SELECT CASE channel WHEN 'sms' THEN c.phone ELSE c.email END INTO address
          FROM orders.customers c WHERE c.id = (ctx ->> 'customer_id')::uuid;
        IF ctx ->> 'customer_id' IS NULL THEN
            RAISE EXCEPTION 'send_notification to the customer needs a customer' USING ERRCODE = 'OR116',
                  DETAIL = 'The run has no order and no customer.';
        ELSIF coalesce(address, '') = '' THEN
            RAISE EXCEPTION 'the customer has no % for send_notification', CASE channel WHEN 'sms' THEN 'phone' ELSE 'e-mail' END
                USING ERRCODE = 'OR117', DETAIL = format('customer %s', ctx ->> 'customer_id');
        END IF;
        ids := ids || to_jsonb(orders.enqueue_outbox(channel,
            jsonb_build_object('to', address, 'customer_id', ctx ->> 'customer_id', 'template', config ->> 'template',
                               'title', title, 'message', body, 'data', data), key || ':customer'));
        RETURN jsonb_build_object('channel', channel, 'outbox_ids', ids);
    END IF;
    IF target IN ('assigned_rep', 'assigned_agent') AND ctx ->> 'order_id' IS NULL THEN
        RAISE EXCEPTION 'send_notification to the % needs an order', target USING ERRCODE = 'OR116';
    END IF;
    FOR s IN SELECT * FROM orders.workflow_recipients(target, (ctx ->> 'order_id')::uuid) LOOP
        IF channel = 'in_app' THEN
            INSERT INTO orders.notifications (user_id, type, title, message, data)
            VALUES (s.id, coalesce(config ->> 'type', 'workflow'), coalesce(nullif(title, ''), ctx ->> 'workflow_name'), body,
                    data || jsonb_build_object('workflow_id', ctx ->> 'workflow_id', 'execution_id', ctx ->> 'execution_id'));
            ids := ids || to_jsonb(s.id);
        ELSE
            address := CASE channel WHEN 'sms' THEN s.phone ELSE s.email END;
            CONTINUE WHEN coalesce(address, '') = '';
            ids := ids || to_jsonb(orders.enqueue_outbox(channel,
                jsonb_build_object('to', address, 'staff_id', s.id, 'template', config ->> 'template',
                                   'title', title, 'message', body, 'data', data), key || ':' || s.id));
        END IF;
    END LOOP;
    IF ids = '[]' THEN
        RAISE EXCEPTION 'send_notification: % names no active staff member%', target,
                        CASE WHEN channel = 'in_app' THEN '' ELSE ' with a ' || CASE channel WHEN 'sms' THEN 'phone' ELSE 'e-mail' END END
            USING ERRCODE = 'OR117';
    END IF;
    RETURN jsonb_build_object('channel', channel,
                              CASE WHEN channel = 'in_app' THEN 'notified' ELSE 'outbox_ids' END, ids);
END
$$;

-- workflow_task_step — create_task: a notification of type workflow for
-- each staff member "assigned_to" names, with the due date in its data.
CREATE FUNCTION orders.workflow_task_step(config jsonb, ctx jsonb)
    RETURNS jsonb
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- (0.39.0) through numeric: 3.0 passes check_workflow_steps as a whole
    -- number, and as text it failed every run (22P02)
    -- (0.43.0) days from today in the workflow's time zone (a schedule's),
    -- else the business day: the session's date was yesterday in Tokyo
    due date := CASE WHEN config ? 'due_days'
                     THEN coalesce((now() AT TIME ZONE (ctx ->> 'timezone'))::date, orders.business_date())
                          + (config ->> 'due_days')::numeric::integer END;
    n integer;
BEGIN
    IF config ->> 'assigned_to' IN ('assigned_rep', 'assigned_agent') AND ctx ->> 'order_id' IS NULL THEN
        RAISE EXCEPTION 'create_task for the % needs an order', config ->> 'assigned_to' USING ERRCODE = 'OR116';
    END IF;
    INSERT INTO orders.notifications (user_id, type, title, message, data)
    SELECT s.id, 'workflow', left(orders.workflow_render(config ->> 'title', ctx -> 'data'), 200),
           left(orders.workflow_render(config ->> 'message', ctx -> 'data'), 2000),
           ctx -> 'data' || jsonb_strip_nulls(jsonb_build_object('task', true, 'due_date', due,
                                              'workflow_id', ctx ->> 'workflow_id', 'execution_id', ctx ->> 'execution_id'))
      FROM orders.workflow_recipients(config ->> 'assigned_to', (ctx ->> 'order_id')::uuid) s;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'create_task: % names no active staff member', config ->> 'assigned_to' USING ERRCODE = 'OR117';
    END IF;
    RETURN jsonb_strip_nulls(jsonb_build_object('tasks', n, 'due_date', due));
END
$$;

-- workflow_author_refusal — why the author of a workflow ("author", its
-- created_by_user_id) may not run it now for this order and customer, or
-- NULL when it may (0.38.0).  A workflow runs as the owner — its steps
-- write tags, notifications, tasks and outbox messages nobody else may —
-- so it runs only while its author could make it and reach what it acts
-- on: active staff with workflows.create or workflows.edit, who sees the
-- order (by role, with orders.view) and the customer.  Before, a workflow
-- of a deactivated or demoted admin kept sending order data to its URL,
-- and a rep's reached orders outside the rep's scope.  Asked as the
-- author (act_as: the JWT subject and the orders.acting_for label set to
-- its account for the question, as for share links), then put back.  A workflow without an author is a DBA's
-- (written outside the API): it runs.  Called by execute_workflow, as the
-- owner (the label is superusers').
CREATE FUNCTION orders.workflow_author_refusal(author uuid, order_id uuid, customer_id uuid, tags boolean DEFAULT false) RETURNS text
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    account uuid;
    saved text[];
    refusal text;
BEGIN
    IF author IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT s.account_id INTO account FROM orders.staff s WHERE s.id = author;
    IF account IS NULL THEN
        RETURN 'its author has no login: nobody to answer for it';
    END IF;
    saved := orders.act_as(account);
    refusal := CASE
        WHEN NOT (orders.has_permission('workflows', 'create') OR orders.has_permission('workflows', 'edit'))
            THEN 'its author is not active staff with workflows.create or workflows.edit'
        -- (0.39.0) tag steps are the author's only with customers.edit: an
        -- agent given workflows.create tagged and untagged customers it may
        -- not edit (its tags fired other workflows)
        WHEN workflow_author_refusal.tags AND NOT orders.has_permission('customers', 'edit')
            THEN 'its author may not change customers'' tags (customers.edit)'
        WHEN workflow_author_refusal.order_id IS NOT NULL AND NOT EXISTS (
                 SELECT FROM orders.orders o
                  WHERE o.id = workflow_author_refusal.order_id AND orders.has_permission('orders', 'view')
                    AND orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status))
            THEN 'the order is outside its author''s reach'
        WHEN workflow_author_refusal.customer_id IS NOT NULL AND NOT EXISTS (
                 SELECT FROM orders.customers c
                  WHERE c.id = workflow_author_refusal.customer_id AND orders.sees_customer(c.id, c.account_id))
            THEN 'the customer is outside its author''s reach' END;
    PERFORM orders.act_back(saved);
    RETURN refusal;
END
$$;
REVOKE ALL ON FUNCTION orders.workflow_author_refusal(uuid, uuid, uuid, boolean) FROM PUBLIC;

-- execute_workflow — one run of an active workflow for an order and/or customer:
-- the steps in their "order" (then list order), each in a subtransaction;
-- the first failing step ends the run as failed with its error logged,
-- and undoes only its own effects.  The run's row is written last, in the
-- caller's transaction; its id is returned (NULL: the workflow is not
-- active, or not there, for this transaction).  Runs that start runs (a tag
-- added by one fires another) nest at most 8 deep.  Serialization failures
-- and deadlocks are not caught: they end the transaction, to be retried.
CREATE FUNCTION orders.execute_workflow(workflow_id uuid, order_id uuid, customer_id uuid, trigger_event jsonb)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    o orders.orders%ROWTYPE;
    exec_id uuid := orders.new_id();
    ctx jsonb;
    step jsonb;
    sid text;
    started timestamptz := clock_timestamp();
    step_started timestamptz;
    output jsonb;
    done jsonb := '[]';
    errors jsonb := '[]';
    depth integer := CASE WHEN current_setting('orders_workflow.depth', true) ~ '^[0-9]{1,2}$'
                          THEN current_setting('orders_workflow.depth', true)::integer ELSE 0 END;
    -- (0.39.0) the runs one top-level run started, at any depth: customer_tag
    -- workflows that remove and add their own tag fanned out exponentially
    -- (two adds per run, 8 deep: 512 runs; three: over two minutes)
    nested integer := CASE WHEN current_setting('orders_workflow.nested', true) ~ '^[0-9]{1,9}$'
                           THEN current_setting('orders_workflow.nested', true)::integer ELSE 0 END;
    e_code text;
    e_msg text;
    e_detail text;
    e_hint text;
    refusal text;
BEGIN
    -- the workflow as this transaction sees it, kept from being deleted
    -- until the run is stored: one deleted, deactivated or created after
    -- the transaction's snapshot does not run
    SELECT * INTO w FROM orders.workflows x
     WHERE x.id = execute_workflow.workflow_id AND x.is_active
       FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF order_id IS NOT NULL THEN
        SELECT * INTO o FROM orders.orders x WHERE x.id = execute_workflow.order_id;
        customer_id := coalesce(customer_id, o.customer_id);
    END IF;
    ctx := jsonb_build_object(
        'execution_id', exec_id, 'workflow_id', w.id, 'workflow_name', w.name,
        'order_id', order_id, 'customer_id', customer_id,
        -- (0.43.0) a time-based workflow's zone: create_task counts its due days there
        'timezone', w.trigger_config ->> 'timezone',
        'data', jsonb_strip_nulls(jsonb_build_object(
            'order_id', order_id, 'order_number', o.order_number, 'status', o.status,
            'payment_status', o.payment_status, 'total_amount', o.total_amount, 'currency', o.currency,
            'customer_id', customer_id,
            -- (0.37.0) at most 200 characters: a customer's 1.9 MB name went into
            -- every notification and outbox message of its workflows
            'customer_name', (SELECT left(c.full_name, 200) FROM orders.customers c WHERE c.id = customer_id),
            'workflow', w.name)));
    nested := CASE WHEN depth = 0 THEN 0 ELSE nested + 1 END;
    PERFORM set_config('orders_workflow.nested', nested::text, true);
    IF nested > 65 THEN
        RETURN NULL;        -- the 65th was stored failed: the rest neither run nor write
    END IF;
    refusal := CASE WHEN depth < 8 AND nested <= 64 THEN
                   orders.workflow_author_refusal(w.created_by_user_id, order_id, customer_id,
                                                  w.workflow_steps @? '$[*] ? (@.type == "update_customer_tag")') END;
    IF depth >= 8 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'workflow runs nested more than 8 deep (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
    ELSIF nested > 64 THEN
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', 'one workflow run started more than 64 others (a workflow loop?)',
            'error_code', 'OR118', 'timestamp', clock_timestamp()));
    ELSIF refusal IS NOT NULL THEN
        -- (0.38.0) its author may not run it now: no step runs
        errors := jsonb_build_array(jsonb_build_object(
            'step_id', NULL, 'error', format('workflow "%s" did not run: %s', left(w.name, 64), refusal),
            'error_code', '42501',
            'details', jsonb_build_object('author', w.created_by_user_id,
                                          'hint', 'An admin who changes the workflow becomes its author.'),
            'timestamp', clock_timestamp()));
    ELSE
        PERFORM set_config('orders_workflow.depth', (depth + 1)::text, true);
        -- a step without an id is "step-<its place in the list>", as validated
        FOR step IN SELECT s || jsonb_build_object('id', coalesce(s ->> 'id', 'step-' || i))
                      FROM jsonb_array_elements(w.workflow_steps) WITH ORDINALITY e(s, i)
                     ORDER BY (s ->> 'order')::numeric NULLS LAST, i LOOP
            sid := step ->> 'id';
            step_started := clock_timestamp();
            BEGIN
                output := CASE step ->> 'type'
                    WHEN 'update_customer_tag' THEN orders.workflow_tag_step(step -> 'config', customer_id)
                    WHEN 'send_notification' THEN orders.workflow_notify_step(step -> 'config', sid, ctx)
                    WHEN 'create_task' THEN orders.workflow_task_step(step -> 'config', ctx) END;
                done := done || jsonb_build_object(
                    'step_id', sid, 'status', CASE WHEN output ? 'skipped' THEN 'skipped' ELSE 'completed' END,
                    'started_at', step_started, 'completed_at', clock_timestamp(), 'output', output);
            EXCEPTION
                WHEN serialization_failure OR deadlock_detected OR lock_not_available THEN
                    RAISE;
                WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS e_code = RETURNED_SQLSTATE, e_msg = MESSAGE_TEXT,
                                            e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                    errors := errors || jsonb_build_object(
                        'step_id', sid, 'error', left(e_msg, 1000), 'error_code', e_code,
                        'details', jsonb_strip_nulls(jsonb_build_object('detail', nullif(e_detail, ''), 'hint', nullif(e_hint, ''))),
                        'timestamp', clock_timestamp());
                    EXIT;
            END;
        END LOOP;
        PERFORM set_config('orders_workflow.depth', depth::text, true);
    END IF;
    INSERT INTO orders.workflow_executions (id, workflow_id, order_id, customer_id, status, trigger_event,
                                            steps_completed, error_log, started_at, completed_at)
    VALUES (exec_id, w.id, order_id, customer_id, CASE WHEN errors = '[]' THEN 'completed' ELSE 'failed' END,
            coalesce(trigger_event, '{}'), done, errors, started, clock_timestamp())
    ON CONFLICT DO NOTHING;
    RETURN exec_id;
END
$$;

-- active_trigger_workflows — the active order_status and customer_tag
-- workflows with their trigger configs taken apart, in the order they run
-- (oldest first): what orders.fire_workflows() and orders.fire_order_workflows() cache.
CREATE FUNCTION orders.active_trigger_workflows()
    RETURNS TABLE (id uuid, on_tags boolean, statuses text[], payment_statuses text[], lifecycles text[],
                   min_value numeric, tag_id text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT w.id, w.trigger_type = 'customer_tag',
           CASE WHEN jsonb_typeof(w.trigger_config #> '{conditions,status}') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(w.trigger_config #> '{conditions,status}')) END,
           CASE WHEN jsonb_typeof(w.trigger_config #> '{conditions,payment_status}') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(w.trigger_config #> '{conditions,payment_status}')) END,
           CASE jsonb_typeof(w.trigger_config #> '{conditions,lifecycle}')
                WHEN 'array' THEN ARRAY(SELECT jsonb_array_elements_text(w.trigger_config #> '{conditions,lifecycle}'))
                WHEN 'string' THEN ARRAY[w.trigger_config #>> '{conditions,lifecycle}'] END,
           CASE WHEN jsonb_typeof(w.trigger_config #> '{conditions,min_order_value}') = 'number'
                THEN (w.trigger_config #>> '{conditions,min_order_value}')::numeric END,
           w.trigger_config ->> 'tag_id'
      FROM orders.workflows w
     WHERE w.is_active AND w.trigger_type IN ('order_status', 'customer_tag')
     ORDER BY w.created_at, w.id;
END;

-- fire_workflows — AFTER INSERT OR UPDATE OF tags on customers (C,
-- src/workflows.c): runs the customer_tag workflows of each tag just added.
-- fire_order_workflows — (0.29.0) AFTER INSERT and AFTER UPDATE on orders,
-- for each statement: runs the active order_status workflows whose
-- conditions an order has just come to meet — a status or payment status
-- moved into their lists, or the total up to min_order_value (the items
-- a new order gets after its INSERT) — exactly once per such change.  The
-- active workflows are cached per backend.
CREATE FUNCTION orders.fire_workflows() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_fire_workflows';
CREATE FUNCTION orders.fire_order_workflows() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_fire_order_workflows';
CREATE FUNCTION orders.workflows_changed() RETURNS trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'orders_workflows_changed';
CREATE TRIGGER workflows_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON orders.workflows
    FOR EACH STATEMENT EXECUTE FUNCTION orders.workflows_changed();
-- (0.41.0) on a subscriber, as the lifecycle tables' (10_lifecycles.sql):
-- the apply worker fires no statement trigger, and a workflow replicated
-- there left every session's cached list of active workflows as it was
CREATE TRIGGER workflows_changed_applied AFTER INSERT OR UPDATE OR DELETE ON orders.workflows
    FOR EACH ROW EXECUTE FUNCTION orders.workflows_changed();
ALTER TABLE orders.workflows ENABLE REPLICA TRIGGER workflows_changed_applied;
-- Statement triggers (transition tables: the orders' other statement
-- triggers have the rows captured anyway), named to fire after
-- stats_customer_* — AFTER statement triggers of one event fire in name
-- order — so that a step's condition reads the customer's statistics with
-- this change counted, and before stock_on_status, whose locks on popular
-- products are best held for the shortest time.
CREATE TRIGGER stats_then_workflows_insert AFTER INSERT ON orders.orders
    REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.fire_order_workflows();
CREATE TRIGGER stats_then_workflows_update AFTER UPDATE ON orders.orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION orders.fire_order_workflows();
CREATE TRIGGER fire_workflows AFTER INSERT ON orders.customers
    FOR EACH ROW WHEN (NEW.tags <> '[]') EXECUTE FUNCTION orders.fire_workflows();
CREATE TRIGGER fire_workflows_on_change AFTER UPDATE OF tags ON orders.customers
    FOR EACH ROW WHEN (OLD.tags IS DISTINCT FROM NEW.tags) EXECUTE FUNCTION orders.fire_workflows();

-- fire_webhook_workflows — the active webhook workflows for an order a
-- webhook delivery created (order.created) or updated (order.updated):
-- those naming this webhook or none, and this event type or none.
CREATE FUNCTION orders.fire_webhook_workflows(webhook_id uuid, order_id uuid, event_type text, log_id uuid)
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w record;
    n integer := 0;
BEGIN
    FOR w IN SELECT x.id FROM orders.workflows x
              WHERE x.is_active AND x.trigger_type = 'webhook'
                AND (NOT x.trigger_config ? 'webhook_id' OR lower(x.trigger_config ->> 'webhook_id') = webhook_id::text)
                AND (NOT x.trigger_config ? 'event_types' OR x.trigger_config -> 'event_types' ? event_type)
              ORDER BY x.created_at, x.id LOOP
        PERFORM orders.execute_workflow(w.id, order_id, NULL,
            jsonb_build_object('event', 'webhook', 'event_type', event_type, 'webhook_id', webhook_id, 'log_id', log_id));
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- run_workflow — run an active workflow now for an order and/or customer
-- (any trigger type: a manual workflow, or trying one out); the execution
-- row.  Refused: an unknown workflow (OR114), an inactive one (OR115), an
-- unknown order (OR006) or customer (OR116), an order of another customer
-- (OR116); through the API, a caller without workflows.edit (42501), an
-- order outside the caller's staff scope (OR006, as if unknown).
CREATE FUNCTION orders.run_workflow(workflow_id uuid, order_id uuid DEFAULT NULL, customer_id uuid DEFAULT NULL)
    RETURNS orders.workflow_executions
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    order_customer uuid;
    exec_id uuid;
    result orders.workflow_executions;
BEGIN
    IF workflow_id IS NULL THEN
        RAISE EXCEPTION 'orders.run_workflow: workflow_id must not be NULL' USING ERRCODE = '22004';
    ELSIF orders.api_request() AND NOT orders.has_permission('workflows', 'edit') THEN
        RAISE EXCEPTION 'running workflows needs the workflows.edit permission' USING ERRCODE = '42501';
    END IF;
    SELECT * INTO w FROM orders.workflows x WHERE x.id = run_workflow.workflow_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'workflow % does not exist', workflow_id USING ERRCODE = 'OR114';
    ELSIF NOT w.is_active THEN
        RAISE EXCEPTION 'workflow "%" is not active', left(w.name, 64) USING ERRCODE = 'OR115',
              HINT = 'Set is_active to true to run it.';
    END IF;
    IF order_id IS NOT NULL THEN
        -- an API caller runs a workflow only for an order in their scope
        SELECT o.customer_id INTO order_customer FROM orders.orders o
         WHERE o.id = run_workflow.order_id
           AND (NOT orders.api_request()
                OR orders.staff_sees_order(o.assigned_rep_id, o.assigned_agent_id, o.lifecycle, o.status));
        IF NOT FOUND THEN
            RAISE EXCEPTION 'order % does not exist', order_id USING ERRCODE = 'OR006';
        ELSIF customer_id IS NOT NULL AND customer_id <> order_customer THEN
            RAISE EXCEPTION 'order % belongs to another customer than %', order_id, customer_id USING ERRCODE = 'OR116';
        END IF;
    -- (0.29.0) and for a customer in their reach (the customers policy's
    -- rule): an agent with workflows.edit tagged a customer it cannot see
    ELSIF customer_id IS NOT NULL AND NOT EXISTS (
              SELECT 1 FROM orders.customers c WHERE c.id = run_workflow.customer_id
                 AND (NOT orders.api_request() OR orders.sees_customer(c.id, c.account_id))) THEN
        RAISE EXCEPTION 'customer % does not exist', customer_id USING ERRCODE = 'OR116';
    END IF;
    exec_id := orders.execute_workflow(w.id, order_id, customer_id,
                                       jsonb_build_object('event', 'manual', 'actor', orders.current_actor()));
    IF exec_id IS NULL THEN            -- deactivated or deleted meanwhile
        RAISE EXCEPTION 'workflow "%" is not active', left(w.name, 64) USING ERRCODE = 'OR115';
    END IF;
    SELECT * INTO result FROM orders.workflow_executions e WHERE e.id = exec_id;
    RETURN result;
END
$$;

-- run_scheduled_workflow — what a time-based workflow's pg_cron job runs:
-- the workflow once when its schedule matches this minute in its time zone
-- (pg_cron may call more often; a minute runs at most once, also for
-- concurrent calls: an advisory lock per workflow and minute).  Returns the
-- execution's id, or NULL when nothing was due.
CREATE FUNCTION orders.run_scheduled_workflow(workflow_id uuid)
    RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w orders.workflows%ROWTYPE;
    tz text;
    minute timestamptz := date_trunc('minute', now());
    local timestamp;
    due text;
    exec_id uuid;
BEGIN
    SELECT * INTO w FROM orders.workflows x WHERE x.id = run_scheduled_workflow.workflow_id;
    IF NOT FOUND OR NOT w.is_active OR w.trigger_type <> 'time_based' THEN
        RETURN NULL;
    END IF;
    tz := coalesce(w.trigger_config ->> 'timezone', 'UTC');
    local := orders.schedule_due(w.trigger_config ->> 'schedule', tz, minute);
    IF local IS NULL THEN
        RETURN NULL;
    END IF;
    -- one run per minute: concurrent calls wait here, then see the first run
    due := to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"');
    PERFORM orders.xact_lock(hashtextextended('orders.run_scheduled_workflow ' || w.id || ' ' || due, 0));
    -- (0.43.0) and once per local time when the schedule names its hours:
    -- in the hour a fall-back repeats, a daily 01:30 matched twice (two
    -- minutes of UTC); an hourly schedule runs in both real hours
    IF EXISTS (SELECT 1 FROM orders.workflow_executions e
                WHERE e.workflow_id = w.id AND e.trigger_event ? 'scheduled_for'
                  AND (e.trigger_event ->> 'scheduled_for' = due
                       OR ((regexp_split_to_array(btrim(w.trigger_config ->> 'schedule'), '\s+'))[2] !~ '^[*]'
                           AND e.trigger_event -> 'local_time' = to_jsonb(local)
                           AND e.trigger_event ->> 'timezone' = tz))) THEN
        RETURN NULL;
    END IF;
    exec_id := orders.execute_workflow(w.id, NULL, NULL,
        jsonb_build_object('event', 'schedule', 'scheduled_for', due, 'local_time', local, 'timezone', tz));
    RETURN CASE WHEN EXISTS (SELECT 1 FROM orders.workflow_executions e WHERE e.id = exec_id) THEN exec_id END;
END
$$;

-- sync_workflow_job — AFTER INSERT OR UPDATE OR DELETE on workflows: keep a
-- time-based workflow's pg_cron job (named orders-workflow-<id>, owned by
-- the extension's owner) in step with the row, when pg_cron is installed
-- in this database; without it, orders.schedule_jobs() registers the jobs
-- once it is (orders.cron_jobs() lists them).
CREATE FUNCTION orders.sync_workflow_job() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job text := 'orders-workflow-' || CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
    wanted boolean := TG_OP <> 'DELETE' AND NEW.is_active AND NEW.trigger_type = 'time_based';
    present boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.id <> NEW.id THEN      -- the old id's job goes
        EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1 AND username = current_user'
           USING 'orders-workflow-' || OLD.id;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1 AND username = current_user)'
       INTO present USING job;
    IF wanted THEN
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING job,
            orders.workflow_cron_schedule(NEW.trigger_config ->> 'schedule', coalesce(NEW.trigger_config ->> 'timezone', 'UTC')),
            format('SELECT orders.run_scheduled_workflow(%L)', NEW.id);
    ELSIF present THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING job;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sync_workflow_job AFTER INSERT OR UPDATE OR DELETE ON orders.workflows
    FOR EACH ROW EXECUTE FUNCTION orders.sync_workflow_job();

-- (0.45.0) purge_workflow_executions — delete the runs of workflows
-- started before "older_than" ago, whatever their status; the number
-- deleted.  A daily pg_cron job (cron_jobs).  The scheduled runs of the
-- last two days stay whatever "older_than" says: run_scheduled_workflow
-- finds by them that a local time repeated by a fall-back hour has run
-- (a purge of '10 minutes' at 01:45 would run a daily 01:30 twice); older
-- minutes are never run again.
CREATE FUNCTION orders.purge_workflow_executions(older_than interval DEFAULT '90 days')
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    cutoff timestamptz := orders.purge_cutoff('orders.purge_workflow_executions', older_than);
BEGIN
    DELETE FROM orders.workflow_executions x
     WHERE x.started_at < cutoff
       AND NOT (x.trigger_event ? 'scheduled_for' AND x.started_at >= now() - interval '2 days');
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- (0.45.0) purge_retention — how long a nightly purge keeps its rows where
-- the shop wants other than the function's default: cron_jobs() writes it
-- into the job's call, so that schedule_jobs() — run again after every
-- update — keeps it (a job a DBA had changed or replaced was registered
-- again with the default, and the next night deleted what was to be
-- kept).  Checked as the purges check their argument (purge_cutoff).  The
-- owner's; dumped with the data.
CREATE TABLE orders.purge_retention (
    purge       text PRIMARY KEY
                CHECK (purge IN ('webhook_logs', 'outbox', 'activity_logs', 'notifications', 'workflow_executions')),
    older_than  interval NOT NULL
);
COMMENT ON TABLE orders.purge_retention IS
    'How long each nightly purge keeps rows, where not its default (purge: webhook_logs, outbox, activity_logs, notifications, workflow_executions); run orders.schedule_jobs() after a change';
CREATE FUNCTION orders.check_purge_retention() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM orders.purge_cutoff('orders.purge_retention (' || NEW.purge || ')', NEW.older_than);
    RETURN NEW;
END
$$;
CREATE TRIGGER check_purge_retention BEFORE INSERT OR UPDATE ON orders.purge_retention
    FOR EACH ROW EXECUTE FUNCTION orders.check_purge_retention();
SELECT pg_catalog.pg_extension_config_dump('orders.purge_retention', '');
ALTER TABLE orders.purge_retention ENABLE ROW LEVEL SECURITY;   -- no policy: nobody but its owner
REVOKE ALL ON orders.purge_retention FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.check_purge_retention() FROM PUBLIC;

-- cron_jobs — every pg_cron job of the extension: its maintenance jobs and
-- one per active time-based workflow; a purge's call carries the shop's
-- retention (purge_retention), else none (the function's default).
CREATE FUNCTION orders.cron_jobs()
    RETURNS TABLE (jobname text, schedule text, command text)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT 'orders-cleanup-expired-holds', '* * * * *', 'SELECT orders.cleanup_expired_reservations()'
    UNION ALL
    SELECT 'orders-purge-' || replace(p.purge, '_', '-'), p.schedule,
           format('SELECT orders.purge_%s(%s)', p.purge,
                  (SELECT quote_literal(r.older_than::text) || '::interval' FROM orders.purge_retention r WHERE r.purge = p.purge))
      FROM (VALUES ('webhook_logs', '17 3 * * *'), ('outbox', '27 3 * * *'), ('activity_logs', '37 3 * * *'),
                   ('notifications', '47 3 * * *'), ('workflow_executions', '57 3 * * *')) p (purge, schedule)
    UNION ALL
    SELECT 'orders-workflow-' || w.id,
           orders.workflow_cron_schedule(w.trigger_config ->> 'schedule', coalesce(w.trigger_config ->> 'timezone', 'UTC')),
           format('SELECT orders.run_scheduled_workflow(%L)', w.id)
      FROM orders.workflows w
     WHERE w.is_active AND w.trigger_type = 'time_based';
END;

CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON orders.workflows
    FOR EACH ROW EXECUTE FUNCTION orders.track_changes();

-- who may do what: staff with workflows.view read workflows, and the runs
-- of the orders and customers they see; create, edit and delete follow
-- those permissions (restrictive halves for API requests only, as on the
-- other tables); runs are written by the extension only
ALTER TABLE orders.workflows ENABLE ROW LEVEL SECURITY;
ALTER TABLE orders.workflow_executions ENABLE ROW LEVEL SECURITY;
CREATE POLICY reach ON orders.workflows USING ((SELECT orders.has_permission('workflows', 'view')));
CREATE POLICY insert_right ON orders.workflows AS RESTRICTIVE FOR INSERT
    WITH CHECK (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('workflows', 'create')));
CREATE POLICY update_right ON orders.workflows AS RESTRICTIVE FOR UPDATE
    USING (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('workflows', 'edit')));
CREATE POLICY delete_right ON orders.workflows AS RESTRICTIVE FOR DELETE
    USING (NOT (SELECT orders.api_request()) OR (SELECT orders.has_permission('workflows', 'delete')));
CREATE POLICY reach ON orders.workflow_executions FOR SELECT
    USING ((SELECT orders.has_permission('workflows', 'view'))
           AND (order_id IS NULL OR EXISTS (SELECT 1 FROM orders.orders o WHERE o.id = workflow_executions.order_id))
           AND (customer_id IS NULL OR EXISTS (SELECT 1 FROM orders.customers c WHERE c.id = workflow_executions.customer_id)));

SELECT pg_catalog.pg_extension_config_dump('orders.workflows', '');
SELECT pg_catalog.pg_extension_config_dump('orders.workflow_executions', '');
REVOKE ALL ON orders.workflows, orders.workflow_executions FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.cron_field_values(text, integer, integer), orders.schedule_matches(text, timestamp), orders.schedule_due(text, text, timestamptz),
                       orders.workflow_cron_schedule(text, text), orders.workflow_condition(text),
                       orders.workflow_condition_holds(text, uuid),
                       orders.check_workflow_recipient(jsonb, text, text, boolean),
                       orders.check_workflow_keys(jsonb, text[], text, text), orders.json_string_list(jsonb, text[]),
                       orders.check_workflow_trigger(text, jsonb), orders.check_workflow_steps(jsonb),
                       orders.check_webhook_url(text, text), orders.check_workflow(), orders.workflow_recipients(text, uuid),
                       orders.workflow_render(text, jsonb), orders.workflow_tag_step(jsonb, uuid),
                       orders.workflow_notify_step(jsonb, text, jsonb), orders.workflow_task_step(jsonb, jsonb),
                       orders.execute_workflow(uuid, uuid, uuid, jsonb), orders.fire_workflows(), orders.fire_order_workflows(), orders.active_trigger_workflows(),
                       orders.workflows_changed(), orders.fire_webhook_workflows(uuid, uuid, text, uuid),
                       orders.run_workflow(uuid, uuid, uuid), orders.run_scheduled_workflow(uuid),
                       orders.sync_workflow_job() FROM PUBLIC;
REVOKE ALL ON FUNCTION orders.cron_jobs(), orders.purge_workflow_executions(interval) FROM PUBLIC;
