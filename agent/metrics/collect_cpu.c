/*
 * collect_cpu.c -- CPU time counters from /proc/stat and the load averages
 * from /proc/loadavg.
 *
 * /proc/stat's first line adds up every online CPU's time in clock ticks
 * (USER_HZ) since boot: user nice system idle iowait irq softirq steal, then
 * guest and guest_nice, which are already counted in user and nice and so
 * are ignored.  Kernels before 2.6.11 stop earlier; missing columns read as
 * zero, at least the first four must be there.  These are counters: the
 * percentages come from two readings (collect.c).  The "cpuN" lines are only
 * counted, which gives the number of online CPUs.
 */
#include "collect.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Fills out from root's /proc/stat. */
int
collect_cpu(const char *root, CpuStat *out, char *err, size_t errlen)
{
	static const size_t cols[] = {
		offsetof(CpuStat, user), offsetof(CpuStat, nice), offsetof(CpuStat, system),
		offsetof(CpuStat, idle), offsetof(CpuStat, iowait), offsetof(CpuStat, irq),
		offsetof(CpuStat, softirq), offsetof(CpuStat, steal)
	};
	CollectFile cf;
	char	   *line;
	int			found = 0,
				bad = 0;

	if (collect_open(&cf, root, err, errlen, "proc/stat") < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	while ((line = collect_next(&cf)) != NULL)
	{
		char	   *f[9];
		int			n = collect_fields(line, f, 9);

		if (n == 0 || strncmp(f[0], "cpu", 3) != 0)
			continue;
		if (f[0][3] != '\0')
			out->ncpu++;
		else if (n < 5 || collect_counters(f + 1, n - 1, out, cols) < 0)
			bad = 1;
		else
			found = 1;
	}
	if (bad || !found)
		agent_seterr(err, errlen, bad ? "invalid \"cpu\" line in \"%s\"" : "no \"cpu\" line in \"%s\"",
					 cf.path);
	collect_close(&cf);
	return bad || !found ? -1 : 0;
}

/* Fills load with the 1, 5 and 15 minute load averages from root's /proc/loadavg. */
int
collect_load(const char *root, double load[3], char *err, size_t errlen)
{
	CollectFile cf;
	char	   *f[3];
	char	   *line;
	int			n;

	if (collect_open(&cf, root, err, errlen, "proc/loadavg") < 0)
		return -1;
	line = collect_next(&cf);
	n = line != NULL ? collect_fields(line, f, 3) : 0;
	for (int i = 0; i < n; i++)
	{
		char	   *end;

		load[i] = strtod(f[i], &end);
		if (*end != '\0' || end == f[i] || load[i] < 0)
			n = 0;
	}
	if (n != 3)
		agent_seterr(err, errlen, "invalid content in \"%s\"", cf.path);
	collect_close(&cf);
	return n == 3 ? 0 : -1;
}
