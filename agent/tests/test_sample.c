/*
 * test_sample.c -- whole samples: the JSON of a fixture machine taken twice
 * 10 s apart (rates, %cpu, a reused pid, a reset disk), counters that wrap
 * at 2^64, broken and missing /proc files, nvidia-smi found, absent and
 * hanging, plugins, and one real sample of this machine.
 */
#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>

#define FIX "tests/fixtures/"
#define T0 1700000000000LL		/* wall clock of the first fixture sample */

/* The filesystems and sensors of the fixture machine, the same in both samples. */
#define FS_JSON \
	"\"fs\":[{\"mount\":\"/\",\"device\":\"/dev/nvme0n1p2\",\"type\":\"ext4\",\"size\":107374182401," \
	"\"used\":42949672960,\"avail\":59055800320,\"inodes\":6553600,\"inodes_used\":123456}," \
	"{\"mount\":\"/dev/shm\",\"device\":\"tmpfs\",\"type\":\"tmpfs\",\"size\":107374182408," \
	"\"used\":42949672960,\"avail\":59055800320,\"inodes\":6553600,\"inodes_used\":123456}," \
	"{\"mount\":\"/data disk\",\"device\":\"/dev/sda1\",\"type\":\"xfs\",\"size\":107374182410," \
	"\"used\":42949672960,\"avail\":59055800320,\"inodes\":6553600,\"inodes_used\":123456}]"
#define TEMP_JSON \
	"\"temp\":[{\"sensor\":\"thermal_zone0\",\"name\":\"acpitz\",\"celsius\":27.8}," \
	"{\"sensor\":\"thermal_zone1\",\"name\":\"x86_pkg_temp\",\"celsius\":45}," \
	"{\"sensor\":\"thermal_zone2\",\"name\":\"pch_cannonlake\",\"celsius\":51}," \
	"{\"sensor\":\"thermal_zone10\",\"name\":\"INT3400 Thermal\",\"celsius\":20}," \
	"{\"sensor\":\"hwmon0/temp1\",\"name\":\"nvme\",\"label\":\"Composite\",\"celsius\":38.85}," \
	"{\"sensor\":\"hwmon0/temp2\",\"name\":\"nvme\",\"label\":\"Sensor 1\",\"celsius\":41.85}," \
	"{\"sensor\":\"hwmon1/temp1\",\"name\":\"coretemp\",\"label\":\"Package id 0\",\"celsius\":46}," \
	"{\"sensor\":\"hwmon1/temp2\",\"name\":\"coretemp\",\"label\":\"Core 0\",\"celsius\":44}," \
	"{\"sensor\":\"hwmon1/temp10\",\"name\":\"coretemp\",\"label\":\"Core 8\",\"celsius\":43}," \
	"{\"sensor\":\"hwmon2/temp1\",\"celsius\":-5}]"

static const char *const first_json =
	"{\"t\":1700000000000,\"cpu\":{\"count\":4},\"load\":[1.50,0.75,0.25],"
	"\"mem\":{\"total\":16777216000,\"available\":8388608000,\"used\":8388608000,"
	"\"free\":2097152000,\"buffers\":524288000,\"cached\":4194304000,\"swap_total\":2147479552,"
	"\"swap_used\":1073739776}," FS_JSON ",\"disk\":[{\"name\":\"nvme0n1\",\"reads\":1000,"
	"\"writes\":2000,\"read_bytes\":10240000,\"write_bytes\":20480000,\"busy_ms\":3000},"
	"{\"name\":\"sda\",\"reads\":500,\"writes\":100,\"read_bytes\":4096000,\"write_bytes\":819200,"
	"\"busy_ms\":700}],\"net\":[{\"name\":\"eth0\",\"rx_bytes\":1000000,\"rx_packets\":1000,"
	"\"rx_errors\":1,\"rx_drops\":2,\"tx_bytes\":500000,\"tx_packets\":800,"
	"\"tx_errors\":3,\"tx_drops\":4},{\"name\":\"wlan0\",\"rx_bytes\":0,\"rx_packets\":0,"
	"\"rx_errors\":0,\"rx_drops\":0,\"tx_bytes\":0,\"tx_packets\":0,\"tx_errors\":0,"
	"\"tx_drops\":0}]," TEMP_JSON ",\"procs\":6,\"top_cpu\":[],\"top_rss\":[{\"pid\":1234,"
	"\"ppid\":100,\"command\":\"python3\",\"mem\":6.1,\"rss\":1024000000},{\"pid\":100,"
	"\"ppid\":1,\"command\":\"postgres\",\"mem\":1.2,\"rss\":204800000},{\"pid\":1,"
	"\"ppid\":0,\"command\":\"systemd\",\"mem\":0.1,\"rss\":12288000},{\"pid\":4321,"
	"\"ppid\":1,\"command\":\"bash\",\"mem\":0.0,\"rss\":4915200},{\"pid\":200,"
	"\"ppid\":1,\"command\":\"my (odd) name\",\"mem\":0.0,\"rss\":4096000}],"
	"\"modules\":3,\"gpu\":[{\"index\":0,\"util\":37,\"mem_used\":1293942784,"
	"\"mem_total\":17179869184,\"celsius\":45},{\"index\":1,\"util\":null,"
	"\"mem_used\":0,\"mem_total\":85899345920,\"celsius\":null}],\"plugins\":[{\"plugin\":\"site.sh\","
	"\"name\":\"queue_depth\",\"labels\":{\"queue\":\"gpu\"},\"value\":4}],\"problems\":[{\"source\":\"plugin:broken.sh\","
	"\"message\":\"exited with status 1\"}]}";

static const char *const second_json =
	"{\"t\":1700000010000,\"interval_ms\":10000,\"cpu\":{\"count\":4,\"user\":30.0,"
	"\"system\":12.5,\"iowait\":5.0,\"steal\":2.5,\"idle\":50.0},\"load\":[2.00,"
	"1.00,0.50],\"mem\":{\"total\":16777216000,\"available\":8388608000,"
	"\"used\":8388608000,\"free\":2097152000,\"buffers\":524288000,\"cached\":4194304000,"
	"\"swap_total\":2147479552,\"swap_used\":1073739776}," FS_JSON ",\"disk\":[{\"name\":\"nvme0n1\","
	"\"reads\":2000,\"writes\":2500,\"read_bytes\":20480000,\"write_bytes\":24576000,"
	"\"busy_ms\":5500,\"reads_s\":100.0,\"writes_s\":50.0,\"read_bytes_s\":1024000.0,"
	"\"write_bytes_s\":409600.0,\"busy_pct\":25.0},{\"name\":\"sda\",\"reads\":20,"
	"\"writes\":100,\"read_bytes\":81920,\"write_bytes\":819200,\"busy_ms\":30,"
	"\"writes_s\":0.0,\"write_bytes_s\":0.0}],\"net\":[{\"name\":\"eth0\",\"rx_bytes\":11000000,"
	"\"rx_packets\":11000,\"rx_errors\":1,\"rx_drops\":3,\"tx_bytes\":5500000,"
	"\"tx_packets\":5800,\"tx_errors\":3,\"tx_drops\":4,\"rx_bytes_s\":1000000.0,"
	"\"rx_packets_s\":1000.0,\"tx_bytes_s\":500000.0,\"tx_packets_s\":500.0},"
	"{\"name\":\"wlan0\",\"rx_bytes\":0,\"rx_packets\":0,\"rx_errors\":0,\"rx_drops\":0,"
	"\"tx_bytes\":0,\"tx_packets\":0,\"tx_errors\":0,\"tx_drops\":0,\"rx_bytes_s\":0.0,"
	"\"rx_packets_s\":0.0,\"tx_bytes_s\":0.0,\"tx_packets_s\":0.0}]," TEMP_JSON ",\"procs\":8,"
	"\"top_cpu\":[{\"pid\":1234,\"ppid\":100,\"command\":\"python3\",\"cpu\":180.0,"
	"\"mem\":6.1,\"rss\":1024000000},{\"pid\":100,\"ppid\":1,\"command\":\"postgres\","
	"\"cpu\":50.0,\"mem\":1.2,\"rss\":204800000},{\"pid\":4321,\"ppid\":1,\"command\":\"make\","
	"\"cpu\":25.0,\"mem\":0.0,\"rss\":8192000},{\"pid\":5000,\"ppid\":4321,\"command\":\"cc1\","
	"\"cpu\":10.0,\"mem\":0.1,\"rss\":20480000},{\"pid\":1,\"ppid\":0,\"command\":\"systemd\","
	"\"cpu\":1.5,\"mem\":0.1,\"rss\":12288000}],\"top_rss\":[{\"pid\":1234,\"ppid\":100,"
	"\"command\":\"python3\",\"cpu\":180.0,\"mem\":6.1,\"rss\":1024000000},{\"pid\":100,"
	"\"ppid\":1,\"command\":\"postgres\",\"cpu\":50.0,\"mem\":1.2,\"rss\":204800000},"
	"{\"pid\":5000,\"ppid\":4321,\"command\":\"cc1\",\"cpu\":10.0,\"mem\":0.1,"
	"\"rss\":20480000},{\"pid\":1,\"ppid\":0,\"command\":\"systemd\",\"cpu\":1.5,"
	"\"mem\":0.1,\"rss\":12288000},{\"pid\":4321,\"ppid\":1,\"command\":\"make\","
	"\"cpu\":25.0,\"mem\":0.0,\"rss\":8192000}],\"modules\":3,\"gpu\":[{\"index\":0,"
	"\"util\":37,\"mem_used\":1293942784,\"mem_total\":17179869184,\"celsius\":45},"
	"{\"index\":1,\"util\":null,\"mem_used\":0,\"mem_total\":85899345920,\"celsius\":null}],"
	"\"plugins\":[{\"plugin\":\"site.sh\",\"name\":\"queue_depth\",\"labels\":{\"queue\":\"gpu\"},"
	"\"value\":4}],\"problems\":[{\"source\":\"plugin:broken.sh\",\"message\":\"exited with status 1\"}]}";

/* Writes an executable script dir/name. */
static void
script(const char *dir, const char *name, const char *text)
{
	char		path[4096];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return;
	fputs(text, f);
	CHECK(fclose(f) == 0);
	CHECK(chmod(path, 0755) == 0);
}

/* A Collector reading fixture root, with fixed clock ticks and page size and no plugins. */
static void
fixture_collector(Collector *c, const char *root, const char *gpu_path)
{
	collect_init(c);
	c->root = root;
	c->hz = 100;
	c->page_size = 4096;
	c->fs_usage = unit_fake_usage;
	c->path = gpu_path;
	unit_usage_root = root;
}

/* Takes a sample of c at second sec after T0 into json (emptied first); returns collect_sample_at's result. */
static int
sample(Collector *c, int sec, StrBuf *json)
{
	char		err[AGENT_ERRLEN];

	json->len = 0;
	json->data[0] = '\0';
	return collect_sample_at(c, 1000000 + sec * 1000LL, T0 + sec * 1000LL, 1, json, err, sizeof(err));
}

/* Checks that json is what want says, showing both when not. */
static void
expect_json(const char *json, const char *want)
{
	json_t	   *v;

	CHECK_STR(json, want);
	if (strcmp(json, want) != 0)
		fprintf(stderr, "  got  %s\n  want %s\n", json, want);
	CHECK((v = jsonio_load(json, 0, NULL, 0)) != NULL);
	json_decref(v);
}

/* The fixture machine twice, 10 s apart, with nvidia-smi and two plugins. */
static void
test_pair(void)
{
	const char *dir = unit_tmpdir("sample-plugins");
	Collector	c;
	StrBuf		json;

	script(dir, "site.sh", "#!/bin/sh\necho 'queue_depth{queue=\"gpu\"} 4'\n");
	script(dir, "broken.sh", "#!/bin/sh\nexit 1\n");
	sb_init(&json);
	fixture_collector(&c, FIX "basic", FIX "gpu/bin");
	c.plugin_dir = dir;
	CHECK(sample(&c, 0, &json) == 0);
	expect_json(json.data, first_json);
	c.root = unit_usage_root = FIX "basic-later";
	CHECK(sample(&c, 10, &json) == 0);
	expect_json(json.data, second_json);

	/* a clock that did not move gives no rates rather than a division by zero */
	CHECK(sample(&c, 10, &json) == 0);
	CHECK(strstr(json.data, "\"interval_ms\"") == NULL && strstr(json.data, "_s\":") == NULL &&
		  strstr(json.data, "\"top_cpu\":[]") != NULL && strstr(json.data, "\"cpu\":{\"count\":4}") != NULL);
	collect_free(&c);
	sb_free(&json);
}

/* Interfaces whose counters wrap at 2^64 or are reset: no rate for those counters, the others go on. */
static void
test_wrap(void)
{
	Collector	c;
	StrBuf		json;
	const char *net;

	sb_init(&json);
	fixture_collector(&c, FIX "hugenet", "/nonexistent");
	CHECK(sample(&c, 0, &json) == 0);
	c.root = FIX "hugenet-later";
	CHECK(sample(&c, 10, &json) == 0);
	net = strstr(json.data, ",\"net\":[");
	{
		const char *want = ",\"net\":["
			"{\"name\":\"eth0\",\"rx_bytes\":400,\"rx_packets\":18446744073708961615,"
			"\"rx_errors\":0,\"rx_drops\":0,\"tx_bytes\":615,\"tx_packets\":9,"
			"\"tx_errors\":1,\"tx_drops\":1,\"rx_packets_s\":1000.0,\"tx_packets_s\":0.2},"
			"{\"name\":\"eth1\",\"rx_bytes\":1000,\"rx_packets\":10,\"rx_errors\":0,"
			"\"rx_drops\":0,\"tx_bytes\":2000,\"tx_packets\":20,\"tx_errors\":0,\"tx_drops\":0},"
			"{\"name\":\"eth2\",\"rx_bytes\":123456889012,\"rx_packets\":15,\"rx_errors\":0,"
			"\"rx_drops\":0,\"tx_bytes\":16,\"tx_packets\":17,\"tx_errors\":0,\"tx_drops\":0,"
			"\"rx_bytes_s\":10000.0,\"rx_packets_s\":1.0,\"tx_bytes_s\":1.0,\"tx_packets_s\":1.0}],";

		CHECK(net != NULL && strncmp(net, want, strlen(want)) == 0);
		if (net != NULL && strncmp(net, want, strlen(want)) != 0)
			fprintf(stderr, "  got  %.*s\n  want %s\n", (int) strlen(want), net, want);
	}
	/* what this fixture lacks is told, and the sample is still taken */
	CHECK(strstr(json.data, "{\"source\":\"cpu\",\"message\":\"could not open file \\\"tests/fixtures/hugenet-later/proc/stat\\\": No such file or directory\"}") != NULL);
	CHECK(strstr(json.data, "\"gpu\"") == NULL && strstr(json.data, "\"plugins\"") == NULL);
	collect_free(&c);
	sb_free(&json);
}

/* Malformed and missing files, a missing root, a hanging nvidia-smi. */
static void
test_broken(void)
{
	const char *dir = unit_tmpdir("sample-gpu-hang");
	Collector	c;
	StrBuf		json;
	char		err[AGENT_ERRLEN];
	int64_t		t0;

	sb_init(&json);
	fixture_collector(&c, FIX "broken", "/nonexistent");
	CHECK(sample(&c, 0, &json) == 0);
	expect_json(json.data,
				"{\"t\":1700000000000,\"fs\":[],\"temp\":[],\"procs\":0,\"top_cpu\":[],\"top_rss\":[],"
				"\"modules\":0,\"problems\":["
				"{\"source\":\"cpu\",\"message\":\"invalid \\\"cpu\\\" line in \\\"tests/fixtures/broken/proc/stat\\\"\"},"
				"{\"source\":\"load\",\"message\":\"invalid content in \\\"tests/fixtures/broken/proc/loadavg\\\"\"},"
				"{\"source\":\"mem\",\"message\":\"no \\\"MemTotal:\\\" line in \\\"tests/fixtures/broken/proc/meminfo\\\"\"},"
				"{\"source\":\"disk\",\"message\":\"could not open file \\\"tests/fixtures/broken/proc/diskstats\\\": No such file or directory\"},"
				"{\"source\":\"net\",\"message\":\"could not open file \\\"tests/fixtures/broken/proc/net/dev\\\": No such file or directory\"}]}");
	collect_free(&c);

	/* no /proc at all: the sample fails, and keeps no reading */
	fixture_collector(&c, FIX "does-not-exist", NULL);
	json.len = 0;
	CHECK(collect_sample_at(&c, 1, 1, 1, &json, err, sizeof(err)) == -1 && json.len == 0 && !c.has_prev);
	CHECK_STR(err, "could not read the host's counters: could not open file \"tests/fixtures/does-not-exist/proc/stat\": No such file or directory");

	/* a wedged driver: nvidia-smi is killed at the deadline, the GPU list is empty */
	script(dir, "nvidia-smi", "#!/bin/sh\nexec sleep 30\n");
	fixture_collector(&c, FIX "basic", dir);
	c.timeout_ms = 300;
	t0 = proc_now_ms();
	CHECK(sample(&c, 0, &json) == 0);
	CHECK(proc_now_ms() - t0 < 2000);
	CHECK(strstr(json.data, ",\"gpu\":[],\"problems\":[{\"source\":\"gpu\",\"message\":\"nvidia-smi timed out after 300 ms and was killed\"}]}") != NULL);
	collect_free(&c);
	sb_free(&json);
}

/* collect_rate() at its edges. */
static void
test_rate(void)
{
	double		r = -1;

	CHECK(collect_rate(5, 5, 1, &r) == 0 && r == 0);
	CHECK(collect_rate(0, 30, 10, &r) == 0 && r == 3);
	CHECK(collect_rate(0, UINT64_MAX, 1, &r) == 0 && r > 1.8e19);
	CHECK(collect_rate(6, 5, 1, &r) == -1);				/* went backwards: wrapped or reset */
	CHECK(collect_rate(UINT64_MAX, 0, 1, &r) == -1);
	CHECK(collect_rate(1, 2, 0, &r) == -1);				/* no time passed */
}

/* This machine, for real: the reading and the sample the event loop will take. */
static void
test_real(void)
{
	Collector	c;
	StrBuf		json;
	char		err[AGENT_ERRLEN];
	json_t	   *v;

	collect_init(&c);
	sb_init(&json);
	CHECK(collect_prime(&c, err, sizeof(err)) == 0);
	CHECK(collect_sample(&c, &json, err, sizeof(err)) == 0);
	CHECK((v = jsonio_load(json.data, 0, err, sizeof(err))) != NULL);
	CHECK(json_object_get(v, "t") != NULL && json_object_get(v, "interval_ms") != NULL &&
		  json_object_get(v, "cpu") != NULL && json_object_get(v, "mem") != NULL &&
		  json_object_get(v, "procs") != NULL && json_object_get(v, "problems") != NULL);
	json_decref(v);
	collect_free(&c);
	sb_free(&json);
}

void
test_sample(void)
{
	test_rate();
	test_pair();
	test_wrap();
	test_broken();
	test_real();
}
