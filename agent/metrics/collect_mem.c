/*
 * collect_mem.c -- memory and swap from /proc/meminfo.
 *
 * /proc/meminfo is "Key:   value kB" lines; the agent keeps seven of them and
 * turns kB (KiB, in fact) into bytes.  MemTotal and MemFree must be there.
 * MemAvailable, the kernel's own estimate of what could be handed out without
 * swapping, exists since Linux 3.14; before, available reads as MemFree +
 * Buffers + Cached, the estimate free(1) used then.  A machine without swap
 * has SwapTotal 0 (or no Swap lines at all): both read as zero.
 */
#include "collect.h"

#include <stddef.h>
#include <string.h>

/* Fills out (bytes) from root's /proc/meminfo. */
int
collect_mem(const char *root, MemStat *out, char *err, size_t errlen)
{
	static const struct
	{
		const char *key;
		size_t		offset;
	}			keys[] = {
		{"MemTotal:", offsetof(MemStat, total)},
		{"MemFree:", offsetof(MemStat, free)},
		{"MemAvailable:", offsetof(MemStat, available)},
		{"Buffers:", offsetof(MemStat, buffers)},
		{"Cached:", offsetof(MemStat, cached)},
		{"SwapTotal:", offsetof(MemStat, swap_total)},
		{"SwapFree:", offsetof(MemStat, swap_free)},
	};
	CollectFile cf;
	char	   *line;
	unsigned	seen = 0;

	if (collect_open(&cf, root, err, errlen, "proc/meminfo") < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	while ((line = collect_next(&cf)) != NULL)
	{
		char	   *f[3];
		int			n = collect_fields(line, f, 3);
		uint64_t	v;

		for (size_t i = 0; n >= 2 && i < sizeof(keys) / sizeof(keys[0]); i++)
		{
			if (strcmp(f[0], keys[i].key) != 0)
				continue;
			if (collect_u64(f[1], &v) < 0 || (n == 3 && strcmp(f[2], "kB") != 0) ||
				v > UINT64_MAX / 1024)
			{
				agent_seterr(err, errlen, "invalid \"%s\" line in \"%s\"", keys[i].key, cf.path);
				collect_close(&cf);
				return -1;
			}
			*(uint64_t *) ((char *) out + keys[i].offset) = n == 3 ? v * 1024 : v;
			seen |= 1u << i;
		}
	}
	if ((seen & 3) != 3)
		agent_seterr(err, errlen, "no \"%s\" line in \"%s\"", (seen & 1) ? "MemFree:" : "MemTotal:", cf.path);
	collect_close(&cf);
	if ((seen & 3) != 3)
		return -1;
	if (!(seen & 4))
		out->available = out->free + out->buffers + out->cached;
	return 0;
}
