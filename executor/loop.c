/*
 * The loop: coil_run, one iteration (ready tasks, timers, one kernel entry),
 * deadlock detection and shutdown.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "executor/io.h"
#include "executor/loop.h"
#include "ring/log.h"

#define STACK_CACHE_DEFAULT 4096
#define BATCH_DEFAULT 128
#define GRACE_DEFAULT COIL_SEC(1)

__thread coil__loop *coil__this_loop;

/* Loops started so far, by any thread: each loop's gen. */
static uint32_t loop_runs;

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

/*
 * The clock, read at most once between two kernel entries of the running
 * loop (coil_loop_now): 0 whenever it must be read again, always outside a
 * loop.
 */
__thread int64_t coil__loop_clock;

int64_t coil__loop_clock_read(void)
{
	int64_t now = coil_now();

	if (coil__this_loop)
		coil__loop_clock = now;
	return now;
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
	bool due = l->timers_due;
	struct coil__timer *t;
	int64_t now;

	/*
	 * Nothing can be due unless the kernel timeout fired, or a timer
	 * earlier than it was armed since.
	 */
	l->timers_due = false;
	t = coil__timer_heap_first(&l->timers);
	if (!t || (!due && t->deadline >= l->timeout_at))
		return;
	/* A reading from this iteration is early enough: nothing fires early. */
	now = coil_loop_now();
	l->firing_at = now;
	while ((t = coil__timer_heap_first(&l->timers)) && t->seq < armed_before &&
	       (t = coil__timer_heap_pop_expired(&l->timers, now)))
		t->fire(t);
	l->firing_at = 0;
}

/* The kernel timeout fired (or was cancelled as the ring went away). */
static void timeout_fired(coil_op *op, const struct io_uring_cqe *cqe)
{
	coil__loop *l = (coil__loop *)((char *)op - offsetof(coil__loop, timeout));

	(void)cqe;
	l->timeout_at = COIL_NEVER;
	l->timers_due = true;
}

/*
 * Have the kernel timeout fire at the earliest timer's deadline, at: arm
 * one, or move the one armed. If that one fires before the move reaches
 * the kernel, the move fails; its CQE clears timeout_at anyway, and the next
 * iteration arms a new one.
 */
static void arm_timeout(coil__loop *l, int64_t at)
{
	__u64 data = coil_ring_msg_data(&l->timeout); /* not an op in flight */
	/* First: on a full SQ this dispatches, and the timeout may fire. */
	struct io_uring_sqe *sqe = coil_ring_sqe(&l->ring, NULL);

	l->timeout_ts.tv_sec = at / COIL_SEC(1);
	l->timeout_ts.tv_nsec = at % COIL_SEC(1);
	if (l->timeout_at == COIL_NEVER) {
		io_uring_prep_timeout(sqe, &l->timeout_ts, 0, IORING_TIMEOUT_ABS);
		io_uring_sqe_set_data64(sqe, data);
	} else {
		io_uring_prep_timeout_update(sqe, &l->timeout_ts, data,
					     IORING_TIMEOUT_ABS);
	}
	l->timeout_at = at;
}

/*
 * Enter the kernel once: submit, collect and dispatch, without waiting if a
 * task is ready, else waiting until a completion, the earliest timer
 * (through the kernel timeout) or cap. Returns 0, -EDEADLK when nothing
 * could ever end the wait, or the ring's fatal error.
 */
static int enter_kernel(coil__loop *l, int64_t cap)
{
	struct coil__timer *first = coil__timer_heap_first(&l->timers);
	struct timespec ts;
	int ret;

	if (l->dead) {
		int64_t deadline = first && first->deadline < cap ? first->deadline
								 : cap;

		l->timers_due = true;
		if (l->ready_len)
			return 0;
		if (cap == COIL_NEVER && !coil__any_live_timer(l))
			return -EDEADLK;
		ts.tv_sec = deadline / COIL_SEC(1);
		ts.tv_nsec = deadline % COIL_SEC(1);
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		return 0;
	}
	if (first && first->deadline < l->timeout_at) {
		/* Due already (armed in the past): fire it next iteration. */
		if (first->deadline <= coil_loop_now())
			l->timers_due = true;
		else
			arm_timeout(l, first->deadline);
	}
	if (l->ready_len || l->timers_due)
		ret = coil_ring_poll(&l->ring);
	else if (cap == COIL_NEVER && coil_ring_inflight(&l->ring) == 0 &&
		 !coil__any_live_timer(l) &&
		 !l->inbox.waits) /* remote.c: another thread may end those */
		return -EDEADLK;
	else
		ret = coil_ring_wait(&l->ring, cap);
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
		coil__loop_clock = 0;
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
	coil__inbox_exit(l); /* remote.c: the doorbell, while the ring is up */
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
	coil__loop_clock = 0;
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
	ret = coil__inbox_init(l); /* remote.c: the doorbell */
	if (ret < 0) {
		coil_ring_exit(&l->ring);
		return ret;
	}
	coil__fiber_init_thread(&l->fiber);
	l->ready_tail = &l->ready_head;
	l->timeout.complete = timeout_fired;
	l->timeout_at = COIL_NEVER;
	l->batch = opts->batch ? opts->batch : BATCH_DEFAULT;
	l->shutdown_grace = opts->shutdown_grace ? opts->shutdown_grace
						 : GRACE_DEFAULT;
	l->next_id = 1;
	l->gen = __atomic_add_fetch(&loop_runs, 1, __ATOMIC_RELAXED);
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


coil_ring *coil_loop_ring(void)
{
	return coil__this_loop ? &coil__this_loop->ring : NULL;
}
