/* executor/io.c: awaiting io_uring operations from tasks. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "executor/loop.h"
#include "helper.h"

static int io_nop(void)
{
	coil_io io;

	io_uring_prep_nop(coil_io_prep(&io));
	return coil_io_await(&io, COIL_NEVER);
}

static int io_read(int fd, void *buf, unsigned len, int64_t deadline)
{
	coil_io io;

	io_uring_prep_read(coil_io_prep(&io), fd, buf, len, 0);
	return coil_io_await(&io, deadline);
}

static int io_write(int fd, const void *buf, unsigned len)
{
	coil_io io;

	io_uring_prep_write(coil_io_prep(&io), fd, buf, len, 0);
	return coil_io_await(&io, COIL_NEVER);
}

static void open_pipe(int p[2])
{
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
}

static void close_pipe(int p[2])
{
	close(p[0]);
	close(p[1]);
}

/* Reads once from fd, then records what its next parking call gets. */
struct reader {
	int fd;
	char buf[16];
	int res;
	int next;
};

static int read_then_yield(void *arg)
{
	struct reader *r = arg;

	r->res = io_read(r->fd, r->buf, sizeof(r->buf), COIL_NEVER);
	r->next = coil_yield();
	return 0;
}

/* ------------------------------------------------------------ results */

static int nop_returns_0(void *arg)
{
	(void)arg;
	ck_assert_int_eq(io_nop(), 0);
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

START_TEST(test_an_awaited_nop_returns_0)
{
	run(nop_returns_0, NULL);
}
END_TEST

static int read_parked_before_the_write(void *arg)
{
	struct reader r = { 0 };
	coil_task *t;
	int p[2];

	(void)arg;
	open_pipe(p);
	r.fd = p[0];
	ck_assert_int_eq(coil_spawn(&t, read_then_yield, &r, NULL), 0);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	ck_assert_int_eq(write(p[1], "hello", 5), 5);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 5);
	ck_assert_mem_eq(r.buf, "hello", 5);
	ck_assert_int_eq(r.next, 0);
	ck_assert_uint_eq(inflight(), 0);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_read_parked_before_the_write_returns_the_bytes)
{
	run(read_parked_before_the_write, NULL);
}
END_TEST

static int write_returns_its_count(void *arg)
{
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(io_write(p[1], "written", 7), 7);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 7);
	ck_assert_mem_eq(buf, "written", 7);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_write_returns_its_count)
{
	run(write_returns_its_count, NULL);
}
END_TEST

#define GROUP 7
#define BUF_ID 3

/* A read that picks a provided buffer says which one in its CQE's flags. */
static int flags_reach_the_task(void *arg)
{
	char pool[16];
	struct io_uring_sqe *sqe;
	coil_io io;
	int p[2];

	(void)arg;
	open_pipe(p);
	io_uring_prep_provide_buffers(coil_io_prep(&io), pool, sizeof(pool), 1,
				      GROUP, BUF_ID);
	ck_assert_int_eq(coil_io_await(&io, COIL_NEVER), 0);
	ck_assert_uint_eq(coil_io_cqe_flags(&io), 0);
	ck_assert_int_eq(write(p[1], "flags", 5), 5);
	sqe = coil_io_prep(&io);
	io_uring_prep_read(sqe, p[0], NULL, sizeof(pool), 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = GROUP;
	ck_assert_int_eq(coil_io_await(&io, COIL_NEVER), 5);
	ck_assert(coil_io_cqe_flags(&io) & IORING_CQE_F_BUFFER);
	ck_assert_uint_eq(coil_io_cqe_flags(&io) >> IORING_CQE_BUFFER_SHIFT, BUF_ID);
	ck_assert_mem_eq(pool, "flags", 5);
	close_pipe(p);
	return 0;
}

START_TEST(test_cqe_flags_reach_the_awaiting_task)
{
	run(flags_reach_the_task, NULL);
}
END_TEST

#define TASKS 1000
#define NOPS 100

struct nop_tally {
	int ops;
	int bad;      /* results other than 0 */
	int last_bad;
	uint64_t max_inflight;
};

static int await_nops(void *arg)
{
	struct nop_tally *tally = arg;
	coil_io io;
	int i, ret;

	for (i = 0; i < NOPS; i++) {
		io_uring_prep_nop(coil_io_prep(&io));
		if (inflight() > tally->max_inflight)
			tally->max_inflight = inflight();
		ret = coil_io_await(&io, COIL_NEVER);
		if (ret != 0) {
			tally->bad++;
			tally->last_bad = ret;
		}
		tally->ops++;
	}
	return 0;
}

static int many_tasks_await_nops(void *arg)
{
	coil_task *t[TASKS];
	struct nop_tally tally = { 0 };
	int i;

	(void)arg;
	for (i = 0; i < TASKS; i++)
		ck_assert_int_eq(coil_spawn(&t[i], await_nops, &tally, NULL), 0);
	for (i = 0; i < TASKS; i++)
		ck_assert_int_eq(join(t[i]), 0);
	ck_assert_int_eq(tally.ops, TASKS * NOPS);
	ck_assert_msg(tally.bad == 0, "%d NOPs failed, the last with %d",
		      tally.bad, tally.last_bad);
	/* The tasks waited side by side, not one after another. */
	ck_assert_uint_gt(tally.max_inflight, 1);
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

START_TEST(test_a_thousand_tasks_awaiting_nops_all_complete)
{
	run(many_tasks_await_nops, NULL);
}
END_TEST

/* --------------------------------------------------------- deadlines */

static int read_times_out_at_its_deadline(void *arg)
{
	int64_t deadline = coil_now() + COIL_MSEC(20);
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(io_read(p[0], buf, sizeof(buf), deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_uint_eq(inflight(), 0);
	/* Cancelled in the kernel, not abandoned: it took none of the data. */
	ck_assert_int_eq(write(p[1], "late", 4), 4);
	ck_assert_int_eq(io_read(p[0], buf, sizeof(buf), COIL_NEVER), 4);
	ck_assert_mem_eq(buf, "late", 4);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_read_times_out_at_its_deadline_and_is_cancelled)
{
	run(read_times_out_at_its_deadline, NULL);
}
END_TEST

static int passed_deadline_times_out(void *arg)
{
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(io_read(p[0], buf, sizeof(buf), coil_now()), -ETIMEDOUT);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);
	ck_assert_int_eq(write(p[1], "late", 4), 4);
	ck_assert_int_eq(io_read(p[0], buf, sizeof(buf), COIL_NEVER), 4);
	ck_assert_mem_eq(buf, "late", 4);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_passed_deadline_times_out_after_the_ops_completion)
{
	run(passed_deadline_times_out, NULL);
}
END_TEST

/*
 * Deterministic: the read and its cancel reach the kernel in one submission,
 * in that order, and a read of a pipe that holds data completes as it is
 * issued, so the cancel finds nothing left to cancel.
 */
static int completion_beats_passed_deadline(void *arg)
{
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(write(p[1], "ready", 5), 5);
	ck_assert_int_eq(io_read(p[0], buf, sizeof(buf), coil_now()), 5);
	ck_assert_mem_eq(buf, "ready", 5);
	ck_assert_uint_eq(inflight(), 0);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_read_completing_despite_a_passed_deadline_keeps_its_bytes)
{
	run(completion_beats_passed_deadline, NULL);
}
END_TEST

/* ------------------------------------------------------ cancellation */

struct cancelled_reader {
	int fd;
	int read;
	bool deadline_left_live;
	uint64_t inflight_after_prep;
	unsigned unsubmitted_after_prep;
	int await;
	int yield;
};

static int read_until_cancelled(void *arg)
{
	struct cancelled_reader *c = arg;
	char buf[8];
	coil_io io;

	/* A deadline, so that the cancel must also retire it. */
	c->read = io_read(c->fd, buf, sizeof(buf), coil_now() + COIL_SEC(10));
	c->deadline_left_live = coil_current()->deadline != COIL_NEVER ||
				coil__live_timers(coil__this_loop) != 0;
	io_uring_prep_read(coil_io_prep(&io), c->fd, buf, sizeof(buf), 0);
	c->inflight_after_prep = inflight();
	c->unsubmitted_after_prep = unsubmitted();
	c->await = coil_io_await(&io, COIL_NEVER);
	c->yield = coil_yield();
	return 0;
}

static int cancel_in_flight(void *arg)
{
	struct cancelled_reader c = { 0 };
	coil_task *t;
	char byte;
	int p[2];

	(void)arg;
	open_pipe(p);
	c.fd = p[0];
	ck_assert_int_eq(coil_spawn(&t, read_until_cancelled, &c, NULL), 0);
	let_tasks_park();
	ck_assert_uint_eq(inflight(), 1);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(c.read, -ECANCELED);
	ck_assert(!c.deadline_left_live);
	ck_assert_uint_eq(c.inflight_after_prep, 0);
	ck_assert_uint_eq(c.unsubmitted_after_prep, 0);
	ck_assert_int_eq(c.await, -ECANCELED);
	ck_assert_int_eq(c.yield, -ECANCELED);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(read(p[0], &byte, 1), 1);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_cancelled_read_returns_ecanceled_and_so_does_every_later_park)
{
	run(cancel_in_flight, NULL);
}
END_TEST

/*
 * Deterministic: main yields, so it is queued before the loop enters the
 * kernel; the read's completion, dispatched in that entry, queues the reader
 * behind main. main therefore runs first and cancels a task whose op is done.
 */
static int cancel_after_dispatch(void *arg)
{
	int64_t deadline = coil_now() + COIL_SEC(5);
	struct reader r = { 0 };
	coil_task *t;
	int p[2];

	(void)arg;
	open_pipe(p);
	r.fd = p[0];
	ck_assert_int_eq(coil_spawn(&t, read_then_yield, &r, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(write(p[1], "hello", 5), 5);
	while (parked(t)) {
		ck_assert_int_lt(coil_now(), deadline);
		ck_assert_int_eq(coil_yield(), 0);
	}
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 5);
	ck_assert_mem_eq(r.buf, "hello", 5);
	ck_assert_int_eq(r.next, -ECANCELED);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_completion_dispatched_before_the_cancel_keeps_its_bytes)
{
	run(cancel_after_dispatch, NULL);
}
END_TEST

/*
 * Deterministic: the reader runs, queues its read and parks, then main runs
 * in the same batch, before the loop enters the kernel, and queues the
 * cancel behind the read. One submission carries both, in order, and the
 * read of a pipe that holds data completes as it is issued.
 */
static int cancel_behind_the_read(void *arg)
{
	struct reader r = { 0 };
	coil_task *t;
	int p[2];

	(void)arg;
	open_pipe(p);
	r.fd = p[0];
	ck_assert_int_eq(write(p[1], "hello", 5), 5);
	ck_assert_int_eq(coil_spawn(&t, read_then_yield, &r, NULL), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(parked(t));
	ck_assert_uint_eq(unsubmitted(), 1);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 5);
	ck_assert_mem_eq(r.buf, "hello", 5);
	ck_assert_int_eq(r.next, -ECANCELED);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_read_submitted_with_its_cancel_keeps_the_bytes_already_there)
{
	run(cancel_behind_the_read, NULL);
}
END_TEST

/* The task cancels itself after queueing the read: await must still wait for it. */
static int cancel_between_prep_and_await(void *arg)
{
	char buf[8], byte;
	coil_io io;
	int p[2];

	(void)arg;
	open_pipe(p);
	io_uring_prep_read(coil_io_prep(&io), p[0], buf, sizeof(buf), 0);
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ck_assert_int_eq(coil_io_await(&io, COIL_NEVER), -ECANCELED);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(read(p[0], &byte, 1), 1);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_cancel_between_prep_and_await_cancels_the_op_in_the_kernel)
{
	run(cancel_between_prep_and_await, NULL);
}
END_TEST

static int leave_a_reader_parked(void *arg)
{
	coil_task_opts detached = { .detached = true };

	ck_assert_int_eq(coil_spawn(NULL, read_then_yield, arg, &detached), 0);
	let_tasks_park();
	return 0;
}

START_TEST(test_a_read_left_parked_when_main_returns_is_cancelled_before_run_returns)
{
	struct reader r = { .res = 1 };
	char byte;
	int p[2];

	open_pipe(p);
	r.fd = p[0];
	capture_log();
	run(leave_a_reader_parked, &r);
	ck_assert(log_has(COIL_LOG_WARN, "still alive"));
	ck_assert_int_eq(r.res, -ECANCELED);
	ck_assert_int_eq(r.next, -ECANCELED);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(read(p[0], &byte, 1), 1);
	close_pipe(p);
}
END_TEST

/* ---------------------------------------------------------- refusals */

START_TEST(test_prep_without_a_loop_is_refused_with_eperm)
{
	struct io_uring_sqe *sqe;
	coil_io io;

	ck_assert_ptr_null(coil_loop_ring());
	sqe = coil_io_prep(&io);
	ck_assert_ptr_nonnull(sqe);
	io_uring_prep_nop(sqe);
	ck_assert_int_eq(coil_io_await(&io, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_io_await(&io, coil_now() + COIL_SEC(1)), -EPERM);
}
END_TEST

struct in_callback {
	bool fired;
	int res;
	uint64_t inflight;
	unsigned unsubmitted;
};

static void prep_in_callback(coil_timer *timer, void *arg)
{
	struct in_callback *c = arg;
	coil_io io;

	(void)timer;
	io_uring_prep_nop(coil_io_prep(&io));
	c->res = coil_io_await(&io, COIL_NEVER);
	c->inflight = inflight();
	c->unsubmitted = unsubmitted();
	c->fired = true;
}

static int arm_prepping_timer(void *arg)
{
	struct in_callback c = { .res = 1 };
	coil_timer timer;

	(void)arg;
	coil_timer_init(&timer, prep_in_callback, &c);
	ck_assert_int_eq(coil_timer_arm(&timer, coil_now()), 0);
	/* A due timer fires in the iteration that runs this yield. */
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(c.fired);
	ck_assert_int_eq(c.res, -EPERM);
	ck_assert_uint_eq(c.inflight, 0);
	ck_assert_uint_eq(c.unsubmitted, 0);
	return 0;
}

START_TEST(test_prep_in_a_timer_callback_is_refused_with_eperm)
{
	run(arm_prepping_timer, NULL);
}
END_TEST

struct refused {
	int yield;
	uint64_t inflight;
	unsigned unsubmitted;
	int await;
};

static int prep_after_cancel(void *arg)
{
	struct refused *r = arg;
	coil_io io;

	r->yield = coil_yield();
	io_uring_prep_nop(coil_io_prep(&io));
	r->inflight = inflight();
	r->unsubmitted = unsubmitted();
	r->await = coil_io_await(&io, COIL_NEVER);
	return 0;
}

static int cancel_then_prep(void *arg)
{
	struct refused r = { 0 };
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, prep_after_cancel, &r, NULL), 0);
	ck_assert_int_eq(coil_yield(), 0); /* t runs up to its yield */
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.yield, -ECANCELED);
	ck_assert_uint_eq(r.inflight, 0);
	ck_assert_uint_eq(r.unsubmitted, 0);
	ck_assert_int_eq(r.await, -ECANCELED);
	return 0;
}

START_TEST(test_prep_in_a_cancelled_task_is_refused_with_ecanceled)
{
	run(cancel_then_prep, NULL);
}
END_TEST

static int prep_and_yield(void *arg)
{
	io_uring_prep_nop(coil_io_prep(arg));
	coil_yield();
	return 0;
}

static int await_anothers_op(void *arg)
{
	coil_task *t;
	coil_io io;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, prep_and_yield, &io, NULL), 0);
	ck_assert_int_eq(coil_yield(), 0);
	coil_io_await(&io, COIL_NEVER);
	ck_abort_msg("awaiting another task's op returned");
	return 0;
}

/* The op would wake the wrong task, whose frame may be gone by then. */
START_TEST(test_awaiting_an_op_prepared_by_another_task_aborts)
{
	capture_log();
	run(await_anothers_op, NULL);
}
END_TEST

/* ----------------------------------------------------- stack buffers */

#define PATTERN 0xa5

/*
 * One function for both roles, so that a victim on a reused stack has its
 * buffer exactly where the reader before it had its own.
 */
struct stack_user {
	int fd;
	bool cancel;          /* reader: else it times out */
	const bool *written;  /* victim: set once main wrote to the fds */
	unsigned char *buf;
	int res;
	bool intact;
};

static int use_the_stack(void *arg)
{
	struct stack_user *u = arg;
	unsigned char buf[64];
	int i;

	u->buf = buf;
	if (!u->written) {
		u->res = io_read(u->fd, buf, sizeof(buf),
				 u->cancel ? COIL_NEVER : coil_now() + COIL_MSEC(10));
		return 0;
	}
	memset(buf, PATTERN, sizeof(buf));
	while (!*u->written)
		coil_yield();
	/* Each yield is a kernel entry, where a stray read would complete. */
	for (i = 0; i < 3; i++)
		coil_yield();
	u->intact = true;
	for (i = 0; i < (int)sizeof(buf); i++)
		u->intact &= buf[i] == PATTERN;
	return 0;
}

static int reuse_stacks_of_interrupted_reads(void *arg)
{
	struct stack_user reader[4], victim[4];
	coil_task *t[4];
	bool written = false;
	uint64_t value = 7;
	char data[16];
	int p[2], efd, i, j;

	(void)arg;
	open_pipe(p);
	efd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(efd, 0);
	for (i = 0; i < 4; i++) {
		reader[i] = (struct stack_user){ .fd = i % 2 ? efd : p[0],
						 .cancel = i < 2 };
		ck_assert_int_eq(coil_spawn(&t[i], use_the_stack, &reader[i], NULL), 0);
	}
	let_tasks_park();
	ck_assert_uint_eq(inflight(), 4);
	ck_assert_int_eq(coil_cancel(t[0]), 0);
	ck_assert_int_eq(coil_cancel(t[1]), 0);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_int_eq(reader[i].res, i < 2 ? -ECANCELED : -ETIMEDOUT);
	}
	ck_assert_uint_eq(inflight(), 0);

	for (i = 0; i < 4; i++) {
		victim[i] = (struct stack_user){ .written = &written };
		ck_assert_int_eq(coil_spawn(&t[i], use_the_stack, &victim[i], NULL), 0);
	}
	ck_assert_int_eq(coil_yield(), 0); /* the victims fill their buffers */
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 4 && victim[i].buf != reader[j].buf; j++)
			;
		ck_assert_msg(j < 4, "victim %d's buffer is not on a reader's stack", i);
	}
	ck_assert_int_eq(write(p[1], "stale", 5), 5);
	ck_assert_int_eq(write(efd, &value, sizeof(value)), sizeof(value));
	written = true;
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_msg(victim[i].intact, "victim %d's buffer was written", i);
	}
	/* And the data is all still there for a read that is alive. */
	ck_assert_int_eq(io_read(p[0], data, sizeof(data), COIL_NEVER), 5);
	ck_assert_int_eq(io_read(efd, &value, sizeof(value), COIL_NEVER), 8);
	ck_assert_uint_eq(value, 7);
	close_pipe(p);
	close(efd);
	return 0;
}

START_TEST(test_interrupted_reads_never_write_into_a_reused_stack)
{
	run(reuse_stacks_of_interrupted_reads, NULL);
}
END_TEST

/* -------------------------------------------------------- bad input */

static int read_bad_fd(void *arg)
{
	char buf[4];
	int p[2];

	(void)arg;
	ck_assert_int_eq(io_read(-1, buf, sizeof(buf), COIL_NEVER), -EBADF);
	ck_assert_int_eq(io_nop(), 0);
	open_pipe(p);
	ck_assert_int_eq(io_write(p[1], "ok", 2), 2);
	ck_assert_int_eq(io_read(p[0], buf, sizeof(buf), COIL_NEVER), 2);
	ck_assert_uint_eq(inflight(), 0);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_read_of_a_bad_fd_returns_ebadf_and_the_loop_goes_on)
{
	run(read_bad_fd, NULL);
}
END_TEST

/* ------------------------------------- ops completed before their await */

/*
 * Two ops issued together complete in one kernel entry: the first wakes the
 * task, the second is done before the task awaits it.
 */
static void issue_two_nops_await_both(int64_t deadline)
{
	coil_io a, b;

	io_uring_prep_nop(coil_io_prep(&a));
	io_uring_prep_nop(coil_io_prep(&b));
	ck_assert_int_eq(coil_io_await(&a, deadline), 0);
	ck_assert(b.done);
	ck_assert_int_eq(coil_io_await(&b, deadline), 0);
}

static int await_done_op_then_sleep(void *arg)
{
	int ret;

	(void)arg;
	issue_two_nops_await_both(coil_now() + COIL_SEC(10));
	ret = coil_sleep(COIL_MSEC(1));
	ck_assert_msg(ret == 0, "coil_sleep after awaiting a done op: %s",
		      strerror(-ret));
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

START_TEST(test_awaiting_an_op_already_done_leaves_no_deadline_armed)
{
	run(await_done_op_then_sleep, NULL);
}
END_TEST

/* ------------------------------------------------------ lazy deadlines */

/* A read of the byte already in the pipe: its deadline never fires. */
static void read_ready_byte(int p[2], int64_t deadline)
{
	char byte;

	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(io_read(p[0], &byte, 1, deadline), 1);
}

/* How long a read of an empty pipe took to time out at deadline. */
static int64_t time_out_read(int fd, int64_t deadline)
{
	int64_t start = coil_now();
	char byte;

	ck_assert_int_eq(io_read(fd, &byte, 1, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	return coil_now() - start;
}

static int reuse_an_earlier_entry(void *arg)
{
	int p[2];

	(void)arg;
	open_pipe(p);
	read_ready_byte(p, coil_now() + COIL_MSEC(20));
	/* The entry due in 20 ms moves itself to this later deadline. */
	time_out_read(p[0], coil_now() + COIL_MSEC(60));
	close_pipe(p);
	return 0;
}

START_TEST(test_a_deadline_after_a_stale_earlier_one_fires_at_its_own_time)
{
	run(reuse_an_earlier_entry, NULL);
}
END_TEST

static int move_a_later_entry(void *arg)
{
	int p[2];

	(void)arg;
	open_pipe(p);
	read_ready_byte(p, coil_now() + COIL_SEC(3600));
	/* An hour-long stale entry must not delay a 20 ms deadline. */
	ck_assert_int_lt(time_out_read(p[0], coil_now() + COIL_MSEC(20)),
			 COIL_SEC(2));
	close_pipe(p);
	return 0;
}

START_TEST(test_a_deadline_before_a_stale_later_one_fires_at_its_own_time)
{
	run(move_a_later_entry, NULL);
}
END_TEST

static int many_calls_one_entry(void *arg)
{
	int p[2];

	(void)arg;
	open_pipe(p);
	for (int i = 0; i < 1000; i++)
		read_ready_byte(p, coil_now() + COIL_SEC(60));
	/* One entry for the task, stale, whatever the number of calls. */
	ck_assert_uint_le(coil__timer_heap_len(&coil__this_loop->timers), 1);
	ck_assert_uint_eq(coil__live_timers(coil__this_loop), 0);
	close_pipe(p);
	return 0;
}

START_TEST(test_deadlines_that_never_fire_leave_at_most_one_entry_per_task)
{
	run(many_calls_one_entry, NULL);
}
END_TEST

static int park_forever_after_a_deadline(void *arg)
{
	int p[2];

	(void)arg;
	open_pipe(p);
	read_ready_byte(p, coil_now() + COIL_SEC(3600));
	close_pipe(p);
	/* Nothing can wake this: the stale hour-long entry must not hide it. */
	return coil_sleep_until(COIL_NEVER);
}

START_TEST(test_a_stale_deadline_does_not_hide_a_deadlock)
{
	int status = 0;

	capture_log();
	ck_assert_int_eq(coil_run(park_forever_after_a_deadline, NULL, &status), 0);
	ck_assert_int_eq(status, -ECANCELED);
	ck_assert(log_has(COIL_LOG_ERROR, "deadlock"));
}
END_TEST

static void write_byte(coil_timer *timer, void *arg)
{
	(void)timer;
	ck_assert_int_eq(write(*(int *)arg, "x", 1), 1);
}

/*
 * The ops' deadline must still be ahead when they are awaited, hence 500 ms.
 * Then the outcome is deterministic: both deadlines sit in the loop's heap,
 * and the earlier fires first however late the loop gets to them.
 */
static int join_after_done_op(void *arg)
{
	struct reader r = { 0 };
	coil_timer timer;
	coil_task *t;
	int p[2], status = -1, ret;

	(void)arg;
	open_pipe(p);
	r.fd = p[0];
	ck_assert_int_eq(coil_spawn(&t, read_then_yield, &r, NULL), 0);
	coil_timer_init(&timer, write_byte, &p[1]);
	ck_assert_int_eq(coil_timer_arm(&timer, coil_now() + COIL_SEC(1)), 0);
	issue_two_nops_await_both(coil_now() + COIL_MSEC(500));
	ret = coil_join(t, &status, COIL_NEVER);
	ck_assert_msg(ret == 0, "a join without deadline: %s", strerror(-ret));
	ck_assert_int_eq(r.res, 1);
	close_pipe(p);
	return 0;
}

START_TEST(test_an_early_ops_deadline_does_not_fire_into_a_later_join)
{
	run(join_after_done_op, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_io");
	TCase *tc;

	ADD_TEST(s, test_an_awaited_nop_returns_0, 10);
	ADD_TEST(s, test_a_read_parked_before_the_write_returns_the_bytes, 10);
	ADD_TEST(s, test_a_write_returns_its_count, 10);
	ADD_TEST(s, test_cqe_flags_reach_the_awaiting_task, 10);
	ADD_TEST(s, test_a_thousand_tasks_awaiting_nops_all_complete, 60);
	ADD_TEST(s, test_a_read_times_out_at_its_deadline_and_is_cancelled, 10);
	ADD_TEST(s, test_a_passed_deadline_times_out_after_the_ops_completion, 10);
	ADD_TEST(s, test_a_read_completing_despite_a_passed_deadline_keeps_its_bytes, 10);
	ADD_TEST(s, test_a_cancelled_read_returns_ecanceled_and_so_does_every_later_park, 10);
	ADD_TEST(s, test_a_completion_dispatched_before_the_cancel_keeps_its_bytes, 10);
	ADD_TEST(s, test_a_read_submitted_with_its_cancel_keeps_the_bytes_already_there, 10);
	ADD_TEST(s, test_a_cancel_between_prep_and_await_cancels_the_op_in_the_kernel, 10);
	ADD_TEST(s, test_a_read_left_parked_when_main_returns_is_cancelled_before_run_returns, 10);
	ADD_TEST(s, test_prep_without_a_loop_is_refused_with_eperm, 10);
	ADD_TEST(s, test_prep_in_a_timer_callback_is_refused_with_eperm, 10);
	ADD_TEST(s, test_prep_in_a_cancelled_task_is_refused_with_ecanceled, 10);
	ADD_TEST(s, test_interrupted_reads_never_write_into_a_reused_stack, 10);
	ADD_TEST(s, test_a_read_of_a_bad_fd_returns_ebadf_and_the_loop_goes_on, 10);
	ADD_TEST(s, test_awaiting_an_op_already_done_leaves_no_deadline_armed, 10);
	ADD_TEST(s, test_an_early_ops_deadline_does_not_fire_into_a_later_join, 10);
	ADD_TEST(s, test_a_deadline_after_a_stale_earlier_one_fires_at_its_own_time, 10);
	ADD_TEST(s, test_a_deadline_before_a_stale_later_one_fires_at_its_own_time, 10);
	ADD_TEST(s, test_deadlines_that_never_fire_leave_at_most_one_entry_per_task, 10);
	ADD_TEST(s, test_a_stale_deadline_does_not_hide_a_deadlock, 10);

	tc = tcase_create("test_awaiting_an_op_prepared_by_another_task_aborts");
	tcase_set_timeout(tc, 10);
	tcase_add_test_raise_signal(tc, test_awaiting_an_op_prepared_by_another_task_aborts,
				    SIGABRT);
	suite_add_tcase(s, tc);
	return test_main(s);
}
