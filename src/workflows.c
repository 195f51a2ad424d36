/*
 * workflows.c — firing workflows from the changes themselves (issue 13).
 *
 *   AFTER INSERT, and AFTER UPDATE, on orders, REFERENCING ... FOR EACH
 *     STATEMENT EXECUTE FUNCTION orders.fire_order_workflows()
 *     (0.29.0; named to fire after the customers' statistics)
 *   AFTER INSERT, and AFTER UPDATE OF tags, on customers
 *     FOR EACH ROW EXECUTE FUNCTION orders.fire_workflows()
 *
 * An order_status workflow runs when an order comes to meet all its
 * conditions — status and payment status in its lists, its lifecycle, a
 * total of at least min_order_value — having not met them before the
 * change (or being new): a status change into the lists, and (0.29.0) the
 * items that raise a new order's total to the minimum.  Once per such
 * change, in the changing transaction, so the run commits or rolls back
 * with it; at the end of the statement, after the customers' statistics
 * moved, so that a step's condition reads them as they now are.  A
 * customer_tag workflow runs when its tag is added to a customer.  Each run is orders.execute_workflow(), called as the
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

#include "access/xact.h"
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
PG_FUNCTION_INFO_V1(orders_fire_order_workflows);
PG_FUNCTION_INFO_V1(orders_hold_order_workflows);
PG_FUNCTION_INFO_V1(orders_judge_order_workflows);
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

static void append_pair(StringInfo buf, const char *key, const char *value);

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
	char	   *value = SPI_getvalue(row, desc, orders_fnumber(desc, name));

	return value ? value : "";
}

/* order_facts — what the conditions read of an order row. */
static void
order_facts(HeapTuple row, TupleDesc desc, OrderFacts *f)
{
	f->status = text_column(row, desc, "status");
	f->payment = text_column(row, desc, "payment_status");
	f->lifecycle = text_column(row, desc, "lifecycle");
	f->total = SPI_getbinval(row, desc, orders_fnumber(desc, "total_amount"), &f->total_null);
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

/*
 * order_fires — does the change from "before" (NULL: a new order) to "now"
 * bring the order to meet all of the workflow's conditions?
 */
static bool
order_fires(const Workflow *w, const OrderFacts *now, const OrderFacts *before)
{
	return order_state_meets(w, now) && order_passes(w, now) &&
		!(before && order_state_meets(w, before) && order_passes(w, before));
}

/* order_event — the trigger_event of an order_status run (palloc'd JSON). */
static char *
order_event(const OrderFacts *now, const OrderFacts *before)
{
	StringInfoData event;

	initStringInfo(&event);
	appendStringInfoString(&event, "{\"event\":\"order_status\"");
	append_pair(&event, "status", now->status);
	append_pair(&event, "payment_status", now->payment);
	append_pair(&event, "previous_status", before ? before->status : NULL);
	append_pair(&event, "previous_payment_status", before ? before->payment : NULL);
	appendStringInfoChar(&event, '}');
	return event.data;
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
	value = SPI_getbinval(row, desc, orders_fnumber(desc, "tags"), &isnull);
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
		int			attnum = orders_fnumber(desc, columns[i]);
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

/* A run to start: its workflow, its order or customer, what fired it. */
typedef struct WorkflowRun
{
	pg_uuid_t	workflow;
	pg_uuid_t	row_id;			/* the order's or the customer's id */
	bool		on_customer;
	char	   *event;			/* trigger_event, JSON */
	const char *again_status;	/* (0.43.0) brought by the total alone: the */
	const char *again_payment;	/* statuses it ran in before, if it did; else NULL */
} WorkflowRun;

/*
 * add_order_runs — "runs" (a List of WorkflowRun *) with a run appended for
 * each order_status workflow, in creation order, that the change of order
 * "id" from "before" (NULL: a new order) to "now" brings it to meet.
 */
static List *
add_order_runs(List *runs, const pg_uuid_t *id, const OrderFacts *now, const OrderFacts *before)
{
	for (int i = 0; i < workflow_count; i++)
	{
		const Workflow *w = &workflows[i];
		WorkflowRun *run;

		if (w->on_tags || !order_fires(w, now, before))
			continue;
		run = palloc0(sizeof(WorkflowRun));
		run->workflow = w->id;
		run->row_id = *id;
		run->on_customer = false;
		run->event = order_event(now, before);
		/* the statuses met before too: the total alone rose to the minimum */
		run->again_status = before && order_state_meets(w, before) ? now->status : NULL;
		run->again_payment = now->payment;
		runs = lappend(runs, run);
	}
	return runs;
}

/*
 * ran_before — (0.43.0) has workflow "run" run for its order in the
 * statuses its total alone brought it to meet again (run->again_status)?
 * Then it does not run again: a customer who took an item out of its cart
 * and put it back fired the workflow — notifications to every manager, an
 * SMS to the phone it had just set — as often as it liked.  A change of
 * status or payment status into the lists still fires.  (As the owner.)
 */
static bool
ran_before(const WorkflowRun *run)
{
	static Oid	argtypes[4] = {UUIDOID, UUIDOID, TEXTOID, TEXTOID};
	SPIPlanPtr	plan;
	Datum		args[4];

	if (run->again_status == NULL)
		return false;			/* a change of statuses: no lookup */
	plan = orders_get_plan(PLAN_WORKFLOW_RAN_BEFORE, orders_relid("workflow_executions"),
						   "SELECT 1 FROM orders.workflow_executions e"
						   " WHERE e.order_id OPERATOR(pg_catalog.=) $2"
						   "   AND e.workflow_id OPERATOR(pg_catalog.=) $1"
						   "   AND (e.trigger_event OPERATOR(pg_catalog.->>) 'status') OPERATOR(pg_catalog.=) $3"
						   "   AND (e.trigger_event OPERATOR(pg_catalog.->>) 'payment_status') OPERATOR(pg_catalog.=) $4"
						   " LIMIT 1",
						   4, argtypes);
	args[0] = UUIDPGetDatum(&run->workflow);
	args[1] = UUIDPGetDatum(&run->row_id);
	args[2] = CStringGetTextDatum(run->again_status);
	args[3] = CStringGetTextDatum(run->again_payment);
	orders_execute(plan, args, NULL, true, 1, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/*
 * start_runs — run the WorkflowRuns of "runs" in their order, each by
 * orders.execute_workflow() as the owner of orders.workflows (but those
 * that ran_before).
 */
static void
start_runs(List *runs)
{
	static Oid	argtypes[4] = {UUIDOID, UUIDOID, UUIDOID, TEXTOID};
	OrdersSavedUser saved;
	Oid			relid = orders_relid("workflows");
	SPIPlanPtr	plan;

	ListCell   *lc;

	if (runs == NIL)
		return;
	orders_spi_connect_as_owner(relid, &saved);
	plan = orders_get_plan(PLAN_WORKFLOW_RUN, relid,
						   "SELECT orders.execute_workflow($1, $2, $3, $4::pg_catalog.jsonb)",
						   4, argtypes);
	foreach(lc, runs)
	{
		WorkflowRun *run = (WorkflowRun *) lfirst(lc);
		Datum		args[4];
		char		nulls[4] = {' ', ' ', ' ', ' '};

		if (ran_before(run))
			continue;

		args[0] = UUIDPGetDatum(&run->workflow);
		args[1] = UUIDPGetDatum(&run->row_id);
		args[2] = UUIDPGetDatum(&run->row_id);
		nulls[run->on_customer ? 1 : 2] = 'n';
		args[3] = CStringGetTextDatum(run->event);
		orders_execute(plan, args, nulls, false, 0, SPI_OK_SELECT);
	}
	orders_spi_finish_as(&saved);
}

/*
 * workflows_ready — the active workflows, loaded when the cache is stale;
 * false when none runs on "tags" (customer_tag) or on orders.  Workflows
 * committed (or changed) by others since this transaction last took a new
 * lock are seen: a statement that does not name orders.workflows (a
 * prepared one, a function's) would not process their invalidation.
 */
static bool
workflows_ready(bool tags)
{
	AcceptInvalidationMessages();
	if (!workflows_valid)
		orders_load_cache(load_workflows, &workflows_valid);
	for (int i = 0; i < workflow_count; i++)
		if (workflows[i].on_tags == tags)
			return true;
	return false;
}

/*
 * orders_workflows_watch_totals — has an active order_status workflow a
 * min_order_value?  Then a write of an order's total must fire the orders'
 * statement triggers (a direct write, direct_write.c, passes them over).
 * No, in a schema from before workflows (this library serves those too).
 */
bool
orders_workflows_watch_totals(void)
{
	AcceptInvalidationMessages();
	if (!workflows_valid)
	{
		if (!OidIsValid(orders_relid_if_exists("workflows")))
			return false;
		orders_load_cache(load_workflows, &workflows_valid);
	}
	for (int i = 0; i < workflow_count; i++)
		if (!workflows[i].on_tags && workflows[i].has_min)
			return true;
	return false;
}

/*
 * orders.fire_workflows() — AFTER INSERT OR UPDATE OF tags ON
 * orders.customers FOR EACH ROW: the customer_tag workflows of each tag the
 * change added, in the order they were created (collected first: a run may
 * invalidate the cache).  On orders.orders (the row triggers of a 0.28.0
 * schema this library still serves) the order_status workflows the change
 * brings the order to meet.
 */
Datum
orders_fire_workflows(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "fire_workflows",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	oldrow = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_trigtuple : NULL;
	HeapTuple	newrow = oldrow ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	bool		on_customers;
	OrderFacts	now;
	OrderFacts	before;
	Jsonb	   *tags_now = NULL;
	Jsonb	   *tags_before = NULL;
	List	   *runs = NIL;
	bool		isnull;
	pg_uuid_t  *row_id;

	if (orders_owner_loading(rel))
		return PointerGetDatum(NULL);
	on_customers = strcmp(RelationGetRelationName(rel), "customers") == 0;
	/* an order's UPDATE of neither status (no WHEN clause on its trigger) */
	if (oldrow != NULL && !on_customers && same_state(oldrow, newrow, desc))
		return PointerGetDatum(NULL);
	if (!workflows_ready(on_customers))
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
	row_id = DatumGetUUIDP(SPI_getbinval(newrow, desc, orders_typed_column(rel, "id", UUIDOID), &isnull));
	if (!on_customers)
		runs = add_order_runs(NIL, row_id, &now, oldrow ? &before : NULL);
	else
		for (int i = 0; i < workflow_count; i++)
		{
			const Workflow *w = &workflows[i];
			WorkflowRun *run;
			StringInfoData event;

			/*
			 * a customer_tag workflow without a tag (its check skipped: a
			 * load with triggers off) fires for none (0.37.0 library: its
			 * NULL tag crashed every change of a customer's tags)
			 */
			if (!w->on_tags || w->tag == NULL || !tags_hold(tags_now, w->tag) || tags_hold(tags_before, w->tag))
				continue;
			initStringInfo(&event);
			appendStringInfoString(&event, "{\"event\":\"customer_tag\"");
			append_pair(&event, "tag_id", w->tag);
			appendStringInfoChar(&event, '}');
			run = palloc0(sizeof(WorkflowRun));
			run->workflow = w->id;
			run->row_id = *row_id;
			run->on_customer = true;
			run->event = event.data;
			runs = lappend(runs, run);
		}
	start_runs(runs);
	return PointerGetDatum(NULL);
}

/*
 * A webhook's ingest in progress (orders.hold_order_workflows): the order it
 * writes in several statements — inserted, its items, its adjustment; its
 * items replaced — is judged once, at its end (orders.judge_order_workflows),
 * not on the totals it passes through on the way.  The subtransaction that
 * holds; InvalidSubTransactionId when nothing is held.
 */
static SubTransactionId held_subxact = InvalidSubTransactionId;
static bool held_callbacks = false;

/* held_subxact_end — a hold ends with its subtransaction's abort, moves up on its commit. */
static void
held_subxact_end(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	(void) arg;
	orders_follow_subxact(&held_subxact, event, mySubid, parentSubid);
}

/* held_xact_end — no transaction commits with its workflows held and never judged. */
static void
held_xact_end(XactEvent event, void *arg)
{
	(void) arg;
	if (held_subxact == InvalidSubTransactionId)
		return;
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("orders: order workflows were held by orders.hold_order_workflows and never judged"),
				 errhint("Call orders.judge_order_workflows for the order the hold was for.")));
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		held_subxact = InvalidSubTransactionId;
}

/*
 * orders.hold_order_workflows() — (0.29.0) until orders.judge_order_workflows
 * (or the abort of the calling subtransaction), the orders' statements start
 * no order_status run.  For webhook_ingest, which writes one order.
 */
Datum
orders_hold_order_workflows(PG_FUNCTION_ARGS)
{
	(void) fcinfo;
	if (held_subxact != InvalidSubTransactionId)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("orders: order workflows are held already"),
				 errhint("orders.hold_order_workflows holds for one ingest at a time; judge it first.")));
	if (!held_callbacks)
	{
		RegisterXactCallback(held_xact_end, NULL);
		RegisterSubXactCallback(held_subxact_end, NULL);
		held_callbacks = true;
	}
	held_subxact = GetCurrentSubTransactionId();
	PG_RETURN_VOID();
}

/*
 * orders.judge_order_workflows(order_id, status, payment_status, total) —
 * (0.29.0) ends a hold and runs, once each, the order_status workflows the
 * order now meets and did not meet with the given status, payment status
 * and total (all NULL: a new order).  The order is read as it is now.
 */
Datum
orders_judge_order_workflows(PG_FUNCTION_ARGS)
{
	static Oid	argtypes[1] = {UUIDOID};
	OrdersSavedUser saved;
	Oid			relid;
	SPIPlanPtr	plan;
	Datum		args[1];
	OrderFacts	now;
	OrderFacts	before;
	bool		is_new = PG_ARGISNULL(1) && PG_ARGISNULL(2) && PG_ARGISNULL(3);
	MemoryContext callcxt = CurrentMemoryContext;

	held_subxact = InvalidSubTransactionId;
	if (PG_ARGISNULL(0) || !workflows_ready(false))
		PG_RETURN_VOID();
	relid = orders_relid("orders");
	orders_spi_connect_as_owner(relid, &saved);
	plan = orders_get_plan(PLAN_WORKFLOW_ORDER_FACTS, relid,
						   "SELECT o.status, o.payment_status, o.lifecycle, o.total_amount"
						   " FROM orders.orders o WHERE o.id OPERATOR(pg_catalog.=) $1",
						   1, argtypes);
	args[0] = PG_GETARG_DATUM(0);
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		orders_spi_finish_as(&saved);
		PG_RETURN_VOID();
	}
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(callcxt);	/* outlives SPI_finish */

		order_facts(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &now);
		if (!now.total_null)
			now.total = datumCopy(now.total, false, -1);
		MemoryContextSwitchTo(oldcxt);
	}
	orders_spi_finish_as(&saved);

	before.status = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	before.payment = PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	before.lifecycle = now.lifecycle;
	before.total_null = PG_ARGISNULL(3);
	before.total = before.total_null ? (Datum) 0 : PG_GETARG_DATUM(3);
	start_runs(add_order_runs(NIL, DatumGetUUIDP(PG_GETARG_DATUM(0)), &now, is_new ? NULL : &before));
	PG_RETURN_VOID();
}

/* What fire_order_workflows reads of each row of a transition table. */
typedef struct OrderScan
{
	AttrNumber	id;
	AttrNumber	status;
	AttrNumber	payment;
	AttrNumber	lifecycle;
	AttrNumber	total;
	HTAB	   *before;			/* UPDATE: id -> OrderBefore */
	List	   *runs;			/* WorkflowRun * */
} OrderScan;

/* An order as a statement found it, by its id. */
typedef struct OrderBefore
{
	pg_uuid_t	id;
	OrderFacts	facts;
} OrderBefore;

/* slot_text — text column "attnum" of "slot" as a C string ("" when NULL). */
static char *
slot_text(TupleTableSlot *slot, AttrNumber attnum)
{
	bool		isnull;
	Datum		value = slot_getattr(slot, attnum, &isnull);

	return isnull ? "" : TextDatumGetCString(value);
}

/* slot_facts — what the conditions read of the order in "slot" (copied). */
static void
slot_facts(TupleTableSlot *slot, const OrderScan *scan, OrderFacts *f)
{
	Datum		total;

	f->status = slot_text(slot, scan->status);
	f->payment = slot_text(slot, scan->payment);
	f->lifecycle = slot_text(slot, scan->lifecycle);
	total = slot_getattr(slot, scan->total, &f->total_null);
	f->total = f->total_null ? (Datum) 0 : datumCopy(total, false, -1);
}

/* remember_before — an old row of the statement's, kept by its id. */
static void
remember_before(TupleTableSlot *slot, int sign, void *arg)
{
	OrderScan  *scan = (OrderScan *) arg;
	bool		isnull;
	OrderBefore *entry;

	(void) sign;
	entry = hash_search(scan->before, DatumGetUUIDP(slot_getattr(slot, scan->id, &isnull)),
						HASH_ENTER, NULL);
	slot_facts(slot, scan, &entry->facts);
}

/* same_facts — is the change from "a" to "b" none the conditions read? */
static bool
same_facts(const OrderFacts *a, const OrderFacts *b)
{
	if (strcmp(a->status, b->status) != 0 || strcmp(a->payment, b->payment) != 0 ||
		a->total_null != b->total_null)
		return false;
	return a->total_null || DatumGetBool(DirectFunctionCall2(numeric_eq, a->total, b->total));
}

/* judge_order — the runs the change of the order in "slot" starts. */
static void
judge_order(TupleTableSlot *slot, int sign, void *arg)
{
	OrderScan  *scan = (OrderScan *) arg;
	bool		isnull;
	pg_uuid_t  *id = DatumGetUUIDP(slot_getattr(slot, scan->id, &isnull));
	OrderBefore *before = NULL;
	OrderFacts	now;

	(void) sign;
	if (scan->before)
		before = hash_search(scan->before, id, HASH_FIND, NULL);
	slot_facts(slot, scan, &now);
	if (before && same_facts(&before->facts, &now))
		return;
	scan->runs = add_order_runs(scan->runs, id, &now, before ? &before->facts : NULL);
}

/*
 * orders.fire_order_workflows() — AFTER INSERT, and AFTER UPDATE,
 * REFERENCING ... FOR EACH STATEMENT on orders.orders (0.29.0): for each
 * order the statement brought to meet an order_status workflow's
 * conditions (see the file comment), one run, in the statement's row order
 * and the workflows' creation order.  Its triggers are named to fire after
 * the customers' statistics (AFTER statement triggers fire in name order).
 * With no active order_status workflow it costs a cache lookup.
 */
Datum
orders_fire_order_workflows(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "fire_order_workflows",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	OrderScan	scan;

	orders_require_transition_tables(trigdata, "fire_order_workflows");
	if (orders_owner_loading(rel) || held_subxact != InvalidSubTransactionId || !workflows_ready(false))
		return PointerGetDatum(NULL);

	scan.id = orders_typed_column(rel, "id", UUIDOID);
	scan.status = orders_fnumber(desc, "status");
	scan.payment = orders_fnumber(desc, "payment_status");
	scan.lifecycle = orders_fnumber(desc, "lifecycle");
	scan.total = orders_fnumber(desc, "total_amount");
	scan.before = NULL;
	scan.runs = NIL;
	if (trigdata->tg_oldtable)
	{
		scan.before = orders_delta_hash("orders workflow facts", sizeof(OrderBefore));
		orders_for_each_row(trigdata->tg_oldtable, desc, 0, remember_before, &scan);
	}
	orders_for_each_row(trigdata->tg_newtable, desc, 0, judge_order, &scan);
	start_runs(scan.runs);		/* collected first: a run may invalidate the cache */
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
