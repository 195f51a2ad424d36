/*
 * lead_move_lock.c — the lock that orders a move of an order to another
 * customer after the lead statements judging the order's leads.
 *
 *   orders.lock_order_leads(order_id)  taken exclusively by
 *                            leads_follow_order (sql/schema/50_leads.sql)
 *                            before it takes the moved order's leads along;
 *   orders_lock_order_leads_shared()  held shared by a lead statement
 *                            (leads.c) while it judges its leads' customer
 *                            against the order's.
 *
 * Per order it is the advisory lock (ORDERS_LEADS_MOVE_LOCK, uuid_hash(order
 * id)) — exclusive for a move, shared for a lead statement.  (0.40.0) Every
 * lock of the lock table is shared memory for the whole cluster (about
 * max_locks_per_transaction × max_connections): a customer moving 20,000 of
 * its own orders in one PATCH took 20,000 of them and ran it out (53200 for
 * every session until its commit).  So above ORDERS_LEAD_LOCKS_PER_XACT
 * orders in one transaction a move or a lead statement locks every order at
 * once, by one lock (ORDERS_LEADS_ALL_LOCK) whose modes nest like a table's:
 * per-order lockers hold it RowShare (lead statements) or RowExclusive
 * (moves), which do not conflict; all-order lockers hold it Share (lead
 * statements: conflicts with every move, not with other lead statements)
 * or Exclusive (moves: conflicts with both).
 */
#include "orders.h"

#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

PG_FUNCTION_INFO_V1(orders_lock_order_leads);

/* orders one transaction locks one by one before it locks them all */
#define ORDERS_LEAD_LOCKS_PER_XACT 32

/* per-order locks taken by this backend's current transaction */
static LocalTransactionId counted_lxid = InvalidLocalTransactionId;
static int	counted = 0;

/*
 * lock_order_leads — lock "order_id"'s leads against moves (exclusive: a
 * move; else a lead statement that will ask for "coming" orders, this one
 * included, before it ends).  Held to the end of the transaction.  Never
 * more than ORDERS_LEAD_LOCKS_PER_XACT + 1 entries of the lock table per
 * transaction and side (a subtransaction's abort gives its locks back,
 * the count stays: it only moves to the one lock sooner).
 */
static void
lock_order_leads(Datum order_id, bool exclusive, long coming)
{
	LOCKTAG		all;
	LOCKTAG		one;

	if (counted_lxid != MyProc->lxid)
	{
		counted_lxid = MyProc->lxid;
		counted = 0;
	}
	SET_LOCKTAG_ADVISORY(all, MyDatabaseId, ORDERS_LEADS_ALL_LOCK, 0, 2);
	if (LockHeldByMe(&all, ExclusiveLock) || (!exclusive && LockHeldByMe(&all, ShareLock)))
		return;					/* every order locked already */
	if (counted + coming > ORDERS_LEAD_LOCKS_PER_XACT)
	{
		(void) LockAcquire(&all, exclusive ? ExclusiveLock : ShareLock, false, false);
		return;
	}
	(void) LockAcquire(&all, exclusive ? RowExclusiveLock : RowShareLock, false, false);
	SET_LOCKTAG_ADVISORY(one, MyDatabaseId, ORDERS_LEADS_MOVE_LOCK,
						 (uint32) DatumGetInt32(DirectFunctionCall1(uuid_hash, order_id)), 2);
	(void) LockAcquire(&one, exclusive ? ExclusiveLock : ShareLock, false, false);
	counted++;
}

/*
 * orders_lock_order_leads_shared — a lead statement's lock of "order_id"
 * (one of "coming" orders it has yet to judge, this one included).
 */
void
orders_lock_order_leads_shared(Datum order_id, long coming)
{
	lock_order_leads(order_id, false, coming);
}

/*
 * orders.lock_order_leads(order_id uuid) — a move's lock of the order's
 * leads (leads_follow_order), to the end of the transaction.
 */
Datum
orders_lock_order_leads(PG_FUNCTION_ARGS)
{
	lock_order_leads(PG_GETARG_DATUM(0), true, 1);
	PG_RETURN_VOID();
}
