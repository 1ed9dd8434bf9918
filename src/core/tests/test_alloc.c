/*
 * test_alloc.c: unit tests of the allocator (alloc.c).
 *
 * Each scenario builds a small problem from a compact text description, runs
 * alloc_run() and compares a rendering of the result, one line per job
 * ("7 -> a 1,2" or "7 waits: reason"), with the expected text.  A randomised
 * property test checks that no unit is ever handed out beyond what it has free and
 * that the result is deterministic, with amounts small and near INT64_MAX; the
 * limit scenarios are the sums a hostile agent's amounts would overflow.
 */
#include "alloc.h"
#include "alloc_sim.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 64

typedef struct Scenario
{
	const char *nodes[MAXN];	/* node names, NULL-terminated */
	AllocLabel	labels[MAXN];	/* terminated by key NULL */
	AllocUnit	units[MAXN];	/* terminated by type NULL */
	AllocJob	jobs[MAXN];		/* terminated by job_id 0 */
	AllocHold	holds[MAXN];	/* terminated by amount 0 */
	int			max_reservations;
	int			max_job_test;
} Scenario;

static int	passed;
static int	failed;

static int	count_until_null(const void *base, size_t size, size_t offset);
static void render(const AllocProblem *p, const AllocOutput *out, char *buf, size_t len);
static void expect(const char *name, const Scenario *s, const char *want);
static void test_scenarios(void);
static void test_limits(void);
static void test_backfill(void);
static void test_random(void);
static void test_trace(void);
static void test_types(void);
static void test_labels(void);

/* Counts array entries until the pointer field at offset is NULL (or zero). */
static int
count_until_null(const void *base, size_t size, size_t offset)
{
	int			n = 0;

	while (*(const void *const *) ((const char *) base + n * size + offset) != NULL)
		n++;
	return n;
}

/* Renders the result of every job, one line each. */
static void
render(const AllocProblem *p, const AllocOutput *out, char *buf, size_t len)
{
	size_t		used = 0;

	buf[0] = '\0';
	for (int j = out->looked; j < p->njobs; j++)
		used += snprintf(buf + used, len - used, "%lld not looked at\n",
						 (long long) p->jobs[j].job_id);
	for (int j = 0; j < out->looked; j++)
	{
		const AllocResult *r = &out->results[j];

		if (r->node < 0 && r->expected_start != ALLOC_NEVER)
			used += snprintf(buf + used, len - used, "%lld waits: %s (starts %lld)\n",
							 (long long) p->jobs[j].job_id, r->reason,
							 (long long) r->expected_start);
		else if (r->node < 0)
			used += snprintf(buf + used, len - used, "%lld waits: %s\n",
							 (long long) p->jobs[j].job_id, r->reason);
		else
		{
			used += snprintf(buf + used, len - used, "%lld -> %s",
							 (long long) p->jobs[j].job_id, p->nodes[r->node]);
			for (int k = 0; k < r->ntakes; k++)
			{
				const AllocTake *t = &out->takes[r->first_take + k];

				used += snprintf(buf + used, len - used, "%c%lld", k ? ',' : ' ',
								 (long long) p->units[t->unit].resource_id);
				if (t->amount != 1)
					used += snprintf(buf + used, len - used, "x%lld", (long long) t->amount);
			}
			used += snprintf(buf + used, len - used, "\n");
		}
	}
}

/* Runs scenario s and compares its rendering with want. */
static void
expect(const char *name, const Scenario *s, const char *want)
{
	AllocProblem p = {0};
	AllocOutput out;
	char		got[4096];
	int			njobs = 0;

	p.nodes = s->nodes;
	p.nnodes = count_until_null(s->nodes, sizeof(char *), 0);
	p.labels = s->labels;
	p.nlabels = count_until_null(s->labels, sizeof(AllocLabel), offsetof(AllocLabel, key));
	p.units = s->units;
	p.nunits = count_until_null(s->units, sizeof(AllocUnit), offsetof(AllocUnit, type));
	while (s->jobs[njobs].job_id != 0)
		njobs++;
	p.jobs = s->jobs;
	p.njobs = njobs;
	p.holds = s->holds;
	while (s->holds[p.nholds].amount != 0)
		p.nholds++;
	p.max_reservations = s->max_reservations;
	p.max_job_test = s->max_job_test;
	if (alloc_run(&p, &out) < 0)
	{
		failed++;
		fprintf(stderr, "FAIL %s: alloc_run failed\n", name);
		return;
	}
	render(&p, &out, got, sizeof(got));
	alloc_output_free(&out);
	if (strcmp(got, want) == 0)
		passed++;
	else
	{
		failed++;
		fprintf(stderr, "FAIL %s\n--- want\n%s--- got\n%s", name, want, got);
	}
}

static const AllocNeed cpu1[] = {{"cpu", 1}};
static const AllocNeed cpu2[] = {{"cpu", 2}};
static const AllocNeed gpu1[] = {{"gpu", 1}};
static const AllocNeed gpu2[] = {{"gpu", 2}};
static const AllocNeed gpu4[] = {{"gpu", 4}};
static const AllocNeed mem600[] = {{"mem_mb", 600}};
static const AllocNeed cpu1_lic1[] = {{"cpu", 1}, {"lic", 1}};
static const AllocNeed cpu3[] = {{"cpu", 3}};
static const AllocConstraint zone_b[] = {{"zone", "b"}};
static const AllocConstraint zone_c[] = {{"zone", "c"}};
static const AllocConstraint arm_zone_a[] = {{"arch", "arm64"}, {"zone", "a"}};
static const AllocConstraint node_a[] = {{"node", "a"}};

/* Every rule of docs/internals.md "Allocation rules", one scenario each. */
static void
test_scenarios(void)
{
	expect("best fit picks the node with least left over", &(Scenario) {
		.nodes = {"a", "b"},
		.units = {{1, "cpu", 0, 1, 1}, {2, "cpu", 0, 1, 1}, {3, "cpu", 0, 1, 1},
				  {4, "cpu", 1, 1, 1}, {5, "cpu", 1, 1, 1}},
		.jobs = {{10, 1, cpu2, 1}, {11, 1, cpu2, 1}},
	}, "10 -> b 4,5\n11 -> a 1,2\n");

	expect("ties go to the first node; units in the given order, busy ones skipped", &(Scenario) {
		.nodes = {"a", "b"},
		.units = {{7, "gpu", 0, 0, 1}, {3, "gpu", 0, 1, 1}, {9, "gpu", 0, 1, 1},
				  {4, "gpu", 1, 1, 1}, {5, "gpu", 1, 1, 1}},
		.jobs = {{10, 1, gpu1, 1}, {11, 1, gpu1, 1}, {12, 1, gpu1, 1}},
	}, "10 -> a 3\n11 -> a 9\n12 -> b 4\n");

	expect("cluster-wide pools combine with node-local units", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "cpu", 0, 1, 1}, {2, "lic", -1, 1, 1}, {3, "cpu", -1, 1, 1}},
		.jobs = {{10, 1, cpu1_lic1, 2}, {11, 1, cpu1_lic1, 2}},
	}, "10 -> a 1,2\n11 waits: not enough lic free (needs 1)\n");

	expect("node-local units first, then the pool", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "cpu", 0, 1, 1}, {2, "cpu", 0, 1, 1}, {3, "cpu", -1, 1, 1}},
		.jobs = {{10, 1, cpu3, 1}},
	}, "10 -> a 1,2,3\n");

	expect("amount resources give part of their capacity", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "mem_mb", 0, 1000, 1000}},
		.jobs = {{10, 1, mem600, 1}, {11, 2, mem600, 1}, {12, 3, cpu1, 1}},
	}, "10 -> a 1x600\n11 waits: not enough mem_mb free (needs 600)\n"
	   "12 waits: no online node offers cpu\n");

	expect("constraints match labels and pseudo-labels", &(Scenario) {
		.nodes = {"a", "b"},
		.labels = {{0, "zone", "a"}, {0, "arch", "x86_64"}, {1, "zone", "b"},
				   {1, "arch", "arm64"}, {0, "node", "a"}, {1, "node", "b"}},
		.units = {{1, "cpu", 0, 1, 1}, {2, "cpu", 1, 1, 1}},
		.jobs = {{10, 1, cpu1, 1, zone_b, 1}, {11, 1, cpu1, 1, zone_c, 1},
				 {12, 1, cpu1, 1, arm_zone_a, 2}, {13, 1, cpu1, 1, node_a, 1}},
	}, "10 -> b 2\n11 waits: no online node matches zone=c\n"
	   "12 waits: no online node matches arch=arm64, zone=a\n13 -> a 1\n");

	expect("types nobody offers and capacities too small", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "gpu", 0, 1, 1}, {2, "gpu", 0, 1, 1}, {3, "cpu", 0, 1, 1}},
		.jobs = {{10, 1, gpu4, 1}, {11, 2, (AllocNeed[]) {{"fpga", 1}}, 1}, {12, 3, gpu1, 1}},
	}, "10 waits: no online node has 4 gpu\n11 waits: no online node offers fpga\n12 -> a 1\n");

	expect("FIFO without overtaking: a later joblist waits, other types go ahead", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "gpu", 0, 0, 1}, {2, "gpu", 0, 1, 1}, {3, "cpu", 0, 1, 1}},
		.jobs = {{10, 1, gpu2, 1}, {11, 1, gpu1, 1}, {12, 2, gpu1, 1}, {13, 3, cpu1, 1}},
	}, "10 waits: not enough gpu free (needs 2)\n11 waits: earlier job 10 holds the queue\n"
	   "12 waits: earlier joblist 1 holds the queue\n13 -> a 3\n");

	expect("a waiting job holds back only the nodes its constraints allow", &(Scenario) {
		.nodes = {"a", "b"},
		.labels = {{0, "node", "a"}, {1, "node", "b"}},
		.units = {{1, "gpu", 0, 1, 1}, {2, "gpu", 1, 1, 1}},
		.jobs = {{10, 1, gpu2, 1, node_a, 1}, {11, 2, gpu1, 1}},
	}, "10 waits: no online node has 2 gpu\n11 -> a 1\n");

	expect("a blocked job reserves its pool too", &(Scenario) {
		.nodes = {"a", "b"},
		.labels = {{0, "node", "a"}, {1, "node", "b"}},
		.units = {{1, "gpu", 0, 1, 1}, {2, "gpu", 0, 0, 1}, {3, "lic", -1, 1, 1},
				  {4, "cpu", 1, 1, 1}},
		.jobs = {{10, 1, (AllocNeed[]) {{"gpu", 2}, {"lic", 1}}, 2, node_a, 1},
				 {11, 2, cpu1_lic1, 2}, {12, 2, gpu1, 1}},
	}, "10 waits: not enough gpu free (needs 2)\n11 waits: earlier joblist 1 holds the queue\n"
	   "12 waits: earlier joblist 1 holds the queue\n");

	expect("no nodes at all", &(Scenario) {
		.jobs = {{10, 1, cpu1, 1}},
	}, "10 waits: no node is online\n");
}

static const AllocNeed cpu4[] = {{"cpu", 4}};
static const AllocNeed cpu5[] = {{"cpu", 5}};
static const AllocNeed lic1[] = {{"lic", 1}};
static const AllocNeed lic2[] = {{"lic", 2}};
static const AllocNeed cpu1_lic2[] = {{"cpu", 1}, {"lic", 2}};

/* Backfill (docs/internals.md "Allocation rules"): reservations, limits, reasons. */
static void
test_backfill(void)
{
	expect("a waiting job reserves its earliest start; only what ends before may use it", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "cpu", 0, 0, 1}, {2, "cpu", 0, 0, 1}, {3, "cpu", 0, 1, 1},
				  {4, "cpu", 0, 1, 1}, {5, "cpu", 0, 1, 1}},
		.holds = {{0, 1, 100}, {1, 1, 100}},
		.jobs = {{10, 1, cpu5, 1, .limit = 50}, {11, 2, cpu2, 1, .limit = 100},
				 {12, 3, cpu1, 1, .limit = 200}, {13, 4, cpu1, 1}, {14, 5, cpu1, 1, .limit = 100}},
	}, "10 waits: not enough cpu free (needs 5) (starts 100)\n11 -> a 3,4\n"
	   "12 waits: reserved for job 10 from 00:01 (starts 150)\n"
	   "13 waits: backfill: needs a time limit (starts 150)\n14 -> a 5\n");

	expect("a start that is not known reserves from now, limit or not", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "gpu", 0, 0, 1}, {2, "gpu", 0, 1, 1}},
		.jobs = {{10, 1, gpu2, 1, .limit = 10}, {11, 2, gpu1, 1, .limit = 5}},
	}, "10 waits: not enough gpu free (needs 2)\n11 waits: earlier joblist 1 holds the queue\n");

	expect("the reservation goes where the job starts soonest; other nodes stay open", &(Scenario) {
		.nodes = {"a", "b", "c"},
		.units = {{1, "cpu", 0, 0, 1}, {2, "cpu", 0, 0, 1}, {3, "cpu", 1, 0, 1},
				  {4, "cpu", 1, 0, 1}, {5, "cpu", 2, 1, 1}},
		.holds = {{0, 1, 300}, {1, 1, 300}, {2, 1, 100}, {3, 1, 100}},
		.jobs = {{10, 1, cpu2, 1, .limit = 50}, {11, 2, cpu2, 1, .limit = 1000},
				 {12, 3, cpu1, 1}},
	}, "10 waits: not enough cpu free (needs 2) (starts 100)\n"
	   "11 waits: not enough cpu free (needs 2) (starts 150)\n12 -> c 5\n");

	expect("past the reservations a waiting job is behind earlier jobs, closes only what it is short of", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "cpu", 0, 1, 1}, {2, "cpu", 0, 1, 1}, {3, "lic", -1, 0, 1},
				  {4, "lic", -1, 1, 1}},
		.holds = {{2, 1, 100}},
		.max_reservations = 1,
		.jobs = {{10, 1, cpu1_lic2, 2, .limit = 10}, {11, 2, lic2, 1, .limit = 10},
				 {12, 3, lic1, 1, .limit = 5}, {13, 4, cpu1, 1, .limit = 5}},
	}, "10 waits: not enough lic free (needs 2) (starts 100)\n"
	   "11 waits: behind earlier jobs (needs 2 lic)\n12 waits: behind earlier jobs (needs 1 lic)\n"
	   "13 -> a 1\n");

	expect("past the reservations the pass looks at max_job_test waiting jobs, then stops", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "cpu", 0, 1, 1}, {2, "cpu", 0, 0, 1}, {3, "gpu", 0, 1, 1}},
		.holds = {{1, 1, 100}},
		.max_reservations = 1,
		.max_job_test = 2,
		.jobs = {{10, 1, cpu2, 1, .limit = 10}, {11, 2, cpu1, 1, .limit = 5},
				 {12, 3, cpu2, 1}, {13, 4, gpu1, 1}, {14, 5, lic1, 1},
				 {15, 6, gpu1, 1}},
	}, "15 not looked at\n10 waits: not enough cpu free (needs 2) (starts 100)\n"
	   "11 -> a 1\n12 waits: behind earlier jobs (needs 2 cpu)\n13 -> a 3\n"
	   "14 waits: no online node offers lic\n");

	expect("a later job's promise is named with its own start", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "cpu", 0, 1, 1}},
		.jobs = {{10, 1, cpu1, 1, .limit = 10000},
				 {11, 2, cpu1, 1, .limit = 100, .reserved = 1, .reserved_node = 0,
				  .reserved_start = 7200}},
	}, "10 waits: reserved for job 11 from 02:00 (starts 7300)\n11 -> a 1\n");

	expect("last cycle's promises are kept: an earlier job never lands on a later one's", &(Scenario) {
		.nodes = {"a", "b"},
		.units = {{1, "cpu", 0, 0, 1}, {2, "cpu", 0, 0, 1}, {3, "cpu", 1, 0, 1},
				  {4, "cpu", 1, 0, 1}},
		.holds = {{0, 1, 100}, {1, 1, 100}, {2, 1, 50}, {3, 1, 200}},
		.jobs = {{10, 1, cpu2, 1, .limit = 100, .reserved = 1, .reserved_node = 0,
				  .reserved_start = 100},
				 {11, 2, cpu1, 1, .limit = 100, .reserved = 1, .reserved_node = 1,
				  .reserved_start = 50}},
	}, "10 waits: not enough cpu free (needs 2) (starts 100)\n"
	   "11 waits: not enough cpu free (needs 1) (starts 50)\n");

	expect("a promise a running job's overrun broke is not pushed behind later ones", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "cpu", 0, 0, 1}, {2, "cpu", 0, 0, 1}, {3, "cpu", 0, 0, 1},
				  {4, "cpu", 0, 1, 1}},
		.holds = {{0, 1, 100}, {1, 1, 100}, {2, 1, 100}},
		.jobs = {{10, 1, cpu4, 1, .limit = 50, .reserved = 1, .reserved_node = 0,
				  .reserved_start = 90},
				 {11, 2, cpu1, 1, .limit = 1000, .reserved = 1, .reserved_node = 0,
				  .reserved_start = 140}},
	}, "10 waits: not enough cpu free (needs 4) (starts 100)\n"
	   "11 waits: reserved for job 10 from 00:01 (starts 150)\n");

	expect("a job past its limit lets go any second; bad holds are ignored", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "cpu", 0, 0, 1}, {2, "gpu", 0, 1, 1}},
		.holds = {{0, 1, -50}, {0, 5, 10}, {7, 1, 10}, {-1, 1, 10}, {1, 1, 10}},
		.jobs = {{10, 1, cpu1, 1, .limit = 10}},
	}, "10 waits: not enough cpu free (needs 1) (starts 1)\n");
}

#define MAX INT64_MAX

/* Amounts at INT64_MAX: every sum of them would overflow 64 bits. */
static void
test_limits(void)
{
	static const AllocNeed cpu_max[] = {{"cpu", MAX}};
	static const AllocNeed mem_max[] = {{"mem_mb", MAX}};
	static const AllocNeed cpu1_gpu1[] = {{"cpu", 1}, {"gpu", 1}};
	static const AllocConstraint node_b[] = {{"node", "b"}};

	/* Node a's cpus saturate their group's sum: once 11 took INT64_MAX, the group
	 * counts nothing left (really INT64_MAX): 12 waits rather than be over-given. */
	expect("a huge node does not starve a job pinned to another node", &(Scenario) {
		.nodes = {"a", "b"},
		.labels = {{0, "node", "a"}, {1, "node", "b"}},
		.units = {{1, "cpu", 0, MAX, MAX}, {2, "cpu", 0, MAX, MAX}, {3, "cpu", 1, 1, 1}},
		.jobs = {{10, 1, cpu1, 1, node_b, 1}, {11, 2, cpu_max, 1}, {12, 3, cpu_max, 1}},
	}, "10 -> b 3\n11 -> a 1x9223372036854775807\n"
	   "12 waits: not enough cpu free (needs 9223372036854775807)\n");

	expect("a node's units and the pool add up beyond INT64_MAX", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "mem_mb", 0, MAX, MAX}, {2, "mem_mb", -1, MAX, MAX}},
		.jobs = {{10, 1, mem_max, 1}, {11, 2, mem_max, 1}, {12, 3, mem600, 1}},
	}, "10 -> a 1x9223372036854775807\n11 -> a 2x9223372036854775807\n"
	   "12 waits: not enough mem_mb free (needs 600)\n");

	expect("best fit counts huge leftovers exactly", &(Scenario) {
		.nodes = {"a", "b"},
		.units = {{1, "cpu", 0, MAX, MAX}, {2, "gpu", 0, MAX, MAX},
				  {3, "cpu", 1, 2, 2}, {4, "gpu", 1, 2, 2}},
		.jobs = {{10, 1, cpu1_gpu1, 2}},
	}, "10 -> b 3,4\n");

	expect("a job waiting for a huge node holds back only that node", &(Scenario) {
		.nodes = {"a", "b"},
		.labels = {{0, "node", "a"}, {1, "node", "b"}},
		.units = {{1, "cpu", 0, MAX, MAX}, {2, "cpu", 0, MAX, MAX}, {3, "gpu", 0, 0, 1},
				  {4, "cpu", 1, 1, 1}},
		.jobs = {{10, 1, cpu1_gpu1, 2, node_a, 1}, {11, 2, cpu1, 1, node_b, 1}},
	}, "10 waits: not enough gpu free (needs 1)\n11 -> b 4\n");

	expect("past the reservation depth the needs are written whole, up to INT64_MAX", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "mem_mb", 0, 0, MAX}, {2, "cpu", 0, 1, 1}},
		.holds = {{0, MAX, 100}},
		.max_reservations = 1,
		.jobs = {{10, 1, mem_max, 1, .limit = 10}, {11, 2, (AllocNeed[]) {{"cpu", 1}, {"mem_mb", MAX}},
				  2, .limit = 10}},
	}, "10 waits: not enough mem_mb free (needs 9223372036854775807) (starts 100)\n"
	   "11 waits: behind earlier jobs (needs 1 cpu, 9223372036854775807 mem_mb)\n");

	expect("a reason past the reservation depth is cut at its end", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "gpu", 0, 0, 1}, {2, "gpu", 0, 1, 1}},
		.holds = {{0, 1, 100}},
		.max_reservations = 1,
		.jobs = {{10, 1, gpu2, 1, .limit = 10}, {11, 2, (AllocNeed[]) {
			{"gpu", 2}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0},
			{"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0},
			{"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0},
			{"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}, {"gpu", 0}},
		28, .limit = 10}},
	}, "10 waits: not enough gpu free (needs 2) (starts 100)\n"
	   "11 waits: behind earlier jobs (needs 2 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, "
	   "0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, "
	   "0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 gpu, 0 g\n");

	expect("types no job needs are ignored, however many", &(Scenario) {
		.nodes = {"a"},
		.units = {{1, "junk", 0, MAX, MAX}, {2, "junk2", 0, MAX, MAX}, {3, "cpu", 0, 1, 1},
				  {4, "junk", -1, MAX, MAX}},
		.jobs = {{10, 1, cpu1, 1}, {11, 2, cpu1, 1}},
	}, "10 -> a 3\n11 waits: not enough cpu free (needs 1)\n");
}

/* Random problems: never more than free is handed out, and runs are deterministic. */
static void
test_random(void)
{
	static const char *names[] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"};
	static const char *types[] = {"cpu", "gpu", "mem_mb"};
	unsigned int seed = 12345;

	for (int round = 0; round < 200; round++)
	{
		AllocUnit	units[200];
		AllocJob	jobs[100];
		AllocNeed	needs[100][2];
		int64_t		given[200] = {0};
		AllocProblem p = {.nodes = names, .nnodes = 8, .units = units, .jobs = jobs};
		AllocOutput a, b;
		char		ra[16384], rb[16384];
		int			ok = 1;

		for (int u = 0; u < 200; u++)
		{
			int			t = rand_r(&seed) % 3;
			int64_t		cap = t < 2 ? 1 : round % 2 ? MAX - rand_r(&seed) % 4000 :
				1 + rand_r(&seed) % 4000;

			units[u] = (AllocUnit) {u + 1, types[t], (int) (rand_r(&seed) % 9) - 1,
				rand_r(&seed) % 3 ? cap : 0, cap};
		}
		p.nunits = 200;
		for (int j = 0; j < 100; j++)
		{
			int			n = 1 + rand_r(&seed) % 2;

			for (int k = 0; k < n; k++)
				needs[j][k] = (AllocNeed) {types[(k + rand_r(&seed)) % 3],
					1 + rand_r(&seed) % (k ? 3 : 900)};
			if (n == 2 && strcmp(needs[j][0].type, needs[j][1].type) == 0)
				n = 1;
			jobs[j] = (AllocJob) {.job_id = j + 1, .joblist_id = 1 + j / 3, .needs = needs[j], .nneeds = n};
		}
		p.njobs = 100;
		if (alloc_run(&p, &a) < 0 || alloc_run(&p, &b) < 0)
		{
			failed++;
			return;
		}
		for (int k = 0; k < a.ntakes; k++)
			given[a.takes[k].unit] += a.takes[k].amount;
		for (int u = 0; u < 200; u++)
			ok &= given[u] <= units[u].free;
		for (int j = 0; j < 100; j++)
		{
			int64_t		got[3] = {0};
			const AllocResult *r = &a.results[j];

			for (int k = 0; r->node >= 0 && k < r->ntakes; k++)
			{
				const AllocUnit *u = &units[a.takes[r->first_take + k].unit];

				ok &= u->node == r->node || u->node == -1;
				got[u->type == types[0] ? 0 : u->type == types[1] ? 1 : 2] +=
					a.takes[r->first_take + k].amount;
			}
			for (int k = 0; r->node >= 0 && k < jobs[j].nneeds; k++)
				ok &= got[jobs[j].needs[k].type == types[0] ? 0 :
						  jobs[j].needs[k].type == types[1] ? 1 : 2] == jobs[j].needs[k].count;
		}
		render(&p, &a, ra, sizeof(ra));
		render(&p, &b, rb, sizeof(rb));
		ok &= strcmp(ra, rb) == 0;
		alloc_output_free(&a);
		alloc_output_free(&b);
		if (ok)
			passed++;
		else
		{
			failed++;
			fprintf(stderr, "FAIL random round %d\n", round);
		}
	}
}

/*
 * Backfill in simulated time (alloc_sim.c): no later job ever delays an earlier one,
 * promises were made and checked (so the check can fail), and the cluster stays
 * nearly as busy as with a greedy placement that ignores FIFO.
 */
static void
test_trace(void)
{
	for (unsigned int seed = 1; seed <= 4; seed++)
	{
		/* the last trace has few reservations and stops the pass soon after them */
		SimConfig	c = {.nodes = 6, .cpus = 8, .gpus = 2, .licences = 2, .jobs = 300,
			.seed = seed, .max_reservations = seed == 4 ? 3 : 0,
		.max_job_test = seed == 4 ? 5 : 0};
		SimResult	bf, gr;
		int			ok;

		if (alloc_sim(&c, &bf) < 0 || (c.greedy = 1, alloc_sim(&c, &gr)) < 0)
		{
			failed++;
			fprintf(stderr, "FAIL trace %u: the simulation failed\n", seed);
			continue;
		}
		ok = bf.delays == 0 && bf.promises > 100 && bf.placed_out_of_order > 0 &&
			bf.utilisation >= 0.9 * gr.utilisation;
		if (ok)
			passed++;
		else
		{
			failed++;
			fprintf(stderr, "FAIL trace %u: %ld delays, %ld promises (%ld broken), "
					"utilisation %.3f against greedy %.3f\n", seed, bf.delays, bf.promises,
					bf.broken, bf.utilisation, gr.utilisation);
		}
	}
}

/*
 * Types: only the types some job needs and some unit offers count.  A node
 * offering 40 odd types costs nothing, a job needing a type nobody offers is told
 * so, a reservation of a type gone since is booked without it, and 3,000 jobs
 * each needing a type of its own (quadratic before; the type table grows past its
 * first size) leave the one job that can run its place.
 */
static void
test_types(void)
{
	enum
	{
		NODD = 40, NHOSTILE = 3000
	};
	static const char *names[] = {"a"};
	AllocUnit	units[NODD + 1];
	AllocJob   *jobs = calloc(NHOSTILE + 3, sizeof(AllocJob));
	AllocNeed  *needs = calloc(NHOSTILE + 3, sizeof(AllocNeed));
	char		(*tname)[16] = calloc(NODD + NHOSTILE, 16);
	AllocProblem p = {.nodes = names, .nnodes = 1, .units = units, .nunits = NODD + 1,
	.jobs = jobs, .now = 10};
	AllocOutput out;
	int			ok;

	for (int u = 0; u < NODD; u++)
	{
		snprintf(tname[u], 16, "odd%d", u);
		units[u] = (AllocUnit) {u + 1, tname[u], 0, 1, 1};
	}
	units[NODD] = (AllocUnit) {NODD + 1, "cpu", 0, 1, 1};
	needs[0] = (AllocNeed) {tname[37], 1};
	needs[1] = (AllocNeed) {"gone", 1};
	jobs[0] = (AllocJob) {1, 1, &needs[0], 1, .reserved = 0, .reserved_start = ALLOC_NEVER};
	jobs[1] = (AllocJob) {2, 2, &needs[1], 1, .limit = 60, .reserved = 1, .reserved_node = 0,
	.reserved_start = 50};
	for (int j = 2; j < NHOSTILE + 2; j++)
	{
		snprintf(tname[NODD + j - 2], 16, "x%d", j);
		needs[j] = (AllocNeed) {tname[NODD + j - 2], 1};
		jobs[j] = (AllocJob) {j + 1, j + 1, &needs[j], 1, .reserved_start = ALLOC_NEVER};
	}
	needs[NHOSTILE + 2] = (AllocNeed) {"cpu", 1};
	jobs[NHOSTILE + 2] = (AllocJob) {NHOSTILE + 3, NHOSTILE + 3, &needs[NHOSTILE + 2], 1,
	.reserved_start = ALLOC_NEVER};
	p.njobs = NHOSTILE + 3;
	ok = alloc_run(&p, &out) == 0 && out.looked == p.njobs;
	ok = ok && out.results[0].node == 0 && out.takes[out.results[0].first_take].unit == 37 &&
		strcmp(out.results[1].reason, "no online node offers gone") == 0 &&
		out.results[1].reserved_node == -1 &&
		strcmp(out.results[NHOSTILE + 1].reason, "no online node offers x3001") == 0 &&
		out.results[NHOSTILE + 2].node == 0;
	if (ok)
		passed++;
	else
	{
		failed++;
		fprintf(stderr, "FAIL types: odd types, a type nobody offers, a reservation of one gone\n");
	}
	alloc_output_free(&out);
	free(jobs);
	free(needs);
	free(tname);
}

/*
 * Candidate nodes found by binary search in the sorted labels (once a cycle has
 * computed CAND_CACHE sets by a look at every node) are those found by that look:
 * the same jobs after 40 decoys, each asking for a zone of its own, get what they
 * get without them, and the reasons name what no node has.
 */
static void
test_labels(void)
{
	enum
	{
		DECOYS = 40, REAL = 7
	};
	static const char *names[] = {"n0", "n1", "n2", "n3", "n4", "n5"};
	static const char *zone[] = {"a", "a", "b", "b", "a", "b"},
			   *rack[] = {"r1", "r2", "r1", "r2", "r2", "r1"};
	static const AllocConstraint a_r2[] = {{"zone", "a"}, {"rack", "r2"}},
				b_r2[] = {{"zone", "b"}, {"rack", "r2"}},
				c[] = {{"zone", "c"}},
				a_n2[] = {{"zone", "a"}, {"node", "n2"}},
				r1_b[] = {{"rack", "r1"}, {"zone", "b"}},
				a_r9[] = {{"zone", "a"}, {"rack", "r9"}};
	static const AllocConstraint *const sets[REAL] = {a_r2, a_r2, b_r2, c, a_n2, r1_b, a_r9};
	static const int	nsets[REAL] = {2, 2, 2, 1, 2, 2, 2};
	static const char *const want[REAL] = {"-> n1", "-> n4", "-> n3",
		"no online node matches zone=c", "no online node matches zone=a, node=n2", "-> n2",
	"no online node matches rack=r9"};
	AllocLabel	labels[6 * 3 + 1];
	AllocUnit	units[6];
	AllocJob	jobs[DECOYS + REAL];
	AllocConstraint decoy[DECOYS];
	char		dname[DECOYS][16];
	int			nl = 0,
				ok = 1;

	for (int n = 0; n < 6; n++)
	{
		labels[nl++] = (AllocLabel) {n, "zone", zone[n]};
		labels[nl++] = (AllocLabel) {n, "rack", rack[n]};
		labels[nl++] = (AllocLabel) {n, "node", names[n]};
		units[n] = (AllocUnit) {n + 1, "cpu", n, 1, 1};
	}
	labels[nl++] = (AllocLabel) {4, "rack", "r2"};	/* named twice: still one candidate */
	for (int j = 0; j < DECOYS; j++)
	{
		snprintf(dname[j], sizeof(dname[j]), "q%d", j);
		decoy[j] = (AllocConstraint) {"zone", dname[j]};
		jobs[j] = (AllocJob) {j + 1, j + 1, cpu1, 1, &decoy[j], 1, .reserved_start = ALLOC_NEVER};
	}
	for (int j = 0; j < REAL; j++)
		jobs[DECOYS + j] = (AllocJob) {DECOYS + j + 1, DECOYS + j + 1, cpu1, 1, sets[j], nsets[j],
		.reserved_start = ALLOC_NEVER};
	for (int decoys = 0; decoys <= DECOYS; decoys += DECOYS)
	{
		AllocProblem p = {.nodes = names, .nnodes = 6, .labels = labels, .nlabels = nl,
			.units = units, .nunits = 6, .jobs = jobs + DECOYS - decoys,
		.njobs = decoys + REAL, .now = 10};
		AllocOutput out;

		if (alloc_run(&p, &out) < 0)
		{
			ok = 0;
			continue;
		}
		for (int j = 0; j < decoys; j++)
		{
			char		r[64];

			snprintf(r, sizeof(r), "no online node matches zone=q%d", j);
			ok &= strcmp(out.results[j].reason, r) == 0;
		}
		for (int j = 0; j < REAL; j++)
		{
			const AllocResult *r = &out.results[decoys + j];
			char		got[ALLOC_REASON_LEN + 8];

			snprintf(got, sizeof(got), "%s%s", r->node >= 0 ? "-> " : "",
					 r->node >= 0 ? names[r->node] : r->reason);
			if (strcmp(got, want[j]) != 0)
			{
				ok = 0;
				fprintf(stderr, "labels, %d decoys, job %d: %s\n", decoys, j, got);
			}
		}
		alloc_output_free(&out);
	}
	if (ok)
		passed++;
	else
	{
		failed++;
		fprintf(stderr, "FAIL labels: candidates by search differ from those by scan\n");
	}
}

int
main(void)
{
	test_scenarios();
	test_limits();
	test_backfill();
	test_random();
	test_trace();
	test_types();
	test_labels();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
