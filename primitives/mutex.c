/*
 * Mutex with an owner. Unlocking hands ownership to the first waiter, as
 * the semaphore hands over its permit, so waiters get it in order.
 */
#include <errno.h>

#include "primitives/waitq.h"
#include "ring/log.h"

int coil_mutex_init(coil_mutex *m, const char *name)
{
	m->waiters = (coil__waitq){ 0 };
	m->owner = NULL;
	return coil__prim_init(&m->prim, "mutex", name);
}

int coil_mutex_destroy(coil_mutex *m)
{
	char desc[96], owner[64];
	int ret = coil__prim_destroy(&m->prim, "coil_mutex_destroy",
				     m->owner || !coil__waitq_empty(&m->waiters));

	if (ret == -EBUSY && m->owner)
		coil__log(COIL_LOG_ERROR, "%s is held by task %s",
			  coil__prim_describe(&m->prim, desc, sizeof(desc)),
			  coil__task_describe(m->owner, owner, sizeof(owner)));
	return ret;
}

/* The calling task, once m passed its checks; or the error. */
static int check(coil_mutex *m, const char *call, coil_task **self)
{
	int ret = coil__prim_check(&m->prim, call);

	if (ret < 0)
		return ret;
	*self = coil__current();
	if (!*self)
		return -EPERM;
	return *self == m->owner ? -EDEADLK : 0;
}

int coil_mutex_lock(coil_mutex *m, int64_t deadline)
{
	struct coil__waiter w;
	coil_task *self;
	int ret = check(m, "coil_mutex_lock", &self);

	if (ret < 0)
		return ret;
	if (coil__cancel_pending(self))
		return -ECANCELED;
	if (!m->owner) {
		m->owner = self;
		return 0;
	}
	/* On 0, coil_mutex_unlock made this task the owner. */
	return coil__waitq_park(&m->waiters, &w, NULL, deadline);
}

int coil_mutex_try_lock(coil_mutex *m)
{
	coil_task *self;
	int ret = check(m, "coil_mutex_try_lock", &self);

	if (ret < 0)
		return ret;
	if (m->owner)
		return -EBUSY;
	m->owner = self;
	return 0;
}

int coil_mutex_unlock(coil_mutex *m)
{
	struct coil__waiter *w;
	char desc[96];
	int ret = coil__prim_check(&m->prim, "coil_mutex_unlock");

	if (ret < 0)
		return ret;
	if (!m->owner || m->owner != coil__current()) {
		coil__log(COIL_LOG_ERROR, "coil_mutex_unlock on %s, %s",
			  coil__prim_describe(&m->prim, desc, sizeof(desc)),
			  !m->owner ? "which is not locked"
				    : "which the caller does not hold");
		return -EPERM;
	}
	w = coil__waitq_first(&m->waiters);
	m->owner = w ? w->task : NULL;
	if (w)
		coil__waiter_wake(w, 0);
	return 0;
}
