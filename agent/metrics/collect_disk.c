/*
 * collect_disk.c -- per-disk I/O counters from /proc/diskstats.
 *
 * Reported are the disks I/O physically goes to, so that the rows of a
 * sample can be added up without counting anything twice:
 *   - whole disks only: a device is one when /sys/block/<name> exists
 *     (partitions live below their disk there); where /sys/block cannot be
 *     read at all, every device is taken as whole;
 *   - no loop, ram, zram or nbd devices (files, memory, the network), and no
 *     device-mapper (dm-*: LVM, LUKS, multipath) or md RAID devices, whose
 *     I/O is already counted on the disks below them.
 * Kept per disk: reads and writes completed, bytes read and written (the
 * kernel counts 512-byte sectors whatever the disk's sector size) and the
 * milliseconds during which I/O was in flight (busy time, "io_ticks").  Lines
 * with fewer than the 14 columns of Linux 2.6 are ignored.
 */
#include "collect.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DISK_SECTOR_BYTES 512	/* /proc/diskstats counts 512-byte sectors, whatever the device */

static int layered_or_virtual(const char *name);

/* Returns 1 when disk name is virtual or stacked on other disks. */
static int
layered_or_virtual(const char *name)
{
	static const char *const prefixes[] = {"loop", "ram", "zram", "nbd", "dm-", "md"};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

/* Fills out (DiskStat) with root's whole physical disks from /proc/diskstats. */
int
collect_disk(const char *root, CollectList *out, char *err, size_t errlen)
{
	/* reads, merged, sectors read, ms, writes, merged, sectors written, ms, in flight, io_ticks, weighted */
	static const size_t cols[] = {
		offsetof(DiskStat, reads), COLLECT_SKIP, offsetof(DiskStat, read_bytes), COLLECT_SKIP,
		offsetof(DiskStat, writes), COLLECT_SKIP, offsetof(DiskStat, write_bytes), COLLECT_SKIP,
		COLLECT_SKIP, offsetof(DiskStat, busy_ms), COLLECT_SKIP
	};
	char		path[4096];
	CollectFile cf;
	char	   *line;
	int			have_sys;

	collect_path(path, sizeof(path), root, "sys/block");
	have_sys = access(path, F_OK) == 0;
	if (collect_open(&cf, root, err, errlen, "proc/diskstats") < 0)
		return -1;
	while ((line = collect_next(&cf)) != NULL)
	{
		char	   *f[14];
		DiskStat	d;

		memset(&d, 0, sizeof(d));
		if (collect_fields(line, f, 14) != 14 || collect_counters(f + 3, 11, &d, cols) < 0 ||
			strlen(f[2]) >= sizeof(d.name) || layered_or_virtual(f[2]))
			continue;
		/* sysfs spells a '/' in a device name ("cciss/c0d0") as '!' */
		snprintf(d.name, sizeof(d.name), "%s", f[2]);
		for (char *c = d.name; *c; c++)
			if (*c == '/')
				*c = '!';
		collect_path(path, sizeof(path), root, "sys/block/%s", d.name);
		if (have_sys && access(path, F_OK) != 0)
			continue;			/* a partition */
		snprintf(d.name, sizeof(d.name), "%s", f[2]);
		d.read_bytes *= DISK_SECTOR_BYTES;	/* wraps like any counter, and gives no rate then */
		d.write_bytes *= DISK_SECTOR_BYTES;
		*(DiskStat *) collect_list_add(out, sizeof(DiskStat)) = d;
	}
	collect_close(&cf);
	return 0;
}
