/*
 * yamljson.c -- YAML or JSON text to a jansson value.
 *
 * A document whose first character is "{" or "[" is tried as strict JSON first
 * (jansson: surrogate pairs, exact integers, duplicate keys refused); anything else,
 * or JSON that jansson refuses, is read as YAML through libyaml's event API and built
 * bottom-up on an explicit stack of open mappings and sequences.  YAML's dangerous
 * corners are closed here, because libyaml leaves them open: an alias expands to a
 * deep copy of its anchor, and every expansion counts against YAMLJSON_MAX_NODES,
 * so a "billion laughs" document is refused after a bounded amount of work; nesting
 * (aliases included) is bounded by YAMLJSON_MAX_DEPTH; duplicate keys are errors,
 * not "the last one wins"; one document per text.  YAML 1.1's merge key "<<" is
 * honoured (explicit keys win, then earlier merged mappings).  What a scalar
 * becomes is yamlscalar.c's.
 */
#include "yamljson_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* One mapping or sequence being built. */
typedef struct Frame
{
	json_t	   *value;			/* the object or array */
	json_t	   *merges;			/* objects named by "<<", in order; NULL when none */
	char	   *key;			/* a mapping's key waiting for its value, or NULL */
	size_t		keylen;
	int			merge_next;		/* the waiting key is the merge key "<<" */
	char	   *anchor;			/* the anchor named on the node, or NULL */
	size_t		nodes_before;	/* Builder.nodes when the node started */
	yaml_mark_t start;			/* where it starts, for errors */
	int			depth_below;	/* the deepest nesting of its children */
} Frame;

/* A completed anchored node that aliases may copy. */
typedef struct Anchor
{
	char	   *name;
	json_t	   *value;
	size_t		nodes;
	int			depth;
} Anchor;

/* The state of one conversion. */
typedef struct Builder
{
	Frame		stack[YAMLJSON_MAX_DEPTH];
	int			depth;
	Anchor	   *anchors;
	int			nanchors;
	int			anchors_cap;
	size_t		nodes;
	json_t	   *root;
	int			documents;
	YamlJsonError *err;
} Builder;

/* Fills *err with a message at (line, column); 0, 0 for none. */
void
yamljson_fail(YamlJsonError *err, int line, int column, const char *fmt,...)
{
	va_list		ap;

	err->line = line;
	err->column = column;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

/* Counts n more nodes; -1 with *err past YAMLJSON_MAX_NODES. */
static int
count_nodes(Builder *b, size_t n, yaml_mark_t mark)
{
	b->nodes += n;
	if (b->nodes > YAMLJSON_MAX_NODES)
	{
		FAIL_AT(b->err, mark, "the document has more than %d nodes (aliases expanded)",
				YAMLJSON_MAX_NODES);
		return -1;
	}
	return 0;
}

/* Records a completed anchored node (a later anchor of the same name replaces it). */
static int
add_anchor(Builder *b, const char *name, json_t *v, size_t nodes, int depth)
{
	Anchor	   *a = NULL;

	for (int i = 0; i < b->nanchors && a == NULL; i++)
		if (strcmp(b->anchors[i].name, name) == 0)
			a = &b->anchors[i];
	if (a == NULL)
	{
		if (b->nanchors == b->anchors_cap)
		{
			int			cap = b->anchors_cap ? 2 * b->anchors_cap : 16;
			Anchor	   *grown = realloc(b->anchors, (size_t) cap * sizeof(Anchor));

			if (grown == NULL)
				return -1;
			b->anchors = grown;
			b->anchors_cap = cap;
		}
		a = &b->anchors[b->nanchors++];
		a->name = strdup(name);
		a->value = NULL;
		if (a->name == NULL)
		{
			b->nanchors--;
			return -1;
		}
	}
	json_decref(a->value);
	a->value = json_incref(v);
	a->nodes = nodes;
	a->depth = depth;
	return 0;
}

/* Fails unless the open mapping (if any) expects a value rather than a key. */
static int
check_not_key(Builder *b, yaml_mark_t mark)
{
	Frame	   *f = b->depth > 0 ? &b->stack[b->depth - 1] : NULL;

	if (f && json_is_object(f->value) && f->key == NULL && !f->merge_next)
	{
		FAIL_AT(b->err, mark, "a mapping key must be a scalar");
		return -1;
	}
	return 0;
}

/* The objects a merge key's value v names, as an array; NULL unless v is a mapping or a
   list of mappings.  Steals v. */
static json_t *
merge_sources(json_t *v)
{
	size_t		i;
	json_t	   *m;

	if (json_is_object(v))
		return json_pack("[o]", v);
	if (!json_is_array(v))
	{
		json_decref(v);
		return NULL;
	}
	json_array_foreach(v, i, m)
		if (!json_is_object(m))
		{
			json_decref(v);
			return NULL;
		}
	return v;
}

/* Places a completed value (nesting depth, anchor) in its parent; steals v. */
static int
place(Builder *b, json_t *v, int depth, const char *anchor, size_t nodes, yaml_mark_t mark)
{
	Frame	   *f;
	int			rc;

	if (v == NULL)
		return -1;
	if (anchor && add_anchor(b, anchor, v, nodes, depth) < 0)
	{
		json_decref(v);
		FAIL_AT(b->err, mark, "out of memory");
		return -1;
	}
	if (b->depth == 0)
	{
		b->root = v;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (depth > f->depth_below)
		f->depth_below = depth;
	if (json_is_array(f->value))
		return json_array_append_new(f->value, v) == 0 ? 0 : -1;
	if (f->merge_next)
	{
		f->merge_next = 0;
		f->merges = merge_sources(v);
		if (f->merges == NULL)
		{
			FAIL_AT(b->err, mark, "the merge key \"<<\" needs a mapping or a list of mappings");
			return -1;
		}
		return 0;
	}
	rc = json_object_setn_new(f->value, f->key, f->keylen, v);
	free(f->key);
	f->key = NULL;
	return rc;
}

/* Handles a scalar event: a mapping key, or a value placed in its parent. */
static int
on_scalar(Builder *b, const yaml_event_t *ev)
{
	Frame	   *f = b->depth > 0 ? &b->stack[b->depth - 1] : NULL;
	const char *s = (const char *) ev->data.scalar.value;
	size_t		len = ev->data.scalar.length;

	if (count_nodes(b, 1, ev->start_mark) < 0)
		return -1;
	if (f && json_is_object(f->value) && f->key == NULL && !f->merge_next)
	{
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && len == 2 && memcmp(s, "<<", 2) == 0)
		{
			if (f->merges)
			{
				FAIL_AT(b->err, ev->start_mark, "duplicate merge key \"<<\"");
				return -1;
			}
			f->merge_next = 1;
			return 0;
		}
		if (json_object_getn(f->value, s, len) != NULL)
		{
			FAIL_AT(b->err, ev->start_mark, "duplicate key \"%s\"", s);
			return -1;
		}
		f->key = malloc(len + 1);
		if (f->key == NULL)
			return -1;
		memcpy(f->key, s, len + 1);
		f->keylen = len;
		return 0;
	}
	return place(b, yamljson_scalar(ev, b->err), 0, (const char *) ev->data.scalar.anchor, 1,
				 ev->start_mark);
}

/* Opens a mapping or sequence (kind "map" or "seq"). */
static int
on_start(Builder *b, const yaml_event_t *ev, int mapping)
{
	const char *tag = mapping ? (const char *) ev->data.mapping_start.tag
		: (const char *) ev->data.sequence_start.tag;
	const char *anchor = mapping ? (const char *) ev->data.mapping_start.anchor
		: (const char *) ev->data.sequence_start.anchor;
	Frame	   *f;

	if (check_not_key(b, ev->start_mark) < 0 || count_nodes(b, 1, ev->start_mark) < 0)
		return -1;
	if (tag && strcmp(tag, "!") != 0 && strcmp(tag, mapping ? TAG_PREFIX "map" : TAG_PREFIX "seq") != 0)
	{
		FAIL_AT(b->err, ev->start_mark, "YAML tag \"%s\" is not supported here", tag);
		return -1;
	}
	if (b->depth == YAMLJSON_MAX_DEPTH)
	{
		FAIL_AT(b->err, ev->start_mark, "the document is nested more than %d levels deep",
				YAMLJSON_MAX_DEPTH);
		return -1;
	}
	f = &b->stack[b->depth];
	memset(f, 0, sizeof(*f));
	f->value = mapping ? json_object() : json_array();
	f->anchor = anchor ? strdup(anchor) : NULL;
	f->nodes_before = b->nodes - 1;
	f->start = ev->start_mark;
	if (f->value == NULL || (anchor && f->anchor == NULL))
	{
		json_decref(f->value);
		free(f->anchor);
		return -1;
	}
	b->depth++;
	return 0;
}

/* Closes the innermost mapping or sequence, applying its merges, and places it. */
static int
on_end(Builder *b)
{
	Frame		f = b->stack[--b->depth];
	size_t		i;
	json_t	   *m;
	int			rc;

	if (f.merges)
	{
		json_array_foreach(f.merges, i, m)
		{
			const char *k;
			size_t		klen;
			json_t	   *v;

			json_object_keylen_foreach(m, k, klen, v)
				if (json_object_getn(f.value, k, klen) == NULL)
					json_object_setn(f.value, k, klen, v);
		}
		json_decref(f.merges);
	}
	rc = place(b, f.value, f.depth_below + 1, f.anchor, b->nodes - f.nodes_before, f.start);
	free(f.anchor);
	return rc;
}

/* Places a deep copy of an alias's anchor, counted against the limits. */
static int
on_alias(Builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *) ev->data.alias.anchor;
	Anchor	   *a = NULL;

	for (int i = 0; i < b->nanchors; i++)
		if (strcmp(b->anchors[i].name, name) == 0)
			a = &b->anchors[i];
	if (check_not_key(b, ev->start_mark) < 0)
		return -1;
	if (a == NULL)
	{
		FAIL_AT(b->err, ev->start_mark, "alias \"*%s\" names no anchor defined before it", name);
		return -1;
	}
	if (count_nodes(b, a->nodes, ev->start_mark) < 0)
		return -1;
	if (b->depth + a->depth > YAMLJSON_MAX_DEPTH)
	{
		FAIL_AT(b->err, ev->start_mark, "the document is nested more than %d levels deep",
				YAMLJSON_MAX_DEPTH);
		return -1;
	}
	return place(b, json_deep_copy(a->value), a->depth, NULL, a->nodes, ev->start_mark);
}

/* Handles one parser event; -1 with b->err filled on error. */
static int
on_event(Builder *b, const yaml_event_t *ev)
{
	switch (ev->type)
	{
		case YAML_DOCUMENT_START_EVENT:
			if (b->documents++ > 0)
			{
				FAIL_AT(b->err, ev->start_mark, "the text holds more than one YAML document");
				return -1;
			}
			return 0;
		case YAML_SCALAR_EVENT:
			return on_scalar(b, ev);
		case YAML_SEQUENCE_START_EVENT:
			return on_start(b, ev, 0);
		case YAML_MAPPING_START_EVENT:
			return on_start(b, ev, 1);
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			return on_end(b);
		case YAML_ALIAS_EVENT:
			return on_alias(b, ev);
		default:
			return 0;
	}
}

/* Frees what a conversion holds (the result too, unless it was taken). */
static void
builder_free(Builder *b)
{
	while (b->depth > 0)
	{
		Frame	   *f = &b->stack[--b->depth];

		json_decref(f->value);
		json_decref(f->merges);
		free(f->key);
		free(f->anchor);
	}
	for (int i = 0; i < b->nanchors; i++)
	{
		free(b->anchors[i].name);
		json_decref(b->anchors[i].value);
	}
	free(b->anchors);
	json_decref(b->root);
}

/* Fills *err from a libyaml parser error in text. */
static void
parser_failed(const yaml_parser_t *p, const char *text, YamlJsonError *err)
{
	const char *problem = p->problem ? p->problem : "could not parse YAML";
	yaml_mark_t mark = p->problem_mark;

	if (p->error == YAML_READER_ERROR)
	{
		/* the reader counts bytes only: find the line and column of the offset */
		memset(&mark, 0, sizeof(mark));
		for (size_t i = 0; i < p->problem_offset; i++)
		{
			mark.column = text[i] == '\n' ? 0 : mark.column + 1;
			mark.line += text[i] == '\n';
		}
	}
	if (p->context)
		FAIL_AT(err, mark, "%s %s", p->context, problem);
	else
		FAIL_AT(err, mark, "%s", problem);
}

/* Converts YAML text; NULL with *err. */
static json_t *
from_yaml(const char *text, size_t len, YamlJsonError *err)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	Builder    *b = calloc(1, sizeof(Builder));
	json_t	   *result = NULL;
	int			done = 0;

	if (b == NULL || !yaml_parser_initialize(&parser))
	{
		free(b);
		yamljson_fail(err, 0, 0, "out of memory");
		return NULL;
	}
	b->err = err;
	yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
	while (!done)
	{
		if (!yaml_parser_parse(&parser, &ev))
		{
			parser_failed(&parser, text, err);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		if (on_event(b, &ev) < 0)
		{
			if (err->message[0] == '\0')
				FAIL_AT(err, ev.start_mark, "out of memory");
			yaml_event_delete(&ev);
			break;
		}
		yaml_event_delete(&ev);
	}
	if (done && b->documents == 0)
		yamljson_fail(err, 1, 1, "the document is empty");
	else if (done)
	{
		result = b->root;
		b->root = NULL;
	}
	builder_free(b);
	free(b);
	yaml_parser_delete(&parser);
	return result;
}

/* Fails (-1) when v nests more than levels containers deep or *nodes passes the cap. */
static int
measure(json_t *v, int levels, size_t *nodes)
{
	size_t		i;
	const char *k;
	json_t	   *child;

	if (++*nodes > YAMLJSON_MAX_NODES)
		return -1;
	if (json_is_array(v) || json_is_object(v))
	{
		if (levels == 0)
			return -1;
		if (json_is_array(v))
			json_array_foreach(v, i, child)
				if (measure(child, levels - 1, nodes) < 0)
					return -1;
		if (json_is_object(v))
			json_object_foreach(v, k, child)
				if (measure(child, levels - 1, nodes) < 0)
					return -1;
	}
	return 0;
}

/* Strict JSON: 1 with *out, 0 when the text is not JSON (try YAML), -1 with *err. */
static int
from_json(const char *text, size_t len, json_t **out, YamlJsonError *err)
{
	json_error_t jerr;
	size_t		nodes = 0;
	json_t	   *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);

	if (v == NULL)
		return 0;
	if (measure(v, YAMLJSON_MAX_DEPTH, &nodes) < 0)
	{
		json_decref(v);
		yamljson_fail(err, 0, 0, "the document is nested more than %d levels deep or has more than %d nodes",
			 YAMLJSON_MAX_DEPTH, YAMLJSON_MAX_NODES);
		return -1;
	}
	*out = v;
	return 1;
}

/* Parses text (len bytes; YAML 1.1 as libyaml reads it, JSON is a subset) into a new
   json_t, or NULL with *err filled (1-based line and column). */
json_t *
yaml_to_json(const char *text, size_t len, YamlJsonError *err)
{
	size_t		i = 0;
	json_t	   *v = NULL;

	memset(err, 0, sizeof(*err));
	if (len > YAMLJSON_MAX_BYTES)
	{
		yamljson_fail(err, 0, 0, "the document is larger than %d bytes", YAMLJSON_MAX_BYTES);
		return NULL;
	}
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && text[i] != '\0' && strchr(" \t\r\n", text[i]))
		i++;
	if (i < len && (text[i] == '{' || text[i] == '['))
	{
		int			rc = from_json(text, len, &v, err);

		if (rc != 0)
			return v;
	}
	return from_yaml(text, len, err);
}
