/*
 * alloc_seq.h: a sequence kept in order between the allocator session's cycles
 * (its FIFO queue, its holders by job id).  Not part of the API.
 *
 * Adding only appends to a pending list, and removing only marks the item dead
 * (the caller's flag); seq_settle, once per cycle, sorts what is pending, merges
 * it in and lets the dead go, so a cycle costs one pass over the sequence plus
 * the sort of what came since, not a sort of everything, and a cycle that takes
 * 30,000 jobs out of the queue moves no memory per job.
 */
#ifndef DISPATCH_ALLOC_SEQ_H
#define DISPATCH_ALLOC_SEQ_H

typedef struct Seq
{
	void	  **items;			/* in order, as of the last seq_settle */
	int			n;
	void	  **pending;		/* added since, in no order */
	int			npending;
	int			pcap;
} Seq;

/* Orders items (qsort-style, on pointers to the items' pointers). */
typedef int (*SeqCmp) (const void *a, const void *b);

/* Returns 1 when item is dead. */
typedef int (*SeqDead) (const void *item);

/* Frees a dead (or, from seq_free, any) item. */
typedef void (*SeqRelease) (void *item);

/* Adds item, to be in order from the next seq_settle; 0 or -1 (memory). */
extern int	seq_add(Seq *q, void *item);

/* Puts what is pending in order and releases the dead; 0 or -1 (memory). */
extern int	seq_settle(Seq *q, SeqCmp cmp, SeqDead dead, SeqRelease release);

/* Releases every item, dead or not, and the sequence's arrays. */
extern void seq_free(Seq *q, SeqRelease release);

#endif							/* DISPATCH_ALLOC_SEQ_H */
