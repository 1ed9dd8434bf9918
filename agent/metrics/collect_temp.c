/*
 * collect_temp.c -- temperatures from the thermal zones and hwmon chips in /sys.
 *
 * Two kernel interfaces report temperatures, and machines have either, both
 * or neither (virtual machines usually have neither, which is no problem):
 *   /sys/class/thermal/thermal_zoneN/{type,temp}       ACPI and SoC zones
 *   /sys/class/hwmon/hwmonN/{name,tempM_input,tempM_label}   sensor chips
 *                                                       (coretemp, k10temp, nvme, ...)
 * Both give millidegrees Celsius.  A sensor whose value cannot be read is
 * left out: disabled zones and absent probes answer EIO or ENODATA, and
 * that is their normal state.  Directories are listed in version order so
 * that the sensors come in the same order every time.
 */
#include "collect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_milli(const char *text, int64_t *out);
static void add_sensor(CollectList *out, const char *sensor, const char *name, const char *label,
					   int64_t milli);
static void thermal_zones(const char *root, CollectList *out);
static void hwmon_chips(const char *root, CollectList *out);

/* Stores the integer text in *out; -1 when the sensor could not be read (text empty) or it is no number. */
static int
read_milli(const char *text, int64_t *out)
{
	char	   *end;

	*out = strtoll(text, &end, 10);
	return end == text || *end != '\0' ? -1 : 0;
}

/* Appends one sensor reading to out. */
static void
add_sensor(CollectList *out, const char *sensor, const char *name, const char *label, int64_t milli)
{
	TempStat   *t = collect_list_add(out, sizeof(TempStat));

	snprintf(t->sensor, sizeof(t->sensor), "%s", sensor);
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->label, sizeof(t->label), "%s", label);
	t->millicelsius = milli;
}

/* Appends the readable thermal zones of root to out. */
static void
thermal_zones(const char *root, CollectList *out)
{
	char		dir[4096], value[64], type[COLLECT_NAMELEN];
	StrList		zones;
	int64_t		milli;

	strlist_init(&zones);
	collect_path(dir, sizeof(dir), root, "sys/class/thermal");
	if (collect_list_dir(dir, "thermal_zone", &zones, NULL, 0) == 0)
		for (int i = 0; i < zones.n; i++)
		{
			const char *z = zones.items[i];

			if (collect_first_line(value, sizeof(value), root, "sys/class/thermal/%s/temp", z) < 0 ||
				read_milli(value, &milli) < 0)
				continue;
			if (collect_first_line(type, sizeof(type), root, "sys/class/thermal/%s/type", z) < 0)
				type[0] = '\0';
			add_sensor(out, z, type, "", milli);
		}
	strlist_free(&zones);
}

/* Appends the readable temp*_input sensors of root's hwmon chips to out. */
static void
hwmon_chips(const char *root, CollectList *out)
{
	char		dir[4096], value[64], name[COLLECT_NAMELEN], label[COLLECT_NAMELEN];
	StrList		chips;

	strlist_init(&chips);
	collect_path(dir, sizeof(dir), root, "sys/class/hwmon");
	if (collect_list_dir(dir, "hwmon", &chips, NULL, 0) == 0)
		for (int i = 0; i < chips.n; i++)
		{
			const char *chip = chips.items[i];
			StrList		files;
			char		path[4096];

			if (collect_first_line(name, sizeof(name), root, "sys/class/hwmon/%s/name", chip) < 0)
				name[0] = '\0';
			strlist_init(&files);
			snprintf(path, sizeof(path), "%s/%s", dir, chip);
			if (collect_list_dir(path, "temp", &files, NULL, 0) == 0)
				for (int k = 0; k < files.n; k++)
				{
					/* tempM_input, and its tempM_label; the sensor is "hwmonN/tempM" */
					int			len = (int) strlen(files.items[k]) - 6;
					char		sensor[COLLECT_NAMELEN];
					int64_t		milli;

					if (len < 1 || strcmp(files.items[k] + len, "_input") != 0 ||
						collect_first_line(value, sizeof(value), root, "sys/class/hwmon/%s/%s",
										   chip, files.items[k]) < 0 ||
						read_milli(value, &milli) < 0)
						continue;
					if (collect_first_line(label, sizeof(label), root, "sys/class/hwmon/%s/%.*s_label",
										   chip, len, files.items[k]) < 0)
						label[0] = '\0';
					snprintf(sensor, sizeof(sensor), "%s/%.*s", chip, len, files.items[k]);
					add_sensor(out, sensor, name, label, milli);
				}
			strlist_free(&files);
		}
	strlist_free(&chips);
}

/* Fills out (TempStat) with root's thermal zones, then its hwmon sensors; none is fine. */
void
collect_temp(const char *root, CollectList *out)
{
	thermal_zones(root, out);
	hwmon_chips(root, out);
}
