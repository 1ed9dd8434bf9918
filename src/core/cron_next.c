/*
 * cron_next.c: the next fire time of a parsed cron schedule (cron.c parses).
 *
 * cron_next() walks local wall-clock time from the minute after `after`, largest
 * field first: a month outside the set is skipped whole, then a day, an hour,
 * and the minute is the next set bit, so a search takes a few dozen steps rather
 * than one per minute.
 *
 * Each candidate wall-clock time is turned into a UTC instant here, by probing the
 * offsets on either side of it through the time zone callback: the one instant
 * showing that wall-clock time is the answer; of two (clocks went back) the
 * earlier; with none (clocks went forward over it) the instant of the change,
 * found by bisection.  That mapping never decreases, so the first candidate whose
 * instant lies after `after` is the next fire time, and a skipped or repeated
 * wall-clock time fires once.
 *
 * A schedule that matches some date at all matches one within 40 years
 * (February 29th on a given weekday is the rarest); one that matches none, such
 * as "0 0 30 2 *", is recognised before searching.  The search still gives up
 * after 400 years, a whole cycle of the Gregorian calendar, should the time zone
 * callback misbehave.
 *
 * cron_latest() finds the last fire at or before an instant without listing the
 * fires before it: the first fire after x lies at or before `until` exactly when x
 * lies before the last fire, so bisection over x needs about log2 of the span
 * cron_next() calls, whether the schedule fires every second or once a year.
 */
#include "cron.h"

#define HORIZON_YEARS 400

static const int month_days[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
static const int days_before_month[13] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243,
273, 304, 334};

static bool is_leap(int64_t y);
static int	days_in(int64_t y, int m);
static int64_t floor_div(int64_t a, int64_t b);
static int64_t days_from_civil(int64_t y, int m, int d);
static int	next_bit(uint64_t bits, int from);
static bool can_fire(const CronSchedule *s);
static bool day_matches(const CronSchedule *s, int64_t y, int m, int d);
static int	utc_offset(const CronTz *tz, int64_t t, int64_t *off);
static int	civil_to_utc(const CronTz *tz, int64_t local, int64_t *t);
static int64_t next_multiple(int64_t after, int n);

/* Returns true when year y of the Gregorian calendar has a February 29th. */
static bool
is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Returns the number of days of month m (1..12) of year y. */
static int
days_in(int64_t y, int m)
{
	return m == 2 && is_leap(y) ? 29 : month_days[m];
}

/* Returns a / b rounded towards minus infinity (b > 0). */
static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

/* Returns the number of days from 1970-01-01 to y-m-d (negative before). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	/* Leap days in the years [1970, y), counted as those in [1, y) minus [1, 1970). */
	int64_t		leaps = floor_div(y - 1, 4) - floor_div(y - 1, 100) + floor_div(y - 1, 400) - 477;

	return (y - 1970) * 365 + leaps + days_before_month[m] + (m > 2 && is_leap(y)) + d - 1;
}

/* Returns the lowest set bit of bits at or above from (< 64), or 64 when there is none. */
static int
next_bit(uint64_t bits, int from)
{
	bits &= ~UINT64_C(0) << from;
	return bits ? __builtin_ctzll(bits) : 64;
}

/*
 * Returns false when no date can ever match s.  Every date recurs on every weekday
 * (within 40 years for February 29th), so only the months and days decide.
 */
static bool
can_fire(const CronSchedule *s)
{
	bool		either = !s->dom_star && !s->dow_star;

	if (s->minutes == 0 || s->hours == 0 || s->months == 0)
		return false;
	if (either && (s->weekdays & 0x7f) != 0)
		return true;			/* every month has every weekday */
	if ((s->weekdays & 0x7f) == 0)
		return false;
	for (int m = 1; m <= 12; m++)
	{
		int			longest = m == 2 ? 29 : month_days[m];

		if ((s->months >> m & 1) &&
			(s->last_day || (s->days & ((UINT64_C(2) << longest) - 2)) != 0))
			return true;
	}
	return false;
}

/* Returns true when date y-m-d matches the day-of-month and day-of-week fields of s. */
static bool
day_matches(const CronSchedule *s, int64_t y, int m, int d)
{
	int			wday = (int) ((days_from_civil(y, m, d) % 7 + 11) % 7);	/* 1970-01-01: Thursday */
	bool		dom = (s->days >> d & 1) || (s->last_day && d == days_in(y, m));
	bool		dow = s->weekdays >> wday & 1;

	return s->dom_star || s->dow_star ? dom && dow : dom || dow;
}

/* Sets *off to local time minus UTC at instant t, in seconds; returns 0, or -1 on failure. */
static int
utc_offset(const CronTz *tz, int64_t t, int64_t *off)
{
	CronCivil	c;

	if (tz->to_civil(tz->arg, t, &c) < 0 ||
		c.month < 1 || c.month > 12 || c.day < 1 || c.day > days_in(c.year, c.month) ||
		c.hour < 0 || c.hour > 23 || c.minute < 0 || c.minute > 59 ||
		c.second < 0 || c.second > 60)
		return -1;
	*off = days_from_civil(c.year, c.month, c.day) * 86400 +
		c.hour * 3600 + c.minute * 60 + c.second - t;
	return 0;
}

/*
 * Sets *t to the first UTC instant whose wall-clock time is local (in seconds since
 * 1970-01-01 00:00 local), or to the end of the gap that skips local; 0 or -1.
 */
static int
civil_to_utc(const CronTz *tz, int64_t local, int64_t *t)
{
	int64_t		before,
				after,
				lo,
				hi,
				off;

	/* The offsets a day either side: no zone changes twice in two days. */
	if (utc_offset(tz, local - 86400, &before) < 0 ||
		utc_offset(tz, local + 86400, &after) < 0)
		return -1;
	lo = local - (before > after ? before : after);
	hi = local - (before > after ? after : before);
	for (int64_t cand = lo;; cand = hi)
	{
		if (utc_offset(tz, cand, &off) < 0)
			return -1;
		if (cand + off == local)
		{
			*t = cand;			/* the earlier of two wins */
			return 0;
		}
		if (cand == hi)
			break;
	}

	/* Skipped: local time jumps over it between lo and hi.  Find where. */
	while (hi - lo > 1)
	{
		int64_t		mid = lo + (hi - lo) / 2;

		if (utc_offset(tz, mid, &off) < 0)
			return -1;
		if (mid + off >= local)
			hi = mid;
		else
			lo = mid;
	}
	*t = hi;
	return 0;
}

/* Returns the first multiple of n (> 0) after `after`, or CRON_NEVER past the int64 range. */
static int64_t
next_multiple(int64_t after, int n)
{
	int64_t		q = floor_div(after, n);

	if (q > INT64_MAX / n - 1)
		return CRON_NEVER;
	return (q + 1) * n;
}

int64_t
cron_next(const CronSchedule *s, int64_t after, const CronTz *tz)
{
	CronCivil	c;
	int64_t		y,
				last_year;
	int			mo,
				d,
				h,
				mi;

	if (s->kind == CRON_REBOOT)
		return CRON_NEVER;
	if (s->kind == CRON_SECONDS)
		return s->seconds < 1 ? CRON_NEVER : next_multiple(after, s->seconds);
	if (!can_fire(s) || tz->to_civil(tz->arg, after, &c) < 0 ||
		c.month < 1 || c.month > 12 || c.day < 1 || c.day > days_in(c.year, c.month))
		return CRON_NEVER;

	/* Wall-clock minutes from the one after that of `after`. */
	y = c.year;
	mo = c.month;
	d = c.day;
	h = c.hour;
	mi = c.minute + 1;
	last_year = y + HORIZON_YEARS;
	for (;;)
	{
		int64_t		t;
		int			next;

		if (mi > 59)
		{
			mi = 0;
			h++;
		}
		if (h > 23)
		{
			h = 0;
			d++;
		}
		if (mo <= 12 && d > days_in(y, mo))
		{
			d = 1;
			mo++;
		}
		if (mo > 12)
		{
			mo = 1;
			if (++y > last_year)
				return CRON_NEVER;
		}
		if (!(s->months >> mo & 1))
		{
			mo++;
			d = 1;
			h = mi = 0;
			continue;
		}
		if (!day_matches(s, y, mo, d))
		{
			d++;
			h = mi = 0;
			continue;
		}
		if ((next = next_bit(s->hours, h)) != h)
		{
			h = next;			/* 64 when none is left: on to the next day */
			mi = 0;
			continue;
		}
		if ((mi = next_bit(s->minutes, mi)) > 59)
			continue;
		if (civil_to_utc(tz, days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60, &t) < 0)
			return CRON_NEVER;
		if (t > after)
			return t;
		mi++;					/* a repeated hour, met the second time */
	}
}

int64_t
cron_latest(const CronSchedule *s, int64_t after, int64_t until, const CronTz *tz)
{
	int64_t		lo = after,
				hi = until,
				f;

	/* Invariant: f = cron_next(lo) <= until, and no fire lies in (hi, until]. */
	if (until <= after)
		return CRON_NEVER;
	f = cron_next(s, after, tz);
	if (f == CRON_NEVER || f > until)
		return CRON_NEVER;
	lo = f - 1;
	while (hi - lo > 1)
	{
		int64_t		mid = lo + (hi - lo) / 2;
		int64_t		g = cron_next(s, mid, tz);

		if (g != CRON_NEVER && g <= until)
		{
			f = g;
			lo = g - 1;
		}
		else
			hi = mid;
	}
	return f;
}
