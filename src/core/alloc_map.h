/*
 * alloc_map.h: a hash map from int64_t ids (jobs, resource units) to pointers, for
 * the allocator's session (alloc_session.c).  Not part of the API.
 *
 * Open addressing with linear probing and deletion by backward shift, so lookups
 * stay O(1) however many jobs come and go; the table doubles at half full.
 */
#ifndef DISPATCH_ALLOC_MAP_H
#define DISPATCH_ALLOC_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct MapSlot
{
	int64_t		key;
	void	   *value;			/* NULL: the slot is empty */
} MapSlot;

typedef struct Map
{
	MapSlot    *slots;
	size_t		mask;			/* slots - 1, the count being a power of 2 */
	size_t		count;
} Map;

/* Returns the value of key, or NULL. */
extern void *map_get(const Map *m, int64_t key);

/* Sets key to value (not NULL); 0 or -1 (memory). */
extern int	map_put(Map *m, int64_t key, void *value);

/* Removes key; returns its value, or NULL when it had none. */
extern void *map_del(Map *m, int64_t key);

/* Returns the value in slot i (0 .. mask), or NULL: for walking the map. */
extern void *map_at(const Map *m, size_t i, int64_t *key);

/* Returns the number of slots to walk with map_at. */
extern size_t map_slots(const Map *m);

extern void map_free(Map *m);

#endif							/* DISPATCH_ALLOC_MAP_H */
