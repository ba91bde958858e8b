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
	struct io_uring_sqe *sqe;

	if (__builtin_expect(r->live_gen == coil__fork_generation, 1)) {
		sqe = io_uring_get_sqe(&r->uring);
		if (__builtin_expect(sqe != NULL, 1)) {
			io_uring_sqe_set_data(sqe, op);
			r->inflight += op != NULL;
			return sqe;
		}
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

#ifdef __cplusplus
}
#endif

#endif /* COIL_H */
