/*
 * json_bounds.c — the bound on a JSON document clients write, for the
 * CHECK constraints of every JSON column API roles write (0.41.0 agency
 * data and orders' metadata, 0.42.0 the rest) and the shop payloads:
 *
 *   orders.jsonb_within(value jsonb, max_bytes integer) RETURNS boolean
 *
 * True when the value's binary form, uncompressed, takes at most
 * "max_bytes" and every number in it prints in a few characters (less
 * than 10^20 in magnitude, at most 40 decimals — 0.42.0 library; 20
 * refused a JavaScript or Python double as small as 1/70000, printed
 * 0.000014285714285714286): then its JSON text is at most a small
 * multiple of its size, as for strings (a control character prints as six).
 * Both in time and memory linear in the value's size.  A first cut
 * measured the stored size (pg_column_size: a compressed value passed, and
 * its dump did not restore); a second the JSON text (octet_length(x::text):
 * a 74 kB array of numbers such as 1e131071 printed as 1 GB and the server
 * ran out of memory); a third the binary size alone (that array passed,
 * and shared_order(), pg_dump and every reader of the row ran out of
 * memory printing it).
 */
#include "orders.h"

#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(orders_jsonb_within);

/* The widest number accepted: 20 digits, a point, 40 decimals, a sign. */
#define ORDERS_JSON_NUMBER_MAX_SCALE 40

/* number_printable — does "n" print in at most about 42 characters? */
static bool
number_printable(Numeric n)
{
	static Datum limit = (Datum) 0; /* 1e20 */

	if (limit == (Datum) 0)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		limit = DirectFunctionCall3(numeric_in, CStringGetDatum("1e20"), ObjectIdGetDatum(InvalidOid),
									Int32GetDatum(-1));
		MemoryContextSwitchTo(old);
	}
	if (DatumGetInt32(DirectFunctionCall1(numeric_scale, NumericGetDatum(n))) > ORDERS_JSON_NUMBER_MAX_SCALE)
		return false;
	return DatumGetBool(DirectFunctionCall2(numeric_lt,
											DirectFunctionCall1(numeric_abs, NumericGetDatum(n)), limit));
}

/*
 * orders.jsonb_within(value jsonb, max_bytes integer) — see the head of
 * this file.  STRICT: NULL is no document.
 */
Datum
orders_jsonb_within(PG_FUNCTION_ARGS)
{
	Jsonb	   *value = PG_GETARG_JSONB_P(0);
	int32		max_bytes = PG_GETARG_INT32(1);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	bool		within = true;

	if ((int64) VARSIZE(value) > max_bytes)
		PG_RETURN_BOOL(false);
	it = JsonbIteratorInit(&value->root);
	while (within && (tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		if ((tok == WJB_VALUE || tok == WJB_ELEM) && v.type == jbvNumeric)
			within = number_printable(v.val.numeric);
	PG_FREE_IF_COPY(value, 0);
	PG_RETURN_BOOL(within);
}
