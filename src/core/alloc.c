/*
 * alloc.c: places pending jobs on nodes, Tetris-style, in strict FIFO order.
 *
 * Units are grouped by (type, node) with the cluster-wide pool of a type as one
 * more "node".  Each group keeps running sums (free units not reserved, free units
 * in all, capacity) and a cursor to its first unit with something left, so checking
 * whether a node can take a job costs O(needs) and taking units never rescans: within
 * one cycle free units only ever decrease.
 *
 * FIFO without overtaking: when a job cannot be placed, every group it could draw
 * from (its types, on its candidate nodes, plus the cluster pools of its types) is
 * reserved for the rest of the cycle; later jobs can only use groups it cannot.
 * Among the nodes that fit, the best fit wins (fewest free units of the needed types
 * left over), ties going to the node listed first.
 *
 * Hostile input: amounts come from agents, so any int64_t may arrive (registration
 * caps them, docs/security.md, but this file does not count on it).  A group's sums
 * saturate at INT64_MAX, which keeps every comparison with a need (at most INT64_MAX)
 * right; once saturated, taking units makes a sum count less than is free, never
 * more, so a job may wait on such a group but never gets units that are not there.
 * The cluster-wide sums per type are exact 128-bit Sums: an undercount there would
 * let one huge node make every other node look empty.  Best-fit leftovers are Sums
 * too.  Only the types some job needs get groups, so a node offering thousands of
 * odd types costs nothing.
 */
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An exact sum of amounts: 2^31 values of at most 2^63 each fit with room to spare. */
typedef __int128 Sum;

typedef struct Group
{
	int			start;			/* its units: order[start .. start + count) */
	int			count;
	int			cursor;			/* first unit that may have something left */
	int64_t		avail;			/* free and not reserved (saturating) */
	int64_t		free_total;		/* free, reserved or not (saturating) */
	int64_t		capacity;		/* (saturating) */
	int			reserver;		/* first job that reserved it, or -1 */
} Group;

#define CAND_CACHE 32

/* The candidate nodes of one constraint set, computed once per cycle. */
typedef struct CandCache
{
	const AllocJob *job;		/* a job with this constraint set */
	int		   *nodes;
	int			count;
	int64_t    *maxcap;			/* per type: the largest capacity of one candidate */
} CandCache;

typedef struct State
{
	const AllocProblem *p;
	const char **types;			/* distinct types the jobs need */
	int			ntypes;
	Group	   *groups;			/* ntypes x (nnodes + 1); the last slot is the cluster */
	Sum		   *type_avail;		/* per type: available units over all groups */
	int		   *order;			/* unit indices grouped by group, stable */
	int64_t    *unit_free;		/* working copy of every unit's free amount */
	int		   *label_start;	/* labels of node n: node_labels[label_start[n] ..] */
	const AllocLabel **node_labels;
	int		   *cand;			/* candidate nodes of the current job (points into cache) */
	const int64_t *cand_maxcap;	/* and their largest capacity per type */
	CandCache	cache[CAND_CACHE];	/* candidate lists by constraint set */
	int			ncached;
	int		   *need_type;		/* scratch: the type index of each need of the job */
	AllocOutput *out;
	int			takes_cap;
} State;

static int	type_index(const State *st, const char *type);
static Group *group_of(const State *st, int type, int node);
static int	build_index(State *st);
static int	node_has(const State *st, int node, const char *key, const char *value);
static int	same_constraints(const AllocJob *a, const AllocJob *b);
static int	find_candidates(State *st, const AllocJob *job);
static void explain_constraints(const State *st, const AllocJob *job, AllocResult *r);
static void set_reason(AllocResult *r, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static int	explain_capacity(const State *st, const AllocJob *job, int nc, AllocResult *r);
static int64_t sat_add(int64_t a, int64_t b);
static int64_t node_sum(const State *st, int type, int node, int use_avail);
static int	fits(const State *st, const AllocJob *job, int node, int use_avail);
static int	best_node(const State *st, const AllocJob *job, int nc);
static int	take(State *st, Group *g, int64_t amount);
static int	place(State *st, int jobno, int node);
static void explain_wait(const State *st, int jobno, int nc);
static void reserve(State *st, int jobno, int nc);

/* Returns a + b, or INT64_MAX (INT64_MIN) when the sum would overflow. */
static int64_t
sat_add(int64_t a, int64_t b)
{
	int64_t		r;

	if (__builtin_add_overflow(a, b, &r))
		return a > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* Returns the index of type among the needed types, or -1 when no job needs it. */
static int
type_index(const State *st, const char *type)
{
	for (int t = 0; t < st->ntypes; t++)
		if (strcmp(st->types[t], type) == 0)
			return t;
	return -1;
}

/* Returns the group of (type, node); node -1 is the cluster-wide pool. */
static Group *
group_of(const State *st, int type, int node)
{
	int			slot = node < 0 ? st->p->nnodes : node;

	return &st->groups[(size_t) type * (st->p->nnodes + 1) + slot];
}

/*
 * Builds types (those the jobs need), groups, the grouped unit order and the
 * per-node label index; units of types no job needs join no group.  0 or -1.
 */
static int
build_index(State *st)
{
	const AllocProblem *p = st->p;
	size_t		ngroups,
				nneeds = 0,
				nodes1 = (size_t) p->nnodes + 1;
	size_t	   *key;
	int		   *fill;

	for (int j = 0; j < p->njobs; j++)
		nneeds += p->jobs[j].nneeds;
	st->types = malloc(sizeof(char *) * (nneeds + 1));
	key = malloc(sizeof(size_t) * (p->nunits + 1));
	st->order = malloc(sizeof(int) * (p->nunits + 1));
	st->unit_free = malloc(sizeof(int64_t) * (p->nunits + 1));
	st->label_start = calloc(p->nnodes + 2, sizeof(int));
	st->node_labels = malloc(sizeof(AllocLabel *) * (p->nlabels + 1));
	if (!st->types || !key || !st->order || !st->unit_free || !st->label_start ||
		!st->node_labels)
	{
		free(key);
		return -1;
	}
	for (int j = 0; j < p->njobs; j++)
		for (int i = 0; i < p->jobs[j].nneeds; i++)
			if (type_index(st, p->jobs[j].needs[i].type) < 0)
				st->types[st->ntypes++] = p->jobs[j].needs[i].type;
	ngroups = (size_t) st->ntypes * nodes1;
	for (int u = 0; u < p->nunits; u++)
	{
		int			t = type_index(st, p->units[u].type);

		key[u] = t < 0 ? ngroups :
			(size_t) t * nodes1 + (p->units[u].node < 0 ? (size_t) p->nnodes : (size_t) p->units[u].node);
		st->unit_free[u] = p->units[u].free;
	}
	/* One more group past the end collects the units nobody needs. */
	st->groups = calloc(ngroups + 1, sizeof(Group));
	fill = calloc(ngroups + 1, sizeof(int));
	st->type_avail = calloc(st->ntypes + 1, sizeof(Sum));
	if (!st->groups || !fill || !st->type_avail)
	{
		free(key);
		free(fill);
		return -1;
	}
	for (int u = 0; u < p->nunits; u++)
	{
		Group	   *g = &st->groups[key[u]];

		g->count++;
		g->free_total = sat_add(g->free_total, p->units[u].free);
		g->capacity = sat_add(g->capacity, p->units[u].capacity);
		if (key[u] < ngroups)
			st->type_avail[key[u] / nodes1] += p->units[u].free;
	}
	for (size_t g = 0, pos = 0; g <= ngroups; g++)
	{
		st->groups[g].start = st->groups[g].cursor = (int) pos;
		st->groups[g].avail = st->groups[g].free_total;
		st->groups[g].reserver = -1;
		pos += st->groups[g].count;
	}
	for (int u = 0; u < p->nunits; u++)
		st->order[st->groups[key[u]].start + fill[key[u]]++] = u;
	free(key);
	free(fill);

	/* Labels grouped by node, by counting. */
	for (int l = 0; l < p->nlabels; l++)
		st->label_start[p->labels[l].node + 1]++;
	for (int n = 0; n < p->nnodes; n++)
		st->label_start[n + 1] += st->label_start[n];
	{
		int		   *next = calloc(p->nnodes + 1, sizeof(int));

		if (!next)
			return -1;
		for (int l = 0; l < p->nlabels; l++)
		{
			int			n = p->labels[l].node;

			st->node_labels[st->label_start[n] + next[n]++] = &p->labels[l];
		}
		free(next);
	}
	return 0;
}

/* Returns 1 when node carries label key=value. */
static int
node_has(const State *st, int node, const char *key, const char *value)
{
	for (int i = st->label_start[node]; i < st->label_start[node + 1]; i++)
		if (strcmp(st->node_labels[i]->key, key) == 0 &&
			strcmp(st->node_labels[i]->value, value) == 0)
			return 1;
	return 0;
}

/* Returns 1 when jobs a and b have the same constraints in the same order. */
static int
same_constraints(const AllocJob *a, const AllocJob *b)
{
	if (a->nconstraints != b->nconstraints)
		return 0;
	for (int c = 0; c < a->nconstraints; c++)
		if (strcmp(a->constraints[c].key, b->constraints[c].key) != 0 ||
			strcmp(a->constraints[c].value, b->constraints[c].value) != 0)
			return 0;
	return 1;
}

/*
 * Points st->cand at the nodes matching every constraint of job and returns how
 * many; lists are cached per constraint set, since a queue repeats a few sets.
 * Returns -1 when memory runs out.
 */
static int
find_candidates(State *st, const AllocJob *job)
{
	CandCache  *e = NULL;

	for (int i = 0; i < st->ncached; i++)
		if (same_constraints(st->cache[i].job, job))
		{
			st->cand = st->cache[i].nodes;
			st->cand_maxcap = st->cache[i].maxcap;
			return st->cache[i].count;
		}
	if (st->ncached < CAND_CACHE)
		e = &st->cache[st->ncached];
	else
		e = &st->cache[job->job_id % CAND_CACHE];	/* evict one */
	if (e->nodes == NULL && (e->nodes = malloc(sizeof(int) * (st->p->nnodes + 1))) == NULL)
		return -1;
	if (e->maxcap == NULL && (e->maxcap = malloc(sizeof(int64_t) * (st->ntypes + 1))) == NULL)
		return -1;
	if (st->ncached < CAND_CACHE)
		st->ncached++;
	e->job = job;
	e->count = 0;
	for (int n = 0; n < st->p->nnodes; n++)
	{
		int			ok = 1;

		for (int c = 0; c < job->nconstraints && ok; c++)
			ok = node_has(st, n, job->constraints[c].key, job->constraints[c].value);
		if (ok)
			e->nodes[e->count++] = n;
	}
	for (int t = 0; t < st->ntypes; t++)
	{
		e->maxcap[t] = 0;
		for (int k = 0; k < e->count; k++)
			if (group_of(st, t, e->nodes[k])->capacity > e->maxcap[t])
				e->maxcap[t] = group_of(st, t, e->nodes[k])->capacity;
	}
	st->cand = e->nodes;
	st->cand_maxcap = e->maxcap;
	return e->count;
}

/* Formats a reason into r. */
static void
set_reason(AllocResult *r, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

/*
 * Explains why no node matches: the constraints no node satisfies on its own, or all
 * of them when each is satisfied somewhere but never together.
 */
static void
explain_constraints(const State *st, const AllocJob *job, AllocResult *r)
{
	char		list[ALLOC_REASON_LEN] = "";
	size_t		len = 0;

	for (int pass = 0; pass < 2 && len == 0; pass++)
		for (int c = 0; c < job->nconstraints; c++)
		{
			int			somewhere = 0;

			for (int n = 0; pass == 0 && n < st->p->nnodes && !somewhere; n++)
				somewhere = node_has(st, n, job->constraints[c].key, job->constraints[c].value);
			if (somewhere)
				continue;
			len += snprintf(list + len, len < sizeof(list) ? sizeof(list) - len : 0, "%s%s=%s",
							len ? ", " : "", job->constraints[c].key, job->constraints[c].value);
			if (len >= sizeof(list))
				len = sizeof(list) - 1;
		}
	set_reason(r, "no online node matches %s", list);
}

/*
 * Sets a reason and returns 1 when no candidate node could ever hold the job, even
 * idle: a type nobody offers, or not enough of it anywhere.
 */
static int
explain_capacity(const State *st, const AllocJob *job, int nc, AllocResult *r)
{
	for (int i = 0; i < job->nneeds; i++)
	{
		int			t = st->need_type[i];
		int64_t		offered = sat_add(nc == 0 ? 0 : st->cand_maxcap[t],
									  group_of(st, t, -1)->capacity);

		if (offered == 0)
		{
			set_reason(r, "no online node offers %s", job->needs[i].type);
			return 1;
		}
		if (offered < job->needs[i].count)
		{
			set_reason(r, "no online node has %lld %s",
					   (long long) job->needs[i].count, job->needs[i].type);
			return 1;
		}
	}
	return 0;
}

/* Returns the free units of type on node plus the cluster pool (available ones only, or all). */
static int64_t
node_sum(const State *st, int type, int node, int use_avail)
{
	const Group *g = group_of(st, type, node);
	const Group *pool = group_of(st, type, -1);

	return use_avail ? sat_add(g->avail, pool->avail) : sat_add(g->free_total, pool->free_total);
}

/* Returns 1 when node (with the pools) has enough units for every need of job. */
static int
fits(const State *st, const AllocJob *job, int node, int use_avail)
{
	for (int i = 0; i < job->nneeds; i++)
		if (node_sum(st, st->need_type[i], node, use_avail) < job->needs[i].count)
			return 0;
	return 1;
}

/* Returns the best-fitting candidate node for job, or -1 when none fits now. */
static int
best_node(const State *st, const AllocJob *job, int nc)
{
	int			best = -1;
	Sum			best_left = 0;

	for (int i = 0; i < job->nneeds; i++)
		if (st->type_avail[st->need_type[i]] < job->needs[i].count)
			return -1;			/* not enough anywhere: no need to look at nodes */
	for (int k = 0; k < nc; k++)
	{
		int			n = st->cand[k];
		Sum			left = 0;

		if (!fits(st, job, n, 1))
			continue;
		for (int i = 0; i < job->nneeds; i++)
		{
			int64_t		own = group_of(st, st->need_type[i], n)->avail;

			left += own > job->needs[i].count ? own - job->needs[i].count : 0;
		}
		if (best < 0 || left < best_left)
		{
			best = n;
			best_left = left;
		}
	}
	return best;
}

/* Takes amount units from group g in unit order, recording them; 0 or -1 (memory). */
static int
take(State *st, Group *g, int64_t amount)
{
	AllocOutput *out = st->out;

	while (amount > 0 && g->cursor < g->start + g->count)
	{
		int			u = st->order[g->cursor];
		int64_t		got = st->unit_free[u] < amount ? st->unit_free[u] : amount;

		if (got > 0)
		{
			if (out->ntakes == st->takes_cap)
			{
				int			cap = st->takes_cap ? st->takes_cap * 2 : 256;
				AllocTake  *t = realloc(out->takes, sizeof(AllocTake) * cap);

				if (!t)
					return -1;
				out->takes = t;
				st->takes_cap = cap;
			}
			out->takes[out->ntakes].unit = u;
			out->takes[out->ntakes].amount = got;
			out->ntakes++;
			st->unit_free[u] -= got;
			st->type_avail[(g - st->groups) / (st->p->nnodes + 1)] -= got;
			g->avail -= got;
			g->free_total -= got;
			amount -= got;
		}
		if (st->unit_free[u] == 0)
			g->cursor++;
	}
	return 0;
}

/* Gives job jobno its units on node: the node's own first, then the pools; 0 or -1. */
static int
place(State *st, int jobno, int node)
{
	const AllocJob *job = &st->p->jobs[jobno];
	AllocResult *r = &st->out->results[jobno];

	r->node = node;
	r->first_take = st->out->ntakes;
	for (int i = 0; i < job->nneeds; i++)
	{
		Group	   *own = group_of(st, st->need_type[i], node);
		int64_t		from_own = own->avail < job->needs[i].count ? own->avail : job->needs[i].count;

		if (take(st, own, from_own) < 0 ||
			take(st, group_of(st, st->need_type[i], -1), job->needs[i].count - from_own) < 0)
			return -1;
	}
	r->ntakes = st->out->ntakes - r->first_take;
	st->out->placed++;
	return 0;
}

/* Explains why job jobno, which could run on an idle cluster, waits now. */
static void
explain_wait(const State *st, int jobno, int nc)
{
	const AllocJob *job = &st->p->jobs[jobno];
	AllocResult *r = &st->out->results[jobno];

	for (int k = 0; k < nc; k++)
	{
		int			n = st->cand[k];

		if (!fits(st, job, n, 0))
			continue;
		/* Enough is free here, but an earlier waiting job reserved it. */
		for (int i = 0; i < job->nneeds; i++)
		{
			int			t = st->need_type[i];
			int			who = group_of(st, t, n)->reserver;

			if (node_sum(st, t, n, 1) >= job->needs[i].count)
				continue;
			if (who < 0)
				who = group_of(st, t, -1)->reserver;
			if (who >= 0 && st->p->jobs[who].joblist_id != job->joblist_id)
				set_reason(r, "earlier joblist %lld holds the queue",
						   (long long) st->p->jobs[who].joblist_id);
			else if (who >= 0)
				set_reason(r, "earlier job %lld holds the queue",
						   (long long) st->p->jobs[who].job_id);
			else
				continue;
			return;
		}
	}
	for (int i = 0; i < job->nneeds; i++)
	{
		int64_t		most = 0;

		for (int k = 0; k < nc; k++)
		{
			int64_t		f = node_sum(st, st->need_type[i], st->cand[k], 0);

			most = f > most ? f : most;
		}
		if (most < job->needs[i].count || i == job->nneeds - 1)
		{
			set_reason(r, "not enough %s free (needs %lld)", job->needs[i].type,
					   (long long) job->needs[i].count);
			return;
		}
	}
}

/* Reserves, for waiting job jobno, every group it could draw from. */
static void
reserve(State *st, int jobno, int nc)
{
	const AllocJob *job = &st->p->jobs[jobno];

	for (int i = 0; i < job->nneeds; i++)
	{
		int			t = st->need_type[i];

		if (st->type_avail[t] == 0)
			continue;			/* nothing of this type left to hold back */
		for (int k = -1; k < nc; k++)
		{
			Group	   *g = group_of(st, t, k < 0 ? -1 : st->cand[k]);

			if (g->reserver < 0)
				g->reserver = jobno;
			st->type_avail[t] -= g->avail;
			g->avail = 0;
		}
	}
}

int
alloc_run(const AllocProblem *p, AllocOutput *out)
{
	State		st;
	int			maxneeds = 1;
	int			rc = -1;

	memset(&st, 0, sizeof(st));
	memset(out, 0, sizeof(*out));
	st.p = p;
	st.out = out;
	for (int j = 0; j < p->njobs; j++)
		maxneeds = p->jobs[j].nneeds > maxneeds ? p->jobs[j].nneeds : maxneeds;
	out->results = calloc(p->njobs + 1, sizeof(AllocResult));
	st.need_type = malloc(sizeof(int) * maxneeds);
	if (!out->results || !st.need_type || build_index(&st) < 0)
		goto done;

	for (int j = 0; j < p->njobs; j++)
	{
		const AllocJob *job = &p->jobs[j];
		AllocResult *r = &out->results[j];
		int			nc = find_candidates(&st, job);
		int			node;

		if (nc < 0)
			goto done;
		r->node = -1;
		for (int i = 0; i < job->nneeds; i++)
			st.need_type[i] = type_index(&st, job->needs[i].type);
		if (nc == 0)
		{
			if (job->nconstraints > 0)
				explain_constraints(&st, job, r);
			else
				set_reason(r, "no node is online");
			continue;
		}
		if (explain_capacity(&st, job, nc, r))
			continue;			/* cannot run here at all: holds nothing back */
		node = best_node(&st, job, nc);
		if (node >= 0)
		{
			if (place(&st, j, node) < 0)
				goto done;
			continue;
		}
		explain_wait(&st, j, nc);
		reserve(&st, j, nc);
	}
	rc = 0;
done:
	free(st.types);
	free(st.groups);
	free(st.type_avail);
	free(st.order);
	free(st.unit_free);
	free(st.label_start);
	free(st.node_labels);
	for (int i = 0; i < st.ncached; i++)
	{
		free(st.cache[i].nodes);
		free(st.cache[i].maxcap);
	}
	free(st.need_type);
	if (rc < 0)
		alloc_output_free(out);
	return rc;
}

void
alloc_output_free(AllocOutput *out)
{
	free(out->results);
	free(out->takes);
	memset(out, 0, sizeof(*out));
}
