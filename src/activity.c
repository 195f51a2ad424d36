/*
 * activity.c — the activity log (issue 13): who changed what, one row of
 * orders.activity_logs per inserted, updated or deleted row of a tracked
 * table, with only the columns that changed.
 *
 *   CREATE TRIGGER orders_activity AFTER INSERT OR UPDATE OR DELETE ON tab
 *     FOR EACH ROW EXECUTE FUNCTION orders.track_changes();
 *
 * (orders.track_activity(regclass) creates it.)  The row is written as the
 * log's owner, with the actor taken from the caller's identity before the
 * switch, so no caller can write or forge a row.  Nothing is logged while
 * the owner loads data with COPY FROM (pg_restore: the log rows are restored
 * with the data).
 */
#include "orders.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/syscache.h"
#include "utils/memutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(orders_track_changes);

/* orders_push_json_string — a JSON string (or an object key, "seq" WJB_KEY) of "str". */
void
orders_push_json_string(JsonbParseState **state, JsonbIteratorToken seq, const char *str)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) str;
	v.val.string.len = strlen(str);
	pushJsonbValue(state, seq, &v);
}

/*
 * How the values of one type become JSON: booleans and finite numbers as
 * JSON's, json and jsonb as their documents, anything else — timestamps
 * and arrays too — as the string of its text output (where to_jsonb would
 * write ISO 8601 and JSON arrays: the log's format since 0.9.0), made
 * without writing and parsing JSON text.
 */
typedef struct JsonColumn
{
	Oid			base;			/* the type, a domain's base type */
	bool		varlena;		/* of variable length (text, json, arrays, ...) */
	FmgrInfo	out;			/* its output function */
} JsonColumn;

/* json_column — how values of "typid" become JSON (lookups made once, "out" in "cxt"). */
static void
json_column(JsonColumn *c, Oid typid, MemoryContext cxt)
{
	Oid			outfn;
	bool		varlena;

	c->base = getBaseType(typid);
	getTypeOutputInfo(typid, &outfn, &varlena);
	c->varlena = varlena;
	fmgr_info_cxt(outfn, &c->out, cxt);
}

/* push_json_numeric — the number "n" as the value of the object being built. */
static void
push_json_numeric(JsonbParseState **state, Numeric n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = n;
	pushJsonbValue(state, WJB_VALUE, &v);
}

/* push_json_column — "value" (of the column "c" describes) as the value of the object being built. */
static void
push_json_column(JsonbParseState **state, Datum value, JsonColumn *c)
{
	JsonbValue	v;
	Jsonb	   *doc;
	Numeric		n;
	char	   *text;

	switch (c->base)
	{
		case BOOLOID:
			v.type = jbvBool;
			v.val.boolean = DatumGetBool(value);
			pushJsonbValue(state, WJB_VALUE, &v);
			return;
		case INT2OID:
			push_json_numeric(state, int64_to_numeric(DatumGetInt16(value)));
			return;
		case INT4OID:
			push_json_numeric(state, int64_to_numeric(DatumGetInt32(value)));
			return;
		case INT8OID:
			push_json_numeric(state, int64_to_numeric(DatumGetInt64(value)));
			return;
		case NUMERICOID:
			n = DatumGetNumeric(value);
			/* NaN and the infinities are no JSON numbers: their text */
			if (numeric_is_nan(n) || numeric_is_inf(n))
				break;
			push_json_numeric(state, n);
			return;
		case FLOAT4OID:
		case FLOAT8OID:
			text = OutputFunctionCall(&c->out, value);
			if (strpbrk(text, "NIni") != NULL)	/* NaN, Infinity */
				break;
			push_json_numeric(state, DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(text),
																		 ObjectIdGetDatum(InvalidOid),
																		 Int32GetDatum(-1))));
			return;
		case JSONOID:
		case JSONBOID:
			if (c->base == JSONBOID)
				doc = DatumGetJsonbP(value);
			else
				doc = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														 CStringGetDatum(OutputFunctionCall(&c->out, value))));
			if (JB_ROOT_IS_SCALAR(doc))
				JsonbExtractScalar(&doc->root, &v);
			else
			{
				v.type = jbvBinary;
				v.val.binary.data = &doc->root;
				v.val.binary.len = VARSIZE(doc) - VARHDRSZ;
			}
			pushJsonbValue(state, WJB_VALUE, &v);
			return;
		default:
			break;
	}
	orders_push_json_string(state, WJB_VALUE, OutputFunctionCall(&c->out, value));
}

/*
 * orders_push_json_value — "value" of type "typid" as the value of the
 * object being built, as push_json_column makes it (the type looked up for
 * this one value).
 */
void
orders_push_json_value(JsonbParseState **state, Datum value, Oid typid)
{
	JsonColumn	c;

	json_column(&c, typid, CurrentMemoryContext);
	push_json_column(state, value, &c);
}

/*
 * The largest value the log keeps whole, in bytes (0.37.0): every update
 * of a customer's 9.6 MB notes wrote 19 MB of log, kept for a year.
 */
#define LOGGED_VALUE_MAX 4096

/*
 * push_logged_value — "value" (of the column "c" describes) as a logged
 * value: as push_json_column makes it, or, when its text is longer than
 * LOGGED_VALUE_MAX bytes, the string of that text's first LOGGED_VALUE_MAX
 * bytes (whole characters) followed by "... (N bytes, hash H)", N the
 * text's size and H a 64-bit hash of it (two values that differ past the
 * cut are told apart).  Text, json and jsonb are judged by their stored
 * size first (their text is about as long: it is not made twice for a
 * short value); other types of variable length — bytea, arrays — by their
 * text, which the log writes anyway (an array of NULLs has a text 40
 * times its stored size).
 */
static void
push_logged_value(JsonbParseState **state, Datum value, JsonColumn *c)
{
	bool		text_sized = c->base == TEXTOID || c->base == VARCHAROID || c->base == BPCHAROID ||
		c->base == JSONOID || c->base == JSONBOID || c->base == NUMERICOID;
	char	   *text;
	size_t		len;
	StringInfoData cut;

	if (!c->varlena || (text_sized && toast_raw_datum_size(value) <= LOGGED_VALUE_MAX))
	{
		push_json_column(state, value, c);
		return;
	}
	text = OutputFunctionCall(&c->out, value);
	len = strlen(text);
	if (len <= LOGGED_VALUE_MAX)
	{
		if (text_sized)
			push_json_column(state, value, c);
		else
			orders_push_json_string(state, WJB_VALUE, text);	/* as push_json_column would */
		return;
	}
	initStringInfo(&cut);
	appendBinaryStringInfo(&cut, text, pg_mbcliplen(text, len, LOGGED_VALUE_MAX));
	appendStringInfo(&cut, "... (%zu bytes, hash %016" INT64_MODIFIER "x)", len,
					 DatumGetUInt64(hash_bytes_extended((const unsigned char *) text, (int) len, 0)));
	orders_push_json_string(state, WJB_VALUE, cut.data);
}

/* secret_column — a column whose values the log must not hold (webhook
 * secrets, token hashes, passwords): its changes are logged as redacted. */
static bool
secret_column(const char *name)
{
	size_t		len = strlen(name);

	return strcmp(name, "secret") == 0 || strstr(name, "password") != NULL ||
		(len > 5 && strcmp(name + len - 5, "_hash") == 0);
}

/*
 * A change's old and new row (either may be missing: an insert or a
 * delete), each taken apart once — heap_getattr per column is quadratic.
 */
typedef struct RowPair
{
	bool		has_old;
	bool		has_new;
	Datum	   *oldvals;
	Datum	   *newvals;
	bool	   *oldnulls;
	bool	   *newnulls;
} RowPair;

/* deform_rows — "oldrow" and "newrow" (either may be NULL) taken apart. */
static void
deform_rows(RowPair *r, TupleDesc desc, HeapTuple oldrow, HeapTuple newrow)
{
	r->has_old = oldrow != NULL;
	r->has_new = newrow != NULL;
	r->oldvals = palloc(sizeof(Datum) * desc->natts);
	r->newvals = palloc(sizeof(Datum) * desc->natts);
	r->oldnulls = palloc(sizeof(bool) * desc->natts);
	r->newnulls = palloc(sizeof(bool) * desc->natts);
	if (oldrow)
		heap_deform_tuple(oldrow, desc, r->oldvals, r->oldnulls);
	else
		memset(r->oldnulls, true, sizeof(bool) * desc->natts);
	if (newrow)
		heap_deform_tuple(newrow, desc, r->newvals, r->newnulls);
	else
		memset(r->newnulls, true, sizeof(bool) * desc->natts);
}

/*
 * value_changed — does column "i"'s value differ between the rows (an
 * insert or a delete: is it non-null)?
 */
static bool
value_changed(const RowPair *r, TupleDesc desc, int i)
{
	Form_pg_attribute att = TupleDescAttr(desc, i);

	if (r->oldnulls[i] && r->newnulls[i])
		return false;
	return !(r->has_old && r->has_new && r->oldnulls[i] == r->newnulls[i] &&
			 datumIsEqual(r->oldvals[i], r->newvals[i], att->attbyval, att->attlen));
}

/*
 * unlogged_column — a column the log leaves out: updated_at (every change
 * moves it) and orders.orders.stock_held (0.30.0; the stock's own ledger,
 * which follows the status and the items the log shows).
 */
static bool
unlogged_column(Form_pg_attribute att)
{
	return strcmp(NameStr(att->attname), "updated_at") == 0 ||
		strcmp(NameStr(att->attname), "stock_held") == 0;
}

/*
 * column_changed — does column "i" belong in the log's changes: not dropped,
 * not left out (unlogged_column), and its value changed?
 */
static bool
column_changed(const RowPair *r, TupleDesc desc, int i)
{
	Form_pg_attribute att = TupleDescAttr(desc, i);

	/* the comparison first: most columns of a change did not change */
	return !att->attisdropped && value_changed(r, desc, i) && !unlogged_column(att);
}

/*
 * What the log keeps of a tracked table (tracked_shape), per backend: the
 * columns it may log (not dropped, not updated_at) in the order jsonb sorts
 * an object's keys — by length, then bytes: pushed in that order, a row's
 * changes need no sorting —, whether each is a secret and how each becomes
 * JSON, the "id" column, and whether the table is the extension's (its
 * entity_type unqualified).  Kept while orders_direct_generation() is
 * unchanged: no relcache invalidation (ALTER TABLE of any kind, DROP) and
 * no change of a function or type (an output function replaced) since.
 */
typedef struct LoggedColumn
{
	int			att;			/* index in the table's descriptor */
	const char *name;
	int			namelen;
	bool		secret;
	JsonColumn	json;
} LoggedColumn;

typedef struct TrackedShape
{
	Oid			relid;			/* hash key */
	bool		built;			/* false: nothing kept yet */
	uint64		generation;		/* orders_direct_generation() it was computed at */
	MemoryContext cxt;			/* what the entry holds */
	int			ncolumns;
	LoggedColumn *columns;		/* in jsonb's key order */
	LoggedColumn *id;			/* the "id" column among them, or NULL */
	bool		in_orders;		/* a table of the extension's schema */
	int			status_att;		/* orders.orders: its status (index in the descriptor), else -1 */
	int			lifecycle_att;	/* ... and its lifecycle */
	char		audit_enabled;	/* ... its status_audit trigger's tgenabled ('D': none) */
	bool		audit_any_update;	/* ... which fires on every UPDATE (0.31.0), not UPDATE OF status */
} TrackedShape;

static HTAB *shapes = NULL;

/*
 * status_audit_enabled — tgenabled of the extension's status_audit trigger
 * on "rel" (the trigger of that name calling orders.status_audit), or
 * TRIGGER_DISABLED when there is none; "*any_update": it fires on every
 * UPDATE (0.31.0), not only on one naming status (UPDATE OF status).
 */
static char
status_audit_enabled(Relation rel, bool *any_update)
{
	TriggerDesc *trig = rel->trigdesc;
	Oid			fn = LookupFuncName(list_make2(makeString(ORDERS_SCHEMA), makeString("status_audit")), 0, NULL, true);

	*any_update = false;
	for (int i = 0; trig != NULL && i < trig->numtriggers; i++)
		if (strcmp(trig->triggers[i].tgname, "status_audit") == 0 && trig->triggers[i].tgfoid == fn)
		{
			*any_update = trig->triggers[i].tgnattr == 0;
			return trig->triggers[i].tgenabled;
		}
	return TRIGGER_DISABLED;
}

/* key_order — qsort comparator: jsonb's order of object keys (length, then bytes). */
static int
key_order(const void *a, const void *b)
{
	const LoggedColumn *x = a;
	const LoggedColumn *y = b;

	if (x->namelen != y->namelen)
		return x->namelen < y->namelen ? -1 : 1;
	return memcmp(x->name, y->name, x->namelen);
}

/*
 * tracked_shape — what the log keeps of "rel" (opened), computed once per
 * backend and again after an invalidation (one arriving while it is
 * computed makes it count as stale at the next use).  The entry is
 * computed again in place: its user must be done with it before anything
 * that could run a trigger (orders_track_changes is: between the lookup
 * and the last use run only C output functions, catalog and index reads
 * and SELECTs — the actor's staff row, the lifecycle graph, a deleted
 * order's history — which fire no trigger).
 */
static TrackedShape *
tracked_shape(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			relid = RelationGetRelid(rel);
	uint64		generation = orders_direct_generation();
	TrackedShape *sh;
	MemoryContext old;
	bool		found;

	if (shapes == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TrackedShape);
		ctl.hcxt = CacheMemoryContext;
		shapes = hash_create("orders tracked tables", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	sh = hash_search(shapes, &relid, HASH_ENTER, &found);
	if (!found)
	{
		sh->built = false;
		sh->cxt = NULL;
	}
	else if (sh->built && sh->generation == generation)
		return sh;
	if (sh->cxt == NULL)
		sh->cxt = AllocSetContextCreate(CacheMemoryContext, "orders tracked table", ALLOCSET_SMALL_SIZES);
	MemoryContextReset(sh->cxt);
	sh->built = false;
	old = MemoryContextSwitchTo(sh->cxt);
	sh->columns = palloc(sizeof(LoggedColumn) * desc->natts);
	sh->ncolumns = 0;
	sh->id = NULL;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		LoggedColumn *c;

		if (att->attisdropped)
			continue;
		if (unlogged_column(att))
			continue;
		c = &sh->columns[sh->ncolumns++];
		c->att = i;
		c->name = pstrdup(NameStr(att->attname));
		c->namelen = strlen(c->name);
		c->secret = secret_column(c->name);
		json_column(&c->json, att->atttypid, sh->cxt);
	}
	qsort(sh->columns, sh->ncolumns, sizeof(LoggedColumn), key_order);
	for (int k = 0; k < sh->ncolumns; k++)
		if (strcmp(sh->columns[k].name, "id") == 0)
			sh->id = &sh->columns[k];
	sh->in_orders = RelationGetNamespace(rel) == get_namespace_oid(ORDERS_SCHEMA, false);
	sh->status_att = sh->lifecycle_att = -1;
	sh->audit_enabled = TRIGGER_DISABLED;
	sh->audit_any_update = false;
	if (relid == orders_relid("orders"))
	{
		sh->status_att = orders_fnumber(desc, "status") - 1;
		sh->lifecycle_att = orders_fnumber(desc, "lifecycle") - 1;
		if (sh->status_att < 0 || sh->lifecycle_att < 0)
			sh->status_att = sh->lifecycle_att = -1;
		sh->audit_enabled = status_audit_enabled(rel, &sh->audit_any_update);
	}
	MemoryContextSwitchTo(old);
	sh->generation = generation;
	sh->built = true;
	return sh;
}

/*
 * changes_jsonb — {"changes": {"col": {"old": …, "new": …}, …}} for the
 * columns column_changed names, secrets' values replaced by "(redacted)",
 * and "history": "history" when it is not NULL (a deleted order's status
 * changes); "*n" gets the number of columns in it.  Keys are pushed in
 * jsonb's order.
 */
static Jsonb *
changes_jsonb(TrackedShape *shape, TupleDesc desc, const RowPair *r, int *n, Jsonb *history)
{
	JsonbParseState *state = NULL;
	JsonbValue	null = {.type = jbvNull};
	JsonbValue *doc;

	*n = 0;
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	orders_push_json_string(&state, WJB_KEY, "changes");
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int k = 0; k < shape->ncolumns; k++)
	{
		LoggedColumn *c = &shape->columns[k];
		int			i = c->att;

		if (!value_changed(r, desc, i))
			continue;
		(*n)++;
		orders_push_json_string(&state, WJB_KEY, c->name);
		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		orders_push_json_string(&state, WJB_KEY, "new");
		if (r->newnulls[i])
			pushJsonbValue(&state, WJB_VALUE, &null);
		else if (c->secret)
			orders_push_json_string(&state, WJB_VALUE, "(redacted)");
		else
			push_logged_value(&state, r->newvals[i], &c->json);
		orders_push_json_string(&state, WJB_KEY, "old");
		if (r->oldnulls[i])
			pushJsonbValue(&state, WJB_VALUE, &null);
		else if (c->secret)
			orders_push_json_string(&state, WJB_VALUE, "(redacted)");
		else
			push_logged_value(&state, r->oldvals[i], &c->json);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	if (history != NULL)
	{
		JsonbValue	v;

		orders_push_json_string(&state, WJB_KEY, "history");
		v.type = jbvBinary;
		v.val.binary.data = &history->root;
		v.val.binary.len = VARSIZE(history) - VARHDRSZ;
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	doc = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(doc);
}

/*
 * derived_write — is this UPDATE a derived write of the extension
 * (orders_derived: a counter, balance or sum kept from other rows —
 * customer statistics, delivered leads, stock moved by an order, an order's
 * subtotal and total, a group's site counts) that changed nothing but the
 * columns it keeps (generated columns, which follow, aside)?  Its cause is
 * logged where it happens (the status change) or is a row of its own (a
 * lead, an item): the log leaves the consequence out.  Another column
 * changed on the way (a trigger, a nested statement of a DBA's trigger), or
 * the same columns written by anybody else, are logged.
 */
static bool
derived_write(Relation rel, TupleDesc desc, const RowPair *r)
{
	const OrdersDerived *derived = orders_derived;

	if (derived == NULL || derived->rel != RelationGetRelid(rel))
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		const char *const *c;

		if (TupleDescAttr(desc, i)->attgenerated || !column_changed(r, desc, i))
			continue;
		for (c = derived->columns; *c != NULL; c++)
			if (strcmp(*c, NameStr(TupleDescAttr(desc, i)->attname)) == 0)
				break;
		if (*c == NULL)
			return false;
	}
	return true;
}

/* unchanged — column "att" (of "desc", or -1) counts as unchanged in "r". */
static void
unchanged(RowPair *r, TupleDesc desc, int att)
{
	if (att < 0 || att >= desc->natts)
		return;
	r->newvals[att] = r->oldvals[att];
	r->newnulls[att] = r->oldnulls[att];
}

/* audit_fires — does status_audit (tgenabled "enabled") fire in this session's replication role? */
static bool
audit_fires(char enabled)
{
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
		return enabled == TRIGGER_FIRES_ON_REPLICA || enabled == TRIGGER_FIRES_ALWAYS;
	return enabled == TRIGGER_FIRES_ON_ORIGIN || enabled == TRIGGER_FIRES_ALWAYS;
}

/*
 * history_takes_every_row — does orders.order_history keep every row
 * status_audit writes: a plain table, no rule, no BEFORE INSERT row trigger
 * (history.c: a DBA's may skip the row)?  Looked at again after any
 * relcache invalidation (orders_direct_generation), else remembered.
 */
static bool
history_takes_every_row(void)
{
	static bool known = false;
	static uint64 known_at;
	static bool every;
	uint64		generation = orders_direct_generation();
	Relation	h;

	if (known && known_at == generation)
		return every;
	h = table_open(orders_relid("order_history"), AccessShareLock);
	every = h->rd_rel->relkind == RELKIND_RELATION && h->rd_rules == NULL &&
		!(h->trigdesc && h->trigdesc->trig_insert_before_row);
	table_close(h, AccessShareLock);
	/* kept unless an invalidation came meanwhile */
	known = generation == orders_direct_generation();
	known_at = generation;
	return every;
}

/* same_value — is column "att" (of "desc", or -1) of "r"'s new row "value" (not null)? */
static bool
same_value(const RowPair *r, TupleDesc desc, int att, Datum value)
{
	Form_pg_attribute a;

	if (att < 0 || att >= desc->natts || r->newnulls[att])
		return false;
	a = TupleDescAttr(desc, att);
	/* by content: a stored text has a short header, a made one not */
	return datum_image_eq(r->newvals[att], value, a->attbyval, a->attlen);
}

/*
 * status_change — did this UPDATE of orders.orders change the status in a
 * way status_audit sees: any change once it fires on every UPDATE (0.31.0);
 * while it is an UPDATE OF status trigger (a 0.30.0 schema), only one named
 * in the SET list — a status a BEFORE trigger set does not fire it.
 */
static bool
status_change(TriggerData *trigdata, TrackedShape *shape, const RowPair *r)
{
	int			status = shape->status_att;

	return status >= 0 && value_changed(r, RelationGetDescr(trigdata->tg_relation), status) &&
		!r->oldnulls[status] && !r->newnulls[status] && !r->newnulls[shape->lifecycle_att] &&
		(shape->audit_any_update ||
		 bms_is_member(status + 1 - FirstLowInvalidHeapAttributeNumber, trigdata->tg_updatedcols));
}

/*
 * leave_status_to_history — a status change (status_change) by "actor", who
 * is no staff member, without a client address (a DBA, a job, an
 * application over SQL, a customer's request through no proxy) (0.31.0):
 * its order_history row holds what the log's row would — the order, the
 * old and new status, the actor, the transaction's time — so the log
 * leaves out the status and the stamps its edge sets as status_guard sets
 * them (the edge's stamp column and the gate's stamp: the transaction's
 * start; the gate's actor column: the actor); any other column changed
 * with it, a stamp of another value among them, is logged as before.  Only
 * while the change does reach history as this actor's (status_change):
 * status_audit fires in this session's replication role, history keeps every row it is given
 * (history_takes_every_row), and no change the extension makes on its own
 * behalf, under an actor of its own, is pending (a campaign completing
 * itself).  An order's history rows go with it when it is deleted: its
 * deleted row then holds them (deleted_history).
 */
static void
leave_status_to_history(TriggerData *trigdata, TrackedShape *shape, RowPair *r, const char *actor)
{
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	int			status = shape->status_att;
	const LifecycleState *from;
	const LifecycleEdge *edge = NULL;
	Datum		started = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	if (!audit_fires(shape->audit_enabled) ||
		(shape->id != NULL && !r->newnulls[shape->id->att] &&
		 orders_pending_change_actor(DatumGetUUIDP(r->newvals[shape->id->att])) != NULL) ||
		!history_takes_every_row())
		return;
	from = lifecycle_find_state(TextDatumGetCString(r->newvals[shape->lifecycle_att]),
								TextDatumGetCString(r->oldvals[status]));
	if (from != NULL)
		edge = lifecycle_edge(from, TextDatumGetCString(r->newvals[status]));
	if (edge != NULL)
	{
		int			att;

		if (edge->stamp_column != NULL &&
			same_value(r, desc, att = orders_fnumber(desc, edge->stamp_column) - 1, started))
			unchanged(r, desc, att);
		if (edge->gate_stamp != NULL &&
			same_value(r, desc, att = orders_fnumber(desc, edge->gate_stamp) - 1, started))
			unchanged(r, desc, att);
		if (edge->gate_actor != NULL &&
			same_value(r, desc, att = orders_fnumber(desc, edge->gate_actor) - 1, CStringGetTextDatum(actor)))
			unchanged(r, desc, att);
	}
	unchanged(r, desc, status);
}

/*
 * The most of a deleted order's history its log row keeps (0.42.0
 * library): its latest changes, notes whole (at most 10,000 characters
 * each: 10 MB in all).  A customer moving its own review order back and
 * forth 27,000 times with 10,000-character notes made an order nobody
 * could delete (the array passed jsonb's 256 MB), and 20,000 times a log
 * row that printed as 1.2 GB (pg_dump failed on it for the year it is
 * kept).
 */
#define ORDERS_DELETED_HISTORY_MAX 1000

/*
 * deleted_history — the order_history rows of the order "order_id" that
 * this DELETE removes with it (its foreign key cascades, before this
 * trigger fires), as a jsonb array in id order — the latest
 * ORDERS_DELETED_HISTORY_MAX, after {"earlier_changes_omitted": n} when
 * there were more —
 * or NULL for none: read as
 * the history's owner with the latest snapshot set back to the DELETE's
 * command — as the cascade found them (at READ COMMITTED it reads the
 * latest: a change committed while the DELETE waited is among them), and
 * still seeing what the cascade, a later command, removed.  The order's
 * deleted row keeps them: since 0.31.0 some status changes are recorded
 * only there.
 */
static Jsonb *
deleted_history(Datum order_id)
{
	static Oid	argtypes[1] = {UUIDOID};
	Oid			history = orders_relid("order_history");
	MemoryContext cxt = CurrentMemoryContext;
	OrdersSavedUser saved;
	SPIPlanPtr	plan;
	CommandId	cid;
	Jsonb	   *result = NULL;
	bool		isnull;
	Datum		d;

	if (!ActiveSnapshotSet())
		return NULL;
	cid = GetActiveSnapshot()->curcid;
	PushCopiedSnapshot(GetLatestSnapshot());
	GetActiveSnapshot()->curcid = cid;	/* our copy: as UpdateActiveSnapshotCommandId does */
	orders_switch_to_owner(history, &saved);
	orders_spi_connect();
	plan = orders_get_plan(PLAN_ACTIVITY_HISTORY, history,
						   "SELECT CASE WHEN pg_catalog.max(h.total) OPERATOR(pg_catalog.>) " CppAsString2(ORDERS_DELETED_HISTORY_MAX)
						   "            THEN pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('earlier_changes_omitted',"
						   "                 pg_catalog.max(h.total) OPERATOR(pg_catalog.-) " CppAsString2(ORDERS_DELETED_HISTORY_MAX) "))"
						   "            ELSE '[]' END"
						   "       OPERATOR(pg_catalog.||) pg_catalog.jsonb_agg(pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object("
						   "'old_status', h.old_status, 'new_status', h.new_status, 'changed_by', h.changed_by,"
						   " 'notes', h.notes, 'created_at', h.created_at)) ORDER BY h.id)"
						   "  FROM (SELECT x.*, pg_catalog.count(*) OVER () AS total FROM orders.order_history x"
						   "         WHERE x.order_id OPERATOR(pg_catalog.=) $1"
						   "         ORDER BY x.id DESC LIMIT " CppAsString2(ORDERS_DELETED_HISTORY_MAX) ") h",
						   1, argtypes);
	orders_execute_as_of(plan, &order_id, NULL, SPI_OK_SELECT, GetActiveSnapshot());
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
	{
		MemoryContext spi = MemoryContextSwitchTo(cxt);	/* past SPI_finish */

		result = DatumGetJsonbPCopy(d);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	orders_restore_user(&saved);
	PopActiveSnapshot();
	return result;
}

/* row_id — the text of the row's "id" column (of the deformed values "vals"), or NULL. */
static char *
row_id(TrackedShape *shape, const Datum *vals, const bool *nulls)
{
	if (shape->id == NULL || nulls[shape->id->att])
		return NULL;
	return OutputFunctionCall(&shape->id->json.out, vals[shape->id->att]);
}

/*
 * forwarded_for — the last address of the X-Forwarded-For header in
 * PostgREST's request.headers document (spaces trimmed, at most 64
 * characters), or NULL: (0.29.0) the one the proxy in front of PostgREST
 * appended — the addresses before it are whatever the client sent (the
 * first one was logged before, and any client could name any address).  A
 * document that is no JSON is refused (22P02), as the SQL cast did before
 * 0.11.0.
 */
static char *
forwarded_for(const char *headers)
{
	Jsonb	   *jb;
	JsonbValue	v;
	char	   *first;
	char	   *comma;
	int			len;

	if (headers == NULL || headers[0] == '\0')
		return NULL;
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(headers)));
	if (!JB_ROOT_IS_OBJECT(jb) ||
		getKeyJsonValueFromContainer(&jb->root, "x-forwarded-for", 15, &v) == NULL ||
		v.type != jbvString)
		return NULL;
	first = pnstrdup(v.val.string.val, v.val.string.len);
	if ((comma = strrchr(first, ',')) != NULL)
		first = comma + 1;
	while (*first == ' ')
		first++;
	len = strlen(first);
	while (len > 0 && first[len - 1] == ' ')
		first[--len] = '\0';
	first[pg_mbcharcliplen(first, len, 64)] = '\0';
	return first;
}

/* The columns of orders.activity_logs (sql/schema/99_activity.sql). */
typedef enum LogColumn
{
	LOG_ID, LOG_USER_ID, LOG_ACTOR, LOG_ACTION, LOG_ENTITY_TYPE, LOG_ENTITY_ID,
	LOG_DETAILS, LOG_IP_ADDRESS, LOG_CREATED_AT, LOG_NCOLUMNS
} LogColumn;
static const char *const log_columns[LOG_NCOLUMNS] = {
	"id", "user_id", "actor", "action", "entity_type", "entity_id", "details", "ip_address", "created_at"
};
static const Oid log_types[LOG_NCOLUMNS] = {
	UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID
};

/*
 * log_as_installed — is the log table as the extension made it (details a
 * jsonb or a domain over it, checked here)?  Then a row can go in directly;
 * "pos" gets each column's position.  Anything else a DBA made of it (a
 * partitioned log, more columns with their defaults, rules, statement
 * triggers, a column of another type) takes the INSERT statement.
 */
static bool
log_as_installed(Relation rel, int *pos)
{
	return orders_direct_as_installed(rel, log_columns, log_types, LOG_NCOLUMNS, LOG_DETAILS, pos);
}

/*
 * What domain_check keeps of the details' domain (its checks, kept current
 * by the type cache when the domain changes), for every row of the backend
 * — it outlives transactions; a new domain (the extension made again) gets
 * a state of its own.
 */
static void *details_domain = NULL;
static Oid	details_domain_type = InvalidOid;

/*
 * insert_direct — the row into "rel" (as installed: log_as_installed) the
 * way logical replication's apply worker inserts (no SQL, no plan): the
 * details' domain checked, the table's CHECK constraints and NOT NULLs, its
 * indexes updated, its row triggers fired — among them the foreign key's
 * check of user_id, run when the AFTER triggers queued here fire at the end
 * (for a row without a user_id, when that check is the log's only row
 * INSERT trigger, nothing is queued: orders_direct_fk_only).
 */
static void
insert_direct(Relation rel, const int *pos, Datum *values, bool *isnull)
{
	Form_pg_attribute details = TupleDescAttr(RelationGetDescr(rel), pos[LOG_DETAILS]);
	/*
	 * the log's row INSERT triggers, as installed, are only the check of
	 * user_id's foreign key: it passes a NULL key without looking
	 * (ri_triggers.c, ri_NullCheck), so queueing it is all it would cost
	 */
	bool		no_triggers = isnull[LOG_USER_ID] && orders_direct_fk_only(rel, pos[LOG_USER_ID] + 1, InvalidOid);
	Datum	   *row_values = palloc0(sizeof(Datum) * RelationGetDescr(rel)->natts);
	bool	   *row_isnull = palloc(sizeof(bool) * RelationGetDescr(rel)->natts);

	if (details->atttypid != JSONBOID)
	{
		/* another domain (the extension made again): state of its own */
		if (details->atttypid != details_domain_type)
			details_domain = NULL;
		details_domain_type = details->atttypid;
		domain_check(values[LOG_DETAILS], false, details->atttypid, &details_domain, CacheMemoryContext);
	}
	memset(row_isnull, true, sizeof(bool) * RelationGetDescr(rel)->natts);
	for (int c = 0; c < LOG_NCOLUMNS; c++)
	{
		row_values[pos[c]] = values[c];
		row_isnull[pos[c]] = isnull[c];
	}
	orders_direct_insert(rel, row_values, row_isnull, !no_triggers);
}

/*
 * insert_statement — the row by an INSERT statement (a kept plan): for a
 * log table a DBA changed (partitioned, more columns, rules, statement
 * triggers), which the executor serves as any insert.
 */
static void
insert_statement(Oid log_rel, Datum *values, bool *isnull)
{
	static Oid	argtypes[LOG_NCOLUMNS] = {
		UUIDOID, UUIDOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TIMESTAMPTZOID
	};
	char		nulls[LOG_NCOLUMNS];
	SPIPlanPtr	plan;

	for (int c = 0; c < LOG_NCOLUMNS; c++)
		nulls[c] = isnull[c] ? 'n' : ' ';
	orders_spi_connect();
	plan = orders_get_plan(PLAN_ACTIVITY_INSERT, log_rel,
						   "INSERT INTO orders.activity_logs"
						   " (id, user_id, actor, action, entity_type, entity_id, details, ip_address, created_at)"
						   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
						   LOG_NCOLUMNS, argtypes);
	orders_execute(plan, values, nulls, false, 0, SPI_OK_INSERT);
	SPI_finish();
}

/* insert_log_row — one row of orders.activity_logs (by LogColumn), as its owner. */
static void
insert_log_row(Datum *values, bool *isnull)
{
	Oid			log_rel = orders_relid("activity_logs");
	OrdersSavedUser saved;
	Relation	rel;
	int			pos[LOG_NCOLUMNS];

	orders_switch_to_owner(log_rel, &saved);
	rel = table_open(log_rel, RowExclusiveLock);
	if (log_as_installed(rel, pos))
		insert_direct(rel, pos, values, isnull);
	else
		insert_statement(log_rel, values, isnull);
	table_close(rel, NoLock);
	orders_restore_user(&saved);
}

/*
 * who — the change's actor (orders_current_actor), the client address
 * PostgREST saw (forwarded_for) when the caller's claims are believed, and
 * whether the actor is a staff member ("*staff", their id in "staff_id").
 * In the caller's context: before any switch to an owner.
 */
static void
who(char **actor, char **address, bool *staff, pg_uuid_t *staff_id)
{
	pg_uuid_t	account;
	bool		may_be_account;

	/* one derivation of the actor for its label and its account (orders_current_account's rule) */
	*actor = pstrdup(orders_current_actor_from(&may_be_account));
	*address = orders_claims_trusted() ? forwarded_for(GetConfigOption("request.headers", true, false)) : NULL;
	*staff = may_be_account && orders_account_uuid(*actor, &account) && orders_staff_of_account(&account, staff_id);
}

/*
 * orders_track_changes — AFTER INSERT OR UPDATE OR DELETE row trigger:
 * one activity row (action created / updated / deleted, the table, the
 * row's id, the changed columns, the actor and their staff id, the client
 * address PostgREST saw when the caller's claims are believed).  An UPDATE
 * that changes nothing but updated_at writes nothing.
 */
Datum
orders_track_changes(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "track_changes",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_ROW | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	oldrow = NULL;
	HeapTuple	newrow = NULL;
	const char *action;
	RowPair		rows;
	TrackedShape *shape;
	Datum		entity_type;
	Jsonb	   *changes;
	int			nchanged;
	char	   *id;
	char	   *actor = NULL;
	char	   *address = NULL;
	bool		staff = false;
	pg_uuid_t	staff_id;
	Jsonb	   *history = NULL;
	TimestampTz now;
	Datum		values[LOG_NCOLUMNS];
	bool		isnull[LOG_NCOLUMNS];

	if (orders_owner_loading(rel))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		newrow = trigdata->tg_trigtuple;
		action = "created";
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		oldrow = trigdata->tg_trigtuple;
		newrow = trigdata->tg_newtuple;
		action = "updated";
	}
	else
	{
		oldrow = trigdata->tg_trigtuple;
		action = "deleted";
	}
	deform_rows(&rows, desc, oldrow, newrow);
	if (oldrow && newrow && derived_write(rel, desc, &rows))
		return PointerGetDatum(NULL);
	shape = tracked_shape(rel);

	/*
	 * who, before the switch to the owner: first for a status change
	 * (history may be its record), else once the row is known to be logged
	 */
	if (oldrow && newrow && status_change(trigdata, shape, &rows))
	{
		who(&actor, &address, &staff, &staff_id);
		if (address == NULL && !staff)
			leave_status_to_history(trigdata, shape, &rows, actor);
	}
	if (oldrow && !newrow && shape->status_att >= 0 && shape->id != NULL && !rows.oldnulls[shape->id->att])
		history = deleted_history(rows.oldvals[shape->id->att]);
	changes = changes_jsonb(shape, desc, &rows, &nchanged, history);
	if (nchanged == 0 && oldrow && newrow)
		return PointerGetDatum(NULL);
	if (actor == NULL)
		who(&actor, &address, &staff, &staff_id);
	id = newrow ? row_id(shape, rows.newvals, rows.newnulls) : row_id(shape, rows.oldvals, rows.oldnulls);
	/* the table: unqualified in the extension's schema (quoted as the session quotes) */
	entity_type = CStringGetTextDatum(shape->in_orders ? RelationGetRelationName(rel)
									  : quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
																   RelationGetRelationName(rel)));

	memset(isnull, true, sizeof(isnull));
	now = GetCurrentTimestamp();	/* the clock, not the transaction's start */
#define SET(col, datum) (values[col] = (datum), isnull[col] = false)
	SET(LOG_ID, orders_make_id(now));
	if (staff)
		SET(LOG_USER_ID, UUIDPGetDatum(&staff_id));
	SET(LOG_ACTOR, CStringGetTextDatum(actor));
	SET(LOG_ACTION, CStringGetTextDatum(action));
	SET(LOG_ENTITY_TYPE, entity_type);
	if (id != NULL)
		SET(LOG_ENTITY_ID, CStringGetTextDatum(id));
	SET(LOG_DETAILS, JsonbPGetDatum(changes));
	if (address != NULL)
		SET(LOG_IP_ADDRESS, CStringGetTextDatum(address));
	SET(LOG_CREATED_AT, TimestampTzGetDatum(now));
#undef SET
	insert_log_row(values, isnull);
	return PointerGetDatum(NULL);
}
