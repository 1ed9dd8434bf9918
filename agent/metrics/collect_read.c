/*
 * collect_read.c -- what every metric parser needs: files below a root,
 * lines, fields, strict numbers, sorted directory listings, growable arrays.
 *
 * Every collector reads the kernel's text files (/proc, /sys) below a root
 * directory that is "/" on a real machine and a committed fixture tree in the
 * unit tests, so each parser is tested against exact, odd inputs without the
 * test machine's own state leaking in.  A file is read whole (they are small
 * and the kernel builds them at open) into a CollectFile, then cut in place
 * into lines and white-space separated fields; counters are read strictly,
 * so a value that does not fit 64 bits is an error and never a silently
 * clamped number, and a table of struct offsets says which column of a line
 * goes where.  What goes wrong is told as a problem: a (source, message)
 * pair that ends up in the sample's "problems".
 * Directory listings come sorted in version order (thermal_zone2 before
 * thermal_zone10, pid 9 before pid 10) so that samples are deterministic.
 */
#include "collect.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void vpath(char *buf, size_t len, const char *root, const char *fmt, va_list ap);

/* collect_path() taking a va_list. */
static void
vpath(char *buf, size_t len, const char *root, const char *fmt, va_list ap)
{
	size_t		n = strlen(root);
	int			used;

	while (n > 0 && root[n - 1] == '/')
		n--;
	used = snprintf(buf, len, "%.*s/", (int) n, root);
	if (used >= 0 && (size_t) used < len)
		vsnprintf(buf + used, len - (size_t) used, fmt, ap);
}

/* Writes root joined with the formatted relative path fmt (no leading '/') into buf. */
void
collect_path(char *buf, size_t len, const char *root, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vpath(buf, len, root, fmt, ap);
	va_end(ap);
}

/* Reads the file root/fmt whole into f, ready for collect_next(); f needs collect_close() only on success. */
int
collect_open(CollectFile *f, const char *root, char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vpath(f->path, sizeof(f->path), root, fmt, ap);
	va_end(ap);
	if (spool_read_text(f->path, &f->text, err, errlen) < 0)
		return -1;
	f->pos = f->text.data;
	return 0;
}

/* Returns f's next line, NUL-terminated in place, or NULL at the end. */
char *
collect_next(CollectFile *f)
{
	char	   *line = f->pos;
	char	   *eol;

	if (*line == '\0')
		return NULL;
	eol = strchr(line, '\n');
	if (eol == NULL)
		f->pos = line + strlen(line);
	else
	{
		*eol = '\0';
		f->pos = eol + 1;
	}
	return line;
}

/* Releases what collect_open() read. */
void
collect_close(CollectFile *f)
{
	sb_free(&f->text);
}

/* Copies the first line of the file root/fmt (a sysfs value) into buf; -1 when it cannot be read. */
int
collect_first_line(char *buf, size_t len, const char *root, const char *fmt,...)
{
	CollectFile f;
	va_list		ap;

	va_start(ap, fmt);
	vpath(f.path, sizeof(f.path), root, fmt, ap);
	va_end(ap);
	if (spool_read_text(f.path, &f.text, NULL, 0) < 0)
		return -1;
	snprintf(buf, len, "%.*s", (int) strcspn(f.text.data, "\n"), f.text.data);
	sb_free(&f.text);
	return 0;
}

/* Splits line in place at spaces and tabs into at most max fields; returns how many. */
int
collect_fields(char *line, char **f, int max)
{
	int			n = 0;
	char	   *p = line;

	while (n < max)
	{
		p += strspn(p, " \t\r");
		if (*p == '\0')
			break;
		f[n++] = p;
		p += strcspn(p, " \t\r");
		if (*p == '\0')
			break;
		*p++ = '\0';
	}
	return n;
}

/* Stores the decimal s in *out; -1 unless s is all digits and fits 64 bits. */
int
collect_u64(const char *s, uint64_t *out)
{
	char	   *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = (uint64_t) v;
	return 0;
}

/*
 * Parses the n fields f as counters into the uint64_t members of the struct
 * out at offsets[i] (COLLECT_SKIP: checked, not kept); -1 when one is not a
 * counter, so that a damaged line is never half taken.
 */
int
collect_counters(char **f, int n, void *out, const size_t *offsets)
{
	for (int i = 0; i < n; i++)
	{
		uint64_t	v;

		if (collect_u64(f[i], &v) < 0)
			return -1;
		if (offsets[i] != COLLECT_SKIP)
			memcpy((char *) out + offsets[i], &v, sizeof(v));
	}
	return 0;
}

/* Adds a problem of source (its message printf-formatted, made valid UTF-8) to problems (source, message pairs). */
void
collect_problem(StrList *problems, const char *source, const char *fmt,...)
{
	char		msg[AGENT_ERRLEN];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_sanitize(msg, strlen(msg), 1);
	strlist_add(problems, source);
	strlist_add(problems, msg);
}

/* Fills names (initialised) with dir's entries starting with prefix, in version order, dot files excepted. */
int
collect_list_dir(const char *dir, const char *prefix, StrList *names, char *err, size_t errlen)
{
	struct dirent **list;
	int			n = scandir(dir, &list, NULL, versionsort);
	size_t		plen = strlen(prefix);

	if (n < 0)
	{
		agent_seterr(err, errlen, "could not open directory \"%s\": %s", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++)
	{
		if (list[i]->d_name[0] != '.' && strncmp(list[i]->d_name, prefix, plen) == 0)
			strlist_add(names, list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return 0;
}

/* Appends a zeroed element of size bytes to l and returns it (earlier pointers may move). */
void *
collect_list_add(CollectList *l, size_t size)
{
	char	   *item;

	if (l->n == l->cap)
	{
		l->cap = l->cap ? l->cap * 2 : 8;
		l->items = xrealloc(l->items, size * (size_t) l->cap);
	}
	item = (char *) l->items + size * (size_t) l->n++;
	memset(item, 0, size);
	return item;
}

/* Releases l's array and makes it empty. */
void
collect_list_free(CollectList *l)
{
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}
