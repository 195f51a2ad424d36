/*
 * orders.c — module entry point of the orders extension.
 *
 * The capabilities live one per file: transition.c (status changes),
 * lifecycle.c (graph cache), updated_at.c, security.c (identity, owner
 * switch), spi_plans.c (kept plans), trigger_util.c (trigger boilerplate).
 */
#include "orders.h"

PG_MODULE_MAGIC;
