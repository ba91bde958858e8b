/*
 * Context switch cost: two tasks alternating through coil_yield (each yield
 * goes through the loop), coil's bare switch between two stacks, and glibc's
 * swapcontext (which also saves the signal mask with a syscall) as a peer in
 * the same run. Prints ns per switch, the median of interleaved rounds.
 *
 *   switch [--rounds N] [--switches N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "bench.h"
#include "coil.h"
#include "executor/context.h"
#include "executor/stack.h"

static coil__context main_ctx, other_ctx;
static ucontext_t main_uc, other_uc;

/* The other side of the ping-pong: switch straight back, forever. */
static void bounce(void *arg)
{
	(void)arg;
	for (;;)
		coil__context_switch(&other_ctx, &main_ctx);
}

static void bounce_uc(void)
{
	for (;;)
		swapcontext(&other_uc, &main_uc);
}

/* Apart from main: getcontext returns twice, which clobbers a caller's locals. */
static __attribute__((noinline)) void make_ucontext(coil__stack *s)
{
	getcontext(&other_uc);
	other_uc.uc_stack.ss_sp = s->lo;
	other_uc.uc_stack.ss_size = s->size;
	makecontext(&other_uc, bounce_uc, 0);
}

static double coil_round(long round_trips)
{
	int64_t start = coil_now();
	long i;

	for (i = 0; i < round_trips; i++)
		coil__context_switch(&main_ctx, &other_ctx);
	return (double)(coil_now() - start) / (2.0 * round_trips);
}

static double ucontext_round(long round_trips)
{
	int64_t start = coil_now();
	long i;

	for (i = 0; i < round_trips; i++)
		swapcontext(&main_uc, &other_uc);
	return (double)(coil_now() - start) / (2.0 * round_trips);
}

static int yielder(void *arg)
{
	long n = *(long *)arg;

	while (n--)
		coil_yield();
	return 0;
}

/* Two tasks yielding to each other: ns per yield, from one task to the next. */
static double yield_round(long switches)
{
	long each = switches / 2;
	coil_task *a, *b;
	int64_t start = coil_now();

	if (coil_spawn(&a, yielder, &each, NULL) ||
	    coil_spawn(&b, yielder, &each, NULL)) {
		fprintf(stderr, "switch: cannot spawn\n");
		exit(1);
	}
	coil_join(a, NULL, COIL_NEVER);
	coil_join(b, NULL, COIL_NEVER);
	return (double)(coil_now() - start) / (2.0 * each);
}

static long switches = 20000000;
static int rounds = 7;

/* Every round runs inside a task, so that all three see the same conditions. */
static int run(void *arg)
{
	double raw[64], uc[64], task[64];
	int i;

	(void)arg;
	coil_round(switches / 20); /* warm up */
	ucontext_round(switches / 200);
	yield_round(switches / 20);
	for (i = 0; i < rounds; i++) {
		task[i] = yield_round(switches / 2);
		raw[i] = coil_round(switches / 2);
		/* swapcontext is ~100x slower: fewer switches, similar time. */
		uc[i] = ucontext_round(switches / 200);
	}
	bench_result("switch_ns", bench_median(task, rounds), "ns");
	bench_result("switch_raw_ns", bench_median(raw, rounds), "ns");
	bench_result("switch_ucontext_ns", bench_median(uc, rounds), "ns");
	printf("target: switch_ns <= 10: %s\n",
	       bench_median(task, rounds) <= 10 ? "met" : "MISSED");
	printf("target: switch_raw_ns <= 3: %s\n",
	       bench_median(raw, rounds) <= 3 ? "met" : "MISSED");
	return 0;
}

int main(int argc, char **argv)
{
	coil__stack_pool pool;
	coil__stack a, b;
	int i, ret;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--switches") && i + 1 < argc)
			switches = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: switch [--rounds N (1-64)] [--switches N]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 64 || switches < 2) {
		fprintf(stderr, "switch: --rounds takes 1-64, --switches at least 2\n");
		return 2;
	}
	bench_pin();
	if (coil__stack_pool_init(&pool, 0) || coil__stack_get(&pool, 0, &a) ||
	    coil__stack_get(&pool, 0, &b)) {
		fprintf(stderr, "switch: cannot map stacks\n");
		return 1;
	}
	coil__context_make(&other_ctx, a.lo, a.size, bounce, NULL);
	make_ucontext(&b);

	ret = coil_run(run, NULL, NULL);
	if (ret < 0) {
		fprintf(stderr, "switch: cannot start a loop: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
