/*
 * Wait group (a count and the tasks waiting for it to reach zero) and
 * gather (wait for a list of tasks to end, through the executor's task-end
 * watchers).
 */
#include <errno.h>
#include <stdlib.h>

#include "primitives/waitq.h"
#include "ring/log.h"

int coil_wait_group_init(coil_wait_group *wg, const char *name)
{
	wg->waiters = (coil__waitq){ 0 };
	wg->count = 0;
	return coil__prim_init(&wg->prim, "wait group", name);
}

int coil_wait_group_destroy(coil_wait_group *wg)
{
	return coil__prim_destroy(&wg->prim, "coil_wait_group_destroy",
				  !coil__waitq_empty(&wg->waiters));
}

int coil_wait_group_add(coil_wait_group *wg, int n)
{
	char desc[96];
	int ret = coil__prim_check(&wg->prim, "coil_wait_group_add");

	if (ret < 0)
		return ret;
	if (wg->count + n < 0) {
		coil__log(COIL_LOG_ERROR, "%s: count %lld would go below zero by %d",
			  coil__prim_describe(&wg->prim, desc, sizeof(desc)),
			  (long long)wg->count, n);
		return -EINVAL;
	}
	wg->count += n;
	if (!wg->count)
		coil__waitq_wake_all(&wg->waiters, 0);
	return 0;
}

int coil_wait_group_done(coil_wait_group *wg)
{
	return coil_wait_group_add(wg, -1);
}

int coil_wait_group_wait(coil_wait_group *wg, int64_t deadline)
{
	struct coil__waiter w;
	coil_task *self;
	int ret = coil__park_check(&wg->prim, "coil_wait_group_wait", &self);

	if (ret < 0)
		return ret;
	if (!wg->count)
		return 0;
	return coil__waitq_park(&wg->waiters, &w, NULL, deadline);
}

/* ---- gather */

/* Up to this many tasks, the watches live in the gathering task's frame. */
#define GATHER_ON_STACK 32

struct gather {
	coil_task *self;
	unsigned left;      /* tasks not ended */
	bool fail_fast;
	bool failed;        /* a task failed: cancel the others */
	bool parked;        /* self is parked in coil_gather, not yet woken */
};

struct gather_watch {
	struct coil__task_watch watch;
	struct gather *g;
};

static void gather_wake(struct gather *g, int result)
{
	g->parked = false;
	coil__wake(g->self, result);
}

static void gather_ended(struct coil__task_watch *w, coil_task *t)
{
	struct gather *g = ((struct gather_watch *)w)->g;
	bool fail = g->fail_fast && !g->failed && t->status < 0;

	g->left--;
	g->failed |= fail;
	if (g->parked && (!g->left || fail))
		gather_wake(g, 0);
}

static void gather_interrupt(coil_task *self, int reason)
{
	gather_wake(self->wait, reason);
}

/*
 * The reasons coil_join has to refuse t. A task listed twice is found by
 * marking each one as joined by self while checking: nothing runs before
 * unmark_joined clears the marks, so no task can end and see one.
 */
static int gather_check(coil_task *t, coil_task *self)
{
	int ret;

	if (t && t->joiner == self)
		return -EINVAL; /* listed twice */
	ret = coil__join_refusal(t, self);
	if (ret == 0)
		t->joiner = self;
	return ret;
}

static void unmark_joined(coil_task **tasks, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		tasks[i]->joiner = NULL;
}

/* While gathered, coil_join, coil_detach and other gathers refuse them. */
static void claim(coil_task **tasks, unsigned n, bool on)
{
	for (unsigned i = 0; i < n; i++) {
		if (on)
			tasks[i]->flags |= TASK_CLAIMED;
		else
			tasks[i]->flags &= ~TASK_CLAIMED;
	}
}

static void cancel_unended(coil_task **tasks, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!coil__task_ended(tasks[i]))
			coil_cancel(tasks[i]);
}

int coil_gather(coil_task **tasks, unsigned n, int *statuses, unsigned flags,
		int64_t deadline)
{
	struct gather_watch on_stack[GATHER_ON_STACK], *watches = on_stack;
	coil_task *self = coil__current();
	struct gather g = { .self = self,
			    .fail_fast = flags & COIL_GATHER_FAIL_FAST };
	unsigned i;
	int ret;

	if (!self)
		return -EPERM;
	if ((flags & ~COIL_GATHER_FAIL_FAST) || (n && !tasks))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		ret = gather_check(tasks[i], self);
		if (ret < 0) {
			unmark_joined(tasks, i);
			return ret;
		}
	}
	unmark_joined(tasks, n);
	if (coil__cancel_pending(self))
		return -ECANCELED;
	if (n > GATHER_ON_STACK) {
		watches = calloc(n, sizeof(*watches));
		if (!watches)
			return -ENOMEM;
	}
	claim(tasks, n, true);
	for (i = 0; i < n; i++) {
		if (coil__task_ended(tasks[i])) {
			g.failed |= g.fail_fast && tasks[i]->status < 0;
			continue;
		}
		watches[i] = (struct gather_watch){ .watch.ended = gather_ended,
						    .g = &g };
		coil__task_watch(tasks[i], &watches[i].watch);
		g.left++;
	}
	for (;;) {
		if (g.failed) {
			cancel_unended(tasks, n);
			g.fail_fast = g.failed = false; /* once is enough */
		}
		if (!g.left)
			break;
		g.parked = true;
		ret = coil__park(self, deadline, gather_interrupt, &g);
		g.parked = false;
		if (ret < 0) {
			for (i = 0; i < n; i++)
				if (!coil__task_ended(tasks[i]))
					coil__task_unwatch(tasks[i], &watches[i].watch);
			claim(tasks, n, false);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		if (statuses)
			statuses[i] = tasks[i]->status;
		coil__task_release(tasks[i]);
	}
	ret = 0;
out:
	if (watches != on_stack)
		free(watches);
	return ret;
}
