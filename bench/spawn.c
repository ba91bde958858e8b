/*
 * Task creation: spawn a task that returns at once and join it, over and
 * over (its stack is reused every time); and spawn many tasks that are all
 * alive at once, each parking once (a yield) before it returns, then join
 * them all. Prints ns per task, the median of rounds.
 *
 *   spawn [--rounds N] [--tasks N] [--many N] [--stack-cache N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "coil.h"

static long tasks = 1000000;  /* spawn+join pairs per round */
static long many = 100000;    /* tasks alive at once per round */
static int rounds = 5;
static coil_task **handles;

static int nothing(void *arg)
{
	(void)arg;
	return 0;
}

static int park_once(void *arg)
{
	(void)arg;
	return coil_yield();
}

static void must(int ret, const char *what)
{
	if (ret < 0) {
		fprintf(stderr, "spawn: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

static double spawn_join_round(void)
{
	int64_t start = coil_now();
	coil_task *t;

	for (long i = 0; i < tasks; i++) {
		must(coil_spawn(&t, nothing, NULL, NULL), "coil_spawn");
		must(coil_join(t, NULL, COIL_NEVER), "coil_join");
	}
	return (double)(coil_now() - start) / tasks;
}

static double spawn_many_round(void)
{
	int64_t start = coil_now();
	int status;

	for (long i = 0; i < many; i++)
		must(coil_spawn(&handles[i], park_once, NULL, NULL), "coil_spawn");
	for (long i = 0; i < many; i++) {
		must(coil_join(handles[i], &status, COIL_NEVER), "coil_join");
		must(status, "a task");
	}
	return (double)(coil_now() - start) / many;
}

static int run(void *arg)
{
	double pairs[64], alive[64];

	(void)arg;
	spawn_join_round(); /* warm up: stacks mapped and cached */
	spawn_many_round();
	for (int i = 0; i < rounds; i++) {
		pairs[i] = spawn_join_round();
		alive[i] = spawn_many_round();
	}
	bench_result("spawn_join_ns", bench_median(pairs, rounds), "ns");
	bench_result("spawn_many_ns", bench_median(alive, rounds), "ns");
	printf("target: spawn_join_ns <= 100: %s\n",
	       bench_median(pairs, rounds) <= 100 ? "met" : "MISSED");
	printf("target: spawn_many_ns <= 500: %s\n",
	       bench_median(alive, rounds) <= 500 ? "met" : "MISSED");
	return 0;
}

int main(int argc, char **argv)
{
	coil_loop_opts opts = { .stack_cache = 0 };
	long cache = -1;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tasks") && i + 1 < argc)
			tasks = atol(argv[++i]);
		else if (!strcmp(argv[i], "--many") && i + 1 < argc)
			many = atol(argv[++i]);
		else if (!strcmp(argv[i], "--stack-cache") && i + 1 < argc)
			cache = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: spawn [--rounds N (1-64)] [--tasks N] "
				"[--many N] [--stack-cache N]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 64 || tasks < 1 || many < 1) {
		fprintf(stderr, "spawn: --rounds takes 1-64, counts at least 1\n");
		return 2;
	}
	/* Bursts of `many` tasks: keep that many stacks cached, as a service would. */
	opts.stack_cache = cache >= 0 ? (unsigned)cache : (unsigned)many;
	handles = malloc(sizeof(*handles) * many);
	if (!handles)
		return 1;
	bench_pin();
	ret = coil_run_with(run, NULL, NULL, &opts);
	if (ret < 0) {
		fprintf(stderr, "spawn: cannot start a loop: %s\n", strerror(-ret));
		return 1;
	}
	free(handles);
	return 0;
}
