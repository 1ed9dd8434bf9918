/*
 * alloc_labels.c: which nodes a job's constraints allow, and why none do.
 *
 * A job's candidate nodes are those carrying every label key=value it asks for.
 * Lists are cached per constraint set (CAND_CACHE of them), since a queue
 * repeats a few sets, and so is the reason a set matches no node.  A set not in
 * the cache is found by a look at every node's labels; once a cycle has missed
 * the cache CAND_CACHE times (a queue of many sets: one user can give each job a
 * zone of its own), it sorts the labels once and finds each set by binary search,
 * going through the nodes of its rarest label only.  Before, 2,000 jobs that each
 * asked for a zone no node has cost 300 ms a cycle at 10,000 nodes, every cycle.
 */
#include "alloc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	node_has(const State *st, int node, const char *key, const char *value);
static int	same_constraints(const AllocJob *a, const AllocJob *b);
static int	cmp_label(const void *a, const void *b);
static int	sort_labels(State *st);
static int	label_range(const State *st, const char *key, const char *value, int *lo);
static int	matches(const State *st, const AllocJob *job, int n);
static void scan_nodes(State *st, const AllocJob *job, CandCache *e);
static void search_nodes(State *st, const AllocJob *job, CandCache *e);

/* Groups the labels by node, by counting; 0 or -1 (memory). */
int
labels_build(State *st)
{
	const AllocProblem *p = st->p;
	int		   *next = calloc(p->nnodes + 1, sizeof(int));

	st->label_start = calloc(p->nnodes + 2, sizeof(int));
	st->node_labels = malloc(sizeof(AllocLabel *) * (p->nlabels + 1));
	if (!next || !st->label_start || !st->node_labels)
	{
		free(next);
		return -1;
	}
	for (int l = 0; l < p->nlabels; l++)
		st->label_start[p->labels[l].node + 1]++;
	for (int n = 0; n < p->nnodes; n++)
		st->label_start[n + 1] += st->label_start[n];
	for (int l = 0; l < p->nlabels; l++)
	{
		int			n = p->labels[l].node;

		st->node_labels[st->label_start[n] + next[n]++] = &p->labels[l];
	}
	free(next);
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

/* Returns 1 when node n carries every label job asks for. */
static int
matches(const State *st, const AllocJob *job, int n)
{
	for (int c = 0; c < job->nconstraints; c++)
		if (!node_has(st, n, job->constraints[c].key, job->constraints[c].value))
			return 0;
	return 1;
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

/* qsort comparator of labels by key, value, then node. */
static int
cmp_label(const void *a, const void *b)
{
	const AllocLabel *x = *(const AllocLabel *const *) a,
			   *y = *(const AllocLabel *const *) b;
	int			c = strcmp(x->key, y->key);

	if (c == 0)
		c = strcmp(x->value, y->value);
	return c != 0 ? c : (x->node > y->node) - (x->node < y->node);
}

/* Sorts every label into st->sorted; 0 or -1 (memory). */
static int
sort_labels(State *st)
{
	int			n = st->p->nlabels;

	if ((st->sorted = malloc(sizeof(AllocLabel *) * (n + 1))) == NULL)
		return -1;
	for (int l = 0; l < n; l++)
		st->sorted[l] = &st->p->labels[l];
	qsort(st->sorted, n, sizeof(AllocLabel *), cmp_label);
	return 0;
}

/*
 * Returns how many nodes carry key=value, by binary search in st->sorted, with *lo
 * the first of them there (a node named twice with one label counts twice).
 */
static int
label_range(const State *st, const char *key, const char *value, int *lo)
{
	AllocLabel	probe = {-1, key, value};
	const AllocLabel *pp = &probe;
	int			a = 0,
				b = st->p->nlabels;

	while (a < b)				/* first label not before key=value, node -1 */
	{
		int			m = a + (b - a) / 2;

		if (cmp_label(&st->sorted[m], &pp) < 0)
			a = m + 1;
		else
			b = m;
	}
	*lo = a;
	while (b < st->p->nlabels && strcmp(st->sorted[b]->key, key) == 0 &&
		   strcmp(st->sorted[b]->value, value) == 0)
		b++;
	return b - a;
}

/* Fills e with the nodes matching job, looking at every node. */
static void
scan_nodes(State *st, const AllocJob *job, CandCache *e)
{
	for (int n = 0; n < st->p->nnodes; n++)
		if (matches(st, job, n))
			e->nodes[e->count++] = n;
}

/* Fills e with the nodes matching job, from the nodes of its rarest label. */
static void
search_nodes(State *st, const AllocJob *job, CandCache *e)
{
	int			first = 0,
				fewest = -1;

	for (int c = 0; c < job->nconstraints && fewest != 0; c++)
	{
		int			lo,
					k = label_range(st, job->constraints[c].key, job->constraints[c].value, &lo);

		if (fewest < 0 || k < fewest)
		{
			fewest = k;
			first = lo;
		}
	}
	for (int i = first; i < first + fewest; i++)
	{
		int			n = st->sorted[i]->node;

		if ((e->count == 0 || e->nodes[e->count - 1] != n) && matches(st, job, n))
			e->nodes[e->count++] = n;
	}
}

/*
 * Points st->cand at the nodes matching every constraint of job and returns how
 * many; -1 when memory runs out.
 */
int
labels_candidates(State *st, const AllocJob *job)
{
	CandCache  *e = NULL;

	for (int i = 0; i < st->ncached; i++)
		if (same_constraints(st->cache[i].job, job))
		{
			st->cand_entry = &st->cache[i];
			st->cand = st->cache[i].nodes;
			return st->cache[i].count;
		}
	if (st->ncached < CAND_CACHE)
		e = &st->cache[st->ncached++];	/* counted first: free_state frees what it gets */
	else
		e = &st->cache[job->job_id % CAND_CACHE];	/* evict one */
	if (e->nodes == NULL && (e->nodes = malloc(sizeof(int) * (st->p->nnodes + 1))) == NULL)
		return -1;
	if (e->maxcap == NULL && (e->maxcap = malloc(sizeof(int64_t) * (st->ntypes + 1))) == NULL)
		return -1;
	if (e->closed == NULL && (e->closed = malloc(st->ntypes + 1)) == NULL)
		return -1;
	e->job = job;
	e->count = 0;
	e->why[0] = '\0';
	if (job->nconstraints == 0 || (st->sorted == NULL && ++st->misses <= CAND_CACHE))
		scan_nodes(st, job, e);
	else
	{
		if (st->sorted == NULL && sort_labels(st) < 0)
			return -1;
		search_nodes(st, job, e);
	}
	for (int t = 0; t < st->ntypes; t++)
	{
		e->maxcap[t] = 0;
		e->closed[t] = 0;
		for (int k = 0; k < e->count; k++)
			if (alloc_group(st, t, e->nodes[k])->capacity > e->maxcap[t])
				e->maxcap[t] = alloc_group(st, t, e->nodes[k])->capacity;
	}
	if (idx_cand_init(st, e) < 0)
		return -1;
	st->cand_entry = e;
	st->cand = e->nodes;
	return e->count;
}

/*
 * Explains why no node matches the current job's constraints: those no node
 * satisfies on its own, or all of them when each is satisfied somewhere but never
 * together.  Worked out once per constraint set.
 */
void
labels_explain(const State *st, const AllocJob *job, AllocResult *r)
{
	CandCache  *e = st->cand_entry;
	size_t		len = 0;

	for (int pass = 0; e->why[0] == '\0' && pass < 2 && len == 0; pass++)
		for (int c = 0; c < job->nconstraints; c++)
		{
			const char *key = job->constraints[c].key,
					   *value = job->constraints[c].value;
			int			somewhere = 0,
						lo;

			if (pass == 0 && st->sorted)
				somewhere = label_range(st, key, value, &lo) > 0;
			for (int n = 0; pass == 0 && !st->sorted && n < st->p->nnodes && !somewhere; n++)
				somewhere = node_has(st, n, key, value);
			if (somewhere)
				continue;
			len += snprintf(e->why + len, len < sizeof(e->why) ? sizeof(e->why) - len : 0,
							"%s%s=%s", len ? ", " : "", key, value);
			if (len >= sizeof(e->why))
				len = sizeof(e->why) - 1;
		}
	alloc_reason(r, "no online node matches %s", e->why);
}
