/*
 * libc_tz.c: a CronTz over libc's localtime_r(), for the tests of cron.c and the
 * cron_next tool.
 *
 * glibc quietly falls back to UTC for a zone it cannot find, so libc_tz_use()
 * checks that the zone's file exists before setting TZ.
 */
#include "libc_tz.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int	to_civil(void *arg, int64_t t, CronCivil *c);

const CronTz libc_tz = {to_civil, NULL};

/* Fills *c with the wall-clock time of t in the process's zone; returns 0, or -1. */
static int
to_civil(void *arg, int64_t t, CronCivil *c)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	(void) arg;
	if ((int64_t) tt != t || localtime_r(&tt, &tm) == NULL || tm.tm_year > INT_MAX - 1900)
		return -1;
	*c = (CronCivil) {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		tm.tm_sec, tm.tm_wday};
	return 0;
}

int
libc_tz_use(const char *name)
{
	const char *dir = getenv("TZDIR") ? getenv("TZDIR") : "/usr/share/zoneinfo";
	char		path[4096];

	if (name[0] == '\0' || strstr(name, "..") != NULL ||
		snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path) ||
		access(path, R_OK) != 0)
		return -1;
	if (setenv("TZ", name, 1) != 0)
		return -1;
	tzset();
	return 0;
}
