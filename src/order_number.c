/*
 * order_number.c — order numbers: generated, bounded, and not forgeable.
 *
 *   orders.next_order_number()  the default of orders.orders.order_number:
 *                               ORD-<year>-<sequence, at least 6 digits>;
 *                               in an API request for customers and staff.
 *   orders_check_order_number() called by status_guard for every row written.
 *
 * Numbers starting with ORD- belong to the generator.  A client (anybody but
 * the table owner) may store such a number only when the generator handed
 * it to the same user in the same transaction — normally as the column
 * default of the very row being inserted — so nobody can take the numbers
 * the generator will give others (their INSERTs would fail with 23505).  A
 * handed-out number serves one order; an INSERT rolled back to a savepoint
 * gives it back for the retry.  A number an order already has is no future
 * one: an INSERT sending it (an upsert sending a row back as it was read)
 * meets that order (its conflict action, or 23505).  Other numbers are free
 * for clients to choose on INSERT; afterwards only the owner changes an
 * order's number.  Every number is at most ORDER_NUMBER_MAX characters: the
 * number travels in every status notification, whose payload is limited.
 */
#include "orders.h"

#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/rls.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(orders_next_order_number);

#define ORDER_NUMBER_PREFIX "ORD-"

/* The number the generator last handed out, to whom, when, and where it was used. */
static char last_generated[ORDER_NUMBER_MAX * MAX_MULTIBYTE_CHAR_LEN + 1];
static Oid	last_user = InvalidOid;
static LocalTransactionId last_lxid = InvalidLocalTransactionId;
static SubTransactionId used_in = InvalidSubTransactionId;	/* invalid: not used yet */

/*
 * number_use_follows_subxact — a use of the number belongs to the
 * subtransaction that made it: passed to its parent when it commits,
 * undone when it aborts (the order it was used for is gone).
 */
static void
number_use_follows_subxact(SubXactEvent event, SubTransactionId mySubid,
						   SubTransactionId parentSubid, void *arg)
{
	(void) arg;
	orders_follow_subxact(&used_in, event, mySubid, parentSubid);
}

/*
 * require_drawer — in an API request only who may insert an order draws a
 * number: a customer (one of its customer rows is its account's) or active
 * staff; anybody else (anon) is refused (42501) — it burnt the sequence's
 * numbers and learnt how many orders were numbered.  Writers the orders'
 * row level security does not hold — the extension's own (the webhook
 * ingest, as the owner) and a DBA's SECURITY DEFINER function of a
 * BYPASSRLS role (a guest checkout called by anon) — draw freely.
 */
static void
require_drawer(void)
{
	pg_uuid_t	staff_id;
	const char *role;
	int			ncustomers;

	if (!orders_api_request_now() || check_enable_rls(orders_relid("orders"), InvalidOid, true) != RLS_ENABLED)
		return;
	(void) orders_caller_customers(&ncustomers);
	if (ncustomers > 0 || orders_caller_staff(&staff_id, &role))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("orders.next_order_number: only customers and staff draw order numbers"),
			 errhint("Sign up as a customer (orders.customers with your account) before placing an order.")));
}

/*
 * orders.next_order_number() — the next generated number, e.g.
 * ORD-2026-000042 (the sequence part grows past 6 digits rather than being
 * cut, so numbers never repeat).  Remembers it for the check below.
 */
Datum
orders_next_order_number(PG_FUNCTION_ARGS)
{
	Oid			seq = orders_relid("order_number_seq");
	int64		n;
	struct pg_tm tm;
	static bool subxact_callback = false;

	(void) fcinfo;
	if (!subxact_callback)
	{
		RegisterSubXactCallback(number_use_follows_subxact, NULL);
		subxact_callback = true;
	}
	require_drawer();
	n = DatumGetInt64(DirectFunctionCall1(nextval_oid, ObjectIdGetDatum(seq)));
	/* (0.43.0) the year in the business zone, not the caller's session's */
	orders_business_tm(GetCurrentTransactionStartTimestamp(), &tm);
	snprintf(last_generated, sizeof(last_generated), ORDER_NUMBER_PREFIX "%04d-%06lld",
			 tm.tm_year, (long long) n);
	last_user = GetUserId();
	last_lxid = MyProc->lxid;
	used_in = InvalidSubTransactionId;
	PG_RETURN_TEXT_P(cstring_to_text(last_generated));
}

/*
 * number_taken — does an order of "rel" have order number "value" (read as
 * the table's owner: whichever order it is, the caller need not see it)?
 * The order is locked FOR KEY SHARE, so that one deleted meanwhile is
 * waited for and not counted (at REPEATABLE READ: 40001) — else its
 * number, gone from the unique index, would be stored for another order.
 */
static bool
number_taken(Relation rel, Datum value)
{
	static Oid	argtypes[1] = {TEXTOID};
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	bool		taken;

	orders_spi_connect_as_owner(RelationGetRelid(rel), &saved);
	plan = orders_get_plan(PLAN_ORDER_NUMBER_TAKEN, RelationGetRelid(rel),
						   "SELECT FROM orders.orders WHERE order_number OPERATOR(pg_catalog.=) $1 FOR KEY SHARE",
						   1, argtypes);
	orders_execute(plan, &value, NULL, false, 1, SPI_OK_SELECT);
	taken = SPI_processed > 0;
	orders_spi_finish_as(&saved);
	return taken;
}

/*
 * orders_check_order_number — refuse an order number of "newrow" (of table
 * "rel"; "oldrow" NULL for an INSERT) that is longer than ORDER_NUMBER_MAX
 * characters (22001), a change of an order's number by anybody but the table
 * owner (OR009), and a number in the generator's namespace that the
 * generator did not give this user in this transaction, or gave for an
 * order already (OR009, owner excepted), unless an order has that number.
 */
void
orders_check_order_number(Relation rel, HeapTuple oldrow, HeapTuple newrow)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			att = orders_fnumber(desc, "order_number");
	bool		isnull;
	Datum		value = SPI_getbinval(newrow, desc, att, &isnull);
	char	   *number;
	bool		owner;

	if (isnull)
		return;					/* NOT NULL reports it */
	if (oldrow != NULL)
	{
		bool		oldnull;
		Datum		old = SPI_getbinval(oldrow, desc, att, &oldnull);

		if (!oldnull && datumIsEqual(old, value, false, -1))
			return;				/* unchanged */
	}
	number = TextDatumGetCString(value);
	if (pg_mbstrlen(number) > ORDER_NUMBER_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("an order number may have at most %d characters, not %d",
						ORDER_NUMBER_MAX, pg_mbstrlen(number))));

	owner = has_privs_of_role(GetUserId(), rel->rd_rel->relowner);
	if (oldrow != NULL && !owner)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_ORDER_NUMBER_RESERVED),
				 errmsg("order \"%s\": the order number cannot be changed",
						SPI_getvalue(oldrow, desc, att)),
				 errhint("Only the owner of orders.orders changes order numbers.")));
	if (owner || strncmp(number, ORDER_NUMBER_PREFIX, strlen(ORDER_NUMBER_PREFIX)) != 0)
		return;
	if (strcmp(number, last_generated) == 0 && last_user == GetUserId() && last_lxid == MyProc->lxid &&
		used_in == InvalidSubTransactionId)
	{
		used_in = GetCurrentSubTransactionId();	/* one order per generated number */
		return;
	}
	if (!number_taken(rel, value))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_ORDER_NUMBER_RESERVED),
				 errmsg("order number \"%s\" was not generated for this order", number),
				 errdetail("Numbers starting with \"%s\" are assigned by orders.next_order_number().",
						   ORDER_NUMBER_PREFIX),
				 errhint("Omit order_number to get the next one, or choose a number with another prefix.")));
}
