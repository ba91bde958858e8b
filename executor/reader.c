/*
 * A buffered reader over a stream, for line and delimiter protocols, in the
 * caller's buffer.
 */
#include <errno.h>
#include <string.h>

#include "executor/io.h"

void coil_reader_init(coil_reader *r, int fd, void *buf, size_t cap)
{
	*r = (coil_reader){ .fd = fd, .buf = buf, .cap = cap };
}

size_t coil_reader_buffered(const coil_reader *r)
{
	return r->end - r->start;
}

/* Read more into the free end of the buffer, moving what is kept to the front. */
static ssize_t fill(coil_reader *r, int64_t deadline)
{
	ssize_t n;

	if (r->end == r->cap && r->start) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->end == r->cap)
		return -EMSGSIZE;
	n = coil_read(r->fd, r->buf + r->end, r->cap - r->end, -1, deadline);
	if (n > 0)
		r->end += (size_t)n;
	else if (n == 0)
		r->eof = true;
	return n;
}

ssize_t coil_read_until(coil_reader *r, int delim, char **out,
			int64_t deadline)
{
	size_t scanned = 0; /* bytes after start known to hold no delim */

	if (!r->buf || !r->cap)
		return -EINVAL;
	for (;;) {
		size_t have = r->end - r->start;
		char *from = r->buf + r->start;
		char *hit = memchr(from + scanned, delim, have - scanned);
		size_t len = hit ? (size_t)(hit - from) + 1 : have;

		if (hit || (r->eof && have)) {
			*out = from;
			r->start += len;
			return (ssize_t)len;
		}
		if (r->eof)
			return 0;
		scanned = have;
		ssize_t n = fill(r, deadline);

		if (n < 0)
			return n;
	}
}

ssize_t coil_read_line(coil_reader *r, char **out, int64_t deadline)
{
	return coil_read_until(r, '\n', out, deadline);
}

ssize_t coil_reader_read(coil_reader *r, void *buf, size_t len,
			 int64_t deadline)
{
	size_t have = r->end - r->start;

	if (!have) {
		if (r->eof)
			return 0;
		/* Large reads go straight to the caller's buffer. */
		if (len >= r->cap)
			return coil_read(r->fd, buf, len, -1, deadline);
		r->start = r->end = 0;
		ssize_t n = fill(r, deadline);

		if (n <= 0)
			return n;
		have = r->end - r->start;
	}
	if (len > have)
		len = have;
	memcpy(buf, r->buf + r->start, len);
	r->start += len;
	return (ssize_t)len;
}
