/*
 * test_cron.c: unit tests of the cron schedule parser and next-fire search (cron.c).
 *
 * Parsing is checked through a rendering of the bit sets ("0 9-17 1-31 1-12 1-5
 * and"), so every accepted form reads as what it means; every rejected form is one
 * line, with the message for most.  Fire times are written as local wall-clock
 * times with their UTC offset ("2024-03-31 03:00 +0200"), so the daylight saving
 * cases read like the clocks people see.  Time zones come from libc (libc_tz.c).
 * A randomised test compares cron_next() in UTC with a plain day-by-day scan.
 */
#include "cron.h"
#include "libc_tz.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A fire time case: want lists the fire times after from, separated by "; ". */
typedef struct NextCase
{
	const char *zone;
	const char *text;
	const char *from;			/* as parse_local() reads it */
	const char *want;
} NextCase;

static int	passed;
static int	failed;
static int	civil_calls;

static void check(bool ok, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static void render_bits(uint64_t bits, int lo, int hi, char *buf, size_t len);
static void render(const CronSchedule *s, char *buf, size_t len);
static void expect_parse(const char *text, const char *want);
static void expect_error(const char *text, const char *want);
static int64_t parse_local(const char *text);
static void format_local(int64_t t, char *buf, size_t len);
static int	flaky_to_civil(void *arg, int64_t t, CronCivil *c);
static int	counting_to_civil(void *arg, int64_t t, CronCivil *c);
static void expect_next(const NextCase *c);
static bool reference_matches(const CronSchedule *s, int64_t t);
static bool fires_some_day(const CronSchedule *s);
static void test_parse(void);
static void test_other_kinds(void);
static void test_random(void);
static int64_t latest_by_walking(const CronSchedule *s, int64_t after, int64_t until);
static void test_latest(void);

/* Counts one result; prints the formatted description when ok is false. */
static void
check(bool ok, const char *fmt,...)
{
	va_list		ap;

	if (ok)
	{
		passed++;
		return;
	}
	failed++;
	fprintf(stderr, "FAIL ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* Renders the set bits lo..hi as a list of runs ("1-5,7"). */
static void
render_bits(uint64_t bits, int lo, int hi, char *buf, size_t len)
{
	size_t		used = 0;

	buf[0] = '\0';
	for (int v = lo; v <= hi; v++)
	{
		int			end = v;

		if (!(bits >> v & 1))
			continue;
		while (end < hi && (bits >> (end + 1) & 1))
			end++;
		used += snprintf(buf + used, len - used, end > v ? "%s%d-%d" : "%s%d",
						 used ? "," : "", v, end);
		v = end;
	}
}

/* Renders s as "minutes hours days months weekdays and|or", "every N seconds" or "reboot". */
static void
render(const CronSchedule *s, char *buf, size_t len)
{
	char		f[5][200];

	if (s->kind != CRON_FIELDS)
	{
		snprintf(buf, len, s->kind == CRON_REBOOT ? "reboot" : "every %d seconds", s->seconds);
		return;
	}
	render_bits(s->minutes, 0, 59, f[0], sizeof(f[0]));
	render_bits(s->hours, 0, 23, f[1], sizeof(f[1]));
	render_bits(s->days, 1, 31, f[2], sizeof(f[2]));
	if (s->last_day)
		strcat(f[2], f[2][0] ? ",$" : "$");
	render_bits(s->months, 1, 12, f[3], sizeof(f[3]));
	render_bits(s->weekdays, 0, 7, f[4], sizeof(f[4]));
	snprintf(buf, len, "%s %s %s %s %s %s", f[0], f[1], f[2], f[3], f[4],
			 s->dom_star || s->dow_star ? "and" : "or");
}

/* Parses text and compares its rendering with want. */
static void
expect_parse(const char *text, const char *want)
{
	CronSchedule s;
	char		err[CRON_ERR_LEN];
	char		got[1200];

	if (cron_parse(text, &s, err, sizeof(err)) < 0)
	{
		check(false, "parse \"%s\": %s", text, err);
		return;
	}
	render(&s, got, sizeof(got));
	check(strcmp(got, want) == 0, "parse \"%s\"\n  want %s\n  got  %s", text, want, got);
}

/* Checks that text is rejected, with message want when it is not NULL. */
static void
expect_error(const char *text, const char *want)
{
	CronSchedule s;
	char		err[CRON_ERR_LEN];

	if (cron_parse(text, &s, err, sizeof(err)) == 0)
		check(false, "\"%s\" was accepted", text);
	else
		check(err[0] != '\0' && (want == NULL || strcmp(err, want) == 0),
			  "error for \"%s\"\n  want %s\n  got  %s", text, want ? want : "(any)", err);
}

/* Returns the instant of "YYYY-MM-DD HH:MM +HHMM", a wall-clock time and its offset. */
static int64_t
parse_local(const char *text)
{
	struct tm	tm = {0};
	int			off;

	if (sscanf(text, "%d-%d-%d %d:%d %d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &off) != 6)
	{
		fprintf(stderr, "bad time in a test: %s\n", text);
		exit(2);
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t) timegm(&tm) - (off / 100 * 3600 + off % 100 * 60);
}

/* Formats t in the current zone as parse_local() reads it, or "never". */
static void
format_local(int64_t t, char *buf, size_t len)
{
	time_t		tt = (time_t) t;
	struct tm	tm;

	if (t == CRON_NEVER)
		snprintf(buf, len, "never");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M %z", localtime_r(&tt, &tm));
}

/* libc_tz's callback while civil_calls, counted up by each call, is negative; then -1. */
static int
flaky_to_civil(void *arg, int64_t t, CronCivil *c)
{
	return civil_calls++ < 0 ? libc_tz.to_civil(arg, t, c) : -1;
}

/* libc_tz's callback, counting its calls. */
static int
counting_to_civil(void *arg, int64_t t, CronCivil *c)
{
	civil_calls++;
	return libc_tz.to_civil(arg, t, c);
}

/*
 * Checks the fire times of case c, each computed from the one before.  Also checks
 * that no search costs more than 30 calls of the time zone callback.
 */
static void
expect_next(const NextCase *c)
{
	CronSchedule s;
	CronTz		tz = {counting_to_civil, NULL};
	char		err[CRON_ERR_LEN];
	char		got[1024] = "";
	size_t		used = 0;
	int64_t		t = parse_local(c->from);
	int			most = 0;

	if (libc_tz_use(c->zone) < 0 || cron_parse(c->text, &s, err, sizeof(err)) < 0)
	{
		check(false, "%s in %s: %s", c->text, c->zone, err);
		return;
	}
	while (used < sizeof(got) - 40)
	{
		civil_calls = 0;
		t = cron_next(&s, t, &tz);
		most = civil_calls > most ? civil_calls : most;
		used += snprintf(got + used, sizeof(got) - used, "%s", used ? "; " : "");
		format_local(t, got + used, sizeof(got) - used);
		used = strlen(got);
		if (t == CRON_NEVER || strncmp(got, c->want, used) != 0 || used >= strlen(c->want))
			break;
	}
	check(strcmp(got, c->want) == 0 && most <= 30,
		  "\"%s\" in %s after %s\n  want %s\n  got  %s (at most %d time zone calls)",
		  c->text, c->zone, c->from, c->want, got, most);
}

/* Every accepted form, one per line, and its rendering. */
static const char *const parse_cases[][2] = {
	{"* * * * *", "0-59 0-23 1-31 1-12 0-6 and"},
	{"0 0 1 1 0", "0 0 1 1 0 or"},
	{"59 23 31 12 6", "59 23 31 12 6 or"},
	{"  \t0 12 * * *\t \n", "0 12 1-31 1-12 0-6 and"},
	{"0\t12  *\t* *", "0 12 1-31 1-12 0-6 and"},
	{"05 007 0009 * *", "5 7 9 1-12 0-6 and"},
	{"1-5 9-17 * * *", "1-5 9-17 1-31 1-12 0-6 and"},
	{"0,15,30,45 * * * *", "0,15,30,45 0-23 1-31 1-12 0-6 and"},
	{"1-3,7,20-22 * * * *", "1-3,7,20-22 0-23 1-31 1-12 0-6 and"},
	{"*/15 */6 * * *", "0,15,30,45 0,6,12,18 1-31 1-12 0-6 and"},
	{"10-30/10 1-23/11 * * *", "10,20,30 1,12,23 1-31 1-12 0-6 and"},
	{"0,*/20,5-9/2 * * * *", "0,5,7,9,20,40 0-23 1-31 1-12 0-6 and"},
	{"5-5 * * * *", "5 0-23 1-31 1-12 0-6 and"},
	{"*/59 * * * *", "0,59 0-23 1-31 1-12 0-6 and"},
	{"* * */31 * *", "0-59 0-23 1 1-12 0-6 and"},
	{"0 0 $ * *", "0 0 $ 1-12 0-6 and"},
	{"0 0 1,$ * *", "0 0 1,$ 1-12 0-6 and"},
	{"0 0 $,15 * 1", "0 0 15,$ 1-12 1 or"},
	{"0 0 * jan *", "0 0 1-31 1 0-6 and"},
	{"0 0 * JAN-Mar,jUl,oct-dec/2 *", "0 0 1-31 1-3,7,10,12 0-6 and"},
	{"0 0 * 1-dec/3 *", "0 0 1-31 1,4,7,10 0-6 and"},
	{"0 0 * * mon-fri", "0 0 1-31 1-12 1-5 and"},
	{"0 0 * * SUN,Sat", "0 0 1-31 1-12 0,6 and"},
	{"0 0 * * fri-sun", "0 0 1-31 1-12 0,5-6 and"},
	{"0 0 * * sun-sun", "0 0 1-31 1-12 0 and"},
	{"0 0 * * 0-sun", "0 0 1-31 1-12 0 and"},
	{"0 0 * * sun-tue", "0 0 1-31 1-12 0-2 and"},
	{"0 0 * * 7", "0 0 1-31 1-12 0 and"},
	{"0 0 * * 5-7", "0 0 1-31 1-12 0,5-6 and"},
	{"0 0 * * 0-7", "0 0 1-31 1-12 0-6 and"},
	{"0 0 * * */2", "0 0 1-31 1-12 0,2,4,6 and"},
	{"0 0 * * 1-7/2", "0 0 1-31 1-12 0-1,3,5 and"},
	{"0 0 1,15 * 1", "0 0 1,15 1-12 1 or"},
	{"0 0 */2 * 1", "0 0 1,3,5,7,9,11,13,15,17,19,21,23,25,27,29,31 1-12 1 and"},
	{"0 0 1 * */1", "0 0 1 1-12 0-6 and"},
	{"0 0 1-31 * 1", "0 0 1-31 1-12 1 or"},
	{"0 0 *,1 * 1", "0 0 1-31 1-12 1 and"},
	{"@yearly", "0 0 1 1 0-6 and"},
	{"@annually", "0 0 1 1 0-6 and"},
	{"@monthly", "0 0 1 1-12 0-6 and"},
	{"@weekly", "0 0 1-31 1-12 0 and"},
	{"@daily", "0 0 1-31 1-12 0-6 and"},
	{"@midnight", "0 0 1-31 1-12 0-6 and"},
	{"@hourly", "0 0-23 1-31 1-12 0-6 and"},
	{" @HOURLY ", "0 0-23 1-31 1-12 0-6 and"},
	{"@reboot", "reboot"},
	{"@Reboot", "reboot"},
	{"@restart", "reboot"},
	{"1 second", "every 1 seconds"},
	{"10 seconds", "every 10 seconds"},
	{" 59   SECONDS ", "every 59 seconds"},
	{"05 Second", "every 5 seconds"},
};

/* Every rejected form, one per line, and its message (NULL: any message). */
static const char *const error_cases[][2] = {
	{"", "empty schedule"},
	{"  \t\n", "empty schedule"},
	{NULL, "empty schedule"},
	{"* * * *", "a schedule has five fields, found 4"},
	{"*", "a schedule has five fields, found 1"},
	{"* * * * * *", "a schedule has five fields, found 6"},
	{"0 0 * * * * * *", "a schedule has five fields, found 8"},
	{"60 * * * *", "minute 60 is out of range (0-59)"},
	{"* 24 * * *", "hour 24 is out of range (0-23)"},
	{"* * 0 * *", "day of month 0 is out of range (1-31)"},
	{"* * 32 * *", "day of month 32 is out of range (1-31)"},
	{"* * * 0 *", "month 0 is out of range (1-12)"},
	{"* * * 13 *", "month 13 is out of range (1-12)"},
	{"* * * * 8", "day of week 8 is out of range (0-7)"},
	{"0-60 * * * *", "minute 60 is out of range (0-59)"},
	{"* 5-1 * * *", "reversed range 5-1 in the hour field"},
	{"* * * * fri-mon", "reversed range fri-mon in the day-of-week field"},
	{"* * * dec-jan *", "reversed range dec-jan in the month field"},
	{"* * * * 6-0", "reversed range 6-0 in the day-of-week field"},
	{"*/0 * * * *", "step 0 is out of range (1-59) in the minute field"},
	{"1-5/0 * * * *", "step 0 is out of range (1-59) in the minute field"},
	{"* */24 * * *", "step 24 is out of range (1-23) in the hour field"},
	{"5/10 * * * *",
	 "a step needs a range in the minute field: write \"5-59/10\", not \"5/10\""},
	{"* * * jan/2 *",
	 "a step needs a range in the month field: write \"jan-12/2\", not \"jan/2\""},
	{"*/ * * * *", "invalid step \"*/\" in the minute field"},
	{"*/x * * * *", "invalid step \"*/x\" in the minute field"},
	{"*/-1 * * * *", "invalid step \"*/-1\" in the minute field"},
	{"5x * * * *", "unexpected \"x\" after the minute field"},
	{"0 0 * * 5x", "unexpected \"x\" after the day-of-week field"},
	{"*/5x * * * *", "unexpected \"x\" after the minute field"},
	{"** * * * *", "unexpected \"*\" after the minute field"},
	{"*5 * * * *", "unexpected \"5\" after the minute field"},
	{"1-2-3 * * * *", "unexpected \"-3\" after the minute field"},
	{"1/2/3 * * * *", NULL},
	{"1- * * * *", "incomplete range \"1-\" in the minute field"},
	{"* 1-,5 * * *", "incomplete range \"1-\" in the hour field"},
	{"1--3 * * * *", "incomplete range \"1--3\" in the minute field"},
	{",5 * * * *", "empty list item in the minute field"},
	{"5, * * * *", "empty list item in the minute field"},
	{"5,,6 * * * *", "empty list item in the minute field"},
	{"-5 * * * *", "unexpected \"-5\" in the minute field"},
	{"+5 * * * *", "unexpected \"+5\" in the minute field"},
	{"5.0 * * * *", "unexpected \".0\" after the minute field"},
	{"* * * * mon-", "incomplete range \"mon-\" in the day-of-week field"},
	{"* * * * monday", "unrecognized value \"monday\" in the day-of-week field"},
	{"* * * foo *", "unrecognized value \"foo\" in the month field"},
	{"* * * * jan", "unrecognized value \"jan\" in the day-of-week field"},
	{"* * mon * *", "unrecognized value \"mon\" in the day-of-month field"},
	{"x * * * *", "unrecognized value \"x\" in the minute field"},
	{"$ * * * *", "\"$\" (the last day of the month) is only valid in the day-of-month field, not in the minute field"},
	{"* * * $ *", NULL},
	{"* * * * $", NULL},
	{"0 0 $x * *", "unexpected \"x\" after the day-of-month field"},
	{"0 0 25-$ * *", "incomplete range \"25-$\" in the day-of-month field"},
	{"0 0 $-5 * *", "unexpected \"-5\" after the day-of-month field"},
	{"0 0 $/2 * *", "unexpected \"/2\" after the day-of-month field"},
	{"00000 * * * *", "number 00000 has too many digits in the minute field"},
	{"99999999999999999999 * * * *",
	 "number 99999999999999999999 has too many digits in the minute field"},
	{"* */99999999999 * * *",
	 "invalid step \"*/99999999999\" in the hour field"},
	{"@foo", "unrecognized macro \"@foo\""},
	{"@", "unrecognized macro \"@\""},
	{"@restar", "unrecognized macro \"@restar\""},
	{"@daily *", "unexpected \"*\" after @daily"},
	{"@ daily", "unrecognized macro \"@\""},
	{"0 seconds", "interval of 0 seconds is out of range (1-59)"},
	{"60 seconds", "interval of 60 seconds is out of range (1-59)"},
	{"100000 seconds", "invalid number of seconds \"100000\""},
	{"-5 seconds", "invalid number of seconds \"-5\""},
	{"5s seconds", "invalid number of seconds \"5s\""},
	{"seconds", "a schedule has five fields, found 1"},
	{"5 secs", "a schedule has five fields, found 2"},
	{"5 seconds later", "a schedule has five fields, found 3"},
	{"5seconds", "a schedule has five fields, found 1"},
};

/* Month ends, leap years, "$", the day-of-month / day-of-week rule, the macros. */
static const NextCase calendar_cases[] = {
	{"UTC", "0 12 31 * *", "2024-01-31 12:00 +0000",
	 "2024-03-31 12:00 +0000; 2024-05-31 12:00 +0000; 2024-07-31 12:00 +0000; "
	 "2024-08-31 12:00 +0000"},
	{"UTC", "59 23 * * *", "2023-12-31 23:59 +0000",
	 "2024-01-01 23:59 +0000; 2024-01-02 23:59 +0000"},
	{"UTC", "* * * * *", "2023-12-31 23:58 +0000",
	 "2023-12-31 23:59 +0000; 2024-01-01 00:00 +0000; 2024-01-01 00:01 +0000"},
	{"UTC", "0 0 * * *", "2024-02-28 23:59 +0000",
	 "2024-02-29 00:00 +0000; 2024-03-01 00:00 +0000"},
	{"UTC", "30 6 29 2 *", "2023-01-01 00:00 +0000",
	 "2024-02-29 06:30 +0000; 2028-02-29 06:30 +0000; 2032-02-29 06:30 +0000"},
	{"UTC", "0 0 29 2 *", "2096-03-01 00:00 +0000",
	 "2104-02-29 00:00 +0000"},
	{"UTC", "0 0 $ 2 *", "2023-01-01 00:00 +0000",
	 "2023-02-28 00:00 +0000; 2024-02-29 00:00 +0000; 2025-02-28 00:00 +0000"},
	{"UTC", "0 0 $ 2 *", "2099-03-01 00:00 +0000",
	 "2100-02-28 00:00 +0000; 2101-02-28 00:00 +0000"},
	{"UTC", "0 0 1,$ * *", "2024-01-15 00:00 +0000",
	 "2024-01-31 00:00 +0000; 2024-02-01 00:00 +0000; 2024-02-29 00:00 +0000; "
	 "2024-03-01 00:00 +0000; 2024-03-31 00:00 +0000; 2024-04-01 00:00 +0000; "
	 "2024-04-30 00:00 +0000"},
	/* Both restricted: either matches (the 1st, the 15th, every Monday). */
	{"UTC", "0 0 1,15 * 1", "2023-12-31 12:00 +0000",
	 "2024-01-01 00:00 +0000; 2024-01-08 00:00 +0000; 2024-01-15 00:00 +0000; "
	 "2024-01-22 00:00 +0000; 2024-01-29 00:00 +0000; 2024-02-01 00:00 +0000; "
	 "2024-02-05 00:00 +0000"},
	/* Day of month begins with '*': both must match (Mondays with an odd date). */
	{"UTC", "0 0 */2 * 1", "2023-12-31 12:00 +0000",
	 "2024-01-01 00:00 +0000; 2024-01-15 00:00 +0000; 2024-01-29 00:00 +0000; "
	 "2024-02-05 00:00 +0000; 2024-02-19 00:00 +0000"},
	{"UTC", "0 0 * * 1", "2024-01-02 00:00 +0000",
	 "2024-01-08 00:00 +0000; 2024-01-15 00:00 +0000"},
	{"UTC", "0 0 1 * *", "2024-01-02 00:00 +0000",
	 "2024-02-01 00:00 +0000; 2024-03-01 00:00 +0000"},
	/* A list covering every day does not begin with '*': either, so every day. */
	{"UTC", "0 0 1-31 * 1", "2024-01-02 00:00 +0000",
	 "2024-01-03 00:00 +0000; 2024-01-04 00:00 +0000"},
	/* Day of week begins with '*': the 1st when it is a Sunday. */
	{"UTC", "0 0 1 * */7", "2024-01-01 00:00 +0000",
	 "2024-09-01 00:00 +0000; 2024-12-01 00:00 +0000; 2025-06-01 00:00 +0000"},
	{"UTC", "0 0 $ * 5", "2024-05-01 00:00 +0000",
	 "2024-05-03 00:00 +0000; 2024-05-10 00:00 +0000; 2024-05-17 00:00 +0000; "
	 "2024-05-24 00:00 +0000; 2024-05-31 00:00 +0000; 2024-06-07 00:00 +0000; "
	 "2024-06-14 00:00 +0000; 2024-06-21 00:00 +0000; 2024-06-28 00:00 +0000; "
	 "2024-06-30 00:00 +0000"},
	/* The rarest date: February 29th on a Sunday, 40 years apart across 2100. */
	{"UTC", "0 0 29 2 */7", "2089-01-01 00:00 +0000", "2128-02-29 00:00 +0000"},
	{"UTC", "0 0 30 2 1", "2024-01-01 00:00 +0000",
	 "2024-02-05 00:00 +0000; 2024-02-12 00:00 +0000"},
	{"UTC", "0 0 30 2 *", "2024-01-01 00:00 +0000", "never"},
	{"UTC", "0 0 31 4,6,9,11 *", "2024-01-01 00:00 +0000", "never"},
	{"UTC", "0 0 30,31 feb */2", "2024-01-01 00:00 +0000", "never"},
	{"Europe/Berlin", "0 0 30 2 *", "2024-01-01 00:00 +0100", "never"},
	/* Before 1970 and after 2038. */
	{"UTC", "0 0 1 1 *", "1900-06-01 00:00 +0000",
	 "1901-01-01 00:00 +0000; 1902-01-01 00:00 +0000"},
	{"UTC", "15 3 * * *", "2400-02-28 12:00 +0000",
	 "2400-02-29 03:15 +0000; 2400-03-01 03:15 +0000"},
	/* After a time that is not a whole minute. */
	{"UTC", "* * * * *", "2024-01-01 00:00 +0000", "2024-01-01 00:01 +0000"},
	{"Asia/Kolkata", "0 9 * * mon-fri", "2024-01-05 09:00 +0530",
	 "2024-01-08 09:00 +0530; 2024-01-09 09:00 +0530"},
	/* The macros. */
	{"UTC", "@reboot", "2024-01-01 00:00 +0000", "never"},
	{"UTC", "@yearly", "2024-01-01 00:00 +0000",
	 "2025-01-01 00:00 +0000; 2026-01-01 00:00 +0000"},
	{"Europe/Berlin", "@weekly", "2024-01-01 00:00 +0100",
	 "2024-01-07 00:00 +0100; 2024-01-14 00:00 +0100"},
	{"UTC", "@hourly", "2024-01-01 00:00 +0000",
	 "2024-01-01 01:00 +0000; 2024-01-01 02:00 +0000"},
};

/* Daylight saving changes, both ways, in four zones. */
static const NextCase dst_cases[] = {
	/* Berlin: 2024-03-31 02:00 -> 03:00, 2024-10-27 03:00 -> 02:00. */
	{"Europe/Berlin", "30 2 * * *", "2024-03-30 12:00 +0100",
	 "2024-03-31 03:00 +0200; 2024-04-01 02:30 +0200"},
	{"Europe/Berlin", "*/15 2 * * *", "2024-03-31 00:00 +0100",
	 "2024-03-31 03:00 +0200; 2024-04-01 02:00 +0200"},
	{"Europe/Berlin", "0,30 1-3 * * *", "2024-03-31 01:00 +0100",
	 "2024-03-31 01:30 +0100; 2024-03-31 03:00 +0200; 2024-03-31 03:30 +0200; "
	 "2024-04-01 01:00 +0200"},
	{"Europe/Berlin", "59 1 * * *", "2024-03-31 00:00 +0100",
	 "2024-03-31 01:59 +0100; 2024-04-01 01:59 +0200"},
	{"Europe/Berlin", "30 2 * * *", "2024-10-26 12:00 +0200",
	 "2024-10-27 02:30 +0200; 2024-10-28 02:30 +0100"},
	{"Europe/Berlin", "0 * * * *", "2024-10-27 00:30 +0200",
	 "2024-10-27 01:00 +0200; 2024-10-27 02:00 +0200; 2024-10-27 03:00 +0100; "
	 "2024-10-27 04:00 +0100"},
	{"Europe/Berlin", "*/30 * * * *", "2024-10-27 01:45 +0200",
	 "2024-10-27 02:00 +0200; 2024-10-27 02:30 +0200; 2024-10-27 03:00 +0100"},
	/* Asked during the repeated hour: its times have fired already. */
	{"Europe/Berlin", "*/20 * * * *", "2024-10-27 02:10 +0100",
	 "2024-10-27 03:00 +0100; 2024-10-27 03:20 +0100"},
	{"Europe/Berlin", "0 0 * * *", "2024-03-30 00:00 +0100",
	 "2024-03-31 00:00 +0100; 2024-04-01 00:00 +0200"},
	/* New York: 2024-03-10 02:00 -> 03:00, 2024-11-03 02:00 -> 01:00. */
	{"America/New_York", "30 2 * * *", "2024-03-09 12:00 -0500",
	 "2024-03-10 03:00 -0400; 2024-03-11 02:30 -0400"},
	{"America/New_York", "30 1 * * *", "2024-11-02 12:00 -0400",
	 "2024-11-03 01:30 -0400; 2024-11-04 01:30 -0500"},
	{"America/New_York", "0 9 * * mon-fri", "2024-03-08 09:00 -0500",
	 "2024-03-11 09:00 -0400; 2024-03-12 09:00 -0400"},
	/* Sydney: 2024-04-07 03:00 -> 02:00, 2024-10-06 02:00 -> 03:00. */
	{"Australia/Sydney", "30 2 * * *", "2024-10-05 12:00 +1000",
	 "2024-10-06 03:00 +1100; 2024-10-07 02:30 +1100"},
	{"Australia/Sydney", "30 2 * * *", "2024-04-06 12:00 +1100",
	 "2024-04-07 02:30 +1100; 2024-04-08 02:30 +1000"},
	{"Australia/Sydney", "0 2,3 * * *", "2024-04-07 01:00 +1100",
	 "2024-04-07 02:00 +1100; 2024-04-07 03:00 +1000; 2024-04-08 02:00 +1000"},
	/* Lord Howe moves by half an hour: 2024-04-07 02:00 -> 01:30, 2024-10-06 02:00 -> 02:30. */
	{"Australia/Lord_Howe", "15 2 * * *", "2024-10-05 12:00 +1030",
	 "2024-10-06 02:30 +1100; 2024-10-07 02:15 +1100"},
	{"Australia/Lord_Howe", "45 2 * * *", "2024-10-05 12:00 +1030",
	 "2024-10-06 02:45 +1100; 2024-10-07 02:45 +1100"},
	{"Australia/Lord_Howe", "*/10 2 * * *", "2024-10-06 01:55 +1030",
	 "2024-10-06 02:30 +1100; 2024-10-06 02:40 +1100"},
	{"Australia/Lord_Howe", "45 1 * * *", "2024-04-06 12:00 +1100",
	 "2024-04-07 01:45 +1100; 2024-04-08 01:45 +1030"},
	{"Australia/Lord_Howe", "*/15 * * * *", "2024-04-07 01:20 +1100",
	 "2024-04-07 01:30 +1100; 2024-04-07 01:45 +1100; 2024-04-07 02:00 +1030"},
};

/* Parses every case of parse_cases and error_cases; checks short error buffers. */
static void
test_parse(void)
{
	char		err[CRON_ERR_LEN];
	CronSchedule s;

	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++)
		expect_parse(parse_cases[i][0], parse_cases[i][1]);
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
		expect_error(error_cases[i][0], error_cases[i][1]);

	/* A message that does not fit is cut, never overrun; no buffer at all is fine. */
	check(cron_parse("* * * * monday-friday-saturday", &s, err, 10) < 0 && strlen(err) == 9,
		  "short error buffer: \"%s\"", err);
	check(cron_parse("61 * * * *", &s, NULL, 0) < 0, "no error buffer");
}

/* "N seconds", and time zone callbacks that fail. */
static void
test_other_kinds(void)
{
	CronSchedule s;
	CronTz		flaky = {flaky_to_civil, NULL};
	int64_t		from,
				t;

	/* Multiples of N epoch seconds, whatever the zone. */
	libc_tz_use("Europe/Berlin");
	cron_parse("10 seconds", &s, NULL, 0);
	check(cron_next(&s, 1000, &libc_tz) == 1010, "10 seconds after 1000");
	check(cron_next(&s, 1005, &libc_tz) == 1010, "10 seconds after 1005");
	check(cron_next(&s, -15, &libc_tz) == -10, "10 seconds after -15");
	check(cron_next(&s, -20, &libc_tz) == -10, "10 seconds after -20");
	check(cron_next(&s, INT64_MAX - 5, &libc_tz) == CRON_NEVER, "10 seconds near the end of time");
	check(cron_next(&s, INT64_MIN, &libc_tz) == INT64_MIN + 8, "10 seconds at the start of time");
	cron_parse("7 seconds", &s, NULL, 0);
	from = parse_local("2024-03-31 01:59 +0100") + 58;
	t = cron_next(&s, from, &libc_tz);
	check(t > from && t <= from + 7 && t % 7 == 0, "7 seconds across a daylight saving change");

	/* A time zone callback that fails, at once or later; instants libc cannot convert. */
	cron_parse("* * * * *", &s, NULL, 0);
	civil_calls = 0;
	check(cron_next(&s, 0, &flaky) == CRON_NEVER, "a failing time zone callback");
	civil_calls = -1;
	check(cron_next(&s, 0, &flaky) == CRON_NEVER, "a time zone callback failing later");
	check(cron_next(&s, INT64_MAX - 100, &libc_tz) == CRON_NEVER, "an instant libc cannot convert");
	check(cron_next(&s, INT64_MIN, &libc_tz) == CRON_NEVER, "the first instant");
}

/* Returns true when instant t (UTC) matches s, by the rules written out plainly. */
static bool
reference_matches(const CronSchedule *s, int64_t t)
{
	time_t		tt = (time_t) t;
	struct tm	tm,
				tomorrow;
	bool		dom,
				dow;

	gmtime_r(&tt, &tm);
	tt += 86400;
	gmtime_r(&tt, &tomorrow);
	dom = (s->days >> tm.tm_mday & 1) || (s->last_day && tomorrow.tm_mday == 1);
	dow = s->weekdays >> tm.tm_wday & 1;
	return tm.tm_sec == 0 && (s->minutes >> tm.tm_min & 1) && (s->hours >> tm.tm_hour & 1) &&
		(s->months >> (tm.tm_mon + 1) & 1) &&
		(s->dom_star || s->dow_star ? dom && dow : dom || dow);
}

/*
 * Returns true when some day of 2000-2027 matches s: those 28 years hold every date
 * on every weekday, February 29th included.
 */
static bool
fires_some_day(const CronSchedule *s)
{
	CronSchedule day = *s;

	day.minutes = ~UINT64_C(0);
	day.hours = ~UINT32_C(0);
	for (int64_t t = 946684800; t < 1830297600; t += 86400)
		if (reference_matches(&day, t))
			return true;
	return false;
}

/*
 * Random schedules, "$" included: in UTC, the fire time found matches and no
 * minute before it does (whole days that do not match are passed at once).
 */
static void
test_random(void)
{
	static const char *const pieces[5][8] = {
		{"*", "0", "*/7", "5-50/15", "59", "1,2,3", "30-35", "0,*/20"},
		{"*", "0", "*/5", "9-17", "23", "1-23/11", "3,4", "12"},
		{"*", "1", "$", "*/10", "15-20", "29,30,31", "1,$", "31"},
		{"*", "2", "*/3", "jan-mar", "dec", "2,4,6,9", "6-8", "feb"},
		{"*", "0", "*/3", "mon-fri", "sat", "1-7/3", "7", "5"},
	};
	unsigned int seed = 2024;
	int			bad = 0;

	libc_tz_use("UTC");
	for (int round = 0; round < 300; round++)
	{
		CronSchedule s;
		char		text[100];
		int64_t		from = (int64_t) (rand_r(&seed) % 2000000000) + (rand_r(&seed) % 60),
					t;

		snprintf(text, sizeof(text), "%s %s %s %s %s", pieces[0][rand_r(&seed) % 8],
				 pieces[1][rand_r(&seed) % 8], pieces[2][rand_r(&seed) % 8],
				 pieces[3][rand_r(&seed) % 8], pieces[4][rand_r(&seed) % 8]);
		if (cron_parse(text, &s, NULL, 0) < 0)
		{
			bad++;
			continue;
		}
		t = cron_next(&s, from, &libc_tz);
		if (t == CRON_NEVER)
		{
			bad += fires_some_day(&s);
			continue;
		}
		if (!reference_matches(&s, t))
		{
			fprintf(stderr, "\"%s\" after %lld: %lld does not match\n", text,
					(long long) from, (long long) t);
			bad++;
			continue;
		}
		for (int64_t m = from - from % 60 + 60; m < t; m += 60)
		{
			CronSchedule day = s;

			day.minutes = ~UINT64_C(0);
			day.hours = ~UINT32_C(0);
			if (!reference_matches(&day, m - m % 86400))
			{
				m += 86400 - m % 86400 - 60;	/* on to the next day */
				continue;
			}
			if (reference_matches(&s, m))
			{
				fprintf(stderr, "\"%s\" after %lld: %lld matches before %lld\n", text,
						(long long) from, (long long) m, (long long) t);
				bad++;
				break;
			}
		}
	}
	check(bad == 0, "%d random schedules disagree with the day-by-day scan", bad);
}

/* The last fire in (after, until] found by walking every fire with cron_next(). */
static int64_t
latest_by_walking(const CronSchedule *s, int64_t after, int64_t until)
{
	int64_t		last = CRON_NEVER;

	for (int64_t t = cron_next(s, after, &libc_tz); t != CRON_NEVER && t <= until;
		 t = cron_next(s, t, &libc_tz))
		last = t;
	return last;
}

/* cron_latest() against walking the fires, its bounds, its cost and the end of time. */
static void
test_latest(void)
{
	static const char *const schedules[] = {
		"* * * * *", "*/7 * * * *", "30 2 * * *", "0 9 * * 1-5", "0 0 $ * *",
		"0 0 29 2 *", "1 seconds", "13 seconds", "@daily", "0 0 30 2 *", "@reboot",
	};
	static const int64_t spans[] = {1, 59, 60, 3600, 86400, 40 * 86400, 3 * 366 * 86400};
	CronSchedule s;
	CronTz		tz = {counting_to_civil, NULL};
	int64_t		from = parse_local("2024-03-30 22:17 +0100") + 13;
	int64_t		end = INT64_C(9224318016000);	/* 294277-01-01 00:00 UTC */
	int			bad = 0;

	libc_tz_use("Europe/Berlin");	/* the spans cross a daylight saving change */
	for (size_t i = 0; i < sizeof(schedules) / sizeof(schedules[0]); i++)
	{
		cron_parse(schedules[i], &s, NULL, 0);
		for (size_t k = 0; k < sizeof(spans) / sizeof(spans[0]); k++)
		{
			int64_t		want,
						got;

			if (s.kind == CRON_SECONDS && spans[k] > 40 * 86400)
				continue;		/* walking would take too long */
			want = latest_by_walking(&s, from, from + spans[k]);
			got = cron_latest(&s, from, from + spans[k], &libc_tz);
			if (got != want)
			{
				fprintf(stderr, "\"%s\" in (%lld, %lld]: want %lld, got %lld\n", schedules[i],
						(long long) from, (long long) (from + spans[k]), (long long) want,
						(long long) got);
				bad++;
			}
		}
	}
	check(bad == 0, "%d latest fires disagree with walking the fires", bad);

	/* The span is open at the start and closed at the end. */
	cron_parse("10 seconds", &s, NULL, 0);
	check(cron_latest(&s, 1000, 1000, &libc_tz) == CRON_NEVER, "an empty span");
	check(cron_latest(&s, 1000, 990, &libc_tz) == CRON_NEVER, "a span that ends before it starts");
	check(cron_latest(&s, 1000, 1009, &libc_tz) == CRON_NEVER, "no fire in the span");
	check(cron_latest(&s, 999, 1000, &libc_tz) == 1000, "a fire at the end of the span");
	check(cron_latest(&s, 990, 1019, &libc_tz) == 1010, "the fire at the start is not in it");

	/* Ten years of a minutely schedule cost a few hundred conversions, not five million. */
	cron_parse("* * * * *", &s, NULL, 0);
	civil_calls = 0;
	check(cron_latest(&s, from, from + 10 * 366 * 86400, &tz) != CRON_NEVER && civil_calls < 2000,
		  "ten years of minutes: %d time zone calls", civil_calls);

	/* At the end of PostgreSQL's timestamps: the fire there is found (cron.c refuses it). */
	libc_tz_use("UTC");
	check(cron_next(&s, end - 60, &libc_tz) == end, "the minute at the end of timestamps");
	check(cron_latest(&s, end - 600, end, &libc_tz) == end, "the latest fire at the end of timestamps");
	cron_parse("0 0 1 1 *", &s, NULL, 0);
	check(cron_next(&s, end - 1, &libc_tz) == end, "new year at the end of timestamps");
}

int
main(void)
{
	test_parse();
	for (size_t i = 0; i < sizeof(calendar_cases) / sizeof(calendar_cases[0]); i++)
		expect_next(&calendar_cases[i]);
	for (size_t i = 0; i < sizeof(dst_cases) / sizeof(dst_cases[0]); i++)
		expect_next(&dst_cases[i]);
	test_other_kinds();
	test_random();
	test_latest();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
