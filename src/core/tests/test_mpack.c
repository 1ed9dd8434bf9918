/*
 * test_mpack.c: unit tests of the metric pack codec (mpack.c).
 *
 * Every round trip compares bits, not values, so NaN payloads, -0 and the
 * infinities count.  Named cases cover what metrics do (constants, counters and
 * their resets, percentages with one decimal, gaps in time, a layout that changes
 * in the middle of a pack); a randomised test mixes random bit patterns,
 * decimals and random walks; damaged packs (every truncation, random bit flips)
 * must be refused or read within bounds (ASan checks the bounds); the sizes of
 * the cheap cases are pinned.
 */
#include "mpack.h"
#include "check.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSAMPLES 400

typedef struct Series
{
	int			n;				/* samples */
	int64_t		t[MPACK_MAX_SAMPLES];
	int32_t		layout[MPACK_MAX_SAMPLES];
	int			nvals[MPACK_MAX_SAMPLES];
	double	   *vals[MPACK_MAX_SAMPLES];
} Series;

static Series ser;

static int	same_bits(double a, double b);
static double nan_with(uint64_t payload, int sign);
static uint64_t rnd(void);
static void add(Series *s, int64_t t, int32_t layout, int nvals, const double *vals);
static void clear(Series *s);
static uint8_t *encode(const Series *s, size_t *len);
static int	roundtrip(const char *name, const Series *s, size_t *len);
static void test_cases(void);
static void test_layout_change(void);
static void test_random(void);
static void test_errors(void);
static void test_damage(void);
static void test_sizes(void);

/* Whether a and b are the same 64 bits (NaN payloads, -0 and all). */
static int
same_bits(double a, double b)
{
	return memcmp(&a, &b, sizeof(double)) == 0;
}

/* A NaN with the given 51-bit payload (quiet bit set) and sign. */
static double
nan_with(uint64_t payload, int sign)
{
	uint64_t	b = ((uint64_t) sign << 63) | 0x7ff8000000000000ull | (payload & 0x7ffffffffffffull);
	double		v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

/* 64 random bits. */
static uint64_t
rnd(void)
{
	return ((uint64_t) random() << 40) ^ ((uint64_t) random() << 20) ^ (uint64_t) random();
}

/* Appends a sample to s (values copied). */
static void
add(Series *s, int64_t t, int32_t layout, int nvals, const double *vals)
{
	int			i = s->n++;

	s->t[i] = t;
	s->layout[i] = layout;
	s->nvals[i] = nvals;
	s->vals[i] = malloc(sizeof(double) * (size_t) (nvals > 0 ? nvals : 1));
	if (nvals > 0)
		memcpy(s->vals[i], vals, sizeof(double) * (size_t) nvals);
}

/* Empties s. */
static void
clear(Series *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->vals[i]);
	s->n = 0;
}

/* Packs s; returns the malloc'd pack and its length in *len, or NULL when a put failed. */
static uint8_t *
encode(const Series *s, size_t *len)
{
	static MpackWriter w;
	size_t		cap = MPACK_HEADER;
	uint8_t    *buf;

	for (int i = 0; i < s->n; i++)
		cap += mpack_sample_bound(s->nvals[i]);
	buf = malloc(cap);
	mpack_writer_init(&w);
	for (int i = 0; i < s->n; i++)
	{
		if (mpack_put(&w, buf, s->t[i], s->layout[i], s->nvals[i], s->vals[i]) < 0)
		{
			free(buf);
			return NULL;
		}
	}
	*len = mpack_finish(&w, buf);
	return buf;
}

/* Packs and unpacks s; checks that every bit comes back; returns 1 when it does. */
static int
roundtrip(const char *name, const Series *s, size_t *len)
{
	static MpackReader r;
	static double vals[MPACK_MAX_COLUMNS];
	uint8_t    *buf = encode(s, len);
	int			ok = buf != NULL && mpack_reader_init(&r, buf, *len) == s->n;

	for (int i = 0; ok && i < s->n; i++)
	{
		int64_t		t;
		int32_t		layout;
		int			nvals;

		ok = mpack_get(&r, &t, &layout, &nvals, vals) == 1 && t == s->t[i] &&
			layout == s->layout[i] && nvals == s->nvals[i];
		for (int j = 0; ok && j < nvals; j++)
			ok = same_bits(vals[j], s->vals[i][j]);
		if (!ok)
			printf("  %s: sample %d differs\n", name, i);
	}
	if (ok)
	{
		int64_t		t;
		int32_t		layout;
		int			nvals;

		ok = mpack_get(&r, &t, &layout, &nvals, vals) == 0;
	}
	check(name, ok);
	free(buf);
	return ok;
}

/* The values metrics have, one column each, over NSAMPLES samples 10 s apart. */
static void
test_cases(void)
{
	static const char *names[] = {"constant", "counter", "counter reset", "percent",
		"NaN payloads", "infinities", "zeros", "extremes", "doubles", "big integers", "mixed kinds"};
	enum {NCOLS = 11};
	size_t		len;

	clear(&ser);
	for (int i = 0; i < NSAMPLES; i++)
	{
		double		v[NCOLS];

		v[0] = 270355025920.0;
		v[1] = 1000.0 + 370.0 * i;
		v[2] = i % 97 == 96 ? 0.0 : 5e9 + 4096.0 * (i % 97);	/* reboots */
		v[3] = round((50 + 40 * sin(i / 7.0)) * 10) / 10;
		v[4] = i % 3 == 0 ? nan_with((uint64_t) i, i & 1) : (i % 3 == 1 ? NAN : -NAN);
		v[5] = i % 2 ? INFINITY : -INFINITY;
		v[6] = i % 2 ? 0.0 : -0.0;
		v[7] = i % 4 == 0 ? DBL_MAX : i % 4 == 1 ? DBL_MIN : i % 4 == 2 ? 4.9e-324 : -DBL_MAX;
		v[8] = 0.1 * i + 0.2 + 1.0 / 3.0;
		v[9] = 9007199254740991.0 - i;	/* at the edge of the decimal path */
		v[10] = i % 5 == 0 ? NAN : i % 5 == 1 ? 12.5 : i % 5 == 2 ? 1.0 / 7.0 : i % 5 == 3 ? 1e300 : 3.0;
		/* irregular gaps: jitter, an hour-long disconnection, a 4 ms step */
		add(&ser, 1790000000000000 + 10000000LL * i + (i % 7) * 1000 + (i > 200 ? 3600000000LL : 0) +
			(i == 300 ? 9990000 : 0), 7, NCOLS, v);
	}
	check("all columns round trip", roundtrip("all columns", &ser, &len));
	for (int c = 0; c < NCOLS; c++)
	{
		Series	   *one = malloc(sizeof(Series));

		one->n = 0;
		for (int i = 0; i < NSAMPLES; i++)
			add(one, ser.t[i], 1, 1, &ser.vals[i][c]);
		roundtrip(names[c], one, &len);
		clear(one);
		free(one);
	}
	/* one sample, no values, a pack with nothing */
	clear(&ser);
	add(&ser, -5, 3, 0, NULL);
	roundtrip("one sample without values", &ser, &len);
	clear(&ser);
	roundtrip("empty pack", &ser, &len);
	check("empty pack is a header", len == MPACK_HEADER);
	/* instants at the ends of int64 */
	add(&ser, INT64_MIN / 2, 1, 1, (double[]) {1});
	add(&ser, INT64_MAX / 2, 1, 1, (double[]) {2});
	add(&ser, INT64_MAX, 1, 1, (double[]) {3});
	roundtrip("far instants", &ser, &len);
	clear(&ser);
}

/* A layout that changes in the middle of a pack, in size and in id, and back. */
static void
test_layout_change(void)
{
	size_t		len;

	clear(&ser);
	for (int i = 0; i < NSAMPLES; i++)
	{
		double		v[MPACK_MAX_VALUES];
		int			n = i < 100 ? 92 : i < 200 ? 96 : i < 300 ? 92 : MPACK_MAX_VALUES;
		int32_t		layout = i < 100 ? 11 : i < 200 ? 12 : i < 300 ? 13 : 11;

		for (int j = 0; j < n; j++)
			v[j] = j % 3 == 0 ? (double) (j * 1000 + i) : j % 3 == 1 ? round(i * 0.37 * 100) / 100 : NAN;
		add(&ser, 1000000LL * i, layout, i < 300 ? n : 92, v);
	}
	roundtrip("layout changes mid-pack", &ser, &len);
	clear(&ser);
	for (int i = 0; i < 50; i++)
	{
		double		v[MPACK_MAX_COLUMNS];

		for (int j = 0; j < MPACK_MAX_COLUMNS; j++)
			v[j] = (double) rnd() / 7;
		add(&ser, i, i % 2, MPACK_MAX_COLUMNS, v);
	}
	roundtrip("widest rows (a rollup of the widest sample), layout flipping", &ser, &len);
	clear(&ser);
}

/* Random packs: random bits, decimals and walks in random columns. */
static void
test_random(void)
{
	int			ok = 1;

	srandom(42);
	for (int round_ = 0; round_ < 200 && ok; round_++)
	{
		int			n = 1 + (int) (random() % 300),
					nvals = (int) (random() % 40);
		int64_t		t = (int64_t) rnd();
		double		v[64];
		size_t		len;

		clear(&ser);
		for (int j = 0; j < nvals; j++)
			v[j] = 0;
		t >>= 2;
		for (int i = 0; i < n; i++)
		{
			for (int j = 0; j < nvals; j++)
			{
				switch ((j + round_) % 5)
				{
					case 0:
						{
							uint64_t	b = rnd();

							memcpy(&v[j], &b, sizeof(b));
						}
						break;
					case 1:
						v[j] = (double) (int64_t) (random() % 2000001 - 1000000) / 10.0;
						break;
					case 2:
						v[j] += (double) (random() % 1000);
						break;
					case 3:
						v[j] = random() % 4 == 0 ? v[j] : (double) (int64_t) rnd() / 1000.0;
						break;
					default:
						v[j] = (double) (random() % 100000) / pow(10, (double) (random() % 8));
				}
			}
			add(&ser, t, random() % 20 == 0 ? (int32_t) random() : 5, nvals, v);
			t += 1 + (int64_t) (random() % 20000000);
		}
		ok = roundtrip("random pack", &ser, &len);
	}
	clear(&ser);
}

/* What the writer refuses, and what the reader refuses as not a pack. */
static void
test_errors(void)
{
	static MpackWriter w;
	static MpackReader r;
	uint8_t    *buf = malloc(mpack_sample_bound(MPACK_MAX_COLUMNS) * 3 + MPACK_HEADER);
	double		v[MPACK_MAX_COLUMNS + 1] = {0};
	uint8_t		bad[MPACK_HEADER] = {MPACK_VERSION + 1, 0, 0, 0, 0};
	uint8_t		big[MPACK_HEADER] = {MPACK_VERSION, 0xff, 0xff, 0, 0};

	mpack_writer_init(&w);
	check("too many values refused", mpack_put(&w, buf, 1, 1, MPACK_MAX_COLUMNS + 1, v) < 0);
	check("negative count refused", mpack_put(&w, buf, 1, 1, -1, v) < 0);
	check("first sample taken", mpack_put(&w, buf, 10, 1, 2, v) == 0);
	check("same instant refused", mpack_put(&w, buf, 10, 1, 2, v) < 0);
	check("earlier instant refused", mpack_put(&w, buf, 9, 1, 2, v) < 0);
	check("later instant taken", mpack_put(&w, buf, 11, 1, 2, v) == 0);
	mpack_writer_init(&w);
	check("min instant taken", mpack_put(&w, buf, INT64_MIN, 1, 0, v) == 0);
	check("gap past int64 refused", mpack_put(&w, buf, INT64_MAX, 1, 0, v) < 0);
	mpack_writer_init(&w);
	w.s.count = MPACK_MAX_SAMPLES;
	w.s.t = 0;
	check("full pack refused", mpack_put(&w, buf, 1, 1, 0, v) < 0);
	check("short pack refused", mpack_reader_init(&r, bad, 3) < 0);
	check("unknown version refused", mpack_reader_init(&r, bad, sizeof(bad)) < 0);
	check("oversized count refused", mpack_reader_init(&r, big, sizeof(big)) < 0);
	free(buf);
}

/* Damaged packs: every truncation refused, bit flips read within bounds. */
static void
test_damage(void)
{
	static MpackReader r;
	static double vals[MPACK_MAX_COLUMNS];
	size_t		len;
	uint8_t    *pack;
	int			all_refused = 1,
				flips_done = 0;

	clear(&ser);
	for (int i = 0; i < 60; i++)
	{
		double		v[8] = {i * 1.5, 7, NAN, (double) rnd(), -0.0, i * 1000.0, INFINITY, 0.1 * i};

		add(&ser, 100 * i + (i % 3), i < 30 ? 1 : 2, i < 30 ? 8 : 6, v);
	}
	pack = encode(&ser, &len);
	for (size_t cut = MPACK_HEADER; cut < len; cut++)
	{
		uint8_t    *copy = malloc(cut);
		int			rc = 1;
		int64_t		t;
		int32_t		layout;
		int			nvals;

		memcpy(copy, pack, cut);
		if (mpack_reader_init(&r, copy, cut) == ser.n)
			while ((rc = mpack_get(&r, &t, &layout, &nvals, vals)) == 1)
				;
		all_refused &= rc == -1;
		free(copy);
	}
	check("every truncation refused", all_refused);
	for (int k = 0; k < 5000; k++)
	{
		uint8_t    *copy = malloc(len);
		int64_t		t;
		int32_t		layout;
		int			nvals,
					got = 0;

		memcpy(copy, pack, len);
		for (int f = 0; f < 1 + k % 4; f++)
			copy[MPACK_HEADER + (size_t) random() % (len - MPACK_HEADER)] ^= (uint8_t) (1 << (random() % 8));
		if (mpack_reader_init(&r, copy, len) >= 0)
			while (mpack_get(&r, &t, &layout, &nvals, vals) == 1 && got <= MPACK_MAX_SAMPLES)
				got++;
		flips_done += got <= ser.n;
		free(copy);
	}
	check("bit flips read within bounds", flips_done == 5000);
	free(pack);
	clear(&ser);
}

/* The cheap cases cost what the format promises. */
static void
test_sizes(void)
{
	size_t		len;
	double		v[3];

	clear(&ser);
	for (int i = 0; i < 1000; i++)
	{
		v[0] = 42.0;			/* constant: 1 bit */
		v[1] = 1e12 + 4096.0 * i;	/* steady counter: 2 bits */
		v[2] = 12.5 + (i % 2);	/* one decimal moving by 1.0: 3 + 1 + 6 + 4 bits at most */
		add(&ser, 10000000LL * i, 1, 3, v);	/* regular instants: 1 bit, layout 1 bit */
	}
	roundtrip("cheap columns", &ser, &len);
	printf("  cheap columns: %zu bytes for 1000 samples of 3 values\n", len);
	check("cheap columns cost <= 2.5 bytes per sample", len <= 2500);
	clear(&ser);
}

int
main(void)
{
	test_cases();
	test_layout_change();
	test_random();
	test_errors();
	test_damage();
	test_sizes();
	printf("mpack: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
