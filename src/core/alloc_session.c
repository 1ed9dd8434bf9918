/*
 * alloc_session.c: the allocator's model kept between cycles (alloc_session.h).
 *
 * The session keeps its pieces where a change finds them in O(1) or O(log n):
 * nodes sorted by name, units, holds and queued jobs in hash maps by id
 * (alloc_map.c), and the queue and the holders as ordered sequences (alloc_seq.c)
 * that a run settles with one sort of what came and one merge, instead of
 * sorting everything again.  Each run then builds the whole AllocProblem from
 * them and solves it with alloc_run(), so a cycle still costs the size of the
 * queue and of the cluster.
 *
 * Measured at 10,000 nodes x 68,000 waiting jobs after 100 changes (alloc_bench),
 * a cycle was about 13 ms here (holds 6, queue 3, results 2, nodes 1) and about
 * 30 ms in alloc_run (its state 8-10, the 100 reservations 15-20, the jobs past
 * them 7); alloc_solve writes the results into the buffers of the last run.  The
 * pass now stops max_job_test waiting jobs past the reservations, so the results
 * read and the jobs looked at no longer grow with the queue; a job set since the
 * last run that the pass did not reach is told it is behind earlier jobs.
 * docs/scale.md "The allocator" lists the steps left to make a cycle cost what
 * changed: alloc_run's state kept alive here, and reservations kept with what
 * they depended on.
 *
 * The problem a session stands for, which alloc_run() gets and which the
 * equivalence test builds from scratch the same way:
 *   - nodes in the order of their names (strcmp), labels as given;
 *   - the units of each node in node order and as given, then the pool's; a unit
 *     is free by its capacity less the positive amounts its holds hold (at least
 *     0); a resource id named again by another node or the pool moves there;
 *   - holds in job_id order, each job's as given; those on units the session does
 *     not know are left out until the unit appears;
 *   - jobs in FIFO order, (joblist_id, job_id), with as reservation what was last
 *     reported (or given in set_job) when its node is online.
 */
#include "alloc_session.h"
#include "alloc_int.h"
#include "alloc_map.h"
#include "alloc_seq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct SNode SNode;

typedef struct SUnit
{
	int64_t		resource_id;
	char	   *type;
	int64_t		capacity;
	SNode	   *owner;
	int			index;			/* in the problem being built */
	Sum			held;			/* scratch while building */
} SUnit;

struct SNode
{
	char	   *name;			/* NULL for the pool */
	AllocConstraint *labels;
	int			nlabels;
	SUnit	  **units;
	int			nunits;
};

typedef struct SHolds
{
	int64_t		job_id;
	AllocSessionHold *holds;
	int			nholds;
	int			dead;			/* replaced: freed by the next seq_settle */
} SHolds;

typedef struct SJob
{
	int64_t		job_id;
	int64_t		joblist_id;
	AllocNeed  *needs;
	int			nneeds;
	AllocConstraint *constraints;
	int			nconstraints;
	int64_t		limit;
	char	   *reason;			/* what was last reported, NULL: none */
	char	   *reserved_node;
	int64_t		reserved_start;
	int64_t		looked_in;		/* the last run that looked at it */
	int			dead;			/* out of the queue: freed by the next seq_settle */
} SJob;

struct AllocSession
{
	SNode	  **nodes;			/* sorted by name */
	int			nnodes;
	int			nodes_cap;
	SNode		pool;
	Map			units;			/* resource_id -> SUnit */
	Map			holds;			/* job_id -> SHolds, the live ones */
	Map			jobs;			/* job_id -> SJob, the live ones */
	Seq			holders;		/* every SHolds, by job_id */
	Seq			queue;			/* every SJob, in FIFO order */
	int			nholds;			/* hold entries in all SHolds */
	AllocPlaced *placed;
	int			placed_cap;
	AllocPlacedTake *takes;
	int			takes_cap;
	AllocWaitChange *waits;
	int			waits_cap;
	AllocOutput solved;			/* alloc_solve's results, kept for the next run */
	AllocKeep	keep;
	int64_t		runs;
	int64_t    *fresh;			/* jobs set since the last run, by id */
	int			nfresh;
	int			fresh_cap;
};

/* The problem a run builds, and what it needs to map the results back. */
typedef struct Build
{
	const char **names;
	AllocLabel *labels;
	int			nlabels;
	AllocUnit  *units;
	SUnit	  **unit_of;		/* problem unit index -> unit */
	int			nunits;
	AllocHold  *holds;
	int			nholds;
	SJob	  **queue;			/* FIFO order (the session's own array) */
	AllocJob   *jobs;
	int			njobs;
} Build;

static char *dup_str(const char *s);
static AllocConstraint *dup_pairs(const AllocConstraint *c, int n);
static void free_pairs(AllocConstraint *c, int n);
static int	find_node(const AllocSession *s, const char *name, int *pos);
static void detach_unit(SUnit *u);
static void free_units(AllocSession *s, SNode *n);
static int	set_units(AllocSession *s, SNode *n, const AllocSessionUnit *units, int nunits);
static void free_node(AllocSession *s, SNode *n);
static void free_holds(void *h);
static void free_job(void *j);
static int	holds_dead(const void *h);
static int	job_dead(const void *j);
static int	put_holds(AllocSession *s, int64_t job_id, const AllocSessionHold *holds, int n);
static int	cmp_queue(const void *a, const void *b);
static int	cmp_holds(const void *a, const void *b);
static int	build_nodes(const AllocSession *s, Build *b);
static int	build_holds(AllocSession *s, Build *b);
static int	build_jobs(AllocSession *s, Build *b);
static void free_build(Build *b);
static int	take_placed(AllocSession *s, const Build *b, const AllocOutput *o, int j,
						int64_t now, AllocSessionOutput *out);
static int	note_wait(AllocSession *s, const Build *b, const AllocResult *r, SJob *job,
					  AllocSessionOutput *out);
static int	same_str(const char *a, const char *b);
static int	diff_node(const SNode *a, const SNode *b, char *why, size_t len);
static int	same_holds(const void *x, const void *y);
static int	same_job(const void *x, const void *y);
static int	diff_map(const Map *a, const Map *b, int (*same) (const void *, const void *),
					 const char *what, char *why, size_t len);

/* Returns a copy of s (NULL stays NULL; a failed copy sets nothing and returns NULL). */
static char *
dup_str(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Returns a copy of n key/value pairs, or NULL (memory); n 0 gives a valid empty array. */
static AllocConstraint *
dup_pairs(const AllocConstraint *c, int n)
{
	AllocConstraint *d = calloc(n > 0 ? n : 1, sizeof(AllocConstraint));

	for (int i = 0; d && i < n; i++)
	{
		d[i].key = strdup(c[i].key);
		d[i].value = strdup(c[i].value);
		if (!d[i].key || !d[i].value)
		{
			free_pairs(d, i + 1);
			return NULL;
		}
	}
	return d;
}

/* Frees what dup_pairs made. */
static void
free_pairs(AllocConstraint *c, int n)
{
	for (int i = 0; c && i < n; i++)
	{
		free((char *) c[i].key);
		free((char *) c[i].value);
	}
	free(c);
}

/* Returns 1 when node name is known, with *pos its place; else 0, *pos where it would go. */
static int
find_node(const AllocSession *s, const char *name, int *pos)
{
	int			lo = 0,
				hi = s->nnodes;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(s->nodes[mid]->name, name);

		if (c == 0)
		{
			*pos = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return 0;
}

/* Takes unit u out of its owner's list. */
static void
detach_unit(SUnit *u)
{
	SNode	   *n = u->owner;

	for (int i = 0; i < n->nunits; i++)
		if (n->units[i] == u)
		{
			memmove(&n->units[i], &n->units[i + 1], sizeof(SUnit *) * (n->nunits - i - 1));
			n->nunits--;
			return;
		}
}

/* Forgets every unit of n. */
static void
free_units(AllocSession *s, SNode *n)
{
	for (int i = 0; i < n->nunits; i++)
	{
		map_del(&s->units, n->units[i]->resource_id);
		free(n->units[i]->type);
		free(n->units[i]);
	}
	free(n->units);
	n->units = NULL;
	n->nunits = 0;
}

/*
 * Replaces the units of n (a node or the pool): a resource id another owner has
 * moves here, one named twice here counts once (the first).  0 or -1.
 */
static int
set_units(AllocSession *s, SNode *n, const AllocSessionUnit *units, int nunits)
{
	SUnit	  **list = malloc(sizeof(SUnit *) * (nunits > 0 ? nunits : 1));

	if (!list)
		return -1;
	free_units(s, n);
	n->units = list;
	for (int i = 0; i < nunits; i++)
	{
		SUnit	   *u = map_get(&s->units, units[i].resource_id);

		if (u && u->owner == n)
			continue;
		if (u)
		{
			detach_unit(u);
			map_del(&s->units, u->resource_id);
			free(u->type);
			free(u);
		}
		if ((u = calloc(1, sizeof(SUnit))) == NULL)
			return -1;
		if ((u->type = strdup(units[i].type)) == NULL)
		{
			free(u);
			return -1;
		}
		u->resource_id = units[i].resource_id;
		u->capacity = units[i].capacity;
		u->owner = n;
		n->units[n->nunits++] = u;
		if (map_put(&s->units, u->resource_id, u) < 0)
			return -1;
	}
	return 0;
}

/* Frees node n (not in the list any more) and its units. */
static void
free_node(AllocSession *s, SNode *n)
{
	free_units(s, n);
	free_pairs(n->labels, n->nlabels);
	free(n->name);
	free(n);
}

/* Frees holds h. */
static void
free_holds(void *h)
{
	free(((SHolds *) h)->holds);
	free(h);
}

/* Returns 1 when holds h were replaced. */
static int
holds_dead(const void *h)
{
	return ((const SHolds *) h)->dead;
}

/* Returns 1 when job j left the queue. */
static int
job_dead(const void *j)
{
	return ((const SJob *) j)->dead;
}

/* Frees queued job j. */
static void
free_job(void *job)
{
	SJob	   *j = job;

	for (int i = 0; i < j->nneeds; i++)
		free((char *) j->needs[i].type);
	free(j->needs);
	free_pairs(j->constraints, j->nconstraints);
	free(j->reason);
	free(j->reserved_node);
	free(j);
}

/* Returns a new empty session, or NULL (memory). */
AllocSession *
alloc_session_new(void)
{
	return calloc(1, sizeof(AllocSession));
}

/* Frees s and everything it keeps. */
void
alloc_session_free(AllocSession *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nnodes; i++)
		free_node(s, s->nodes[i]);
	free(s->nodes);
	free_units(s, &s->pool);
	seq_free(&s->holders, free_holds);
	seq_free(&s->queue, free_job);
	map_free(&s->units);
	map_free(&s->holds);
	map_free(&s->jobs);
	free(s->placed);
	free(s->takes);
	free(s->waits);
	free(s->fresh);
	alloc_output_free(&s->solved);
	free(s);
}

/* Adds an online node, or replaces its labels and units; 0 or -1. */
int
alloc_session_set_node(AllocSession *s, const char *node, const AllocConstraint *labels,
					   int nlabels, const AllocSessionUnit *units, int nunits)
{
	AllocConstraint *copy;
	SNode	   *n;
	int			pos;

	nlabels = nlabels > 0 ? nlabels : 0;
	if (find_node(s, node, &pos))
		n = s->nodes[pos];
	else
	{
		if (alloc_grow((void **) &s->nodes, &s->nodes_cap, sizeof(SNode *), s->nnodes + 1) < 0 ||
			(n = calloc(1, sizeof(SNode))) == NULL)
			return -1;
		if ((n->name = strdup(node)) == NULL)
		{
			free(n);
			return -1;
		}
		memmove(&s->nodes[pos + 1], &s->nodes[pos], sizeof(SNode *) * (s->nnodes - pos));
		s->nodes[pos] = n;
		s->nnodes++;
	}
	if ((copy = dup_pairs(labels, nlabels)) == NULL)
		return -1;
	free_pairs(n->labels, n->nlabels);
	n->labels = copy;
	n->nlabels = nlabels;
	return set_units(s, n, units, nunits);
}

/* Forgets a node and its units. */
void
alloc_session_drop_node(AllocSession *s, const char *node)
{
	int			pos;
	SNode	   *n;

	if (!find_node(s, node, &pos))
		return;
	n = s->nodes[pos];
	memmove(&s->nodes[pos], &s->nodes[pos + 1], sizeof(SNode *) * (s->nnodes - pos - 1));
	s->nnodes--;
	free_node(s, n);
}

/* Replaces the units of the cluster-wide pool; 0 or -1. */
int
alloc_session_set_pool(AllocSession *s, const AllocSessionUnit *units, int nunits)
{
	return set_units(s, &s->pool, units, nunits);
}

/* Replaces what job_id holds (n 0: nothing); 0 or -1. */
static int
put_holds(AllocSession *s, int64_t job_id, const AllocSessionHold *holds, int n)
{
	SHolds	   *h = map_get(&s->holds, job_id);

	if (h)
	{
		map_del(&s->holds, job_id);
		s->nholds -= h->nholds;
		h->dead = 1;
	}
	if (n <= 0)
		return 0;
	if ((h = calloc(1, sizeof(SHolds))) == NULL)
		return -1;
	if ((h->holds = malloc(sizeof(AllocSessionHold) * n)) == NULL || seq_add(&s->holders, h) < 0)
	{
		free_holds(h);
		return -1;
	}
	memcpy(h->holds, holds, sizeof(AllocSessionHold) * n);
	h->job_id = job_id;
	h->nholds = n;
	if (map_put(&s->holds, job_id, h) < 0)
	{
		h->dead = 1;			/* the sequence frees it */
		return -1;
	}
	s->nholds += n;
	return 0;
}

/* Replaces what job_id holds; 0 or -1. */
int
alloc_session_set_holds(AllocSession *s, int64_t job_id, const AllocSessionHold *holds,
						int nholds)
{
	return put_holds(s, job_id, holds, nholds);
}

/* Adds a runnable job to the queue, or replaces it; 0 or -1. */
int
alloc_session_set_job(AllocSession *s, const AllocSessionJob *job)
{
	SJob	   *j = calloc(1, sizeof(SJob));
	int			nneeds = job->nneeds > 0 ? job->nneeds : 0,
				ncons = job->nconstraints > 0 ? job->nconstraints : 0,
				ok;

	if (!j)
		return -1;
	j->job_id = job->job_id;
	j->joblist_id = job->joblist_id;
	j->limit = job->limit;
	j->reserved_start = job->reserved_start;
	j->needs = calloc(nneeds + 1, sizeof(AllocNeed));
	ok = j->needs != NULL;
	for (int i = 0; ok && i < nneeds; i++)
	{
		j->needs[i].count = job->needs[i].count;
		ok = (j->needs[i].type = strdup(job->needs[i].type)) != NULL;
		j->nneeds = i + 1;
	}
	if (ok && (j->constraints = dup_pairs(job->constraints, ncons)) != NULL)
		j->nconstraints = ncons;
	else
		ok = 0;
	j->reason = dup_str(job->reason);
	j->reserved_node = dup_str(job->reserved_node);
	if (!ok || (job->reason && !j->reason) || (job->reserved_node && !j->reserved_node))
	{
		free_job(j);
		return -1;
	}
	if (alloc_grow((void **) &s->fresh, &s->fresh_cap, sizeof(int64_t), s->nfresh + 1) < 0 ||
		seq_add(&s->queue, j) < 0)
	{
		free_job(j);
		return -1;
	}
	s->fresh[s->nfresh++] = j->job_id;
	alloc_session_drop_job(s, job->job_id);
	if (map_put(&s->jobs, j->job_id, j) < 0)
	{
		j->dead = 1;			/* the sequence frees it */
		return -1;
	}
	return 0;
}

/* Takes a job out of the queue. */
void
alloc_session_drop_job(AllocSession *s, int64_t job_id)
{
	SJob	   *j = map_del(&s->jobs, job_id);

	if (j)
		j->dead = 1;
}

/* qsort comparator of queued jobs in FIFO order. */
static int
cmp_queue(const void *a, const void *b)
{
	const SJob *x = *(SJob *const *) a,
			   *y = *(SJob *const *) b;

	if (x->joblist_id != y->joblist_id)
		return x->joblist_id < y->joblist_id ? -1 : 1;
	return x->job_id < y->job_id ? -1 : x->job_id > y->job_id;
}

/* qsort comparator of SHolds by job id. */
static int
cmp_holds(const void *a, const void *b)
{
	const SHolds *x = *(SHolds *const *) a,
			   *y = *(SHolds *const *) b;

	return x->job_id < y->job_id ? -1 : x->job_id > y->job_id;
}

/* Fills b's node names, labels and units (free amounts come with the holds); 0 or -1. */
static int
build_nodes(const AllocSession *s, Build *b)
{
	int			nlabels = 0,
				nunits = s->pool.nunits;

	for (int n = 0; n < s->nnodes; n++)
	{
		nlabels += s->nodes[n]->nlabels;
		nunits += s->nodes[n]->nunits;
	}
	b->names = malloc(sizeof(char *) * (s->nnodes + 1));
	b->labels = malloc(sizeof(AllocLabel) * (nlabels + 1));
	b->units = malloc(sizeof(AllocUnit) * (nunits + 1));
	b->unit_of = malloc(sizeof(SUnit *) * (nunits + 1));
	if (!b->names || !b->labels || !b->units || !b->unit_of)
		return -1;
	for (int n = -1; n < s->nnodes; n++)
	{
		const SNode *node = n < 0 ? &s->pool : s->nodes[n];

		if (n >= 0)
			b->names[n] = node->name;
		for (int l = 0; l < node->nlabels; l++)
			b->labels[b->nlabels++] = (AllocLabel) {n, node->labels[l].key, node->labels[l].value};
	}
	for (int n = 0; n <= s->nnodes; n++)
	{
		const SNode *node = n < s->nnodes ? s->nodes[n] : &s->pool;

		for (int i = 0; i < node->nunits; i++)
		{
			SUnit	   *u = node->units[i];

			u->index = b->nunits;
			u->held = 0;
			b->unit_of[b->nunits] = u;
			b->units[b->nunits++] = (AllocUnit) {u->resource_id, u->type,
			n < s->nnodes ? n : -1, 0, u->capacity};
		}
	}
	return 0;
}

/* Fills b's holds, in job order, and the units' free amounts; 0 or -1. */
static int
build_holds(AllocSession *s, Build *b)
{
	if ((b->holds = malloc(sizeof(AllocHold) * (s->nholds + 1))) == NULL ||
		seq_settle(&s->holders, cmp_holds, holds_dead, free_holds) < 0)
		return -1;
	for (int k = 0; k < s->holders.n; k++)
	{
		const SHolds *h = s->holders.items[k];

		for (int i = 0; i < h->nholds; i++)
		{
			const AllocSessionHold *hold = &h->holds[i];
			SUnit	   *u = map_get(&s->units, hold->resource_id);

			if (!u)
				continue;
			if (hold->amount > 0)
				u->held += hold->amount;
			b->holds[b->nholds++] = (AllocHold) {u->index, hold->amount, hold->end};
		}
	}
	for (int i = 0; i < b->nunits; i++)
	{
		Sum			f = (Sum) b->unit_of[i]->capacity - b->unit_of[i]->held;

		b->units[i].free = f > 0 ? (int64_t) f : 0;
	}
	return 0;
}

/* Fills b's jobs in FIFO order with their last reservations; 0 or -1. */
static int
build_jobs(AllocSession *s, Build *b)
{
	if (seq_settle(&s->queue, cmp_queue, job_dead, free_job) < 0 ||
		(b->jobs = malloc(sizeof(AllocJob) * (s->queue.n + 1))) == NULL)
		return -1;
	b->queue = (SJob **) s->queue.items;
	b->njobs = s->queue.n;
	for (int j = 0; j < b->njobs; j++)
	{
		const SJob *q = b->queue[j];
		int			pos;

		b->jobs[j] = (AllocJob) {q->job_id, q->joblist_id, q->needs, q->nneeds,
			q->constraints, q->nconstraints, q->limit, 0, -1, ALLOC_NEVER};
		if (q->reserved_node && find_node(s, q->reserved_node, &pos))
		{
			b->jobs[j].reserved = 1;
			b->jobs[j].reserved_node = pos;
			b->jobs[j].reserved_start = q->reserved_start;
		}
	}
	return 0;
}

/* Frees what building b allocated. */
static void
free_build(Build *b)
{
	free(b->names);
	free(b->labels);
	free(b->units);
	free(b->unit_of);
	free(b->holds);
	free(b->jobs);
}

/*
 * Reports job j of the build as placed, makes its takes its holds and takes it
 * out of the queue; 0 or -1.
 */
static int
take_placed(AllocSession *s, const Build *b, const AllocOutput *o, int j, int64_t now,
			AllocSessionOutput *out)
{
	const AllocResult *r = &o->results[j];
	SJob	   *job = b->queue[j];
	int64_t		end = bf_window_end(now, job->limit);	/* now - 1 + limit, or ALLOC_NEVER */
	AllocSessionHold *holds = malloc(sizeof(AllocSessionHold) * (r->ntakes + 1));
	int			rc;

	if (!holds ||
		alloc_grow((void **) &s->placed, &s->placed_cap, sizeof(AllocPlaced), out->nplaced + 1) < 0 ||
		alloc_grow((void **) &s->takes, &s->takes_cap, sizeof(AllocPlacedTake),
			 out->ntakes + r->ntakes) < 0)
	{
		free(holds);
		return -1;
	}
	s->placed[out->nplaced++] = (AllocPlaced) {job->job_id, b->names[r->node], out->ntakes,
	r->ntakes};
	for (int k = 0; k < r->ntakes; k++)
	{
		const AllocTake *t = &o->takes[r->first_take + k];
		int64_t		id = b->unit_of[t->unit]->resource_id;

		s->takes[out->ntakes++] = (AllocPlacedTake) {id, t->amount};
		holds[k] = (AllocSessionHold) {id, t->amount, end};
	}
	rc = put_holds(s, job->job_id, holds, r->ntakes);
	free(holds);
	alloc_session_drop_job(s, job->job_id);
	return rc;
}

/* Returns 1 when a and b are the same text, NULL being "". */
static int
same_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Reports waiting job's result r when it differs from what was last reported; 0 or -1. */
static int
note_wait(AllocSession *s, const Build *b, const AllocResult *r, SJob *job,
		  AllocSessionOutput *out)
{
	const char *node = r->reserved_node >= 0 ? b->names[r->reserved_node] : NULL;
	char	   *reason,
			   *reserved;

	if (same_str(job->reason, r->reason) && same_str(job->reserved_node, node) &&
		(job->reserved_node == NULL) == (node == NULL) &&
		job->reserved_start == r->expected_start)
		return 0;
	reason = strdup(r->reason);
	reserved = dup_str(node);
	if (!reason || (node && !reserved) ||
		alloc_grow((void **) &s->waits, &s->waits_cap, sizeof(AllocWaitChange), out->nwaits + 1) < 0)
	{
		free(reason);
		free(reserved);
		return -1;
	}
	free(job->reason);
	free(job->reserved_node);
	job->reason = reason;
	job->reserved_node = reserved;
	job->reserved_start = r->expected_start;
	s->waits[out->nwaits++] = (AllocWaitChange) {job->job_id, reason, r->expected_start, reserved};
	return 0;
}

/*
 * Tells the jobs set since the last run that it did not look at that they are
 * behind earlier jobs, unless they were told so already; 0 or -1.
 */
static int
note_unlooked(AllocSession *s, const Build *b, AllocSessionOutput *out)
{
	AllocResult r = {.node = -1, .expected_start = ALLOC_NEVER, .reserved_node = -1};
	int			rc = 0;

	for (int k = 0; k < s->nfresh && rc == 0; k++)
	{
		SJob	   *job = map_get(&s->jobs, s->fresh[k]);

		if (!job || job->looked_in == s->runs)
			continue;
		bf_behind_text(job->needs, job->nneeds, r.reason, sizeof(r.reason));
		rc = note_wait(s, b, &r, job, out);
	}
	s->nfresh = 0;
	return rc;
}

/* Runs one cycle at now; 0 or -1. */
int
alloc_session_run(AllocSession *s, int64_t now, int max_reservations, int max_job_test,
				  AllocTimeFormat format_time, AllocSessionOutput *out)
{
	Build		b;
	AllocProblem p;
	AllocOutput *o = &s->solved;
	int			rc = -1;

	memset(&b, 0, sizeof(b));
	memset(out, 0, sizeof(*out));
	if (build_nodes(s, &b) < 0 || build_holds(s, &b) < 0 || build_jobs(s, &b) < 0)
		goto done;
	p = (AllocProblem) {b.names, s->nnodes, b.labels, b.nlabels, b.units, b.nunits,
		b.jobs, b.njobs, now, b.holds, b.nholds, max_reservations, format_time, max_job_test};
	if (alloc_solve(&p, o, &s->keep) < 0)
		goto done;
	rc = 0;
	s->runs++;
	for (int j = 0; j < o->looked && rc == 0; j++)
	{
		b.queue[j]->looked_in = s->runs;
		rc = o->results[j].node >= 0 ? take_placed(s, &b, o, j, now, out) :
			note_wait(s, &b, &o->results[j], b.queue[j], out);
	}
	if (rc == 0)
		rc = note_unlooked(s, &b, out);
	out->placed = s->placed;
	out->takes = s->takes;
	out->waits = s->waits;
done:
	free_build(&b);
	return rc;
}

/* Describes the first difference of two nodes (or pools) into why; 0 when none. */
static int
diff_node(const SNode *a, const SNode *b, char *why, size_t len)
{
	const char *name = a->name ? a->name : "the pool";

	if (a->nlabels != b->nlabels)
		return snprintf(why, len, "node %s: %d labels against %d", name, a->nlabels,
						b->nlabels), 1;
	for (int l = 0; l < a->nlabels; l++)
		if (strcmp(a->labels[l].key, b->labels[l].key) != 0 ||
			strcmp(a->labels[l].value, b->labels[l].value) != 0)
			return snprintf(why, len, "node %s: label %s=%s against %s=%s", name,
							a->labels[l].key, a->labels[l].value, b->labels[l].key,
							b->labels[l].value), 1;
	if (a->nunits != b->nunits)
		return snprintf(why, len, "%s: %d units against %d", name, a->nunits, b->nunits), 1;
	for (int i = 0; i < a->nunits; i++)
	{
		const SUnit *x = a->units[i],
				   *y = b->units[i];

		if (x->resource_id != y->resource_id || x->capacity != y->capacity ||
			strcmp(x->type, y->type) != 0)
			return snprintf(why, len, "%s: unit %lld %s x%lld against %lld %s x%lld", name,
							(long long) x->resource_id, x->type, (long long) x->capacity,
							(long long) y->resource_id, y->type, (long long) y->capacity), 1;
	}
	return 0;
}

/* Returns 1 when holds x and y are the same. */
static int
same_holds(const void *x, const void *y)
{
	const SHolds *a = x,
			   *b = y;

	return a->nholds == b->nholds &&
		memcmp(a->holds, b->holds, sizeof(AllocSessionHold) * a->nholds) == 0;
}

/* Returns 1 when queued jobs x and y are the same (not counting what was reported). */
static int
same_job(const void *x, const void *y)
{
	const SJob *a = x,
			   *b = y;
	int			same = a->joblist_id == b->joblist_id && a->limit == b->limit &&
		a->nneeds == b->nneeds && a->nconstraints == b->nconstraints;

	for (int k = 0; same && k < a->nneeds; k++)
		same = a->needs[k].count == b->needs[k].count &&
			strcmp(a->needs[k].type, b->needs[k].type) == 0;
	for (int k = 0; same && k < a->nconstraints; k++)
		same = strcmp(a->constraints[k].key, b->constraints[k].key) == 0 &&
			strcmp(a->constraints[k].value, b->constraints[k].value) == 0;
	return same;
}

/*
 * Describes the first difference of two maps by job id (what names them) into
 * why, values compared with same; 0 when none.
 */
static int
diff_map(const Map *a, const Map *b, int (*same) (const void *, const void *),
		 const char *what, char *why, size_t len)
{
	int64_t		key;

	if (a->count != b->count)
		return snprintf(why, len, "%s: %zu jobs against %zu", what, a->count, b->count), 1;
	for (size_t i = 0; i < map_slots(a); i++)
	{
		const void *x = map_at(a, i, &key),
				   *y;

		if (!x)
			continue;
		if ((y = map_get(b, key)) == NULL)
			return snprintf(why, len, "%s: job %lld only in the first", what,
							(long long) key), 1;
		if (!same(x, y))
			return snprintf(why, len, "%s: job %lld differs", what, (long long) key), 1;
	}
	return 0;
}

/* Compares the models of a and b; 0 when the same, else 1 and why. */
int
alloc_session_diff(const AllocSession *a, const AllocSession *b, char *why, size_t len)
{
	if (len > 0)
		why[0] = '\0';
	if (a->nnodes != b->nnodes)
		return snprintf(why, len, "%d nodes against %d", a->nnodes, b->nnodes), 1;
	for (int n = 0; n < a->nnodes; n++)
	{
		if (strcmp(a->nodes[n]->name, b->nodes[n]->name) != 0)
			return snprintf(why, len, "node %s against %s", a->nodes[n]->name,
							b->nodes[n]->name), 1;
		if (diff_node(a->nodes[n], b->nodes[n], why, len))
			return 1;
	}
	return diff_node(&a->pool, &b->pool, why, len) ||
		diff_map(&a->holds, &b->holds, same_holds, "holds", why, len) ||
		diff_map(&a->jobs, &b->jobs, same_job, "queue", why, len);
}

/* How big the model is. */
void
alloc_session_size(const AllocSession *s, int *nodes, int *units, int *jobs, int *holds)
{
	*nodes = s->nnodes;
	*units = (int) s->units.count;
	*jobs = (int) s->jobs.count;
	*holds = s->nholds;
}
