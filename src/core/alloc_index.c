/*
 * alloc_index.c: finds the best node for a job without looking at every node.
 *
 * For every needed type, the nodes are kept in buckets by what their own group has
 * free and open (a closed group counts as empty): one bitmap of nodes per exact
 * amount below IDX_EXACT, and one for IDX_EXACT and more.  Every candidate set
 * (alloc_int.h, CandCache) keeps a bitmap of its nodes and how many of them sit in
 * each bucket, so "does any candidate have 4 cpus free?" costs a look at the
 * highest non-empty bucket, and the best fit is the first node, in node order,
 * that fits in the lowest bucket that can hold the job.
 *
 * The best fit is measured on the job's lead need, its first need of a type that
 * the candidates offer on the nodes themselves (not only in a pool): the node with
 * the least of it left over wins, ties going to the node listed first.  Nodes on
 * which something is reserved have less to spare than their bucket says, so they
 * (a few: one per reservation at most) are looked at one by one.
 */
#include "alloc_int.h"

#include <stdlib.h>
#include <string.h>

static int	bucket(int64_t amount);
static void set_bit(uint64_t *bits, int n, int on);
static int	has_bit(const uint64_t *bits, int n);
static uint64_t *bitmap(const State *st, int type, int b);
static Sum	spare_now(const State *st, const AllocJob *job, const Group *g);
static void consider(int node, Sum left, int *best, Sum *best_left);

/* Returns the bucket of a free amount. */
static int
bucket(int64_t amount)
{
	return amount <= 0 ? 0 : amount >= IDX_EXACT ? IDX_EXACT : (int) amount;
}

/* Sets (on) or clears bit n. */
static void
set_bit(uint64_t *bits, int n, int on)
{
	if (on)
		bits[n / 64] |= (uint64_t) 1 << (n % 64);
	else
		bits[n / 64] &= ~((uint64_t) 1 << (n % 64));
}

/* Returns whether bit n is set. */
static int
has_bit(const uint64_t *bits, int n)
{
	return (bits[n / 64] >> (n % 64)) & 1;
}

/* Returns the bitmap of the nodes in bucket b of type. */
static uint64_t *
bitmap(const State *st, int type, int b)
{
	return &st->bits[((size_t) type * IDX_BUCKETS + b) * st->words];
}

/* Returns what a node's group g (or the pool) can give job from now for its whole limit, at least 0. */
static Sum
spare_now(const State *st, const AllocJob *job, const Group *g)
{
	Sum			s = bf_free_during(st, g, st->p->now, bf_window_end(st->p->now, job->limit));

	return s > 0 ? s : 0;
}

/* Puts every node into the buckets of what it has free; 0 or -1 (memory). */
int
idx_build(State *st)
{
	int			nnodes = st->p->nnodes;

	st->words = (nnodes + 63) / 64 + 1;
	st->bits = calloc((size_t) (st->ntypes + 1) * IDX_BUCKETS * st->words, sizeof(uint64_t));
	st->node_reserved = calloc(nnodes + 1, 1);
	if (!st->bits || !st->node_reserved)
		return -1;
	for (int t = 0; t < st->ntypes; t++)
		for (int n = 0; n < nnodes; n++)
			set_bit(bitmap(st, t, bucket(alloc_group(st, t, n)->free)), n, 1);
	return 0;
}

/*
 * Moves node from the bucket of amount before to that of after, for type, in every
 * candidate set; taken says units went (not only closed), which hist_all counts.
 */
void
idx_moved(State *st, int type, int node, int64_t before, int64_t after, int taken)
{
	int			from = bucket(before),
				to = bucket(after);

	if (node < 0 || from == to)
		return;
	set_bit(bitmap(st, type, from), node, 0);
	set_bit(bitmap(st, type, to), node, 1);
	for (int i = 0; i < st->ncached; i++)
	{
		CandCache  *e = &st->cache[i];

		if (has_bit(e->member, node))
		{
			e->hist[type * IDX_BUCKETS + from]--;
			e->hist[type * IDX_BUCKETS + to]++;
			e->hist_all[type * IDX_BUCKETS + from] -= taken;
			e->hist_all[type * IDX_BUCKETS + to] += taken;
		}
	}
}

/* Fills candidate set e's node bitmap and bucket counts from e->nodes; 0 or -1. */
int
idx_cand_init(State *st, CandCache *e)
{
	if (e->member == NULL && (e->member = malloc(sizeof(uint64_t) * st->words)) == NULL)
		return -1;
	if (e->hist == NULL &&
		(e->hist = malloc(sizeof(int) * (st->ntypes + 1) * IDX_BUCKETS)) == NULL)
		return -1;
	if (e->hist_all == NULL &&
		(e->hist_all = malloc(sizeof(int) * (st->ntypes + 1) * IDX_BUCKETS)) == NULL)
		return -1;
	memset(e->member, 0, sizeof(uint64_t) * st->words);
	memset(e->hist, 0, sizeof(int) * (st->ntypes + 1) * IDX_BUCKETS);
	memset(e->hist_all, 0, sizeof(int) * (st->ntypes + 1) * IDX_BUCKETS);
	for (int k = 0; k < e->count; k++)
	{
		set_bit(e->member, e->nodes[k], 1);
		for (int t = 0; t < st->ntypes; t++)
		{
			const Group *g = alloc_group(st, t, e->nodes[k]);

			e->hist[t * IDX_BUCKETS + bucket(g->closed_by >= 0 ? 0 : g->free)]++;
			e->hist_all[t * IDX_BUCKETS + bucket(g->free)]++;
		}
	}
	return 0;
}

/* Notes that something is reserved on node (0 or -1). */
int
idx_mark_reserved(State *st, int node)
{
	if (st->node_reserved[node])
		return 0;
	if (alloc_grow((void **) &st->reserved_nodes, &st->reserved_cap, sizeof(int),
				   st->nreserved + 1) < 0)
		return -1;
	st->node_reserved[node] = 1;
	st->reserved_nodes[st->nreserved++] = node;
	return 0;
}

/*
 * Returns the most of type that one current candidate has free and open (or free,
 * closed_too): exact below IDX_EXACT, INT64_MAX for IDX_EXACT and more.
 */
int64_t
idx_most_free(const State *st, int type, int closed_too)
{
	const int  *h = &(closed_too ? st->cand_entry->hist_all : st->cand_entry->hist)[type * IDX_BUCKETS];

	for (int b = IDX_EXACT; b > 0; b--)
		if (h[b] > 0)
			return b == IDX_EXACT ? INT64_MAX : b;
	return 0;
}

/* Returns whether node is a candidate of the current job. */
int
idx_is_candidate(const State *st, int node)
{
	return has_bit(st->cand_entry->member, node);
}

/* Keeps node as the best so far when it leaves less over, or as much from a node listed earlier. */
static void
consider(int node, Sum left, int *best, Sum *best_left)
{
	if (*best < 0 || left < *best_left || (left == *best_left && node < *best))
	{
		*best = node;
		*best_left = left;
	}
}

/* Returns the best-fitting candidate node for job to start on now, or -1 when none fits. */
int
idx_best_node(const State *st, const AllocJob *job, int nc)
{
	const CandCache *e = st->cand_entry;
	int			lead = -1,
				best = -1,
				t;
	Sum			best_left = 0,
				pool;
	int64_t		count;

	for (int i = 0; i < job->nneeds; i++)
	{
		int			ti = st->need_type[i];

		if (st->type_avail[ti] < job->needs[i].count ||
			(Sum) idx_most_free(st, ti, 0) + spare_now(st, job, alloc_group(st, ti, -1)) <
			job->needs[i].count)
			return -1;			/* no candidate has enough of it */
		if (lead < 0 && e->maxcap[ti] > 0)
			lead = i;
	}
	if (lead < 0)
	{
		for (int k = 0; k < nc; k++)
			if (bf_fits_at(st, job, st->cand[k], st->p->now))
				return st->cand[k];
		return -1;
	}
	t = st->need_type[lead];
	count = job->needs[lead].count;
	pool = spare_now(st, job, alloc_group(st, t, -1));
	for (int r = 0; r < st->nreserved; r++)
	{
		int			n = st->reserved_nodes[r];
		Sum			own;

		if (!has_bit(e->member, n) || !bf_fits_at(st, job, n, st->p->now))
			continue;
		own = spare_now(st, job, alloc_group(st, t, n));
		consider(n, own > count ? own - count : 0, &best, &best_left);
	}
	for (int b = bucket(pool >= count ? 0 : (int64_t) (count - pool)); b <= IDX_EXACT; b++)
	{
		const uint64_t *bits = bitmap(st, t, b);
		Sum			left = b > count ? b - count : 0;

		if (best >= 0 && left > best_left)
			break;
		for (int w = 0; w < st->words; w++)
		{
			uint64_t	x = bits[w] & e->member[w];

			while (x)
			{
				int			n = w * 64 + __builtin_ctzll(x);

				x &= x - 1;
				if (b < IDX_EXACT && best >= 0 && left == best_left && n > best)
					goto next_bucket;	/* cannot beat the best: same left over, later */
				if (st->node_reserved[n] || !bf_fits_at(st, job, n, st->p->now))
					continue;
				if (b == IDX_EXACT)
				{
					Sum			own = spare_now(st, job, alloc_group(st, t, n));

					consider(n, own > count ? own - count : 0, &best, &best_left);
					continue;
				}
				consider(n, left, &best, &best_left);
				goto next_bucket;	/* the first that fits is this bucket's best */
			}
		}
next_bucket:;
	}
	return best;
}
