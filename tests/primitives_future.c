/* primitives/future.c, pending.c and executor/remote.c. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor/loop.h"
#include "helper.h"

#define ARG(n) ((void *)(intptr_t)(n))
#define INT(p) ((int)(intptr_t)(p))

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t th;

	ck_assert_int_eq(pthread_create(&th, NULL, fn, arg), 0);
	return th;
}

/* An awaiting task: what its await returned, and when it resumed. */
struct awaiter {
	coil_future *f;
	int64_t deadline;
	int ret;
	int rank;          /* the order it resumed in, from 0 */
};

static int resumed;

static int await_task(void *arg)
{
	struct awaiter *a = arg;

	a->ret = coil_future_await(a->f, a->deadline);
	a->rank = resumed++;
	return a->ret;
}

static int value_of(coil_future *f)
{
	void *v = ARG(-1);

	ck_assert_int_eq(coil_future_result(f, &v), 0);
	return INT(v);
}

/* --------------------------------------------------------- one loop */

static int resolve_first_main(void *arg)
{
	coil_future f;
	void *v = ARG(1);

	(void)arg;
	ck_assert_int_eq(coil_future_init(&f, "first"), 0);
	ck_assert(!coil_future_done(&f));
	ck_assert_int_eq(coil_future_result(&f, &v), -EAGAIN);
	ck_assert_ptr_eq(v, ARG(1));
	ck_assert_int_eq(coil_future_resolve(&f, ARG(7)), 0);
	ck_assert(coil_future_done(&f));
	/* Done is taken at once, whatever the deadline. */
	ck_assert_int_eq(coil_future_await(&f, 0), 0);
	ck_assert_int_eq(coil_future_await(&f, COIL_NEVER), 0);
	ck_assert_int_eq(value_of(&f), 7);
	ck_assert_int_eq(coil_future_result(&f, NULL), 0);
	ck_assert_int_eq(coil_future_destroy(&f), 0);
	return 0;
}

START_TEST(test_a_future_resolved_before_the_await_is_taken_at_once)
{
	run(resolve_first_main, NULL);
}
END_TEST

#define WAITERS 50

static int many_waiters_main(void *arg)
{
	struct awaiter a[WAITERS];
	coil_task *t[WAITERS];
	coil_future f;

	(void)arg;
	resumed = 0;
	coil_future_init(&f, "many");
	for (int i = 0; i < WAITERS; i++) {
		a[i] = (struct awaiter){ .f = &f, .deadline = COIL_NEVER, .ret = 1 };
		t[i] = spawn(await_task, &a[i]);
	}
	let_tasks_park();
	for (int i = 0; i < WAITERS; i++)
		ck_assert(parked(t[i]));
	ck_assert_int_eq(coil_future_destroy(&f), -EBUSY);
	ck_assert_int_eq(coil_future_resolve(&f, ARG(99)), 0);
	for (int i = 0; i < WAITERS; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_int_eq(a[i].ret, 0);
		CHECK(a[i].rank == i, "waiter %d resumed %d-th", i, a[i].rank);
	}
	ck_assert_int_eq(value_of(&f), 99);
	ck_assert_int_eq(coil_future_destroy(&f), 0);
	return 0;
}

START_TEST(test_every_waiter_wakes_in_the_order_it_parked_with_the_value)
{
	run(many_waiters_main, NULL);
}
END_TEST

static int twice_main(void *arg)
{
	coil_future f, g;
	void *v = ARG(1);

	(void)arg;
	coil_future_init(&f, "twice");
	ck_assert_int_eq(coil_future_resolve(&f, ARG(1)), 0);
	ck_assert_int_eq(coil_future_resolve(&f, ARG(2)), -EALREADY);
	ck_assert_int_eq(coil_future_fail(&f, -EIO), -EALREADY);
	ck_assert_int_eq(coil_future_cancel(&f), -EALREADY);
	ck_assert_int_eq(value_of(&f), 1);
	ck_assert_int_eq(coil_future_destroy(&f), 0);

	coil_future_init(&g, "failed");
	ck_assert_int_eq(coil_future_fail(&g, -EIO), 0);
	ck_assert_int_eq(coil_future_resolve(&g, ARG(2)), -EALREADY);
	ck_assert_int_eq(coil_future_result(&g, &v), -EIO);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(coil_future_destroy(&g), 0);
	return 0;
}

START_TEST(test_a_second_outcome_is_ealready_and_the_first_one_stays)
{
	run(twice_main, NULL);
}
END_TEST

static int fail_main(void *arg)
{
	struct awaiter a = { .deadline = COIL_NEVER, .ret = 1 };
	coil_future f;
	coil_task *t;

	(void)arg;
	coil_future_init(&f, "fail");
	a.f = &f;
	t = spawn(await_task, &a);
	let_tasks_park();
	ck_assert_int_eq(coil_future_fail(&f, 0), -EINVAL);
	ck_assert_int_eq(coil_future_fail(&f, 5), -EINVAL);
	ck_assert(!coil_future_done(&f));
	ck_assert(parked(t));
	ck_assert_int_eq(coil_future_fail(&f, -ECONNRESET), 0);
	/* The await's own outcome is 0: the failure is the future's. */
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(coil_future_result(&f, NULL), -ECONNRESET);
	ck_assert_int_eq(coil_future_destroy(&f), 0);
	return 0;
}

START_TEST(test_fail_wakes_the_waiters_and_refuses_a_non_negative_error)
{
	run(fail_main, NULL);
}
END_TEST

static int cancel_main(void *arg)
{
	struct awaiter a = { .deadline = COIL_NEVER, .ret = 1 };
	coil_future f;
	coil_task *t;

	(void)arg;
	coil_future_init(&f, "cancel");
	a.f = &f;
	t = spawn(await_task, &a);
	let_tasks_park();
	ck_assert_int_eq(coil_future_cancel(&f), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(coil_future_result(&f, NULL), -ECANCELED);
	ck_assert_int_eq(coil_future_cancel(&f), -EALREADY);
	ck_assert_int_eq(coil_future_destroy(&f), 0);
	return 0;
}

START_TEST(test_cancel_fails_the_future_with_ecanceled_once)
{
	run(cancel_main, NULL);
}
END_TEST

static int resolve_later(void *arg)
{
	ck_assert_int_eq(coil_yield(), 0);
	return coil_future_resolve(arg, ARG(5));
}

static int deadline_main(void *arg)
{
	struct awaiter timed = { .ret = 1 }, patient = { .ret = 1 };
	coil_task *t1, *t2;
	coil_future f;
	int64_t start;

	(void)arg;
	coil_future_init(&f, "deadline");
	start = coil_now();
	ck_assert_int_eq(coil_future_await(&f, start + COIL_MSEC(20)), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), start + COIL_MSEC(20));
	ck_assert_int_eq(coil_future_await(&f, 0), -ETIMEDOUT);
	ck_assert(!coil_future_done(&f));
	ck_assert_int_eq(coil_future_result(&f, NULL), -EAGAIN);

	/* One waiter times out between two others: the queue holds. */
	timed = (struct awaiter){ .f = &f, .deadline = coil_now() + COIL_MSEC(10) };
	patient = (struct awaiter){ .f = &f, .deadline = COIL_NEVER, .ret = 1 };
	t1 = spawn(await_task, &timed);
	t2 = spawn(await_task, &patient);
	ck_assert_int_eq(join(t1), -ETIMEDOUT);
	ck_assert(parked(t2));
	spawn(resolve_later, &f); /* joined below through the loop's end */
	ck_assert_int_eq(coil_future_await(&f, COIL_NEVER), 0);
	ck_assert_int_eq(join(t2), 0);
	ck_assert_int_eq(value_of(&f), 5);
	return 0;
}

START_TEST(test_an_await_deadline_leaves_the_future_pending_and_resolvable)
{
	run(deadline_main, NULL);
}
END_TEST

static int cancel_await_main(void *arg)
{
	struct awaiter a = { .deadline = COIL_NEVER, .ret = 1 };
	struct awaiter b = { .deadline = COIL_NEVER, .ret = 1 };
	coil_future f;
	coil_task *t;

	(void)arg;
	coil_future_init(&f, "cancel-await");
	a.f = b.f = &f;
	t = spawn(await_task, &a);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	ck_assert(!coil_future_done(&f));
	t = spawn(await_task, &b);
	let_tasks_park();
	ck_assert_int_eq(coil_future_resolve(&f, ARG(3)), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(value_of(&f), 3);

	/* A cancelled task's await fails even on a done future. */
	a.ret = 1;
	t = spawn(await_task, &a);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	return coil_future_destroy(&f);
}

START_TEST(test_cancelling_an_awaiting_task_leaves_the_future_pending_and_resolvable)
{
	run(cancel_await_main, NULL);
}
END_TEST

/* ------------------------------------------------------------ callbacks */

struct calls {
	int order[8];
	int n;
	coil_task *waiter;       /* must be woken before callbacks run */
	bool waiter_was_parked;
	coil_future_callback *remove; /* removed by the first callback to run */
	coil_future *f;
};

static struct calls *calls_of;

static void record_call(coil_future *f, void *arg)
{
	struct calls *c = calls_of;

	ck_assert_ptr_eq(f, c->f);
	if (c->waiter)
		c->waiter_was_parked = parked(c->waiter);
	if (c->remove) {
		ck_assert_int_eq(coil_future_off_done(f, c->remove), 0);
		c->remove = NULL;
	}
	c->order[c->n++] = INT(arg);
}

static int callbacks_main(void *arg)
{
	struct calls c = { .waiter_was_parked = true };
	struct awaiter a = { .deadline = COIL_NEVER, .ret = 1 };
	coil_future_callback cb[5];
	coil_future f;

	(void)arg;
	calls_of = &c;
	coil_future_init(&f, "callbacks");
	c.f = a.f = &f;
	ck_assert_int_eq(coil_future_on_done(&f, &cb[0], record_call, ARG(1)), 0);
	ck_assert_int_eq(coil_future_on_done(&f, &cb[1], record_call, ARG(2)), 0);
	ck_assert_int_eq(coil_future_on_done(&f, &cb[2], record_call, ARG(3)), 0);
	ck_assert_int_eq(coil_future_on_done(&f, &cb[3], record_call, ARG(4)), 0);
	ck_assert_int_eq(coil_future_on_done(&f, &cb[1], record_call, ARG(2)), -EBUSY);
	ck_assert_int_eq(coil_future_on_done(&f, &cb[4], NULL, NULL), -EINVAL);
	/* Removed before it runs: never runs. */
	ck_assert_int_eq(coil_future_off_done(&f, &cb[1]), 0);
	ck_assert_int_eq(coil_future_off_done(&f, &cb[1]), -ENOENT);
	/* And one removed by a callback that runs before it. */
	c.remove = &cb[2];
	c.waiter = spawn(await_task, &a);
	let_tasks_park();
	ck_assert_int_eq(c.n, 0);
	ck_assert_int_eq(coil_future_destroy(&f), -EBUSY);
	ck_assert_int_eq(coil_future_resolve(&f, ARG(1)), 0);
	ck_assert_int_eq(c.n, 2);
	ck_assert_int_eq(c.order[0], 1);
	ck_assert_int_eq(c.order[1], 4);
	ck_assert(!c.waiter_was_parked);
	ck_assert_int_eq(coil_future_off_done(&f, &cb[0]), -ENOENT);
	/* Added to a done future: runs before on_done returns. */
	ck_assert_int_eq(coil_future_on_done(&f, &cb[4], record_call, ARG(5)), 0);
	ck_assert_int_eq(c.n, 3);
	ck_assert_int_eq(c.order[2], 5);
	ck_assert_int_eq(join(c.waiter), 0);
	ck_assert_int_eq(coil_future_destroy(&f), 0);
	return 0;
}

START_TEST(test_callbacks_run_once_in_order_and_a_removed_one_never_runs)
{
	run(callbacks_main, NULL);
}
END_TEST

struct owned {
	coil_future f;
	coil_future_callback cb[2];
	int ran;
};

static void count_run(coil_future *f, void *arg)
{
	(void)f;
	((struct owned *)arg)->ran++;
}

static int *freed_after;

static void destroy_and_free(coil_future *f, void *arg)
{
	struct owned *o = arg;

	ck_assert_int_eq(o->ran, 1);
	ck_assert_int_eq(coil_future_destroy(f), 0);
	free(o);
	(*freed_after)++;
}

static int callback_frees_main(void *arg)
{
	struct owned *o = calloc(1, sizeof(*o));
	int freed = 0;

	(void)arg;
	freed_after = &freed;
	coil_future_init(&o->f, "owned");
	coil_future_on_done(&o->f, &o->cb[0], count_run, o);
	coil_future_on_done(&o->f, &o->cb[1], destroy_and_free, o);
	ck_assert_int_eq(coil_future_resolve(&o->f, NULL), 0);
	ck_assert_int_eq(freed, 1);
	return 0;
}

START_TEST(test_the_last_callback_may_destroy_and_free_its_future)
{
	run(callback_frees_main, NULL);
}
END_TEST

/* --------------------------------------------------------------- misuse */

struct from_timer {
	coil_future *f;
	int await;
	bool fired;
};

static void await_from_timer(coil_timer *timer, void *arg)
{
	struct from_timer *c = arg;

	(void)timer;
	c->await = coil_future_await(c->f, COIL_NEVER);
	c->fired = true;
}

static int outside_task_main(void *arg)
{
	struct from_timer c = { .await = 1 };
	coil_timer timer;
	coil_future f;

	(void)arg;
	coil_future_init(&f, "timer");
	c.f = &f;
	coil_timer_init(&timer, await_from_timer, &c);
	ck_assert_int_eq(coil_timer_arm(&timer, coil_now()), 0);
	while (!c.fired)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(c.await, -EPERM);
	return coil_future_destroy(&f);
}

START_TEST(test_await_outside_a_task_is_eperm)
{
	run(outside_task_main, NULL);
}
END_TEST

struct foreign {
	coil_future *f;
	coil_future_callback cb;
	int await, on_done, off_done, destroy, resolve_ret;
};

static int foreign_main(void *arg)
{
	struct foreign *x = arg;

	x->await = coil_future_await(x->f, COIL_NEVER);
	x->on_done = coil_future_on_done(x->f, &x->cb, count_run, NULL);
	x->off_done = coil_future_off_done(x->f, &x->cb);
	x->destroy = coil_future_destroy(x->f);
	/* Resolving is what other loops may do. */
	x->resolve_ret = coil_future_resolve(x->f, ARG(11));
	return 0;
}

static void *foreign_thread(void *arg)
{
	int status = -1;

	ck_assert_int_eq(coil_run(foreign_main, arg, &status), 0);
	ck_assert_int_eq(status, 0);
	return NULL;
}

static void *no_loop_thread(void *arg)
{
	struct foreign *x = arg;

	x->await = coil_future_await(x->f, COIL_NEVER);
	x->destroy = coil_future_destroy(x->f);
	return NULL;
}

static int other_loop_main(void *arg)
{
	struct foreign x = { .await = 1 }, y = { .await = 1 };
	coil_future f;

	(void)arg;
	coil_future_init(&f, "shared");
	x.f = y.f = &f;
	pthread_join(start_thread(foreign_thread, &x), NULL);
	ck_assert_int_eq(x.await, -EXDEV);
	ck_assert_int_eq(x.on_done, -EXDEV);
	ck_assert_int_eq(x.off_done, -EXDEV);
	ck_assert_int_eq(x.destroy, -EXDEV);
	ck_assert_int_eq(x.resolve_ret, 0);
	ck_assert_int_eq(coil_future_await(&f, COIL_NEVER), 0);
	ck_assert_int_eq(value_of(&f), 11);
	pthread_join(start_thread(no_loop_thread, &y), NULL);
	ck_assert_int_eq(y.await, -EXDEV);
	ck_assert_int_eq(y.destroy, -EXDEV);
	return coil_future_destroy(&f);
}

START_TEST(test_a_future_used_from_another_loop_is_exdev_and_named_in_the_log)
{
	capture_log();
	run(other_loop_main, NULL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_await on future 'shared' "
		  "from a loop that does not own it"));
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_destroy on future 'shared' "
		  "from a loop that does not own it"));
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_await on future 'shared' "
		  "from a thread with no loop"));
}
END_TEST

static int destroyed_main(void *arg)
{
	struct awaiter a = { .deadline = COIL_NEVER, .ret = 1 };
	coil_future_callback cb;
	coil_future f, junk;
	coil_task *t;

	(void)arg;
	coil_future_init(&f, "busy");
	a.f = &f;
	t = spawn(await_task, &a);
	let_tasks_park();
	ck_assert_int_eq(coil_future_destroy(&f), -EBUSY);
	/* Still usable. */
	ck_assert_int_eq(coil_future_resolve(&f, ARG(4)), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(value_of(&f), 4);
	ck_assert_int_eq(coil_future_destroy(&f), 0);

	coil_future_init(&f, "gone");
	ck_assert_int_eq(coil_future_on_done(&f, &cb, count_run, NULL), 0);
	ck_assert_int_eq(coil_future_destroy(&f), -EBUSY);
	ck_assert_int_eq(coil_future_off_done(&f, &cb), 0);
	ck_assert_int_eq(coil_future_destroy(&f), 0);
	ck_assert_int_eq(coil_future_destroy(&f), -EINVAL);
	ck_assert_int_eq(coil_future_resolve(&f, NULL), -EINVAL);
	ck_assert_int_eq(coil_future_fail(&f, -EIO), -EINVAL);
	ck_assert_int_eq(coil_future_cancel(&f), -EINVAL);
	ck_assert_int_eq(coil_future_await(&f, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_future_result(&f, NULL), -EINVAL);
	ck_assert_int_eq(coil_future_on_done(&f, &cb, count_run, NULL), -EINVAL);
	ck_assert(!coil_future_done(&f));

	memset(&junk, 0xab, sizeof(junk));
	ck_assert_int_eq(coil_future_resolve(&junk, NULL), -EINVAL);
	ck_assert_int_eq(coil_future_await(&junk, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_future_destroy(&junk), -EINVAL);
	return 0;
}

START_TEST(test_destroy_with_waiters_is_ebusy_and_use_after_destroy_is_einval)
{
	capture_log();
	run(destroyed_main, NULL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_destroy on future 'busy' "
		  "while tasks wait on it"));
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_destroy on future 'gone' "
		  "while callbacks wait on it"));
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_destroy on future 'gone', "
		  "destroyed already"));
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_await on future 'gone', "
		  "destroyed already"));
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_resolve on future 'gone', "
		  "destroyed already"));
	ck_assert(log_has(COIL_LOG_ERROR, "coil_future_resolve on an object "
		  "never initialised"));
}
END_TEST

/* ------------------------------------------------------ other threads */

#define REMOTE_N 100000

struct batch {
	coil_future *f;
	int n;
	int failures;       /* resolving calls that did not return 0 */
	bool use_loop;      /* resolve from a task of the thread's own loop */
};

static void resolve_batch(struct batch *b)
{
	for (int i = 0; i < b->n; i++) {
		int ret = i % 3 == 2 ? coil_future_fail(&b->f[i], -(i % 100) - 1)
				     : coil_future_resolve(&b->f[i], ARG(i + 1));

		b->failures += ret != 0;
		if (b->use_loop && i % 64 == 0)
			CHECK(coil_yield() == 0, "yield");
	}
}

static int resolving_main(void *arg)
{
	resolve_batch(arg);
	return 0;
}

static void *resolving_thread(void *arg)
{
	struct batch *b = arg;
	int status = -1;

	if (!b->use_loop) {
		resolve_batch(b);
		return NULL;
	}
	CHECK(coil_run(resolving_main, b, &status) == 0 && status == 0,
	      "the resolving thread's loop failed");
	return NULL;
}

static int remote_batch_main(void *arg)
{
	struct batch *b = arg;
	pthread_t th;
	void *v;
	int ret;

	b->f = malloc(REMOTE_N * sizeof(*b->f));
	ck_assert_ptr_nonnull(b->f);
	for (int i = 0; i < REMOTE_N; i++)
		coil_future_init(&b->f[i], "remote");
	th = start_thread(resolving_thread, b);
	for (int i = 0; i < REMOTE_N; i++) {
		CHECK(coil_future_await(&b->f[i], COIL_NEVER) == 0, "await %d", i);
		ret = coil_future_result(&b->f[i], &v);
		if (i % 3 == 2)
			CHECK(ret == -(i % 100) - 1 && !v, "future %d: %d", i, ret);
		else
			CHECK(ret == 0 && INT(v) == i + 1, "future %d: %d, %d", i,
			      ret, INT(v));
		CHECK(coil_future_destroy(&b->f[i]) == 0, "destroy %d", i);
	}
	pthread_join(th, NULL);
	ck_assert_int_eq(b->failures, 0);
	free(b->f);
	return 0;
}

START_TEST(test_a_hundred_thousand_futures_resolved_by_a_plain_thread_all_arrive)
{
	struct batch b = { .n = REMOTE_N };

	run(remote_batch_main, &b);
}
END_TEST

START_TEST(test_a_hundred_thousand_futures_resolved_by_another_loop_all_arrive)
{
	struct batch b = { .n = REMOTE_N, .use_loop = true };

	run(remote_batch_main, &b);
}
END_TEST

#define RACERS 4
#define RACED 20000

struct race {
	coil_future *f;
	int id;
	int won;
	char *winner; /* per future: the racer that got 0 */
	int other;    /* neither 0 nor -EALREADY */
};

static void *racer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < RACED; i++) {
		int ret = coil_future_resolve(&r->f[i], ARG(r->id));

		if (ret == 0) {
			r->won++;
			r->winner[i] = (char)r->id;
		} else if (ret != -EALREADY) {
			r->other++;
		}
	}
	return NULL;
}

static int race_main(void *arg)
{
	struct race r[RACERS];
	pthread_t th[RACERS];
	char *winner = calloc(RACED, RACERS);
	coil_future *f = malloc(RACED * sizeof(*f));
	int won = 0;

	(void)arg;
	ck_assert_ptr_nonnull(winner);
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < RACED; i++)
		coil_future_init(&f[i], "raced");
	for (int k = 0; k < RACERS; k++) {
		r[k] = (struct race){ .f = f, .id = k + 1,
				      .winner = winner + (size_t)k * RACED };
		th[k] = start_thread(racer, &r[k]);
	}
	for (int i = 0; i < RACED; i++)
		CHECK(coil_future_await(&f[i], COIL_NEVER) == 0, "await %d", i);
	for (int k = 0; k < RACERS; k++)
		pthread_join(th[k], NULL);
	for (int i = 0; i < RACED; i++) {
		int wins = 0, by = 0;

		for (int k = 0; k < RACERS; k++)
			if (winner[(size_t)k * RACED + i]) {
				wins++;
				by = k + 1;
			}
		CHECK(wins == 1, "future %d: %d winners", i, wins);
		CHECK(value_of(&f[i]) == by, "future %d holds %d, won by %d", i,
		      value_of(&f[i]), by);
		CHECK(coil_future_destroy(&f[i]) == 0, "destroy %d", i);
	}
	for (int k = 0; k < RACERS; k++) {
		ck_assert_int_eq(r[k].other, 0);
		won += r[k].won;
	}
	ck_assert_int_eq(won, RACED);
	free(f);
	free(winner);
	return 0;
}

START_TEST(test_of_threads_racing_to_resolve_exactly_one_wins)
{
	run(race_main, NULL);
}
END_TEST

/* The resolving side of a handshake: one future at a time, at a set time. */
struct relay {
	coil_future *volatile f;
	int64_t at;         /* resolve no earlier than this */
	unsigned seq;       /* bumped by the owner for each new future */
	int ret;            /* of the last resolve */
	unsigned done_seq;  /* the seq whose resolve returned */
	unsigned started;   /* the seq whose resolve is about to start */
	bool stop;
};

static void *relay_thread(void *arg)
{
	struct relay *r = arg;
	unsigned seen = 0, seq;

	for (;;) {
		while ((seq = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE)) == seen) {
			if (__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
				return NULL;
			sched_yield();
		}
		seen = seq;
		while (coil_now() < r->at)
			;
		__atomic_store_n(&r->started, seq, __ATOMIC_RELEASE);
		r->ret = coil_future_resolve(r->f, ARG(seq));
		__atomic_store_n(&r->done_seq, seq, __ATOMIC_RELEASE);
	}
}

static void relay_send(struct relay *r, coil_future *f, int64_t at)
{
	r->f = f;
	r->at = at;
	__atomic_store_n(&r->seq, r->seq + 1, __ATOMIC_RELEASE);
}

static void relay_wait(struct relay *r)
{
	while (__atomic_load_n(&r->done_seq, __ATOMIC_ACQUIRE) != r->seq)
		sched_yield();
}

#define RACE_ROUNDS 2000

static int deadline_race_main(void *arg)
{
	struct relay *r = arg;
	pthread_t th = start_thread(relay_thread, r);
	int in_time = 0, late = 0;
	coil_future f;

	for (int i = 0; i < RACE_ROUNDS; i++) {
		int64_t at = coil_now() + COIL_USEC(50 + i % 50);
		int ret;

		coil_future_init(&f, "raced-deadline");
		relay_send(r, &f, at);
		/* Around the resolving time: either may come first. */
		ret = coil_future_await(&f, at + COIL_USEC(i % 7 * 10) - COIL_USEC(30));
		if (ret == -ETIMEDOUT) {
			late++;
			/* Not lost: it arrives later, or is there already. */
			CHECK(coil_future_await(&f, COIL_NEVER) == 0, "round %d", i);
		} else {
			CHECK(ret == 0, "round %d: await %d", i, ret);
			in_time++;
		}
		CHECK(value_of(&f) == (int)r->seq, "round %d: wrong value", i);
		relay_wait(r);
		CHECK(r->ret == 0, "round %d: resolve %d", i, r->ret);
		CHECK(coil_future_destroy(&f) == 0, "round %d: destroy", i);
	}
	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	fprintf(stderr, "deadline race: %d resolved in time, %d after the "
		"deadline\n", in_time, late);
	return 0;
}

START_TEST(test_a_remote_resolution_racing_the_await_deadline_is_never_lost)
{
	struct relay r = { 0 };

	run(deadline_race_main, &r);
}
END_TEST

#define DESTROY_ROUNDS 20000

static int destroy_race_main(void *arg)
{
	struct relay *r = arg;
	pthread_t th = start_thread(relay_thread, r);
	int won = 0;

	for (int i = 0; i < DESTROY_ROUNDS; i++) {
		coil_future *f = malloc(sizeof(*f));

		coil_future_init(f, "freed");
		relay_send(r, f, 0);
		if (i % 2) {
			/* Done is seen before the wake-up is even posted. */
			while (!coil_future_done(f))
				sched_yield();
			CHECK(coil_future_destroy(f) == 0, "round %d", i);
			relay_wait(r);
			CHECK(r->ret == 0, "round %d: resolve %d", i, r->ret);
		} else {
			/* Destroyed while the resolver may be at it. */
			while (i % 4 == 0 &&
			       __atomic_load_n(&r->started, __ATOMIC_ACQUIRE) != r->seq)
				;
			CHECK(coil_future_destroy(f) == 0, "round %d", i);
			relay_wait(r);
			CHECK(r->ret == 0 || r->ret == -EINVAL, "round %d: %d", i,
			      r->ret);
			won += r->ret == 0;
		}
		free(f);
	}
	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	fprintf(stderr, "destroy race: the resolver won %d of %d\n", won,
		DESTROY_ROUNDS / 2);
	ck_assert_int_gt(won, 0);
	return 0;
}

static int await_then_free_main(void *arg)
{
	struct relay *r = arg;
	pthread_t th = start_thread(relay_thread, r);
	coil_future_callback cb;
	struct owned counter = { .ran = 0 };

	for (int i = 0; i < DESTROY_ROUNDS / 4; i++) {
		coil_future *f = malloc(sizeof(*f));

		coil_future_init(f, "freed-after-await");
		coil_future_on_done(f, &cb, count_run, &counter);
		relay_send(r, f, 0);
		/* Seen done, its wake-up maybe still in flight to this loop. */
		while (!coil_future_done(f))
			sched_yield();
		CHECK(coil_future_await(f, COIL_NEVER) == 0, "round %d", i);
		CHECK(counter.ran == i + 1, "round %d: the callback has not run", i);
		relay_wait(r);
		/* Not destroyed, as a future on a task's stack often is not. */
		free(f);
	}
	__atomic_store_n(&r->stop, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	return 0;
}

START_TEST(test_an_await_returning_leaves_nothing_of_the_future_in_flight)
{
	struct relay r = { 0 };

	run(await_then_free_main, &r);
}
END_TEST

START_TEST(test_destroy_waits_for_a_resolution_in_progress_on_another_thread)
{
	struct relay r = { 0 };

	capture_log(); /* the resolves that lose are logged */
	run(destroy_race_main, &r);
}
END_TEST

struct loop_check {
	pthread_t thread;
	coil__loop *loop;
	int calls;
};

static void note_thread(coil_future *f, void *arg)
{
	struct loop_check *c = arg;

	(void)f;
	c->thread = pthread_self();
	c->loop = coil__this_loop;
	c->calls++;
}

static void *resolve_one(void *arg)
{
	ck_assert_int_eq(coil_future_resolve(arg, ARG(8)), 0);
	return NULL;
}

static int remote_callback_main(void *arg)
{
	struct loop_check c = { 0 };
	coil_future_callback cb;
	coil_future f;

	(void)arg;
	coil_future_init(&f, "remote-callback");
	coil_future_on_done(&f, &cb, note_thread, &c);
	pthread_join(start_thread(resolve_one, &f), NULL);
	ck_assert(coil_future_done(&f));
	ck_assert_int_eq(coil_future_await(&f, COIL_NEVER), 0);
	/* The await took it at once: the wake-up may not have come in yet. */
	while (!c.calls)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(c.calls, 1);
	ck_assert(pthread_equal(c.thread, pthread_self()));
	ck_assert_ptr_eq(c.loop, coil__this_loop);
	return coil_future_destroy(&f);
}

static int destroy_undelivered_main(void *arg)
{
	struct loop_check c = { 0 };
	coil_future_callback cb;
	coil_future f;

	(void)arg;
	coil_future_init(&f, "undelivered");
	coil_future_on_done(&f, &cb, note_thread, &c);
	pthread_join(start_thread(resolve_one, &f), NULL);
	/* The loop has not run since: the wake-up waits in its inbox. */
	ck_assert_int_eq(c.calls, 0);
	ck_assert_int_eq(coil_future_destroy(&f), 0);
	ck_assert_int_eq(c.calls, 1);
	ck_assert(pthread_equal(c.thread, pthread_self()));
	return 0;
}

START_TEST(test_destroy_delivers_a_remote_resolution_not_yet_picked_up)
{
	run(destroy_undelivered_main, NULL);
}
END_TEST

START_TEST(test_callbacks_of_a_remote_resolution_run_on_the_owning_loop)
{
	run(remote_callback_main, NULL);
}
END_TEST

#define ORDERED 5000

static int delivered_order[ORDERED], delivered_n;

static void note_order(coil_future *f, void *arg)
{
	(void)f;
	delivered_order[delivered_n++] = INT(arg);
}

static void *resolve_in_order(void *arg)
{
	coil_future *f = arg;

	for (int i = 0; i < ORDERED; i++)
		ck_assert_int_eq(coil_future_resolve(&f[i], NULL), 0);
	return NULL;
}

static int remote_order_main(void *arg)
{
	coil_future *f = malloc(ORDERED * sizeof(*f));
	coil_future_callback *cb = malloc(ORDERED * sizeof(*cb));
	pthread_t th;

	(void)arg;
	delivered_n = 0;
	for (int i = 0; i < ORDERED; i++) {
		coil_future_init(&f[i], "ordered");
		coil_future_on_done(&f[i], &cb[i], note_order, ARG(i));
	}
	th = start_thread(resolve_in_order, f);
	/* Block the loop meanwhile: the wake-ups pile up in its inbox. */
	pthread_join(th, NULL);
	while (delivered_n < ORDERED)
		ck_assert_int_eq(coil_yield(), 0);
	for (int i = 0; i < ORDERED; i++) {
		CHECK(delivered_order[i] == i, "delivery %d was future %d", i,
		      delivered_order[i]);
		CHECK(coil_future_destroy(&f[i]) == 0, "destroy %d", i);
	}
	free(cb);
	free(f);
	return 0;
}

START_TEST(test_remote_resolutions_are_delivered_in_the_order_they_were_made)
{
	run(remote_order_main, NULL);
}
END_TEST

/* ----------------------------------------------- before and between loops */

struct early {
	coil_future *f;
	int64_t delay;
};

static void *resolve_after(void *arg)
{
	struct early *e = arg;
	int64_t at = coil_now() + e->delay;

	while (coil_now() < at)
		usleep(1000);
	ck_assert_int_eq(coil_future_resolve(e->f, ARG(21)), 0);
	return NULL;
}

static int early_main(void *arg)
{
	coil_future *f = arg;

	ck_assert_int_eq(coil_future_await(&f[0], COIL_NEVER), 0);
	ck_assert_int_eq(value_of(&f[0]), 12);
	ck_assert_int_eq(coil_future_await(&f[1], COIL_NEVER), 0);
	ck_assert_int_eq(value_of(&f[1]), 21);
	ck_assert_int_eq(coil_future_destroy(&f[0]), 0);
	ck_assert_int_eq(coil_future_destroy(&f[1]), 0);
	return 0;
}

START_TEST(test_futures_made_before_the_loop_work_in_it_and_in_the_next_one)
{
	coil_future f[2], never_used;
	struct early e = { .f = &f[1], .delay = COIL_MSEC(30) };
	int before = count_fds();
	pthread_t th;

	coil_future_init(&never_used, "idle");
	ck_assert_int_eq(coil_future_destroy(&never_used), 0);
	for (int round = 0; round < 3; round++) {
		coil_future_init(&f[0], "early");
		coil_future_init(&f[1], "later");
		ck_assert_int_eq(coil_future_resolve(&f[0], ARG(12)), 0);
		th = start_thread(resolve_after, &e);
		run(early_main, f);
		pthread_join(th, NULL);
		/* The loop's eventfd went with it. */
		ck_assert_int_eq(count_fds(), before);
	}
}
END_TEST

/* An unbound future, resolved as the loop binds it by awaiting. */
struct bind_race {
	coil_future f;
	unsigned seq, taken;
	bool stop;
};

static void *bind_racer(void *arg)
{
	struct bind_race *b = arg;

	for (unsigned i = 1; i <= DESTROY_ROUNDS / 4; i++) {
		while (__atomic_load_n(&b->taken, __ATOMIC_ACQUIRE) != i - 1)
			sched_yield();
		coil_future_init(&b->f, "unbound");
		__atomic_store_n(&b->seq, i, __ATOMIC_RELEASE);
		if (i % 8)
			for (volatile int spin = 0; spin < (int)(i % 200); spin++)
				;
		CHECK(coil_future_resolve(&b->f, ARG(i)) == 0, "resolve %u", i);
	}
	return NULL;
}

static int bind_race_main(void *arg)
{
	struct bind_race *b = arg;
	pthread_t th = start_thread(bind_racer, b);

	for (unsigned i = 1; i <= DESTROY_ROUNDS / 4; i++) {
		while (__atomic_load_n(&b->seq, __ATOMIC_ACQUIRE) != i)
			sched_yield();
		CHECK(coil_future_await(&b->f, coil_now() + COIL_SEC(5)) == 0,
		      "round %u: the wake-up was lost", i);
		CHECK(value_of(&b->f) == (int)i, "round %u", i);
		CHECK(coil_future_destroy(&b->f) == 0, "round %u", i);
		__atomic_store_n(&b->taken, i, __ATOMIC_RELEASE);
	}
	pthread_join(th, NULL);
	return 0;
}

START_TEST(test_a_future_made_outside_any_loop_is_not_missed_as_a_loop_takes_it)
{
	struct bind_race b = { .seq = 0 };

	run(bind_race_main, &b);
}
END_TEST

/* ------------------------------------------------------------ deadlocks */

static int await_remote_main(void *arg)
{
	struct early e = { .f = arg, .delay = COIL_MSEC(100) };
	pthread_t th;

	coil_future_init(e.f, "slow");
	th = start_thread(resolve_after, &e);
	/* No timer, no op in flight: only the other thread can end this. */
	ck_assert_int_eq(coil_future_await(e.f, COIL_NEVER), 0);
	ck_assert_int_eq(value_of(e.f), 21);
	pthread_join(th, NULL);
	return coil_future_destroy(e.f);
}

START_TEST(test_awaiting_a_future_another_thread_resolves_is_not_a_deadlock)
{
	coil_future f;

	capture_log();
	run(await_remote_main, &f);
	ck_assert(!log_has(COIL_LOG_ERROR, "deadlock"));
}
END_TEST

static void cancel_main_task(coil_future *f, void *arg)
{
	(void)f;
	ck_assert_int_eq(coil_cancel(arg), 0);
}

static int callback_wait_main(void *arg)
{
	struct early e = { .f = arg, .delay = COIL_MSEC(50) };
	coil_future_callback cb;
	pthread_t th;

	coil_future_init(e.f, "callback-only");
	coil_future_on_done(e.f, &cb, cancel_main_task, coil_current());
	th = start_thread(resolve_after, &e);
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -ECANCELED);
	pthread_join(th, NULL);
	return coil_future_destroy(e.f);
}

START_TEST(test_a_callback_on_a_pending_future_is_not_a_deadlock)
{
	coil_future f;

	capture_log();
	run(callback_wait_main, &f);
	ck_assert(!log_has(COIL_LOG_ERROR, "deadlock"));
}
END_TEST

static int stuck_main(void *arg)
{
	coil_future f;

	(void)arg;
	/* A pending future nobody awaits does not make the sleep wakeable. */
	coil_future_init(&f, "ignored");
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -ECANCELED);
	return coil_future_destroy(&f);
}

START_TEST(test_the_armed_doorbell_does_not_hide_a_deadlock)
{
	capture_log();
	run(stuck_main, NULL);
	ck_assert(log_has(COIL_LOG_ERROR, "deadlock"));
}
END_TEST

/* ------------------------------------------------------ pending table */

static int pending_resolve_main(void *arg)
{
	coil_pending p;
	coil_pending_req req[3];
	void *v;

	(void)arg;
	ck_assert_int_eq(coil_pending_init(&p, 4, "rpc"), 0);
	ck_assert_int_eq(coil_pending_add(&p, &req[0], 10, COIL_NEVER), 0);
	ck_assert_int_eq(coil_pending_add(&p, &req[1], 11, coil_now() + COIL_SEC(10)), 0);
	ck_assert_int_eq(coil_pending_add(&p, &req[2], 12, COIL_NEVER), 0);
	ck_assert_uint_eq(coil_pending_count(&p), 3);
	ck_assert_int_eq(coil_pending_resolve(&p, 11, ARG(111)), 0);
	ck_assert_int_eq(coil_future_await(coil_pending_future(&req[1]), 0), 0);
	ck_assert_int_eq(coil_future_result(coil_pending_future(&req[1]), &v), 0);
	ck_assert_ptr_eq(v, ARG(111));
	/* A second reply, or one for an id never sent: dropped. */
	ck_assert_int_eq(coil_pending_resolve(&p, 11, ARG(1)), -ENOENT);
	ck_assert_int_eq(coil_pending_resolve(&p, 99, ARG(1)), -ENOENT);
	ck_assert_int_eq(coil_pending_fail(&p, 99, -EIO), -ENOENT);
	ck_assert_int_eq(coil_pending_fail(&p, 10, 0), -EINVAL);
	ck_assert_int_eq(coil_pending_fail(&p, 10, -EPROTO), 0);
	ck_assert_int_eq(coil_future_result(coil_pending_future(&req[0]), &v),
			 -EPROTO);
	ck_assert_uint_eq(coil_pending_count(&p), 1);
	/* Completed directly, it is still taken out by its reply. */
	ck_assert_int_eq(coil_future_cancel(coil_pending_future(&req[2])), 0);
	ck_assert_int_eq(coil_pending_resolve(&p, 12, NULL), -EALREADY);
	ck_assert_uint_eq(coil_pending_count(&p), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(coil_pending_remove(&p, &req[i]), 0);
	ck_assert_int_eq(coil_pending_destroy(&p), 0);
	return 0;
}

START_TEST(test_a_reply_completes_its_request_by_id_and_a_late_one_is_enoent)
{
	run(pending_resolve_main, NULL);
}
END_TEST

static struct {
	int order[8];
	int n;
} expired;

static void note_expiry(coil_future *f, void *arg)
{
	ck_assert_int_eq(coil_future_result(f, NULL), -ETIMEDOUT);
	expired.order[expired.n++] = INT(arg);
}

static int pending_expire_main(void *arg)
{
	static const int ms[] = { 30, 10, 20 };
	coil_future_callback cb[3];
	coil_pending_req req[4];
	coil_pending p;
	int64_t start = coil_now();

	(void)arg;
	expired.n = 0;
	ck_assert_int_eq(coil_pending_init(&p, 8, "expiring"), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(coil_pending_add(&p, &req[i], i,
						  start + COIL_MSEC(ms[i])), 0);
		coil_future_on_done(coil_pending_future(&req[i]), &cb[i],
				    note_expiry, ARG(i));
	}
	ck_assert_int_eq(coil_pending_add(&p, &req[3], 3, COIL_NEVER), 0);
	/* One timer for the whole table. */
	ck_assert_uint_eq(live_deadlines(), 1);
	ck_assert_int_eq(coil_future_await(coil_pending_future(&req[0]), COIL_NEVER), 0);
	ck_assert_int_ge(coil_now(), start + COIL_MSEC(30));
	ck_assert_int_eq(expired.n, 3);
	ck_assert_int_eq(expired.order[0], 1);
	ck_assert_int_eq(expired.order[1], 2);
	ck_assert_int_eq(expired.order[2], 0);
	ck_assert_uint_eq(coil_pending_count(&p), 1);
	ck_assert_uint_eq(live_deadlines(), 0);
	ck_assert_int_eq(coil_pending_resolve(&p, 1, NULL), -ENOENT);
	/* Removed, an expired id may be used again. */
	ck_assert_int_eq(coil_pending_remove(&p, &req[1]), 0);
	ck_assert_int_eq(coil_pending_add(&p, &req[1], 1, start - 1), 0);
	ck_assert_int_eq(coil_future_await(coil_pending_future(&req[1]), COIL_NEVER), 0);
	ck_assert_int_eq(coil_future_result(coil_pending_future(&req[1]), NULL),
			 -ETIMEDOUT);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(coil_pending_remove(&p, &req[i]), 0);
	ck_assert_int_eq(coil_pending_destroy(&p), 0);
	return 0;
}

START_TEST(test_expired_requests_fail_with_etimedout_in_deadline_order)
{
	run(pending_expire_main, NULL);
}
END_TEST

static int pending_remove_main(void *arg)
{
	struct awaiter a = { .deadline = COIL_NEVER, .ret = 1 };
	coil_pending_req req, stray;
	coil_pending p;
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_pending_init(&p, 2, "removing"), 0);
	ck_assert_int_eq(coil_pending_add(&p, &req, 5, coil_now() + COIL_MSEC(10)), 0);
	a.f = coil_pending_future(&req);
	t = spawn(await_task, &a);
	let_tasks_park();
	ck_assert_int_eq(coil_pending_remove(&p, &req), -EBUSY);
	ck_assert_uint_eq(coil_pending_count(&p), 1);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	ck_assert_int_eq(coil_pending_remove(&p, &req), 0);
	ck_assert_uint_eq(coil_pending_count(&p), 0);
	ck_assert_int_eq(coil_pending_resolve(&p, 5, NULL), -ENOENT);
	/* Its deadline went with it: nothing fires for it. */
	ck_assert_uint_eq(live_deadlines(), 0);
	memset(&stray, 0, sizeof(stray));
	ck_assert_int_eq(coil_pending_remove(&p, &stray), -EINVAL);
	ck_assert_int_eq(coil_pending_remove(&p, &req), -EINVAL);
	ck_assert_int_eq(coil_pending_destroy(&p), 0);
	return 0;
}

START_TEST(test_a_removed_request_is_not_matched_and_one_awaited_is_ebusy)
{
	capture_log();
	run(pending_remove_main, NULL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_pending_remove on pending table "
		  "'removing': the request was not added to it"));
}
END_TEST

static int pending_full_main(void *arg)
{
	coil_pending_req req[4], extra;
	coil_pending p;

	(void)arg;
	ck_assert_int_eq(coil_pending_init(&p, 3, "full"), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(coil_pending_add(&p, &req[i], 100 + i, COIL_NEVER), 0);
	ck_assert_int_eq(coil_pending_add(&p, &req[3], 100, COIL_NEVER), -EEXIST);
	ck_assert_int_eq(coil_pending_add(&p, &req[0], 7, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(coil_pending_add(&p, &req[3], 103, COIL_NEVER), -ENOSPC);
	/* An answered request frees its room before it is removed. */
	ck_assert_int_eq(coil_pending_resolve(&p, 101, NULL), 0);
	ck_assert_int_eq(coil_pending_add(&p, &req[3], 103, COIL_NEVER), 0);
	ck_assert_int_eq(coil_pending_add(&p, &extra, 104, COIL_NEVER), -ENOSPC);
	ck_assert_int_eq(coil_pending_destroy(&p), -EBUSY);
	ck_assert_int_eq(coil_pending_fail_all(&p, 1), -EINVAL);
	ck_assert_int_eq(coil_pending_fail_all(&p, -ECONNRESET), 3);
	ck_assert_uint_eq(coil_pending_count(&p), 0);
	for (int i = 0; i < 4; i++) {
		int want = i == 1 ? 0 : -ECONNRESET;

		ck_assert_int_eq(coil_future_result(coil_pending_future(&req[i]),
						    NULL), want);
		ck_assert_int_eq(coil_pending_remove(&p, &req[i]), 0);
	}
	ck_assert_int_eq(coil_pending_destroy(&p), 0);
	ck_assert_int_eq(coil_pending_destroy(&p), -EINVAL);
	return 0;
}

START_TEST(test_a_duplicate_id_is_eexist_a_full_table_enospc_and_fail_all_empties_it)
{
	coil_pending p;

	capture_log();
	ck_assert_int_eq(coil_pending_init(&p, 0, NULL), -EINVAL);
	ck_assert_int_eq(coil_pending_init(&p, (1u << 24) + 1, NULL), -EINVAL);
	run(pending_full_main, NULL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_pending_destroy on pending table "
		  "'full' with 4 requests not removed"));
}
END_TEST

struct foreign_table {
	coil_pending *p;
	coil_pending_req req;
	int add, resolve, destroy;
};

static int foreign_table_main(void *arg)
{
	struct foreign_table *x = arg;

	x->add = coil_pending_add(x->p, &x->req, 1, COIL_NEVER);
	x->resolve = coil_pending_resolve(x->p, 1, NULL);
	x->destroy = coil_pending_destroy(x->p);
	return 0;
}

static void *foreign_table_thread(void *arg)
{
	int status = -1;

	ck_assert_int_eq(coil_run(foreign_table_main, arg, &status), 0);
	return NULL;
}

static int pending_exdev_main(void *arg)
{
	struct foreign_table x = { .add = 1 };
	coil_pending p;

	(void)arg;
	ck_assert_int_eq(coil_pending_init(&p, 2, "owned"), 0);
	ck_assert_uint_eq(coil_pending_count(&p), 0);
	ck_assert_int_eq(coil_pending_resolve(&p, 1, NULL), -ENOENT); /* binds it */
	x.p = &p;
	pthread_join(start_thread(foreign_table_thread, &x), NULL);
	ck_assert_int_eq(x.add, -EXDEV);
	ck_assert_int_eq(x.resolve, -EXDEV);
	ck_assert_int_eq(x.destroy, -EXDEV);
	return coil_pending_destroy(&p);
}

START_TEST(test_a_pending_table_used_from_another_loop_is_exdev)
{
	capture_log();
	run(pending_exdev_main, NULL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_pending_add on pending table "
		  "'owned' from a loop that does not own it"));
}
END_TEST

static int pending_await_main(void *arg)
{
	struct awaiter a = { .deadline = COIL_NEVER, .ret = 1 };
	coil_pending_req req;
	coil_pending p;
	coil_future *f = coil_pending_future(&req);
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_pending_init(&p, 1, "await"), 0);
	ck_assert_int_eq(coil_pending_add(&p, &req, 77, COIL_NEVER), 0);
	ck_assert_int_eq(coil_future_await(f, coil_now() + COIL_MSEC(5)), -ETIMEDOUT);
	a.f = f;
	t = spawn(await_task, &a);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	/* Neither wait lost the request: the reply still lands. */
	ck_assert_uint_eq(coil_pending_count(&p), 1);
	spawn(resolve_later, f); /* it is the future's own resolve: still matched */
	ck_assert_int_eq(coil_future_await(f, COIL_NEVER), 0);
	ck_assert_int_eq(value_of(f), 5);
	ck_assert_int_eq(coil_pending_resolve(&p, 77, NULL), -EALREADY);
	ck_assert_int_eq(coil_pending_remove(&p, &req), 0);
	return coil_pending_destroy(&p);
}

START_TEST(test_a_timed_out_or_cancelled_await_of_a_request_loses_nothing)
{
	run(pending_await_main, NULL);
}
END_TEST

#define CHURN_IDS 3000
#define CHURN_OPS 200000

/* Random adds, replies and removals against a plain array of what is in. */
static int pending_churn_main(void *arg)
{
	static coil_pending_req req[CHURN_IDS];
	static bool added[CHURN_IDS], registered[CHURN_IDS];
	unsigned in = 0;
	coil_pending p;

	(void)arg;
	seed(42);
	ck_assert_int_eq(coil_pending_init(&p, 1000, "churn"), 0);
	for (int op = 0; op < CHURN_OPS; op++) {
		unsigned i = (unsigned)below(CHURN_IDS);
		/* Ids far apart and close together, to make long probe runs. */
		uint64_t id = i % 2 ? (uint64_t)i << 40 : i;
		int ret;

		switch (below(3)) {
		case 0:
			if (added[i])
				break;
			ret = coil_pending_add(&p, &req[i], id, COIL_NEVER);
			CHECK(ret == (in == 1000 ? -ENOSPC : 0), "add %u: %d", i, ret);
			if (ret == 0) {
				added[i] = registered[i] = true;
				in++;
			}
			break;
		case 1:
			ret = coil_pending_resolve(&p, id, ARG(i));
			CHECK(ret == (registered[i] ? 0 : -ENOENT), "resolve %u: %d",
			      i, ret);
			if (registered[i]) {
				CHECK(value_of(coil_pending_future(&req[i])) == (int)i,
				      "value of %u", i);
				registered[i] = false;
				in--;
			}
			break;
		default:
			if (!added[i])
				break;
			CHECK(coil_pending_remove(&p, &req[i]) == 0, "remove %u", i);
			in -= registered[i];
			added[i] = registered[i] = false;
			break;
		}
		CHECK(coil_pending_count(&p) == in, "count %u, want %u",
		      coil_pending_count(&p), in);
	}
	for (unsigned i = 0; i < CHURN_IDS; i++)
		if (added[i])
			CHECK(coil_pending_remove(&p, &req[i]) == 0, "remove %u", i);
	return coil_pending_destroy(&p);
}

START_TEST(test_a_table_under_random_churn_matches_every_id_it_holds)
{
	run(pending_churn_main, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("primitives_future");

	ADD_TEST(s, test_a_future_resolved_before_the_await_is_taken_at_once, 10);
	ADD_TEST(s, test_every_waiter_wakes_in_the_order_it_parked_with_the_value, 10);
	ADD_TEST(s, test_a_second_outcome_is_ealready_and_the_first_one_stays, 10);
	ADD_TEST(s, test_fail_wakes_the_waiters_and_refuses_a_non_negative_error, 10);
	ADD_TEST(s, test_cancel_fails_the_future_with_ecanceled_once, 10);
	ADD_TEST(s, test_an_await_deadline_leaves_the_future_pending_and_resolvable, 10);
	ADD_TEST(s, test_cancelling_an_awaiting_task_leaves_the_future_pending_and_resolvable, 10);
	ADD_TEST(s, test_callbacks_run_once_in_order_and_a_removed_one_never_runs, 10);
	ADD_TEST(s, test_the_last_callback_may_destroy_and_free_its_future, 10);
	ADD_TEST(s, test_await_outside_a_task_is_eperm, 10);
	ADD_TEST(s, test_a_future_used_from_another_loop_is_exdev_and_named_in_the_log, 10);
	ADD_TEST(s, test_destroy_with_waiters_is_ebusy_and_use_after_destroy_is_einval, 10);
	ADD_TEST(s, test_a_hundred_thousand_futures_resolved_by_a_plain_thread_all_arrive, 120);
	ADD_TEST(s, test_a_hundred_thousand_futures_resolved_by_another_loop_all_arrive, 120);
	ADD_TEST(s, test_of_threads_racing_to_resolve_exactly_one_wins, 60);
	ADD_TEST(s, test_a_remote_resolution_racing_the_await_deadline_is_never_lost, 60);
	ADD_TEST(s, test_destroy_waits_for_a_resolution_in_progress_on_another_thread, 60);
	ADD_TEST(s, test_an_await_returning_leaves_nothing_of_the_future_in_flight, 60);
	ADD_TEST(s, test_callbacks_of_a_remote_resolution_run_on_the_owning_loop, 10);
	ADD_TEST(s, test_destroy_delivers_a_remote_resolution_not_yet_picked_up, 10);
	ADD_TEST(s, test_remote_resolutions_are_delivered_in_the_order_they_were_made, 10);
	ADD_TEST(s, test_futures_made_before_the_loop_work_in_it_and_in_the_next_one, 10);
	ADD_TEST(s, test_a_future_made_outside_any_loop_is_not_missed_as_a_loop_takes_it, 60);
	ADD_TEST(s, test_awaiting_a_future_another_thread_resolves_is_not_a_deadlock, 10);
	ADD_TEST(s, test_a_callback_on_a_pending_future_is_not_a_deadlock, 10);
	ADD_TEST(s, test_the_armed_doorbell_does_not_hide_a_deadlock, 10);
	ADD_TEST(s, test_a_reply_completes_its_request_by_id_and_a_late_one_is_enoent, 10);
	ADD_TEST(s, test_expired_requests_fail_with_etimedout_in_deadline_order, 10);
	ADD_TEST(s, test_a_removed_request_is_not_matched_and_one_awaited_is_ebusy, 10);
	ADD_TEST(s, test_a_duplicate_id_is_eexist_a_full_table_enospc_and_fail_all_empties_it, 10);
	ADD_TEST(s, test_a_pending_table_used_from_another_loop_is_exdev, 10);
	ADD_TEST(s, test_a_timed_out_or_cancelled_await_of_a_request_loses_nothing, 10);
	ADD_TEST(s, test_a_table_under_random_churn_matches_every_id_it_holds, 60);
	return test_main(s);
}
