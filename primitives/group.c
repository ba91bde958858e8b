/*
 * Task groups: children that cannot outlive the code that spawned them.
 *
 * The group learns of each child's end through the executor's task-end
 * watchers, which run inside the ending task: they count, record the first
 * failure and cancel the siblings, but never release a handle (the task is
 * still on its own stack). Handles are released by coil_group_wait, which
 * runs after the children have switched away for good.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "primitives/waitq.h"
#include "ring/log.h"

#define container_of(p, type, member)                                          \
	((type *)((char *)(p) - offsetof(type, member)))

struct coil__group_child {
	struct coil__task_watch watch;
	struct coil__group_child *next;
	coil_group *group;
	coil_task *task;
};

static const char kind[] = "task group";

int coil_group_init(coil_group *g, const char *name)
{
	*g = (coil_group){ 0 };
	return coil__prim_init(&g->hdr, kind, name);
}

static void cancel_children(coil_group *g)
{
	g->cancelled = true;
	for (struct coil__group_child *c = g->children; c; c = c->next)
		coil_cancel(c->task);
}

static void child_ended(struct coil__task_watch *w, coil_task *t)
{
	struct coil__group_child *c = container_of(w, struct coil__group_child, watch);
	coil_group *g = c->group;

	g->live--;
	if (coil_task_state(t) == COIL_TASK_FAILED && !g->status) {
		g->status = t->status;
		cancel_children(g);
	}
	if (!g->live && g->waiter)
		coil__wake_slot(&g->waiter);
}

int coil_group_spawn(coil_group *g, coil_task **out, coil_fn *fn, void *arg,
		     const coil_task_opts *opts)
{
	struct coil__group_child *c;
	coil_task *t;
	int ret;

	ret = coil__prim_check(&g->hdr, "coil_group_spawn");
	if (ret < 0)
		return ret;
	if (!fn || (opts && opts->detached))
		return -EINVAL;
	if (g->cancelled)
		return -ECANCELED;
	c = g->spare;
	if (c)
		g->spare = c->next;
	else if (!(c = malloc(sizeof(*c))))
		return -ENOMEM;
	ret = coil_spawn(&t, fn, arg, opts);
	if (ret < 0) {
		c->next = g->spare;
		g->spare = c;
		return ret;
	}
	*c = (struct coil__group_child){ .watch.ended = child_ended,
					 .next = g->children, .group = g, .task = t };
	g->children = c;
	g->live++;
	coil__task_watch(t, &c->watch);
	t->flags |= TASK_CLAIMED; /* the group releases it, nobody else */
	if (out)
		*out = t;
	return 0;
}

int coil_group_cancel(coil_group *g)
{
	int ret = coil__prim_check(&g->hdr, "coil_group_cancel");

	if (ret < 0)
		return ret;
	cancel_children(g);
	return 0;
}

/* Release the children, all ended, and make g new again (but for its spares). */
static void reclaim(coil_group *g)
{
	while (g->children) {
		struct coil__group_child *c = g->children;

		g->children = c->next;
		coil__task_release(c->task);
		c->next = g->spare;
		g->spare = c;
	}
	g->status = 0;
	g->cancelled = false;
}

int coil_group_wait(coil_group *g, int *status, int64_t deadline)
{
	coil_task *self = coil__current();
	int ret;

	ret = coil__prim_check(&g->hdr, "coil_group_wait");
	if (ret < 0)
		return ret;
	if (!self)
		return -EPERM;
	if (g->waiter)
		return -EBUSY;
	for (struct coil__group_child *c = g->children; c; c = c->next)
		if (c->task == self)
			return -EDEADLK;
	if (g->live)
		ret = coil__park_slot(self, &g->waiter, deadline);
	if (ret < 0) {
		/*
		 * Leaving means every child has ended: cancel them and wait
		 * on, shielded, since this task's own cancel must not cut the
		 * wait short.
		 */
		cancel_children(g);
		self->shields++;
		while (g->live)
			coil__park_slot(self, &g->waiter, COIL_NEVER);
		self->shields--;
	}
	if (status)
		*status = g->status;
	reclaim(g);
	return ret;
}

int coil_group_destroy(coil_group *g)
{
	char desc[96];
	int ret;

	/* Releasing the ended children's handles needs their loop. */
	if (g->hdr.loop && g->hdr.loop != coil__this_loop)
		return coil__prim_check(&g->hdr, "coil_group_destroy");
	ret = coil__prim_destroy(&g->hdr, "coil_group_destroy", g->live || g->waiter);
	if (ret < 0)
		return ret;
	for (struct coil__group_child *c = g->children; c; c = c->next)
		if (coil_task_state(c->task) == COIL_TASK_FAILED)
			coil__log(COIL_LOG_ERROR, "%s destroyed without a wait: "
				  "its child '%s' failed: %s",
				  coil__prim_describe(&g->hdr, desc, sizeof(desc)),
				  coil_task_name(c->task),
				  coil__status_text(c->task->status));
	reclaim(g);
	while (g->spare) {
		struct coil__group_child *c = g->spare;

		g->spare = c->next;
		free(c);
	}
	return 0;
}
