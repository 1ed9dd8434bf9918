/*
 * yamlscalar.c -- what one YAML scalar becomes in JSON.
 *
 * Plain (unquoted) scalars are resolved by YAML 1.2's core schema, with two
 * deliberate departures from what people trip over in YAML 1.1: yes/no/on/off stay
 * strings (no "Norway problem"), and numbers with a leading zero ("0755", "007")
 * stay strings, so a file mode is never silently read as decimal or as octal.
 * Quoted and block scalars are strings; the standard tags (!!str, !!int, !!float,
 * !!bool, !!null) are honoured and checked; any other tag is refused.  Values JSON
 * cannot hold (.inf, .nan, integers beyond 64 bits) are errors, never rounded.
 */
#include "yamljson_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Returns 1 when s (len bytes) equals one of the NULL-terminated words. */
static int
is_word(const char *s, size_t len, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == len && memcmp(s, *words, len) == 0)
			return 1;
	return 0;
}

/* Returns 1 when s[from, len) is at least one character of the class chars. */
static int
all_of(const char *s, size_t from, size_t len, const char *chars)
{
	if (from >= len)
		return 0;
	for (size_t i = from; i < len; i++)
		if (s[i] == '\0' || strchr(chars, s[i]) == NULL)
			return 0;
	return 1;
}

/* Returns 1 when s is a YAML 1.2 core float: digits with a point or an exponent. */
static int
is_float(const char *s, size_t len)
{
	size_t		i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	size_t		digits = 0;
	int			point = 0;

	for (; i < len && (s[i] == '.' || (s[i] >= '0' && s[i] <= '9')); i++)
	{
		if (s[i] == '.' && point++)
			return 0;
		digits += s[i] != '.';
	}
	if (digits == 0)
		return 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		return all_of(s, i, len, "0123456789");
	}
	return i == len && point;
}

/* Resolves a plain scalar (NUL-terminated, len bytes) to a JSON value; NULL with *err. */
static json_t *
resolve_plain(const char *s, size_t len, yaml_mark_t mark, YamlJsonError *err)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
	static const char *const trues[] = {"true", "True", "TRUE", NULL};
	static const char *const falses[] = {"false", "False", "FALSE", NULL};
	static const char *const specials[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
		"-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL};
	size_t		sign = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
	int			base = 0;

	if (is_word(s, len, nulls))
		return json_null();
	if (is_word(s, len, trues))
		return json_true();
	if (is_word(s, len, falses))
		return json_false();
	if (is_word(s, len, specials))
	{
		FAIL_AT(err, mark, "YAML value \"%s\" has no JSON equivalent", s);
		return NULL;
	}
	if (len == sign + 1 && s[sign] == '0')
		base = 10;
	else if (len > sign && s[sign] >= '1' && s[sign] <= '9' && all_of(s, sign, len, "0123456789"))
		base = 10;
	else if (len > 2 && s[0] == '0' && s[1] == 'x' && all_of(s, 2, len, "0123456789abcdefABCDEF"))
		base = 16;
	else if (len > 2 && s[0] == '0' && s[1] == 'o' && all_of(s, 2, len, "01234567"))
		base = 8;
	if (base != 0)
	{
		long long	v;

		errno = 0;
		v = strtoll(base == 10 ? s : s + 2, NULL, base);
		if (errno == ERANGE)
		{
			FAIL_AT(err, mark, "integer \"%s\" is out of range (quote it to keep it as a string)", s);
			return NULL;
		}
		return json_integer(v);
	}
	if (is_float(s, len))
	{
		double		v = strtod(s, NULL);

		if (!isfinite(v))
		{
			FAIL_AT(err, mark, "number \"%s\" is out of range (quote it to keep it as a string)", s);
			return NULL;
		}
		return json_real(v);
	}
	return json_stringn(s, len);
}

/* Converts a scalar event to a JSON value following its style and tag; NULL with *err. */
json_t *
yamljson_scalar(const yaml_event_t *ev, YamlJsonError *err)
{
	const char *s = (const char *) ev->data.scalar.value;
	size_t		len = ev->data.scalar.length;
	const char *tag = (const char *) ev->data.scalar.tag;
	json_t	   *v;

	if (tag == NULL)
		return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
			? resolve_plain(s, len, ev->start_mark, err) : json_stringn(s, len);
	if (strcmp(tag, "!") == 0 || strcmp(tag, TAG_PREFIX "str") == 0)
		return json_stringn(s, len);
	if (strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) != 0)
	{
		FAIL_AT(err, ev->start_mark, "YAML tag \"%s\" is not supported", tag);
		return NULL;
	}
	tag += strlen(TAG_PREFIX);
	if (strcmp(tag, "int") != 0 && strcmp(tag, "float") != 0 && strcmp(tag, "bool") != 0 &&
		strcmp(tag, "null") != 0)
	{
		FAIL_AT(err, ev->start_mark, "YAML tag \"%s%s\" is not supported", TAG_PREFIX, tag);
		return NULL;
	}
	v = resolve_plain(s, len, ev->start_mark, err);
	if (v == NULL)
		return NULL;
	if ((strcmp(tag, "int") == 0 && json_is_integer(v)) ||
		(strcmp(tag, "float") == 0 && json_is_number(v)) ||
		(strcmp(tag, "bool") == 0 && json_is_boolean(v)) ||
		(strcmp(tag, "null") == 0 && json_is_null(v)))
		return v;
	json_decref(v);
	FAIL_AT(err, ev->start_mark, "value \"%s\" is not a valid !!%s", s, tag);
	return NULL;
}
