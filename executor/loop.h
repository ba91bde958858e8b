/*
 * The loop and its tasks, as the executor's files see them.
 *
 * Parking is one mechanism for every kind of wait. A task that waits
 * registers itself where it waits (a joined task, an op in flight, a
 * primitive's queue), then parks with a deadline and an interrupt hook. It
 * resumes when someone wakes it with a result (coil__wake), or when the hook
 * runs: on the deadline with -ETIMEDOUT, on coil_cancel with -ECANCELED. The
 * hook undoes the registration and wakes the task, or, for an op in flight,
 * asks the kernel to cancel it and leaves the wake to the op's completion.
 */
#ifndef COIL_EXECUTOR_LOOP_H
#define COIL_EXECUTOR_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "coil.h"
#include "executor/context.h"
#include "executor/stack.h"
#include "executor/timer.h"

/* Runs at most once per park, with -ETIMEDOUT or -ECANCELED. */
typedef void coil__interrupt_fn(coil_task *t, int reason);

enum {
	TASK_DETACHED = 1 << 0,
	TASK_CANCELLED = 1 << 1, /* coil_cancel was called */
	TASK_PARKED = 1 << 2,    /* suspended and not yet woken */
	TASK_MAIN = 1 << 3,      /* coil_run's task: coil_run joins it */
	TASK_CLAIMED = 1 << 4,   /* a gather, select or group will release it */
};

/*
 * A task's handle comes from its loop's slab of handles, dense in memory;
 * its stack comes from the loop's pool and goes back as soon as the task
 * ends, so a task that is never joined holds a handle, not a stack.
 */
struct coil_task {
	coil__fiber fiber;
	struct coil__loop *loop;
	coil_task *next_ready;
	coil_task *prev, *next; /* the loop's list of unreleased tasks */
	coil__interrupt_fn *interrupt;
	void *wait;             /* what the task is parked on, for its hook */
	coil_task *joiner;
	struct coil__task_watch *watchers;
	coil_fn *fn;
	void *arg;
	void *local;
	uint64_t id;
	/*
	 * Deadlines are lazy: the heap entry of a wait that ended first stays
	 * (stale) until it comes due, and the next wait with a deadline no
	 * earlier reuses it, so a deadline that never fires costs two
	 * compares. deadline is the current park's, COIL_NEVER when none.
	 */
	struct coil__timer timer;
	int64_t deadline;
	int status;             /* fn's return value */
	int wake_result;        /* what the parking call returns */
	uint32_t shields;       /* coil_shield_begin depth, plus coil_close's own */
	uint8_t state;          /* enum coil_task_state */
	uint8_t flags;
	coil__stack stack;      /* lo is NULL once given back */
	char name[32];
} __attribute__((aligned(64)));

/* Handles are allocated this many at a time and reused, never freed early. */
#define COIL__TASK_CHUNK 64

struct coil__task_chunk {
	struct coil__task_chunk *next;
	coil_task tasks[COIL__TASK_CHUNK];
};

/*
 * Work other threads hand to a loop (executor/remote.c): a lock-free LIFO
 * they push coil__remote nodes onto, and an eventfd (the doorbell) whose
 * read the loop keeps armed on its ring. Only the push that finds the
 * queue empty rings it. The loop runs the nodes, in the order they were
 * pushed, on the thread's own stack between tasks.
 */
struct coil__inbox {
	/* Written by other threads: a line of its own. */
	struct coil__remote *head __attribute__((aligned(64)));
	unsigned senders;  /* threads between their push and their ring */
	int efd;
	/* The loop's. */
	coil_op op __attribute__((aligned(64)));
	uint64_t count;    /* the armed read's buffer */
	unsigned waits;    /* waits another thread may end: no deadlock */
	bool armed, closing;
};

typedef struct coil__loop {
	coil_ring ring;
	coil__fiber fiber;      /* the thread's own stack, where the loop runs */
	coil_task *current;
	coil_task *main;        /* coil_run's task, until it is released */
	coil_task *ready_head;  /* FIFO of tasks to run */
	coil_task **ready_tail;
	unsigned ready_len;
	unsigned batch;
	coil__timer_heap timers;
	int64_t firing_at;      /* while firing timers, the time they are due by */
	/*
	 * One kernel timeout is armed for the earliest timer, and moved only
	 * when an earlier one comes: a loop waits without a timeout of its
	 * own and reads the clock for timers only after that one fired.
	 */
	coil_op timeout;
	struct __kernel_timespec timeout_ts;
	int64_t timeout_at;     /* when the armed one fires; COIL_NEVER: none */
	bool timers_due;        /* it fired: timers may have expired */
	coil__stack_pool stacks;
	coil_task *free_tasks;  /* handles to reuse, linked by next_ready */
	struct coil__task_chunk *task_chunks;
	coil_task tasks;        /* sentinel of the list of unreleased tasks */
	unsigned alive;         /* tasks not ended yet */
	uint64_t next_id;
	uint32_t gen;           /* tells this run from earlier loops at the same address */
	int64_t shutdown_grace;
	int dead;               /* the ring's fatal error, once it failed */
	bool deadlocked;        /* a deadlock was found and everything cancelled */
	bool files_registered;  /* coil_files_register */
	bool buffers_registered;
	/* Multishot receives: the buffer ring, set up on first use. */
	coil_bufring bufs;
	unsigned recv_buffers, recv_buffer_size;
	unsigned bufs_out;      /* buffers received and not given back */
	int32_t *buf_next;      /* per buffer: the next in its stream's queue */
	uint32_t *buf_len;      /* per buffer: bytes received into it */
	coil_recv_stream *starved; /* streams waiting for a buffer to re-arm */
	struct io_uring_sqe scratch; /* handed out when an SQE must not be sent */
	struct coil__inbox inbox;   /* work from other threads (remote.c) */
} coil__loop;

/* The loop running on this thread, or NULL. */
extern __thread coil__loop *coil__this_loop;

/*
 * The inbox (executor/remote.c). init makes the doorbell and arms its read
 * (0 or a negative errno); exit stops it, waits for senders, runs what is
 * left and closes it. post may be called from any thread while the loop
 * runs. drain runs the nodes queued now, on the loop's thread.
 */
int coil__inbox_init(coil__loop *l);
void coil__inbox_exit(coil__loop *l);
void coil__inbox_drain(coil__loop *l);
void coil__remote_post(coil__loop *l, struct coil__remote *node);

/* Bracket a wait that another thread may end (see the deadlock rule). */
static inline void coil__remote_wait_begin(coil__loop *l)
{
	l->inbox.waits++;
}

static inline void coil__remote_wait_end(coil__loop *l)
{
	l->inbox.waits--;
}

static inline coil_task *coil__current(void)
{
	coil__loop *l = coil__this_loop;

	return l ? l->current : NULL;
}

static inline bool coil__task_ended(const coil_task *t)
{
	return t->state >= COIL_TASK_COMPLETED;
}

/* Append t to the ready queue. */
static inline void coil__ready(coil__loop *l, coil_task *t)
{
	t->next_ready = NULL;
	*l->ready_tail = t;
	l->ready_tail = &t->next_ready;
	l->ready_len++;
}

/*
 * Park the running task self. Returns at once with -ECANCELED if it is
 * cancelled, or -ETIMEDOUT if deadline has passed; else suspends it until
 * coil__wake (returning the result given there) or the hook.
 */
int coil__park(coil_task *self, int64_t deadline, coil__interrupt_fn *hook,
	       void *wait);

/*
 * Timer heap entries someone waits for: stale task deadlines do not count.
 * Scans the heap, so only for rare paths (deadlock detection, tests); the
 * any_ form stops at the first, and stale entries are rarely first for long
 * (they are the ones that fire and go).
 */
uint32_t coil__live_timers(const coil__loop *l);
bool coil__any_live_timer(const coil__loop *l);

/*
 * The two halves of coil__park, for waits that must not return before
 * something happens (an op in flight must complete first): arm self's
 * deadline (0 or -ENOMEM), then suspend until coil__wake, with hook (may be
 * NULL) to run on the deadline or on cancel, and wait kept in self->wait.
 */
int coil__arm_deadline_slow(coil_task *self, int64_t deadline);
static inline int coil__arm_deadline(coil_task *self, int64_t deadline)
{
	if (deadline == COIL_NEVER)
		return 0;
	/*
	 * A running task's entry is stale. Due no later than this deadline,
	 * it is reused: when it fires it moves itself to this one. (Out of
	 * the heap, timer.deadline is COIL_NEVER.)
	 */
	if (self->timer.deadline <= deadline) {
		self->deadline = deadline;
		return 0;
	}
	return coil__arm_deadline_slow(self, deadline);
}
static inline __attribute__((always_inline)) int
coil__suspend(coil_task *self, coil__interrupt_fn *hook, void *wait)
{
	self->interrupt = hook;
	self->wait = wait;
	self->flags |= TASK_PARKED;
	coil__fiber_switch(&self->fiber, &self->loop->fiber, 0);
	return self->wake_result;
}

/* Make a parked task ready; its parking call returns result. */
__attribute__((noreturn, cold)) void coil__wake_unparked(coil_task *t);
static inline void coil__wake(coil_task *t, int result)
{
	if (__builtin_expect(!(t->flags & TASK_PARKED), 0))
		coil__wake_unparked(t);
	t->flags &= ~TASK_PARKED;
	/* An entry in the heap is left there, stale, for the next wait. */
	t->deadline = COIL_NEVER;
	t->interrupt = NULL;
	t->wake_result = result;
	coil__ready(t->loop, t);
}

/*
 * An object that one task at a time waits on (an acceptor, a receive
 * stream) keeps it in a slot. coil__park_slot parks self there until
 * coil__wake_slot (returns 0), or until the deadline or a cancel, which
 * empty the slot (-ETIMEDOUT, -ECANCELED). coil__suspend_slot waits for the
 * wake alone: for an op that must end before its object may go.
 */
int coil__park_slot(coil_task *self, coil_task **slot, int64_t deadline);
void coil__suspend_slot(coil_task *self, coil_task **slot);
void coil__wake_slot(coil_task **slot);

/*
 * Code other than a joiner that must learn when a task ends (a select on
 * it, a task group) watches it: ended runs once, in coil__task_end, after
 * the task's state and status are set. It must not release the task.
 */
struct coil__task_watch {
	struct coil__task_watch *next;
	void (*ended)(struct coil__task_watch *w, coil_task *t);
};

/* Watch t, which has not ended; or stop watching it (a no-op once run). */
void coil__task_watch(coil_task *t, struct coil__task_watch *w);
void coil__task_unwatch(coil_task *t, struct coil__task_watch *w);

/*
 * Why self may not join t (as coil_join would refuse it), or 0: -EINVAL,
 * -EXDEV, -EDEADLK, -EBUSY.
 */
int coil__join_refusal(const coil_task *t, const coil_task *self);

/* End t with fn's return value: set its state, wake its joiner and watchers. */
void coil__task_end(coil_task *t, int status);

/* Whether t's parking calls must fail with -ECANCELED: cancelled, unshielded. */
static inline bool coil__cancel_pending(const coil_task *t)
{
	return (t->flags & TASK_CANCELLED) && !t->shields;
}

/* Give the stack of an ended (or abandoned) task back to the pool. */
void coil__task_drop_stack(coil_task *t);

/* Release a task's handle (and its stack if it still has one). */
void coil__task_release(coil_task *t);

/* Free every handle of the loop; all must have been released. */
void coil__task_slab_destroy(struct coil__loop *l);

/* The loop's receive buffers: options at start, freed after the ring exits. */
void coil__loop_bufs_opts(coil__loop *l, const coil_loop_opts *opts);
void coil__bufs_destroy(coil__loop *l);

/* strerror for a task's status, which need not be an errno at all. */
const char *coil__status_text(int status);

/* A task's description for a log line: "name (state, #id)". */
const char *coil__task_describe(coil_task *t, char *buf, size_t len);

#endif
