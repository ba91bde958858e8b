/*
 * Context switch cost: coil's bare switch between two stacks, and glibc's
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

int main(int argc, char **argv)
{
	long switches = 20000000;
	double raw[64], uc[64];
	coil__stack_pool pool;
	coil__stack a, b;
	int rounds = 7, i;

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

	coil_round(switches / 20); /* warm up */
	ucontext_round(switches / 200);
	for (i = 0; i < rounds; i++) {
		raw[i] = coil_round(switches / 2);
		/* swapcontext is ~100x slower: fewer switches, similar time. */
		uc[i] = ucontext_round(switches / 200);
	}
	bench_result("switch_raw_ns", bench_median(raw, rounds), "ns");
	bench_result("switch_ucontext_ns", bench_median(uc, rounds), "ns");
	printf("target: switch_raw_ns <= 3: %s\n",
	       bench_median(raw, rounds) <= 3 ? "met" : "MISSED");
	return 0;
}
