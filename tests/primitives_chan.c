/* primitives/channel.c: bounded channels, rendezvous, close, task_done/join. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor/loop.h"
#include "helper.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define ARG(n) ((void *)(intptr_t)(n))

static coil_chan ch;

/* A task that sends or receives one int; what it got is kept. */
struct op {
	int value;
	int ret;
	int64_t deadline;
	bool cancel_self;
};

static int send_one(void *arg)
{
	struct op *op = arg;

	if (op->cancel_self)
		coil_cancel(coil_current());
	op->ret = coil_chan_send(&ch, &op->value, op->deadline ? op->deadline
								: COIL_NEVER);
	return op->ret;
}

static int recv_one(void *arg)
{
	struct op *op = arg;

	if (op->cancel_self)
		coil_cancel(coil_current());
	op->ret = coil_chan_recv(&ch, &op->value, op->deadline ? op->deadline
								: COIL_NEVER);
	return op->ret;
}

static int recv_int(void)
{
	int v = -1;

	ck_assert_int_eq(coil_chan_recv(&ch, &v, COIL_NEVER), 0);
	return v;
}

/* ------------------------------------------------------------- behaviour */

static int buffered_fifo(void *arg)
{
	int v;

	(void)arg;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 4, "fifo"), 0);
	ck_assert_int_eq(coil_chan_try_recv(&ch, &v), -EAGAIN);
	for (v = 0; v < 4; v++)
		ck_assert_int_eq(coil_chan_try_send(&ch, &v), 0);
	ck_assert_uint_eq(coil_chan_len(&ch), 4);
	ck_assert_int_eq(coil_chan_try_send(&ch, &v), -EAGAIN);
	ck_assert_int_eq(coil_chan_send(&ch, &v, 0), -ETIMEDOUT);
	ck_assert_uint_eq(coil_chan_len(&ch), 4);
	/* Around the ring a few times. */
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(recv_int(), i);
		v = i + 4;
		ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	}
	for (int i = 20; i < 24; i++) {
		ck_assert_int_eq(coil_chan_try_recv(&ch, &v), 0);
		ck_assert_int_eq(v, i);
	}
	ck_assert_uint_eq(coil_chan_len(&ch), 0);
	ck_assert_int_eq(coil_chan_recv(&ch, &v, 0), -ETIMEDOUT);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_a_buffered_channel_is_fifo_and_try_calls_are_eagain_when_full_or_empty)
{
	run(buffered_fifo, NULL);
}
END_TEST

static int backpressure(void *arg)
{
	struct op s[3] = { { .value = 100 }, { .value = 101 }, { .value = 102 } };
	coil_task *t[3];

	(void)arg;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 2, "backpressure"), 0);
	for (int v = 0; v < 2; v++)
		ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	for (int i = 0; i < 3; i++) {
		t[i] = spawn(send_one, &s[i]);
		until_parked(t[i]);
	}
	/* Taking one moves the first parked sender's item in, and wakes it. */
	ck_assert_int_eq(recv_int(), 0);
	ck_assert_uint_eq(coil_chan_len(&ch), 2);
	ck_assert(!parked(t[0]));
	ck_assert(parked(t[1]));
	/* No send can overtake the parked ones. */
	ck_assert_int_eq(coil_chan_try_send(&ch, &(int){ 7 }), -EAGAIN);
	for (int i = 1; i < 5; i++)
		ck_assert_int_eq(recv_int(), i == 1 ? 1 : 98 + i);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_int_eq(s[i].ret, 0);
	}
	ck_assert_uint_eq(coil_chan_len(&ch), 0);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_a_full_channel_parks_senders_and_their_items_follow_in_order)
{
	run(backpressure, NULL);
}
END_TEST

static int rendezvous(void *arg)
{
	struct op s = { .value = 5 }, r = { 0 };
	coil_task *t;
	int v = 1;

	(void)arg;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 0, "rendezvous"), 0);
	ck_assert_int_eq(coil_chan_try_send(&ch, &v), -EAGAIN);
	ck_assert_int_eq(coil_chan_try_recv(&ch, &v), -EAGAIN);
	ck_assert_int_eq(coil_chan_send(&ch, &v, 0), -ETIMEDOUT);
	/* A send waits for a receiver, which takes the item from it. */
	t = spawn(send_one, &s);
	until_parked(t);
	ck_assert_uint_eq(coil_chan_len(&ch), 0);
	ck_assert_int_eq(coil_chan_try_recv(&ch, &v), 0);
	ck_assert_int_eq(v, 5);
	ck_assert(!parked(t));
	ck_assert_int_eq(join(t), 0);
	/* A receive waits for a sender, which copies into it. */
	t = spawn(recv_one, &r);
	until_parked(t);
	v = 6;
	ck_assert_int_eq(coil_chan_try_send(&ch, &v), 0);
	ck_assert_int_eq(r.value, 6); /* before the receiver even ran */
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_capacity_zero_is_a_rendezvous)
{
	run(rendezvous, NULL);
}
END_TEST

static int hand_off(void *arg)
{
	struct op r[3] = { 0 };
	coil_task *t[3];

	(void)arg;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 8, "hand-off"), 0);
	for (int i = 0; i < 3; i++) {
		t[i] = spawn(recv_one, &r[i]);
		until_parked(t[i]);
	}
	for (int v = 10; v < 13; v++)
		ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	/* Copied into the receivers, in the order they parked, not queued. */
	ck_assert_uint_eq(coil_chan_len(&ch), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(r[i].value, 10 + i);
		ck_assert_int_eq(join(t[i]), 0);
	}
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_senders_hand_items_straight_to_parked_receivers_in_order)
{
	run(hand_off, NULL);
}
END_TEST

struct odd {
	char text[13];
};

static int odd_sizes(void *arg)
{
	struct odd in = { "hello world" }, out;
	uint64_t big = 0x0123456789abcdefull, got = 0;

	(void)arg;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(struct odd), 3, "odd"), 0);
	for (int i = 0; i < 7; i++) {
		in.text[0] = (char)('a' + i);
		ck_assert_int_eq(coil_chan_send(&ch, &in, COIL_NEVER), 0);
		ck_assert_int_eq(coil_chan_recv(&ch, &out, COIL_NEVER), 0);
		ck_assert_int_eq(memcmp(&in, &out, sizeof(in)), 0);
	}
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(big), 1, "u64"), 0);
	ck_assert_int_eq(coil_chan_send(&ch, &big, COIL_NEVER), 0);
	ck_assert_int_eq(coil_chan_recv(&ch, &got, COIL_NEVER), 0);
	ck_assert(got == big);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_items_of_any_size_are_copied_whole)
{
	run(odd_sizes, NULL);
}
END_TEST

static int closing(void *arg)
{
	struct op s[2] = { { .value = 50 }, { .value = 51 } }, r = { 0 };
	coil_task *t[2], *rt;
	int v;

	(void)arg;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 2, "closing"), 0);
	for (v = 0; v < 2; v++)
		ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	for (int i = 0; i < 2; i++) {
		t[i] = spawn(send_one, &s[i]);
		until_parked(t[i]);
	}
	ck_assert_int_eq(coil_chan_close(&ch), 0);
	ck_assert_int_eq(coil_chan_close(&ch), -EALREADY);
	/* Parked senders fail; what the ring held drains, then -EPIPE. */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(join(t[i]), -EPIPE);
	ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), -EPIPE);
	ck_assert_int_eq(coil_chan_try_send(&ch, &v), -EPIPE);
	ck_assert_uint_eq(coil_chan_len(&ch), 2);
	ck_assert_int_eq(recv_int(), 0);
	ck_assert_int_eq(coil_chan_try_recv(&ch, &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(coil_chan_recv(&ch, &v, COIL_NEVER), -EPIPE);
	ck_assert_int_eq(coil_chan_try_recv(&ch, &v), -EPIPE);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	/* Parked receivers fail on close. */
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 0, "closing 0"), 0);
	rt = spawn(recv_one, &r);
	until_parked(rt);
	ck_assert_int_eq(coil_chan_close(&ch), 0);
	ck_assert_int_eq(join(rt), -EPIPE);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_close_fails_senders_and_lets_receivers_drain_then_epipe)
{
	run(closing, NULL);
}
END_TEST

static int join_chan(void *arg)
{
	int64_t *deadline = arg;

	return coil_chan_join(&ch, deadline ? *deadline : COIL_NEVER);
}

static int task_done_and_join(void *arg)
{
	int64_t soon;
	coil_task *j[2];
	int v = 0;

	(void)arg;
	capture_log();
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 4, "work"), 0);
	ck_assert_int_eq(coil_chan_join(&ch, COIL_NEVER), 0);
	ck_assert_int_eq(coil_chan_task_done(&ch), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_chan_task_done on channel 'work' "
			  "called more often than items were received"));
	for (v = 0; v < 3; v++)
		ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	for (int i = 0; i < 2; i++) {
		j[i] = spawn(join_chan, NULL);
		until_parked(j[i]);
	}
	soon = coil_now() + COIL_MSEC(2);
	ck_assert_int_eq(join(spawn(join_chan, &soon)), -ETIMEDOUT);
	/* Received is not done; done for each one received is. */
	for (int i = 0; i < 3; i++)
		recv_int();
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(parked(j[0]));
	ck_assert_int_eq(coil_chan_task_done(&ch), 0);
	ck_assert_int_eq(coil_chan_task_done(&ch), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(parked(j[1]));
	ck_assert_int_eq(coil_chan_task_done(&ch), 0);
	ck_assert_int_eq(coil_chan_task_done(&ch), -EINVAL);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(join(j[i]), 0);
	/* Cancel a join; the count is unchanged by it. */
	ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	j[0] = spawn(join_chan, NULL);
	until_parked(j[0]);
	ck_assert_int_eq(coil_chan_destroy(&ch), -EBUSY);
	ck_assert_int_eq(coil_cancel(j[0]), 0);
	ck_assert_int_eq(join(j[0]), -ECANCELED);
	recv_int();
	ck_assert_int_eq(coil_chan_join(&ch, 0), -ETIMEDOUT);
	ck_assert_int_eq(coil_chan_task_done(&ch), 0);
	ck_assert_int_eq(coil_chan_join(&ch, 0), 0);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_join_waits_until_every_item_sent_is_marked_done)
{
	run(task_done_and_join, NULL);
}
END_TEST

/* --------------------------------------------- deadlines, cancels, loss */

static int send_interrupted(void *arg)
{
	struct op s = { .value = 1 }, c = { .value = 2, .cancel_self = true };
	struct op late = { .value = 3 };
	coil_task *t;
	int v = 0;

	(void)arg;
	for (unsigned cap = 0; cap < 2; cap++) {
		ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), cap, "send"), 0);
		if (cap)
			ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
		s.deadline = coil_now() + COIL_MSEC(2);
		ck_assert_int_eq(join(spawn(send_one, &s)), -ETIMEDOUT);
		ck_assert_int_eq(join(spawn(send_one, &c)), -ECANCELED);
		t = spawn(send_one, &late);
		until_parked(t);
		ck_assert_int_eq(coil_cancel(t), 0);
		ck_assert_int_eq(join(t), -ECANCELED);
		/* None of the three items went in, nor left a sender parked. */
		ck_assert_uint_eq(coil_chan_len(&ch), cap);
		if (cap)
			ck_assert_int_eq(recv_int(), 0);
		ck_assert_int_eq(coil_chan_try_recv(&ch, &v), -EAGAIN);
		ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	}
	return 0;
}

START_TEST(test_send_deadline_and_cancel_send_nothing)
{
	run(send_interrupted, NULL);
}
END_TEST

static int recv_interrupted(void *arg)
{
	struct op r = { .value = -1 }, c = { .value = -1, .cancel_self = true };
	struct op late = { .value = -1 };
	coil_task *t;
	int v = 9;

	(void)arg;
	for (unsigned cap = 0; cap < 2; cap++) {
		ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), cap, "recv"), 0);
		r.deadline = coil_now() + COIL_MSEC(2);
		ck_assert_int_eq(join(spawn(recv_one, &r)), -ETIMEDOUT);
		t = spawn(recv_one, &late);
		until_parked(t);
		ck_assert_int_eq(coil_cancel(t), 0);
		ck_assert_int_eq(join(t), -ECANCELED);
		if (cap) {
			/* A cancelled task takes nothing, even an item there. */
			ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
			ck_assert_int_eq(join(spawn(recv_one, &c)), -ECANCELED);
			ck_assert_uint_eq(coil_chan_len(&ch), 1);
			ck_assert_int_eq(recv_int(), 9);
		}
		/* No receiver was left parked to swallow an item. */
		ck_assert_int_eq(coil_chan_try_send(&ch, &v), cap ? 0 : -EAGAIN);
		ck_assert_int_eq(r.value, -1);
		ck_assert_int_eq(late.value, -1);
		ck_assert_int_eq(c.value, -1);
		ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	}
	return 0;
}

START_TEST(test_recv_deadline_and_cancel_take_nothing)
{
	run(recv_interrupted, NULL);
}
END_TEST

static int cancel_after_hand_off(void *arg)
{
	struct op r = { .value = -1 }, s = { .value = 7 };
	coil_task *t;
	int v = 4;

	(void)arg;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 1, "late cancel"), 0);
	/* The receiver has the item before it runs: the cancel comes too late. */
	t = spawn(recv_one, &r);
	until_parked(t);
	ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.value, 4);
	/* Likewise a sender whose item was moved into the ring. */
	ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	t = spawn(send_one, &s);
	until_parked(t);
	ck_assert_int_eq(recv_int(), 4);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(recv_int(), 7);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_a_cancel_after_the_hand_off_loses_nothing)
{
	run(cancel_after_hand_off, NULL);
}
END_TEST

/* ---- many producers and consumers */

#define PRODUCERS 100
#define CONSUMERS 100
#define PER_PRODUCER 10000
#define MESSAGES (PRODUCERS * PER_PRODUCER)

static unsigned char seen[MESSAGES];
static unsigned received;

static int produce(void *arg)
{
	unsigned base = (unsigned)(intptr_t)arg * PER_PRODUCER;

	for (unsigned i = 0; i < PER_PRODUCER; i++) {
		unsigned v = base + i;

		CHECK(coil_chan_send(&ch, &v, COIL_NEVER) == 0, "send %u failed", v);
	}
	return 0;
}

static int consume(void *arg)
{
	unsigned v;
	int ret;

	(void)arg;
	while ((ret = coil_chan_recv(&ch, &v, COIL_NEVER)) == 0) {
		CHECK(v < MESSAGES, "received %u, never sent", v);
		CHECK(!seen[v], "received %u twice", v);
		seen[v] = 1;
		received++;
		CHECK(coil_chan_task_done(&ch) == 0, "task_done failed");
	}
	return ret;
}

static int million(void *arg)
{
	static coil_task *p[PRODUCERS], *c[CONSUMERS];

	(void)arg;
	memset(seen, 0, sizeof(seen));
	received = 0;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(unsigned), 64, "million"), 0);
	for (int i = 0; i < CONSUMERS; i++)
		c[i] = spawn(consume, NULL);
	for (int i = 0; i < PRODUCERS; i++)
		p[i] = spawn(produce, ARG(i));
	for (int i = 0; i < PRODUCERS; i++)
		ck_assert_int_eq(join(p[i]), 0);
	ck_assert_int_eq(coil_chan_join(&ch, COIL_NEVER), 0);
	ck_assert_uint_eq(received, MESSAGES);
	ck_assert_int_eq(coil_chan_close(&ch), 0);
	for (int i = 0; i < CONSUMERS; i++)
		ck_assert_int_eq(join(c[i]), -EPIPE);
	for (unsigned v = 0; v < MESSAGES; v++)
		CHECK(seen[v], "%u was lost", v);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_100_producers_and_100_consumers_move_a_million_messages_exactly_once)
{
	run(million, NULL);
}
END_TEST

/*
 * The same with every parking call interrupted at random: short deadlines
 * on both sides, and consumers and producers cancelled and replaced. A
 * producer's position survives it, so each value is sent until it went.
 */
#define CHAOS_PRODUCERS 10
#define CHAOS_CONSUMERS 10
#define CHAOS_PER 3000

struct producer {
	unsigned next, end;
	coil_task *task;
};

static struct producer prods[CHAOS_PRODUCERS];
static coil_task *cons[CHAOS_CONSUMERS];

static int64_t random_deadline(void)
{
	/* A third already passed, the rest up to 20 us away. */
	return coil_now() + (int64_t)below(30000) - 10000;
}

static int chaos_produce(void *arg)
{
	struct producer *p = arg;
	int ret;

	while (p->next < p->end) {
		ret = coil_chan_send(&ch, &p->next, random_deadline());
		if (ret == 0)
			p->next++;
		else if (ret == -ECANCELED)
			return ret;
		else
			CHECK(ret == -ETIMEDOUT, "send: %d", ret);
	}
	return 0;
}

static int chaos_consume(void *arg)
{
	unsigned v;
	int ret;

	(void)arg;
	for (;;) {
		ret = coil_chan_recv(&ch, &v, random_deadline());
		if (ret == 0) {
			CHECK(v < MESSAGES, "received %u, never sent", v);
			CHECK(!seen[v], "received %u twice", v);
			seen[v] = 1;
			received++;
		} else if (ret == -ECANCELED || ret == -EPIPE) {
			return ret;
		} else {
			CHECK(ret == -ETIMEDOUT, "recv: %d", ret);
		}
	}
}

static bool producing(void)
{
	for (int i = 0; i < CHAOS_PRODUCERS; i++)
		if (prods[i].next < prods[i].end)
			return true;
	return false;
}

static int chaos(void *arg)
{
	unsigned cap = (unsigned)(intptr_t)arg, cancels = 0;

	memset(seen, 0, sizeof(seen));
	received = 0;
	seed(cap + 1);
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(unsigned), cap, "chaos"), 0);
	for (int i = 0; i < CHAOS_PRODUCERS; i++) {
		prods[i] = (struct producer){ .next = i * CHAOS_PER,
					      .end = (i + 1) * CHAOS_PER };
		prods[i].task = spawn(chaos_produce, &prods[i]);
	}
	for (int i = 0; i < CHAOS_CONSUMERS; i++)
		cons[i] = spawn(chaos_consume, NULL);
	while (producing()) {
		int i = (int)below(CHAOS_PRODUCERS + CHAOS_CONSUMERS);
		coil_task **t = i < CHAOS_PRODUCERS ? &prods[i].task
						    : &cons[i - CHAOS_PRODUCERS];

		ck_assert_int_eq(coil_sleep(COIL_USEC(below(50))), 0);
		ck_assert_int_eq(coil_cancel(*t), 0);
		join(*t);
		cancels++;
		*t = spawn(i < CHAOS_PRODUCERS ? chaos_produce : chaos_consume,
			   i < CHAOS_PRODUCERS ? (void *)&prods[i] : NULL);
	}
	for (int i = 0; i < CHAOS_PRODUCERS; i++)
		ck_assert_int_eq(join(prods[i].task), 0);
	ck_assert_int_eq(coil_chan_close(&ch), 0);
	for (int i = 0; i < CHAOS_CONSUMERS; i++)
		ck_assert_int_eq(join(cons[i]), -EPIPE);
	ck_assert_uint_eq(received, CHAOS_PRODUCERS * CHAOS_PER);
	for (unsigned v = 0; v < CHAOS_PRODUCERS * CHAOS_PER; v++)
		CHECK(seen[v], "%u was lost (capacity %u)", v, cap);
	ck_assert_uint_gt(cancels, 10);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	return 0;
}

START_TEST(test_random_deadlines_and_cancels_lose_and_duplicate_nothing)
{
	run(chaos, ARG(0));
	run(chaos, ARG(1));
	run(chaos, ARG(16));
}
END_TEST

/* ---- no allocation per message */

#ifndef UNDER_ASAN
/* Count the allocations of this process; glibc's own do the work. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
static unsigned long allocations;

void *malloc(size_t size)
{
	allocations++;
	return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
	allocations++;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
	allocations++;
	return __libc_realloc(p, size);
}
#else
static unsigned long allocations; /* not counted: the test is skipped */
#endif

static coil_chan pong;

static int ponger(void *arg)
{
	uint64_t v;

	(void)arg;
	while (coil_chan_recv(&ch, &v, COIL_NEVER) == 0)
		CHECK(coil_chan_send(&pong, &v, COIL_NEVER) == 0, "pong failed");
	return 0;
}

static int no_allocation(void *arg)
{
	unsigned long before;
	coil_task *t;
	uint64_t v;

	(void)arg;
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(v), 0, "ping"), 0);
	ck_assert_int_eq(coil_chan_init(&pong, sizeof(v), 4, "pong"), 0);
	t = spawn(ponger, NULL);
	before = allocations;
	for (v = 0; v < 10000; v++) {
		uint64_t back = ~v;

		CHECK(coil_chan_send(&ch, &v, COIL_NEVER) == 0, "ping failed");
		CHECK(coil_chan_recv(&pong, &back, COIL_NEVER) == 0, "pong failed");
		CHECK(back == v, "sent %lu, got %lu back", (unsigned long)v,
		      (unsigned long)back);
		CHECK(coil_chan_try_send(&pong, &v) == 0, "try_send failed");
		CHECK(coil_chan_try_recv(&pong, &back) == 0, "try_recv failed");
	}
	ck_assert_uint_eq(allocations, before);
	ck_assert_int_eq(coil_chan_close(&ch), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	ck_assert_int_eq(coil_chan_destroy(&pong), 0);
	return 0;
}

START_TEST(test_sending_and_receiving_allocate_nothing)
{
#ifdef UNDER_ASAN
	SKIP_UNLESS(0, "AddressSanitizer owns malloc here");
#endif
	run(no_allocation, NULL);
}
END_TEST

/* ----------------------------------------------------------------- misuse */

START_TEST(test_init_refuses_a_zero_item_size_and_a_ring_that_overflows)
{
	ck_assert_int_eq(coil_chan_init(&ch, 0, 4, "zero"), -EINVAL);
	ck_assert_int_eq(coil_chan_init(&ch, SIZE_MAX / 2, 3, "huge"), -EINVAL);
#ifndef UNDER_ASAN /* which aborts rather than fail such a malloc */
	ck_assert_int_eq(coil_chan_init(&ch, SIZE_MAX / 4, 2, "too big"), -ENOMEM);
#endif
	/* A failed init leaves nothing usable. */
	ck_assert_int_eq(coil_chan_destroy(&ch), -EINVAL);
}
END_TEST

static void chan_outside(void *arg)
{
	int *ret = arg, v = 1;

	ret[0] = coil_chan_send(&ch, &v, COIL_NEVER);
	ret[1] = coil_chan_recv(&ch, &v, COIL_NEVER);
	ret[2] = coil_chan_join(&ch, COIL_NEVER);
	ret[3] = coil_chan_try_send(&ch, &v);
	ret[4] = coil_chan_try_recv(&ch, &v);
}

static int send_from_another_loop(void *arg)
{
	int v = 1;

	(void)arg;
	return coil_chan_try_send(&ch, &v);
}

static int chan_misuse(void *arg)
{
	struct op r = { 0 };
	int ret[5] = { 0 }, v = 1;
	coil_task *t;

	(void)arg;
	capture_log();
	ck_assert_int_eq(coil_chan_init(&ch, sizeof(int), 1, "jobs"), 0);
	outside_task(chan_outside, ret);
	ck_assert_int_eq(ret[0], -EPERM);
	ck_assert_int_eq(ret[1], -EPERM);
	ck_assert_int_eq(ret[2], -EPERM);
	ck_assert_int_eq(ret[3], 0); /* the try calls need no task */
	ck_assert_int_eq(ret[4], 0);
	ck_assert_int_eq(in_another_loop(send_from_another_loop, NULL), -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_chan_try_send on channel 'jobs' "
			  "from a loop that does not own it"));
	ck_assert_uint_eq(coil_chan_len(&ch), 0);
	t = spawn(recv_one, &r);
	until_parked(t);
	ck_assert_int_eq(coil_chan_destroy(&ch), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "channel 'jobs' while tasks wait"));
	ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.value, 1);
	ck_assert_int_eq(coil_chan_destroy(&ch), 0);
	ck_assert_int_eq(coil_chan_destroy(&ch), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_chan_destroy on an object destroyed already"));
	ck_assert_int_eq(coil_chan_send(&ch, &v, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_chan_recv(&ch, &v, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_chan_try_send(&ch, &v), -EINVAL);
	ck_assert_int_eq(coil_chan_try_recv(&ch, &v), -EINVAL);
	ck_assert_int_eq(coil_chan_close(&ch), -EINVAL);
	ck_assert_int_eq(coil_chan_task_done(&ch), -EINVAL);
	ck_assert_int_eq(coil_chan_join(&ch, COIL_NEVER), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_chan_recv on a destroyed object"));
	return 0;
}

START_TEST(test_channel_misuse_is_reported_with_its_name)
{
	run(chan_misuse, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("primitives_chan");

	ADD_TEST(s, test_a_buffered_channel_is_fifo_and_try_calls_are_eagain_when_full_or_empty, 10);
	ADD_TEST(s, test_a_full_channel_parks_senders_and_their_items_follow_in_order, 10);
	ADD_TEST(s, test_capacity_zero_is_a_rendezvous, 10);
	ADD_TEST(s, test_senders_hand_items_straight_to_parked_receivers_in_order, 10);
	ADD_TEST(s, test_items_of_any_size_are_copied_whole, 10);
	ADD_TEST(s, test_close_fails_senders_and_lets_receivers_drain_then_epipe, 10);
	ADD_TEST(s, test_join_waits_until_every_item_sent_is_marked_done, 10);
	ADD_TEST(s, test_send_deadline_and_cancel_send_nothing, 10);
	ADD_TEST(s, test_recv_deadline_and_cancel_take_nothing, 10);
	ADD_TEST(s, test_a_cancel_after_the_hand_off_loses_nothing, 10);
	ADD_TEST(s, test_100_producers_and_100_consumers_move_a_million_messages_exactly_once, 120);
	ADD_TEST(s, test_random_deadlines_and_cancels_lose_and_duplicate_nothing, 120);
	ADD_TEST(s, test_sending_and_receiving_allocate_nothing, 10);
	ADD_TEST(s, test_init_refuses_a_zero_item_size_and_a_ring_that_overflows, 10);
	ADD_TEST(s, test_channel_misuse_is_reported_with_its_name, 10);
	return test_main(s);
}
