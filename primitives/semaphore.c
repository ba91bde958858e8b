/*
 * Counting semaphore. A release hands its permit to the first waiter
 * directly instead of adding it to the count: a task that arrives between
 * the release and the waiter's turn to run finds the count at zero and
 * queues behind it, so permits go strictly in the order tasks asked.
 */
#include <errno.h>
#include <limits.h>

#include "primitives/waitq.h"

int coil_sem_init(coil_sem *s, unsigned count, const char *name)
{
	s->waiters = (coil__waitq){ 0 };
	s->count = count;
	return coil__prim_init(&s->prim, "semaphore", name);
}

int coil_sem_destroy(coil_sem *s)
{
	return coil__prim_destroy(&s->prim, "coil_sem_destroy",
				  !coil__waitq_empty(&s->waiters));
}

int coil_sem_acquire(coil_sem *s, int64_t deadline)
{
	struct coil__waiter w;
	coil_task *self;
	int ret = coil__park_check(&s->prim, "coil_sem_acquire", &self);

	if (ret < 0)
		return ret;
	/* Waiters exist only while the count is zero (see coil_sem_release). */
	if (s->count) {
		s->count--;
		return 0;
	}
	return coil__waitq_park(&s->waiters, &w, NULL, deadline);
}

int coil_sem_try_acquire(coil_sem *s)
{
	int ret = coil__prim_check(&s->prim, "coil_sem_try_acquire");

	if (ret < 0)
		return ret;
	if (!s->count)
		return -EAGAIN;
	s->count--;
	return 0;
}

int coil_sem_release(coil_sem *s)
{
	struct coil__waiter *w;
	int ret = coil__prim_check(&s->prim, "coil_sem_release");

	if (ret < 0)
		return ret;
	w = coil__waitq_first(&s->waiters);
	if (w) {
		coil__waiter_wake(w, 0);
		return 0;
	}
	if (s->count == UINT_MAX)
		return -EOVERFLOW;
	s->count++;
	return 0;
}

unsigned coil_sem_value(const coil_sem *s)
{
	return s->count;
}
