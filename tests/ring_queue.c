/* ring/queue.c: SQE acquisition, submission, CQE dispatch. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "helper.h"
#include "ring/compat.h"

/* Poll until nothing is in flight, failing the test after a deadline. */
static void drain(coil_ring *r)
{
	int64_t deadline = coil_now() + COIL_SEC(5);
	int ret;

	while (coil_ring_inflight(r)) {
		ret = coil_ring_wait(r, deadline);
		ck_assert_msg(ret > 0, "wait: %d with %llu in flight", ret,
			      (unsigned long long)coil_ring_inflight(r));
	}
}

START_TEST(test_completion_reaches_its_handler_with_the_result)
{
	struct recorder c = RECORDER;
	struct io_uring_sqe *sqe;
	coil_ring r;

	SKIP_UNLESS(kernel_version() >= 601, "NOP result injection needs a newer kernel");
	ring_up(&r, NULL);
	sqe = coil_ring_sqe(&r, &c.op);
	io_uring_prep_nop(sqe);
	sqe->rw_flags = 1; /* IORING_NOP_INJECT_RESULT: res = len */
	sqe->len = (unsigned)-EIO;
	ck_assert_int_eq(coil_ring_poll(&r), 1);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.res, -EIO);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_null_op_completions_are_reaped_and_dropped)
{
	coil_ring r;

	ring_up(&r, NULL);
	io_uring_prep_nop(coil_ring_sqe(&r, NULL));
	io_uring_prep_nop(coil_ring_sqe(&r, NULL));
	ck_assert_uint_eq(coil_ring_inflight(&r), 0);
	ck_assert_int_eq(coil_ring_poll(&r), 2);
	ck_assert_int_eq(coil_ring_poll(&r), 0);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_a_batch_is_dispatched_in_one_poll)
{
	struct recorder c[32];
	coil_ring r;
	int i;

	ring_up(&r, NULL);
	for (i = 0; i < 32; i++) {
		c[i] = (struct recorder)RECORDER;
		io_uring_prep_nop(coil_ring_sqe(&r, &c[i].op));
	}
	ck_assert_uint_eq(coil_ring_inflight(&r), 32);
	ck_assert_int_eq(coil_ring_poll(&r), 32);
	for (i = 0; i < 32; i++)
		ck_assert_int_eq(c[i].calls, 1);
	ck_assert_uint_eq(coil_ring_inflight(&r), 0);
	coil_ring_exit(&r);
}
END_TEST

/* 1,000,000 NOPs over a small ring: every one completes exactly once. */
#define MILLION 1000000
#define SLOTS 64

/* Keeps the first failure, unlike record_cqe which keeps the last result. */
static void count_only(coil_op *op, const struct io_uring_cqe *cqe)
{
	struct recorder *c = (struct recorder *)op;

	c->calls++;
	if (cqe->res != 0)
		c->res = cqe->res;
}

START_TEST(test_a_million_nops_are_all_accounted_for)
{
	coil_ring_opts opts = { .entries = 64 };
	struct recorder c[SLOTS];
	int submitted = 0, ret, i;
	coil_ring r;

	ring_up(&r, &opts);
	for (i = 0; i < SLOTS; i++)
		c[i] = (struct recorder){ .op.complete = count_only };
	while (submitted < MILLION) {
		/* 100 per round overflows the 64-entry SQ: the full path runs. */
		for (i = 0; i < 100 && submitted < MILLION; i++, submitted++)
			io_uring_prep_nop(coil_ring_sqe(&r, &c[submitted % SLOTS].op));
		ck_assert_int_ge(coil_ring_poll(&r), 0);
	}
	drain(&r);
	for (i = 0, ret = 0; i < SLOTS; i++) {
		ck_assert_int_eq(c[i].calls, MILLION / SLOTS + (i < MILLION % SLOTS));
		ck_assert_int_eq(c[i].res, 0);
		ret += c[i].calls;
	}
	ck_assert_int_eq(ret, MILLION);
	ck_assert_uint_eq(coil_ring_inflight(&r), 0);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_full_sq_is_submitted_and_retried)
{
	coil_ring_opts opts = { .entries = 4 };
	struct recorder c = RECORDER;
	struct io_uring_sqe *sqe;
	coil_ring r;
	int i;

	ring_up(&r, &opts);
	ck_assert_uint_eq(r.uring.sq.ring_entries, 4);
	/* 100 SQEs into 4 slots, and 100 CQEs into 8: overflow is kept too. */
	for (i = 0; i < 100; i++) {
		sqe = coil_ring_sqe(&r, &c.op);
		ck_assert_ptr_ne(sqe, &r.scratch);
		io_uring_prep_nop(sqe);
	}
	ck_assert_uint_eq(coil_ring_inflight(&r), 100);
	drain(&r);
	ck_assert_int_eq(c.calls, 100);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_reserve_makes_room_for_a_whole_linked_chain)
{
	coil_ring_opts opts = { .entries = 4 };
	struct recorder c = RECORDER;
	struct io_uring_sqe *sqe;
	coil_ring r;
	int i;

	ring_up(&r, &opts);
	for (i = 0; i < 3; i++)
		io_uring_prep_nop(coil_ring_sqe(&r, &c.op));
	ck_assert_uint_eq(io_uring_sq_space_left(&r.uring), 1);
	ck_assert_int_eq(coil_ring_reserve(&r, 3), 0);
	ck_assert_uint_ge(io_uring_sq_space_left(&r.uring), 3);
	for (i = 0; i < 3; i++) {
		sqe = coil_ring_sqe(&r, &c.op);
		io_uring_prep_nop(sqe);
		if (i < 2)
			sqe->flags |= IOSQE_IO_LINK;
	}
	ck_assert_int_eq(coil_ring_reserve(&r, 5), -EINVAL);
	drain(&r);
	ck_assert_int_eq(c.calls, 6);
	ck_assert_int_eq(c.res, 0);
	coil_ring_exit(&r);
}
END_TEST

/* A handler that submits more work and polls from inside the dispatch. */
struct reentrant {
	coil_op op;
	coil_ring *ring;
	int calls;
	int spawned;
};

static void submit_and_poll_again(coil_op *op, const struct io_uring_cqe *cqe)
{
	struct reentrant *e = (struct reentrant *)op;
	int i;

	(void)cqe;
	e->calls++;
	if (e->spawned >= 200)
		return;
	/* More than the 8-entry SQ holds, then a dispatch nested in this one. */
	for (i = 0; i < 10; i++, e->spawned++)
		io_uring_prep_nop(coil_ring_sqe(e->ring, &e->op));
	coil_ring_poll(e->ring);
}

START_TEST(test_handlers_may_submit_and_dispatch_again)
{
	coil_ring_opts opts = { .entries = 8 };
	struct reentrant e = { .op.complete = submit_and_poll_again };
	coil_ring r;

	ring_up(&r, &opts);
	e.ring = &r;
	io_uring_prep_nop(coil_ring_sqe(&r, &e.op));
	drain(&r);
	/* Each CQE dispatched exactly once: the first NOP and all it spawned. */
	ck_assert_int_eq(e.spawned, 200);
	ck_assert_int_eq(e.calls, 201);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_multishot_op_stays_in_flight_until_its_final_cqe)
{
	struct __kernel_timespec ts = { .tv_nsec = 1000000 };
	struct recorder c = RECORDER;
	struct io_uring_sqe *sqe;
	coil_ring r;

	SKIP_UNLESS(kernel_version() >= 604, "multishot timeouts need Linux 6.4");
	ring_up(&r, NULL);
	sqe = coil_ring_sqe(&r, &c.op);
	io_uring_prep_timeout(sqe, &ts, 3, IORING_TIMEOUT_MULTISHOT);
	while (c.calls < 3) {
		ck_assert_uint_eq(coil_ring_inflight(&r), 1);
		ck_assert_int_gt(coil_ring_wait(&r, coil_now() + COIL_SEC(2)), 0);
	}
	ck_assert_int_eq(c.calls, 3);
	ck_assert_int_eq(c.res, -ETIME);
	ck_assert(c.flags[0] & IORING_CQE_F_MORE);
	ck_assert(c.flags[1] & IORING_CQE_F_MORE);
	ck_assert(!(c.flags[2] & IORING_CQE_F_MORE));
	ck_assert_uint_eq(coil_ring_inflight(&r), 0);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_multishot_poll_ends_with_its_cancel)
{
	struct recorder c = RECORDER;
	uint64_t one = 1;
	coil_ring r;
	int efd, i;

	ring_up(&r, NULL);
	efd = eventfd(0, EFD_NONBLOCK);
	io_uring_prep_poll_multishot(coil_ring_sqe(&r, &c.op), efd, POLLIN);
	ck_assert_int_eq(coil_ring_poll(&r), 0);
	for (i = 1; i <= 3; i++) {
		ck_assert_int_eq(write(efd, &one, sizeof(one)), sizeof(one));
		ck_assert_int_eq(coil_ring_wait(&r, coil_now() + COIL_SEC(2)), 1);
		ck_assert_int_eq(c.calls, i);
		ck_assert(c.flags[i - 1] & IORING_CQE_F_MORE);
		ck_assert_uint_eq(coil_ring_inflight(&r), 1);
		ck_assert_int_eq(read(efd, &one, sizeof(one)), sizeof(one));
	}
	io_uring_prep_cancel(coil_ring_sqe(&r, NULL), &c.op, 0);
	drain(&r);
	ck_assert_int_eq(c.calls, 4);
	ck_assert_int_eq(c.res, -ECANCELED);
	ck_assert(!(c.flags[3] & IORING_CQE_F_MORE));
	coil_ring_exit(&r);
	close(efd);
}
END_TEST

/*
 * With DEFER_TASKRUN a completion stays invisible until the ring's thread
 * enters the kernel with GETEVENTS. The premise is checked first: plain
 * submits never show the pipe read's CQE. coil_ring_poll must show it.
 */
START_TEST(test_poll_sees_deferred_completions)
{
	struct recorder c = RECORDER;
	char buf[8];
	int fds[2], i;
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_flags(&r) & IORING_SETUP_DEFER_TASKRUN,
		    "the kernel did not grant DEFER_TASKRUN");
	ck_assert_int_eq(pipe(fds), 0);
	io_uring_prep_read(coil_ring_sqe(&r, &c.op), fds[0], buf, sizeof(buf), 0);
	ck_assert_int_eq(coil_ring_poll(&r), 0);
	ck_assert_int_eq(write(fds[1], "hello", 5), 5);

	/* Entering without GETEVENTS (liburing's own calls add it) shows nothing. */
	for (i = 0; i < 1000; i++) {
		ck_assert_int_eq(io_uring_enter(r.uring.ring_fd, 0, 0, 0, NULL), 0);
		ck_assert_uint_eq(io_uring_cq_ready(&r.uring), 0);
	}
	ck_assert(IO_URING_READ_ONCE(*r.uring.sq.kflags) & IORING_SQ_TASKRUN);

	ck_assert_int_eq(coil_ring_poll(&r), 1);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.res, 5);
	ck_assert(memcmp(buf, "hello", 5) == 0);
	coil_ring_exit(&r);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_wait_blocks_until_a_completion)
{
	struct __kernel_timespec ts = { .tv_nsec = 20000000 };
	struct recorder c = RECORDER;
	int64_t start;
	coil_ring r;

	ring_up(&r, NULL);
	io_uring_prep_timeout(coil_ring_sqe(&r, &c.op), &ts, 0, 0);
	start = coil_now();
	ck_assert_int_eq(coil_ring_wait(&r, COIL_NEVER), 1);
	ck_assert_int_ge(coil_now() - start, COIL_MSEC(20));
	ck_assert_int_eq(c.res, -ETIME);
	coil_ring_exit(&r);
}
END_TEST

/* Completions waiting in the CQ end a wait at once, and queued SQEs still go. */
START_TEST(test_wait_submits_what_is_queued_when_completions_wait)
{
	struct recorder first = RECORDER, second = RECORDER;
	coil_ring r;

	ring_up(&r, NULL);
	io_uring_prep_nop(coil_ring_sqe(&r, &first.op));
	/* Submitted behind coil's back: its CQE waits, not dispatched. */
	ck_assert_int_eq(io_uring_submit(&r.uring), 1);
	ck_assert_uint_eq(io_uring_cq_ready(&r.uring), 1);
	io_uring_prep_nop(coil_ring_sqe(&r, &second.op));
	ck_assert_int_ge(coil_ring_wait(&r, COIL_NEVER), 1);
	ck_assert_int_eq(first.calls, 1);
	/* A NOP completes as it is submitted: the same call dispatched it. */
	ck_assert_int_eq(second.calls, 1);
	ck_assert_uint_eq(coil_ring_inflight(&r), 0);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_wait_returns_etimedout_at_its_deadline)
{
	struct recorder c = RECORDER;
	int64_t deadline;
	char buf[8];
	int fds[2];
	coil_ring r;

	ring_up(&r, NULL);
	ck_assert_int_eq(pipe(fds), 0);
	io_uring_prep_read(coil_ring_sqe(&r, &c.op), fds[0], buf, sizeof(buf), 0);
	deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_ring_wait(&r, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_int_eq(c.calls, 0);
	/* A deadline already past still collects what has completed. */
	ck_assert_int_eq(write(fds[1], "x", 1), 1);
	ck_assert_int_eq(coil_ring_wait(&r, coil_now() - 1), 1);
	ck_assert_int_eq(c.res, 1);
	ck_assert_int_eq(coil_ring_wait(&r, coil_now() - 1), -ETIMEDOUT);
	coil_ring_exit(&r);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_a_message_from_another_ring_reaches_its_op_uncounted)
{
	struct recorder sent = RECORDER, got = RECORDER;
	coil_ring a, b;

	ring_up(&a, NULL);
	ring_up(&b, NULL);
	io_uring_prep_msg_ring(coil_ring_sqe(&a, &sent.op), coil_ring_fd(&b), 7,
			       coil_ring_msg_data(&got.op), 0);
	ck_assert_int_eq(coil_ring_wait(&a, coil_now() + COIL_SEC(2)), 1);
	ck_assert_int_eq(sent.res, 0);
	ck_assert_int_eq(coil_ring_wait(&b, coil_now() + COIL_SEC(2)), 1);
	ck_assert_int_eq(got.calls, 1);
	ck_assert_int_eq(got.res, 7);
	ck_assert_uint_eq(coil_ring_inflight(&a), 0);
	ck_assert_uint_eq(coil_ring_inflight(&b), 0);
	coil_ring_exit(&b);
	coil_ring_exit(&a);
}
END_TEST

struct other_thread {
	coil_ring *ring;
	int poll, wait, reserve;
};

static void *use_from_other_thread(void *arg)
{
	struct other_thread *t = arg;

	t->poll = coil_ring_poll(t->ring);
	t->wait = coil_ring_wait(t->ring, COIL_NEVER);
	t->reserve = coil_ring_reserve(t->ring, 1);
	return NULL;
}

START_TEST(test_use_from_another_thread_returns_eexist)
{
	struct other_thread t;
	pthread_t thread;
	coil_ring r;

	ring_up(&r, NULL);
	capture_log();
	t.ring = &r;
	ck_assert_int_eq(pthread_create(&thread, NULL, use_from_other_thread, &t), 0);
	pthread_join(thread, NULL);
	ck_assert_int_eq(t.poll, -EEXIST);
	ck_assert_int_eq(t.wait, -EEXIST);
	ck_assert_int_eq(t.reserve, -EEXIST);
	ck_assert(log_has(COIL_LOG_ERROR, "thread other than the one that created it"));
	/* The owner is unaffected. */
	io_uring_prep_nop(coil_ring_sqe(&r, NULL));
	ck_assert_int_eq(coil_ring_poll(&r), 1);
	coil_ring_exit(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring_queue");

	ADD_TEST(s, test_completion_reaches_its_handler_with_the_result, 10);
	ADD_TEST(s, test_null_op_completions_are_reaped_and_dropped, 10);
	ADD_TEST(s, test_a_batch_is_dispatched_in_one_poll, 10);
	ADD_TEST(s, test_a_million_nops_are_all_accounted_for, 60);
	ADD_TEST(s, test_full_sq_is_submitted_and_retried, 10);
	ADD_TEST(s, test_reserve_makes_room_for_a_whole_linked_chain, 10);
	ADD_TEST(s, test_handlers_may_submit_and_dispatch_again, 10);
	ADD_TEST(s, test_multishot_op_stays_in_flight_until_its_final_cqe, 10);
	ADD_TEST(s, test_multishot_poll_ends_with_its_cancel, 10);
	ADD_TEST(s, test_poll_sees_deferred_completions, 10);
	ADD_TEST(s, test_wait_blocks_until_a_completion, 10);
	ADD_TEST(s, test_wait_submits_what_is_queued_when_completions_wait, 10);
	ADD_TEST(s, test_wait_returns_etimedout_at_its_deadline, 10);
	ADD_TEST(s, test_a_message_from_another_ring_reaches_its_op_uncounted, 10);
	ADD_TEST(s, test_use_from_another_thread_returns_eexist, 10);
	return test_main(s);
}
