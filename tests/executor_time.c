/* executor/time.c: sleeping tasks and callback timers on a running loop. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"
#include "executor/loop.h"
#include "executor/stack.h"

/* Fill p with a random permutation of 0 .. n - 1. */
static void shuffle(int *p, int n)
{
	int i, j, x;

	for (i = 0; i < n; i++)
		p[i] = i;
	for (i = n - 1; i > 0; i--) {
		j = (int)below(i + 1);
		x = p[i];
		p[i] = p[j];
		p[j] = x;
	}
}

/* Sleep in 1 ms steps until *count reaches n; the test's timeout bounds it. */
static void wait_for(const int *count, int n)
{
	while (*count < n)
		ck_assert_int_eq(coil_sleep(COIL_MSEC(1)), 0);
}

static int set_flag(void *arg)
{
	*(int *)arg = 1;
	return 0;
}

/* A task that sleeps once and keeps what the sleep returned. */
struct sleeper {
	int64_t ns;    /* how long, through coil_sleep, or ... */
	int64_t until; /* ... when, through coil_sleep_until, if ns is 0 */
	int ret;
};

static int sleeper(void *arg)
{
	struct sleeper *s = arg;

	s->ret = s->ns ? coil_sleep(s->ns) : coil_sleep_until(s->until);
	return s->ret;
}

/* ------------------------------------------------------------------ sleeps */

#define EARLY_TASKS 500
#define EARLY_ROUNDS 4

static int sleep_random_deadlines(void *arg)
{
	int64_t deadline, now;
	int i, ret;

	(void)arg;
	for (i = 0; i < EARLY_ROUNDS; i++) {
		deadline = coil_now() + below(COIL_MSEC(50) + 1);
		ret = coil_sleep_until(deadline);
		now = coil_now();
		CHECK(ret == 0, "coil_sleep_until returned %d", ret);
		CHECK(now >= deadline, "woke %lld ns before the deadline",
		      (long long)(deadline - now));
	}
	return 0;
}

static int many_random_sleepers(void *arg)
{
	coil_task *t[EARLY_TASKS];
	int i, status;

	(void)arg;
	seed(1);
	for (i = 0; i < EARLY_TASKS; i++)
		ck_assert_int_eq(coil_spawn(&t[i], sleep_random_deadlines, NULL, NULL), 0);
	for (i = 0; i < EARLY_TASKS; i++) {
		CHECK(coil_join(t[i], &status, COIL_NEVER) == 0, "join %d", i);
		CHECK(status == 0, "task %d returned %d", i, status);
	}
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

START_TEST(test_sleeps_never_return_before_their_deadline)
{
	run(many_random_sleepers, NULL);
}
END_TEST

#define ORDER_N 1000

static struct {
	int64_t base;     /* set by main once every sleeper is spawned */
	int parked[ORDER_N], nparked;
	int woke[ORDER_N], nwoke;
} order;

/* Sleeps until base + rank * 20 us, a deadline no other sleeper has. */
static int sleep_for_rank(void *arg)
{
	int rank = (int)(intptr_t)arg;
	int64_t deadline = order.base + rank * COIL_USEC(20);

	/* Else it would not park, and its place would say nothing. */
	CHECK(coil_now() < deadline, "rank %d: the deadline passed before it "
	      "parked (the machine stalled for 200 ms)", rank);
	ck_assert_int_eq(coil_sleep_until(deadline), 0);
	order.woke[order.nwoke++] = rank;
	return 0;
}

static int distinct_deadlines(void *arg)
{
	coil_task *t[ORDER_N];
	int rank[ORDER_N], i;

	(void)arg;
	seed(2);
	shuffle(rank, ORDER_N);
	for (i = 0; i < ORDER_N; i++)
		ck_assert_int_eq(coil_spawn(&t[i], sleep_for_rank,
					    (void *)(intptr_t)rank[i], NULL), 0);
	/* None has run yet: they all park well within this margin. */
	order.base = coil_now() + COIL_MSEC(200);
	for (i = 0; i < ORDER_N; i++)
		ck_assert_int_eq(coil_join(t[i], NULL, COIL_NEVER), 0);
	ck_assert_int_eq(order.nwoke, ORDER_N);
	for (i = 0; i < ORDER_N; i++)
		CHECK(order.woke[i] == i, "wake %d was rank %d", i, order.woke[i]);
	return 0;
}

START_TEST(test_sleeps_wake_in_deadline_order_whatever_the_spawn_order)
{
	run(distinct_deadlines, NULL);
}
END_TEST

/* Yields a random number of times first, so that parking order is not spawn order. */
static int sleep_at_base(void *arg)
{
	int id = (int)(intptr_t)arg, n = (int)below(4);

	while (n--)
		ck_assert_int_eq(coil_yield(), 0);
	CHECK(coil_now() < order.base, "task %d: the deadline passed before it "
	      "parked (the machine stalled for 200 ms)", id);
	order.parked[order.nparked++] = id;
	ck_assert_int_eq(coil_sleep_until(order.base), 0);
	order.woke[order.nwoke++] = id;
	return 0;
}

static int equal_deadlines(void *arg)
{
	coil_task *t[ORDER_N];
	int i, moved = 0;

	(void)arg;
	seed(3);
	for (i = 0; i < ORDER_N; i++)
		ck_assert_int_eq(coil_spawn(&t[i], sleep_at_base, (void *)(intptr_t)i,
					    NULL), 0);
	order.base = coil_now() + COIL_MSEC(200);
	for (i = 0; i < ORDER_N; i++)
		ck_assert_int_eq(coil_join(t[i], NULL, COIL_NEVER), 0);
	ck_assert_int_eq(order.nwoke, ORDER_N);
	for (i = 0; i < ORDER_N; i++) {
		CHECK(order.woke[i] == order.parked[i], "wake %d was task %d, "
		      "parked %d was task %d", i, order.woke[i], i, order.parked[i]);
		moved += order.parked[i] != i;
	}
	ck_assert_int_gt(moved, ORDER_N / 2); /* the yields did reorder them */
	return 0;
}

START_TEST(test_equal_deadlines_wake_in_the_order_the_tasks_parked)
{
	run(equal_deadlines, NULL);
}
END_TEST

static int sleep_into_the_past(void *arg)
{
	coil_task *t;
	int ran = 0;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, set_flag, &ran, NULL), 0);
	/* The sibling is ready: had any of these parked, it would have run. */
	ck_assert_int_eq(coil_sleep_until(coil_now()), 0);
	ck_assert_int_eq(coil_sleep_until(coil_now() - COIL_SEC(1)), 0);
	ck_assert_int_eq(coil_sleep_until(0), 0);
	ck_assert_int_eq(coil_sleep_until(INT64_MIN), 0);
	ck_assert_int_eq(coil_sleep(0), 0);
	ck_assert_int_eq(coil_sleep(-COIL_SEC(1)), 0);
	ck_assert_int_eq(coil_sleep(INT64_MIN), 0);
	ck_assert_int_eq(ran, 0);
	ck_assert_uint_eq(live_deadlines(), 0);
	ck_assert_int_eq(coil_join(t, NULL, COIL_NEVER), 0);
	ck_assert_int_eq(ran, 1);
	return 0;
}

START_TEST(test_a_deadline_already_passed_returns_0_without_parking)
{
	run(sleep_into_the_past, NULL);
}
END_TEST

static int sleep_durations(void *arg)
{
	int64_t ns, start;

	(void)arg;
	for (ns = 1; ns <= COIL_MSEC(10); ns *= 10) {
		start = coil_now();
		ck_assert_int_eq(coil_sleep(ns), 0);
		ck_assert_int_ge(coil_now() - start, ns);
	}
	return 0;
}

START_TEST(test_coil_sleep_lasts_at_least_its_duration)
{
	run(sleep_durations, NULL);
}
END_TEST

static void try_to_sleep(coil_timer *timer, void *arg)
{
	int *rets = arg;

	(void)timer;
	rets[0] = coil_sleep_until(0);
	rets[1] = coil_sleep(COIL_MSEC(1));
	rets[2] = 1;
}

static int sleep_in_a_callback(void *arg)
{
	int rets[3] = { 0 };
	coil_timer timer;

	(void)arg;
	coil_timer_init(&timer, try_to_sleep, rets);
	ck_assert_int_eq(coil_timer_arm(&timer, 0), 0);
	wait_for(&rets[2], 1);
	ck_assert_int_eq(rets[0], -EPERM);
	ck_assert_int_eq(rets[1], -EPERM);
	return 0;
}

START_TEST(test_sleeping_outside_a_task_returns_eperm)
{
	ck_assert_int_eq(coil_sleep_until(0), -EPERM);
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_sleep(COIL_MSEC(1)), -EPERM);
	run(sleep_in_a_callback, NULL);
}
END_TEST

/* Each way of asking for forever, including ones that overflow now + ns. */
static int sleep_forever(void *arg)
{
	struct sleeper s[] = {
		{ .until = COIL_NEVER },
		{ .ns = COIL_NEVER },
		{ .ns = COIL_NEVER - 1 },
	};
	coil_task *t;
	int i, j, status;

	(void)arg;
	for (i = 0; i < (int)(sizeof(s) / sizeof(s[0])); i++) {
		ck_assert_int_eq(coil_spawn(&t, sleeper, &s[i], NULL), 0);
		for (j = 0; j < 10; j++)
			ck_assert_int_eq(coil_yield(), 0);
		ck_assert_int_eq(coil_task_state(t), COIL_TASK_RUNNING);
		/* Forever needs no timer. */
		ck_assert_uint_eq(live_deadlines(), 0);
		ck_assert_int_eq(coil_cancel(t), 0);
		ck_assert_int_eq(coil_join(t, &status, COIL_NEVER), 0);
		ck_assert_int_eq(status, -ECANCELED);
		ck_assert_int_eq(s[i].ret, -ECANCELED);
	}
	return 0;
}

START_TEST(test_a_sleep_until_never_parks_until_cancelled)
{
	run(sleep_forever, NULL);
}
END_TEST

static int cancel_a_long_sleep(void *arg)
{
	struct sleeper s = { .ns = COIL_SEC(3600) };
	coil_task *t;
	int status;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, sleeper, &s, NULL), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_uint_eq(live_deadlines(), 1);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_uint_eq(live_deadlines(), 0);
	ck_assert_int_eq(coil_join(t, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, -ECANCELED);
	ck_assert_int_eq(s.ret, -ECANCELED);
	return 0;
}

/* The hour-long deadline is gone: the 10 s timeout would catch a wait for it. */
START_TEST(test_a_cancelled_sleeper_gets_ecanceled_and_leaves_no_timer)
{
	run(cancel_a_long_sleep, NULL);
}
END_TEST

static int sleep_after_cancel(void *arg)
{
	(void)arg;
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ck_assert(coil_cancelled());
	ck_assert_int_eq(coil_sleep_until(0), -ECANCELED);
	ck_assert_int_eq(coil_sleep(COIL_MSEC(1)), -ECANCELED);
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -ECANCELED);
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

START_TEST(test_a_cancelled_task_cannot_sleep_even_for_a_past_deadline)
{
	run(sleep_after_cancel, NULL);
}
END_TEST

static int leave_a_sleeper(void *arg)
{
	coil_task *t;

	ck_assert_int_eq(coil_spawn(&t, sleeper, arg, NULL), 0);
	ck_assert_int_eq(coil_yield(), 0);
	return 0;
}

START_TEST(test_a_sleeper_left_when_main_returns_is_cancelled_without_waiting)
{
	struct sleeper s = { .ns = COIL_SEC(3600) };

	capture_log();
	run(leave_a_sleeper, &s);
	ck_assert_int_eq(s.ret, -ECANCELED);
	ck_assert(log_has(COIL_LOG_WARN, "still alive"));
}
END_TEST

/* ---------------------------------------------------------------- callbacks */

/* A callback timer that logs when it fires. */
struct logged {
	coil_timer timer;
	int64_t deadline;
	int index;
	int count;
	int64_t fired_at;
};

static struct {
	int order[ORDER_N];
	int n;
} fired;

static void log_fire(coil_timer *timer, void *arg)
{
	struct logged *l = arg;

	(void)timer;
	l->fired_at = coil_now();
	l->count++;
	fired.order[fired.n++] = l->index;
}

static void arm_logged(struct logged *l, int64_t deadline)
{
	l->deadline = deadline;
	ck_assert_int_eq(coil_timer_arm(&l->timer, deadline), 0);
}

#define CALLBACKS 300

static int callbacks_in_order(void *arg)
{
	struct logged l[CALLBACKS];
	int64_t base = coil_now();
	int i, a, b;

	(void)arg;
	seed(4);
	/* Twenty distinct deadlines: most timers share theirs with others. */
	for (i = 0; i < CALLBACKS; i++) {
		l[i] = (struct logged){ .index = i };
		coil_timer_init(&l[i].timer, log_fire, &l[i]);
		arm_logged(&l[i], base + below(20) * COIL_MSEC(1));
	}
	ck_assert_uint_eq(live_deadlines(), CALLBACKS);
	wait_for(&fired.n, CALLBACKS);
	for (i = 0; i < CALLBACKS; i++) {
		CHECK(l[i].count == 1, "timer %d fired %d times", i, l[i].count);
		CHECK(l[i].fired_at >= l[i].deadline, "timer %d fired %lld ns early",
		      i, (long long)(l[i].deadline - l[i].fired_at));
		CHECK(!coil_timer_armed(&l[i].timer), "timer %d still armed", i);
	}
	/* Arming order is index order. */
	for (i = 1; i < CALLBACKS; i++) {
		a = fired.order[i - 1];
		b = fired.order[i];
		CHECK(l[a].deadline < l[b].deadline ||
		      (l[a].deadline == l[b].deadline && a < b),
		      "timer %d fired after timer %d", b, a);
	}
	return 0;
}

START_TEST(test_callbacks_fire_after_their_deadline_in_deadline_then_arming_order)
{
	run(callbacks_in_order, NULL);
}
END_TEST

static int move_armed_timer(void *arg)
{
	struct logged l = { 0 }, other;
	int64_t start;

	(void)arg;
	coil_timer_init(&l.timer, log_fire, &l);

	/* Earlier. */
	start = coil_now();
	arm_logged(&l, start + COIL_SEC(3600));
	arm_logged(&l, start + COIL_MSEC(5));
	ck_assert_uint_eq(live_deadlines(), 1);
	wait_for(&l.count, 1);
	ck_assert_int_ge(l.fired_at, start + COIL_MSEC(5));
	ck_assert(!coil_timer_armed(&l.timer));

	/* Later: the first deadline passes without it. */
	start = coil_now();
	arm_logged(&l, start + COIL_MSEC(5));
	arm_logged(&l, start + COIL_MSEC(30));
	ck_assert_uint_eq(live_deadlines(), 1);
	ck_assert_int_eq(coil_sleep_until(start + COIL_MSEC(15)), 0);
	ck_assert_int_eq(l.count, 1);
	ck_assert(coil_timer_armed(&l.timer));
	wait_for(&l.count, 2);
	ck_assert_int_ge(l.fired_at, start + COIL_MSEC(30));
	ck_assert_uint_eq(live_deadlines(), 0);

	/* To the deadline it had: it now comes after one armed since. */
	start = coil_now();
	other = (struct logged){ .index = 1 };
	coil_timer_init(&other.timer, log_fire, &other);
	fired.n = 0;
	arm_logged(&l, start + COIL_MSEC(5));
	arm_logged(&other, start + COIL_MSEC(5));
	arm_logged(&l, start + COIL_MSEC(5));
	wait_for(&fired.n, 2);
	ck_assert_int_eq(l.count, 3);
	ck_assert_int_eq(fired.order[0], other.index);
	ck_assert_int_eq(fired.order[1], l.index);
	return 0;
}

START_TEST(test_arming_an_armed_timer_moves_it)
{
	run(move_armed_timer, NULL);
}
END_TEST

static int disarm_timer(void *arg)
{
	struct logged l = { 0 };

	(void)arg;
	coil_timer_init(&l.timer, log_fire, &l);
	ck_assert(!coil_timer_armed(&l.timer));
	ck_assert(!coil_timer_disarm(&l.timer));
	arm_logged(&l, coil_now() + COIL_MSEC(5));
	ck_assert(coil_timer_armed(&l.timer));
	ck_assert(coil_timer_disarm(&l.timer));
	ck_assert(!coil_timer_disarm(&l.timer));
	ck_assert(!coil_timer_armed(&l.timer));
	ck_assert_uint_eq(live_deadlines(), 0);
	ck_assert_int_eq(coil_sleep_until(l.deadline + COIL_MSEC(15)), 0);
	ck_assert_int_eq(l.count, 0);
	return 0;
}

START_TEST(test_disarm_says_whether_it_was_armed_and_a_disarmed_timer_never_fires)
{
	run(disarm_timer, NULL);
}
END_TEST

/* Both due in one pass: the first to fire disarms the other. */
struct pair {
	coil_timer first, second;
	int first_count, second_count;
	bool disarmed_second, disarmed_self;
};

static void disarm_partner(coil_timer *timer, void *arg)
{
	struct pair *p = arg;

	p->first_count++;
	p->disarmed_self = coil_timer_disarm(timer);
	p->disarmed_second = coil_timer_disarm(&p->second);
}

static void count_second(coil_timer *timer, void *arg)
{
	(void)timer;
	((struct pair *)arg)->second_count++;
}

static int disarm_in_the_same_pass(void *arg)
{
	struct pair p = { 0 };
	int64_t due = coil_now();

	(void)arg;
	coil_timer_init(&p.first, disarm_partner, &p);
	coil_timer_init(&p.second, count_second, &p);
	ck_assert_int_eq(coil_timer_arm(&p.first, due), 0);
	ck_assert_int_eq(coil_timer_arm(&p.second, due), 0);
	wait_for(&p.first_count, 1);
	ck_assert(!p.disarmed_self); /* a firing timer is no longer armed */
	ck_assert(p.disarmed_second);
	ck_assert_int_eq(coil_sleep(COIL_MSEC(5)), 0);
	ck_assert_int_eq(p.second_count, 0);
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

START_TEST(test_a_callback_can_disarm_a_timer_due_in_the_same_pass)
{
	run(disarm_in_the_same_pass, NULL);
}
END_TEST

#define TICKS 10
#define PERIOD COIL_MSEC(2)

struct periodic {
	coil_timer timer;
	int64_t deadline;
	int count;
};

static void tick(coil_timer *timer, void *arg)
{
	struct periodic *p = arg;

	CHECK(coil_now() >= p->deadline, "tick %d fired %lld ns early", p->count,
	      (long long)(p->deadline - coil_now()));
	if (++p->count < TICKS) {
		p->deadline += PERIOD;
		ck_assert_int_eq(coil_timer_arm(timer, p->deadline), 0);
	}
}

static int periodic_timer(void *arg)
{
	struct periodic p = { .deadline = coil_now() + PERIOD };
	int64_t start = coil_now();

	(void)arg;
	coil_timer_init(&p.timer, tick, &p);
	ck_assert_int_eq(coil_timer_arm(&p.timer, p.deadline), 0);
	wait_for(&p.count, TICKS);
	ck_assert_int_eq(p.count, TICKS);
	ck_assert(!coil_timer_armed(&p.timer));
	ck_assert_int_ge(coil_now() - start, TICKS * PERIOD);
	return 0;
}

START_TEST(test_a_callback_can_rearm_its_own_timer)
{
	run(periodic_timer, NULL);
}
END_TEST

struct due_again {
	coil_timer timer;
	int count;
	bool stop;
};

static void rearm_due(coil_timer *timer, void *arg)
{
	struct due_again *d = arg;

	d->count++;
	if (!d->stop)
		ck_assert_int_eq(coil_timer_arm(timer, 0), 0);
}

static int rearm_already_due(void *arg)
{
	struct due_again d = { 0 };
	int i, before;

	(void)arg;
	coil_timer_init(&d.timer, rearm_due, &d);
	ck_assert_int_eq(coil_timer_arm(&d.timer, 0), 0);
	/* A yield is one loop iteration: one firing each, no more, no less. */
	for (i = 0; i < 100; i++) {
		before = d.count;
		ck_assert_int_eq(coil_yield(), 0);
		CHECK(d.count == before + 1, "iteration %d: %d firings", i,
		      d.count - before);
	}
	d.stop = true;
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(!coil_timer_armed(&d.timer));
	return 0;
}

START_TEST(test_a_callback_rearming_a_due_timer_fires_once_per_iteration)
{
	run(rearm_already_due, NULL);
}
END_TEST

static int starved_by_a_due_timer(void *arg)
{
	struct due_again d = { 0 };
	struct sleeper s = { .ns = COIL_MSEC(5) };
	struct logged l = { 0 };
	int64_t start = coil_now();
	coil_task *t;

	(void)arg;
	coil_timer_init(&d.timer, rearm_due, &d);
	coil_timer_init(&l.timer, log_fire, &l);
	ck_assert_int_eq(coil_spawn(&t, sleeper, &s, NULL), 0);
	ck_assert_int_eq(coil_yield(), 0); /* the sleeper parks */
	arm_logged(&l, coil_now() + COIL_MSEC(5));
	ck_assert_int_eq(coil_timer_arm(&d.timer, 0), 0);
	/* Both deadlines pass while d keeps firing at deadline 0. */
	while ((l.count == 0 || coil_task_state(t) == COIL_TASK_RUNNING) &&
	       coil_now() < start + COIL_SEC(2))
		ck_assert_int_eq(coil_yield(), 0);
	d.stop = true;
	coil_timer_disarm(&d.timer);
	ck_assert_msg(l.count == 1, "a timer due at 5 ms had not fired after 2 s, "
		      "in %d iterations", d.count);
	ck_assert_msg(coil_task_state(t) != COIL_TASK_RUNNING, "a 5 ms sleep had "
		      "not returned after 2 s, in %d iterations", d.count);
	ck_assert_int_eq(coil_join(t, NULL, COIL_NEVER), 0);
	ck_assert_int_eq(s.ret, 0);
	ck_assert_int_ge(l.fired_at, l.deadline);
	return 0;
}

/*
 * A timer that keeps re-arming itself at a deadline already passed is
 * always the earliest; the other expired timers and sleepers must still get
 * their turn rather than wait behind it forever.
 */
START_TEST(test_a_timer_rearmed_in_the_past_does_not_starve_other_deadlines)
{
	run(starved_by_a_due_timer, NULL);
}
END_TEST

static void never_called(coil_timer *timer, void *arg)
{
	(void)timer;
	(void)arg;
	ck_abort_msg("a timer that was never armed fired");
}

static int arm_without_fn(void *arg)
{
	coil_timer timer;

	(void)arg;
	coil_timer_init(&timer, NULL, NULL);
	ck_assert_int_eq(coil_timer_arm(&timer, 0), -EINVAL);
	ck_assert(!coil_timer_armed(&timer));
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

START_TEST(test_arming_outside_a_loop_is_eperm_and_without_a_callback_einval)
{
	coil_timer timer;

	coil_timer_init(&timer, never_called, NULL);
	ck_assert_int_eq(coil_timer_arm(&timer, 0), -EPERM);
	ck_assert(!coil_timer_armed(&timer));
	ck_assert(!coil_timer_disarm(&timer));
	run(arm_without_fn, NULL);
}
END_TEST

struct probe {
	coil_timer timer;
	coil_task *current;
	int yield;
	bool cancelled;
	int count;
};

static void probe_context(coil_timer *timer, void *arg)
{
	struct probe *p = arg;

	(void)timer;
	p->current = coil_current();
	p->yield = coil_yield();
	p->cancelled = coil_cancelled();
	p->count++;
}

static int callback_context(void *arg)
{
	struct probe p = { .current = coil_current() };

	(void)arg;
	coil_timer_init(&p.timer, probe_context, &p);
	ck_assert_int_eq(coil_timer_arm(&p.timer, 0), 0);
	wait_for(&p.count, 1);
	ck_assert_ptr_null(p.current);
	ck_assert_int_eq(p.yield, -EPERM);
	ck_assert(!p.cancelled);
	return 0;
}

START_TEST(test_callbacks_run_outside_any_task)
{
	run(callback_context, NULL);
}
END_TEST

struct spawned {
	coil_timer timer;
	int spawn_ret, undetached_ret;
	coil_task *task;
	int sleep_ret;
	int done;
};

static int spawned_task(void *arg)
{
	struct spawned *s = arg;

	s->task = coil_current();
	s->sleep_ret = coil_sleep(COIL_MSEC(1));
	s->done = 1;
	return 0;
}

static void spawn_from_callback(coil_timer *timer, void *arg)
{
	struct spawned *s = arg;

	(void)timer;
	s->undetached_ret = coil_spawn(NULL, spawned_task, s, NULL);
	s->spawn_ret = coil_spawn(NULL, spawned_task, s,
				  &(coil_task_opts){ .detached = true });
}

static int callback_spawns(void *arg)
{
	struct spawned s = { .spawn_ret = 1 };

	(void)arg;
	coil_timer_init(&s.timer, spawn_from_callback, &s);
	ck_assert_int_eq(coil_timer_arm(&s.timer, coil_now() + COIL_MSEC(1)), 0);
	wait_for(&s.done, 1);
	ck_assert_int_eq(s.spawn_ret, 0);
	ck_assert_int_eq(s.undetached_ret, -EINVAL);
	ck_assert_ptr_nonnull(s.task);
	ck_assert_ptr_ne(s.task, coil_current());
	ck_assert_int_eq(s.sleep_ret, 0);
	return 0;
}

START_TEST(test_a_callback_can_spawn_a_detached_task_that_runs)
{
	run(callback_spawns, NULL);
}
END_TEST

static struct logged leftover;

static int arm_for_an_hour(void *arg)
{
	(void)arg;
	coil_timer_init(&leftover.timer, log_fire, &leftover);
	arm_logged(&leftover, coil_now() + COIL_SEC(3600));
	return 0;
}

static int arm_leftover_again(void *arg)
{
	(void)arg;
	ck_assert(!coil_timer_armed(&leftover.timer));
	arm_logged(&leftover, coil_now());
	wait_for(&leftover.count, 1);
	return 0;
}

START_TEST(test_a_timer_armed_when_the_loop_stops_is_dropped_and_reusable)
{
	run(arm_for_an_hour, NULL);
	ck_assert(!coil_timer_armed(&leftover.timer));
	ck_assert(!coil_timer_disarm(&leftover.timer));
	ck_assert_int_eq(leftover.count, 0);
	run(arm_leftover_again, NULL);
	ck_assert_int_eq(leftover.count, 1);
}
END_TEST

static struct {
	pthread_barrier_t armed, checked;
	coil_timer timer;
	bool disarmed;
} across;

/* On the other thread: arm, let the test thread try, then disarm. */
static int arm_and_hold(void *arg)
{
	(void)arg;
	coil_timer_init(&across.timer, never_called, NULL);
	ck_assert_int_eq(coil_timer_arm(&across.timer, coil_now() + COIL_SEC(3600)), 0);
	pthread_barrier_wait(&across.armed);
	pthread_barrier_wait(&across.checked);
	across.disarmed = coil_timer_disarm(&across.timer);
	return 0;
}

static void *other_thread(void *arg)
{
	int status = -1;

	(void)arg;
	if (coil_run(arm_and_hold, NULL, &status) != 0 || status != 0)
		return (void *)1;
	return NULL;
}

static int touch_foreign_timer(void *arg)
{
	(void)arg;
	ck_assert_int_eq(coil_timer_arm(&across.timer, 0), -EPERM);
	ck_assert(!coil_timer_disarm(&across.timer));
	ck_assert(coil_timer_armed(&across.timer));
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

START_TEST(test_a_timer_armed_on_another_threads_loop_is_left_alone)
{
	pthread_t thread;
	void *ret;

	capture_log();
	pthread_barrier_init(&across.armed, NULL, 2);
	pthread_barrier_init(&across.checked, NULL, 2);
	ck_assert_int_eq(pthread_create(&thread, NULL, other_thread, NULL), 0);
	pthread_barrier_wait(&across.armed);
	ck_assert_int_eq(coil_timer_arm(&across.timer, 0), -EPERM); /* no loop here */
	run(touch_foreign_timer, NULL);
	ck_assert(log_has(COIL_LOG_ERROR, "another thread's loop"));
	pthread_barrier_wait(&across.checked);
	ck_assert_int_eq(pthread_join(thread, &ret), 0);
	ck_assert_ptr_null(ret);
	ck_assert(across.disarmed);
	pthread_barrier_destroy(&across.armed);
	pthread_barrier_destroy(&across.checked);
}
END_TEST

static void cancel_task(coil_timer *timer, void *arg)
{
	(void)timer;
	ck_assert_int_eq(coil_cancel(arg), 0);
}

static int sleep_forever_alone(void *arg)
{
	(void)arg;
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -ECANCELED);
	return 0;
}

START_TEST(test_a_lone_sleep_until_never_is_a_deadlock_and_is_cancelled)
{
	capture_log();
	run(sleep_forever_alone, NULL);
	ck_assert(log_has(COIL_LOG_ERROR, "deadlock"));
}
END_TEST

static int sleep_forever_beside_a_timer(void *arg)
{
	coil_timer timer;

	(void)arg;
	coil_timer_init(&timer, cancel_task, coil_current());
	ck_assert_int_eq(coil_timer_arm(&timer, coil_now() + COIL_MSEC(5)), 0);
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -ECANCELED);
	return 0;
}

START_TEST(test_a_pending_callback_timer_is_not_a_deadlock)
{
	capture_log();
	run(sleep_forever_beside_a_timer, NULL);
	ck_assert(!log_has(COIL_LOG_ERROR, "deadlock"));
}
END_TEST

/* ----------------------------------------------------------------- at scale */

#define MILLION 1000000

static struct {
	coil_timer *timers;
	int64_t *deadline;
	uint8_t *count;
	int64_t last;
	uint32_t n;
} mass;

static void mass_fire(coil_timer *timer, void *arg)
{
	uint32_t i = (uint32_t)(uintptr_t)arg;
	int64_t now = coil_now();

	(void)timer;
	CHECK(now >= mass.deadline[i], "timer %u fired %lld ns early", i,
	      (long long)(mass.deadline[i] - now));
	CHECK(mass.deadline[i] >= mass.last, "timer %u fired after a later one", i);
	CHECK(mass.count[i]++ == 0, "timer %u fired twice", i);
	mass.last = mass.deadline[i];
	mass.n++;
}

static int a_million_timers(void *arg)
{
	int64_t base = coil_now();
	uint32_t i;

	(void)arg;
	seed(5);
	for (i = 0; i < MILLION; i++) {
		mass.deadline[i] = base + below(COIL_MSEC(100) + 1);
		coil_timer_init(&mass.timers[i], mass_fire, (void *)(uintptr_t)i);
		CHECK(coil_timer_arm(&mass.timers[i], mass.deadline[i]) == 0, "arm %u", i);
	}
	ck_assert_uint_eq(live_deadlines(), MILLION);
	/* Arming may outlast the deadlines: a sleep until them could return at once. */
	while (mass.n < MILLION)
		ck_assert_int_eq(coil_sleep(COIL_MSEC(1)), 0);
	ck_assert_int_ge(coil_now(), base + COIL_MSEC(100));
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

START_TEST(test_a_million_pending_callbacks_each_fire_once_in_deadline_order)
{
	mass.timers = malloc(MILLION * sizeof(*mass.timers));
	mass.deadline = malloc(MILLION * sizeof(*mass.deadline));
	mass.count = calloc(MILLION, 1);
	ck_assert(mass.timers && mass.deadline && mass.count);
	run(a_million_timers, NULL);
	free(mass.count);
	free(mass.deadline);
	free(mass.timers);
}
END_TEST

#define CROWD 100000

static struct {
	int64_t deadline; /* set by main once every sleeper is spawned */
	uint32_t parked, woke;
	uint8_t *woke_count;
} crowd;

static int sleep_in_crowd(void *arg)
{
	uint32_t i = (uint32_t)(uintptr_t)arg;
	int ret;

	crowd.parked++;
	ret = coil_sleep_until(crowd.deadline);
	CHECK(ret == 0, "task %u: sleep returned %d", i, ret);
	CHECK(coil_now() >= crowd.deadline, "task %u woke early", i);
	CHECK(crowd.woke_count[i]++ == 0, "task %u woke twice", i);
	crowd.woke++;
	return 0;
}

/* Resident memory in bytes, from /proc/self/status. */
static long rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	ck_assert_int_gt(kib, 0);
	return kib * 1024;
}

static int a_crowd_of_sleepers(void *arg)
{
	size_t stack_size = *(size_t *)arg;
	coil_task **t = calloc(CROWD, sizeof(*t));
	long before, per_task;
	uint32_t i;
	int status;

	crowd.woke_count = calloc(CROWD, 1);
	ck_assert(t && crowd.woke_count);
	/* Touched now, so that the baseline counts them. */
	memset(t, 0, CROWD * sizeof(*t));
	memset(crowd.woke_count, 0, CROWD);
	before = rss_bytes();
	for (i = 0; i < CROWD; i++)
		CHECK(coil_spawn(&t[i], sleep_in_crowd, (void *)(uintptr_t)i, NULL) == 0,
		      "spawn %u", i);
	/*
	 * None has run yet. Parking them is a context switch and a heap add
	 * each, 40 ms in all here (unlike spawning: a mapping each, seconds):
	 * two seconds let all of them park before anyone wakes.
	 */
	crowd.deadline = coil_now() + COIL_SEC(2);
	while (crowd.parked < CROWD && crowd.woke == 0)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_msg(crowd.woke == 0, "the deadline passed before all parked");
	per_task = (rss_bytes() - before) / CROWD;
	fprintf(stderr, "rss per sleeping task: %ld bytes (%zu KiB stacks)\n",
		per_task, stack_size / 1024);
	ck_assert_int_lt(per_task, 64 * 1024);
	ck_assert_uint_eq(live_deadlines(), CROWD);

	for (i = 0; i < CROWD; i++) {
		CHECK(coil_join(t[i], &status, COIL_NEVER) == 0, "join %u", i);
		CHECK(status == 0, "task %u returned %d", i, status);
	}
	ck_assert_uint_eq(crowd.woke, CROWD);
	free(crowd.woke_count);
	free(t);
	return 0;
}

static void run_crowd(size_t stack_size)
{
	coil_loop_opts opts = { .stack_size = stack_size };
	int status = -1;

	crowd.parked = crowd.woke = 0;
	ck_assert_int_eq(coil_run_with(a_crowd_of_sleepers, &stack_size, &status,
				       &opts), 0);
	ck_assert_int_eq(status, 0);
}

START_TEST(test_a_hundred_thousand_tasks_sleep_at_once_and_each_wakes_once)
{
	run_crowd(COIL_STACK_MIN);
	run_crowd(COIL_STACK_DEFAULT);
}
END_TEST

/* ------------------------------------------------------- the kernel wait */

static int sleep_20ms(void *arg)
{
	(void)arg;
	ck_assert_int_eq(coil_sleep(COIL_MSEC(20)), 0);
	return 0;
}

START_TEST(test_a_loop_with_one_sleep_wakes_at_its_deadline)
{
	int64_t start = coil_now();

	run(sleep_20ms, NULL);
	ck_assert_int_ge(coil_now() - start, COIL_MSEC(20));
}
END_TEST

static int sleep_20ms_before_an_hour(void *arg)
{
	coil_timer hour;

	(void)arg;
	coil_timer_init(&hour, never_called, NULL);
	ck_assert_int_eq(coil_timer_arm(&hour, coil_now() + COIL_SEC(3600)), 0);
	ck_assert_int_eq(coil_sleep(COIL_MSEC(20)), 0);
	ck_assert(coil_timer_disarm(&hour));
	return 0;
}

/* The loop waits for the earliest deadline, not the first armed. */
START_TEST(test_the_kernel_wait_ends_at_the_earliest_deadline)
{
	int64_t start = coil_now();

	run(sleep_20ms_before_an_hour, NULL);
	ck_assert_int_ge(coil_now() - start, COIL_MSEC(20));
}
END_TEST

struct shortened {
	coil_op op;
	struct __kernel_timespec ts;
	int res;
	coil_timer timer;
	coil_task *main;
};


/* Runs while the loop waits in the kernel for main's hour-long sleep. */
static void arm_sooner(coil_op *op, const struct io_uring_cqe *cqe)
{
	struct shortened *s = (struct shortened *)op;

	s->res = cqe->res;
	ck_assert_int_eq(coil_timer_arm(&s->timer, coil_now() + COIL_MSEC(5)), 0);
}

static int shorten_the_wait(void *arg)
{
	struct shortened s = { .op.complete = arm_sooner,
			       .ts.tv_nsec = COIL_MSEC(10),
			       .main = coil_current() };

	(void)arg;
	coil_timer_init(&s.timer, cancel_task, s.main);
	io_uring_prep_timeout(coil_ring_sqe(coil_loop_ring(), &s.op), &s.ts, 0, 0);
	ck_assert_int_eq(coil_sleep(COIL_SEC(3600)), -ECANCELED);
	ck_assert_int_eq(s.res, -ETIME);
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

START_TEST(test_a_timer_armed_during_the_kernel_wait_shortens_it)
{
	run(shorten_the_wait, NULL);
}
END_TEST

static void cancel_main_on_cqe(coil_op *op, const struct io_uring_cqe *cqe)
{
	struct shortened *s = (struct shortened *)op;

	s->res = cqe->res;
	ck_assert_int_eq(coil_cancel(s->main), 0);
}

static int sleep_until_just_before_never(void *arg)
{
	struct shortened s = { .op.complete = cancel_main_on_cqe,
			       .ts.tv_nsec = COIL_MSEC(10),
			       .main = coil_current() };

	(void)arg;
	io_uring_prep_timeout(coil_ring_sqe(coil_loop_ring(), &s.op), &s.ts, 0, 0);
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER - 1), -ECANCELED);
	ck_assert_int_eq(s.res, -ETIME);
	ck_assert_uint_eq(live_deadlines(), 0);
	return 0;
}

/* A wait of 292 years is a wait like any other: the ring must not refuse it. */
START_TEST(test_the_kernel_wait_takes_a_deadline_at_the_end_of_time)
{
	capture_log();
	run(sleep_until_just_before_never, NULL);
	ck_assert_str_eq(captured_log(), "");
}
END_TEST

/* ---------------------------------------------------------- loop time */

static int loop_time(void *arg)
{
	int64_t a, b, before, deadline;

	(void)arg;
	before = coil_now();
	a = coil_loop_now();
	b = coil_loop_now();
	/* One reading per iteration: the same value, never from the future. */
	ck_assert_int_eq(a, b);
	ck_assert_int_le(a, coil_now());
	ck_assert_int_ge(a, before - COIL_SEC(1));
	for (int i = 0; i < 3; i++) {
		deadline = coil_now() + COIL_MSEC(5);
		ck_assert_int_eq(coil_sleep_until(deadline), 0);
		/* The loop entered the kernel to wait: the reading is new. */
		b = coil_loop_now();
		ck_assert_int_ge(b, deadline);
		ck_assert_int_gt(b, a);
		a = b;
	}
	return 0;
}

START_TEST(test_loop_time_is_read_once_per_iteration_and_renewed_after_a_wait)
{
	int64_t before = coil_now(), t = coil_loop_now();

	/* Outside a loop it is the clock. */
	ck_assert_int_ge(t, before);
	ck_assert_int_le(t, coil_now());
	run(loop_time, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_time");

	ADD_TEST(s, test_sleeps_never_return_before_their_deadline, 10);
	ADD_TEST(s, test_sleeps_wake_in_deadline_order_whatever_the_spawn_order, 10);
	ADD_TEST(s, test_equal_deadlines_wake_in_the_order_the_tasks_parked, 10);
	ADD_TEST(s, test_a_deadline_already_passed_returns_0_without_parking, 10);
	ADD_TEST(s, test_coil_sleep_lasts_at_least_its_duration, 10);
	ADD_TEST(s, test_sleeping_outside_a_task_returns_eperm, 10);
	ADD_TEST(s, test_a_sleep_until_never_parks_until_cancelled, 10);
	ADD_TEST(s, test_a_cancelled_sleeper_gets_ecanceled_and_leaves_no_timer, 10);
	ADD_TEST(s, test_a_cancelled_task_cannot_sleep_even_for_a_past_deadline, 10);
	ADD_TEST(s, test_a_sleeper_left_when_main_returns_is_cancelled_without_waiting, 10);
	ADD_TEST(s, test_callbacks_fire_after_their_deadline_in_deadline_then_arming_order, 10);
	ADD_TEST(s, test_arming_an_armed_timer_moves_it, 10);
	ADD_TEST(s, test_disarm_says_whether_it_was_armed_and_a_disarmed_timer_never_fires, 10);
	ADD_TEST(s, test_a_callback_can_disarm_a_timer_due_in_the_same_pass, 10);
	ADD_TEST(s, test_a_callback_can_rearm_its_own_timer, 10);
	ADD_TEST(s, test_a_callback_rearming_a_due_timer_fires_once_per_iteration, 10);
	ADD_TEST(s, test_a_timer_rearmed_in_the_past_does_not_starve_other_deadlines, 10);
	ADD_TEST(s, test_arming_outside_a_loop_is_eperm_and_without_a_callback_einval, 10);
	ADD_TEST(s, test_callbacks_run_outside_any_task, 10);
	ADD_TEST(s, test_a_callback_can_spawn_a_detached_task_that_runs, 10);
	ADD_TEST(s, test_a_timer_armed_when_the_loop_stops_is_dropped_and_reusable, 10);
	ADD_TEST(s, test_a_timer_armed_on_another_threads_loop_is_left_alone, 10);
	ADD_TEST(s, test_a_lone_sleep_until_never_is_a_deadlock_and_is_cancelled, 10);
	ADD_TEST(s, test_a_pending_callback_timer_is_not_a_deadlock, 10);
	ADD_TEST(s, test_a_million_pending_callbacks_each_fire_once_in_deadline_order, 60);
	ADD_TEST(s, test_a_hundred_thousand_tasks_sleep_at_once_and_each_wakes_once, 120);
	ADD_TEST(s, test_a_loop_with_one_sleep_wakes_at_its_deadline, 10);
	ADD_TEST(s, test_the_kernel_wait_ends_at_the_earliest_deadline, 10);
	ADD_TEST(s, test_a_timer_armed_during_the_kernel_wait_shortens_it, 10);
	ADD_TEST(s, test_the_kernel_wait_takes_a_deadline_at_the_end_of_time, 10);
	ADD_TEST(s, test_loop_time_is_read_once_per_iteration_and_renewed_after_a_wait, 10);
	return test_main(s);
}
