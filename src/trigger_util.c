/*
 * trigger_util.c — the boilerplate every trigger function of the extension
 * shares: checking how it was fired, handing back the right tuple, and, for
 * the statement triggers that keep counters, reading transition tables into
 * per-key sums applied in key order.
 */
#include "orders.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
#include "utils/builtins.h"

/* One kept column number: orders_fnumber. */
typedef struct KeptColumn
{
	Oid			rowtype;		/* the descriptor's tdtypeid; InvalidOid: empty */
	int			natts;
	uint64		generation;		/* orders_direct_generation when found */
	int			attnum;
	char		name[NAMEDATALEN];
} KeptColumn;

#define KEPT_COLUMNS 128
static KeptColumn kept_columns[KEPT_COLUMNS];

/*
 * orders_fnumber — SPI_fnumber(desc, name), the number found kept per
 * table row type and name until the next invalidation of any relation,
 * function or type (orders_direct_generation): the row triggers read a
 * dozen columns of every row by name, each a comparison with every column
 * name before.  A descriptor of no table's row type (a query's result) is
 * looked up every time.
 */
int
orders_fnumber(TupleDesc desc, const char *name)
{
	size_t		len = strlen(name);
	uint64		generation;
	KeptColumn *k;
	int			attnum;

	if (desc->tdtypeid == RECORDOID || desc->tdtypeid == InvalidOid || len >= NAMEDATALEN)
		return SPI_fnumber(desc, name);
	generation = orders_direct_generation();
	k = &kept_columns[(hash_bytes((const unsigned char *) name, len) ^ desc->tdtypeid) % KEPT_COLUMNS];
	if (k->rowtype == desc->tdtypeid && k->natts == desc->natts && k->generation == generation &&
		strcmp(k->name, name) == 0)
		return k->attnum;
	attnum = SPI_fnumber(desc, name);
	k->rowtype = desc->tdtypeid;
	k->natts = desc->natts;
	k->generation = generation;
	k->attnum = attnum;
	strlcpy(k->name, name, NAMEDATALEN);
	return attnum;
}

/*
 * orders_trigger_data — return the TriggerData of a call, after checking that
 * the function was called by the trigger manager at a timing and for an
 * event listed in "accepted" (and for each row when ORDERS_TRIG_ROW is set).  Any other use is refused with
 * ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED naming the function.
 */
TriggerData *
orders_trigger_data(FunctionCallInfo fcinfo, const char *funcname, int accepted)
{
	TriggerData *trigdata;
	TriggerEvent ev;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by the trigger manager",
						funcname)));

	trigdata = (TriggerData *) fcinfo->context;
	ev = trigdata->tg_event;

	if (((accepted & ORDERS_TRIG_ROW) && !TRIGGER_FIRED_FOR_ROW(ev)) ||
		(!(accepted & ORDERS_TRIG_BEFORE) && TRIGGER_FIRED_BEFORE(ev)) ||
		(!(accepted & ORDERS_TRIG_AFTER) && TRIGGER_FIRED_AFTER(ev)) ||
		(!(accepted & ORDERS_TRIG_INSERT) && TRIGGER_FIRED_BY_INSERT(ev)) ||
		(!(accepted & ORDERS_TRIG_UPDATE) && TRIGGER_FIRED_BY_UPDATE(ev)) ||
		(!(accepted & ORDERS_TRIG_DELETE) && TRIGGER_FIRED_BY_DELETE(ev)) ||
		(!(accepted & ORDERS_TRIG_TRUNCATE) && TRIGGER_FIRED_BY_TRUNCATE(ev)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was fired in an unsupported way on table \"%s\"",
						funcname, RelationGetRelationName(trigdata->tg_relation)),
				 errhint("See doc/reference.md for the CREATE TRIGGER form it expects.")));

	return trigdata;
}

/*
 * orders_trigger_result — the Datum a row trigger returns: "tuple" when the
 * caller built a replacement, else the row the event carries (NEW for
 * UPDATE, the inserted or deleted row otherwise).
 */
Datum
orders_trigger_result(TriggerData *trigdata, HeapTuple tuple)
{
	if (tuple != NULL)
		return PointerGetDatum(tuple);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}

/*
 * orders_require_transition_tables — refuse a statement trigger function
 * that was not fired for each statement with at least one transition table
 * (for an UPDATE: both, since its rows are folded out of the old table and
 * into the new one).
 */
void
orders_require_transition_tables(TriggerData *trigdata, const char *funcname)
{
	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		(trigdata->tg_newtable == NULL && trigdata->tg_oldtable == NULL) ||
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) &&
		 (trigdata->tg_newtable == NULL || trigdata->tg_oldtable == NULL)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired for each statement with transition tables",
						funcname),
				 errhint("An UPDATE trigger needs both REFERENCING OLD TABLE and NEW TABLE; see doc/reference.md.")));
}

/*
 * orders_delta_hash — a hash of per-key sums for one statement, keyed by
 * the pg_uuid_t each entry starts with, living in the current memory context.
 */
HTAB *
orders_delta_hash(const char *name, Size entrysize)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(pg_uuid_t);
	ctl.entrysize = entrysize;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * orders_delta_entry — the entry for "key" in a delta hash that is created
 * on first use (most statements add nothing: they then allocate nothing).
 * With "enter" the entry is created when missing (*found tells), else NULL
 * is returned for a missing entry.
 */
void *
orders_delta_entry(HTAB **hash, const char *name, Size entrysize,
				   const pg_uuid_t *key, bool enter, bool *found)
{
	if (*hash == NULL)
	{
		if (!enter)
			return NULL;
		*hash = orders_delta_hash(name, entrysize);
	}
	return hash_search(*hash, key, enter ? HASH_ENTER : HASH_FIND, found);
}

/*
 * orders_for_each_row — call fn(slot, sign, arg) for every row of a
 * transition table, through a read pointer of our own (other triggers may
 * read the same table).
 */
void
orders_for_each_row(Tuplestorestate *rows, TupleDesc desc, int sign,
					OrdersRowFn fn, void *arg)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			ptr = tuplestore_alloc_read_pointer(rows, 0);

	tuplestore_select_read_pointer(rows, ptr);
	tuplestore_rescan(rows);
	while (tuplestore_gettupleslot(rows, true, false, slot))
		fn(slot, sign, arg);
	ExecDropSingleTupleTableSlot(slot);
}

static int
uuid_entry_cmp(const void *a, const void *b)
{
	return memcmp(*(void *const *) a, *(void *const *) b, sizeof(pg_uuid_t));
}

/*
 * orders_sorted_deltas — the entries of a delta hash (NULL: none) that keep() accepts (every
 * entry when keep is NULL), in
 * key order (the order in which their rows are then locked, so that
 * concurrent statements cannot deadlock); their number in *n.
 */
void **
orders_sorted_deltas(HTAB *hash, bool (*keep) (const void *entry), long *n)
{
	void	  **out;
	HASH_SEQ_STATUS seq;
	void	   *e;

	*n = 0;
	if (hash == NULL)
		return NULL;
	out = palloc(sizeof(void *) * Max(hash_get_num_entries(hash), 1));
	hash_seq_init(&seq, hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (keep == NULL || keep(e))
			out[(*n)++] = e;
	qsort(out, *n, sizeof(void *), uuid_entry_cmp);
	return out;
}

/*
 * owner_copy_from — the COPY ... FROM that is the top-level command, when a
 * role with the privileges of "rel"'s owner runs it; else NULL.  (0.40.0)
 * The role is the session's (SET ROLE's), not a SECURITY DEFINER
 * function's: the owner's PL/pgSQL checks (check_assignment,
 * check_workflow) ask from inside one, where any loader would be the owner.
 */
static CopyStmt *
owner_copy_from(Relation rel)
{
	PlannedStmt *stmt;
	CopyStmt   *copy;

	if (ActivePortal == NULL || ActivePortal->commandTag != CMDTAG_COPY ||
		list_length(ActivePortal->stmts) != 1)
		return NULL;
	stmt = linitial_node(PlannedStmt, ActivePortal->stmts);
	if (stmt->utilityStmt == NULL || !IsA(stmt->utilityStmt, CopyStmt))
		return NULL;
	copy = (CopyStmt *) stmt->utilityStmt;
	if (!copy->is_from || row_security || !has_privs_of_role(GetOuterUserId(), rel->rd_rel->relowner))
		return NULL;
	return copy;
}

/*
 * orders_owner_restoring — is "rel" being loaded by COPY ... FROM into
 * exactly this table, run as the top-level command by its owner, in a
 * session with row_security off?  That is how a restore loads data (every
 * dump, plain or archive, sets row_security off first; pg_restore's
 * parallel workers too): triggers then take rows as they were dumped
 * (counting them, but applying no rule meant for live changes, taking no
 * stock and posting nothing).  (0.39.0 library) row_security: a DBA's
 * \copy into the live tables is an ordinary writer — it held stock it
 * never took, left subtotals unmoved and posted no revenue.  A COPY of a
 * query (COPY (SELECT orders.transition(...)) TO ...), or a COPY into
 * another table whose triggers write this one, is live and gets every rule.
 */
bool
orders_owner_restoring(Relation rel)
{
	CopyStmt   *copy = owner_copy_from(rel);

	return copy != NULL && copy->relation != NULL &&
		RangeVarGetRelid(copy->relation, NoLock, true) == RelationGetRelid(rel);
}

/*
 * orders_owner_loading — is a COPY ... FROM (into any table) the top-level
 * command, run by a role with the privileges of "rel"'s owner, with
 * row_security off (orders_owner_restoring)?  pg_restore
 * loads every table that way; a trigger that logs rather than counts (the
 * activity log) skips the whole load, also the rows other triggers write
 * meanwhile, because the dump holds their log rows already.
 */
bool
orders_owner_loading(Relation rel)
{
	return owner_copy_from(rel) != NULL;
}

/*
 * orders_cache_changed — body of the AFTER ... FOR EACH STATEMENT triggers
 * on tables a backend caches (the lifecycle graph, the API roles): a
 * relcache invalidation for the table, so every backend drops its copy
 * once the change commits.
 */
Datum
orders_cache_changed(FunctionCallInfo fcinfo, const char *funcname)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, funcname,
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE |
												ORDERS_TRIG_TRUNCATE);

	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}

/*
 * Caches loaded in parallel mode, where orders_run_load reads with the
 * transaction's snapshot (at REPEATABLE READ possibly older than the change
 * that made them load): valid for that transaction only (0.37.0 library: a
 * role taken out of orders.api_roles stayed trusted for the rest of the
 * session of a REPEATABLE READ transaction that read the roles in a
 * parallel query).  Their flags go false when it ends.
 */
#define PARALLEL_CACHES_MAX 8
static bool *parallel_caches[PARALLEL_CACHES_MAX];
static int	parallel_cache_count = 0;
static bool parallel_callback_registered = false;

/* parallel_caches_end — transaction callback: the parallel-mode loads go. */
static void
parallel_caches_end(XactEvent event, void *arg)
{
	(void) arg;
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PREPARE &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	for (int i = 0; i < parallel_cache_count; i++)
		*parallel_caches[i] = false;
	parallel_cache_count = 0;
}

/* loaded_for_this_transaction — "valid" is to go false when the transaction ends. */
static void
loaded_for_this_transaction(bool *valid)
{
	if (!parallel_callback_registered)
	{
		RegisterXactCallback(parallel_caches_end, NULL);
		parallel_callback_registered = true;
	}
	for (int i = 0; i < parallel_cache_count; i++)
		if (parallel_caches[i] == valid)
			return;
	if (parallel_cache_count < PARALLEL_CACHES_MAX)
		parallel_caches[parallel_cache_count++] = valid;
	else
		*valid = false;			/* no room to remember it: used once, then read again */
}

/*
 * orders_load_cache — run a per-backend cache's "load", which sets *valid
 * before it reads (an invalidation arriving meanwhile must force another
 * load); when the load fails (a statement timeout, a cancel, a lock
 * timeout), *valid is false again, so the next use loads afresh instead of
 * trusting a cache left empty or half built.  A load in parallel mode
 * counts for its transaction only (above).
 */
void
orders_load_cache(void (*load) (void), bool *valid)
{
	PG_TRY();
	{
		load();
	}
	PG_CATCH();
	{
		*valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (IsInParallelMode() && *valid)
		loaded_for_this_transaction(valid);
}

/*
 * orders_follow_subxact — keep "owner", the subtransaction some state
 * belongs to, in step with the end of subtransaction "mySubid" (for a
 * SubXactCallback): on its commit the state is its parent's, on its abort
 * it is gone (InvalidSubTransactionId).
 */
void
orders_follow_subxact(SubTransactionId *owner, SubXactEvent event,
					  SubTransactionId mySubid, SubTransactionId parentSubid)
{
	if (*owner == InvalidSubTransactionId || *owner != mySubid)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
		*owner = InvalidSubTransactionId;
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		*owner = parentSubid;
}

/*
 * orders_snapshot_key — what "snapshot" lets one read.  Two snapshots with
 * the same command id and bounds see the same rows when they list as many
 * transactions in progress: every transaction below xmax had begun when
 * either was taken, and one only leaves the list (by ending), so of two
 * such lists one holds the other, and equal counts mean equal lists.  (A
 * snapshot's snapXactCompletionCount is no help: a copy — every active
 * snapshot is one — has it zeroed.)  On a standby the transactions in
 * progress are all in the subtransaction list.
 */
OrdersSnapshotKey
orders_snapshot_key(Snapshot snapshot)
{
	OrdersSnapshotKey key;

	memset(&key, 0, sizeof(key));
	key.curcid = snapshot->curcid;
	key.xmin = snapshot->xmin;
	key.xmax = snapshot->xmax;
	key.xcnt = snapshot->xcnt;
	key.subxcnt = snapshot->subxcnt;
	key.suboverflowed = snapshot->suboverflowed;
	key.in_recovery = snapshot->takenDuringRecovery;
	return key;
}

/* orders_same_snapshot — do two snapshot keys let one read the same rows? */
bool
orders_same_snapshot(const OrdersSnapshotKey *a, const OrdersSnapshotKey *b)
{
	return a->curcid == b->curcid && a->xmin == b->xmin && a->xmax == b->xmax && a->xcnt == b->xcnt &&
		a->subxcnt == b->subxcnt && a->suboverflowed == b->suboverflowed && a->in_recovery == b->in_recovery;
}

/*
 * orders_column_changed — is column "att" of "newrow" distinct from "oldrow"'s?
 * IS DISTINCT FROM: NULLs alike, values by their type's equality (with the
 * column's collation) — never by their bytes, which differ for the same
 * value stored compressed or out of line.
 */
bool
orders_column_changed(HeapTuple oldrow, HeapTuple newrow, TupleDesc desc, int att)
{
	Form_pg_attribute a = TupleDescAttr(desc, att - 1);
	TypeCacheEntry *tc = lookup_type_cache(a->atttypid, TYPECACHE_EQ_OPR_FINFO);
	bool		old_null;
	bool		new_null;
	Datum		o = heap_getattr(oldrow, att, desc, &old_null);
	Datum		n = heap_getattr(newrow, att, desc, &new_null);

	if (old_null || new_null)
		return old_null != new_null;
	if (!OidIsValid(tc->eq_opr_finfo.fn_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify an equality operator for type %s", format_type_be(a->atttypid))));
	return !DatumGetBool(FunctionCall2Coll(&tc->eq_opr_finfo, a->attcollation, o, n));
}

/*
 * orders_trigger_enabled_now — would trigger "t" fire in this session
 * (TriggerEnabled's test of tgenabled under session_replication_role)?
 */
bool
orders_trigger_enabled_now(const Trigger *t)
{
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return t->tgenabled == TRIGGER_FIRES_ON_REPLICA || t->tgenabled == TRIGGER_FIRES_ALWAYS;
	return t->tgenabled == TRIGGER_FIRES_ON_ORIGIN || t->tgenabled == TRIGGER_FIRES_ALWAYS;
}
