/*
 * alloc_map.c: the int64_t -> pointer hash map of the allocator's session
 * (alloc_map.h).  Keys are spread by a multiplicative hash (ids are sequential);
 * deletion shifts the following run of the probe sequence back, so there are no
 * tombstones and a map that sees millions of jobs come and go stays as fast.
 */
#include "alloc_map.h"

#include <stdlib.h>

static size_t home(const Map *m, int64_t key);
static int	grow(Map *m);

/* Returns the slot key hashes to. */
static size_t
home(const Map *m, int64_t key)
{
	return (size_t) (((uint64_t) key * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & m->mask;
}

/* Doubles the table (or makes the first one); 0 or -1. */
static int
grow(Map *m)
{
	size_t		n = m->slots ? (m->mask + 1) * 2 : 16;
	MapSlot    *old = m->slots;
	size_t		oldn = old ? m->mask + 1 : 0;

	if ((m->slots = calloc(n, sizeof(MapSlot))) == NULL)
	{
		m->slots = old;
		return -1;
	}
	m->mask = n - 1;
	for (size_t i = 0; i < oldn; i++)
		if (old[i].value)
		{
			size_t		s = home(m, old[i].key);

			while (m->slots[s].value)
				s = (s + 1) & m->mask;
			m->slots[s] = old[i];
		}
	free(old);
	return 0;
}

/* Returns the value of key, or NULL. */
void *
map_get(const Map *m, int64_t key)
{
	if (!m->slots)
		return NULL;
	for (size_t s = home(m, key); m->slots[s].value; s = (s + 1) & m->mask)
		if (m->slots[s].key == key)
			return m->slots[s].value;
	return NULL;
}

/* Sets key to value (not NULL); 0 or -1 (memory). */
int
map_put(Map *m, int64_t key, void *value)
{
	size_t		s;

	if ((!m->slots || (m->count + 1) * 2 > m->mask + 1) && grow(m) < 0)
		return -1;
	for (s = home(m, key); m->slots[s].value; s = (s + 1) & m->mask)
		if (m->slots[s].key == key)
		{
			m->slots[s].value = value;
			return 0;
		}
	m->slots[s] = (MapSlot) {key, value};
	m->count++;
	return 0;
}

/* Removes key; returns its value, or NULL when it had none. */
void *
map_del(Map *m, int64_t key)
{
	size_t		s,
				next;
	void	   *value;

	if (!m->slots)
		return NULL;
	for (s = home(m, key); m->slots[s].value && m->slots[s].key != key; s = (s + 1) & m->mask)
		;
	if ((value = m->slots[s].value) == NULL)
		return NULL;
	/* Shift back every entry of the run that may move into the hole. */
	for (next = (s + 1) & m->mask; m->slots[next].value; next = (next + 1) & m->mask)
	{
		size_t		h = home(m, m->slots[next].key);

		if (((next - h) & m->mask) >= ((next - s) & m->mask))
		{
			m->slots[s] = m->slots[next];
			s = next;
		}
	}
	m->slots[s].value = NULL;
	m->count--;
	return value;
}

/* Returns the value in slot i (0 .. mask), or NULL: for walking the map. */
void *
map_at(const Map *m, size_t i, int64_t *key)
{
	if (!m->slots || !m->slots[i].value)
		return NULL;
	*key = m->slots[i].key;
	return m->slots[i].value;
}

/* Returns the number of slots to walk with map_at. */
size_t
map_slots(const Map *m)
{
	return m->slots ? m->mask + 1 : 0;
}

/* Frees m's table; m is then an empty map. */
void
map_free(Map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->mask = m->count = 0;
}
