/* executor/process.c: child processes, their exit, deadlines and cancels. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/loop.h"
#include "ring/compat.h"
#include "helper.h"

/* ---------------------------------------------------------- wait paths */

/*
 * coil_process_wait awaits IORING_OP_WAITID where the ring has it and polls
 * the child's pidfd otherwise. The tests of waiting run on both paths: the
 * fallback is forced by clearing WAITID from the loop ring's probe bitmap,
 * which is what coil_ring_has_op reads.
 */
static bool use_pidfd;
static bool no_waitid;

struct body {
	coil_fn *fn;
};

static int on_path(void *arg)
{
	const struct body *b = arg;
	coil_ring *r = coil_loop_ring();

	if (use_pidfd)
		r->ops[IORING_OP_WAITID / 64] &= ~(1ull << (IORING_OP_WAITID % 64));
	else if (!coil_ring_has_op(r, IORING_OP_WAITID)) {
		no_waitid = true;
		return 0;
	}
	ck_assert(coil_ring_has_op(r, IORING_OP_WAITID) == !use_pidfd);
	return b->fn(NULL);
}

static void run_on_path(coil_fn *fn, bool pidfd)
{
	struct body b = { fn };

	use_pidfd = pidfd;
	no_waitid = false;
	run(on_path, &b);
	SKIP_UNLESS(!no_waitid, "the kernel has no IORING_OP_WAITID");
}

#define ON_BOTH_PATHS(name, fn)                                                \
	START_TEST(name##_via_waitid)                                          \
	{                                                                      \
		run_on_path(fn, false);                                        \
	}                                                                      \
	END_TEST                                                               \
	START_TEST(name##_via_pidfd_poll)                                      \
	{                                                                      \
		run_on_path(fn, true);                                         \
	}                                                                      \
	END_TEST

#define ADD_BOTH_PATHS(suite, name, seconds)                                   \
	do {                                                                   \
		ADD_TEST(suite, name##_via_waitid, seconds);                   \
		ADD_TEST(suite, name##_via_pidfd_poll, seconds);               \
	} while (0)

/*
 * Polls armed in the loop's ring, as its fdinfo lists them (IORING_OP_POLL_ADD
 * is op 6); -1 where the kernel does not list them. A wait parked on the
 * fallback path holds one poll, a WAITID none: this tells which path ran.
 */
static int armed_polls(void)
{
	static char text[1 << 16];
	char path[64], *list;
	size_t len = 0;
	ssize_t n;
	int fd, count = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d",
		 coil_ring_fd(coil_loop_ring()));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	while (len < sizeof(text) - 1 &&
	       (n = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	text[len] = '\0';
	list = strstr(text, "PollList:");
	if (!list)
		return -1;
	while ((list = strstr(list, "op=6,"))) {
		count++;
		list++;
	}
	return count;
}

/* With waits parked: the polls they hold are the fallback's, one each. */
static void check_wait_path(int waits)
{
	int polls = armed_polls();

	if (polls >= 0)
		ck_assert_int_eq(polls, use_pidfd ? waits : 0);
}

/* ------------------------------------------------------------- helpers */

static void open_pipe(int p[2])
{
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
}

static void spawn_sh(coil_process *p, const char *script,
		     const coil_process_opts *opts)
{
	char *argv[] = { "sh", "-c", (char *)script, NULL };
	int ret = coil_process_spawn(p, argv, opts);

	ck_assert_msg(ret == 0, "spawn sh -c '%s': %s", script, strerror(-ret));
}

/* Whether pid is a child of ours that has not exited. */
static bool running(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (kill(pid, 0) != 0)
		return false;
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return false;
	return si.si_pid == 0;
}

/* Whether pid was reaped: it is no child of ours any more, not even a zombie. */
static bool reaped(pid_t pid)
{
	siginfo_t si;

	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1 &&
	       errno == ECHILD;
}

/* Whether this process has no child at all, running or zombie. */
static bool no_children(void)
{
	siginfo_t si;

	return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == -1 &&
	       errno == ECHILD;
}

/* Block (outside coil) until pid has exited, leaving it to be reaped. */
static void await_exit_unreaped(pid_t pid)
{
	siginfo_t si;

	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	ck_assert_int_eq(si.si_pid, pid);
}

/*
 * A child that runs until we say so: cat, reading a pipe whose only writer
 * we hold. Closing it ends the child with status 0, at a moment we choose.
 */
struct held {
	coil_process p;
	pid_t pid;
	int stdin_w;
};

static void start_held(struct held *c)
{
	char *argv[] = { "cat", NULL };
	coil_process_opts opts = { .stdio = { -1, -1, -1 } };
	int in[2];

	open_pipe(in);
	opts.stdio[0] = in[0];
	ck_assert_int_eq(coil_process_spawn(&c->p, argv, &opts), 0);
	close(in[0]);
	c->stdin_w = in[1];
	c->pid = coil_process_pid(&c->p);
	ck_assert_int_gt(c->pid, 0);
	ck_assert(running(c->pid));
}

static void release_held(struct held *c)
{
	ck_assert_int_eq(close(c->stdin_w), 0);
	c->stdin_w = -1;
}

/* Waits for a process, then records the outcome. */
struct waiter {
	coil_process *p;
	int res;
	int status;
};

static int wait_for(void *arg)
{
	struct waiter *w = arg;

	w->status = -1;
	w->res = coil_process_wait(w->p, &w->status, COIL_NEVER);
	return 0;
}

/* ------------------------------------------------------- exit statuses */

static int exit_status_7(void *arg)
{
	coil_process p;
	coil_process_opts opts = { .stdio = { -1, -1, -1 } };
	char buf[32] = { 0 };
	int out[2], status = -1, again = -1;
	ssize_t n;

	(void)arg;
	open_pipe(out);
	opts.stdio[1] = out[1];
	/* The child names itself, so that its pid can be checked. */
	spawn_sh(&p, "echo $$; exit 7", &opts);
	close(out[1]);
	n = coil_read(out[0], buf, sizeof(buf) - 1, -1, COIL_NEVER);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(atoi(buf), coil_process_pid(&p));

	ck_assert_int_eq(coil_process_wait(&p, &status, COIL_NEVER), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 7);
	ck_assert(!WIFSIGNALED(status));
	ck_assert(reaped(coil_process_pid(&p)));
	ck_assert_uint_eq(inflight(), 0);
	/* Reaped once; asked again, the same status, at once, even past a deadline. */
	ck_assert_int_eq(coil_process_wait(&p, &again, coil_now()), 0);
	ck_assert_int_eq(again, status);
	ck_assert_int_eq(coil_process_wait(&p, NULL, COIL_NEVER), 0);
	ck_assert_int_eq(coil_process_kill(&p, SIGTERM), -ESRCH);
	ck_assert_int_eq(coil_read(out[0], buf, sizeof(buf), -1, COIL_NEVER), 0);
	close(out[0]);
	coil_process_destroy(&p);
	return 0;
}

ON_BOTH_PATHS(test_exit_status_7_is_reported_for_the_childs_own_pid, exit_status_7)

static int killed_by_a_signal(void *arg)
{
	coil_process p;
	int status = -1, again = -1;

	(void)arg;
	spawn_sh(&p, "kill -TERM $$", NULL);
	ck_assert_int_eq(coil_process_wait(&p, &status, COIL_NEVER), 0);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGTERM);
	ck_assert(!WIFEXITED(status));
	ck_assert(!WCOREDUMP(status));
	ck_assert(reaped(coil_process_pid(&p)));
	ck_assert_int_eq(coil_process_wait(&p, &again, COIL_NEVER), 0);
	ck_assert_int_eq(again, status);
	coil_process_destroy(&p);
	return 0;
}

ON_BOTH_PATHS(test_a_child_killed_by_a_signal_reports_wtermsig, killed_by_a_signal)

static bool has_core_file(const char *dir)
{
	struct dirent *e;
	bool found = false;
	DIR *d = opendir(dir);

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)))
		found |= strncmp(e->d_name, "core", 4) == 0;
	closedir(d);
	return found;
}

/*
 * Files the tests make go under a directory that main makes and removes, in
 * the runner: a failing test ends its process before its cleanup runs.
 */
static char suite_dir[64];

/*
 * A child that dumps core (in a directory of its own): the status says so,
 * if and only if the kernel wrote the core file.
 */
static int dumps_core(void *arg)
{
	char dir[128], script[192];
	coil_process p;
	int status = -1;

	(void)arg;
	make_test_dir(dir, sizeof(dir), suite_dir);
	snprintf(script, sizeof(script),
		 "cd %s && ulimit -c unlimited; kill -QUIT $$", dir);
	spawn_sh(&p, script, NULL);
	ck_assert_int_eq(coil_process_wait(&p, &status, COIL_NEVER), 0);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGQUIT);
	ck_assert_int_eq(!!WCOREDUMP(status), has_core_file(dir));
	coil_process_destroy(&p);
	remove_tree(dir);
	return 0;
}

ON_BOTH_PATHS(test_a_child_dumping_core_reports_wcoredump_as_the_kernel_did, dumps_core)

static int exited_before_the_wait(void *arg)
{
	coil_process p;
	int status = -1;

	(void)arg;
	spawn_sh(&p, "exit 3", NULL);
	await_exit_unreaped(coil_process_pid(&p));
	ck_assert(!reaped(coil_process_pid(&p)));
	ck_assert_int_eq(coil_process_wait(&p, &status, COIL_NEVER), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 3);
	ck_assert(reaped(coil_process_pid(&p)));
	coil_process_destroy(&p);
	return 0;
}

ON_BOTH_PATHS(test_a_child_that_exited_before_the_wait_is_reaped_at_once,
	      exited_before_the_wait)

/* ---------------------------------------------------- deadlines, cancel */

static int wait_times_out(void *arg)
{
	struct held c;
	int64_t deadline;
	int status = -1;

	(void)arg;
	start_held(&c);
	deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_process_wait(&c.p, &status, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_int_eq(status, -1);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(live_deadlines(), 0);
	/* Neither reaped nor harmed: it still runs. */
	ck_assert(running(c.pid));
	/* A deadline already passed: at once, the same. */
	ck_assert_int_eq(coil_process_wait(&c.p, &status, coil_now()), -ETIMEDOUT);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert(running(c.pid));

	ck_assert_int_eq(coil_process_kill(&c.p, 0), 0);
	ck_assert_int_eq(coil_process_kill(&c.p, SIGKILL), 0);
	ck_assert_int_eq(coil_process_wait(&c.p, &status, COIL_NEVER), 0);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
	ck_assert(reaped(c.pid));
	ck_assert_int_eq(coil_process_kill(&c.p, SIGKILL), -ESRCH);
	ck_assert_int_eq(coil_process_kill(&c.p, 0), -ESRCH);
	release_held(&c);
	coil_process_destroy(&c.p);
	return 0;
}

ON_BOTH_PATHS(test_a_wait_past_its_deadline_leaves_the_child_running_until_killed,
	      wait_times_out)

/* After a timed-out wait, the next one gets the exit when it comes. */
static int wait_again_after_timeout(void *arg)
{
	struct held c;
	struct waiter w = { 0 };
	coil_task *t;

	(void)arg;
	start_held(&c);
	ck_assert_int_eq(coil_process_wait(&c.p, NULL, coil_now() + COIL_MSEC(5)),
			 -ETIMEDOUT);
	w.p = &c.p;
	ck_assert_int_eq(coil_spawn(&t, wait_for, &w, NULL), 0);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	check_wait_path(1);
	release_held(&c);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, 0);
	ck_assert(WIFEXITED(w.status));
	ck_assert_int_eq(WEXITSTATUS(w.status), 0);
	ck_assert(reaped(c.pid));
	ck_assert_uint_eq(inflight(), 0);
	coil_process_destroy(&c.p);
	return 0;
}

ON_BOTH_PATHS(test_a_wait_after_a_timed_out_one_gets_the_exit, wait_again_after_timeout)

static int cancel_a_wait(void *arg)
{
	struct held c;
	struct waiter first = { 0 }, second = { 0 };
	coil_task *t;

	(void)arg;
	start_held(&c);
	first.p = second.p = &c.p;
	ck_assert_int_eq(coil_spawn(&t, wait_for, &first, NULL), 0);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	check_wait_path(1);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(first.res, -ECANCELED);
	ck_assert_int_eq(first.status, -1);
	/* It resumed after the kernel let go of the wait, child untouched. */
	ck_assert_uint_eq(inflight(), 0);
	ck_assert(running(c.pid));

	ck_assert_int_eq(coil_spawn(&t, wait_for, &second, NULL), 0);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	release_held(&c);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(second.res, 0);
	ck_assert(WIFEXITED(second.status));
	ck_assert_int_eq(WEXITSTATUS(second.status), 0);
	ck_assert(reaped(c.pid));
	coil_process_destroy(&c.p);
	return 0;
}

ON_BOTH_PATHS(test_a_cancelled_wait_leaves_the_child_for_another_task, cancel_a_wait)

static int cancelled_task_waits_for_nothing(void *arg)
{
	struct held c;
	int status = -1;

	(void)arg;
	start_held(&c);
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ck_assert_int_eq(coil_process_wait(&c.p, &status, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(status, -1);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);
	ck_assert(running(c.pid));
	/* Not parking calls: they still work in a cancelled task. */
	ck_assert_int_eq(coil_process_kill(&c.p, SIGKILL), 0);
	await_exit_unreaped(c.pid);
	ck_assert_int_eq(coil_process_wait(&c.p, &status, COIL_NEVER), -ECANCELED);
	ck_assert(!reaped(c.pid));
	coil_process_destroy(&c.p);
	ck_assert(reaped(c.pid));
	close(c.stdin_w);
	return 0;
}

ON_BOTH_PATHS(test_a_wait_in_a_cancelled_task_is_ecanceled_and_reaps_nothing,
	      cancelled_task_waits_for_nothing)

#define CHILDREN 100

struct crowd_member {
	int stdin_r;
	int i;
	pid_t pid;
	int res;
	int status;
};

/* Each child blocks reading the shared pipe, then exits with its own status. */
static int spawn_and_wait(void *arg)
{
	struct crowd_member *m = arg;
	coil_process_opts opts = { .stdio = { m->stdin_r, -1, -1 } };
	coil_process p;
	char script[32];

	snprintf(script, sizeof(script), "read x; exit %d", m->i % 256);
	spawn_sh(&p, script, &opts);
	m->pid = coil_process_pid(&p);
	m->res = coil_process_wait(&p, &m->status, COIL_NEVER);
	coil_process_destroy(&p);
	return 0;
}

static int hundred_children(void *arg)
{
	struct crowd_member m[CHILDREN];
	coil_task *t[CHILDREN];
	int in[2];

	(void)arg;
	open_pipe(in);
	for (int i = 0; i < CHILDREN; i++) {
		m[i] = (struct crowd_member){ .stdin_r = in[0], .i = i,
					      .res = 1, .status = -1 };
		ck_assert_int_eq(coil_spawn(&t[i], spawn_and_wait, &m[i], NULL), 0);
	}
	let_tasks_park();
	/* All alive and all awaited at once, before any can exit. */
	for (int i = 0; i < CHILDREN; i++) {
		ck_assert_msg(parked(t[i]), "task %d is not waiting", i);
		ck_assert_msg(running(m[i].pid), "child %d is not running", i);
	}
	ck_assert_uint_eq(inflight(), CHILDREN);
	check_wait_path(CHILDREN);
	close(in[0]);
	close(in[1]);
	for (int i = 0; i < CHILDREN; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_msg(m[i].res == 0, "child %d: wait %d", i, m[i].res);
		ck_assert_msg(WIFEXITED(m[i].status) &&
			      WEXITSTATUS(m[i].status) == i % 256,
			      "child %d: status 0x%x", i, m[i].status);
	}
	ck_assert_uint_eq(inflight(), 0);
	ck_assert(no_children());
	return 0;
}

ON_BOTH_PATHS(test_a_hundred_children_awaited_by_a_hundred_tasks_get_their_own_status,
	      hundred_children)

/* --------------------------------------------------------------- stdio */

/* Read from fd until the end of the stream (every writer closed). */
static size_t read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while ((n = coil_read(fd, buf + got, len - 1 - got, -1, COIL_NEVER)) > 0)
		got += (size_t)n;
	ck_assert_int_eq(n, 0);
	buf[got] = '\0';
	return got;
}

static void expect_exit(coil_process *p, int code)
{
	int status = -1;

	ck_assert_int_eq(coil_process_wait(p, &status, COIL_NEVER), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == code,
		      "status 0x%x, expected exit %d", status, code);
}

static int stdout_to_a_pipe(void *arg)
{
	coil_process_opts opts = { .stdio = { -1, -1, -1 } };
	char *argv[] = { "echo", "hello", NULL };
	coil_process p;
	char buf[64];
	int out[2];

	(void)arg;
	open_pipe(out);
	opts.stdio[1] = out[1];
	ck_assert_int_eq(coil_process_spawn(&p, argv, &opts), 0);
	/* Ours closed, the child holds the only writer: EOF comes when it exits. */
	close(out[1]);
	ck_assert_uint_eq(read_all(out[0], buf, sizeof(buf)), 6);
	ck_assert_str_eq(buf, "hello\n");
	expect_exit(&p, 0);
	close(out[0]);
	coil_process_destroy(&p);
	return 0;
}

START_TEST(test_a_childs_stdout_given_a_pipe_is_read_back_with_coil_read)
{
	run(stdout_to_a_pipe, NULL);
}
END_TEST

static int minus_one_is_dev_null(void *arg)
{
	coil_process_opts opts = { .stdio = { -1, -1, -1 } };
	char *cat[] = { "cat", NULL };
	coil_process p;
	char buf[128];
	int out[2];

	(void)arg;
	/* stdin is /dev/null: cat reads EOF at once, exits 0, writes nothing. */
	open_pipe(out);
	opts.stdio[1] = out[1];
	ck_assert_int_eq(coil_process_spawn(&p, cat, &opts), 0);
	close(out[1]);
	ck_assert_uint_eq(read_all(out[0], buf, sizeof(buf)), 0);
	expect_exit(&p, 0);
	close(out[0]);
	coil_process_destroy(&p);

	/*
	 * stdout is /dev/null too, and writable: echo succeeds. The shell
	 * ($$) is looked at from a command substitution, which leaves the
	 * shell's own fds as the child got them (a redirection would not).
	 */
	open_pipe(out);
	opts.stdio[1] = -1;
	opts.stdio[2] = out[1];
	spawn_sh(&p, "echo discarded || exit 9; "
		 "fds=$(readlink /proc/$$/fd/0 /proc/$$/fd/1); echo \"$fds\" >&2",
		 &opts);
	close(out[1]);
	read_all(out[0], buf, sizeof(buf));
	ck_assert_str_eq(buf, "/dev/null\n/dev/null\n");
	expect_exit(&p, 0);
	close(out[0]);
	coil_process_destroy(&p);
	return 0;
}

START_TEST(test_stdio_minus_one_gives_the_child_dev_null)
{
	run(minus_one_is_dev_null, NULL);
}
END_TEST

/*
 * 0 inherits: this process's fds 0 and 1 are pipes for the duration of the
 * spawn, so what the child gets from them shows.
 */
static int zero_inherits(void *arg)
{
	const coil_process_opts zeros = { .stdio = { 0, 0, 0 } };
	const coil_process_opts *opts[] = { NULL, &zeros };
	char *cat[] = { "cat", NULL };
	coil_process p;
	char buf[64];
	int saved_in, saved_out, in[2], out[2];

	(void)arg;
	for (int i = 0; i < 2; i++) {
		open_pipe(in);
		open_pipe(out);
		fflush(stdout);
		saved_in = fcntl(0, F_DUPFD_CLOEXEC, 3);
		saved_out = fcntl(1, F_DUPFD_CLOEXEC, 3);
		ck_assert_int_ge(saved_in, 0);
		ck_assert_int_ge(saved_out, 0);
		ck_assert_int_eq(dup2(in[0], 0), 0);
		ck_assert_int_eq(dup2(out[1], 1), 1);
		ck_assert_int_eq(coil_process_spawn(&p, cat, opts[i]), 0);
		ck_assert_int_eq(dup2(saved_in, 0), 0);
		ck_assert_int_eq(dup2(saved_out, 1), 1);
		close(saved_in);
		close(saved_out);
		close(in[0]);
		close(out[1]);
		ck_assert_int_eq(write(in[1], "through\n", 8), 8);
		close(in[1]);
		read_all(out[0], buf, sizeof(buf));
		ck_assert_str_eq(buf, "through\n");
		expect_exit(&p, 0);
		close(out[0]);
		coil_process_destroy(&p);
	}
	return 0;
}

START_TEST(test_stdio_zero_and_null_opts_inherit_this_processs_fds)
{
	run(zero_inherits, NULL);
}
END_TEST

/*
 * "Any other fd is duplicated onto it": fd 1 of this process, given as the
 * child's stderr, is this process's stdout, even when the child's own stdout
 * goes elsewhere. Here our fd 1 is a pipe for the duration of the spawn.
 */
static int stderr_to_our_stdout(void *arg)
{
	coil_process_opts opts = { .stdio = { -1, -1, 1 } };
	char outbuf[64], ourbuf[64];
	coil_process p;
	int out[2], ours[2], saved;

	(void)arg;
	open_pipe(out);
	open_pipe(ours);
	opts.stdio[1] = out[1];
	fflush(stdout);
	saved = fcntl(1, F_DUPFD_CLOEXEC, 3);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup2(ours[1], 1), 1);
	spawn_sh(&p, "echo out; echo err >&2", &opts);
	ck_assert_int_eq(dup2(saved, 1), 1);
	close(saved);
	close(out[1]);
	close(ours[1]);
	read_all(out[0], outbuf, sizeof(outbuf));
	read_all(ours[0], ourbuf, sizeof(ourbuf));
	expect_exit(&p, 0);
	ck_assert_str_eq(outbuf, "out\n");
	ck_assert_str_eq(ourbuf, "err\n");
	close(out[0]);
	close(ours[0]);
	coil_process_destroy(&p);
	return 0;
}

START_TEST(test_stdio_naming_fd_1_for_stderr_means_this_processs_stdout)
{
	run(stderr_to_our_stdout, NULL);
}
END_TEST

/*
 * An fd given for the slot of its own number is duplicated onto it as any
 * other: the child gets it even when this process opened it close-on-exec
 * (as coil opens every fd). Here our fd 1 is a pipe with FD_CLOEXEC set.
 */
static int own_slot_cloexec(void *arg)
{
	coil_process_opts opts = { .stdio = { -1, 1, -1 } };
	char *argv[] = { "echo", "kept", NULL };
	coil_process p;
	char buf[64];
	int out[2], saved;

	(void)arg;
	open_pipe(out);
	fflush(stdout);
	saved = fcntl(1, F_DUPFD_CLOEXEC, 3);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_eq(dup3(out[1], 1, O_CLOEXEC), 1);
	ck_assert_int_eq(coil_process_spawn(&p, argv, &opts), 0);
	ck_assert_int_eq(dup2(saved, 1), 1);
	close(saved);
	close(out[1]);
	read_all(out[0], buf, sizeof(buf));
	expect_exit(&p, 0);
	ck_assert_str_eq(buf, "kept\n");
	close(out[0]);
	coil_process_destroy(&p);
	return 0;
}

START_TEST(test_stdio_naming_a_cloexec_fd_for_its_own_slot_still_passes_it)
{
	run(own_slot_cloexec, NULL);
}
END_TEST

/* ---------------------------------------------------------- environment */

static int environment(void *arg)
{
	char *envp[] = { "X=3", NULL };
	coil_process_opts opts = { .envp = envp };
	coil_process p;

	(void)arg;
	ck_assert_int_eq(setenv("COIL_TEST_Y", "ours", 1), 0);
	/* envp replaces the environment: ours does not leak in. */
	spawn_sh(&p, "[ -z \"$COIL_TEST_Y\" ] || exit 100; exit $X", &opts);
	expect_exit(&p, 3);
	coil_process_destroy(&p);
	/* NULL: this process's environment, as it is now. */
	ck_assert_int_eq(setenv("COIL_TEST_X", "5", 1), 0);
	spawn_sh(&p, "[ \"$COIL_TEST_Y\" = ours ] || exit 100; exit $COIL_TEST_X",
		 NULL);
	expect_exit(&p, 5);
	coil_process_destroy(&p);
	unsetenv("COIL_TEST_X");
	unsetenv("COIL_TEST_Y");
	return 0;
}

START_TEST(test_envp_is_the_childs_whole_environment_and_null_passes_ours)
{
	run(environment, NULL);
}
END_TEST

/* --------------------------------------------------------------- errors */

static int spawn_errors(void *arg)
{
	char dir[128], path[192];
	char *missing[] = { "coil-no-such-program-anywhere", NULL };
	char *missing_path[] = { "/nonexistent/coil/prog", NULL };
	char *not_exec[] = { path, NULL };
	char *empty[] = { NULL };
	char *sh[] = { "sh", "-c", "exit 0", NULL };
	coil_process_opts opts;
	coil_process p;
	int fd;

	(void)arg;
	ck_assert(no_children());
	ck_assert_int_eq(coil_process_spawn(&p, missing, NULL), -ENOENT);
	ck_assert_int_eq(coil_process_spawn(&p, missing_path, NULL), -ENOENT);
	/* The failed exec's child was reaped: nothing left behind. */
	ck_assert(no_children());

	make_test_dir(dir, sizeof(dir), suite_dir);
	snprintf(path, sizeof(path), "%s/not-executable", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
	close(fd);
	ck_assert_int_eq(coil_process_spawn(&p, not_exec, NULL), -EACCES);
	ck_assert(no_children());
	remove_tree(dir);

	ck_assert_int_eq(coil_process_spawn(&p, NULL, NULL), -EINVAL);
	ck_assert_int_eq(coil_process_spawn(&p, empty, NULL), -EINVAL);
	ck_assert_int_eq(coil_process_spawn(NULL, sh, NULL), -EINVAL);
	for (int i = 0; i < 3; i++) {
		opts = (coil_process_opts){ .stdio = { -1, -1, -1 } };
		opts.stdio[i] = -2;
		ck_assert_int_eq(coil_process_spawn(&p, sh, &opts), -EINVAL);
		opts.stdio[i] = INT32_MIN;
		ck_assert_int_eq(coil_process_spawn(&p, sh, &opts), -EINVAL);
	}
	ck_assert(no_children());
	ck_assert_int_eq(coil_process_wait(NULL, NULL, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_process_kill(NULL, SIGKILL), -EINVAL);
	coil_process_destroy(NULL);
	return 0;
}

START_TEST(test_spawn_errors_leave_no_child_behind)
{
	run(spawn_errors, NULL);
}
END_TEST

/* Outside a task, nothing can park: the wait is refused, the child left. */
START_TEST(test_a_wait_outside_a_task_is_eperm_and_reaps_nothing)
{
	char *argv[] = { "sh", "-c", "exit 4", NULL };
	coil_process p;
	int status = -1;

	ck_assert_int_eq(coil_process_spawn(&p, argv, NULL), 0);
	await_exit_unreaped(coil_process_pid(&p));
	ck_assert_int_eq(coil_process_wait(&p, &status, COIL_NEVER), -EPERM);
	ck_assert_int_eq(status, -1);
	ck_assert(!reaped(coil_process_pid(&p)));
	coil_process_destroy(&p);
	ck_assert(no_children());
}
END_TEST

/* ------------------------------------------------------------- destroy */

static int destroy_reaps(void *arg)
{
	struct held c;
	coil_process p;
	int fds = count_fds(), status = -1;
	pid_t pid;

	(void)arg;
	/* A child still running: killed and reaped, no zombie, no fd left. */
	start_held(&c);
	coil_process_destroy(&c.p);
	ck_assert(reaped(c.pid));
	close(c.stdin_w);
	ck_assert_int_eq(count_fds(), fds);
	/* A second destroy finds nothing to do. */
	coil_process_destroy(&c.p);
	ck_assert_int_eq(count_fds(), fds);

	/* A child that exited and was not reaped: reaped. */
	spawn_sh(&p, "exit 0", NULL);
	pid = coil_process_pid(&p);
	await_exit_unreaped(pid);
	coil_process_destroy(&p);
	ck_assert(reaped(pid));
	ck_assert_int_eq(count_fds(), fds);

	/* After a wait: harmless, twice. */
	spawn_sh(&p, "exit 6", NULL);
	ck_assert_int_eq(coil_process_wait(&p, &status, COIL_NEVER), 0);
	ck_assert_int_eq(WEXITSTATUS(status), 6);
	coil_process_destroy(&p);
	coil_process_destroy(&p);
	ck_assert_int_eq(count_fds(), fds);
	ck_assert(no_children());
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

START_TEST(test_destroy_kills_and_reaps_a_running_child_and_is_harmless_after)
{
	run(destroy_reaps, NULL);
}
END_TEST

/* Destroy does not park: it works outside a loop as well. */
START_TEST(test_destroy_outside_a_loop_kills_and_reaps)
{
	char *argv[] = { "cat", NULL };
	coil_process_opts opts = { .stdio = { -1, -1, -1 } };
	coil_process p;
	pid_t pid;
	int in[2];

	open_pipe(in);
	opts.stdio[0] = in[0];
	ck_assert_int_eq(coil_process_spawn(&p, argv, &opts), 0);
	pid = coil_process_pid(&p);
	ck_assert(running(pid));
	coil_process_destroy(&p);
	ck_assert(reaped(pid));
	close(in[0]);
	close(in[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_process");
	int ret;

	if (make_suite_dir(suite_dir, sizeof(suite_dir), "process") < 0)
		return 1;

	ADD_BOTH_PATHS(s, test_exit_status_7_is_reported_for_the_childs_own_pid, 10);
	ADD_BOTH_PATHS(s, test_a_child_killed_by_a_signal_reports_wtermsig, 10);
	ADD_BOTH_PATHS(s, test_a_child_dumping_core_reports_wcoredump_as_the_kernel_did, 10);
	ADD_BOTH_PATHS(s, test_a_child_that_exited_before_the_wait_is_reaped_at_once, 10);
	ADD_BOTH_PATHS(s, test_a_wait_past_its_deadline_leaves_the_child_running_until_killed, 10);
	ADD_BOTH_PATHS(s, test_a_wait_after_a_timed_out_one_gets_the_exit, 10);
	ADD_BOTH_PATHS(s, test_a_cancelled_wait_leaves_the_child_for_another_task, 10);
	ADD_BOTH_PATHS(s, test_a_wait_in_a_cancelled_task_is_ecanceled_and_reaps_nothing, 10);
	ADD_BOTH_PATHS(s, test_a_hundred_children_awaited_by_a_hundred_tasks_get_their_own_status, 60);
	ADD_TEST(s, test_a_childs_stdout_given_a_pipe_is_read_back_with_coil_read, 10);
	ADD_TEST(s, test_stdio_minus_one_gives_the_child_dev_null, 10);
	ADD_TEST(s, test_stdio_zero_and_null_opts_inherit_this_processs_fds, 10);
	ADD_TEST(s, test_stdio_naming_fd_1_for_stderr_means_this_processs_stdout, 10);
	ADD_TEST(s, test_stdio_naming_a_cloexec_fd_for_its_own_slot_still_passes_it, 10);
	ADD_TEST(s, test_envp_is_the_childs_whole_environment_and_null_passes_ours, 10);
	ADD_TEST(s, test_spawn_errors_leave_no_child_behind, 10);
	ADD_TEST(s, test_a_wait_outside_a_task_is_eperm_and_reaps_nothing, 10);
	ADD_TEST(s, test_destroy_kills_and_reaps_a_running_child_and_is_harmless_after, 10);
	ADD_TEST(s, test_destroy_outside_a_loop_kills_and_reaps, 10);
	ret = test_main(s);
	remove_tree(suite_dir);
	return ret;
}
