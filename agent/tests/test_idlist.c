/*
 * test_idlist.c -- Slurm-style id lists: expansions and every malformed input.
 */
#include "unit.h"

#include <stdlib.h>

/* Returns the comma-joined expansion of spec, or "ERROR: msg"; the result is static. */
static const char *
expand(const char *spec)
{
	static char out[65536];
	char		err[AGENT_ERRLEN];
	StrList		l;

	strlist_init(&l);
	if (idlist_parse(spec, &l, err, sizeof(err)) < 0)
		snprintf(out, sizeof(out), "ERROR: %s", err);
	else
	{
		out[0] = '\0';
		for (int i = 0; i < l.n; i++)
		{
			strcat(out, i ? "," : "");
			strcat(out, l.items[i]);
		}
	}
	strlist_free(&l);
	return out;
}

/* Checks that spec is rejected with a message containing what. */
static void
bad(const char *spec, const char *what)
{
	const char *r = expand(spec);

	CHECK(strncmp(r, "ERROR: ", 7) == 0 && strstr(r, what) != NULL);
	if (strncmp(r, "ERROR: ", 7) != 0 || strstr(r, what) == NULL)
		fprintf(stderr, "  spec \"%s\" gave \"%s\", expected an error with \"%s\"\n", spec, r, what);
}

void
test_idlist(void)
{
	/* specs that parse, and the ids each expands to */
	static const struct
	{
		const char *spec;
		const char *ids;
	}			good[] =
	{
		{"[0-1]", "0,1"},
		{"cpu[0-7]", "cpu0,cpu1,cpu2,cpu3,cpu4,cpu5,cpu6,cpu7"},
		{"a,b,c[1-2]", "a,b,c1,c2"},
		{"n[01-03]", "n01,n02,n03"},
		{"n[08-11]", "n08,n09,n10,n11"},
		{"n[1-3,7]", "n1,n2,n3,n7"},
		{"rack[1-2]a", "rack1a,rack2a"},
		{"[5]", "5"},
		{"0", "0"},
		{"matlab-3,x.y:z", "matlab-3,x.y:z"},
		{"[0-0]", "0"},
		{"[000-001]", "000,001"},
	};
	StrList		l;
	char		err[AGENT_ERRLEN];
	char		big[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
	{
		CHECK_STR(expand(good[i].spec), good[i].ids);
		if (strcmp(expand(good[i].spec), good[i].ids) != 0)
			fprintf(stderr, "  spec \"%s\" gave \"%s\", expected \"%s\"\n", good[i].spec,
					expand(good[i].spec), good[i].ids);
	}

	bad("", "empty id list");
	bad(",", "empty id");
	bad(",,", "empty id");
	bad("a,", "empty id");
	bad(",a", "empty id");
	bad("a,,b", "empty id");
	bad("gpu[1-", "unterminated");
	bad("gpu[", "unterminated");
	bad("[", "unterminated");
	bad("[]", "expected a number");
	bad("[-1]", "expected a number");
	bad("[1-]", "expected a number");
	bad("[3-1]", "reversed");
	bad("[1,,2]", "expected a number");
	bad("[1,]", "expected a number");
	bad("[a-b]", "expected a number");
	bad("[1-2-3]", "invalid character in range");
	bad("[1 2]", "invalid character in range");
	bad("]", "unexpected");
	bad("a]", "unexpected");
	bad("a[1]b[2]", "only one bracket group");
	bad("a[[1]]", "invalid character");
	bad("a b", "invalid character");
	bad("[1]x y", "invalid character after");
	bad("[0-4096]", "more than 4096");
	bad("[0-99999999]", "more than 4096");
	bad("[0-9999999999]", "too large");
	bad("a,a", "duplicate id \"a\"");
	bad("[1-2],2", "duplicate id \"2\"");
	CHECK_STR(expand("[01-02],1"), "01,02,1");	/* 01 and 1 differ */

	/* exactly IDLIST_MAX is fine, one more across items is not */
	strlist_init(&l);
	CHECK(idlist_parse("[0-4095]", &l, err, sizeof(err)) == 0 && l.n == IDLIST_MAX);
	strlist_free(&l);
	bad("[0-4095],x", "more than 4096");
	bad("[0-2047],y[0-2048]", "more than 4096");

	memset(big, 'x', 201);
	big[201] = '\0';
	bad(big, "longer than 200");
	memset(big, 'x', 200);
	big[200] = '\0';
	CHECK_STR(expand(big), big);
	strcat(big, "[1-2]");
	bad(big, "longer than 200");
}
