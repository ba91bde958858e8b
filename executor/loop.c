/*
 * The loop: coil_run, one iteration (ready tasks, timers, one kernel entry),
 * deadlock detection and shutdown.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "executor/io.h"
#include "executor/loop.h"
#include "ring/log.h"

#define STACK_CACHE_DEFAULT 4096
#define BATCH_DEFAULT 128
#define GRACE_DEFAULT COIL_SEC(1)

__thread coil__loop *coil__this_loop;

static inline __attribute__((always_inline)) void
run_task(coil__loop *l, coil_task *t)
{
	if (t->state == COIL_TASK_PENDING) {
		if (coil__cancel_pending(t)) {
			/* Cancelled before it ran: it never will. */
			coil__task_end(t, -ECANCELED);
			coil__task_drop_stack(t);
			if (t->flags & TASK_DETACHED)
				coil__task_release(t);
			return;
		}
		t->state = COIL_TASK_RUNNING;
	}
	l->current = t;
	coil__fiber_switch(&l->fiber, &t->fiber, 0);
	l->current = NULL;
	/* A task cannot give back the stack it runs on: the loop does it. */
	if (coil__task_ended(t)) {
		coil__task_drop_stack(t);
		if (t->flags & TASK_DETACHED)
			coil__task_release(t);
	}
}

/*
 * Run the tasks ready when the batch starts, up to the batch size. Tasks
 * made ready meanwhile (a yield, a wake) run in the next iteration, after
 * the kernel has been entered: a task that keeps yielding cannot starve I/O.
 */
static inline __attribute__((always_inline)) void run_ready(coil__loop *l)
{
	unsigned n = l->ready_len < l->batch ? l->ready_len : l->batch;

	while (n--) {
		coil_task *t = l->ready_head;

		l->ready_head = t->next_ready;
		if (!l->ready_head)
			l->ready_tail = &l->ready_head;
		l->ready_len--;
		run_task(l, t);
	}
}

/* The clock, read at most once between two kernel entries. */
static int64_t loop_now(coil__loop *l)
{
	if (!l->now_fresh) {
		l->now = coil_now();
		l->now_fresh = true;
	}
	return l->now;
}

/*
 * Fire the timers that have expired. A callback that arms a timer already
 * due does not make this loop forever, nor starve the others: a timer armed
 * during the pass gets a deadline no earlier than the pass's now (see
 * coil_timer_arm), so it sorts after every timer already due, and the pass
 * stops when it reaches it.
 */
static void fire_timers(coil__loop *l)
{
	uint64_t armed_before = l->timers.next_seq;
	struct coil__timer *t;
	int64_t now;

	if (!coil__timer_heap_len(&l->timers))
		return;
	/* A reading from this iteration is early enough: nothing fires early. */
	now = loop_now(l);
	l->firing_at = now;
	while ((t = coil__timer_heap_first(&l->timers)) && t->seq < armed_before &&
	       (t = coil__timer_heap_pop_expired(&l->timers, now)))
		t->fire(t);
	l->firing_at = 0;
}

/*
 * Enter the kernel once: submit, collect and dispatch, without waiting if a
 * task is ready, else waiting until a completion or the earliest deadline
 * (capped by cap). Returns 0, -EDEADLK when nothing could ever end the wait,
 * or the ring's fatal error.
 */
static int enter_kernel(coil__loop *l, int64_t cap)
{
	struct coil__timer *first = coil__timer_heap_first(&l->timers);
	int64_t deadline = first && first->deadline < cap ? first->deadline : cap;
	bool waited_for = cap != COIL_NEVER || coil__live_timers(l);
	struct timespec ts;
	int ret;

	if (l->dead) {
		if (l->ready_len)
			return 0;
		if (!waited_for)
			return -EDEADLK;
		ts.tv_sec = deadline / COIL_SEC(1);
		ts.tv_nsec = deadline % COIL_SEC(1);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		return 0;
	}
	if (l->ready_len)
		ret = coil_ring_poll(&l->ring);
	else if (!waited_for && coil_ring_inflight(&l->ring) == 0)
		return -EDEADLK;
	else
		ret = coil_ring_wait(&l->ring, deadline);
	return ret >= 0 || ret == -ETIMEDOUT || ret == -EINTR ? 0 : ret;
}

/*
 * "a (#2, parked), b (#3, ready)" for the tasks not ended, at most 16 of
 * them, then how many more.
 */
static const char *list_alive(coil__loop *l, char *buf, size_t len)
{
	size_t used = 0;
	unsigned listed = 0;
	char desc[64];

	buf[0] = 0;
	for (coil_task *t = l->tasks.next; t != &l->tasks; t = t->next) {
		if (coil__task_ended(t))
			continue;
		if (listed == 16) {
			snprintf(buf + used, len - used, " and %u more",
				 l->alive - listed);
			break;
		}
		used += snprintf(buf + used, len - used, "%s%s", listed ? ", " : "",
				 coil__task_describe(t, desc, sizeof(desc)));
		if (used >= len)
			break;
		listed++;
	}
	return buf;
}

static void cancel_alive(coil__loop *l)
{
	for (coil_task *t = l->tasks.next, *next; t != &l->tasks; t = next) {
		next = t->next; /* a hook cannot release t, but stay safe */
		if (!coil__task_ended(t))
			coil_cancel(t);
	}
}

/*
 * Iterate until the main task has ended (while there is one), every task
 * has ended, or, with a deadline, it passes.
 *
 * Everything between two task switches happens in this one frame: a return
 * from here between them would pop the return address the task pushed when
 * it called into coil, and the task's own return would then be mispredicted
 * (about 10 ns here, twice per iteration). Returns false if the loop has to
 * stop for good: a deadlock that cancelling everything did not end.
 */
static bool run_until(coil__loop *l, int64_t deadline)
{
	char names[1024];
	int ret;

	for (;;) {
		run_ready(l);
		fire_timers(l);
		if (l->alive == 0 || (l->main && coil__task_ended(l->main)))
			return true;
		ret = enter_kernel(l, deadline);
		l->now_fresh = false;
		if (ret == -EDEADLK) {
			if (l->deadlocked)
				return false;
			l->deadlocked = true;
			coil__log(COIL_LOG_ERROR, "deadlock: every task is parked "
				  "and nothing can wake them (no timer, no "
				  "operation in flight); cancelling them: %s",
				  list_alive(l, names, sizeof(names)));
			cancel_alive(l);
		} else if (ret < 0) {
			l->dead = ret;
			coil__log(COIL_LOG_ERROR, "the loop's ring failed (%s); "
				  "cancelling every task", strerror(-ret));
			cancel_alive(l);
		}
		if (deadline != COIL_NEVER && coil_now() >= deadline)
			return true;
	}
}

static void shutdown_tasks(coil__loop *l)
{
	char names[1024];
	int64_t deadline;

	if (l->alive) {
		coil__log(COIL_LOG_WARN, "%u task%s still alive when main "
			  "returned, cancelling: %s", l->alive,
			  l->alive == 1 ? "" : "s",
			  list_alive(l, names, sizeof(names)));
		cancel_alive(l);
		deadline = coil_now() + l->shutdown_grace;
		run_until(l, deadline);
	}
	if (l->alive)
		coil__log(COIL_LOG_ERROR, "abandoning %u task%s that did not "
			  "end within %lld ms of being cancelled: %s", l->alive,
			  l->alive == 1 ? "" : "s",
			  (long long)(l->shutdown_grace / COIL_MSEC(1)),
			  list_alive(l, names, sizeof(names)));
}

/* Release every task left; ops in flight are cancelled before stacks go. */
static void teardown(coil__loop *l)
{
	char desc[64];

	/*
	 * Registered files would stay open until the kernel frees the ring. A
	 * dead ring (a forked child's) may be the parent's: never touch it.
	 */
	if (l->files_registered && !l->dead)
		io_uring_unregister_files(&l->ring.uring);
	if (l->buffers_registered && !l->dead)
		io_uring_unregister_buffers(&l->ring.uring);
	coil_ring_exit(&l->ring);
	coil__bufs_destroy(l);
	while (l->tasks.next != &l->tasks) {
		coil_task *t = l->tasks.next;

		if (t->state == COIL_TASK_FAILED && !(t->flags & TASK_DETACHED))
			coil__log(COIL_LOG_ERROR, "task %s failed with nobody "
				  "joining it: %s",
				  coil__task_describe(t, desc, sizeof(desc)),
				  coil__status_text(t->status));
		coil__task_release(t);
	}
	coil__task_slab_destroy(l);
	coil__timer_heap_destroy(&l->timers);
	coil__stack_pool_destroy(&l->stacks);
	coil__this_loop = NULL;
}

int coil_run(coil_fn *fn, void *arg, int *status)
{
	return coil_run_with(fn, arg, status, NULL);
}

int coil_run_with(coil_fn *fn, void *arg, int *status,
		  const coil_loop_opts *opts)
{
	static const coil_loop_opts defaults;
	coil__loop loop, *l = &loop;
	coil_task *main;
	int ret;

	if (!opts)
		opts = &defaults;
	if (!fn || opts->shutdown_grace < 0 || opts->recv_buffers > 32768 ||
	    (opts->recv_buffers & (opts->recv_buffers - 1)))
		return -EINVAL;
	if (coil__this_loop)
		return -EBUSY;
	memset(l, 0, sizeof(*l));
	ret = coil__stack_pool_init(&l->stacks, opts->stack_size);
	if (ret < 0)
		return ret;
	l->stacks.max_free = opts->stack_cache ? opts->stack_cache
					       : STACK_CACHE_DEFAULT;
	ret = coil_ring_init(&l->ring, &opts->ring);
	if (ret < 0)
		return ret;
	coil__fiber_init_thread(&l->fiber);
	l->ready_tail = &l->ready_head;
	l->batch = opts->batch ? opts->batch : BATCH_DEFAULT;
	l->shutdown_grace = opts->shutdown_grace ? opts->shutdown_grace
						 : GRACE_DEFAULT;
	l->next_id = 1;
	coil__loop_bufs_opts(l, opts);
	coil__io_init();
	l->tasks.next = l->tasks.prev = &l->tasks;
	coil__timer_heap_init(&l->timers);
	coil__this_loop = l;

	ret = coil_spawn(&main, fn, arg, &(coil_task_opts){ .name = "main" });
	if (ret == 0) {
		main->flags |= TASK_MAIN;
		l->main = main;
		if (run_until(l, COIL_NEVER)) {
			if (status)
				*status = main->status;
			coil__task_release(main);
			l->main = NULL;
		} else {
			ret = -EDEADLK;
		}
		shutdown_tasks(l);
	}
	teardown(l);
	return ret;
}

int64_t coil_loop_now(void)
{
	coil__loop *l = coil__this_loop;

	return l ? loop_now(l) : coil_now();
}

coil_ring *coil_loop_ring(void)
{
	return coil__this_loop ? &coil__this_loop->ring : NULL;
}
