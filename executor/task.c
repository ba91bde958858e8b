/*
 * Tasks: spawn, parking and waking, join, detach, cancel, yield.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor/loop.h"
#include "ring/log.h"

#define container_of(p, type, member)                                          \
	((type *)((char *)(p) - offsetof(type, member)))

static void task_entry(void *arg)
{
	coil_task *t = arg;
	coil__loop *l = t->loop;

	coil__fiber_started(&l->fiber);
	coil__task_end(t, t->fn(t->arg));
	coil__fiber_switch(&t->fiber, &l->fiber, 1);
	__builtin_unreachable();
}

/*
 * The loop fires this when a task's heap entry comes due: the deadline of
 * the current park, a later one (the entry was reused: move it there), or
 * none (stale: the wait ended first).
 */
static void task_deadline(struct coil__timer *timer)
{
	coil_task *t = container_of(timer, coil_task, timer);
	coil__loop *l = t->loop;
	coil__interrupt_fn *hook = t->interrupt;

	timer->deadline = COIL_NEVER; /* out of the heap (see coil__arm_deadline) */
	if (t->deadline == COIL_NEVER)
		return;
	if (t->deadline > l->firing_at) {
		/* Cannot fail: the heap never shrinks, and this entry just left. */
		coil__timer_heap_add(&l->timers, timer, t->deadline);
		return;
	}
	if (hook) {
		t->interrupt = NULL;
		hook(t, -ETIMEDOUT);
	}
}

/* Take t's entry out of the heap, if it has one. */
static void drop_deadline(coil_task *t)
{
	coil__loop *l = t->loop;

	if (coil__timer_heap_remove(&l->timers, &t->timer))
		t->timer.deadline = COIL_NEVER;
	t->deadline = COIL_NEVER;
}

static bool timer_live(const struct coil__timer *timer)
{
	return timer->fire != task_deadline ||
	       container_of(timer, coil_task, timer)->deadline != COIL_NEVER;
}

uint32_t coil__live_timers(const coil__loop *l)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < coil__timer_heap_len(&l->timers); i++)
		n += timer_live(coil__timer_heap_at(&l->timers, i));
	return n;
}

bool coil__any_live_timer(const coil__loop *l)
{
	for (uint32_t i = 0; i < coil__timer_heap_len(&l->timers); i++)
		if (timer_live(coil__timer_heap_at(&l->timers, i)))
			return true;
	return false;
}

static coil_task *task_alloc(coil__loop *l)
{
	struct coil__task_chunk *chunk;
	coil_task *t = l->free_tasks;

	if (!t) {
		chunk = aligned_alloc(64, sizeof(*chunk));
		if (!chunk)
			return NULL;
		chunk->next = l->task_chunks;
		l->task_chunks = chunk;
		for (int i = COIL__TASK_CHUNK - 1; i >= 0; i--) {
			chunk->tasks[i].next_ready = t;
			t = &chunk->tasks[i];
		}
	}
	l->free_tasks = t->next_ready;
	return t;
}

static void task_free(coil__loop *l, coil_task *t)
{
	t->next_ready = l->free_tasks;
	l->free_tasks = t;
}

void coil__task_slab_destroy(coil__loop *l)
{
	while (l->task_chunks) {
		struct coil__task_chunk *chunk = l->task_chunks;

		l->task_chunks = chunk->next;
		free(chunk);
	}
	l->free_tasks = NULL;
}

int coil_spawn(coil_task **out, coil_fn *fn, void *arg,
	       const coil_task_opts *opts)
{
	static const coil_task_opts none;
	coil__loop *l = coil__this_loop;
	coil__stack stack;
	coil_task *t;
	int ret;

	if (!opts)
		opts = &none;
	if (!fn || (!out && !opts->detached))
		return -EINVAL;
	if (!l)
		return -EPERM;
	t = task_alloc(l);
	if (!t)
		return -ENOMEM;
	ret = coil__stack_get(&l->stacks, opts->stack_size, &stack);
	if (ret < 0) {
		task_free(l, t);
		return ret;
	}
	*t = (coil_task){
		.loop = l,
		.fn = fn,
		.arg = arg,
		.local = opts->local,
		.id = l->next_id++,
		.timer.fire = task_deadline,
		.timer.deadline = COIL_NEVER,
		.deadline = COIL_NEVER,
		.state = COIL_TASK_PENDING,
		.flags = opts->detached ? TASK_DETACHED : 0,
		.stack = stack,
	};
	if (opts->name)
		snprintf(t->name, sizeof(t->name), "%s", opts->name);
	coil__fiber_init(&t->fiber, stack.lo, stack.size, task_entry, t);
	t->prev = l->tasks.prev;
	t->next = &l->tasks;
	t->prev->next = t;
	l->tasks.prev = t;
	l->alive++;
	coil__ready(l, t);
	if (out)
		*out = t;
	return 0;
}

static void report_failure(coil_task *t, const char *why)
{
	char desc[64];

	coil__log(COIL_LOG_ERROR, "task %s failed%s: %s",
		  coil__task_describe(t, desc, sizeof(desc)), why,
		  coil__status_text(t->status));
}

void coil__task_end(coil_task *t, int status)
{
	drop_deadline(t);
	t->status = status;
	t->state = status >= 0	       ? COIL_TASK_COMPLETED
		   : status == -ECANCELED ? COIL_TASK_CANCELLED
					  : COIL_TASK_FAILED;
	t->loop->alive--;
	if (t->joiner) {
		coil__wake(t->joiner, 0);
		t->joiner = NULL;
	}
	while (t->watchers) {
		struct coil__task_watch *w = t->watchers;

		t->watchers = w->next;
		w->next = NULL;
		w->ended(w, t);
	}
	if ((t->flags & TASK_DETACHED) && t->state == COIL_TASK_FAILED)
		report_failure(t, " (detached)");
}

void coil__task_watch(coil_task *t, struct coil__task_watch *w)
{
	w->next = t->watchers;
	t->watchers = w;
}

void coil__task_unwatch(coil_task *t, struct coil__task_watch *w)
{
	for (struct coil__task_watch **p = &t->watchers; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			w->next = NULL;
			return;
		}
	}
}

void coil__task_drop_stack(coil_task *t)
{
	if (!t->stack.lo)
		return;
	coil__fiber_destroy(&t->fiber);
	coil__stack_put(&t->loop->stacks, &t->stack);
	t->stack.lo = NULL;
}

void coil__task_release(coil_task *t)
{
	drop_deadline(t); /* an abandoned task may still have one */
	coil__task_drop_stack(t);
	t->prev->next = t->next;
	t->next->prev = t->prev;
	task_free(t->loop, t);
}

int coil__arm_deadline_slow(coil_task *self, int64_t deadline)
{
	coil__loop *l = self->loop;
	int ret;

	/* A stale entry due after this deadline (see coil__arm_deadline). */
	drop_deadline(self);
	ret = coil__timer_heap_add(&l->timers, &self->timer, deadline);
	if (ret == 0)
		self->deadline = deadline;
	return ret;
}

int coil__park(coil_task *self, int64_t deadline, coil__interrupt_fn *hook,
	       void *wait)
{
	int ret;

	if (coil__cancel_pending(self))
		return -ECANCELED;
	if (deadline != COIL_NEVER && deadline <= coil_now())
		return -ETIMEDOUT;
	ret = coil__arm_deadline(self, deadline);
	if (ret < 0)
		return ret;
	return coil__suspend(self, hook, wait);
}

void coil__wake_unparked(coil_task *t)
{
	char desc[64];

	/* A second wake would queue the task twice: never recoverable. */
	coil__log(COIL_LOG_ERROR, "task %s woken while not parked",
		  coil__task_describe(t, desc, sizeof(desc)));
	abort();
}

/* The hook of a task parked in a slot: leave the slot. */
static void slot_interrupt(coil_task *t, int reason)
{
	coil_task **slot = t->wait;

	*slot = NULL;
	coil__wake(t, reason);
}

int coil__park_slot(coil_task *self, coil_task **slot, int64_t deadline)
{
	int ret;

	*slot = self;
	ret = coil__park(self, deadline, slot_interrupt, slot);
	*slot = NULL; /* also when the park returned without parking */
	return ret;
}

void coil__suspend_slot(coil_task *self, coil_task **slot)
{
	*slot = self;
	coil__suspend(self, NULL, slot);
}

void coil__wake_slot(coil_task **slot)
{
	coil_task *t = *slot;

	*slot = NULL;
	coil__wake(t, 0);
}

/* A joiner's hook: stop waiting for the task in self->wait. */
static void join_interrupt(coil_task *self, int reason)
{
	coil_task *t = self->wait;

	t->joiner = NULL;
	coil__wake(self, reason);
}

int coil__join_refusal(const coil_task *t, const coil_task *self)
{
	if (!t)
		return -EINVAL;
	if (t->loop != self->loop)
		return -EXDEV;
	if (t == self)
		return -EDEADLK;
	if (t->flags & (TASK_DETACHED | TASK_MAIN))
		return -EINVAL;
	if (t->joiner || (t->flags & TASK_CLAIMED))
		return -EBUSY;
	return 0;
}

int coil_join(coil_task *t, int *status, int64_t deadline)
{
	coil_task *self = coil__current();
	int ret;

	if (!self)
		return -EPERM;
	ret = coil__join_refusal(t, self);
	if (ret < 0)
		return ret;
	if (!coil__task_ended(t)) {
		t->joiner = self;
		ret = coil__park(self, deadline, join_interrupt, t);
		if (ret < 0) {
			t->joiner = NULL;
			return ret;
		}
	}
	if (status)
		*status = t->status;
	coil__task_release(t);
	return 0;
}

int coil_detach(coil_task *t)
{
	if (!t)
		return -EINVAL;
	if (t->loop != coil__this_loop)
		return -EXDEV;
	if (t->flags & (TASK_DETACHED | TASK_MAIN))
		return -EINVAL;
	if (t->joiner || (t->flags & TASK_CLAIMED))
		return -EBUSY;
	t->flags |= TASK_DETACHED;
	if (coil__task_ended(t)) {
		if (t->state == COIL_TASK_FAILED)
			report_failure(t, " (detached after it ended)");
		coil__task_release(t);
	}
	return 0;
}

int coil_cancel(coil_task *t)
{
	coil__interrupt_fn *hook;

	if (!t)
		return -EINVAL;
	if (t->loop != coil__this_loop)
		return -EXDEV;
	if (coil__task_ended(t))
		return 0;
	t->flags |= TASK_CANCELLED;
	hook = t->interrupt;
	if (hook && !t->shields) {
		t->interrupt = NULL;
		hook(t, -ECANCELED);
	}
	return 0;
}

/* A yielding task is queued already: a cancel only changes what it gets. */
static void yield_interrupt(coil_task *t, int reason)
{
	t->wake_result = reason;
}

int coil_yield(void)
{
	coil_task *self = coil__current();

	if (!self)
		return -EPERM;
	if (coil__cancel_pending(self))
		return -ECANCELED;
	coil__ready(self->loop, self);
	self->wake_result = 0;
	self->interrupt = yield_interrupt;
	coil__fiber_switch(&self->fiber, &self->loop->fiber, 0);
	self->interrupt = NULL;
	return self->wake_result;
}

bool coil_cancelled(void)
{
	coil_task *self = coil__current();

	return self && (self->flags & TASK_CANCELLED);
}

int coil_shield_begin(void)
{
	coil_task *self = coil__current();

	if (!self)
		return -EPERM;
	if (self->shields >= UINT16_MAX) /* leaves room for coil_close's own */
		return -EOVERFLOW;
	self->shields++;
	return 0;
}

int coil_shield_end(void)
{
	coil_task *self = coil__current();

	if (!self)
		return -EPERM;
	if (!self->shields)
		return -EINVAL;
	self->shields--;
	return 0;
}

coil_task *coil_current(void)
{
	return coil__current();
}

uint64_t coil_task_id(const coil_task *t)
{
	return t->id;
}

const char *coil_task_name(coil_task *t)
{
	if (!t->name[0])
		snprintf(t->name, sizeof(t->name), "task-%llu",
			 (unsigned long long)t->id);
	return t->name;
}

enum coil_task_state coil_task_state(const coil_task *t)
{
	return (enum coil_task_state)t->state;
}

const char *coil_task_state_name(enum coil_task_state state)
{
	static const char *const names[] = { "pending", "running", "completed",
					     "failed", "cancelled" };

	return (unsigned)state < 5 ? names[state] : "invalid";
}

void *coil_task_local(const coil_task *t)
{
	return t->local;
}

void coil_task_set_local(coil_task *t, void *local)
{
	t->local = local;
}

const char *coil__status_text(int status)
{
	static __thread char text[32];

	if (status < 0 && status > -4096)
		return strerror(-status);
	snprintf(text, sizeof(text), "status %d", status);
	return text;
}

const char *coil__task_describe(coil_task *t, char *buf, size_t len)
{
	const char *state = coil_task_state_name(coil_task_state(t));

	if (t->state == COIL_TASK_RUNNING)
		state = t == t->loop->current ? "running"
			: t->flags & TASK_PARKED ? "parked" : "ready";
	snprintf(buf, len, "'%s' (#%llu, %s)", coil_task_name(t),
		 (unsigned long long)t->id, state);
	return buf;
}
