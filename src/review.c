/*
 * review.c — the client groups of agency orders (seeds 000/001): their site
 * counters kept exact by deltas, and the cap on approvals.
 *
 *   orders.site_counts()         AFTER INSERT / UPDATE / DELETE ... FOR EACH
 *                                STATEMENT on orders.order_site_selections,
 *                                with transition tables: adds up, per group,
 *                                the change of its suggested, approved and
 *                                rejected selections, then applies one UPDATE
 *                                per group (in id order, so concurrent
 *                                statements cannot deadlock) as the owner of
 *                                orders.order_groups.  Approving beyond the
 *                                group's link_count is refused (OR070); a group
 *                                whose approvals reach it is "complete".
 *   orders.group_counts_guard()  BEFORE INSERT OR UPDATE OF the counters and
 *                                link_count ON orders.order_groups: a new
 *                                group starts at 0, only site_counts (or the
 *                                table owner) writes the counters (OR014),
 *                                link_count never drops below approved_count
 *                                (OR072); a new link_count sets the group
 *                                "complete" (or back to "reviewing").
 *
 * Once the counters are written, site_counts locks the orders whose sites
 * the statement approved or took back and checks again that they are open
 * and unpaid (OR073), deletes the items of sites no longer approved and
 * moves the orders' subtotals by the items the statement made and deleted
 * (site_items.c).
 *
 * A review takes its rows in the one order every writer of sites keeps —
 * its sites (in id order) before its UPDATE, then, as the first site that
 * makes or takes away an item is written, their group and the order — so
 * that the items the review makes find the order already locked by their
 * own transaction.  orders.lock_review() takes the same rows at once.
 *
 * Exactness under concurrency comes from the row lock of the counter UPDATE,
 * as for lead counters: two reviewers approving the last free place of a
 * group queue on the group row, and the second one's UPDATE finds no room.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(orders_site_counts);
PG_FUNCTION_INFO_V1(orders_group_counts_guard);
PG_FUNCTION_INFO_V1(orders_group_analysis_guard);
PG_FUNCTION_INFO_V1(orders_lock_review);

/* true while this file itself writes the counters */
static bool counter_writing = false;

/* the order a review locked, while its UPDATE runs (review_sites.c) */
OrdersReviewLocked orders_review_locked = {false};

/* The counted statuses of a selection (alternate is counted by none). */
typedef enum SiteCount
{
	SITE_SUGGESTED,
	SITE_APPROVED,
	SITE_REJECTED,
	SITE_COUNTS,
	SITE_UNCOUNTED = SITE_COUNTS
} SiteCount;

/* Per-group sums of one statement. */
typedef struct SiteDelta
{
	pg_uuid_t	group_id;		/* hash key */
	int64		delta[SITE_COUNTS];
} SiteDelta;

/* What a row callback needs while folding a transition table. */
typedef struct SiteFold
{
	HTAB	   *deltas;
	int			group_att;
	int			status_att;
} SiteFold;

/* site_count — which counter a selection status feeds. */
static SiteCount
site_count(Datum status)
{
	text	   *t = DatumGetTextPP(status);
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len == 9 && memcmp(s, "suggested", 9) == 0)
		return SITE_SUGGESTED;
	if (len == 8 && memcmp(s, "approved", 8) == 0)
		return SITE_APPROVED;
	if (len == 8 && memcmp(s, "rejected", 8) == 0)
		return SITE_REJECTED;
	return SITE_UNCOUNTED;
}

/* fold_site — fold one selection row: "sign" +1 for new rows, -1 for old. */
static void
fold_site(TupleTableSlot *slot, int sign, void *arg)
{
	SiteFold   *fold = (SiteFold *) arg;
	bool		isnull;
	Datum		group_id = slot_getattr(slot, fold->group_att, &isnull);
	Datum		status;
	SiteCount	c;
	SiteDelta  *d;
	bool		found;

	if (isnull)
		return;
	status = slot_getattr(slot, fold->status_att, &isnull);
	if (isnull || (c = site_count(status)) == SITE_UNCOUNTED)
		return;
	d = (SiteDelta *) hash_search(fold->deltas, DatumGetUUIDP(group_id), HASH_ENTER, &found);
	if (!found)
		memset(d->delta, 0, sizeof(d->delta));
	d->delta[c] += sign;
}

/* site_delta_matters — a group one of whose counters moves. */
static bool
site_delta_matters(const void *entry)
{
	const SiteDelta *d = (const SiteDelta *) entry;

	return d->delta[SITE_SUGGESTED] != 0 || d->delta[SITE_APPROVED] != 0 ||
		d->delta[SITE_REJECTED] != 0;
}

/*
 * refuse_unwritten — a group's counters not written (the UPDATE wrote no
 * row, or apply_direct found the group full): nothing when the group is
 * gone; OR070 for approvals beyond its link_count (the order number, the
 * group's client and approved/link_count to a caller who may see the
 * order, else only the group's id); else a DBA's BEFORE trigger skipped
 * the UPDATE's write (09000, as the direct write refuses it — a rejection
 * was counted nowhere before).
 */
static void
refuse_unwritten(Oid groups_rel, const SiteDelta *d, const OrdersSavedUser *caller)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan;
	Datum		args[1];
	HeapTuple	row;
	TupleDesc	desc;
	bool		isnull;
	char	   *group = DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&d->group_id)));

	args[0] = UUIDPGetDatum(&d->group_id);
	plan = orders_get_keyed_plan(PLAN_SITES_READ_GROUP, groups_rel,
								 "SELECT o.id, o.order_number, c.full_name, g.approved_count, g.link_count"
								 "  FROM orders.order_groups g"
								 "  JOIN orders.orders o ON o.id OPERATOR(pg_catalog.=) g.order_id"
								 "  JOIN orders.customers c ON c.id OPERATOR(pg_catalog.=) g.client_id"
								 " WHERE g.id OPERATOR(pg_catalog.=) $1",
								 1, argtypes);
	/*
	 * The latest snapshot: the counter UPDATE found no room after waiting
	 * for a concurrent reviewer's row lock; the statement's snapshot would
	 * still show the group as it was before that reviewer committed (and
	 * the message would say "1 of 2 approved, 1 more would exceed").
	 */
	orders_execute_latest(plan, args, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return;					/* the group is gone: nothing was counted in it */
	row = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (d->delta[SITE_APPROVED] <= 0 ||
		(int64) DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull)) + d->delta[SITE_APPROVED] <=
		(int64) DatumGetInt32(SPI_getbinval(row, desc, 5, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("the site counts of client group %s were not written: a trigger on orders.order_groups skipped it",
						group)));
	if (!orders_caller_sees(orders_relid("orders"), SPI_getbinval(row, desc, 1, &isnull), caller))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_GROUP_FULL),
				 errmsg("group %s has no room for " INT64_FORMAT " more approved sites",
						group, d->delta[SITE_APPROVED]),
				 errhint("Reject or set aside another site of the group first.")));
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_GROUP_FULL),
			 errmsg("order \"%s\", group of client \"%s\": %s of %s sites approved, " INT64_FORMAT " more would exceed the group's link_count",
					SPI_getvalue(row, desc, 2), SPI_getvalue(row, desc, 3),
					SPI_getvalue(row, desc, 4), SPI_getvalue(row, desc, 5),
					d->delta[SITE_APPROVED]),
			 errhint("Reject or set aside another site of the group first, or raise its link_count.")));
}

/* group_status is no count: a group completed is logged (when tracked) */
static const char *const count_columns[] = {"suggested_count", "approved_count", "rejected_count", NULL};

/* What one group's counter write found: its order, when it was found. */
typedef struct GroupWritten
{
	bool		found;
	pg_uuid_t	order_id;
} GroupWritten;

/*
 * check_delta — a group's sums fit in the counters' type (the UPDATE's
 * parameters are integers).
 */
static void
check_delta(const SiteDelta *d)
{
	for (int c = 0; c < SITE_COUNTS; c++)
		if (d->delta[c] > PG_INT32_MAX || d->delta[c] < PG_INT32_MIN)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("too many site selections in one statement for one group")));
}

/* apply_sql — one group's counter UPDATE; refuses approvals beyond the cap. */
static void
apply_sql(Oid groups_rel, const SiteDelta *d, const OrdersSavedUser *caller, GroupWritten *w)
{
	static Oid	argtypes[4] = {UUIDOID, INT4OID, INT4OID, INT4OID};
	OrdersDerived derived = {groups_rel, count_columns};
	SPIPlanPtr	plan;
	Datum		args[4];
	bool		isnull;

	args[0] = UUIDPGetDatum(&d->group_id);
	args[1] = Int32GetDatum((int32) d->delta[SITE_SUGGESTED]);
	args[2] = Int32GetDatum((int32) d->delta[SITE_APPROVED]);
	args[3] = Int32GetDatum((int32) d->delta[SITE_REJECTED]);
	plan = orders_get_keyed_plan(PLAN_SITES_ADD, groups_rel,
								 "UPDATE orders.order_groups"
								 "   SET suggested_count = suggested_count OPERATOR(pg_catalog.+) $2,"
								 "       approved_count = approved_count OPERATOR(pg_catalog.+) $3,"
								 "       rejected_count = rejected_count OPERATOR(pg_catalog.+) $4,"
								 "       group_status = CASE"
								 "         WHEN approved_count OPERATOR(pg_catalog.+) $3 OPERATOR(pg_catalog.>=) link_count"
								 "         THEN 'complete'"
								 "         WHEN group_status OPERATOR(pg_catalog.=) 'complete' THEN 'reviewing'"
								 "         ELSE group_status END"
								 " WHERE id OPERATOR(pg_catalog.=) $1"
								 "   AND ($3 OPERATOR(pg_catalog.<=) 0"
								 "        OR approved_count OPERATOR(pg_catalog.+) $3 OPERATOR(pg_catalog.<=) link_count)"
								 " RETURNING order_id",
								 4, argtypes);
	orders_execute_writing(plan, args, NULL, SPI_OK_UPDATE_RETURNING, &counter_writing, &derived);
	w->found = SPI_processed > 0;
	if (w->found)
		w->order_id = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	else
		refuse_unwritten(groups_rel, d, caller);
}

/* Columns of orders.order_groups a direct counter write reads, by number. */
typedef struct GroupColumns
{
	int			order_id;
	int			link_count;
} GroupColumns;

/*
 * The columns a direct write sets: the counters and the status they decide
 * (as the UPDATE of apply_sql does), and the BEFORE UPDATE row trigger that
 * lets the extension's counter write through unchanged (group_counts_guard:
 * the counters are writing, link_count stays).
 */
static const char *const delta_columns[] = {"suggested_count", "approved_count", "rejected_count",
"group_status", NULL};
static const char *const group_guards[] = {"orders_group_counts_guard", "orders_group_analysis_guard", NULL};

/*
 * column_of — the number of column "name" of "rel" if it is NOT NULL and
 * of type "type", else 0.
 */
static int
column_of(Relation rel, const char *name, Oid type)
{
	int			att = orders_fnumber(RelationGetDescr(rel), name);

	if (att <= 0 || TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid != type ||
		!TupleDescAttr(RelationGetDescr(rel), att - 1)->attnotnull)
		return 0;
	return att;
}

/*
 * group_columns — can the counters of "rel" be written directly
 * (orders_direct_updatable, no statement trigger of its own but the
 * customer's re-check, which a write as the owner leaves with nothing to
 * do; the columns read and set of the types they are read as, NOT NULL as
 * installed)?
 * Then "*c" gets the numbers of those only read.
 */
static bool
group_columns(Relation rel, GroupColumns *c)
{
	static const char *const names[] = {"order_id", "link_count", "suggested_count",
	"approved_count", "rejected_count", "group_status"};
	static const Oid types[] = {UUIDOID, INT4OID, INT4OID, INT4OID, INT4OID, TEXTOID};
	TupleDesc	desc = RelationGetDescr(rel);
	int			att[6];

	for (int i = 0; i < 6; i++)
		if ((att[i] = column_of(rel, names[i], types[i])) == 0)
			return false;
	/* group_status compared by its bytes: as "=" compares in a deterministic collation */
	if (!get_collation_isdeterministic(TupleDescAttr(desc, att[5] - 1)->attcollation))
		return false;
	c->order_id = att[0];
	c->link_count = att[1];
	return orders_direct_updatable(rel, NULL);
}

/*
 * add_count — column "att" (an integer) of "row" plus "delta", or 22003 as
 * the UPDATE's addition would fail.
 */
static int32
add_count(TupleTableSlot *row, int att, int64 delta)
{
	bool		isnull;
	int32		now;

	if (pg_add_s32_overflow(DatumGetInt32(slot_getattr(row, att, &isnull)), (int32) delta, &now))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer out of range")));
	return now;
}

/*
 * apply_direct — one group's sums written without an SQL statement
 * (direct_write.c) into its row locked in "dw": what apply_sql's UPDATE
 * does — the cap refused (OR070), the status decided, an overflow refused
 * (22003) — with the row triggers, constraints and indexes the UPDATE
 * would run, but the BEFORE row triggers of group_guards left out when
 * "guards_idle" (orders_direct_idle_before found only them).  The caller
 * has counter_writing set.
 */
static void
apply_direct(OrdersDirect *dw, const GroupColumns *c, Oid groups_rel, const SiteDelta *d,
			 bool guards_idle, const OrdersSavedUser *caller, GroupWritten *w)
{
	TupleTableSlot *row = dw->row;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	int32		link;
	int32		approved;
	const char *status;
	bool		isnull;

	w->found = orders_direct_lock_by_id(dw, UUIDPGetDatum(&d->group_id));
	if (!w->found)
		return;					/* gone: nothing was counted in it */
	w->order_id = *DatumGetUUIDP(slot_getattr(row, c->order_id, &isnull));
	link = DatumGetInt32(slot_getattr(row, c->link_count, &isnull));
	/* in the UPDATE's order: the new approved count (its WHERE), the cap, the others */
	approved = add_count(row, dw->attnums[SITE_APPROVED], d->delta[SITE_APPROVED]);
	if (d->delta[SITE_APPROVED] > 0 && approved > link)
		refuse_unwritten(groups_rel, d, caller);	/* full: OR070 */
	for (int k = 0; k < SITE_COUNTS; k++)
		values[k] = Int32GetDatum(k == SITE_APPROVED ? approved : add_count(row, dw->attnums[k], d->delta[k]));
	status = TextDatumGetCString(slot_getattr(row, dw->attnums[SITE_COUNTS], &isnull));
	if (approved >= link)
		status = "complete";
	else if (strcmp(status, "complete") == 0)
		status = "reviewing";
	values[SITE_COUNTS] = CStringGetTextDatum(status);
	dw->before_idle = guards_idle;
	if (!orders_direct_update(dw, values, nulls))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg("the site counts of client group %s were not written: a trigger on orders.order_groups skipped it",
						DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&d->group_id))))));
}

/*
 * apply_deltas — the statement's sums ("sorted" by group id, so that
 * concurrent statements cannot deadlock), each added to its group with the
 * cap checked: written directly when orders.order_groups is as installed
 * (the less done between taking a hot group's row lock and the commit, the
 * sooner its next reviewer has it), else by one UPDATE per group.  Runs as
 * the owner of orders.order_groups, connected to SPI.  Returns the group
 * of the review under way (orders_review_locked) when its counters were
 * written and it still belongs to the order the review locked, else NULL.
 */
static const pg_uuid_t *
apply_deltas(Oid groups_rel, SiteDelta **sorted, long n, const OrdersSavedUser *caller)
{
	OrdersDerived derived = {groups_rel, count_columns};
	const OrdersDerived *was_derived = orders_derived;
	bool		was_writing = counter_writing;
	const pg_uuid_t *volatile locked_group = NULL;
	Relation	rel = table_open(groups_rel, RowExclusiveLock);
	GroupColumns cols;
	OrdersDirect dw;
	bool		direct = group_columns(rel, &cols);

	PG_TRY();
	{
		bool		guards_idle = false;

		if (direct)
		{
			/*
			 * as while the UPDATE runs, its AFTER row triggers too: the log
			 * leaves the counters out, group_counts_guard lets them through
			 */
			orders_derived = &derived;
			counter_writing = true;
			orders_direct_begin(&dw, rel, delta_columns);
			guards_idle = orders_direct_idle_before(&dw, group_guards);
		}
		for (long i = 0; i < n; i++)
		{
			GroupWritten w;

			check_delta(sorted[i]);
			if (direct)
				apply_direct(&dw, &cols, groups_rel, sorted[i], guards_idle, caller, &w);
			else
				apply_sql(groups_rel, sorted[i], caller, &w);
			if (w.found && orders_review_locked.valid &&
				memcmp(&sorted[i]->group_id, &orders_review_locked.group_id, sizeof(pg_uuid_t)) == 0 &&
				memcmp(&w.order_id, &orders_review_locked.order_id, sizeof(pg_uuid_t)) == 0)
				locked_group = &sorted[i]->group_id;
		}
		if (direct)
			orders_direct_end(&dw);
	}
	PG_FINALLY();
	{
		orders_derived = was_derived;
		counter_writing = was_writing;
	}
	PG_END_TRY();
	table_close(rel, NoLock);
	/* the groups' AFTER triggers (a DBA's) may have written the order */
	return orders_review_locked.valid ? locked_group : NULL;
}

/*
 * orders.site_counts() — AFTER INSERT, UPDATE or DELETE ... REFERENCING ...
 * FOR EACH STATEMENT on orders.order_site_selections.  Guarantees that, when
 * the statement ends, each group's suggested_count, approved_count and
 * rejected_count changed by exactly what the statement added minus what it
 * took away, with approved_count <= link_count, or that the statement
 * failed; that no site it took back or deleted keeps an item; and (0.34.0)
 * that a customer's statement changed sites only of orders still its own,
 * open and unpaid once locked (orders_end_site_statement).
 */
Datum
orders_site_counts(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = orders_trigger_data(fcinfo, "site_counts",
												ORDERS_TRIG_AFTER | ORDERS_TRIG_INSERT |
												ORDERS_TRIG_UPDATE | ORDERS_TRIG_DELETE);
	TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
	SiteFold	fold;
	SiteDelta **sorted;
	long		n;
	Oid			groups_rel;
	const pg_uuid_t *locked_group;
	OrdersSavedUser saved;
	bool		customer;
	OrdersEditJudge judge;

	orders_require_transition_tables(trigdata, "site_counts");
	fold.group_att = orders_typed_column(trigdata->tg_relation, "order_group_id", UUIDOID);
	fold.status_att = orders_typed_column(trigdata->tg_relation, "status", TEXTOID);
	fold.deltas = orders_delta_hash("orders site deltas", sizeof(SiteDelta));
	if (trigdata->tg_oldtable)
		orders_for_each_row(trigdata->tg_oldtable, desc, -1, fold_site, &fold);
	if (trigdata->tg_newtable)
		orders_for_each_row(trigdata->tg_newtable, desc, +1, fold_site, &fold);
	sorted = (SiteDelta **) orders_sorted_deltas(fold.deltas, site_delta_matters, &n);

	/* a customer's statement: its orders judged as the customer's too (the caller's customers, looked up as the caller) */
	customer = orders_customer_statement(trigdata->tg_relation);
	if (customer)
	{
		judge.what = "sites";
		orders_callers_customers(&judge.mine);
	}
	groups_rel = orders_relid("order_groups");
	orders_spi_connect_as_owner(groups_rel, &saved);
	locked_group = apply_deltas(groups_rel, sorted, n, &saved);
	/*
	 * Then the orders (locked, OR073 checked again, a customer's judged), the
	 * items and the subtotals: every writer of sites locks its group's row
	 * before its order's (site_items.c; a review took both already, at its
	 * first site that made or took away an item).
	 */
	orders_end_site_statement(trigdata, locked_group, customer ? &judge : NULL);
	orders_apply_held_subtotals();
	orders_spi_finish_as(&saved);
	return PointerGetDatum(NULL);
}

/* int_column — an integer column of a row (NULL reads as 0). */
static int32
int_column(HeapTuple row, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		d = SPI_getbinval(row, desc, orders_fnumber(desc, name), &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

/*
 * orders.group_analysis_guard() — BEFORE INSERT OR UPDATE OF
 * analysis_project_id, analysis_started_at, analysis_completed_at,
 * group_status ON orders.order_groups FOR EACH ROW (0.35.0).  Guarantees
 * that in an API request a client group's analysis is written by staff
 * only (OR060): a client stamped its group analysed, and the order moved
 * to "reviewing" when the next group's analysis completed.  A new row
 * starts unanalysed ("pending").  The owner passes: the counters' direct
 * write (group_status among its columns) leaves it out (group_guards) — as
 * PL/pgSQL (the first cut) it made that write fire the row triggers, a
 * review of 8 groups of one order 13 % slower.
 */
Datum
orders_group_analysis_guard(PG_FUNCTION_ARGS)
{
	static const char *const analysis[] = {"analysis_project_id", "analysis_started_at",
	"analysis_completed_at", "group_status", NULL};
	TriggerData *trigdata = orders_trigger_data(fcinfo, "group_analysis_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	bool		updating = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	HeapTuple	newrow = updating ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	pg_uuid_t	staff;
	const char *role;

	if (!orders_api_request_now() || has_privs_of_role(GetUserId(), rel->rd_rel->relowner) ||
		orders_caller_staff(&staff, &role))
		return orders_trigger_result(trigdata, newrow);
	for (int i = 0; analysis[i] != NULL; i++)
	{
		int			att = orders_fnumber(desc, analysis[i]);
		bool		isnull;
		Datum		value;
		bool		written;

		if (att <= 0)
			continue;
		value = heap_getattr(newrow, att, desc, &isnull);
		if (updating)
			written = orders_column_changed(trigdata->tg_trigtuple, newrow, desc, att);
		else if (i == 3)		/* group_status: a new group is "pending" */
			written = isnull || strcmp(TextDatumGetCString(value), "pending") != 0;
		else
			written = !isnull;
		if (written)
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_COLUMN_RESERVED),
					 errmsg("column \"%s\" of orders.order_groups is reserved to staff", analysis[i]),
					 errhint("Leave it out of the request; staff with the right permission set it.")));
	}
	return orders_trigger_result(trigdata, newrow);
}

/*
 * orders.group_counts_guard() — BEFORE INSERT OR UPDATE OF suggested_count,
 * approved_count, rejected_count, link_count ON orders.order_groups FOR EACH
 * ROW.  Guarantees that a new group starts with no counted site (selections
 * reference existing groups; pg_restore recounts them as it loads them),
 * that only site_counts or the table owner changes the counters, and that
 * link_count is never lowered below the approved sites.
 */
Datum
orders_group_counts_guard(PG_FUNCTION_ARGS)
{
	static const char *const counters[] = {"suggested_count", "approved_count", "rejected_count"};
	TriggerData *trigdata = orders_trigger_data(fcinfo, "group_counts_guard",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW |
												ORDERS_TRIG_INSERT | ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	newrow;
	HeapTuple	oldrow;

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		int			atts[3];
		Datum		zeros[3] = {Int32GetDatum(0), Int32GetDatum(0), Int32GetDatum(0)};
		bool		nulls[3] = {false, false, false};

		for (int i = 0; i < 3; i++)
			atts[i] = orders_fnumber(desc, counters[i]);
		return orders_trigger_result(trigdata,
									 heap_modify_tuple_by_cols(trigdata->tg_trigtuple, desc, 3,
															   atts, zeros, nulls));
	}
	oldrow = trigdata->tg_trigtuple;
	newrow = trigdata->tg_newtuple;
	if (!counter_writing && !has_privs_of_role(GetUserId(), rel->rd_rel->relowner))
		for (int i = 0; i < 3; i++)
			if (int_column(newrow, desc, counters[i]) != int_column(oldrow, desc, counters[i]))
				ereport(ERROR,
						(errcode(ERRCODE_ORDERS_COUNTER_MAINTAINED),
						 errmsg("client group %s: %s is maintained by the extension",
								SPI_getvalue(newrow, desc, orders_fnumber(desc, "id")), counters[i]),
						 errhint("Review the group's sites (orders.review_sites) instead; orders.recount_site_counts() repairs a count.")));
	if (int_column(newrow, desc, "link_count") < int_column(newrow, desc, "approved_count") &&
		int_column(newrow, desc, "link_count") != int_column(oldrow, desc, "link_count"))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_LINKS_BELOW_APPROVED),
				 errmsg("client group %s: link_count cannot be lowered to %d, %d sites are already approved",
						SPI_getvalue(newrow, desc, orders_fnumber(desc, "id")),
						int_column(newrow, desc, "link_count"), int_column(newrow, desc, "approved_count")),
				 errhint("Reject approved sites first, or keep link_count at %d or more.",
						 int_column(newrow, desc, "approved_count"))));

	/* a group whose approvals reach its (new) link_count is complete */
	if (int_column(newrow, desc, "link_count") != int_column(oldrow, desc, "link_count"))
	{
		int			att = orders_fnumber(desc, "group_status");
		char	   *status = SPI_getvalue(newrow, desc, att);
		bool		full = int_column(newrow, desc, "approved_count") >= int_column(newrow, desc, "link_count");
		const char *now = full ? "complete" :
			(status != NULL && strcmp(status, "complete") == 0) ? "reviewing" : NULL;

		if (now != NULL && (status == NULL || strcmp(status, now) != 0))
		{
			Datum		value = CStringGetTextDatum(now);
			bool		isnull = false;

			return orders_trigger_result(trigdata,
										 heap_modify_tuple_by_cols(newrow, desc, 1, &att, &value, &isnull));
		}
	}
	return orders_trigger_result(trigdata, NULL);
}

/*
 * orders_review_order_written — order "order_id" is written by this
 * transaction (status_guard, for every UPDATE of an order): if it is the
 * order a review under way locked, what the review noted of it may be out
 * of date — site_items reads it again and site_counts checks it again.
 */
void
orders_review_order_written(Datum order_id)
{
	if (orders_review_locked.valid &&
		memcmp(DatumGetUUIDP(order_id), &orders_review_locked.order_id, sizeof(pg_uuid_t)) == 0)
		orders_review_locked.valid = false;
}

/*
 * note_locked — "*locked" (when given): the order "order_id" of group
 * "group_id" was locked as it is (its number, status, lifecycle, paid),
 * the strings copied into "cxt".
 */
static void
note_locked(OrdersReviewLocked *locked, MemoryContext cxt, Datum group_id, Datum order_id,
			const char *number, const char *status, const char *lifecycle, bool paid)
{
	if (locked == NULL)
		return;
	locked->valid = true;
	locked->group_id = *DatumGetUUIDP(group_id);
	locked->order_id = *DatumGetUUIDP(order_id);
	/* NULL stays NULL (a column a DBA made nullable): refuse_if_final copes */
	locked->order_number = number != NULL ? MemoryContextStrdup(cxt, number) : NULL;
	locked->status = status != NULL ? MemoryContextStrdup(cxt, status) : NULL;
	locked->lifecycle = lifecycle != NULL ? MemoryContextStrdup(cxt, lifecycle) : NULL;
	locked->paid = paid;
}

/*
 * lock_sql — the group's row, then (when "items") its order's, locked FOR
 * NO KEY UPDATE by one SELECT with the latest snapshot; as the owner,
 * connected to SPI.
 */
static void
lock_sql(Datum group_id, bool items, OrdersReviewLocked *order_locked, MemoryContext cxt)
{
	static Oid	group_types[1] = {UUIDOID};
	Oid			groups_rel = orders_relid("order_groups");
	SPIPlanPtr	plan;
	bool		isnull;

	if (items)
		plan = orders_get_keyed_plan(PLAN_REVIEW_LOCK_ORDER, groups_rel,
									 "SELECT o.id, o.order_number, o.status, o.lifecycle, o.paid_at IS NOT NULL"
									 "  FROM orders.orders o"
									 " WHERE o.id OPERATOR(pg_catalog.=)"
									 "       (SELECT g.order_id FROM orders.order_groups g"
									 "         WHERE g.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE)"
									 " FOR NO KEY UPDATE",
									 1, group_types);
	else
		plan = orders_get_keyed_plan(PLAN_REVIEW_LOCK_GROUP, groups_rel,
									 "SELECT 1 FROM orders.order_groups g"
									 " WHERE g.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
									 1, group_types);
	orders_execute_latest(plan, &group_id, NULL, SPI_OK_SELECT);
	if (items && SPI_processed > 0)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		note_locked(order_locked, cxt, group_id, SPI_getbinval(row, desc, 1, &isnull),
					SPI_getvalue(row, desc, 2), SPI_getvalue(row, desc, 3), SPI_getvalue(row, desc, 4),
					DatumGetBool(SPI_getbinval(row, desc, 5, &isnull)));
	}
}

/*
 * lock_direct — lock_sql's locks taken without a statement
 * (orders_direct_lock_row: the same rows, versions and errors), when both
 * tables are as installed (orders_direct_lockable, the columns read of the
 * types read); false, nothing locked, otherwise.  As the owner.
 */
static bool
lock_direct(Datum group_id, bool items, OrdersReviewLocked *order_locked, MemoryContext cxt)
{
	Relation	groups = table_open(orders_relid("order_groups"), RowShareLock);
	Relation	orders = items ? table_open(orders_relid("orders"), RowShareLock) : NULL;
	int			order_att = column_of(groups, "order_id", UUIDOID);
	int			number_att = 0,
				status_att = 0,
				lifecycle_att = 0,
				paid_att = 0;
	bool		direct = order_att > 0 && orders_direct_lockable(groups);

	if (direct && orders != NULL)
	{
		number_att = column_of(orders, "order_number", TEXTOID);
		status_att = column_of(orders, "status", TEXTOID);
		lifecycle_att = column_of(orders, "lifecycle", TEXTOID);
		paid_att = orders_fnumber(RelationGetDescr(orders), "paid_at");
		direct = number_att > 0 && status_att > 0 && lifecycle_att > 0 && paid_att > 0 &&
			orders_direct_lockable(orders);
	}
	if (direct)
	{
		TupleTableSlot *group = table_slot_create(groups, NULL);
		bool		isnull;

		if (orders_direct_lock_row(groups, group_id, group) && orders != NULL)
		{
			TupleTableSlot *order = table_slot_create(orders, NULL);
			Datum		order_id = slot_getattr(group, order_att, &isnull);

			if (orders_direct_lock_row(orders, order_id, order))
			{
				bool		unpaid;

				(void) slot_getattr(order, paid_att, &unpaid);
				note_locked(order_locked, cxt, group_id, order_id,
							TextDatumGetCString(slot_getattr(order, number_att, &isnull)),
							TextDatumGetCString(slot_getattr(order, status_att, &isnull)),
							TextDatumGetCString(slot_getattr(order, lifecycle_att, &isnull)),
							!unpaid);
			}
			ExecDropSingleTupleTableSlot(order);
		}
		ExecDropSingleTupleTableSlot(group);
	}
	if (orders != NULL)
		table_close(orders, NoLock);
	table_close(groups, NoLock);
	return direct;
}

/*
 * orders_review_lock_sites — the first row locks of a review of sites
 * "site_ids" (uuid[]) of group "group_id", taken before its UPDATE: the
 * sites (FOR NO KEY UPDATE, in id order) as the caller, so only sites the
 * caller may change, found by their primary key alone, their group a
 * filter ("IS TRUE" keeps the group's index out: a generic plan that also
 * used it bitmap-scanned all the group's sites, 16 % of a review's CPU); a
 * site of another group is never locked.  "*items": will the review make
 * or take away items ("approving", or a site locked is approved now)?
 * Returns the number of sites locked.
 */
uint64
orders_review_lock_sites(Datum group_id, Datum site_ids, bool approving, bool *items)
{
	static Oid	site_types[2] = {UUIDOID, UUIDARRAYOID};
	SPIPlanPtr	plan;
	Datum		args[2];
	uint64		locked;

	args[0] = group_id;
	args[1] = site_ids;
	*items = approving;
	orders_spi_connect();
	plan = orders_get_keyed_plan(PLAN_REVIEW_LOCK_SITES, orders_relid("order_site_selections"),
						         "SELECT x.status OPERATOR(pg_catalog.=) 'approved'"
						         "  FROM orders.order_site_selections x"
						         " WHERE x.id OPERATOR(pg_catalog.=) ANY ($2)"
						         "   AND (x.order_group_id OPERATOR(pg_catalog.=) $1) IS TRUE"
						         " ORDER BY x.id FOR NO KEY UPDATE",
						         2, site_types);
	orders_execute(plan, args, NULL, false, 0, SPI_OK_SELECT);
	locked = SPI_processed;
	for (uint64 r = 0; r < locked && !*items; r++)
	{
		bool		isnull;

		*items = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	return locked;
}

/*
 * lock_group — the group's row, then (when "items") its order's, locked FOR
 * NO KEY UPDATE as the owner of the groups (lock_direct, else lock_sql),
 * the order noted in "*order_locked" (when given; strings in "cxt").
 * Sites → group → order is the order of every other writer (a statement's
 * site rows, then site_counts' group and order), so it adds no deadlock.
 * Guarantees that the review's items take their foreign key's KEY SHARE on
 * an order row their own transaction already locked: concurrent reviewers
 * of one order queue on it instead of piling MultiXacts on its versions
 * (each later lookup of the row walks them).
 */
static void
lock_group(Datum group_id, bool items, OrdersReviewLocked *order_locked, MemoryContext cxt)
{
	OrdersSavedUser saved;

	orders_spi_connect();
	orders_switch_to_owner(orders_relid("order_groups"), &saved);
	if (!lock_direct(group_id, items, order_locked, cxt))
		lock_sql(group_id, items, order_locked, cxt);
	orders_restore_user(&saved);
	SPI_finish();
}

/*
 * orders_review_lock_pending — for site_items, before the first site of
 * the review under way (orders_review_locked) that makes or takes away an
 * item: its group and order locked now, the order noted — so the review's
 * UPDATE started, found its sites and ran their first triggers before it
 * took the rows its group's other reviewers queue on.
 */
void
orders_review_lock_pending(void)
{
	OrdersReviewLocked *r = &orders_review_locked;

	/*
	 * Only in the review's own (sub)transaction: a lock a nested statement
	 * took in a subtransaction of its own goes when that one rolls back.
	 */
	if (GetCurrentSubTransactionId() != r->subxid)
		return;
	r->to_lock = false;
	/* a write of the group by an earlier trigger of this statement is seen, and locked */
	CommandCounterIncrement();
	lock_group(UUIDPGetDatum(&r->group_id), r->items, r, r->cxt);
	r->valid = r->valid && r->check_once;
}

/*
 * orders.lock_review(order_group_id uuid, site_ids uuid[], approving boolean)
 * — a review's row locks taken at once: its sites
 * (orders_review_lock_sites), then, if there were any, their group and —
 * when the review makes or takes away items — its order (lock_group).
 * Returns the number of sites locked.
 */
Datum
orders_lock_review(PG_FUNCTION_ARGS)
{
	uint64		locked;
	bool		items;

	orders_require_arg(fcinfo, 0, "orders.lock_review", "order_group_id");
	orders_require_arg(fcinfo, 1, "orders.lock_review", "site_ids");
	orders_require_arg(fcinfo, 2, "orders.lock_review", "approving");
	locked = orders_review_lock_sites(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_BOOL(2), &items);
	if (locked > 0)
		lock_group(PG_GETARG_DATUM(0), items, NULL, CurrentMemoryContext);
	PG_RETURN_INT64((int64) locked);
}
