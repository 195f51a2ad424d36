/*
 * review_sites.c — a client's verdicts on the sites of one client group
 * (seed 001), applied all or nothing.
 *
 *   orders.review_sites(order_group_id, selections)   the caller reviews
 *   orders.apply_review(order_group_id, selections, who)
 *                          the same, for share_review_sites: "who" (the
 *                          link) is recorded as the reviewer when the
 *                          extension's owner calls; the order must be open
 *                          and unpaid, before and (locked) after (OR073)
 *   orders.site_review_columns()
 *                          BEFORE UPDATE on orders.order_site_selections:
 *                          in an API request, who reviewed a site and when
 *                          is recorded, and what the analysis found is
 *                          staff's
 *
 * selections: [{selection_id | domain, status, client_notes,
 * target_page_url, anchor_text}].  Every entry must name a distinct site of
 * the group (by id, or by its domain as orders.normalize_domain makes it)
 * with a known status; the first entry that does not is refused (22023, or
 * OR076 for a site that is not the group's) and nothing is applied.  Then
 * the review takes its rows in the order every writer of sites keeps (its
 * sites in id order now; the group and order as its UPDATE writes the first
 * site that makes or takes away an item, orders_review_lock_pending) and
 * applies every
 * verdict with one UPDATE as the caller — row level security, the sites'
 * triggers (items made and taken away, counters and the cap OR070) judge
 * the whole review at once.  A site the UPDATE could not change is refused:
 * deleted meanwhile (OR076) or not the caller's to change (42501).
 *
 * Everything runs with the caller's rights: the sites found, locked and
 * changed are those row level security lets the caller see and change.
 * Before 0.24.0 this was PL/pgSQL; the statements and their order are the
 * same, but a review naming its sites by id (the usual call) finds them by
 * locking them, without a statement of its own to look them up first.
 */
#include "orders.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

PG_FUNCTION_INFO_V1(orders_review_sites);
PG_FUNCTION_INFO_V1(orders_apply_review);
PG_FUNCTION_INFO_V1(orders_site_review_columns);

/* The function a refusal names: the caller's (0.41.0 library; was always review_sites). */
#define REVIEW_FUNC(share) ((share) ? "orders.share_review_sites" : "orders.review_sites")

/* One entry of the selections array. */
typedef struct ReviewEntry
{
	int			n;				/* position in the array, from 1 */
	bool		object;			/* the entry is a JSON object */
	char	   *status;			/* ->> 'status' (NULL: none) */
	char	   *named;			/* selection_id, else domain, as given */
	bool		by_id;			/* the entry has the key selection_id */
	char	   *domain;			/* ->> 'domain' */
	bool		found;			/* "site" is a site of the group */
	pg_uuid_t	site;
	int			twin;			/* n of the first other entry naming "site" (0: none) */
	char	   *client_notes;	/* NULL: left as it is */
	char	   *target_page_url;
	char	   *anchor_text;
} ReviewEntry;

/* json_text — "key" of JSON object "obj" as ->> gives it (NULL: missing or null). */
static char *
json_text(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = getKeyJsonValueFromContainer(obj, key, strlen(key), &buf);

	return v == NULL ? NULL : orders_json_text(v);
}

/* has_key — does JSON object "obj" have "key" (the ? operator)? */
static bool
has_key(JsonbContainer *obj, const char *key)
{
	JsonbValue	buf;

	return getKeyJsonValueFromContainer(obj, key, strlen(key), &buf) != NULL;
}

/*
 * canonical_uuid — is "s" a uuid in canonical lower-case text (the only
 * spelling of selection_id that names a site)?  Then "*u" holds it.
 */
static bool
canonical_uuid(const char *s, pg_uuid_t *u)
{
	static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (s == NULL || strlen(s) != sizeof(pattern) - 1)
		return false;
	for (int i = 0; pattern[i] != '\0'; i++)
		if (pattern[i] == '-' ? s[i] != '-' :
			!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	memcpy(u, DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(s))), sizeof(pg_uuid_t));
	return true;
}

/* known_status — one of the statuses a site can have? */
static bool
known_status(const char *status)
{
	return status != NULL &&
		(strcmp(status, "suggested") == 0 || strcmp(status, "approved") == 0 ||
		 strcmp(status, "rejected") == 0 || strcmp(status, "alternate") == 0);
}

/*
 * clip64 — "s" quoted in a message: its first 64 characters, ended with
 * "..." when cut (doc/errors.md; 0.35.0: cut without the marker before).
 */
static char *
clip64(const char *s)
{
	int			len = strlen(s);
	int			cut = pg_mbcharcliplen(s, len, 64);

	return cut < len ? psprintf("%.*s...", cut, s) : pstrdup(s);
}

/*
 * At most this many entries in one review (0.43.0): every entry is looked
 * up (a domain normalised by SQL) before the first bad one is refused, so
 * a call of 200,000 entries cost seconds of CPU — anonymously, through a
 * share link.  Far above a group's sites in practice.
 */
#define REVIEW_MAX_ENTRIES 10000

/* not_an_array — refuse (22023) selections that are not a JSON array. */
static void
not_an_array(bool share)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s: selections must be a JSON array of {selection_id | domain, status, ...}", REVIEW_FUNC(share))));
}

/*
 * entry_bound — refuse (22001) entry "e"'s "field" ("value") when longer
 * than its column holds, naming the entry and never echoing the text.
 * (0.41.0 library) Before, the column's CHECK refused it — raised as the
 * owner for a share link, its "Failing row contains" DETAIL showed anon the
 * site's internal notes and costs.
 */
static void
entry_bound(const ReviewEntry *e, const char *value, const char *field, int max_chars, bool share)
{
	if (value != NULL && strlen(value) > (size_t) max_chars)
		orders_require_max_length(value, max_chars,
								  psprintf("%s: %s of entry %d", REVIEW_FUNC(share), field, e->n));
}

/*
 * read_entries — the entries of "selections" (a JSON array), "*n" of
 * them, their texts within their columns' bounds (entry_bound).  An
 * element that is not an object has no status.
 */
static ReviewEntry *
read_entries(Jsonb *selections, int *n, bool share)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	ReviewEntry *entries;
	int			count = 0;

	entries = palloc0(sizeof(ReviewEntry) * Max(JB_ROOT_COUNT(selections), 1));
	it = JsonbIteratorInit(&selections->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		ReviewEntry *e;

		if (tok != WJB_ELEM)
			continue;
		e = &entries[count++];
		e->n = count;
		if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
			continue;			/* not an object: refused below */
		e->object = true;
		e->status = json_text(v.val.binary.data, "status");
		e->by_id = has_key(v.val.binary.data, "selection_id");
		e->domain = json_text(v.val.binary.data, "domain");
		e->named = json_text(v.val.binary.data, "selection_id");
		if (e->by_id)
			e->found = canonical_uuid(e->named, &e->site);
		if (e->named == NULL)
			e->named = e->domain;
		e->client_notes = json_text(v.val.binary.data, "client_notes");
		e->target_page_url = json_text(v.val.binary.data, "target_page_url");
		e->anchor_text = json_text(v.val.binary.data, "anchor_text");
		/* the bounds of orders.order_site_selections' CHECKs */
		entry_bound(e, e->client_notes, "client_notes", 10000, share);
		entry_bound(e, e->target_page_url, "target_page_url", 2048, share);
		entry_bound(e, e->anchor_text, "anchor_text", 255, share);
	}
	*n = count;
	return entries;
}

/* cmp_site — entries in the order of their sites' ids. */
static int
cmp_site(const void *a, const void *b)
{
	return memcmp(&((const ReviewEntry *) a)->site, &((const ReviewEntry *) b)->site, UUID_LEN);
}

/* cmp_position — entries in the order the caller gave them. */
static int
cmp_position(const void *a, const void *b)
{
	return ((const ReviewEntry *) a)->n - ((const ReviewEntry *) b)->n;
}

/* uuid_array — the sites of "entries" as uuid[]. */
static Datum
uuid_array(const ReviewEntry *entries, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = UUIDPGetDatum(&entries[i].site);
	return PointerGetDatum(construct_array(d, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
}

/*
 * text_array — one text field (at "offset" in ReviewEntry) of "entries"
 * as text[], NULL elements where the entry has none.
 */
static Datum
text_array(const ReviewEntry *entries, int n, size_t offset)
{
	Datum	   *d = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		char	   *s = *(char **) ((const char *) &entries[i] + offset);

		nulls[i] = s == NULL;
		d[i] = s == NULL ? (Datum) 0 : CStringGetTextDatum(s);
	}
	return PointerGetDatum(construct_md_array(d, nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * group_not_found — refuse (OR075) group "group_id" ((Datum) 0: NULL), which
 * does not exist or which row level security hides from the caller.
 */
static void
group_not_found(Datum group_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_ORDERS_GROUP_NOT_FOUND),
			 errmsg("client group %s does not exist",
					group_id == (Datum) 0 ? "<NULL>" : DatumGetCString(DirectFunctionCall1(uuid_out, group_id))),
			 errhint("Either no group has this id or row level security hides it from you.")));
}

/* by_owner — has the caller the privileges of the owner of "rel" (orders.by_maintainer)? */
static bool
by_owner(Oid rel)
{
	return has_privs_of_role(GetUserId(), orders_rel_owner(rel));
}

/*
 * group_order — the order of group "group_id" as the caller sees it; OR075
 * when the caller sees no such group.
 */
static Datum
group_order(Datum group_id)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = orders_get_keyed_plan(PLAN_REVIEW_GROUP, orders_relid("order_groups"),
											 "SELECT g.order_id FROM orders.order_groups g"
											 " WHERE g.id OPERATOR(pg_catalog.=) $1",
											 1, argtypes);
	Datum		args[1] = {group_id};
	bool		isnull;

	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed == 0)
		group_not_found(group_id);
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
}

/*
 * find_sites — which entries name a site of group "group_id" the caller
 * sees: by id, or by normalised domain (entry.found, entry.site).
 */
static void
find_sites(Datum group_id, ReviewEntry *entries, int n)
{
	static Oid	id_types[2] = {UUIDOID, UUIDARRAYOID};
	static Oid	domain_types[2] = {UUIDOID, TEXTARRAYOID};
	Oid			sites_rel = orders_relid("order_site_selections");
	ReviewEntry *ids = palloc(sizeof(ReviewEntry) * Max(n, 1));
	int			nids = 0;
	bool		domains = false;
	Datum		args[2];
	SPIPlanPtr	plan;

	for (int i = 0; i < n; i++)
	{
		if (entries[i].by_id && entries[i].found)
			ids[nids++] = entries[i];
		domains |= !entries[i].by_id;
		if (entries[i].by_id)
			entries[i].found = false;	/* until seen */
	}
	args[0] = group_id;
	if (nids > 0)
	{
		plan = orders_get_keyed_plan(PLAN_REVIEW_FIND_IDS, sites_rel,
							         "SELECT x.id FROM orders.order_site_selections x"
							         " WHERE x.id OPERATOR(pg_catalog.=) ANY ($2)"
							         "   AND x.order_group_id OPERATOR(pg_catalog.=) $1",
							         2, id_types);
		args[1] = uuid_array(ids, nids);
		orders_execute(plan, args, NULL, false, 0, SPI_OK_SELECT);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			pg_uuid_t  *found = DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[r],
															 SPI_tuptable->tupdesc, 1, &isnull));

			for (int i = 0; i < n; i++)
				if (entries[i].by_id && memcmp(&entries[i].site, found, UUID_LEN) == 0)
					entries[i].found = true;
		}
	}
	if (domains)
	{
		plan = orders_get_keyed_plan(PLAN_REVIEW_FIND_DOMAINS, sites_rel,
							         "SELECT d.n::pg_catalog.int4, x.id"
							         "  FROM pg_catalog.unnest($2) WITH ORDINALITY AS d (v, n)"
							         "  JOIN orders.order_site_selections x"
							         "    ON x.order_group_id OPERATOR(pg_catalog.=) $1"
							         "   AND x.domain OPERATOR(pg_catalog.=) orders.normalize_domain(d.v)",
							         2, domain_types);
		args[1] = text_array(entries, n, offsetof(ReviewEntry, domain));
		orders_execute(plan, args, NULL, false, 0, SPI_OK_SELECT);
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int			pos = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			ReviewEntry *e = &entries[pos - 1];

			if (e->by_id)
				continue;
			e->found = true;
			memcpy(&e->site, DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull)),
				   UUID_LEN);
		}
	}
}

/* cmp_site_position — entries by site, then by position. */
static int
cmp_site_position(const void *a, const void *b)
{
	const ReviewEntry *x = *(ReviewEntry *const *) a;
	const ReviewEntry *y = *(ReviewEntry *const *) b;
	int			c = memcmp(&x->site, &y->site, UUID_LEN);

	return c != 0 ? c : x->n - y->n;
}

/*
 * mark_twins — each found entry naming a site another found entry names
 * too gets "twin": the first other such entry in the caller's order (the
 * first of them gets the second).  Sorted, not compared pairwise (0.43.0:
 * n² comparisons before).
 */
static void
mark_twins(ReviewEntry *entries, int n)
{
	ReviewEntry **by_site = palloc(sizeof(ReviewEntry *) * Max(n, 1));
	int			m = 0;

	for (int i = 0; i < n; i++)
		if (entries[i].found)
			by_site[m++] = &entries[i];
	qsort(by_site, m, sizeof(ReviewEntry *), cmp_site_position);
	for (int i = 0, j; i < m; i = j)
	{
		for (j = i + 1; j < m && memcmp(&by_site[j]->site, &by_site[i]->site, UUID_LEN) == 0; j++)
			by_site[j]->twin = by_site[i]->n;
		if (j > i + 1)
			by_site[i]->twin = by_site[i + 1]->n;
	}
	pfree(by_site);
}

/*
 * refuse_first_problem — refuse the first entry (in the caller's order)
 * that is no object or has no status or an unknown one (22023), names no
 * site of the group (OR076) or a site another entry names too (22023).
 * "entries" in the caller's order, their sites found.
 */
static void
refuse_first_problem(Datum group_id, const ReviewEntry *entries, int n, bool share)
{
	for (int i = 0; i < n; i++)
	{
		const ReviewEntry *e = &entries[i];

		/* (0.41.0 library) these two were 'status "null" is not one of …' */
		if (!e->object)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: entry %d is not a JSON object {selection_id | domain, status, ...}",
							REVIEW_FUNC(share), i + 1)));
		if (e->status == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: entry %d has no status", REVIEW_FUNC(share), i + 1),
					 errhint("Give each entry a status: suggested, approved, rejected or alternate.")));
		if (!known_status(e->status))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: status \"%s\" is not one of suggested, approved, rejected, alternate",
							REVIEW_FUNC(share), clip64(e->status))));
		/* (0.35.0) was OR076 "site null is not a site of client group …" */
		if (e->named == NULL || e->named[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: entry %d names no site", REVIEW_FUNC(share), i + 1),
					 errhint("Name it by selection_id or domain.")));
		if (!e->found)
			ereport(ERROR,
					(errcode(ERRCODE_ORDERS_SITE_NOT_IN_GROUP),
					 errmsg("site %s is not a site of client group %s",
							clip64(e->named != NULL ? e->named : "null"),
							DatumGetCString(DirectFunctionCall1(uuid_out, group_id))),
					 errhint("Review the sites the group's analysis suggested.")));
		if (e->twin > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: site \"%s\" is named twice (entries %d and %d)",
							REVIEW_FUNC(share), clip64(e->named != NULL ? e->named : "null"), e->n, e->twin)));
	}
}

/*
 * check_entries — the group checked (OR075), the entries' sites looked up
 * and the first bad entry, in the caller's order, refused
 * (refuse_first_problem); "entries" sorted by site again afterwards.
 */
static void
check_entries(Datum group_id, ReviewEntry *entries, int n, bool share)
{
	(void) group_order(group_id);
	qsort(entries, n, sizeof(ReviewEntry), cmp_position);
	find_sites(group_id, entries, n);
	mark_twins(entries, n);
	refuse_first_problem(group_id, entries, n, share);
	qsort(entries, n, sizeof(ReviewEntry), cmp_site);
}

/*
 * sites_by_id_only — does every entry name its site by a well-formed id,
 * with a known status and no id twice?  ("entries" sorted by site.)  Then
 * locking the sites tells which are the group's: no statement to find them.
 */
static bool
sites_by_id_only(const ReviewEntry *entries, int n)
{
	for (int i = 0; i < n; i++)
		if (!entries[i].by_id || !entries[i].found || !known_status(entries[i].status) ||
			(i > 0 && memcmp(&entries[i - 1].site, &entries[i].site, UUID_LEN) == 0))
			return false;
	return true;
}

/*
 * update_sites — the one UPDATE of the review as the caller: each site
 * (sorted by id) gets its status and the notes, target page and anchor the
 * entry gives; "reviewer" (the owner's calls) stamps reviewed_at and
 * reviewed_by, else the trigger site_review_columns does.  The number of
 * sites changed.
 */
static uint64
update_sites(Datum group_id, const ReviewEntry *entries, int n, const char *reviewer)
{
	static Oid	argtypes[7] = {UUIDOID, UUIDARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID, TEXTOID};
	Oid			sites_rel = orders_relid("order_site_selections");
	SPIPlanPtr	plan;
	Datum		args[7];

#define REVIEW_SET \
	"UPDATE orders.order_site_selections x" \
	"   SET status = e.status," \
	"       client_notes = coalesce(e.client_notes, x.client_notes)," \
	"       target_page_url = coalesce(e.target_page_url, x.target_page_url)," \
	"       anchor_text = coalesce(e.anchor_text, x.anchor_text)"
#define REVIEW_FROM \
	"  FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4)," \
	"                  pg_catalog.unnest($5), pg_catalog.unnest($6))" \
	"       AS e (site, status, client_notes, target_page_url, anchor_text)" \
	" WHERE x.id OPERATOR(pg_catalog.=) e.site AND x.order_group_id OPERATOR(pg_catalog.=) $1"

	if (reviewer == NULL)
		plan = orders_get_keyed_plan(PLAN_REVIEW_UPDATE, sites_rel, REVIEW_SET REVIEW_FROM, 6, argtypes);
	else
		plan = orders_get_keyed_plan(PLAN_REVIEW_UPDATE_BY, sites_rel,
							         REVIEW_SET ", reviewed_at = pg_catalog.now(), reviewed_by = $7" REVIEW_FROM,
							         7, argtypes);
	args[0] = group_id;
	args[1] = uuid_array(entries, n);
	args[2] = text_array(entries, n, offsetof(ReviewEntry, status));
	args[3] = text_array(entries, n, offsetof(ReviewEntry, client_notes));
	args[4] = text_array(entries, n, offsetof(ReviewEntry, target_page_url));
	args[5] = text_array(entries, n, offsetof(ReviewEntry, anchor_text));
	if (reviewer != NULL)
		args[6] = CStringGetTextDatum(reviewer);
	orders_execute(plan, args, NULL, false, 0, SPI_OK_UPDATE);
	return SPI_processed;
}

/*
 * refuse_unchanged — some sites of the review were not changed: deleted
 * meanwhile (OR076) or not the caller's to change (42501, naming the order
 * as the caller sees it).
 */
static void
refuse_unchanged(Datum group_id, const ReviewEntry *entries, int n)
{
	static Oid	count_types[1] = {UUIDARRAYOID};
	static Oid	order_types[1] = {UUIDOID};
	SPIPlanPtr	plan;
	Datum		args[1];
	bool		isnull;
	Datum		order_id;
	char	   *number = NULL;

	plan = orders_get_keyed_plan(PLAN_REVIEW_COUNT_SITES, orders_relid("order_site_selections"),
						         "SELECT pg_catalog.count(*) FROM orders.order_site_selections x"
						         " WHERE x.id OPERATOR(pg_catalog.=) ANY ($1)",
						         1, count_types);
	args[0] = uuid_array(entries, n);
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) < n)
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SITE_NOT_IN_GROUP),
				 errmsg("a site of the review is no longer a site of client group %s",
						DatumGetCString(DirectFunctionCall1(uuid_out, group_id))),
				 errhint("It was deleted meanwhile; review the group's sites again.")));
	order_id = group_order(group_id);
	plan = orders_get_plan(PLAN_REVIEW_ORDER_NUMBER, orders_relid("orders"),
						   "SELECT o.order_number FROM orders.orders o"
						   " WHERE o.id OPERATOR(pg_catalog.=) $1",
						   1, order_types);
	args[0] = order_id;
	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed > 0)
		number = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("you may not review the sites of order \"%s\"", number != NULL ? number : "<NULL>"),
			 errhint("A client reviews the sites of its own orders while they are open.")));
}

/*
 * group_row — group "group_id" as the caller sees it now, typed
 * orders.order_groups (copied out of SPI's memory); a row of NULLs if it
 * is gone.
 */
static Datum
group_row(FunctionCallInfo fcinfo, Datum group_id)
{
	static Oid	argtypes[1] = {UUIDOID};
	SPIPlanPtr	plan = orders_get_keyed_plan(PLAN_REVIEW_GROUP_ROW, orders_relid("order_groups"),
											 "SELECT g FROM orders.order_groups g"
											 " WHERE g.id OPERATOR(pg_catalog.=) $1",
											 1, argtypes);
	Datum		args[1] = {group_id};
	bool		isnull;
	TupleDesc	desc;
	bool	   *nulls;

	orders_execute(plan, args, NULL, false, 1, SPI_OK_SELECT);
	if (SPI_processed > 0)
		return SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
								 false, -1);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "orders: apply_review must return a composite type");
	BlessTupleDesc(desc);
	nulls = palloc(sizeof(bool) * desc->natts);
	memset(nulls, true, sizeof(bool) * desc->natts);
	return SPI_datumTransfer(HeapTupleGetDatum(heap_form_tuple(desc, NULL, nulls)), false, -1);
}

/*
 * share_open — the judge of a review through a share link: its order is
 * open and unpaid, else OR073 (a link reviews what the order's customer
 * may; a customer's own link rewrote a paid order's approved site).
 */
static void
share_open(const OrdersLockedOrder *o, void *arg)
{
	(void) arg;
	if (!orders_locked_order_open(o))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_SITES_FINAL),
				 errmsg("order \"%s\" is %s: its sites are final", o->number,
						o->paid ? "paid" : o->status != NULL ? o->status : "without a status"),
				 errhint("A share link reviews the sites of an order until it is paid.")));
}

/*
 * judge_share — share_open on order "order_id": as the statement sees it
 * (before the review writes anything), or locked with the latest snapshot
 * (after the review locked its sites and group: the lock order of every
 * writer of sites) — a payment that committed while the review ran stops
 * it, at REPEATABLE READ too without a serialization failure for an
 * unrelated change.
 */
static void
judge_share(pg_uuid_t *order_id, bool lock)
{
	void	   *entry = order_id;

	orders_judge_orders(&entry, 1, share_open, NULL, lock);
}

/*
 * apply_review — the review of group "group_id" (see the head of this
 * file); "reviewer" non-NULL stamps the sites with it (the owner's calls);
 * "share": through a share link, judged by judge_share before and after.
 * Returns the group after the review.
 */
static Datum
apply_review(FunctionCallInfo fcinfo, Datum group_id, Jsonb *selections, const char *reviewer, bool share)
{
	ReviewEntry *entries;
	int			n;
	bool		approving = false;
	bool		items = false;
	Datum		result;
	pg_uuid_t	order_id;

	entries = read_entries(selections, &n, share);
	orders_spi_connect();
	if (share)
	{
		order_id = *DatumGetUUIDP(group_order(group_id));
		judge_share(&order_id, false);
	}
	qsort(entries, n, sizeof(ReviewEntry), cmp_site);
	if (n == 0 || !sites_by_id_only(entries, n))
		check_entries(group_id, entries, n, share); /* find the sites first */
	for (int i = 0; i < n; i++)
		approving |= strcmp(entries[i].status, "approved") == 0;
	if (n > 0 && orders_review_lock_sites(group_id, uuid_array(entries, n), approving, &items) < (uint64) n &&
		sites_by_id_only(entries, n))
		check_entries(group_id, entries, n, share); /* not all locked: which are not the group's? */
	if (n > 0)
	{
		/*
		 * The group and its order are locked by the first site that makes
		 * or takes away an item (site_items: orders_review_lock_pending),
		 * else the group by its counters (site_counts).  site_counts need
		 * not lock and check again (OR073) the order locked so: at READ
		 * COMMITTED site_items checks every row against the order as locked,
		 * which nobody else can change.  Not at REPEATABLE READ (the check
		 * stays as it was, with the transaction's snapshot), nor when a
		 * DBA's trigger on the sites could approve one after site_items, nor
		 * once this transaction writes the order (orders_review_order_written).
		 */
		OrdersReviewLocked was = orders_review_locked;
		uint64		changed;

		memset(&orders_review_locked, 0, sizeof(orders_review_locked));
		orders_review_locked.to_lock = true;
		orders_review_locked.items = items;
		orders_review_locked.group_id = *DatumGetUUIDP(group_id);
		orders_review_locked.cxt = CurrentMemoryContext;
		orders_review_locked.subxid = GetCurrentSubTransactionId();
		orders_review_locked.check_once = !IsolationUsesXactSnapshot() &&
			orders_site_items_checks_rows(orders_relid("order_site_selections"));
		PG_TRY();
		{
			changed = update_sites(group_id, entries, n, reviewer);
		}
		PG_FINALLY();
		{
			orders_review_locked = was;
		}
		PG_END_TRY();
		if (changed < (uint64) n)
			refuse_unchanged(group_id, entries, n);
		if (share)
			judge_share(&order_id, true);
	}
	result = group_row(fcinfo, group_id);
	SPI_finish();
	return result;
}

/*
 * review — apply_review of arguments 0 (order_group_id) and 1
 * (selections): selections that are not an array (NULL among them) are
 * refused first (22023), then a NULL group as no group (OR075).
 */
static Datum
review(FunctionCallInfo fcinfo, const char *reviewer, bool share)
{
	Jsonb	   *selections = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);

	if (selections == NULL || !JB_ROOT_IS_ARRAY(selections) || JB_ROOT_IS_SCALAR(selections))
		not_an_array(share);
	if (JB_ROOT_COUNT(selections) > REVIEW_MAX_ENTRIES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: %d entries in one call; at most %d", REVIEW_FUNC(share),
						(int) JB_ROOT_COUNT(selections), REVIEW_MAX_ENTRIES),
				 errhint("Review the group's sites in several calls (each one all or nothing).")));
	if (PG_ARGISNULL(0))
		group_not_found((Datum) 0);
	PG_RETURN_DATUM(apply_review(fcinfo, PG_GETARG_DATUM(0), selections, reviewer, share));
}

/*
 * orders.review_sites(order_group_id uuid, selections jsonb) — the caller's
 * review of the group's sites (see the head of this file).
 */
Datum
orders_review_sites(PG_FUNCTION_ARGS)
{
	orders_require_arg(fcinfo, 0, "orders.review_sites", "order_group_id");
	return review(fcinfo, by_owner(orders_relid("order_groups")) ? orders_current_actor() : NULL, false);
}

/*
 * orders.apply_review(order_group_id uuid, selections jsonb, who text) —
 * the review for share_review_sites: "who" (else the caller's identity) is
 * recorded as the reviewer when the extension's owner calls; anybody else
 * is recorded as itself.  Its order must be open and unpaid (OR073), as
 * the statement sees it before the review and once locked after it
 * (judge_share, 0.34.0).
 */
Datum
orders_apply_review(PG_FUNCTION_ARGS)
{
	char	   *reviewer = NULL;

	/* (0.39.0 library) 22004, as review_sites (was OR075 naming <NULL>) */
	orders_require_arg(fcinfo, 0, "orders.apply_review", "order_group_id");
	if (by_owner(orders_relid("order_groups")))
		reviewer = PG_ARGISNULL(2) ? orders_current_actor() : text_to_cstring(PG_GETARG_TEXT_PP(2));
	return review(fcinfo, reviewer, true);
}

/* any_changed — orders_column_changed for any of "names" (NULL-terminated)? The first in "*which". */
static bool
any_changed(HeapTuple oldrow, HeapTuple newrow, TupleDesc desc, const char *const *names,
			const char **which)
{
	for (int i = 0; names[i] != NULL; i++)
	{
		int			att = orders_fnumber(desc, names[i]);

		if (att > 0 && orders_column_changed(oldrow, newrow, desc, att))
		{
			*which = names[i];
			return true;
		}
	}
	return false;
}

/*
 * orders.site_review_columns() — BEFORE UPDATE ON
 * orders.order_site_selections FOR EACH ROW.  In an API request by anybody
 * but the table's owner: what the analysis found (domain, domain_id,
 * metrics) is staff's other than delivery agents' (OR060 for others), and a change of the review
 * (status, client notes, target page, anchor) records the caller as
 * reviewed_by and now() as reviewed_at — the reviewer is recorded, not
 * written.  (PL/pgSQL before 0.24.0; the same rules.)
 */
Datum
orders_site_review_columns(PG_FUNCTION_ARGS)
{
	static const char *const found[] = {"domain", "domain_id", "metrics", NULL};
	static const char *const verdict[] = {"status", "client_notes", "target_page_url", "anchor_text", NULL};
	TriggerData *trigdata = orders_trigger_data(fcinfo, "site_review_columns",
												ORDERS_TRIG_BEFORE | ORDERS_TRIG_ROW | ORDERS_TRIG_UPDATE);
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	oldrow = trigdata->tg_trigtuple;
	HeapTuple	newrow = trigdata->tg_newtuple;
	const char *which;
	pg_uuid_t	staff_id;
	const char *role;
	int			cols[2];
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (by_owner(RelationGetRelid(rel)) || !orders_api_request_now())
		return orders_trigger_result(trigdata, newrow);
	/*
	 * (0.35.0) not a delivery agent's either, who prices no item
	 * (item_price_guard): an approved site's item is priced from metrics
	 */
	if (any_changed(oldrow, newrow, desc, found, &which) &&
		(!orders_caller_staff(&staff_id, &role) || strcmp(role, "delivery_agent") == 0))
		ereport(ERROR,
				(errcode(ERRCODE_ORDERS_COLUMN_RESERVED),
				 errmsg("column \"%s\" of orders.order_site_selections is reserved to staff other than delivery agents",
						which),
				 errhint("Leave it out of the request; staff with the right permission set it.")));
	if (!any_changed(oldrow, newrow, desc, verdict, &which))
		return orders_trigger_result(trigdata, newrow);
	cols[0] = orders_fnumber(desc, "reviewed_at");
	values[0] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());	/* now() */
	cols[1] = orders_fnumber(desc, "reviewed_by");
	values[1] = CStringGetTextDatum(orders_current_actor());
	if (cols[0] <= 0 || cols[1] <= 0)
		return orders_trigger_result(trigdata, newrow);
	return orders_trigger_result(trigdata, heap_modify_tuple_by_cols(newrow, desc, 2, cols, values, nulls));
}
