/*
 * coil: an io_uring runtime for Linux.
 *
 * This is the one public header. It is organised in sections, from the
 * lowest layer up:
 *
 *   version   compile-time and run-time version
 *   time      monotonic nanoseconds and deadlines
 *   messages  the log hook that receives everything coil has to tell a human
 *   ring      one io_uring: setup, submission, completion dispatch
 *   loop      coil_run: a loop of tasks on the calling thread
 *   tasks     spawn, join, detach, yield, sleep, cancel
 *   timers    callbacks at a deadline, for code that is not a task
 *   awaiting  any io_uring operation, awaited by a task; shields
 *   I/O       sockets, any fd, files, processes
 *   primitives  future, event, semaphore, mutex, channel, wait group,
 *             select, task group, wait_for, retry, task manager
 *
 * Conventions, everywhere in this header:
 *   - A call that can fail returns a negative errno (-EINVAL, -ETIMEDOUT, ...)
 *     and 0 or a count on success. coil never sets errno for its callers.
 *   - Time is int64_t nanoseconds on CLOCK_MONOTONIC. Calls that may block
 *     take an absolute deadline; COIL_NEVER means none.
 *   - Structs whose layout is shown here (so that callers can embed them)
 *     have private fields: read and write them only through the functions.
 */
#ifndef COIL_H
#define COIL_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

#define COIL_VERSION_MAJOR 0
#define COIL_VERSION_MINOR 1
#define COIL_VERSION_PATCH 0

/* The version as one number, MAJOR * 10000 + MINOR * 100 + PATCH. */
#define COIL_VERSION_NUMBER                                                    \
	(COIL_VERSION_MAJOR * 10000 + COIL_VERSION_MINOR * 100 +               \
	 COIL_VERSION_PATCH)

/*
 * The version of the library actually loaded, encoded as COIL_VERSION_NUMBER.
 * Compare it with COIL_VERSION_NUMBER to detect a header/library mismatch.
 */
int coil_version(void);

/* ------------------------------------------------------------------- time */

/* A deadline that never passes. */
#define COIL_NEVER INT64_MAX

#define COIL_USEC(n) ((int64_t)(n) * 1000)
#define COIL_MSEC(n) ((int64_t)(n) * 1000000)
#define COIL_SEC(n) ((int64_t)(n) * 1000000000)

/* Now, in nanoseconds on CLOCK_MONOTONIC (about 25 ns: the vDSO, no syscall). */
static inline int64_t coil_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --------------------------------------------------------------- messages */

enum coil_log_level {
	COIL_LOG_ERROR, /* something failed; the message says what and why */
	COIL_LOG_WARN,  /* misuse or a degraded mode the user should know of */
	COIL_LOG_INFO,  /* a decision coil took, e.g. a ring setup fallback */
	COIL_LOG_DEBUG, /* detail for whoever is debugging coil itself */
};

/* Receives one complete message, without a trailing newline. */
typedef void coil_log_fn(void *arg, enum coil_log_level level, const char *msg);

/*
 * Route every message coil has for a human to fn (with arg). fn may be called
 * from any thread that uses coil, one call at a time; it must not call
 * coil_set_log itself. Passing NULL restores the default, which writes
 * errors and warnings to stderr as "coil: <level>: <message>" and drops the
 * rest.
 */
void coil_set_log(coil_log_fn *fn, void *arg);

/* ------------------------------------------------------------------- ring */

/*
 * One io_uring, for code that wants completions as callbacks. The executor
 * runs every loop on one of these; callback users can drive one directly:
 *
 *	coil_ring ring;
 *	coil_ring_init(&ring, NULL);
 *	sqe = coil_ring_sqe(&ring, &my.op);   // my.op.complete = on_done
 *	io_uring_prep_read(sqe, fd, buf, len, 0);
 *	coil_ring_wait(&ring, COIL_NEVER);    // submits; calls on_done
 *	coil_ring_exit(&ring);
 *
 * A ring belongs to the thread that created it: with SINGLE_ISSUER (the
 * default) the kernel refuses submissions from any other thread with -EEXIST.
 * It does not survive fork: in the child every call returns -ECHILD and the
 * parent's ring is never touched.
 */

typedef struct coil_op coil_op;

/*
 * Completion handler: called once per CQE that carries the op. cqe points to a
 * copy that is valid for the duration of the call. The handler may submit new
 * SQEs on the same ring.
 */
typedef void coil_op_fn(coil_op *op, const struct io_uring_cqe *cqe);

/*
 * An operation: the object a submission's user_data points to. Embed it in
 * your own struct and find that struct again from the op in the handler. It
 * must stay valid until its last CQE: one for a single-shot op; for a
 * multishot op, every CQE up to the first without IORING_CQE_F_MORE.
 */
struct coil_op {
	coil_op_fn *complete;
};

typedef struct coil_ring_opts {
	/* Submission queue entries, up to 32768, rounded up to a power of two. 0: 256. */
	unsigned entries;
	/* Completion queue entries: at least 2 * entries, which is the default. */
	unsigned cq_entries;
	/*
	 * IORING_SETUP_* flags to treat as refused by the kernel: coil falls
	 * back exactly as it does when the kernel answers -EINVAL, giving up
	 * flags newest first until none of these is left (refusing
	 * TASKRUN_FLAG also gives up the newer DEFER_TASKRUN and SINGLE_ISSUER,
	 * and COOP_TASKRUN, which coil never uses without it, as on 5.18). Use it to opt out of
	 * DEFER_TASKRUN, or to see how coil runs on an older kernel.
	 */
	unsigned disable_flags;
	/* Let a kernel thread poll the submission queue. Off by default. */
	bool sqpoll;
	/* With sqpoll, idle time before that thread sleeps. 0: 1000 ms. */
	unsigned sqpoll_idle_ms;
} coil_ring_opts;

typedef struct coil_ring {
	/* private */
	struct io_uring uring;
	unsigned live_gen;   /* == coil__fork_generation while usable */
	int error;           /* why it is not: -ECHILD, -EBADF, or a submit error */
	pthread_t owner;     /* the thread that created it */
	unsigned setup_flags;
	uint64_t inflight;
	uint64_t ops[4];     /* bitmap of the opcodes the kernel supports */
	struct io_uring_sqe scratch;
} coil_ring;

/*
 * Create a ring on the calling thread. opts may be NULL for the defaults.
 *
 * coil asks for SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG | COOP_TASKRUN |
 * SUBMIT_ALL with a completion queue twice the submission queue, and drops
 * flags one at a time, in that order, while the kernel answers -EINVAL; with
 * sqpoll it asks for SQPOLL | SINGLE_ISSUER | SUBMIT_ALL instead. What was
 * granted is in coil_ring_flags(). The ring fd is registered where possible.
 *
 * Returns 0, or:
 *   -EINVAL  bad entries/cq_entries, or the kernel refused even plain setup
 *   -ENOMEM  out of memory; for a non-root user usually RLIMIT_MEMLOCK, to
 *            which ring memory is charged (the logged message says so, with
 *            the sizes)
 *   -EPERM   io_uring is disabled by sysctl (kernel.io_uring_disabled) or
 *            blocked by seccomp
 *   -ENOSYS  the kernel has no io_uring
 *   -EMFILE, -ENFILE  no file descriptor left
 * Every failure is also explained through the log hook.
 */
int coil_ring_init(coil_ring *r, const coil_ring_opts *opts);

/*
 * Tear the ring down. Ops still in flight are cancelled in the kernel and
 * their final completions dispatched first (handlers see -ECANCELED or their
 * real result), so that no buffer is written after this returns; an op the
 * kernel cannot cancel within a second is reported through the log hook.
 * Handlers that run during exit cannot submit: their SQEs are dropped.
 * Afterwards every call on r returns -EBADF until it is initialised again.
 */
void coil_ring_exit(coil_ring *r);

/* The IORING_SETUP_* flags the kernel granted. */
unsigned coil_ring_flags(const coil_ring *r);

/* Whether the kernel supports opcode (IORING_OP_*), from the setup probe. */
bool coil_ring_has_op(const coil_ring *r, unsigned opcode);

/* Ops in flight: handed out by coil_ring_sqe and without a final CQE yet. */
uint64_t coil_ring_inflight(const coil_ring *r);

/* The ring's file descriptor, e.g. as a target for IORING_OP_MSG_RING. */
int coil_ring_fd(const coil_ring *r);

/* Internal, used by the inline functions below. */
extern unsigned coil__fork_generation;
struct io_uring_sqe *coil__ring_sqe_slow(coil_ring *r, coil_op *op);

/*
 * Get an SQE whose completion goes to op (NULL: completions are reaped and
 * dropped). Never fails: when the submission queue is full, coil submits it
 * and, if the kernel is busy, dispatches completions until there is room.
 * Prepare the SQE with any io_uring_prep_* helper; do not change user_data.
 * Each SQE with a non-NULL op must produce a CQE: do not combine it with
 * IOSQE_CQE_SKIP_SUCCESS.
 *
 * On a ring that cannot submit (forked child, after exit, or after a fatal
 * submit error) it returns a scratch SQE that is never submitted, and the
 * next coil_ring_poll or coil_ring_wait returns the error.
 */
static inline struct io_uring_sqe *coil_ring_sqe(coil_ring *r, coil_op *op)
{
	struct io_uring_sq *sq = &r->uring.sq;
	unsigned tail = sq->sqe_tail;

	/* io_uring_get_sqe, for the 64-byte SQEs of every coil ring. */
	if (__builtin_expect(r->live_gen == coil__fork_generation &&
			     tail - io_uring_smp_load_acquire(sq->khead) <
				     sq->ring_entries, 1)) {
		struct io_uring_sqe *sqe = &sq->sqes[tail & sq->ring_mask];

		sq->sqe_tail = tail + 1;
		io_uring_sqe_set_data(sqe, op);
		r->inflight += op != NULL;
		return sqe;
	}
	return coil__ring_sqe_slow(r, op);
}

/*
 * The user_data that makes a message reach op on another ring (or this one):
 * pass it as the data of io_uring_prep_msg_ring. The target dispatches the CQE
 * to op like any other, but does not count it as one of its own ops in
 * flight, since it never submitted it.
 */
static inline __u64 coil_ring_msg_data(coil_op *op)
{
	return (__u64)(uintptr_t)op | 1;
}

/*
 * A provided-buffer ring: count buffers of size bytes, registered as buffer
 * group `group`, from which the kernel picks one for each receive submitted
 * with IOSQE_BUFFER_SELECT (multishot receives). The CQE names the buffer
 * (cqe->flags >> IORING_CQE_BUFFER_SHIFT); the handler reads it with
 * coil_bufring_buf and gives it back with coil_bufring_give.
 */
typedef struct coil_bufring {
	/* private */
	struct io_uring_buf_ring *br;
	char *mem;
	unsigned count, size;
	uint16_t group;
} coil_bufring;

/*
 * count is a power of two up to 32768. Returns 0, or -EINVAL, -ENOMEM, -EEXIST
 * (group registered already), or the ring's error.
 */
int coil_bufring_init(coil_bufring *b, coil_ring *r, uint16_t group,
		      unsigned count, unsigned size);

static inline void *coil_bufring_buf(const coil_bufring *b, unsigned bid)
{
	return b->mem + (size_t)bid * b->size;
}

/* Give buffer bid back to the kernel. */
void coil_bufring_give(coil_bufring *b, unsigned bid);

/* Unregister (unless r was torn down already) and free. */
void coil_bufring_exit(coil_bufring *b, coil_ring *r);

/*
 * Make room for n SQEs that must be submitted together, such as a chain
 * linked with IOSQE_IO_LINK (a chain cannot span two submissions). Call it
 * before getting the first SQE of the chain. Returns 0, -EINVAL when n is
 * larger than the submission queue, or the ring's error.
 */
int coil_ring_reserve(coil_ring *r, unsigned n);

/*
 * Submit what is queued, collect what has completed, and dispatch every
 * completion to its handler, without blocking. With DEFER_TASKRUN the kernel
 * only runs completion work when the ring's thread enters it for events;
 * this call enters whenever the ring says such work is pending, so a loop
 * that only polls still sees every completion.
 *
 * Returns the number of CQEs dispatched, or -ECHILD (forked child), -EBADF
 * (after exit), -EEXIST (called from a thread other than the one that created
 * the ring; reported through the log hook), or the error the kernel gave for
 * the submission, after which the ring cannot submit any more.
 */
int coil_ring_poll(coil_ring *r);

/*
 * Like coil_ring_poll, but if nothing has completed, block until something
 * does or the deadline passes. Returns the number of CQEs dispatched (at
 * least 1), -ETIMEDOUT when the deadline passed with nothing to dispatch,
 * -EINTR when a signal interrupted the wait, or an error as coil_ring_poll.
 */
int coil_ring_wait(coil_ring *r, int64_t deadline);

/* ------------------------------------------------------------------- loop */

/*
 * A loop runs tasks on one thread: stackful coroutines that park in coil's
 * calls (join, sleep, I/O) and resume when what they wait for happens. One
 * iteration runs the ready tasks (a bounded batch, first in first out),
 * fires the expired timers, then enters the kernel once: without waiting if
 * tasks are ready, else waiting for a completion or the earliest timer
 * deadline. Timers live in user space: however many are pending, at most one
 * kernel wait is armed.
 *
 *	static int serve(void *arg) { ... return 0; }
 *
 *	int status;
 *	int ret = coil_run(serve, NULL, &status);
 *
 * Loops, tasks and timers are not thread-safe: use each from the thread of
 * the loop it belongs to.
 */

typedef struct coil_task coil_task;

/* A task's function: returns >= 0 on success or a negative errno. */
typedef int coil_fn(void *arg);

typedef struct coil_loop_opts {
	/* The ring under the loop. */
	coil_ring_opts ring;
	/* Stack size of a task that asks for none. 0: 128 KiB. */
	size_t stack_size;
	/*
	 * Free stacks kept for reuse instead of unmapped. A cached stack keeps
	 * the pages its last task touched (a page or two for most tasks).
	 * 0: 4096. Raise it when bursts of many more tasks are the norm.
	 */
	unsigned stack_cache;
	/* Tasks run per iteration before the kernel is entered. 0: 128. */
	unsigned batch;
	/*
	 * When the main task returns, the tasks still alive are cancelled and
	 * get this long (ns) to end. 0: one second. Those still alive after it
	 * are abandoned: their stacks are unmapped and whatever they held is
	 * lost, and they are listed through the log hook.
	 */
	int64_t shutdown_grace;
	/*
	 * The loop's provided-buffer ring for multishot receives
	 * (coil_recv_stream), set up on first use as buffer group
	 * COIL_LOOP_BUF_GROUP: how many buffers (a power of two; 0: 256) of
	 * how many bytes (0: 4096).
	 */
	unsigned recv_buffers;
	unsigned recv_buffer_size;
} coil_loop_opts;

#define COIL_LOOP_BUF_GROUP 0x7c01

/*
 * Run a loop on the calling thread, with fn(arg) as its main task (named
 * "main"), until that task returns; then stop the loop and return 0 with the
 * main task's return value in *status (status may be NULL).
 *
 * Tasks still alive when main returns are listed by name through the log
 * hook, cancelled, and given opts->shutdown_grace to end. Detached tasks that
 * fail are reported as they end; tasks that failed with nobody joining them
 * are reported when the loop stops. Handles of tasks not joined become
 * invalid when coil_run returns. The main task cannot be joined or detached
 * by other tasks: coil_run joins it.
 *
 * When every task is parked and nothing can wake any of them (no timer, no
 * operation in flight, no future that another thread may resolve being
 * awaited), the loop reports the deadlock, listing the parked tasks, and
 * cancels them all.
 *
 * Returns 0, or without running fn:
 *   -EINVAL  fn is NULL, or opts out of range (stack_size, recv_buffers)
 *   -EBUSY   this thread is already running a loop
 *   -ENOMEM  no stack for the main task
 *   or an error of coil_ring_init, which is also explained through the log
 * coil_run_with takes options; opts may be NULL for the defaults.
 */
int coil_run(coil_fn *fn, void *arg, int *status);
int coil_run_with(coil_fn *fn, void *arg, int *status,
		  const coil_loop_opts *opts);

/*
 * The time as of this loop iteration: the clock is read at most once
 * between two kernel entries of the loop, so the reading is at most one
 * batch of tasks old and costs a load instead of a clock read. Good for
 * deadlines such as coil_loop_now() + idle timeout on every call. Never
 * goes backwards; outside a loop it is coil_now().
 */
static inline int64_t coil_loop_now(void);

/* Private: this iteration's reading of the clock, 0 until taken. */
extern __thread int64_t coil__loop_clock;
int64_t coil__loop_clock_read(void);

static inline int64_t coil_loop_now(void)
{
	int64_t now = coil__loop_clock;

	return now ? now : coil__loop_clock_read();
}

/*
 * The ring of the loop running on this thread (NULL when none), for code
 * that submits its own operations with callbacks: their handlers run on the
 * loop, between tasks. Do not wait on it (coil_ring_wait): the loop does.
 */
coil_ring *coil_loop_ring(void);

/* ------------------------------------------------------------------ tasks */

enum coil_task_state {
	COIL_TASK_PENDING,   /* spawned, has not run yet */
	COIL_TASK_RUNNING,   /* started: running, ready to run, or parked */
	COIL_TASK_COMPLETED, /* returned >= 0 */
	COIL_TASK_FAILED,    /* returned a negative errno other than -ECANCELED */
	COIL_TASK_CANCELLED, /* cancelled before it ran, or returned -ECANCELED */
};

typedef struct coil_task_opts {
	/* Copied, at most 31 bytes kept. NULL: "task-<id>". */
	const char *name;
	/* 16 KiB to 256 MiB, rounded up to pages. 0: the loop's stack size. */
	size_t stack_size;
	/* Start detached (see coil_detach); *out may then be NULL. */
	bool detached;
	/* The initial task-local pointer. */
	void *local;
} coil_task_opts;

/*
 * Start fn(arg) as a new task of this thread's loop. It first runs after the
 * tasks already ready. On success *out (if out is not NULL) is its handle,
 * valid until coil_join returns 0 for it or, once detached, until it ends. A
 * task's stack goes back to the loop's pool as soon as it ends; a task that
 * is neither joined nor detached keeps its handle (a few hundred bytes) until
 * the loop stops.
 *
 * May be called from a task or from a callback on the loop. Returns 0, or:
 *   -EINVAL  fn is NULL; stack_size out of range; out NULL and not detached
 *   -EPERM   no loop runs on this thread
 *   -ENOMEM  no stack could be mapped
 * On an error nothing was started and *out is untouched.
 */
int coil_spawn(coil_task **out, coil_fn *fn, void *arg,
	       const coil_task_opts *opts);

/*
 * Wait until t ends, then store its return value in *status (status may be
 * NULL) and release t. The join's own outcome and the task's are separate:
 * -ETIMEDOUT returned here means the join's deadline passed; a task that
 * itself timed out ends with 0 returned and *status == -ETIMEDOUT.
 *
 * Returns 0 (t is released: the handle is invalid now), or, t still valid:
 *   -ETIMEDOUT  deadline passed first; t runs on
 *   -ECANCELED  the calling task was cancelled; t runs on (it is not
 *               cancelled with it)
 *   -EPERM      not called from a task
 *   -EINVAL     t is NULL, detached, or the main task
 *   -EDEADLK    t is the calling task
 *   -EBUSY      another task is joining t, or a gather, a select or a
 *               task group holds it
 *   -EXDEV      t belongs to another thread's loop
 */
int coil_join(coil_task *t, int *status, int64_t deadline);

/*
 * Nobody will join t: it is released when it ends, and its handle is invalid
 * from then on; a failure is reported through the log hook. Returns 0, or
 * -EINVAL (NULL, already detached, the main task), -EBUSY (a join, gather,
 * select or task group holds it), -EXDEV (another thread's loop).
 */
int coil_detach(coil_task *t);

/*
 * Ask t to stop. Its current parking call (sleep, join, yield, I/O) returns
 * -ECANCELED, and so does every later one. A task that has not started yet
 * ends CANCELLED without running. A task that has ended is not affected.
 * An operation in flight is cancelled in the kernel and the task resumes
 * only after the operation's completion; if the operation completed first,
 * its result is returned and the next parking call gets -ECANCELED.
 *
 * Returns 0, or -EINVAL (NULL), -EXDEV (another thread's loop).
 */
int coil_cancel(coil_task *t);

/*
 * Let every task that is ready now run once, then continue. Returns 0, or
 * -ECANCELED (the task is cancelled), -EPERM (not in a task).
 */
int coil_yield(void);

/*
 * Park until deadline; never returns before it. A deadline already passed
 * returns at once; COIL_NEVER parks until the task is cancelled.
 * Returns 0, or -ECANCELED, -EPERM (not in a task), -ENOMEM (no memory for
 * the timer).
 */
int coil_sleep_until(int64_t deadline);

/* coil_sleep_until(coil_now() + ns). */
int coil_sleep(int64_t ns);

/*
 * Whether the calling task has been cancelled (false outside a task), also
 * inside a shield.
 */
bool coil_cancelled(void);

/* The running task, or NULL outside a task. */
coil_task *coil_current(void);

/* A task's id, unique within its loop, counting from 1 (main). */
uint64_t coil_task_id(const coil_task *t);

/* A task's name: the one it was spawned with, or "task-<id>". */
const char *coil_task_name(coil_task *t);

enum coil_task_state coil_task_state(const coil_task *t);

/* "pending", "running", "completed", "failed" or "cancelled". */
const char *coil_task_state_name(enum coil_task_state state);

/* The task-local pointer: coil never touches what it points to. */
void *coil_task_local(const coil_task *t);
void coil_task_set_local(coil_task *t, void *local);

/* ----------------------------------------------------------------- timers */

/*
 * A callback at a deadline, for code that is not a task (an op's handler, a
 * state machine): it runs on the loop between tasks, and may arm timers,
 * spawn tasks and submit operations, but not park. The struct is the
 * caller's: embed it anywhere, keep it alive while armed.
 *
 * A timer costs 32 bytes and O(log n) to arm or disarm among n pending
 * ones; a million pending timers work.
 */
typedef struct coil_timer coil_timer;
typedef void coil_timer_fn(coil_timer *timer, void *arg);

/* Private: an entry of a loop's timer heap. */
struct coil__timer {
	int64_t deadline;
	uint64_t seq;                       /* arming order, for equal deadlines */
	uint32_t slot;                      /* 1 + index in the heap; 0: unarmed */
	void (*fire)(struct coil__timer *); /* called by the loop on expiry */
};

struct coil_timer {
	/* private */
	struct coil__timer node;
	coil_timer_fn *fn;
	void *arg;
	struct coil__loop *loop;
};

/* Set up an unarmed timer that will call fn(timer, arg). */
void coil_timer_init(coil_timer *timer, coil_timer_fn *fn, void *arg);

/*
 * Arm the timer to fire once at deadline (moving it if it was armed), on
 * this thread's loop. It fires in the first loop iteration at or after the
 * deadline, never before; timers with the same deadline fire in arming order.
 * A timer armed by a callback with a deadline already passed fires in the
 * next iteration, after the timers due in this one.
 * Returns 0, or -EINVAL (timer or its fn NULL), -EPERM (no loop on this
 * thread, or the timer is armed on another thread's loop), -ENOMEM.
 */
int coil_timer_arm(coil_timer *timer, int64_t deadline);

/* Disarm the timer. Returns whether it was armed. */
bool coil_timer_disarm(coil_timer *timer);

bool coil_timer_armed(const coil_timer *timer);

/* --------------------------------------------------------------- awaiting */

/*
 * Any io_uring operation, awaited by the running task:
 *
 *	coil_io io;
 *	struct io_uring_sqe *sqe = coil_io_prep(&io);
 *	io_uring_prep_read(sqe, fd, buf, len, 0);
 *	int n = coil_io_await(&io, deadline);
 *
 * The op lives in the caller's frame and coil_io_await returns only after
 * the kernel is done with it, so buffers on the stack are safe. Nothing is
 * allocated. One SQE per coil_io, without IOSQE_CQE_SKIP_SUCCESS. An op
 * that posts several CQEs (a zero-copy send) is done at the last one, the one
 * without IORING_CQE_F_MORE; its result is that of the last CQE that is not
 * a notification (IORING_CQE_F_NOTIF).
 */
typedef struct coil_io {
	/* private */
	coil_op op;
	coil_task *task; /* NULL when coil_io_prep refused */
	int res;
	int reason;      /* why the kernel was asked to cancel it, or 0 */
	uint32_t flags;  /* of the CQE */
	bool done;
} coil_io;

/*
 * An SQE of this thread's loop whose completion wakes the running task in
 * coil_io_await. Prepare it, then await. Never NULL: outside a task, or when
 * the task is cancelled already, the SQE returned is never submitted and
 * coil_io_await returns -EPERM or -ECANCELED.
 */
struct io_uring_sqe *coil_io_prep(coil_io *io);

/*
 * Park until the operation completes; return its result (cqe->res). When the
 * deadline passes or the task is cancelled first, the operation is cancelled
 * in the kernel and, once its completion arrives, -ETIMEDOUT or -ECANCELED is
 * returned; if it completed anyway, its own result is returned, so nothing
 * it did is lost.
 */
int coil_io_await(coil_io *io, int64_t deadline);

/* The flags of the operation's CQE (IORING_CQE_F_*), after coil_io_await. */
static inline uint32_t coil_io_cqe_flags(const coil_io *io)
{
	return io->flags;
}

/*
 * A shield lets cleanup code (closing, flushing, saying goodbye) run parking
 * calls after the task was cancelled. Between coil_shield_begin and the
 * matching coil_shield_end, a cancel (earlier or arriving meanwhile) does not
 * interrupt parking calls; deadlines still apply. Once the last shield ends,
 * the cancel takes effect again: the next parking call returns -ECANCELED.
 * Shields nest. Both return 0, or -EPERM (not in a task); coil_shield_end
 * returns -EINVAL without a matching begin, coil_shield_begin -EOVERFLOW
 * beyond 65535 levels.
 */
int coil_shield_begin(void);
int coil_shield_end(void);

/* ----------------------------------------------------------------- I/O */

/*
 * Every call below may park the calling task until the kernel completes the
 * operation, and follows the same rules:
 *
 *   - It returns what the kernel returned: a count or 0 on success, a
 *     negative errno on failure (-EBADF for a closed fd, -ECONNRESET for a
 *     reset peer, ...). Nothing is logged for these: they are the caller's.
 *   - deadline is absolute (COIL_NEVER for none). When it passes, the
 *     operation is cancelled in the kernel and -ETIMEDOUT is returned once
 *     the kernel has let go of it.
 *   - When the task is cancelled, the operation is cancelled likewise and
 *     -ECANCELED is returned. If the operation completed before the kernel
 *     could cancel it, its result is returned instead (the bytes read or
 *     written are not lost) and the next parking call gets -ECANCELED.
 *   - Buffers are the caller's and the call returns only after the kernel
 *     is done with them, so they may live on the task's stack.
 *   - Outside a task each returns -EPERM; in a cancelled task, -ECANCELED
 *     without starting anything.
 *   - A length larger than COIL_IO_MAX is cut to it (a short transfer),
 *     as read(2) does.
 *   - File descriptors are created with O_CLOEXEC / SOCK_CLOEXEC.
 *
 * An fd argument may also name a file registered with coil_files_register:
 * pass COIL_FIXED_FD(index).
 */

#define COIL_IO_MAX 0x7ffff000u

#define COIL_FIXED_FD(index) ((int)(0xC0000000u | ((unsigned)(index) & 0xFFFFFu)))

/* -- sockets (executor/net.c) */

/*
 * Parse an address: "host:port" with a numeric IPv4 host, "localhost" or an
 * empty host (all interfaces); "[v6]:port"; "unix:/path" or "unix:@name"
 * (abstract). Returns 0 with the address in *ss and its length in *len, or
 * -EINVAL.
 */
int coil_addr_parse(const char *text, struct sockaddr_storage *ss,
		    socklen_t *len);

/* socket(2) with SOCK_CLOEXEC. Returns the fd or a negative errno. */
int coil_socket(int domain, int type, int protocol);

typedef struct coil_listen_opts {
	/* SOCK_STREAM (0 means it) or SOCK_DGRAM: a datagram socket is bound only. */
	int type;
	/* Pending connections the kernel queues. 0: 4096. */
	int backlog;
	/* SO_REUSEPORT, for one listener per loop on the same port. */
	bool reuseport;
} coil_listen_opts;

/*
 * A socket bound to address (coil_addr_parse syntax), listening for
 * connections unless it is a datagram socket. TCP sockets get SO_REUSEADDR
 * (a restarted server binds over old connections in TIME_WAIT); two sockets
 * share a port only with reuseport.
 * Does not park. opts may be NULL. Returns the fd, or -EINVAL (bad address
 * or opts), or the errno of socket/bind/listen (-EADDRINUSE, -EACCES, ...).
 */
int coil_listen(const char *address, const coil_listen_opts *opts);

/* The local port of a bound socket, or a negative errno. */
int coil_sock_port(int fd);

/* Connect fd to addr. Returns 0 or a negative errno (-ECONNREFUSED, ...). */
int coil_connect(int fd, const struct sockaddr *addr, socklen_t len,
		 int64_t deadline);

/*
 * A connected stream socket to address (coil_addr_parse syntax); TCP ones
 * get TCP_NODELAY. Returns the fd or a negative errno; on an error nothing
 * is left open.
 */
int coil_dial(const char *address, int64_t deadline);

/*
 * Accept one connection on listener fd. addr and len may be NULL; otherwise
 * *len is the size of addr on entry and of the peer's address on return.
 * Returns the new fd or a negative errno.
 */
int coil_accept(int fd, struct sockaddr *addr, socklen_t *len,
		int64_t deadline);

ssize_t coil_recv(int fd, void *buf, size_t len, int flags, int64_t deadline);
ssize_t coil_send(int fd, const void *buf, size_t len, int flags,
		  int64_t deadline);
ssize_t coil_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline);
ssize_t coil_sendmsg(int fd, const struct msghdr *msg, int flags,
		     int64_t deadline);

/* Datagrams with addresses; from and fromlen may be NULL. */
ssize_t coil_recvfrom(int fd, void *buf, size_t len, int flags,
		      struct sockaddr *from, socklen_t *fromlen,
		      int64_t deadline);
ssize_t coil_sendto(int fd, const void *buf, size_t len, int flags,
		    const struct sockaddr *to, socklen_t tolen,
		    int64_t deadline);

/*
 * Send with zero copy (IORING_OP_SEND_ZC): the kernel sends from buf itself,
 * and the call returns once the kernel no longer needs it. Worth it for large
 * buffers (tens of KiB and up). Returns the bytes sent or a negative errno.
 */
ssize_t coil_send_zc(int fd, const void *buf, size_t len, int flags,
		     int64_t deadline);

/*
 * Send all len bytes, over as many sends as the socket needs. Returns 0, or
 * a negative errno; either way *sent (may be NULL) is the count that went.
 */
int coil_send_all(int fd, const void *buf, size_t len, size_t *sent,
		  int64_t deadline);

/*
 * Receive exactly len bytes. Returns 0, -EPIPE if the peer closed the stream
 * first, or another negative errno; either way *got (may be NULL) is the
 * count received.
 */
int coil_recv_exact(int fd, void *buf, size_t len, size_t *got,
		    int64_t deadline);

/*
 * Multishot accept: one accept armed in the kernel keeps accepting
 * connections on listener fd into a queue. Once it holds backlog fds (0: 16,
 * at most 4096), accepting pauses and new connections wait in the kernel's
 * listen queue (where the kernel applies the listen backlog: connections
 * beyond it are refused or retried by the client, not held by coil). The
 * kernel accepts whatever is pending in
 * one go, so a burst can overshoot the backlog by what was pending: those
 * are queued too, never dropped. One task at a time takes connections.
 *
 * The struct must stay in place (not be copied or freed) until
 * coil_acceptor_destroy returns: the kernel completes into it.
 */
typedef struct coil_acceptor {
	/* private */
	coil_op op;
	struct coil__loop *loop;
	coil_task *waiter;
	int fd, error;
	unsigned backlog, head, count, cap;
	bool armed, stopping;
	int *fds;        /* a ring of cap, holding count from head */
} coil_acceptor;

/*
 * Returns 0, or -EINVAL (backlog over 4096), -EPERM (no loop on this
 * thread), -ENOMEM. coil_acceptor_destroy frees what this allocates.
 */
int coil_acceptor_init(coil_acceptor *a, int fd, unsigned backlog);

/*
 * The next accepted connection's fd, or a negative errno: the accept's own
 * error (-EMFILE, ...), reported once, -EBUSY when another task is waiting
 * on a, -EXDEV from another loop, and the usual -ETIMEDOUT / -ECANCELED
 * (no connection is lost by them: it stays queued).
 */
int coil_acceptor_accept(coil_acceptor *a, int64_t deadline);

/*
 * Stop accepting, wait for the kernel to let go of a, close connections
 * still queued. Call it from a task of a's loop before a goes away.
 * Returns 0, or -EPERM, -EXDEV, -EBUSY (a task is waiting on a).
 */
int coil_acceptor_destroy(coil_acceptor *a);

/*
 * Multishot receive: one receive armed in the kernel keeps filling buffers
 * from the loop's provided-buffer ring (see coil_loop_opts.recv_buffers) as
 * data arrives, without a submission per read. The task takes them in order
 * with coil_recv_stream_next and gives each back with coil_buf_release when
 * done with it; holding buffers holds them from every connection of the
 * loop. When the ring runs dry the kernel stops the receive (-ENOBUFS);
 * coil re-arms it as buffers come back, and the connection never sees that
 * error.
 *
 * The struct must stay in place until coil_recv_stream_destroy returns.
 */
typedef struct coil_buf {
	void *data;
	size_t len;
	/* private */
	uint16_t bid;
	struct coil__loop *loop;
} coil_buf;

typedef struct coil_recv_stream {
	/* private */
	coil_op op;
	struct coil__loop *loop;
	coil_task *waiter;
	struct coil_recv_stream *next_starved;
	int fd;
	int end;             /* the final result once ended: 0 (EOF) or an error */
	int32_t head, tail;  /* received buffers not yet taken, by buffer id */
	bool armed, starved, ended, closing;
} coil_recv_stream;

/*
 * Set up s for fd; the loop's buffer ring is made on first use. Returns 0,
 * or -EPERM (no loop), -ENOMEM, or the error registering the buffer ring.
 */
int coil_recv_stream_init(coil_recv_stream *s, int fd);

/*
 * The next buffer of data: its length n > 0 with *buf filled in, 0 at the
 * end of the stream, or a negative errno (the connection's error, such as
 * -ECONNRESET, from then on; -ETIMEDOUT / -ECANCELED lose nothing: data
 * arriving meanwhile stays queued; -EBUSY when another task waits on s).
 */
ssize_t coil_recv_stream_next(coil_recv_stream *s, coil_buf *buf,
			      int64_t deadline);

/* Give a buffer back to the loop's ring. Harmless on a released buffer. */
void coil_buf_release(coil_buf *buf);

/*
 * Stop receiving, wait for the kernel to let go of s, give back buffers
 * still queued. Call it from a task of s's loop before s goes away.
 * Returns 0, or -EPERM, -EXDEV, -EBUSY (a task is waiting on s).
 */
int coil_recv_stream_destroy(coil_recv_stream *s);

/* shutdown(2). Returns 0 or a negative errno. */
int coil_shutdown(int fd, int how, int64_t deadline);

/*
 * Close fd (or the registered slot COIL_FIXED_FD names). The close always
 * happens: it is not interrupted by a cancel (the task stays cancelled), and
 * outside a task it is a plain close(2) (a registered slot needs its loop:
 * -EPERM). Returns 0 or a negative errno (-EBADF).
 */
int coil_close(int fd);

/*
 * A buffered reader over a stream (socket, pipe, tty), for line and
 * delimiter protocols. The buffer is the caller's, and its size is the
 * limit: a line that does not fit is an error, not an allocation.
 */
typedef struct coil_reader {
	/* private */
	int fd;
	char *buf;
	size_t cap, start, end;
	bool eof;
} coil_reader;

void coil_reader_init(coil_reader *r, int fd, void *buf, size_t cap);

/*
 * Read up to and including the next delim. Returns its length n > 0 with
 * *out pointing at it inside the reader's buffer (valid until the next call
 * on r); at the end of the stream, the bytes left without delim, then 0.
 * -EMSGSIZE when the buffer fills up without delim (the bytes stay
 * buffered), or a negative errno of the read.
 */
ssize_t coil_read_until(coil_reader *r, int delim, char **out,
			int64_t deadline);

/* coil_read_until(r, '\n', out, deadline). */
ssize_t coil_read_line(coil_reader *r, char **out, int64_t deadline);

/*
 * Read up to len bytes: what is buffered first, else from the fd. Returns
 * the count, 0 at the end of the stream, or a negative errno.
 */
ssize_t coil_reader_read(coil_reader *r, void *buf, size_t len,
			 int64_t deadline);

/* Bytes buffered and not yet returned. */
size_t coil_reader_buffered(const coil_reader *r);

/* -- any fd: pipes, eventfd, signalfd, ttys, files (executor/rw.c) */

/*
 * Read or write at offset off, or at the file position when off is -1 (as
 * read(2) and write(2) do; streams such as pipes and sockets ignore it;
 * other negative offsets are -EINVAL). Returns the count (0 at end of file)
 * or a negative errno. As with write(2), writing to a pipe or socket whose
 * reader is gone raises SIGPIPE unless it is ignored (then -EPIPE); for
 * sockets, coil_send with MSG_NOSIGNAL avoids it.
 */
ssize_t coil_read(int fd, void *buf, size_t len, int64_t off,
		  int64_t deadline);
ssize_t coil_write(int fd, const void *buf, size_t len, int64_t off,
		   int64_t deadline);
ssize_t coil_readv(int fd, const struct iovec *iov, int iovcnt, int64_t off,
		   int64_t deadline);
ssize_t coil_writev(int fd, const struct iovec *iov, int iovcnt, int64_t off,
		    int64_t deadline);

/*
 * Write all len bytes at off (or at the file position, off -1), over as
 * many writes as it takes. Returns 0, or a negative errno; either way
 * *written (may be NULL) is the count written.
 */
int coil_write_all(int fd, const void *buf, size_t len, int64_t off,
		   size_t *written, int64_t deadline);

/*
 * Wait until fd is ready for events (POLLIN, POLLOUT, ...). Returns the
 * events that are ready (POLLHUP and POLLERR included) or a negative errno.
 */
int coil_poll(int fd, unsigned events, int64_t deadline);

/* -- files (executor/file.c) */

/*
 * openat(2) relative to the working directory, with O_CLOEXEC added. (Unlike
 * open(2), opening a FIFO for reading does not wait for a writer.)
 */
int coil_open(const char *path, int flags, mode_t mode, int64_t deadline);
int coil_openat(int dirfd, const char *path, int flags, mode_t mode,
		int64_t deadline);

int coil_fsync(int fd, int64_t deadline);
int coil_fdatasync(int fd, int64_t deadline);

/* statx(2) into *out. Returns 0 or a negative errno. */
int coil_statx(int dirfd, const char *path, int flags, unsigned mask,
	       struct statx *out, int64_t deadline);

/* fallocate(2). Returns 0 or a negative errno (-EINVAL for len <= 0). */
int coil_fallocate(int fd, int mode, int64_t off, int64_t len,
		   int64_t deadline);

/*
 * Move up to len bytes from fd_in to fd_out, one of which must be a pipe,
 * without copying through user space. An offset of -1 means the fd's own
 * position (and is required for the pipe side). Returns the count moved,
 * 0 at end of input, or a negative errno.
 */
ssize_t coil_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out,
		    size_t len, unsigned flags, int64_t deadline);

/*
 * Memory aligned for O_DIRECT (to the page, which covers every logical
 * block size), len rounded up to pages. Free with coil_aligned_free.
 * Returns NULL when out of memory or len is 0.
 */
void *coil_aligned_alloc(size_t len);
void coil_aligned_free(void *p);

/*
 * Registered files and buffers of this thread's loop: the kernel takes a
 * reference once instead of on every operation. The loop drops them when it
 * stops.
 *
 * coil_files_register makes a table of n slots holding fds (-1 leaves a
 * slot empty); COIL_FIXED_FD(i) then names slot i in any call of this
 * section. coil_files_update replaces n slots from off. The fds stay the
 * caller's to close. coil_buffers_register registers n buffers for
 * coil_read_fixed/coil_write_fixed (at most one table each; register again
 * after coil_*_unregister). All return 0 or a negative errno (-EPERM
 * outside a loop, -EBUSY when a table exists, -ENXIO when none does to
 * update or unregister, -ENOMEM: for non-root users registered buffers
 * count against RLIMIT_MEMLOCK).
 */
int coil_files_register(const int *fds, unsigned n);
int coil_files_update(unsigned off, const int *fds, unsigned n);
int coil_files_unregister(void);
int coil_buffers_register(const struct iovec *iov, unsigned n);
int coil_buffers_unregister(void);

/* Read or write through registered buffer index; buf lies inside it. */
ssize_t coil_read_fixed(int fd, void *buf, size_t len, int64_t off,
			unsigned index, int64_t deadline);
ssize_t coil_write_fixed(int fd, const void *buf, size_t len, int64_t off,
			 unsigned index, int64_t deadline);

/* -- processes (executor/process.c) */

typedef struct coil_process_opts {
	/* Environment; NULL: this process's. */
	char *const *envp;
	/*
	 * What the child gets as fds 0, 1 and 2: 0 inherits this process's
	 * (its stdin, stdout, stderr), -1 gives /dev/null, any other fd of
	 * this process is duplicated onto it (so {0, 2, 1} swaps stdout and
	 * stderr).
	 */
	int stdio[3];
} coil_process_opts;

typedef struct coil_process {
	/* private */
	pid_t pid;
	int pidfd;
	int status;  /* wait status, once reaped */
	bool reaped;
} coil_process;

/*
 * Start argv[0] (looked up in PATH when it has no '/') with arguments argv
 * (NULL-terminated). The child starts with no signal blocked and every
 * signal at its default action, whatever this process blocks or ignores.
 * Does not park. opts may be NULL. Returns 0, or a
 * negative errno (-ENOENT: no such program, -EACCES, -ENOMEM, -EINVAL:
 * argv empty).
 */
int coil_process_spawn(coil_process *p, char *const argv[],
		       const coil_process_opts *opts);

/* The child's pid. */
pid_t coil_process_pid(const coil_process *p);

/*
 * Wait for the child to exit and reap it. Returns 0 with its wait status in
 * *status (test with WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG; status
 * may be NULL), or -ETIMEDOUT / -ECANCELED with the child still running (wait
 * again or kill it). Awaits IORING_OP_WAITID where the kernel has it, a poll
 * on the child's pidfd otherwise. Once reaped, returns the same status again.
 */
int coil_process_wait(coil_process *p, int *status, int64_t deadline);

/* Send sig to the child; 0, or -ESRCH once it has been reaped. */
int coil_process_kill(coil_process *p, int sig);

/*
 * Release p. A child not yet reaped is killed (SIGKILL) and reaped first,
 * so that no zombie is left behind.
 */
void coil_process_destroy(coil_process *p);

/* ------------------------------------------------------------- primitives */

/*
 * Waiting between tasks: future, event, semaphore, mutex, channel, wait
 * group and gather, select, task group, wait_for, retry, task manager.
 *
 * Each primitive is a struct the caller owns (embed it anywhere), set up
 * with its _init and torn down with its _destroy; nothing is allocated per
 * wait or per message. _init takes a name (may be NULL) that messages about
 * the object use; it is kept by pointer, so give a string that outlives the
 * object.
 *
 * Every call that parks takes an absolute deadline and returns -ETIMEDOUT
 * when it passes and -ECANCELED when the task is cancelled, and neither
 * loses anything: a message not received stays in its channel, a permit
 * not granted stays with its semaphore. Tasks parked on one object are
 * woken in the order they parked.
 *
 * A primitive belongs to one loop: the loop running when it is
 * initialised, or, initialised outside any loop, the first loop that uses
 * it. Only futures may be resolved from other threads. Misuse is reported
 * through the log hook with the object's name and returned, never left to
 * corrupt memory:
 *   - a call from another loop, or from a thread with no loop: -EXDEV;
 *   - a call on a destroyed (or never initialised) object, a second
 *     destroy: -EINVAL;
 *   - a destroy while tasks are parked on the object: -EBUSY, and the
 *     object stays usable;
 *   - a parking call outside a task: -EPERM.
 */

/* Private: a FIFO of parked tasks, and the header every primitive has. */
struct coil__waiter;
typedef struct coil__waitq {
	struct coil__waiter *head, *tail;
} coil__waitq;

typedef struct coil__prim {
	const char *kind;
	const char *name;
	void *loop;
	uint32_t loop_gen; /* which run of the loop at that address */
	uint32_t magic;
} coil__prim;

/* ===== future, pending-request table (primitives/future.c, pending.c) ===== */

/*
 * A future: a one-shot outcome, a value (resolved) or a negative errno
 * (failed, or cancelled: -ECANCELED), set once. Any number of tasks await
 * it; code that is not a task registers callbacks.
 *
 *	coil_future f;
 *	coil_future_init(&f, "reply");
 *	...hand &f to whoever produces the reply, on any thread...
 *	if (coil_future_await(&f, coil_now() + COIL_SEC(1)) == 0)
 *		err = coil_future_result(&f, &value);
 *	coil_future_destroy(&f);
 *
 * Unlike the other primitives, a future may be resolved, failed or
 * cancelled from any thread: one with no loop, or one running another
 * loop. Exactly one of the resolving calls wins; the outcome is published
 * at once (coil_future_done and coil_future_result see it from any
 * thread), and the future's own loop wakes its waiters and runs its
 * callbacks: a wake-up is queued to that loop without a lock, and the loop
 * is woken through an eventfd read it always keeps armed.
 *
 * Lifetime with other threads: a thread may resolve f only while f is
 * alive and its loop runs. The owner ends that period with
 * coil_future_destroy (on f's loop, before the loop stops): from then on
 * resolving calls return -EINVAL, and if one is in progress on another
 * thread, destroy waits for it to let go of f. Awaiting alone is enough
 * for a future that is not destroyed (one on a task's stack): once the
 * await returns 0 nothing of the resolution is in flight any more (its
 * wake-up, which lives in f, is delivered first), and the loop does not
 * stop before the resolving thread has let go of the loop. Seeing
 * coil_future_done alone is not enough to let f's memory go.
 *
 * Deadlocks: the loop reports one when every task is parked and nothing
 * can wake them. A task awaiting a future (with or without a deadline) and
 * a callback registered on a pending future are waits that another thread
 * may end, so while there is one the loop is not deadlocked: it sleeps
 * until a wake-up or a timer. The armed eventfd read itself is not an
 * operation in flight: a loop whose tasks wait on anything else (a sleep
 * until COIL_NEVER, an event nobody sets) is still reported.
 *
 * Everything but the resolving calls, coil_future_done and
 * coil_future_result follows the misuse rules of this section.
 */
typedef struct coil_future coil_future;
typedef struct coil_future_callback coil_future_callback;

/* Private: a unit of work another thread hands to a loop (executor/remote.c). */
struct coil__remote {
	struct coil__remote *next;
	void (*run)(struct coil__remote *node);
};

/* Private: a future's callbacks, in the order they were added. */
struct coil__callbacks {
	coil_future_callback *head, *tail;
};

/* Run once, on the future's loop, when it completes. */
typedef void coil_future_fn(coil_future *f, void *arg);

/* A callback registration: the caller's, alive until it ran or was removed. */
struct coil_future_callback {
	/* private */
	coil_future_callback *prev, *next;
	struct coil__callbacks *list; /* NULL when not registered */
	coil_future_fn *fn;
	void *arg;
};

struct coil_future {
	/* private */
	coil__prim prim;
	coil__waitq waiters;     /* tasks (and select cases) awaiting it */
	struct coil__callbacks callbacks, running; /* to run; running now */
	void *value;
	int err;
	uint32_t state;          /* atomic: see primitives/future.c */
	bool delivered;          /* waiters woken and callbacks run */
	struct coil__remote remote; /* the wake-up queued to its loop */
};

/* Set up f, pending. Returns 0. */
int coil_future_init(coil_future *f, const char *name);

/*
 * Tear f down. If another thread is resolving f at that moment, waits for
 * it to finish with f (microseconds) and runs that resolution's wake-up.
 * A future never used by a loop may be destroyed on any thread.
 * Returns 0, or -EBUSY (tasks await f or callbacks wait on it; f stays
 * usable), -EINVAL (destroyed already, never initialised), -EXDEV.
 */
int coil_future_destroy(coil_future *f);

/*
 * Resolve f with value, waking every task that awaits it and running its
 * callbacks (at once on f's loop; from another thread, on f's loop as soon
 * as it picks up the wake-up). Any thread. Returns 0, or -EALREADY (f is
 * done: this outcome is dropped, the first one stays), -EINVAL (f
 * destroyed or never initialised; logged).
 */
int coil_future_resolve(coil_future *f, void *value);

/* Fail f with err, which must be < 0 (else -EINVAL). As coil_future_resolve. */
int coil_future_fail(coil_future *f, int err);

/*
 * Fail f with -ECANCELED: its waiters wake and see that as its result.
 * As coil_future_resolve: -EALREADY if f is done.
 */
int coil_future_cancel(coil_future *f);

/*
 * Wait until f is done. Returns 0 once it is, whatever its outcome (read
 * it with coil_future_result): at once if it is done already. The wait's
 * own failures leave f as it was (pending, still resolvable and
 * awaitable): -ETIMEDOUT (deadline passed), -ECANCELED (the task is
 * cancelled; also when f is done), -EPERM (not in a task), -EINVAL,
 * -EXDEV.
 */
int coil_future_await(coil_future *f, int64_t deadline);

/*
 * f's outcome: -EAGAIN while pending; once done, 0 with *value set to the
 * value it was resolved with, or the negative errno it failed with (*value
 * set to NULL). value may be NULL. Any thread. -EINVAL (logged) on a
 * destroyed future.
 */
int coil_future_result(const coil_future *f, void **value);

/* Whether f is resolved or failed. Any thread. */
bool coil_future_done(const coil_future *f);

/*
 * Call fn(f, arg) on f's loop once f is done: at once, before this
 * returns, if it is done already. Callbacks run after f's waiters are
 * woken (they run when the loop next gets to them), in the order they were
 * added. A callback may add and remove callbacks, resolve other futures,
 * spawn tasks; the last one to run may destroy f. It must not park: it
 * may run inside the task that resolves, awaits or destroys f (or one
 * that awaits or destroys another future of the loop, which delivers the
 * wake-ups other threads sent meanwhile). cb is the caller's and
 * must stay alive until it ran or was removed. Returns 0, or -EBUSY (cb is
 * registered already), -EINVAL (fn NULL, f destroyed), -EXDEV.
 */
int coil_future_on_done(coil_future *f, coil_future_callback *cb,
			coil_future_fn *fn, void *arg);

/*
 * Remove cb before it runs. Returns 0, or -ENOENT (cb is not waiting on f:
 * it ran already, was removed, or was never added), -EINVAL, -EXDEV.
 */
int coil_future_off_done(coil_future *f, coil_future_callback *cb);

/*
 * Private, for select: the misuse checks of a call on f from this loop,
 * which also bind a future initialised outside any loop to this one in a
 * way no resolution on another thread can miss. Call it before linking a
 * waiter on f->waiters. Returns 0, -EINVAL or -EXDEV (logged).
 */
int coil__future_check(coil_future *f, const char *call);

/*
 * A pending-request table: requests waiting for a reply, matched by id, as
 * an RPC client keeps them. Each request is a caller-owned struct with a
 * future in it; a reply resolves it by id, and a request whose deadline
 * passes first is taken out of the table and failed with -ETIMEDOUT, so a
 * reply arriving later finds nothing (-ENOENT) and can be dropped.
 *
 *	coil_pending_req req;
 *	coil_pending_add(&calls, &req, id, coil_now() + COIL_SEC(2));
 *	send the request...
 *	coil_future_await(coil_pending_future(&req), COIL_NEVER);
 *	err = coil_future_result(coil_pending_future(&req), &reply);
 *	coil_pending_remove(&calls, &req);
 *
 * and in the task reading replies: coil_pending_resolve(&calls, id, reply).
 *
 * The table is a primitive of one loop (the misuse rules above apply); its
 * requests' futures may still be awaited and read anywhere futures may.
 * Lookups are O(1) (a hash table sized at init); deadlines wait in a heap
 * behind one loop timer for the whole table, armed for the earliest.
 */
typedef struct coil_pending coil_pending;

typedef struct coil_pending_req {
	/* private */
	coil_future future;
	coil_pending *table;  /* set from add to remove */
	uint64_t id;
	int64_t deadline;
	uint32_t heap_index;  /* while registered: its place in the heap */
	bool registered;      /* matched by id until it completes */
} coil_pending_req;

struct coil_pending {
	/* private */
	coil__prim prim;
	coil_pending_req **slots; /* open addressing by id: mask + 1 slots */
	coil_pending_req **heap;  /* registered requests by deadline */
	uint32_t cap, mask, len, added;
	int64_t armed_at;         /* the timer's deadline, COIL_NEVER: disarmed */
	coil_timer timer;
};

/*
 * Set up p for up to capacity requests registered at once (1 to 2^24),
 * allocating its tables here, and nowhere else. Returns 0, or -EINVAL,
 * -ENOMEM.
 */
int coil_pending_init(coil_pending *p, unsigned capacity, const char *name);

/*
 * Tear p down and free its tables. Returns 0, or -EBUSY (requests are
 * still added: remove them first; p stays usable), -EINVAL, -EXDEV.
 */
int coil_pending_destroy(coil_pending *p);

/*
 * Register req under id until deadline (COIL_NEVER: no expiry), with its
 * future pending. Does not park. Returns 0, or -EEXIST (id is registered),
 * -ENOSPC (capacity requests are registered), -EBUSY (req is registered
 * in p already), -EINVAL, -EXDEV, -ENOMEM (no room for the table's timer);
 * nothing is added on an error.
 */
int coil_pending_add(coil_pending *p, coil_pending_req *req, uint64_t id,
		     int64_t deadline);

/* The request's future: await it, read its result. */
coil_future *coil_pending_future(coil_pending_req *req);

/*
 * Take the request registered under id out of the table and resolve its
 * future with value (or fail it with err < 0). Returns 0, or -ENOENT (no
 * such id: never registered, answered already, expired or removed: a late
 * reply), -EALREADY (its future was completed directly; it is taken out
 * all the same), -EINVAL (err >= 0), -EXDEV.
 */
int coil_pending_resolve(coil_pending *p, uint64_t id, void *value);
int coil_pending_fail(coil_pending *p, uint64_t id, int err);

/*
 * Fail every registered request with err < 0 (the connection they wait on
 * is gone). Returns how many, or -EINVAL, -EXDEV.
 */
int coil_pending_fail_all(coil_pending *p, int err);

/*
 * Release req: take it out of the table if it is still registered (a reply
 * arriving later gets -ENOENT) and destroy its future. Call it once for
 * every request added, when done with its result. Returns 0, or -EBUSY
 * (tasks await its future; nothing changes), -EINVAL (req not added to p),
 * -EXDEV.
 */
int coil_pending_remove(coil_pending *p, coil_pending_req *req);

/* Requests registered (waiting for a reply) in p. */
unsigned coil_pending_count(const coil_pending *p);

/* ===== event, semaphore, mutex, channel, wait group, gather, select ===== */

/*
 * The calls below follow the rules at the top of this section. In
 * particular every parking call returns -EPERM outside a task, and
 * -ECANCELED in a cancelled task even when it would not have to wait (a
 * worker draining a busy channel still stops), taking nothing. Otherwise
 * what is ready is taken at once, whatever the deadline. A parking call
 * with a deadline may also return -ENOMEM (no memory for its timer),
 * taking nothing, as coil_sleep_until does.
 */

/*
 * An event: a flag that tasks wait for. Setting it wakes every waiter, and
 * it stays set (later waits return at once) until cleared.
 */
typedef struct coil_event {
	/* private */
	coil__prim prim;
	coil__waitq waiters;
	bool set;
} coil_event;

/* Set up e, clear. Returns 0. */
int coil_event_init(coil_event *e, const char *name);

/* Tear e down. Returns 0, or -EBUSY (tasks wait on e), -EINVAL, -EXDEV. */
int coil_event_destroy(coil_event *e);

/*
 * Set e and wake every task waiting on it; a waiter woken stays woken even
 * if e is cleared before it runs. Returns 0, or -EINVAL, -EXDEV.
 */
int coil_event_set(coil_event *e);

/* Clear e. Returns 0, or -EINVAL, -EXDEV. */
int coil_event_clear(coil_event *e);

/* Whether e is set. */
bool coil_event_is_set(const coil_event *e);

/*
 * Wait until e is set: 0 at once if it is. Returns 0, or -ETIMEDOUT,
 * -ECANCELED, -EPERM, -EINVAL, -EXDEV.
 */
int coil_event_wait(coil_event *e, int64_t deadline);

/*
 * A counting semaphore. A release while tasks wait hands the permit
 * straight to the first of them, so permits go in the order tasks asked,
 * and a task arriving later cannot take it first.
 */
typedef struct coil_sem {
	/* private */
	coil__prim prim;
	coil__waitq waiters;
	unsigned count;
} coil_sem;

/* Set up s with count permits. Returns 0. */
int coil_sem_init(coil_sem *s, unsigned count, const char *name);

/* Tear s down. Returns 0, or -EBUSY (tasks wait on s), -EINVAL, -EXDEV. */
int coil_sem_destroy(coil_sem *s);

/*
 * Take a permit, waiting for one if there is none. Returns 0, or
 * -ETIMEDOUT, -ECANCELED, -EPERM, -EINVAL, -EXDEV.
 */
int coil_sem_acquire(coil_sem *s, int64_t deadline);

/*
 * Take a permit if there is one; never parks, also works outside a task.
 * Returns 0, or -EAGAIN (none free), -EINVAL, -EXDEV.
 */
int coil_sem_try_acquire(coil_sem *s);

/*
 * Give a permit back: to the first waiting task if there is one.
 * Returns 0, or -EOVERFLOW (UINT_MAX permits free already), -EINVAL, -EXDEV.
 */
int coil_sem_release(coil_sem *s);

/* Permits free now. */
unsigned coil_sem_value(const coil_sem *s);

/*
 * A mutex owned by the task that locked it: only that task may unlock it.
 * Unlocking hands it to the first waiting task.
 */
typedef struct coil_mutex {
	/* private */
	coil__prim prim;
	coil__waitq waiters;
	coil_task *owner;
} coil_mutex;

/* Set up m, unlocked. Returns 0. */
int coil_mutex_init(coil_mutex *m, const char *name);

/*
 * Tear m down. Returns 0, or -EBUSY (m is locked or waited on; the message
 * names the owner), -EINVAL, -EXDEV.
 */
int coil_mutex_destroy(coil_mutex *m);

/*
 * Lock m, waiting while another task holds it. Returns 0, or -EDEADLK (the
 * caller holds it already), -ETIMEDOUT, -ECANCELED, -EPERM, -EINVAL, -EXDEV.
 */
int coil_mutex_lock(coil_mutex *m, int64_t deadline);

/*
 * Lock m if it is free; never parks. Returns 0, or -EBUSY (another task
 * holds it), -EDEADLK (the caller does), -EPERM (not in a task), -EINVAL,
 * -EXDEV.
 */
int coil_mutex_try_lock(coil_mutex *m);

/*
 * Unlock m. Returns 0, or -EPERM (the caller does not hold it, or is not a
 * task; logged with m's name), -EINVAL, -EXDEV.
 */
int coil_mutex_unlock(coil_mutex *m);

/*
 * A channel: a bounded FIFO queue of fixed-size items between tasks, as
 * asyncio.Queue or a Go channel. Items are copied in and out. Sends wait
 * while it is full (backpressure); receives wait while it is empty. With
 * capacity 0 it holds nothing: a send waits for a receiver and hands the
 * item over (a rendezvous). A channel allocates its ring once, in
 * coil_chan_init; no send or receive allocates.
 *
 * Closing says no more items will come: senders get -EPIPE, receivers get
 * what is left, then -EPIPE. task_done and join count work the way
 * asyncio.Queue does: join waits until every item sent has been received
 * and marked done.
 */
typedef struct coil_chan {
	/* private */
	coil__prim prim;
	coil__waitq senders, receivers, joiners;
	char *ring;
	size_t item_size;
	unsigned cap, head, len;
	bool closed;
	uint64_t undone; /* items received and not yet marked done */
} coil_chan;

/*
 * Set up c for items of item_size bytes, holding up to capacity of them.
 * Returns 0, or -EINVAL (item_size 0, or capacity * item_size overflows),
 * -ENOMEM.
 */
int coil_chan_init(coil_chan *c, size_t item_size, unsigned capacity,
		   const char *name);

/*
 * Free c's ring; items still in it are dropped. Returns 0, or -EBUSY (tasks
 * wait on c), -EINVAL, -EXDEV.
 */
int coil_chan_destroy(coil_chan *c);

/*
 * Copy the item at item into c, waiting while c is full (or, capacity 0,
 * for a receiver). Returns 0 once c holds it or a receiver has it, or:
 *   -EPIPE      c is closed (also when closed while waiting); not sent
 *   -ETIMEDOUT, -ECANCELED  not sent
 *   -EPERM, -EINVAL, -EXDEV
 */
int coil_chan_send(coil_chan *c, const void *item, int64_t deadline);

/*
 * Take the oldest item into item, waiting while c is empty. Returns 0, or:
 *   -EPIPE      c is closed and empty: there will be no more
 *   -ETIMEDOUT, -ECANCELED  nothing taken
 *   -EPERM, -EINVAL, -EXDEV
 */
int coil_chan_recv(coil_chan *c, void *item, int64_t deadline);

/*
 * Send or receive without waiting; also outside a task. Return 0, or
 * -EAGAIN (full, or no receiver waiting at capacity 0; empty, or no sender
 * waiting), -EPIPE (as above), -EINVAL, -EXDEV.
 */
int coil_chan_try_send(coil_chan *c, const void *item);
int coil_chan_try_recv(coil_chan *c, void *item);

/*
 * Close c: waiting senders and every later send get -EPIPE; waiting
 * receivers (c is empty then) get -EPIPE, later ones once c is empty.
 * Returns 0, or -EALREADY (closed before), -EINVAL, -EXDEV.
 */
int coil_chan_close(coil_chan *c);

/* Items held in c. */
unsigned coil_chan_len(const coil_chan *c);

/*
 * Mark one received item as processed (asyncio's task_done). Returns 0, or
 * -EINVAL (more calls than items received; logged with c's name), -EXDEV.
 */
int coil_chan_task_done(coil_chan *c);

/*
 * Wait until every item sent to c has been received and marked done.
 * Returns 0, or -ETIMEDOUT, -ECANCELED, -EPERM, -EINVAL, -EXDEV.
 */
int coil_chan_join(coil_chan *c, int64_t deadline);

/*
 * A wait group: a count of work outstanding (coil_wait_group_add), and
 * tasks waiting for it to drop to zero, as Go's sync.WaitGroup.
 */
typedef struct coil_wait_group {
	/* private */
	coil__prim prim;
	coil__waitq waiters;
	int64_t count;
} coil_wait_group;

/* Set up wg with a count of 0. Returns 0. */
int coil_wait_group_init(coil_wait_group *wg, const char *name);

/* Tear wg down. Returns 0, or -EBUSY (tasks wait on wg), -EINVAL, -EXDEV. */
int coil_wait_group_destroy(coil_wait_group *wg);

/*
 * Add n (which may be negative) to the count; at zero every waiter wakes.
 * Returns 0, or -EINVAL (the count would go below zero: unchanged, and
 * logged with wg's name; or misuse), -EXDEV.
 */
int coil_wait_group_add(coil_wait_group *wg, int n);

/* coil_wait_group_add(wg, -1). */
int coil_wait_group_done(coil_wait_group *wg);

/*
 * Wait until the count is zero: 0 at once if it is. Returns 0, or
 * -ETIMEDOUT, -ECANCELED, -EPERM, -EINVAL, -EXDEV.
 */
int coil_wait_group_wait(coil_wait_group *wg, int64_t deadline);

/* A task that fails makes coil_gather cancel the others. */
#define COIL_GATHER_FAIL_FAST 1u

/*
 * Wait for each of the n tasks to end, then store task i's return value in
 * statuses[i] (statuses may be NULL) and release them all, as coil_join
 * does. With COIL_GATHER_FAIL_FAST, the first task to fail (status < 0,
 * also one that had failed before the call) gets the others cancelled;
 * coil_gather still waits for them to end.
 *
 * While gathered, the tasks cannot be joined, detached, gathered or
 * selected on by anyone else: those calls return -EBUSY. Gathering more
 * than 32 tasks allocates a watch per task for the duration of the call.
 *
 * Returns 0 (every task released), or, every task still valid and joinable
 * (though cancelled, if fail-fast had fired):
 *   -ETIMEDOUT, -ECANCELED  the gathering task's deadline or cancel
 *   -EPERM      not in a task
 *   -EINVAL     a task NULL, listed twice, detached or the main task; or
 *               flags unknown
 *   -EDEADLK    the calling task is in the list
 *   -EBUSY      a task is being joined
 *   -EXDEV      a task of another loop
 *   -ENOMEM
 */
int coil_gather(coil_task **tasks, unsigned n, int *statuses, unsigned flags,
		int64_t deadline);

/*
 * Select: wait for the first of several things, as Go's select.
 *
 *	int v;
 *	coil_select_case cases[] = {
 *		{ .kind = COIL_SELECT_RECV, .chan = &requests, .item = &v },
 *		{ .kind = COIL_SELECT_EVENT, .event = &stop },
 *		{ .kind = COIL_SELECT_TIMER, .at = coil_now() + COIL_SEC(1) },
 *	};
 *	int i = coil_select(cases, 3, COIL_NEVER);
 *
 * A case is ready when:
 *   RECV    chan has an item or a sender waiting, or is closed and empty:
 *           the item is taken into item (result 0), or result -EPIPE
 *   SEND    chan has room or a receiver waiting, or is closed: the item
 *           at item is sent (result 0), or not (result -EPIPE)
 *   FUTURE  future is done: resolved, failed or cancelled (result 0; read
 *           its outcome with coil_future_result); it may be resolved from
 *           another thread
 *   EVENT   event is set (result 0)
 *   JOIN    task has ended: it is released as by coil_join, result is its
 *           return value; meanwhile coil_join and coil_detach on it
 *           return -EBUSY
 *   TIMER   the time at has come (result 0)
 * Exactly one case fires: only its result is written, and no other case
 * takes anything. A send case waiting on a full channel is completed by a
 * receiver as any waiting sender is.
 */
enum coil_select_kind {
	COIL_SELECT_RECV,
	COIL_SELECT_SEND,
	COIL_SELECT_FUTURE,
	COIL_SELECT_EVENT,
	COIL_SELECT_JOIN,
	COIL_SELECT_TIMER,
};

typedef struct coil_select_case {
	enum coil_select_kind kind;
	union {
		coil_chan *chan;
		coil_future *future;
		coil_event *event;
		coil_task *task;
	};
	void *item;     /* RECV: where the item goes; SEND: the item */
	int64_t at;     /* TIMER: when it fires */
	int result;     /* out: the fired case's outcome, as listed above */
} coil_select_case;

/*
 * Fire the first ready case in array order; if none is, wait for one.
 * Returns the index of the case that fired, or, nothing taken from any:
 *   -ETIMEDOUT  deadline passed first (a TIMER case due no later than the
 *               deadline fires instead)
 *   -ECANCELED, -EPERM
 *   -EINVAL     n is 0 or over 64, cases NULL, a kind unknown, an object
 *               NULL or destroyed, a JOIN task detached or the main task
 *   -EDEADLK    a JOIN case on the calling task
 *   -EBUSY      a JOIN task is being joined
 *   -EXDEV      an object of another loop
 */
int coil_select(coil_select_case *cases, unsigned n, int64_t deadline);

/* ===== task group, wait_for, retry, task manager ===== */

/*
 * -- task group (primitives/group.c): structured concurrency
 *
 * Children are spawned into a group, and leaving the group waits for every
 * one of them: no child outlives the code that started it.
 *
 *	coil_group g;
 *	coil_group_init(&g, "fetch");
 *	for (i = 0; i < n; i++)
 *		coil_group_spawn(&g, NULL, fetch, &urls[i], NULL);
 *	ret = coil_group_wait(&g, &status, deadline);  // every child ended
 *	coil_group_destroy(&g);
 *
 * The first child to fail (return a negative errno other than -ECANCELED)
 * cancels its siblings, and its status becomes the group's. A child that
 * was cancelled is not a failure. The group owns its children: their
 * handles stay valid until coil_group_wait returns, and the caller must
 * neither join nor detach them (cancelling one, or reading its state, is
 * fine). A group is reusable once coil_group_wait has returned.
 */
struct coil__group_child;

typedef struct coil_group {
	/* private */
	coil__prim hdr;
	struct coil__group_child *children; /* not reclaimed yet, live or ended */
	struct coil__group_child *spare;    /* records to reuse */
	coil_task *waiter;                  /* the task in coil_group_wait */
	unsigned live;
	int status;                         /* the first failure, or 0 */
	bool cancelled;
} coil_group;

/* Returns 0. */
int coil_group_init(coil_group *g, const char *name);

/*
 * Start fn(arg) as a child of g (a task of this loop, as coil_spawn starts
 * one; opts may be NULL, and must not ask for a detached task). On success
 * *out (if out is not NULL) is its handle, valid until coil_group_wait
 * returns; the group releases it: coil_join and coil_detach on it return
 * -EBUSY. Does not park; may be called from a callback. Returns 0, or:
 *   -ECANCELED  the group is cancelled (coil_group_cancel, or a child
 *               failed): nothing was started; coil_group_wait resets it
 *   -EINVAL     fn is NULL, or opts->detached
 *   -ENOMEM     no stack, or no memory for the child's record
 *   and the misuse errors of every primitive (-EXDEV, -EINVAL).
 */
int coil_group_spawn(coil_group *g, coil_task **out, coil_fn *fn, void *arg,
		     const coil_task_opts *opts);

/*
 * Cancel every child of g that has not ended, and refuse new children
 * until coil_group_wait returns. Does not park. Returns 0, or a misuse error.
 */
int coil_group_cancel(coil_group *g);

/*
 * Leave the group: park until every child has ended, whatever happens. On
 * the deadline, or when the calling task is cancelled (also before the
 * call), the children are cancelled and still waited for: they unwind
 * promptly, and their cleanup has run when this returns. Then the ended
 * children are released, *status (may be NULL) is the group's first
 * failure, 0 if none, and the group is empty and usable again.
 *
 * Returns 0, -ETIMEDOUT or -ECANCELED (every child has ended in all three
 * cases; so also after -ENOMEM, no memory for the deadline, which is
 * handled as the deadline passing), or without waiting:
 *   -EPERM    not called from a task
 *   -EBUSY    another task is waiting on g
 *   -EDEADLK  called from a child of g
 *   and the misuse errors.
 */
int coil_group_wait(coil_group *g, int *status, int64_t deadline);

/*
 * Tear g down. Returns 0, or -EBUSY while children live or a task waits
 * (g stays usable), or a misuse error. Children that ended without a
 * coil_group_wait are released; a failure among them is reported through
 * the log hook, since nobody else will see it.
 */
int coil_group_destroy(coil_group *g);

/*
 * -- wait_for (primitives/waitfor.c)
 *
 * Run fn(arg) as a task (named "wait_for") and wait for it until deadline.
 * Returns 0 with *status (may be NULL) = fn's return value. When the
 * deadline passes first, the task is cancelled and waited for (its cleanup
 * runs before this returns) and -ETIMEDOUT is returned; when the calling
 * task is cancelled, likewise with -ECANCELED. In both cases *status is
 * still what the task ended with: -ECANCELED as a rule, or its own result
 * if it completed anyway, so nothing it did is lost. A deadline already
 * passed cancels the task before it runs. Also -EPERM (not in a task),
 * -EINVAL (fn NULL), or an error of coil_spawn (nothing was run).
 */
int coil_wait_for(coil_fn *fn, void *arg, int *status, int64_t deadline);

/*
 * -- retry (primitives/waitfor.c)
 *
 * Run fn(arg) again and again until it succeeds, each attempt a task under
 * coil_wait_for with its own deadline, sleeping between attempts with an
 * exponential backoff and random jitter:
 *
 *	delay(k) = min(backoff_initial * multiplier^(k-1), backoff_max)
 *	sleep    = delay(k) * (1 - jitter * u), u uniform in [0, 1)
 *
 * after the k-th failed attempt. jitter 1 is "full jitter", which spreads
 * clients that failed together; 0 sleeps exactly delay(k).
 */

/* Whether an attempt that ended with status (< 0) is worth another. */
typedef bool coil_retry_pred(int status, void *arg);

/*
 * Called before each sleep: attempt (from 1) failed with status, and the
 * next starts after delay ns. For logging; it must not park.
 */
typedef void coil_retry_notify(unsigned attempt, int status, int64_t delay,
			       void *arg);

typedef struct coil_retry_opts {
	/* Attempts at most, 1 or more. */
	unsigned attempts;
	/* Each attempt's time (ns) before it is cancelled. 0: no limit. */
	int64_t attempt_timeout;
	/* Sleep after the first failure (ns). 0: retry at once, always. */
	int64_t backoff_initial;
	/* Cap on the sleep (ns). 0: none. */
	int64_t backoff_max;
	/* Growth of the sleep per failure, >= 1. 0: 2. */
	double multiplier;
	/* 0 to 1: the share of each sleep that is random. */
	double jitter;
	/* Seeds the jitter. 0: a seed from the clock. */
	uint64_t seed;
	/* NULL: every failure but -ECANCELED is retried. */
	coil_retry_pred *retryable;
	coil_retry_notify *notify; /* may be NULL */
	void *arg;                 /* for retryable and notify */
} coil_retry_opts;

/*
 * Run fn(arg) until an attempt succeeds (status >= 0), an attempt fails
 * with an error retryable() rejects, or opts->attempts have been made; opts
 * may be NULL for 3 attempts, 100 ms doubling up to 10 s, jitter 0.5. An
 * attempt that passes attempt_timeout ends with status -ETIMEDOUT (unless
 * it completed anyway). deadline bounds everything, sleeps included: when
 * the next attempt could not start before it, coil_retry returns at once
 * rather than sleep in vain.
 *
 * Returns the number of attempts made (>= 1), with *status (may be NULL) =
 * the last attempt's status: its result, or the last error. Or:
 *   -ETIMEDOUT  deadline passed (or would have, before the next attempt)
 *   -ECANCELED  the calling task was cancelled; a running attempt has been
 *               cancelled and has ended
 *   with *status the last attempt's status (0 before any attempt); or,
 *   without running fn:
 *   -EINVAL     fn NULL; attempts 0; a negative time; multiplier below 1
 *               (and not 0); jitter outside [0, 1]
 *   -EPERM      not called from a task
 */
int coil_retry(coil_fn *fn, void *arg, const coil_retry_opts *opts,
	       int *status, int64_t deadline);

/*
 * -- task manager (primitives/manager.c): jobs with a status, progress and
 * metadata, for code that asks "what is running, how far along, and what
 * became of job 42?"
 *
 *	coil_manager m;
 *	coil_manager_init(&m, &(coil_manager_opts){ .max_workers = 4 });
 *	coil_manager_start(&m);
 *	id = coil_manager_submit(&m, resize, img, &(coil_job_opts){
 *		.name = "resize", .deadline = coil_now() + COIL_SEC(30) });
 *	coil_manager_wait(&m, id, &info, COIL_NEVER);  // info.state, .status
 *	coil_manager_stop(&m, COIL_NEVER);
 *	coil_manager_destroy(&m);
 *
 * Each job runs as a task of the manager's loop; at most max_workers at a
 * time, the rest wait PENDING in submission order. A record of every job is
 * kept, and read by id, while the job lives and for the retention period
 * after it ends; then it is reclaimed and its id is unknown (-ENOENT).
 * Reclaiming happens on the manager's calls and on a timer. Records are
 * allocated per job (about 550 bytes); waiting allocates nothing.
 */
enum coil_job_state {
	COIL_JOB_PENDING,   /* submitted, waiting for a worker or for start */
	COIL_JOB_RUNNING,   /* its task has started */
	COIL_JOB_COMPLETED, /* returned >= 0 */
	COIL_JOB_FAILED,    /* returned an error, or passed its deadline */
	COIL_JOB_CANCELLED, /* cancelled by coil_manager_cancel or stop */
};

/* "pending", "running", "completed", "failed" or "cancelled". */
const char *coil_job_state_name(enum coil_job_state state);

/* For coil_manager_list: jobs in any state. */
#define COIL_JOB_ANY (-1)

/* Room for a job's metadata: every key and value with its NUL. */
#define COIL_JOB_META_SIZE 256

typedef struct coil_job_meta {
	const char *key, *value;
} coil_job_meta;

typedef struct coil_job_opts {
	/* Copied, at most 31 bytes kept. NULL: "job-<id>". */
	const char *name;
	/*
	 * Absolute, on coil_now()'s clock. A job still pending or running
	 * then is cancelled and ends FAILED with -ETIMEDOUT; a job never
	 * starts past it. 0: none.
	 */
	int64_t deadline;
	/* Key/value pairs, copied into the record. */
	const coil_job_meta *meta;
	unsigned nmeta;
	/* The job task's stack, as coil_task_opts.stack_size. */
	size_t stack_size;
} coil_job_opts;

/* A copy of a job's record. */
typedef struct coil_job_info {
	uint64_t id;
	enum coil_job_state state;
	/*
	 * COMPLETED: the job's return value (>= 0). FAILED: its error
	 * (-ETIMEDOUT past the deadline). CANCELLED: -ECANCELED. Else 0.
	 */
	int status;
	int progress; /* 0 to 100, as the job set it */
	/* On the manager's clock; 0 until it happens. */
	int64_t submitted, started, ended;
	int64_t deadline; /* COIL_NEVER when none */
	char name[32];
	unsigned nmeta;
	char meta[COIL_JOB_META_SIZE]; /* private: read with coil_job_info_meta */
} coil_job_info;

/* The value of key in info's metadata, or NULL. */
const char *coil_job_info_meta(const coil_job_info *info, const char *key);

typedef struct coil_manager_opts {
	/* Jobs running at once. 0: no limit. */
	unsigned max_workers;
	/* How long (ns) records of ended jobs are kept. 0: one hour. */
	int64_t retention;
	/*
	 * The clock of the records' times and of retention (not of
	 * deadlines), e.g. a fake one in tests. NULL: coil_now.
	 */
	int64_t (*clock)(void *arg);
	void *clock_arg;
	/* For messages; kept by pointer. */
	const char *name;
} coil_manager_opts;

struct coil__job;

typedef struct coil_manager {
	/* private */
	coil__prim hdr;
	coil_manager_opts opts;
	struct coil__job *first, *last;       /* every record, by id */
	struct coil__job *pending, *pending_last; /* not started, FIFO */
	struct coil__job *ended, *ended_last;     /* by end time: reclaim order */
	struct coil__job **table;             /* by id, chained */
	size_t buckets, count;
	coil__waitq idle;                     /* coil_manager_stop waits here */
	coil_timer reaper;
	uint64_t next_id;
	unsigned running;                     /* jobs with a task alive */
	unsigned waiting;                     /* tasks parked on m or its jobs */
	bool started;
} coil_manager;

/*
 * Set up a stopped manager of this thread's loop (opts may be NULL).
 * Returns 0, or -EINVAL (negative retention).
 */
int coil_manager_init(coil_manager *m, const coil_manager_opts *opts);

/* Start running jobs, those pending first. Returns 0 or a misuse error. */
int coil_manager_start(coil_manager *m);

/*
 * Submit fn(arg) as a job. It starts at once when the manager is started
 * and a worker is free; otherwise it waits PENDING. Does not park. Returns
 * the job's id (> 0, never reused), or:
 *   -EINVAL  fn NULL; a metadata key or value NULL
 *   -E2BIG   the metadata does not fit in COIL_JOB_META_SIZE
 *   -ENOMEM  no memory for the record
 *   and the misuse errors. A job whose task cannot be spawned ends FAILED
 *   with the error of coil_spawn.
 */
int64_t coil_manager_submit(coil_manager *m, coil_fn *fn, void *arg,
			    const coil_job_opts *opts);

/*
 * Report the calling job's progress, 0 to 100. Returns 0, or -ERANGE
 * (outside 0..100), -EPERM (not called from a job's task).
 */
int coil_job_progress(int percent);

/* Copy job id's record into *info. Returns 0, or -ENOENT (unknown or reclaimed). */
int coil_manager_info(coil_manager *m, uint64_t id, coil_job_info *info);

/*
 * The ids of the jobs in state (or COIL_JOB_ANY), in submission order,
 * into ids[0 .. cap). Returns how many jobs match: more than cap when the
 * array is too short.
 */
int coil_manager_list(coil_manager *m, int state, uint64_t *ids, size_t cap);

/*
 * Cancel job id: a pending job ends CANCELLED without running, a running
 * one is cancelled (coil_cancel) and ends CANCELLED unless it completes
 * anyway. Does not park. Returns 0, or -ENOENT, -EALREADY (it had ended).
 */
int coil_manager_cancel(coil_manager *m, uint64_t id);

/*
 * Park until job id has ended, then copy its record into *info (may be
 * NULL). Returns 0, or -ENOENT, -ETIMEDOUT, -ECANCELED (the job is not
 * affected by either), -EPERM (not in a task), -EDEADLK (called by job id
 * itself).
 */
int coil_manager_wait(coil_manager *m, uint64_t id, coil_job_info *info,
		      int64_t deadline);

/*
 * Stop: cancel the pending jobs (they end CANCELLED without running) and
 * the running ones, and park until those have ended. Jobs submitted
 * afterwards wait PENDING for the next start. Returns 0, or -ETIMEDOUT /
 * -ECANCELED with jobs still unwinding (wait again with coil_manager_stop),
 * -EPERM (not in a task), -EDEADLK (called by one of m's jobs: nothing
 * was cancelled).
 */
int coil_manager_stop(coil_manager *m, int64_t deadline);

/*
 * Free every record. Returns 0, or -EBUSY while jobs run or tasks wait on
 * m (stop it first), or a misuse error. Pending jobs are dropped unrun.
 */
int coil_manager_destroy(coil_manager *m);

#ifdef __cplusplus
}
#endif

#endif /* COIL_H */
