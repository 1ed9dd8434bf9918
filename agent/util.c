/*
 * util.c -- small helpers every module of dispatch-agent uses.
 *
 * Memory exhaustion is not a condition the agent can work around, so the
 * allocators log and abort instead of threading NULL checks through every
 * caller (the way Redis's zmalloc does).  StrBuf is a growable, always
 * NUL-terminated string; StrList a growable array of owned strings that stays
 * NULL-terminated so it can be handed to execve() as argv or envp.
 */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static void sb_reserve(StrBuf *sb, size_t n);

/* Returns n bytes of fresh memory; aborts when there is none. */
void *
xmalloc(size_t n)
{
	return xrealloc(NULL, n);
}

/* Resizes p to n bytes; aborts when memory is exhausted. */
void *
xrealloc(void *p, size_t n)
{
	void	   *q = realloc(p, n ? n : 1);

	if (q == NULL)
	{
		log_error("out of memory (%zu bytes)", n);
		abort();
	}
	return q;
}

/* Returns a malloc'd copy of s. */
char *
xstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

/* Makes sb an empty string. */
void
sb_init(StrBuf *sb)
{
	sb->cap = 64;
	sb->len = 0;
	sb->data = xmalloc(sb->cap);
	sb->data[0] = '\0';
}

/* Releases sb's memory; sb must be initialised again before reuse. */
void
sb_free(StrBuf *sb)
{
	free(sb->data);
	sb->data = NULL;
	sb->len = sb->cap = 0;
}

/* Makes room for n more bytes plus the terminating NUL. */
static void
sb_reserve(StrBuf *sb, size_t n)
{
	if (sb->len + n + 1 <= sb->cap)
		return;
	while (sb->len + n + 1 > sb->cap)
		sb->cap *= 2;
	sb->data = xrealloc(sb->data, sb->cap);
}

/* Appends n bytes of s (which may contain anything but is not read past n). */
void
sb_append(StrBuf *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

/* Appends the C string s. */
void
sb_puts(StrBuf *sb, const char *s)
{
	sb_append(sb, s, strlen(s));
}

/* Appends printf-formatted text. */
void
sb_printf(StrBuf *sb, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_reserve(sb, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t) n;
}

/* Writes all len bytes of buf to fd, again after a short write or EINTR; returns 0, or -1 with errno set. */
int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0)
	{
		ssize_t		n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Makes l an empty list. */
void
strlist_init(StrList *l)
{
	l->cap = 8;
	l->n = 0;
	l->items = xmalloc(sizeof(char *) * (size_t) l->cap);
	l->items[0] = NULL;
}

/* Releases l and every string in it. */
void
strlist_free(StrList *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}

/* Appends a copy of s, keeping the list NULL-terminated. */
void
strlist_add(StrList *l, const char *s)
{
	if (l->n + 2 > l->cap)
	{
		l->cap *= 2;
		l->items = xrealloc(l->items, sizeof(char *) * (size_t) l->cap);
	}
	l->items[l->n++] = xstrdup(s);
	l->items[l->n] = NULL;
}

/* Returns the index of s in l, or -1 when it is not there. */
int
strlist_find(const StrList *l, const char *s)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->items[i], s) == 0)
			return i;
	return -1;
}

/* Formats a message into the error buffer err (if any). */
void
agent_seterr(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Writes 16 random hex digits (64 bits from the kernel) into out: the part of a
 * name nobody can guess.  Returns 0, or -1 with err saying it could not name what.
 */
int
random_hex(char out[17], const char *what, char *err, size_t errlen)
{
	uint64_t	token;

	if (getrandom(&token, sizeof(token), 0) != (ssize_t) sizeof(token))
	{
		agent_seterr(err, errlen, "could not name %s: %s", what, strerror(errno));
		return -1;
	}
	snprintf(out, 17, "%016" PRIx64, token);
	return 0;
}

/*
 * Makes path a directory of the agent's with mode unless it is one already
 * (an existing one must be the agent's and no link).  Returns 0, or -1 with err set.
 */
int
own_dir(const char *path, unsigned mode, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, mode) == 0 && chmod(path, mode) == 0)
		return 0;
	if (errno == EEXIST && lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid())
		return 0;
	agent_seterr(err, errlen, "could not create directory \"%s\": %s", path,
				 errno == EEXIST ? "something else of that name exists" : strerror(errno));
	return -1;
}
