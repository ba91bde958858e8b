/*
 * Select: one waiter per case, each on its object's queue (a join case
 * watches its task instead), all parked at once with coil__select_park.
 * The first object to act on a case does that case's work for it (a
 * channel hands the item over) and unlinks the others, so exactly one case
 * fires and the others take nothing.
 */
#include <errno.h>
#include <stddef.h>

#include "primitives/waitq.h"

#define container_of(p, type, member)                                          \
	((type *)((char *)(p) - offsetof(type, member)))

#define SELECT_MAX 64

/* primitives/channel.c: send and receive without parking, or -EAGAIN. */
int coil__chan_try_send(coil_chan *c, const void *item);
int coil__chan_try_recv(coil_chan *c, void *item);

/* A join case watches its task; its waiter is linked to no queue. */
struct join_watch {
	struct coil__task_watch watch;
	struct coil__waiter *w;
};

static int check_case(const coil_select_case *sc, coil_task *self)
{
	switch (sc->kind) {
	case COIL_SELECT_RECV:
	case COIL_SELECT_SEND:
		return sc->chan ? coil__prim_check(&sc->chan->prim, "coil_select")
				: -EINVAL;
	case COIL_SELECT_EVENT:
		return sc->event ? coil__prim_check(&sc->event->prim, "coil_select")
				 : -EINVAL;
	case COIL_SELECT_FUTURE:
		return sc->future ? coil__future_check(sc->future, "coil_select")
				  : -EINVAL;
	case COIL_SELECT_JOIN:
		return coil__join_refusal(sc->task, self);
	case COIL_SELECT_TIMER:
		return 0;
	}
	return -EINVAL;
}

/* Fire sc if it is ready now; whether it was. */
static bool poll_case(coil_select_case *sc, int64_t now)
{
	int ret = 0;

	switch (sc->kind) {
	case COIL_SELECT_RECV:
		ret = coil__chan_try_recv(sc->chan, sc->item);
		break;
	case COIL_SELECT_SEND:
		ret = coil__chan_try_send(sc->chan, sc->item);
		break;
	case COIL_SELECT_FUTURE:
		if (!coil_future_done(sc->future))
			return false;
		break;
	case COIL_SELECT_EVENT:
		if (!sc->event->set)
			return false;
		break;
	case COIL_SELECT_JOIN:
		if (!coil__task_ended(sc->task))
			return false;
		ret = sc->task->status;
		coil__task_release(sc->task);
		break;
	case COIL_SELECT_TIMER:
		if (sc->at > now)
			return false;
		break;
	}
	if (ret == -EAGAIN && sc->kind <= COIL_SELECT_SEND)
		return false;
	sc->result = ret;
	return true;
}

/* A join case's task ended: fire the case, unless another fired first. */
static void join_ended(struct coil__task_watch *watch, coil_task *t)
{
	struct coil__waiter *w = container_of(watch, struct join_watch, watch)->w;

	(void)t;
	/* Woken already: it unwatches before it could park again. */
	if (w->task->flags & TASK_PARKED)
		coil__waiter_wake(w, 0);
}

int coil_select(coil_select_case *cases, unsigned n, int64_t deadline)
{
	coil_task *self = coil__current();
	struct coil__select s;
	int64_t now, wake_at = deadline;
	int ret, timer = -1;
	unsigned i;

	if (!cases || !n || n > SELECT_MAX)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ret = self ? check_case(&cases[i], self) : 0;
		if (ret < 0)
			return ret;
	}
	if (!self)
		return -EPERM;
	if (coil__cancel_pending(self))
		return -ECANCELED;
	/* The clock only for timer cases: nothing else asks the time. */
	now = 0;
	for (i = 0; i < n && !now; i++)
		if (cases[i].kind == COIL_SELECT_TIMER)
			now = coil_now();
	for (i = 0; i < n; i++)
		if (poll_case(&cases[i], now))
			return (int)i;

	/* Bounded by SELECT_MAX: at most 4.5 KiB of the task's stack. */
	struct coil__waiter waiters[n];
	struct join_watch watches[n];

	s = (struct coil__select){ .cases = waiters, .n = n };
	for (i = 0; i < n; i++) {
		coil_select_case *sc = &cases[i];
		struct coil__waiter *w = &waiters[i];

		*w = (struct coil__waiter){ .task = self, .select = &s,
					    .data = sc->item, .index = i };
		switch (sc->kind) {
		case COIL_SELECT_RECV:
			coil__waitq_link(&sc->chan->receivers, w);
			break;
		case COIL_SELECT_SEND:
			coil__waitq_link(&sc->chan->senders, w);
			break;
		case COIL_SELECT_FUTURE:
			/* Another thread may resolve it: not a deadlock. */
			coil__remote_wait_begin(self->loop);
			coil__waitq_link(&sc->future->waiters, w);
			break;
		case COIL_SELECT_EVENT:
			coil__waitq_link(&sc->event->waiters, w);
			break;
		case COIL_SELECT_JOIN:
			watches[i] = (struct join_watch){ .watch.ended = join_ended,
							  .w = w };
			coil__task_watch(sc->task, &watches[i].watch);
			sc->task->flags |= TASK_CLAIMED; /* no join meanwhile */
			break;
		case COIL_SELECT_TIMER:
			if (timer < 0 || sc->at < cases[timer].at)
				timer = (int)i;
			break;
		}
	}
	if (timer >= 0 && cases[timer].at < wake_at)
		wake_at = cases[timer].at;
	ret = coil__select_park(&s, wake_at);
	for (i = 0; i < n; i++) {
		if (cases[i].kind == COIL_SELECT_JOIN) {
			coil__task_unwatch(cases[i].task, &watches[i].watch);
			cases[i].task->flags &= ~TASK_CLAIMED;
		} else if (cases[i].kind == COIL_SELECT_FUTURE) {
			coil__remote_wait_end(self->loop);
		}
	}
	if (s.fired >= 0) {
		/* A join case's task is ended: poll_case releases it. */
		if (cases[s.fired].kind == COIL_SELECT_JOIN)
			poll_case(&cases[s.fired], now);
		else
			cases[s.fired].result = ret;
		return s.fired;
	}
	if (ret == -ETIMEDOUT && timer >= 0 && cases[timer].at <= deadline) {
		cases[timer].result = 0;
		return timer;
	}
	return ret;
}
