/*
 * alloc_backfill.c: the allocator's view of the future, for backfill without
 * overtaking (conservative backfill, as Slurm and Maui call it).
 *
 * Every group (alloc_int.h) carries its events: running jobs let go of their units
 * at start + time limit (a job without a limit, or busy units nobody accounts for,
 * at ALLOC_NEVER), jobs placed in this cycle likewise, and each reservation takes
 * its units from its start to its end.  A job may start at time t on a node when,
 * for every need, the least amount free on the node's group plus the least amount
 * free in the pool over [t, t + limit) covers it; without a limit the window never
 * ends.  Because the pass goes in FIFO order and a job is placed (now) or reserved
 * (later) only where that holds after every earlier job's reservation, no later job
 * can take what an earlier one was promised: no later job ever delays an earlier
 * one.  A job whose start is not known (it waits for jobs without a limit) is
 * reserved from now on, so nothing at all may use its units, with or without a
 * limit.
 *
 * A reservation is a promise: the next cycle first books every waiting job's last
 * reservation again, and each job, when its turn comes, gives its own back and
 * takes the earliest start it can find, which is never later than the one it gave
 * back (that one is still free: everything before it in the queue moved up, if at
 * all, around it).  Without that, an earlier job moving up could land on a later
 * job's promised units while a job backfilled meanwhile sat on its own.
 *
 * Reservations cost a scan of the candidate nodes each, so only the first
 * max_reservations waiting jobs get one; what the others hold back, and the
 * reasons of waiting jobs, are alloc_wait.c's.
 */
#include "alloc_int.h"

#include <stdlib.h>
#include <string.h>

static Group *unit_group(const State *st, int u);
static int	cmp_time(const void *a, const void *b);
static int64_t pool_floor(const State *st, const AllocJob *job);
static int64_t first_release(const State *st, const Group *g, int64_t first);
static int	earliest_on(State *st, const AllocJob *job, int node, int64_t floor, int found,
						int64_t *best);
static int	book(State *st, int jobno, int node, int64_t start);
static void drop_events(Group *g, int jobno);

/* Returns the group unit u belongs to (its type must be needed). */
static Group *
unit_group(const State *st, int u)
{
	return alloc_group(st, st->unit_type[u], st->p->units[u].node);
}

/*
 * Adds the running jobs' releases: each hold's amount (at most what its unit has
 * busy) at its end, never before now + 1; busy amounts no hold explains at
 * ALLOC_NEVER.  0 or -1 (memory).
 */
int
bf_load_holds(State *st)
{
	const AllocProblem *p = st->p;
	Sum		   *busy = malloc(sizeof(Sum) * (p->nunits + 1));
	int			rc = 0;

	if (!busy)
		return -1;
	for (int u = 0; u < p->nunits; u++)
		busy[u] = (Sum) p->units[u].capacity - p->units[u].free;
	for (int h = 0; h < p->nholds && rc == 0; h++)
	{
		const AllocHold *hold = &p->holds[h];
		int			u = hold->unit;
		Sum			give;

		if (u < 0 || u >= p->nunits || st->unit_type[u] < 0 || hold->amount <= 0)
			continue;
		give = busy[u] < hold->amount ? busy[u] : hold->amount;
		if (give <= 0)
			continue;
		busy[u] -= give;
		rc = bf_add_event(unit_group(st, u), hold->end <= p->now ? p->now + 1 : hold->end,
						  (int64_t) give, -1);
	}
	for (int u = 0; u < p->nunits && rc == 0; u++)
		if (st->unit_type[u] >= 0 && busy[u] > 0)
			rc = bf_add_event(unit_group(st, u), ALLOC_NEVER,
							  busy[u] > INT64_MAX ? INT64_MAX : (int64_t) busy[u], -1);
	free(busy);
	return rc;
}

/*
 * Inserts (t, delta, job) into g's events after those at the same time; a release
 * (job -1) at the time of the last release there is merged into it.  0 or -1.
 */
int
bf_add_event(Group *g, int64_t t, int64_t delta, int job)
{
	int			i = g->nev;

	if (delta == 0)
		return 0;
	while (i > 0 && g->ev[i - 1].t > t)
		i--;
	if (i > 0 && job < 0 && delta > 0 && g->ev[i - 1].t == t && g->ev[i - 1].job < 0 &&
		g->ev[i - 1].delta > 0 &&
		!__builtin_add_overflow(g->ev[i - 1].delta, delta, &g->ev[i - 1].delta))
		return 0;
	if (alloc_grow((void **) &g->ev, &g->evcap, sizeof(Event), g->nev + 1) < 0)
		return -1;
	memmove(&g->ev[i + 1], &g->ev[i], sizeof(Event) * (g->nev - i));
	g->ev[i] = (Event) {t, delta, job};
	g->nev++;
	return 0;
}

/* Returns the last second a job started at start holds its units, or ALLOC_NEVER. */
int64_t
bf_window_end(int64_t start, int64_t limit)
{
	if (limit <= 0 || start == ALLOC_NEVER || start > ALLOC_NEVER - limit)
		return ALLOC_NEVER;
	return start + limit - 1;
}

/* Returns the least amount of g free at any time in [t1, t2] (0 once closed). */
Sum
bf_free_during(const State *st, const Group *g, int64_t t1, int64_t t2)
{
	Sum			v = g->free,
				least;
	int			i = 0;

	if (g->closed_by >= 0)
		return 0;
	for (; i < g->nev && g->ev[i].t <= t1; i++)
		v += alloc_counts(st, &g->ev[i]) ? g->ev[i].delta : 0;
	least = v;
	while (i < g->nev && g->ev[i].t <= t2)
	{
		int64_t		t = g->ev[i].t;

		for (; i < g->nev && g->ev[i].t == t; i++)
			v += alloc_counts(st, &g->ev[i]) ? g->ev[i].delta : 0;
		least = v < least ? v : least;
	}
	return least;
}

/* Returns bf_free_during(st, g, t1, t2), or 0 when that is negative. */
Sum
bf_spare(const State *st, const Group *g, int64_t t1, int64_t t2)
{
	Sum			s = bf_free_during(st, g, t1, t2);

	return s > 0 ? s : 0;
}

/* Returns 1 when job, started at t on node, has every need covered for its whole limit. */
int
bf_fits_at(const State *st, const AllocJob *job, int node, int64_t t)
{
	int64_t		end = bf_window_end(t, job->limit);

	for (int i = 0; i < job->nneeds; i++)
	{
		int			type = st->need_type[i];

		if (bf_spare(st, alloc_group(st, type, node), t, end) +
			bf_spare(st, alloc_group(st, type, -1), t, end) < job->needs[i].count)
			return 0;
	}
	return 1;
}

/* qsort comparator of int64_t times. */
static int
cmp_time(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a,
				y = *(const int64_t *) b;

	return x < y ? -1 : x > y;
}

/*
 * Returns the earliest time from which the pools could cover every need of job for
 * its whole limit, with the most one candidate node offers itself: no node can
 * start it sooner.
 */
static int64_t
pool_floor(const State *st, const AllocJob *job)
{
	int64_t		floor = st->p->now;

	for (int i = 0; i < job->nneeds; i++)
	{
		const Group *pool = alloc_group(st, st->need_type[i], -1);
		Sum			want = (Sum) job->needs[i].count - st->cand_entry->maxcap[st->need_type[i]];
		int64_t		at = floor;
		int			e = 0;

		if (want <= 0)
			continue;
		while (bf_spare(st, pool, at, bf_window_end(at, job->limit)) < want)
		{
			/* the next time something comes back to the pool */
			for (; e < pool->nev && (pool->ev[e].t <= at || pool->ev[e].delta <= 0 ||
									 !alloc_counts(st, &pool->ev[e])); e++)
				;
			if (e == pool->nev)
				return ALLOC_NEVER;
			at = pool->ev[e].t;
		}
		floor = at;
	}
	return floor;
}

/* Returns the time of g's first release after now that counts, if before first; else first. */
static int64_t
first_release(const State *st, const Group *g, int64_t first)
{
	for (int e = 0; e < g->nev && g->ev[e].t < first; e++)
		if (g->ev[e].delta > 0 && g->ev[e].t > st->p->now && alloc_counts(st, &g->ev[e]))
			return g->ev[e].t;
	return first;
}

/*
 * Sets *best to the earliest time after now at which job fits on node, if earlier
 * than *best (or at all, when found is 0); returns 1 when it did, 0 when not, -1
 * when memory runs out.  A job only fits when something comes free, so only the
 * times of releases need checking; a sweep over them keeps what is free at each,
 * and only a time at which every need is covered gets the whole-window check.
 */
static int
earliest_on(State *st, const AllocJob *job, int node, int64_t floor, int found, int64_t *best)
{
	int			nt = 0;
	int64_t		soonest = floor;

	/*
	 * The job cannot start here before every need not covered now has had
	 * something come free: when that is no sooner than *best, skip the node.
	 */
	for (int i = 0; i < job->nneeds && found; i++)
	{
		const Group *own = alloc_group(st, st->need_type[i], node);
		const Group *pool = alloc_group(st, st->need_type[i], -1);
		int64_t		first = ALLOC_NEVER;

		if ((own->closed_by < 0 ? (Sum) own->free : 0) +
			(pool->closed_by < 0 ? (Sum) pool->free : 0) >= job->needs[i].count)
			continue;
		first = first_release(st, own, st->pool_first[i]);
		soonest = first > soonest ? first : soonest;
	}
	if (found && soonest >= *best)
		return 0;

	for (int i = 0; i < job->nneeds; i++)
		for (int side = 0; side < 2; side++)
		{
			const Group *g = alloc_group(st, st->need_type[i], side ? -1 : node);

			if (alloc_grow((void **) &st->times, &st->times_cap, sizeof(int64_t), nt + g->nev) < 0)
				return -1;
			for (int e = 0; e < g->nev; e++)
				if (g->ev[e].delta > 0 && g->ev[e].t > st->p->now &&
					(!found || g->ev[e].t < *best) && alloc_counts(st, &g->ev[e]))
					st->times[nt++] = g->ev[e].t;
		}
	if (nt > 1)
		qsort(st->times, nt, sizeof(int64_t), cmp_time);
	for (int i = 0; i < 2 * job->nneeds; i++)
	{
		const Group *g = alloc_group(st, st->need_type[i / 2], i % 2 ? -1 : node);

		st->sweep_at[i] = 0;
		st->sweep_free[i] = g->free;
	}
	for (int k = 0; k < nt; k++)
	{
		int64_t		t = st->times[k];
		int			covered = 1;

		if (k > 0 && t == st->times[k - 1])
			continue;
		for (int i = 0; i < 2 * job->nneeds; i++)
		{
			const Group *g = alloc_group(st, st->need_type[i / 2], i % 2 ? -1 : node);

			for (; st->sweep_at[i] < g->nev && g->ev[st->sweep_at[i]].t <= t; st->sweep_at[i]++)
				if (alloc_counts(st, &g->ev[st->sweep_at[i]]))
					st->sweep_free[i] += g->ev[st->sweep_at[i]].delta;
		}
		for (int i = 0; i < job->nneeds && covered; i++)
		{
			Sum			own = st->sweep_free[2 * i],
						pool = st->sweep_free[2 * i + 1];

			covered = (own > 0 ? own : 0) + (pool > 0 ? pool : 0) >= job->needs[i].count;
		}
		if (covered && bf_fits_at(st, job, node, t))
		{
			*best = t;
			return 1;
		}
	}
	if (!found && bf_fits_at(st, job, node, ALLOC_NEVER))
	{
		*best = ALLOC_NEVER;
		return 1;
	}
	return 0;
}

/*
 * Books job jobno's units on node from start to its end (a start that is not known
 * from now on): the node's own units as far as they are spare then, the rest from
 * the pools.  0 or -1 (memory).
 */
static int
book(State *st, int jobno, int node, int64_t start)
{
	const AllocJob *job = &st->p->jobs[jobno];
	int64_t		at = start < st->p->now ? st->p->now : start,
				end = bf_window_end(at, job->limit),
				from = start == ALLOC_NEVER ? st->p->now : at,
				release = end == ALLOC_NEVER ? ALLOC_NEVER : end + 1;

	for (int i = 0; i < job->nneeds; i++)
	{
		int			t = alloc_type_index(st, job->needs[i].type);
		Group	   *own,
				   *pool;
		Sum			s;
		int64_t		count = job->needs[i].count,
					from_own;

		if (t < 0)
			continue;			/* nobody offers it now: nothing to hold */
		own = alloc_group(st, t, node);
		pool = alloc_group(st, t, -1);
		s = bf_spare(st, own, at, end);
		from_own = s < count ? (int64_t) s : count;
		if ((from_own > 0 && idx_mark_reserved(st, node) < 0) ||
			bf_add_event(own, from, -from_own, jobno) < 0 ||
			bf_add_event(own, release, from_own, jobno) < 0 ||
			bf_add_event(pool, from, -(count - from_own), jobno) < 0 ||
			bf_add_event(pool, release, count - from_own, jobno) < 0)
			return -1;
	}
	return 0;
}

/* Books again the reservation every job had from the last cycle; 0 or -1. */
int
bf_load_reservations(State *st)
{
	for (int j = 0; j < st->p->njobs; j++)
	{
		const AllocJob *job = &st->p->jobs[j];

		if (job->reserved && job->reserved_node >= 0 && job->reserved_node < st->p->nnodes &&
			book(st, j, job->reserved_node, job->reserved_start) < 0)
			return -1;
	}
	return 0;
}

/* Removes job jobno's events from g. */
static void
drop_events(Group *g, int jobno)
{
	int			kept = 0;

	for (int e = 0; e < g->nev; e++)
		if (g->ev[e].job != jobno)
			g->ev[kept++] = g->ev[e];
	g->nev = kept;
}

/* Gives back the reservation job jobno had from the last cycle, if any. */
void
bf_unbook(State *st, int jobno)
{
	const AllocJob *job = &st->p->jobs[jobno];

	if (!job->reserved || job->reserved_node < 0 || job->reserved_node >= st->p->nnodes)
		return;
	for (int i = 0; i < job->nneeds; i++)
	{
		int			t = alloc_type_index(st, job->needs[i].type);

		if (t < 0)
			continue;
		drop_events(alloc_group(st, t, job->reserved_node), jobno);
		drop_events(alloc_group(st, t, -1), jobno);
	}
}

/*
 * Reserves, for waiting job jobno, the units it will take at its earliest start on
 * the candidate node where that is soonest (ties to the node listed first); a start
 * that is not known reserves them from now on.  Returns 1 when it did, 0 when no
 * reservation is left or the job fits nowhere even at ALLOC_NEVER, -1 (memory).
 *
 * A job whose last reservation no longer holds (a running job overran the end it
 * was counted to have) searches again as if no later job had a reservation: later
 * promises must not push an earlier job back behind them.
 */
int
bf_reserve(State *st, int jobno, int nc)
{
	const AllocJob *job = &st->p->jobs[jobno];
	int			node = -1;
	int64_t		start = 0;

	if (st->reservations_left <= 0)
		return 0;
	for (;;)
	{
		int64_t		floor = pool_floor(st, job);

		/* The pools are the same for every node: their first releases, once. */
		for (int i = 0; i < job->nneeds; i++)
			st->pool_first[i] = first_release(st, alloc_group(st, st->need_type[i], -1),
											  ALLOC_NEVER);

		for (int k = 0; k < nc; k++)
		{
			int			rc = earliest_on(st, job, st->cand[k], floor, node >= 0, &start);

			if (rc < 0)
				return -1;
			if (rc > 0)
				node = st->cand[k];
		}
		if (!job->reserved || st->ignore_after == jobno ||
			(node >= 0 && start <= job->reserved_start))
			break;
		st->ignore_after = jobno;	/* the promise broke: search again, earlier first */
		node = -1;
	}
	if (node < 0)
		return 0;
	if (book(st, jobno, node, start) < 0)
		return -1;
	st->out->results[jobno].expected_start = start;
	st->out->results[jobno].reserved_node = node;
	st->reservations_left--;
	return 1;
}
