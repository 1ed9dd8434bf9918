/*
 * util.h -- the base every part of dispatch-agent builds on.
 *
 * Both processes (the agent with its supervisors, and the metrics sampler in
 * metrics/) use these, so they live once here and are included, never copied:
 *   util.c    allocation that aborts on OOM, growable strings and string lists,
 *             the error buffer
 *   log.c     one timestamped line per event on stderr
 *   jsonio.c  JSON through jansson: loading within the agent's limits, compact writing
 *   utf8.c    turning raw bytes into text PostgreSQL accepts
 * Functions that can fail take an error buffer (char *err, size_t errlen):
 * on failure they fill it with a message in PostgreSQL style and return -1;
 * on success they return 0 or, where their comment says so, a count.  The
 * dispatch.agent_* calls (conn.h) return a CallResult instead, whose four
 * values tell apart success, a retryable failure, a stale job and bad data.
 */
#ifndef AGENT_UTIL_H
#define AGENT_UTIL_H

#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define AGENT_VERSION "0.1.0"
#define AGENT_ERRLEN 512

/* ---- util.c ---- */

typedef struct StrBuf
{
	char	   *data;			/* always NUL-terminated once initialised */
	size_t		len;
	size_t		cap;
} StrBuf;

typedef struct StrList
{
	char	  **items;			/* items[n] is always NULL (usable as argv/envp) */
	int			n;
	int			cap;
} StrList;

void	   *xmalloc(size_t n);
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);
void		sb_init(StrBuf *sb);
void		sb_free(StrBuf *sb);
void		sb_append(StrBuf *sb, const char *s, size_t n);
void		sb_puts(StrBuf *sb, const char *s);
void		sb_printf(StrBuf *sb, const char *fmt,...) __attribute__((format(printf, 2, 3)));
int			write_all(int fd, const void *buf, size_t len);
void		strlist_init(StrList *l);
void		strlist_free(StrList *l);
void		strlist_add(StrList *l, const char *s);
int			strlist_find(const StrList *l, const char *s);
void		agent_seterr(char *err, size_t errlen, const char *fmt,...) __attribute__((format(printf, 3, 4)));
int			random_hex(char out[17], const char *what, char *err, size_t errlen);
int			own_dir(const char *path, unsigned mode, char *err, size_t errlen);

/* ---- log.c ---- */

enum
{
	LOG_DEBUG_ = 0, LOG_INFO_, LOG_WARNING_, LOG_ERROR_
};
extern int	agent_log_verbose;
void		agent_log(int level, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) agent_log(LOG_DEBUG_, __VA_ARGS__)
#define log_info(...) agent_log(LOG_INFO_, __VA_ARGS__)
#define log_warning(...) agent_log(LOG_WARNING_, __VA_ARGS__)
#define log_error(...) agent_log(LOG_ERROR_, __VA_ARGS__)

/* ---- jsonio.c ---- */

json_t	   *jsonio_load(const char *text, size_t flags, char *err, size_t errlen);
int			jsonio_int(const json_t *v, int64_t *out);
json_t	   *jsonio_str(const char *s);
void		jsonio_put(StrBuf *sb, json_t *v);
void		jsonio_put_str(StrBuf *sb, const char *s);

/* ---- utf8.c ---- */

size_t		utf8_sanitize(char *buf, size_t len, int final);

#endif							/* AGENT_UTIL_H */
