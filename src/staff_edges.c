/*
 * staff_edges.c — lifecycle edges reserved to staff.
 *
 * orders.lifecycle_transitions.allowed_staff lists who may take an edge in
 * an API request: staff roles ('admin', 'delivery_agent', ...) and the
 * order's own people ('assigned_agent', 'assigned_rep').  The caller is
 * staff when its JWT sub is the account_id of an active orders.staff row
 * (identity.c).  Requests that are not API requests (DBAs, pg_cron) and the
 * extension's own maintenance (running as the owner of orders.orders) are
 * not held to these rules, as with the column rules of the policies.
 * A customer rep who closes an unassigned order becomes its rep (0.28.0).
 */
#include "orders.h"

#include "access/htup_details.h"
#include "catalog/pg_type_d.h"
#include "miscadmin.h"
#include "utils/acl.h"

/*
 * orders_staff_may_take — do the staff rules of "edge" admit the caller on
 * an order assigned to "assigned"?  NULL "assigned" means not known yet
 * (orders.transition() checks before its UPDATE): 'assigned_agent' and
 * 'assigned_rep' then admit any staff member, and the trigger judges again
 * with the row.
 */
bool
orders_staff_may_take(const LifecycleEdge *edge, const OrdersAssignment *assigned)
{
	pg_uuid_t	id;
	const char *role;

	if (edge->nstaff == 0 || !orders_api_request_now() ||
		has_privs_of_role(GetUserId(), orders_rel_owner(orders_relid("orders"))))
		return true;
	if (!orders_caller_staff(&id, &role))
		return false;
	for (int i = 0; i < edge->nstaff; i++)
	{
		const char *who = edge->staff[i];

		if (strcmp(who, "assigned_agent") == 0)
		{
			if (assigned == NULL || (!assigned->agent_null && memcmp(&assigned->agent, &id, sizeof(id)) == 0))
				return true;
		}
		else if (strcmp(who, "assigned_rep") == 0)
		{
			if (assigned == NULL || (!assigned->rep_null && memcmp(&assigned->rep, &id, sizeof(id)) == 0))
				return true;
		}
		else if (strcmp(who, role) == 0)
			return true;
	}
	return false;
}

/* assignment_column — one uuid column of an order row; missing counts as NULL. */
static void
assignment_column(HeapTuple row, TupleDesc desc, const char *name, bool *isnull, pg_uuid_t *value)
{
	int			att = orders_fnumber(desc, name);
	Datum		d;

	*isnull = true;
	if (att <= 0)
		return;
	d = SPI_getbinval(row, desc, att, isnull);
	if (!*isnull)
		*value = *DatumGetUUIDP(d);
}

/*
 * orders_read_assignment — the assigned agent and rep of an order row
 * (columns of orders.orders since 0.5.0; absent ones count as unassigned).
 */
void
orders_read_assignment(HeapTuple row, TupleDesc desc, OrdersAssignment *assigned)
{
	assignment_column(row, desc, "assigned_agent_id", &assigned->agent_null, &assigned->agent);
	assignment_column(row, desc, "assigned_rep_id", &assigned->rep_null, &assigned->rep);
}

/*
 * orders_claim_for_rep — in an API request, a customer rep who takes an
 * order without a rep out of the open statuses (to "new_status" of
 * "lifecycle": cancels, completes it) becomes its rep (0.28.0).  A rep
 * reaches its own orders and the unassigned ones only while their status
 * is open, and row level security holds the row an UPDATE leaves to that
 * scope: a rep cancelling an unassigned order was refused with a bare "new
 * row violates row-level security policy".  A move within the open
 * statuses claims nothing (the order stays in every rep's reach: an
 * analysis service working as a rep would otherwise take every order it
 * analyses), nor does a change that unassigns the order ("old" had a rep),
 * nor the extension's own work as the owner (a campaign completed by a
 * rep's lead).  Returns the row to store ("row" itself when nothing is
 * claimed).
 */
HeapTuple
orders_claim_for_rep(HeapTuple old, HeapTuple row, TupleDesc desc, const char *lifecycle, const char *new_status)
{
	const LifecycleState *st;
	int			att;
	pg_uuid_t	id;
	pg_uuid_t  *rep;
	const char *role;
	Datum		value;
	bool		isnull;

	if (!orders_api_request_now() || has_privs_of_role(GetUserId(), orders_rel_owner(orders_relid("orders"))))
		return row;
	st = lifecycle_find_state(lifecycle, new_status);
	if (st == NULL || st->category == CATEGORY_OPEN)
		return row;
	att = orders_fnumber(desc, "assigned_rep_id");
	if (att <= 0 || TupleDescAttr(desc, att - 1)->atttypid != UUIDOID)
		return row;
	(void) heap_getattr(row, att, desc, &isnull);
	if (!isnull)
		return row;
	(void) heap_getattr(old, att, desc, &isnull);
	if (!isnull || !orders_caller_staff(&id, &role) || strcmp(role, "customer_rep") != 0)
		return row;
	rep = palloc(sizeof(pg_uuid_t));
	*rep = id;
	value = UUIDPGetDatum(rep);
	isnull = false;
	return heap_modify_tuple_by_cols(row, desc, 1, &att, &value, &isnull);
}
