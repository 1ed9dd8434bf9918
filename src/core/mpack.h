/*
 * mpack.h: the metric pack codec of pg_dispatch, in plain C (no PostgreSQL headers).
 *
 * A pack holds a run of one node's samples in time order: each sample is an
 * instant (int64, microseconds), a layout id (int32) and the layout's values
 * (IEEE doubles).  Instants are stored as delta-of-delta; a layout id only when
 * it changes.  Each value is coded against the previous value in the same
 * position (its column): unchanged bits cost one bit; a value that is a decimal
 * with at most MPACK_MAX_DECIMALS digits after the point (a percentage, a byte
 * counter) is coded as the change of its scaled integer, or of its rate, so a
 * steady counter costs two bits; anything else (NaN, infinities, -0, arbitrary
 * doubles) is coded as Gorilla's XOR with the previous bits.  Decoding is
 * bit-exact: the encoder only takes the decimal path after checking that the
 * decoder's division gives back the very same bits.
 *
 * Layout of a pack: byte 0 is MPACK_VERSION, bytes 1-4 the sample count (little
 * endian), then the bit stream, most significant bit first.
 */
#ifndef DISPATCH_MPACK_H
#define DISPATCH_MPACK_H

#include <stddef.h>
#include <stdint.h>

#define MPACK_VERSION 2			/* 2: a layout's width takes 11 bits (rollup rows) */
#define MPACK_HEADER 5				/* version byte and sample count */
#define MPACK_MAX_VALUES 600		/* values of one sample (dispatch.metrics_max_per_sample's cap) */
/* Values of one row of a pack: a rollup row holds a count and 3 statistics per value. */
#define MPACK_MAX_COLUMNS (1 + 3 * MPACK_MAX_VALUES)
#define MPACK_MAX_SAMPLES 4096		/* samples of one pack */
#define MPACK_MAX_DECIMALS 7		/* digits after the point the decimal path handles */

/* What the coder remembers about one column between samples. */
typedef struct MpackColumn
{
	uint64_t	bits;			/* the previous value's bits */
	int64_t		scaled;			/* its scaled integer, when decimals >= 0 */
	int64_t		delta;			/* the change of the scaled integer before it */
	int8_t		decimals;		/* digits after the point, -1: not a decimal */
	uint8_t		lead;			/* XOR window of the previous raw value: leading zeros */
	uint8_t		len;			/* and its length, 0 when there is none */
	uint8_t		width;			/* bits of a step that needs no length, 0: none yet */
} MpackColumn;

/* The state shared by the writer and the reader. */
typedef struct MpackState
{
	int64_t		t;				/* the previous instant */
	int64_t		dt;				/* the previous gap between instants */
	int32_t		layout;			/* the previous layout id */
	int			nvals;			/* its number of values */
	uint32_t	count;			/* samples so far */
	MpackColumn col[MPACK_MAX_COLUMNS];
} MpackState;

typedef struct MpackWriter
{
	MpackState	s;
	size_t		bitpos;			/* bits written after the header */
} MpackWriter;

typedef struct MpackReader
{
	MpackState	s;
	const uint8_t *data;
	size_t		nbits;			/* bits of stream after the header */
	size_t		bitpos;
	uint32_t	total;			/* samples the header announces */
} MpackReader;

/* Most bytes one sample of nvals values adds to a pack. */
extern size_t mpack_sample_bound(int nvals);

/* Starts a pack; its bytes go to a buffer whose first MPACK_HEADER bytes are reserved. */
extern void mpack_writer_init(MpackWriter *w);

/*
 * Appends a sample to the pack in buf, which must have room for
 * mpack_sample_bound(nvals) more bytes past mpack_writer_size(w).  Returns 0, or
 * -1 when nvals is out of 0 .. MPACK_MAX_COLUMNS, the pack is full or t is not
 * after the previous instant.
 */
extern int	mpack_put(MpackWriter *w, uint8_t *buf, int64_t t, int32_t layout, int nvals,
					  const double *vals);

/* Bytes the pack in buf takes so far, header included. */
extern size_t mpack_writer_size(const MpackWriter *w);

/* Writes the header of the pack in buf; returns its size in bytes. */
extern size_t mpack_finish(MpackWriter *w, uint8_t *buf);

/* Opens pack data[0 .. len); returns its sample count, or -1 when it is not a pack. */
extern int	mpack_reader_init(MpackReader *r, const uint8_t *data, size_t len);

/*
 * Reads the next sample into *t, *layout, *nvals and vals[0 .. *nvals), vals
 * having room for MPACK_MAX_COLUMNS.  Returns 1, 0 after the last sample, or -1
 * when the pack is damaged (it then reads nothing past its end).
 */
extern int	mpack_get(MpackReader *r, int64_t *t, int32_t *layout, int *nvals, double *vals);

#endif							/* DISPATCH_MPACK_H */
