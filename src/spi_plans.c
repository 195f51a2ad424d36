/*
 * spi_plans.c — the extension's SPI plans, prepared once and kept.
 *
 * Plans are cached per (query kind, relation OID) as in ri_triggers.c: the
 * OID is the table the query serves, so a dropped and re-created extension
 * gets fresh plans.  A plan that PostgreSQL has invalidated beyond repair
 * (SPI_plan_is_valid false) is freed and prepared again.  Every query text is
 * constant, schema-qualified and takes its values as parameters, so neither
 * values nor the caller's search_path reach the SQL.
 */
#include "orders.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

typedef struct PlanKey
{
	OrdersPlanKind kind;
	Oid			relid;
} PlanKey;

typedef struct PlanEntry
{
	PlanKey		key;
	SPIPlanPtr	plan;
	int			generation;		/* its generic plan's, as make_plan made it */
} PlanEntry;

static HTAB *plan_hash = NULL;

/*
 * orders_get_plan — the kept generic plan for (kind, relid), prepared from
 * "sql" on first use or when the stored one is no longer valid.  Must be called while
 * connected to SPI.  Never returns NULL.
 */
static SPIPlanPtr get_plan(OrdersPlanKind kind, Oid relid, const char *sql,
						   int nargs, Oid *argtypes, bool keyed);
static int	plan_generation(SPIPlanPtr plan);
static void refuse_rewritten(SPIPlanPtr plan);
static void make_plan(SPIPlanPtr plan, bool keyed);

SPIPlanPtr
orders_get_plan(OrdersPlanKind kind, Oid relid, const char *sql,
				int nargs, Oid *argtypes)
{
	return get_plan(kind, relid, sql, nargs, argtypes, false);
}

/*
 * orders_get_keyed_plan — orders_get_plan for a statement that finds its
 * rows by their keys: its generic plan is made at once, with sequential
 * scans ruled out (enable_seqscan off while it is planned).  A generic
 * plan made while a table fits in a page or two (a new database, a small
 * table) scans it sequentially and is kept until the table's next
 * invalidation; on a table whose few rows are updated all the time (a
 * client group that all its reviewers update) each such scan reads every
 * dead version the table has piled up — 5 % of a review's CPU, inside the
 * group's lock, before this.
 */
SPIPlanPtr
orders_get_keyed_plan(OrdersPlanKind kind, Oid relid, const char *sql,
					  int nargs, Oid *argtypes)
{
	return get_plan(kind, relid, sql, nargs, argtypes, true);
}

/* Statements of ours running now (nested ones counted too), and the plans
 * found invalid meanwhile, freed once none runs (get_plan). */
static int	plans_running = 0;
static List *retired_plans = NIL;

/*
 * get_plan — the kept plan for (kind, relid), prepared from "sql" when
 * there is none or it is no longer valid; "keyed": made at once without
 * sequential scans (orders_get_keyed_plan).
 */
static SPIPlanPtr
get_plan(OrdersPlanKind kind, Oid relid, const char *sql,
		 int nargs, Oid *argtypes, bool keyed)
{
	PlanKey		key;
	PlanEntry  *entry;
	bool		found;
	SPIPlanPtr	plan;

	if (plan_hash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(PlanKey);
		ctl.entrysize = sizeof(PlanEntry);
		plan_hash = hash_create("orders SPI plans", 32, &ctl,
								HASH_ELEM | HASH_BLOBS);
	}

	memset(&key, 0, sizeof(key));
	key.kind = kind;
	key.relid = relid;
	entry = (PlanEntry *) hash_search(plan_hash, &key, HASH_ENTER, &found);
	if (!found)
		entry->plan = NULL;

	if (entry->plan != NULL && SPI_plan_is_valid(entry->plan) &&
		plan_generation(entry->plan) == entry->generation)
		return entry->plan;

	/*
	 * An invalid plan is prepared again from the text; the old one is freed
	 * only while none of ours runs — a statement of ours may run this very
	 * plan in an outer frame (a trigger's write nested in the same write,
	 * after something reset the plan cache: the replica role of a stock
	 * fill does), and freeing it would pull its plan list from under it.
	 */
	if (entry->plan != NULL)
	{
		if (plans_running > 0)
		{
			MemoryContext was = MemoryContextSwitchTo(TopMemoryContext);

			retired_plans = lappend(retired_plans, entry->plan);
			MemoryContextSwitchTo(was);
		}
		else
			SPI_freeplan(entry->plan);
		entry->plan = NULL;
	}
	if (plans_running == 0 && retired_plans != NIL)
	{
		ListCell   *lc;

		foreach(lc, retired_plans)
			SPI_freeplan((SPIPlanPtr) lfirst(lc));
		list_free(retired_plans);
		retired_plans = NIL;
	}

	/*
	 * Every statement of the extension is a keyed lookup or change whose
	 * best plan does not depend on the values: ask for the generic plan at
	 * once, so that no execution is planned again (with array parameters
	 * the plan cache would otherwise keep making custom plans).
	 */
	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "orders: SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "orders: SPI_keepplan failed");
	make_plan(plan, keyed);
	entry->plan = plan;
	entry->generation = plan_generation(plan);
	return plan;
}

/*
 * plan_generation — how many generic plans the plan cache has made for
 * "plan" so far: one more than get_plan saw means the cache made a new one
 * itself (an invalidation that arrived while a statement took its locks),
 * with the caller's settings, not make_plan's.
 */
static int
plan_generation(SPIPlanPtr plan)
{
	return ((CachedPlanSource *) linitial(SPI_plan_get_plan_sources(plan)))->generation;
}

/*
 * make_plan — the generic plan of "plan" made now, without JIT and, when
 * "keyed", without sequential scans.  JIT is never worth it for the
 * extension's statements, which touch a few rows, yet a plan whose cost
 * passes jit_above_cost compiles its expressions at every execution: a
 * keyed plan over a DBA's child table without an index (a sequential scan
 * all the same, costed as disabled) took 105 ms per status change, a
 * cancellation planned on tables without statistics 9 ms.
 */
static void
make_plan(SPIPlanPtr plan, bool keyed)
{
	int			nest = NewGUCNestLevel();
	CachedPlan *cplan;

	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (keyed)
		(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	cplan = SPI_plan_get_cached_plan(plan);
	if (cplan != NULL)
		ReleaseCachedPlan(cplan, CurrentResourceOwner);
	AtEOXact_GUC(true, nest);
}

/* The source files of this extension, as elog.c names them (base names). */
static const char *const own_files[] = {
	"customer_stats.c", "leads.c", "lifecycle.c", "order_money.c", "order_number.c", "revenue.c", "security.c", "slots.c", "spi_plans.c",
	"stock.c", "transition.c", "trigger_util.c", "updated_at.c"
};

static bool
raised_here(const ErrorData *edata)
{
	if (edata->filename == NULL)
		return false;
	for (size_t i = 0; i < lengthof(own_files); i++)
		if (strcmp(edata->filename, own_files[i]) == 0)
			return true;
	return false;
}

/*
 * execute_plan — run a kept plan with the transaction's snapshots, or with
 * "snapshot" when given; refusals raised by the extension's own checks
 * inside the statement (a trigger of ours) are re-thrown without the "SQL
 * statement" context line: the statement is ours, not the caller's, and the
 * message already names the object.  Other errors pass unchanged.
 */
static void
execute_plan(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only,
			 long count, int expected, Snapshot snapshot)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = 0;

	plans_running++;
	PG_TRY();
	{
		if (snapshot != InvalidSnapshot)
			rc = SPI_execute_snapshot(plan, args, nulls, snapshot, InvalidSnapshot,
									  read_only, true, count);
		else
			rc = SPI_execute_plan(plan, args, nulls, read_only, count);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		plans_running--;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (raised_here(edata))
		{
			FlushErrorState();
			edata->context = NULL;
			ReThrowError(edata);
		}
		FreeErrorData(edata);
		PG_RE_THROW();
	}
	PG_END_TRY();
	plans_running--;
	if (rc == SPI_OK_REWRITTEN && expected != SPI_OK_REWRITTEN)
		refuse_rewritten(plan);
	if (rc != expected)
		elog(ERROR, "orders: SPI returned %s, expected %s",
			 SPI_result_code_string(rc), SPI_result_code_string(expected));
}

/*
 * refuse_rewritten — 09000 for a statement of the extension that a DBA's
 * DO INSTEAD rule replaced (0.35.0: an internal error before), naming the
 * statement's table.  The extension keeps its counters exact by its own
 * writes; a rule that replaces them would leave a counter wrong, so the
 * statement fails.
 */
static void
refuse_rewritten(SPIPlanPtr plan)
{
	CachedPlanSource *source = linitial(SPI_plan_get_plan_sources(plan));
	Node	   *stmt = source->raw_parse_tree != NULL ? source->raw_parse_tree->stmt : NULL;
	RangeVar   *rv = NULL;
	const char *table = "one of its tables";

	/* the statement's target (the rule left no query to name it by) */
	if (stmt != NULL && IsA(stmt, UpdateStmt))
		rv = ((UpdateStmt *) stmt)->relation;
	else if (stmt != NULL && IsA(stmt, InsertStmt))
		rv = ((InsertStmt *) stmt)->relation;
	else if (stmt != NULL && IsA(stmt, DeleteStmt))
		rv = ((DeleteStmt *) stmt)->relation;
	if (rv != NULL)
		table = quote_qualified_identifier(rv->schemaname, rv->relname);
	ereport(ERROR,
			(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
			 errmsg("a rule on %s replaced a write the extension keeps exact", table),
			 errdetail("A DO INSTEAD rule made the statement do something else: a counter would be left wrong."),
			 errhint("Make the rule DO ALSO, or drop it.")));
}

/* orders_execute — SPI_execute_plan for the extension's own statements. */
void
orders_execute(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only,
			   long count, int expected)
{
	execute_plan(plan, args, nulls, read_only, count, expected, InvalidSnapshot);
}

/*
 * orders_execute_snapshot — run a statement of the extension with
 * "snapshot", which the caller took and keeps (the announcer reads the
 * bounds of the snapshot its batch was read with).
 */
void
orders_execute_snapshot(SPIPlanPtr plan, Datum *args, const char *nulls, int expected,
						Snapshot snapshot)
{
	execute_plan(plan, args, nulls, false, 0, expected, snapshot);
}

/*
 * orders_execute_as_of — run a read of the extension with "snapshot" as it
 * is (read-only: its command id is not moved on), so rows this transaction
 * deleted after the snapshot was taken are still seen.
 */
void
orders_execute_as_of(SPIPlanPtr plan, Datum *args, const char *nulls, int expected, Snapshot snapshot)
{
	execute_plan(plan, args, nulls, true, 0, expected, snapshot);
}

/*
 * orders_execute_latest — run a read of the extension with the latest
 * snapshot (as ri_triggers.c does at REPEATABLE READ): it sees what every
 * transaction that committed before it (and ours so far) wrote, whatever the
 * isolation level.  Used where a row lock we hold or waited for guarantees
 * that concurrent writers of the rows read have finished.
 */
void
orders_execute_latest(SPIPlanPtr plan, Datum *args, const char *nulls, int expected)
{
	execute_plan(plan, args, nulls, false, 0, expected, GetLatestSnapshot());
}

/*
 * orders_run_load — run a cache's load query (no parameters; the caller is
 * connected to SPI, usually as the table's owner) with the latest snapshot,
 * so a change that committed is seen at once; in parallel mode, where only
 * the transaction's snapshot may be used, with that one.
 */
void
orders_run_load(OrdersPlanKind kind, Oid relid, const char *sql)
{
	SPIPlanPtr	plan = orders_get_plan(kind, relid, sql, 0, NULL);

	if (IsInParallelMode())
		orders_execute(plan, NULL, NULL, true, 0, SPI_OK_SELECT);
	else
		orders_execute_latest(plan, NULL, NULL, SPI_OK_SELECT);
}

/* The derived write running now (orders_execute_writing), or NULL. */
const OrdersDerived *orders_derived = NULL;

/*
 * orders_execute_writing — run one of the extension's own writes with
 * "*writing" (when given) true while it runs (the flag its guard trigger
 * checks to let the extension, and only it, write the counter) and
 * orders_derived set to "derived" (NULL when the write is no derived value,
 * e.g. an item made for an approved site); both as they were again
 * afterwards, also on error.
 */
void
orders_execute_writing(SPIPlanPtr plan, Datum *args, const char *nulls, int expected,
					   bool *writing, const OrdersDerived *derived)
{
	bool		was = writing ? *writing : false;
	const OrdersDerived *was_derived = orders_derived;

	if (writing)
		*writing = true;
	orders_derived = derived;
	PG_TRY();
	{
		orders_execute(plan, args, nulls, false, 0, expected);
	}
	PG_FINALLY();
	{
		if (writing)
			*writing = was;
		orders_derived = was_derived;
	}
	PG_END_TRY();
}

/* orders_spi_connect — SPI_connect, or an error. */
void
orders_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "orders: SPI_connect failed");
}

/*
 * orders_spi_connect_as_owner — connect to SPI and become the owner of
 * "relid" (see orders_switch_to_owner); undo with orders_spi_finish_as.
 */
void
orders_spi_connect_as_owner(Oid relid, OrdersSavedUser *saved)
{
	orders_spi_connect();
	orders_switch_to_owner(relid, saved);
}

/* orders_spi_finish_as — back to the saved user, and SPI_finish. */
void
orders_spi_finish_as(const OrdersSavedUser *saved)
{
	orders_restore_user(saved);
	SPI_finish();
}

/*
 * orders_require_arg — refuse a NULL argument of an API function with
 * 22004, naming the function and the argument.
 */
void
orders_require_arg(FunctionCallInfo fcinfo, int argno, const char *func, const char *arg)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: argument \"%s\" must not be null", func, arg)));
}

/*
 * orders_require_max_length — refuse (22001) a text longer than
 * "max_chars" characters, naming "what" but never echoing the text.
 */
void
orders_require_max_length(const char *value, int max_chars, const char *what)
{
	int			len;

	if (value == NULL || strlen(value) <= (size_t) max_chars)
		return;					/* fewer bytes than the limit: fewer characters too */
	len = pg_mbstrlen(value);
	if (len > max_chars)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("%s may have at most %d characters, not %d", what, max_chars, len)));
}

/*
 * orders_clip — "s" as a message quotes it: at most ORDERS_QUOTE_MAX
 * characters, a longer text cut (on a character boundary) and ended with
 * "...".  Refusals quote what the caller sent; a 100 kB status must not
 * become a 100 kB message in logs and API responses.
 */
const char *
orders_clip(const char *s)
{
	int			len;

	if (s == NULL || strlen(s) <= ORDERS_QUOTE_MAX)
		return s;
	len = pg_mbcliplen(s, strlen(s), ORDERS_QUOTE_MAX);
	return psprintf("%.*s...", len, s);
}

/*
 * schema_relid — OID of relation "relname" in schema orders, or InvalidOid
 * (also when the schema itself is missing).
 */
static Oid
schema_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(ORDERS_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
}

/*
 * orders_relid — OID of table "relname" in schema orders; refuses with
 * ERRCODE_UNDEFINED_TABLE when the extension is not (fully) installed.
 */
Oid
orders_relid(const char *relname)
{
	Oid			relid = schema_relid(relname);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", ORDERS_SCHEMA, relname),
				 errhint("Is the extension \"orders\" installed in this database?")));
	return relid;
}

/*
 * orders_relid_if_exists — OID of table "relname" in schema orders, or
 * InvalidOid: for a library that serves versions from before the table.
 */
Oid
orders_relid_if_exists(const char *relname)
{
	return schema_relid(relname);
}

/*
 * orders_index_relid — OID of index "indexname" in schema orders, for the
 * C code that scans it directly; refuses with ERRCODE_UNDEFINED_OBJECT when
 * it is missing (an installation altered by hand).
 */
Oid
orders_index_relid(const char *indexname)
{
	Oid			index = schema_relid(indexname);

	if (!OidIsValid(index))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("index \"%s.%s\" does not exist", ORDERS_SCHEMA, indexname),
				 errhint("Is the extension \"orders\" installed in this database at its current version?")));
	return index;
}

/*
 * orders_text_list — the non-NULL elements of a text[] as C strings, in the
 * current memory context; their number in *n (the list may be empty).
 */
char	  **
orders_text_list(Datum array, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	char	  **list;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false,
					  TYPALIGN_INT, &elems, &nulls, &nelems);
	list = palloc(sizeof(char *) * Max(nelems, 1));
	*n = 0;
	for (int k = 0; k < nelems; k++)
		if (!nulls[k])
			list[(*n)++] = TextDatumGetCString(elems[k]);
	return list;
}
