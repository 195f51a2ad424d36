/*
 * row_scope.c — the rows of orders and customers a caller reaches, one call
 * per row (the "reach" policies of the two tables).
 *
 *   orders.sees_order(customer_id, assigned_agent_id, assigned_rep_id,
 *                     lifecycle, status)                       boolean
 *   orders.sees_customer(id, account_id)                       boolean
 *   orders.staff_sees_order(rep, agent, lifecycle, status)     boolean
 *
 * Written out in SQL, each policy asked the identity helpers up to ten times
 * per query (an InitPlan each: a node to build, a permission check and a
 * call) before reading a row, which cost a small dashboard query more than
 * its own work.  Here the first row of a query reads the caller's scope
 * (src/identity.c: one lookup per command) into fn_extra, and every row is a
 * few comparisons.  A scope is reused only for the caller, command and
 * subtransaction it was read for (orders_identity_generation, asked per
 * call: one expression of a PL/pgSQL function lives for the transaction,
 * and the claims may change between its calls).  None of the functions
 * reveals anything but the caller's own reach.
 *
 * Who reaches what (doc/security.md):
 *   an order     — its customer is one of the caller's customer rows; or the
 *                  caller is active staff with orders.view and an admin,
 *                  manager or accountant, the delivery agent it is assigned
 *                  to, or a customer rep it is assigned to (or, unassigned,
 *                  any rep while its status is open)
 *   a customer   — its account is the caller's; or the caller is active
 *                  staff with customers.view, and for a delivery agent only
 *                  the customers of the orders assigned to it
 *                  (orders_agent_serves)
 */
#include "orders.h"

#include "catalog/pg_type.h"
#include "nodes/supportnodes.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(orders_sees_order);
PG_FUNCTION_INFO_V1(orders_sees_customer);
PG_FUNCTION_INFO_V1(orders_staff_sees_order);
PG_FUNCTION_INFO_V1(orders_reach_support);
PG_FUNCTION_INFO_V1(orders_order_in_scope);

/*
 * The planner's estimate of the share of a table's rows a caller reaches:
 * small, as it was for the written-out policies (~4 %), so that a query's
 * own conditions keep choosing its plan (a customer's orders by
 * orders_customer_created_idx, not a walk of every order by created_at in
 * the hope that a third of them pass).  An estimate only: the answer is
 * the caller's, whatever the plan.
 */
#define REACH_SELECTIVITY 0.04

/* What a staff member reaches of orders. */
typedef enum StaffReach
{
	REACH_NONE,					/* not active staff with orders.view (or customers.view) */
	REACH_ALL,					/* admin, manager, accountant (any role but an agent: customers) */
	REACH_AGENT,				/* the ones assigned to it */
	REACH_REP					/* the ones assigned to it, and unassigned open ones */
} StaffReach;

/* (lifecycle, status) pairs a rep's scope remembers: a query meets few */
#define STATE_MEMO 16

/* The caller's reach, for one caller and command. */
typedef struct RowScope
{
	bool		valid;			/* filled for "identity" */
	uint64		identity;		/* orders_identity_generation(): caller, command, subtransaction */
	int			ncustomers;		/* orders: the caller's customer rows */
	pg_uuid_t  *customers;
	bool		has_account;	/* customers: the caller's account */
	pg_uuid_t	account;
	StaffReach	reach;
	pg_uuid_t	staff_id;
	void	   *agent_set;		/* customers: orders_agent_serves's cache */
	int			nstates;		/* reps: (lifecycle, status) pairs met, and */
	text	   *lifecycles[STATE_MEMO]; /* whether each is open */
	text	   *statuses[STATE_MEMO];
	bool		open[STATE_MEMO];
} RowScope;

/*
 * current_scope — the scope kept in fn_extra when it was read for the
 * caller, command and subtransaction of now (orders_identity_generation:
 * the claims or the user may have changed between two calls of one
 * expression, as in a PL/pgSQL loop); else a fresh one, zeroed, for the
 * asker to fill and stamp.
 */
static RowScope *
current_scope(FunctionCallInfo fcinfo, bool *fresh)
{
	RowScope   *scope = (RowScope *) fcinfo->flinfo->fn_extra;
	uint64		identity = orders_identity_generation();

	if (scope != NULL && scope->valid && scope->identity == identity)
	{
		*fresh = false;
		return scope;
	}
	if (scope == NULL)
		fcinfo->flinfo->fn_extra = scope =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(RowScope));
	else
	{
		void	   *agent_set = scope->agent_set;	/* its own validity check */

		if (scope->customers != NULL)
			pfree(scope->customers);
		for (int i = 0; i < scope->nstates; i++)
		{
			pfree(scope->lifecycles[i]);
			pfree(scope->statuses[i]);
		}
		memset(scope, 0, sizeof(RowScope));
		scope->agent_set = agent_set;
	}
	scope->identity = identity;
	*fresh = true;
	return scope;
}

/* stamp — mark a filled scope as valid. */
static void
stamp(RowScope *scope)
{
	scope->valid = true;
}

/* role_reach — what an active staff member of "role" reaches of orders. */
static StaffReach
role_reach(const char *role)
{
	if (strcmp(role, "admin") == 0 || strcmp(role, "manager") == 0 || strcmp(role, "accountant") == 0)
		return REACH_ALL;
	if (strcmp(role, "delivery_agent") == 0)
		return REACH_AGENT;
	if (strcmp(role, "customer_rep") == 0)
		return REACH_REP;
	return REACH_NONE;
}

/* order_scope — the caller's reach of orders. */
static RowScope *
order_scope(FunctionCallInfo fcinfo)
{
	bool		fresh;
	RowScope   *scope = current_scope(fcinfo, &fresh);
	const char *role;

	if (!fresh)
		return scope;
	if (orders_caller_staff(&scope->staff_id, &role) && orders_caller_may("orders", "view"))
		scope->reach = role_reach(role);
	if (scope->reach != REACH_ALL)	/* else its customer rows add nothing: not read */
	{
		int			n;
		const Datum *ids = orders_caller_customers(&n);

		scope->customers = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(pg_uuid_t) * Max(n, 1));
		for (int i = 0; i < n; i++)
			scope->customers[i] = *DatumGetUUIDP(ids[i]);
		scope->ncustomers = n;
	}
	stamp(scope);
	return scope;
}

/* staff_scope — the caller's staff reach of orders by its role alone. */
static RowScope *
staff_scope(FunctionCallInfo fcinfo)
{
	bool		fresh;
	RowScope   *scope = current_scope(fcinfo, &fresh);
	const char *role;

	if (!fresh)
		return scope;
	if (orders_caller_staff(&scope->staff_id, &role))
		scope->reach = role_reach(role);
	stamp(scope);
	return scope;
}

/* customer_scope — the caller's reach of customers. */
static RowScope *
customer_scope(FunctionCallInfo fcinfo)
{
	bool		fresh;
	RowScope   *scope = current_scope(fcinfo, &fresh);
	const char *role;

	if (!fresh)
		return scope;
	scope->has_account = orders_current_account(&scope->account);
	if (orders_caller_staff(&scope->staff_id, &role) && orders_caller_may("customers", "view"))
		scope->reach = strcmp(role, "delivery_agent") == 0 ? REACH_AGENT : REACH_ALL;
	stamp(scope);
	return scope;
}

/* same_uuid — a non-NULL argument equal to "id". */
static inline bool
same_uuid(FunctionCallInfo fcinfo, int argno, const pg_uuid_t *id)
{
	return !PG_ARGISNULL(argno) &&
		memcmp(PG_GETARG_UUID_P(argno)->data, id->data, UUID_LEN) == 0;
}

/* same_text — two texts with the same bytes. */
static inline bool
same_text(const text *a, const text *b)
{
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

/*
 * state_open — whether status "st" of lifecycle "lc" is open: from the
 * lifecycle graph, remembered in "scope" for the pairs a query meets (a
 * rep's query asks for every unassigned order it reads).
 */
static bool
state_open(FunctionCallInfo fcinfo, RowScope *scope, text *lc, text *st)
{
	const LifecycleState *state;
	bool		open;

	for (int i = 0; i < scope->nstates; i++)
		if (same_text(scope->statuses[i], st) && same_text(scope->lifecycles[i], lc))
			return scope->open[i];
	state = lifecycle_find_state(text_to_cstring(lc), text_to_cstring(st));
	open = state != NULL && state->category == CATEGORY_OPEN;
	if (scope->nstates < STATE_MEMO)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		scope->lifecycles[scope->nstates] = DatumGetTextPCopy(PointerGetDatum(lc));
		scope->statuses[scope->nstates] = DatumGetTextPCopy(PointerGetDatum(st));
		scope->open[scope->nstates++] = open;
		MemoryContextSwitchTo(old);
	}
	return open;
}

/*
 * staff_reaches — whether "scope"'s staff reach takes in an order whose
 * assigned agent, assigned rep, lifecycle and status are the arguments at
 * "agent", "rep", "state" and state + 1.
 */
static bool
staff_reaches(FunctionCallInfo fcinfo, RowScope *scope, int agent, int rep, int state)
{
	switch (scope->reach)
	{
		case REACH_ALL:
			return true;
		case REACH_AGENT:
			return same_uuid(fcinfo, agent, &scope->staff_id);
		case REACH_REP:
			if (same_uuid(fcinfo, rep, &scope->staff_id))
				return true;
			if (!PG_ARGISNULL(rep) || PG_ARGISNULL(state) || PG_ARGISNULL(state + 1))
				return false;
			return state_open(fcinfo, scope, PG_GETARG_TEXT_PP(state), PG_GETARG_TEXT_PP(state + 1));
		case REACH_NONE:
			break;
	}
	return false;
}

/*
 * orders.sees_order(customer_id, assigned_agent_id, assigned_rep_id,
 * lifecycle, status) — whether the caller reaches an order with these
 * values (the orders policy).
 */
Datum
orders_sees_order(PG_FUNCTION_ARGS)
{
	RowScope   *scope = order_scope(fcinfo);

	for (int i = 0; i < scope->ncustomers; i++)
		if (same_uuid(fcinfo, 0, &scope->customers[i]))
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(staff_reaches(fcinfo, scope, 1, 2, 3));
}

/*
 * orders.staff_sees_order(rep, agent, lifecycle, status) — whether an order
 * with these values is in the caller's staff scope by its role (the staff
 * half of sees_order without the orders.view permission: what the review and
 * workflow functions ask of the staff they act for).
 */
Datum
orders_staff_sees_order(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(staff_reaches(fcinfo, staff_scope(fcinfo), 1, 0, 2));
}

/*
 * orders.sees_customer(id, account_id) — whether the caller reaches a
 * customer row with these values (the customers policy).
 */
Datum
orders_sees_customer(PG_FUNCTION_ARGS)
{
	RowScope   *scope = customer_scope(fcinfo);

	if (scope->has_account && same_uuid(fcinfo, 1, &scope->account))
		PG_RETURN_BOOL(true);
	switch (scope->reach)
	{
		case REACH_ALL:
			PG_RETURN_BOOL(true);
		case REACH_AGENT:
			PG_RETURN_BOOL(!PG_ARGISNULL(0) &&
						   orders_agent_serves(&scope->agent_set, fcinfo->flinfo->fn_mcxt,
											   PG_GETARG_UUID_P(0), scope->identity));
		case REACH_REP:
		case REACH_NONE:
			break;
	}
	PG_RETURN_BOOL(false);
}

/*
 * orders.reach_support(internal) — planner support of the reach functions:
 * their selectivity is REACH_SELECTIVITY, not the default third.
 */
Datum
orders_reach_support(PG_FUNCTION_ARGS)
{
	Node	   *rawreq = (Node *) PG_GETARG_POINTER(0);

	if (IsA(rawreq, SupportRequestSelectivity))
	{
		SupportRequestSelectivity *req = (SupportRequestSelectivity *) rawreq;

		req->selectivity = REACH_SELECTIVITY;
		PG_RETURN_POINTER(req);
	}
	PG_RETURN_POINTER(NULL);
}

/*
 * orders_visible_order_number — the number of order "order_id" when the
 * caller reads it (its read policy, asked as the current user through SPI,
 * which must be connected), else NULL; with the statement's snapshot, or
 * the latest when "latest" (an order deleted since is gone).  "*tid"
 * (when not NULL): the row version read.
 */
char *
orders_visible_order_number(Datum order_id, bool latest, ItemPointer tid)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan;
	Datum		args[1];
	bool		isnull;

	plan = orders_get_plan(PLAN_ORDER_VISIBLE, orders_relid("orders"),
						   "SELECT o.order_number, o.ctid FROM orders.orders o"
						   " WHERE o.id OPERATOR(pg_catalog.=) $1",
						   1, argtypes);
	args[0] = order_id;
	if (latest)
		orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	else
		orders_execute(plan, args, NULL, true, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return NULL;
	if (tid != NULL)
		*tid = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * orders.order_in_scope(order_id) — (0.29.0) in an API request, does the
 * caller read the order (the orders policy)?  True for NULL and outside
 * API requests, without touching orders.orders: a policy that asks it
 * needs no right on the orders of a writer that is no API role.
 */
Datum
orders_order_in_scope(PG_FUNCTION_ARGS)
{
	bool		visible;

	if (PG_ARGISNULL(0) || !orders_api_request_now())
		PG_RETURN_BOOL(true);
	orders_spi_connect();
	visible = orders_visible_order_number(PG_GETARG_DATUM(0), false, NULL) != NULL;
	SPI_finish();
	PG_RETURN_BOOL(visible);
}
