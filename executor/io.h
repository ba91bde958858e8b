/*
 * What the I/O calls (net.c, rw.c, file.c, process.c) share on top of
 * coil_io_prep / coil_io_await.
 */
#ifndef COIL_EXECUTOR_IO_H
#define COIL_EXECUTOR_IO_H

#include <sys/types.h>
#include <sys/uio.h>

#include "coil.h"

/* An SQE's fd may name a registered file: COIL_FIXED_FD(index). */
static inline bool coil__is_fixed_fd(int fd)
{
	return ((unsigned)fd & 0xFFF00000u) == 0xC0000000u;
}

/* Point a prepared SQE at the registered file when fd names one. */
static inline void coil__sqe_fd(struct io_uring_sqe *sqe, int fd)
{
	if (coil__is_fixed_fd(fd)) {
		sqe->fd = (int)((unsigned)fd & 0xFFFFFu);
		sqe->flags |= IOSQE_FIXED_FILE;
	}
}

/* Lengths beyond what one transfer moves are cut, as read(2) does. */
static inline unsigned coil__io_len(size_t len)
{
	return len > COIL_IO_MAX ? COIL_IO_MAX : (unsigned)len;
}

/*
 * Tell memory checkers (valgrind) that the kernel wrote n bytes at buf.
 * Whether valgrind runs is asked once (coil__io_init, at loop start): its
 * client requests cost instructions on every call.
 */
extern bool coil__on_valgrind;
void coil__io_init(void);
void coil__mark_defined_slow(const void *buf, size_t n);
static inline void coil__mark_defined(const void *buf, size_t n)
{
	if (__builtin_expect(coil__on_valgrind, 0))
		coil__mark_defined_slow(buf, n);
}

/* Await and return a count, telling memory checkers the kernel wrote buf. */
ssize_t coil__await_read(coil_io *io, void *buf, int64_t deadline);
ssize_t coil__await_readv(coil_io *io, const struct iovec *iov, int iovcnt,
			  int64_t deadline);

#endif
