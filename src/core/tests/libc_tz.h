/*
 * libc_tz.h: a CronTz over libc's localtime_r(), for the tests of cron.c and the
 * cron_next tool.
 *
 * cron.c never reads TZ itself: the server gives it PostgreSQL's time zones, and
 * these helpers give it libc's, one zone for the whole process at a time.
 */
#ifndef DISPATCH_LIBC_TZ_H
#define DISPATCH_LIBC_TZ_H

#include "cron.h"

/* Makes zone name (such as "Europe/Berlin") the process's; returns 0, or -1 when unknown. */
extern int	libc_tz_use(const char *name);

/* The zone last chosen with libc_tz_use(). */
extern const CronTz libc_tz;

#endif							/* DISPATCH_LIBC_TZ_H */
