/*
 * test_mailhdr.c: unit tests of the mail header encoder (mailhdr.c).
 *
 * Named cases pin the two forms (plain and folded, RFC 2047 encoded-words) and
 * the attack (a value with CR LF and a header of its own); a randomised test
 * feeds random bytes and checks the invariants on every output: lines of at most
 * MAILHDR_LINE characters, no CR or LF but the folds and the end, encoded-words
 * of at most 75 characters that never split a UTF-8 character, and decoding
 * gives back the value.
 */
#include "mailhdr.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int	hexval(char c);
static int	decode(const char *header, const char *name, char *value, size_t size);
static int	well_formed(const char *header, int utf8);
static void expect(const char *name, const char *value, const char *want);
static void roundtrip(const char *name, const char *value, int utf8);
static void test_cases(void);
static void test_sizes(void);
static void test_random(void);
static void test_addresses(void);

/* Returns the value of hex digit c, or -1. */
static int
hexval(char c)
{
	const char *d = "0123456789ABCDEF";
	const char *p = c != '\0' ? strchr(d, c) : NULL;

	return p != NULL ? (int) (p - d) : -1;
}

/*
 * Reads header back as a mail reader would: checks the name, unfolds, decodes
 * encoded-words; fills value; returns 0, or -1 when it is not what mailhdr writes.
 */
static int
decode(const char *header, const char *name, char *value, size_t size)
{
	size_t		n = strlen(name),
				len = 0;
	const char *p = header + n + 2;
	const char *end = header + strlen(header) - 2;

	if (strncmp(header, name, n) != 0 || strncmp(header + n, ": ", 2) != 0 ||
		strcmp(end, "\r\n") != 0)
		return -1;
	if (strncmp(p, "=?UTF-8?Q?", 10) != 0)
	{
		for (; p < end && len + 1 < size; p++)
		{
			if (p[0] == '\r' && p[1] == '\n')	/* unfold: the space stays */
				p++;
			else
				value[len++] = *p;
		}
	}
	else
		while (p < end)
		{
			if (strncmp(p, "=?UTF-8?Q?", 10) != 0)
				return -1;
			for (p += 10; p < end && !(p[0] == '?' && p[1] == '='); p++)
			{
				char		c = *p;

				if (c == '=')
				{
					if (hexval(p[1]) < 0 || hexval(p[2]) < 0)
						return -1;
					c = (char) (hexval(p[1]) * 16 + hexval(p[2]));
					p += 2;
				}
				else if (c == '_')
					c = ' ';
				if (len + 1 < size)
					value[len++] = c;
			}
			p += 2;
			if (p < end && strncmp(p, "\r\n ", 3) != 0)
				return -1;
			if (p < end)
				p += 3;
		}
	value[len] = '\0';
	return 0;
}

/*
 * Returns 1 when header holds no CR or LF but folds and its end, lines of at
 * most MAILHDR_LINE, encoded-words of at most 75 that (when the value is UTF-8,
 * utf8) begin on a lead byte.
 */
static int
well_formed(const char *header, int utf8)
{
	size_t		col = 0;

	for (const char *p = header; *p != '\0'; p++)
	{
		if (*p == '\r' && p[1] == '\n' && (p[2] == ' ' || p[2] == '\0'))
		{
			if (col > MAILHDR_LINE)
				return 0;
			col = 0;
			p++;
			continue;
		}
		if (*p == '\r' || *p == '\n')
			return 0;
		col++;
		if (strncmp(p, "=?UTF-8?Q?", 10) == 0)
		{
			const char *close = strstr(p + 10, "?=");

			if (close == NULL || close + 2 - p > 75)
				return 0;
			/* a word's first byte is no UTF-8 continuation byte */
			if (utf8 && p[10] == '=' && hexval(p[11]) >= 8 && hexval(p[11]) < 12)
				return 0;
		}
	}
	return 1;
}

/* Checks that value comes out as want, exactly. */
static void
expect(const char *name, const char *value, const char *want)
{
	char		out[4096];
	size_t		n = mailhdr_format(out, sizeof(out), "Subject", value);

	check(name, n == strlen(want) && strcmp(out, want) == 0);
	if (strcmp(out, want) != 0)
		printf("  got  %s\n  want %s\n", out, want);
}

/* Checks that value (UTF-8 when utf8) comes out well formed and decodes back to itself. */
static void
roundtrip(const char *name, const char *value, int utf8)
{
	char		out[16384],
				back[4096];

	mailhdr_format(out, sizeof(out), "Subject", value);
	check(name, well_formed(out, utf8) && decode(out, "Subject", back, sizeof(back)) == 0 &&
		  strcmp(back, value) == 0);
}

/* Named cases: the plain form, the encoded form, the attack. */
static void
test_cases(void)
{
	char		out[4096],
				big[1200];

	expect("plain", "[pg_dispatch] FIRING critical: q on n1",
		   "Subject: [pg_dispatch] FIRING critical: q on n1\r\n");
	expect("empty", "", "Subject: \r\n");
	expect("non-ascii", "d\xc3\xa9p\xc3\xb4t", "Subject: =?UTF-8?Q?d=C3=A9p=C3=B4t?=\r\n");
	expect("specials stay when plain", "a b_c=d?", "Subject: a b_c=d?\r\n");
	expect("space and specials encoded", "\xc3\xa9 b_c=d?", "Subject: =?UTF-8?Q?=C3=A9_b=5Fc=3Dd=3F?=\r\n");
	expect("a literal =? is encoded", "x =?y", "Subject: =?UTF-8?Q?x_=3D=3Fy?=\r\n");
	expect("injection", "r\r\nBcc: victim@example.com",
		   "Subject: =?UTF-8?Q?r=0D=0ABcc=3A_victim=40example=2Ecom?=\r\n");
	expect("a lone LF", "a\nb", "Subject: =?UTF-8?Q?a=0Ab?=\r\n");
	mailhdr_format(out, sizeof(out), "Subject", "r\r\nBcc: victim@example.com");
	check("injection: no header of its own", strstr(out, "\r\nBcc") == NULL);

	memset(big, 'w', 30);
	memcpy(big + 30, " ", 1);
	memset(big + 31, 'x', 30);
	memcpy(big + 61, " ", 1);
	memset(big + 62, 'y', 30);
	big[92] = '\0';
	mailhdr_format(out, sizeof(out), "Subject", big);
	check("long plain: folded before a space", strstr(out, "x\r\n yyy") != NULL);
	roundtrip("long plain", big, 1);
	memset(big, 'z', 100);
	big[100] = '\0';
	mailhdr_format(out, sizeof(out), "Subject", big);
	check("a word longer than a line is encoded", strncmp(out, "Subject: =?UTF-8?Q?zzz", 22) == 0);
	roundtrip("a word longer than a line", big, 1);
	for (int i = 0; i < 400; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[800] = '\0';
	roundtrip("long non-ascii: whole characters per word", big, 1);
	for (int i = 0; i < 250; i++)
		memcpy(big + 4 * i, "\xf0\x9f\x94\xa5", 4);
	big[1000] = '\0';
	roundtrip("four-byte characters", big, 1);
	roundtrip("stray bytes", "\x80\xff\xc3 \xe2\x82", 0);
	roundtrip("spaces", "   a      b   ", 1);
}

/* A short buffer gets what fits, NUL-terminated, and the length it needed. */
static void
test_sizes(void)
{
	char		out[8];

	check("length needed", mailhdr_format(out, sizeof(out), "Subject", "hello") == 16);
	check("truncated and terminated", strcmp(out, "Subject") == 0);
	check("size 0 writes nothing", mailhdr_format(NULL, 0, "Subject", "hello") == 16);
}

/* Random bytes: every output well formed, every value back. */
static void
test_random(void)
{
	char		value[600];
	int			bad = 0;

	srand(12);
	for (int round = 0; round < 20000; round++)
	{
		int			n = rand() % (int) (sizeof(value) - 1);
		char		out[16384],
					back[sizeof(value)];

		for (int i = 0; i < n; i++)
		{
			static const char alphabet[] = "ab =?_\r\n\t";
			int			r = rand() % 4;

			value[i] = r == 0 ? (char) (1 + rand() % 255) : alphabet[rand() % (sizeof(alphabet) - 1)];
		}
		value[n] = '\0';
		mailhdr_format(out, sizeof(out), "Subject", value);
		if (!well_formed(out, 0) || decode(out, "Subject", back, sizeof(back)) != 0 ||
			strcmp(back, value) != 0)
			bad++;
	}
	check("random values", bad == 0);
}

/* Plain addresses pass; anything that could break a header or a command does not. */
static void
test_addresses(void)
{
	char		longest[300];
	static const char *good[] = {"ops@example.com", "a@b", "x.y+tag@mail-1.example.org",
	"o'brien@example.com", NULL};
	static const char *bad[] = {"", "@example.com", "ops@", "ops", "ops@@example.com",
		"ops@example..com", "ops@.example.com", "ops@example.com.", "ops@exa mple.com",
		"o ps@example.com", "ops@example.com\r\nBcc: victim@example.com",
		"ops@example.com\n", "<ops@example.com>", "ops@example.com>", "ops,b@example.com",
		"ops@ex_ample.com", "\xc3\xa9@example.com", "ops@[127.0.0.1]", NULL};

	for (int i = 0; good[i] != NULL; i++)
		check(good[i], mailhdr_address_ok(good[i]));
	for (int i = 0; bad[i] != NULL; i++)
		check(bad[i], !mailhdr_address_ok(bad[i]));
	memset(longest, 'a', 64);
	strcpy(longest + 64, "@example.com");
	check("a 64-character local part", mailhdr_address_ok(longest));
	memmove(longest + 1, longest, strlen(longest) + 1);
	check("a 65-character local part", !mailhdr_address_ok(longest));
	strcpy(longest, "a@");
	for (int i = 0; i < 4; i++)
		strcat(longest, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");
	strcat(longest, "cccc");
	check("254 characters", strlen(longest) == 254 && mailhdr_address_ok(longest));
	strcat(longest, "c");
	check("255 characters", !mailhdr_address_ok(longest));
	strcpy(longest, "a@");
	memset(longest + 2, 'd', 64);
	longest[66] = '\0';
	check("a 64-character label", !mailhdr_address_ok(longest));
}

int
main(void)
{
	test_addresses();
	test_cases();
	test_sizes();
	test_random();
	printf("test_mailhdr: %d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
