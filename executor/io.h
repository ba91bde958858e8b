/*
 * What the I/O calls (net.c, rw.c, file.c, process.c) share on top of
 * coil_io_prep / coil_io_await.
 */
#ifndef COIL_EXECUTOR_IO_H
#define COIL_EXECUTOR_IO_H

#include <sys/types.h>
#include <sys/uio.h>

#include "coil.h"
#include "executor/loop.h"

/*
 * coil_io_prep and coil_io_await, inline for the I/O calls: their fast
 * paths are a handful of loads and stores, less than a call costs here.
 */
void coil__io_complete(coil_op *op, const struct io_uring_cqe *cqe);
void coil__io_interrupt(coil_task *t, int reason);
struct io_uring_sqe *coil__io_refuse(coil_io *io, coil__loop *l, coil_task *t);
int coil__io_await_slow(coil_io *io, int64_t deadline);

static inline __attribute__((always_inline)) struct io_uring_sqe *
coil__io_prep(coil_io *io)
{
	coil__loop *l = coil__this_loop;
	coil_task *t = l ? l->current : NULL;

	/* res and flags are written by the completion. */
	io->op.complete = coil__io_complete;
	io->reason = 0;
	io->done = false;
	io->task = t;
	if (__builtin_expect(t && !coil__cancel_pending(t) && !l->dead, 1))
		return coil_ring_sqe(&l->ring, &io->op);
	return coil__io_refuse(io, l, t);
}

/*
 * For coil's own calls, right after coil__io_prep and the SQE's filling:
 * the op is then the running task's and not submitted yet. Only a cancel
 * may have come meanwhile (a full SQ dispatches completions while
 * coil__io_prep takes the SQE). coil_io_await checks the rest for callers
 * that may do anything between the two.
 */
static inline __attribute__((always_inline)) int
coil__io_await(coil_io *io, int64_t deadline)
{
	coil_task *t = io->task;

	if (__builtin_expect(t && !coil__cancel_pending(t) &&
			     coil__arm_deadline(t, deadline) == 0, 1))
		return coil__suspend(t, coil__io_interrupt, io);
	return coil__io_await_slow(io, deadline);
}

/*
 * What the awaiting call returns: the op's own result, unless the kernel
 * cancelled it on our request (the op then ends -ECANCELED, or -EINTR when a
 * worker thread was interrupted), which is reported as why we asked.
 */
static inline int coil__io_result(const coil_io *io)
{
	if (io->reason && (io->res == -ECANCELED || io->res == -EINTR))
		return io->reason;
	return io->res;
}

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
static inline __attribute__((always_inline)) ssize_t
coil__await_read(coil_io *io, void *buf, int64_t deadline)
{
	int n = coil__io_await(io, deadline);

	if (n > 0)
		coil__mark_defined(buf, (size_t)n);
	return n;
}
ssize_t coil__await_readv(coil_io *io, const struct iovec *iov, int iovcnt,
			  int64_t deadline);

#endif
