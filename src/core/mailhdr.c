/*
 * mailhdr.c: mail header lines that a value cannot break out of (mailhdr.h).
 *
 * Two ways to write a value.  Plain: printable ASCII with no "=?" and no word
 * longer than a line, folded before a space when the next word would pass
 * MAILHDR_LINE.  Encoded: everything else, as RFC 2047 encoded-words
 * "=?UTF-8?Q?...?=", where letters, digits and "!*+-/" stand for themselves, a
 * space is "_" and every other byte is "=XX"; a word ends before the character
 * that would make it longer than 75 characters or its line longer than
 * MAILHDR_LINE, and the next begins on a folded line.  A UTF-8 character (its
 * lead byte and the continuation bytes that follow it) stays in one word, as
 * RFC 2047 section 5 requires; bytes that are not UTF-8 are encoded one by one.
 */
#include "mailhdr.h"

#include <string.h>

#define WORD_MAX 75				/* RFC 2047: an encoded-word's longest */
#define WORD_OPEN "=?UTF-8?Q?"
#define WORD_CLOSE "?="

/* Where the header goes: out holds the first size - 1 bytes, len counts all. */
typedef struct Out
{
	char	   *out;
	size_t		size;
	size_t		len;
	size_t		col;			/* characters on the current line */
} Out;

static void put(Out *o, const char *s, size_t n);
static int	is_plain(const char *value, size_t room);
static size_t char_len(const unsigned char *s, size_t left);
static size_t q_len(unsigned char c);
static void put_q(Out *o, unsigned char c);
static void put_plain(Out *o, const char *value);
static void put_encoded(Out *o, const char *value);
static size_t span_of(const char *s, const char *chars);

/* Appends n bytes of s (counting all, storing what fits). */
static void
put(Out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, o->len++)
	{
		if (o->len + 1 < o->size)
			o->out[o->len] = s[i];
		o->col = s[i] == '\n' ? 0 : o->col + 1;
	}
}

/* Returns 1 when value may be written as it is: printable ASCII, no "=?", tokens of at most room. */
static int
is_plain(const char *value, size_t room)
{
	size_t		token = 0;		/* a word and the spaces before it */

	for (const char *p = value; *p != '\0'; p++)
	{
		if (*p < 0x20 || *p > 0x7e || (p[0] == '=' && p[1] == '?'))
			return 0;
		if (*p == ' ' && p > value && p[-1] != ' ')
			token = 0;
		if (++token > room)
			return 0;
	}
	return 1;
}

/* Returns how many of the left bytes at s make one UTF-8 character (1 for a stray byte). */
static size_t
char_len(const unsigned char *s, size_t left)
{
	size_t		n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 1;
	size_t		i = 1;

	while (i < n && i < left && (s[i] & 0xc0) == 0x80)
		i++;
	return i;
}

/* Returns the length of byte c in the Q encoding. */
static size_t
q_len(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == ' ' || strchr("!*+-/", c) != NULL ? 1 : 3;
}

/* Appends byte c in the Q encoding. */
static void
put_q(Out *o, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";
	char		e[3] = {'=', hex[c >> 4], hex[c & 15]};

	if (c == ' ')
		put(o, "_", 1);
	else if (q_len(c) == 1)
		put(o, (const char *) &c, 1);
	else
		put(o, e, 3);
}

/* Appends value as it is, folding before a space that would pass the line. */
static void
put_plain(Out *o, const char *value)
{
	const char *p = value;

	while (*p != '\0')
	{
		/* the next token: its leading spaces and one word */
		size_t		n = strspn(p, " ");

		n += strcspn(p + n, " ");
		if (p[0] == ' ' && o->col + n > MAILHDR_LINE)
			put(o, "\r\n", 2);
		put(o, p, n);
		p += n;
	}
}

/* Appends value as encoded-words, one per line after the first. */
static void
put_encoded(Out *o, const char *value)
{
	const unsigned char *p = (const unsigned char *) value;
	size_t		left = strlen(value);
	size_t		word = 0;		/* length of the open word, 0 when none is open */

	while (left > 0)
	{
		size_t		n = char_len(p, left);
		size_t		e = 0;

		for (size_t i = 0; i < n; i++)
			e += q_len(p[i]);
		if (word > 0 && (word + e + strlen(WORD_CLOSE) > WORD_MAX ||
						 o->col + e + strlen(WORD_CLOSE) > MAILHDR_LINE))
		{
			put(o, WORD_CLOSE "\r\n ", strlen(WORD_CLOSE) + 3);
			word = 0;
		}
		if (word == 0)
		{
			put(o, WORD_OPEN, strlen(WORD_OPEN));
			word = strlen(WORD_OPEN);
		}
		for (size_t i = 0; i < n; i++)
			put_q(o, p[i]);
		word += e;
		p += n;
		left -= n;
	}
	if (word > 0)
		put(o, WORD_CLOSE, strlen(WORD_CLOSE));
}

size_t
mailhdr_format(char *out, size_t size, const char *name, const char *value)
{
	Out			o = {out, size, 0, 0};

	put(&o, name, strlen(name));
	put(&o, ": ", 2);
	if (is_plain(value, MAILHDR_LINE - o.col))
		put_plain(&o, value);
	else
		put_encoded(&o, value);
	put(&o, "\r\n", 2);
	if (size > 0)
		out[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

/* Returns the length of the run at s of letters, digits and chars. */
static size_t
span_of(const char *s, const char *chars)
{
	size_t		n = 0;

	while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
		   (s[n] >= '0' && s[n] <= '9') || (s[n] != '\0' && strchr(chars, s[n]) != NULL))
		n++;
	return n;
}

int
mailhdr_address_ok(const char *addr)
{
	size_t		local = span_of(addr, "!#$%&'*+/=?^_`{|}~.-");
	const char *domain = addr + local + 1;
	size_t		n = strlen(addr);

	if (local < 1 || local > 64 || addr[local] != '@' || n > 254)
		return 0;
	/* labels of 1 to 63, separated by single dots */
	for (const char *p = domain;; p++)
	{
		size_t		label = span_of(p, "-");

		if (label < 1 || label > 63)
			return 0;
		p += label;
		if (*p == '\0')
			return 1;
		if (*p != '.')
			return 0;
	}
}
