/*
 * Multishot receive: one armed IORING_OP_RECV that keeps delivering data
 * into buffers the kernel takes from the loop's provided-buffer ring. Each
 * stream queues the buffers it received, in order, until its task takes
 * them; the task gives each one back when done with it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "executor/io.h"
#include "executor/loop.h"
#include "ring/compat.h"

#define RECV_BUFFERS_DEFAULT 256
#define RECV_BUFFER_SIZE_DEFAULT 4096
#define NO_BUF (-1)

static int bufs_setup(coil__loop *l)
{
	unsigned n = l->recv_buffers;
	int ret;

	l->buf_next = calloc(n, sizeof(*l->buf_next));
	l->buf_len = calloc(n, sizeof(*l->buf_len));
	if (!l->buf_next || !l->buf_len) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = coil_bufring_init(&l->bufs, &l->ring, COIL_LOOP_BUF_GROUP, n,
				l->recv_buffer_size);
	if (ret == 0)
		return 0;
fail:
	free(l->buf_next);
	free(l->buf_len);
	l->buf_next = NULL;
	l->buf_len = NULL;
	return ret;
}

void coil__bufs_destroy(coil__loop *l)
{
	coil_bufring_exit(&l->bufs, &l->ring);
	free(l->buf_next);
	free(l->buf_len);
}

void coil__loop_bufs_opts(coil__loop *l, const coil_loop_opts *opts)
{
	l->recv_buffers = opts->recv_buffers ? opts->recv_buffers
					     : RECV_BUFFERS_DEFAULT;
	l->recv_buffer_size = opts->recv_buffer_size ? opts->recv_buffer_size
						     : RECV_BUFFER_SIZE_DEFAULT;
}

static void arm(coil_recv_stream *s)
{
	struct io_uring_sqe *sqe = coil_ring_sqe(&s->loop->ring, &s->op);

	io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = COIL_LOOP_BUF_GROUP;
	coil__sqe_fd(sqe, s->fd);
	s->armed = true;
}

static void push(coil_recv_stream *s, unsigned bid, unsigned len)
{
	coil__loop *l = s->loop;

	l->buf_next[bid] = NO_BUF;
	l->buf_len[bid] = len;
	if (s->tail == NO_BUF)
		s->head = (int32_t)bid;
	else
		l->buf_next[s->tail] = (int32_t)bid;
	s->tail = (int32_t)bid;
	l->bufs_out++;
}

static void give_back(coil__loop *l, unsigned bid)
{
	coil_bufring_give(&l->bufs, bid);
	l->bufs_out--;
	/* A stream that ran out of buffers waits for one: re-arm it. */
	if (l->starved) {
		coil_recv_stream *s = l->starved;

		l->starved = s->next_starved;
		s->starved = false;
		arm(s);
	}
}

static void starve(coil_recv_stream *s)
{
	coil__loop *l = s->loop;

	/* Buffers came back between the kernel's miss and now: try again. */
	if (l->bufs_out < l->recv_buffers) {
		arm(s);
		return;
	}
	s->starved = true;
	s->next_starved = l->starved;
	l->starved = s;
}

static void unstarve(coil_recv_stream *s)
{
	coil_recv_stream **p = &s->loop->starved;

	while (*p && *p != s)
		p = &(*p)->next_starved;
	if (*p)
		*p = s->next_starved;
	s->starved = false;
}

static void stream_complete(coil_op *op, const struct io_uring_cqe *cqe)
{
	coil_recv_stream *s = (coil_recv_stream *)
		((char *)op - offsetof(coil_recv_stream, op));

	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		if (cqe->res > 0) {
			coil__mark_defined(coil_bufring_buf(&s->loop->bufs, bid),
					   (size_t)cqe->res);
			push(s, bid, (unsigned)cqe->res);
		} else {
			coil_bufring_give(&s->loop->bufs, bid);
		}
	}
	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		s->armed = false;
		if (cqe->res == -ENOBUFS && !s->closing)
			starve(s); /* not the connection's error: re-arm later */
		else if (cqe->res <= 0 && !s->ended) {
			s->ended = true;
			s->end = s->closing ? -ECANCELED : cqe->res;
		}
		/* else the kernel stopped after data: re-armed on the next wait */
	}
	/* Once per dispatch, however many CQEs it brings. */
	if (s->waiter && (s->head != NO_BUF || s->ended || !s->armed))
		coil__wake_slot(&s->waiter);
}

int coil_recv_stream_init(coil_recv_stream *s, int fd)
{
	coil__loop *l = coil__this_loop;
	int ret;

	if (!s)
		return -EINVAL;
	if (!l)
		return -EPERM;
	if (l->dead)
		return l->dead;
	if (!l->bufs.br) {
		ret = bufs_setup(l);
		if (ret < 0)
			return ret;
	}
	*s = (coil_recv_stream){
		.op.complete = stream_complete,
		.loop = l,
		.fd = fd,
		.head = NO_BUF,
		.tail = NO_BUF,
	};
	return 0;
}

ssize_t coil_recv_stream_next(coil_recv_stream *s, coil_buf *buf,
			      int64_t deadline)
{
	coil_task *self = coil__current();
	coil__loop *l = s->loop;
	int ret;

	if (!self)
		return -EPERM;
	if (self->loop != l)
		return -EXDEV;
	if (s->waiter)
		return -EBUSY;
	if (coil__cancel_pending(self))
		return -ECANCELED;
	while (s->head == NO_BUF) {
		if (s->ended)
			return s->end;
		if (l->dead)
			return l->dead;
		if (!s->armed && !s->starved)
			arm(s);
		ret = coil__park_slot(self, &s->waiter, deadline);
		if (ret < 0)
			return ret;
	}
	unsigned bid = (unsigned)s->head;

	s->head = l->buf_next[bid];
	if (s->head == NO_BUF)
		s->tail = NO_BUF;
	*buf = (coil_buf){
		.data = coil_bufring_buf(&l->bufs, bid),
		.len = l->buf_len[bid],
		.bid = (uint16_t)bid,
		.loop = l,
	};
	return (ssize_t)buf->len;
}

void coil_buf_release(coil_buf *buf)
{
	if (!buf || !buf->loop)
		return;
	give_back(buf->loop, buf->bid);
	buf->loop = NULL;
	buf->data = NULL;
}

int coil_recv_stream_destroy(coil_recv_stream *s)
{
	coil_task *self = coil__current();
	coil__loop *l = s->loop;

	if (!self)
		return -EPERM;
	if (self->loop != l)
		return -EXDEV;
	if (s->waiter)
		return -EBUSY;
	if (s->starved)
		unstarve(s);
	if (s->armed && !l->dead) {
		struct io_uring_sqe *sqe = coil_ring_sqe(&l->ring, NULL);

		io_uring_prep_cancel64(sqe, (__u64)(uintptr_t)&s->op, 0);
		s->closing = true;
		/* Uninterruptible: the op must end before s may go. */
		while (s->armed)
			coil__suspend_slot(self, &s->waiter);
	}
	while (s->head != NO_BUF) {
		unsigned bid = (unsigned)s->head;

		s->head = l->buf_next[bid];
		give_back(l, bid);
	}
	s->tail = NO_BUF;
	s->ended = true;
	return 0;
}
