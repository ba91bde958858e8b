/*
 * Parking on primitives: FIFO wait queues, select over several, and the
 * object header that reports misuse by name.
 */
#include <errno.h>
#include <stdio.h>

#include "primitives/waitq.h"
#include "ring/log.h"

#define PRIM_LIVE COIL__PRIM_LIVE
#define PRIM_DEAD 0x64656164u /* "dead" */

void coil__waitq_link(coil__waitq *q, struct coil__waiter *w)
{
	w->queue = q;
	w->next = NULL;
	w->prev = q->tail;
	if (q->tail)
		q->tail->next = w;
	else
		q->head = w;
	q->tail = w;
}

void coil__waitq_unlink(struct coil__waiter *w)
{
	coil__waitq *q = w->queue;

	if (!q)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		q->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		q->tail = w->prev;
	w->queue = NULL;
	w->prev = w->next = NULL;
}

static void unlink_cases(struct coil__select *s)
{
	for (unsigned i = 0; i < s->n; i++)
		coil__waitq_unlink(&s->cases[i]);
}

void coil__waiter_wake(struct coil__waiter *w, int result)
{
	if (w->select) {
		w->select->fired = (int)w->index;
		unlink_cases(w->select);
	} else {
		coil__waitq_unlink(w);
	}
	coil__wake(w->task, result);
}

unsigned coil__waitq_wake_all(coil__waitq *q, int result)
{
	unsigned n = 0;

	while (q->head) {
		coil__waiter_wake(q->head, result);
		n++;
	}
	return n;
}

/* On the deadline or a cancel: leave the queue, wake with the reason. */
static void waiter_interrupt(coil_task *t, int reason)
{
	struct coil__waiter *w = t->wait;

	coil__waitq_unlink(w);
	coil__wake(t, reason);
}

int coil__waitq_park(coil__waitq *q, struct coil__waiter *w, void *data,
		     int64_t deadline)
{
	coil_task *self = coil__current();
	int ret;

	*w = (struct coil__waiter){ .task = self, .data = data };
	coil__waitq_link(q, w);
	ret = coil__park(self, deadline, waiter_interrupt, w);
	coil__waitq_unlink(w); /* when coil__park returned without parking */
	return ret;
}

static void select_interrupt(coil_task *t, int reason)
{
	unlink_cases(t->wait);
	coil__wake(t, reason);
}

int coil__select_park(struct coil__select *s, int64_t deadline)
{
	int ret;

	s->fired = -1;
	ret = coil__park(coil__current(), deadline, select_interrupt, s);
	unlink_cases(s);
	return ret;
}

int coil__prim_init(coil__prim *p, const char *kind, const char *name)
{
	*p = (coil__prim){ .kind = kind, .name = name ? name : "",
			   .magic = PRIM_LIVE };
	coil__prim_bind(p, coil__this_loop);
	return 0;
}

const char *coil__prim_describe(const coil__prim *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s '%s'", p->kind ? p->kind : "object",
		 p->name ? p->name : "");
	return buf;
}

int coil__prim_check(coil__prim *p, const char *call)
{
	coil__loop *l = coil__this_loop;
	char desc[96];

	if (p->magic != PRIM_LIVE) {
		coil__log(COIL_LOG_ERROR, "%s on %s", call,
			  p->magic == PRIM_DEAD ? "a destroyed object"
						: "an object never initialised");
		return -EINVAL;
	}
	if (!p->loop)
		coil__prim_bind(p, l);
	if (coil__prim_ok(p))
		return 0;
	coil__log(COIL_LOG_ERROR, "%s on %s from %s", call,
		  coil__prim_describe(p, desc, sizeof(desc)),
		  !l		  ? "a thread with no loop"
		  : p->loop == l ? "a later loop (its own has ended)"
				 : "a loop that does not own it");
	return -EXDEV;
}

int coil__prim_destroy(coil__prim *p, const char *call, bool busy)
{
	char desc[96];

	if (p->magic != PRIM_LIVE) {
		coil__log(COIL_LOG_ERROR, "%s on %s", call,
			  p->magic == PRIM_DEAD ? "an object destroyed already"
						: "an object never initialised");
		return -EINVAL;
	}
	if (busy) {
		coil__log(COIL_LOG_ERROR, "%s on %s while tasks wait on it",
			  call, coil__prim_describe(p, desc, sizeof(desc)));
		return -EBUSY;
	}
	p->magic = PRIM_DEAD;
	return 0;
}
