/*
 * collect_fs.c -- mounted filesystems from /proc/self/mounts, their space and
 * inodes from statvfs().
 *
 * What is reported is what a job can fill up.  Left out are:
 *   - pseudo filesystems without disk space (proc, sysfs, cgroup, devpts,
 *     devtmpfs, debugfs, ...), and read-only images that are always full
 *     (squashfs snaps, iso9660);
 *   - tmpfs, except at /tmp and /dev/shm where jobs do write: the others
 *     (/run, /run/user/N, /sys/fs/cgroup) are bookkeeping;
 *   - network and FUSE filesystems (nfs, cifs, ceph, lustre, fuse.*, ...):
 *     statvfs() on them blocks for as long as their server or daemon does
 *     not answer, and the agent's loop must never hang on a dead NFS server;
 *     a plugin can report them.
 * A block device mounted more than once (bind mounts, btrfs subvolumes) is
 * reported once, at its first mount point; a mount point mounted over keeps
 * its last (visible) entry.  A filesystem statvfs() fails on or that reports
 * no blocks is left out, and so is one whose mount point does not fit
 * FsStat.  The numbers come from a function pointer so that the unit tests
 * can give fixed ones; collect_fs_usage() is the real one.
 */
#include "collect.h"

#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

static int skipped_type(const char *type, const char *mount);
static void unescape(char *s);

/* Returns 1 when a filesystem of this type mounted there is not reported. */
static int
skipped_type(const char *type, const char *mount)
{
	static const char *const skip[] = {
		/* no disk space behind them */
		"proc", "sysfs", "cgroup", "cgroup2", "devpts", "devtmpfs", "mqueue", "debugfs",
		"tracefs", "securityfs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs",
		"autofs", "binfmt_misc", "efivarfs", "rpc_pipefs", "nsfs", "selinuxfs", "ramfs",
		"nfsd", "devfs", "usbfs",
		/* read-only images: always full */
		"squashfs", "iso9660",
		/* remote: statvfs() may block for as long as the server is away */
		"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "gpfs",
		"afs", "9p", "fuse", "fuseblk",
	};

	if (strncmp(type, "fuse.", 5) == 0)
		return 1;
	if (strcmp(type, "tmpfs") == 0)
		return strcmp(mount, "/tmp") != 0 && strcmp(mount, "/dev/shm") != 0;
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
		if (strcmp(type, skip[i]) == 0)
			return 1;
	return 0;
}

/* Decodes the kernel's octal escapes (\040 space, \011 tab, \012 newline, \134 backslash) in place. */
static void
unescape(char *s)
{
	char	   *out = s;

	for (; *s; s++)
	{
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
			s[3] >= '0' && s[3] <= '7')
		{
			*out++ = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		}
		else
			*out++ = *s;
	}
	*out = '\0';
}

/* Fills fs's numbers from statvfs(path); -1 when statvfs() fails. */
int
collect_fs_usage(const char *path, FsStat *fs)
{
	struct statvfs v;

	if (statvfs(path, &v) < 0)
		return -1;
	fs->size = (uint64_t) v.f_blocks * v.f_frsize;
	fs->used = (uint64_t) (v.f_blocks >= v.f_bfree ? v.f_blocks - v.f_bfree : 0) * v.f_frsize;
	fs->avail = (uint64_t) v.f_bavail * v.f_frsize;
	fs->inodes = v.f_files;
	fs->inodes_used = v.f_files >= v.f_ffree ? v.f_files - v.f_ffree : 0;
	return 0;
}

/* Fills out (FsStat) with the reported filesystems of root's /proc/self/mounts, sized by usage. */
int
collect_fs(const char *root, FsUsageFn usage, CollectList *out, char *err, size_t errlen)
{
	char		path[4096];
	CollectFile cf;
	char	   *line;
	int			kept = 0;

	if (collect_open(&cf, root, err, errlen, "proc/self/mounts") < 0)
		return -1;
	while ((line = collect_next(&cf)) != NULL)
	{
		char	   *f[3];
		FsStat	   *fs = NULL;
		int			dup = 0;

		if (collect_fields(line, f, 3) < 3)
			continue;
		unescape(f[0]);
		unescape(f[1]);
		if (f[1][0] != '/' || skipped_type(f[2], f[1]) || strlen(f[0]) >= sizeof(fs->device) ||
			strlen(f[1]) >= sizeof(fs->mount) || strlen(f[2]) >= sizeof(fs->type))
			continue;
		for (int i = 0; i < out->n; i++)
		{
			FsStat	   *o = (FsStat *) out->items + i;

			if (strcmp(o->mount, f[1]) == 0)
			{
				fs = o;			/* mounted over: the later entry is the visible one */
				break;
			}
			if (f[0][0] == '/' && strcmp(o->device, f[0]) == 0)
				dup = 1;
		}
		if (fs == NULL && dup)
			continue;			/* the same device again */
		if (fs == NULL)
			fs = collect_list_add(out, sizeof(FsStat));
		snprintf(fs->mount, sizeof(fs->mount), "%s", f[1]);
		snprintf(fs->device, sizeof(fs->device), "%s", f[0]);
		snprintf(fs->type, sizeof(fs->type), "%s", f[2]);
	}
	collect_close(&cf);

	/* size them; drop those statvfs() fails on or that have no blocks */
	for (int i = 0; i < out->n; i++)
	{
		FsStat	   *fs = (FsStat *) out->items + i;

		collect_path(path, sizeof(path), root, "%s", fs->mount + 1);
		if (usage(path, fs) == 0 && fs->size > 0)
			((FsStat *) out->items)[kept++] = *fs;
	}
	out->n = kept;
	return 0;
}
