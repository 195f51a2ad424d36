/*
 * orders.c — module entry point of the orders extension: its settings.
 *
 * The capabilities live one per file: transition.c (status changes),
 * lifecycle.c (graph cache), updated_at.c, security.c (identity, owner
 * switch), spi_plans.c (kept plans), trigger_util.c (trigger boilerplate).
 */
#include "orders.h"

#include "utils/guc.h"

PG_MODULE_MAGIC;

/* orders.notify: announce status changes on channel orders_status. */
bool		orders_notify_enabled = true;

void		_PG_init(void);

/*
 * _PG_init — define the extension's settings.  orders.notify is SUSET: a
 * client must not silence the announcements others rely on; a DBA may turn
 * them off per database, role or session (or GRANT SET ON PARAMETER).
 */
void
_PG_init(void)
{
	DefineCustomBoolVariable("orders.notify",
							 "Announce each order status change with NOTIFY on channel orders_status.",
							 "PostgreSQL serializes the commits of notifying transactions; "
							 "turn this off where nobody listens and status changes are very frequent.",
							 &orders_notify_enabled,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("orders");
}
