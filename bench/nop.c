/*
 * NOP throughput against raw liburing (same ring flags, batches of 32):
 * through the ring layer with a callback per completion, and through tasks,
 * each submitting one NOP at a time and parking until it completes. Rounds
 * are interleaved in one run so that all see the same machine. NOPs cost the
 * kernel almost nothing, so this measures what coil adds per op: SQE
 * acquisition, dispatch, in-flight accounting and, for tasks, a park and a
 * wake with two context switches.
 *
 *   nop [--rounds N] [--ops N] [--tasks N]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "coil.h"

#define BATCH 32

static double raw_round(struct io_uring *ring, long ops)
{
	struct io_uring_cqe *cqe;
	long submitted = 0, completed = 0;
	int64_t start = coil_now();
	unsigned head, n;
	int i;

	while (completed < ops) {
		for (i = 0; i < BATCH && submitted < ops; i++, submitted++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data(sqe, ring);
		}
		io_uring_submit(ring);
		n = 0;
		io_uring_for_each_cqe(ring, head, cqe)
			n++;
		io_uring_cq_advance(ring, n);
		completed += n;
	}
	return ops / ((coil_now() - start) / 1e9);
}

struct nop_counter {
	coil_op op;
	long completed;
};

static void counted(coil_op *op, const struct io_uring_cqe *cqe)
{
	(void)cqe;
	((struct nop_counter *)op)->completed++;
}

static double ring_round(coil_ring *r, long ops)
{
	struct nop_counter c = { .op.complete = counted };
	int64_t start = coil_now();
	long submitted = 0;
	int i;

	while (c.completed < ops) {
		for (i = 0; i < BATCH && submitted < ops; i++, submitted++)
			io_uring_prep_nop(coil_ring_sqe(r, &c.op));
		if (coil_ring_poll(r) < 0) {
			fprintf(stderr, "nop: coil_ring_poll failed\n");
			exit(1);
		}
	}
	return ops / ((coil_now() - start) / 1e9);
}

static long ops = 4000000;
static int rounds = 7, tasks = 64;
static struct io_uring uring;
static coil_ring r;

static int nop_task(void *arg)
{
	long n = *(long *)arg;
	coil_io io;

	while (n--) {
		io_uring_prep_nop(coil_io_prep(&io));
		if (coil_io_await(&io, COIL_NEVER) < 0)
			return -EIO;
	}
	return 0;
}

static double task_round(long total)
{
	long each = total / tasks;
	coil_task *t[1024];
	int64_t start = coil_now();
	int i, status;

	for (i = 0; i < tasks; i++)
		if (coil_spawn(&t[i], nop_task, &each, NULL) < 0) {
			fprintf(stderr, "nop: cannot spawn\n");
			exit(1);
		}
	for (i = 0; i < tasks; i++) {
		coil_join(t[i], &status, COIL_NEVER);
		if (status < 0) {
			fprintf(stderr, "nop: a NOP failed\n");
			exit(1);
		}
	}
	return each * tasks / ((coil_now() - start) / 1e9);
}

/* All rounds run inside a task of a loop, the raw ones included. */
static int run(void *arg)
{
	double raw[64], ring[64], task[64], raw_ops, ring_ops, task_ops;
	int i;

	(void)arg;
	raw_round(&uring, ops / 4); /* warm up */
	ring_round(&r, ops / 4);
	task_round(ops / 4);
	for (i = 0; i < rounds; i++) {
		raw[i] = raw_round(&uring, ops);
		ring[i] = ring_round(&r, ops);
		task[i] = task_round(ops);
	}
	raw_ops = bench_median(raw, rounds);
	ring_ops = bench_median(ring, rounds);
	task_ops = bench_median(task, rounds);
	bench_result("nop_raw_b32_ops", raw_ops, "ops/s");
	bench_result("nop_ring_b32_ops", ring_ops, "ops/s");
	bench_result("nop_ring_b32_vs_raw", ring_ops / raw_ops, "ratio");
	bench_result("nop_task_ops", task_ops, "ops/s");
	bench_result("nop_task_vs_raw", task_ops / raw_ops, "ratio");
	printf("target: nop_ring_b32_ops >= 0.9 x nop_raw_b32_ops: %s\n",
	       ring_ops >= 0.9 * raw_ops ? "met" : "MISSED");
	printf("target: nop_task_ops >= 0.5 x nop_raw_b32_ops: %s\n",
	       task_ops >= 0.5 * raw_ops ? "met" : "MISSED");
	return 0;
}

int main(int argc, char **argv)
{
	struct io_uring_params p = { 0 };
	int i, ret;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = atol(argv[++i]);
		else if (!strcmp(argv[i], "--tasks") && i + 1 < argc)
			tasks = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: nop [--rounds N (1-64)] [--ops N] "
				"[--tasks N (1-1024)]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 64 || ops < BATCH || tasks < 1 || tasks > 1024 ||
	    ops < tasks) {
		fprintf(stderr, "nop: --rounds takes 1-64, --tasks 1-1024, --ops at "
			"least %d and at least --tasks\n", BATCH);
		return 2;
	}
	bench_pin();

	ret = coil_ring_init(&r, NULL);
	if (ret < 0) {
		fprintf(stderr, "nop: cannot create a ring: %s\n", strerror(-ret));
		return 1;
	}
	/* The raw ring gets exactly what coil was granted. */
	p.flags = coil_ring_flags(&r);
	p.cq_entries = r.uring.cq.ring_entries;
	ret = io_uring_queue_init_params(r.uring.sq.ring_entries, &uring, &p);
	if (ret < 0) {
		fprintf(stderr, "nop: raw ring: %s\n", strerror(-ret));
		return 1;
	}
	io_uring_register_ring_fd(&uring);

	ret = coil_run(run, NULL, NULL);
	if (ret < 0) {
		fprintf(stderr, "nop: cannot start a loop: %s\n", strerror(-ret));
		return 1;
	}
	io_uring_queue_exit(&uring);
	coil_ring_exit(&r);
	return 0;
}
