/* primitives/select.c: waiting for the first of several cases. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "executor/loop.h"
#include "helper.h"

#define ARG(n) ((void *)(intptr_t)(n))

static coil_chan a, b;
static coil_event ev;

#define RECV(c, p) { .kind = COIL_SELECT_RECV, .chan = (c), .item = (p) }
#define SEND(c, p) { .kind = COIL_SELECT_SEND, .chan = (c), .item = (p) }
#define EVENT(e) { .kind = COIL_SELECT_EVENT, .event = (e) }
#define JOIN(t) { .kind = COIL_SELECT_JOIN, .task = (t) }
#define TIMER(when) { .kind = COIL_SELECT_TIMER, .at = (when) }
#define FUTURE(f) { .kind = COIL_SELECT_FUTURE, .future = (f) }

/* A select in its own task: the cases, the deadline, what it returned. */
struct selector {
	coil_select_case cases[4];
	unsigned n;
	int64_t deadline;
	int ret;
};

static int select_task(void *arg)
{
	struct selector *s = arg;

	s->ret = coil_select(s->cases, s->n, s->deadline ? s->deadline
							 : COIL_NEVER);
	return s->ret;
}

static int recv_int(coil_chan *c)
{
	int v = -1;

	ck_assert_int_eq(coil_chan_try_recv(c, &v), 0);
	return v;
}

static void send_int(coil_chan *c, int v)
{
	ck_assert_int_eq(coil_chan_send(c, &v, COIL_NEVER), 0);
}

static void chans_up(unsigned cap)
{
	ck_assert_int_eq(coil_chan_init(&a, sizeof(int), cap, "a"), 0);
	ck_assert_int_eq(coil_chan_init(&b, sizeof(int), cap, "b"), 0);
	ck_assert_int_eq(coil_event_init(&ev, "ev"), 0);
}

/* Destroying them proves no case was left parked on them. */
static void chans_down(void)
{
	ck_assert_int_eq(coil_chan_destroy(&a), 0);
	ck_assert_int_eq(coil_chan_destroy(&b), 0);
	ck_assert_int_eq(coil_event_destroy(&ev), 0);
}

/* ------------------------------------------------------------- behaviour */

static int first_ready(void *arg)
{
	int x = -1, y = -1;

	(void)arg;
	chans_up(4);
	send_int(&a, 1);
	send_int(&b, 2);
	coil_select_case c[] = { RECV(&a, &x), RECV(&b, &y) };

	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), 0);
	ck_assert_int_eq(x, 1);
	ck_assert_int_eq(c[0].result, 0);
	ck_assert_int_eq(y, -1);
	ck_assert_uint_eq(coil_chan_len(&b), 1);
	/* Array order, not readiness order: b's case listed first wins now. */
	send_int(&a, 3);
	coil_select_case d[] = { RECV(&b, &y), RECV(&a, &x) };

	ck_assert_int_eq(coil_select(d, 2, COIL_NEVER), 0);
	ck_assert_int_eq(y, 2);
	ck_assert_uint_eq(coil_chan_len(&a), 1);
	/* A ready case fires even with the deadline passed. */
	ck_assert_int_eq(coil_select(d, 2, 0), 1);
	ck_assert_int_eq(x, 3);
	chans_down();
	return 0;
}

START_TEST(test_select_fires_the_first_ready_case_in_array_order)
{
	run(first_ready, NULL);
}
END_TEST

static int parked_recv(void *arg)
{
	struct selector s = { .n = 3 };
	int x = -1, y = -1;
	coil_task *t;

	(void)arg;
	chans_up(2);
	s.cases[0] = (coil_select_case)RECV(&a, &x);
	s.cases[1] = (coil_select_case)RECV(&b, &y);
	s.cases[2] = (coil_select_case)EVENT(&ev);
	t = spawn(select_task, &s);
	until_parked(t);
	send_int(&b, 7);
	/* Handed straight into y; the other cases were unlinked at once. */
	ck_assert_int_eq(y, 7);
	ck_assert_uint_eq(coil_chan_len(&b), 0);
	send_int(&a, 8);
	ck_assert_uint_eq(coil_chan_len(&a), 1);
	ck_assert_int_eq(coil_event_set(&ev), 0);
	ck_assert_int_eq(join(t), 1);
	ck_assert_int_eq(s.cases[1].result, 0);
	ck_assert_int_eq(x, -1);
	ck_assert_int_eq(recv_int(&a), 8);
	chans_down();
	return 0;
}

START_TEST(test_a_parked_recv_case_gets_the_item_and_the_other_cases_take_nothing)
{
	run(parked_recv, NULL);
}
END_TEST

static int parked_send(void *arg)
{
	struct selector s = { .n = 2 };
	int v = 30, w = 40;
	coil_task *t;

	(void)arg;
	chans_up(1);
	send_int(&a, 1);
	send_int(&b, 2);
	s.cases[0] = (coil_select_case)SEND(&a, &v);
	s.cases[1] = (coil_select_case)SEND(&b, &w);
	t = spawn(select_task, &s);
	until_parked(t);
	/* The receiver takes the ring's item and moves the case's one in. */
	ck_assert_int_eq(recv_int(&b), 2);
	ck_assert_int_eq(join(t), 1);
	ck_assert_int_eq(recv_int(&b), 40);
	/* a still holds its own item only. */
	ck_assert_int_eq(recv_int(&a), 1);
	ck_assert_int_eq(coil_chan_try_recv(&a, &v), -EAGAIN);
	chans_down();

	/* At capacity 0, a receiver takes the item from the case itself. */
	chans_up(0);
	s.cases[0] = (coil_select_case)SEND(&a, &v);
	s.n = 1;
	v = 31;
	t = spawn(select_task, &s);
	until_parked(t);
	ck_assert_int_eq(recv_int(&a), 31);
	ck_assert_int_eq(join(t), 0);
	chans_down();
	return 0;
}

START_TEST(test_a_send_case_on_a_full_channel_is_completed_by_a_receiver)
{
	run(parked_send, NULL);
}
END_TEST

static int recv_case_task(void *arg)
{
	int *v = arg;
	coil_select_case c[] = { RECV(&a, v) };

	return coil_select(c, 1, COIL_NEVER);
}

static int select_meets_select(void *arg)
{
	int got = -1, v = 77;
	coil_task *t;

	(void)arg;
	chans_up(0);
	/* A send case finds a receiving select parked: a rendezvous at once. */
	t = spawn(recv_case_task, &got);
	until_parked(t);
	coil_select_case c[] = { RECV(&b, &v), SEND(&a, &v) };

	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), 1);
	ck_assert_int_eq(c[1].result, 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(got, 77);
	chans_down();
	return 0;
}

START_TEST(test_a_send_case_meets_a_parked_recv_case_of_another_select)
{
	run(select_meets_select, NULL);
}
END_TEST

static int event_case(void *arg)
{
	struct selector s = { .n = 2 };
	int x = -1;
	coil_task *t;

	(void)arg;
	chans_up(1);
	s.cases[0] = (coil_select_case)RECV(&a, &x);
	s.cases[1] = (coil_select_case)EVENT(&ev);
	t = spawn(select_task, &s);
	until_parked(t);
	ck_assert_int_eq(coil_event_set(&ev), 0);
	ck_assert_int_eq(join(t), 1);
	ck_assert_int_eq(s.cases[1].result, 0);
	/* Set already: ready at once. */
	ck_assert_int_eq(coil_select(s.cases, 2, 0), 1);
	chans_down();
	return 0;
}

START_TEST(test_an_event_case_fires_when_the_event_is_set)
{
	run(event_case, NULL);
}
END_TEST

static int return_arg_after_yields(void *arg)
{
	int n = (int)(intptr_t)arg;

	for (int i = 0; i < n; i++)
		CHECK(coil_yield() == 0, "yield failed");
	return n - 10;
}

static int select_join(void *arg)
{
	coil_select_case c[] = { JOIN((coil_task *)arg) };
	int ret = coil_select(c, 1, COIL_NEVER);

	return ret == 0 ? c[0].result : ret;
}

static int join_case(void *arg)
{
	unsigned before = unreleased_tasks();
	coil_task *slow, *quick;
	int x = -1;

	(void)arg;
	chans_up(1);
	slow = spawn(return_arg_after_yields, ARG(50));
	quick = spawn(return_arg_after_yields, ARG(5));
	coil_select_case c[] = { JOIN(slow), JOIN(quick), RECV(&a, &x) };

	ck_assert_int_eq(coil_select(c, 3, COIL_NEVER), 1);
	ck_assert_int_eq(c[1].result, -5);
	/* quick was released, slow left alone and still joinable. */
	ck_assert_uint_eq(unreleased_tasks(), before + 1);
	ck_assert_int_eq(coil_task_state(slow), COIL_TASK_RUNNING);
	while (coil_task_state(slow) == COIL_TASK_RUNNING)
		ck_assert_int_eq(coil_yield(), 0);
	/* Ended already: ready at once. */
	ck_assert_int_eq(coil_select(c, 1, 0), 0);
	ck_assert_int_eq(c[0].result, 40);
	ck_assert_uint_eq(unreleased_tasks(), before);
	/* Two ending in one go: the second finds the select woken already. */
	slow = spawn(return_arg_after_yields, ARG(3));
	quick = spawn(return_arg_after_yields, ARG(3));
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), 0);
	ck_assert_int_eq(c[0].result, -7);
	ck_assert_int_eq(coil_task_state(quick), COIL_TASK_FAILED);
	ck_assert_int_eq(join(quick), -7);
	/* While a select waits for it, the task is the select's alone. */
	slow = spawn(return_arg_after_yields, ARG(20));
	quick = spawn(select_join, slow);
	until_parked(quick);
	ck_assert_int_eq(coil_join(slow, NULL, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(coil_detach(slow), -EBUSY);
	ck_assert_int_eq(join(quick), 10);
	chans_down();
	return 0;
}

START_TEST(test_a_join_case_fires_when_its_task_ends_and_releases_it)
{
	run(join_case, NULL);
}
END_TEST

static int timer_case(void *arg)
{
	int64_t start = coil_now();
	int x = -1;

	(void)arg;
	chans_up(1);
	coil_select_case c[] = { RECV(&a, &x), TIMER(start + COIL_MSEC(20)),
				 TIMER(start + COIL_MSEC(5)) };

	ck_assert_int_eq(coil_select(c, 3, COIL_NEVER), 2);
	ck_assert_int_ge(coil_now() - start, COIL_MSEC(5));
	ck_assert_int_eq(c[2].result, 0);
	/* The deadline comes first: -ETIMEDOUT, no case fired. */
	start = coil_now();
	c[1].at = c[2].at = start + COIL_SEC(10);
	c[1].result = c[2].result = 99;
	ck_assert_int_eq(coil_select(c, 3, start + COIL_MSEC(5)), -ETIMEDOUT);
	ck_assert_int_ge(coil_now() - start, COIL_MSEC(5));
	ck_assert_int_eq(c[1].result, 99);
	ck_assert_int_eq(c[2].result, 99);
	/* A timer due at the deadline fires; one already due fires at once. */
	start = coil_now();
	c[1].at = start + COIL_MSEC(2);
	ck_assert_int_eq(coil_select(c, 2, c[1].at), 1);
	ck_assert_int_eq(coil_select(c, 2, 0), 1);
	ck_assert_int_eq(x, -1);
	chans_down();
	return 0;
}

START_TEST(test_a_timer_case_fires_at_its_time_unless_the_deadline_is_earlier)
{
	run(timer_case, NULL);
}
END_TEST

static int closed_channel(void *arg)
{
	struct selector s = { .n = 2 };
	int x = -1;
	coil_task *t;

	(void)arg;
	chans_up(0);
	s.cases[0] = (coil_select_case)RECV(&a, &x);
	s.cases[1] = (coil_select_case)SEND(&b, &x);
	t = spawn(select_task, &s);
	until_parked(t);
	ck_assert_int_eq(coil_chan_close(&b), 0);
	ck_assert_int_eq(join(t), 1);
	ck_assert_int_eq(s.cases[1].result, -EPIPE);
	/* Closed and empty: a receive case is ready, with -EPIPE. */
	ck_assert_int_eq(coil_chan_close(&a), 0);
	s.cases[0].result = 99;
	ck_assert_int_eq(coil_select(s.cases, 2, COIL_NEVER), 0);
	ck_assert_int_eq(s.cases[0].result, -EPIPE);
	chans_down();
	return 0;
}

START_TEST(test_a_closed_channel_fires_its_cases_with_epipe)
{
	run(closed_channel, NULL);
}
END_TEST

static int same_channel_twice(void *arg)
{
	struct selector s = { .n = 2 };
	int x = -1, y = -1;
	coil_task *t;

	(void)arg;
	chans_up(2);
	s.cases[0] = (coil_select_case)RECV(&a, &x);
	s.cases[1] = (coil_select_case)RECV(&a, &y);
	t = spawn(select_task, &s);
	until_parked(t);
	send_int(&a, 1);
	send_int(&a, 2);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(x, 1);
	ck_assert_int_eq(y, -1);
	ck_assert_uint_eq(coil_chan_len(&a), 1);
	ck_assert_int_eq(recv_int(&a), 2);
	chans_down();
	return 0;
}

START_TEST(test_two_cases_on_one_channel_take_one_item)
{
	run(same_channel_twice, NULL);
}
END_TEST

static coil_future fut;

static void *resolve_from_thread(void *arg)
{
	(void)arg;
	coil_future_resolve(&fut, &fut);
	return NULL;
}

static int future_case(void *arg)
{
	struct selector s = { .n = 2 };
	void *value = NULL;
	coil_task *t;
	pthread_t th;
	int x = -1;

	(void)arg;
	chans_up(1);
	ck_assert_int_eq(coil_future_init(&fut, "reply"), 0);
	s.cases[0] = (coil_select_case)RECV(&a, &x);
	s.cases[1] = (coil_select_case)FUTURE(&fut);
	/* Resolved on this loop while the select is parked. */
	t = spawn(select_task, &s);
	until_parked(t);
	ck_assert_int_eq(coil_future_resolve(&fut, &x), 0);
	ck_assert_int_eq(join(t), 1);
	ck_assert_int_eq(s.cases[1].result, 0);
	ck_assert_int_eq(coil_future_result(&fut, &value), 0);
	ck_assert_ptr_eq(value, &x);
	/* Done already: ready at once, failed ones too. */
	ck_assert_int_eq(coil_select(s.cases, 2, 0), 1);
	ck_assert_int_eq(coil_future_destroy(&fut), 0);
	ck_assert_int_eq(coil_future_init(&fut, "failed"), 0);
	ck_assert_int_eq(coil_future_fail(&fut, -EIO), 0);
	ck_assert_int_eq(coil_select(s.cases, 2, 0), 1);
	ck_assert_int_eq(coil_future_destroy(&fut), 0);
	/*
	 * Resolved by another thread: the loop, with every task parked,
	 * waits for it instead of calling it a deadlock.
	 */
	ck_assert_int_eq(coil_future_init(&fut, "remote"), 0);
	t = spawn(select_task, &s);
	until_parked(t);
	ck_assert_int_eq(pthread_create(&th, NULL, resolve_from_thread, NULL), 0);
	ck_assert_int_eq(join(t), 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(coil_future_result(&fut, &value), 0);
	ck_assert_ptr_eq(value, &fut);
	ck_assert_uint_eq(coil__this_loop->inbox.waits, 0);
	ck_assert_int_eq(coil_future_destroy(&fut), 0);
	/* A deadline or a cancel leaves the future pending and unwatched. */
	ck_assert_int_eq(coil_future_init(&fut, "late"), 0);
	ck_assert_int_eq(coil_select(s.cases, 2, coil_now() + COIL_MSEC(2)),
			 -ETIMEDOUT);
	t = spawn(select_task, &s);
	until_parked(t);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	ck_assert(!coil_future_done(&fut));
	ck_assert_uint_eq(coil__this_loop->inbox.waits, 0);
	ck_assert_int_eq(coil_future_destroy(&fut), 0);
	ck_assert_int_eq(x, -1);
	chans_down();
	return 0;
}

START_TEST(test_a_future_case_fires_when_the_future_is_done_even_from_another_thread)
{
	run(future_case, NULL);
}
END_TEST

/* ---------------------------------------------------- deadline, cancel */

static int sleep_forever(void *arg)
{
	(void)arg;
	return coil_sleep_until(COIL_NEVER);
}

static int interrupted(void *arg)
{
	struct selector s = { .n = 4 };
	int x = -1, v = 5;
	coil_task *t, *other;

	(void)arg;
	chans_up(1);
	send_int(&b, 1); /* full: the send case parks */
	other = spawn(sleep_forever, NULL);
	s.cases[0] = (coil_select_case)RECV(&a, &x);
	s.cases[1] = (coil_select_case)SEND(&b, &v);
	s.cases[2] = (coil_select_case)EVENT(&ev);
	s.cases[3] = (coil_select_case)JOIN(other);
	for (int round = 0; round < 2; round++) {
		s.deadline = round ? COIL_NEVER : coil_now() + COIL_MSEC(2);
		t = spawn(select_task, &s);
		until_parked(t);
		if (round)
			ck_assert_int_eq(coil_cancel(t), 0);
		ck_assert_int_eq(join(t), round ? -ECANCELED : -ETIMEDOUT);
		/* Nothing taken, and nothing left parked on any object. */
		send_int(&a, 9);
		ck_assert_uint_eq(coil_chan_len(&a), 1);
		ck_assert_int_eq(recv_int(&a), 9);
		ck_assert_int_eq(recv_int(&b), 1);
		ck_assert_int_eq(coil_chan_try_recv(&b, &x), -EAGAIN);
		send_int(&b, 1);
		ck_assert_int_eq(x, -1);
		ck_assert_int_eq(coil_chan_destroy(&a), 0);
		ck_assert_int_eq(coil_chan_init(&a, sizeof(int), 1, "a"), 0);
		ck_assert_int_eq(coil_event_destroy(&ev), 0);
		ck_assert_int_eq(coil_event_init(&ev, "ev"), 0);
	}
	/* The join case's task is still there, unwatched and joinable. */
	ck_assert_ptr_null(other->watchers);
	ck_assert_int_eq(coil_cancel(other), 0);
	ck_assert_int_eq(coil_join(other, NULL, COIL_NEVER), 0);
	/* A cancelled task selects nothing, even with a case ready. */
	send_int(&a, 3);
	coil_cancel(coil_current());
	ck_assert_int_eq(coil_select(s.cases, 1, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_shield_begin(), 0);
	ck_assert_int_eq(recv_int(&a), 3);
	ck_assert_int_eq(coil_chan_try_recv(&b, &x), 0);
	chans_down();
	return 0;
}

START_TEST(test_select_deadline_and_cancel_take_nothing_from_any_case)
{
	run(interrupted, NULL);
}
END_TEST

/*
 * Producers sending each value through whichever of two channels takes it
 * first, consumers receiving from either, every select with a random
 * deadline or timer, and tasks on both sides cancelled and replaced at
 * random: every value arrives exactly once.
 */
#define SEL_PRODUCERS 8
#define SEL_CONSUMERS 8
#define SEL_PER 2000
#define SEL_TOTAL (SEL_PRODUCERS * SEL_PER)

struct sel_producer {
	int next, end;
	coil_task *task;
};

static struct sel_producer sprod[SEL_PRODUCERS];
static coil_task *scons[SEL_CONSUMERS];
static unsigned char sseen[SEL_TOTAL];
static int sreceived;

static int64_t soon(void)
{
	return coil_now() + (int64_t)below(30000) - 10000;
}

static int sel_produce(void *arg)
{
	struct sel_producer *p = arg;
	int ret;

	while (p->next < p->end) {
		coil_select_case c[] = { SEND(&a, &p->next), SEND(&b, &p->next),
					 TIMER(soon()) };

		ret = coil_select(c, below(2) ? 3 : 2, soon());
		if (ret == 0 || ret == 1) {
			CHECK(c[ret].result == 0, "send case: %d", c[ret].result);
			p->next++;
		} else if (ret == -ECANCELED) {
			return ret;
		} else {
			CHECK(ret == 2 || ret == -ETIMEDOUT, "select: %d", ret);
		}
	}
	return 0;
}

static int sel_consume(void *arg)
{
	int x = -1, y = -1, ret;

	(void)arg;
	for (;;) {
		coil_select_case c[] = { RECV(&a, &x), RECV(&b, &y), EVENT(&ev),
					 TIMER(soon()) };

		ret = coil_select(c, below(2) ? 4 : 3, soon());
		if (ret == 0 || ret == 1) {
			int v = ret ? y : x;

			CHECK(c[ret].result == 0, "recv case: %d", c[ret].result);
			CHECK(v >= 0 && v < SEL_TOTAL, "received %d, never sent", v);
			CHECK(!sseen[v], "received %d twice", v);
			sseen[v] = 1;
			sreceived++;
		} else if (ret == 2 || ret == -ECANCELED) {
			return ret;
		} else {
			CHECK(ret == 3 || ret == -ETIMEDOUT, "select: %d", ret);
		}
	}
}

static int select_chaos(void *arg)
{
	unsigned cap = (unsigned)(intptr_t)arg;

	memset(sseen, 0, sizeof(sseen));
	sreceived = 0;
	seed(cap + 7);
	chans_up(cap);
	for (int i = 0; i < SEL_PRODUCERS; i++) {
		sprod[i] = (struct sel_producer){ .next = i * SEL_PER,
						  .end = (i + 1) * SEL_PER };
		sprod[i].task = spawn(sel_produce, &sprod[i]);
	}
	for (int i = 0; i < SEL_CONSUMERS; i++)
		scons[i] = spawn(sel_consume, NULL);
	while (sreceived < SEL_TOTAL) {
		int i = (int)below(SEL_PRODUCERS + SEL_CONSUMERS);
		bool producer = i < SEL_PRODUCERS;
		coil_task **t = producer ? &sprod[i].task
					 : &scons[i - SEL_PRODUCERS];

		ck_assert_int_eq(coil_sleep(COIL_USEC(below(50))), 0);
		ck_assert_int_eq(coil_cancel(*t), 0);
		join(*t);
		*t = spawn(producer ? sel_produce : sel_consume,
			   producer ? (void *)&sprod[i] : NULL);
	}
	ck_assert_int_eq(coil_event_set(&ev), 0);
	for (int i = 0; i < SEL_PRODUCERS; i++)
		ck_assert_int_eq(join(sprod[i].task), 0);
	for (int i = 0; i < SEL_CONSUMERS; i++)
		ck_assert_int_eq(join(scons[i]), 2);
	ck_assert_int_eq(sreceived, SEL_TOTAL);
	ck_assert_uint_eq(coil_chan_len(&a) + coil_chan_len(&b), 0);
	chans_down();
	return 0;
}

START_TEST(test_selects_under_random_deadlines_and_cancels_move_every_value_once)
{
	run(select_chaos, ARG(0));
	run(select_chaos, ARG(2));
}
END_TEST

/* ----------------------------------------------------------------- misuse */

static void select_outside(void *arg)
{
	coil_select_case c[] = { TIMER(0) };

	*(int *)arg = coil_select(c, 1, COIL_NEVER);
}

static int select_from_another_loop(void *arg)
{
	int x;
	coil_select_case c[] = { TIMER(0), RECV(&a, &x) };

	(void)arg;
	return coil_select(c, 2, COIL_NEVER);
}

static int join_it(void *arg)
{
	return coil_join(arg, NULL, COIL_NEVER);
}

static int refusals(void *arg)
{
	coil_select_case c[65];
	coil_task *t, *d, *joiner;
	int ret = 0, x;

	(void)arg;
	capture_log();
	chans_up(1);
	for (int i = 0; i < 65; i++)
		c[i] = (coil_select_case)TIMER(0);
	ck_assert_int_eq(coil_select(c, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_select(NULL, 1, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_select(c, 65, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_select(c, 64, COIL_NEVER), 0);
	c[0].kind = (enum coil_select_kind)42;
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EINVAL);
	c[0] = (coil_select_case)RECV(NULL, &x);
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EINVAL);
	c[0] = (coil_select_case)EVENT(NULL);
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EINVAL);
	c[0] = (coil_select_case)JOIN(NULL);
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EINVAL);
	c[0] = (coil_select_case)FUTURE(NULL);
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EINVAL);
	c[0] = (coil_select_case)JOIN(coil_current());
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EDEADLK);
	ck_assert_int_eq(coil_spawn(&d, return_arg_after_yields, ARG(10),
				    &(coil_task_opts){ .detached = true }), 0);
	c[0] = (coil_select_case)JOIN(d);
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EINVAL);
	t = spawn(return_arg_after_yields, ARG(10));
	joiner = spawn(join_it, t);
	until_parked(joiner);
	c[0] = (coil_select_case)JOIN(t);
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(join(joiner), 0);
	/* A destroyed object. */
	ck_assert_int_eq(coil_event_destroy(&ev), 0);
	c[0] = (coil_select_case)TIMER(0);
	c[1] = (coil_select_case)EVENT(&ev);
	ck_assert_int_eq(coil_select(c, 2, COIL_NEVER), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_select on a destroyed object"));
	ck_assert_int_eq(coil_event_init(&ev, "ev"), 0);
	/* Outside a task; from another loop. */
	outside_task(select_outside, &ret);
	ck_assert_int_eq(ret, -EPERM);
	ck_assert_int_eq(in_another_loop(select_from_another_loop, NULL), -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_select on channel 'a' "
			  "from a loop that does not own it"));
	chans_down();
	return 0;
}

START_TEST(test_select_refuses_bad_cases_before_taking_anything)
{
	run(refusals, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("primitives_select");

	ADD_TEST(s, test_select_fires_the_first_ready_case_in_array_order, 10);
	ADD_TEST(s, test_a_parked_recv_case_gets_the_item_and_the_other_cases_take_nothing, 10);
	ADD_TEST(s, test_a_send_case_on_a_full_channel_is_completed_by_a_receiver, 10);
	ADD_TEST(s, test_a_send_case_meets_a_parked_recv_case_of_another_select, 10);
	ADD_TEST(s, test_an_event_case_fires_when_the_event_is_set, 10);
	ADD_TEST(s, test_a_join_case_fires_when_its_task_ends_and_releases_it, 10);
	ADD_TEST(s, test_a_future_case_fires_when_the_future_is_done_even_from_another_thread, 10);
	ADD_TEST(s, test_a_timer_case_fires_at_its_time_unless_the_deadline_is_earlier, 10);
	ADD_TEST(s, test_a_closed_channel_fires_its_cases_with_epipe, 10);
	ADD_TEST(s, test_two_cases_on_one_channel_take_one_item, 10);
	ADD_TEST(s, test_select_deadline_and_cancel_take_nothing_from_any_case, 10);
	ADD_TEST(s, test_selects_under_random_deadlines_and_cancels_move_every_value_once, 120);
	ADD_TEST(s, test_select_refuses_bad_cases_before_taking_anything, 10);
	return test_main(s);
}
