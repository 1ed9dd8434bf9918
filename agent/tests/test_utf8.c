/*
 * test_utf8.c -- sanitizing job output: same length, '?' for bad bytes, cut characters held back.
 */
#include "unit.h"

/* Runs utf8_sanitize on a copy of in (len bytes); checks the sendable length and the result. */
static void
expect(const char *in, size_t len, int final, size_t want_len, const char *want)
{
	char		buf[64];
	size_t		got;

	memcpy(buf, in, len);
	got = utf8_sanitize(buf, len, final);
	CHECK(got == want_len && memcmp(buf, want, want_len) == 0);
	if (got != want_len || memcmp(buf, want, want_len) != 0)
		fprintf(stderr, "  got %zu bytes \"%.*s\", expected %zu \"%s\"\n", got, (int) got, buf,
				want_len, want);
}

void
test_utf8(void)
{
	expect("hello\n", 6, 0, 6, "hello\n");
	expect("", 0, 0, 0, "");
	expect("a\0b", 3, 0, 3, "a?b");
	expect("\xc3\xa9t\xc3\xa9", 5, 0, 5, "\xc3\xa9t\xc3\xa9");
	expect("\xf0\x9f\x98\x80", 4, 0, 4, "\xf0\x9f\x98\x80");
	/* a character cut at the end is held back, or replaced when final */
	expect("ab\xe2\x82", 4, 0, 2, "ab");
	expect("ab\xe2\x82", 4, 1, 4, "ab??");
	expect("ab\xf0", 3, 0, 2, "ab");
	expect("\xf0\x9f\x98", 3, 0, 0, "");
	/* invalid bytes become '?' one for one */
	expect("a\xff" "b", 3, 0, 3, "a?b");
	expect("\x80\x80", 2, 0, 2, "??");
	expect("\xc0\xaf", 2, 0, 2, "??");			/* overlong '/' */
	expect("\xe0\x80\xaf", 3, 0, 3, "???");		/* overlong */
	expect("\xed\xa0\x80", 3, 0, 3, "???");		/* surrogate */
	expect("\xf4\x90\x80\x80", 4, 0, 4, "????");	/* above U+10FFFF */
	expect("\xf5\x80", 2, 0, 2, "??");
	expect("\xe2\x82x", 3, 0, 3, "??x");			/* broken sequence, not a cut one */
	expect("\xc3\xa9\xc3", 3, 1, 3, "\xc3\xa9?");
}
