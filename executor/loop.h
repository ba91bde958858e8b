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
	uint32_t stale_deadlines; /* entries of tasks no longer waiting for them */
	int64_t firing_at;      /* while firing timers, the time they are due by */
	int64_t now;            /* coil_loop_now's reading, valid while now_fresh */
	bool now_fresh;         /* cleared whenever the loop enters the kernel */
	coil__stack_pool stacks;
	coil_task *free_tasks;  /* handles to reuse, linked by next_ready */
	struct coil__task_chunk *task_chunks;
	coil_task tasks;        /* sentinel of the list of unreleased tasks */
	unsigned alive;         /* tasks not ended yet */
	uint64_t next_id;
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
} coil__loop;

/* The loop running on this thread, or NULL. */
extern __thread coil__loop *coil__this_loop;

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

/* Timer heap entries someone waits for (stale task deadlines do not count). */
static inline uint32_t coil__live_timers(const coil__loop *l)
{
	return coil__timer_heap_len(&l->timers) - l->stale_deadlines;
}

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
	 * it is reused: when it fires it moves itself to this one.
	 */
	if (coil__timer_armed(&self->timer) && self->timer.deadline <= deadline) {
		self->loop->stale_deadlines--;
		self->deadline = deadline;
		return 0;
	}
	return coil__arm_deadline_slow(self, deadline);
}
int coil__suspend(coil_task *self, coil__interrupt_fn *hook, void *wait);

/* Make a parked task ready; its parking call returns result. */
void coil__wake(coil_task *t, int result);

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

/* End t with fn's return value: set its state, wake its joiner. */
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
