/*
 * alloc_sim.c: runs a synthetic trace through the allocator in simulated time.
 *
 * A cluster of identical nodes (cpus and gpus) with a scarce cluster-wide licence
 * pool; jobs of mixed sizes and time limits, each ending somewhere between 20 % and
 * 100 % of its limit, half queued at time 0 and the rest arriving every 120 / nodes
 * seconds (20 s for 6 nodes), which keeps the cluster busy.  At
 * every event (a job ends, a job arrives) one cycle runs: alloc_run() over the whole
 * queue, with every running job's units held until its start + limit.
 *
 * The promise check: a waiting job's expected start is a promise.  When the next
 * cycle gives it a later start, the promise is broken; earlier jobs may do that
 * (they move up as jobs end early), a later one never may.  So a broken promise is
 * replayed without the later jobs (queued or running): if the job would then have
 * kept it, a later job delayed an earlier one, and that is counted in delays.
 *
 * The greedy baseline places, at every event, whatever fits now in queue order,
 * waiting for nobody: the best utilisation FIFO could hope for, and no FIFO at all.
 */
#include "alloc_sim.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct SimJob
{
	int64_t		submit;
	int64_t		limit;
	int64_t		runtime;
	int			cpu,
				gpu,
				lic;
	int			state;			/* 0 not yet submitted, 1 waiting, 2 running, 3 done */
	int64_t		start;
	int64_t		promised;		/* expected start given last cycle, or ALLOC_NEVER */
	int			promised_node;	/* and where, or -1 when it has no reservation */
	int			nheld;			/* units held while running: held[j * per_job ..] */
} SimJob;

typedef struct Sim
{
	const SimConfig *c;
	SimJob	   *jobs;
	int			nunits;
	AllocUnit  *units;			/* the problem's units (free set at each build) */
	int64_t    *ufree;			/* what is really free */
	const char **names;
	int		   *held;
	int			per_job;
	AllocJob   *q;				/* the problem's queue */
	int		   *qidx;			/* the job behind each queue entry */
	AllocNeed  *needs;			/* 3 per job */
	AllocHold  *holds;
} Sim;

static void make_trace(Sim *s);
static void build(Sim *s, int64_t now, int upto, AllocProblem *p);
static void hold(Sim *s, int j, int unit, int64_t now);
static int	grab(Sim *s, int j, int first, int count, int want, int64_t now);
static void greedy(Sim *s, int64_t now);
static int64_t got_start(const AllocResult *r, int64_t now);
static int64_t replay_without_later(Sim *s, int64_t now, int j);
static int	cycle(Sim *s, int64_t now, SimResult *res);
static int64_t next_event(const Sim *s);

/* Fills s->jobs with the trace of s->c->seed. */
static void
make_trace(Sim *s)
{
	const SimConfig *c = s->c;
	unsigned int seed = c->seed;
	int64_t		gap = c->nodes < 120 ? 120 / c->nodes : 1;

	for (int i = 0; i < c->jobs; i++)
	{
		SimJob	   *j = &s->jobs[i];
		int			kind = rand_r(&seed) % 10;

		memset(j, 0, sizeof(*j));
		j->submit = i < c->jobs / 2 ? 0 : (int64_t) (i - c->jobs / 2) * gap;
		j->cpu = kind < 6 ? 1 + rand_r(&seed) % 2 :
			kind < 9 ? 1 + rand_r(&seed) % (c->cpus / 2 > 0 ? c->cpus / 2 : 1) : c->cpus;
		j->gpu = c->gpus > 0 && rand_r(&seed) % 5 == 0;
		j->lic = c->licences > 0 && rand_r(&seed) % 10 == 0;
		j->limit = 60 * (1 + rand_r(&seed) % 60);
		j->runtime = j->limit * (20 + rand_r(&seed) % 81) / 100;
		j->promised = ALLOC_NEVER;
		j->promised_node = -1;
	}
}

/*
 * Builds the cycle's problem into p: every running job's holds and the waiting
 * queue; with upto >= 0, as if no job after upto existed (their units free).
 */
static void
build(Sim *s, int64_t now, int upto, AllocProblem *p)
{
	int			nq = 0,
				nh = 0;

	for (int u = 0; u < s->nunits; u++)
		s->units[u].free = s->ufree[u];
	for (int i = 0; i < s->c->jobs; i++)
	{
		SimJob	   *j = &s->jobs[i];
		AllocNeed  *n = &s->needs[3 * i];
		int			nn = 0;

		if (upto >= 0 && i > upto)
		{
			for (int k = 0; j->state == 2 && k < j->nheld; k++)
				s->units[s->held[i * s->per_job + k]].free = 1;
			continue;
		}
		if (j->state == 2)
			for (int k = 0; k < j->nheld; k++)
				s->holds[nh++] = (AllocHold) {s->held[i * s->per_job + k], 1, j->start + j->limit};
		if (j->state != 1)
			continue;
		n[nn++] = (AllocNeed) {"cpu", j->cpu};
		if (j->gpu)
			n[nn++] = (AllocNeed) {"gpu", j->gpu};
		if (j->lic)
			n[nn++] = (AllocNeed) {"lic", j->lic};
		s->q[nq] = (AllocJob) {.job_id = i + 1, .joblist_id = i + 1, .needs = n, .nneeds = nn,
			.limit = j->limit, .reserved = j->promised_node >= 0,
		.reserved_node = j->promised_node, .reserved_start = j->promised};
		s->qidx[nq++] = i;
	}
	*p = (AllocProblem) {.nodes = s->names, .nnodes = s->c->nodes, .units = s->units,
		.nunits = s->nunits, .jobs = s->q, .njobs = nq, .now = now, .holds = s->holds,
	.nholds = nh, .max_reservations = s->c->max_reservations, .max_job_test = s->c->max_job_test};
}

/* Gives unit to job j, started at now. */
static void
hold(Sim *s, int j, int unit, int64_t now)
{
	s->held[j * s->per_job + s->jobs[j].nheld++] = unit;
	s->ufree[unit] = 0;
	s->jobs[j].state = 2;
	s->jobs[j].start = now;
}

/* Counts (want 0) or takes the free units of [first, first + count); returns how many are free. */
static int
grab(Sim *s, int j, int first, int count, int want, int64_t now)
{
	int			got = 0;

	for (int u = first; u < first + count && (want == 0 || got < want); u++)
		if (s->ufree[u] > 0)
		{
			if (want > 0)
				hold(s, j, u, now);
			got++;
		}
	return got;
}

/* The baseline: starts, in queue order, every job that fits now on the first node with room. */
static void
greedy(Sim *s, int64_t now)
{
	const SimConfig *c = s->c;
	int			per_node = c->cpus + c->gpus,
				pool = c->nodes * per_node;

	for (int i = 0; i < c->jobs; i++)
	{
		SimJob	   *j = &s->jobs[i];

		if (j->state != 1 || grab(s, i, pool, c->licences, 0, now) < j->lic)
			continue;
		for (int n = 0; n < c->nodes; n++)
			if (grab(s, i, n * per_node, c->cpus, 0, now) >= j->cpu &&
				grab(s, i, n * per_node + c->cpus, c->gpus, 0, now) >= j->gpu)
			{
				grab(s, i, n * per_node, c->cpus, j->cpu, now);
				if (j->gpu)
					grab(s, i, n * per_node + c->cpus, c->gpus, j->gpu, now);
				if (j->lic)
					grab(s, i, pool, c->licences, j->lic, now);
				break;
			}
	}
}

/* Returns the start a result gives: now when placed, else its expected start. */
static int64_t
got_start(const AllocResult *r, int64_t now)
{
	return r->node >= 0 ? now : r->expected_start;
}

/* Returns job j's start this cycle if no job after it existed; ALLOC_NEVER on failure. */
static int64_t
replay_without_later(Sim *s, int64_t now, int j)
{
	AllocProblem p;
	AllocOutput out;
	int64_t		start;

	build(s, now, j, &p);
	if (alloc_run(&p, &out) < 0)
		return ALLOC_NEVER;
	start = out.looked == p.njobs ? got_start(&out.results[p.njobs - 1], now) : ALLOC_NEVER;
	alloc_output_free(&out);
	return start;
}

/* One cycle of the allocator at now: checks the promises, then starts what it placed; 0 or -1. */
static int
cycle(Sim *s, int64_t now, SimResult *res)
{
	AllocProblem p;
	AllocOutput out;
	struct timespec t0,
				t1;

	build(s, now, -1, &p);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (alloc_run(&p, &out) < 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	res->alloc_seconds += (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	for (int k = 0; k < out.looked; k++)
	{
		int			i = s->qidx[k];
		int64_t		start = got_start(&out.results[k], now),
					promised = s->jobs[i].promised;

		if (promised == ALLOC_NEVER)
			continue;
		res->promises++;
		if (start <= promised)
			continue;
		res->broken++;
		if (replay_without_later(s, now, i) <= promised)
			res->delays++;
		build(s, now, -1, &p);	/* the replay reused the buffers */
	}
	for (int k = 0; k < out.looked; k++)	/* the jobs not looked at keep their promises */
	{
		int			i = s->qidx[k];
		const AllocResult *r = &out.results[k];

		s->jobs[i].promised = r->node >= 0 ? ALLOC_NEVER : r->expected_start;
		s->jobs[i].promised_node = r->node >= 0 ? -1 : r->reserved_node;
		for (int t = 0; r->node >= 0 && t < r->ntakes; t++)
			hold(s, i, out.takes[r->first_take + t].unit, now);
		for (int e = 0; r->node >= 0 && e < i; e++)
			if (s->jobs[e].state == 1)
			{
				res->placed_out_of_order++;
				break;
			}
	}
	alloc_output_free(&out);
	return 0;
}

/* Returns the time of the next arrival or end, or ALLOC_NEVER when there is none. */
static int64_t
next_event(const Sim *s)
{
	int64_t		next = ALLOC_NEVER;

	for (int i = 0; i < s->c->jobs; i++)
	{
		const SimJob *j = &s->jobs[i];
		int64_t		t = j->state == 0 ? j->submit : j->state == 2 ? j->start + j->runtime :
			ALLOC_NEVER;

		next = t < next ? t : next;
	}
	return next;
}

int
alloc_sim(const SimConfig *c, SimResult *res)
{
	Sim			s = {.c = c};
	int			per_node = c->cpus + c->gpus;
	int			rc = -1;
	int64_t		now = 0;
	double		busy = 0;

	memset(res, 0, sizeof(*res));
	s.nunits = c->nodes * per_node + c->licences;
	s.per_job = per_node + c->licences + 1;
	s.jobs = calloc(c->jobs, sizeof(SimJob));
	s.units = calloc(s.nunits + 1, sizeof(AllocUnit));
	s.ufree = calloc(s.nunits + 1, sizeof(int64_t));
	s.names = calloc(c->nodes + 1, sizeof(char *));
	s.held = calloc((size_t) c->jobs * s.per_job, sizeof(int));
	s.q = calloc(c->jobs + 1, sizeof(AllocJob));
	s.qidx = calloc(c->jobs + 1, sizeof(int));
	s.needs = calloc((size_t) c->jobs * 3, sizeof(AllocNeed));
	s.holds = calloc(s.nunits + 1, sizeof(AllocHold));
	if (!s.jobs || !s.units || !s.ufree || !s.names || !s.held || !s.q || !s.qidx ||
		!s.needs || !s.holds)
		goto done;
	for (int n = 0; n < c->nodes; n++)
	{
		s.names[n] = "node";	/* the allocator never compares names */
		for (int k = 0; k < per_node; k++)
			s.units[n * per_node + k] = (AllocUnit) {n * per_node + k + 1,
			k < c->cpus ? "cpu" : "gpu", n, 1, 1};
	}
	for (int l = 0; l < c->licences; l++)
		s.units[c->nodes * per_node + l] = (AllocUnit) {c->nodes * per_node + l + 1, "lic", -1, 1, 1};
	for (int u = 0; u < s.nunits; u++)
		s.ufree[u] = 1;
	make_trace(&s);

	while (now != ALLOC_NEVER)
	{
		for (int i = 0; i < c->jobs; i++)
		{
			SimJob	   *j = &s.jobs[i];

			if (j->state == 2 && j->start + j->runtime <= now)
			{
				for (int k = 0; k < j->nheld; k++)
					s.ufree[s.held[i * s.per_job + k]] = 1;
				j->state = 3;
				res->makespan = now;
			}
			if (j->state == 0 && j->submit <= now)
				j->state = 1;
		}
		if (c->greedy)
			greedy(&s, now);
		else if (cycle(&s, now, res) < 0)
			goto done;
		res->cycles++;
		now = next_event(&s);
	}
	for (int i = 0; i < c->jobs; i++)
	{
		if (s.jobs[i].state != 3)
			goto done;			/* stuck: a job nothing could ever start */
		busy += (double) s.jobs[i].cpu * s.jobs[i].runtime;
	}
	res->utilisation = res->makespan > 0 ?
		busy / ((double) c->nodes * c->cpus * res->makespan) : 0;
	rc = 0;
done:
	free(s.jobs);
	free(s.units);
	free(s.ufree);
	free(s.names);
	free(s.held);
	free(s.q);
	free(s.qidx);
	free(s.needs);
	free(s.holds);
	return rc;
}
