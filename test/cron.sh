#!/usr/bin/env bash
# pg_cron (TAP): orders.schedule_jobs() registers the cleanup job, re-running
# is harmless, the webhook log purge is registered daily and its command
# works, the cleanup job really runs under pg_cron (job_run_details shows
# success and a lapsed hold was expired), and unschedule_jobs() removes it.
# A time-based workflow gets its job when it is stored (owned by the
# extension's owner), pg_cron runs it (one execution per minute, its task
# notification written), and deactivating the workflow removes the job.
# pg_cron lives in the database named by cron.database_name ('postgres' in
# the test cluster), so the extension is installed there for this test.
set -eu
n=0 failed=0
check() { n=$((n + 1)); if [ "$2" = "$3" ]; then echo "ok $n - $1"; else echo "not ok $n - $1 (expected $2, got $3)"; failed=$((failed + 1)); fi; }
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d postgres "$@"; }

q -c "CREATE EXTENSION IF NOT EXISTS pg_cron" -c "DROP EXTENSION IF EXISTS orders CASCADE" -c "CREATE EXTENSION orders"
q -c "INSERT INTO orders.service_capacity (id, service_id, starts_at, ends_at)
      VALUES ('00000000-0000-0000-0000-0000000008a1', '00000000-0000-0000-0000-0000000008b1',
              now() + interval '1 day', now() + interval '1 day 1 hour')" \
  -c "SELECT orders.reserve_time_slot('00000000-0000-0000-0000-0000000008a1')" >/dev/null
q -c "UPDATE orders.slot_reservations SET expires_at = now() - interval '1 second'"

check "schedule_jobs registers the cleanup job and the purges of the activity log, notifications, outbox, webhook logs and workflow runs" \
    "orders-cleanup-expired-holds orders-purge-activity-logs orders-purge-notifications orders-purge-outbox orders-purge-webhook-logs orders-purge-workflow-executions" \
    "$(q -c "SELECT string_agg(jobname, ' ' ORDER BY jobname) FROM orders.schedule_jobs()")"
check "the purge runs daily and its command works (0 old log rows deleted)" "17 3 * * * 0" \
    "$(q -c "SELECT schedule FROM cron.job WHERE jobname = 'orders-purge-webhook-logs'") $(q -c "$(q -c "SELECT command FROM cron.job WHERE jobname = 'orders-purge-webhook-logs'")")"
check "so does the outbox purge" "27 3 * * * 0" \
    "$(q -c "SELECT schedule FROM cron.job WHERE jobname = 'orders-purge-outbox'") $(q -c "$(q -c "SELECT command FROM cron.job WHERE jobname = 'orders-purge-outbox'")")"
# (0.45.0) the notifications' and the workflow runs' purges
check "so do the notifications' and the workflow runs' purges" "47 3 * * * 0 57 3 * * * 0" \
    "$(q -c "SELECT schedule FROM cron.job WHERE jobname = 'orders-purge-notifications'") $(q -c "$(q -c "SELECT command FROM cron.job WHERE jobname = 'orders-purge-notifications'")") $(q -c "SELECT schedule FROM cron.job WHERE jobname = 'orders-purge-workflow-executions'") $(q -c "$(q -c "SELECT command FROM cron.job WHERE jobname = 'orders-purge-workflow-executions'")")"
q -c "SELECT * FROM orders.schedule_jobs()" >/dev/null
check "re-running schedule_jobs keeps one job" 1 "$(q -c "SELECT count(*) FROM cron.job WHERE jobname = 'orders-cleanup-expired-holds'")"
# (0.45.0) a shop's retention, kept by schedule_jobs (run again after every update)
q -c "INSERT INTO orders.purge_retention (purge, older_than) VALUES ('notifications', '1 year')" \
  -c "SELECT * FROM orders.schedule_jobs()" -c "SELECT * FROM orders.schedule_jobs()" >/dev/null
check "a retention of orders.purge_retention is the job's, also when schedule_jobs runs again; the command works" \
    "SELECT orders.purge_notifications('1 year'::interval) 0 1" \
    "$(q -c "SELECT command FROM cron.job WHERE jobname = 'orders-purge-notifications'") $(q -c "$(q -c "SELECT command FROM cron.job WHERE jobname = 'orders-purge-notifications'")") $(q -c "SELECT count(*) FROM cron.job WHERE jobname = 'orders-purge-notifications'")"
q -c "DELETE FROM orders.purge_retention" -c "SELECT * FROM orders.schedule_jobs()" >/dev/null
check "... and without it the default again" "SELECT orders.purge_notifications()" \
    "$(q -c "SELECT command FROM cron.job WHERE jobname = 'orders-purge-notifications'")"

q -c "INSERT INTO orders.staff (id, full_name, role) VALUES ('00000000-0000-0000-0000-0000000008c1', 'Cron Manager', 'manager')" \
  -c "INSERT INTO orders.workflows (id, name, trigger_type, trigger_config, workflow_steps)
      VALUES ('00000000-0000-0000-0000-0000000008d1', 'Minutely digest', 'time_based',
              '{\"schedule\": \"* * * * *\", \"timezone\": \"America/New_York\"}',
              '[{\"type\": \"create_task\", \"config\": {\"assigned_to\": \"manager\", \"title\": \"Digest\"}}]')"
check "a time-based workflow gets its pg_cron job when stored, owned by the extension's owner" \
    "* * * * * SELECT orders.run_scheduled_workflow('00000000-0000-0000-0000-0000000008d1') postgres" \
    "$(q -c "SELECT schedule || ' ' || command || ' ' || username FROM cron.job WHERE jobname = 'orders-workflow-00000000-0000-0000-0000-0000000008d1'")"

# pg_cron runs every-minute jobs at the start of each minute: wait up to 150 s
deadline=$((SECONDS + 150)) ran=0
while [ $SECONDS -lt $deadline ]; do
    ran=$(q -c "SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                WHERE j.jobname = 'orders-cleanup-expired-holds' AND d.status = 'succeeded'")
    [ "$ran" -gt 0 ] && break
    sleep 3
done
check "the job ran under pg_cron and succeeded" 1 "$([ "$ran" -gt 0 ] && echo 1 || echo 0)"
check "the job expired the lapsed hold" expired "$(q -c "SELECT status FROM orders.slot_reservations")"
check "and gave its place back" 0 "$(q -c "SELECT held_count FROM orders.service_capacity")"

deadline=$((SECONDS + 150)) runs=0
while [ $SECONDS -lt $deadline ]; do
    runs=$(q -c "SELECT count(*) FROM orders.workflow_executions WHERE workflow_id = '00000000-0000-0000-0000-0000000008d1'")
    [ "$runs" -gt 0 ] && break
    sleep 3
done
check "pg_cron ran the workflow: a completed execution for a scheduled minute, the task written" "completed schedule 1" \
    "$(q -c "SELECT e.status || ' ' || (e.trigger_event ->> 'event') || ' ' ||
                    (SELECT count(*) FROM orders.notifications n WHERE n.data ->> 'execution_id' = e.id::text)
               FROM orders.workflow_executions e WHERE e.workflow_id = '00000000-0000-0000-0000-0000000008d1'
              ORDER BY e.started_at LIMIT 1")"
check "at most one execution per scheduled minute" 0 \
    "$(q -c "SELECT count(*) - count(DISTINCT trigger_event ->> 'scheduled_for') FROM orders.workflow_executions")"
q -c "UPDATE orders.workflows SET is_active = false WHERE id = '00000000-0000-0000-0000-0000000008d1'"
check "deactivating the workflow removes its job" 0 "$(q -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'orders-workflow-%'")"

check "unschedule_jobs removes the jobs" "true true true true true true" "$(q -c "SELECT string_agg(removed::text, ' ') FROM orders.unschedule_jobs()")"
check "unschedule_jobs again is harmless" "false false false false false false" "$(q -c "SELECT string_agg(removed::text, ' ') FROM orders.unschedule_jobs()")"
check "no job left" 0 "$(q -c "SELECT count(*) FROM cron.job WHERE jobname LIKE 'orders-%'")"
q -c "DROP EXTENSION orders CASCADE"
echo "1..$n"
[ "$failed" -eq 0 ]
