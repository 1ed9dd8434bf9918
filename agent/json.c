/*
 * json.c -- just enough JSON for the agent: a reader and an escaping writer.
 *
 * The reader is a recursive-descent parser into a tree of JsonValue nodes
 * (first child / next sibling).  It accepts the whole RFC 8259 grammar, so a
 * reply that grows new keys still parses, but keeps numbers as their literal
 * text: the agent only needs integers (json_int) and passes other numbers on
 * verbatim.  \uXXXX escapes, surrogate pairs included, are decoded to UTF-8;
 * \u0000 is refused because the result must be a C string.  Nesting is
 * limited so a hostile document cannot exhaust the stack.
 *
 * The writer is json_put_str(), which appends a quoted, escaped string to a
 * StrBuf; callers write the punctuation themselves.
 */
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct Parser
{
	const char *p;
	char	   *err;
	size_t		errlen;
	int			depth;
} Parser;

static JsonValue *parse_value(Parser *ps);
static JsonValue *fail(Parser *ps, const char *what);
static void skip_ws(Parser *ps);
static JsonValue *new_value(JsonType type);
static int hex4(const char *s, unsigned *out);
static void put_utf8(StrBuf *sb, unsigned cp);
static char *parse_string(Parser *ps);
static JsonValue *parse_number(Parser *ps);
static JsonValue *parse_container(Parser *ps, JsonType type);

/* Records a parse error at the current position and returns NULL. */
static JsonValue *
fail(Parser *ps, const char *what)
{
	if (*ps->p)
		agent_seterr(ps->err, ps->errlen, "invalid JSON: %s at \"%.20s\"", what, ps->p);
	else
		agent_seterr(ps->err, ps->errlen, "invalid JSON: %s at end of input", what);
	return NULL;
}

/* Skips JSON white space. */
static void
skip_ws(Parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

/* Returns a new node of the given type. */
static JsonValue *
new_value(JsonType type)
{
	JsonValue  *v = xmalloc(sizeof(JsonValue));

	memset(v, 0, sizeof(JsonValue));
	v->type = type;
	return v;
}

/* Reads 4 hex digits at s into *out; returns -1 when they are not hex. */
static int
hex4(const char *s, unsigned *out)
{
	*out = 0;
	for (int i = 0; i < 4; i++)
	{
		char		c = s[i];
		unsigned	d;

		if (c >= '0' && c <= '9')
			d = (unsigned) (c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned) (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned) (c - 'A' + 10);
		else
			return -1;
		*out = *out * 16 + d;
	}
	return 0;
}

/* Appends code point cp to sb as UTF-8. */
static void
put_utf8(StrBuf *sb, unsigned cp)
{
	char		b[4];
	size_t		n;

	if (cp < 0x80)
	{
		b[0] = (char) cp;
		n = 1;
	}
	else if (cp < 0x800)
	{
		b[0] = (char) (0xC0 | (cp >> 6));
		b[1] = (char) (0x80 | (cp & 0x3F));
		n = 2;
	}
	else if (cp < 0x10000)
	{
		b[0] = (char) (0xE0 | (cp >> 12));
		b[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char) (0x80 | (cp & 0x3F));
		n = 3;
	}
	else
	{
		b[0] = (char) (0xF0 | (cp >> 18));
		b[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char) (0x80 | (cp & 0x3F));
		n = 4;
	}
	sb_append(sb, b, n);
}

/* Parses a string literal at ps->p into a malloc'd C string, or returns NULL. */
static char *
parse_string(Parser *ps)
{
	/* the one-letter escapes and what each stands for, position by position */
	static const char escapes[] = "\"\\/bfnrt";
	static const char unescaped[] = "\"\\/\b\f\n\r\t";
	const char *esc;
	StrBuf		sb;

	if (*ps->p != '"')
	{
		fail(ps, "expected a string");
		return NULL;
	}
	ps->p++;
	sb_init(&sb);
	for (;;)
	{
		unsigned char c = (unsigned char) *ps->p;

		if (c == '"')
		{
			ps->p++;
			return sb.data;
		}
		if (c == '\0' || c < 0x20)
		{
			fail(ps, c ? "control character in string" : "unterminated string");
			break;
		}
		if (c != '\\')
		{
			sb_append(&sb, ps->p++, 1);
			continue;
		}
		ps->p++;
		c = (unsigned char) *ps->p++;
		if (c == 'u')
		{
			unsigned	cp, lo;

			if (hex4(ps->p, &cp) < 0)
			{
				ps->p -= 2;
				fail(ps, "invalid \\u escape");
				break;
			}
			ps->p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF)
			{
				if (ps->p[0] != '\\' || ps->p[1] != 'u' || hex4(ps->p + 2, &lo) < 0 ||
					lo < 0xDC00 || lo > 0xDFFF)
				{
					fail(ps, "unpaired surrogate in \\u escape");
					break;
				}
				ps->p += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			}
			else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0)
			{
				fail(ps, cp ? "unpaired surrogate in \\u escape" : "\\u0000 is not supported");
				break;
			}
			put_utf8(&sb, cp);
			continue;
		}
		if (c != '\0' && (esc = strchr(escapes, c)) != NULL)
		{
			sb_append(&sb, &unescaped[esc - escapes], 1);
			continue;
		}
		ps->p -= 2;
		fail(ps, "invalid escape");
		break;
	}
	sb_free(&sb);
	return NULL;
}

/* Parses a number literal per RFC 8259 and keeps its text. */
static JsonValue *
parse_number(Parser *ps)
{
	const char *s = ps->p;
	JsonValue  *v;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return fail(ps, "invalid number");
	if (*s == '.')
	{
		if (!(*++s >= '0' && *s <= '9'))
			return fail(ps, "invalid number");
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E')
	{
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return fail(ps, "invalid number");
		while (*s >= '0' && *s <= '9')
			s++;
	}
	v = new_value(JSON_NUMBER);
	v->text = xmalloc((size_t) (s - ps->p) + 1);
	memcpy(v->text, ps->p, (size_t) (s - ps->p));
	v->text[s - ps->p] = '\0';
	ps->p = s;
	return v;
}

/* Parses the elements of an array or the members of an object after its opening bracket. */
static JsonValue *
parse_container(Parser *ps, JsonType type)
{
	char		close = type == JSON_ARRAY ? ']' : '}';
	JsonValue  *v = new_value(type);
	JsonValue **tail = &v->child;

	if (++ps->depth > JSON_MAX_DEPTH)
	{
		json_free(v);
		return fail(ps, "nesting too deep");
	}
	ps->p++;
	skip_ws(ps);
	if (*ps->p == close)
	{
		ps->p++;
		ps->depth--;
		return v;
	}
	for (;;)
	{
		char	   *key = NULL;
		JsonValue  *elem;

		skip_ws(ps);
		if (type == JSON_OBJECT)
		{
			if ((key = parse_string(ps)) == NULL)
				break;
			skip_ws(ps);
			if (*ps->p != ':')
			{
				free(key);
				fail(ps, "expected \":\"");
				break;
			}
			ps->p++;
		}
		if ((elem = parse_value(ps)) == NULL)
		{
			free(key);
			break;
		}
		elem->key = key;
		*tail = elem;
		tail = &elem->next;
		skip_ws(ps);
		if (*ps->p == ',')
		{
			ps->p++;
			continue;
		}
		if (*ps->p == close)
		{
			ps->p++;
			ps->depth--;
			return v;
		}
		fail(ps, type == JSON_ARRAY ? "expected \",\" or \"]\"" : "expected \",\" or \"}\"");
		break;
	}
	json_free(v);
	return NULL;
}

/* Parses any value at ps->p, or returns NULL with the error set. */
static JsonValue *
parse_value(Parser *ps)
{
	static const struct
	{
		const char *word;
		JsonType	type;
		int			boolean;
	}			words[] = {{"null", JSON_NULL, 0}, {"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}};
	JsonValue  *v;
	char	   *s;

	skip_ws(ps);
	switch (*ps->p)
	{
		case '{':
			return parse_container(ps, JSON_OBJECT);
		case '[':
			return parse_container(ps, JSON_ARRAY);
		case '"':
			if ((s = parse_string(ps)) == NULL)
				return NULL;
			v = new_value(JSON_STRING);
			v->text = s;
			return v;
		case '-':
		case '0' ... '9':
			return parse_number(ps);
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
	{
		size_t		n = strlen(words[i].word);

		if (strncmp(ps->p, words[i].word, n) == 0)
		{
			ps->p += n;
			v = new_value(words[i].type);
			v->boolean = words[i].boolean;
			return v;
		}
	}
	return fail(ps, "expected a value");
}

/* Parses the whole of text into *out; returns -1 with err filled on bad JSON. */
int
json_parse(const char *text, JsonValue **out, char *err, size_t errlen)
{
	Parser		ps = {text, err, errlen, 0};
	JsonValue  *v = parse_value(&ps);

	*out = NULL;
	if (v == NULL)
		return -1;
	skip_ws(&ps);
	if (*ps.p != '\0')
	{
		json_free(v);
		fail(&ps, "trailing characters");
		return -1;
	}
	*out = v;
	return 0;
}

/* Releases a tree returned by json_parse (NULL is fine). */
void
json_free(JsonValue *v)
{
	while (v != NULL)
	{
		JsonValue  *next = v->next;

		json_free(v->child);
		free(v->text);
		free(v->key);
		free(v);
		v = next;
	}
}

/* Returns the member key of object obj, or NULL when obj is no object or lacks it. */
const JsonValue *
json_get(const JsonValue *obj, const char *key)
{
	if (obj == NULL || obj->type != JSON_OBJECT)
		return NULL;
	for (const JsonValue *m = obj->child; m != NULL; m = m->next)
		if (strcmp(m->key, key) == 0)
			return m;
	return NULL;
}

/*
 * Stores number v in *out, truncating a fraction (PostgreSQL's numeric
 * arithmetic turns 10 s into 10000.000 ms); returns -1 for non-numbers and
 * values outside int64.
 */
int
json_int(const JsonValue *v, int64_t *out)
{
	char	   *end;
	double		d;
	long long	i;

	if (v == NULL || v->type != JSON_NUMBER)
		return -1;
	errno = 0;
	if (strpbrk(v->text, ".eE") == NULL)
	{
		i = strtoll(v->text, &end, 10);	/* exact for large integers */
		if (errno != 0 || *end != '\0')
			return -1;
		*out = i;
		return 0;
	}
	d = strtod(v->text, &end);
	if (*end != '\0' || !isfinite(d) || d >= 9.2e18 || d <= -9.2e18)
		return -1;
	*out = (int64_t) d;
	return 0;
}

/* Appends s to sb as a JSON string literal, escaping quotes, backslashes and control characters. */
void
json_put_str(StrBuf *sb, const char *s)
{
	sb_puts(sb, "\"");
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			char		esc[2] = {'\\', (char) c};

			sb_append(sb, esc, 2);
		}
		else if (c == '\n')
			sb_puts(sb, "\\n");
		else if (c == '\t')
			sb_puts(sb, "\\t");
		else if (c < 0x20 || c == 0x7F)
			sb_printf(sb, "\\u%04x", c);
		else
			sb_append(sb, s, 1);
	}
	sb_puts(sb, "\"");
}
