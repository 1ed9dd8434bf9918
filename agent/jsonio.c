/*
 * jsonio.c -- the agent's JSON through jansson: loading within limits, writing compactly.
 *
 * Both processes (the agent and its metrics sampler) read and write JSON with
 * jansson, the library dispatchctl and dispatch-web use too.  This file adds
 * only what jansson leaves to its caller:
 *   - jsonio_load() refuses duplicate keys (a document saying two things about
 *     one key is ambiguous), nesting deeper than JSONIO_MAX_DEPTH (jansson's
 *     own limit, JSON_PARSER_MAX_DEPTH, is 2048: far more than anything the
 *     server or a plugin has reason to send), and keeps jansson's defaults
 *     that refuse \u0000 (without JSON_ALLOW_NUL) and invalid UTF-8, so every
 *     json_string_value() is a whole, valid C string;
 *   - jsonio_str() makes a string value of any bytes, replacing what is not
 *     UTF-8 by '?' (jansson refuses to build a string of anything else, and
 *     json_object_set_new() would then drop the member without a word);
 *   - jsonio_put() appends a compact dump to a StrBuf, members in insertion
 *     order (jansson keeps it), which is the wire format the server and the
 *     history file readers see.
 * jansson allocates through xmalloc, so running out of memory aborts as it
 * does everywhere else in the agent, and a NULL from jansson always means bad
 * input.
 */
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JSONIO_MAX_DEPTH 64

static void use_xmalloc(void) __attribute__((constructor));
static int depth_ok(const json_t *v, int depth);

/* Makes jansson allocate with xmalloc before main() runs (in the tests too). */
static void
use_xmalloc(void)
{
	json_set_alloc_funcs(xmalloc, free);
}

/* Returns 1 when no container in v (itself at depth) lies deeper than JSONIO_MAX_DEPTH. */
static int
depth_ok(const json_t *v, int depth)
{
	const char *key;
	json_t	   *m;
	size_t		i;

	if (!json_is_object(v) && !json_is_array(v))
		return 1;
	if (depth > JSONIO_MAX_DEPTH)
		return 0;
	if (json_is_object(v))
	{
		json_object_foreach((json_t *) v, key, m)
			if (!depth_ok(m, depth + 1))
				return 0;
	}
	else
		json_array_foreach(v, i, m)
			if (!depth_ok(m, depth + 1))
				return 0;
	return 1;
}

/*
 * Parses the whole of text (more jansson decoding flags in flags, e.g.
 * JSON_DECODE_ANY); returns the value, or NULL with err set to "invalid
 * JSON: ..." naming the line and column.
 */
json_t *
jsonio_load(const char *text, size_t flags, char *err, size_t errlen)
{
	json_error_t je;
	json_t	   *v = json_loads(text, flags | JSON_REJECT_DUPLICATES, &je);

	if (v == NULL)
		agent_seterr(err, errlen, "invalid JSON: %s at line %d, column %d", je.text, je.line,
					 je.column);
	else if (!depth_ok(v, 1))
	{
		agent_seterr(err, errlen, "invalid JSON: nesting deeper than %d levels", JSONIO_MAX_DEPTH);
		json_decref(v);
		v = NULL;
	}
	return v;
}

/*
 * Stores number v in *out, truncating a fraction (PostgreSQL's numeric
 * arithmetic turns 10 s into 10000.000 ms); returns -1 for non-numbers
 * (NULL included) and values outside int64.
 */
int
jsonio_int(const json_t *v, int64_t *out)
{
	double		d;

	if (json_is_integer(v))
	{
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_real(v))
		return -1;
	d = json_real_value(v);
	if (!isfinite(d) || d >= 9.2e18 || d <= -9.2e18)
		return -1;
	*out = (int64_t) d;
	return 0;
}

/* Returns a new JSON string of s, every byte that is not valid UTF-8 made '?'. */
json_t *
jsonio_str(const char *s)
{
	size_t		len = strlen(s);
	char	   *copy = memcpy(xmalloc(len + 1), s, len + 1);
	json_t	   *v;

	utf8_sanitize(copy, len, 1);
	v = json_stringn(copy, len);
	free(copy);
	return v;
}

/* Appends v compactly to sb and releases v (whose strings must be valid UTF-8: jsonio_str). */
void
jsonio_put(StrBuf *sb, json_t *v)
{
	char	   *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (text == NULL)
	{
		log_error("could not write a JSON value");	/* cannot happen: see jsonio_str */
		abort();
	}
	sb_puts(sb, text);
	free(text);
	json_decref(v);
}

/* Appends s to sb as a JSON string literal (bytes that are not UTF-8 become '?'). */
void
jsonio_put_str(StrBuf *sb, const char *s)
{
	jsonio_put(sb, jsonio_str(s));
}
