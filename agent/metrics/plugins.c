/*
 * plugins.c -- site-specific metrics from the executables in --plugin-dir.
 *
 * Each sample runs every plugin (collect.c starts them through
 * collect_exec.c, side by side, each for at most the collector's timeout)
 * and reads its standard output, one metric per line:
 *     name value
 *     name{label="x",other="y"} value
 * A name is [A-Za-z_][A-Za-z0-9_.:]* of at most 128 bytes, a label name
 * [A-Za-z_][A-Za-z0-9_]* of at most 64, a label value is double-quoted with
 * \" \\ and \n as its only escapes, a line has at most 16 labels, and the
 * value is a JSON number a double can hold (no NaN, no Inf, no 1e400), sent
 * as written.  Blank lines and lines starting with '#' are skipped.  Any
 * other line is garbage: it is dropped and reported.  At most
 * PLUGIN_MAX_METRICS metrics are taken from one plugin.
 *
 * Nothing a plugin does is fatal: one that hangs, crashes, exits non-zero,
 * prints garbage or cannot be executed becomes an entry of the sample's
 * "problems", the others are unaffected.  Its complete lines are kept
 * whatever its end; an unfinished last line only when it exited by itself
 * (a killed plugin may have been cut in the middle of a number).
 *
 * What runs: the regular files of the directory (symlinks followed) that
 * the agent may execute, in name order, except dot files; a file that
 * everyone may write is reported and not run, since anyone could then make
 * the agent run anything.  Other files are ignored without a word.
 */
#include "collect.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLUGINS_MAX 64			/* plugins run per sample */
#define PLUGIN_MAX_METRICS 1000
#define PLUGIN_MAX_LABELS 16
#define PLUGIN_NAME_MAX 128		/* bytes of a metric name */
#define PLUGIN_LABEL_NAME_MAX 64	/* bytes of a label name */

static const char *word(char **p, const char *extra, size_t max);
static const char *parse_labels(char **p, StrBuf *m);
static const char *parse_line(char *line, const char *plugin, StrBuf *m);

/* Fills paths with the plugins of dir to run ("dir/name"); what keeps one from running goes to problems. */
void
plugins_list(const char *dir, StrList *paths, StrList *problems)
{
	char		err[AGENT_ERRLEN], path[4096];
	StrList		names;

	strlist_init(&names);
	if (collect_list_dir(dir, "", &names, err, sizeof(err)) < 0)
		collect_problem(problems, "plugins", "%s", err);
	for (int i = 0; i < names.n; i++)
	{
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names.items[i]);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0)
			continue;
		if (st.st_mode & S_IWOTH)
			collect_problem(problems, "plugins", "plugin \"%s\" is writable by everyone and was not run",
							names.items[i]);
		else if (paths->n == PLUGINS_MAX)
		{
			collect_problem(problems, "plugins", "more than %d plugins: \"%s\" and later ones were not run",
							PLUGINS_MAX, names.items[i]);
			break;
		}
		else
			strlist_add(paths, path);
	}
	strlist_free(&names);
}

/* Moves *p past a word of [A-Za-z_][A-Za-z0-9_<extra>]* of at most max bytes; returns it (NUL-terminated later by the caller) or NULL. */
static const char *
word(char **p, const char *extra, size_t max)
{
	char	   *start = *p;

	if (!isalpha((unsigned char) *start) && *start != '_')
		return NULL;
	while (isalnum((unsigned char) **p) || **p == '_' || (**p != '\0' && strchr(extra, **p) != NULL))
		(*p)++;
	return (size_t) (*p - start) <= max ? start : NULL;
}

/* Parses {label="value",...} at *p into m's "labels" members; returns NULL or why the line is garbage. */
static const char *
parse_labels(char **p, StrBuf *m)
{
	char	   *seen[PLUGIN_MAX_LABELS];
	int			n = 0;

	(*p)++;						/* '{' */
	while (**p != '}')
	{
		char	   *name = *p;
		StrBuf		v;

		if (word(p, "", PLUGIN_LABEL_NAME_MAX) == NULL)
			return "invalid label name";
		if (**p != '=' || (*p)[1] != '"')
			return "expected =\"...\" after a label name";
		**p = '\0';
		for (int i = 0; i < n; i++)
			if (strcmp(seen[i], name) == 0)
				return "duplicate label name";
		if (n == PLUGIN_MAX_LABELS)
			return "more than 16 labels";
		seen[n++] = name;
		sb_init(&v);
		for (*p += 2; **p != '"'; (*p)++)
		{
			char		c = **p;

			if (c == '\\')
			{
				c = *++(*p);
				c = c == 'n' ? '\n' : (c == '"' || c == '\\') ? c : '\0';
			}
			if (c == '\0')
			{
				sb_free(&v);
				return **p == '\0' ? "unterminated label value" : "invalid escape in a label value";
			}
			sb_append(&v, &c, 1);
		}
		(*p)++;
		sb_puts(m, n > 1 ? "," : "");
		jsonio_put_str(m, name);
		sb_puts(m, ":");
		jsonio_put_str(m, v.data);
		sb_free(&v);
		if (**p == ',')
			(*p)++;
		else if (**p != '}')
			return "expected \",\" or \"}\" after a label";
	}
	(*p)++;
	return NULL;
}

/* Parses one metric line into the JSON object m; returns NULL or why the line is garbage. */
static const char *
parse_line(char *line, const char *plugin, StrBuf *m)
{
	char	   *p = line + strspn(line, " \t");
	char	   *name = p;
	char	   *value;
	const char *why;
	json_t	   *num;
	char		c;

	if (word(&p, ".:", PLUGIN_NAME_MAX) == NULL)
		return "invalid metric name";
	c = *p;
	*p = '\0';
	sb_puts(m, "{\"plugin\":");
	jsonio_put_str(m, plugin);
	sb_puts(m, ",\"name\":");
	jsonio_put_str(m, name);
	sb_puts(m, ",\"labels\":{");
	*p = c;
	if (*p == '{' && (why = parse_labels(&p, m)) != NULL)
		return why;
	if (*p != ' ' && *p != '\t')
		return *p == '\0' ? "missing value" : "expected white space before the value";
	value = p + strspn(p, " \t");
	p = value + strcspn(value, " \t");
	if (p[strspn(p, " \t")] != '\0')
		return "unexpected text after the value";
	*p = '\0';
	if (*value == '\0')
		return "missing value";
	/* integers beyond int64 are numbers too: check them as reals, send the text */
	num = jsonio_load(value, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL, 0);
	if (!json_is_number(num))
	{
		json_decref(num);
		return "the value is not a number";
	}
	json_decref(num);
	sb_printf(m, "},\"value\":%s}", value);
	return NULL;
}

/*
 * Appends a JSON object per metric line of plugin's output to metrics
 * (comma separated); -1 with err saying how many lines were garbage and
 * what was wrong with the first, or that there were too many metrics.
 */
int
plugins_parse(const char *plugin, const char *output, StrBuf *metrics, char *err, size_t errlen)
{
	char	   *copy = xstrdup(output);
	char	   *pos = copy, *line;
	int			lineno = 0, bad = 0, taken = 0;

	while ((line = strsep(&pos, "\n")) != NULL)
	{
		StrBuf		m;
		const char *why;
		char		shown[81];

		lineno++;
		line[strcspn(line, "\r")] = '\0';
		if (line[strspn(line, " \t")] == '\0' || line[strspn(line, " \t")] == '#')
			continue;
		if (taken == PLUGIN_MAX_METRICS)
		{
			agent_seterr(err, errlen, "more than %d metrics; the rest were ignored", PLUGIN_MAX_METRICS);
			bad = -1;
			break;
		}
		snprintf(shown, sizeof(shown), "%s", line);	/* before parsing cuts it */
		sb_init(&m);
		if ((why = parse_line(line, plugin, &m)) == NULL)
		{
			sb_puts(metrics, metrics->len > 0 ? "," : "");
			sb_append(metrics, m.data, m.len);
			taken++;
		}
		else if (bad++ == 0)
			agent_seterr(err, errlen, "line %d: %s: \"%s\"", lineno, why, shown);
		sb_free(&m);
	}
	free(copy);
	if (bad > 1)
	{
		char		first[AGENT_ERRLEN];

		snprintf(first, sizeof(first), "%s", err);
		agent_seterr(err, errlen, "%d invalid lines, the first at %s", bad, first);
	}
	return bad != 0 ? -1 : 0;
}

/* Adds what plugin run r printed to metrics, and what went wrong with it to problems. */
void
plugins_report(const ExecRun *r, int64_t timeout_ms, StrBuf *metrics, StrList *problems)
{
	const char *name = strrchr(r->argv[0], '/') != NULL ? strrchr(r->argv[0], '/') + 1 : r->argv[0];
	char		source[128], msg[AGENT_ERRLEN];
	StrBuf		text;

	snprintf(source, sizeof(source), "plugin:%s", name);
	if (collect_exec_outcome(r, timeout_ms, msg, sizeof(msg)) < 0)
		collect_problem(problems, source, "%s", msg);
	sb_init(&text);
	sb_append(&text, r->out.data, r->out.len);
	utf8_sanitize(text.data, text.len, 1);	/* NULs and invalid bytes become '?' */
	if (r->state != EXEC_EXITED || r->truncated)
	{
		char	   *nl = strrchr(text.data, '\n');

		text.len = nl != NULL ? (size_t) (nl - text.data) : 0;	/* drop an unfinished last line */
		text.data[text.len] = '\0';
	}
	if (plugins_parse(name, text.data, metrics, msg, sizeof(msg)) < 0)
		collect_problem(problems, source, "%s", msg);
	sb_free(&text);
}
