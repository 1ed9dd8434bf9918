/*
 * cron_next.c: prints the next fire times of a cron schedule, for scripts.
 *
 *   cron_next 'EXPR' FROM_EPOCH N TZNAME
 *
 * prints the first N fire times after FROM_EPOCH, one per line in epoch seconds,
 * each computed from the one before; "never" ends the list early when the
 * schedule stops firing.  A bad schedule, zone or argument is reported on stderr
 * with exit status 2.  tests/croniter_compare.py drives it.
 */
#include "cron.h"
#include "libc_tz.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static int	parse_int(const char *text, long long min, long long max, long long *v);

/* Reads a whole decimal integer in [min, max] from text into *v; returns 0, or -1. */
static int
parse_int(const char *text, long long min, long long max, long long *v)
{
	char	   *end;

	errno = 0;
	*v = strtoll(text, &end, 10);
	return errno != 0 || end == text || *end != '\0' || *v < min || *v > max ? -1 : 0;
}

int
main(int argc, char **argv)
{
	CronSchedule s;
	char		err[CRON_ERR_LEN];
	long long	from,
				n;

	if (argc != 5)
	{
		fprintf(stderr, "usage: cron_next 'EXPR' FROM_EPOCH N TZNAME\n");
		return 2;
	}
	if (parse_int(argv[2], INT64_MIN + 1, INT64_MAX, &from) < 0 ||
		parse_int(argv[3], 0, 1000000, &n) < 0)
	{
		fprintf(stderr, "cron_next: FROM_EPOCH and N must be integers, N from 0 to 1000000\n");
		return 2;
	}
	if (libc_tz_use(argv[4]) < 0)
	{
		fprintf(stderr, "cron_next: unknown time zone \"%s\"\n", argv[4]);
		return 2;
	}
	if (cron_parse(argv[1], &s, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "cron_next: %s\n", err);
		return 2;
	}
	for (long long i = 0; i < n; i++)
	{
		int64_t		t = cron_next(&s, (int64_t) from, &libc_tz);

		if (t == CRON_NEVER)
		{
			printf("never\n");
			break;
		}
		printf("%" PRId64 "\n", t);
		from = t;
	}
	return 0;
}
