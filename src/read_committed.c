/*
 * read_committed.c — checks that must see what committed before their
 * locks.
 *
 * A check that locks rows or a table and then reads what others committed
 * (the TRUNCATE guards, the lifecycle state guard, the recounts, the
 * webhook ingest, the announcer) needs a snapshot taken after its lock:
 * the statement's own, as READ COMMITTED takes one per statement — and
 * READ UNCOMMITTED, which PostgreSQL runs as READ COMMITTED.  A
 * transaction snapshot (REPEATABLE READ, SERIALIZABLE) predates the lock.
 *
 *   orders.require_read_committed(what text, why text)   void, or 25000
 */
#include "orders.h"

#include "access/xact.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(orders_require_read_committed_sql);

/*
 * orders_require_read_committed — returns when each statement of the
 * transaction takes its own snapshot; else 25000 naming "what" (DETAIL
 * "why" when given).  The one place this rule is written.
 */
void
orders_require_read_committed(const char *what, const char *why)
{
	if (!IsolationUsesXactSnapshot())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
			 errmsg("%s runs at READ COMMITTED only", what),
			 why != NULL ? errdetail("%s", why) : 0,
			 errhint("Run it in a READ COMMITTED transaction (BEGIN ISOLATION LEVEL READ COMMITTED).")));
}

/* orders.require_read_committed(what, why) — the same, for PL/pgSQL. */
Datum
orders_require_read_committed_sql(PG_FUNCTION_ARGS)
{
	if (!IsolationUsesXactSnapshot())
		PG_RETURN_VOID();
	orders_require_read_committed(PG_ARGISNULL(0) ? "this" : text_to_cstring(PG_GETARG_TEXT_PP(0)),
								  PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}
