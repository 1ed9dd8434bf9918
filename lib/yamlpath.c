/*
 * yamlpath.c -- from a JSON path back to the line and column in the YAML text.
 *
 * The server names the place of a validation error as a JSON path in
 * dispatch._path's notation: keys that are plain identifiers bare, other keys
 * JSON-quoted, indexes in brackets ("stages[0].jobs[1]."a b"").  The path is
 * followed through libyaml's events without building anything, skipping the
 * siblings on the way.  A path that runs through an alias ends at the alias (that
 * is where the text says it); a key that only a merge key "<<" supplies ends at the
 * merge's value.
 */
#include "yamljson_int.h"

#include <stdlib.h>
#include <string.h>

/* One step of a JSON path: a key (key != NULL) or an index. */
typedef struct PathStep
{
	char	   *key;
	size_t		keylen;
	long		index;
} PathStep;

/* Parses a JSON path into at most max steps, *n of them (their keys the caller's to
   free, even on failure); returns 0, or -1 when it is not a path. */
static int
parse_path(const char *path, PathStep *steps, int max, int *n)
{
	const char *p = path;

	*n = 0;
	while (*p)
	{
		PathStep   *s;

		if (*n == max)
			return -1;
		s = &steps[*n];
		s->key = NULL;
		if (*p == '[')
		{
			char	   *end;

			s->index = strtol(p + 1, &end, 10);
			if (end == p + 1 || *end != ']' || s->index < 0)
				return -1;
			p = end + 1;
		}
		else
		{
			const char *start = p;

			if (*n > 0 && *p++ != '.')
				return -1;
			start = p;
			if (*p == '"')
			{
				json_t	   *k;

				for (p++; *p && *p != '"'; p++)
					if (*p == '\\' && p[1])
						p++;
				if (*p++ != '"')
					return -1;
				k = json_loadb(start, (size_t) (p - start), JSON_DECODE_ANY, NULL);
				if (k == NULL || !json_is_string(k))
				{
					json_decref(k);
					return -1;
				}
				s->keylen = json_string_length(k);
				s->key = malloc(s->keylen + 1);
				if (s->key)
					memcpy(s->key, json_string_value(k), s->keylen + 1);
				json_decref(k);
			}
			else
			{
				while (*p && *p != '.' && *p != '[')
					p++;
				s->keylen = (size_t) (p - start);
				s->key = s->keylen ? strndup(start, s->keylen) : NULL;
			}
			if (s->key == NULL)
				return -1;
		}
		(*n)++;
	}
	return 0;
}

/* Consumes the rest of the node that event ev started (nothing for a scalar). */
static int
skip_node(yaml_parser_t *p, const yaml_event_t *ev)
{
	int			open = ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT;

	while (open > 0)
	{
		yaml_event_t e;

		if (!yaml_parser_parse(p, &e))
			return -1;
		if (e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT)
			open++;
		else if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT)
			open--;
		else if (e.type == YAML_STREAM_END_EVENT)
			open = -1;
		yaml_event_delete(&e);
	}
	return open;
}

/* Follows steps[i..n) from the node ev starts; 1 with the position, 0 unknown, -1 error. */
static int
follow(yaml_parser_t *p, yaml_event_t *ev, PathStep *steps, int n, int i, int *line, int *column)
{
	int			mapping = ev->type == YAML_MAPPING_START_EVENT;
	int			sequence = ev->type == YAML_SEQUENCE_START_EVENT;
	int			merge_line = 0;
	int			merge_column = 0;

	if (i == n || ev->type == YAML_ALIAS_EVENT)
	{
		*line = (int) ev->start_mark.line + 1;
		*column = (int) ev->start_mark.column + 1;
		return 1;
	}
	if (!(mapping && steps[i].key) && !(sequence && !steps[i].key))
		return 0;
	for (long idx = 0;; idx++)
	{
		yaml_event_t e;
		int			hit;
		int			merge = 0;

		if (!yaml_parser_parse(p, &e))
			return -1;
		if (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT)
		{
			yaml_event_delete(&e);
			*line = merge_line;
			*column = merge_column;
			return merge_line > 0;
		}
		if (sequence)
			hit = idx == steps[i].index;
		else
		{
			hit = e.type == YAML_SCALAR_EVENT && e.data.scalar.length == steps[i].keylen &&
				memcmp(e.data.scalar.value, steps[i].key, steps[i].keylen) == 0;
			merge = e.type == YAML_SCALAR_EVENT && e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
				strcmp((const char *) e.data.scalar.value, "<<") == 0;
			if (skip_node(p, &e) < 0)
			{
				yaml_event_delete(&e);
				return -1;
			}
			yaml_event_delete(&e);
			if (!yaml_parser_parse(p, &e))
				return -1;
			if (merge)
			{
				merge_line = (int) e.start_mark.line + 1;
				merge_column = (int) e.start_mark.column + 1;
			}
		}
		if (hit)
		{
			int			rc = follow(p, &e, steps, n, i + 1, line, column);

			yaml_event_delete(&e);
			return rc;
		}
		if (skip_node(p, &e) < 0)
		{
			yaml_event_delete(&e);
			return -1;
		}
		yaml_event_delete(&e);
	}
}

/* The source position (1-based line, column) of the node at a JSON path such as
   stages[0].jobs[2].needs (dispatch._path's notation), or 0 when unknown: lets a
   validation error from the server name the file's line and column. */
int
yaml_json_locate(const char *text, size_t len, const char *json_path, int *line, int *column)
{
	PathStep	steps[YAMLJSON_MAX_DEPTH];
	yaml_parser_t parser;
	yaml_event_t ev;
	int			n;
	int			found = 0;
	int			parsed = parse_path(json_path, steps, YAMLJSON_MAX_DEPTH, &n);

	if (parsed == 0 && len <= YAMLJSON_MAX_BYTES && yaml_parser_initialize(&parser))
	{
		yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
		while (yaml_parser_parse(&parser, &ev))
		{
			int			node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_ALIAS_EVENT ||
				ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT;
			int			end = ev.type == YAML_STREAM_END_EVENT;

			if (node)
				found = follow(&parser, &ev, steps, n, 0, line, column) == 1;
			yaml_event_delete(&ev);
			if (node || end)
				break;
		}
		yaml_parser_delete(&parser);
	}
	for (int i = 0; i < n; i++)
		free(steps[i].key);
	return found;
}
