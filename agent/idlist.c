/*
 * idlist.c -- Slurm-style id lists for --resource TYPE=IDS.
 *
 * Grammar (one bracket group per item, as in Slurm's hostlists):
 *   list  := item (',' item)*
 *   item  := prefix? ('[' range (',' range)* ']' suffix?)?
 *   range := NUM | NUM '-' NUM
 * "gpu[0-1]" gives gpu0,gpu1; "[0-1]" gives 0,1; "n[01-03]" keeps the zero
 * padding of the lower bound (n01,n02,n03).  Idents follow the server's rule:
 * 1 to 200 characters, no white space, no commas (and here no brackets).
 * The expansion is capped at IDLIST_MAX ids so that a typo like [0-99999999]
 * is an error instead of an allocation storm; duplicates are rejected.
 */
#include "agent.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDENT_MAX 200

static int add_ident(StrList *out, const char *id, char *err, size_t errlen);
static int parse_num(const char **p, unsigned long *val, int *width, char *err, size_t errlen);
static int parse_item(const char **p, StrList *out, char *err, size_t errlen);
static int ident_char(char c);

/* Returns 1 for characters allowed in an ident outside brackets. */
static int
ident_char(char c)
{
	return c != '\0' && c != ',' && c != '[' && c != ']' && !isspace((unsigned char) c);
}

/* Appends id to out unless it is too long, a duplicate or one too many. */
static int
add_ident(StrList *out, const char *id, char *err, size_t errlen)
{
	if (strlen(id) > IDENT_MAX)
	{
		agent_seterr(err, errlen, "id \"%.40s...\" is longer than %d characters", id, IDENT_MAX);
		return -1;
	}
	if (out->n >= IDLIST_MAX)
	{
		agent_seterr(err, errlen, "id list expands to more than %d ids", IDLIST_MAX);
		return -1;
	}
	if (strlist_find(out, id) >= 0)
	{
		agent_seterr(err, errlen, "duplicate id \"%s\"", id);
		return -1;
	}
	strlist_add(out, id);
	return 0;
}

/* Reads a decimal number at *p; width is its digit count when zero-padded, else 0. */
static int
parse_num(const char **p, unsigned long *val, int *width, char *err, size_t errlen)
{
	const char *s = *p;
	int			n = 0;

	*val = 0;
	while (isdigit((unsigned char) s[n]))
	{
		if (n >= 9)
		{
			agent_seterr(err, errlen, "number in range is too large");
			return -1;
		}
		*val = *val * 10 + (unsigned long) (s[n] - '0');
		n++;
	}
	if (n == 0)
	{
		agent_seterr(err, errlen, "expected a number at \"%s\"", *s ? s : "end of input");
		return -1;
	}
	*width = (s[0] == '0' && n > 1) ? n : 0;
	*p = s + n;
	return 0;
}

/* Parses one item at *p (see the grammar above) and appends its ids to out. */
static int
parse_item(const char **p, StrList *out, char *err, size_t errlen)
{
	const char *s = *p;
	const char *prefix = s;
	size_t		plen;
	const char *ranges;
	const char *suffix;
	size_t		slen;
	char		id[IDENT_MAX + 64];

	while (ident_char(*s))
		s++;
	plen = (size_t) (s - prefix);
	if (*s != '[')
	{
		if (*s == ']')
		{
			agent_seterr(err, errlen, "unexpected \"]\"");
			return -1;
		}
		if (plen == 0)
		{
			agent_seterr(err, errlen, "empty id");
			return -1;
		}
		if (*s != '\0' && *s != ',')
		{
			agent_seterr(err, errlen, "invalid character in id");
			return -1;
		}
		if (plen > IDENT_MAX)
		{
			agent_seterr(err, errlen, "id \"%.40s...\" is longer than %d characters", prefix, IDENT_MAX);
			return -1;
		}
		snprintf(id, sizeof(id), "%.*s", (int) plen, prefix);
		*p = s;
		return add_ident(out, id, err, errlen);
	}

	/* find the suffix first: it follows the closing bracket */
	ranges = s + 1;
	s = strchr(ranges, ']');
	if (s == NULL)
	{
		agent_seterr(err, errlen, "unterminated \"[\"");
		return -1;
	}
	suffix = s + 1;
	for (s = suffix; ident_char(*s); s++)
		;
	if (*s == '[')
	{
		agent_seterr(err, errlen, "only one bracket group per id is supported");
		return -1;
	}
	if (*s != '\0' && *s != ',')
	{
		agent_seterr(err, errlen, "invalid character after \"]\"");
		return -1;
	}
	slen = (size_t) (s - suffix);
	*p = s;
	if (plen + slen > IDENT_MAX)
	{
		agent_seterr(err, errlen, "id prefix and suffix are longer than %d characters", IDENT_MAX);
		return -1;
	}

	for (s = ranges;;)
	{
		unsigned long lo, hi;
		int			wlo, whi;

		if (parse_num(&s, &lo, &wlo, err, errlen) < 0)
			return -1;
		hi = lo;
		if (*s == '-')
		{
			s++;
			if (parse_num(&s, &hi, &whi, err, errlen) < 0)
				return -1;
		}
		if (hi < lo)
		{
			agent_seterr(err, errlen, "range %lu-%lu is reversed", lo, hi);
			return -1;
		}
		if (hi - lo >= IDLIST_MAX)
		{
			agent_seterr(err, errlen, "id list expands to more than %d ids", IDLIST_MAX);
			return -1;
		}
		for (unsigned long v = lo; v <= hi; v++)
		{
			snprintf(id, sizeof(id), "%.*s%0*lu%.*s", (int) plen, prefix, wlo, v,
					 (int) slen, suffix);
			if (add_ident(out, id, err, errlen) < 0)
				return -1;
		}
		if (*s == ']')
			return 0;
		if (*s != ',')
		{
			agent_seterr(err, errlen, "invalid character in range");
			return -1;
		}
		s++;
	}
}

/* Expands spec into out (which must be initialised); fills err and returns -1 on bad input. */
int
idlist_parse(const char *spec, StrList *out, char *err, size_t errlen)
{
	const char *p = spec;

	if (*p == '\0')
	{
		agent_seterr(err, errlen, "empty id list");
		return -1;
	}
	for (;;)
	{
		if (parse_item(&p, out, err, errlen) < 0)
			return -1;
		if (*p == '\0')
			return 0;
		p++;					/* the comma */
		if (*p == '\0')
		{
			agent_seterr(err, errlen, "empty id");
			return -1;
		}
	}
}
