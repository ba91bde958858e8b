/*
 * What waiting on the primitives costs when nobody has to wait: one
 * uncontended coil_sem_acquire + coil_sem_release in a task (sem_ns), and a
 * future's whole life, init + resolve + await + result + destroy, in one
 * task (future_ns). Both are what every caller pays on the fast path: the
 * misuse checks, and for the future the atomics that let other threads
 * resolve it.
 *
 * future_remote_ns is the cross-thread path: a plain thread resolves
 * futures one after the other while a task awaits them in order, so it
 * measures the lock-free post, the doorbell when the inbox was empty, and
 * the loop's drain and wake, per future, at full rate.
 *
 * Each figure is the median of interleaved rounds. Takes a few seconds.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "coil.h"

#define ROUNDS 9
#define OPS 2000000
#define REMOTE_OPS 200000

static double sem_round(long ops)
{
	coil_sem s;
	int64_t start;
	long i;

	coil_sem_init(&s, 1, "bench");
	start = coil_now();
	for (i = 0; i < ops; i++) {
		coil_sem_acquire(&s, COIL_NEVER);
		coil_sem_release(&s);
	}
	start = coil_now() - start;
	coil_sem_destroy(&s);
	return (double)start / ops;
}

static double future_round(long ops)
{
	int64_t start = coil_now();
	coil_future f;
	void *v;
	long i;

	for (i = 0; i < ops; i++) {
		coil_future_init(&f, "bench");
		coil_future_resolve(&f, &f);
		coil_future_await(&f, COIL_NEVER);
		coil_future_result(&f, &v);
		coil_future_destroy(&f);
	}
	return (double)(coil_now() - start) / ops;
}

struct remote {
	coil_future *f;
	long n;
};

static void *resolver(void *arg)
{
	struct remote *r = arg;

	for (long i = 0; i < r->n; i++)
		coil_future_resolve(&r->f[i], NULL);
	return NULL;
}

static double remote_round(coil_future *f, long ops)
{
	struct remote r = { .f = f, .n = ops };
	pthread_t th;
	int64_t start;
	long i;

	for (i = 0; i < ops; i++)
		coil_future_init(&f[i], "bench-remote");
	start = coil_now();
	if (pthread_create(&th, NULL, resolver, &r)) {
		fprintf(stderr, "sync: cannot start a thread\n");
		exit(1);
	}
	for (i = 0; i < ops; i++)
		coil_future_await(&f[i], COIL_NEVER);
	start = coil_now() - start;
	pthread_join(th, NULL);
	for (i = 0; i < ops; i++)
		coil_future_destroy(&f[i]);
	return (double)start / ops;
}

static int run(void *arg)
{
	double sem[ROUNDS], fut[ROUNDS], remote[ROUNDS];
	coil_future *f = malloc(REMOTE_OPS * sizeof(*f));

	(void)arg;
	if (!f)
		return -1;
	sem_round(OPS / 10); /* warm up */
	future_round(OPS / 10);
	for (int i = 0; i < ROUNDS; i++) {
		sem[i] = sem_round(OPS);
		fut[i] = future_round(OPS);
		remote[i] = remote_round(f, REMOTE_OPS);
	}
	free(f);
	bench_result("sem_ns", bench_median(sem, ROUNDS), "ns");
	bench_result("future_ns", bench_median(fut, ROUNDS), "ns");
	bench_result("future_remote_ns", bench_median(remote, ROUNDS), "ns");
	return 0;
}

int main(void)
{
	int status = 0, ret;

	ret = coil_run(run, NULL, &status);
	if (ret < 0 || status < 0) {
		fprintf(stderr, "sync: %s\n", strerror(ret < 0 ? -ret : -status));
		return 1;
	}
	return 0;
}
