/*
 * utf8.c -- make raw job output acceptable as PostgreSQL text, byte for byte.
 *
 * Job output is whatever bytes a program wrote.  The server stores it in a
 * text column, addressed by byte offsets into the spool file, so the agent may
 * not change the length of anything it sends: every byte that is not part of
 * a well-formed UTF-8 sequence (overlong forms, surrogates and code points
 * above U+10FFFF included) and every NUL becomes '?', one byte for one byte.
 * A multi-byte character cut by the end of a read is held back until the rest
 * arrives, unless this is the final read of a finished job.
 */
#include "util.h"

static int seq_len(const unsigned char *s, size_t len);

/* Returns the length of the valid sequence at s (1-4), 0 when s[0..len) is a valid but incomplete prefix, -1 when invalid. */
static int
seq_len(const unsigned char *s, size_t len)
{
	int			need;
	unsigned char lo = 0x80, hi = 0xBF;	/* bounds of the second byte */

	if (s[0] < 0x80)
		return s[0] == 0 ? -1 : 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		need = 2;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
	{
		need = 3;
		if (s[0] == 0xE0)
			lo = 0xA0;			/* no overlong forms */
		else if (s[0] == 0xED)
			hi = 0x9F;			/* no surrogates */
	}
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
	{
		need = 4;
		if (s[0] == 0xF0)
			lo = 0x90;
		else if (s[0] == 0xF4)
			hi = 0x8F;			/* nothing above U+10FFFF */
	}
	else
		return -1;
	for (int i = 1; i < need; i++)
	{
		if ((size_t) i >= len)
			return 0;
		if (i == 1 ? (s[1] < lo || s[1] > hi) : (s[i] & 0xC0) != 0x80)
			return -1;
	}
	return need;
}

/*
 * Replaces every NUL and invalid byte of buf[0..len) by '?' in place and
 * returns how many bytes may be sent: all of them, except a trailing
 * incomplete character when final is 0 (with final set, it becomes '?'s).
 */
size_t
utf8_sanitize(char *buf, size_t len, int final)
{
	unsigned char *s = (unsigned char *) buf;
	size_t		i = 0;

	while (i < len)
	{
		int			n = seq_len(s + i, len - i);

		if (n > 0)
		{
			i += (size_t) n;
			continue;
		}
		if (n == 0 && !final)
			return i;
		s[i++] = '?';
	}
	return len;
}
