/*
 * template.h: the template renderer of pg_dispatch, in plain C.
 *
 * A template is any text; a replacement map is a set of (pattern, replacement)
 * pairs of plain bytes.  Rendering scans the text once, left to right: at each
 * position the longest pattern that starts there is replaced and scanning goes
 * on after it, so replaced text is never scanned again; a position where no
 * pattern starts is copied.  Patterns are matched with an Aho-Corasick automaton,
 * so the cost grows with the text and the matches, not with the number of
 * patterns.  No PostgreSQL headers: see docs/internals.md.
 */
#ifndef DISPATCH_TEMPLATE_H
#define DISPATCH_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct TmplPattern
{
	const char *from;			/* the pattern: not empty, any bytes */
	size_t		from_len;
	const char *to;				/* its replacement: any bytes, may be empty */
	size_t		to_len;
} TmplPattern;

/* Where the renderer gets and returns memory (malloc/free, or palloc/pfree). */
typedef struct TmplAlloc
{
	void	   *(*alloc) (size_t size, void *arg);	/* returns NULL when out of memory */
	void		(*release) (void *ptr, void *arg);
	void	   *arg;
} TmplAlloc;

/* Receives the rendered text piece by piece; returns 0, or -1 to stop rendering. */
typedef int (*TmplEmit) (const char *data, size_t len, void *arg);

typedef struct TmplMatcher TmplMatcher;

/*
 * Builds a matcher for patterns[0 .. npatterns).  When a pattern occurs twice,
 * the later one wins.  Returns NULL when memory runs out or a pattern is empty;
 * *empty_pattern is then the index of the empty pattern, or -1.
 */
extern TmplMatcher *tmpl_build(const TmplPattern *patterns, int npatterns,
							   const TmplAlloc *alloc, int *empty_pattern);

/*
 * Renders text[0 .. len) through emit.  Returns the number of replacements made,
 * or -1 when emit stopped the rendering or memory ran out.
 */
extern int64_t tmpl_render(const TmplMatcher *m, const char *text, size_t len,
						   TmplEmit emit, void *emit_arg);

/* Frees a matcher built by tmpl_build. */
extern void tmpl_free(TmplMatcher *m);

#endif							/* DISPATCH_TEMPLATE_H */
