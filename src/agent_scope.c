/*
 * agent_scope.c — the customers a delivery agent reaches: those of the
 * orders assigned to it (the agent's branch of the customers policy).
 *
 *   orders.agent_serves_customer(customer_id uuid) boolean
 *
 * Asked per customer row a query reaches.  The first call of a query reads
 * the customers of the caller's assigned orders whose status is open — an
 * index-only scan of orders_assigned_agent_idx (assigned_agent_id, status),
 * one range per run of open status names, which carries customer_id as an
 * INCLUDE column — into a hash set that
 * answers the query's other rows (fn_extra: the lifetime of the hashed
 * subplan this replaces, which read every assigned order's heap page under
 * the orders policy).  A customer not in it (one of a delivered order, say)
 * makes the query read the customers of all the agent's orders, once: the
 * agent's dashboard, whose customers are those of its open orders, never
 * reads its history.  No SQL and no row level
 * security on orders: it answers only about the caller, and only for an
 * active delivery agent who may view orders, whose assigned orders the
 * orders policy lets it see.  A set is reused only for the caller, snapshot,
 * command and subtransaction it was read with (a PL/pgSQL expression keeps
 * its state across statements).
 */
#include "orders.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/predicate.h"
#include "storage/proc.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

PG_FUNCTION_INFO_V1(orders_agent_serves_customer);

#define AGENT_INDEX "orders_assigned_agent_idx"

/*
 * A set of customer ids (simplehash: open addressing in one array, no
 * per-entry allocation), hashed on all 16 bytes: ids may be chosen by
 * clients, so no part of them is trusted to be random.
 */
typedef struct CustomerEntry
{
	pg_uuid_t	id;
	char		status;			/* simplehash's slot state */
} CustomerEntry;

#define customer_hash(id) hash_bytes((id)->data, UUID_LEN)

#define SH_PREFIX customer_set
#define SH_ELEMENT_TYPE CustomerEntry
#define SH_KEY_TYPE pg_uuid_t
#define SH_KEY id
#define SH_HASH_KEY(tb, key) customer_hash(&(key))
#define SH_EQUAL(tb, a, b) (memcmp((a).data, (b).data, UUID_LEN) == 0)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* The caller's customers, read once under one snapshot and command. */
typedef struct AgentCustomers
{
	LocalTransactionId lxid;
	uint64		identity;		/* orders_identity_generation(): caller, command, subtransaction */
	OrdersSnapshotKey snapshot;
	bool		agent;			/* the caller is an active agent who views orders */
	pg_uuid_t	staff;			/* its staff id */
	customer_set_hash *open;	/* customers of its open orders */
	customer_set_hash *all;		/* customers of all its orders (NULL: not read yet) */
} AgentCustomers;

/*
 * still_current — was "ac" read for this caller, under this snapshot and
 * command, in this subtransaction?
 */
static bool
still_current(const AgentCustomers *ac, Snapshot snap, uint64 identity)
{
	OrdersSnapshotKey key = orders_snapshot_key(snap);

	return ac->lxid == MyProc->lxid && orders_same_snapshot(&ac->snapshot, &key) &&
		ac->identity == identity;
}

/*
 * customer_column — the position of customer_id among the columns of the
 * index, after checking that the index is what the extension made: a valid,
 * complete (not partial) btree on orders.orders whose first two key
 * columns are assigned_agent_id (uuid) and status (text).
 */
static int
customer_column(Relation heap, Relation index)
{
	Oid			relid = RelationGetRelid(heap);
	AttrNumber	agent_att = get_attnum(relid, "assigned_agent_id");
	AttrNumber	heap_att = get_attnum(relid, "customer_id");
	AttrNumber	status_att = get_attnum(relid, "status");

	if (index->rd_index->indrelid == relid && index->rd_rel->relam == BTREE_AM_OID &&
		index->rd_index->indisvalid && RelationGetIndexPredicate(index) == NIL &&
		agent_att != InvalidAttrNumber &&
		index->rd_index->indkey.values[0] == agent_att &&
		get_atttype(relid, agent_att) == UUIDOID && heap_att != InvalidAttrNumber &&
		index->rd_index->indnkeyatts >= 2 && status_att != InvalidAttrNumber &&
		index->rd_index->indkey.values[1] == status_att && get_atttype(relid, status_att) == TEXTOID)
	{
		for (int i = 0; i < index->rd_index->indnatts; i++)
			if (index->rd_index->indkey.values[i] == heap_att)
				return i + 1;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("index \"%s.%s\" is not the extension's: a valid btree on orders (assigned_agent_id, status, …) carrying customer_id",
					ORDERS_SCHEMA, AGENT_INDEX),
			 errhint("Is the extension \"orders\" installed in this database at its current version?")));
	return 0;					/* keep compiler quiet */
}

/*
 * The lifecycles' status names in the order of the index's status column,
 * and the runs of open names among them (built-in lifecycles: five), kept
 * per backend: made again when the lifecycle graph was read again or the
 * index is another (its collation decides the order).
 */
typedef struct StatusName
{
	Datum		name;			/* text */
	bool		open;
} StatusName;

typedef struct OpenRuns
{
	uint64		graph;			/* lifecycle_graph_generation() they were made from */
	Oid			indexid;
	Oid			collation;
	int			n;
	StatusName *names;			/* sorted */
	int			nruns;
	int		   *first;			/* run i: names[first[i] .. last[i]], all open */
	int		   *last;
} OpenRuns;

static MemoryContext runs_cxt = NULL;
static OpenRuns runs = {0};

/* compare_status — qsort_arg comparator of two StatusNames in the index's order. */
static int
compare_status(const void *a, const void *b, void *arg)
{
	Relation	index = (Relation) arg;

	return DatumGetInt32(FunctionCall2Coll(index_getprocinfo(index, 2, BTORDER_PROC),
										   index->rd_indcollation[1],
										   ((const StatusName *) a)->name,
										   ((const StatusName *) b)->name));
}

/* open_runs — the runs of open status names for "index" (see OpenRuns). */
static const OpenRuns *
open_runs(Relation index)
{
	uint64		graph = lifecycle_graph_generation();
	MemoryContext old;
	bool	   *open;
	Datum	   *names;

	if (runs_cxt != NULL && runs.graph == graph && runs.indexid == RelationGetRelid(index) &&
		runs.collation == index->rd_indcollation[1])
		return &runs;
	if (runs_cxt == NULL)
		runs_cxt = AllocSetContextCreate(TopMemoryContext, "orders agent status runs",
										 ALLOCSET_SMALL_SIZES);
	MemoryContextReset(runs_cxt);
	memset(&runs, 0, sizeof(runs));
	old = MemoryContextSwitchTo(runs_cxt);
	names = lifecycle_status_names(&runs.n, &open);
	runs.names = palloc(sizeof(StatusName) * Max(runs.n, 1));
	for (int i = 0; i < runs.n; i++)
	{
		runs.names[i].name = names[i];
		runs.names[i].open = open[i];
	}
	qsort_arg(runs.names, runs.n, sizeof(StatusName), compare_status, index);
	runs.first = palloc(sizeof(int) * Max(runs.n, 1));
	runs.last = palloc(sizeof(int) * Max(runs.n, 1));
	for (int i = 0; i < runs.n; i++)
	{
		if (!runs.names[i].open)
			continue;
		runs.first[runs.nruns] = i;
		while (i + 1 < runs.n && runs.names[i + 1].open)
			i++;
		runs.last[runs.nruns++] = i;
	}
	MemoryContextSwitchTo(old);
	/* only a complete entry is kept (an error above leaves the context reset next time) */
	runs.graph = graph;
	runs.indexid = RelationGetRelid(index);
	runs.collation = index->rd_indcollation[1];
	return &runs;
}

/*
 * in_run — is text datum "status" one of the names of run "r" (byte
 * equality: the names of a run are distinct lifecycle status names; a
 * status no lifecycle has, which the range may hold, is none of them).
 */
static bool
in_run(const OpenRuns *r, int run, Datum status)
{
	text	   *t = DatumGetTextPP(status);
	size_t		len = VARSIZE_ANY_EXHDR(t);

	for (int i = r->first[run]; i <= r->last[run]; i++)
	{
		text	   *name = DatumGetTextPP(r->names[i].name);

		if (VARSIZE_ANY_EXHDR(name) == len && memcmp(VARDATA_ANY(name), VARDATA_ANY(t), len) == 0)
			return true;
	}
	return false;
}

/*
 * read_customers — the customers of the orders assigned to staff "agent",
 * visible to "snap" — with "open_only", only those of orders whose status
 * is open in some lifecycle — into "set": an index-only scan (the heap is
 * read only for pages not all-visible), as nodeIndexonlyscan.c does it.
 * The open orders are read run by run: the lifecycles' status names in the
 * index's order make runs of open names between closed ones, and each run
 * is one range of the index (status between its first and last name) —
 * one descent per run, reading no closed order, where btree's array keys
 * would descend once per open name.
 */
static void
read_customers(customer_set_hash *set, pg_uuid_t *agent, bool open_only, Snapshot snap)
{
	Oid			indexid = orders_index_relid(AGENT_INDEX);
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	Buffer		vmbuffer = InvalidBuffer;
	ScanKeyData keys[3];
	int			nkeys = open_only ? 3 : 1;
	const OpenRuns *r = NULL;
	int			run = 0;
	ItemPointer tid;
	int			column;

	heap = table_open(orders_relid("orders"), AccessShareLock);
	index = index_open(indexid, AccessShareLock);
	column = customer_column(heap, index);
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_UUID_EQ, UUIDPGetDatum(agent));
	if (open_only)
	{
		r = open_runs(index);
		if (r->nruns == 0)
		{
			index_close(index, NoLock);
			table_close(heap, NoLock);
			return;
		}
		/* status between the run's first and last name */
		ScanKeyEntryInitialize(&keys[1], 0, 2, BTGreaterEqualStrategyNumber, InvalidOid,
							   r->collation, F_TEXT_GE, r->names[r->first[0]].name);
		ScanKeyEntryInitialize(&keys[2], 0, 2, BTLessEqualStrategyNumber, InvalidOid,
							   r->collation, F_TEXT_LE, r->names[r->last[0]].name);
	}
	slot = table_slot_create(heap, NULL);
	scan = index_beginscan(heap, index, snap, nkeys, 0);
	scan->xs_want_itup = true;
	index_rescan(scan, keys, nkeys, NULL, 0);
	for (;;)
	{
		bool		isnull;
		Datum		customer;

		CHECK_FOR_INTERRUPTS();
		tid = index_getnext_tid(scan, ForwardScanDirection);
		if (tid == NULL)
		{
			if (!open_only || ++run == r->nruns)
				break;
			keys[1].sk_argument = r->names[r->first[run]].name;
			keys[2].sk_argument = r->names[r->last[run]].name;
			index_rescan(scan, keys, nkeys, NULL, 0);
			continue;
		}
		if (open_only)
		{
			/* a name of the run (not one no lifecycle has, inside its range) */
			Datum		status = index_getattr(scan->xs_itup, 2, scan->xs_itupdesc, &isnull);

			if (isnull || !in_run(r, run, status))
				continue;
		}
		if (!VM_ALL_VISIBLE(heap, ItemPointerGetBlockNumber(tid), &vmbuffer))
		{
			if (!index_fetch_heap(scan, slot))
				continue;		/* no version of this entry is visible */
		}
		else
			PredicateLockPage(heap, ItemPointerGetBlockNumber(tid), snap);
		customer = index_getattr(scan->xs_itup, column, scan->xs_itupdesc, &isnull);
		if (!isnull)
		{
			bool		found;

			customer_set_insert(set, *DatumGetUUIDP(customer), &found);
		}
	}
	if (BufferIsValid(vmbuffer))
		ReleaseBuffer(vmbuffer);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	/* the locks stay to the end of the transaction, as a query's do */
	index_close(index, NoLock);
	table_close(heap, NoLock);
}

/* load — the caller's customers as an agent, in "cxt", under "snap". */
static AgentCustomers *
load(MemoryContext cxt, AgentCustomers *ac, Snapshot snap, uint64 identity)
{
	const char *role;

	if (ac != NULL && ac->open != NULL)
		customer_set_destroy(ac->open);
	if (ac != NULL && ac->all != NULL)
		customer_set_destroy(ac->all);
	if (ac == NULL)
		ac = MemoryContextAlloc(cxt, sizeof(AgentCustomers));
	memset(ac, 0, sizeof(AgentCustomers));	/* lxid invalid until complete */
	ac->agent = orders_caller_staff(&ac->staff, &role) && strcmp(role, "delivery_agent") == 0 &&
		orders_caller_may("orders", "view");
	ac->identity = identity;
	if (ac->agent)
	{
		ac->open = customer_set_create(cxt, 64, NULL);
		read_customers(ac->open, &ac->staff, true, snap);
	}
	ac->snapshot = orders_snapshot_key(snap);
	ac->lxid = MyProc->lxid;
	return ac;
}

/*
 * orders_agent_serves — whether an order of "customer" is assigned to the
 * caller, an active delivery agent who may view orders.  "*state" is the
 * asker's cache (NULL at first, allocated in "cxt", kept by the asker for
 * the query: fn_extra): the set is read again only for another caller,
 * snapshot, command or subtransaction — "identity" is the asker's
 * orders_identity_generation() of now.
 */
bool
orders_agent_serves(void **state, MemoryContext cxt, const pg_uuid_t *customer, uint64 identity)
{
	AgentCustomers *ac = (AgentCustomers *) *state;
	bool		pushed = false;
	bool		found;
	Snapshot	snap;

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	snap = GetActiveSnapshot();
	if (ac == NULL || !still_current(ac, snap, identity))
		*state = ac = load(cxt, ac, snap, identity);
	if (!ac->agent)
		found = false;
	else if (customer_set_lookup(ac->open, *customer) != NULL)
		found = true;
	else
	{
		if (ac->all == NULL)
		{
			customer_set_hash *all = customer_set_create(cxt, 256, NULL);

			read_customers(all, &ac->staff, false, snap);
			ac->all = all;		/* only once complete */
		}
		found = customer_set_lookup(ac->all, *customer) != NULL;
	}
	if (pushed)
		PopActiveSnapshot();
	return found;
}

/*
 * orders.agent_serves_customer(customer_id) — orders_agent_serves; false for
 * NULL.
 */
Datum
orders_agent_serves_customer(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(orders_agent_serves(&fcinfo->flinfo->fn_extra, fcinfo->flinfo->fn_mcxt,
									   PG_GETARG_UUID_P(0), orders_identity_generation()));
}
