/*
 * staff_edges.c — lifecycle edges reserved to staff.
 *
 * orders.lifecycle_transitions.allowed_staff lists who may take an edge in
 * an API request: staff roles ('admin', 'delivery_agent', ...) and the
 * order's own people ('assigned_agent', 'assigned_rep').  The caller is
 * staff when its JWT sub is the account_id of an active orders.staff row;
 * that row is read as the table's owner and kept for the rest of the
 * command.  Requests that are not API requests (DBAs, pg_cron) and the
 * extension's own maintenance (running as the owner of orders.orders) are
 * not held to these rules, as with the column rules of the policies.
 */
#include "orders.h"

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* the caller's staff row, kept for one command of one transaction */
static LocalTransactionId cached_lxid = InvalidLocalTransactionId;
static CommandId cached_cid = InvalidCommandId;
static char *cached_actor = NULL;	/* in TopMemoryContext */
static bool cached_is_staff = false;
static pg_uuid_t cached_id;
static char cached_role[NAMEDATALEN];

/* account_uuid — "actor" as a uuid when it is one (8-4-4-4-12 hex digits). */
static bool
account_uuid(const char *actor, pg_uuid_t *uuid)
{
	if (strlen(actor) != 36)
		return false;
	for (int i = 0; i < 36; i++)
	{
		bool		dash = (i == 8 || i == 13 || i == 18 || i == 23);

		if (dash ? actor[i] != '-' : !isxdigit((unsigned char) actor[i]))
			return false;
	}
	*uuid = *DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(actor)));
	return true;
}

/*
 * caller_staff — is the caller active staff, and its id and role.  Read
 * once per command (a staff row changed by an earlier command of the
 * transaction is seen).
 */
static bool
caller_staff(pg_uuid_t *id, const char **role)
{
	static Oid	argtypes[1] = {UUIDOID};
	char	   *actor = orders_current_actor();
	CommandId	cid = GetCurrentCommandId(false);
	pg_uuid_t	account;
	OrdersSavedUser saved;
	Oid			staff_rel;
	Datum		args[1];

	if (cached_lxid != MyProc->lxid || cached_cid != cid ||
		cached_actor == NULL || strcmp(cached_actor, actor) != 0)
	{
		cached_is_staff = false;
		if (account_uuid(actor, &account))
		{
			SPIPlanPtr	plan;

			staff_rel = orders_relid("staff");
			orders_spi_connect_as_owner(staff_rel, &saved);
			plan = orders_get_plan(PLAN_CALLER_STAFF, staff_rel,
								   "SELECT s.id, s.role FROM orders.staff s"
								   " WHERE s.account_id OPERATOR(pg_catalog.=) $1 AND s.is_active",
								   1, argtypes);
			args[0] = UUIDPGetDatum(&account);
			orders_execute(plan, args, NULL, true, 1, SPI_OK_SELECT);
			if (SPI_processed > 0)
			{
				bool		isnull;

				cached_id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
				strlcpy(cached_role, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
						NAMEDATALEN);
				cached_is_staff = true;
			}
			orders_spi_finish_as(&saved);
		}
		if (cached_actor != NULL)
			pfree(cached_actor);
		cached_actor = MemoryContextStrdup(TopMemoryContext, actor);
		cached_lxid = MyProc->lxid;
		cached_cid = cid;
	}
	*id = cached_id;
	*role = cached_role;
	return cached_is_staff;
}

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
	if (!caller_staff(&id, &role))
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
