/*
 * test_names.c -- names.c: the node-name, resource-type and label-key patterns,
 * one edge per line, the same edges the server's SQL patterns draw.
 */
#include "unit.h"

#include <stdlib.h>

typedef struct NameCase
{
	int			(*ok) (const char *s);
	const char *s;				/* "#N:c": N copies of c */
	int			want;
} NameCase;

/* Returns s, or for "#N:c" a malloc'd string of N copies of c (caller frees when *owned). */
static const char *
expand(const char *s, int *owned)
{
	int			n;
	char	   *out;

	*owned = s[0] == '#';
	if (!*owned)
		return s;
	n = atoi(s + 1);
	out = xmalloc((size_t) n + 1);
	memset(out, strchr(s, ':')[1], (size_t) n);
	out[n] = '\0';
	return out;
}

void
test_names(void)
{
	static const NameCase cases[] = {
		{names_node_ok, "w1", 1}, {names_node_ok, "A", 1}, {names_node_ok, "0node", 1},
		{names_node_ok, "gpu-01.rack_2", 1}, {names_node_ok, "#48:n", 1},
		{names_node_ok, "", 0}, {names_node_ok, "-w1", 0}, {names_node_ok, ".w1", 0},
		{names_node_ok, "_w1", 0}, {names_node_ok, "w 1", 0}, {names_node_ok, "w1/x", 0},
		{names_node_ok, "w1\n", 0}, {names_node_ok, "n\xc3\xa9", 0}, {names_node_ok, "#49:n", 0},
		{names_type_ok, "gpu", 1}, {names_type_ok, "mem_mb", 1}, {names_type_ok, "a1", 1},
		{names_type_ok, "#63:t", 1},
		{names_type_ok, "", 0}, {names_type_ok, "Gpu", 0}, {names_type_ok, "1gpu", 0},
		{names_type_ok, "_gpu", 0}, {names_type_ok, "gpu-x", 0}, {names_type_ok, "gpu.x", 0},
		{names_type_ok, "#64:t", 0},
		{names_label_key_ok, "rack", 1}, {names_label_key_ok, "_x.y-z", 1},
		{names_label_key_ok, "-lead", 1}, {names_label_key_ok, "#63:k", 1},
		{names_label_key_ok, "", 0}, {names_label_key_ok, "a b", 0}, {names_label_key_ok, "a=b", 0},
		{names_label_key_ok, "#64:k", 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		int			owned;
		const char *s = expand(cases[i].s, &owned);

		CHECK(cases[i].ok(s) == cases[i].want);
		if (cases[i].ok(s) != cases[i].want)
			fprintf(stderr, "  name \"%s\": want %d\n", s, cases[i].want);
		if (owned)
			free((char *) s);
	}
}
