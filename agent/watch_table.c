/*
 * watch_table.c -- the watcher's hash table: chained, its entries embedded in
 * the structs they key (a file by its path, a directory by its watch descriptor).
 *
 * A workspace may hold a million files and every inotify event names one, so
 * lookups must not walk a list.  The table owns only its bucket array; the
 * caller allocates and frees the entries, hashes the key and says how to
 * compare it, which keeps one small table for both kinds of key.  It doubles
 * when it holds more entries than buckets.
 */
#include "watch.h"

#include <stdlib.h>

#define WTABLE_MIN 64

static void grow(WTable *t);

/* Makes t an empty table. */
void
wtable_init(WTable *t)
{
	t->nbuckets = WTABLE_MIN;
	t->n = 0;
	t->buckets = calloc(t->nbuckets, sizeof(WEntry *));
	if (t->buckets == NULL)
	{
		log_error("out of memory (%zu buckets)", t->nbuckets);
		abort();
	}
}

/* Releases t's buckets (not its entries). */
void
wtable_free(WTable *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->n = 0;
}

/* Returns the FNV-1a hash of s. */
uint64_t
wtable_hash(const char *s)
{
	uint64_t	h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 1099511628211ULL;
	return h;
}

/* Returns the entry of hash for which eq(entry, key) holds, or NULL. */
WEntry *
wtable_find(const WTable *t, uint64_t hash, int (*eq) (const WEntry *, const void *), const void *key)
{
	for (WEntry *e = t->buckets[hash % t->nbuckets]; e != NULL; e = e->next)
		if (e->hash == hash && eq(e, key))
			return e;
	return NULL;
}

/* Doubles t's buckets, moving every entry. */
static void
grow(WTable *t)
{
	size_t		n = t->nbuckets * 2;
	WEntry	  **b = calloc(n, sizeof(WEntry *));

	if (b == NULL)
	{
		log_error("out of memory (%zu buckets)", n);
		abort();
	}
	for (size_t i = 0; i < t->nbuckets; i++)
		for (WEntry *e = t->buckets[i], *next; e != NULL; e = next)
		{
			next = e->next;
			e->next = b[e->hash % n];
			b[e->hash % n] = e;
		}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
}

/* Adds e, whose hash is set, to t. */
void
wtable_add(WTable *t, WEntry *e)
{
	if (t->n >= t->nbuckets)
		grow(t);
	e->next = t->buckets[e->hash % t->nbuckets];
	t->buckets[e->hash % t->nbuckets] = e;
	t->n++;
}

/* Removes e from t. */
void
wtable_remove(WTable *t, WEntry *e)
{
	for (WEntry **p = &t->buckets[e->hash % t->nbuckets]; *p != NULL; p = &(*p)->next)
		if (*p == e)
		{
			*p = e->next;
			t->n--;
			return;
		}
}

/*
 * Returns the entry after e (NULL: the first) in t's order, or NULL at the end;
 * *bucket keeps the place (0 to start).  The entry returned stays valid when e
 * is removed afterwards, so a walk may remove what it visits.
 */
WEntry *
wtable_next(const WTable *t, size_t *bucket, const WEntry *e)
{
	if (e != NULL && e->next != NULL)
		return e->next;
	if (e != NULL)
		(*bucket)++;
	for (; *bucket < t->nbuckets; (*bucket)++)
		if (t->buckets[*bucket] != NULL)
			return t->buckets[*bucket];
	return NULL;
}
