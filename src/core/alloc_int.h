/*
 * alloc_int.h: what the allocator's files share (alloc.c places jobs now,
 * alloc_index.c finds nodes, alloc_backfill.c keeps the future: releases and
 * reservations, alloc_wait.c explains waiting jobs and closes groups).
 * alloc_types.c knows the types, alloc_labels.c the candidate nodes.  Not part of the API: only alloc*.c include it.
 *
 * Units are grouped by (type, node), the cluster-wide pool of a type being one
 * more "node".  A group knows what is free now and, as a list of events sorted by
 * time, how that changes: a running job lets go of its units at its end (start +
 * time limit), a reservation takes units from its start to its end.  The amount
 * free at time t is the group's free amount plus every delta up to t; it may go
 * below zero where reservations of unknown start overlap busy units, which simply
 * means "nothing to spare".
 */
#ifndef DISPATCH_ALLOC_INT_H
#define DISPATCH_ALLOC_INT_H

#include "alloc.h"

/* An exact sum of amounts: 2^31 values of at most 2^63 each fit with room to spare. */
typedef __int128 Sum;

/* A change of a group's free amount at time t; job is the reserving job, or -1. */
typedef struct Event
{
	int64_t		t;
	int64_t		delta;
	int			job;
} Event;

typedef struct Group
{
	int			start;			/* its units: order[start .. start + count) */
	int			count;
	int			cursor;			/* first unit that may have something left */
	int64_t		free;			/* free now (saturating) */
	int64_t		capacity;		/* (saturating) */
	int			closed_by;		/* job that closed it to every later job, or -1 */
	Event	   *ev;				/* changes to come, sorted by time */
	int			nev;
	int			evcap;
} Group;

/* Free amounts below this have a bucket each in the node index (alloc_index.c). */
#define IDX_EXACT 64
#define IDX_BUCKETS (IDX_EXACT + 1)

/* The candidate nodes of one constraint set, computed once per cycle. */
typedef struct CandCache
{
	const AllocJob *job;		/* a job with this constraint set */
	int		   *nodes;
	int			count;
	int64_t    *maxcap;			/* per type: the largest capacity of one candidate */
	unsigned char *closed;		/* per type: closed on every candidate and the pool */
	uint64_t   *member;			/* bitmap of its nodes */
	int		   *hist;			/* per type and bucket: how many of its nodes are there */
	int		   *hist_all;		/* the same counting closed groups as open */
	char		why[ALLOC_REASON_LEN];	/* why no node matches, once worked out ("" before) */
} CandCache;

#define CAND_CACHE 32

typedef struct State
{
	const AllocProblem *p;
	const char **types;			/* distinct types the jobs need and units offer */
	int			ntypes;
	void	   *typeset;		/* the offered types by name (alloc_types.c) */
	Group	   *groups;			/* ntypes x (nnodes + 1); the last slot is the cluster */
	Sum		   *type_avail;		/* per type: free units in groups nobody closed */
	int		   *order;			/* unit indices grouped by group, stable */
	int64_t    *unit_free;		/* working copy of every unit's free amount */
	int		   *unit_type;		/* type index of every unit, or -1 */
	int		   *label_start;	/* labels of node n: node_labels[label_start[n] ..] */
	const AllocLabel **node_labels;
	const AllocLabel **sorted;	/* every label by key, value, node, once misses call for it */
	int			misses;			/* candidate sets computed by a look at every node */
	int		   *cand;			/* candidate nodes of the current job (points into cache) */
	CandCache  *cand_entry;		/* and their cache entry */
	CandCache	cache[CAND_CACHE];	/* candidate lists by constraint set */
	int			ncached;
	int		   *need_type;		/* scratch: the type index of each need of the job */
	unsigned char *need_short;	/* scratch: whether the job is short of each need */
	int		   *sweep_at;		/* scratch: per need and side, the next event */
	Sum		   *sweep_free;		/* scratch: and the amount free before it */
	int64_t    *pool_first;		/* scratch: per need, the pool's first release after now */
	int64_t    *times;			/* scratch: candidate start times */
	int			times_cap;
	int			reservations_left;
	int			current;		/* the job being placed (INT_MAX while loading) */
	int			ignore_after;	/* reservations of jobs after this one do not count */
	uint64_t   *bits;			/* per type and bucket: bitmap of the nodes there */
	int			words;			/* 64-bit words per bitmap */
	unsigned char *node_reserved;	/* per node: something on it is reserved */
	int		   *reserved_nodes; /* those nodes */
	int			nreserved;
	int			reserved_cap;
	AllocOutput *out;
	int			takes_cap;
} State;

/* Returns the group of (type, node); node -1 is the cluster-wide pool. */
static inline Group *
alloc_group(const State *st, int type, int node)
{
	int			slot = node < 0 ? st->p->nnodes : node;

	return &st->groups[(size_t) type * (st->p->nnodes + 1) + slot];
}

/*
 * Returns whether event e counts for the job being placed: not a reservation of a
 * later job whose start was not known (it promised nothing, it only holds back the
 * jobs after it), nor of any job after ignore_after.
 */
static inline int
alloc_counts(const State *st, const Event *e)
{
	return e->job <= st->current ||
		(e->job <= st->ignore_after && st->p->jobs[e->job].reserved_start != ALLOC_NEVER);
}

/* How big the buffers are that a caller of alloc_solve keeps between runs. */
typedef struct AllocKeep
{
	int			results_cap;
	int			takes_cap;
} AllocKeep;

/* alloc.c */
extern int	alloc_solve(const AllocProblem *p, AllocOutput *out, AllocKeep *keep);
extern int	alloc_grow(void **array, int *cap, size_t size, int need);
extern void alloc_reason(AllocResult *r, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/* alloc_labels.c */
extern int	labels_build(State *st);
extern int	labels_candidates(State *st, const AllocJob *job);
extern void labels_explain(const State *st, const AllocJob *job, AllocResult *r);

/* alloc_types.c */
extern int	types_build(State *st);
extern int	alloc_type_index(const State *st, const char *type);
extern void types_free(State *st);

/* alloc_index.c */
extern int	idx_build(State *st);
extern void idx_moved(State *st, int type, int node, int64_t before, int64_t after, int taken);
extern int	idx_cand_init(State *st, CandCache *e);
extern int	idx_mark_reserved(State *st, int node);
extern int64_t idx_most_free(const State *st, int type, int closed_too);
extern int	idx_is_candidate(const State *st, int node);
extern int	idx_best_node(const State *st, const AllocJob *job, int nc);

/* alloc_backfill.c */
extern int	bf_load_holds(State *st);
extern int	bf_load_reservations(State *st);
extern void bf_unbook(State *st, int jobno);
extern int	bf_add_event(Group *g, int64_t t, int64_t delta, int job);
extern int64_t bf_window_end(int64_t start, int64_t limit);
extern Sum	bf_free_during(const State *st, const Group *g, int64_t t1, int64_t t2);
extern Sum	bf_spare(const State *st, const Group *g, int64_t t1, int64_t t2);
extern int	bf_fits_at(const State *st, const AllocJob *job, int node, int64_t t);
extern int	bf_reserve(State *st, int jobno, int nc);

/* alloc_wait.c */
extern void bf_explain(const State *st, int jobno, int nc);
extern void bf_behind(const State *st, int jobno);
extern void bf_behind_text(const AllocNeed *needs, int nneeds, char *buf, size_t len);
extern void bf_close(State *st, int jobno, int nc);

#endif							/* DISPATCH_ALLOC_INT_H */
