/*
 * assign.c -- a job's assignment, parsed once on its way to the process.
 *
 * The server hands a job out as one agent_poll row whose env, resources and
 * files columns are JSON text.  assign_parse() parses each of them exactly
 * once into an Assignment, which the job's files (files.c), its environment
 * (env.c) and its supervisor (runner.c) then read; none of them sees JSON
 * text again.  The shapes are checked by the module that uses each part, so
 * that every message names what it is about.
 */
#include "agent.h"

#include <string.h>

static int	parse_part(const char *json, json_t **out, const char *what, char *err, size_t errlen);

/* Parses json (NULL: none) into *out; on a syntax error fills err as "<what>: <why>" and returns -1. */
static int
parse_part(const char *json, json_t **out, const char *what, char *err, size_t errlen)
{
	char		why[AGENT_ERRLEN];

	*out = NULL;
	if (json == NULL)
		return 0;
	if ((*out = jsonio_load(json, JSON_DECODE_ANY, why, sizeof(why))) == NULL)
	{
		agent_seterr(err, errlen, "%s: %s", what, why);
		return -1;
	}
	return 0;
}

/*
 * Fills a from the row spec (whose strings must outlive a); returns 0, or -1
 * with err set to the detail the job's status gets.  a must be freed with
 * assign_free() either way.
 */
int
assign_parse(const JobSpec *spec, Assignment *a, char *err, size_t errlen)
{
	memset(a, 0, sizeof(*a));
	a->spec = *spec;
	if (parse_part(spec->files_json, &a->files, "could not write the job's files", err, errlen) < 0 ||
		parse_part(spec->env_json, &a->env, "invalid job environment", err, errlen) < 0 ||
		parse_part(spec->resources_json, &a->resources, "invalid job environment", err, errlen) < 0 ||
		parse_part(spec->flow_json, &a->flow, "invalid job flow", err, errlen) < 0)
		return -1;
	return 0;
}

/* Releases what assign_parse() parsed. */
void
assign_free(Assignment *a)
{
	json_decref(a->files);
	json_decref(a->env);
	json_decref(a->resources);
	json_decref(a->flow);
	a->files = a->env = a->resources = a->flow = NULL;
}
