/*
 * keyed_lock.c — the extension's transaction locks on a key its SQL
 * computes (a shop order, a customer's phone or email, a staff member's
 * slots, a scheduled workflow's run):
 *
 *   orders.xact_lock(key bigint)   exclusive, to the end of the transaction
 *
 * Advisory locks in the lock space ORDERS_LOCK_SPACE_KEYED, which no SQL
 * call can build (0.41.0; the SQL took them with pg_advisory_xact_lock,
 * whose keys any login could take and hold with pg_advisory_lock — a
 * session holding a phone number's key stopped every shop delivery of that
 * customer).  Owner only: the SECURITY DEFINER functions that serialise on
 * such keys call it.
 */
#include "orders.h"

#include "miscadmin.h"
#include "storage/lock.h"

PG_FUNCTION_INFO_V1(orders_xact_lock);

/*
 * orders.xact_lock(key bigint) — wait for and take the exclusive lock on
 * "key" to the end of the transaction (released at its commit or abort, or
 * at the rollback of the subtransaction that took it, as
 * pg_advisory_xact_lock's).
 */
Datum
orders_xact_lock(PG_FUNCTION_ARGS)
{
	orders_keyed_lock(PG_GETARG_INT64(0));
	PG_RETURN_VOID();
}

/* orders_keyed_lock — the same from C (0.43.0: a slot holder's holds). */
void
orders_keyed_lock(int64 key)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) ((uint64) key >> 32), (uint32) key, ORDERS_LOCK_SPACE_KEYED);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}
