/*
 * Sleeping tasks and callback timers, both entries of the loop's timer heap.
 */
#include <errno.h>
#include <stddef.h>

#include "executor/loop.h"
#include "ring/log.h"

/* A sleep's deadline is its goal, not a failure. */
static void sleep_interrupt(coil_task *t, int reason)
{
	coil__wake(t, reason == -ETIMEDOUT ? 0 : reason);
}

int coil_sleep_until(int64_t deadline)
{
	coil_task *self = coil__current();
	int ret;

	if (!self)
		return -EPERM;
	ret = coil__park(self, deadline, sleep_interrupt, NULL);
	return ret == -ETIMEDOUT ? 0 : ret;
}

int coil_sleep(int64_t ns)
{
	int64_t now = coil_now();

	return coil_sleep_until(ns > COIL_NEVER - now ? COIL_NEVER : now + ns);
}

static void timer_fire(struct coil__timer *node)
{
	coil_timer *t = (coil_timer *)((char *)node - offsetof(coil_timer, node));

	t->fn(t, t->arg);
}

void coil_timer_init(coil_timer *timer, coil_timer_fn *fn, void *arg)
{
	*timer = (coil_timer){ .node.fire = timer_fire, .fn = fn, .arg = arg };
}

int coil_timer_arm(coil_timer *timer, int64_t deadline)
{
	coil__loop *l = coil__this_loop;

	if (!timer || !timer->fn)
		return -EINVAL;
	if (!l)
		return -EPERM;
	if (coil__timer_armed(&timer->node)) {
		if (timer->loop != l)
			return -EPERM;
		coil__timer_heap_remove(&l->timers, &timer->node);
	}
	timer->loop = l;
	/* Re-armed by a callback in the past: after the timers due now. */
	if (l->firing_at && deadline < l->firing_at)
		deadline = l->firing_at;
	return coil__timer_heap_add(&l->timers, &timer->node, deadline);
}

bool coil_timer_disarm(coil_timer *timer)
{
	if (!coil__timer_armed(&timer->node))
		return false;
	if (timer->loop != coil__this_loop) {
		coil__log(COIL_LOG_ERROR, "coil_timer_disarm: the timer is armed "
			  "on another thread's loop; left armed");
		return false;
	}
	return coil__timer_heap_remove(&timer->loop->timers, &timer->node);
}

bool coil_timer_armed(const coil_timer *timer)
{
	return coil__timer_armed(&timer->node);
}
