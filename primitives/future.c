/*
 * Future: a one-shot outcome that any thread may set and the future's own
 * loop delivers (wakes the waiters, runs the callbacks).
 *
 * Everything other threads may race on is in one atomic word, state: a
 * magic number (so a resolver on another thread can tell a destroyed or
 * never initialised future without touching the loop's fields), the phase,
 * and two flags. A resolver claims the future with a compare-and-swap
 * (PENDING -> CLAIMED: exactly one wins), writes the outcome, then
 * publishes DONE with a release store, so whoever sees DONE sees the
 * outcome.
 *
 * BOUND says a loop owns the future, and is set by that loop with a
 * compare-and-swap on the same word: a resolver's claim and a loop's
 * binding are then ordered, and a resolver that claimed an unbound future
 * knows no task can be waiting (a loop binding meanwhile waits for the
 * claim to finish, and finds it DONE). A resolver that is not on the
 * owning loop sets QUEUED and posts the future's own wake-up node to that
 * loop (executor/remote.c); after the post it never touches the future
 * again. The loop delivers it and sets delivered, its own plain field.
 */
#include <errno.h>
#include <sched.h>
#include <stddef.h>

#include "primitives/waitq.h"
#include "ring/log.h"

#define MAGIC      0x46750000u /* "Fu" */
#define MAGIC_MASK 0xffff0000u
#define PHASE      3u
#define PENDING    0u
#define CLAIMED    1u /* a resolver won and is writing the outcome */
#define DONE       2u
#define DEAD       3u
#define BOUND      4u /* prim.loop is set: a resolver elsewhere must post */
#define QUEUED     8u /* done elsewhere: its wake-up is posted to the loop */

static inline uint32_t state(const coil_future *f)
{
	return __atomic_load_n(&f->state, __ATOMIC_ACQUIRE);
}

static inline bool live(uint32_t s)
{
	return (s & MAGIC_MASK) == MAGIC && (s & PHASE) != DEAD;
}

static int invalid(const coil_future *f, uint32_t s, const char *call)
{
	char desc[96];

	if ((s & MAGIC_MASK) != MAGIC)
		coil__log(COIL_LOG_ERROR, "%s on an object never initialised", call);
	else
		coil__log(COIL_LOG_ERROR, "%s on %s, destroyed already", call,
			  coil__prim_describe(&f->prim, desc, sizeof(desc)));
	return -EINVAL;
}

static void cb_append(struct coil__callbacks *list, coil_future_callback *cb)
{
	cb->list = list;
	cb->next = NULL;
	cb->prev = list->tail;
	if (list->tail)
		list->tail->next = cb;
	else
		list->head = cb;
	list->tail = cb;
}

static void cb_unlink(coil_future_callback *cb)
{
	struct coil__callbacks *list = cb->list;

	if (cb->prev)
		cb->prev->next = cb->next;
	else
		list->head = cb->next;
	if (cb->next)
		cb->next->prev = cb->prev;
	else
		list->tail = cb->prev;
	cb->list = NULL;
}

/* Whether cb is in one of f's lists (cb may be memory never registered). */
static struct coil__callbacks *cb_find(coil_future *f, coil_future_callback *cb)
{
	if (cb->list != &f->callbacks && cb->list != &f->running)
		return NULL;
	for (coil_future_callback *c = cb->list->head; c; c = c->next)
		if (c == cb)
			return cb->list;
	return NULL;
}

/*
 * On the owning loop: wake the waiters, then run the callbacks. f is not
 * read after the last callback returns: that one may have freed it.
 */
static void deliver(coil_future *f)
{
	coil__loop *l = f->prim.loop;
	coil_future_callback *cb;
	bool last;

	f->delivered = true;
	f->running = f->callbacks;
	f->callbacks = (struct coil__callbacks){ 0 };
	for (cb = f->running.head; cb; cb = cb->next) {
		cb->list = &f->running;
		coil__remote_wait_end(l);
	}
	coil__waitq_wake_all(&f->waiters, 0);
	while ((cb = f->running.head)) {
		cb_unlink(cb);
		last = !f->running.head;
		cb->fn(f, cb->arg);
		if (last)
			break;
	}
}

static void deliver_remote(struct coil__remote *node)
{
	deliver((coil_future *)((char *)node - offsetof(coil_future, remote)));
}

int coil_future_init(coil_future *f, const char *name)
{
	coil__loop *l = coil__this_loop;

	/* Field by field: zeroing the whole struct costs a rep stos, 10 ns here. */
	f->waiters = (coil__waitq){ 0 };
	f->callbacks = f->running = (struct coil__callbacks){ 0 };
	f->value = NULL;
	f->err = 0;
	f->delivered = false;
	f->remote.run = deliver_remote;
	coil__prim_init(&f->prim, "future", name);
	__atomic_store_n(&f->state, MAGIC | PENDING | (l ? BOUND : 0),
			 __ATOMIC_RELEASE);
	return 0;
}

/*
 * Make l the owner of f, first used here. A claim in progress finishes
 * first: its resolver saw no loop, so it will not post, and f is DONE.
 */
static void bind_loop(coil_future *f, coil__loop *l)
{
	uint32_t s = state(f);

	coil__prim_bind(&f->prim, l); /* published to resolvers by the BOUND swap */
	while ((s & MAGIC_MASK) == MAGIC && !(s & BOUND)) {
		if ((s & PHASE) == CLAIMED) {
			sched_yield();
			s = state(f);
		} else if ((s & PHASE) != PENDING ||
			   __atomic_compare_exchange_n(&f->state, &s, s | BOUND, false,
						       __ATOMIC_ACQ_REL,
						       __ATOMIC_ACQUIRE)) {
			return;
		}
	}
}

/* A destroyed future is named in the message: its memory is still one. */
static int check_dead(coil_future *f, uint32_t s, const char *call)
{
	if ((s & MAGIC_MASK) == MAGIC && (s & PHASE) == DEAD)
		return invalid(f, s, call);
	return coil__prim_check(&f->prim, call);
}

int coil__future_check(coil_future *f, const char *call)
{
	coil__loop *l = coil__this_loop;
	uint32_t s = state(f);

	if (l && !f->prim.loop && live(s))
		bind_loop(f, l);
	return check_dead(f, s, call);
}

static int complete(coil_future *f, void *value, int err, const char *call)
{
	uint32_t s = state(f);
	coil__loop *l;

	do {
		if (!live(s))
			return invalid(f, s, call);
		if ((s & PHASE) != PENDING)
			return -EALREADY;
	} while (!__atomic_compare_exchange_n(&f->state, &s, (s & ~PHASE) | CLAIMED,
					      false, __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	f->value = value;
	f->err = err;
	if (!(s & BOUND)) {
		/* No loop has seen f: nothing waits on it. */
		__atomic_store_n(&f->state, MAGIC | DONE, __ATOMIC_RELEASE);
		return 0;
	}
	l = f->prim.loop;
	if (l == coil__this_loop) {
		__atomic_store_n(&f->state, MAGIC | BOUND | DONE, __ATOMIC_RELEASE);
		deliver(f);
		return 0;
	}
	__atomic_store_n(&f->state, MAGIC | BOUND | DONE | QUEUED, __ATOMIC_RELEASE);
	coil__remote_post(l, &f->remote);
	return 0;
}

int coil_future_resolve(coil_future *f, void *value)
{
	return complete(f, value, 0, "coil_future_resolve");
}

int coil_future_fail(coil_future *f, int err)
{
	if (err >= 0)
		return -EINVAL;
	return complete(f, NULL, err, "coil_future_fail");
}

int coil_future_cancel(coil_future *f)
{
	return complete(f, NULL, -ECANCELED, "coil_future_cancel");
}

/*
 * Deliver f's wake-up, posted by another thread, now. The resolver lets go
 * of f once the post is done, and that is at most a few instructions away.
 */
static void settle(coil_future *f, uint32_t s)
{
	while ((s & QUEUED) && !f->delivered) {
		coil__inbox_drain(f->prim.loop);
		if (!f->delivered)
			sched_yield();
	}
}

int coil_future_destroy(coil_future *f)
{
	uint32_t s = state(f);
	char desc[96];
	int ret;

	/* A future no loop ever used may go anywhere: nothing waits on it. */
	if (coil__this_loop || f->prim.loop || !live(s)) {
		ret = check_dead(f, s, "coil_future_destroy");
		if (ret < 0)
			return ret;
	}
	/* Done elsewhere: its waiters and callbacks are as good as run. */
	settle(f, s);
	if (!coil__waitq_empty(&f->waiters))
		return coil__prim_destroy(&f->prim, "coil_future_destroy", true);
	if (f->callbacks.head) {
		coil__log(COIL_LOG_ERROR, "coil_future_destroy on %s while "
			  "callbacks wait on it",
			  coil__prim_describe(&f->prim, desc, sizeof(desc)));
		return -EBUSY;
	}
	/*
	 * From DEAD on, resolvers fail; one that claimed first is let finish.
	 * Once DONE, no resolver writes the word again: a store will do.
	 */
	for (;;) {
		if ((s & PHASE) == DONE) {
			__atomic_store_n(&f->state, MAGIC | DEAD, __ATOMIC_RELEASE);
			break;
		}
		if ((s & PHASE) == CLAIMED) {
			sched_yield();
			s = state(f);
		} else if (__atomic_compare_exchange_n(&f->state, &s, MAGIC | DEAD, false,
						       __ATOMIC_ACQ_REL,
						       __ATOMIC_ACQUIRE)) {
			break;
		}
	}
	/* Claimed meanwhile: nothing waits, but its post must be in first. */
	settle(f, s);
	return coil__prim_destroy(&f->prim, "coil_future_destroy", false);
}

int coil_future_await(coil_future *f, int64_t deadline)
{
	coil_task *self = coil__current();
	struct coil__waiter w;
	uint32_t s;
	int ret = coil__future_check(f, "coil_future_await");

	if (ret < 0)
		return ret;
	if (!self)
		return -EPERM;
	if (coil__cancel_pending(self))
		return -ECANCELED;
	s = state(f);
	if ((s & PHASE) == DONE) {
		/* Its wake-up lives in f: in before the caller may let f go. */
		settle(f, s);
		return 0;
	}
	/* Claimed or pending, f is bound: its resolver will post the wake-up. */
	coil__remote_wait_begin(self->loop);
	ret = coil__waitq_park(&f->waiters, &w, NULL, deadline);
	coil__remote_wait_end(self->loop);
	return ret;
}

int coil_future_result(const coil_future *f, void **value)
{
	uint32_t s = state(f);

	if (!live(s))
		return invalid(f, s, "coil_future_result");
	if ((s & PHASE) != DONE)
		return -EAGAIN;
	if (value)
		*value = f->value;
	return f->err;
}

bool coil_future_done(const coil_future *f)
{
	uint32_t s = state(f);

	return live(s) && (s & PHASE) == DONE;
}

int coil_future_on_done(coil_future *f, coil_future_callback *cb,
			coil_future_fn *fn, void *arg)
{
	uint32_t s;
	int ret = coil__future_check(f, "coil_future_on_done");

	if (ret < 0)
		return ret;
	if (!cb || !fn)
		return -EINVAL;
	if (cb_find(f, cb))
		return -EBUSY;
	cb->fn = fn;
	cb->arg = arg;
	s = state(f);
	/* Done, and delivered or never to be: now. Else in turn, after the others. */
	if ((s & PHASE) == DONE && !((s & QUEUED) && !f->delivered)) {
		cb->list = NULL;
		fn(f, arg);
		return 0;
	}
	cb_append(&f->callbacks, cb);
	coil__remote_wait_begin(f->prim.loop);
	return 0;
}

int coil_future_off_done(coil_future *f, coil_future_callback *cb)
{
	struct coil__callbacks *list;
	int ret = coil__future_check(f, "coil_future_off_done");

	if (ret < 0)
		return ret;
	if (!cb)
		return -EINVAL;
	list = cb_find(f, cb);
	if (!list)
		return -ENOENT;
	cb_unlink(cb);
	if (list == &f->callbacks)
		coil__remote_wait_end(f->prim.loop);
	return 0;
}
