/*
 * lead_move_lock.c — the lock that orders a move of an order to another
 * customer and the lead statements judging the order's leads by its
 * customer (0.37.0): the advisory transaction lock (ORDERS_LEADS_MOVE_LOCK,
 * uuid_hash(order id)), taken exclusively by a move (orders.lock_order_leads,
 * from leads_follow_order) before it takes the order's leads along, and
 * shared by a lead statement (leads.c) while it judges them.  A lead written
 * while its order moves is either waited for and moved too, or waits and is
 * judged against the new customer.
 *
 * (0.40.0) Each such lock is an entry of the cluster's shared lock table
 * (about max_locks_per_transaction × max_connections, 6,400 by default): a
 * customer moving 20,000 of its orders in one PATCH took 20,000 and ran it
 * out — 53200 for every session until it ended.  An API request now takes
 * at most orders.lead_locks_per_request, 200 unless a superuser sets it
 * (0.41.0 library; OR121 beyond: split the request);
 * a DBA's transaction outside the API takes as many as it needs.  Two
 * lock-saving designs were built and reviewed first: a hierarchy (per order
 * up to 32, then one lock for all) deadlocked concurrent bulk moves at its
 * switch; one lock for the database made every PATCH naming customer_id
 * wait for every lead transaction, deadlocked two movers through their own
 * lead updates, and let any role holding it stop all lead writes.
 *
 * (0.41.0 library) In a lock space of the extension's own
 * (ORDERS_LOCK_SPACE_LEADS): with the fourth field 2, as before, any login
 * could hold an order's lock by pg_advisory_lock(int4, int4) and stop its
 * lead writes and moves for as long as its session lasted.
 */
#include "orders.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(orders_lock_order_leads_sql);

/*
 * Orders whose lock the backend's current transaction holds, and how many
 * it held when each open subtransaction began (index: nesting level): an
 * aborted subtransaction gives its locks back, and its count with them; a
 * released one leaves them to its parent.
 */
static LocalTransactionId counted_lxid = InvalidLocalTransactionId;
static int	counted = 0;
static int	counting_level = 0;	/* nesting level at which counting began */
static int *counted_at_start = NULL;
static int	counted_levels = 0;

/*
 * count_subxact — SubXactCallback: remember the count at a subtransaction's
 * start, restore it at its abort; the abort or release of the one in which
 * counting began hands counting on to its parent.
 */
static void
count_subxact(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();

	(void) mySubid;
	(void) parentSubid;
	(void) arg;
	if (counted_lxid != MyProc->lxid)
		return;					/* nothing counted in this transaction */
	if ((event == SUBXACT_EVENT_ABORT_SUB || event == SUBXACT_EVENT_COMMIT_SUB) && level <= counting_level)
	{
		/* counting began inside it: aborted, all given back; its parent counts on */
		if (event == SUBXACT_EVENT_ABORT_SUB)
			counted = 0;
		counting_level = level - 1;
	}
	else if (event == SUBXACT_EVENT_START_SUB)
	{
		if (level >= counted_levels)
		{
			int			n = Max(8, level * 2);

			counted_at_start = counted_at_start == NULL ?
				MemoryContextAllocZero(TopMemoryContext, sizeof(int) * n) :
				repalloc(counted_at_start, sizeof(int) * n);
			counted_levels = n;
		}
		counted_at_start[level] = counted;
	}
	else if (event == SUBXACT_EVENT_ABORT_SUB && level < counted_levels)
		counted = counted_at_start[level];
}

/*
 * orders_lock_order_leads — lock "order_id"'s leads to the end of the
 * transaction: exclusively for a move ("move"), else shared.  Counted once
 * per order and transaction (an order already locked in either mode, or by
 * a session lock, takes no new entry of the lock table; a move's own update
 * of the leads finds its lock held); an API request that would hold more
 * than orders.lead_locks_per_request orders is refused (OR121) before it
 * takes one more.  Always LockAcquire'd: a session-level hold alone could
 * be unlocked before the transaction ends.
 */
void
orders_lock_order_leads(Datum order_id, bool move)
{
	LOCKTAG		tag;
	bool		held;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, ORDERS_LEADS_MOVE_LOCK,
						 (uint32) DatumGetInt32(DirectFunctionCall1(uuid_hash, order_id)), ORDERS_LOCK_SPACE_LEADS);
	held = LockHeldByMe(&tag, ExclusiveLock) || LockHeldByMe(&tag, ShareLock);
	if (counted_lxid != MyProc->lxid)
	{
		static bool registered = false;

		if (!registered)
		{
			RegisterSubXactCallback(count_subxact, NULL);
			registered = true;
		}
		counted_lxid = MyProc->lxid;
		counted = 0;
		counting_level = GetCurrentTransactionNestLevel();
	}
	if (!held && counted >= orders_lead_locks_per_request && orders_api_request_now())
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_TOO_MANY_ORDERS),
				 errmsg("one request moves or judges the leads of at most %d orders", orders_lead_locks_per_request),
				 errdetail("Each order takes a lock of the database's shared lock table until the request ends "
						   "(setting orders.lead_locks_per_request)."),
				 errhint("Split the request: move the orders, or change the leads, in batches of at most %d orders.",
						 orders_lead_locks_per_request)));
	(void) LockAcquire(&tag, move ? ExclusiveLock : ShareLock, false, false);
	if (!held)
		counted++;
}

/*
 * orders.lock_order_leads(order_id uuid) — a move's lock of the order's
 * leads (leads_follow_order), to the end of the transaction.
 */
Datum
orders_lock_order_leads_sql(PG_FUNCTION_ARGS)
{
	orders_lock_order_leads(PG_GETARG_DATUM(0), true);
	PG_RETURN_VOID();
}
