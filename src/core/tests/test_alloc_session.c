/*
 * test_alloc_session.c: unit tests of the allocator's session (alloc_session.c).
 *
 * The unit tests drive one small session through each function and render what a
 * run reports, one line per placed job ("7 -> a 1,2") and per changed wait
 * ("8 waits: reason [at node from t]").  The equivalence test applies random
 * traces of changes to a session and, independently, to a plain model of arrays;
 * each run of the session must give exactly what alloc_run() gives on the problem
 * built from that model from scratch: the same placements and takes, and, once
 * its reported changes are applied, the same reasons, starts and reservations for
 * every waiting job, with no change reported that is not one.  The out-of-memory
 * test makes each allocation of a scenario fail in turn (fail_alloc.h): every
 * call must then give -1 (or NULL) and leave a session that frees cleanly.
 */
#include "alloc_session.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void render(const AllocSessionOutput *o, char *buf, size_t len);
static void expect_run(const char *name, AllocSession *s, int64_t now, const char *want);
static void expect_diff(const char *name, const AllocSession *a, const AllocSession *b,
						const char *want);
static void set_job(AllocSession *s, int64_t id, int64_t joblist, const AllocNeed *needs,
					int nneeds, const AllocConstraint *cons, int ncons, int64_t limit);
static void test_queue(void);
static void test_nodes(void);
static void test_holds(void);
static void test_reported(void);
static void test_diff(void);
static void test_equivalence(void);
static int	oom_scenario(void);
static void test_out_of_memory(void);

#define NEVER "9223372036854775807"

static const AllocNeed cpu1[] = {{"cpu", 1}};
static const AllocNeed cpu2[] = {{"cpu", 2}};
static const AllocNeed lic1[] = {{"lic", 1}};
static const AllocConstraint zone_a[] = {{"zone", "a"}};
static const AllocConstraint zone_b[] = {{"zone", "b"}};
static const AllocSessionUnit two_cpus[] = {{1, "cpu", 1}, {2, "cpu", 1}};

/* Renders a run's output. */
static void
render(const AllocSessionOutput *o, char *buf, size_t len)
{
	size_t		used = 0;

	buf[0] = '\0';
	for (int i = 0; i < o->nplaced && used < len; i++)
	{
		const AllocPlaced *p = &o->placed[i];

		used += snprintf(buf + used, len - used, "%lld -> %s", (long long) p->job_id, p->node);
		for (int k = 0; k < p->ntakes && used < len; k++)
		{
			const AllocPlacedTake *t = &o->takes[p->first_take + k];

			used += snprintf(buf + used, len - used, "%c%lld", k ? ',' : ' ',
							 (long long) t->resource_id);
			if (t->amount != 1 && used < len)
				used += snprintf(buf + used, len - used, "x%lld", (long long) t->amount);
		}
		if (used < len)
			used += snprintf(buf + used, len - used, "\n");
	}
	for (int i = 0; i < o->nwaits && used < len; i++)
	{
		const AllocWaitChange *w = &o->waits[i];

		used += snprintf(buf + used, len - used, "%lld waits: %s", (long long) w->job_id,
						 w->reason);
		if (w->reserved_node && used < len)
			used += snprintf(buf + used, len - used, " [at %s from %lld]", w->reserved_node,
							 (long long) w->expected_start);
		if (used < len)
			used += snprintf(buf + used, len - used, "\n");
	}
}

/* Runs s at now and compares the rendering of what it reports with want. */
static void
expect_run(const char *name, AllocSession *s, int64_t now, const char *want)
{
	AllocSessionOutput o;
	char		got[4096];

	if (alloc_session_run(s, now, 0, 0, NULL, &o) < 0)
	{
		check(name, 0);
		return;
	}
	render(&o, got, sizeof(got));
	check(name, strcmp(got, want) == 0);
	if (strcmp(got, want) != 0)
		printf("--- want\n%s--- got\n%s", want, got);
}

/* Compares alloc_session_diff's verdict on a and b with want ("" when the same). */
static void
expect_diff(const char *name, const AllocSession *a, const AllocSession *b, const char *want)
{
	char		why[256];
	int			rc = alloc_session_diff(a, b, why, sizeof(why));

	check(name, rc == (want[0] != '\0') && strcmp(why, want) == 0);
	if (rc != (want[0] != '\0') || strcmp(why, want) != 0)
		printf("--- want %s\n--- got %d %s\n", want, rc, why);
}

/* Queues a job that has nothing reported yet. */
static void
set_job(AllocSession *s, int64_t id, int64_t joblist, const AllocNeed *needs, int nneeds,
		const AllocConstraint *cons, int ncons, int64_t limit)
{
	AllocSessionJob j = {id, joblist, needs, nneeds, cons, ncons, limit, NULL, NULL,
	ALLOC_NEVER};

	check("set_job", alloc_session_set_job(s, &j) == 0);
}

/* The queue: FIFO order, placed jobs leave it, unknown and replaced jobs. */
static void
test_queue(void)
{
	AllocSession *s = alloc_session_new();
	int			nodes,
				units,
				jobs,
				holds;

	expect_run("an empty session places nothing", s, 1000, "");
	alloc_session_set_node(s, "a", zone_a, 1, two_cpus, 2);
	set_job(s, 12, 2, cpu1, 1, NULL, 0, 0);
	set_job(s, 11, 1, cpu2, 1, NULL, 0, 0);
	set_job(s, 10, 3, cpu1, 1, NULL, 0, 0);
	alloc_session_drop_job(s, 999);	/* unknown: nothing happens */
	alloc_session_size(s, &nodes, &units, &jobs, &holds);
	check("size counts nodes, units, jobs, holds", nodes == 1 && units == 2 && jobs == 3 &&
		  holds == 0);
	expect_run("FIFO by joblist, then job: 11 first", s, 1000,
			   "11 -> a 1,2\n12 waits: not enough cpu free (needs 1) [at a from " NEVER "]\n"
			   "10 waits: not enough cpu free (needs 1) [at a from " NEVER "]\n");
	alloc_session_size(s, &nodes, &units, &jobs, &holds);
	check("placed jobs leave the queue, their takes become holds", jobs == 2 && holds == 2);
	expect_run("nothing changed: nothing reported", s, 1001, "");
	set_job(s, 12, 2, (AllocNeed[]) {{"gpu", 1}}, 1, NULL, 0, 0);
	expect_run("a replaced job is run as it is now, and reported again", s, 1002,
			   "12 waits: no online node offers gpu\n");
	alloc_session_drop_job(s, 12);
	alloc_session_set_holds(s, 11, NULL, 0);
	expect_run("an ended job's units come free", s, 1003, "10 -> a 1\n");
	alloc_session_free(s);
}

/* Nodes and the pool: replaced units and labels, dropped nodes, moved ids. */
static void
test_nodes(void)
{
	AllocSession *s = alloc_session_new();
	int			nodes,
				units,
				jobs,
				holds;

	alloc_session_set_node(s, "b", zone_a, 1, (AllocSessionUnit[]) {{5, "cpu", 1}}, 1);
	alloc_session_set_node(s, "a", zone_a, 1, (AllocSessionUnit[]) {{6, "cpu", 1}}, 1);
	set_job(s, 1, 1, cpu1, 1, zone_b, 1, 0);
	set_job(s, 2, 2, cpu1, 1, NULL, 0, 0);
	expect_run("constraints match the labels given", s, 10,
			   "2 -> a 6\n1 waits: no online node matches zone=b\n");
	alloc_session_set_node(s, "b", zone_b, 1, (AllocSessionUnit[]) {{5, "cpu", 1}}, 1);
	expect_run("replaced labels count", s, 11, "1 -> b 5\n");

	set_job(s, 3, 3, cpu2, 1, NULL, 0, 0);
	alloc_session_set_node(s, "a", NULL, 0, (AllocSessionUnit[]) {{7, "cpu", 1}, {8, "cpu", 1}},
						   2);
	alloc_session_size(s, &nodes, &units, &jobs, &holds);
	check("replaced units replace the old ones", nodes == 2 && units == 3);
	expect_run("holds on units a node no longer has count nowhere", s, 12, "3 -> a 7,8\n");

	alloc_session_set_holds(s, 1, NULL, 0);
	alloc_session_set_holds(s, 3, NULL, 0);
	alloc_session_set_node(s, "b", NULL, 0, (AllocSessionUnit[]) {{7, "cpu", 1}, {7, "cpu", 5}},
						   2);
	alloc_session_size(s, &nodes, &units, &jobs, &holds);
	check("an id named by another node moves there, twice in a call counts once",
		  nodes == 2 && units == 2 && holds == 1);
	set_job(s, 4, 4, cpu2, 1, NULL, 0, 0);
	expect_run("the moved unit went with its first capacity, its old node lost it", s, 13,
			   "4 waits: no online node has 2 cpu\n");
	alloc_session_drop_job(s, 4);

	alloc_session_set_pool(s, (AllocSessionUnit[]) {{20, "lic", 1}}, 1);
	set_job(s, 5, 5, (AllocNeed[]) {{"cpu", 1}, {"lic", 1}}, 2, NULL, 0, 0);
	set_job(s, 6, 6, lic1, 1, NULL, 0, 0);
	expect_run("pool units go with any node", s, 14,
			   "5 -> a 8,20\n6 waits: not enough lic free (needs 1) [at a from " NEVER "]\n");
	alloc_session_set_pool(s, NULL, 0);
	expect_run("a replaced pool", s, 15, "6 waits: no online node offers lic\n");

	alloc_session_drop_node(s, "b");
	alloc_session_drop_node(s, "zz");	/* unknown: nothing happens */
	alloc_session_drop_node(s, "a");
	alloc_session_size(s, &nodes, &units, &jobs, &holds);
	check("dropped nodes take their units along", nodes == 0 && units == 0);
	set_job(s, 7, 7, cpu1, 1, NULL, 0, 0);
	expect_run("no node left", s, 16, "6 waits: no node is online\n7 waits: no node is online\n");
	alloc_session_free(s);
}

/* Holds: unknown units, ends, the holds of placed jobs. */
static void
test_holds(void)
{
	AllocSession *s = alloc_session_new();
	AllocSession *t = alloc_session_new();

	alloc_session_set_holds(s, 50, (AllocSessionHold[]) {{2, 1, ALLOC_NEVER}}, 1);
	alloc_session_set_holds(s, 999, NULL, 0);	/* unknown: nothing happens */
	set_job(s, 1, 1, cpu2, 1, NULL, 0, 100);
	set_job(s, 2, 2, cpu1, 1, NULL, 0, 100);
	alloc_session_set_node(s, "a", NULL, 0, two_cpus, 2);
	expect_run("a hold on a unit that appeared later counts", s, 1000,
			   "1 waits: not enough cpu free (needs 2) [at a from " NEVER "]\n"
			   "2 waits: earlier joblist 1 holds the queue [at a from " NEVER "]\n");
	alloc_session_set_holds(s, 50, (AllocSessionHold[]) {{2, 1, 1050}}, 1);
	expect_run("with an end the hold is reserved around", s, 1001,
			   "1 waits: not enough cpu free (needs 2) [at a from 1050]\n"
			   "2 waits: reserved for job 1 from 00:17 [at a from 1150]\n");
	alloc_session_set_holds(s, 50, NULL, 0);
	expect_run("placed: ends at now - 1 + limit", s, 1002,
			   "1 -> a 1,2\n2 waits: not enough cpu free (needs 1) [at a from 1102]\n");
	alloc_session_set_node(t, "a", NULL, 0, two_cpus, 2);
	alloc_session_set_holds(t, 1, (AllocSessionHold[]) {{1, 1, 1101}, {2, 1, 1101}}, 2);
	set_job(t, 2, 2, cpu1, 1, NULL, 0, 100);
	expect_diff("the placed job's holds", s, t, "");
	alloc_session_free(s);
	alloc_session_free(t);
}

/* What set_job says is shown is not reported again; reservations are kept. */
static void
test_reported(void)
{
	AllocSession *s = alloc_session_new();
	AllocSessionJob shown = {1, 1, cpu2, 1, NULL, 0, 100,
	"not enough cpu free (needs 2)", "a", 1050};
	AllocSessionJob stale = {2, 2, cpu1, 1, NULL, 0, 0, "old words", "zz", 5};

	alloc_session_set_node(s, "a", NULL, 0, two_cpus, 2);
	alloc_session_set_holds(s, 50, (AllocSessionHold[]) {{2, 1, 1050}}, 1);
	check("set_job shown", alloc_session_set_job(s, &shown) == 0);
	check("set_job stale", alloc_session_set_job(s, &stale) == 0);
	expect_run("what the tables show is not reported; a reservation on no node is none", s, 1000,
			   "2 waits: backfill: needs a time limit [at a from 1150]\n");
	alloc_session_free(s);
}

/* alloc_session_diff finds each kind of difference. */
static void
test_diff(void)
{
	AllocSession *a = alloc_session_new();
	AllocSession *b = alloc_session_new();

	expect_diff("two empty sessions", a, b, "");
	alloc_session_set_node(a, "a", zone_a, 1, two_cpus, 2);
	expect_diff("node count", a, b, "1 nodes against 0");
	alloc_session_set_node(b, "b", zone_a, 1, two_cpus, 2);
	expect_diff("node name", a, b, "node a against b");
	alloc_session_drop_node(b, "b");
	alloc_session_set_node(b, "a", NULL, 0, two_cpus, 2);
	expect_diff("label count", a, b, "node a: 1 labels against 0");
	alloc_session_set_node(b, "a", zone_b, 1, two_cpus, 2);
	expect_diff("label", a, b, "node a: label zone=a against zone=b");
	alloc_session_set_node(b, "a", zone_a, 1, two_cpus, 1);
	expect_diff("unit count", a, b, "a: 2 units against 1");
	alloc_session_set_node(b, "a", zone_a, 1, (AllocSessionUnit[]) {{1, "cpu", 1}, {2, "gpu", 1}},
						   2);
	expect_diff("unit type", a, b, "a: unit 2 cpu x1 against 2 gpu x1");
	alloc_session_set_node(b, "a", zone_a, 1, two_cpus, 2);
	alloc_session_set_pool(a, (AllocSessionUnit[]) {{9, "lic", 3}}, 1);
	expect_diff("pool", a, b, "the pool: 1 units against 0");
	alloc_session_set_pool(b, (AllocSessionUnit[]) {{9, "lic", 3}}, 1);

	alloc_session_set_holds(a, 7, (AllocSessionHold[]) {{1, 1, 100}}, 1);
	expect_diff("hold count", a, b, "holds: 1 jobs against 0");
	alloc_session_set_holds(b, 8, (AllocSessionHold[]) {{1, 1, 100}}, 1);
	expect_diff("holder", a, b, "holds: job 7 only in the first");
	alloc_session_set_holds(b, 8, NULL, 0);
	alloc_session_set_holds(b, 7, (AllocSessionHold[]) {{1, 1, 101}}, 1);
	expect_diff("hold end", a, b, "holds: job 7 differs");
	alloc_session_set_holds(b, 7, (AllocSessionHold[]) {{1, 1, 100}}, 1);

	set_job(a, 3, 1, cpu1, 1, zone_a, 1, 60);
	expect_diff("job count", a, b, "queue: 1 jobs against 0");
	set_job(b, 4, 1, cpu1, 1, zone_a, 1, 60);
	expect_diff("job id", a, b, "queue: job 3 only in the first");
	alloc_session_drop_job(b, 4);
	set_job(b, 3, 2, cpu1, 1, zone_a, 1, 60);
	expect_diff("joblist", a, b, "queue: job 3 differs");
	set_job(b, 3, 1, cpu2, 1, zone_a, 1, 60);
	expect_diff("needs", a, b, "queue: job 3 differs");
	set_job(b, 3, 1, cpu1, 1, zone_b, 1, 60);
	expect_diff("constraints", a, b, "queue: job 3 differs");
	set_job(b, 3, 1, cpu1, 1, zone_a, 1, 61);
	expect_diff("limit", a, b, "queue: job 3 differs");
	set_job(b, 3, 1, cpu1, 1, zone_a, 1, 60);
	expect_diff("the same again", a, b, "");
	{
		AllocSessionJob j = {3, 1, cpu1, 1, zone_a, 1, 60, "shown", "a", 5};

		alloc_session_set_job(b, &j);
		expect_diff("what was reported does not count", a, b, "");
	}
	alloc_session_free(a);
	alloc_session_free(b);
}

/*
 * The equivalence test's model: 8 nodes n0..n7 (node k's units have ids 100k + i),
 * a pool (ids 900 + i), and jobs by id, queued or holding units, with what was
 * last reported for them.
 */
#define RNODES 8
#define RUNITS 8
#define RJOBS 600
#define RHOLDS 4

typedef struct RNode
{
	int			online;
	AllocConstraint labels[2];
	int			nlabels;
	AllocSessionUnit units[RUNITS];
	int			nunits;
} RNode;

typedef struct RJob
{
	int			queued;
	int64_t		joblist;
	AllocNeed	needs[2];
	int			nneeds;
	AllocConstraint cons[1];
	int			ncons;
	int64_t		limit;
	AllocSessionHold holds[RHOLDS * 2];
	int			nholds;
	char		reason[ALLOC_REASON_LEN];	/* what the reference's last run said */
	int			reserved_node;	/* -1: none */
	int64_t		reserved_start;
	char		shown[ALLOC_REASON_LEN];	/* what the session reported */
	int			shown_node;
	int64_t		shown_start;
	int			fresh;			/* set since the last run */
} RJob;

typedef struct Model
{
	RNode		nodes[RNODES];
	AllocSessionUnit pool[RUNITS];
	int			npool;
	RJob		jobs[RJOBS];
	int			next_job;
} Model;

static const char *rnames[RNODES] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"};
static const char *rtypes[] = {"cpu", "gpu", "mem_mb"};
static const char *rzones[] = {"a", "b", "c"};

static void model_node(Model *m, AllocSession *s, int k, unsigned int *seed);
static void model_job(Model *m, AllocSession *s, int id, unsigned int *seed);
static void model_holds(Model *m, AllocSession *s, int id, unsigned int *seed);
static void model_change(Model *m, AllocSession *s, unsigned int *seed);
static int	model_run(Model *m, AllocSession *s, int64_t now, int maxres,
					  int job_test);
static int	model_compare(Model *m, const AllocProblem *p, const AllocOutput *ref,
						  const int *order, const AllocSessionOutput *o);
static AllocSession *model_load(const Model *m);

/* Brings node k up with random labels and units, in the model and in s. */
static void
model_node(Model *m, AllocSession *s, int k, unsigned int *seed)
{
	RNode	   *n = &m->nodes[k];

	n->online = 1;
	n->nlabels = 1 + rand_r(seed) % 2;
	n->labels[0] = (AllocConstraint) {"zone", rzones[rand_r(seed) % 3]};
	n->labels[1] = (AllocConstraint) {"arch", "arm64"};
	n->nunits = rand_r(seed) % RUNITS;
	for (int i = 0; i < n->nunits; i++)
	{
		int			t = rand_r(seed) % 3;

		n->units[i] = (AllocSessionUnit) {100 * k + i, rtypes[t],
		t == 2 ? 1000 + rand_r(seed) % 3000 : 1};
	}
	alloc_session_set_node(s, rnames[k], n->labels, n->nlabels, n->units, n->nunits);
}

/* Queues job id (new or replaced) with random needs, in the model and in s. */
static void
model_job(Model *m, AllocSession *s, int id, unsigned int *seed)
{
	RJob	   *j = &m->jobs[id];
	AllocSessionJob sj;

	j->queued = j->fresh = 1;
	j->joblist = 1 + rand_r(seed) % (id / 2 + 3);
	j->nneeds = 1 + rand_r(seed) % 2;
	j->needs[0] = (AllocNeed) {rtypes[rand_r(seed) % 2], 1 + rand_r(seed) % 3};
	j->needs[1] = rand_r(seed) % 2 ? (AllocNeed) {"lic", 1} :
		(AllocNeed) {"mem_mb", 500 + rand_r(seed) % 2000};
	j->ncons = rand_r(seed) % 4 == 0;
	j->cons[0] = (AllocConstraint) {"zone", rzones[rand_r(seed) % 3]};
	j->limit = rand_r(seed) % 4 == 0 ? 0 : 30 + rand_r(seed) % 600;
	j->reserved_node = j->shown_node = -1;
	j->reserved_start = j->shown_start = ALLOC_NEVER;
	j->reason[0] = j->shown[0] = '\0';
	sj = (AllocSessionJob) {id, j->joblist, j->needs, j->nneeds, j->cons, j->ncons, j->limit,
	NULL, NULL, ALLOC_NEVER};
	alloc_session_set_job(s, &sj);
}

/* Gives job id random holds (on known units or not, ending any time), in both. */
static void
model_holds(Model *m, AllocSession *s, int id, unsigned int *seed)
{
	RJob	   *j = &m->jobs[id];

	j->nholds = rand_r(seed) % RHOLDS;
	for (int h = 0; h < j->nholds; h++)
	{
		int			r = rand_r(seed) % 4;

		j->holds[h] = (AllocSessionHold) {
			rand_r(seed) % 5 == 0 ? 900 + rand_r(seed) % 4 :
			100 * (rand_r(seed) % RNODES) + rand_r(seed) % RUNITS,
			rand_r(seed) % 6 == 0 ? 0 : 1 + rand_r(seed) % 1500,
			r == 0 ? ALLOC_NEVER : r == 1 ? 10 : 1000 + rand_r(seed) % 20000};
	}
	alloc_session_set_holds(s, id, j->holds, j->nholds);
}

/* Applies one random change to the model and to s. */
static void
model_change(Model *m, AllocSession *s, unsigned int *seed)
{
	int			k = rand_r(seed) % RNODES,
				id = 1 + rand_r(seed) % (m->next_job > 1 ? m->next_job - 1 : 1);

	switch (rand_r(seed) % 10)
	{
		case 0:
			model_node(m, s, k, seed);
			break;
		case 1:
			m->nodes[k].online = 0;
			alloc_session_drop_node(s, rnames[k]);
			break;
		case 2:
			m->npool = rand_r(seed) % 4;
			for (int i = 0; i < m->npool; i++)
				m->pool[i] = (AllocSessionUnit) {900 + i, "lic", 1};
			alloc_session_set_pool(s, m->pool, m->npool);
			break;
		case 3:
		case 4:
		case 5:
			if (m->next_job < RJOBS)
				model_job(m, s, m->next_job++, seed);
			break;
		case 6:
			m->jobs[id].queued = 0;
			alloc_session_drop_job(s, id);
			break;
		case 7:
		case 8:
			m->jobs[id].nholds = 0;
			alloc_session_set_holds(s, id, NULL, 0);
			break;
		default:
			if (m->jobs[id].queued)
				model_job(m, s, id, seed);
			else
				model_holds(m, s, id, seed);
	}
}

/* Returns where resource id is in p, or -1. */
static int
unit_index(const AllocProblem *p, int64_t id)
{
	for (int u = 0; u < p->nunits; u++)
		if (p->units[u].resource_id == id)
			return u;
	return -1;
}

/*
 * Compares the session's output o with the reference ref (jobs of p in order) and
 * applies both to the model; returns 1 when they agree.
 */
static int
model_compare(Model *m, const AllocProblem *p, const AllocOutput *ref, const int *order,
			  const AllocSessionOutput *o)
{
	int			ok = 1,
				placed = 0,
				changed = 0;

	for (int w = 0; w < o->nwaits; w++)
	{
		RJob	   *j = &m->jobs[o->waits[w].job_id];

		snprintf(j->shown, sizeof(j->shown), "%s", o->waits[w].reason);
		j->shown_start = o->waits[w].expected_start;
		j->shown_node = -1;
		for (int k = 0; o->waits[w].reserved_node && k < RNODES; k++)
			if (strcmp(rnames[k], o->waits[w].reserved_node) == 0)
				j->shown_node = k;
	}
	for (int q = 0; q < p->njobs; q++)
	{
		const AllocResult *r = &ref->results[q];
		RJob	   *j = &m->jobs[order[q]];
		int64_t		end = j->limit <= 0 ? ALLOC_NEVER : p->now - 1 + j->limit;

		if (q >= ref->looked)
		{
			/* not looked at: what it was told stands, a new job is behind earlier jobs */
			if (j->fresh)
			{
				char		behind[ALLOC_REASON_LEN];
				size_t		used = snprintf(behind, sizeof(behind), "behind earlier jobs (needs ");

				for (int i = 0; i < j->nneeds; i++)
					used += snprintf(behind + used, sizeof(behind) - used, "%s%lld %s",
									 i ? ", " : "", (long long) j->needs[i].count,
									 j->needs[i].type);
				snprintf(behind + used, sizeof(behind) - used, ")");
				changed += strcmp(j->reason, behind) != 0 || j->reserved_node != -1 ||
					j->reserved_start != ALLOC_NEVER;
				snprintf(j->reason, sizeof(j->reason), "%s", behind);
				j->reserved_node = -1;
				j->reserved_start = ALLOC_NEVER;
			}
			ok &= strcmp(j->shown, j->reason) == 0 && j->shown_node == j->reserved_node &&
				j->shown_start == j->reserved_start;
			continue;
		}
		if (r->node < 0)
		{
			int			node = r->reserved_node < 0 ? -1 : atoi(p->nodes[r->reserved_node] + 1);

			changed += strcmp(j->reason, r->reason) != 0 || j->reserved_node != node ||
				j->reserved_start != r->expected_start;
			snprintf(j->reason, sizeof(j->reason), "%s", r->reason);
			j->reserved_node = node;
			j->reserved_start = r->expected_start;
			ok &= strcmp(j->shown, j->reason) == 0 && j->shown_node == node &&
				j->shown_start == r->expected_start;
			continue;
		}
		ok &= placed < o->nplaced && o->placed[placed].job_id == order[q] &&
			strcmp(o->placed[placed].node, p->nodes[r->node]) == 0 &&
			o->placed[placed].ntakes == r->ntakes;
		j->queued = 0;
		j->nholds = r->ntakes;
		for (int k = 0; k < r->ntakes; k++)
		{
			const AllocTake *t = &ref->takes[r->first_take + k];

			j->holds[k] = (AllocSessionHold) {p->units[t->unit].resource_id, t->amount, end};
			ok &= !ok || (o->takes[o->placed[placed].first_take + k].resource_id ==
						  p->units[t->unit].resource_id &&
						  o->takes[o->placed[placed].first_take + k].amount == t->amount);
		}
		placed++;
	}
	for (int id = 0; id < RJOBS; id++)
		m->jobs[id].fresh = 0;
	return ok && placed == o->nplaced && changed == o->nwaits;
}

/* Runs s and alloc_run on the model's problem built from scratch; 1 when they agree. */
static int
model_run(Model *m, AllocSession *s, int64_t now, int maxres, int job_test)
{
	const char *names[RNODES];
	int			node_of[RNODES];
	AllocLabel	labels[RNODES * 2];
	AllocUnit	units[RNODES * RUNITS + RUNITS];
	AllocHold	holds[RJOBS * RHOLDS * 2];
	AllocJob	jobs[RJOBS];
	int			order[RJOBS];
	AllocProblem p;
	AllocOutput ref;
	AllocSessionOutput o;
	int			ok;

	p = (AllocProblem) {names, 0, labels, 0, units, 0, jobs, 0, now, holds, 0, maxres, NULL,
	job_test};
	for (int k = 0; k < RNODES; k++)
	{
		node_of[k] = -1;
		if (!m->nodes[k].online)
			continue;
		node_of[k] = p.nnodes;
		names[p.nnodes] = rnames[k];
		for (int l = 0; l < m->nodes[k].nlabels; l++)
			labels[p.nlabels++] = (AllocLabel) {p.nnodes, m->nodes[k].labels[l].key,
			m->nodes[k].labels[l].value};
		for (int i = 0; i < m->nodes[k].nunits; i++)
			units[p.nunits++] = (AllocUnit) {m->nodes[k].units[i].resource_id,
				m->nodes[k].units[i].type, p.nnodes, m->nodes[k].units[i].capacity,
			m->nodes[k].units[i].capacity};
		p.nnodes++;
	}
	for (int i = 0; i < m->npool; i++)
		units[p.nunits++] = (AllocUnit) {m->pool[i].resource_id, "lic", -1, 1, 1};
	for (int id = 1; id < RJOBS; id++)
		for (int h = 0; h < m->jobs[id].nholds; h++)
		{
			const AllocSessionHold *hold = &m->jobs[id].holds[h];
			int			u = unit_index(&p, hold->resource_id);

			if (u < 0)
				continue;
			if (hold->amount > 0)
				units[u].free = units[u].free > hold->amount ? units[u].free - hold->amount : 0;
			holds[p.nholds++] = (AllocHold) {u, hold->amount, hold->end};
		}
	for (int id = 1; id < m->next_job; id++)
		if (m->jobs[id].queued)
		{
			int			q = p.njobs++;

			while (q > 0 && (m->jobs[order[q - 1]].joblist > m->jobs[id].joblist))
			{
				order[q] = order[q - 1];
				q--;
			}
			order[q] = id;
		}
	for (int q = 0; q < p.njobs; q++)
	{
		const RJob *j = &m->jobs[order[q]];
		int			rn = j->reserved_node >= 0 ? node_of[j->reserved_node] : -1;

		jobs[q] = (AllocJob) {order[q], j->joblist, j->needs, j->nneeds, j->cons, j->ncons,
			j->limit, rn >= 0, rn, j->reserved_start};
	}
	if (alloc_run(&p, &ref) < 0 || alloc_session_run(s, now, maxres, job_test, NULL, &o) < 0)
		return 0;
	ok = model_compare(m, &p, &ref, order, &o);
	alloc_output_free(&ref);
	return ok;
}

/* Returns a new session loaded with the model from scratch. */
static AllocSession *
model_load(const Model *m)
{
	AllocSession *s = alloc_session_new();

	for (int k = RNODES - 1; k >= 0; k--)
		if (m->nodes[k].online)
			alloc_session_set_node(s, rnames[k], m->nodes[k].labels, m->nodes[k].nlabels,
								   m->nodes[k].units, m->nodes[k].nunits);
	alloc_session_set_pool(s, m->pool, m->npool);
	for (int id = 1; id < RJOBS; id++)
	{
		const RJob *j = &m->jobs[id];
		AllocSessionJob sj = {id, j->joblist, j->needs, j->nneeds, j->cons, j->ncons, j->limit,
		NULL, NULL, ALLOC_NEVER};

		alloc_session_set_holds(s, id, j->holds, j->nholds);
		if (j->queued)
			alloc_session_set_job(s, &sj);
	}
	return s;
}

/* Random traces: every run of the session is alloc_run on the problem from scratch. */
static void
test_equivalence(void)
{
	unsigned int seed = 2026;
	int			runs = 0,
				agree = 0,
				same_model = 0;

	for (int trace = 0; trace < 40; trace++)
	{
		Model	   *m = calloc(1, sizeof(Model));
		AllocSession *s = alloc_session_new();
		int64_t		now = 1000;
		int			maxres = trace % 3 == 0 ? 0 : 1 + trace % 4,
					job_test = trace % 5 < 2 ? 0 : 1 + trace % 7;

		m->next_job = 1;
		for (int k = 0; k < RNODES; k++)
			if (rand_r(&seed) % 4)
				model_node(m, s, k, &seed);
		for (int step = 0; step < 60; step++)
		{
			int			changes = 1 + rand_r(&seed) % 12;
			AllocSession *fresh;
			char		why[256];

			for (int c = 0; c < changes; c++)
				model_change(m, s, &seed);
			now += rand_r(&seed) % 4 == 0 ? 0 : 1 + rand_r(&seed) % 300;
			runs++;
			agree += model_run(m, s, now, maxres, job_test);
			fresh = model_load(m);
			if (alloc_session_diff(s, fresh, why, sizeof(why)) == 0)
				same_model++;
			else
				printf("model differs: %s\n", why);
			alloc_session_free(fresh);
		}
		alloc_session_free(s);
		free(m);
	}
	check("every run agrees with alloc_run from scratch", agree == runs);
	check("the session's model is the model loaded from scratch", same_model == runs);
	if (agree != runs || same_model != runs)
		printf("%d runs: %d agree, %d same model\n", runs, agree, same_model);
}

/*
 * Runs a scenario touching every function that allocates; returns 1 when it ran
 * to its end, 0 when a call reported that memory ran out (the session is freed).
 */
static int
oom_scenario(void)
{
	AllocSession *s = alloc_session_new();
	AllocSession *t = NULL;
	AllocSessionJob shown = {1, 1, cpu2, 1, zone_a, 1, 100, "old", "a", 5};
	AllocSessionOutput o;
	char		why[64];
	int			ok;

	if (!s)
		return 0;
	ok = alloc_session_set_node(s, "b", zone_a, 1, two_cpus, 2) == 0 &&
		alloc_session_set_node(s, "a", zone_b, 1, (AllocSessionUnit[]) {{3, "cpu", 1}}, 1) == 0 &&
		alloc_session_set_node(s, "a", zone_a, 1, (AllocSessionUnit[]) {{1, "cpu", 1}}, 1) == 0 &&
		alloc_session_set_pool(s, (AllocSessionUnit[]) {{9, "lic", 1}}, 1) == 0 &&
		alloc_session_set_holds(s, 50, (AllocSessionHold[]) {{2, 1, 1050}, {7, 1, 9}}, 2) == 0 &&
		alloc_session_set_job(s, &shown) == 0 &&
		alloc_session_set_job(s, &shown) == 0;
	for (int id = 2; ok && id < 6; id++)
	{
		AllocSessionJob j = {id, id, (AllocNeed[]) {{"cpu", 1}, {"lic", 1}}, 2, NULL, 0, 60,
		NULL, NULL, ALLOC_NEVER};

		ok = alloc_session_set_job(s, &j) == 0;
	}
	ok = ok && alloc_session_run(s, 1000, 1, 1, NULL, &o) == 0 &&
		alloc_session_set_holds(s, 50, NULL, 0) == 0 &&
		alloc_session_run(s, 1001, 0, 0, NULL, &o) == 0 && (t = alloc_session_new()) != NULL;
	if (ok)
		alloc_session_diff(s, t, why, sizeof(why));
	alloc_session_free(s);
	alloc_session_free(t);
	return ok;
}

/* Every allocation of the scenario fails in turn: -1 or NULL, then a clean free. */
static void
test_out_of_memory(void)
{
	int			points = fail_each(oom_scenario, 100000);

	check("every allocation of the scenario failed in turn, each freed cleanly", points > 50);
	printf("out of memory at %d allocations in turn\n", points);
	check("the scenario runs to its end without failures", oom_scenario());
}

int
main(void)
{
	test_queue();
	test_nodes();
	test_holds();
	test_reported();
	test_diff();
	test_equivalence();
	test_out_of_memory();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
