#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/loop.h"
#include "helper.h"

static char log_text[16384];
static size_t log_len;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

static void capture(void *arg, enum coil_log_level level, const char *msg)
{
	(void)arg;
	log_len += snprintf(log_text + log_len,
			    log_len < sizeof(log_text) ? sizeof(log_text) - log_len : 0,
			    "%s: %s\n", level_names[level], msg);
	if (log_len >= sizeof(log_text))
		log_len = sizeof(log_text) - 1;
}

void capture_log(void)
{
	log_len = 0;
	log_text[0] = '\0';
	coil_set_log(capture, NULL);
}

const char *captured_log(void)
{
	return log_text;
}

int log_has(enum coil_log_level level, const char *text)
{
	const char *line = log_text;
	size_t prefix = strlen(level_names[level]);

	while (*line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (strncmp(line, level_names[level], prefix) == 0 &&
		    memmem(line, len, text, strlen(text)))
			return 1;
		line += len + (end != NULL);
	}
	return 0;
}

void record_cqe(coil_op *op, const struct io_uring_cqe *cqe)
{
	struct recorder *rec = (struct recorder *)op;

	if (rec->calls < 8)
		rec->flags[rec->calls] = cqe->flags;
	rec->calls++;
	rec->res = cqe->res;
}

int await_cqe(coil_ring *r, struct recorder *rec)
{
	int64_t deadline = coil_now() + COIL_SEC(3);

	while (rec->calls == rec->awaited)
		ck_assert_int_gt(coil_ring_wait(r, deadline), 0);
	rec->awaited = rec->calls;
	return rec->res;
}

void ring_up(coil_ring *r, const coil_ring_opts *opts)
{
	int ret = coil_ring_init(r, opts);

	ck_assert_msg(ret == 0, "coil_ring_init: %s", strerror(-ret));
}

static uint64_t rng_state = 1;

void seed(uint64_t s)
{
	rng_state = s ? s : 1;
}

uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

uint64_t below(uint64_t n)
{
	return rnd() % n;
}

static char *guard_lo;

void expect_fault_below(void *stack_lo)
{
	guard_lo = (char *)stack_lo - sysconf(_SC_PAGESIZE);
}

static void on_segv(int sig, siginfo_t *info, void *ctx)
{
	char *addr = info->si_addr;

	(void)sig;
	(void)ctx;
	_exit(addr >= guard_lo && addr < guard_lo + sysconf(_SC_PAGESIZE) ? 42 : 43);
}

/* Never reached; read at run time so that the compiler sees a way out. */
static volatile int recursion_limit = 1 << 30;

int recurse_forever(int n)
{
	volatile char frame[512];

	frame[0] = (char)n;
	if (n == recursion_limit)
		return 0;
	return recurse_forever(n + 1) + frame[0];
}

void expect_guard_fault(void (*start)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* The handler cannot run on the stack that overflowed. */
		static char altstack[64 * 1024];
		stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack) };
		struct sigaction sa = { .sa_sigaction = on_segv,
					.sa_flags = SA_SIGINFO | SA_ONSTACK };

		sigaltstack(&ss, NULL);
		sigaction(SIGSEGV, &sa, NULL);
		start(arg);
		_exit(44);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42,
		      "child status 0x%x: 43 = fault outside the guard page, "
		      "44 = no fault", status);
}

int kernel_version(void)
{
	struct utsname u;
	int major = 0, minor = 0;

	uname(&u);
	sscanf(u.release, "%d.%d", &major, &minor);
	return major * 100 + minor;
}

int test_main(Suite *suite)
{
	SRunner *runner = srunner_create(suite);
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void run(coil_fn *fn, void *arg)
{
	int status = -1;

	ck_assert_int_eq(coil_run(fn, arg, &status), 0);
	ck_assert_int_eq(status, 0);
}

int join(coil_task *t)
{
	int status = INT_MIN;

	ck_assert_int_eq(coil_join(t, &status, COIL_NEVER), 0);
	return status;
}

uint64_t inflight(void)
{
	return coil_ring_inflight(coil_loop_ring());
}

unsigned unsubmitted(void)
{
	return io_uring_sq_ready(&coil_loop_ring()->uring);
}

unsigned live_deadlines(void)
{
	return coil__live_timers(coil__this_loop);
}

bool parked(const coil_task *t)
{
	return t->flags & TASK_PARKED;
}

void let_tasks_park(void)
{
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);
}

int make_suite_dir(char *dir, size_t len, const char *suite)
{
	snprintf(dir, len, "/tmp/coil-%s-XXXXXX", suite);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return -1;
	}
	return 0;
}

void make_test_dir(char *dir, size_t len, const char *suite_dir)
{
	snprintf(dir, len, "%s/test-XXXXXX", suite_dir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

void remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

coil_task *spawn(coil_fn *fn, void *arg)
{
	coil_task *t = NULL;

	ck_assert_int_eq(coil_spawn(&t, fn, arg, NULL), 0);
	return t;
}

void until_parked(coil_task *t)
{
	for (int i = 0; !parked(t); i++) {
		CHECK(i < 1000, "%s never parked", coil_task_name(t));
		ck_assert_int_eq(coil_yield(), 0);
	}
}

unsigned unreleased_tasks(void)
{
	unsigned n = 0;

	for (coil_task *t = coil__this_loop->tasks.next;
	     t != &coil__this_loop->tasks; t = t->next)
		n++;
	return n;
}

struct outside {
	void (*fn)(void *arg);
	void *arg;
	bool done;
};

static void outside_cb(coil_timer *timer, void *arg)
{
	struct outside *o = arg;

	(void)timer;
	o->fn(o->arg);
	o->done = true;
}

void outside_task(void (*fn)(void *arg), void *arg)
{
	struct outside o = { fn, arg, false };
	coil_timer timer;

	coil_timer_init(&timer, outside_cb, &o);
	ck_assert_int_eq(coil_timer_arm(&timer, 0), 0);
	while (!o.done)
		ck_assert_int_eq(coil_yield(), 0);
}

struct foreign {
	coil_fn *fn;
	void *arg;
	int ret;
	bool loop;
};

static int foreign_main(void *arg)
{
	struct foreign *f = arg;

	f->ret = f->fn(f->arg);
	return 0;
}

static void *foreign_thread(void *arg)
{
	struct foreign *f = arg;

	if (f->loop)
		ck_assert_int_eq(coil_run(foreign_main, f, NULL), 0);
	else
		foreign_main(f);
	return NULL;
}

static int in_a_thread(coil_fn *fn, void *arg, bool loop)
{
	struct foreign f = { fn, arg, INT_MIN, loop };
	pthread_t th;

	ck_assert_int_eq(pthread_create(&th, NULL, foreign_thread, &f), 0);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	return f.ret;
}

int in_another_loop(coil_fn *fn, void *arg)
{
	return in_a_thread(fn, arg, true);
}

int in_a_thread_without_loop(coil_fn *fn, void *arg)
{
	return in_a_thread(fn, arg, false);
}

int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}
