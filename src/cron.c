/*
 * cron.c: the SQL face of the cron core (core/cron.c).
 *
 * dispatch.next_runs(schedule, from, n, tz) lists fire times so users can check a
 * schedule; dispatch._cron_next(schedule, after, tz) and dispatch._cron_latest(schedule,
 * after, until, tz) are what the goal evaluator calls.  A fire past the last
 * timestamp PostgreSQL can hold (294276 AD) counts as no fire.  Time zones are PostgreSQL's own (pg_tzset/pg_localtime), handed to the
 * core as its wall-clock callback, so a schedule reads its zone exactly as
 * timestamptz does (the same zone names and rules, whatever the process's TZ or
 * libc), not through the C library.  dispatch.timezone is the zone used when
 * none is given.
 */
#include "pg_dispatch.h"

#include <ctype.h>

#include "fmgr.h"
#include "funcapi.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "cron.h"

/* Seconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define EPOCH_SHIFT ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)

PG_FUNCTION_INFO_V1(next_runs);
PG_FUNCTION_INFO_V1(_cron_next);
PG_FUNCTION_INFO_V1(_cron_latest);

static int	pg_civil(void *arg, int64_t t, CronCivil *c);
static void parse_schedule(text *schedule, CronSchedule *s);
static pg_tz *zone_named(text *name);
static int64 to_unix(TimestampTz t);
static TimestampTz from_unix(int64 t);
static bool fire_time(int64 t, TimestampTz *ts);
static void schedule_and_zone(FunctionCallInfo fcinfo, int tz_arg, CronSchedule *s, CronTz *tz);

/* CronTz callback: the wall-clock time of UTC instant t in the pg_tz at arg. */
static int
pg_civil(void *arg, int64_t t, CronCivil *c)
{
	pg_time_t	pt = (pg_time_t) t;
	struct pg_tm *tm = pg_localtime(&pt, (pg_tz *) arg);

	if (tm == NULL)
		return -1;
	c->year = tm->tm_year + 1900;
	c->month = tm->tm_mon + 1;
	c->day = tm->tm_mday;
	c->hour = tm->tm_hour;
	c->minute = tm->tm_min;
	c->second = tm->tm_sec;
	c->wday = tm->tm_wday;
	return 0;
}

/* Parses schedule into *s, or raises the parser's message as the detail. */
static void
parse_schedule(text *schedule, CronSchedule *s)
{
	char	   *str = text_to_cstring(schedule);
	char		err[CRON_ERR_LEN];

	if (cron_parse(str, s, err, sizeof(err)) < 0)
	{
		err[0] = (char) toupper((unsigned char) err[0]);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid schedule \"%s\"", str),
				 errdetail("%s.", err),
				 errhint("A schedule is five fields (minute hour day-of-month month day-of-week), a macro such as @daily, or \"N seconds\".")));
	}
}

/* Returns the time zone called name, or dispatch.timezone when name is NULL. */
static pg_tz *
zone_named(text *name)
{
	const char *zone = name ? text_to_cstring(name) : dispatch_timezone;
	pg_tz	   *tz = pg_tzset(zone);

	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" not recognized", zone)));
	return tz;
}

/* Unix seconds of t, rounded down. */
static int64
to_unix(TimestampTz t)
{
	int64		s = t / USECS_PER_SEC;

	if (t < 0 && t % USECS_PER_SEC != 0)
		s--;
	return s + EPOCH_SHIFT;
}

/* The timestamptz of Unix second t. */
static TimestampTz
from_unix(int64 t)
{
	return (t - EPOCH_SHIFT) * USECS_PER_SEC;
}

/* Sets *ts to fire time t and returns true, or false when t is CRON_NEVER or not a timestamp. */
static bool
fire_time(int64 t, TimestampTz *ts)
{
	if (t == CRON_NEVER || t - EPOCH_SHIFT >= (int64) (END_TIMESTAMP / USECS_PER_SEC))
		return false;
	*ts = from_unix(t);
	return true;
}

/* Reads the schedule (argument 0) and the time zone (argument tz_arg, NULL: the default). */
static void
schedule_and_zone(FunctionCallInfo fcinfo, int tz_arg, CronSchedule *s, CronTz *tz)
{
	parse_schedule(PG_GETARG_TEXT_PP(0), s);
	tz->to_civil = pg_civil;
	tz->arg = zone_named(PG_ARGISNULL(tz_arg) ? NULL : PG_GETARG_TEXT_PP(tz_arg));
}

/* next_runs(schedule text, from timestamptz, n int, tz text) -> setof timestamptz */
Datum
next_runs(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CronSchedule s;
	CronTz		tz;
	TimestampTz from;
	int32		n;
	int64		t;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("schedule, from and n must not be null")));
	schedule_and_zone(fcinfo, 3, &s, &tz);
	from = PG_GETARG_TIMESTAMPTZ(1);
	n = PG_GETARG_INT32(2);
	if (n < 1 || n > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be between 1 and 100000")));
	if (TIMESTAMP_NOT_FINITE(from))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from must be a finite timestamp")));

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	t = to_unix(from);
	for (int i = 0; i < n; i++)
	{
		TimestampTz fire;
		Datum		value;
		bool		isnull = false;

		t = cron_next(&s, t, &tz);
		if (!fire_time(t, &fire))
			break;
		value = TimestampTzGetDatum(fire);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}

/* _cron_next(schedule text, after timestamptz, tz text) -> the next fire, or NULL */
Datum
_cron_next(PG_FUNCTION_ARGS)
{
	CronSchedule s;
	CronTz		tz;
	TimestampTz fire;

	schedule_and_zone(fcinfo, 2, &s, &tz);
	if (!fire_time(cron_next(&s, to_unix(PG_GETARG_TIMESTAMPTZ(1)), &tz), &fire))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(fire);
}

/* _cron_latest(schedule text, after timestamptz, until timestamptz, tz text) -> the last fire in (after, until], or NULL */
Datum
_cron_latest(PG_FUNCTION_ARGS)
{
	CronSchedule s;
	CronTz		tz;
	TimestampTz fire;
	int64		last = (int64) (END_TIMESTAMP / USECS_PER_SEC) + EPOCH_SHIFT - 1;	/* until may be infinity */

	schedule_and_zone(fcinfo, 3, &s, &tz);
	if (!fire_time(cron_latest(&s, to_unix(PG_GETARG_TIMESTAMPTZ(1)),
							   Min(to_unix(PG_GETARG_TIMESTAMPTZ(2)), last), &tz), &fire))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(fire);
}
