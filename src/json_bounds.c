/*
 * json_bounds.c — the size of a JSON document, for the CHECK constraints
 * that bound what clients write (0.41.0):
 *
 *   orders.jsonb_bytes(value jsonb) RETURNS integer
 *
 * The size of the value's binary form, uncompressed: what it takes
 * whatever the storage made of it, in time and memory linear in that size.
 * A first cut measured the stored size (pg_column_size: a compressed value
 * passed, and its dump did not restore), a second the JSON text
 * (octet_length(x::text): a 74 kB array of numbers such as 1e131071 printed
 * as 1 GB of text, and the server ran out of memory).
 */
#include "orders.h"

#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(orders_jsonb_bytes);

/* orders.jsonb_bytes(value jsonb) — VARSIZE of the detoasted value. */
Datum
orders_jsonb_bytes(PG_FUNCTION_ARGS)
{
	Jsonb	   *value = PG_GETARG_JSONB_P(0);

	PG_RETURN_INT32((int32) VARSIZE(value));
}
