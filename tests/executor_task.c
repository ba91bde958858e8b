/* executor/task.c and loop.c: run, spawn, join, cancel, detach, shutdown. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "executor/loop.h"
#include "helper.h"

#define ARG(n) ((void *)(intptr_t)(n))

static const coil_task_opts detached = { .detached = true };

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static int return_own_id(void *arg)
{
	(void)arg;
	return (int)coil_task_id(coil_current());
}

/* Run fn as main on a new loop, which must itself succeed; main's status. */
static int run_status(coil_fn *fn, void *arg)
{
	int status = INT_MIN;

	ck_assert_int_eq(coil_run(fn, arg, &status), 0);
	return status;
}

static coil_task *spawn_with(coil_fn *fn, void *arg, const coil_task_opts *opts)
{
	coil_task *t = NULL;

	ck_assert_int_eq(coil_spawn(&t, fn, arg, opts), 0);
	return t;
}

/* Let t run to its end without joining it: a join would release it. */
static void yield_until_ended(coil_task *t)
{
	for (int i = 0; coil_task_state(t) < COIL_TASK_COMPLETED; i++) {
		CHECK(i < 1000, "%s did not end", coil_task_name(t));
		ck_assert_int_eq(coil_yield(), 0);
	}
}

/* Stacks out of the pool: a task gives its stack back when it ends. */
static unsigned live_stacks(void)
{
	return coil__this_loop->stacks.live;
}

/* Parks until cancelled; what the sleep returned proves it woke and cleaned up. */
static int sleep_forever(void *arg)
{
	int *woke_with = arg;

	*woke_with = coil_sleep_until(COIL_NEVER);
	return *woke_with;
}

/* Yields (each yield must succeed) until *release, then returns 5. */
static int yield_until_released(void *arg)
{
	const bool *release = arg;

	while (!*release)
		CHECK(coil_yield() == 0, "yield failed");
	return 5;
}

struct joiner {
	coil_task *target;
	int ret;
	int status;
};

static int join_target(void *arg)
{
	struct joiner *j = arg;

	j->status = INT_MIN;
	j->ret = coil_join(j->target, &j->status, COIL_NEVER);
	return 0;
}

/* ------------------------------------------------------------------ run */

static int run_nested(void *arg)
{
	int status = INT_MIN;

	*(int *)arg = coil_run(return_arg, NULL, &status);
	ck_assert_int_eq(status, INT_MIN);
	return 42;
}

START_TEST(test_run_returns_zero_with_mains_status)
{
	ck_assert_int_eq(run_status(return_arg, ARG(42)), 42);
	ck_assert_int_eq(run_status(return_arg, ARG(-EIO)), -EIO);
	ck_assert_int_eq(coil_run(return_arg, NULL, NULL), 0);
	/* Every loop is new: its ids count from 1 again. */
	ck_assert_int_eq(run_status(return_own_id, NULL), 1);
	ck_assert_int_eq(run_status(return_own_id, NULL), 1);
}
END_TEST

START_TEST(test_run_inside_a_task_is_ebusy_and_the_outer_loop_goes_on)
{
	int nested = 0;

	ck_assert_int_eq(run_status(run_nested, &nested), 42);
	ck_assert_int_eq(nested, -EBUSY);
}
END_TEST

START_TEST(test_run_refuses_a_null_fn_and_a_stack_size_out_of_range)
{
	int status = INT_MIN;

	ck_assert_int_eq(coil_run(NULL, NULL, &status), -EINVAL);
	ck_assert_int_eq(coil_run_with(return_arg, NULL, &status,
				       &(coil_loop_opts){ .stack_size = 4096 }),
			 -EINVAL);
	ck_assert_int_eq(coil_run_with(return_arg, NULL, &status,
				       &(coil_loop_opts){ .stack_size = 512u << 20 }),
			 -EINVAL);
	ck_assert_int_eq(status, INT_MIN);
	/* Nothing was left behind that would make the next run -EBUSY. */
	ck_assert_int_eq(run_status(return_arg, ARG(3)), 3);
}
END_TEST

/* ------------------------------------------------------- spawn and join */

struct outcome {
	int ret;
	enum coil_task_state seen;
};

static int note_state_and_return(void *arg)
{
	struct outcome *o = arg;

	o->seen = coil_task_state(coil_current());
	return o->ret;
}

static int states_main(void *arg)
{
	struct outcome o[] = { { .ret = 5 }, { .ret = 0 }, { .ret = -EIO },
			       { .ret = -ETIMEDOUT }, { .ret = -ECANCELED } };
	enum coil_task_state want[] = { COIL_TASK_COMPLETED, COIL_TASK_COMPLETED,
					COIL_TASK_FAILED, COIL_TASK_FAILED,
					COIL_TASK_CANCELLED };
	coil_task *t[5], *sleeper;
	int woke_with = 1;

	(void)arg;
	ck_assert_int_eq(coil_task_state(coil_current()), COIL_TASK_RUNNING);
	for (int i = 0; i < 5; i++) {
		t[i] = spawn_with(note_state_and_return, &o[i], NULL);
		ck_assert_int_eq(coil_task_state(t[i]), COIL_TASK_PENDING);
	}
	for (int i = 0; i < 5; i++) {
		yield_until_ended(t[i]);
		ck_assert_int_eq(o[i].seen, COIL_TASK_RUNNING);
		ck_assert_int_eq(coil_task_state(t[i]), want[i]);
		ck_assert_int_eq(join(t[i]), o[i].ret);
	}
	/* Parked is still RUNNING. */
	sleeper = spawn_with(sleep_forever, &woke_with, NULL);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_task_state(sleeper), COIL_TASK_RUNNING);
	ck_assert_int_eq(coil_cancel(sleeper), 0);
	ck_assert_int_eq(join(sleeper), -ECANCELED);
	return 0;
}

START_TEST(test_states_go_pending_running_then_follow_the_return_value)
{
	ck_assert_int_eq(run_status(states_main, NULL), 0);
}
END_TEST

#define MANY 10000

static int many_main(void *arg)
{
	static coil_task *t[MANY];
	int status;

	(void)arg;
	for (int i = 0; i < MANY; i++)
		CHECK(coil_spawn(&t[i], return_arg, ARG(i - MANY / 2), NULL) == 0,
		      "spawn %d", i);
	ck_assert_uint_eq(live_stacks(), MANY + 1);
	for (int i = 0; i < MANY; i++) {
		CHECK(coil_join(t[i], &status, COIL_NEVER) == 0, "join %d", i);
		CHECK(status == i - MANY / 2, "task %d: status %d", i, status);
	}
	ck_assert_uint_eq(live_stacks(), 1);
	return 0;
}

START_TEST(test_ten_thousand_tasks_are_joined_each_with_its_status)
{
	ck_assert_int_eq(run_status(many_main, NULL), 0);
}
END_TEST

static int join_errors_main(void *arg)
{
	bool release = false;
	struct joiner j;
	coil_task *d, *target, *joining;
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_join(NULL, &status, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_join(coil_current(), &status, COIL_NEVER), -EDEADLK);
	d = spawn_with(return_arg, NULL, &detached);
	ck_assert_int_eq(coil_join(d, &status, COIL_NEVER), -EINVAL);

	j.target = target = spawn_with(yield_until_released, &release, NULL);
	joining = spawn_with(join_target, &j, NULL);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_join(target, &status, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(status, INT_MIN);
	/* The refused join took nothing from the first: it still gets the status. */
	release = true;
	ck_assert_int_eq(join(joining), 0);
	ck_assert_int_eq(j.ret, 0);
	ck_assert_int_eq(j.status, 5);
	return 0;
}

START_TEST(test_join_refuses_null_self_detached_and_a_second_joiner)
{
	ck_assert_int_eq(run_status(join_errors_main, NULL), 0);
}
END_TEST

/* The task's own -ETIMEDOUT, once it is let go. */
static int time_out_when_released(void *arg)
{
	return yield_until_released(arg) == 5 ? -ETIMEDOUT : 0;
}

static int join_deadline_main(void *arg)
{
	bool release = false;
	coil_task *t = spawn_with(time_out_when_released, &release, NULL);
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_join(t, &status, 0), -ETIMEDOUT);
	ck_assert_int_eq(coil_join(t, &status, coil_now() + COIL_MSEC(20)),
			 -ETIMEDOUT);
	ck_assert_int_eq(status, INT_MIN);
	ck_assert_int_eq(coil_task_state(t), COIL_TASK_RUNNING);
	release = true;
	ck_assert_int_eq(coil_join(t, &status, coil_now() + COIL_SEC(5)), 0);
	ck_assert_int_eq(status, -ETIMEDOUT);
	return 0;
}

START_TEST(test_a_join_timing_out_is_told_apart_from_a_task_timing_out)
{
	ck_assert_int_eq(run_status(join_deadline_main, NULL), 0);
}
END_TEST

/* ------------------------------------------------------ outside a task */

struct from_callback {
	coil_task *main, *spawned;
	int join, yield, sleep, spawn;
	coil_task *current;
	bool cancelled, fired;
};

static void call_everything(coil_timer *timer, void *arg)
{
	struct from_callback *c = arg;

	(void)timer;
	c->join = coil_join(c->main, NULL, COIL_NEVER);
	c->yield = coil_yield();
	c->sleep = coil_sleep_until(COIL_NEVER);
	c->current = coil_current();
	c->cancelled = coil_cancelled();
	c->spawn = coil_spawn(&c->spawned, return_arg, ARG(8), NULL);
	c->fired = true;
}

static int callback_main(void *arg)
{
	struct from_callback *c = arg;
	coil_timer timer;

	c->main = coil_current();
	coil_timer_init(&timer, call_everything, c);
	ck_assert_int_eq(coil_timer_arm(&timer, coil_now()), 0);
	for (int i = 0; !c->fired; i++) {
		CHECK(i < 1000, "the timer never fired");
		ck_assert_int_eq(coil_yield(), 0);
	}
	return join(c->spawned);
}

START_TEST(test_parking_calls_outside_a_task_are_eperm_and_callbacks_can_spawn)
{
	struct from_callback c = { .current = ARG(1), .cancelled = true };
	coil_task *t = ARG(1);

	ck_assert_int_eq(coil_join(NULL, NULL, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_yield(), -EPERM);
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_spawn(&t, return_arg, NULL, NULL), -EPERM);
	ck_assert_ptr_eq(t, ARG(1));
	ck_assert_ptr_null(coil_current());
	ck_assert(!coil_cancelled());

	ck_assert_int_eq(run_status(callback_main, &c), 8);
	ck_assert_int_eq(c.join, -EPERM);
	ck_assert_int_eq(c.yield, -EPERM);
	ck_assert_int_eq(c.sleep, -EPERM);
	ck_assert_ptr_null(c.current);
	ck_assert(!c.cancelled);
	ck_assert_int_eq(c.spawn, 0);
}
END_TEST

/* ---------------------------------------------------------------- yield */

#define YIELDERS 200 /* more than a batch (128): FIFO across batches too */
#define ROUNDS 5

static int ran_in_turn[YIELDERS * ROUNDS], turns;

static int note_turn_and_yield(void *arg)
{
	for (int k = 0; k < ROUNDS; k++) {
		ran_in_turn[turns++] = (int)(intptr_t)arg;
		CHECK(coil_yield() == 0, "yield failed");
	}
	return 0;
}

static int yield_main(void *arg)
{
	coil_task *t[YIELDERS];

	(void)arg;
	for (int i = 0; i < YIELDERS; i++)
		t[i] = spawn_with(note_turn_and_yield, ARG(i), NULL);
	for (int i = 0; i < YIELDERS; i++)
		ck_assert_int_eq(join(t[i]), 0);
	return 0;
}

START_TEST(test_yielding_tasks_take_turns_round_robin)
{
	ck_assert_int_eq(run_status(yield_main, NULL), 0);
	ck_assert_int_eq(turns, YIELDERS * ROUNDS);
	for (int i = 0; i < turns; i++)
		CHECK(ran_in_turn[i] == i % YIELDERS, "turn %d went to task %d",
		      i, ran_in_turn[i]);
}
END_TEST

/* --------------------------------------------------------------- cancel */

static int cancel_sleep_main(void *arg)
{
	int *woke_with = arg;
	coil_task *t = spawn_with(sleep_forever, woke_with, NULL);

	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(*woke_with, 1);
	ck_assert_int_eq(coil_cancel(t), 0);
	yield_until_ended(t);
	ck_assert_int_eq(coil_task_state(t), COIL_TASK_CANCELLED);
	return join(t);
}

START_TEST(test_cancel_wakes_a_sleep_forever_with_ecanceled)
{
	int woke_with = 1;

	ck_assert_int_eq(run_status(cancel_sleep_main, &woke_with), -ECANCELED);
	ck_assert_int_eq(woke_with, -ECANCELED);
}
END_TEST

static int cancel_joiner_main(void *arg)
{
	bool release = false;
	struct joiner j;
	coil_task *joining;

	(void)arg;
	j.target = spawn_with(yield_until_released, &release, NULL);
	joining = spawn_with(join_target, &j, NULL);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(joining), 0);
	ck_assert_int_eq(join(joining), 0);
	ck_assert_int_eq(j.ret, -ECANCELED);
	ck_assert_int_eq(j.status, INT_MIN);
	/* Its yields would fail had the cancel reached it. */
	ck_assert_int_eq(coil_task_state(j.target), COIL_TASK_RUNNING);
	release = true;
	return join(j.target);
}

START_TEST(test_cancel_wakes_a_join_and_leaves_the_joined_task_alone)
{
	ck_assert_int_eq(run_status(cancel_joiner_main, NULL), 5);
}
END_TEST

struct yielder {
	bool yielding;
	int ret;
};

static int yield_once(void *arg)
{
	struct yielder *y = arg;

	y->yielding = true;
	y->ret = coil_yield();
	return 0;
}

static int cancel_yield_main(void *arg)
{
	struct yielder *y = arg;
	coil_task *t = spawn_with(yield_once, y, NULL);

	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(y->yielding);
	ck_assert_int_eq(coil_cancel(t), 0);
	return join(t);
}

START_TEST(test_cancel_makes_a_pending_yield_return_ecanceled)
{
	struct yielder y = { .ret = 1 };

	ck_assert_int_eq(run_status(cancel_yield_main, &y), 0);
	ck_assert_int_eq(y.ret, -ECANCELED);
}
END_TEST

struct after_cancel {
	int first, yield, sleep_never, sleep_later, join;
	bool cancelled_before, cancelled_after;
};

static int park_again_and_again(void *arg)
{
	struct after_cancel *a = arg;
	coil_task *other;

	a->cancelled_before = coil_cancelled();
	a->first = coil_sleep_until(COIL_NEVER);
	a->cancelled_after = coil_cancelled();
	/* Any of these parking would hang the test until its timeout. */
	a->yield = coil_yield();
	a->sleep_never = coil_sleep_until(COIL_NEVER);
	a->sleep_later = coil_sleep_until(coil_now() + COIL_SEC(60));
	other = spawn_with(return_arg, NULL, NULL);
	a->join = coil_join(other, NULL, COIL_NEVER);
	ck_assert_int_eq(coil_detach(other), 0);
	return 0;
}

static int after_cancel_main(void *arg)
{
	coil_task *t = spawn_with(park_again_and_again, arg, NULL);

	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert(!coil_cancelled());
	return join(t);
}

START_TEST(test_after_a_cancel_every_parking_call_fails_at_once)
{
	struct after_cancel a = { .first = 1, .yield = 1, .sleep_never = 1,
				  .sleep_later = 1, .join = 1,
				  .cancelled_before = true };

	ck_assert_int_eq(run_status(after_cancel_main, &a), 0);
	ck_assert(!a.cancelled_before);
	ck_assert_int_eq(a.first, -ECANCELED);
	ck_assert(a.cancelled_after);
	ck_assert_int_eq(a.yield, -ECANCELED);
	ck_assert_int_eq(a.sleep_never, -ECANCELED);
	ck_assert_int_eq(a.sleep_later, -ECANCELED);
	ck_assert_int_eq(a.join, -ECANCELED);
}
END_TEST

static int cancel_self(void *arg)
{
	(void)arg;
	ck_assert(!coil_cancelled());
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ck_assert(coil_cancelled());
	return coil_yield();
}

START_TEST(test_a_task_that_cancels_itself_sees_it_at_its_next_parking_call)
{
	ck_assert_int_eq(run_status(cancel_self, NULL), -ECANCELED);
}
END_TEST

static int note_ran(void *arg)
{
	*(bool *)arg = true;
	return 0;
}

static int cancel_pending_main(void *arg)
{
	bool *ran = arg;
	coil_task *t = spawn_with(note_ran, &ran[0], NULL);
	coil_task *d = spawn_with(note_ran, &ran[1], &detached);

	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(coil_cancel(d), 0);
	yield_until_ended(t);
	ck_assert_int_eq(coil_task_state(t), COIL_TASK_CANCELLED);
	ck_assert_uint_eq(live_stacks(), 1);
	/* The detached one was released as it ended. */
	ck_assert_uint_eq(unreleased_tasks(), 2);
	return join(t);
}

START_TEST(test_a_task_cancelled_before_it_ran_ends_cancelled_without_running)
{
	bool ran[2] = { false, false };

	ck_assert_int_eq(run_status(cancel_pending_main, ran), -ECANCELED);
	ck_assert(!ran[0]);
	ck_assert(!ran[1]);
}
END_TEST

static int cancel_ended_main(void *arg)
{
	coil_task *ok = spawn_with(return_arg, ARG(3), NULL);
	coil_task *failed = spawn_with(return_arg, ARG(-EIO), NULL);

	(void)arg;
	ck_assert_int_eq(coil_cancel(NULL), -EINVAL);
	yield_until_ended(ok);
	yield_until_ended(failed);
	ck_assert_int_eq(coil_cancel(ok), 0);
	ck_assert_int_eq(coil_cancel(failed), 0);
	ck_assert_int_eq(coil_task_state(ok), COIL_TASK_COMPLETED);
	ck_assert_int_eq(coil_task_state(failed), COIL_TASK_FAILED);
	ck_assert_int_eq(join(ok), 3);
	ck_assert_int_eq(join(failed), -EIO);
	return 0;
}

START_TEST(test_cancelling_an_ended_task_changes_nothing)
{
	ck_assert_int_eq(run_status(cancel_ended_main, NULL), 0);
}
END_TEST

/* --------------------------------------------------------------- detach */

static int count_down(void *arg)
{
	int *left = arg;

	CHECK(coil_yield() == 0, "yield failed");
	--*left;
	return 0;
}

static int detach_many_main(void *arg)
{
	coil_task *t;
	int left = 1000, turns = 0;

	(void)arg;
	for (int i = 0; i < 999; i++)
		CHECK(coil_spawn(NULL, count_down, &left, &detached) == 0,
		      "spawn %d", i);
	/* A handle can be had too; it stays valid until the task ends. */
	t = spawn_with(count_down, &left, &detached);
	ck_assert_uint_eq(coil_task_id(t), 1001);
	ck_assert_uint_eq(live_stacks(), 1001);
	while (left) {
		CHECK(++turns < 100, "%d detached tasks did not end", left);
		ck_assert_int_eq(coil_yield(), 0);
	}
	ck_assert_uint_eq(live_stacks(), 1);
	ck_assert_uint_eq(unreleased_tasks(), 1);
	return 0;
}

START_TEST(test_detached_tasks_are_released_as_they_end)
{
	ck_assert_int_eq(run_status(detach_many_main, NULL), 0);
}
END_TEST

struct job {
	int ret;
	bool done;
};

static int do_job(void *arg)
{
	struct job *j = arg;

	j->done = true;
	return j->ret;
}

static int detached_failure_main(void *arg)
{
	struct job jobs[] = { { .ret = -EIO }, { .ret = 0 }, { .ret = -ECANCELED } };
	const char *names[] = { "doomed-worker", "quiet-worker", "quiet-cancel" };
	coil_task *late;

	(void)arg;
	for (int i = 0; i < 3; i++)
		spawn_with(do_job, &jobs[i],
		      &(coil_task_opts){ .name = names[i], .detached = true });
	for (int i = 0; !jobs[0].done || !jobs[1].done || !jobs[2].done; i++) {
		CHECK(i < 100, "the detached tasks did not end");
		ck_assert_int_eq(coil_yield(), 0);
	}
	ck_assert(log_has(COIL_LOG_ERROR, "doomed-worker"));
	ck_assert(!log_has(COIL_LOG_ERROR, "quiet"));

	/* Detached only after it failed: reported then. */
	late = spawn_with(return_arg, ARG(-EPIPE), &(coil_task_opts){ .name = "late-detach" });
	yield_until_ended(late);
	ck_assert(!log_has(COIL_LOG_ERROR, "late-detach"));
	ck_assert_int_eq(coil_detach(late), 0);
	ck_assert(log_has(COIL_LOG_ERROR, "late-detach"));
	return 0;
}

START_TEST(test_a_detached_task_that_fails_is_reported_with_its_name)
{
	capture_log();
	ck_assert_int_eq(run_status(detached_failure_main, NULL), 0);
}
END_TEST

static int detach_errors_main(void *arg)
{
	bool release = false;
	struct joiner j;
	coil_task *t, *joining, *ended;

	(void)arg;
	ck_assert_int_eq(coil_detach(NULL), -EINVAL);

	t = spawn_with(return_arg, NULL, NULL);
	ck_assert_int_eq(coil_detach(t), 0);
	ck_assert_int_eq(coil_detach(t), -EINVAL);

	j.target = spawn_with(yield_until_released, &release, NULL);
	joining = spawn_with(join_target, &j, NULL);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_detach(j.target), -EBUSY);
	release = true;
	ck_assert_int_eq(join(joining), 0);
	ck_assert_int_eq(j.status, 5);

	/* Detaching an ended task releases it at once. */
	ended = spawn_with(return_arg, NULL, NULL);
	yield_until_ended(ended);
	ck_assert_uint_eq(unreleased_tasks(), 2);
	ck_assert_int_eq(coil_detach(ended), 0);
	ck_assert_uint_eq(unreleased_tasks(), 1);
	return 0;
}

START_TEST(test_detach_refuses_null_twice_or_while_joined_and_releases_an_ended_task)
{
	ck_assert_int_eq(run_status(detach_errors_main, NULL), 0);
}
END_TEST

/* ------------------------------------------------- names, ids and local */

static int names_main(void *arg)
{
	char buf[64] = "worker";
	char unnamed[32];
	coil_task *named, *anon, *longer;

	(void)arg;
	ck_assert_str_eq(coil_task_name(coil_current()), "main");
	ck_assert_uint_eq(coil_task_id(coil_current()), 1);
	named = spawn_with(return_arg, NULL, &(coil_task_opts){ .name = buf });
	strcpy(buf, "changed");
	ck_assert_str_eq(coil_task_name(named), "worker");

	anon = spawn_with(return_arg, NULL, NULL);
	snprintf(unnamed, sizeof(unnamed), "task-%llu",
		 (unsigned long long)coil_task_id(anon));
	ck_assert_str_eq(coil_task_name(anon), unnamed);

	longer = spawn_with(return_arg, NULL, &(coil_task_opts){
		.name = "0123456789012345678901234567890123456789" });
	ck_assert_str_eq(coil_task_name(longer), "0123456789012345678901234567890");

	ck_assert_uint_gt(coil_task_id(named), 1);
	ck_assert_uint_gt(coil_task_id(anon), coil_task_id(named));
	ck_assert_uint_gt(coil_task_id(longer), coil_task_id(anon));
	join(named);
	join(anon);
	join(longer);
	return 0;
}

START_TEST(test_names_are_copied_truncated_or_made_from_the_id)
{
	ck_assert_int_eq(run_status(names_main, NULL), 0);
}
END_TEST

static int swap_local(void *arg)
{
	coil_task *self = coil_current();

	CHECK(coil_task_local(self) == arg, "local %p, spawned with %p",
	      coil_task_local(self), arg);
	coil_task_set_local(self, (char *)arg + 1);
	return 0;
}

static int local_main(void *arg)
{
	char x[2];
	coil_task *t;

	(void)arg;
	ck_assert_ptr_null(coil_task_local(coil_current()));
	t = spawn_with(swap_local, x, &(coil_task_opts){ .local = x });
	ck_assert_ptr_eq(coil_task_local(t), x);
	yield_until_ended(t);
	ck_assert_ptr_eq(coil_task_local(t), x + 1);
	return join(t);
}

START_TEST(test_task_local_starts_as_given_and_can_be_set)
{
	ck_assert_int_eq(run_status(local_main, NULL), 0);
}
END_TEST

/* ------------------------------------------------------------- shutdown */

static int leave_sleepers_main(void *arg)
{
	int *woke_with = arg;

	spawn_with(sleep_forever, &woke_with[0], &(coil_task_opts){ .name = "sleeper-a" });
	spawn_with(sleep_forever, &woke_with[1], &(coil_task_opts){ .name = "sleeper-b" });
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(woke_with[0], 1);
	/* Never runs: cancelled while pending. */
	spawn_with(sleep_forever, &woke_with[2], &(coil_task_opts){ .name = "never-ran" });
	return 9;
}

START_TEST(test_tasks_alive_when_main_returns_are_listed_and_cancelled)
{
	int woke_with[3] = { 1, 1, 1 };

	capture_log();
	ck_assert_int_eq(run_status(leave_sleepers_main, woke_with), 9);
	ck_assert_int_eq(woke_with[0], -ECANCELED);
	ck_assert_int_eq(woke_with[1], -ECANCELED);
	ck_assert_int_eq(woke_with[2], 1);
	ck_assert(log_has(COIL_LOG_WARN, "3 tasks still alive"));
	ck_assert(log_has(COIL_LOG_WARN, "sleeper-a"));
	ck_assert(log_has(COIL_LOG_WARN, "sleeper-b"));
	ck_assert(log_has(COIL_LOG_WARN, "never-ran"));
	ck_assert(!log_has(COIL_LOG_ERROR, "abandoning"));
}
END_TEST

/*
 * Parks with no interrupt hook, as a task waiting for an operation the
 * kernel will not cancel: a cancel cannot wake it. Through the public calls
 * a cancelled task cannot park at all (they return -ECANCELED at once), so
 * spinning on them would hold the loop instead of letting the grace expire.
 */
static int ignore_cancel(void *arg)
{
	(void)arg;
	return coil__suspend(coil_current(), NULL, NULL);
}

static int leave_stubborn_main(void *arg)
{
	(void)arg;
	spawn_with(ignore_cancel, NULL, &(coil_task_opts){ .name = "stubborn" });
	ck_assert_int_eq(coil_yield(), 0);
	return 4;
}

START_TEST(test_a_task_still_alive_after_the_grace_is_abandoned_and_listed)
{
	coil_loop_opts opts = { .shutdown_grace = COIL_MSEC(50) };
	int64_t start = coil_now(), took;
	int status = 0;

	capture_log();
	ck_assert_int_eq(coil_run_with(leave_stubborn_main, NULL, &status, &opts), 0);
	took = coil_now() - start;
	ck_assert_int_eq(status, 4);
	ck_assert_int_ge(took, COIL_MSEC(50));
	ck_assert_int_lt(took, COIL_SEC(5));
	ck_assert(log_has(COIL_LOG_WARN, "stubborn"));
	ck_assert(log_has(COIL_LOG_ERROR, "abandoning 1 task"));
	ck_assert(log_has(COIL_LOG_ERROR, "stubborn"));
}
END_TEST

static int yield_forever(void *arg)
{
	(void)arg;
	while (coil_yield() == 0)
		;
	return 0;
}

/* On the shutdown's cancel, starts a task that the cancel never reached. */
static int spawn_spinner_when_cancelled(void *arg)
{
	(void)arg;
	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -ECANCELED);
	spawn_with(yield_forever, NULL, &(coil_task_opts){ .name = "spinner",
						      .detached = true });
	return 0;
}

static int leave_spinner_main(void *arg)
{
	(void)arg;
	spawn_with(spawn_spinner_when_cancelled, NULL, &detached);
	ck_assert_int_eq(coil_yield(), 0);
	return 4;
}

/* A task that is always ready must not hold the loop past the grace. */
START_TEST(test_the_grace_bounds_shutdown_even_with_a_task_always_ready)
{
	coil_loop_opts opts = { .shutdown_grace = COIL_MSEC(50) };
	int status = 0;

	capture_log();
	ck_assert_int_eq(coil_run_with(leave_spinner_main, NULL, &status, &opts), 0);
	ck_assert_int_eq(status, 4);
	ck_assert(log_has(COIL_LOG_ERROR, "abandoning 1 task"));
	ck_assert(log_has(COIL_LOG_ERROR, "spinner"));
}
END_TEST

static int forget_failures_main(void *arg)
{
	coil_task *failed = spawn_with(return_arg, ARG(-EPIPE),
				  &(coil_task_opts){ .name = "forgotten" });
	coil_task *fine = spawn_with(return_arg, ARG(0),
				&(coil_task_opts){ .name = "fine-unjoined" });

	(void)arg;
	yield_until_ended(failed);
	yield_until_ended(fine);
	/* Someone could still join it: not a report yet. */
	ck_assert(!log_has(COIL_LOG_ERROR, "forgotten"));
	return 0;
}

START_TEST(test_a_failed_task_nobody_joined_is_reported_when_the_loop_stops)
{
	capture_log();
	ck_assert_int_eq(run_status(forget_failures_main, NULL), 0);
	ck_assert(log_has(COIL_LOG_ERROR, "forgotten"));
	ck_assert(log_has(COIL_LOG_ERROR, "nobody joining"));
	ck_assert(!log_has(COIL_LOG_ERROR, "fine-unjoined"));
}
END_TEST

static int fail_with_int_min(void *arg)
{
	(void)arg;
	return INT_MIN;
}

static int forget_int_min_main(void *arg)
{
	(void)arg;
	spawn_with(fail_with_int_min, NULL, &(coil_task_opts){ .name = "not-an-errno" });
	spawn_with(fail_with_int_min, NULL,
	      &(coil_task_opts){ .name = "detached-not-an-errno", .detached = true });
	ck_assert_int_eq(coil_yield(), 0);
	return 0;
}

/* Any negative return is a failure; reporting it must not negate INT_MIN. */
START_TEST(test_a_failure_that_is_not_an_errno_is_reported_too)
{
	capture_log();
	ck_assert_int_eq(run_status(forget_int_min_main, NULL), 0);
	ck_assert(log_has(COIL_LOG_ERROR, "detached-not-an-errno"));
	ck_assert(log_has(COIL_LOG_ERROR, "'not-an-errno'"));
}
END_TEST

/* --------------------------------------------------------- main's handle */

/*
 * Two handles spawned now must differ: a handle released twice sits twice
 * in the loop's free list and would be handed to both (the loop then
 * crashes running one task as two).
 */
static void spawn_two_distinct(void)
{
	coil_task *a = NULL, *b = NULL;

	ck_assert_int_eq(coil_spawn(&a, return_arg, NULL, &detached), 0);
	ck_assert_int_eq(coil_spawn(&b, return_arg, NULL, &detached), 0);
	ck_assert_msg(a != b, "two live tasks were given the same handle");
}

struct main_joiner {
	coil_task *main;
	int ret, status;
};

static int join_main(void *arg)
{
	struct main_joiner *j = arg;

	j->ret = coil_join(j->main, &j->status, COIL_NEVER);
	spawn_two_distinct();
	return 0;
}

static int joined_main(void *arg)
{
	struct main_joiner *j = arg;

	j->main = coil_current();
	spawn_with(join_main, j, NULL);
	ck_assert_int_eq(coil_yield(), 0);
	return 6;
}

/* coil_run joins main: nobody else may, and its handle is released once. */
START_TEST(test_main_cannot_be_joined_by_another_task)
{
	struct main_joiner j = { .ret = 1, .status = INT_MIN };

	capture_log();
	ck_assert_int_eq(run_status(joined_main, &j), 6);
	ck_assert_int_eq(j.ret, -EINVAL);
	ck_assert_int_eq(j.status, INT_MIN);
}
END_TEST

/* Checks the handles once shutdown cancels it, after main is gone. */
static int check_handles_at_shutdown(void *arg)
{
	bool *checked = arg;

	ck_assert_int_eq(coil_sleep_until(COIL_NEVER), -ECANCELED);
	spawn_two_distinct();
	*checked = true;
	return 0;
}

struct self_detach {
	int detach;
	bool checked;
};

static int detach_self(void *arg)
{
	struct self_detach *d = arg;

	spawn_with(check_handles_at_shutdown, &d->checked, &detached);
	ck_assert_int_eq(coil_yield(), 0);
	d->detach = coil_detach(coil_current());
	return 6;
}

START_TEST(test_main_cannot_detach_itself_and_coil_run_returns_its_status)
{
	struct self_detach d = { .detach = 1 };

	capture_log();
	ck_assert_int_eq(run_status(detach_self, &d), 6);
	ck_assert_int_eq(d.detach, -EINVAL);
	ck_assert(d.checked);
}
END_TEST

/* ------------------------------------------------------------- deadlock */

struct deadlock {
	int join, woke_with;
};

static int deadlock_main(void *arg)
{
	struct deadlock *d = arg;
	coil_task *t = spawn_with(sleep_forever, &d->woke_with,
			     &(coil_task_opts){ .name = "stuck" });

	d->join = coil_join(t, NULL, COIL_NEVER);
	return 17;
}

struct watch_record {
	struct coil__task_watch watch;
	coil_task *task;
	int calls;
	int state, status; /* as the watcher saw them */
};

static void record_end(struct coil__task_watch *w, coil_task *t)
{
	struct watch_record *r = (struct watch_record *)w;

	r->task = t;
	r->calls++;
	r->state = coil_task_state(t);
	r->status = t->status;
}

static int watch_main(void *arg)
{
	struct watch_record a = { .watch.ended = record_end };
	struct watch_record b = { .watch.ended = record_end };
	struct watch_record gone = { .watch.ended = record_end };
	coil_task *t = spawn_with(return_arg, ARG(-EIO), NULL);
	int status;

	(void)arg;
	coil__task_watch(t, &a.watch);
	coil__task_watch(t, &gone.watch);
	coil__task_watch(t, &b.watch);
	coil__task_unwatch(t, &gone.watch);
	yield_until_ended(t);
	/* Each watcher once, after the state and status were set. */
	ck_assert_int_eq(a.calls, 1);
	ck_assert_int_eq(b.calls, 1);
	ck_assert_ptr_eq(a.task, t);
	ck_assert_int_eq(a.state, COIL_TASK_FAILED);
	ck_assert_int_eq(b.status, -EIO);
	ck_assert_int_eq(gone.calls, 0);
	/* Unwatching after the end is a no-op; the task is still joinable. */
	coil__task_unwatch(t, &a.watch);
	ck_assert_int_eq(coil_join(t, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, -EIO);
	return 0;
}

START_TEST(test_watchers_run_once_when_the_task_ends_and_unwatched_ones_never)
{
	ck_assert_int_eq(run_status(watch_main, NULL), 0);
}
END_TEST

START_TEST(test_a_deadlock_is_reported_and_the_parked_tasks_cancelled)
{
	struct deadlock d = { .join = 1, .woke_with = 1 };

	capture_log();
	ck_assert_int_eq(run_status(deadlock_main, &d), 17);
	ck_assert_int_eq(d.join, -ECANCELED);
	ck_assert_int_eq(d.woke_with, -ECANCELED);
	ck_assert(log_has(COIL_LOG_ERROR, "deadlock"));
	ck_assert(log_has(COIL_LOG_ERROR, "'stuck'"));
	ck_assert(log_has(COIL_LOG_ERROR, "'main'"));
}
END_TEST

/* --------------------------------------------------------------- faults */

static int no_stack_main(void *arg)
{
	static const coil_task_opts sizes[] = { { .stack_size = 0 },
						{ .stack_size = 64 * 1024 } };
	coil__stack_pool *pool = &coil__this_loop->stacks;
	coil_task *t;

	(void)arg;
	/* Every spawn must map a stack: none is kept free for reuse. */
	pool->max_free = 0;
	ck_assert_uint_eq(pool->free_count, 0);
	for (int i = 0; i < 2; i++) {
		unsigned live = pool->live, tasks = unreleased_tasks();

		pool->fail_next = 1;
		t = ARG(1);
		ck_assert_int_eq(coil_spawn(&t, return_arg, ARG(i), &sizes[i]), -ENOMEM);
		ck_assert_ptr_eq(t, ARG(1));
		ck_assert_uint_eq(pool->live, live);
		ck_assert_uint_eq(unreleased_tasks(), tasks);
		ck_assert_int_eq(join(spawn_with(return_arg, ARG(i + 10), &sizes[i])), i + 10);
	}
	return 0;
}

START_TEST(test_spawn_without_a_stack_is_enomem_and_leaks_nothing)
{
	ck_assert_int_eq(run_status(no_stack_main, NULL), 0);
}
END_TEST

static int bad_spawn_main(void *arg)
{
	coil_task *t = ARG(1);
	unsigned live = live_stacks();

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(coil_spawn(NULL, return_arg, NULL, NULL), -EINVAL);
	ck_assert_int_eq(coil_spawn(&t, return_arg, NULL,
				    &(coil_task_opts){ .stack_size = 4096 }), -EINVAL);
	ck_assert_int_eq(coil_spawn(&t, return_arg, NULL,
				    &(coil_task_opts){ .stack_size = 512u << 20 }),
			 -EINVAL);
	ck_assert_ptr_eq(t, ARG(1));
	ck_assert_uint_eq(live_stacks(), live);
	/* The smallest stack allowed works. */
	return join(spawn_with(return_arg, ARG(2),
			  &(coil_task_opts){ .stack_size = 16 * 1024 }));
}

START_TEST(test_spawn_refuses_a_null_fn_no_handle_and_a_stack_size_out_of_range)
{
	ck_assert_int_eq(run_status(bad_spawn_main, NULL), 2);
}
END_TEST

static int overflow(void *arg)
{
	(void)arg;
	expect_fault_below(coil_current()->stack.lo);
	return recurse_forever(0);
}

static void run_overflow(void *arg)
{
	(void)arg;
	coil_run(overflow, NULL, NULL);
}

START_TEST(test_a_task_stack_overflow_faults_on_its_guard_page)
{
	expect_guard_fault(run_overflow, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_task");

	ADD_TEST(s, test_run_returns_zero_with_mains_status, 10);
	ADD_TEST(s, test_run_inside_a_task_is_ebusy_and_the_outer_loop_goes_on, 10);
	ADD_TEST(s, test_run_refuses_a_null_fn_and_a_stack_size_out_of_range, 10);
	ADD_TEST(s, test_states_go_pending_running_then_follow_the_return_value, 10);
	ADD_TEST(s, test_ten_thousand_tasks_are_joined_each_with_its_status, 60);
	ADD_TEST(s, test_join_refuses_null_self_detached_and_a_second_joiner, 10);
	ADD_TEST(s, test_a_join_timing_out_is_told_apart_from_a_task_timing_out, 10);
	ADD_TEST(s, test_parking_calls_outside_a_task_are_eperm_and_callbacks_can_spawn, 10);
	ADD_TEST(s, test_yielding_tasks_take_turns_round_robin, 10);
	ADD_TEST(s, test_cancel_wakes_a_sleep_forever_with_ecanceled, 10);
	ADD_TEST(s, test_cancel_wakes_a_join_and_leaves_the_joined_task_alone, 10);
	ADD_TEST(s, test_cancel_makes_a_pending_yield_return_ecanceled, 10);
	ADD_TEST(s, test_after_a_cancel_every_parking_call_fails_at_once, 10);
	ADD_TEST(s, test_a_task_that_cancels_itself_sees_it_at_its_next_parking_call, 10);
	ADD_TEST(s, test_a_task_cancelled_before_it_ran_ends_cancelled_without_running, 10);
	ADD_TEST(s, test_cancelling_an_ended_task_changes_nothing, 10);
	ADD_TEST(s, test_detached_tasks_are_released_as_they_end, 10);
	ADD_TEST(s, test_a_detached_task_that_fails_is_reported_with_its_name, 10);
	ADD_TEST(s, test_detach_refuses_null_twice_or_while_joined_and_releases_an_ended_task, 10);
	ADD_TEST(s, test_names_are_copied_truncated_or_made_from_the_id, 10);
	ADD_TEST(s, test_task_local_starts_as_given_and_can_be_set, 10);
	ADD_TEST(s, test_tasks_alive_when_main_returns_are_listed_and_cancelled, 10);
	ADD_TEST(s, test_a_task_still_alive_after_the_grace_is_abandoned_and_listed, 10);
	ADD_TEST(s, test_the_grace_bounds_shutdown_even_with_a_task_always_ready, 10);
	ADD_TEST(s, test_a_failed_task_nobody_joined_is_reported_when_the_loop_stops, 10);
	ADD_TEST(s, test_a_failure_that_is_not_an_errno_is_reported_too, 10);
	ADD_TEST(s, test_main_cannot_be_joined_by_another_task, 10);
	ADD_TEST(s, test_main_cannot_detach_itself_and_coil_run_returns_its_status, 10);
	ADD_TEST(s, test_watchers_run_once_when_the_task_ends_and_unwatched_ones_never, 10);
	ADD_TEST(s, test_a_deadlock_is_reported_and_the_parked_tasks_cancelled, 10);
	ADD_TEST(s, test_spawn_without_a_stack_is_enomem_and_leaks_nothing, 10);
	ADD_TEST(s, test_spawn_refuses_a_null_fn_no_handle_and_a_stack_size_out_of_range, 10);
	ADD_TEST(s, test_a_task_stack_overflow_faults_on_its_guard_page, 20);
	return test_main(s);
}
