/*
 * webhook_signature.c — checks a shop's webhook signature with PostgreSQL's
 * own HMAC (no pgcrypto): base64(HMAC-SHA256(secret, body as received)), as
 * Shopify sends in X-Shopify-Hmac-Sha256 and WooCommerce in
 * X-WC-Webhook-Signature.
 *
 * The function answers only "matches or not": it never returns a digest, so
 * it cannot be used to sign payloads.  EXECUTE is revoked from PUBLIC; the
 * ingest function (SECURITY DEFINER) is its caller.
 */
#include "orders.h"

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "mb/pg_wchar.h"

PG_FUNCTION_INFO_V1(orders_webhook_signature_ok);

/*
 * utf8_bytes — the bytes of "t" in UTF-8 and their number: the text itself
 * in a UTF8 database, and in a SQL_ASCII one, whose bytes are whatever the
 * client sent (converting them would check them as UTF-8: 22021 for a
 * shop's Latin-1 byte, unlogged, where the answer is 401); else converted.
 */
static const char *
utf8_bytes(text *t, size_t *len)
{
	const char *s = VARDATA_ANY(t);
	const char *u;
	int			enc = GetDatabaseEncoding();

	*len = VARSIZE_ANY_EXHDR(t);
	if (enc == PG_UTF8 || enc == PG_SQL_ASCII)
		return s;
	u = pg_server_to_any(s, *len, PG_UTF8);
	if (u != s)
		*len = strlen(u);
	return u;
}

/*
 * orders_webhook_signature_ok(secret text, body text, signature text)
 * RETURNS boolean, STRICT — true when "signature" is the base64 of
 * HMAC-SHA256 keyed by "secret" over the bytes of "body".  The digests are
 * compared in constant time; a signature that is not base64 of 32 bytes is
 * simply false.  (0.44.0) Secret and body are hashed in UTF-8, the bytes a
 * shop signed: in a database of another encoding (LATIN1) the text arrived
 * converted, and every order with an accented letter failed its signature.
 */
Datum
orders_webhook_signature_ok(PG_FUNCTION_ARGS)
{
	text	   *secret = PG_GETARG_TEXT_PP(0);
	text	   *body = PG_GETARG_TEXT_PP(1);
	text	   *signature = PG_GETARG_TEXT_PP(2);
	int			siglen = VARSIZE_ANY_EXHDR(signature);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *given;
	int			givenlen;
	uint8		diff = 0;
	const char *key;
	const char *data;
	size_t		keylen;
	size_t		datalen;
	pg_hmac_ctx *ctx;

	/*
	 * base64 of 32 bytes is 44 characters, padded, as both shops send it:
	 * anything else — whitespace, a missing pad, base64url, hex — fails the
	 * decode or its length (PostgreSQL's decoder takes no whitespace); the
	 * bound only keeps a long header from being decoded at all
	 */
	if (siglen == 0 || siglen > 64)
		PG_RETURN_BOOL(false);
	given = palloc(pg_b64_dec_len(siglen) + 1);
	givenlen = pg_b64_decode(VARDATA_ANY(signature), siglen, given, pg_b64_dec_len(siglen));
	if (givenlen != PG_SHA256_DIGEST_LENGTH)
		PG_RETURN_BOOL(false);

	key = utf8_bytes(secret, &keylen);
	data = utf8_bytes(body, &datalen);
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL ||
		pg_hmac_init(ctx, (const uint8 *) key, keylen) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, datalen) < 0 ||
		pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
	{
		const char *why = ctx ? pg_hmac_error(ctx) : "out of memory";

		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not compute the HMAC-SHA256 of a webhook payload: %s", why)));
	}
	pg_hmac_free(ctx);

	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		diff |= digest[i] ^ (uint8) given[i];
	PG_RETURN_BOOL(diff == 0);
}
