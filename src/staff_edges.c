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
 */
#include "orders.h"

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
	int			att = SPI_fnumber(desc, name);
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
