/*
 * cron.h: cron schedules of pg_dispatch, in plain C.
 *
 * cron_parse() reads pg_cron's schedule language (five fields, the @ macros and
 * "N seconds") into a CronSchedule of bit sets; cron_next() finds the next fire
 * time after an instant in a given time zone.  The time zone is a callback that
 * turns a UTC instant into local wall-clock time, so the server can use
 * PostgreSQL's pg_localtime() and the unit tests libc; everything else,
 * including the way back from wall-clock time to UTC, is computed here.
 * No PostgreSQL headers: plain C and libc.
 *
 * Semantics the callers rely on:
 * - Day of month and day of week combine as in Vixie cron and pg_cron: when either
 *   field begins with '*', a step after it included, a day must match both,
 *   otherwise either.
 * - Five-field schedules fire at second 0 of local wall-clock minutes.  A time
 *   skipped by a daylight saving change fires once, at the change; a time that
 *   occurs twice fires once, the first time (so "* * * * *" pauses for the
 *   repeated hour).
 * - A schedule that can fire at all fires within 40 years; one that cannot
 *   ("0 0 30 2 *") gets CRON_NEVER at once.
 * - "N seconds" fires at every instant whose epoch seconds are a multiple of N,
 *   whatever the time zone and its daylight saving changes.
 */
#ifndef DISPATCH_CRON_H
#define DISPATCH_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRON_ERR_LEN 160

typedef enum CronKind
{
	CRON_FIELDS,				/* five fields, or a macro standing for them */
	CRON_SECONDS,				/* "N seconds" */
	CRON_REBOOT					/* @reboot: never fires on a clock */
} CronKind;

typedef struct CronSchedule
{
	CronKind	kind;
	int			seconds;		/* CRON_SECONDS: every N seconds, 1..59 */
	uint64_t	minutes;		/* bit m set: minute m (0..59) */
	uint32_t	hours;			/* bits 0..23 */
	uint32_t	days;			/* bits 1..31 day of month */
	bool		last_day;		/* `$` was given in the day-of-month field */
	uint16_t	months;			/* bits 1..12 */
	uint8_t		weekdays;		/* bits 0..6, Sunday = 0 (7 is folded to 0) */
	bool		dom_star;		/* the day-of-month field begins with '*' */
	bool		dow_star;		/* the day-of-week field begins with '*' */
} CronSchedule;

/*
 * A local wall-clock time: month 1..12, day 1..31, wday 0..6 with Sunday = 0.
 * cron.c computes weekdays itself and does not read wday.
 */
typedef struct CronCivil
{
	int			year;
	int			month;
	int			day;
	int			hour;
	int			minute;
	int			second;
	int			wday;
} CronCivil;

/*
 * A time zone.  cron_next() calls to_civil once for `after`, then three or four
 * times per candidate wall-clock time (about a dozen more when it falls in a gap
 * made by a daylight saving change); it assumes no zone changes its UTC offset
 * twice within two days.
 */
typedef struct CronTz
{
	/* Fills *c with the local wall-clock time of UTC instant t; returns 0, or -1 on failure. */
	int			(*to_civil) (void *arg, int64_t t, CronCivil *c);
	void	   *arg;
} CronTz;

#define CRON_NEVER INT64_MIN

/*
 * Parses text into *s; returns 0, or -1 with a message in err (lower case, no
 * final period), e.g. "minute 60 is out of range (0-59)".  err may be NULL.
 */
extern int	cron_parse(const char *text, CronSchedule *s, char *err, size_t errlen);

/*
 * Returns the first fire time strictly after `after` (UTC epoch seconds) in time
 * zone tz, or CRON_NEVER when there is none: the schedule can never fire (such as
 * "0 0 30 2 *"), it is @reboot, or tz->to_civil failed.
 */
extern int64_t cron_next(const CronSchedule *s, int64_t after, const CronTz *tz);

/*
 * Returns the last fire time in (after, until] (UTC epoch seconds) in time zone tz,
 * or CRON_NEVER when there is none; it costs about log2(until - after) calls of
 * cron_next(), however many fires the span holds.
 */
extern int64_t cron_latest(const CronSchedule *s, int64_t after, int64_t until,
						   const CronTz *tz);

#endif							/* DISPATCH_CRON_H */
