/*
 * collect_proc.c -- the processes: how many, which ones use the most CPU and
 * memory; and how many kernel modules are loaded.
 *
 * One read of /proc/PID/stat per process gives everything: the command name
 * (comm, at most 15 bytes, between the first '(' and the last ')' since it
 * may contain both), ppid, utime + stime in clock ticks, the start time that
 * tells a reused pid apart, and rss in pages (the same number as statm's
 * second column, so statm is not read as well).  The command's arguments are
 * not read: they may hold secrets, and the sample goes to a database.
 *
 * %cpu is the CPU time used between two samples over the wall time between
 * them, 100 being one CPU fully (top's Irix mode): a process is matched with
 * its previous reading by pid and start time, and one without a previous
 * reading started since, so all its time falls in the interval.  The first
 * sample knows no %cpu.  A process that vanishes while being read is simply
 * not counted.
 */
#include "collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_stat(char *text, long page_size, ProcStat *p);
static const ProcStat *find_pid(const CollectList *procs, pid_t pid);
static void insert_top(ProcStat **top, int *n, ProcStat *p, int by_cpu);

/* Fills p from the text of /proc/PID/stat; -1 when it is malformed. */
static int
parse_stat(char *text, long page_size, ProcStat *p)
{
	char	   *open = strchr(text, '(');
	char	   *close = strrchr(text, ')');
	char	   *f[22];
	uint64_t	ppid, utime, stime, start, rss;

	if (open == NULL || close == NULL || close < open ||
		collect_fields(close + 1, f, 22) != 22 ||
		collect_u64(f[1], &ppid) < 0 || collect_u64(f[11], &utime) < 0 ||
		collect_u64(f[12], &stime) < 0 || collect_u64(f[19], &start) < 0 ||
		collect_u64(f[21], &rss) < 0)
		return -1;
	snprintf(p->comm, sizeof(p->comm), "%.*s", (int) (close - open - 1), open + 1);
	utf8_sanitize(p->comm, strlen(p->comm), 1);
	p->ppid = (pid_t) ppid;
	p->ticks = utime + stime;
	p->start = start;
	p->rss = rss * (uint64_t) page_size;
	p->cpu = -1;
	return 0;
}

/* Fills out (ProcStat, by pid) with every process of root's /proc. */
int
collect_procs(const char *root, long page_size, CollectList *out, char *err, size_t errlen)
{
	char		dir[4096];
	StrList		names;

	strlist_init(&names);
	collect_path(dir, sizeof(dir), root, "proc");
	if (collect_list_dir(dir, "", &names, err, errlen) < 0)
	{
		strlist_free(&names);
		return -1;
	}
	for (int i = 0; i < names.n; i++)
	{
		const char *name = names.items[i];
		CollectFile cf;
		ProcStat	p;

		if (strspn(name, "0123456789") != strlen(name) || strlen(name) > 9 ||
			collect_open(&cf, root, NULL, 0, "proc/%s/stat", name) < 0)
			continue;			/* no process, or gone meanwhile */
		memset(&p, 0, sizeof(p));
		p.pid = (pid_t) atoi(name);
		if (parse_stat(cf.text.data, page_size, &p) == 0)
			*(ProcStat *) collect_list_add(out, sizeof(ProcStat)) = p;
		collect_close(&cf);
	}
	strlist_free(&names);
	return 0;
}

/* Returns the process pid in procs (sorted by pid), or NULL. */
static const ProcStat *
find_pid(const CollectList *procs, pid_t pid)
{
	int			lo = 0,
				hi = procs->n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		const ProcStat *p = (const ProcStat *) procs->items + mid;

		if (p->pid == pid)
			return p;
		if (p->pid < pid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

/* Puts p into the ranking top[0..*n) (at most COLLECT_TOP, highest first) if it belongs there. */
static void
insert_top(ProcStat **top, int *n, ProcStat *p, int by_cpu)
{
	int			i = *n < COLLECT_TOP ? (*n)++ : COLLECT_TOP;

	/* strictly greater only: among equals the lower pid, met first, stays ahead */
	while (i > 0 && (by_cpu ? p->cpu > top[i - 1]->cpu : p->rss > top[i - 1]->rss))
	{
		if (i < COLLECT_TOP)
			top[i] = top[i - 1];
		i--;
	}
	if (i < COLLECT_TOP)
		top[i] = p;
}

/*
 * Sets each process's %cpu in cur from its previous reading in prev (NULL:
 * none, so no %cpu) over secs seconds, and ranks cur's top CPU users (those
 * that used any) and top resident sets.
 */
void
collect_proc_rank(Sample *cur, const Sample *prev, double secs, long hz)
{
	cur->ntop_cpu = cur->ntop_rss = 0;
	for (int i = 0; i < cur->procs.n; i++)
	{
		ProcStat   *p = (ProcStat *) cur->procs.items + i;
		const ProcStat *q = prev != NULL ? find_pid(&prev->procs, p->pid) : NULL;

		p->cpu = -1;
		if (prev != NULL && secs > 0 && hz > 0)
		{
			if (q == NULL || q->start != p->start)
				p->cpu = (double) p->ticks * 100.0 / ((double) hz * secs);	/* new since */
			else if (p->ticks >= q->ticks)
				p->cpu = (double) (p->ticks - q->ticks) * 100.0 / ((double) hz * secs);
		}
		if (p->cpu > 0)
			insert_top(cur->top_cpu, &cur->ntop_cpu, p, 1);
		if (p->rss > 0)
			insert_top(cur->top_rss, &cur->ntop_rss, p, 0);
	}
}

/* Stores the number of loaded modules from root's /proc/modules in *count; -1 there when the kernel has no modules. */
int
collect_modules(const char *root, int *count, char *err, size_t errlen)
{
	CollectFile cf;

	collect_path(cf.path, sizeof(cf.path), root, "proc/modules");
	*count = -1;
	if (access(cf.path, F_OK) != 0)
		return 0;				/* built without module support */
	if (collect_open(&cf, root, err, errlen, "proc/modules") < 0)
		return -1;
	*count = 0;
	while (collect_next(&cf) != NULL)
		(*count)++;
	collect_close(&cf);
	return 0;
}
