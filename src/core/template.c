/*
 * template.c: one-pass, longest-match template rendering (see template.h).
 *
 * The patterns form a trie turned into an Aho-Corasick automaton: after reading
 * text[0..i] the automaton is in the state of the longest suffix of the text that
 * is a prefix of some pattern, and the state's dictionary chain lists every
 * pattern that ends at i.  Each match (start s, length L) found this way is noted
 * in a small ring indexed by s, keeping the longest per start.  A start position
 * is settled once the automaton's state no longer reaches back to it: no later
 * match can begin there.  Settled positions are consumed left to right: a match
 * there is replaced and the positions it covers are skipped, otherwise one byte
 * is copied.  The ring needs one slot per byte of the longest pattern, so memory
 * is independent of the text, and the work is one automaton step per byte plus
 * one step per match found.
 */
#include "template.h"

#include <string.h>

typedef struct State
{
	int32_t		fail;			/* state of the longest proper suffix in the trie */
	int32_t		dict;			/* nearest pattern-ending state on the fail chain, or -1 */
	int32_t		pattern;		/* index of the pattern ending here, or -1 */
	int32_t		depth;			/* length of the prefix this state stands for */
	int32_t		first_edge;		/* its edges: edges[first_edge .. +nedges), by byte */
	int32_t		nedges;
} State;

typedef struct Edge
{
	int32_t		next;
	uint8_t		byte;
} Edge;

struct TmplMatcher
{
	TmplAlloc	alloc;
	const TmplPattern *patterns;
	State	   *states;
	Edge	   *edges;
	int32_t		nstates;
	int32_t		max_depth;
	int32_t		root_next[256]; /* full transition function of the root */
};

/* The trie while it is built: first child and next sibling of each state. */
typedef struct Trie
{
	int32_t    *child;
	int32_t    *sibling;
	uint8_t    *byte;
} Trie;

static void *get(const TmplAlloc *a, size_t n);
static void insert(TmplMatcher *m, Trie *t, const TmplPattern *p, int index);
static void freeze_edges(TmplMatcher *m, const Trie *t);
static void link_failures(TmplMatcher *m, int32_t *queue);
static int32_t child_of(const TmplMatcher *m, int32_t s, uint8_t b);
static int32_t step(const TmplMatcher *m, int32_t s, uint8_t b);

/* Allocates n bytes through a, or returns NULL. */
static void *
get(const TmplAlloc *a, size_t n)
{
	return a->alloc(n == 0 ? 1 : n, a->arg);
}

/* Adds pattern p (number index) to the trie, keeping siblings sorted by byte. */
static void
insert(TmplMatcher *m, Trie *t, const TmplPattern *p, int index)
{
	int32_t		s = 0;

	for (size_t i = 0; i < p->from_len; i++)
	{
		uint8_t		b = (uint8_t) p->from[i];
		int32_t    *link = &t->child[s];

		while (*link >= 0 && t->byte[*link] < b)
			link = &t->sibling[*link];
		if (*link < 0 || t->byte[*link] != b)
		{
			int32_t		n = m->nstates++;

			t->byte[n] = b;
			t->child[n] = -1;
			t->sibling[n] = *link;
			m->states[n].pattern = -1;
			m->states[n].depth = (int32_t) (i + 1);
			*link = n;
		}
		s = *link;
	}
	m->states[s].pattern = index;
}

/* Lays the sibling lists out as one sorted edge array per state. */
static void
freeze_edges(TmplMatcher *m, const Trie *t)
{
	int32_t		e = 0;

	for (int32_t s = 0; s < m->nstates; s++)
	{
		m->states[s].first_edge = e;
		for (int32_t c = t->child[s]; c >= 0; c = t->sibling[c])
		{
			m->edges[e].next = c;
			m->edges[e].byte = t->byte[c];
			e++;
		}
		m->states[s].nedges = e - m->states[s].first_edge;
	}
}

/* Returns the child of s on byte b, or -1. */
static int32_t
child_of(const TmplMatcher *m, int32_t s, uint8_t b)
{
	const Edge *e = m->edges + m->states[s].first_edge;
	int32_t		lo = 0,
				hi = m->states[s].nedges;

	while (lo < hi)
	{
		int32_t		mid = (lo + hi) / 2;

		if (e[mid].byte < b)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo < m->states[s].nedges && e[lo].byte == b) ? e[lo].next : -1;
}

/* Returns the state after reading byte b in state s. */
static int32_t
step(const TmplMatcher *m, int32_t s, uint8_t b)
{
	for (;;)
	{
		int32_t		c;

		if (s == 0)
			return m->root_next[b];
		if ((c = child_of(m, s, b)) >= 0)
			return c;
		s = m->states[s].fail;
	}
}

/* Computes failure and dictionary links breadth-first (queue: nstates slots). */
static void
link_failures(TmplMatcher *m, int32_t *queue)
{
	int32_t		head = 0,
				tail = 0;

	for (int b = 0; b < 256; b++)
		m->root_next[b] = 0;
	m->states[0].fail = 0;
	m->states[0].dict = -1;
	for (int32_t e = 0; e < m->states[0].nedges; e++)
	{
		int32_t		c = m->edges[e].next;

		m->root_next[m->edges[e].byte] = c;
		m->states[c].fail = 0;
		m->states[c].dict = -1;
		queue[tail++] = c;
	}
	while (head < tail)
	{
		int32_t		s = queue[head++];
		const State *st = &m->states[s];

		for (int32_t e = st->first_edge; e < st->first_edge + st->nedges; e++)
		{
			int32_t		c = m->edges[e].next;
			int32_t		f = step(m, st->fail, m->edges[e].byte);

			m->states[c].fail = f;
			m->states[c].dict = m->states[f].pattern >= 0 ? f : m->states[f].dict;
			queue[tail++] = c;
		}
	}
}

TmplMatcher *
tmpl_build(const TmplPattern *patterns, int npatterns, const TmplAlloc *alloc,
		   int *empty_pattern)
{
	TmplMatcher *m;
	Trie		t = {NULL, NULL, NULL};
	size_t		total = 1;
	int32_t    *queue = NULL;

	*empty_pattern = -1;
	for (int i = 0; i < npatterns; i++)
	{
		if (patterns[i].from_len == 0)
		{
			*empty_pattern = i;
			return NULL;
		}
		if (patterns[i].from_len > (size_t) INT32_MAX - total)
			return NULL;
		total += patterns[i].from_len;
	}
	if ((m = get(alloc, sizeof(TmplMatcher))) == NULL)
		return NULL;
	memset(m, 0, sizeof(TmplMatcher));
	m->alloc = *alloc;
	m->patterns = patterns;
	m->states = get(alloc, total * sizeof(State));
	m->edges = get(alloc, total * sizeof(Edge));
	t.child = get(alloc, total * sizeof(int32_t));
	t.sibling = get(alloc, total * sizeof(int32_t));
	t.byte = get(alloc, total);
	if (m->states == NULL || m->edges == NULL || t.child == NULL || t.sibling == NULL ||
		t.byte == NULL)
		goto fail;

	m->nstates = 1;
	m->states[0].pattern = -1;
	m->states[0].depth = 0;
	t.child[0] = -1;
	for (int i = 0; i < npatterns; i++)
	{
		insert(m, &t, &patterns[i], i);
		if ((int32_t) patterns[i].from_len > m->max_depth)
			m->max_depth = (int32_t) patterns[i].from_len;
	}
	freeze_edges(m, &t);
	alloc->release(t.child, alloc->arg);
	t.child = NULL;
	alloc->release(t.sibling, alloc->arg);
	t.sibling = NULL;
	alloc->release(t.byte, alloc->arg);
	t.byte = NULL;
	if ((queue = get(alloc, (size_t) m->nstates * sizeof(int32_t))) == NULL)
		goto fail;
	link_failures(m, queue);
	alloc->release(queue, alloc->arg);
	return m;

fail:
	if (t.child)
		alloc->release(t.child, alloc->arg);
	if (t.sibling)
		alloc->release(t.sibling, alloc->arg);
	if (t.byte)
		alloc->release(t.byte, alloc->arg);
	tmpl_free(m);
	return NULL;
}

int64_t
tmpl_render(const TmplMatcher *m, const char *text, size_t len, TmplEmit emit, void *emit_arg)
{
	const size_t ring = (size_t) m->max_depth + 1;
	int32_t    *best = get(&m->alloc, ring * sizeof(int32_t));	/* longest match per start */
	int32_t    *which = get(&m->alloc, ring * sizeof(int32_t)); /* its pattern */
	size_t		pos = 0,		/* first position not yet consumed */
				copied = 0;		/* text[copied .. pos) is still to be copied */
	int64_t		replaced = 0;
	int32_t		s = 0;

	if (best == NULL || which == NULL)
		goto fail;
	memset(best, 0, ring * sizeof(int32_t));
	for (size_t i = 0; i <= len; i++)
	{
		size_t		settled;	/* no match can start before this position any more */

		if (i < len)
		{
			s = step(m, s, (uint8_t) text[i]);
			for (int32_t o = m->states[s].pattern >= 0 ? s : m->states[s].dict; o >= 0;
				 o = m->states[o].dict)
			{
				size_t		start = i + 1 - (size_t) m->states[o].depth;

				if (start >= pos)	/* else it overlaps a replaced match */
				{
					best[start % ring] = m->states[o].depth;
					which[start % ring] = m->states[o].pattern;
				}
			}
			settled = i + 1 - (size_t) m->states[s].depth;
		}
		else
			settled = len;

		while (pos < settled)
		{
			int32_t		l = best[pos % ring];
			const TmplPattern *p;

			if (l == 0)
			{
				pos++;
				continue;
			}
			p = &m->patterns[which[pos % ring]];
			if ((pos > copied && emit(text + copied, pos - copied, emit_arg) < 0) ||
				(p->to_len > 0 && emit(p->to, p->to_len, emit_arg) < 0))
				goto fail;
			replaced++;
			for (int32_t k = 0; k < l; k++)
				best[(pos + k) % ring] = 0;
			pos += l;
			copied = pos;
		}
	}
	if (len > copied && emit(text + copied, len - copied, emit_arg) < 0)
		goto fail;
	m->alloc.release(best, m->alloc.arg);
	m->alloc.release(which, m->alloc.arg);
	return replaced;

fail:
	if (best)
		m->alloc.release(best, m->alloc.arg);
	if (which)
		m->alloc.release(which, m->alloc.arg);
	return -1;
}

void
tmpl_free(TmplMatcher *m)
{
	if (m == NULL)
		return;
	if (m->states)
		m->alloc.release(m->states, m->alloc.arg);
	if (m->edges)
		m->alloc.release(m->edges, m->alloc.arg);
	m->alloc.release(m, m->alloc.arg);
}
