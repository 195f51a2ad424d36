/*
 * lifecycle.c — the lifecycle graph (orders.lifecycles, lifecycle_states,
 * lifecycle_transitions), cached per backend.
 *
 * The cache is loaded on first use and dropped whenever a relcache
 * invalidation names one of the three tables.  Plain DML sends no such
 * invalidation, so a statement trigger on each table (orders.lifecycle_changed)
 * sends one; it reaches every backend when the change commits, and this
 * backend at once (or at rollback).  The graph is read with the latest
 * snapshot, as catalogs are, whatever the isolation level: a REPEATABLE READ
 * transaction that started before a state changed must still move stock
 * (holds_stock) and count (category) by the states as they are now, or its
 * orders would enter a state by one meaning and leave it by another.  A
 * parallel query (orders.status_category is PARALLEL SAFE) cannot take a
 * new snapshot: there the graph is read with the transaction's snapshot and
 * used only while parallel mode lasts — the first lookup after it (or in
 * another transaction) reads the graph again.
 * A replaced graph is not freed at once — a caller may still hold pointers
 * into it — but handed to the transaction's memory, which goes at its end.
 */
#include "orders.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(orders_lifecycle_changed);
PG_FUNCTION_INFO_V1(orders_status_category);

static MemoryContext graph_cxt = NULL;
static Lifecycle *graph = NULL;
static int	graph_count = 0;
static bool graph_valid = false;
static uint64 graph_loads = 0;	/* lifecycle_graph_generation() */
static bool graph_parallel = false;	/* read in parallel mode, by the
										 * transaction's snapshot */
static LocalTransactionId graph_lxid = InvalidLocalTransactionId;
static bool callback_registered = false;
static Oid	graph_relids[4];	/* the three lifecycle tables, lifecycle_gates */

/* graph_inval — relcache callback: forget the graph when its tables change. */
static void
graph_inval(Datum arg, Oid relid)
{
	(void) arg;
	if (relid == InvalidOid || relid == graph_relids[0] || relid == graph_relids[1] ||
		relid == graph_relids[2] || (relid == graph_relids[3] && OidIsValid(relid)))
		graph_valid = false;
}

static LifecycleCategory
parse_category(const char *s)
{
	if (strcmp(s, "open") == 0)
		return CATEGORY_OPEN;
	if (strcmp(s, "fulfilled") == 0)
		return CATEGORY_FULFILLED;
	if (strcmp(s, "cancelled") == 0)
		return CATEGORY_CANCELLED;
	if (strcmp(s, "returned") == 0)
		return CATEGORY_RETURNED;
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_BAD_CONFIGURATION),
			 errmsg("lifecycle state category \"%s\" is not one of open, fulfilled, cancelled, returned", s)));
	return CATEGORY_OPEN;		/* keep compiler quiet */
}

static Lifecycle *
find_loaded(const char *name)
{
	for (int i = 0; i < graph_count; i++)
		if (strcmp(graph[i].name, name) == 0)
			return &graph[i];
	return NULL;
}

/*
 * text_list — the elements of a text[] as C strings (in the current memory
 * context), NULL elements left out.  An empty list becomes one "" element:
 * it names nobody, so only the owner's maintenance takes the edge.
 */
static char **
text_list(Datum array, int *n)
{
	char	  **list = orders_text_list(array, n);

	if (*n == 0)
		list[(*n)++] = pstrdup("");
	return list;
}

/*
 * load_graph — read the three tables into a fresh memory context and make it
 * the current graph.  The previous graph moves to TopTransactionContext; so
 * does a half-built one, at the next load, when reading fails.
 */
static void
load_graph(void)
{
	MemoryContext newcxt;
	MemoryContext oldcxt;
	Lifecycle  *lcs;
	int			nlcs;
	OrdersSavedUser saved;
	Oid			relid_lc = orders_relid("lifecycles");
	Oid			relid_st = orders_relid("lifecycle_states");
	Oid			relid_tr = orders_relid("lifecycle_transitions");

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(graph_inval, (Datum) 0);
		callback_registered = true;
	}
	graph_relids[0] = relid_lc;
	graph_relids[1] = relid_st;
	graph_relids[2] = relid_tr;
	/* lifecycle_gates exists from 0.8.0 */
	graph_relids[3] = get_relname_relid("lifecycle_gates", get_rel_namespace(relid_tr));
	/* an invalidation arriving while we read must force another load */
	graph_valid = true;
	graph_loads++;

	newcxt = AllocSetContextCreate(CacheMemoryContext, "orders lifecycle graph",
								   ALLOCSET_SMALL_SIZES);
	if (graph_cxt != NULL)
		MemoryContextSetParent(graph_cxt, TopTransactionContext);
	graph_cxt = newcxt;
	graph = NULL;
	graph_count = 0;

	orders_spi_connect_as_owner(relid_lc, &saved);

	/* lifecycles */
	orders_run_load(PLAN_LOAD_LIFECYCLES, relid_lc,
			 "SELECT name, initial_status FROM orders.lifecycles");
	nlcs = (int) SPI_processed;
	oldcxt = MemoryContextSwitchTo(newcxt);
	lcs = palloc0(sizeof(Lifecycle) * Max(nlcs, 1));
	for (int i = 0; i < nlcs; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;

		lcs[i].name = SPI_getvalue(t, d, 1);
		lcs[i].initial_status = SPI_getvalue(t, d, 2);
		lcs[i].states = palloc0(sizeof(LifecycleState) * 16);
	}
	MemoryContextSwitchTo(oldcxt);
	graph = lcs;
	graph_count = nlcs;

	/*
	 * states, in display order; accepts_leads exists from version 0.2.0,
	 * holds_stock from 0.6.0 (the library may run before ALTER EXTENSION
	 * UPDATE)
	 */
	if (get_attnum(relid_st, "holds_stock") != InvalidAttrNumber)
		orders_run_load(PLAN_LOAD_STATES, relid_st,
				 "SELECT lifecycle, status, category, accepts_leads, holds_stock"
				 "  FROM orders.lifecycle_states ORDER BY lifecycle, position, status");
	else if (get_attnum(relid_st, "accepts_leads") != InvalidAttrNumber)
		orders_run_load(PLAN_LOAD_STATES_V2, relid_st,
				 "SELECT lifecycle, status, category, accepts_leads, false"
				 "  FROM orders.lifecycle_states ORDER BY lifecycle, position, status");
	else
		orders_run_load(PLAN_LOAD_STATES_V1, relid_st,
				 "SELECT lifecycle, status, category, false, false"
				 "  FROM orders.lifecycle_states ORDER BY lifecycle, position, status");
	oldcxt = MemoryContextSwitchTo(newcxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		char	   *lname = SPI_getvalue(t, d, 1);
		Lifecycle  *lc = find_loaded(lname);
		LifecycleState *st;
		bool		isnull;

		if (lc == NULL)
			continue;
		if (lc->nstates > 0 && lc->nstates % 16 == 0)
			lc->states = repalloc(lc->states, sizeof(LifecycleState) * (lc->nstates + 16));
		st = &lc->states[lc->nstates++];
		st->status = SPI_getvalue(t, d, 2);
		st->category = parse_category(SPI_getvalue(t, d, 3));
		st->accepts_leads = DatumGetBool(SPI_getbinval(t, d, 4, &isnull));
		st->holds_stock = DatumGetBool(SPI_getbinval(t, d, 5, &isnull));
		st->nedges = 0;
		st->edges = NULL;
	}
	MemoryContextSwitchTo(oldcxt);

	/*
	 * transitions, ordered like their target states; allowed_staff exists
	 * from 0.8.0
	 */
	if (get_attnum(relid_tr, "allowed_staff") != InvalidAttrNumber)
		orders_run_load(PLAN_LOAD_TRANSITIONS, relid_tr,
						"SELECT t.lifecycle, t.from_status, t.to_status, t.stamp_column,"
						"       t.allowed_roles::pg_catalog.text[], s.category, t.allowed_staff,"
						"       t.gate, g.check_function::pg_catalog.oid, g.stamp_column, g.actor_column"
						"  FROM orders.lifecycle_transitions t"
						"  JOIN orders.lifecycle_states s"
						"    ON s.lifecycle OPERATOR(pg_catalog.=) t.lifecycle"
						"   AND s.status OPERATOR(pg_catalog.=) t.to_status"
						"  LEFT JOIN orders.lifecycle_gates g ON g.name OPERATOR(pg_catalog.=) t.gate"
						" ORDER BY t.lifecycle, t.from_status, s.position, t.to_status");
	else
		orders_run_load(PLAN_LOAD_TRANSITIONS_V1, relid_tr,
						"SELECT t.lifecycle, t.from_status, t.to_status, t.stamp_column,"
						"       t.allowed_roles::pg_catalog.text[], s.category,"
						"       NULL::pg_catalog.text[] AS allowed_staff, NULL::pg_catalog.text AS gate,"
						"       NULL::pg_catalog.oid, NULL::pg_catalog.text, NULL::pg_catalog.text"
						"  FROM orders.lifecycle_transitions t"
						"  JOIN orders.lifecycle_states s"
						"    ON s.lifecycle OPERATOR(pg_catalog.=) t.lifecycle"
						"   AND s.status OPERATOR(pg_catalog.=) t.to_status"
						" ORDER BY t.lifecycle, t.from_status, s.position, t.to_status");
	oldcxt = MemoryContextSwitchTo(newcxt);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		Lifecycle  *lc = find_loaded(SPI_getvalue(t, d, 1));
		LifecycleState *from;
		LifecycleEdge *e;
		bool		isnull;
		Datum		roles;

		if (lc == NULL || (from = (LifecycleState *) lifecycle_state(lc, SPI_getvalue(t, d, 2))) == NULL)
			continue;
		if (from->nedges % 8 == 0)
			from->edges = from->edges == NULL
				? palloc(sizeof(LifecycleEdge) * 8)
				: repalloc(from->edges, sizeof(LifecycleEdge) * (from->nedges + 8));
		e = &from->edges[from->nedges++];
		e->to_status = SPI_getvalue(t, d, 3);
		e->to_category = parse_category(SPI_getvalue(t, d, 6));
		e->stamp_column = SPI_getvalue(t, d, 4);
		e->nroles = 0;
		e->roles = NULL;
		roles = SPI_getbinval(t, d, 5, &isnull);
		if (!isnull)
			e->roles = text_list(roles, &e->nroles);
		e->nstaff = 0;
		e->staff = NULL;
		roles = SPI_getbinval(t, d, 7, &isnull);
		if (!isnull)
			e->staff = text_list(roles, &e->nstaff);
		e->gate = SPI_getvalue(t, d, 8);
		roles = SPI_getbinval(t, d, 9, &isnull);
		e->gate_fn = isnull ? InvalidOid : DatumGetObjectId(roles);
		e->gate_stamp = SPI_getvalue(t, d, 10);
		e->gate_actor = SPI_getvalue(t, d, 11);
	}
	MemoryContextSwitchTo(oldcxt);

	orders_spi_finish_as(&saved);

	graph_parallel = IsInParallelMode();
	graph_lxid = MyProc->lxid;
}

/*
 * graph_current — load the graph when it was invalidated (or read for
 * another transaction in parallel mode).
 */
static void
graph_current(void)
{
	if (!graph_valid ||
		(graph_parallel && (!IsInParallelMode() || graph_lxid != MyProc->lxid)))
	{
		PG_TRY();
		{
			orders_load_cache(load_graph, &graph_valid);
		}
		PG_CATCH();
		{
			graph_valid = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
}

/*
 * lifecycle_lookup — the cached lifecycle called "name", or NULL when there
 * is none.  Reloads the graph first when it was invalidated.  The pointer
 * stays usable until the end of the current transaction.
 */
const Lifecycle *
lifecycle_lookup(const char *name)
{
	graph_current();
	return find_loaded(name);
}

/*
 * lifecycle_graph_generation — a number that changes whenever the graph is
 * read again: what is derived from the graph is current while it is
 * unchanged.
 */
uint64
lifecycle_graph_generation(void)
{
	graph_current();
	return graph_loads;
}

/*
 * lifecycle_status_names — the names of every status of every lifecycle,
 * without repeats, as text datums in the current memory context ("*n" of
 * them); "(*open)[i]" tells whether name i is open in some lifecycle.
 */
Datum *
lifecycle_status_names(int *n, bool **open)
{
	const char **seen;
	Datum	   *names;
	int			max = 0;

	graph_current();
	for (int i = 0; i < graph_count; i++)
		max += graph[i].nstates;
	seen = palloc(sizeof(char *) * Max(max, 1));
	names = palloc(sizeof(Datum) * Max(max, 1));
	*open = palloc0(sizeof(bool) * Max(max, 1));
	*n = 0;
	for (int i = 0; i < graph_count; i++)
		for (int j = 0; j < graph[i].nstates; j++)
		{
			const LifecycleState *st = &graph[i].states[j];
			int			k = 0;

			while (k < *n && strcmp(seen[k], st->status) != 0)
				k++;
			if (k == *n)
			{
				seen[*n] = st->status;
				names[(*n)++] = CStringGetTextDatum(st->status);
			}
			if (st->category == CATEGORY_OPEN)
				(*open)[k] = true;
		}
	pfree(seen);
	return names;
}

/* lifecycle_state — state "status" of lifecycle "lc", or NULL. */
const LifecycleState *
lifecycle_state(const Lifecycle *lc, const char *status)
{
	for (int i = 0; i < lc->nstates; i++)
		if (strcmp(lc->states[i].status, status) == 0)
			return &lc->states[i];
	return NULL;
}

/*
 * lifecycle_find_state — state "status" of lifecycle "lifecycle", or NULL
 * when either is NULL or unknown to the graph.  The one lookup of an order's
 * state from its two columns.
 */
const LifecycleState *
lifecycle_find_state(const char *lifecycle, const char *status)
{
	const Lifecycle *lc;

	if (lifecycle == NULL || status == NULL || (lc = lifecycle_lookup(lifecycle)) == NULL)
		return NULL;
	return lifecycle_state(lc, status);
}

/*
 * lifecycle_row_state — the state of an order row held in "slot", given the
 * column numbers of its lifecycle and status; NULL when either is null or
 * unknown to the graph.  Allocates nothing that outlives the call (0.41.0
 * library: the two names it copied stayed until the trigger calling it for
 * every row of a statement returned — 100k orders, tens of MB).
 */
const LifecycleState *
lifecycle_row_state(TupleTableSlot *slot, int lifecycle_att, int status_att)
{
	bool		lnull;
	bool		snull;
	Datum		lname = slot_getattr(slot, lifecycle_att, &lnull);
	Datum		status = slot_getattr(slot, status_att, &snull);
	char	   *l;
	char	   *s;
	const LifecycleState *st;

	if (lnull || snull)
		return NULL;
	l = TextDatumGetCString(lname);
	s = TextDatumGetCString(status);
	st = lifecycle_find_state(l, s);
	pfree(l);
	pfree(s);
	return st;
}

/* lifecycle_edge — the edge from "from" to "to_status", or NULL. */
const LifecycleEdge *
lifecycle_edge(const LifecycleState *from, const char *to_status)
{
	for (int i = 0; i < from->nedges; i++)
		if (strcmp(from->edges[i].to_status, to_status) == 0)
			return &from->edges[i];
	return NULL;
}

/*
 * lifecycle_edge_permitted — may the caller take "edge" on an order assigned
 * to "assigned" (NULL: a new order)?  The edge's database roles
 * (allowed_roles: the current user has the privileges of one) and, for an
 * API request, its staff rules (allowed_staff, orders_staff_may_take) must
 * both admit the caller; an edge naming neither admits everybody.
 */
bool
lifecycle_edge_permitted(const LifecycleEdge *edge, const OrdersAssignment *assigned)
{
	Oid			user = GetUserId();
	bool		role_ok = (edge->nroles == 0);

	for (int i = 0; i < edge->nroles && !role_ok; i++)
	{
		Oid			role = get_role_oid(edge->roles[i], true);

		role_ok = OidIsValid(role) && has_privs_of_role(user, role);
	}
	return role_ok && orders_staff_may_take(edge, assigned);
}

/*
 * lifecycle_next_list — "a, b, c": the statuses reachable from "from" that
 * the caller may take on an order assigned to "assigned", for error
 * details; "none" when there is none.
 */
char *
lifecycle_next_list(const LifecycleState *from, const OrdersAssignment *assigned)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < from->nedges; i++)
	{
		if (!lifecycle_edge_permitted(&from->edges[i], assigned))
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, from->edges[i].to_status);
	}
	if (buf.len == 0)
		appendStringInfoString(&buf, "none");
	return buf.data;
}

/*
 * orders.lifecycle_changed() — AFTER ... FOR EACH STATEMENT trigger on the
 * lifecycle tables: sends a relcache invalidation for the table, so every
 * backend drops its cached graph once the change commits.
 */
Datum
orders_lifecycle_changed(PG_FUNCTION_ARGS)
{
	return orders_cache_changed(fcinfo, "lifecycle_changed");
}

/*
 * orders.status_category(lifecycle, status) — the category of a status
 * ('open', 'fulfilled', 'cancelled', 'returned') from the cached graph, or
 * NULL for an unknown lifecycle or status.  Cheap enough for the WHEN
 * clauses of triggers, which then queue no event for changes that do not
 * matter to them.
 */
Datum
orders_status_category(PG_FUNCTION_ARGS)
{
	static const char *const names[] = {"open", "fulfilled", "cancelled", "returned"};
	const LifecycleState *st;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	st = lifecycle_find_state(text_to_cstring(PG_GETARG_TEXT_PP(0)),
							  text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (st == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(names[st->category]));
}
