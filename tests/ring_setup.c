/* ring/setup.c: flags and fallback, probe, sizes, errors, fork, exit. */
#include <errno.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

#define DEFAULT_FLAGS                                                          \
	(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |             \
	 IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_COOP_TASKRUN |               \
	 IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE)

/* One NOP through the ring: proves a ring actually works. */
static void assert_nop_round_trip(coil_ring *r)
{
	struct recorder c = RECORDER;
	int ret;

	io_uring_prep_nop(coil_ring_sqe(r, &c.op));
	ret = coil_ring_wait(r, coil_now() + COIL_SEC(2));
	ck_assert_int_eq(ret, 1);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.res, 0);
	ck_assert_uint_eq(coil_ring_inflight(r), 0);
}

/* A read parked on an empty pipe, completed by a write, seen by polling. */
static void assert_pipe_read_is_seen(coil_ring *r)
{
	struct recorder c = RECORDER;
	char buf[4];
	int fds[2], i;

	ck_assert_int_eq(pipe(fds), 0);
	io_uring_prep_read(coil_ring_sqe(r, &c.op), fds[0], buf, sizeof(buf), 0);
	ck_assert_int_eq(coil_ring_poll(r), 0);
	ck_assert_int_eq(write(fds[1], "ab", 2), 2);
	for (i = 0; i < 100 && !c.calls; i++)
		ck_assert_int_ge(coil_ring_poll(r), 0);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(c.res, 2);
	close(fds[0]);
	close(fds[1]);
}

START_TEST(test_default_ring_gets_every_wanted_flag_on_a_new_kernel)
{
	coil_ring r;

	SKIP_UNLESS(kernel_version() >= 601, "DEFER_TASKRUN needs Linux 6.1");
	ring_up(&r, NULL);
	ck_assert_uint_eq(coil_ring_flags(&r), DEFAULT_FLAGS);
	assert_nop_round_trip(&r);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_completion_queue_is_twice_the_submission_queue)
{
	coil_ring_opts opts = { .entries = 100 };
	coil_ring r;

	ring_up(&r, NULL);
	ck_assert_uint_eq(r.uring.sq.ring_entries, 256);
	ck_assert_uint_eq(r.uring.cq.ring_entries, 512);
	coil_ring_exit(&r);

	ring_up(&r, &opts);
	ck_assert_uint_eq(r.uring.sq.ring_entries, 128);
	ck_assert_uint_eq(r.uring.cq.ring_entries, 256);
	coil_ring_exit(&r);

	opts = (coil_ring_opts){ .entries = 8, .cq_entries = 4096 };
	ring_up(&r, &opts);
	ck_assert_uint_eq(r.uring.sq.ring_entries, 8);
	ck_assert_uint_eq(r.uring.cq.ring_entries, 4096);
	coil_ring_exit(&r);
}
END_TEST

/*
 * A refused flag walks the ladder down as an older kernel makes it: flags are
 * given up newest first (DEFER_TASKRUN, SINGLE_ISSUER, TASKRUN_FLAG,
 * COOP_TASKRUN, SUBMIT_ALL, CQSIZE) until none that is refused is left, and
 * COOP_TASKRUN never stays without TASKRUN_FLAG. Every rung must still see a
 * completion that the kernel finishes after submission.
 */
static const struct {
	unsigned refused;
	unsigned granted;
} ladder[] = {
	{ IORING_SETUP_DEFER_TASKRUN,
	  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_TASKRUN_FLAG |
		  IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE },
	{ IORING_SETUP_SINGLE_ISSUER,
	  IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE },
	{ IORING_SETUP_TASKRUN_FLAG, IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE },
	{ IORING_SETUP_COOP_TASKRUN, IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE },
	{ IORING_SETUP_SUBMIT_ALL, IORING_SETUP_CQSIZE },
	{ IORING_SETUP_CQSIZE, 0 },
	{ IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN,
	  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE },
};

START_TEST(test_refused_flags_fall_back_newest_first)
{
	coil_ring_opts opts = { .disable_flags = ladder[_i].refused };
	coil_ring r;

	SKIP_UNLESS(kernel_version() >= 601, "DEFER_TASKRUN needs Linux 6.1");
	capture_log();
	ring_up(&r, &opts);
	ck_assert_msg(coil_ring_flags(&r) == ladder[_i].granted,
		      "refusing 0x%x granted 0x%x, expected 0x%x",
		      ladder[_i].refused, coil_ring_flags(&r), ladder[_i].granted);
	ck_assert_msg(log_has(COIL_LOG_INFO, "not granted: "), "%s", captured_log());
	assert_nop_round_trip(&r);
	assert_pipe_read_is_seen(&r);
	/* Without CQSIZE the kernel sizes the CQ itself: still twice the SQ. */
	ck_assert_uint_eq(r.uring.cq.ring_entries, 2 * r.uring.sq.ring_entries);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_sqpoll_option_gives_a_working_sqpoll_ring)
{
	coil_ring_opts opts = { .sqpoll = true, .sqpoll_idle_ms = 10 };
	coil_ring r;

	ring_up(&r, &opts);
	ck_assert(coil_ring_flags(&r) & IORING_SETUP_SQPOLL);
	ck_assert(!(coil_ring_flags(&r) & IORING_SETUP_DEFER_TASKRUN));
	assert_nop_round_trip(&r);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_out_of_range_sizes_return_einval_and_say_why)
{
	coil_ring_opts too_many = { .entries = 40000 };
	coil_ring_opts cq_too_big = { .cq_entries = 70000 };
	coil_ring r;

	capture_log();
	ck_assert_int_eq(coil_ring_init(&r, &too_many), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "40000"));
	ck_assert_int_eq(coil_ring_init(&r, &cq_too_big), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "70000"));
	ck_assert_int_eq(coil_ring_init(NULL, NULL), -EINVAL);
	/* A failed init leaves a ring that every call rejects, harmlessly. */
	ck_assert_int_eq(coil_ring_poll(&r), -EBADF);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_probe_reports_supported_opcodes)
{
	coil_ring r;

	ring_up(&r, NULL);
	ck_assert(coil_ring_has_op(&r, IORING_OP_NOP));
	ck_assert(coil_ring_has_op(&r, IORING_OP_READ));
	ck_assert(coil_ring_has_op(&r, IORING_OP_ASYNC_CANCEL));
	ck_assert(!coil_ring_has_op(&r, 255));
	ck_assert(!coil_ring_has_op(&r, 100000));
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_ring_fd_is_registered)
{
	coil_ring r;

	ring_up(&r, NULL);
	/* liburing enters through the registered index instead of the fd. */
	ck_assert_int_ne(r.uring.enter_ring_fd, r.uring.ring_fd);
	ck_assert_int_eq(coil_ring_fd(&r), r.uring.ring_fd);
	coil_ring_exit(&r);
}
END_TEST

/*
 * Run fn in a child process and return what it wrote to the pipe. The child
 * may change its credentials and limits without affecting the test.
 */
static void run_in_child(void (*fn)(int out), char *text, size_t len)
{
	int fds[2], status;
	ssize_t got, total = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		fn(fds[1]);
		_exit(0);
	}
	close(fds[1]);
	while ((got = read(fds[0], text + total, len - 1 - total)) > 0)
		total += got;
	text[total] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child failed (status 0x%x): %s", status, text);
}

/* Report "ret=<n>" and the captured log to the parent. */
static void report(int out, int ret)
{
	dprintf(out, "ret=%d\n%s", ret, captured_log());
}

static void create_big_ring_under_small_memlock(int out)
{
	struct rlimit lim = { 64 * 1024, 64 * 1024 };
	coil_ring_opts opts = { .entries = 4096 };
	coil_ring r;

	if (setrlimit(RLIMIT_MEMLOCK, &lim)) {
		dprintf(out, "setrlimit: %s\n", strerror(errno));
		_exit(1);
	}
	/* Root holds CAP_IPC_LOCK and is never charged: become nobody. */
	if (geteuid() == 0 && (setgroups(0, NULL) || setgid(65534) || setuid(65534))) {
		dprintf(out, "dropping privileges: %s\n", strerror(errno));
		_exit(1);
	}
	capture_log();
	report(out, coil_ring_init(&r, &opts));
}

START_TEST(test_memlock_limit_is_named_with_the_ring_size)
{
	char text[4096];

	run_in_child(create_big_ring_under_small_memlock, text, sizeof(text));
	ck_assert_msg(strstr(text, "ret=-12\n"), "%s", text);
	ck_assert_msg(strstr(text, "error: ") && strstr(text, "RLIMIT_MEMLOCK") &&
			      strstr(text, "4096 SQ") && strstr(text, "64 KiB"),
		      "%s", text);
}
END_TEST

/* A seccomp filter that fails io_uring_setup with errno err. */
static int refuse_io_uring(int err)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 4, .filter = filter };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) ? -errno : 0;
}

static void setup_under_seccomp_eperm(int out)
{
	coil_ring r;

	capture_log();
	if (refuse_io_uring(EPERM))
		_exit(1);
	report(out, coil_ring_init(&r, NULL));
}

static void setup_under_seccomp_enosys(int out)
{
	coil_ring r;

	capture_log();
	if (refuse_io_uring(ENOSYS))
		_exit(1);
	report(out, coil_ring_init(&r, NULL));
}

START_TEST(test_io_uring_refused_is_named_as_such)
{
	char text[4096];

	run_in_child(setup_under_seccomp_eperm, text, sizeof(text));
	ck_assert_msg(strstr(text, "ret=-1\n"), "%s", text);
	ck_assert_msg(strstr(text, "error: ") && strstr(text, "seccomp"), "%s", text);

	run_in_child(setup_under_seccomp_enosys, text, sizeof(text));
	ck_assert_msg(strstr(text, "ret=-38\n"), "%s", text);
	ck_assert_msg(strstr(text, "error: io_uring is not available"), "%s", text);
}
END_TEST

static coil_ring forked_ring;

static void use_ring_after_fork(int out)
{
	struct recorder c = RECORDER;
	struct io_uring_sqe *sqe, *sqes = forked_ring.uring.sq.sqes;
	unsigned entries = forked_ring.uring.sq.ring_entries;

	capture_log();
	sqe = coil_ring_sqe(&forked_ring, &c.op);
	io_uring_prep_nop(sqe);
	dprintf(out, "in_sq=%d\n", sqe >= sqes && sqe < sqes + entries);
	dprintf(out, "poll=%d\n", coil_ring_poll(&forked_ring));
	dprintf(out, "wait=%d\n", coil_ring_wait(&forked_ring, COIL_NEVER));
	dprintf(out, "reserve=%d\n", coil_ring_reserve(&forked_ring, 1));
	coil_ring_exit(&forked_ring);
	dprintf(out, "%s", captured_log());
}

START_TEST(test_ring_used_in_forked_child_returns_echild)
{
	char text[4096];

	ring_up(&forked_ring, NULL);
	run_in_child(use_ring_after_fork, text, sizeof(text));
	ck_assert_msg(strstr(text, "in_sq=0\n"), "%s", text);
	ck_assert_msg(strstr(text, "poll=-10\n"), "%s", text);
	ck_assert_msg(strstr(text, "wait=-10\n"), "%s", text);
	ck_assert_msg(strstr(text, "reserve=-10\n"), "%s", text);
	ck_assert_msg(strstr(text, "warning: a ring was used in a forked child"), "%s", text);
	/* The parent's ring is untouched and keeps working. */
	assert_nop_round_trip(&forked_ring);
	coil_ring_exit(&forked_ring);
}
END_TEST

START_TEST(test_calls_after_exit_return_ebadf)
{
	struct recorder c = RECORDER;
	struct io_uring_sqe *sqe;
	coil_ring r;

	ring_up(&r, NULL);
	coil_ring_exit(&r);
	ck_assert_int_eq(coil_ring_poll(&r), -EBADF);
	ck_assert_int_eq(coil_ring_wait(&r, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_ring_reserve(&r, 1), -EBADF);
	ck_assert_int_eq(coil_ring_fd(&r), -EBADF);
	sqe = coil_ring_sqe(&r, &c.op);
	ck_assert_ptr_eq(sqe, &r.scratch);
	coil_ring_exit(&r); /* twice is harmless */
	ck_assert_int_eq(c.calls, 0);
}
END_TEST

START_TEST(test_exit_cancels_inflight_ops_and_dispatches_them_first)
{
	struct recorder reads[3] = { RECORDER, RECORDER, RECORDER };
	char buf[3][8];
	int fds[2], i;
	coil_ring r;

	ring_up(&r, NULL);
	ck_assert_int_eq(pipe(fds), 0);
	for (i = 0; i < 3; i++)
		io_uring_prep_read(coil_ring_sqe(&r, &reads[i].op), fds[0], buf[i],
				   sizeof(buf[i]), 0);
	ck_assert_int_eq(coil_ring_poll(&r), 0);
	ck_assert_uint_eq(coil_ring_inflight(&r), 3);
	coil_ring_exit(&r);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(reads[i].calls, 1);
		ck_assert_int_eq(reads[i].res, -ECANCELED);
	}
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_version_of_library_matches_header)
{
	ck_assert_int_eq(coil_version(), COIL_VERSION_NUMBER);
	ck_assert_int_eq(COIL_VERSION_NUMBER, COIL_VERSION_MAJOR * 10000 +
						      COIL_VERSION_MINOR * 100 +
						      COIL_VERSION_PATCH);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring_setup");
	TCase *tc;

	ADD_TEST(s, test_default_ring_gets_every_wanted_flag_on_a_new_kernel, 10);
	ADD_TEST(s, test_completion_queue_is_twice_the_submission_queue, 10);
	tc = tcase_create("fallback");
	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(tc, test_refused_flags_fall_back_newest_first, 0,
			    sizeof(ladder) / sizeof(ladder[0]));
	suite_add_tcase(s, tc);
	ADD_TEST(s, test_sqpoll_option_gives_a_working_sqpoll_ring, 10);
	ADD_TEST(s, test_out_of_range_sizes_return_einval_and_say_why, 10);
	ADD_TEST(s, test_probe_reports_supported_opcodes, 10);
	ADD_TEST(s, test_ring_fd_is_registered, 10);
	ADD_TEST(s, test_memlock_limit_is_named_with_the_ring_size, 10);
	ADD_TEST(s, test_io_uring_refused_is_named_as_such, 10);
	ADD_TEST(s, test_ring_used_in_forked_child_returns_echild, 10);
	ADD_TEST(s, test_calls_after_exit_return_ebadf, 10);
	ADD_TEST(s, test_exit_cancels_inflight_ops_and_dispatches_them_first, 10);
	ADD_TEST(s, test_version_of_library_matches_header, 10);
	return test_main(s);
}
