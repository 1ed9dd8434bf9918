/*
 * alloc_types.c: the resource types a cycle works with, and finding them by name.
 *
 * A type gets groups (alloc_int.h) only when some job needs it and some unit
 * offers it: a job needing a type nobody offers is told so without one, and a
 * node offering thousands of odd types costs nothing (the table holds the types
 * jobs need, not those units offer).  Names are looked up in a hash table
 * (glibc's hsearch_r), never by comparing with every known type: a user can
 * queue 100,000 jobs that each need a type of its own, which cost the cycle
 * quadratic time (1.4 s for 20,000 such jobs on two nodes) and, at 10,000 nodes,
 * gigabytes of groups when every needed type got them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "alloc_int.h"

#include <search.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The needed types by name; an entry's data is its type index + 1, or 0 when no unit offers it. */
typedef struct TypeSet
{
	struct hsearch_data table;
	ENTRY	  **entries;		/* every distinct name, as entered */
	int			n;
	int			cap;			/* names the table holds before it is rebuilt bigger */
} TypeSet;

static int	set_enter(TypeSet *set, const char *name, ENTRY **found);
static int	set_rebuild(TypeSet *set, int cap);

/*
 * Makes the table hold cap names and enters the known ones again (while names
 * are entered, no entry has data yet); 0 or -1.
 */
static int
set_rebuild(TypeSet *set, int cap)
{
	ENTRY	  **entries = malloc(sizeof(ENTRY *) * cap);
	char	  **keys = malloc(sizeof(char *) * (set->n + 1));

	if (!entries || !keys)
	{
		free(entries);
		free(keys);
		return -1;
	}
	for (int i = 0; i < set->n; i++)
		keys[i] = set->entries[i]->key;	/* the table's entries go with it */
	if (set->cap > 0)
		hdestroy_r(&set->table);
	memset(&set->table, 0, sizeof(set->table));
	set->cap = 0;
	free(set->entries);
	set->entries = entries;
	if (hcreate_r((size_t) cap * 2, &set->table) == 0)
	{
		free(keys);
		return -1;
	}
	set->cap = cap;
	for (int i = 0; i < set->n; i++)
	{
		ENTRY		item = {keys[i], NULL};

		if (hsearch_r(item, ENTER, &entries[i], &set->table) == 0)
		{
			free(keys);
			return -1;
		}
	}
	free(keys);
	return 0;
}

/* Enters name (data 0 when new) and sets *found to its entry; 0 or -1 (memory). */
static int
set_enter(TypeSet *set, const char *name, ENTRY **found)
{
	ENTRY		item = {(char *) name, NULL};

	if (set->cap > 0 && hsearch_r(item, FIND, found, &set->table) != 0)
		return 0;
	if (set->n == set->cap && set_rebuild(set, set->cap ? set->cap * 2 : 16) < 0)
		return -1;
	if (hsearch_r(item, ENTER, found, &set->table) == 0)
		return -1;
	set->entries[set->n++] = *found;
	return 0;
}

/*
 * Builds st->types, the types some job needs and some unit offers, in the order
 * units first offer them, and st->unit_type (-1 for a unit of a type no job
 * needs); 0 or -1 (memory).
 */
int
types_build(State *st)
{
	const AllocProblem *p = st->p;
	TypeSet    *set = calloc(1, sizeof(TypeSet));
	ENTRY	   *e = NULL;

	if ((st->typeset = set) == NULL)
		return -1;
	/* a need the job before had in the same place is entered already */
	for (int j = 0; j < p->njobs; j++)
		for (int i = 0; i < p->jobs[j].nneeds; i++)
			if ((j == 0 || i >= p->jobs[j - 1].nneeds ||
				 strcmp(p->jobs[j].needs[i].type, p->jobs[j - 1].needs[i].type) != 0) &&
				set_enter(set, p->jobs[j].needs[i].type, &e) < 0)
				return -1;
	if ((st->types = malloc(sizeof(char *) * (set->n + 1))) == NULL)
		return -1;
	for (int u = 0; u < p->nunits; u++)
	{
		ENTRY		item = {(char *) p->units[u].type, NULL};

		/* units of a node mostly come in runs of one type: one lookup a run */
		if (u > 0 && strcmp(p->units[u].type, p->units[u - 1].type) == 0)
		{
			st->unit_type[u] = st->unit_type[u - 1];
			continue;
		}
		st->unit_type[u] = -1;
		if (set->cap == 0 || hsearch_r(item, FIND, &e, &set->table) == 0)
			continue;
		if (e->data == NULL)
		{
			st->types[st->ntypes] = e->key;
			e->data = (void *) (intptr_t) ++st->ntypes;
		}
		st->unit_type[u] = (int) (intptr_t) e->data - 1;
	}
	return 0;
}

/* Returns the index of type among st->types, or -1 when no unit offers it or no job needs it. */
int
alloc_type_index(const State *st, const char *type)
{
	TypeSet    *set = st->typeset;
	ENTRY		item = {(char *) type, NULL};
	ENTRY	   *e;

	if (set->cap == 0 || hsearch_r(item, FIND, &e, &set->table) == 0)
		return -1;
	return (int) (intptr_t) e->data - 1;
}

/* Frees what types_build made (also when it failed half-way). */
void
types_free(State *st)
{
	TypeSet    *set = st->typeset;

	if (!set)
		return;
	if (set->cap > 0)
		hdestroy_r(&set->table);
	free(set->entries);
	free(set);
	st->typeset = NULL;
}
