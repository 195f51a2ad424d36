/*
 * lead_move_lock.c — one lock orders the moves of orders to another
 * customer after the lead statements that judge leads against their
 * order's customer, and those after the moves.
 *
 *   orders.leads_move_lock()  BEFORE UPDATE OF customer_id ... FOR EACH
 *                            STATEMENT on orders.orders: holds the lock
 *                            Share, before the statement locks any row;
 *                            leads_follow_order (sql/schema/50_leads.sql)
 *                            then takes the moved orders' leads along.
 *   orders_lock_leads_judging()  a lead statement (leads.c) that judges a
 *                            lead by its order's customer without writing
 *                            the order holds it RowExclusive.
 *
 * Share and RowExclusive conflict with each other and not with themselves:
 * moves go on beside moves, lead statements beside lead statements; a move
 * waits for the lead statements under way (their leads then move too) and
 * holds later ones off until it commits (they then read the new customer;
 * at REPEATABLE READ a move committed after the snapshot is 40001).  Held
 * to the end of the transaction.
 *
 * (0.40.0) One lock for the whole database, not one per order (0.37.0):
 * every entry of the lock table is shared memory for the cluster (about
 * max_locks_per_transaction × max_connections), and a customer moving
 * 20,000 of its orders in one PATCH took 20,000 and ran it out (53200 for
 * every session until it ended).  A hierarchy (per order up to 32, then one
 * lock for all) was tried: its switch mid-statement upgraded a lock two
 * movers held and deadlocked one in four of two concurrent bulk moves.
 * The tag's fourth field is 3, which no pg_advisory_* function makes: no
 * login can take it by SQL and hold every lead statement off.
 */
#include "orders.h"

#include "commands/trigger.h"
#include "miscadmin.h"
#include "storage/lock.h"

PG_FUNCTION_INFO_V1(orders_leads_move_lock);

/* set_move_tag — the lock's tag in this database. */
static void
set_move_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, ORDERS_LEADS_MOVE_LOCK, 0, 3);
}

/*
 * orders_lock_leads_judging — a lead statement's hold of the lock (waits
 * for every move under way), to the end of its transaction.
 */
void
orders_lock_leads_judging(void)
{
	LOCKTAG		tag;

	set_move_tag(&tag);
	(void) LockAcquire(&tag, RowExclusiveLock, false, false);
}

/*
 * orders.leads_move_lock() — a move's hold of the lock (waits for every
 * lead statement under way), taken before the UPDATE locks its rows.
 */
Datum
orders_leads_move_lock(PG_FUNCTION_ARGS)
{
	LOCKTAG		tag;

	(void) orders_trigger_data(fcinfo, "leads_move_lock", ORDERS_TRIG_BEFORE | ORDERS_TRIG_UPDATE);
	set_move_tag(&tag);
	(void) LockAcquire(&tag, ShareLock, false, false);
	return PointerGetDatum(NULL);
}
