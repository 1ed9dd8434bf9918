/*
 * mpack.c: the metric pack codec (see mpack.h for the format's idea).
 *
 * The bit stream, per sample:
 *   instant  first sample: 64 bits; then '0' when the gap repeats, else '1' and
 *            the zigzagged change of the gap as a zint
 *   layout   '0' when it repeats, else '1', 32 bits of layout id, 11 bits of count
 *            (every column forgets its past then)
 *   a value  '0'     the same bits as the column's previous value
 *            '10'    a decimal whose scaled integer moved by the same step as before
 *            '110'   a decimal: '0' and its zigzagged step, or '1' and the change
 *                    of its step (whichever is smaller), as a step: '0' and the
 *                    column's width of bits, or '1' and a zint, whose length
 *                    becomes the width (random values cost their bits plus one)
 *            '1110'  a decimal with a new number of digits: 3 bits of digits and
 *                    its zigzagged scaled integer plus one, as a zint
 *            '1111'  any other double: Gorilla's XOR with the previous bits, '0'
 *                    and the bits inside the previous window, or '1', 6 bits of
 *                    leading zeros, 6 bits of length - 1 and the bits
 * A zint z >= 1 is 6 bits of k = floor(log2 z) and the k bits below its top bit.
 * All arithmetic on decoded numbers is unsigned, so a damaged pack cannot make
 * the reader overflow; it is refused instead.
 */
#include "mpack.h"

#include <math.h>
#include <string.h>

#define SAFE_INT 9007199254740992.0	/* 2^53: scaled integers stay below it */

static const double pow10s[MPACK_MAX_DECIMALS + 1] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7};

static uint64_t to_bits(double v);
static double from_bits(uint64_t b);
static uint64_t zigzag(int64_t x);
static int64_t unzigzag(uint64_t z);
static void put_bits(uint8_t *buf, size_t *pos, uint64_t v, int n);
static void put_zint(uint8_t *buf, size_t *pos, uint64_t z);
static void put_step(uint8_t *buf, size_t *pos, MpackColumn *c, uint64_t z);
static int	get_bits(MpackReader *r, int n, uint64_t *v);
static int	get_zint(MpackReader *r, uint64_t *z);
static int	get_step(MpackReader *r, MpackColumn *c, uint64_t *z);
static int	scale(double v, int decimals, int64_t *scaled);
static void reset_columns(MpackState *s, int32_t layout, int nvals);
static void put_value(uint8_t *buf, size_t *pos, MpackColumn *c, double v);
static void put_xor(uint8_t *buf, size_t *pos, MpackColumn *c, uint64_t bits);
static int	get_value(MpackReader *r, MpackColumn *c, double *v);
static int	get_xor(MpackReader *r, MpackColumn *c);
static int	set_scaled(MpackColumn *c, int decimals, uint64_t scaled);

/* The bits of double v. */
static uint64_t
to_bits(double v)
{
	uint64_t	b;

	memcpy(&b, &v, sizeof(b));
	return b;
}

/* The double whose bits are b. */
static double
from_bits(uint64_t b)
{
	double		v;

	memcpy(&v, &b, sizeof(v));
	return v;
}

/* Maps small negative and positive integers to small unsigned ones. */
static uint64_t
zigzag(int64_t x)
{
	return ((uint64_t) x << 1) ^ (uint64_t) -(int64_t) ((uint64_t) x >> 63);
}

/* The inverse of zigzag(). */
static int64_t
unzigzag(uint64_t z)
{
	return (int64_t) ((z >> 1) ^ (uint64_t) -(int64_t) (z & 1));
}

/* Appends the n (0 .. 64) low bits of v to the stream in buf, most significant first. */
static void
put_bits(uint8_t *buf, size_t *pos, uint64_t v, int n)
{
	while (n > 0)
	{
		uint8_t    *byte = buf + MPACK_HEADER + (*pos >> 3);
		int			off = (int) (*pos & 7);
		int			take = n < 8 - off ? n : 8 - off;
		uint64_t	chunk = (v >> (n - take)) & ((1u << take) - 1);

		if (off == 0)
			*byte = 0;
		*byte |= (uint8_t) (chunk << (8 - off - take));
		*pos += (size_t) take;
		n -= take;
	}
}

/* Appends z >= 1 as a zint. */
static void
put_zint(uint8_t *buf, size_t *pos, uint64_t z)
{
	int			k = 63 - __builtin_clzll(z);

	put_bits(buf, pos, (uint64_t) k, 6);
	put_bits(buf, pos, z, k);
}

/*
 * Appends z >= 1, a step of column c: '0' and z in the column's width when it
 * fits and the width is not much too wide, else '1' and z as a zint, which sets
 * the width to z's.
 */
static void
put_step(uint8_t *buf, size_t *pos, MpackColumn *c, uint64_t z)
{
	int			k = 63 - __builtin_clzll(z);

	if (c->width > 0 && k + 1 <= c->width && 7 + k >= 1 + c->width)
	{
		put_bits(buf, pos, 0, 1);
		put_bits(buf, pos, z, c->width);
		return;
	}
	put_bits(buf, pos, 1, 1);
	put_zint(buf, pos, z);
	c->width = (uint8_t) (k + 1);
}

/* Reads n (0 .. 64) bits into *v; -1 when the stream ends first. */
static int
get_bits(MpackReader *r, int n, uint64_t *v)
{
	uint64_t	out = 0;

	if ((size_t) n > r->nbits - r->bitpos)
		return -1;
	while (n > 0)
	{
		uint8_t		byte = r->data[MPACK_HEADER + (r->bitpos >> 3)];
		int			off = (int) (r->bitpos & 7);
		int			take = n < 8 - off ? n : 8 - off;

		out = (out << take) | ((uint64_t) (byte >> (8 - off - take)) & ((1u << take) - 1));
		r->bitpos += (size_t) take;
		n -= take;
	}
	*v = out;
	return 0;
}

/* Reads a zint into *z; -1 when the stream ends first. */
static int
get_zint(MpackReader *r, uint64_t *z)
{
	uint64_t	k,
				low;

	if (get_bits(r, 6, &k) < 0 || get_bits(r, (int) k, &low) < 0)
		return -1;
	*z = ((uint64_t) 1 << k) | low;
	return 0;
}

/* Reads a step of column c written by put_step(); -1 when damaged. */
static int
get_step(MpackReader *r, MpackColumn *c, uint64_t *z)
{
	uint64_t	flag;

	if (get_bits(r, 1, &flag) < 0)
		return -1;
	if (!flag)
		return c->width == 0 ? -1 : get_bits(r, c->width, z);
	if (get_zint(r, z) < 0)
		return -1;
	c->width = (uint8_t) (64 - __builtin_clzll(*z));
	return 0;
}

/*
 * Sets *scaled to v * 10^decimals when that is an integer below 2^53 from which
 * the reader's division gives back v's exact bits; returns 1, else 0.
 */
static int
scale(double v, int decimals, int64_t *scaled)
{
	double		x = v * pow10s[decimals];
	int64_t		m;

	if (!(fabs(x) < SAFE_INT))	/* also NaN and the infinities */
		return 0;
	m = (int64_t) nearbyint(x);
	if (to_bits((double) m / pow10s[decimals]) != to_bits(v))
		return 0;
	*scaled = m;
	return 1;
}

/* Starts a new layout: every column forgets its past. */
static void
reset_columns(MpackState *s, int32_t layout, int nvals)
{
	s->layout = layout;
	s->nvals = nvals;
	memset(s->col, 0, sizeof(MpackColumn) * (size_t) nvals);
	for (int i = 0; i < nvals; i++)
		s->col[i].decimals = -1;
}

/* Most bytes one sample of nvals values adds to a pack. */
size_t
mpack_sample_bound(int nvals)
{
	size_t		bits = 71 + 44 + 82 * (size_t) (nvals > 0 ? nvals : 0);

	return bits / 8 + 2;
}

/* Starts a pack; its bytes go to a buffer whose first MPACK_HEADER bytes are reserved. */
void
mpack_writer_init(MpackWriter *w)
{
	memset(w, 0, sizeof(*w));
}

/* Appends the XOR of bits with the column's previous bits (they differ). */
static void
put_xor(uint8_t *buf, size_t *pos, MpackColumn *c, uint64_t bits)
{
	uint64_t	x = bits ^ c->bits;
	int			lead = __builtin_clzll(x),
				trail = __builtin_ctzll(x),
				len = 64 - lead - trail;

	if (c->len > 0 && lead >= c->lead && trail >= 64 - c->lead - c->len)
	{
		put_bits(buf, pos, 0, 1);
		put_bits(buf, pos, x >> (64 - c->lead - c->len), c->len);
		return;
	}
	put_bits(buf, pos, 1, 1);
	put_bits(buf, pos, (uint64_t) lead, 6);
	put_bits(buf, pos, (uint64_t) (len - 1), 6);
	put_bits(buf, pos, x >> trail, len);
	c->lead = (uint8_t) lead;
	c->len = (uint8_t) len;
}

/* Appends value v of column c. */
static void
put_value(uint8_t *buf, size_t *pos, MpackColumn *c, double v)
{
	uint64_t	bits = to_bits(v);
	int64_t		m;

	if (bits == c->bits)
	{
		put_bits(buf, pos, 0, 1);
		c->delta = 0;
		return;
	}
	if (c->decimals >= 0 && scale(v, c->decimals, &m))
	{
		int64_t		delta = m - c->scaled,
					dod = delta - c->delta;

		if (dod == 0)
			put_bits(buf, pos, 2, 2);
		else
		{
			put_bits(buf, pos, 6, 3);
			if (zigzag(delta) <= zigzag(dod))
			{
				put_bits(buf, pos, 0, 1);
				put_step(buf, pos, c, zigzag(delta));
			}
			else
			{
				put_bits(buf, pos, 1, 1);
				put_step(buf, pos, c, zigzag(dod));
			}
		}
		c->scaled = m;
		c->delta = delta;
		c->bits = bits;
		return;
	}
	for (int d = 0; d <= MPACK_MAX_DECIMALS; d++)
	{
		if (!scale(v, d, &m))
			continue;
		put_bits(buf, pos, 14, 4);
		put_bits(buf, pos, (uint64_t) d, 3);
		put_zint(buf, pos, zigzag(m) + 1);
		c->decimals = (int8_t) d;
		c->scaled = m;
		c->delta = 0;
		c->bits = bits;
		return;
	}
	put_bits(buf, pos, 15, 4);
	put_xor(buf, pos, c, bits);
	c->decimals = -1;
	c->bits = bits;
}

/*
 * Appends a sample to the pack in buf, which must have room for
 * mpack_sample_bound(nvals) more bytes past mpack_writer_size(w).  Returns 0, or
 * -1 when nvals is out of 0 .. MPACK_MAX_COLUMNS, the pack is full or t is not
 * after the previous instant.
 */
int
mpack_put(MpackWriter *w, uint8_t *buf, int64_t t, int32_t layout, int nvals,
		  const double *vals)
{
	MpackState *s = &w->s;

	if (nvals < 0 || nvals > MPACK_MAX_COLUMNS || s->count >= MPACK_MAX_SAMPLES ||
		(s->count > 0 && t <= s->t))
		return -1;
	if (s->count == 0)
		put_bits(buf, &w->bitpos, (uint64_t) t, 64);
	else
	{
		uint64_t	dt = (uint64_t) t - (uint64_t) s->t,
					dod = dt - (uint64_t) s->dt;

		if ((int64_t) dt <= 0)	/* a gap past the int64 range */
			return -1;
		if (dod == 0)
			put_bits(buf, &w->bitpos, 0, 1);
		else
		{
			put_bits(buf, &w->bitpos, 1, 1);
			put_zint(buf, &w->bitpos, zigzag((int64_t) dod));
		}
		s->dt = (int64_t) dt;
	}
	s->t = t;
	if (s->count > 0 && layout == s->layout && nvals == s->nvals)
		put_bits(buf, &w->bitpos, 0, 1);
	else
	{
		put_bits(buf, &w->bitpos, 1, 1);
		put_bits(buf, &w->bitpos, (uint32_t) layout, 32);
		put_bits(buf, &w->bitpos, (uint64_t) nvals, 11);
		reset_columns(s, layout, nvals);
	}
	for (int i = 0; i < nvals; i++)
		put_value(buf, &w->bitpos, &s->col[i], vals[i]);
	s->count++;
	return 0;
}

/* Bytes the pack in buf takes so far, header included. */
size_t
mpack_writer_size(const MpackWriter *w)
{
	return MPACK_HEADER + (w->bitpos + 7) / 8;
}

/* Writes the header of the pack in buf; returns its size in bytes. */
size_t
mpack_finish(MpackWriter *w, uint8_t *buf)
{
	buf[0] = MPACK_VERSION;
	for (int i = 0; i < 4; i++)
		buf[1 + i] = (uint8_t) (w->s.count >> (8 * i));
	return mpack_writer_size(w);
}

/* Opens pack data[0 .. len); returns its sample count, or -1 when it is not a pack. */
int
mpack_reader_init(MpackReader *r, const uint8_t *data, size_t len)
{
	memset(r, 0, sizeof(*r));
	if (len < MPACK_HEADER || data[0] != MPACK_VERSION)
		return -1;
	for (int i = 0; i < 4; i++)
		r->total |= (uint32_t) data[1 + i] << (8 * i);
	if (r->total > MPACK_MAX_SAMPLES)
		return -1;
	r->data = data;
	r->nbits = (len - MPACK_HEADER) * 8;
	return (int) r->total;
}

/* Makes scaled the column's value with decimals digits; -1 when it is out of range. */
static int
set_scaled(MpackColumn *c, int decimals, uint64_t scaled)
{
	int64_t		m = (int64_t) scaled;

	if (!((double) m < SAFE_INT && (double) m > -SAFE_INT))
		return -1;
	c->delta = (int64_t) (scaled - (uint64_t) c->scaled);
	c->scaled = m;
	c->decimals = (int8_t) decimals;
	c->bits = to_bits((double) m / pow10s[decimals]);
	return 0;
}

/* Reads the XOR of a raw value into column c's bits; -1 when damaged. */
static int
get_xor(MpackReader *r, MpackColumn *c)
{
	uint64_t	flag,
				lead,
				len,
				x;

	if (get_bits(r, 1, &flag) < 0)
		return -1;
	if (flag)
	{
		if (get_bits(r, 6, &lead) < 0 || get_bits(r, 6, &len) < 0)
			return -1;
		len++;
		if (lead + len > 64)
			return -1;
		c->lead = (uint8_t) lead;
		c->len = (uint8_t) len;
	}
	else if (c->len == 0)
		return -1;
	if (get_bits(r, c->len, &x) < 0)
		return -1;
	c->bits ^= x << (64 - c->lead - c->len);
	c->decimals = -1;
	return 0;
}

/* Reads the next value of column c into *v; -1 when damaged. */
static int
get_value(MpackReader *r, MpackColumn *c, double *v)
{
	uint64_t	code = 0,
				bit,
				z,
				d;
	int			nbits = 0;

	/* the prefix: up to three 1 bits, ended by a 0 or by a fourth 1 */
	while (nbits < 4)
	{
		if (get_bits(r, 1, &bit) < 0)
			return -1;
		code = (code << 1) | bit;
		nbits++;
		if (!bit)
			break;
	}
	if (code == 0)				/* '0' */
		c->delta = 0;
	else if (code == 2 || code == 6)	/* '10', '110' */
	{
		uint64_t	step = (uint64_t) c->delta;

		if (c->decimals < 0)
			return -1;
		if (code == 6)
		{
			if (get_bits(r, 1, &bit) < 0 || get_step(r, c, &z) < 0)
				return -1;
			step = bit ? step + (uint64_t) unzigzag(z) : (uint64_t) unzigzag(z);
		}
		if (set_scaled(c, c->decimals, (uint64_t) c->scaled + step) < 0)
			return -1;
	}
	else if (code == 14)		/* '1110' */
	{
		if (get_bits(r, 3, &d) < 0 || get_zint(r, &z) < 0)
			return -1;
		c->scaled = 0;
		if (set_scaled(c, (int) d, (uint64_t) unzigzag(z - 1)) < 0)
			return -1;
		c->delta = 0;
	}
	else if (get_xor(r, c) < 0)	/* '1111' */
		return -1;
	*v = from_bits(c->bits);
	return 0;
}

/*
 * Reads the next sample into *t, *layout, *nvals and vals[0 .. *nvals), vals
 * having room for MPACK_MAX_COLUMNS.  Returns 1, 0 after the last sample, or -1
 * when the pack is damaged (it then reads nothing past its end).
 */
int
mpack_get(MpackReader *r, int64_t *t, int32_t *layout, int *nvals, double *vals)
{
	MpackState *s = &r->s;
	uint64_t	v,
				flag;

	if (s->count >= r->total)
		return 0;
	if (s->count == 0)
	{
		if (get_bits(r, 64, &v) < 0)
			return -1;
		s->t = (int64_t) v;
	}
	else
	{
		uint64_t	dt = (uint64_t) s->dt;

		if (get_bits(r, 1, &flag) < 0)
			return -1;
		if (flag)
		{
			if (get_zint(r, &v) < 0)
				return -1;
			dt += (uint64_t) unzigzag(v);
		}
		if ((int64_t) dt <= 0 || (int64_t) ((uint64_t) s->t + dt) <= s->t)
			return -1;
		s->dt = (int64_t) dt;
		s->t = (int64_t) ((uint64_t) s->t + dt);
	}
	if (get_bits(r, 1, &flag) < 0)
		return -1;
	if (flag)
	{
		uint64_t	id,
					n;

		if (get_bits(r, 32, &id) < 0 || get_bits(r, 11, &n) < 0 || n > MPACK_MAX_COLUMNS)
			return -1;
		reset_columns(s, (int32_t) (uint32_t) id, (int) n);
	}
	else if (s->count == 0)
		return -1;
	for (int i = 0; i < s->nvals; i++)
		if (get_value(r, &s->col[i], &vals[i]) < 0)
			return -1;
	s->count++;
	*t = s->t;
	*layout = s->layout;
	*nvals = s->nvals;
	return 1;
}
