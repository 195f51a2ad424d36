/*
 * workflows.c — firing workflows from the changes themselves (issue 13).
 *
 *   AFTER INSERT, and AFTER UPDATE OF status, payment_status, on orders
 *   AFTER INSERT, and AFTER UPDATE OF tags, on customers
 *     FOR EACH ROW EXECUTE FUNCTION orders.fire_workflows()
 *
 * An order_status workflow runs when a change of an order's status or
 * payment status brings them into the workflow's lists (status,
 * payment_status; the old row's were not), or an order is created with
 * them, and the order passes the filters (lifecycle, min_order_value) as it
 * is then: once per such change, in the changing transaction, so the run
 * commits or rolls back with it.  A customer_tag workflow runs when its tag is added
 * to a customer.  Each run is orders.execute_workflow(), called as the
 * owner of orders.workflows.  The active workflows of both kinds are cached
 * per backend; a statement trigger on the table (orders.workflows_changed)
 * sends a relcache invalidation, so every backend reloads after a change.
 * With no active workflow the trigger costs a cache lookup.  A run reads
 * its workflow again with the transaction's snapshot (and a key-share lock):
 * one created after the snapshot, deactivated or deleted meanwhile does not
 * run.  Nothing runs while the owner loads data with COPY FROM (pg_restore:
 * the runs are in the dump).
 */
#include "orders.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(orders_fire_workflows);
PG_FUNCTION_INFO_V1(orders_workflows_changed);

/* One active workflow with a row trigger: its parsed trigger config. */
typedef struct Workflow
{
	pg_uuid_t	id;
	bool		on_tags;		/* customer_tag (else order_status) */
	int			nstatus;		/* 0: any status */
	char	  **status;
	int			npayment;		/* 0: any payment status */
	char	  **payment;
	int			nlifecycle;		/* 0: any lifecycle */
	char	  **lifecycle;
	bool		has_min;
	Datum		min_value;		/* numeric */
	char	   *tag;			/* customer_tag: the tag's id */
} Workflow;

static MemoryContext workflows_cxt = NULL;
static Workflow *workflows = NULL;
static int	workflow_count = 0;
static bool workflows_valid = false;
static Oid	workflows_relid = InvalidOid;
static bool callback_registered = false;

/* workflows_inval — relcache callback: drop the cache when the table changed. */
static void
workflows_inval(Datum arg, Oid relid)
{
	(void) arg;
	if (relid == InvalidOid || relid == workflows_relid)
		workflows_valid = false;
}

/* text_array — the non-NULL elements of column "col", a text[] (NULL: none). */
static char **
text_array(HeapTuple t, TupleDesc d, int col, int *n)
{
	bool		isnull;
	Datum		value = SPI_getbinval(t, d, col, &isnull);

	*n = 0;
	return isnull ? NULL : orders_text_list(value, n);
}

/*
 * load_workflows — read the active row-triggered workflows (as the table's
 * owner, through orders.active_trigger_workflows()) into a fresh memory
 * context; the previous one moves to TopTransactionContext.
 */
static void
load_workflows(void)
{
	MemoryContext newcxt;
	MemoryContext oldcxt;
	OrdersSavedUser saved;
	Workflow   *list;
	int			n;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(workflows_inval, (Datum) 0);
		callback_registered = true;
	}
	workflows_relid = orders_relid("workflows");
	/* an invalidation arriving while we read must force another load */
	workflows_valid = true;
	newcxt = AllocSetContextCreate(CacheMemoryContext, "orders workflows", ALLOCSET_SMALL_SIZES);
	if (workflows_cxt != NULL)
		MemoryContextSetParent(workflows_cxt, TopTransactionContext);
	workflows_cxt = newcxt;
	workflows = NULL;
	workflow_count = 0;

	orders_spi_connect_as_owner(workflows_relid, &saved);
	orders_run_load(PLAN_WORKFLOWS_LOAD, workflows_relid,
					"SELECT id, on_tags, statuses, payment_statuses, lifecycles, min_value, tag_id"
					" FROM orders.active_trigger_workflows()");
	n = (int) SPI_processed;
	oldcxt = MemoryContextSwitchTo(newcxt);
	list = palloc0(sizeof(Workflow) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		value;

		memcpy(&list[i].id, DatumGetUUIDP(SPI_getbinval(t, d, 1, &isnull)), sizeof(pg_uuid_t));
		list[i].on_tags = DatumGetBool(SPI_getbinval(t, d, 2, &isnull));
		list[i].status = text_array(t, d, 3, &list[i].nstatus);
		list[i].payment = text_array(t, d, 4, &list[i].npayment);
		list[i].lifecycle = text_array(t, d, 5, &list[i].nlifecycle);
		value = SPI_getbinval(t, d, 6, &isnull);
		list[i].has_min = !isnull;
		if (!isnull)
			list[i].min_value = datumCopy(value, false, -1);
		list[i].tag = SPI_getvalue(t, d, 7);
	}
	MemoryContextSwitchTo(oldcxt);
	orders_spi_finish_as(&saved);
	workflows = list;
	workflow_count = n;
}

/* in_list — is "value" one of list[0..n) (an empty list holds everything)? */
static bool
in_list(char **list, int n, const char *value)
{
	if (n == 0)
		return true;
	for (int i = 0; i < n; i++)
		if (strcmp(list[i], value) == 0)
			return true;
	return false;
}

/* The columns of an order row that the conditions read, taken once per row. */
typedef struct OrderFacts
{
	char	   *status;
	char	   *payment;
	char	   *lifecycle;
	bool		total_null;
	Datum		total;
} OrderFacts;

/* text_column — column "name" of "row" as a C string ("" when NULL). */
static char *
text_column(HeapTuple row, TupleDesc desc, const char *name)
{
	char	   *value = SPI_getvalue(row, desc, SPI_fnumber(desc, name));

	return value ? value : "";
}

/* order_facts — what the conditions read of an order row. */
static void
order_facts(HeapTuple row, TupleDesc desc, OrderFacts *f)
{
	f->status = text_column(row, desc, "status");
	f->payment = text_column(row, desc, "payment_status");
	f->lifecycle = text_column(row, desc, "lifecycle");
	f->total = SPI_getbinval(row, desc, SPI_fnumber(desc, "total_amount"), &f->total_null);
}

/*
 * order_state_meets — are the order's status and payment status in the
 * workflow's lists (the conditions a change comes to meet)?
 */
static bool
order_state_meets(const Workflow *w, const OrderFacts *f)
{
	return in_list(w->status, w->nstatus, f->status) &&
		in_list(w->payment, w->npayment, f->payment);
}

/*
 * order_passes — does the order pass the workflow's filters (lifecycle,
 * min_order_value), judged on the row as it is now?
 */
static bool
order_passes(const Workflow *w, const OrderFacts *f)
{
	if (!in_list(w->lifecycle, w->nlifecycle, f->lifecycle))
		return false;
	return !w->has_min ||
		(!f->total_null && DatumGetBool(DirectFunctionCall2(numeric_ge, f->total, w->min_value)));
}

/* row_tags — customers.tags of "row" when it is an array, else NULL. */
static Jsonb *
row_tags(HeapTuple row, TupleDesc desc)
{
	bool		isnull;
	Datum		value;
	Jsonb	   *tags;

	if (row == NULL)
		return NULL;
	value = SPI_getbinval(row, desc, SPI_fnumber(desc, "tags"), &isnull);
	if (isnull)
		return NULL;
	tags = DatumGetJsonbP(value);
	return JB_ROOT_IS_ARRAY(tags) && !JB_ROOT_IS_SCALAR(tags) ? tags : NULL;
}

/*
 * tags_hold — does the tags array (NULL: none) hold the tag: an object
 * whose "id" is "tag", or the string "tag"?
 */
static bool
tags_hold(Jsonb *tags, const char *tag)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	size_t		len = strlen(tag);

	if (tags == NULL)
		return false;
	it = JsonbIteratorInit(&tags->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		{
			JsonbValue *id = getKeyJsonValueFromContainer(v.val.binary.data, "id", 2, NULL);

			if (id != NULL && id->type == jbvString && (size_t) id->val.string.len == len &&
				memcmp(id->val.string.val, tag, len) == 0)
				return true;
		}
		else if (v.type == jbvString && (size_t) v.val.string.len == len &&
				 memcmp(v.val.string.val, tag, len) == 0)
			return true;
	}
	return false;
}

/*
 * same_state — is neither the status nor the payment status of an order
 * distinct (IS DISTINCT FROM) between its old and new row?  Then no
 * order_status workflow can have just come to match.
 */
static bool
same_state(HeapTuple oldrow, HeapTuple newrow, TupleDesc desc)
{
	static const char *const columns[] = {"status", "payment_status"};

	for (int i = 0; i < 2; i++)
	{
		int			attnum = SPI_fnumber(desc, columns[i]);
		char	   *a = SPI_getvalue(oldrow, desc, attnum);
		char	   *b = SPI_getvalue(newrow, desc, attnum);

		if ((a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0))
			return false;
	}
	return true;
}

/* append_pair — ,"key":"value" (value NULL: JSON null) to a JSON object. */
static void
append_pair(StringInfo buf, const char *key, const char *value)
{
	appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	if (value)
		escape_json(buf, value);
	else
		appendStringInfoString(buf, "null");
}

/*
 * orders.fire_workflows() — see the file comment.  The matching workflows
 * are collected first (a run may invalidate the cache), then run in the
 * order they were created.
 */
Datum
orders_fire_workflows(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "fire_workflows",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE);
	static Oid	argtypes[4] = {UUIDOID, UUIDOID, UUIDOID, TEXTOID};
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	oldrow = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_trigtuple : NULL;
	HeapTuple	newrow = oldrow ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	bool		on_customers;
	OrderFacts	now;
	OrderFacts	before;
	Jsonb	   *tags_now = NULL;
	Jsonb	   *tags_before = NULL;
	pg_uuid_t  *run_ids;
	char	  **run_events;
	int			nrun = 0;
	bool		isnull;
	Datum		row_id;
	OrdersSavedUser saved;
	Oid			relid;
	SPIPlanPtr	plan;

	if (orders_owner_loading(rel))
		return PointerGetDatum(NULL);
	on_customers = strcmp(RelationGetRelationName(rel), "customers") == 0;
	/* an order's UPDATE of neither status (no WHEN clause on its trigger: see 99_workflows.sql) */
	if (oldrow != NULL && !on_customers && same_state(oldrow, newrow, desc))
		return PointerGetDatum(NULL);
	/*
	 * Workflows committed (or changed) by others since this transaction last
	 * took a new lock: a statement that does not name orders.workflows (a
	 * prepared one, a function's) would not process their invalidation.
	 */
	AcceptInvalidationMessages();
	if (!workflows_valid)
		orders_load_cache(load_workflows, &workflows_valid);
	if (workflow_count == 0)
		return PointerGetDatum(NULL);

	if (on_customers)
	{
		tags_now = row_tags(newrow, desc);
		tags_before = row_tags(oldrow, desc);
	}
	else
	{
		order_facts(newrow, desc, &now);
		if (oldrow)
			order_facts(oldrow, desc, &before);
	}
	run_ids = palloc(sizeof(pg_uuid_t) * workflow_count);
	run_events = palloc(sizeof(char *) * workflow_count);
	for (int i = 0; i < workflow_count; i++)
	{
		const Workflow *w = &workflows[i];
		StringInfoData event;

		if (w->on_tags != on_customers)
			continue;
		initStringInfo(&event);
		if (on_customers)
		{
			if (!tags_hold(tags_now, w->tag) || tags_hold(tags_before, w->tag))
				continue;
			appendStringInfoString(&event, "{\"event\":\"customer_tag\"");
			append_pair(&event, "tag_id", w->tag);
		}
		else
		{
			if (!order_state_meets(w, &now) || !order_passes(w, &now) ||
				(oldrow && order_state_meets(w, &before)))
				continue;
			appendStringInfoString(&event, "{\"event\":\"order_status\"");
			append_pair(&event, "status", now.status);
			append_pair(&event, "payment_status", now.payment);
			append_pair(&event, "previous_status", oldrow ? before.status : NULL);
			append_pair(&event, "previous_payment_status", oldrow ? before.payment : NULL);
		}
		appendStringInfoChar(&event, '}');
		run_ids[nrun] = w->id;
		run_events[nrun++] = event.data;
	}
	if (nrun == 0)
		return PointerGetDatum(NULL);

	row_id = SPI_getbinval(newrow, desc, SPI_fnumber(desc, "id"), &isnull);
	relid = orders_relid("workflows");
	orders_spi_connect_as_owner(relid, &saved);
	plan = orders_get_plan(PLAN_WORKFLOW_RUN, relid,
						   "SELECT orders.execute_workflow($1, $2, $3, $4::pg_catalog.jsonb)",
						   4, argtypes);
	for (int i = 0; i < nrun; i++)
	{
		Datum		args[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};

		args[0] = UUIDPGetDatum(&run_ids[i]);
		args[1] = row_id;
		args[2] = row_id;
		nulls[on_customers ? 1 : 2] = 'n';
		args[3] = CStringGetTextDatum(run_events[i]);
		orders_execute(plan, args, nulls, false, 0, SPI_OK_SELECT);
	}
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/*
 * orders.workflows_changed() — AFTER ... FOR EACH STATEMENT trigger on
 * orders.workflows: every backend drops its cached workflows once the
 * change commits (this one at once).
 */
Datum
orders_workflows_changed(PG_FUNCTION_ARGS)
{
	return orders_cache_changed(fcinfo, "workflows_changed");
}
