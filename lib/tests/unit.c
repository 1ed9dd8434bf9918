/*
 * unit.c -- unit tests of lib/: YAML and JSON to jansson values (scalars, block
 * strings, anchors and merges, the limits, errors with their places) and JSON paths
 * back to lines.  Prints "N passed, M failed"; exits non-zero on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "yamljson.h"

static int	passed;
static int	failed;

#define CHECK(cond) \
	do { \
		if (cond) \
			passed++; \
		else \
		{ \
			failed++; \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		} \
	} while (0)

/* Converts text and returns its compact JSON (static buffer), or "ERROR <line>:<col> <message>". */
static const char *
conv(const char *text)
{
	static char out[4096];
	YamlJsonError err;
	json_t	   *v = yaml_to_json(text, strlen(text), &err);
	char	   *s;

	if (v == NULL)
	{
		snprintf(out, sizeof(out), "ERROR %d:%d %s", err.line, err.column, err.message);
		return out;
	}
	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	snprintf(out, sizeof(out), "%s", s ? s : "(dump failed)");
	free(s);
	json_decref(v);
	return out;
}

/* Returns 1 when converting text gives want (compact JSON, or an "ERROR ..." prefix). */
static int
gives(const char *text, const char *want)
{
	const char *got = conv(text);
	int			ok = strncmp(want, "ERROR", 5) == 0 ? strncmp(got, want, strlen(want)) == 0
		: strcmp(got, want) == 0;

	if (!ok)
		fprintf(stderr, "  for %s\n  want %s\n  got  %s\n", text, want, got);
	return ok;
}

/* Returns "line:col" of path in text (static buffer), or "unknown". */
static const char *
where(const char *text, const char *path)
{
	static char out[64];
	int			line = -1;
	int			column = -1;

	if (!yaml_json_locate(text, strlen(text), path, &line, &column))
		return "unknown";
	snprintf(out, sizeof(out), "%d:%d", line, column);
	return out;
}

#define CHECK_WHERE(text, path, want) \
	do { \
		const char *w_ = where((text), (path)); \
		CHECK(strcmp(w_, (want)) == 0); \
		if (strcmp(w_, (want)) != 0) \
			fprintf(stderr, "  path %s: want %s, got %s\n", (path), (want), w_); \
	} while (0)

/* Plain scalars: the core schema with strings for yes/no and leading zeros. */
static void
test_scalars(void)
{
	CHECK(gives("a: 1", "{\"a\":1}"));
	CHECK(gives("a: \"1\"", "{\"a\":\"1\"}"));
	CHECK(gives("a: '1'", "{\"a\":\"1\"}"));
	CHECK(gives("a: -3", "{\"a\":-3}"));
	CHECK(gives("a: +5", "{\"a\":5}"));
	CHECK(gives("a: 0", "{\"a\":0}"));
	CHECK(gives("a: -0", "{\"a\":0}"));
	CHECK(gives("a: 1.5", "{\"a\":1.5}"));
	CHECK(gives("a: -0.25", "{\"a\":-0.25}"));
	CHECK(gives("a: 1e3", "{\"a\":1000.0}"));
	CHECK(gives("a: .5", "{\"a\":0.5}"));
	CHECK(gives("a: 0x1f", "{\"a\":31}"));
	CHECK(gives("a: 0o17", "{\"a\":15}"));
	CHECK(gives("a: 0755", "{\"a\":\"0755\"}"));
	CHECK(gives("a: 007", "{\"a\":\"007\"}"));
	CHECK(gives("a: 1_000", "{\"a\":\"1_000\"}"));
	CHECK(gives("a: 12abc", "{\"a\":\"12abc\"}"));
	CHECK(gives("a: 1.2.3", "{\"a\":\"1.2.3\"}"));
	CHECK(gives("a: 0x", "{\"a\":\"0x\"}"));
	CHECK(gives("a: -0x1f", "{\"a\":\"-0x1f\"}"));
	CHECK(gives("a: 9223372036854775807", "{\"a\":9223372036854775807}"));
	CHECK(gives("a: 9223372036854775808", "ERROR 1:4 integer \"9223372036854775808\" is out of range"));
	CHECK(gives("a: 1e999", "ERROR 1:4 number \"1e999\" is out of range"));
	CHECK(gives("a: .inf", "ERROR 1:4 YAML value \".inf\" has no JSON equivalent"));
	CHECK(gives("a: -.Inf", "ERROR 1:4 YAML value \"-.Inf\" has no JSON equivalent"));
	CHECK(gives("a: .nan", "ERROR 1:4 YAML value \".nan\""));
	CHECK(gives("a: '.inf'", "{\"a\":\".inf\"}"));
	CHECK(gives("a: true\nb: False\nc: TRUE", "{\"a\":true,\"b\":false,\"c\":true}"));
	CHECK(gives("a: yes\nb: no\nc: on\nd: off\ne: y\nf: n",
				"{\"a\":\"yes\",\"b\":\"no\",\"c\":\"on\",\"d\":\"off\",\"e\":\"y\",\"f\":\"n\"}"));
	CHECK(gives("a: tRue", "{\"a\":\"tRue\"}"));
	CHECK(gives("a: null\nb: ~\nc:\nd: NULL", "{\"a\":null,\"b\":null,\"c\":null,\"d\":null}"));
	CHECK(gives("a: 'null'", "{\"a\":\"null\"}"));
	CHECK(gives("a: \"\"", "{\"a\":\"\"}"));
	CHECK(gives("1: x\ntrue: y\nnull: z", "{\"1\":\"x\",\"true\":\"y\",\"null\":\"z\"}"));
	CHECK(gives("a: é ü \"q\"", "{\"a\":\"é ü \\\"q\\\"\"}"));
	CHECK(gives("a: \"tab\\there\\u00e9\"", "{\"a\":\"tab\\there\u00e9\"}"));
	CHECK(gives("a: hello world  ", "{\"a\":\"hello world\"}"));
	CHECK(gives("- 1\n- two\n- 3.0", "[1,\"two\",3.0]"));
	CHECK(gives("42", "42"));
	CHECK(gives("plain", "\"plain\""));
}

/* Explicit tags: the standard ones honoured and checked, others refused. */
static void
test_tags(void)
{
	CHECK(gives("a: !!str 1", "{\"a\":\"1\"}"));
	CHECK(gives("a: !!str true", "{\"a\":\"true\"}"));
	CHECK(gives("a: ! 12", "{\"a\":\"12\"}"));
	CHECK(gives("a: !!int 12", "{\"a\":12}"));
	CHECK(gives("a: !!float 12", "{\"a\":12}"));
	CHECK(gives("a: !!bool true", "{\"a\":true}"));
	CHECK(gives("a: !!null ~", "{\"a\":null}"));
	CHECK(gives("a: !!int abc", "ERROR 1:4 value \"abc\" is not a valid !!int"));
	CHECK(gives("a: !!bool yes", "ERROR 1:4 value \"yes\" is not a valid !!bool"));
	CHECK(gives("a: !!binary aGVsbG8=", "ERROR 1:4 YAML tag \"tag:yaml.org,2002:binary\" is not supported"));
	CHECK(gives("a: !custom x", "ERROR 1:4 YAML tag \"!custom\" is not supported"));
	CHECK(gives("a: !!map {b: 1}", "{\"a\":{\"b\":1}}"));
	CHECK(gives("a: !!seq [1]", "{\"a\":[1]}"));
	CHECK(gives("a: !!set {b}", "ERROR 1:4 YAML tag \"tag:yaml.org,2002:set\" is not supported here"));
	CHECK(gives("a: !!map [1]", "ERROR 1:4 YAML tag \"tag:yaml.org,2002:map\" is not supported here"));
}

/* Block scalars: literal and folded, with their chomping indicators. */
static void
test_block_strings(void)
{
	CHECK(gives("cmd: |\n  make\n  make test\n", "{\"cmd\":\"make\\nmake test\\n\"}"));
	CHECK(gives("cmd: |-\n  make\n  make test\n", "{\"cmd\":\"make\\nmake test\"}"));
	CHECK(gives("cmd: |+\n  make\n\n\nb: 1", "{\"cmd\":\"make\\n\\n\\n\",\"b\":1}"));
	CHECK(gives("cmd: >\n  one\n  two\n\n  three\n", "{\"cmd\":\"one two\\nthree\\n\"}"));
	CHECK(gives("cmd: >-\n  one\n  two\n", "{\"cmd\":\"one two\"}"));
	CHECK(gives("cmd: |\n  if true; then\n    echo 1\n  fi\n",
				"{\"cmd\":\"if true; then\\n  echo 1\\nfi\\n\"}"));
	CHECK(gives("cmd: |\n  123\n", "{\"cmd\":\"123\\n\"}"));
	CHECK(gives("cmd: >\n  true\n", "{\"cmd\":\"true\\n\"}"));
	CHECK(gives("cmd: \"a\n  b\"", "{\"cmd\":\"a b\"}"));
	CHECK(gives("cmd: plain\n  continued", "{\"cmd\":\"plain continued\"}"));
}

/* Anchors, aliases and merge keys. */
static void
test_anchors(void)
{
	CHECK(gives("a: &x 1\nb: *x", "{\"a\":1,\"b\":1}"));
	CHECK(gives("a: &x [1, {c: 2}]\nb: *x", "{\"a\":[1,{\"c\":2}],\"b\":[1,{\"c\":2}]}"));
	CHECK(gives("a: &x 1\nb: *x\na2: &x 2\nc: *x", "{\"a\":1,\"b\":1,\"a2\":2,\"c\":2}"));
	CHECK(gives("base: &b {image: x, env: {A: 1}}\njob:\n  <<: *b\n  name: j\n",
				"{\"base\":{\"image\":\"x\",\"env\":{\"A\":1}},\"job\":{\"name\":\"j\",\"image\":\"x\",\"env\":{\"A\":1}}}"));
	CHECK(gives("b: &b {image: x}\njob:\n  image: y\n  <<: *b\n",
				"{\"b\":{\"image\":\"x\"},\"job\":{\"image\":\"y\"}}"));
	CHECK(gives("b: &b {image: x}\njob:\n  <<: *b\n  image: y\n",
				"{\"b\":{\"image\":\"x\"},\"job\":{\"image\":\"y\"}}"));
	CHECK(gives("p: &p {a: 1, b: 1}\nq: &q {b: 2, c: 2}\nr:\n  <<: [*p, *q]\n",
				"{\"p\":{\"a\":1,\"b\":1},\"q\":{\"b\":2,\"c\":2},\"r\":{\"a\":1,\"b\":1,\"c\":2}}"));
	CHECK(gives("r:\n  <<: {a: 1}\n", "{\"r\":{\"a\":1}}"));
	CHECK(gives("r:\n  \"<<\": 1\n", "{\"r\":{\"<<\":1}}"));
	CHECK(gives("r:\n  <<: 1\n", "ERROR 2:7 the merge key \"<<\" needs a mapping or a list of mappings"));
	CHECK(gives("r:\n  <<: [{a: 1}, 2]\n", "ERROR 2:7 the merge key \"<<\" needs a mapping"));
	CHECK(gives("r:\n  <<:\n    - {a: 1}\n    - [2]\n", "ERROR 3:5 the merge key \"<<\" needs a mapping"));
	CHECK(gives("r:\n  <<: {a: 1}\n  <<: {b: 1}\n", "ERROR 3:3 duplicate merge key \"<<\""));
	CHECK(gives("a: *nope", "ERROR 1:4 alias \"*nope\" names no anchor defined before it"));
	CHECK(gives("a: &r [1, *r]", "ERROR 1:11 alias \"*r\" names no anchor defined before it"));
	CHECK(gives("b: *x\na: &x 1", "ERROR 1:4 alias \"*x\" names no anchor"));
	/* an alias is a copy: the two places are separate values */
	{
		YamlJsonError err;
		const char *t = "a: &x {k: 1}\nb: *x";
		json_t	   *v = yaml_to_json(t, strlen(t), &err);

		CHECK(v != NULL && json_object_get(v, "a") != json_object_get(v, "b"));
		CHECK(v != NULL && json_equal(json_object_get(v, "a"), json_object_get(v, "b")));
		json_decref(v);
	}
}

/* The limits: alias expansion (billion laughs), nesting, size. */
static void
test_limits(void)
{
	const char *laughs =
		"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		"h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
		"i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	clock_t		t0 = clock();
	char		deep[512];
	char	   *big;
	YamlJsonError err;

	CHECK(gives(laughs, "ERROR 5:36 the document has more than 100000 nodes (aliases expanded)"));
	/* refused after a bounded amount of work, not after expanding 10^9 nodes */
	CHECK((double) (clock() - t0) / CLOCKS_PER_SEC < 5.0);
	/* just under the limit is fine: 10 + 111 + 1111 + 11111 nodes and their lists */
	CHECK(strncmp(conv("a: &a [l, l, l, l, l, l, l, l, l, l]\n"
					   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
					   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
					   "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"), "{\"a\":", 5) == 0);

	memset(deep, '[', 64);
	deep[64] = '\0';
	CHECK(strncmp(conv(deep), "ERROR", 5) == 0);	/* unclosed, but within the depth */
	CHECK(strstr(conv(deep), "nested") == NULL);
	memset(deep, '[', 65);
	memset(deep + 65, ']', 65);
	deep[130] = '\0';
	CHECK(gives(deep, "ERROR 0:0 the document is nested more than 64 levels deep"));
	deep[0] = '-';
	deep[1] = ' ';
	memset(deep + 2, '[', 64);
	memset(deep + 66, ']', 64);
	deep[130] = '\0';
	CHECK(gives(deep, "ERROR 1:66 the document is nested more than 64 levels deep"));
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	deep[128] = '\0';
	CHECK(strncmp(conv(deep), "[[[[", 4) == 0);
	/* nesting through aliases counts too: 1 + 63 levels fit, 1 + 1 + 63 do not */
	strcpy(deep, "a: &a ");
	memset(deep + 6, '[', 63);
	strcpy(deep + 69, "1");
	memset(deep + 70, ']', 63);
	strcpy(deep + 133, "\nb: [*a]\n");
	CHECK(gives(deep, "ERROR 2:5 the document is nested more than 64 levels deep"));
	deep[133] = '\0';
	CHECK(strncmp(conv(deep), "{\"a\":[[[", 8) == 0);

	big = malloc(YAMLJSON_MAX_BYTES + 2);
	memset(big, ' ', YAMLJSON_MAX_BYTES + 1);
	big[0] = '1';
	big[YAMLJSON_MAX_BYTES + 1] = '\0';
	CHECK(yaml_to_json(big, YAMLJSON_MAX_BYTES + 1, &err) == NULL);
	CHECK(strcmp(err.message, "the document is larger than 8388608 bytes") == 0 && err.line == 0);
	free(big);
}

/* Syntax errors and refused structures, each with its line and column. */
static void
test_errors(void)
{
	CHECK(gives("a: 1\na: 2", "ERROR 2:1 duplicate key \"a\""));
	CHECK(gives("x:\n  a: 1\n  b: 2\n  a: 3", "ERROR 4:3 duplicate key \"a\""));
	CHECK(gives("{a: 1, a: 2}", "ERROR 1:8 duplicate key \"a\""));
	CHECK(gives("a: 1\n'a': 2", "ERROR 2:1 duplicate key \"a\""));
	CHECK(gives("a: [1, 2\nb: 3", "ERROR 2:2 while parsing a flow sequence did not find expected ',' or ']'"));
	CHECK(gives("a:\n\t- 1", "ERROR 2:1 while scanning for the next token found character that cannot start any token"));
	CHECK(gives("a: b: c", "ERROR 1:5 mapping values are not allowed in this context"));
	CHECK(gives("a: 'unterminated\n", "ERROR 2:1 while scanning a quoted scalar found unexpected end of stream"));
	CHECK(gives("- a\nb: 1", "ERROR 2:1 while parsing a block collection did not find expected '-' indicator"));
	CHECK(gives("? [a]\n: 1", "ERROR 1:3 a mapping key must be a scalar"));
	CHECK(gives("{[1]: 2}", "ERROR 1:2 a mapping key must be a scalar"));
	CHECK(gives("a: &k x\n*k : 1", "ERROR 2:1 a mapping key must be a scalar"));
	CHECK(gives("a: 1\n---\nb: 2", "ERROR 2:1 the text holds more than one YAML document"));
	CHECK(gives("", "ERROR 1:1 the document is empty"));
	CHECK(gives("# only a comment\n", "ERROR 1:1 the document is empty"));
	CHECK(gives("---\n", "null"));
	CHECK(gives("a: \"\\q\"", "ERROR 1:5 while parsing a quoted scalar found unknown escape character"));
	CHECK(gives("a: \"\\x\"", "ERROR 1:7 while parsing a quoted scalar did not find expected hexdecimal number"));
	CHECK(gives("a: \x01", "ERROR 1:4 control characters are not allowed"));
	CHECK(gives("a: \xff\xfe", "ERROR 1:4 invalid leading UTF-8 octet"));
	CHECK(gives("a: 1\nb: [x,\n  \x01]", "ERROR 3:3 control characters are not allowed"));
}

/* JSON input: strict JSON through jansson, YAML's reading when jansson refuses it. */
static void
test_json(void)
{
	CHECK(gives("{\"a\": [1, 2.5, \"x\", true, null]}", "{\"a\":[1,2.5,\"x\",true,null]}"));
	CHECK(gives("  \n[1]", "[1]"));
	CHECK(gives("\xEF\xBB\xBF{\"a\": 1}", "{\"a\":1}"));
	CHECK(gives("{\"e\": \"\\ud83d\\ude00\"}", "{\"e\":\"\xF0\x9F\x98\x80\"}"));
	CHECK(gives("{\"a\": \"0755\", \"b\": \"1\"}", "{\"a\":\"0755\",\"b\":\"1\"}"));
	CHECK(gives("{\"a\": 1, \"a\": 2}", "ERROR 1:10 duplicate key \"a\""));
	CHECK(gives("{\"a\": 1,}", "{\"a\":1}"));	/* not JSON, but a valid YAML flow mapping */
	CHECK(gives("{\"a\": [1, 2}", "ERROR 1:12 while parsing a flow sequence did not find expected ',' or ']'"));
	CHECK(gives("{\"big\": 123456789012345678901234567890}",
				"ERROR 1:9 integer \"123456789012345678901234567890\" is out of range"));
}

/* JSON paths back to lines and columns. */
static void
test_locate(void)
{
	const char *t =
		"name: build\n"					/* 1 */
		"stages:\n"						/* 2 */
		"  - name: compile\n"			/* 3 */
		"    jobs:\n"					/* 4 */
		"      - name: a\n"				/* 5 */
		"        command: make\n"		/* 6 */
		"      - name: b\n"				/* 7 */
		"        needs: {\"1gpu\": 2, \"a\\\"b\": 1}\n"	/* 8 */
		"        command: &c make test\n"	/* 9 */
		"  - name: test\n"				/* 10 */
		"    jobs:\n"					/* 11 */
		"      - <<: {name: t, timeout: 60}\n"	/* 12 */
		"        command: *c\n"			/* 13 */
		"        env: &e {A: 1}\n"		/* 14 */
		"        files: [*e]\n";		/* 15 */

	CHECK_WHERE(t, "", "1:1");
	CHECK_WHERE(t, "name", "1:7");
	CHECK_WHERE(t, "stages", "3:3");
	CHECK_WHERE(t, "stages[0]", "3:5");
	CHECK_WHERE(t, "stages[0].name", "3:11");
	CHECK_WHERE(t, "stages[0].jobs[1].name", "7:15");
	CHECK_WHERE(t, "stages[0].jobs[1].needs", "8:16");
	CHECK_WHERE(t, "stages[0].jobs[1].needs.\"1gpu\"", "8:25");
	CHECK_WHERE(t, "stages[0].jobs[1].needs.\"a\\\"b\"", "8:36");
	CHECK_WHERE(t, "stages[0].jobs[1].command", "9:18");
	CHECK_WHERE(t, "stages[1].jobs[0].command", "13:18");
	CHECK_WHERE(t, "stages[1].jobs[0].timeout", "12:13");
	CHECK_WHERE(t, "stages[1].jobs[0].files[0].A", "15:17");
	CHECK_WHERE(t, "stages[1].jobs[0].env.A", "14:21");
	CHECK_WHERE(t, "stages[2]", "unknown");
	CHECK_WHERE(t, "stages[0].jobs[5].name", "unknown");
	CHECK_WHERE(t, "stages[0].nope", "unknown");
	CHECK_WHERE(t, "name.deeper", "unknown");
	CHECK_WHERE(t, "stages.name", "unknown");
	CHECK_WHERE(t, "stages[x]", "unknown");
	CHECK_WHERE(t, "stages[0", "unknown");
	CHECK_WHERE(t, "stages..name", "unknown");
	CHECK_WHERE(t, "stages[0].\"unterminated", "unknown");
	CHECK_WHERE("a: [1, 2\nb: 3\n", "b", "unknown");
	CHECK_WHERE("{\n  \"stages\": [\n    {\"name\": \"x\", \"jobs\": [{\"name\": 5}]}\n  ]\n}",
				"stages[0].jobs[0].name", "3:37");
}

int
main(void)
{
	test_scalars();
	test_tags();
	test_block_strings();
	test_anchors();
	test_limits();
	test_errors();
	test_json();
	test_locate();
	printf("lib: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
