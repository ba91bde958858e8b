/*
 * What every primitive is built on: a FIFO of parked tasks (coil__waitq)
 * and the object header that catches misuse (coil__prim).
 *
 * A waiter lives in the parking task's frame. A task parks on one queue
 * (coil__waitq_park) or, in a select, on several at once with one waiter
 * per case (coil__select_park). Whoever wakes a waiter first does the
 * primitive's work for it (hands over the permit, copies the message),
 * then calls coil__waiter_wake: that unlinks it, and for a select case
 * unlinks its sibling cases too, so a queue never holds a waiter whose task
 * is no longer waiting there.
 */
#ifndef COIL_PRIMITIVES_WAITQ_H
#define COIL_PRIMITIVES_WAITQ_H

#include "coil.h"
#include "executor/loop.h"

struct coil__select;

struct coil__waiter {
	struct coil__waiter *prev, *next;
	coil__waitq *queue;          /* NULL while not linked */
	coil_task *task;
	struct coil__select *select; /* the select this is a case of, or NULL */
	void *data;                  /* the primitive's (a message to hand over) */
	unsigned index;              /* its case number in the select */
};

/* A task waiting on several queues at once: the cases of a select. */
struct coil__select {
	struct coil__waiter *cases;
	unsigned n;
	int fired; /* index of the case woken first, -1 until then */
};

static inline struct coil__waiter *coil__waitq_first(const coil__waitq *q)
{
	return q->head;
}

static inline bool coil__waitq_empty(const coil__waitq *q)
{
	return !q->head;
}

/* Append w (its task and data set by the caller) to q; unlink it. */
void coil__waitq_link(coil__waitq *q, struct coil__waiter *w);
void coil__waitq_unlink(struct coil__waiter *w);

/*
 * Park the running task self on q with w until coil__waiter_wake (returns
 * the result given there), the deadline (-ETIMEDOUT) or a cancel
 * (-ECANCELED); w has left q whenever this returns. w->data is kept.
 */
int coil__waitq_park(coil__waitq *q, struct coil__waiter *w, void *data,
		     int64_t deadline);

/*
 * Park self on every case of s, each already linked to its queue with
 * task = self, select = s and index set. Returns like coil__waitq_park;
 * s->fired tells which case woke it. Every case has left its queue when
 * this returns.
 */
int coil__select_park(struct coil__select *s, int64_t deadline);

/* Unlink w (and its sibling cases) and wake its task with result. */
void coil__waiter_wake(struct coil__waiter *w, int result);

/* Wake every waiter of q with result; returns how many. */
unsigned coil__waitq_wake_all(coil__waitq *q, int result);

/*
 * The object header. A primitive belongs to the loop running when it was
 * initialised, or, initialised outside any loop, to the first loop that
 * uses it.
 */
int coil__prim_init(coil__prim *p, const char *kind, const char *name);

#define COIL__PRIM_LIVE 0x6c697665u /* "live" */

/* The common case of coil__prim_check, inline: p is live and this loop's. */
static inline bool coil__prim_ok(const coil__prim *p)
{
	const coil__loop *l = coil__this_loop;

	return p->magic == COIL__PRIM_LIVE && l && p->loop == l &&
	       p->loop_gen == l->gen;
}

/* Make l the owner of p. */
static inline void coil__prim_bind(coil__prim *p, coil__loop *l)
{
	p->loop = l;
	p->loop_gen = l ? l->gen : 0;
}

/*
 * Check that p may be used by the calling thread's loop in call (a
 * function name, for the message): 0, or -EINVAL (never initialised, or
 * destroyed) or -EXDEV (another loop's, a loop that has ended, or no loop
 * here), each logged with the object's kind and name.
 */
int coil__prim_check(coil__prim *p, const char *call);

/*
 * The checks every parking call starts with: 0 and the running task in
 * *self, or the misuse error of coil__prim_check, -EPERM outside a task,
 * -ECANCELED in a cancelled task.
 */
static inline int coil__park_check(coil__prim *p, const char *call,
				   coil_task **self)
{
	int ret = __builtin_expect(coil__prim_ok(p), 1)
			  ? 0
			  : coil__prim_check(p, call);

	if (ret < 0)
		return ret;
	*self = coil__current();
	if (!*self)
		return -EPERM;
	return coil__cancel_pending(*self) ? -ECANCELED : 0;
}

/*
 * Mark p destroyed, unless busy (tasks are parked on it): then log and
 * return -EBUSY, leaving p usable. A second destroy returns -EINVAL.
 */
int coil__prim_destroy(coil__prim *p, const char *call, bool busy);

/* "event 'name'" for messages. */
const char *coil__prim_describe(const coil__prim *p, char *buf, size_t len);

#endif
