/*
 * Multishot accept: one armed IORING_OP_ACCEPT that keeps accepting into a
 * queue of fds. Once the queue holds the backlog the accept is cancelled, so
 * further connections wait in the kernel's listen queue, not in ours. The
 * kernel accepts everything pending at once, so a burst can overshoot the
 * backlog before the cancel lands: the queue grows for it rather than drop
 * a connection.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include "executor/io.h"
#include "executor/loop.h"
#include "ring/log.h"

#define BACKLOG_DEFAULT 16
#define BACKLOG_MAX 4096

static void arm(coil_acceptor *a)
{
	struct io_uring_sqe *sqe = coil_ring_sqe(&a->loop->ring, &a->op);

	io_uring_prep_multishot_accept(sqe, a->fd, NULL, NULL, SOCK_CLOEXEC);
	coil__sqe_fd(sqe, a->fd);
	a->armed = true;
}

static void stop(coil_acceptor *a)
{
	struct io_uring_sqe *sqe = coil_ring_sqe(&a->loop->ring, NULL);

	io_uring_prep_cancel64(sqe, (__u64)(uintptr_t)&a->op, 0);
	a->stopping = true;
}

/* Double the queue, keeping its order. */
static bool grow(coil_acceptor *a)
{
	int *fds = malloc(2 * a->cap * sizeof(int));

	if (!fds)
		return false;
	for (unsigned i = 0; i < a->count; i++)
		fds[i] = a->fds[(a->head + i) % a->cap];
	free(a->fds);
	a->fds = fds;
	a->head = 0;
	a->cap *= 2;
	return true;
}

static void queue_fd(coil_acceptor *a, int fd)
{
	if (a->count == a->cap && !grow(a)) {
		coil__log(COIL_LOG_ERROR, "acceptor on fd %d: out of memory, "
			  "closing an accepted connection", a->fd);
		close(fd);
		return;
	}
	a->fds[(a->head + a->count) % a->cap] = fd;
	a->count++;
	if (a->count >= a->backlog && a->armed && !a->stopping)
		stop(a);
}

static void accept_complete(coil_op *op, const struct io_uring_cqe *cqe)
{
	coil_acceptor *a = (coil_acceptor *)
		((char *)op - offsetof(coil_acceptor, op));

	if (cqe->res >= 0)
		queue_fd(a, cqe->res);
	else if (cqe->res != -ECANCELED || !a->stopping)
		a->error = cqe->res;
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		a->armed = false;
		a->stopping = false;
	}
	/* Once per dispatch, however many CQEs it brings. */
	if (a->waiter && (a->count || a->error || !a->armed))
		coil__wake_slot(&a->waiter);
}

int coil_acceptor_init(coil_acceptor *a, int fd, unsigned backlog)
{
	coil__loop *l = coil__this_loop;

	if (!a || backlog > BACKLOG_MAX)
		return -EINVAL;
	if (!l)
		return -EPERM;
	*a = (coil_acceptor){
		.op.complete = accept_complete,
		.loop = l,
		.fd = fd,
		.backlog = backlog ? backlog : BACKLOG_DEFAULT,
	};
	a->cap = 2 * a->backlog;
	a->fds = malloc(a->cap * sizeof(int));
	return a->fds ? 0 : -ENOMEM;
}

int coil_acceptor_accept(coil_acceptor *a, int64_t deadline)
{
	coil_task *self = coil__current();
	int ret;

	if (!self)
		return -EPERM;
	if (self->loop != a->loop)
		return -EXDEV;
	if (a->waiter)
		return -EBUSY;
	if (coil__cancel_pending(self))
		return -ECANCELED;
	while (!a->count) {
		if (a->error) {
			ret = a->error; /* once: a later call accepts again */
			a->error = 0;
			return ret;
		}
		if (a->loop->dead)
			return a->loop->dead;
		if (!a->armed)
			arm(a);
		ret = coil__park_slot(self, &a->waiter, deadline);
		if (ret < 0)
			return ret;
	}
	ret = a->fds[a->head];
	a->head = (a->head + 1) % a->cap;
	a->count--;
	return ret;
}

int coil_acceptor_destroy(coil_acceptor *a)
{
	coil_task *self = coil__current();

	if (!self)
		return -EPERM;
	if (self->loop != a->loop)
		return -EXDEV;
	if (a->waiter)
		return -EBUSY;
	if (a->armed && !a->loop->dead) {
		if (!a->stopping)
			stop(a);
		/* Uninterruptible: the op must end before a may go. */
		while (a->armed)
			coil__suspend_slot(self, &a->waiter);
	}
	while (a->count) {
		close(a->fds[a->head]);
		a->head = (a->head + 1) % a->cap;
		a->count--;
	}
	free(a->fds);
	a->fds = NULL;
	return 0;
}
