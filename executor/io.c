/*
 * Awaiting any io_uring operation from a task, with a deadline and
 * cancellation in the kernel.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifdef COIL_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_MAKE_MEM_DEFINED(addr, len) ((void)(addr), (void)(len))
#endif

#include "executor/io.h"
#include "executor/loop.h"
#include "ring/log.h"

/* Handed out when an SQE must not reach the kernel; never submitted. */
static __thread struct io_uring_sqe refused_sqe;

void coil__io_complete(coil_op *op, const struct io_uring_cqe *cqe)
{
	coil_io *io = (coil_io *)((char *)op - offsetof(coil_io, op));
	coil_task *t = io->task;

	if (__builtin_expect(cqe->flags & (IORING_CQE_F_MORE | IORING_CQE_F_NOTIF), 0)) {
		/* A zero-copy send's notification only says its buffer is free. */
		if (!(cqe->flags & IORING_CQE_F_NOTIF)) {
			io->res = cqe->res;
			io->flags = cqe->flags;
		}
		if (cqe->flags & IORING_CQE_F_MORE)
			return; /* the op is not done with its buffers yet */
	} else {
		io->res = cqe->res;
		io->flags = cqe->flags;
	}
	io->done = true;
	/* A full SQ can dispatch before the task has parked: it then sees done. */
	if (t->wait == io && (t->flags & TASK_PARKED))
		coil__wake(t, coil__io_result(io));
}

/* On the deadline or a cancel: ask the kernel to cancel; the CQE wakes. */
void coil__io_interrupt(coil_task *t, int reason)
{
	coil_io *io = t->wait;
	coil__loop *l = t->loop;
	struct io_uring_sqe *sqe;

	io->reason = reason;
	if (l->dead) {
		/* No completion will come: the ring is gone (a forked child). */
		io->res = reason;
		io->done = true;
		if (t->flags & TASK_PARKED)
			coil__wake(t, reason);
		return;
	}
	sqe = coil_ring_sqe(&l->ring, NULL);
	io_uring_prep_cancel64(sqe, (__u64)(uintptr_t)&io->op, 0);
}

struct io_uring_sqe *coil__io_refuse(coil_io *io, coil__loop *l, coil_task *t)
{
	io->task = NULL;
	io->res = !t			    ? -EPERM
		  : coil__cancel_pending(t) ? -ECANCELED
					    : l->dead;
	memset(&refused_sqe, 0, sizeof(refused_sqe));
	return &refused_sqe;
}

int coil__io_await_slow(coil_io *io, int64_t deadline)
{
	coil_task *t = io->task;
	int reason = 0;

	if (!t)
		return io->res;
	if (t != t->loop->current) {
		/* Returning would let the kernel write into a frame that is gone. */
		coil__log(COIL_LOG_ERROR, "coil_io_await called outside the task "
			  "that prepared the operation");
		abort();
	}
	if (io->done) /* completed already: its result, whatever came since */
		return coil__io_result(io);
	if (coil__cancel_pending(t))
		reason = -ECANCELED;
	else if (coil__arm_deadline(t, deadline) < 0)
		reason = -ETIMEDOUT; /* no memory to wait for it */
	if (reason) {
		t->wait = io;
		coil__io_interrupt(t, reason);
		/* Done meanwhile: a full SQ dispatches, or the ring is dead. */
		if (io->done)
			return coil__io_result(io);
	}
	return coil__suspend(t, reason ? NULL : coil__io_interrupt, io);
}

struct io_uring_sqe *coil_io_prep(coil_io *io)
{
	return coil__io_prep(io);
}

int coil_io_await(coil_io *io, int64_t deadline)
{
	coil_task *t = io->task;

	/* Awaited from another task, or completed already (a full SQ). */
	if (t && (t != t->loop->current || io->done))
		return coil__io_await_slow(io, deadline);
	return coil__io_await(io, deadline);
}

bool coil__on_valgrind;

/*
 * Only memcheck tracks whether memory is defined. Other tools (callgrind,
 * cachegrind) preload no library of their own, memcheck always does: the
 * client requests, which cost instructions on every read, are skipped there.
 */
void coil__io_init(void)
{
	const char *preload = getenv("LD_PRELOAD");

	coil__on_valgrind = RUNNING_ON_VALGRIND != 0 &&
			    (!preload || strstr(preload, "vgpreload_memcheck"));
}

void coil__mark_defined_slow(const void *buf, size_t n)
{
	if (buf && n)
		VALGRIND_MAKE_MEM_DEFINED(buf, n);
}

ssize_t coil__await_readv(coil_io *io, const struct iovec *iov, int iovcnt,
			  int64_t deadline)
{
	int n = coil__io_await(io, deadline);
	size_t left = n > 0 ? (size_t)n : 0;

	for (int i = 0; i < iovcnt && left; i++) {
		size_t part = iov[i].iov_len < left ? iov[i].iov_len : left;

		coil__mark_defined(iov[i].iov_base, part);
		left -= part;
	}
	return n;
}
