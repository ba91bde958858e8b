/*
 * Event: a flag with a queue of tasks waiting for it to be set.
 */
#include <errno.h>

#include "primitives/waitq.h"

int coil_event_init(coil_event *e, const char *name)
{
	e->waiters = (coil__waitq){ 0 };
	e->set = false;
	return coil__prim_init(&e->prim, "event", name);
}

int coil_event_destroy(coil_event *e)
{
	return coil__prim_destroy(&e->prim, "coil_event_destroy",
				  !coil__waitq_empty(&e->waiters));
}

int coil_event_set(coil_event *e)
{
	int ret = coil__prim_check(&e->prim, "coil_event_set");

	if (ret < 0)
		return ret;
	e->set = true;
	coil__waitq_wake_all(&e->waiters, 0);
	return 0;
}

int coil_event_clear(coil_event *e)
{
	int ret = coil__prim_check(&e->prim, "coil_event_clear");

	if (ret < 0)
		return ret;
	e->set = false;
	return 0;
}

bool coil_event_is_set(const coil_event *e)
{
	return e->set;
}

int coil_event_wait(coil_event *e, int64_t deadline)
{
	struct coil__waiter w;
	coil_task *self;
	int ret = coil__park_check(&e->prim, "coil_event_wait", &self);

	if (ret < 0)
		return ret;
	if (e->set)
		return 0;
	return coil__waitq_park(&e->waiters, &w, NULL, deadline);
}
