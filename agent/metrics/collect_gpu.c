/*
 * collect_gpu.c -- NVIDIA GPUs, through nvidia-smi when there is one.
 *
 * The agent does not link NVML: a machine without NVIDIA's driver must run
 * it as well, and nvidia-smi is what every such driver ships.  It is looked
 * for on PATH at every sample (a driver installed later is picked up; an
 * empty PATH entry, the current directory, is never searched) and run by
 * collect.c through collect_exec.c, under the same deadline as the plugins:
 * a wedged driver makes nvidia-smi hang.  No nvidia-smi is no problem, the
 * sample just has no "gpu" key.  Its query is
 *   --query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu
 *   --format=csv,noheader,nounits
 * one line per GPU such as "0, 37, 1234, 16384, 45" (%, MiB, MiB, degrees
 * Celsius).  A field the GPU cannot report reads "[N/A]" or
 * "[Not Supported]" and becomes -1 here (null in the JSON).
 */
#include "collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int gpu_field(char *s, int64_t *out);

/* Looks for an executable nvidia-smi in the ':'-separated directories path (NULL: $PATH); 1 and its path in out when found. */
int
collect_gpu_find(const char *path, char *out, size_t outlen)
{
	const char *p = path != NULL ? path : getenv("PATH");

	while (p != NULL && *p != '\0')
	{
		size_t		n = strcspn(p, ":");
		struct stat st;

		if (n > 0)
		{
			snprintf(out, outlen, "%.*s/nvidia-smi", (int) n, p);
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
				return 1;
		}
		p += n + (p[n] == ':');
	}
	return 0;
}

/* Reads one trimmed CSV field: an integer, or -1 for "[N/A]"-like markers; -1 as result when it is neither. */
static int
gpu_field(char *s, int64_t *out)
{
	char	   *end;
	size_t		n;

	s += strspn(s, " \t");
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (s[0] == '[' || strcmp(s, "N/A") == 0)
	{
		*out = -1;
		return 0;
	}
	*out = strtoll(s, &end, 10);
	return end == s || *end != '\0' || *out < 0 ? -1 : 0;
}

/* Fills out (GpuStat) from nvidia-smi's CSV output; -1 with the first bad line in err. */
int
collect_gpu_parse(const char *csv, CollectList *out, char *err, size_t errlen)
{
	char	   *copy = xstrdup(csv);
	char	   *pos = copy, *line;
	int			rc = 0;

	while (rc == 0 && (line = strsep(&pos, "\n")) != NULL)
	{
		char	   *f[5], *p = line;
		char		shown[101];
		int64_t		v[5];
		int			n = 0;
		GpuStat    *g;

		if (line[strspn(line, " \t\r")] == '\0')
			continue;
		snprintf(shown, sizeof(shown), "%s", line);	/* before strsep cuts it */
		while (n < 5 && (f[n] = strsep(&p, ",")) != NULL)
			n++;
		for (int i = 0; i < n && rc == 0; i++)
			rc = gpu_field(f[i], &v[i]);
		if (n < 5 || p != NULL || rc < 0 || v[0] < 0)
		{
			agent_seterr(err, errlen, "nvidia-smi printed an unexpected line: \"%s\"", shown);
			rc = -1;
			break;
		}
		g = collect_list_add(out, sizeof(GpuStat));
		g->index = v[0];
		g->util = v[1];
		g->mem_used_mib = v[2];
		g->mem_total_mib = v[3];
		g->celsius = v[4];
	}
	free(copy);
	return rc;
}
