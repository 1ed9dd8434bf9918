/*
 * alloc_bench.c: how fast alloc_run() places a large queue, against main's.
 *
 * A synthetic cluster (N nodes with 8 cpus, 2 gpus and 64 GB each, 4 zones, a
 * cluster-wide pool of 16 licences) and a queue of 10 N jobs with mixed needs, a
 * quarter of them pinned to a zone, four in five with a time limit.  Two cycles are
 * timed: the full one on the idle cluster, and the next one, 60 s later, after 100
 * changes (50 running jobs ended, 50 jobs submitted), with everything the first
 * placed now running until its limit.  Each is the best of 3 runs.
 *
 * `make run` builds this file twice: against this tree's allocator, and (with
 * -DALLOC_BASELINE) against main's src/core/alloc.c, taken with `git show` at build
 * time into a scratch directory.  The first runs the second with --raw on the same
 * workload and prints both and their ratio.  main's allocator knows no time limits
 * and keeps nothing between cycles, so "after 100 changes" is a whole cycle again.
 *
 * Two hostile queues are timed too, on both: 20,000 jobs that each need a resource
 * type of their own, which nobody offers, and 5,000 that each ask for a zone of
 * their own, which no node is in (docs/security.md, "User against user").
 *
 * Then the same cluster and queue go through the session the scheduler keeps
 * between cycles (alloc_session.h, session_cycles below), against alloc_run() from
 * scratch on the same problem in the same run (docs/scale.md "The allocator").
 */
#include "alloc.h"
#ifndef ALLOC_BASELINE
#include "alloc_session.h"
#endif

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHANGES 100
#define REPS 3					/* each cycle is timed 3 times, the best kept */

typedef struct Figures
{
	double		full_ms;
	int			full_placed;
	double		whole_ms;		/* the full cycle with every job looked at */
	int			whole_placed;
	double		next_ms;
	int			next_placed;
	double		odd_ms;			/* HOSTILE jobs each needing a type of its own */
	double		zones_ms;		/* HOSTILE_ZONES jobs each asking for a zone of its own */
} Figures;

/* Jobs of the hostile queue: each needs a resource type nobody offers, its own. */
#define HOSTILE 20000
/* And of the second: each asks for a zone no node is in, its own, on the bench's nodes. */
#define HOSTILE_ZONES 5000

static const char *zones[] = {"a", "b", "c", "d"};

static double now_s(void);
static void make_job(AllocJob *job, AllocNeed *needs, AllocConstraint *cons, int64_t *limit,
					 int j, unsigned int *seed);
static double timed_run(const AllocProblem *p, AllocOutput *out);
static void free_names(char **names, int n);
static AllocProblem problem_of(char **names, AllocLabel *labels, int nnodes, AllocUnit *units,
							  int nunits, AllocJob *jobs, int njobs);
static double odd_types(void);
static double odd_zones(int nnodes);
static void measure(int nnodes, Figures *f);
#ifndef ALLOC_BASELINE
static void session_cycles(int nnodes);
#endif

/* Returns a monotonic clock reading in seconds. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Makes job number j (id j + 1, five to a joblist): 1-4 cpus and a gpu (2 in 10), a
 * licence (1 in 10) or 1-16 GB; a quarter pinned to a zone; four in five with a
 * limit of 10 minutes to 4 hours, kept in *limit.
 */
static void
make_job(AllocJob *job, AllocNeed *needs, AllocConstraint *cons, int64_t *limit, int j,
		 unsigned int *seed)
{
	int			kind = rand_r(seed) % 10;

	needs[0] = (AllocNeed) {"cpu", 1 + rand_r(seed) % 4};
	needs[1] = kind < 2 ? (AllocNeed) {"gpu", 1} :
		kind < 3 ? (AllocNeed) {"lic", 1} : (AllocNeed) {"mem_mb", 1024 * (1 + rand_r(seed) % 16)};
	*cons = (AllocConstraint) {"zone", zones[rand_r(seed) % 4]};
	*limit = rand_r(seed) % 5 == 0 ? 0 : 600 * (1 + rand_r(seed) % 24);
	memset(job, 0, sizeof(AllocJob));
	job->job_id = j + 1;
	job->joblist_id = 1 + j / 5;
	job->needs = needs;
	job->nneeds = 2;
	job->constraints = cons;
	job->nconstraints = kind % 4 == 0;
#ifndef ALLOC_BASELINE
	job->limit = *limit;
#endif
}

/* Runs alloc_run on p into out REPS times; returns the fewest milliseconds it took. */
static double
timed_run(const AllocProblem *p, AllocOutput *out)
{
	double		best = 1e30;

	for (int r = 0; r < REPS; r++)
	{
		double		t0 = now_s();

		if (r > 0)
			alloc_output_free(out);
		if (alloc_run(p, out) < 0)
		{
			fprintf(stderr, "alloc_run failed\n");
			exit(1);
		}
		t0 = (now_s() - t0) * 1e3;
		best = t0 < best ? t0 : best;
	}
	return best;
}

/* Frees n node names and their array. */
static void
free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Returns the problem of these nodes (one label each, or none), units and jobs, at time 0. */
static AllocProblem
problem_of(char **names, AllocLabel *labels, int nnodes, AllocUnit *units, int nunits,
		   AllocJob *jobs, int njobs)
{
	AllocProblem p;

	memset(&p, 0, sizeof(p));
	p.nodes = (const char *const *) names;
	p.nnodes = nnodes;
	p.labels = labels;
	p.nlabels = labels ? nnodes : 0;
	p.units = units;
	p.nunits = nunits;
	p.jobs = jobs;
	p.njobs = njobs;
	return p;
}

/*
 * Times a cycle over HOSTILE jobs that each need a type of their own, on two
 * nodes with a cpu each: what one user's joblist could cost every cycle.
 */
static double
odd_types(void)
{
	static char *names[] = {"a", "b"};
	AllocUnit	units[] = {{1, "cpu", 0, 1, 1}, {2, "cpu", 1, 1, 1}};
	AllocJob   *jobs = calloc(HOSTILE, sizeof(AllocJob));
	AllocNeed  *needs = calloc(HOSTILE, sizeof(AllocNeed));
	char	   (*type)[16] = calloc(HOSTILE, 16);
	AllocProblem p;
	AllocOutput out;
	double		ms;

	for (int j = 0; j < HOSTILE; j++)
	{
		snprintf(type[j], 16, "odd%d", j);
		needs[j] = (AllocNeed) {type[j], 1};
		memset(&jobs[j], 0, sizeof(AllocJob));
		jobs[j].job_id = jobs[j].joblist_id = j + 1;
		jobs[j].needs = &needs[j];
		jobs[j].nneeds = 1;
	}
	p = problem_of(names, NULL, 2, units, 2, jobs, HOSTILE);
	ms = timed_run(&p, &out);
	alloc_output_free(&out);
	free(jobs);
	free(needs);
	free(type);
	return ms;
}

/* Times a cycle over HOSTILE_ZONES jobs that each ask for a zone no node is in, their own. */
static double
odd_zones(int nnodes)
{
	static const AllocNeed cpu = {"cpu", 1};
	char	  **names = malloc(sizeof(char *) * nnodes);
	AllocLabel *labels = malloc(sizeof(AllocLabel) * nnodes);
	AllocUnit  *units = malloc(sizeof(AllocUnit) * nnodes);
	AllocJob   *jobs = calloc(HOSTILE_ZONES, sizeof(AllocJob));
	AllocConstraint *cons = malloc(sizeof(AllocConstraint) * HOSTILE_ZONES);
	char	   (*zone)[16] = calloc(HOSTILE_ZONES, 16);
	AllocProblem p;
	AllocOutput out;
	double		ms;

	for (int n = 0; n < nnodes; n++)
	{
		names[n] = malloc(16);
		snprintf(names[n], 16, "node%05d", n);
		labels[n] = (AllocLabel) {n, "zone", zones[n % 4]};
		units[n] = (AllocUnit) {n + 1, "cpu", n, 1, 1};
	}
	for (int j = 0; j < HOSTILE_ZONES; j++)
	{
		snprintf(zone[j], 16, "q%d", j);
		cons[j] = (AllocConstraint) {"zone", zone[j]};
		jobs[j].job_id = jobs[j].joblist_id = j + 1;
		jobs[j].needs = &cpu;
		jobs[j].nneeds = 1;
		jobs[j].constraints = &cons[j];
		jobs[j].nconstraints = 1;
	}
	p = problem_of(names, labels, nnodes, units, nnodes, jobs, HOSTILE_ZONES);
	ms = timed_run(&p, &out);
	alloc_output_free(&out);
	free_names(names, nnodes);
	free(labels);
	free(units);
	free(jobs);
	free(cons);
	free(zone);
	return ms;
}

/* Builds the workload for nnodes and times its two cycles into f. */
static void
measure(int nnodes, Figures *f)
{
	int			njobs = nnodes * 10 + CHANGES / 2;
	int			nunits = nnodes * 11 + 16;
	char	  **names = malloc(sizeof(char *) * nnodes);
	AllocLabel *labels = malloc(sizeof(AllocLabel) * nnodes);
	AllocUnit  *units = malloc(sizeof(AllocUnit) * nunits);
	AllocJob   *jobs = malloc(sizeof(AllocJob) * njobs);
	AllocJob   *next = malloc(sizeof(AllocJob) * njobs);
	AllocNeed  *needs = malloc(sizeof(AllocNeed) * njobs * 2);
	AllocConstraint *cons = malloc(sizeof(AllocConstraint) * njobs);
	int64_t    *limit = malloc(sizeof(int64_t) * njobs);
	AllocProblem p;
	AllocOutput out;
	int			u = 0,
				nnext = 0,
				ended = 0;
	unsigned int seed = 42;

	for (int n = 0; n < nnodes; n++)
	{
		names[n] = malloc(16);
		snprintf(names[n], 16, "node%05d", n);
		labels[n] = (AllocLabel) {n, "zone", zones[n % 4]};
		for (int c = 0; c < 8; c++)
			units[u++] = (AllocUnit) {u, "cpu", n, 1, 1};
		for (int g = 0; g < 2; g++)
			units[u++] = (AllocUnit) {u, "gpu", n, 1, 1};
		units[u++] = (AllocUnit) {u, "mem_mb", n, 65536, 65536};
	}
	for (int l = 0; l < 16; l++)
		units[u++] = (AllocUnit) {u, "lic", -1, 1, 1};
	for (int j = 0; j < njobs; j++)
		make_job(&jobs[j], &needs[2 * j], &cons[j], &limit[j], j, &seed);
	p = problem_of(names, labels, nnodes, units, u, jobs, njobs - CHANGES / 2);
#ifndef ALLOC_BASELINE
	p.now = 1000000;
#endif
#ifndef ALLOC_BASELINE
	p.max_job_test = INT_MAX;	/* every job looked at, as before max_job_test */
	f->whole_ms = timed_run(&p, &out);
	f->whole_placed = out.placed;
	alloc_output_free(&out);
	p.max_job_test = 0;
#endif
	f->full_ms = timed_run(&p, &out);
	f->full_placed = out.placed;

	/*
	 * 60 s later: what the first cycle placed runs (the first 50 of those have
	 * ended), what waited still waits, and 50 more jobs have come.
	 */
	{
		AllocUnit  *after = malloc(sizeof(AllocUnit) * nunits);
#ifndef ALLOC_BASELINE
		const AllocResult unlooked = {.node = -1, .reserved_node = -1,
		.expected_start = ALLOC_NEVER};
		AllocHold  *holds = malloc(sizeof(AllocHold) * (out.ntakes + 1));
		int			nholds = 0;
#endif

		memcpy(after, units, sizeof(AllocUnit) * nunits);
		for (int j = 0; j < p.njobs; j++)
		{
#ifndef ALLOC_BASELINE
			const AllocResult *r = j < out.looked ? &out.results[j] : &unlooked;
#else
			const AllocResult *r = &out.results[j];
#endif

			if (r->node < 0)
			{
				next[nnext] = jobs[j];
#ifndef ALLOC_BASELINE
				next[nnext].reserved = r->reserved_node >= 0;
				next[nnext].reserved_node = r->reserved_node;
				next[nnext].reserved_start = r->expected_start;
#endif
				nnext++;
				continue;
			}
			if (ended++ < CHANGES / 2)
				continue;
			for (int k = 0; k < r->ntakes; k++)
			{
				const AllocTake *t = &out.takes[r->first_take + k];

				after[t->unit].free -= t->amount;
#ifndef ALLOC_BASELINE
				holds[nholds++] = (AllocHold) {t->unit, t->amount,
				limit[j] ? p.now + limit[j] : ALLOC_NEVER};
#endif
			}
		}
		for (int j = njobs - CHANGES / 2; j < njobs; j++)
			next[nnext++] = jobs[j];
		alloc_output_free(&out);
		p.units = after;
		p.jobs = next;
		p.njobs = nnext;
#ifndef ALLOC_BASELINE
		p.holds = holds;
		p.nholds = nholds;
		p.now += 60;
#endif
		f->next_ms = timed_run(&p, &out);
		f->next_placed = out.placed;
		alloc_output_free(&out);
		free(after);
#ifndef ALLOC_BASELINE
		free(holds);
#endif
	}
	free_names(names, nnodes);
	free(labels);
	free(units);
	free(jobs);
	free(next);
	free(needs);
	free(cons);
	free(limit);
}

#ifndef ALLOC_BASELINE
/*
 * The session's bench: the same cluster and queue loaded into an AllocSession,
 * a first (full) cycle, then CYCLES cycles 60 s apart, each after 100 changes (50
 * running jobs end, 30 jobs come, 10 are cancelled, 5 nodes go down or come back,
 * 5 nodes change their memory).  The baseline is alloc_run() from scratch on the
 * same problem, which a plain mirror of the model builds; placements must agree.
 */
#define CYCLES 5
#define UNITS_PER_NODE 11

typedef struct Mirror
{
	int			nnodes;
	char	  **names;
	unsigned char *online;
	int64_t    *mem;			/* per node: its memory's capacity */
	AllocJob   *jobs;			/* by id - 1 */
	AllocNeed  *needs;
	AllocConstraint *cons;
	int64_t    *limit;
	unsigned char *queued;
	AllocSessionHold **holds;	/* by id - 1: what it holds */
	int		   *nholds;
	int		   *res_node;		/* by id - 1: its reported reservation, or -1 */
	int64_t    *res_start;
	char	  **reason;			/* by id - 1: its reported reason, or NULL */
	int			njobs;			/* ids 1 .. njobs made so far */
	int			cap;
	int		   *running;		/* ids in the order they started */
	int			nrunning;
	int			ended;			/* running[0 .. ended) have ended */
	unsigned int seed;
} Mirror;

typedef struct CycleFigures
{
	double		ms;				/* the session's run */
	double		base_ms;		/* alloc_run from scratch */
	int			placed;
	int			waits;			/* wait changes reported */
	int			same;			/* placements, reasons, starts and reserved nodes agree */
} CycleFigures;

static void mirror_node(Mirror *m, AllocSession *s, int n);
static void mirror_job(Mirror *m, AllocSession *s);
static void mirror_changes(Mirror *m, AllocSession *s);
static double mirror_baseline(const Mirror *m, int64_t now, AllocOutput *out, int **order);
static void mirror_cycle(Mirror *m, AllocSession *s, int64_t now, CycleFigures *f);
static int	waits_agree(const Mirror *m, const AllocOutput *ref, const int *order);

/* Brings node n up in the session with its current memory. */
static void
mirror_node(Mirror *m, AllocSession *s, int n)
{
	AllocSessionUnit units[UNITS_PER_NODE];
	AllocConstraint zone = {"zone", zones[n % 4]};
	int64_t		id = (int64_t) n * UNITS_PER_NODE;

	for (int c = 0; c < 8; c++)
		units[c] = (AllocSessionUnit) {id + c, "cpu", 1};
	units[8] = (AllocSessionUnit) {id + 8, "gpu", 1};
	units[9] = (AllocSessionUnit) {id + 9, "gpu", 1};
	units[10] = (AllocSessionUnit) {id + 10, "mem_mb", m->mem[n]};
	m->online[n] = 1;
	if (alloc_session_set_node(s, m->names[n], &zone, 1, units, UNITS_PER_NODE) < 0)
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
}

/* Makes the next job and queues it in the session. */
static void
mirror_job(Mirror *m, AllocSession *s)
{
	int			j = m->njobs++;
	AllocJob   *job = &m->jobs[j];
	AllocSessionJob sj;

	make_job(job, &m->needs[2 * j], &m->cons[j], &m->limit[j], j, &m->seed);
	m->queued[j] = 1;
	m->res_node[j] = -1;
	m->res_start[j] = ALLOC_NEVER;
	m->reason[j] = NULL;
	sj = (AllocSessionJob) {job->job_id, job->joblist_id, job->needs, job->nneeds,
		job->constraints, job->nconstraints, job->limit, NULL, NULL, ALLOC_NEVER};
	if (alloc_session_set_job(s, &sj) < 0)
	{
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
}

/* Applies 100 changes to the mirror and the session. */
static void
mirror_changes(Mirror *m, AllocSession *s)
{
	for (int k = 0; k < 50 && m->ended < m->nrunning; k++)
	{
		int			id = m->running[m->ended++];

		m->nholds[id - 1] = 0;
		alloc_session_set_holds(s, id, NULL, 0);
	}
	for (int k = 0; k < 30 && m->njobs < m->cap; k++)
		mirror_job(m, s);
	for (int k = 0; k < 10; k++)
	{
		int			j;

		do
			j = rand_r(&m->seed) % m->njobs;
		while (!m->queued[j]);
		m->queued[j] = 0;
		alloc_session_drop_job(s, j + 1);
	}
	for (int k = 0; k < 5; k++)
	{
		int			n = rand_r(&m->seed) % m->nnodes;

		if (m->online[n])
		{
			m->online[n] = 0;
			alloc_session_drop_node(s, m->names[n]);
		}
		else
			mirror_node(m, s, n);
	}
	for (int k = 0; k < 5; k++)
	{
		int			n = rand_r(&m->seed) % m->nnodes;

		m->mem[n] = m->mem[n] == 65536 ? 32768 : 65536;
		if (m->online[n])
			mirror_node(m, s, n);
	}
}

/*
 * Builds the mirror's problem from scratch (nodes in name order, units by node then
 * the pool, holds by job id, jobs in FIFO order with their reservations), solves it
 * with alloc_run into out and returns the milliseconds alloc_run took; *order gets
 * the job index of each problem job.
 */
static double
mirror_baseline(const Mirror *m, int64_t now, AllocOutput *out, int **order)
{
	int			nunits = m->nnodes * UNITS_PER_NODE + 16,
				nholds = 0,
				nn = 0,
				nu = 0,
				nj = 0;
	const char **names = malloc(sizeof(char *) * m->nnodes);
	int		   *node_of = malloc(sizeof(int) * m->nnodes);
	AllocLabel *labels = malloc(sizeof(AllocLabel) * m->nnodes);
	AllocUnit  *units = malloc(sizeof(AllocUnit) * nunits);
	AllocJob   *jobs = malloc(sizeof(AllocJob) * m->njobs);
	AllocHold  *holds;
	AllocProblem p;
	double		t0;

	*order = malloc(sizeof(int) * m->njobs);
	for (int j = 0; j < m->njobs; j++)
		nholds += m->nholds[j];
	holds = malloc(sizeof(AllocHold) * (nholds + 1));
	nholds = 0;
	for (int n = 0; n < m->nnodes; n++)
	{
		int64_t		id = (int64_t) n * UNITS_PER_NODE;

		node_of[n] = -1;
		if (!m->online[n])
			continue;
		node_of[n] = nn;
		names[nn] = m->names[n];
		labels[nn] = (AllocLabel) {nn, "zone", zones[n % 4]};
		for (int c = 0; c < 8; c++)
			units[nu++] = (AllocUnit) {id + c, "cpu", nn, 1, 1};
		units[nu++] = (AllocUnit) {id + 8, "gpu", nn, 1, 1};
		units[nu++] = (AllocUnit) {id + 9, "gpu", nn, 1, 1};
		units[nu++] = (AllocUnit) {id + 10, "mem_mb", nn, m->mem[n], m->mem[n]};
		nn++;
	}
	for (int l = 0; l < 16; l++)
		units[nu++] = (AllocUnit) {(int64_t) m->nnodes * UNITS_PER_NODE + l, "lic", -1, 1, 1};
	for (int j = 0; j < m->njobs; j++)
		for (int h = 0; h < m->nholds[j]; h++)
		{
			const AllocSessionHold *hold = &m->holds[j][h];
			int64_t		r = hold->resource_id;
			int			node = (int) (r / UNITS_PER_NODE),
						u;

			if (node >= m->nnodes)
				u = nn * UNITS_PER_NODE + (int) (r - (int64_t) m->nnodes * UNITS_PER_NODE);
			else if (node_of[node] >= 0)
				u = node_of[node] * UNITS_PER_NODE + (int) (r % UNITS_PER_NODE);
			else
				continue;
			units[u].free = units[u].free > hold->amount ? units[u].free - hold->amount : 0;
			holds[nholds++] = (AllocHold) {u, hold->amount, hold->end};
		}
	for (int j = 0; j < m->njobs; j++)
		if (m->queued[j])
		{
			int			rn = m->res_node[j] >= 0 ? node_of[m->res_node[j]] : -1;

			jobs[nj] = m->jobs[j];
			jobs[nj].reserved = rn >= 0;
			jobs[nj].reserved_node = rn;
			jobs[nj].reserved_start = m->res_start[j];
			(*order)[nj++] = j;
		}
	p = (AllocProblem) {names, nn, labels, nn, units, nu, jobs, nj, now, holds, nholds, 0, NULL, 0};
	t0 = now_s();
	if (alloc_run(&p, out) < 0)
	{
		fprintf(stderr, "alloc_run failed\n");
		exit(1);
	}
	t0 = (now_s() - t0) * 1e3;
	free(names);
	free(node_of);
	free(labels);
	free(units);
	free(jobs);
	free(holds);
	return t0;
}

/*
 * Returns 1 when every job alloc_run from scratch left waiting has, after the
 * session's reported changes, the same reason, expected start and reserved node.
 */
static int
waits_agree(const Mirror *m, const AllocOutput *ref, const int *order)
{
	int		   *online = malloc(sizeof(int) * (m->nnodes + 1));
	int			nn = 0,
				nq = 0,
				ok = 1;

	for (int n = 0; n < m->nnodes; n++)
		if (m->online[n])
			online[nn++] = n;
	for (int j = 0; j < m->njobs; j++)
		nq += m->queued[j];
	for (int q = 0; q < nq && q < ref->looked && ok; q++)
	{
		const AllocResult *r = &ref->results[q];
		int			j = order[q];

		if (r->node >= 0)
			continue;
		ok = strcmp(m->reason[j] ? m->reason[j] : "", r->reason) == 0 &&
			m->res_start[j] == r->expected_start &&
			m->res_node[j] == (r->reserved_node >= 0 ? online[r->reserved_node] : -1);
		if (!ok)
			fprintf(stderr, "job %d: session \"%s\" %lld node %d, alloc_run \"%s\" %lld node %d\n",
					j + 1, m->reason[j] ? m->reason[j] : "", (long long) m->res_start[j],
					m->res_node[j], r->reason, (long long) r->expected_start,
					r->reserved_node >= 0 ? online[r->reserved_node] : -1);
	}
	free(online);
	return ok;
}

/* Runs one cycle on the session and from scratch, applies it to the mirror, into f. */
static void
mirror_cycle(Mirror *m, AllocSession *s, int64_t now, CycleFigures *f)
{
	AllocSessionOutput o;
	AllocOutput ref;
	int		   *order;
	int			k = 0;
	double		t0;

	f->base_ms = mirror_baseline(m, now, &ref, &order);
	t0 = now_s();
	if (alloc_session_run(s, now, 0, 0, NULL, &o) < 0)
	{
		fprintf(stderr, "alloc_session_run failed\n");
		exit(1);
	}
	f->ms = (now_s() - t0) * 1e3;
	f->placed = o.nplaced;
	f->waits = o.nwaits;
	f->same = o.nplaced == ref.placed;
	/* placements, in FIFO order on both sides */
	{
		int			nq = 0;

		for (int j = 0; j < m->njobs; j++)
			nq += m->queued[j];
		for (int q = 0; q < nq && q < ref.looked; q++)
		{
			const AllocResult *r = &ref.results[q];
			int			j = order[q];

			if (r->node < 0)
				continue;
			f->same &= k < o.nplaced && o.placed[k].job_id == j + 1 &&
				o.placed[k].ntakes == r->ntakes;
			if (k < o.nplaced)
			{
				const AllocPlaced *pl = &o.placed[k];
				int64_t		end = m->limit[j] ? now - 1 + m->limit[j] : ALLOC_NEVER;

				m->holds[j] = realloc(m->holds[j], sizeof(AllocSessionHold) * (pl->ntakes + 1));
				for (int t = 0; t < pl->ntakes; t++)
					m->holds[j][t] = (AllocSessionHold) {o.takes[pl->first_take + t].resource_id,
					o.takes[pl->first_take + t].amount, end};
				m->nholds[j] = pl->ntakes;
			}
			m->queued[j] = 0;
			m->running[m->nrunning++] = j + 1;
			k++;
		}
	}
	for (int w = 0; w < o.nwaits; w++)
	{
		int			j = (int) o.waits[w].job_id - 1;

		m->res_node[j] = o.waits[w].reserved_node ? atoi(o.waits[w].reserved_node + 4) : -1;
		m->res_start[j] = o.waits[w].expected_start;
		free(m->reason[j]);
		m->reason[j] = o.waits[w].reason ? strdup(o.waits[w].reason) : NULL;
	}
	f->same &= waits_agree(m, &ref, order);
	alloc_output_free(&ref);
	free(order);
}

/* Loads the session, runs its first cycle and CYCLES more after 100 changes each; prints. */
static void
session_cycles(int nnodes)
{
	Mirror		m = {0};
	AllocSession *s = alloc_session_new();
	CycleFigures first,
				next,
				sum = {0, 0, 0, 0, 1};
	int64_t		now = 1000000;
	double		t0,
				load_ms,
				worst = 0;
	int			initial = nnodes * 10;

	m.nnodes = nnodes;
	m.cap = initial + CYCLES * 30;
	m.seed = 42;
	m.names = malloc(sizeof(char *) * nnodes);
	m.online = calloc(nnodes, 1);
	m.mem = malloc(sizeof(int64_t) * nnodes);
	m.jobs = malloc(sizeof(AllocJob) * m.cap);
	m.needs = malloc(sizeof(AllocNeed) * 2 * m.cap);
	m.cons = malloc(sizeof(AllocConstraint) * m.cap);
	m.limit = malloc(sizeof(int64_t) * m.cap);
	m.queued = calloc(m.cap, 1);
	m.holds = calloc(m.cap, sizeof(AllocSessionHold *));
	m.nholds = calloc(m.cap, sizeof(int));
	m.res_node = malloc(sizeof(int) * m.cap);
	m.res_start = malloc(sizeof(int64_t) * m.cap);
	m.reason = calloc(m.cap, sizeof(char *));
	m.running = malloc(sizeof(int) * m.cap);
	t0 = now_s();
	for (int n = 0; n < nnodes; n++)
	{
		m.names[n] = malloc(16);
		snprintf(m.names[n], 16, "node%05d", n);
		m.mem[n] = 65536;
		mirror_node(&m, s, n);
	}
	{
		AllocSessionUnit lic[16];

		for (int l = 0; l < 16; l++)
			lic[l] = (AllocSessionUnit) {(int64_t) nnodes * UNITS_PER_NODE + l, "lic", 1};
		alloc_session_set_pool(s, lic, 16);
	}
	while (m.njobs < initial)
		mirror_job(&m, s);
	load_ms = (now_s() - t0) * 1e3;
	mirror_cycle(&m, s, now, &first);
	for (int c = 0; c < CYCLES; c++)
	{
		now += 60;
		mirror_changes(&m, s);
		mirror_cycle(&m, s, now, &next);
		sum.ms += next.ms;
		sum.base_ms += next.base_ms;
		sum.placed += next.placed;
		sum.waits += next.waits;
		sum.same &= next.same;
		worst = next.ms > worst ? next.ms : worst;
	}
	printf("session: load %.1f ms; first cycle %8.1f ms, %6d placed, %8.0f placements/s, %d waits"
		   " reported; alloc_run from scratch %.1f ms (ratio %.2f)\n",
		   load_ms, first.ms, first.placed, first.placed / first.ms * 1e3, first.waits,
		   first.base_ms, first.ms / first.base_ms);
	printf("session: after 100 changes (50 ends, 30 new, 10 cancels, 5 nodes up/down, 5 unit"
		   " changes), %d cycles: %.1f ms per cycle (worst %.1f), %d placed, %d waits reported"
		   " per cycle; alloc_run from scratch %.1f ms (ratio %.3f)\n",
		   CYCLES, sum.ms / CYCLES, worst, sum.placed / CYCLES, sum.waits / CYCLES,
		   sum.base_ms / CYCLES, sum.ms / sum.base_ms);
	printf("session: placements, reasons, expected starts and reserved nodes the same as"
		   " alloc_run from scratch: %s\n",
		   first.same && sum.same ? "yes" : "NO");
	alloc_session_free(s);
	for (int j = 0; j < m.cap; j++)
		free(m.holds[j]);
	for (int n = 0; n < nnodes; n++)
		free(m.names[n]);
	free(m.names);
	free(m.online);
	free(m.mem);
	free(m.jobs);
	free(m.needs);
	free(m.cons);
	free(m.limit);
	free(m.queued);
	free(m.holds);
	free(m.nholds);
	free(m.res_node);
	free(m.res_start);
	for (int j = 0; j < m.njobs; j++)
		free(m.reason[j]);
	free(m.reason);
	free(m.running);
}
#endif

int
main(int argc, char **argv)
{
	int			raw = argc > 1 && strcmp(argv[1], "--raw") == 0;
	int			nodes = argc > 1 + raw ? atoi(argv[1 + raw]) : 10000;
	Figures		mine,
				base;
	char		cmd[256];
	FILE	   *in;

	if (nodes < 1 || nodes > 1000000)
	{
		fprintf(stderr, "usage: alloc_bench [--raw] [NODES (1..1000000)]\n");
		return 2;
	}
	measure(nodes, &mine);
	mine.odd_ms = odd_types();
	mine.zones_ms = odd_zones(nodes);
	if (raw)
	{
		printf("%f %d %f %d %f %f\n", mine.full_ms, mine.full_placed, mine.next_ms,
			   mine.next_placed, mine.odd_ms, mine.zones_ms);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "./alloc_bench_main --raw %d", nodes);
	if ((in = popen(cmd, "r")) == NULL ||
		fscanf(in, "%lf %d %lf %d %lf %lf", &base.full_ms, &base.full_placed, &base.next_ms,
			   &base.next_placed, &base.odd_ms, &base.zones_ms) != 6 || pclose(in) != 0)
	{
		fprintf(stderr, "could not run the baseline: %s\n", cmd);
		return 1;
	}
	printf("%d nodes (8 cpus, 2 gpus, 64 GB; 4 zones), a pool of 16 licences, %d jobs queued\n",
		   nodes, nodes * 10);
	printf("full cycle:        %8.1f ms, %6d placed, %8.0f placements/s   main: %8.1f ms, %6d placed\n",
		   mine.full_ms, mine.full_placed, mine.full_placed / mine.full_ms * 1e3,
		   base.full_ms, base.full_placed);
#ifndef ALLOC_BASELINE
	printf("  every job looked at: %6.1f ms, %6d placed (max_job_test %d stops the cycle above)\n",
		   mine.whole_ms, mine.whole_placed, ALLOC_DEFAULT_JOB_TEST);
#endif
	printf("after %d changes: %8.1f ms, %6d placed                          main: %8.1f ms, %6d placed\n",
		   CHANGES, mine.next_ms, mine.next_placed, base.next_ms, base.next_placed);
	printf("ratio to main: full cycle time %.2f, placements %.1f; next cycle time %.2f\n",
		   mine.full_ms / base.full_ms, (double) mine.full_placed / base.full_placed,
		   mine.next_ms / base.next_ms);
	printf("hostile queue: %d jobs each needing a type of its own, 2 nodes: %.1f ms a cycle, "
		   "main %.1f ms (ratio %.4f)\n", HOSTILE, mine.odd_ms, base.odd_ms,
		   mine.odd_ms / base.odd_ms);
	printf("hostile queue: %d jobs each asking for a zone of its own, %d nodes: %.1f ms a cycle, "
		   "main %.1f ms (ratio %.4f)\n", HOSTILE_ZONES, nodes, mine.zones_ms, base.zones_ms,
		   mine.zones_ms / base.zones_ms);
#ifndef ALLOC_BASELINE
	session_cycles(nodes);
#endif
	return 0;
}
