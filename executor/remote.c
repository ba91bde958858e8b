/*
 * The seam between threads: how any thread hands work to a loop.
 *
 * Senders push a node (a function the loop runs) onto the loop's inbox, a
 * lock-free LIFO: one compare-and-swap, no allocation, no lock, so a
 * sender never waits for the loop. The push that finds the inbox empty
 * writes the loop's eventfd; the loop keeps a read of it armed on its ring
 * at all times, so a sleeping loop wakes and a busy one sees the
 * completion at its next kernel entry. The read's completion takes the
 * whole list with one exchange and runs it oldest first.
 *
 * Why a doorbell per empty-to-non-empty push and not per node: a burst of
 * wake-ups from another thread costs one write(2) and one completion, and
 * the loop's hot path never touches the inbox at all.
 *
 * The read is submitted with coil_ring_msg_data's tag, so the ring does not
 * count it as an op in flight: it is always there, and counting it would
 * hide every deadlock. The waits that another thread may end are counted
 * in waits instead (coil__remote_wait_begin), and only those keep the loop
 * from calling it a deadlock.
 *
 * The loop must outlive its senders' calls: a sender counts itself in
 * senders from before its push until after its write, and the loop, when
 * it stops, waits for that count to drop to zero before it closes the
 * eventfd and its stack goes. A sender must know the loop still runs when
 * it starts; for a future, that is its lifetime rule (see coil.h).
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "executor/loop.h"
#include "ring/log.h"

#define container_of(p, type, member)                                          \
	((type *)((char *)(p) - offsetof(type, member)))

/* Ringing the doorbell: one CQE drains any number of wake-ups. */
static void doorbell_read(coil_op *op, const struct io_uring_cqe *cqe);

static void arm(coil__loop *l)
{
	struct io_uring_sqe *sqe = coil_ring_sqe(&l->ring, NULL);

	io_uring_prep_read(sqe, l->inbox.efd, &l->inbox.count,
			   sizeof(l->inbox.count), 0);
	io_uring_sqe_set_data64(sqe, coil_ring_msg_data(&l->inbox.op));
	l->inbox.armed = true;
	/*
	 * Now rather than at the next kernel entry: callers that count the
	 * SQEs still queued see their own only. If it fails, that entry
	 * submits it.
	 */
	io_uring_submit(&l->ring.uring);
}

static void doorbell_read(coil_op *op, const struct io_uring_cqe *cqe)
{
	coil__loop *l = container_of(op, coil__loop, inbox.op);

	l->inbox.armed = false;
	coil__inbox_drain(l);
	if (l->inbox.closing)
		return;
	if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN &&
	    cqe->res != -ECANCELED) {
		/* Nothing would wake this loop for other threads any more. */
		coil__log(COIL_LOG_ERROR, "the loop's doorbell read failed (%s); "
			  "wake-ups from other threads are picked up only when "
			  "the loop wakes for something else", strerror(-cqe->res));
		return;
	}
	arm(l);
}

int coil__inbox_init(coil__loop *l)
{
	struct coil__inbox *in = &l->inbox;

	memset(in, 0, sizeof(*in));
	in->op.complete = doorbell_read;
	in->efd = eventfd(0, EFD_CLOEXEC);
	if (in->efd < 0) {
		in->efd = -errno;
		coil__log(COIL_LOG_ERROR, "cannot make the loop's eventfd for "
			  "wake-ups from other threads: %s", strerror(-in->efd));
		return in->efd;
	}
	arm(l);
	return 0;
}

void coil__inbox_drain(coil__loop *l)
{
	struct coil__remote *node, *next, *fifo = NULL;

	node = __atomic_exchange_n(&l->inbox.head, NULL, __ATOMIC_ACQUIRE);
	/* The list is newest first: reverse it to run in the order sent. */
	for (; node; node = next) {
		next = node->next;
		node->next = fifo;
		fifo = node;
	}
	for (node = fifo; node; node = next) {
		next = node->next; /* run may free the node */
		node->run(node);
	}
}

void coil__remote_post(coil__loop *l, struct coil__remote *node)
{
	struct coil__inbox *in = &l->inbox;
	struct coil__remote *old = __atomic_load_n(&in->head, __ATOMIC_RELAXED);
	uint64_t one = 1;

	__atomic_fetch_add(&in->senders, 1, __ATOMIC_ACQ_REL);
	do
		node->next = old;
	while (!__atomic_compare_exchange_n(&in->head, &old, node, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	/* From here on node may be run and freed: only the loop is touched. */
	if (!old && write(in->efd, &one, sizeof(one)) < 0)
		coil__log(COIL_LOG_ERROR, "cannot ring a loop's doorbell: %s",
			  strerror(errno));
	__atomic_fetch_sub(&in->senders, 1, __ATOMIC_RELEASE);
}

void coil__inbox_exit(coil__loop *l)
{
	struct coil__inbox *in = &l->inbox;
	int64_t grace = coil_now() + COIL_SEC(1);
	struct io_uring_sqe *sqe;

	if (in->efd < 0)
		return;
	in->closing = true;
	/*
	 * The read's buffer is in this frame: let the kernel give the read
	 * back before the ring (and the frame) go.
	 */
	if (in->armed && !l->dead) {
		sqe = coil_ring_sqe(&l->ring, NULL);
		io_uring_prep_cancel64(sqe, coil_ring_msg_data(&in->op), 0);
		while (in->armed) {
			int ret = coil_ring_wait(&l->ring, grace);

			if (ret < 0 && ret != -EINTR)
				break;
		}
	}
	while (__atomic_load_n(&in->senders, __ATOMIC_ACQUIRE))
		sched_yield();
	coil__inbox_drain(l);
	close(in->efd);
	in->efd = -1;
}
