/*
 * alloc_seq.c: the ordered sequences of the allocator's session (alloc_seq.h):
 * appends and dead marks between cycles, one sort of the new and one merge per
 * cycle.
 */
#include "alloc_seq.h"
#include "alloc_int.h"

#include <stdlib.h>

/* Adds item, to be in order from the next seq_settle; 0 or -1 (memory). */
int
seq_add(Seq *q, void *item)
{
	if (alloc_grow((void **) &q->pending, &q->pcap, sizeof(void *), q->npending + 1) < 0)
		return -1;
	q->pending[q->npending++] = item;
	return 0;
}

/* Puts what is pending in order and releases the dead; 0 or -1 (memory). */
int
seq_settle(Seq *q, SeqCmp cmp, SeqDead dead, SeqRelease release)
{
	void	  **merged;
	int			i = 0,
				k = 0,
				m = 0;

	if (q->npending == 0)
	{
		for (; i < q->n; i++)
			if (dead(q->items[i]))
				release(q->items[i]);
			else
				q->items[m++] = q->items[i];
		q->n = m;
		return 0;
	}
	if ((merged = malloc(sizeof(void *) * (q->n + q->npending))) == NULL)
		return -1;
	qsort(q->pending, q->npending, sizeof(void *), cmp);
	while (i < q->n || k < q->npending)
	{
		void	   *next = k == q->npending ||
			(i < q->n && cmp(&q->items[i], &q->pending[k]) <= 0) ? q->items[i++] : q->pending[k++];

		if (dead(next))
			release(next);
		else
			merged[m++] = next;
	}
	free(q->items);
	q->items = merged;
	q->n = m;
	q->npending = 0;
	return 0;
}

/* Releases every item, dead or not, and the sequence's arrays. */
void
seq_free(Seq *q, SeqRelease release)
{
	for (int i = 0; i < q->n; i++)
		release(q->items[i]);
	for (int i = 0; i < q->npending; i++)
		release(q->pending[i]);
	free(q->items);
	free(q->pending);
	q->items = q->pending = NULL;
	q->n = q->npending = q->pcap = 0;
}
