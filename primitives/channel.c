/*
 * Channel: a ring of items with queues of parked senders and receivers.
 *
 * Items move in one step wherever they can: a sender finding a receiver
 * parked copies straight into the receiver's buffer; a receiver finding
 * senders parked on a full ring takes the oldest item and moves the first
 * sender's item in behind the others (or, at capacity 0, takes the
 * sender's item directly). So a woken task never has to try again, and a
 * task arriving meanwhile cannot overtake the ones parked before it.
 * Receivers park only while the ring is empty and no sender is parked;
 * senders only while the ring is full and no receiver is parked.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "primitives/waitq.h"
#include "ring/log.h"

/* coil__prim_check, with its common case inline: it was a tenth of a ping-pong. */
static inline int prim_check(coil__prim *p, const char *call)
{
	if (__builtin_expect(coil__prim_ok(p), 1))
		return 0;
	return coil__prim_check(p, call);
}

/* The common sizes inline as a move; the others call memcpy. */
static inline void copy_item(void *dst, const void *src, size_t size)
{
	if (size == sizeof(uint64_t))
		memcpy(dst, src, sizeof(uint64_t));
	else
		memcpy(dst, src, size);
}

static inline void push(coil_chan *c, const void *item)
{
	unsigned tail = c->head + c->len;

	if (tail >= c->cap)
		tail -= c->cap;
	copy_item(c->ring + (size_t)tail * c->item_size, item, c->item_size);
	c->len++;
}

static inline void pop(coil_chan *c, void *item)
{
	copy_item(item, c->ring + (size_t)c->head * c->item_size, c->item_size);
	if (++c->head == c->cap)
		c->head = 0;
	c->len--;
}

int coil_chan_init(coil_chan *c, size_t item_size, unsigned capacity,
		   const char *name)
{
	*c = (coil_chan){ .item_size = item_size, .cap = capacity };
	if (!item_size || (capacity && item_size > SIZE_MAX / capacity))
		return -EINVAL;
	if (capacity) {
		c->ring = malloc(item_size * capacity);
		if (!c->ring)
			return -ENOMEM;
	}
	return coil__prim_init(&c->prim, "channel", name);
}

int coil_chan_destroy(coil_chan *c)
{
	int ret = coil__prim_destroy(&c->prim, "coil_chan_destroy",
				     !coil__waitq_empty(&c->senders) ||
				     !coil__waitq_empty(&c->receivers) ||
				     !coil__waitq_empty(&c->joiners));

	if (ret == 0) {
		free(c->ring);
		c->ring = NULL;
	}
	return ret;
}

/* Without parking: 0, -EPIPE (closed) or -EAGAIN (it would have to wait). */
static inline int try_send(coil_chan *c, const void *item)
{
	struct coil__waiter *w = coil__waitq_first(&c->receivers);

	if (c->closed)
		return -EPIPE;
	if (w) {
		copy_item(w->data, item, c->item_size);
		c->undone++;
		coil__waiter_wake(w, 0);
		return 0;
	}
	if (c->len == c->cap)
		return -EAGAIN;
	push(c, item);
	return 0;
}

static inline int try_recv(coil_chan *c, void *item)
{
	struct coil__waiter *w = coil__waitq_first(&c->senders);

	if (c->len) {
		pop(c, item);
		if (w) {
			push(c, w->data);
			coil__waiter_wake(w, 0);
		}
	} else if (w) {
		copy_item(item, w->data, c->item_size);
		coil__waiter_wake(w, 0);
	} else {
		return c->closed ? -EPIPE : -EAGAIN;
	}
	c->undone++;
	return 0;
}

/* For select: the same, out of line. */
int coil__chan_try_send(coil_chan *c, const void *item)
{
	return try_send(c, item);
}

int coil__chan_try_recv(coil_chan *c, void *item)
{
	return try_recv(c, item);
}

/* The checks of a parking call: 0 and the calling task, or the error. */

int coil_chan_send(coil_chan *c, const void *item, int64_t deadline)
{
	struct coil__waiter w;
	coil_task *self;
	int ret = coil__park_check(&c->prim, "coil_chan_send", &self);

	if (ret < 0)
		return ret;
	ret = try_send(c, item);
	if (ret != -EAGAIN)
		return ret;
	/* A receiver takes the item from w.data before it wakes us with 0. */
	return coil__waitq_park(&c->senders, &w, (void *)item, deadline);
}

int coil_chan_recv(coil_chan *c, void *item, int64_t deadline)
{
	struct coil__waiter w;
	coil_task *self;
	int ret = coil__park_check(&c->prim, "coil_chan_recv", &self);

	if (ret < 0)
		return ret;
	ret = try_recv(c, item);
	if (ret != -EAGAIN)
		return ret;
	/* A sender copies into w.data before it wakes us with 0. */
	return coil__waitq_park(&c->receivers, &w, item, deadline);
}

int coil_chan_try_send(coil_chan *c, const void *item)
{
	int ret = prim_check(&c->prim, "coil_chan_try_send");

	return ret < 0 ? ret : try_send(c, item);
}

int coil_chan_try_recv(coil_chan *c, void *item)
{
	int ret = prim_check(&c->prim, "coil_chan_try_recv");

	return ret < 0 ? ret : try_recv(c, item);
}

int coil_chan_close(coil_chan *c)
{
	int ret = coil__prim_check(&c->prim, "coil_chan_close");

	if (ret < 0)
		return ret;
	if (c->closed)
		return -EALREADY;
	c->closed = true;
	/* Receivers park only on an empty ring: nothing is left for them. */
	coil__waitq_wake_all(&c->senders, -EPIPE);
	coil__waitq_wake_all(&c->receivers, -EPIPE);
	return 0;
}

unsigned coil_chan_len(const coil_chan *c)
{
	return c->len;
}

int coil_chan_task_done(coil_chan *c)
{
	char desc[96];
	int ret = coil__prim_check(&c->prim, "coil_chan_task_done");

	if (ret < 0)
		return ret;
	if (!c->undone) {
		coil__log(COIL_LOG_ERROR, "coil_chan_task_done on %s called more "
			  "often than items were received",
			  coil__prim_describe(&c->prim, desc, sizeof(desc)));
		return -EINVAL;
	}
	if (!--c->undone && !c->len)
		coil__waitq_wake_all(&c->joiners, 0);
	return 0;
}

int coil_chan_join(coil_chan *c, int64_t deadline)
{
	struct coil__waiter w;
	coil_task *self;
	int ret = coil__park_check(&c->prim, "coil_chan_join", &self);

	if (ret < 0)
		return ret;
	if (!c->len && !c->undone)
		return 0;
	return coil__waitq_park(&c->joiners, &w, NULL, deadline);
}
