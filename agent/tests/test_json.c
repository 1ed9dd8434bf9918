/*
 * test_json.c -- the JSON reader (valid and malformed documents) and writer.
 */
#include "unit.h"

#include <stdlib.h>

/* Returns 1 when text parses. */
static int
parses(const char *text)
{
	JsonValue  *v;
	char		err[AGENT_ERRLEN];
	int			ok = json_parse(text, &v, err, sizeof(err)) == 0;

	json_free(v);
	return ok;
}

/* Returns the JSON literal json_put_str writes for s (static buffer). */
static const char *
quoted(const char *s)
{
	static char out[256];
	StrBuf		sb;

	sb_init(&sb);
	json_put_str(&sb, s);
	snprintf(out, sizeof(out), "%s", sb.data);
	sb_free(&sb);
	return out;
}

void
test_json(void)
{
	JsonValue  *v;
	const JsonValue *m;
	char		err[AGENT_ERRLEN];
	int64_t		n;
	char		deep[300];

	CHECK(json_parse("{\"channel\": \"dispatch_node_w1\", \"heartbeat_ms\": 10000,"
					 " \"kill_grace_ms\": 10000.000000, \"x\": [1, true, null, {\"y\": -2e3}]}",
					 &v, err, sizeof(err)) == 0);
	CHECK_STR(json_get(v, "channel")->text, "dispatch_node_w1");
	CHECK(json_int(json_get(v, "heartbeat_ms"), &n) == 0 && n == 10000);
	CHECK(json_int(json_get(v, "kill_grace_ms"), &n) == 0 && n == 10000);
	CHECK(json_int(json_get(v, "channel"), &n) == -1);
	CHECK(json_int(json_get(v, "missing"), &n) == -1);
	m = json_get(v, "x");
	CHECK(m != NULL && m->type == JSON_ARRAY && m->child->type == JSON_NUMBER);
	CHECK(m->child->next->type == JSON_BOOL && m->child->next->boolean == 1);
	CHECK(m->child->next->next->type == JSON_NULL);
	CHECK(json_int(json_get(m->child->next->next->next, "y"), &n) == 0 && n == -2000);
	CHECK(json_get(m, "y") == NULL);
	json_free(v);

	CHECK(json_parse("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00\"", &v, err, sizeof(err)) == 0);
	CHECK_STR(v->text, "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	json_free(v);

	CHECK(json_parse("9223372036854775807", &v, err, sizeof(err)) == 0);
	CHECK(json_int(v, &n) == 0 && n == INT64_MAX - 0 && n > 0);
	json_free(v);
	CHECK(json_parse("1e300", &v, err, sizeof(err)) == 0);
	CHECK(json_int(v, &n) == -1);
	json_free(v);

	CHECK(parses(" {} "));
	CHECK(parses("[]"));
	CHECK(parses("{\"a\":{}}"));
	CHECK(parses("0"));
	CHECK(parses("-0.5e+2"));
	CHECK(!parses(""));
	CHECK(!parses("{"));
	CHECK(!parses("}"));
	CHECK(!parses("{\"a\"}"));
	CHECK(!parses("{\"a\":}"));
	CHECK(!parses("{\"a\":1,}"));
	CHECK(!parses("{a:1}"));
	CHECK(!parses("[1,]"));
	CHECK(!parses("[1 2]"));
	CHECK(!parses("01"));
	CHECK(!parses("1."));
	CHECK(!parses("-"));
	CHECK(!parses("1e"));
	CHECK(!parses("tru"));
	CHECK(!parses("nul"));
	CHECK(!parses("\"abc"));
	CHECK(!parses("\"a\nb\""));
	CHECK(!parses("\"\\x\""));
	CHECK(!parses("\"\\u12\""));
	CHECK(!parses("\"\\u0000\""));
	CHECK(!parses("\"\\ud83d\""));
	CHECK(!parses("\"\\ude00\""));
	CHECK(!parses("{} x"));
	CHECK(!parses("[1] [2]"));
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	deep[200] = '\0';
	CHECK(!parses(deep));
	CHECK(json_parse("[1,", &v, err, sizeof(err)) == -1 && v == NULL &&
		  strstr(err, "invalid JSON") != NULL);

	CHECK_STR(quoted("plain"), "\"plain\"");
	CHECK_STR(quoted("q\"b\\"), "\"q\\\"b\\\\\"");
	CHECK_STR(quoted("a\nb\tc\x01\x1f\x7f"), "\"a\\nb\\tc\\u0001\\u001f\\u007f\"");
	CHECK_STR(quoted("\xc3\xa9"), "\"\xc3\xa9\"");
	/* what the writer writes, the reader reads back */
	CHECK(json_parse(quoted("x\"\\\n\x01\xc3\xa9"), &v, err, sizeof(err)) == 0);
	CHECK_STR(v->text, "x\"\\\n\x01\xc3\xa9");
	json_free(v);
}
