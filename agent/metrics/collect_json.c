/*
 * collect_json.c -- a Sample as one compact JSON object, with the rates and
 * percentages computed against the previous sample.
 *
 * Rates are the difference of two readings of a counter over the monotonic
 * time between them.  The first sample has none, and a counter that went
 * backwards (it wrapped, or was reset by a driver reload or a replaced disk)
 * gives no rate rather than a negative or absurd one: the key is left out.
 * Disks and interfaces are matched with their previous reading by name, and
 * their counters and rates come from tables of struct offsets, so both are
 * written by the same code.  Sizes are bytes, times milliseconds, rates per
 * second, percentages one decimal; strings from the system (mount points,
 * sensor labels, process names) are made valid UTF-8 first, so the object
 * is always acceptable as jsonb.  The layout is in README.md ("Metrics").
 */
#include "collect.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024 * 1024)		/* nvidia-smi reports memory in MiB */

/* A counter of a DiskStat or NetStat, and how it shows in the JSON. */
typedef struct Field
{
	const char *key;
	size_t		offset;			/* of a uint64_t member */
	double		scale;			/* rates: multiplied into the per-second value */
	double		cap;			/* rates: largest value shown (0: none) */
} Field;

/* put_devices() finds a device's name at the start of its struct */
_Static_assert(offsetof(DiskStat, name) == 0 && offsetof(NetStat, name) == 0, "name first");

static const Field disk_fields[] = {
	{"reads", offsetof(DiskStat, reads), 1, 0}, {"writes", offsetof(DiskStat, writes), 1, 0},
	{"read_bytes", offsetof(DiskStat, read_bytes), 1, 0},
	{"write_bytes", offsetof(DiskStat, write_bytes), 1, 0},
	{"busy_ms", offsetof(DiskStat, busy_ms), 1, 0}, {NULL, 0, 0, 0}
};
static const Field disk_rates[] = {
	{"reads_s", offsetof(DiskStat, reads), 1, 0}, {"writes_s", offsetof(DiskStat, writes), 1, 0},
	{"read_bytes_s", offsetof(DiskStat, read_bytes), 1, 0},
	{"write_bytes_s", offsetof(DiskStat, write_bytes), 1, 0},
	{"busy_pct", offsetof(DiskStat, busy_ms), 0.1, 100}, {NULL, 0, 0, 0}	/* ms/s -> % */
};
static const Field net_fields[] = {
	{"rx_bytes", offsetof(NetStat, rx_bytes), 1, 0}, {"rx_packets", offsetof(NetStat, rx_packets), 1, 0},
	{"rx_errors", offsetof(NetStat, rx_errors), 1, 0}, {"rx_drops", offsetof(NetStat, rx_drops), 1, 0},
	{"tx_bytes", offsetof(NetStat, tx_bytes), 1, 0}, {"tx_packets", offsetof(NetStat, tx_packets), 1, 0},
	{"tx_errors", offsetof(NetStat, tx_errors), 1, 0}, {"tx_drops", offsetof(NetStat, tx_drops), 1, 0},
	{NULL, 0, 0, 0}
};
static const Field net_rates[] = {
	{"rx_bytes_s", offsetof(NetStat, rx_bytes), 1, 0}, {"rx_packets_s", offsetof(NetStat, rx_packets), 1, 0},
	{"tx_bytes_s", offsetof(NetStat, tx_bytes), 1, 0}, {"tx_packets_s", offsetof(NetStat, tx_packets), 1, 0},
	{NULL, 0, 0, 0}
};

typedef void (*PutElem) (StrBuf *sb, const void *elem);

static void put_text(StrBuf *sb, const char *key, const char *s);
static void put_milli(StrBuf *sb, int64_t milli);
static void cpu_counters(const CpuStat *c, uint64_t v[8]);
static void put_cpu(StrBuf *sb, const Sample *s, const Sample *prev);
static void put_mem(StrBuf *sb, const MemStat *m);
static void put_devices(StrBuf *sb, const CollectList *cur, const CollectList *prev, size_t size,
						const Field *fields, const Field *rates, double secs);
static void put_procs(StrBuf *sb, ProcStat *const *top, int n, const Sample *s);
static void put_array(StrBuf *sb, const char *key, const void *items, int n, size_t size, PutElem put);
static void put_fs(StrBuf *sb, const void *elem);
static void put_temp(StrBuf *sb, const void *elem);
static void put_gpu(StrBuf *sb, const void *elem);
static void put_problems(StrBuf *sb, const Sample *s);

/*
 * Stores in *out the per-second rate of a counter that went from prev to cur
 * in secs seconds; -1 (no rate) when it went backwards or no time passed.
 */
int
collect_rate(uint64_t prev, uint64_t cur, double secs, double *out)
{
	if (cur < prev || secs <= 0)
		return -1;
	*out = (double) (cur - prev) / secs;
	return 0;
}

/* Appends ,"key":s (key NULL: just s) with s made valid UTF-8. */
static void
put_text(StrBuf *sb, const char *key, const char *s)
{
	if (key != NULL)
		sb_printf(sb, ",\"%s\":", key);
	jsonio_put_str(sb, s);
}

/* Appends thousandths as an exact decimal: 38850 -> 38.85, -5000 -> -5. */
static void
put_milli(StrBuf *sb, int64_t milli)
{
	uint64_t	a = milli < 0 ? -(uint64_t) milli : (uint64_t) milli;
	char		frac[8];
	int			n;

	sb_printf(sb, "%s%llu", milli < 0 ? "-" : "", (unsigned long long) (a / 1000));
	if (a % 1000 == 0)
		return;
	n = snprintf(frac, sizeof(frac), ".%03llu", (unsigned long long) (a % 1000));
	while (frac[n - 1] == '0')
		n--;
	sb_append(sb, frac, (size_t) n);
}

/* Copies c's counters into v in the order user nice system idle iowait irq softirq steal. */
static void
cpu_counters(const CpuStat *c, uint64_t v[8])
{
	v[0] = c->user;
	v[1] = c->nice;
	v[2] = c->system;
	v[3] = c->idle;
	v[4] = c->iowait;
	v[5] = c->irq;
	v[6] = c->softirq;
	v[7] = c->steal;
}

/* Appends "cpu": the CPU count, and the shares of the interval's time when prev allows. */
static void
put_cpu(StrBuf *sb, const Sample *s, const Sample *prev)
{
	uint64_t	a[8], b[8], d[8], total = 0;
	int			backwards = 0;

	sb_printf(sb, ",\"cpu\":{\"count\":%d", s->cpu.ncpu);
	if (prev != NULL && prev->has_cpu)
	{
		cpu_counters(&prev->cpu, a);
		cpu_counters(&s->cpu, b);
		for (int i = 0; i < 8; i++)
		{
			backwards |= b[i] < a[i];
			d[i] = b[i] - a[i];
			total += d[i];
		}
		if (!backwards && total > 0)
			sb_printf(sb, ",\"user\":%.1f,\"system\":%.1f,\"iowait\":%.1f,\"steal\":%.1f,\"idle\":%.1f",
					  100.0 * (double) (d[0] + d[1]) / (double) total,
					  100.0 * (double) (d[2] + d[5] + d[6]) / (double) total,
					  100.0 * (double) d[4] / (double) total, 100.0 * (double) d[7] / (double) total,
					  100.0 * (double) d[3] / (double) total);
	}
	sb_puts(sb, "}");
}

/* Appends "mem", in bytes. */
static void
put_mem(StrBuf *sb, const MemStat *m)
{
	sb_printf(sb, ",\"mem\":{\"total\":%llu,\"available\":%llu,\"used\":%llu,\"free\":%llu,"
			  "\"buffers\":%llu,\"cached\":%llu,\"swap_total\":%llu,\"swap_used\":%llu}",
			  (unsigned long long) m->total, (unsigned long long) m->available,
			  (unsigned long long) (m->total > m->available ? m->total - m->available : 0),
			  (unsigned long long) m->free, (unsigned long long) m->buffers,
			  (unsigned long long) m->cached, (unsigned long long) m->swap_total,
			  (unsigned long long) (m->swap_total > m->swap_free ? m->swap_total - m->swap_free : 0));
}

/*
 * Appends the elements of a disk or net array: each device's name (the first
 * member of its struct), its counters, and the rates against the device of
 * the same name in prev (NULL: none) that did not go backwards.
 */
static void
put_devices(StrBuf *sb, const CollectList *cur, const CollectList *prev, size_t size,
			const Field *fields, const Field *rates, double secs)
{
	for (int i = 0; i < cur->n; i++)
	{
		const char *dev = (const char *) cur->items + size * (size_t) i;
		const char *old = NULL;

		for (int k = 0; prev != NULL && k < prev->n && old == NULL; k++)
			if (strcmp((const char *) prev->items + size * (size_t) k, dev) == 0)
				old = (const char *) prev->items + size * (size_t) k;
		sb_puts(sb, i ? ",{\"name\":" : "{\"name\":");
		put_text(sb, NULL, dev);
		for (const Field *f = fields; f->key != NULL; f++)
			sb_printf(sb, ",\"%s\":%llu", f->key, (unsigned long long) *(const uint64_t *) (dev + f->offset));
		for (const Field *f = rates; old != NULL && f->key != NULL; f++)
		{
			double		r;

			if (collect_rate(*(const uint64_t *) (old + f->offset), *(const uint64_t *) (dev + f->offset),
							 secs, &r) < 0)
				continue;
			r *= f->scale;
			sb_printf(sb, ",\"%s\":%.1f", f->key, f->cap > 0 && r > f->cap ? f->cap : r);
		}
		sb_puts(sb, "}");
	}
}

/* Appends the elements of a top_cpu or top_rss array. */
static void
put_procs(StrBuf *sb, ProcStat *const *top, int n, const Sample *s)
{
	for (int i = 0; i < n; i++)
	{
		const ProcStat *p = top[i];

		sb_printf(sb, "%s{\"pid\":%d,\"ppid\":%d", i ? "," : "", (int) p->pid, (int) p->ppid);
		put_text(sb, "command", p->comm);
		if (p->cpu >= 0)
			sb_printf(sb, ",\"cpu\":%.1f", p->cpu);
		if (s->has_mem && s->mem.total > 0)
			sb_printf(sb, ",\"mem\":%.1f", 100.0 * (double) p->rss / (double) s->mem.total);
		sb_printf(sb, ",\"rss\":%llu}", (unsigned long long) p->rss);
	}
}

/* Appends ,"key":[...], put() writing each of the n elements of size bytes at items. */
static void
put_array(StrBuf *sb, const char *key, const void *items, int n, size_t size, PutElem put)
{
	sb_printf(sb, ",\"%s\":[", key);
	for (int i = 0; i < n; i++)
	{
		sb_puts(sb, i ? "," : "");
		put(sb, (const char *) items + size * (size_t) i);
	}
	sb_puts(sb, "]");
}

/* Writes one FsStat. */
static void
put_fs(StrBuf *sb, const void *elem)
{
	const FsStat *f = elem;

	sb_puts(sb, "{\"mount\":");
	put_text(sb, NULL, f->mount);
	put_text(sb, "device", f->device);
	put_text(sb, "type", f->type);
	sb_printf(sb, ",\"size\":%llu,\"used\":%llu,\"avail\":%llu,\"inodes\":%llu,\"inodes_used\":%llu}",
			  (unsigned long long) f->size, (unsigned long long) f->used,
			  (unsigned long long) f->avail, (unsigned long long) f->inodes,
			  (unsigned long long) f->inodes_used);
}

/* Writes one TempStat; name and label only when known. */
static void
put_temp(StrBuf *sb, const void *elem)
{
	const TempStat *t = elem;

	sb_puts(sb, "{\"sensor\":");
	put_text(sb, NULL, t->sensor);
	if (t->name[0] != '\0')
		put_text(sb, "name", t->name);
	if (t->label[0] != '\0')
		put_text(sb, "label", t->label);
	sb_puts(sb, ",\"celsius\":");
	put_milli(sb, t->millicelsius);
	sb_puts(sb, "}");
}

/* Writes one GpuStat: memory in bytes, null for what the GPU cannot report. */
static void
put_gpu(StrBuf *sb, const void *elem)
{
	static const char *const keys[4] = {"util", "mem_used", "mem_total", "celsius"};
	const GpuStat *g = elem;
	const int64_t v[4] = {g->util, g->mem_used_mib, g->mem_total_mib, g->celsius};

	sb_printf(sb, "{\"index\":%lld", (long long) g->index);
	for (int k = 0; k < 4; k++)
		if (v[k] < 0)
			sb_printf(sb, ",\"%s\":null", keys[k]);
		else
			sb_printf(sb, ",\"%s\":%lld", keys[k], (long long) (k == 1 || k == 2 ? v[k] * MIB : v[k]));
	sb_puts(sb, "}");
}

/* Appends "problems". */
static void
put_problems(StrBuf *sb, const Sample *s)
{
	sb_puts(sb, ",\"problems\":[");
	for (int i = 0; i + 1 < s->problems.n; i += 2)
	{
		sb_puts(sb, i ? ",{\"source\":" : "{\"source\":");
		put_text(sb, NULL, s->problems.items[i]);
		put_text(sb, "message", s->problems.items[i + 1]);
		sb_puts(sb, "}");
	}
	sb_puts(sb, "]");
}

/* Appends sample s as one JSON object, with rates against prev (NULL: none). */
void
collect_encode(StrBuf *sb, const Sample *s, const Sample *prev)
{
	double		secs = prev != NULL ? (double) (s->mono_ms - prev->mono_ms) / 1000.0 : 0;

	sb_printf(sb, "{\"t\":%lld", (long long) s->unix_ms);
	if (prev != NULL)
		sb_printf(sb, ",\"interval_ms\":%lld", (long long) (s->mono_ms - prev->mono_ms));
	if (s->has_cpu)
		put_cpu(sb, s, prev);
	if (s->has_load)
		sb_printf(sb, ",\"load\":[%.2f,%.2f,%.2f]", s->load[0], s->load[1], s->load[2]);
	if (s->has_mem)
		put_mem(sb, &s->mem);
	if (s->has_fs)
		put_array(sb, "fs", s->fs.items, s->fs.n, sizeof(FsStat), put_fs);
	if (s->has_disk)
	{
		sb_puts(sb, ",\"disk\":[");
		put_devices(sb, &s->disk, prev != NULL && prev->has_disk ? &prev->disk : NULL, sizeof(DiskStat),
					disk_fields, disk_rates, secs);
		sb_puts(sb, "]");
	}
	if (s->has_net)
	{
		sb_puts(sb, ",\"net\":[");
		put_devices(sb, &s->net, prev != NULL && prev->has_net ? &prev->net : NULL, sizeof(NetStat),
					net_fields, net_rates, secs);
		sb_puts(sb, "]");
	}
	put_array(sb, "temp", s->temp.items, s->temp.n, sizeof(TempStat), put_temp);
	if (s->has_procs)
	{
		sb_printf(sb, ",\"procs\":%d,\"top_cpu\":[", s->procs.n);
		put_procs(sb, s->top_cpu, s->ntop_cpu, s);
		sb_puts(sb, "],\"top_rss\":[");
		put_procs(sb, s->top_rss, s->ntop_rss, s);
		sb_puts(sb, "]");
	}
	if (s->modules >= 0)
		sb_printf(sb, ",\"modules\":%d", s->modules);
	if (s->has_gpu)
		put_array(sb, "gpu", s->gpu.items, s->gpu.n, sizeof(GpuStat), put_gpu);
	if (s->has_plugins)
		sb_printf(sb, ",\"plugins\":[%s]", s->plugins.data);
	put_problems(sb, s);
	sb_puts(sb, "}");
}

