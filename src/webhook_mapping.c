/*
 * webhook_mapping.c — reads what a webhook's field mapping names in a
 * payload (doc/webhooks.md): dotted paths ("shipping_address.city",
 * "line_items.0.sku"), "a | b" for the first non-empty, "a + b" for the
 * non-empty parts joined by a space.  Called some forty times per delivery,
 * hence C: the payload's binary jsonb is walked in place, nothing parsed.
 */
#include "orders.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

PG_FUNCTION_INFO_V1(orders_webhook_value);
PG_FUNCTION_INFO_V1(orders_webhook_amount);

/* trim — the bytes of [*start, *end) without leading and trailing spaces. */
static void
trim(const char **start, const char **end)
{
	while (*start < *end && **start == ' ')
		(*start)++;
	while (*end > *start && (*end)[-1] == ' ')
		(*end)--;
}

/*
 * orders_json_text — JSON value "v" as ->> and #>> give it: a string's
 * characters, a number's digits, true/false, a container's JSON; NULL for
 * JSON null.
 */
char *
orders_json_text(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			return NULL;
	}
}

/*
 * path_value — the text of what path [p, end) names in "root", as #>> gives
 * it (a string's characters, a number's digits, true/false, a container's
 * JSON), or NULL when nothing (or JSON null) is there.  Array elements are
 * named by their index.
 */
static char *
path_value(JsonbContainer *root, const char *p, const char *end)
{
	JsonbContainer *c = root;
	JsonbValue *v = NULL;

	trim(&p, &end);
	if (p == end)
		return NULL;
	while (p <= end)
	{
		const char *dot = memchr(p, '.', end - p);
		const char *seg_end = dot ? dot : end;

		if (c == NULL)
			return NULL;		/* a path below a scalar */
		if (JsonContainerIsObject(c))
			v = getKeyJsonValueFromContainer(c, p, seg_end - p, NULL);
		else if (JsonContainerIsArray(c))
		{
			long		i = 0;
			const char *q;

			if (seg_end == p || seg_end - p > 9)
				return NULL;
			for (q = p; q < seg_end; q++)
			{
				if (*q < '0' || *q > '9')
					return NULL;
				i = i * 10 + (*q - '0');
			}
			v = getIthJsonbValueFromContainer(c, (uint32) i);
		}
		else
			return NULL;
		if (v == NULL)
			return NULL;
		c = v->type == jbvBinary ? v->val.binary.data : NULL;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	return orders_json_text(v);
}

/*
 * spec_value — the first alternative of spec [s, send) (split at '|') whose
 * parts (split at '+'), each a path trimmed of spaces, give a non-empty
 * text; the parts' texts trimmed and joined by one space.  NULL when no
 * alternative gives any.
 */
static char *
spec_value(Jsonb *doc, const char *s, const char *send)
{
	StringInfoData out;

	if (JB_ROOT_IS_SCALAR(doc))
		return NULL;
	initStringInfo(&out);
	while (s <= send)
	{
		const char *bar = memchr(s, '|', send - s);
		const char *alt_end = bar ? bar : send;
		const char *p = s;

		resetStringInfo(&out);
		while (p <= alt_end)
		{
			const char *plus = memchr(p, '+', alt_end - p);
			const char *part_end = plus ? plus : alt_end;
			char	   *piece = path_value(&doc->root, p, part_end);

			if (piece != NULL)
			{
				const char *a = piece;
				const char *b = piece + strlen(piece);

				trim(&a, &b);
				if (a < b)
				{
					if (out.len > 0)
						appendStringInfoChar(&out, ' ');
					appendBinaryStringInfo(&out, a, b - a);
				}
				/* each piece freed once copied: alternatives do not add up (0.37.0) */
				pfree(piece);
			}
			if (plus == NULL)
				break;
			p = plus + 1;
		}
		if (out.len > 0)
			return out.data;
		if (bar == NULL)
			break;
		s = bar + 1;
	}
	return NULL;
}

/* orders_webhook_value(doc jsonb, spec text) RETURNS text, STRICT — spec_value. */
Datum
orders_webhook_value(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc = PG_GETARG_JSONB_P(0);
	text	   *spec = PG_GETARG_TEXT_PP(1);
	char	   *v = spec_value(doc, VARDATA_ANY(spec), VARDATA_ANY(spec) + VARSIZE_ANY_EXHDR(spec));

	if (v == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(v));
}

/* is_number — [-]digits[.digits][e[+-]digits], or, unsigned and without an exponent, when !signed_ok. */
static bool
is_number(const char *v, bool signed_ok)
{
	const char *p = v;

	if (*p == '-' && signed_ok)
		p++;
	if (!isdigit((unsigned char) *p))
		return false;
	while (isdigit((unsigned char) *p))
		p++;
	if (*p == '.')
	{
		p++;
		if (!isdigit((unsigned char) *p))
			return false;
		while (isdigit((unsigned char) *p))
			p++;
	}
	if (signed_ok && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char) *p))
			return false;
		while (isdigit((unsigned char) *p))
			p++;
	}
	return *p == '\0';
}

/*
 * orders_webhook_amount(doc jsonb, spec text) RETURNS numeric — an amount
 * of a payload: what "spec" names (a number or a numeric string), or with
 * "a / b" the first over the second (WooCommerce's line subtotal over
 * quantity), rounded to cents.  NULL when a part is missing; 22P02 naming
 * the value when it is not a number (NaN and infinities included) or the
 * divisor is not a positive unsigned number; (0.43.0) 22003 for a value
 * (not a quotient) in fractions of a cent, which the orders' amounts
 * (numeric(12,2)) cannot keep: a total of 1.255 BHD was kept as 1.26 — the
 * customer was asked for more than the shop charged — and 1000 items at
 * 0.004 were lines of 0.00.
 */
Datum
orders_webhook_amount(PG_FUNCTION_ARGS)
{
	Jsonb	   *doc;
	text	   *spec;
	const char *s;
	const char *send;
	const char *slash;
	char	   *v;
	char	   *d = NULL;
	Datum		n;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	doc = PG_GETARG_JSONB_P(0);
	spec = PG_GETARG_TEXT_PP(1);
	s = VARDATA_ANY(spec);
	send = s + VARSIZE_ANY_EXHDR(spec);
	slash = memchr(s, '/', send - s);
	v = spec_value(doc, s, slash ? slash : send);
	if (slash)
		d = spec_value(doc, slash + 1, send);
	if (v == NULL || (slash && d == NULL))
		PG_RETURN_NULL();
	if (!is_number(v, true) || (d && !is_number(d, false)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("webhook payload: \"%s\" is not an amount",
						orders_clip(d ? psprintf("%s / %s", v, d) : v))));
	n = DirectFunctionCall3(numeric_in, CStringGetDatum(v), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	if (d)
	{
		Datum		div = DirectFunctionCall3(numeric_in, CStringGetDatum(d),
											  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));

		if (DatumGetBool(DirectFunctionCall2(numeric_eq, div, DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("webhook payload: \"%s\" is not an amount", orders_clip(psprintf("%s / %s", v, d)))));
		n = DirectFunctionCall2(numeric_div, n, div);
	}
	else if (!DatumGetBool(DirectFunctionCall2(numeric_eq, n,
											   DirectFunctionCall2(numeric_round, n, Int32GetDatum(2)))))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("webhook payload: amount \"%s\" has fractions of a cent", orders_clip(v)),
				 errdetail("Orders keep amounts in cents (two decimals); a currency of three decimals cannot be taken exactly.")));
	PG_RETURN_DATUM(DirectFunctionCall2(numeric_round, n, Int32GetDatum(2)));
}
