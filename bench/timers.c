/*
 * Callback timers: arm 1,000,000 timers with random deadlines 0-100 ms ahead
 * and run the loop until all have fired; process CPU time per timer, for
 * coil and, in the same run with the same deadlines, for libuv's timers.
 *
 *   timers [--rounds N] [--timers N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef COIL_BENCH_LIBUV
#include <uv.h>
#endif

#include "bench.h"
#include "coil.h"

static long count = 1000000;
static int rounds = 3;
static int64_t *offsets; /* ns after the start of a round */
static long fired;

static int64_t cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void check_all_fired(const char *who)
{
	if (fired != count) {
		fprintf(stderr, "timers: %s fired %ld of %ld timers\n", who, fired,
			count);
		exit(1);
	}
}

static void on_coil_timer(coil_timer *t, void *arg)
{
	(void)t;
	(void)arg;
	fired++;
}

/*
 * The timers' own memory is allocated and touched before the clock starts,
 * for both: a page fault costs about 10 us on this VM, and what is measured
 * is the timers, not the allocator.
 */
static void *prefaulted(size_t size)
{
	void *p = malloc(size);

	if (!p)
		exit(1);
	return memset(p, 0xff, size); /* not 0: that could become a lazy calloc */
}

static double coil_round(void)
{
	coil_timer *timers = prefaulted(sizeof(*timers) * count);
	int64_t cpu = cpu_now(), start = coil_now(), last = 0;

	fired = 0;
	for (long i = 0; i < count; i++) {
		coil_timer_init(&timers[i], on_coil_timer, NULL);
		if (coil_timer_arm(&timers[i], start + offsets[i]) < 0)
			exit(1);
		if (offsets[i] > last)
			last = offsets[i];
	}
	/*
	 * Timers fire in deadline order, those due with this sleep first. If
	 * arming took longer than the latest deadline, the sleep returns at
	 * once and one more iteration fires them all.
	 */
	coil_sleep_until(start + last);
	while (fired < count)
		coil_yield();
	cpu = cpu_now() - cpu;
	check_all_fired("coil");
	free(timers);
	return (double)cpu / count;
}

#ifdef COIL_BENCH_LIBUV
static void on_uv_timer(uv_timer_t *t)
{
	(void)t;
	fired++;
}

static double libuv_round(void)
{
	uv_timer_t *timers = prefaulted(sizeof(*timers) * count);
	uv_loop_t loop;
	int64_t cpu;

	if (uv_loop_init(&loop))
		exit(1);
	cpu = cpu_now();
	fired = 0;
	for (long i = 0; i < count; i++) {
		uv_timer_init(&loop, &timers[i]);
		uv_timer_start(&timers[i], on_uv_timer, offsets[i] / 1000000, 0);
	}
	uv_run(&loop, UV_RUN_DEFAULT); /* returns when no timer is left */
	cpu = cpu_now() - cpu;
	check_all_fired("libuv");
	for (long i = 0; i < count; i++)
		uv_close((uv_handle_t *)&timers[i], NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(timers);
	return (double)cpu / count;
}
#endif

static int run(void *arg)
{
	double mine[64];
#ifdef COIL_BENCH_LIBUV
	double peer[64];
#endif

	(void)arg;
	for (int i = 0; i < rounds; i++) {
		mine[i] = coil_round();
#ifdef COIL_BENCH_LIBUV
		peer[i] = libuv_round();
#endif
	}
	bench_result("timer_cpu_ns", bench_median(mine, rounds), "ns");
#ifdef COIL_BENCH_LIBUV
	bench_result("timer_libuv_cpu_ns", bench_median(peer, rounds), "ns");
	bench_result("timer_cpu_vs_libuv", bench_median(mine, rounds) /
		     bench_median(peer, rounds), "ratio");
	printf("target: timer_cpu_ns <= 0.2 x timer_libuv_cpu_ns: %s\n",
	       bench_median(mine, rounds) <= 0.2 * bench_median(peer, rounds)
	       ? "met" : "MISSED");
#else
	printf("target: timer_cpu_ns <= 0.2 x timer_libuv_cpu_ns: not measured "
	       "(built without libuv1-dev)\n");
#endif
	return 0;
}

int main(int argc, char **argv)
{
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--timers") && i + 1 < argc)
			count = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: timers [--rounds N (1-64)] [--timers N]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 64 || count < 1) {
		fprintf(stderr, "timers: --rounds takes 1-64, --timers at least 1\n");
		return 2;
	}
	offsets = malloc(sizeof(*offsets) * count);
	if (!offsets)
		return 1;
	srand(1);
	for (long i = 0; i < count; i++)
		offsets[i] = (int64_t)((double)rand() / RAND_MAX * COIL_MSEC(100));
	bench_pin();
	ret = coil_run(run, NULL, NULL);
	if (ret < 0) {
		fprintf(stderr, "timers: cannot start a loop: %s\n", strerror(-ret));
		return 1;
	}
	free(offsets);
	return 0;
}
