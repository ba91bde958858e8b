/*
 * Submission and completion: SQE acquisition that never fails, entering the
 * kernel only when there is something to submit or collect, and dispatching
 * every CQE to the handler of the op its user_data names.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "ring/log.h"

/* 0 if the ring can be used from this process and thread, else why not. */
static int ring_state(coil_ring *r)
{
	if (__builtin_expect(r->live_gen == coil__fork_generation, 1)) {
		if (__builtin_expect(pthread_equal(r->owner, pthread_self()), 1))
			return r->error;
		coil__log(COIL_LOG_ERROR, "a ring was used from a thread other than "
			  "the one that created it; each thread needs its own ring");
		return -EEXIST;
	}
	if (r->live_gen == 0)
		return -EBADF;
	if (r->error != -ECHILD) {
		r->error = -ECHILD;
		coil__log(COIL_LOG_WARN, "a ring was used in a forked child (pid %d): "
			  "rings do not survive fork; start a new loop in the child",
			  (int)getpid());
	}
	return -ECHILD;
}

/* Errors after which submitting again, once completions drain, can succeed. */
static bool transient(int err)
{
	return err == -EAGAIN || err == -EBUSY || err == -EINTR;
}

/*
 * Dispatch the CQEs visible now. Each CQE is copied and the head published
 * before its handler runs: a handler may submit, and a full SQ may then make
 * us dispatch again from inside it, which must not see the same CQE twice.
 * On x86 publishing the head is a plain store, as cheap as doing it once.
 */
static int dispatch(coil_ring *r)
{
	struct io_uring_cq *cq = &r->uring.cq;
	unsigned head = *cq->khead;
	unsigned tail = io_uring_smp_load_acquire(cq->ktail);
	int n = 0;

	/* Signed distance: a nested dispatch may have moved the head past tail. */
	while ((int)(tail - head) > 0) {
		/* coil never asks for CQE32, so CQEs are 16 bytes apart. */
		struct io_uring_cqe cqe = cq->cqes[head & cq->ring_mask];
		/* Bit 0 marks a message for op (coil_ring_msg_data). */
		coil_op *op = (coil_op *)(uintptr_t)(cqe.user_data & ~(__u64)1);

		io_uring_smp_store_release(cq->khead, head + 1);
		n++;
		if (op) {
			if (!(cqe.flags & IORING_CQE_F_MORE) && !(cqe.user_data & 1))
				r->inflight--;
			op->complete(op, &cqe);
		}
		head = *cq->khead;
	}
	return n;
}

/*
 * Hand queued SQEs to the kernel and make finished work visible. With
 * DEFER_TASKRUN, completion work runs only when this thread enters with
 * GETEVENTS; TASKRUN_FLAG tells us when such work is pending, so the common
 * case (nothing pending) costs a flag read, and a plain submit when SQEs
 * are queued.
 */
static int enter(coil_ring *r)
{
	unsigned kflags = IO_URING_READ_ONCE(*r->uring.sq.kflags);
	int ret = 0;

	if (r->setup_flags & IORING_SETUP_SQPOLL) {
		ret = io_uring_submit(&r->uring);
		if (ret >= 0 && (kflags & IORING_SQ_CQ_OVERFLOW))
			ret = io_uring_get_events(&r->uring);
	} else if (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) {
		ret = io_uring_submit_and_get_events(&r->uring);
	} else if (io_uring_sq_ready(&r->uring)) {
		ret = io_uring_submit(&r->uring);
	}
	return ret < 0 ? ret : 0;
}

/* Record an error after which the ring cannot submit any more. */
static int fail(coil_ring *r, int err)
{
	if (!r->error)
		coil__log(COIL_LOG_ERROR, "io_uring submission failed: %s",
			  strerror(-err));
	r->error = err;
	return err;
}

/* Submit and dispatch until the SQ has room for n entries. */
static int make_room(coil_ring *r, unsigned n)
{
	int ret;

	while (io_uring_sq_space_left(&r->uring) < n) {
		ret = enter(r);
		if (ret == 0 && (r->setup_flags & IORING_SETUP_SQPOLL))
			ret = io_uring_sqring_wait(&r->uring);
		if (ret < 0 && !transient(ret))
			return fail(r, ret);
		if (ret < 0 && dispatch(r) == 0 && r->inflight) {
			/* The kernel is short of something only completions free. */
			ret = io_uring_submit_and_wait(&r->uring, 1);
			if (ret < 0 && !transient(ret))
				return fail(r, ret);
			dispatch(r);
		}
	}
	return 0;
}

struct io_uring_sqe *coil__ring_sqe_slow(coil_ring *r, coil_op *op)
{
	struct io_uring_sqe *sqe;

	if (ring_state(r) == 0 && make_room(r, 1) == 0) {
		sqe = io_uring_get_sqe(&r->uring);
		io_uring_sqe_set_data(sqe, op);
		r->inflight += op != NULL;
		return sqe;
	}
	memset(&r->scratch, 0, sizeof(r->scratch));
	return &r->scratch;
}

int coil_ring_reserve(coil_ring *r, unsigned n)
{
	int ret = ring_state(r);

	if (ret)
		return ret;
	if (n > r->uring.sq.ring_entries)
		return -EINVAL;
	return make_room(r, n);
}

int coil_ring_poll(coil_ring *r)
{
	int ret = ring_state(r);

	if (ret)
		return ret;
	ret = enter(r);
	if (ret < 0 && !transient(ret))
		return fail(r, ret);
	return dispatch(r);
}

int coil_ring_wait(coil_ring *r, int64_t deadline)
{
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	int64_t left;
	int ret, n;

	ret = ring_state(r);
	if (ret)
		return ret;
	/* Completions are waiting already: nothing to block for. */
	if (io_uring_cq_ready(&r->uring))
		return coil_ring_poll(r);
	for (;;) {
		/*
		 * One entry submits what is queued and waits. It returns at once
		 * when an op completes as it is submitted, or when deferred work
		 * or an overflow was pending: waiting runs and flushes them first.
		 */
		if (deadline == COIL_NEVER) {
			ret = io_uring_submit_and_wait(&r->uring, 1);
		} else {
			left = deadline - coil_now();
			if (left <= 0) {
				/* Still submit what is queued, and take what came. */
				n = coil_ring_poll(r);
				return n ? n : -ETIMEDOUT;
			}
			ts.tv_sec = left / 1000000000;
			ts.tv_nsec = left % 1000000000;
			ret = io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1,
							       &ts, NULL);
		}
		if (ret < 0 && ret != -ETIME && !transient(ret))
			return fail(r, ret);
		n = dispatch(r);
		if (n)
			return n;
		if (ret == -EINTR)
			return -EINTR;
	}
}
