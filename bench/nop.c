/*
 * NOP throughput through the ring layer against raw liburing, same ring
 * flags, batches of 32, rounds interleaved in one run so that both see the
 * same machine. NOPs cost the kernel almost nothing, so this measures what
 * the layer adds per op: SQE acquisition, dispatch through the op's handler,
 * in-flight accounting.
 *
 *   nop [--rounds N] [--ops N]
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

int main(int argc, char **argv)
{
	struct io_uring_params p = { 0 };
	double raw[64], ring[64], raw_ops, ring_ops;
	long ops = 4000000;
	int rounds = 7, i, ret;
	struct io_uring uring;
	coil_ring r;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			ops = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: nop [--rounds N (1-64)] [--ops N]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 64 || ops < BATCH) {
		fprintf(stderr, "nop: --rounds takes 1-64, --ops at least %d\n", BATCH);
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

	raw_round(&uring, ops / 4); /* warm up both */
	ring_round(&r, ops / 4);
	for (i = 0; i < rounds; i++) {
		raw[i] = raw_round(&uring, ops);
		ring[i] = ring_round(&r, ops);
	}
	raw_ops = bench_median(raw, rounds);
	ring_ops = bench_median(ring, rounds);
	bench_result("nop_raw_b32_ops", raw_ops, "ops/s");
	bench_result("nop_ring_b32_ops", ring_ops, "ops/s");
	bench_result("nop_ring_b32_vs_raw", ring_ops / raw_ops, "ratio");
	printf("target: nop_ring_b32_ops >= 0.9 x nop_raw_b32_ops: %s\n",
	       ring_ops >= 0.9 * raw_ops ? "met" : "MISSED");

	io_uring_queue_exit(&uring);
	coil_ring_exit(&r);
	return 0;
}
