/*
 * test_json.c -- jsonio.c over jansson: what loads, what is refused (hostile
 * documents: deep nesting, huge numbers, bad UTF-8, \u0000, duplicate keys),
 * and what the writer writes.
 */
#include "unit.h"

#include <stdlib.h>

static int	loads(const char *text, size_t flags);
static const char *refusal(const char *text);
static const char *quoted(const char *s);
static char *nested(int depth);
static void test_load(void);
static void test_hostile(void);
static void test_write(void);

/* Returns 1 when text loads with flags. */
static int
loads(const char *text, size_t flags)
{
	json_t	   *v = jsonio_load(text, flags, NULL, 0);

	json_decref(v);
	return v != NULL;
}

/* Returns the error jsonio_load gives text (static buffer; "" when it loads). */
static const char *
refusal(const char *text)
{
	static char err[AGENT_ERRLEN];
	json_t	   *v;

	err[0] = '\0';
	v = jsonio_load(text, JSON_DECODE_ANY, err, sizeof(err));
	CHECK(v == NULL);
	json_decref(v);
	return err;
}

/* Returns the JSON literal jsonio_put_str writes for s (static buffer). */
static const char *
quoted(const char *s)
{
	static char out[256];
	StrBuf		sb;

	sb_init(&sb);
	jsonio_put_str(&sb, s);
	snprintf(out, sizeof(out), "%s", sb.data);
	sb_free(&sb);
	return out;
}

/* Returns depth nested arrays around 1, malloc'd. */
static char *
nested(int depth)
{
	char	   *s = xmalloc((size_t) depth * 2 + 2);

	memset(s, '[', (size_t) depth);
	s[depth] = '1';
	memset(s + depth + 1, ']', (size_t) depth);
	s[depth * 2 + 1] = '\0';
	return s;
}

/* Well-formed documents and the accessors the agent uses on them. */
static void
test_load(void)
{
	json_t	   *v, *x;
	char		err[AGENT_ERRLEN];
	int64_t		n;

	v = jsonio_load("{\"channel\": \"dispatch_node_w1\", \"heartbeat_ms\": 10000,"
					" \"kill_grace_ms\": 10000.000000, \"x\": [1, true, null, {\"y\": -2e3}]}",
					0, err, sizeof(err));
	CHECK(v != NULL);
	CHECK_STR(json_string_value(json_object_get(v, "channel")), "dispatch_node_w1");
	CHECK(jsonio_int(json_object_get(v, "heartbeat_ms"), &n) == 0 && n == 10000);
	CHECK(jsonio_int(json_object_get(v, "kill_grace_ms"), &n) == 0 && n == 10000);
	CHECK(jsonio_int(json_object_get(v, "channel"), &n) == -1);
	CHECK(jsonio_int(json_object_get(v, "missing"), &n) == -1);
	x = json_object_get(v, "x");
	CHECK(json_is_array(x) && json_array_size(x) == 4 && json_is_integer(json_array_get(x, 0)));
	CHECK(json_is_true(json_array_get(x, 1)) && json_is_null(json_array_get(x, 2)));
	CHECK(jsonio_int(json_object_get(json_array_get(x, 3), "y"), &n) == 0 && n == -2000);
	json_decref(v);

	v = jsonio_load("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00\"", JSON_DECODE_ANY,
					err, sizeof(err));
	CHECK_STR(json_string_value(v), "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	json_decref(v);

	v = jsonio_load("9223372036854775807", JSON_DECODE_ANY, err, sizeof(err));
	CHECK(jsonio_int(v, &n) == 0 && n == INT64_MAX);
	json_decref(v);
	v = jsonio_load("1e300", JSON_DECODE_ANY, err, sizeof(err));
	CHECK(v != NULL && jsonio_int(v, &n) == -1);
	json_decref(v);
	v = jsonio_load("-9.3e18", JSON_DECODE_ANY, err, sizeof(err));
	CHECK(v != NULL && jsonio_int(v, &n) == -1);
	json_decref(v);

	CHECK(loads(" {} ", 0));
	CHECK(loads("[]", 0));
	CHECK(loads("{\"a\":{}}", 0));
	CHECK(loads("0", JSON_DECODE_ANY));
	CHECK(loads("-0.5e+2", JSON_DECODE_ANY));
	CHECK(loads("null", JSON_DECODE_ANY));
	CHECK(!loads("0", 0));		/* a bare scalar only where the caller asks for one */
	CHECK(loads("{\"a\":1,\"b\":{\"a\":2}}", 0));	/* one key in two objects is no duplicate */
}

/* Malformed and hostile documents: each refused with a message. */
static void
test_hostile(void)
{
	static const char *const bad[] = {
		"", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}", "[1,]", "[1 2]",
		"01", "1.", "-", "1e", "tru", "nul", "NaN", "Infinity", "'a'", "\"abc",
		"\"a\nb\"", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "{} x", "[1] [2]",
		"\"\\u0000\"", "\"a\\u0000b\"", "{\"\\u0000\":1}",	/* a C string ends at NUL */
		"\"\xff\"", "\"\xc3\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
		"{\"a\":1,\"a\":2}",	/* which one? */
		"99999999999999999999", "-9223372036854775809", "1e400", "-1e400",
	};
	const char *err;
	char	   *deep;
	json_t	   *v;
	int64_t		n;
	StrBuf		sb;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		err = refusal(bad[i]);
		CHECK(strncmp(err, "invalid JSON: ", 14) == 0);
		if (strncmp(err, "invalid JSON: ", 14) != 0)
			fprintf(stderr, "  accepted %s\n", bad[i]);
	}
	CHECK(strstr(refusal("{\n  \"a\": 1,\n  \"a\": 2}"), "line 3") != NULL);
	CHECK(strstr(refusal("{\"a\":1,\"a\":2}"), "duplicate") != NULL);

	/* 64 levels load, 65 do not; far deeper is refused by jansson itself */
	deep = nested(64);
	CHECK(loads(deep, 0));
	free(deep);
	deep = nested(65);
	CHECK(strstr(refusal(deep), "nesting deeper than 64 levels") != NULL);
	free(deep);
	deep = nested(100000);
	CHECK(strncmp(refusal(deep), "invalid JSON: ", 14) == 0);
	free(deep);
	sb_init(&sb);
	for (int i = 0; i < 65; i++)
		sb_puts(&sb, "{\"a\":");
	sb_puts(&sb, "1");
	for (int i = 0; i < 65; i++)
		sb_puts(&sb, "}");
	CHECK(strstr(refusal(sb.data), "nesting deeper") != NULL);	/* objects count as arrays do */
	sb_free(&sb);

	/* integers beyond int64 are numbers where the caller asks for reals */
	v = jsonio_load("99999999999999999999", JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL, 0);
	CHECK(json_is_real(v) && jsonio_int(v, &n) == -1);
	json_decref(v);
	CHECK(jsonio_load("[1,", 0, NULL, 0) == NULL);	/* no error buffer is fine */
}

/* The writer: escapes, UTF-8 repaired, compact dumps in insertion order. */
static void
test_write(void)
{
	json_t	   *v;
	StrBuf		sb;

	CHECK_STR(quoted("plain"), "\"plain\"");
	CHECK_STR(quoted(""), "\"\"");
	CHECK_STR(quoted("q\"b\\/"), "\"q\\\"b\\\\/\"");
	CHECK_STR(quoted("a\nb\tc\r\x01\x1f"), "\"a\\nb\\tc\\r\\u0001\\u001F\"");
	CHECK_STR(quoted("\xc3\xa9\xf0\x9f\x98\x80"), "\"\xc3\xa9\xf0\x9f\x98\x80\"");
	/* bytes that are not UTF-8 become '?', one for one, so the line stays valid JSON */
	CHECK_STR(quoted("a\xff" "b\xc3"), "\"a?b?\"");
	CHECK_STR(quoted("\xc0\xaf\xed\xa0\x80"), "\"?????\"");

	/* what the writer writes, the reader reads back */
	v = jsonio_load(quoted("x\"\\\n\x01\xc3\xa9"), JSON_DECODE_ANY, NULL, 0);
	CHECK_STR(json_string_value(v), "x\"\\\n\x01\xc3\xa9");
	json_decref(v);

	sb_init(&sb);
	jsonio_put(&sb, json_pack("{sisssos[bn]sf}", "z", 1, "a", "b", "m", json_object(), "l", 1,
							  "r", 2.5));
	CHECK_STR(sb.data, "{\"z\":1,\"a\":\"b\",\"m\":{},\"l\":[true,null],\"r\":2.5}");
	sb_free(&sb);
}

void
test_json(void)
{
	test_load();
	test_hostile();
	test_write();
}
