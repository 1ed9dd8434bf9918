/*
 * alloc.c: places pending jobs on nodes, Tetris-style, in strict FIFO order.
 *
 * Units are grouped by (type, node) with the cluster-wide pool of a type as one
 * more "node" (alloc_int.h).  Each group keeps running sums (free units, capacity)
 * and a cursor to its first unit with something left, so checking whether a node
 * can take a job costs O(needs) and taking units never rescans: within one cycle
 * free units only ever decrease.
 *
 * FIFO without overtaking, with backfill: a job is placed now only where what it
 * takes stays free for its whole time limit (forever without one) after every
 * earlier job's reservation; a job that cannot start gets a reservation at its
 * earliest start (alloc_backfill.c), so no later job ever delays it.  Among the
 * nodes that fit, the best fit wins (fewest free units of the needed types left
 * over), ties going to the node listed first.
 *
 * Hostile input: amounts come from agents, so any int64_t may arrive (registration
 * caps them, docs/security.md, but this file does not count on it).  A group's sums
 * saturate at INT64_MAX, which keeps every comparison with a need (at most INT64_MAX)
 * right; once saturated, taking units makes a sum count less than is free, never
 * more, so a job may wait on such a group but never gets units that are not there.
 * The cluster-wide sums per type are exact 128-bit Sums: an undercount there would
 * let one huge node make every other node look empty.  Best-fit leftovers and the
 * free amounts of the future are Sums too.  Only the types some job needs get
 * groups, so a node offering thousands of odd types costs nothing.
 */
#include "alloc_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	build_index(State *st);
static int	explain_capacity(const State *st, const AllocJob *job, int nc, AllocResult *r);
static int64_t sat_add(int64_t a, int64_t b);
static int	take(State *st, Group *g, int64_t amount);
static int	place(State *st, int jobno, int node);
static int	look_at(State *st, int j);
static void free_state(State *st);

/* Returns a + b, or INT64_MAX (INT64_MIN) when the sum would overflow. */
static int64_t
sat_add(int64_t a, int64_t b)
{
	int64_t		r;

	if (__builtin_add_overflow(a, b, &r))
		return a > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/*
 * Builds types (those the jobs need and the units offer, alloc_types.c), groups,
 * the grouped unit order and the per-node labels (alloc_labels.c); units of types
 * no job needs join no group.  0 or -1.
 */
static int
build_index(State *st)
{
	const AllocProblem *p = st->p;
	size_t		ngroups,
				nodes1 = (size_t) p->nnodes + 1;
	size_t	   *key;
	int		   *fill;

	key = malloc(sizeof(size_t) * (p->nunits + 1));
	st->order = malloc(sizeof(int) * (p->nunits + 1));
	st->unit_free = malloc(sizeof(int64_t) * (p->nunits + 1));
	st->unit_type = malloc(sizeof(int) * (p->nunits + 1));
	if (!key || !st->order || !st->unit_free || !st->unit_type ||
		types_build(st) < 0)
	{
		free(key);
		return -1;
	}
	ngroups = (size_t) st->ntypes * nodes1;
	for (int u = 0; u < p->nunits; u++)
	{
		int			t = st->unit_type[u];

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
		g->free = sat_add(g->free, p->units[u].free);
		g->capacity = sat_add(g->capacity, p->units[u].capacity);
		if (key[u] < ngroups)
			st->type_avail[key[u] / nodes1] += p->units[u].free;
	}
	for (size_t g = 0, pos = 0; g <= ngroups; g++)
	{
		st->groups[g].start = st->groups[g].cursor = (int) pos;
		st->groups[g].closed_by = -1;
		pos += st->groups[g].count;
	}
	for (int u = 0; u < p->nunits; u++)
		st->order[st->groups[key[u]].start + fill[key[u]]++] = u;
	free(key);
	free(fill);

	if (labels_build(st) < 0 || bf_load_holds(st) < 0 || idx_build(st) < 0)
		return -1;
	return bf_load_reservations(st);
}

/* Formats a reason into r. */
void
alloc_reason(AllocResult *r, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
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
		int64_t		offered = t < 0 ? 0 : sat_add(nc == 0 ? 0 : st->cand_entry->maxcap[t],
												  alloc_group(st, t, -1)->capacity);

		if (offered == 0)
		{
			alloc_reason(r, "no online node offers %s", job->needs[i].type);
			return 1;
		}
		if (offered < job->needs[i].count)
		{
			alloc_reason(r, "no online node has %lld %s",
						 (long long) job->needs[i].count, job->needs[i].type);
			return 1;
		}
	}
	return 0;
}

/* Makes *array (of *cap elements of size) hold at least need, doubling it; 0 or -1. */
int
alloc_grow(void **array, int *cap, size_t size, int need)
{
	int			n = *cap ? *cap : 8;
	void	   *a;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if ((a = realloc(*array, size * n)) == NULL)
		return -1;
	*array = a;
	*cap = n;
	return 0;
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
			size_t		gi = (size_t) (g - st->groups),
						slot = gi % (st->p->nnodes + 1);

			if (alloc_grow((void **) &out->takes, &st->takes_cap, sizeof(AllocTake),
						   out->ntakes + 1) < 0)
				return -1;
			out->takes[out->ntakes].unit = u;
			out->takes[out->ntakes].amount = got;
			out->ntakes++;
			st->unit_free[u] -= got;
			st->type_avail[gi / (st->p->nnodes + 1)] -= got;
			idx_moved(st, (int) (gi / (st->p->nnodes + 1)),
					  slot == (size_t) st->p->nnodes ? -1 : (int) slot, g->free, g->free - got, 1);
			g->free -= got;
			amount -= got;
		}
		if (st->unit_free[u] == 0)
			g->cursor++;
	}
	return 0;
}

/*
 * Gives job jobno its units on node: the node's own first (what stays free for the
 * job's whole limit), then the pools, and notes when it lets go of them; 0 or -1.
 */
static int
place(State *st, int jobno, int node)
{
	const AllocJob *job = &st->p->jobs[jobno];
	AllocResult *r = &st->out->results[jobno];
	int64_t		now = st->p->now,
				end = bf_window_end(now, job->limit),
				release = end == ALLOC_NEVER ? ALLOC_NEVER : end + 1;

	r->node = node;
	r->first_take = st->out->ntakes;
	for (int i = 0; i < job->nneeds; i++)
	{
		Group	   *own = alloc_group(st, st->need_type[i], node);
		Group	   *pool = alloc_group(st, st->need_type[i], -1);
		Sum			spare = bf_free_during(st, own, now, end);
		int64_t		count = job->needs[i].count;
		int64_t		from_own = spare < count ? (spare > 0 ? (int64_t) spare : 0) : count;

		if (take(st, own, from_own) < 0 || take(st, pool, count - from_own) < 0 ||
			(from_own > 0 && bf_add_event(own, release, from_own, -1) < 0) ||
			(count > from_own && bf_add_event(pool, release, count - from_own, -1) < 0))
			return -1;
	}
	r->ntakes = st->out->ntakes - r->first_take;
	st->out->placed++;
	return 0;
}

/* Frees what alloc_run allocated in st. */
static void
free_state(State *st)
{
	size_t		ngroups = (size_t) st->ntypes * (st->p->nnodes + 1) + 1;

	for (size_t g = 0; st->groups && g < ngroups; g++)
		free(st->groups[g].ev);
	free(st->types);
	types_free(st);
	free(st->groups);
	free(st->type_avail);
	free(st->order);
	free(st->unit_free);
	free(st->unit_type);
	free(st->label_start);
	free(st->node_labels);
	free(st->sorted);
	for (int i = 0; i < st->ncached; i++)
	{
		free(st->cache[i].nodes);
		free(st->cache[i].maxcap);
		free(st->cache[i].closed);
		free(st->cache[i].member);
		free(st->cache[i].hist);
		free(st->cache[i].hist_all);
	}
	free(st->bits);
	free(st->node_reserved);
	free(st->reserved_nodes);
	free(st->need_type);
	free(st->need_short);
	free(st->sweep_at);
	free(st->sweep_free);
	free(st->pool_first);
	free(st->times);
}

/* Places the jobs of p in order; returns 0, or -1 when memory runs out. */
int
alloc_run(const AllocProblem *p, AllocOutput *out)
{
	AllocKeep	none = {0, 0};
	int			rc;

	memset(out, 0, sizeof(*out));
	if ((rc = alloc_solve(p, out, &none)) < 0)
		alloc_output_free(out);
	return rc;
}

/*
 * Looks at job j: places it, or gives it a reason and, while reservations are
 * left, a reservation (or closes what it is short of); 0 or -1 (memory).
 */
static int
look_at(State *st, int j)
{
	const AllocProblem *p = st->p;
	const AllocJob *job = &p->jobs[j];
	AllocResult *r = &st->out->results[j];
	int			nc = labels_candidates(st, job);
	int			node;

	if (nc < 0)
		return -1;
	r->node = r->reserved_node = -1;
	r->first_take = r->ntakes = 0;
	r->expected_start = ALLOC_NEVER;
	r->reason[0] = '\0';
	st->current = j;
	bf_unbook(st, j);			/* its own promise must not stand in its way */
	/* Nor, once its promised time has come, the promises of later jobs. */
	st->ignore_after = job->reserved && job->reserved_start <= p->now ? j : INT_MAX;
	for (int i = 0; i < job->nneeds; i++)
		st->need_type[i] = alloc_type_index(st, job->needs[i].type);
	if (nc == 0)
	{
		if (job->nconstraints > 0)
			labels_explain(st, job, r);
		else
			alloc_reason(r, "no node is online");
		return 0;
	}
	if (explain_capacity(st, job, nc, r))
		return 0;				/* cannot run here at all: holds nothing back */
	node = idx_best_node(st, job, nc);
	if (node >= 0)
		return place(st, j, node);
	if (st->reservations_left <= 0)
	{
		bf_behind(st, j);		/* past the reservation depth: a reason that stays */
		bf_close(st, j, nc);
		return 0;
	}
	bf_explain(st, j, nc);
	switch (bf_reserve(st, j, nc))
	{
		case -1:
			return -1;
		case 0:
			bf_close(st, j, nc);
			break;
	}
	return 0;
}

/*
 * alloc_run into the results and takes out already has (keep says how big they
 * are, and is updated), growing them as needed: a caller that runs every cycle
 * (alloc_session.c) writes the results into the same pages instead of having
 * them mapped, faulted in and unmapped again.  0 or -1 (memory; out then still
 * holds what is to be freed).
 *
 * Past the reservation depth the pass looks at max_job_test more jobs that
 * wait, then stops: a deep queue costs a cycle what its head costs, and the
 * jobs not looked at keep what they were told before.
 */
int
alloc_solve(const AllocProblem *p, AllocOutput *out, AllocKeep *keep)
{
	State		st;
	int			maxneeds = 1,
				waited = 0,
				job_test = p->max_job_test > 0 ? p->max_job_test : ALLOC_DEFAULT_JOB_TEST;
	int			rc = -1;

	memset(&st, 0, sizeof(st));
	out->ntakes = out->placed = out->looked = 0;
	st.takes_cap = keep->takes_cap;
	st.p = p;
	st.out = out;
	st.reservations_left = p->max_reservations > 0 ? p->max_reservations :
		ALLOC_DEFAULT_RESERVATIONS;
	st.ignore_after = INT_MAX;
	st.current = INT_MAX;
	for (int j = 0; j < p->njobs; j++)
		maxneeds = p->jobs[j].nneeds > maxneeds ? p->jobs[j].nneeds : maxneeds;
	st.need_type = malloc(sizeof(int) * maxneeds);
	st.need_short = malloc(maxneeds);
	st.sweep_at = malloc(sizeof(int) * 2 * maxneeds);
	st.sweep_free = malloc(sizeof(Sum) * 2 * maxneeds);
	st.pool_first = malloc(sizeof(int64_t) * maxneeds);
	if (alloc_grow((void **) &out->results, &keep->results_cap, sizeof(AllocResult),
				   p->njobs + 1) < 0 ||
		!st.need_type || !st.need_short || !st.sweep_at || !st.sweep_free || !st.pool_first ||
		build_index(&st) < 0)
		goto done;

	for (int j = 0; j < p->njobs; j++)
	{
		int			past = st.reservations_left <= 0;

		if (past && waited >= job_test)
			break;
		if (look_at(&st, j) < 0)
			goto done;
		out->looked = j + 1;
		waited += past && out->results[j].node < 0;
	}
	rc = 0;
done:
	keep->takes_cap = st.takes_cap;
	free_state(&st);
	return rc;
}

/* Frees what alloc_run allocated in out. */
void
alloc_output_free(AllocOutput *out)
{
	free(out->results);
	free(out->takes);
	memset(out, 0, sizeof(*out));
}
