/*
 * ids.c — row ids that say where they live.
 *
 *   orders.new_id()           the default of every id column: a uuid of
 *                             version 8 (RFC 9562's vendor layout) holding
 *                             48 bits of Unix milliseconds, the version, the
 *                             12-bit partition of this database
 *                             (orders.partition), the variant, then 62
 *                             random bits.
 *   orders.partition_of(id)   the partition an id was made in: its 12 bits
 *                             for a version-8 id, 0 for any other uuid (ids
 *                             made before 0.12.0, or by a client).
 *
 * A proxy in front of several databases (doc/scale-out.md) routes a call by
 * the partition of the id it names, without a lookup table.  Ids are also
 * time-ordered, so each table's primary key grows at its right edge.
 */
#include "orders.h"

#include "datatype/timestamp.h"
#include "miscadmin.h"
#include "port.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(orders_new_id);
PG_FUNCTION_INFO_V1(orders_partition_of);

#define UUID_VERSION_PARTITIONED 8

/*
 * Random bytes for ids, drawn from the system's strong source
 * (pg_strong_random: OpenSSL's, which takes its locks on every call) a block
 * at a time, so that one call serves 64 ids.  A block belongs to the process
 * that drew it: a process forked after a draw (the library preloaded in the
 * postmaster) draws its own, never a copy of its parent's.
 */
#define RANDOM_BLOCK 512
static uint8 random_block[RANDOM_BLOCK];
static int	random_used = RANDOM_BLOCK;
static int	random_pid = 0;

/* random_bytes — "n" (at most RANDOM_BLOCK) strong random bytes, never
 * served twice. */
static void
random_bytes(uint8 *out, int n)
{
	if (random_pid != MyProcPid || random_used + n > RANDOM_BLOCK)
	{
		if (!pg_strong_random(random_block, RANDOM_BLOCK))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate random values")));
		random_used = 0;
		random_pid = MyProcPid;
	}
	memcpy(out, random_block + random_used, n);
	random_used += n;
}

/*
 * orders_make_id — a version-8 id made at "now" in this database's
 * partition.  Never fails but when the system's random source does.
 */
Datum
orders_make_id(TimestampTz now)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));
	uint64		ms = (uint64) (now / 1000 +
							   (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000);

	random_bytes(u->data + 8, UUID_LEN - 8);
	for (int i = 0; i < 6; i++)
		u->data[i] = (uint8) (ms >> (8 * (5 - i)));
	u->data[6] = (uint8) ((UUID_VERSION_PARTITIONED << 4) | ((orders_partition >> 8) & 0x0f));
	u->data[7] = (uint8) (orders_partition & 0xff);
	u->data[8] = (u->data[8] & 0x3f) | 0x80;	/* RFC 9562 variant */
	return UUIDPGetDatum(u);
}

/* id_partition — the partition of an id (0 unless made by new_id). */
static int
id_partition(const pg_uuid_t *id)
{
	if ((id->data[6] >> 4) != UUID_VERSION_PARTITIONED)
		return 0;
	return ((id->data[6] & 0x0f) << 8) | id->data[7];
}

/* orders.new_id() — a fresh id of this database's partition. */
Datum
orders_new_id(PG_FUNCTION_ARGS)
{
	(void) fcinfo;
	return orders_make_id(GetCurrentTimestamp());
}

/* orders.partition_of(id uuid) — the partition the id was made in. */
Datum
orders_partition_of(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(id_partition(PG_GETARG_UUID_P(0)));
}
