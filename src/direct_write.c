/*
 * direct_write.c — rows written without SQL, the way logical replication's
 * apply worker writes them (execReplication.c): one executor state for a
 * relation, whose row triggers, constraints, generated columns and indexes
 * run as an UPDATE statement would run them, without the planning and the
 * executor start-up each statement pays.  For the extension's own updates of
 * a few rows that many transactions queue on (the stock of a status change's
 * products, a campaign's delivered leads): the less done between taking
 * such a row's lock and the commit, the sooner the next transaction has it.
 *
 *   OrdersDirect d;
 *   if (orders_direct_updatable(rel, NULL))
 *   {
 *       orders_direct_begin(&d, rel, columns);  -- {"stock_quantity", NULL}
 *       if (orders_direct_lock_by_id(&d, id))   -- d.row: the latest version
 *           orders_direct_update(&d, values, isnull); -- those columns set, the row written
 *       orders_direct_end(&d);                  -- AFTER row triggers fire
 *   }
 *
 * A relation a DBA turned into something an UPDATE statement would serve
 * differently (orders_direct_updatable) is left to SQL.  Rows of the
 * activity log (activity.c) and the status history (history.c) are
 * inserted the same way (orders_direct_insert), each while its table is as
 * installed.  orders_direct_lock_rows locks rows ahead of the writes that
 * will need them (a campaign's order before its leads' foreign keys).
 */
#include "orders.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_am.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/*
 * What own_triggers_only found, per (relation, list of statement
 * triggers): a few entries, forgotten when the relation's relcache entry is
 * invalidated (a trigger added, dropped, enabled or disabled) or any
 * function or type changes.
 */
typedef struct OwnTriggers
{
	Oid			relid;			/* InvalidOid: a free entry */
	const char *const *unaffected;
	bool		own;
} OwnTriggers;

#define OWN_TRIGGERS_ENTRIES 4
static OwnTriggers own_triggers_cache[OWN_TRIGGERS_ENTRIES];

/*
 * What orders_direct_fk_only found, per (relation, column, referenced
 * table): a few entries, forgotten when the relation's relcache entry is
 * invalidated (a trigger or constraint added, dropped or changed).
 */
typedef struct FkOnly
{
	Oid			relid;			/* InvalidOid: a free entry */
	int			attnum;
	Oid			confrelid;
	bool		fk_only;
} FkOnly;

#define FK_ONLY_ENTRIES 4
static FkOnly fk_only_cache[FK_ONLY_ENTRIES];

/*
 * What orders_direct_idle_before found, per (relation, list of idle
 * guards, columns updated): may the BEFORE UPDATE row triggers be left
 * out, and which column set_updated_at would stamp (0: none).  Forgotten
 * as the entries above are.
 */
typedef struct IdleBefore
{
	Oid			relid;			/* InvalidOid: a free entry */
	const char *const *idle;
	int			ncolumns;
	AttrNumber	attnums[ORDERS_DIRECT_COLUMNS];
	bool		skip;
	AttrNumber	stamp;
} IdleBefore;

#define IDLE_BEFORE_ENTRIES 4
static IdleBefore idle_before_cache[IDLE_BEFORE_ENTRIES];

/*
 * The CHECK constraints and stored generated columns of a relation written
 * directly (or by a statement: statement_checks.c), parsed and planned
 * once per backend: the executor would do it again for every result
 * relation (ExecRelCheck, ExecInitStoredGenerated), that is for every row
 * written here.  Only the planned expressions are kept; each write
 * compiles its own ExprStates from them (cheap; an ExprState serves one
 * evaluation at a time).  Only expressions that call built-in functions
 * alone, none in SQL, are kept: planning inlines an SQL function only if
 * the current user may execute it, and reads its body with the current
 * search_path, so a plan with a DBA's function (or a built-in SQL one) in
 * it is made per statement by PostgreSQL, as before (the entry only
 * remembers that).  An entry is dropped when its relation's relcache entry
 * is invalidated (a constraint or column added, dropped, replaced), when
 * any function or type changes (a built-in function replaced; a domain
 * given its first constraint, which planning had reduced to a
 * relabelling), and when the number of checks or columns no longer
 * matches; rebuilt at the next write.
 */
typedef struct DirectExprs
{
	Oid			relid;			/* InvalidOid: a free (or forgotten) entry */
	int			ncheck;
	int			natts;
	bool		kept;			/* false: a DBA's function in them, nothing kept */
	Expr	  **checks;			/* ncheck CHECK constraints, in the relation's order */
	Expr	  **generated;		/* by column: a stored generated column's expression, else NULL */
	Bitmapset **generated_uses; /* by column: the columns its expression reads (pull_varattnos) */
	int			ngenerated;
	MemoryContext cxt;
} DirectExprs;

#define EXPRS_ENTRIES 16
static DirectExprs exprs_cache[EXPRS_ENTRIES];
static bool direct_callbacks = false;

/*
 * Bumped by every invalidation the caches above follow: an entry computed
 * while one arrived (its catalog lookups take locks, which process
 * invalidations) is not kept.
 */
static uint64 direct_generation = 0;

/* direct_rel_inval — relcache callback: forget what was kept of the relation. */
static void
direct_rel_inval(Datum arg, Oid relid)
{
	(void) arg;
	direct_generation++;
	for (int i = 0; i < OWN_TRIGGERS_ENTRIES; i++)
		if (relid == InvalidOid || own_triggers_cache[i].relid == relid)
			own_triggers_cache[i].relid = InvalidOid;
	for (int i = 0; i < EXPRS_ENTRIES; i++)
		if (relid == InvalidOid || exprs_cache[i].relid == relid)
			exprs_cache[i].relid = InvalidOid;
	for (int i = 0; i < FK_ONLY_ENTRIES; i++)
		if (relid == InvalidOid || fk_only_cache[i].relid == relid)
			fk_only_cache[i].relid = InvalidOid;
	for (int i = 0; i < IDLE_BEFORE_ENTRIES; i++)
		if (relid == InvalidOid || idle_before_cache[i].relid == relid)
			idle_before_cache[i].relid = InvalidOid;
}

/* direct_syscache_inval — syscache callback on functions and types: forget everything kept. */
static void
direct_syscache_inval(Datum arg, int cacheid, uint32 hashvalue)
{
	(void) cacheid;
	(void) hashvalue;
	direct_rel_inval(arg, InvalidOid);
}

/* register_callbacks — once per backend: the caches above follow the catalog. */
static void
register_callbacks(void)
{
	if (!direct_callbacks)
	{
		CacheRegisterRelcacheCallback(direct_rel_inval, (Datum) 0);
		CacheRegisterSyscacheCallback(PROCOID, direct_syscache_inval, (Datum) 0);
		CacheRegisterSyscacheCallback(TYPEOID, direct_syscache_inval, (Datum) 0);
		direct_callbacks = true;
	}
}

/*
 * orders_direct_generation — a number that changes with every relcache
 * invalidation and every change of a function or type: what a cache of the
 * extension computed from the catalog is kept only if it is the same after
 * the computation as before (the lookups take locks, which process
 * invalidations).
 */
uint64
orders_direct_generation(void)
{
	register_callbacks();
	return direct_generation;
}

/*
 * own_function — is "fn" a function of this extension (and, when
 * "symbols" is given, a C function of one of those symbols)?
 */
static bool
own_function(Oid fn, Oid extension, const char *const *symbols)
{
	HeapTuple	tup;
	bool		isnull;
	char	   *src;
	bool		own = false;

	if (!OidIsValid(extension) || getExtensionOfObject(ProcedureRelationId, fn) != extension)
		return false;
	if (symbols == NULL)
		return true;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		return false;
	if (((Form_pg_proc) GETSTRUCT(tup))->prolang == ClanguageId)
	{
		src = TextDatumGetCString(SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_prosrc, &isnull));
		for (int i = 0; symbols[i] != NULL && !own; i++)
			own = strcmp(src, symbols[i]) == 0;
	}
	ReleaseSysCache(tup);
	return own;
}

/*
 * The statement triggers of orders.orders (C symbols) that a write of a
 * derived column alone leaves with nothing to do — a lead count, the
 * subtotal of an order that earns nothing: no status, lifecycle, customer
 * or earned amount changes.  The "unaffected" of the lead counter's and
 * the subtotal's direct writes; a new UPDATE statement trigger of the
 * orders that such writes leave idle belongs here.  (The workflows' is
 * idle for a subtotal only while no workflow has a min_order_value: the
 * subtotal's writer asks orders_workflows_watch_totals first.)
 */
const char *const orders_derived_unaffected[] = {
	"orders_customer_stats", "orders_post_revenue", "orders_stock_on_status",
	"orders_stock_on_status_held", "orders_release_cancelled_bookings", "orders_fire_order_workflows", NULL
};

/* "unaffected" of orders_direct_own_triggers: every trigger is the extension's */
static const char *const all_own[] = {NULL};

/*
 * The extension's statement triggers that do nothing for a write as the
 * extension's owner — every direct write is one (a counter, a subtotal, a
 * stock move): a customer's re-check (locked_orders.c).  own_triggers_only
 * passes them over as if they were not there.
 */
static const char *const inert_for_owner[] = {"orders_customer_edit_recheck", NULL};

/*
 * own_triggers_only — may a row of "rel" be updated without firing its
 * statement-level UPDATE triggers?  Yes when there are none (but those
 * inert_for_owner names), or when each is the extension's own C function
 * named in "unaffected" (those the caller's write leaves with nothing to
 * do) and every BEFORE UPDATE row trigger is the extension's own too (so
 * no trigger of a DBA's changes a column those statement triggers read);
 * no INSTEAD OF UPDATE trigger, and no transition table but theirs.
 * "unaffected" all_own asks another question (orders_direct_own_triggers):
 * is every trigger the extension's or a foreign key's?  Kept per backend.
 */
static bool
own_triggers_only(Relation rel, const char *const *unaffected)
{
	TriggerDesc *live = rel->trigdesc;
	TriggerDesc *trig;
	Oid			relid = RelationGetRelid(rel);
	Oid			extension;
	uint64		generation = direct_generation;
	int			slot = -1;
	bool		own = true;
	bool		statement = false;	/* a statement trigger or transition table that counts */

	if (live == NULL ||
		(unaffected != all_own &&
		 !(live->trig_update_before_statement || live->trig_update_after_statement ||
		   live->trig_update_instead_row || live->trig_update_old_table || live->trig_update_new_table)))
		return true;
	for (int i = 0; i < OWN_TRIGGERS_ENTRIES; i++)
	{
		if (own_triggers_cache[i].relid == relid && own_triggers_cache[i].unaffected == unaffected)
			return own_triggers_cache[i].own;
		if (own_triggers_cache[i].relid == InvalidOid && slot < 0)
			slot = i;
	}
	register_callbacks();
	/* a copy: the lookups below may rebuild the relcache entry, and free its triggers */
	trig = CopyTriggerDesc(live);
	extension = get_extension_oid(ORDERS_SCHEMA, true);
	for (int i = 0; i < trig->numtriggers; i++)
	{
		const Trigger *t = &trig->triggers[i];

		if (unaffected == all_own)
		{
			own = own && (t->tgisinternal || own_function(t->tgfoid, extension, NULL));
			continue;
		}
		if (!TRIGGER_FOR_UPDATE(t->tgtype))
			continue;
		if (TRIGGER_FOR_INSTEAD(t->tgtype))
			statement = true, own = false;
		else if (!TRIGGER_FOR_ROW(t->tgtype))
		{
			if (own_function(t->tgfoid, extension, inert_for_owner))
				continue;
			statement = true;
			own = own && unaffected != NULL && own_function(t->tgfoid, extension, unaffected);
		}
		else if (t->tgoldtable != NULL || t->tgnewtable != NULL)
			statement = true, own = false;
		else if (TRIGGER_FOR_BEFORE(t->tgtype))
			own = own && own_function(t->tgfoid, extension, NULL);
	}
	FreeTriggerDesc(trig);
	if (unaffected != all_own && !statement)
		own = true;				/* only inert ones: as if there were none */
	if (slot >= 0 && generation == direct_generation)
	{
		own_triggers_cache[slot].relid = relid;
		own_triggers_cache[slot].unaffected = unaffected;
		own_triggers_cache[slot].own = own;
	}
	return own;
}

/*
 * orders_own_function — is "fn" a function of this extension (any
 * language)?  Only its owner or a superuser can replace such a function.
 */
bool
orders_own_function(Oid fn)
{
	return own_function(fn, get_extension_oid(ORDERS_SCHEMA, true), NULL);
}

/*
 * orders_direct_own_function — is "fn" the extension's C function of the
 * symbol "symbol" (not replaced by a function of another body)?
 */
bool
orders_direct_own_function(Oid fn, const char *symbol)
{
	const char *const symbols[2] = {symbol, NULL};

	return own_function(fn, get_extension_oid(ORDERS_SCHEMA, true), symbols);
}

/*
 * orders_direct_own_triggers — is every trigger of "rel" the extension's
 * own, or a foreign key's internal one?  Then no trigger of a DBA's can
 * skip or change a row the caller writes directly and counts.  Kept per
 * backend.
 */
bool
orders_direct_own_triggers(Relation rel)
{
	return own_triggers_only(rel, all_own);
}

/*
 * orders_direct_default_is — is the default of column "attnum" of "rel" a
 * call of function "funcid" without arguments (InvalidOid: has the column
 * no default)?  For the columns a direct insert fills as the table's
 * defaults would.
 */
bool
orders_direct_default_is(Relation rel, int attnum, Oid funcid)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;

	for (int i = 0; constr != NULL && i < constr->num_defval; i++)
		if (constr->defval[i].adnum == attnum)
		{
			Node	   *expr = stringToNode(constr->defval[i].adbin);

			return OidIsValid(funcid) && IsA(expr, FuncExpr) &&
				((FuncExpr *) expr)->funcid == funcid && ((FuncExpr *) expr)->args == NIL;
		}
	return !OidIsValid(funcid);
}

/*
 * orders_direct_index_on — a valid btree index of "rel" whose first "n"
 * keys are the columns "attnums" (ascending, by operator classes of
 * "types"), without a predicate, usable by every snapshot (no
 * indcheckxmin); InvalidOid when there is none.  For
 * reads of a few rows by an index scan instead of a statement
 * (orders_direct_scan_key).
 */
Oid
orders_direct_index_on(Relation rel, const AttrNumber *attnums, const Oid *types, int n)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	Oid			found = InvalidOid;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		bool		match = !OidIsValid(found) && idx->rd_rel->relkind == RELKIND_INDEX &&
			idx->rd_rel->relam == BTREE_AM_OID &&
			idx->rd_index->indisvalid && !idx->rd_index->indcheckxmin &&
			IndexRelationGetNumberOfKeyAttributes(idx) >= n &&
			RelationGetIndexPredicate(idx) == NIL;

		for (int k = 0; k < n && match; k++)
			match = idx->rd_index->indkey.values[k] == attnums[k] &&
				(idx->rd_indoption[k] & INDOPTION_DESC) == 0 && idx->rd_opcintype[k] == types[k];
		if (match)
			found = RelationGetRelid(idx);
		index_close(idx, AccessShareLock);
	}
	list_free(indexes);
	return found;
}

/*
 * orders_direct_scan_key — scan key "n" of index "idx" (on its column
 * n + 1): the column "strategy" (BTEqualStrategyNumber, ...) "value", by
 * the operator of the index's own operator family and its collation.
 */
void
orders_direct_scan_key(ScanKey key, Relation idx, int n, StrategyNumber strategy, Datum value)
{
	Oid			op = get_opfamily_member(idx->rd_opfamily[n], idx->rd_opcintype[n],
										 idx->rd_opcintype[n], strategy);

	if (!OidIsValid(op))
		elog(ERROR, "orders: no operator of strategy %d for column %d of %s", strategy, n + 1,
			 RelationGetRelationName(idx));
	ScanKeyEntryInitialize(key, 0, n + 1, strategy, InvalidOid, idx->rd_indcollation[n],
						   get_opcode(op), value);
}

/* one_column_key — has "rel" a primary key of one column (not an expression)? */
static bool
one_column_key(Relation rel)
{
	Oid			pkey = RelationGetPrimaryKeyIndex(rel);
	Relation	idx;
	bool		one_column;

	if (!OidIsValid(pkey))
		return false;
	idx = index_open(pkey, AccessShareLock);
	one_column = IndexRelationGetNumberOfKeyAttributes(idx) == 1 && idx->rd_index->indkey.values[0] > 0;
	index_close(idx, NoLock);
	return one_column;
}

/*
 * orders_direct_updatable — would an UPDATE statement on "rel", by the
 * current user, do nothing a row-by-row update skips?  A plain table (no
 * partitions, no inheritance children, no rules), no statement-level or
 * INSTEAD OF UPDATE triggers and no transition tables (but see
 * own_triggers_only: "unaffected", NULL or the C symbols of the
 * extension's statement triggers the caller's write leaves with nothing to
 * do, which a direct update then does not fire), the user allowed to update
 * it and row level security not applying to them, and a primary key of one
 * column.
 */
bool
orders_direct_updatable(Relation rel, const char *const *unaffected)
{
	return !rel->rd_rel->relispartition && orders_direct_lockable(rel) &&
		own_triggers_only(rel, unaffected);
}

/*
 * The extension's own C functions its CHECK constraints call (0.41.0:
 * orders.jsonb_within, the bound of clients' JSON): planned like a built-in
 * one — its plan depends on neither the user nor the search_path (the
 * constraint names it by OID; EXECUTE is checked when each statement
 * compiles it).  Without this, a table whose CHECK called it lost its kept
 * plans: every status change parsed and planned the orders' CHECKs again
 * (~9 % of its CPU, measured as 0.9x the 0.40.0 library).
 */
static const char *const check_functions[] = {"orders_jsonb_within", NULL};

/*
 * user_function — check_functions_in_node: is "func" not built in (and
 * none of check_functions; "context" points to the extension's OID), or an
 * SQL function (planning inlines one only for a user who may execute it)?
 */
static bool
user_function(Oid func, void *context)
{
	HeapTuple	tuple;
	bool		sql = true;		/* a function that is gone: not kept either */

	if (func >= FirstNormalObjectId)
		return !own_function(func, *(Oid *) context, check_functions);
	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(func));
	if (HeapTupleIsValid(tuple))
	{
		sql = ((Form_pg_proc) GETSTRUCT(tuple))->prolang == SQLlanguageId;
		ReleaseSysCache(tuple);
	}
	return sql;
}

/* calls_user_function — does "node" call anything but built-in functions? */
static bool
calls_user_function(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, user_function, context))
		return true;
	return expression_tree_walker(node, calls_user_function, context);
}

/*
 * planned_exprs — the kept planned expressions of "rel" (see DirectExprs),
 * planned now if they were not kept; NULL when it has neither CHECK
 * constraints nor stored generated columns, or when they call a function
 * that is not built in (PostgreSQL plans them per statement then).
 */
static DirectExprs *
planned_exprs(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	TupleConstr *constr = desc->constr;
	int			ncheck = constr ? constr->num_check : 0;
	Oid			relid = RelationGetRelid(rel);
	DirectExprs *entry;
	MemoryContext cxt;
	MemoryContext oldcxt;
	Node	  **checks;
	Node	  **generated;
	Bitmapset **uses;
	int			ngenerated = 0;
	bool		kept = true;
	uint64		generation = direct_generation;
	Oid			extension;

	if (ncheck == 0 && !(constr && constr->has_generated_stored))
		return NULL;
	for (int i = 0; i < EXPRS_ENTRIES; i++)
		if (exprs_cache[i].relid == relid && exprs_cache[i].ncheck == ncheck && exprs_cache[i].natts == desc->natts)
			return exprs_cache[i].kept ? &exprs_cache[i] : NULL;
	register_callbacks();
	extension = get_extension_oid(ORDERS_SCHEMA, true);

	/*
	 * Planned in a context of the caller's until done (an error frees it),
	 * and before an entry is taken: planning may run functions, and so
	 * writes that come here again.
	 */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "orders planned checks and generated columns",
								ALLOCSET_SMALL_SIZES);
	MemoryContextCopyAndSetIdentifier(cxt, RelationGetRelationName(rel));
	oldcxt = MemoryContextSwitchTo(cxt);
	checks = palloc(sizeof(Node *) * Max(ncheck, 1));
	for (int i = 0; i < ncheck; i++)
	{
		checks[i] = stringToNode(constr->check[i].ccbin);
		kept &= !calls_user_function(checks[i], &extension);
	}
	generated = palloc0(sizeof(Node *) * desc->natts);
	uses = palloc0(sizeof(Bitmapset *) * desc->natts);
	for (int i = 0; constr && constr->has_generated_stored && i < desc->natts; i++)
		if (TupleDescAttr(desc, i)->attgenerated == ATTRIBUTE_GENERATED_STORED)
		{
			generated[i] = build_column_default(rel, i + 1);
			if (generated[i] == NULL)
				elog(ERROR, "orders: no generation expression for column %d of %s", i + 1,
					 RelationGetRelationName(rel));
			kept &= !calls_user_function(generated[i], &extension);
			pull_varattnos(generated[i], 1, &uses[i]);
			ngenerated++;
		}
	for (int i = 0; kept && i < ncheck; i++)
		checks[i] = (Node *) expression_planner((Expr *) checks[i]);
	for (int i = 0; kept && i < desc->natts; i++)
		if (generated[i] != NULL)
			generated[i] = (Node *) expression_planner((Expr *) generated[i]);
	MemoryContextSwitchTo(oldcxt);
	if (kept)
		MemoryContextSetParent(cxt, CacheMemoryContext);
	else
	{
		MemoryContextDelete(cxt);
		cxt = NULL;
	}

	/* a free entry, else one of this relation, else the first */
	entry = &exprs_cache[0];
	for (int i = EXPRS_ENTRIES - 1; i >= 0; i--)
		if (exprs_cache[i].relid == InvalidOid || exprs_cache[i].relid == relid)
			entry = &exprs_cache[i];
	/* a write further up the stack may still run states built from them */
	if (entry->cxt != NULL)
		MemoryContextSetParent(entry->cxt, TopTransactionContext);
	entry->cxt = cxt;
	entry->kept = kept;
	entry->checks = kept ? (Expr **) checks : NULL;
	entry->generated = kept ? (Expr **) generated : NULL;
	entry->generated_uses = kept ? uses : NULL;
	entry->ngenerated = ngenerated;
	entry->ncheck = ncheck;
	entry->natts = desc->natts;
	/* used now either way; kept unless an invalidation came meanwhile */
	entry->relid = generation == direct_generation ? relid : InvalidOid;
	return kept ? entry : NULL;
}

/* compile_checks — ExprStates of "entry"'s checks, in the current memory context. */
static ExprState **
compile_checks(const DirectExprs *entry)
{
	ExprState **states;

	if (entry->ncheck == 0)
		return NULL;
	states = palloc(sizeof(ExprState *) * entry->ncheck);
	for (int i = 0; i < entry->ncheck; i++)
		states[i] = ExecInitExpr(entry->checks[i], NULL);
	return states;
}

/*
 * orders_direct_checks — ExprStates of the CHECK constraints of "rel", in
 * the current memory context, for a ResultRelInfo's ri_ConstraintExprs as
 * ExecRelCheck would build them (but planned once per backend, see
 * DirectExprs); NULL when it has none or they are not kept (PostgreSQL
 * builds them then).
 */
ExprState **
orders_direct_checks(Relation rel)
{
	DirectExprs *entry = planned_exprs(rel);

	return entry != NULL ? compile_checks(entry) : NULL;
}

/*
 * prepare_exprs — "info"'s CHECK constraints and stored generated columns,
 * compiled in "estate"'s memory from the planned ones, as ExecRelCheck and
 * ExecInitStoredGenerated would build them for the rows written ("update":
 * by an UPDATE of the columns of the target's range table entry).  Like
 * ExecInitStoredGenerated: an UPDATE of a table without BEFORE UPDATE row
 * triggers computes only the generated columns that read a column it
 * sets, and records the columns it computes as updated too (what UPDATE OF
 * triggers and the indexes' "unchanged" hint look at: PostgreSQL 15 keeps
 * them in es_resultrelinfo_extra).  Nothing is set when the expressions are
 * not kept: PostgreSQL builds them.
 */
static void
prepare_exprs(ResultRelInfo *info, EState *estate, bool update)
{
	Relation	rel = info->ri_RelationDesc;
	DirectExprs *entry = planned_exprs(rel);
	Bitmapset  *updated = NULL;
	Bitmapset  *extra = NULL;
	MemoryContext oldcxt;

	if (entry == NULL)
		return;
	oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);
	info->ri_ConstraintExprs = compile_checks(entry);
	if (entry->ngenerated > 0)
	{
		if (update && !(rel->trigdesc && rel->trigdesc->trig_update_before_row))
			updated = ExecGetUpdatedCols(info, estate);
		info->ri_GeneratedExprs = palloc0(sizeof(ExprState *) * entry->natts);
		info->ri_NumGeneratedNeeded = 0;
		for (int i = 0; i < entry->natts; i++)
		{
			if (entry->generated[i] == NULL ||
				(updated != NULL && !bms_overlap(updated, entry->generated_uses[i])))
				continue;
			info->ri_GeneratedExprs[i] = ExecInitExpr(entry->generated[i], NULL);
			info->ri_NumGeneratedNeeded++;
			if (update)
				extra = bms_add_member(extra, i + 1 - FirstLowInvalidHeapAttributeNumber);
		}
		if (update)
		{
			ResultRelInfoExtra *rextra = palloc(sizeof(ResultRelInfoExtra));

			rextra->rinfo = info;
			rextra->ri_extraUpdatedCols = extra;
			estate->es_resultrelinfo_extra = lappend(estate->es_resultrelinfo_extra, rextra);
		}
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * orders_direct_target — a new executor state ("*estate") whose one result
 * relation is "rel" (opened by the caller with RowExclusiveLock), as a
 * statement writing it has: "updated" the columns an UPDATE sets (what
 * UPDATE OF triggers and generated columns look at; NULL for an INSERT).
 */
ResultRelInfo *
orders_direct_target(Relation rel, Bitmapset *updated, EState **estate)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	ResultRelInfo *info = makeNode(ResultRelInfo);

	*estate = CreateExecutorState();
	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
	rte->updatedCols = updated;
	ExecInitRangeTable(*estate, list_make1(rte));
	InitResultRelInfo(info, rel, 1, NULL, 0);
	(*estate)->es_opened_result_relations = list_make1(info);
	(*estate)->es_output_cid = GetCurrentCommandId(true);
	return info;
}

/*
 * orders_direct_as_installed — can a row go into "rel" by
 * orders_direct_insert as an INSERT by the table's owner would write it?  A
 * plain table (no partitions, rules, INSERT statement or INSTEAD OF
 * triggers, transition tables, forced row level security) whose columns are
 * exactly the "n" "names" with their "types" and no typmod — column
 * "domain_column" (when >= 0) may be a domain over its type, which the
 * caller then checks.  "pos" gets each column's position in the row.
 */
bool
orders_direct_as_installed(Relation rel, const char *const *names, const Oid *types, int n,
						   int domain_column, int *pos)
{
	TriggerDesc *trig = rel->trigdesc;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rules != NULL || rel->rd_rel->relforcerowsecurity ||
		(trig && (trig->trig_insert_before_statement || trig->trig_insert_after_statement ||
				  trig->trig_insert_new_table || trig->trig_insert_instead_row)))
		return false;
	return orders_direct_columns(rel, names, types, n, domain_column, -1, pos);
}

/*
 * orders_direct_columns — are the columns of "rel" exactly the "n" "names"
 * with their "types" and no typmod?  Column "domain_column" (when >= 0) may
 * be a domain over its type; column "generated_column" (when >= 0) must be
 * a stored generated column (of any typmod), and no other may be.  "pos"
 * gets each column's position in the row.
 */
bool
orders_direct_columns(Relation rel, const char *const *names, const Oid *types, int n,
					  int domain_column, int generated_column, int *pos)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			found = 0;

	for (int c = 0; c < n; c++)
		pos[c] = -1;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		int			c;

		if (att->attisdropped)
			continue;
		for (c = 0; c < n; c++)
			if (strcmp(NameStr(att->attname), names[c]) == 0)
				break;
		if (c == n || (c != generated_column && att->atttypmod != -1) ||
			(c == generated_column) != (att->attgenerated == ATTRIBUTE_GENERATED_STORED) ||
			(c == domain_column ? getBaseType(att->atttypid) : att->atttypid) != types[c])
			return false;
		pos[c] = i;
		found++;
	}
	return found == n;
}

/* one_column — is "keys" (an int2[] of pg_constraint) the one column "attnum"? */
static bool
one_column(HeapTuple con, int attribute, int attnum)
{
	bool		isnull;
	Datum		d = SysCacheGetAttr(CONSTROID, con, attribute, &isnull);
	ArrayType  *keys = isnull ? NULL : DatumGetArrayTypeP(d);

	return keys != NULL && ARR_NDIM(keys) == 1 && ARR_DIMS(keys)[0] == 1 &&
		!ARR_HASNULL(keys) && ((int16 *) ARR_DATA_PTR(keys))[0] == attnum;
}

/*
 * fk_check_of — is "t" the check of a foreign key of the one column
 * "attnum" (referencing the primary key column of "confrelid", unless that
 * is InvalidOid)?
 */
static bool
fk_check_of(const Trigger *t, int attnum, Oid confrelid)
{
	HeapTuple	con;
	bool		match;

	if (!t->tgisinternal || RI_FKey_trigger_type(t->tgfoid) != RI_TRIGGER_FK)
		return false;
	con = SearchSysCache1(CONSTROID, ObjectIdGetDatum(t->tgconstraint));
	if (!HeapTupleIsValid(con))
		return false;
	match = one_column(con, Anum_pg_constraint_conkey, attnum);
	if (match && OidIsValid(confrelid))
	{
		Form_pg_constraint c = (Form_pg_constraint) GETSTRUCT(con);
		Relation	ref = relation_open(confrelid, AccessShareLock);
		Oid			pkey = RelationGetPrimaryKeyIndex(ref);

		match = c->confrelid == confrelid && c->conindid == pkey;
		relation_close(ref, AccessShareLock);
	}
	ReleaseSysCache(con);
	return match;
}

/*
 * orders_direct_insert_idle — would the row INSERT triggers of "rel" do
 * nothing for a row the extension writes whose column "attnum" is the key
 * of a row of "confrelid" (its primary key; any table when InvalidOid) the
 * caller's transaction holds locked, and whose "null_columns" (attribute
 * numbers) are NULL?  Yes when each is the check of a foreign key of one
 * of those columns alone, or (when "own" is given) a BEFORE trigger that
 * is the extension's C function of one of the symbols "own" — a guard
 * that lets the extension's own writes through.  Then the row can go in
 * without them (orders_direct_insert's "triggers" false).
 */
bool
orders_direct_insert_idle(Relation rel, int attnum, Oid confrelid, const Bitmapset *null_columns,
						  const char *const *own)
{
	/* a copy: the lookups below may rebuild the relcache entry, and free its triggers */
	TriggerDesc *trig = CopyTriggerDesc(rel->trigdesc);
	Oid			extension = own != NULL ? get_extension_oid(ORDERS_SCHEMA, true) : InvalidOid;
	bool		idle = true;

	for (int i = 0; trig != NULL && i < trig->numtriggers && idle; i++)
	{
		const Trigger *t = &trig->triggers[i];

		if (!TRIGGER_FOR_ROW(t->tgtype) || !TRIGGER_FOR_INSERT(t->tgtype) ||
			fk_check_of(t, attnum, confrelid))
			continue;
		idle = false;
		for (int c = -1; !idle && (c = bms_next_member(null_columns, c)) >= 0;)
			idle = fk_check_of(t, c, InvalidOid);
		if (!idle && own != NULL && TRIGGER_FOR_BEFORE(t->tgtype))
			idle = own_function(t->tgfoid, extension, own);
	}
	if (trig != NULL)
		FreeTriggerDesc(trig);
	return idle;
}

/*
 * orders_direct_fk_only — are the row INSERT triggers of "rel" only checks
 * of foreign keys of the one column "attnum" (to the primary key of
 * "confrelid", when given)?  Then a row whose key needs no check — NULL, or
 * a key of a row the caller's transaction holds locked — can go in without
 * them (orders_direct_insert_idle without NULL columns or guards).  Kept
 * per backend.
 */
bool
orders_direct_fk_only(Relation rel, int attnum, Oid confrelid)
{
	Oid			relid = RelationGetRelid(rel);
	uint64		generation = direct_generation;
	int			slot = -1;
	bool		only;

	for (int i = 0; i < FK_ONLY_ENTRIES; i++)
	{
		if (fk_only_cache[i].relid == relid && fk_only_cache[i].attnum == attnum &&
			fk_only_cache[i].confrelid == confrelid)
			return fk_only_cache[i].fk_only;
		if (fk_only_cache[i].relid == InvalidOid && slot < 0)
			slot = i;
	}
	register_callbacks();
	only = orders_direct_insert_idle(rel, attnum, confrelid, NULL, NULL);
	if (slot >= 0 && generation == direct_generation)
	{
		fk_only_cache[slot].relid = relid;
		fk_only_cache[slot].attnum = attnum;
		fk_only_cache[slot].confrelid = confrelid;
		fk_only_cache[slot].fk_only = only;
	}
	return only;
}

/*
 * orders_direct_update_check — the trigger (its OID) that checks, after an
 * UPDATE of "rel", the foreign key of its one column "attnum" to the
 * primary key of "confrelid" (RI_FKey_check_upd); InvalidOid when there is
 * none.  For orders_direct_check_by_lock.
 */
Oid
orders_direct_update_check(Relation rel, int attnum, Oid confrelid)
{
	/* a copy: the lookups below may rebuild the relcache entry, and free its triggers */
	TriggerDesc *trig = rel->trigdesc ? CopyTriggerDesc(rel->trigdesc) : NULL;
	Oid			check = InvalidOid;

	for (int i = 0; trig != NULL && i < trig->numtriggers && !OidIsValid(check); i++)
	{
		const Trigger *t = &trig->triggers[i];

		if (t->tgfoid == F_RI_FKEY_CHECK_UPD && fk_check_of(t, attnum, confrelid))
			check = t->tgoid;
	}
	if (trig != NULL)
		FreeTriggerDesc(trig);
	return check;
}

/*
 * close_indices — the result relation's indexes closed as ExecCloseIndices
 * closes them, but their RowExclusiveLock kept until the transaction ends
 * (the table's lock is held that long anyway, and a lock already held is
 * taken again cheaply): a statement writing many rows here opens them once
 * per row, and releasing and taking their locks each time was ~6 % of the
 * samples of a bulk status UPDATE's profile (history and activity rows).
 */
static void
close_indices(ResultRelInfo *info)
{
	for (int i = 0; i < info->ri_NumIndices; i++)
		if (info->ri_IndexRelationDescs[i] != NULL)
		{
#if PG_VERSION_NUM >= 170000
			/* as ExecCloseIndices does from PostgreSQL 17 on */
			index_insert_cleanup(info->ri_IndexRelationDescs[i], info->ri_IndexRelationInfo[i]);
#endif
			index_close(info->ri_IndexRelationDescs[i], NoLock);
		}
}

/*
 * orders_direct_insert — one row ("values"/"isnull" by column, in the
 * relation's order) into "rel" (opened by the caller with RowExclusiveLock;
 * a plain table without rules or INSERT statement triggers, which the
 * caller checked) as one INSERT statement would write it: its BEFORE row
 * triggers, generated columns, NOT NULLs and CHECK constraints (both
 * planned once per backend: prepare_exprs), indexes (unique
 * ones refuse as an INSERT does), and its AFTER row triggers — the foreign
 * keys' checks among them — fired before it returns.  "triggers" false
 * skips the row triggers (the caller knows they would do nothing).
 */
void
orders_direct_insert(Relation rel, const Datum *values, const bool *isnull, bool triggers)
{
	orders_direct_insert_getting(rel, values, isnull, triggers, 0, NULL, NULL);
}

/*
 * orders_direct_insert_getting — orders_direct_insert, and the value the
 * row was stored with in column "attnum" (a generated column's computed
 * value; 0: none) copied into "*got" (in the caller's memory) and
 * "*got_null".
 */
void
orders_direct_insert_getting(Relation rel, const Datum *values, const bool *isnull, bool triggers,
							 int attnum, Datum *got, bool *got_null)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext caller = CurrentMemoryContext;
	EState	   *estate;
	ResultRelInfo *info = orders_direct_target(rel, NULL, &estate);
	TupleTableSlot *slot;

	prepare_exprs(info, estate, false);
	if (!triggers)
		info->ri_TrigDesc = NULL;
	else
		AfterTriggerBeginQuery();
	slot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsVirtual);
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * desc->natts);
	memcpy(slot->tts_isnull, isnull, sizeof(bool) * desc->natts);
	ExecStoreVirtualTuple(slot);

	ExecOpenIndices(info, false);
	ExecSimpleRelationInsert(info, estate, slot);
	close_indices(info);
	if (attnum > 0)
	{
		Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
		Datum		value = slot_getattr(slot, attnum, got_null);
		MemoryContext was = MemoryContextSwitchTo(caller);

		*got = *got_null ? (Datum) 0 : datumCopy(value, att->attbyval, att->attlen);
		MemoryContextSwitchTo(was);
	}
	if (triggers)
		AfterTriggerEndQuery(estate);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
}

/*
 * primary_key — the one-column primary key of "rel": its index, column,
 * equality function and collation.
 */
static void
primary_key(Relation rel, Oid *index, AttrNumber *attnum, FmgrInfo *eq, Oid *collation)
{
	Relation	idx = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	Oid			op = get_opfamily_member(idx->rd_opfamily[0], idx->rd_opcintype[0],
										 idx->rd_opcintype[0], BTEqualStrategyNumber);

	*index = RelationGetRelid(idx);
	*attnum = idx->rd_index->indkey.values[0];
	*collation = idx->rd_indcollation[0];
	fmgr_info(get_opcode(op), eq);
	index_close(idx, NoLock);
}

/*
 * orders_direct_begin — an executor state for updates of "columns" (a
 * NULL-terminated list of at most ORDERS_DIRECT_COLUMNS) of "rel" (opened
 * by the caller with RowExclusiveLock; orders_direct_updatable), as the one
 * statement they stand for: its indexes open, its row triggers ready to
 * fire.  The caller ends it with orders_direct_end; on an error the
 * (sub)transaction's abort releases what it holds.
 */
void
orders_direct_begin(OrdersDirect *d, Relation rel, const char *const *columns)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Bitmapset  *updated = NULL;

	for (d->ncolumns = 0; columns[d->ncolumns] != NULL; d->ncolumns++)
	{
		int			c = d->ncolumns;
		Oid			type;

		if (c == ORDERS_DIRECT_COLUMNS)
			elog(ERROR, "orders: too many columns for a direct update of %s", RelationGetRelationName(rel));
		d->attnums[c] = orders_fnumber(desc, columns[c]);
		if (d->attnums[c] <= 0)
			elog(ERROR, "orders: %s has no column %s", RelationGetRelationName(rel), columns[c]);
		type = TupleDescAttr(desc, d->attnums[c] - 1)->atttypid;
		d->domain[c] = getBaseType(type) != type;
		d->domain_extra[c] = NULL;
		updated = bms_add_member(updated, d->attnums[c] - FirstLowInvalidHeapAttributeNumber);
	}
	primary_key(rel, &d->key_index, &d->key_attnum, &d->key_eq, &d->key_collation);
	/* as SPI before a statement: what the transaction wrote so far is seen */
	CommandCounterIncrement();
	d->info = orders_direct_target(rel, updated, &d->estate);
	/*
	 * What an UPDATE statement here would see: at READ COMMITTED a snapshot
	 * of now (rows committed since the calling statement began, e.g. a
	 * product of an item added meanwhile), else the transaction's.  Active
	 * while the row triggers run, as a statement's is.
	 */
	/* a private copy (at REPEATABLE READ the transaction's own would follow later commands) */
	PushActiveSnapshot(GetTransactionSnapshot());
	d->estate->es_snapshot = RegisterSnapshot(GetActiveSnapshot());
	EvalPlanQualInit(&d->epq, d->estate, NULL, NIL, -1);
	/* the indexes are opened by the first update that is not HOT (simple_update) */
	d->indexes_open = false;
	d->before_idle = false;		/* orders_direct_idle_before */
	d->keys_as_caller = false;	/* orders_direct_keys_as_caller */
	d->held_keys = NIL;
	d->lock_check = InvalidOid; /* orders_direct_check_by_lock */
	d->lock_attnum = 0;
	d->lock_taken = false;
	d->lock_key = (Datum) 0;
	d->updates = 0;
	d->stamp_attnum = 0;
	d->row = table_slot_create(rel, &d->estate->es_tupleTable);
	d->next = ExecInitExtraTupleSlot(d->estate, desc, &TTSOpsVirtual);
	prepare_exprs(d->info, d->estate, true);
	AfterTriggerBeginQuery();
}

/*
 * fires_for — would trigger "t" of "rel" fire for an update of d's columns
 * in this session?  Its enabled state (a DBA's ENABLE REPLICA / ALWAYS /
 * DISABLE; the session is not a replica, see orders_direct_idle_before)
 * and its UPDATE OF list, which PostgreSQL matches against the columns set
 * and the generated columns that follow them (any stored generated column
 * counts here).
 */
static bool
fires_for(const Trigger *t, Relation rel, const OrdersDirect *d)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (t->tgenabled == TRIGGER_DISABLED || t->tgenabled == TRIGGER_FIRES_ON_REPLICA)
		return false;
	if (t->tgnattr == 0)
		return true;
	for (int k = 0; k < t->tgnattr; k++)
	{
		AttrNumber	a = t->tgattr[k];

		if (a > 0 && a <= desc->natts && TupleDescAttr(desc, a - 1)->attgenerated == ATTRIBUTE_GENERATED_STORED)
			return true;
		for (int c = 0; c < d->ncolumns; c++)
			if (d->attnums[c] == a)
				return true;
	}
	return false;
}

/*
 * stamp_column — the timestamptz column trigger "t" (orders.set_updated_at,
 * no WHEN clause) stamps, if it is none of d's columns; else 0.
 */
static AttrNumber
stamp_column(const Trigger *t, Relation rel, const OrdersDirect *d)
{
	int			attnum = orders_fnumber(RelationGetDescr(rel), t->tgnargs > 0 ? t->tgargs[0] : "updated_at");

	if (t->tgqual != NULL || t->tgnargs > 1 || attnum <= 0 ||
		TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid != TIMESTAMPTZOID)
		return 0;
	for (int c = 0; c < d->ncolumns; c++)
		if (d->attnums[c] == attnum)
			return 0;
	return attnum;
}

/*
 * orders_direct_idle_before — may the updates of "d" leave out the BEFORE
 * UPDATE row triggers of its table?  Yes (d->before_idle) when each that
 * would fire for them (fires_for) is the extension's C function of one of
 * the symbols "idle" — guards the caller knows let its write through
 * unchanged — or at most one orders.set_updated_at without WHEN clause,
 * whose stamp orders_direct_update then sets itself (the transaction's
 * start, as the trigger does).  Not in a session replaying replication
 * (session_replication_role = replica fires other triggers).  The caller
 * may clear d->before_idle for a row its guards would not let through.
 * Kept per backend.
 */
bool
orders_direct_idle_before(OrdersDirect *d, const char *const *idle)
{
	static const char *const stamp_symbol[] = {"orders_set_updated_at", NULL};
	Relation	rel = d->info->ri_RelationDesc;
	Oid			relid = RelationGetRelid(rel);
	uint64		generation = direct_generation;
	IdleBefore *entry = NULL;
	int			slot = -1;
	TriggerDesc *trig;
	Oid			extension;
	bool		skip = true;
	AttrNumber	stamp = 0;

	d->before_idle = false;
	d->stamp_attnum = 0;
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return false;
	for (int i = 0; i < IDLE_BEFORE_ENTRIES && entry == NULL; i++)
	{
		IdleBefore *e = &idle_before_cache[i];

		if (e->relid == relid && e->idle == idle && e->ncolumns == d->ncolumns &&
			memcmp(e->attnums, d->attnums, sizeof(AttrNumber) * d->ncolumns) == 0)
			entry = e;
		else if (e->relid == InvalidOid && slot < 0)
			slot = i;
	}
	if (entry != NULL)
	{
		d->before_idle = entry->skip;
		d->stamp_attnum = entry->stamp;
		return entry->skip;
	}
	register_callbacks();
	/* a copy: the lookups below may rebuild the relcache entry, and free its triggers */
	trig = rel->trigdesc ? CopyTriggerDesc(rel->trigdesc) : NULL;
	extension = get_extension_oid(ORDERS_SCHEMA, true);
	for (int i = 0; trig != NULL && i < trig->numtriggers && skip; i++)
	{
		const Trigger *t = &trig->triggers[i];

		if (!TRIGGER_FOR_ROW(t->tgtype) || !TRIGGER_FOR_BEFORE(t->tgtype) ||
			!TRIGGER_FOR_UPDATE(t->tgtype) || !fires_for(t, rel, d) ||
			own_function(t->tgfoid, extension, idle))
			continue;
		skip = stamp == 0 && own_function(t->tgfoid, extension, stamp_symbol) &&
			(stamp = stamp_column(t, rel, d)) != 0;
	}
	if (trig != NULL)
		FreeTriggerDesc(trig);
	if (!skip)
		stamp = 0;
	if (slot >= 0 && generation == direct_generation)
	{
		entry = &idle_before_cache[slot];
		entry->relid = relid;
		entry->idle = idle;
		entry->ncolumns = d->ncolumns;
		memcpy(entry->attnums, d->attnums, sizeof(AttrNumber) * d->ncolumns);
		entry->skip = skip;
		entry->stamp = stamp;
	}
	d->before_idle = skip;
	d->stamp_attnum = stamp;
	return skip;
}

/*
 * lock_latest — the row of "rel" whose one-column primary key ("key_index",
 * its column "key_attnum", equality "eq" under "collation") is "id", found
 * with "snapshot" and locked FOR NO KEY UPDATE in its latest version (into
 * "slot"), as an UPDATE statement at READ COMMITTED finds it after waiting
 * for its lock; false when there is no such row (or it was deleted
 * meanwhile).  At REPEATABLE READ or SERIALIZABLE a row changed since the
 * transaction's snapshot fails with 40001, as the statement would.
 * "ahead": a lock taken ahead of what will need it (orders_direct_lock_rows)
 * — a row this transaction changed in the current command is left alone
 * (false) instead of refused with 27000, as SELECT ... FOR UPDATE leaves it,
 * and so is one not visible to the current command (TM_Invisible).
 */
static bool
lock_latest(Relation rel, Oid key_index, AttrNumber key_attnum, FmgrInfo *eq, Oid collation,
			Snapshot snapshot, CommandId cid, TupleTableSlot *slot, Datum id, bool ahead)
{
	Relation	idx = index_open(key_index, AccessShareLock);
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found;
	bool		isnull;
	TM_FailureData tmfd;
	TM_Result	res;

	ScanKeyEntryInitializeWithInfo(&key, 0, 1, BTEqualStrategyNumber, InvalidOid, collation, eq, id);
	scan = index_beginscan(rel, idx, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	index_close(idx, NoLock);
	if (!found)
		return false;

	res = table_tuple_lock(rel, &slot->tts_tid, snapshot, slot, cid, LockTupleNoKeyExclusive, LockWaitBlock,
						   IsolationUsesXactSnapshot() ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
	switch (res)
	{
		case TM_Ok:
			/* a later version under another key is no longer the row asked for */
			return !tmfd.traversed ||
				DatumGetBool(FunctionCall2Coll(eq, collation, id, slot_getattr(slot, key_attnum, &isnull)));
		case TM_SelfModified:
		case TM_Invisible:
			if (ahead)
				return false;
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
					 errmsg("tuple to be updated was already modified by an operation triggered by the current command")));
			break;
		case TM_Updated:
		case TM_Deleted:
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent %s",
								res == TM_Updated ? "update" : "delete")));
			return false;		/* deleted meanwhile */
		default:
			elog(ERROR, "orders: unexpected table_tuple_lock status %d", (int) res);
	}
	return false;
}

/*
 * orders_direct_lock_by_id — the row whose primary key is "id", locked FOR
 * NO KEY UPDATE in its latest version (into d->row): lock_latest.
 */
bool
orders_direct_lock_by_id(OrdersDirect *d, Datum id)
{
	return lock_latest(d->info->ri_RelationDesc, d->key_index, d->key_attnum, &d->key_eq, d->key_collation,
					   d->estate->es_snapshot, d->estate->es_output_cid, d->row, id, false);
}

/*
 * orders_direct_refetch — the row version at "tid" read again into d->row
 * for orders_direct_update: one this transaction locked by
 * orders_direct_lock_by_id in the same direct write (its lock keeps every
 * other transaction from changing it).  Refused as the UPDATE refuses it
 * (27000) when this transaction changed it since — a DBA's function run by
 * a check of an earlier row of the same write.  False when there is none.
 */
bool
orders_direct_refetch(OrdersDirect *d, ItemPointer tid)
{
	HeapTupleHeader row;

	if (!table_tuple_fetch_row_version(d->info->ri_RelationDesc, tid, SnapshotAny, d->row))
		return false;
	row = ExecFetchSlotHeapTuple(d->row, false, NULL)->t_data;
	/* an update of ours counts, not one a rolled back subtransaction made */
	if (!(row->t_infomask & HEAP_XMAX_INVALID) && !HEAP_XMAX_IS_LOCKED_ONLY(row->t_infomask) &&
		TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetUpdateXid(row)))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("tuple to be updated was already modified by an operation triggered by the current command")));
	return true;
}

/*
 * orders_direct_lock_rows — the rows of "rel" (opened by the caller, a
 * one-column primary key) whose keys are the "n" "ids", locked FOR NO KEY
 * UPDATE one after the other in the caller's order (sorted, so that two
 * callers cannot deadlock), as SELECT ... FOR NO KEY UPDATE would lock
 * them; ids without a row, and rows the current command changed, are
 * passed over.  For locks taken ahead of the writes that need them.
 */
void
orders_direct_lock_rows(Relation rel, const Datum *ids, int n)
{
	Oid			key_index;
	AttrNumber	key_attnum;
	FmgrInfo	eq;
	Oid			collation;
	Snapshot	snapshot;
	TupleTableSlot *slot;

	if (n == 0 || !one_column_key(rel))
		return;					/* a table without a one-column key: nothing locked ahead */
	primary_key(rel, &key_index, &key_attnum, &eq, &collation);
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	slot = table_slot_create(rel, NULL);
	for (int i = 0; i < n; i++)
		(void) lock_latest(rel, key_index, key_attnum, &eq, collation, snapshot,
						   GetCurrentCommandId(false), slot, ids[i], true);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
}

/*
 * orders_direct_lock_row — the row of "rel" (opened by the caller) whose
 * primary key is "id", locked FOR NO KEY UPDATE in its latest version into
 * "slot" (of rel's type), as SELECT ... FOR NO KEY UPDATE run with the
 * latest snapshot would lock it (orders_execute_latest) — the snapshot
 * taken now, so after the waits for the rows the caller locked before: at
 * REPEATABLE READ only a change committed while it waited for this very
 * row fails with 40001.  False
 * when there is none, or when it is a row the current command changed (as
 * the SELECT passes it over).  Only for a table orders_direct_lockable
 * finds lockable by the current user.
 */
bool
orders_direct_lock_row(Relation rel, Datum id, TupleTableSlot *slot)
{
	Oid			key_index;
	AttrNumber	key_attnum;
	FmgrInfo	eq;
	Oid			collation;
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	bool		found;

	primary_key(rel, &key_index, &key_attnum, &eq, &collation);
	found = lock_latest(rel, key_index, key_attnum, &eq, collation, snapshot,
						GetCurrentCommandId(false), slot, id, true);
	UnregisterSnapshot(snapshot);
	return found;
}

/*
 * orders_direct_lockable — can orders_direct_lock_row lock the rows of
 * "rel" as the current user's SELECT ... FOR NO KEY UPDATE would?  A plain
 * table without rules or inheritance children, the user allowed to update
 * it and row level security not applying to them, a one-column primary
 * key.
 */
bool
orders_direct_lockable(Relation rel)
{
	return rel->rd_rel->relkind == RELKIND_RELATION && rel->rd_rules == NULL &&
		!rel->rd_rel->relhassubclass &&
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_UPDATE) == ACLCHECK_OK &&
		check_enable_rls(RelationGetRelid(rel), InvalidOid, true) != RLS_ENABLED &&
		one_column_key(rel);
}

/*
 * A foreign key check of an updated row, held by hold_key_checks until
 * orders_direct_end runs it under the caller's search path.
 */
typedef struct HeldKeyCheck
{
	Trigger    *trigger;		/* in the executor state's copy of the triggers */
	char		enabled;		/* its tgenabled, while hold_key_checks turns it off */
	ItemPointerData old_tid;
	ItemPointerData new_tid;
} HeldKeyCheck;

/*
 * orders_direct_keys_as_caller — the caller switched to the owner
 * (orders_switch_to_owner) just around this write and pushed nothing on
 * the search path since: the foreign key checks of its update run under
 * the caller's search path (at the moment PostgreSQL would run them:
 * hold_key_checks), so that PostgreSQL's cached plan for each check stays
 * the one made under that path — the caller's own statements run the same
 * checks (an order's INSERT, then the write of its subtotal by the items'
 * statement: each run under the other path planned the check again, ~20 %
 * of creating an order with its items).
 */
void
orders_direct_keys_as_caller(OrdersDirect *d)
{
	d->keys_as_caller = true;
}

/*
 * orders_direct_check_by_lock — the caller of a direct write of one row
 * will lock (FOR NO KEY UPDATE, in its transaction, before
 * orders_direct_end) the row that "check" (orders_direct_update_check, of
 * column "attnum") looks for: when PostgreSQL would queue that check for
 * the update (a row this transaction inserted, the check the first of its
 * AFTER UPDATE row triggers to fire: hold_key_checks), it is held, and
 * orders_direct_end leaves it out if the caller then locked the row the
 * updated version refers to (orders_direct_check_locked) — the check would
 * find that row and take a weaker lock on it than the caller holds —, and
 * runs it otherwise; InvalidOid names none.  A reservation confirmed in
 * the transaction that held it: the check of its slot (reserve + confirm
 * 1.48x -> 1.83x the PL/pgSQL seed, doc/benchmarks.md 0.45.0).
 */
void
orders_direct_check_by_lock(OrdersDirect *d, Oid check, AttrNumber attnum)
{
	d->lock_check = check;
	d->lock_attnum = attnum;
}

/*
 * orders_direct_check_locked — the caller of orders_direct_check_by_lock
 * locked the row whose primary key is "key" (of the column's type; copied).
 * Nothing when no check was named.
 */
void
orders_direct_check_locked(OrdersDirect *d, Datum key)
{
	Form_pg_attribute att;
	MemoryContext oldcxt;

	if (!OidIsValid(d->lock_check))
		return;					/* no check was named (the table has no such key) */
	att = TupleDescAttr(RelationGetDescr(d->info->ri_RelationDesc), d->lock_attnum - 1);
	oldcxt = MemoryContextSwitchTo(d->estate->es_query_cxt);
	d->lock_key = datumCopy(key, att->attbyval, att->attlen);
	d->lock_taken = true;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * hold_key_checks — for the first update of a direct write (d->row to
 * "next", stored at next->tts_tid) of a row this transaction inserted: the
 * foreign key checks PostgreSQL would queue for it — the table's enabled,
 * not deferrable checks whose RI_FKey_fk_upd_check_required asks for one
 * (every key not NULL, since the row is the transaction's own) — provided they would also fire first: every
 * enabled AFTER UPDATE row trigger before them in the table's order (by
 * name) is such a check or one PostgreSQL would not queue (the checks of
 * the tables referring to this one, whose key did not change).  Then each
 * is added to d->held_keys and turned off in the executor state's copy of
 * the triggers until release_key_checks, so ExecARUpdateTriggers does not
 * queue it as well; orders_direct_end runs them before the other AFTER row
 * triggers, as PostgreSQL would.  Otherwise (a later update of the write,
 * a DBA's trigger named to fire first, a deferrable key) PostgreSQL queues
 * them, as for every other row.  Without orders_direct_keys_as_caller
 * only the check of orders_direct_check_by_lock is held, and only when it
 * would fire first.  Returns how many it held.
 */
static int
hold_key_checks(OrdersDirect *d, TupleTableSlot *next)
{
	TriggerDesc *td = d->info->ri_TrigDesc;
	Relation	rel = d->info->ri_RelationDesc;
	MemoryContext oldcxt;
	TransactionId xmin;
	bool		isnull;
	int			n = 0;

	if (td == NULL || !td->trig_update_after_row || d->updates > 0)
		return 0;
	/*
	 * A row not inserted by this transaction: its checks run only when a
	 * key changed, which the extension's writes do not do — leave whatever
	 * there is to PostgreSQL rather than ask each trigger twice.
	 */
	xmin = DatumGetTransactionId(slot_getsysattr(d->row, MinTransactionIdAttributeNumber, &isnull));
	if (isnull || !TransactionIdIsCurrentTransactionId(xmin))
		return 0;
	oldcxt = MemoryContextSwitchTo(d->estate->es_query_cxt);
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];
		HeldKeyCheck *h;

		if (!TRIGGER_FOR_ROW(t->tgtype) || !TRIGGER_FOR_AFTER(t->tgtype) ||
			!TRIGGER_FOR_UPDATE(t->tgtype) || !orders_trigger_enabled_now(t))
			continue;
		if (RI_FKey_trigger_type(t->tgfoid) == RI_TRIGGER_PK &&
			!RI_FKey_pk_upd_check_required(t, rel, d->row, next))
			continue;			/* a key others refer to, unchanged: not queued */
		if (t->tgfoid != F_RI_FKEY_CHECK_UPD || t->tgdeferrable)
			break;				/* queued before any later check: those stay PostgreSQL's */
		if (!RI_FKey_fk_upd_check_required(t, rel, d->row, next))
			continue;
		if (!d->keys_as_caller && t->tgoid != d->lock_check)
			break;				/* fires first: it stays PostgreSQL's, and so do those after it */
		h = palloc(sizeof(HeldKeyCheck));
		h->trigger = t;
		h->enabled = t->tgenabled;
		h->old_tid = d->row->tts_tid;
		h->new_tid = next->tts_tid;
		t->tgenabled = TRIGGER_DISABLED;
		d->held_keys = lappend(d->held_keys, h);
		n++;
	}
	MemoryContextSwitchTo(oldcxt);
	return n;
}

/* release_key_checks — the held checks' triggers turned on again. */
static void
release_key_checks(OrdersDirect *d)
{
	ListCell   *lc;

	foreach(lc, d->held_keys)
	{
		HeldKeyCheck *h = (HeldKeyCheck *) lfirst(lc);

		h->trigger->tgenabled = h->enabled;
	}
}

/*
 * locked_key_of — does the row version in "slot" refer to the row the
 * caller locked (orders_direct_check_locked)?
 */
static bool
locked_key_of(const OrdersDirect *d, TupleTableSlot *slot)
{
	Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor, d->lock_attnum - 1);
	bool		isnull;
	Datum		value = slot_getattr(slot, d->lock_attnum, &isnull);

	return !isnull && datum_image_eq(value, d->lock_key, att->attbyval, att->attlen);
}

/*
 * run_key_checks — the held foreign key checks, each as AfterTriggerExecute
 * would call its trigger function (the row versions fetched by their TIDs;
 * the check passes over a version no longer current), under the caller's
 * search path when the owner's pinned one is the current path (the
 * contract of orders_direct_keys_as_caller; else under the current one);
 * the owner stays the user (the check becomes the referenced table's owner
 * itself).  The pinned path is back afterwards, also when a check refuses.
 * The check of orders_direct_check_by_lock is left out when the caller
 * locked the row its updated version refers to.
 */
static void
run_key_checks(OrdersDirect *d)
{
	Relation	rel = d->info->ri_RelationDesc;
	TupleTableSlot *oldslot = table_slot_create(rel, &d->estate->es_tupleTable);
	TupleTableSlot *newslot = table_slot_create(rel, &d->estate->es_tupleTable);
	MemoryContext oldcxt = MemoryContextSwitchTo(d->estate->es_query_cxt);
	bool		popped = d->keys_as_caller && orders_caller_path_begin();

	PG_TRY();
	{
		ListCell   *lc;

		foreach(lc, d->held_keys)
		{
			HeldKeyCheck *h = (HeldKeyCheck *) lfirst(lc);
			TriggerData td;
			FmgrInfo	flinfo;
			bool		free_old;
			bool		free_new;
			LOCAL_FCINFO(fcinfo, 0);

			if (!table_tuple_fetch_row_version(rel, &h->old_tid, SnapshotAny, oldslot) ||
				!table_tuple_fetch_row_version(rel, &h->new_tid, SnapshotAny, newslot))
				elog(ERROR, "orders: failed to fetch a row version of %s for its foreign key check",
					 RelationGetRelationName(rel));
			if (h->trigger->tgoid == d->lock_check && d->lock_taken && locked_key_of(d, newslot))
				continue;
			memset(&td, 0, sizeof(td));
			td.type = T_TriggerData;
			td.tg_event = TRIGGER_EVENT_UPDATE | TRIGGER_EVENT_ROW;
			td.tg_relation = rel;
			td.tg_trigger = h->trigger;
			td.tg_trigslot = oldslot;
			td.tg_trigtuple = ExecFetchSlotHeapTuple(oldslot, false, &free_old);
			td.tg_newslot = newslot;
			td.tg_newtuple = ExecFetchSlotHeapTuple(newslot, false, &free_new);
			fmgr_info(h->trigger->tgfoid, &flinfo);
			InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, (Node *) &td, NULL);
			FunctionCallInvoke(fcinfo);
		}
	}
	PG_FINALLY();
	{
		orders_caller_path_end(popped);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
}

/*
 * simple_update — ExecSimpleRelationUpdate (execReplication.c, PostgreSQL
 * 15) of the locked row d->row to d->next, but opening the table's indexes
 * only when the new version needs index entries: a HOT update (the usual
 * counter write, none of whose columns is indexed) then opens none of them
 * — for orders.orders that is 17 index opens and locks, and their
 * IndexInfos, per write.  BEFORE row triggers (unless idle:
 * orders_direct_idle_before), generated columns, constraints, the new
 * version, its index entries, the AFTER row triggers queued.  False when a
 * BEFORE row trigger skipped the row.
 */
#if PG_VERSION_NUM >= 160000
#error "simple_update copies PostgreSQL 15's ExecSimpleRelationUpdate: port it (update_indexes, trigger and index-insert signatures changed in 16)"
#endif
static bool
simple_update(OrdersDirect *d)
{
	ResultRelInfo *info = d->info;
	Relation	rel = info->ri_RelationDesc;
	ItemPointer tid = &d->row->tts_tid;
	TupleTableSlot *slot = d->next;
	List	   *recheck = NIL;
	bool		update_indexes;

	/* a plain table (orders_direct_updatable): no partition constraint to check */
	Assert(rel->rd_rel->relkind == RELKIND_RELATION && !rel->rd_rel->relispartition);
	CheckCmdReplicaIdentity(rel, CMD_UPDATE);
	if (!d->before_idle && info->ri_TrigDesc && info->ri_TrigDesc->trig_update_before_row &&
		!ExecBRUpdateTriggers(d->estate, &d->epq, info, tid, NULL, slot, NULL))
		return false;			/* "do nothing" */
	if (rel->rd_att->constr && rel->rd_att->constr->has_generated_stored)
		ExecComputeStoredGenerated(info, d->estate, slot, CMD_UPDATE);
	if (rel->rd_att->constr)
		ExecConstraints(info, slot, d->estate);
	simple_table_tuple_update(rel, tid, slot, d->estate->es_snapshot, &update_indexes);
	if (update_indexes)
	{
		if (!d->indexes_open)
		{
			/* in the executor's memory, as ExecInitModifyTable opens them */
			MemoryContext oldcxt = MemoryContextSwitchTo(d->estate->es_query_cxt);

			ExecOpenIndices(info, false);
			MemoryContextSwitchTo(oldcxt);
			d->indexes_open = true;
		}
		if (info->ri_NumIndices > 0)
			recheck = ExecInsertIndexTuples(info, slot, d->estate, true, false, NULL, NIL);
	}
	if ((d->keys_as_caller || OidIsValid(d->lock_check)) && hold_key_checks(d, slot) > 0)
	{
		ExecARUpdateTriggers(d->estate, info, NULL, NULL, tid, NULL, slot, recheck, NULL, false);
		release_key_checks(d);
	}
	else
		ExecARUpdateTriggers(d->estate, info, NULL, NULL, tid, NULL, slot, recheck, NULL, false);
	d->updates++;
	list_free(recheck);
	return true;
}

/*
 * orders_direct_update — the locked row (d->row) with the columns set to
 * "values" / "isnull" (in the order orders_direct_begin named them; each
 * checked against its column's domain, as an UPDATE's assignment is): its
 * BEFORE row triggers, generated columns, constraints, the new version and
 * its index entries, its AFTER row triggers queued.  False when a BEFORE
 * row trigger skipped the row (returned NULL): nothing was written, and
 * the caller, which counted on the write, refuses (as its statement would
 * have found no row).
 */
bool
orders_direct_update(OrdersDirect *d, const Datum *values, const bool *isnull)
{
	TupleDesc	desc = d->next->tts_tupleDescriptor;

	/* the previous row's version and what its triggers and checks made, freed as the executor frees them */
	ExecClearTuple(d->next);
	ResetPerTupleExprContext(d->estate);
	for (int c = 0; c < d->ncolumns; c++)
		if (d->domain[c])
			domain_check(values[c], isnull[c], TupleDescAttr(desc, d->attnums[c] - 1)->atttypid,
						 &d->domain_extra[c], d->estate->es_query_cxt);
	slot_getallattrs(d->row);
	memcpy(d->next->tts_values, d->row->tts_values, sizeof(Datum) * desc->natts);
	memcpy(d->next->tts_isnull, d->row->tts_isnull, sizeof(bool) * desc->natts);
	for (int c = 0; c < d->ncolumns; c++)
	{
		d->next->tts_values[d->attnums[c] - 1] = values[c];
		d->next->tts_isnull[d->attnums[c] - 1] = isnull[c];
	}
	if (d->before_idle && d->stamp_attnum > 0)
	{
		/* what orders.set_updated_at would have set (orders_direct_idle_before) */
		d->next->tts_values[d->stamp_attnum - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		d->next->tts_isnull[d->stamp_attnum - 1] = false;
	}
	ExecStoreVirtualTuple(d->next);
	return simple_update(d);
}

/*
 * orders_direct_end — the AFTER row triggers of the updates fired (as at
 * the end of their statement), the executor state freed, and the command
 * counter advanced so that what follows sees the new versions.
 */
void
orders_direct_end(OrdersDirect *d)
{
	if (d->held_keys != NIL)
		run_key_checks(d);		/* they would fire first (hold_key_checks) */
	AfterTriggerEndQuery(d->estate);
	close_indices(d->info);
	EvalPlanQualEnd(&d->epq);
	PopActiveSnapshot();
	UnregisterSnapshot(d->estate->es_snapshot);
	ExecResetTupleTable(d->estate->es_tupleTable, false);
	FreeExecutorState(d->estate);
	CommandCounterIncrement();
}
