/*
 * cron.c: parses cron schedules (pg_cron's language) into bit sets.
 *
 * A schedule is one bit set per field: five fields of numbers, names, ranges,
 * steps and lists, "$" for the last day of the month, the @ macros, or
 * "N seconds".  Parsing is strict (every character is accounted for, numbers
 * are bounded before they can overflow) and errors say which field is wrong.
 * The next fire time of a parsed schedule is cron_next.c's.
 */
#include "cron.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_DIGITS 4			/* longer numbers are rejected, so none overflows */
#define MAX_TOKENS 6			/* tokens kept by split(); more are only counted */

/* A run of non-blank characters of the schedule text. */
typedef struct Token
{
	const char *p;
	int			len;
} Token;

/* One of the five fields: its range, its value names and how messages call it. */
typedef struct Field
{
	const char *value;			/* "minute", as in "minute 60 is out of range" */
	const char *field;			/* "minute", as in "in the minute field" */
	int			min;
	int			max;
	const char *const *names;	/* three-letter names of min, min + 1..., or NULL */
} Field;

/* A macro and the five fields it stands for (NULL: @reboot and its alias @restart). */
typedef struct Macro
{
	const char *name;
	const char *fields;
} Macro;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
"jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const Field fields[5] = {
	{"minute", "minute", 0, 59, NULL},
	{"hour", "hour", 0, 23, NULL},
	{"day of month", "day-of-month", 1, 31, NULL},
	{"month", "month", 1, 12, month_names},
	{"day of week", "day-of-week", 0, 7, day_names},
};

static const Macro macros[] = {
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
	{"@reboot", NULL},
	{"@restart", NULL},		/* pg_cron's alias of @reboot */
};

static int	fail(char *err, size_t errlen, const char *fmt,...) __attribute__((format(printf, 3, 4)));
static bool is_blank(char c);
static bool is_digit(char c);
static bool is_alpha(char c);
static bool same_word(const char *a, int len, const char *word);
static int	split(const char *text, Token *tok);
static int	read_number(const char **p, const char *end, int *n);
static int	read_value(const char **p, const char *end, const Field *f, int from, int *v,
					   char *err, size_t errlen);
static int	parse_item(const char **p, const char *end, const Field *f, uint64_t *bits,
					   bool *last_day, char *err, size_t errlen);
static int	parse_field(const Token *t, const Field *f, uint64_t *bits, bool *last_day,
						char *err, size_t errlen);
static int	parse_macro(const Token *tok, int ntok, CronSchedule *s, char *err, size_t errlen);
static int	parse_seconds(const Token *t, CronSchedule *s, char *err, size_t errlen);

/* Formats a message into err (when there is one); returns -1. */
static int
fail(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Returns true for the characters that separate fields. */
static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Returns true for an ASCII digit (no locale involved). */
static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Returns true for an ASCII letter (no locale involved). */
static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Returns true when the len characters at a spell word (lower case), ignoring case. */
static bool
same_word(const char *a, int len, const char *word)
{
	for (int i = 0; i < len; i++)
	{
		char		c = a[i] >= 'A' && a[i] <= 'Z' ? a[i] - 'A' + 'a' : a[i];

		if (word[i] == '\0' || c != word[i])
			return false;
	}
	return word[len] == '\0';
}

/* Splits text at blanks into tok[0 .. MAX_TOKENS); returns the number of tokens, all counted. */
static int
split(const char *text, Token *tok)
{
	int			n = 0;

	while (text != NULL && *text != '\0')
	{
		const char *start;

		while (is_blank(*text))
			text++;
		if (*text == '\0')
			break;
		start = text;
		while (*text != '\0' && !is_blank(*text))
			text++;
		if (n < MAX_TOKENS)
			tok[n] = (Token) {start, (int) (text - start)};
		n++;
	}
	return n;
}

/*
 * Reads the digits at *p into *n, advancing *p; returns how many there were (0 when
 * none), or -1 when there are more than MAX_DIGITS.
 */
static int
read_number(const char **p, const char *end, int *n)
{
	const char *start = *p;

	*n = 0;
	while (*p < end && is_digit(**p))
	{
		if (*p - start == MAX_DIGITS)
			return -1;
		*n = *n * 10 + (**p - '0');
		(*p)++;
	}
	return (int) (*p - start);
}

/*
 * Reads a number or a name of field f at *p into *v, advancing *p; returns 0, or -1
 * with a message.  from: the start of the range this value ends, or -1; "sun" after
 * a later day stands for 7, so that "fri-sun" is not reversed.
 */
static int
read_value(const char **p, const char *end, const Field *f, int from, int *v,
		   char *err, size_t errlen)
{
	const char *start = *p;
	int			ndigits = read_number(p, end, v);

	if (ndigits < 0)
	{
		while (*p < end && is_digit(**p))
			(*p)++;
		return fail(err, errlen, "number %.*s has too many digits in the %s field",
					(int) (*p - start), start, f->field);
	}
	if (ndigits > 0)
	{
		if (*v < f->min || *v > f->max)
			return fail(err, errlen, "%s %.*s is out of range (%d-%d)", f->value,
						ndigits, start, f->min, f->max);
		return 0;
	}
	while (*p < end && is_alpha(**p))
		(*p)++;
	if (*p == start)
		return fail(err, errlen, "unexpected \"%.*s\" in the %s field",
					(int) (end - start), start, f->field);
	for (int i = 0; f->names != NULL && f->names[i] != NULL; i++)
		if (same_word(start, (int) (*p - start), f->names[i]))
		{
			*v = f->min + i;
			if (f->max == 7 && *v == 0 && from > 0)
				*v = 7;
			return 0;
		}
	return fail(err, errlen, "unrecognized value \"%.*s\" in the %s field",
				(int) (*p - start), start, f->field);
}

/*
 * Parses one list item of field f at *p ("*", "5", "1-5", "1-9/2", "$", or "*" with a
 * step) into bits, advancing *p to what follows it; returns 0, or -1 with a message.
 * last_day is NULL in the fields where "$" is not allowed.
 */
static int
parse_item(const char **p, const char *end, const Field *f, uint64_t *bits,
		   bool *last_day, char *err, size_t errlen)
{
	const char *item = *p;
	const char *item_end = memchr(item, ',', end - item);
	int			lo,
				hi,
				step = 1;
	bool		range = false;

	if (item_end == NULL)
		item_end = end;
	if (item == item_end)
		return fail(err, errlen, "empty list item in the %s field", f->field);
	if (*item == '$')
	{
		if (last_day == NULL)
			return fail(err, errlen, "\"$\" (the last day of the month) is only valid in the day-of-month field, not in the %s field",
						f->field);
		*last_day = true;
		(*p)++;
		return 0;
	}
	if (*item == '*')
	{
		lo = f->min;
		hi = f->max;
		range = true;
		(*p)++;
	}
	else
	{
		if (read_value(p, end, f, -1, &lo, err, errlen) < 0)
			return -1;
		hi = lo;
		if (*p < end && **p == '-')
		{
			(*p)++;
			if (*p == end || !(is_digit(**p) || is_alpha(**p)))
				return fail(err, errlen, "incomplete range \"%.*s\" in the %s field",
							(int) (item_end - item), item, f->field);
			if (read_value(p, end, f, lo, &hi, err, errlen) < 0)
				return -1;
			if (hi < lo)
				return fail(err, errlen, "reversed range %.*s in the %s field",
							(int) (*p - item), item, f->field);
			range = true;
		}
	}
	if (*p < end && **p == '/')
	{
		const char *slash = (*p)++;
		const char *digits = *p;

		if (!range)
			return fail(err, errlen, "a step needs a range in the %s field: write \"%.*s-%d%.*s\", not \"%.*s\"",
						f->field, (int) (slash - item), item, f->max,
						(int) (item_end - slash), slash, (int) (item_end - item), item);
		if (read_number(p, end, &step) <= 0)
			return fail(err, errlen, "invalid step \"%.*s\" in the %s field",
						(int) (item_end - item), item, f->field);
		if (step < 1 || step > f->max)
			return fail(err, errlen, "step %.*s is out of range (1-%d) in the %s field",
						(int) (*p - digits), digits, f->max, f->field);
	}
	for (int v = lo; v <= hi; v += step)
		*bits |= UINT64_C(1) << v;
	return 0;
}

/* Parses field f from token t into bits (and *last_day); returns 0, or -1 with a message. */
static int
parse_field(const Token *t, const Field *f, uint64_t *bits, bool *last_day,
			char *err, size_t errlen)
{
	const char *p = t->p;
	const char *end = t->p + t->len;

	*bits = 0;
	for (;;)
	{
		if (parse_item(&p, end, f, bits, last_day, err, errlen) < 0)
			return -1;
		if (p == end)
			return 0;
		if (*p != ',')
			return fail(err, errlen, "unexpected \"%.*s\" after the %s field",
						(int) (end - p), p, f->field);
		p++;
		if (p == end)
			return fail(err, errlen, "empty list item in the %s field", f->field);
	}
}

/* Parses a macro (tok[0] begins with '@') into *s; returns 0, or -1 with a message. */
static int
parse_macro(const Token *tok, int ntok, CronSchedule *s, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
	{
		if (!same_word(tok[0].p, tok[0].len, macros[i].name))
			continue;
		if (ntok > 1)
			return fail(err, errlen, "unexpected \"%.*s\" after %s", tok[1].len, tok[1].p,
						macros[i].name);
		if (macros[i].fields == NULL)
		{
			s->kind = CRON_REBOOT;
			return 0;
		}
		return cron_parse(macros[i].fields, s, err, errlen);
	}
	return fail(err, errlen, "unrecognized macro \"%.*s\"", tok[0].len, tok[0].p);
}

/* Parses the count of "N seconds" from token t into *s; returns 0, or -1 with a message. */
static int
parse_seconds(const Token *t, CronSchedule *s, char *err, size_t errlen)
{
	const char *p = t->p;
	int			n;

	if (read_number(&p, t->p + t->len, &n) <= 0 || p != t->p + t->len)
		return fail(err, errlen, "invalid number of seconds \"%.*s\"", t->len, t->p);
	if (n < 1 || n > 59)
		return fail(err, errlen, "interval of %d seconds is out of range (1-59)", n);
	s->kind = CRON_SECONDS;
	s->seconds = n;
	return 0;
}

int
cron_parse(const char *text, CronSchedule *s, char *err, size_t errlen)
{
	Token		tok[MAX_TOKENS];
	int			ntok = split(text, tok);
	uint64_t	bits[5];

	memset(s, 0, sizeof(*s));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (ntok == 0)
		return fail(err, errlen, "empty schedule");
	if (tok[0].p[0] == '@')
		return parse_macro(tok, ntok, s, err, errlen);
	if (ntok == 2 && (same_word(tok[1].p, tok[1].len, "second") ||
					  same_word(tok[1].p, tok[1].len, "seconds")))
		return parse_seconds(&tok[0], s, err, errlen);
	if (ntok != 5)
		return fail(err, errlen, "a schedule has five fields, found %d", ntok);
	for (int i = 0; i < 5; i++)
		if (parse_field(&tok[i], &fields[i], &bits[i], i == 2 ? &s->last_day : NULL,
						err, errlen) < 0)
			return -1;
	s->kind = CRON_FIELDS;
	s->minutes = bits[0];
	s->hours = (uint32_t) bits[1];
	s->days = (uint32_t) bits[2];
	s->months = (uint16_t) bits[3];
	s->weekdays = (uint8_t) ((bits[4] | bits[4] >> 7) & 0x7f);	/* 7 is Sunday too */
	s->dom_star = tok[2].p[0] == '*';
	s->dow_star = tok[4].p[0] == '*';
	return 0;
}
