/*
 * test_collect.c -- every metric parser against every fixture, exact values.
 *
 * The fixtures under tests/fixtures/<case>/ are small copies of /proc and
 * /sys: "basic" (and "basic-later", the same machine 10 s on), "noswap",
 * "nosensors" (a VM: no thermal zones, no hwmon), "oldkernel" (no
 * MemAvailable, 7 cpu columns, no /proc/modules, no /sys/block), "manydisks"
 * (nvme, sd, dm, md, loop, zram, ram, sr, nbd, mmc, cciss and partitions),
 * "hugenet" (counters at and past 2^64) and "broken" (malformed files).
 * Filesystem sizes come from unit_fake_usage() instead of statvfs().
 */
#include "unit.h"

#include <stdlib.h>

#define FIX "tests/fixtures/"

/* Returns element i of list l of type T. */
#define AT(T, l, i) (((T *) (l).items)[i])

/* The /proc/stat and /proc/loadavg cases. */
static void
test_cpu(void)
{
	char		err[AGENT_ERRLEN];
	CpuStat		c;
	double		load[3];

	CHECK(collect_cpu(FIX "basic", &c, err, sizeof(err)) == 0);
	CHECK(c.user == 10000 && c.nice == 200 && c.system == 3000 && c.idle == 80000 &&
		  c.iowait == 500 && c.irq == 50 && c.softirq == 150 && c.steal == 100 && c.ncpu == 4);
	CHECK(collect_cpu(FIX "oldkernel", &c, err, sizeof(err)) == 0);
	CHECK(c.user == 100 && c.softirq == 1 && c.steal == 0 && c.ncpu == 1);
	CHECK(collect_cpu(FIX "broken", &c, err, sizeof(err)) == -1);
	CHECK_STR(err, "invalid \"cpu\" line in \"tests/fixtures/broken/proc/stat\"");
	CHECK(collect_cpu(FIX "noswap", &c, err, sizeof(err)) == -1);
	CHECK(strstr(err, "could not open file \"tests/fixtures/noswap/proc/stat\"") != NULL);

	CHECK(collect_load(FIX "basic", load, err, sizeof(err)) == 0);
	CHECK(load[0] == 1.5 && load[1] == 0.75 && load[2] == 0.25);
	CHECK(collect_load(FIX "nosensors", load, err, sizeof(err)) == 0);
	CHECK(load[0] == 0 && load[1] == 0.01 && load[2] == 0.05);
	CHECK(collect_load(FIX "broken", load, err, sizeof(err)) == -1);
	CHECK_STR(err, "invalid content in \"tests/fixtures/broken/proc/loadavg\"");
}

/* The /proc/meminfo cases: swap, no swap, no MemAvailable, no MemTotal. */
static void
test_mem(void)
{
	char		err[AGENT_ERRLEN];
	MemStat		m;

	CHECK(collect_mem(FIX "basic", &m, err, sizeof(err)) == 0);
	CHECK(m.total == 16384000ULL * 1024 && m.free == 2048000ULL * 1024 &&
		  m.available == 8192000ULL * 1024 && m.buffers == 512000ULL * 1024 &&
		  m.cached == 4096000ULL * 1024 && m.swap_total == 2097148ULL * 1024 &&
		  m.swap_free == 1048574ULL * 1024);
	CHECK(collect_mem(FIX "noswap", &m, err, sizeof(err)) == 0);
	CHECK(m.total == 4026528ULL * 1024 && m.available == 2345678ULL * 1024 &&
		  m.swap_total == 0 && m.swap_free == 0);
	CHECK(collect_mem(FIX "oldkernel", &m, err, sizeof(err)) == 0);
	CHECK(m.available == (100000ULL + 20000 + 300000) * 1024 && m.swap_total == 0);
	CHECK(collect_mem(FIX "broken", &m, err, sizeof(err)) == -1);
	CHECK_STR(err, "no \"MemTotal:\" line in \"tests/fixtures/broken/proc/meminfo\"");
}

/* /proc/self/mounts: what is skipped, escapes, duplicates, mounted over. */
static void
test_fs(void)
{
	char		err[AGENT_ERRLEN];
	CollectList l = {0};
	uint64_t	gib = 1024ULL * 1024 * 1024;

	unit_usage_root = FIX "basic";
	CHECK(collect_fs(unit_usage_root, unit_fake_usage, &l, err, sizeof(err)) == 0);
	CHECK(l.n == 3);
	if (l.n == 3)
	{
		CHECK_STR(AT(FsStat, l, 0).mount, "/");
		CHECK_STR(AT(FsStat, l, 0).device, "/dev/nvme0n1p2");
		CHECK_STR(AT(FsStat, l, 0).type, "ext4");
		CHECK(AT(FsStat, l, 0).size == 100 * gib + 1 && AT(FsStat, l, 0).used == 40 * gib &&
			  AT(FsStat, l, 0).avail == 55 * gib && AT(FsStat, l, 0).inodes == 6553600 &&
			  AT(FsStat, l, 0).inodes_used == 123456);
		CHECK_STR(AT(FsStat, l, 1).mount, "/dev/shm");
		CHECK_STR(AT(FsStat, l, 1).type, "tmpfs");
		CHECK_STR(AT(FsStat, l, 2).mount, "/data disk");
		CHECK(AT(FsStat, l, 2).size == 100 * gib + 10);
	}
	collect_list_free(&l);

	unit_usage_root = FIX "manydisks";
	CHECK(collect_fs(unit_usage_root, unit_fake_usage, &l, err, sizeof(err)) == 0);
	CHECK(l.n == 4);
	if (l.n == 4)
	{
		CHECK_STR(AT(FsStat, l, 0).device, "/dev/mapper/vg-root");
		CHECK_STR(AT(FsStat, l, 1).mount, "/scratch");
		CHECK_STR(AT(FsStat, l, 1).device, "/dev/md0");	/* the visible one */
		CHECK_STR(AT(FsStat, l, 1).type, "xfs");
		CHECK_STR(AT(FsStat, l, 2).mount, "/data\ttab");
		CHECK_STR(AT(FsStat, l, 3).type, "overlay");
	}
	collect_list_free(&l);

	unit_usage_root = FIX "broken";
	CHECK(collect_fs(unit_usage_root, unit_fake_usage, &l, err, sizeof(err)) == 0 && l.n == 0);
	CHECK(collect_fs(FIX "noswap", unit_fake_usage, &l, err, sizeof(err)) == -1);
	collect_list_free(&l);

	/* the real statvfs() on the real root */
	CHECK(collect_fs("/", collect_fs_usage, &l, err, sizeof(err)) == 0);
	CHECK(l.n >= 1 && AT(FsStat, l, 0).size > 0);
	collect_list_free(&l);
}

/* /proc/diskstats: whole physical disks only. */
static void
test_disk(void)
{
	static const char *const many[] = {"nvme0n1", "nvme1n1", "sda", "sdb", "sr0", "mmcblk0", "cciss/c0d0"};
	char		err[AGENT_ERRLEN];
	CollectList l = {0};

	CHECK(collect_disk(FIX "basic", &l, err, sizeof(err)) == 0);
	CHECK(l.n == 2);
	if (l.n == 2)
	{
		DiskStat   *d = &AT(DiskStat, l, 0);

		CHECK_STR(d->name, "nvme0n1");
		CHECK(d->reads == 1000 && d->read_bytes == 20000 * 512 && d->writes == 2000 &&
			  d->write_bytes == 40000 * 512 && d->busy_ms == 3000);
		CHECK_STR(AT(DiskStat, l, 1).name, "sda");
	}
	collect_list_free(&l);

	CHECK(collect_disk(FIX "manydisks", &l, err, sizeof(err)) == 0);
	CHECK(l.n == 7);
	for (int i = 0; i < l.n && i < 7; i++)
		CHECK_STR(AT(DiskStat, l, i).name, many[i]);
	collect_list_free(&l);

	/* no /sys/block: every device counts as whole; short partition lines are ignored */
	CHECK(collect_disk(FIX "oldkernel", &l, err, sizeof(err)) == 0);
	CHECK(l.n == 1 && strcmp(AT(DiskStat, l, 0).name, "sda") == 0 &&
		  AT(DiskStat, l, 0).read_bytes == 800 * 512 && AT(DiskStat, l, 0).busy_ms == 30);
	collect_list_free(&l);

	CHECK(collect_disk(FIX "broken", &l, err, sizeof(err)) == -1);
	CHECK(strstr(err, "proc/diskstats") != NULL);
}

/* /proc/net/dev: lo skipped, counters up to 2^64-1, glued names, a counter past 2^64. */
static void
test_net(void)
{
	char		err[AGENT_ERRLEN];
	CollectList l = {0};

	CHECK(collect_net(FIX "basic", &l, err, sizeof(err)) == 0);
	CHECK(l.n == 2);
	if (l.n == 2)
	{
		NetStat    *n = &AT(NetStat, l, 0);

		CHECK_STR(n->name, "eth0");
		CHECK(n->rx_bytes == 1000000 && n->rx_packets == 1000 && n->rx_errors == 1 &&
			  n->rx_drops == 2 && n->tx_bytes == 500000 && n->tx_packets == 800 &&
			  n->tx_errors == 3 && n->tx_drops == 4);
		CHECK_STR(AT(NetStat, l, 1).name, "wlan0");
	}
	collect_list_free(&l);

	CHECK(collect_net(FIX "hugenet", &l, err, sizeof(err)) == 0);
	CHECK(l.n == 3);
	if (l.n == 3)
	{
		CHECK_STR(AT(NetStat, l, 0).name, "eth0");
		CHECK(AT(NetStat, l, 0).rx_bytes == 18446744073709551000ULL);
		CHECK(AT(NetStat, l, 0).tx_bytes == UINT64_MAX);
		CHECK_STR(AT(NetStat, l, 1).name, "eth1");
		CHECK_STR(AT(NetStat, l, 2).name, "eth2");	/* bond0 (2^64) is left out */
		CHECK(AT(NetStat, l, 2).rx_bytes == 123456789012ULL && AT(NetStat, l, 2).tx_packets == 7);
	}
	collect_list_free(&l);

	CHECK(collect_net(FIX "broken", &l, err, sizeof(err)) == -1);
}

/* Thermal zones and hwmon chips; none at all. */
static void
test_temp(void)
{
	static const struct
	{
		const char *sensor, *name, *label;
		int64_t		milli;
	}			want[] = {
		{"thermal_zone0", "acpitz", "", 27800},
		{"thermal_zone1", "x86_pkg_temp", "", 45000},
		{"thermal_zone2", "pch_cannonlake", "", 51000},
		{"thermal_zone10", "INT3400 Thermal", "", 20000},
		{"hwmon0/temp1", "nvme", "Composite", 38850},
		{"hwmon0/temp2", "nvme", "Sensor 1", 41850},
		{"hwmon1/temp1", "coretemp", "Package id 0", 46000},
		{"hwmon1/temp2", "coretemp", "Core 0", 44000},
		{"hwmon1/temp10", "coretemp", "Core 8", 43000},
		{"hwmon2/temp1", "", "", -5000},
	};
	CollectList l = {0};

	collect_temp(FIX "basic", &l);
	CHECK(l.n == 10);
	for (int i = 0; i < l.n && i < 10; i++)
	{
		TempStat   *t = &AT(TempStat, l, i);

		CHECK_STR(t->sensor, want[i].sensor);
		CHECK_STR(t->name, want[i].name);
		CHECK_STR(t->label, want[i].label);
		CHECK(t->millicelsius == want[i].milli);
	}
	collect_list_free(&l);
	collect_temp(FIX "nosensors", &l);
	CHECK(l.n == 0);
	collect_temp(FIX "does-not-exist", &l);
	CHECK(l.n == 0);
	collect_list_free(&l);
}

/* Processes, %cpu over an interval with a reused pid, the rankings; modules. */
static void
test_procs(void)
{
	char		err[AGENT_ERRLEN];
	Sample		a, b;
	int			mods;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	CHECK(collect_procs(FIX "basic", 4096, &a.procs, err, sizeof(err)) == 0);
	CHECK(a.procs.n == 6);		/* 999 is malformed, "self" is no pid */
	if (a.procs.n == 6)
	{
		ProcStat   *p = &AT(ProcStat, a.procs, 3);

		CHECK(p->pid == 200 && p->ppid == 1 && p->ticks == 200 && p->start == 600 &&
			  p->rss == 1000 * 4096);
		CHECK_STR(p->comm, "my (odd) name");
		CHECK(AT(ProcStat, a.procs, 0).pid == 1 && AT(ProcStat, a.procs, 5).pid == 4321);
	}
	collect_proc_rank(&a, NULL, 0, 100);
	CHECK(a.ntop_cpu == 0);		/* first sample: no %cpu */
	CHECK(a.ntop_rss == 5 && a.top_rss[0]->pid == 1234 && a.top_rss[1]->pid == 100 &&
		  a.top_rss[2]->pid == 1 && a.top_rss[3]->pid == 4321 && a.top_rss[4]->pid == 200);

	CHECK(collect_procs(FIX "basic-later", 4096, &b.procs, err, sizeof(err)) == 0);
	collect_proc_rank(&b, &a, 10.0, 100);
	CHECK(b.ntop_cpu == 5);
	if (b.ntop_cpu == 5)
	{
		CHECK(b.top_cpu[0]->pid == 1234 && b.top_cpu[0]->cpu == 180.0);	/* 100 is one CPU */
		CHECK(b.top_cpu[1]->pid == 100 && b.top_cpu[1]->cpu == 50.0);
		CHECK(b.top_cpu[2]->pid == 4321 && b.top_cpu[2]->cpu == 25.0);	/* reused pid: all new */
		CHECK_STR(b.top_cpu[2]->comm, "make");
		CHECK(b.top_cpu[3]->pid == 5000 && b.top_cpu[3]->cpu == 10.0);
		CHECK(b.top_cpu[4]->pid == 1 && b.top_cpu[4]->cpu == 1.5);
	}
	CHECK(b.ntop_rss == 5 && b.top_rss[2]->pid == 5000 && b.top_rss[4]->pid == 4321);
	collect_list_free(&a.procs);
	collect_list_free(&b.procs);
	CHECK(collect_procs(FIX "does-not-exist", 4096, &b.procs, err, sizeof(err)) == -1);

	CHECK(collect_modules(FIX "basic", &mods, err, sizeof(err)) == 0 && mods == 3);
	CHECK(collect_modules(FIX "oldkernel", &mods, err, sizeof(err)) == 0 && mods == -1);
	CHECK(collect_modules(FIX "broken", &mods, err, sizeof(err)) == 0 && mods == 0);
}

/* The helpers: path joining, strict numbers, fields. */
static void
test_helpers(void)
{
	char		path[64], line[] = " a\tb  c \r";
	char	   *f[4];
	uint64_t	v;

	collect_path(path, sizeof(path), "/", "proc/%s", "stat");
	CHECK_STR(path, "/proc/stat");
	collect_path(path, sizeof(path), "fix/", "proc/stat");
	CHECK_STR(path, "fix/proc/stat");
	CHECK(collect_u64("18446744073709551615", &v) == 0 && v == UINT64_MAX);
	CHECK(collect_u64("18446744073709551616", &v) == -1);
	CHECK(collect_u64("-1", &v) == -1 && collect_u64("", &v) == -1 && collect_u64("12x", &v) == -1);
	CHECK(collect_fields(line, f, 4) == 3 && strcmp(f[0], "a") == 0 && strcmp(f[2], "c") == 0);
}

void
test_collect(void)
{
	test_helpers();
	test_cpu();
	test_mem();
	test_fs();
	test_disk();
	test_net();
	test_temp();
	test_procs();
}
