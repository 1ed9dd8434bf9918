/*
 * collect_net.c -- per-interface traffic counters from /proc/net/dev.
 *
 * After two header lines, each line is "name: " and sixteen counters: eight
 * received (bytes packets errs drop fifo frame compressed multicast) and
 * eight transmitted (bytes packets errs drop fifo colls carrier compressed).
 * Old kernels glue a wide first counter to the colon ("eth0:123456"), so the
 * name ends at the first ':' (interface names cannot contain one).  The
 * loopback interface "lo" is left out: its traffic never leaves the machine.
 * Counters are 64-bit on 64-bit kernels and read exactly up to 2^64-1; one
 * that does not fit makes the line invalid, and the interface is left out.
 */
#include "collect.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Fills out (NetStat) with root's interfaces from /proc/net/dev, "lo" excepted. */
int
collect_net(const char *root, CollectList *out, char *err, size_t errlen)
{
	static const size_t cols[] = {
		offsetof(NetStat, rx_bytes), offsetof(NetStat, rx_packets), offsetof(NetStat, rx_errors),
		offsetof(NetStat, rx_drops), COLLECT_SKIP, COLLECT_SKIP, COLLECT_SKIP, COLLECT_SKIP,
		offsetof(NetStat, tx_bytes), offsetof(NetStat, tx_packets), offsetof(NetStat, tx_errors),
		offsetof(NetStat, tx_drops), COLLECT_SKIP, COLLECT_SKIP, COLLECT_SKIP, COLLECT_SKIP
	};
	CollectFile cf;
	char	   *line;

	if (collect_open(&cf, root, err, errlen, "proc/net/dev") < 0)
		return -1;
	while ((line = collect_next(&cf)) != NULL)
	{
		char	   *colon = strchr(line, ':');
		char	   *name = line + strspn(line, " \t");
		char	   *f[16];
		NetStat		ns;

		memset(&ns, 0, sizeof(ns));
		if (colon == NULL || colon == name || (size_t) (colon - name) >= sizeof(ns.name))
			continue;			/* a header line */
		*colon = '\0';
		if (strcmp(name, "lo") == 0 || collect_fields(colon + 1, f, 16) != 16 ||
			collect_counters(f, 16, &ns, cols) < 0)
			continue;
		snprintf(ns.name, sizeof(ns.name), "%s", name);
		*(NetStat *) collect_list_add(out, sizeof(NetStat)) = ns;
	}
	collect_close(&cf);
	return 0;
}
