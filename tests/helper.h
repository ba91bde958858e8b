/* Shared by the Check suites: the runner, log capture, skips. */
#ifndef COIL_TESTS_HELPER_H
#define COIL_TESTS_HELPER_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "coil.h"

/* Run one suite; the process exit status says whether it passed. */
int test_main(Suite *suite);

/* Route coil's log into a buffer the test can search. */
void capture_log(void);
/* The captured messages, one per line, "<level>: <message>". */
const char *captured_log(void);
/* Whether a captured message of the given level contains text. */
int log_has(enum coil_log_level level, const char *text);

/* A feature the kernel lacks is reported and the test ends, not failed. */
#define SKIP_UNLESS(cond, why)                                                 \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "skipped %s: %s\n", __func__, why);   \
			return;                                                \
		}                                                              \
	} while (0)

/*
 * ck_assert reports every passing check to the runner, a write per call: in
 * loops of a million that is most of the run. Loops check through this
 * instead, which costs nothing until it fails.
 */
#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)

/* A fixed-seed xorshift64, so that every run sees the same sequence. */
void seed(uint64_t s);
uint64_t rnd(void);
/* Uniform enough in [0, n) for a test; n > 0. */
uint64_t below(uint64_t n);

/* Add a test case of one test with its own timeout in seconds. */
#define ADD_TEST(suite, fn, seconds)                                           \
	do {                                                                   \
		TCase *tc_ = tcase_create(#fn);                                \
		tcase_set_timeout(tc_, seconds);                               \
		tcase_add_test(tc_, fn);                                       \
		suite_add_tcase(suite, tc_);                                   \
	} while (0)

/* An op that records its completions. */
struct recorder {
	coil_op op;
	int calls;
	int awaited;       /* calls await_cqe has returned for */
	int res;           /* of the last CQE */
	unsigned flags[8]; /* of the first CQEs */
};

void record_cqe(coil_op *op, const struct io_uring_cqe *cqe);
#define RECORDER { .op.complete = record_cqe }

/*
 * Wait (at most 3 s) until rec has a completion that no earlier call
 * returned (it may have come already, dispatched with another op's);
 * return the result of the last one.
 */
int await_cqe(coil_ring *r, struct recorder *rec);

/* A ring with the given options, failing the test if it cannot be made. */
void ring_up(coil_ring *r, const coil_ring_opts *opts);

/*
 * Stack overflow checks. In a forked child, run start(arg), which must
 * overflow a stack whose guard page was named with expect_fault_below (by
 * start itself, or before the call); the test fails unless the child faults
 * inside that page. recurse_forever(0) overflows whatever stack it runs on.
 */
void expect_fault_below(void *stack_lo);
void expect_guard_fault(void (*start)(void *), void *arg);
int recurse_forever(int n);

/* Run fn as the main task of a new loop; coil_run and fn must return 0. */
void run(coil_fn *fn, void *arg);

/* Join t (the test's timeout bounds it); return its status. */
int join(coil_task *t);

/* Ops of the running loop's ring in flight. */
uint64_t inflight(void);

/* SQEs queued on the running loop's ring that the kernel has not seen yet. */
unsigned unsubmitted(void);

/*
 * Deadlines someone waits for in the running loop: parked tasks' and armed
 * callback timers (entries left stale by waits that ended first do not count).
 */
unsigned live_deadlines(void);

/* Whether t is parked (suspended and not yet woken). */
bool parked(const coil_task *t);

/*
 * From a task: let the tasks spawned before run until they park. The first
 * yield runs them (they queue their SQEs and park), the second returns after
 * the loop entered the kernel, so their ops are pending there, not queued.
 */
void let_tasks_park(void);

/*
 * Scratch directories under /tmp, for suites that make files. A suite makes
 * its own in main and removes it there, in the runner: a test that fails
 * ends its process before its own cleanup can run. make_test_dir makes one
 * inside, for a test. remove_tree is rm -rf without following symlinks.
 */
int make_suite_dir(char *dir, size_t len, const char *suite);
void make_test_dir(char *dir, size_t len, const char *suite_dir);
void remove_tree(const char *dir);

/* Entries of /proc/self/fd: the open fds, the listing's own included. */
int count_fds(void);

/* Spawn fn(arg) as a joinable task, failing the test if it cannot. */
coil_task *spawn(coil_fn *fn, void *arg);

/* From a task: yield until t is parked (it ran up to its parking call). */
void until_parked(coil_task *t);

/* Handles of this loop not released yet, main's included. */
unsigned unreleased_tasks(void);

/* From a task: run fn(arg) in a timer callback, on the loop, outside any task. */
void outside_task(void (*fn)(void *arg), void *arg);

/*
 * fn(arg) run as the main task of a loop on another thread, or on a thread
 * with no loop at all; what it returned.
 */
int in_another_loop(coil_fn *fn, void *arg);
int in_a_thread_without_loop(coil_fn *fn, void *arg);

/* Kernel version as major * 100 + minor, e.g. 618 for 6.18. */
int kernel_version(void);

#endif
