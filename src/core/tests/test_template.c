/*
 * test_template.c: unit tests of the template renderer (template.c).
 *
 * Named cases pin the semantics (longest match wins, one pass, no recursion,
 * bytes as they are); a randomised test compares the automaton with a
 * straightforward reference renderer that tries every pattern at every position,
 * on small alphabets where patterns overlap and nest a lot.
 */
#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		limit;			/* emit fails beyond this many bytes */
} Buf;

static int	passed;
static int	failed;

static void *sys_alloc(size_t size, void *arg);
static void sys_release(void *ptr, void *arg);
static int	buf_emit(const char *data, size_t len, void *arg);
static int	parse_map(const char *spec, TmplPattern *p, char *store);
static int64_t render(const TmplPattern *p, int n, const char *text, size_t len, Buf *out);
static void reference(const TmplPattern *p, int n, const char *text, size_t len, Buf *out);
static void expect(const char *name, const char *map, const char *text, const char *want,
				   int64_t want_count);
static void test_cases(void);
static void test_bytes(void);
static void test_errors(void);
static void test_random(void);

static const TmplAlloc sys = {sys_alloc, sys_release, NULL};

/* malloc for the renderer. */
static void *
sys_alloc(size_t size, void *arg)
{
	(void) arg;
	return malloc(size);
}

/* free for the renderer. */
static void
sys_release(void *ptr, void *arg)
{
	(void) arg;
	free(ptr);
}

/* Appends to the Buf at arg; fails past its limit (when set). */
static int
buf_emit(const char *data, size_t len, void *arg)
{
	Buf		   *b = arg;

	if (b->limit && b->len + len > b->limit)
		return -1;
	if (b->len + len + 1 > b->cap)
	{
		b->cap = (b->len + len + 1) * 2;
		b->data = realloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

/*
 * Parses "from=to|from=to|..." into p, copying the strings into store.
 * Returns the number of patterns.
 */
static int
parse_map(const char *spec, TmplPattern *p, char *store)
{
	int			n = 0;

	strcpy(store, spec);
	for (char *item = strtok(store, "|"); item != NULL; item = strtok(NULL, "|"))
	{
		char	   *eq = strchr(item, '=');

		*eq = '\0';
		p[n].from = item;
		p[n].from_len = strlen(item);
		p[n].to = eq + 1;
		p[n].to_len = strlen(eq + 1);
		n++;
	}
	return n;
}

/* Renders text with patterns p into out (reset first); returns tmpl_render's result. */
static int64_t
render(const TmplPattern *p, int n, const char *text, size_t len, Buf *out)
{
	int			empty;
	TmplMatcher *m = tmpl_build(p, n, &sys, &empty);
	int64_t		r;

	out->len = 0;
	buf_emit("", 0, out);
	if (m == NULL)
		return -2;
	r = tmpl_render(m, text, len, buf_emit, out);
	tmpl_free(m);
	return r;
}

/* The semantics written plainly: at each position the longest pattern wins (a later duplicate wins a tie). */
static void
reference(const TmplPattern *p, int n, const char *text, size_t len, Buf *out)
{
	size_t		pos = 0;

	out->len = 0;
	buf_emit("", 0, out);
	while (pos < len)
	{
		int			best = -1;

		for (int k = 0; k < n; k++)
			if (p[k].from_len <= len - pos && memcmp(text + pos, p[k].from, p[k].from_len) == 0 &&
				(best < 0 || p[k].from_len >= p[best].from_len))
				best = k;
		if (best < 0)
			buf_emit(text + pos++, 1, out);
		else
		{
			buf_emit(p[best].to, p[best].to_len, out);
			pos += p[best].from_len;
		}
	}
}

/* Checks that rendering text with map gives want after want_count replacements. */
static void
expect(const char *name, const char *map, const char *text, const char *want, int64_t want_count)
{
	TmplPattern p[64];
	char		store[1024];
	Buf			out = {0};
	int			n = map[0] ? parse_map(map, p, store) : 0;
	int64_t		count = render(p, n, text, strlen(text), &out);

	if (count == want_count && out.len == strlen(want) && memcmp(out.data, want, out.len) == 0)
		passed++;
	else
	{
		failed++;
		printf("FAIL %s: got \"%s\" (%lld replacements), want \"%s\" (%lld)\n", name,
			   out.data, (long long) count, want, (long long) want_count);
	}
	free(out.data);
}

/* The semantics, case by case. */
static void
test_cases(void)
{
	expect("no patterns", "", "abc", "abc", 0);
	expect("empty template", "a=b", "", "", 0);
	expect("no match", "@X@=1", "nothing here", "nothing here", 0);
	expect("simple", "@PORT@=8081", "port=@PORT@\n", "port=8081\n", 1);
	expect("several", "@H@=db1|@P@=5432", "@H@:@P@ @H@", "db1:5432 db1", 3);
	expect("longest wins", "@A=x|@AB=y|@ABC=z", "@ABC @AB @A", "z y x", 3);
	expect("longest wins whatever the order", "@ABC=z|@A=x|@AB=y", "@ABCD", "zD", 1);
	expect("leftmost first", "bcd=1|abc=2", "abcd", "2d", 1);
	expect("overlap taken left to right", "aa=X", "aaaaa", "XXa", 2);
	expect("no recursion", "a=b|b=c", "ab", "bc", 2);
	expect("replacement holds a pattern", "@X@=@X@@X@", "@X@", "@X@@X@", 1);
	expect("replacement makes a pattern across the boundary", "@X=@|Y@=!", "@XY@", "@!", 2);
	expect("nested pattern inside a longer one", "b=B|abc=1", "abx abc", "aBx 1", 2);
	expect("pattern is a suffix of another", "abc=1|c=2", "abcc", "12", 2);
	expect("longer prefix fails, shorter matched", "abcde=1|ab=2|cd=3", "abcdx", "23x", 2);
	expect("failure falls back inside a long partial", "aaab=1|aab=2|ab=3", "aaaab", "a1", 1);
	expect("empty replacement deletes", "@X@=", "a@X@b", "ab", 1);
	expect("whole text is a pattern", "hello=bye", "hello", "bye", 1);
	expect("regex characters are plain", "$1=one|.*=all|\\n=nl|{x}=X|%s=S",
		   "$1 .* \\n {x} %s $2", "one all nl X S $2", 5);
	expect("multibyte", "\xc3\xa9t\xc3\xa9=summer|\xe2\x82\xac=EUR",
		   "\xc3\xa9t\xc3\xa9 10\xe2\x82\xac", "summer 10EUR", 2);
	expect("newlines in patterns", "a\nb=X", "a\nb a\nc", "X a\nc", 1);
	expect("a later duplicate wins", "@X@=1|@X@=2", "@X@", "2", 1);
}

/* Bytes are bytes: NULs and high bytes in text, patterns and replacements. */
static void
test_bytes(void)
{
	TmplPattern p[2] = {{"\0\xff", 2, "N", 1}, {"\xfe", 1, "\0\0", 2}};
	const char	text[] = "a\0\xff" "b\xfe";
	Buf			out = {0};
	int64_t		count = render(p, 2, text, sizeof(text) - 1, &out);

	if (count == 2 && out.len == 5 && memcmp(out.data, "aNb\0\0", 5) == 0)
		passed++;
	else
	{
		failed++;
		printf("FAIL binary bytes: %lld replacements, %zu bytes\n", (long long) count, out.len);
	}
	free(out.data);
}

/* An empty pattern is refused with its index; emit failing stops the render. */
static void
test_errors(void)
{
	TmplPattern p[2] = {{"x", 1, "y", 1}, {"", 0, "z", 1}};
	int			empty;
	Buf			out = {0};
	TmplMatcher *m = tmpl_build(p, 2, &sys, &empty);

	if (m == NULL && empty == 1)
		passed++;
	else
	{
		failed++;
		printf("FAIL empty pattern: matcher %p, index %d\n", (void *) m, empty);
	}
	m = tmpl_build(p, 1, &sys, &empty);
	out.limit = 3;
	if (m != NULL && empty == -1 && tmpl_render(m, "xxxxxx", 6, buf_emit, &out) == -1)
		passed++;
	else
	{
		failed++;
		printf("FAIL emit stopping the render\n");
	}
	tmpl_free(m);
	free(out.data);
}

/* Compares with the reference on random small-alphabet maps and texts. */
static void
test_random(void)
{
	unsigned	seed = 20261123;
	int			before = failed;

	for (int round = 0; round < 3000; round++)
	{
		TmplPattern p[24];
		char		from[24][8], to[24][6], text[200];
		int			n = rand_r(&seed) % 24;
		size_t		len = (size_t) (rand_r(&seed) % 200);
		int			alphabet = 2 + rand_r(&seed) % 3;
		Buf			got = {0}, want = {0};

		for (int k = 0; k < n; k++)
		{
			size_t		fl = 1 + (size_t) (rand_r(&seed) % 7),
						tl = (size_t) (rand_r(&seed) % 5);

			for (size_t c = 0; c < fl; c++)
				from[k][c] = (char) ('a' + rand_r(&seed) % alphabet);
			for (size_t c = 0; c < tl; c++)
				to[k][c] = (char) ('a' + rand_r(&seed) % (alphabet + 1));
			p[k] = (TmplPattern) {from[k], fl, to[k], tl};
		}
		for (size_t c = 0; c < len; c++)
			text[c] = (char) ('a' + rand_r(&seed) % alphabet);
		render(p, n, text, len, &got);
		reference(p, n, text, len, &want);
		if (got.len != want.len || memcmp(got.data, want.data, got.len) != 0)
		{
			failed++;
			printf("FAIL random round %d: got %zu bytes, want %zu\n", round, got.len, want.len);
		}
		free(got.data);
		free(want.data);
		if (failed - before > 5)
			break;
	}
	if (failed == before)
		passed++;
}

int
main(void)
{
	test_cases();
	test_bytes();
	test_errors();
	test_random();
	printf("test_template: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
