/*
 * business_day.c — the shop's day (0.43.0): dates and years in the time
 * zone the database is configured with — TimeZone as the session began
 * (postgresql.conf, ALTER DATABASE or ALTER ROLE ... SET, the login's
 * options) — whatever the session SETs afterwards.  An API client picks
 * the session's zone (PostgREST's "Prefer: timezone=…"), and the ledger's
 * day, the day's summary and the year in an order number followed it: a
 * payment collected from Kiritimati was dated tomorrow, its refund from
 * Baker Island yesterday.  (0.44.0) A superuser may name the zone outright
 * in the setting orders.business_timezone, which no client can set: a
 * driver that sends TimeZone in its startup packet (pgjdbc: the JVM's)
 * sets TimeZone's reset value.
 *
 *   orders.business_date()      today in that zone (at the transaction's start)
 *   orders.business_timezone()  its name
 */
#include "orders.h"

#include <ctype.h>
#include <stdlib.h>

#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(orders_business_date);
PG_FUNCTION_INFO_V1(orders_business_timezone);

/*
 * interval_zone — (0.43.0) TimeZone's INTERVAL spelling ("INTERVAL
 * '-10:00'", as SET TIME ZONE INTERVAL stores it) as a fixed-offset zone,
 * read as check_timezone reads it ("name" begins with "interval"); NULL
 * when it does not read (or has months or days).
 */
static pg_tz *
interval_zone(const char *name)
{
	const char *p = name + 8;
	char	   *val;
	char	   *end;
	Interval   *iv;

	while (isspace((unsigned char) *p))
		p++;
	if (*p++ != '\'')
		return NULL;
	val = pstrdup(p);
	end = strchr(val, '\'');
	if (end == NULL || end[1] != '\0')
		return NULL;
	*end = '\0';
	iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(val),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	if (iv->month != 0 || iv->day != 0)
		return NULL;
	/* SQL's sign convention to Unix's */
	return pg_tzset_offset(-(iv->time / USECS_PER_SEC));
}

/*
 * zone_named — the zone "name" names, read as the TimeZone setting reads it
 * (check_timezone): an INTERVAL spelling, a number of hours east of UTC —
 * pg_tzset takes "-7" or "INTERVAL '-10:00'" for a POSIX zone of the
 * opposite sign, 14 or 20 hours off —, else a zone name; NULL when none
 * of them reads.
 */
static pg_tz *
zone_named(const char *name)
{
	char	   *end;
	double		hours = strtod(name, &end);

	/* in check_timezone's order; hours in SQL's sign convention, Unix's for pg_tzset_offset */
	if (pg_strncasecmp(name, "interval", 8) == 0)
		return interval_zone(name);
	if (end != name && *end == '\0')
		return pg_tzset_offset((long) (-hours * SECS_PER_HOUR));
	return pg_tzset(name);
}

/*
 * orders_business_timezone_check — (0.44.0) check hook of the setting
 * orders.business_timezone: empty, or a zone name or a number of hours as
 * TimeZone reads them, a zone TimeZone would take (no leap-second zone).
 * It never raises an error: it also runs while the library loads, for a
 * value set before (a raised error there failed every later load of the
 * library in the session) — so no INTERVAL spelling, which only
 * interval_in, raising, reads.
 */
bool
orders_business_timezone_check(char **newval, void **extra, GucSource source)
{
	pg_tz	   *tz;

	(void) extra;
	(void) source;
	if (*newval == NULL || **newval == '\0')
		return true;
	if (pg_strncasecmp(*newval, "interval", 8) != 0 && (tz = zone_named(*newval)) != NULL && pg_tz_acceptable(tz))
		return true;
	GUC_check_errdetail("\"%s\" is not a time zone here: a name such as Africa/Cairo, a number of hours east of UTC, or empty.",
						*newval);
	return false;
}

/*
 * orders_business_zone — the shop's zone: the setting
 * orders.business_timezone (0.44.0; superusers set it, per database) when
 * it is set, else the zone TimeZone was at the session's start (its reset
 * value: the server's, the database's or role's, a login option's — a
 * driver's startup packet too, pgjdbc's JVM zone), read as the setting
 * reads it; the session's own zone when it does not read.  Looked up again
 * only when the name changes.
 */
pg_tz *
orders_business_zone(void)
{
	static char *cached_name = NULL;
	static pg_tz *cached = NULL;
	const char *name = (orders_business_timezone_setting != NULL && *orders_business_timezone_setting != '\0')
		? orders_business_timezone_setting
		: GetConfigOptionResetString("TimeZone");

	if (name == NULL)
		return session_timezone;
	if (cached_name == NULL || strcmp(cached_name, name) != 0)
	{
		pg_tz	   *tz = zone_named(name);

		if (tz == NULL)
			return session_timezone;
		if (cached_name != NULL)
			pfree(cached_name);
		cached_name = MemoryContextStrdup(TopMemoryContext, name);
		cached = tz;
	}
	return cached;
}

/* orders_business_tm — moment "t" in the business zone, broken down; 22008 out of range. */
void
orders_business_tm(TimestampTz t, struct pg_tm *tm)
{
	fsec_t		fsec;
	int			tz;

	if (timestamp2tm(t, &tz, tm, &fsec, NULL, orders_business_zone()) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
}

/* orders.business_date() — the business day at the transaction's start. */
Datum
orders_business_date(PG_FUNCTION_ARGS)
{
	struct pg_tm tm;

	(void) fcinfo;
	orders_business_tm(GetCurrentTransactionStartTimestamp(), &tm);
	PG_RETURN_DATEADT(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE);
}

/* orders.business_timezone() — the name of the business zone (as configured). */
Datum
orders_business_timezone(PG_FUNCTION_ARGS)
{
	(void) fcinfo;
	PG_RETURN_TEXT_P(cstring_to_text(pg_get_timezone_name(orders_business_zone())));
}
