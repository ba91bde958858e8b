/* Small helpers shared by the benchmarks: results, medians, pinning. */
#ifndef COIL_BENCH_H
#define COIL_BENCH_H

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

/* One figure, in the form scripts parse: RESULT <name> <value> <unit>. */
static inline void bench_result(const char *name, double value, const char *unit)
{
	printf("RESULT %s %.*f %s\n", name, value < 100 ? 3 : 0, value, unit);
	fflush(stdout);
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of n values (sorts them). */
static inline double bench_median(double *v, int n)
{
	qsort(v, n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Keep the benchmark on the CPU it started on: fewer migrations, less noise. */
static inline void bench_pin(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(sched_getcpu(), &set);
	sched_setaffinity(0, sizeof(set), &set);
}

#endif
