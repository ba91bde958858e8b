/* primitives/group.c and waitfor.c: task groups, wait_for, retry. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "executor/loop.h"
#include "helper.h"

/*
 * A child that naps, then returns ret. Interrupted, it runs a cleanup that
 * itself parks (shielded), so that whoever waits for it can be seen to wait
 * for the cleanup too.
 */
struct kid {
	int64_t nap; /* 0: one yield; COIL_NEVER: until cancelled */
	int ret;
	bool ran, cleaned, ended;
	int woke;    /* what the nap returned */
	int cleanup_ret; /* returned after the cleanup instead, when not 0 */
};

static int kid_main(void *arg)
{
	struct kid *k = arg;

	k->ran = true;
	k->woke = k->nap == COIL_NEVER ? coil_sleep_until(COIL_NEVER)
		  : k->nap             ? coil_sleep(k->nap)
				       : coil_yield();
	if (k->woke < 0) {
		coil_shield_begin();
		CHECK(coil_sleep(COIL_MSEC(2)) == 0, "shielded cleanup interrupted");
		coil_shield_end();
		k->cleaned = true;
	}
	k->ended = true;
	if (k->woke < 0 && k->cleanup_ret)
		return k->cleanup_ret;
	return k->woke < 0 ? k->woke : k->ret;
}

static void spawn_kid(coil_group *g, struct kid *k, coil_task **out)
{
	ck_assert_int_eq(coil_group_spawn(g, out, kid_main, k, NULL), 0);
}

/* ------------------------------------------------------------- task group */

static int all_end_main(void *arg)
{
	struct kid k[5];
	coil_task *t[5];
	coil_group g;
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_group_init(&g, "five"), 0);
	for (int i = 0; i < 5; i++) {
		k[i] = (struct kid){ .nap = COIL_MSEC(5 - i), .ret = i };
		spawn_kid(&g, &k[i], &t[i]);
	}
	ck_assert_uint_eq(unreleased_tasks(), 6);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, 0);
	for (int i = 0; i < 5; i++)
		ck_assert(k[i].ended && k[i].woke == 0 && !k[i].cleaned);
	/* The group released every child: the caller joins none. */
	ck_assert_uint_eq(unreleased_tasks(), 1);
	ck_assert_int_eq(coil_group_destroy(&g), 0);
	return 0;
}

START_TEST(test_wait_returns_once_every_child_has_ended_and_releases_them)
{
	run(all_end_main, NULL);
}
END_TEST

static int handle_main(void *arg)
{
	struct kid k = { .ret = 9 };
	coil_task *t;
	coil_group g;

	(void)arg;
	coil_group_init(&g, NULL);
	ck_assert_int_eq(coil_group_spawn(&g, &t, kid_main, &k,
					  &(coil_task_opts){ .name = "kid" }), 0);
	while (!k.ended)
		ck_assert_int_eq(coil_yield(), 0);
	/* Ended, but not reclaimed before the wait: the handle still reads. */
	ck_assert_int_eq(coil_task_state(t), COIL_TASK_COMPLETED);
	ck_assert_str_eq(coil_task_name(t), "kid");
	/* The group releases it, once: nobody else may. */
	ck_assert_int_eq(coil_join(t, NULL, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(coil_detach(t), -EBUSY);
	ck_assert_int_eq(coil_gather(&t, 1, NULL, 0, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(coil_group_wait(&g, NULL, COIL_NEVER), 0);
	ck_assert_int_eq(coil_group_destroy(&g), 0);
	return 0;
}

START_TEST(test_a_childs_handle_stays_valid_until_the_wait)
{
	run(handle_main, NULL);
}
END_TEST

static int first_failure_main(void *arg)
{
	struct kid k[3] = {
		{ .nap = COIL_MSEC(1), .ret = -EIO },
		{ .nap = COIL_MSEC(200), .ret = -EPIPE },
		{ .nap = COIL_NEVER },
	};
	coil_task *t[3];
	coil_group g;
	int status = INT_MIN;
	int64_t start = coil_now();

	(void)arg;
	coil_group_init(&g, "fail");
	for (int i = 0; i < 3; i++)
		spawn_kid(&g, &k[i], &t[i]);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, -EIO);
	ck_assert_int_lt(coil_now() - start, COIL_MSEC(150));
	for (int i = 1; i < 3; i++)
		ck_assert(k[i].woke == -ECANCELED && k[i].cleaned);
	ck_assert_int_eq(coil_group_destroy(&g), 0);
	return 0;
}

START_TEST(test_the_first_failure_cancels_the_siblings_and_is_the_status)
{
	run(first_failure_main, NULL);
}
END_TEST

/* Fails without parking: no sibling gets to run before it ends. */
static int fail_at_once(void *arg)
{
	struct kid *k = arg;

	k->ran = k->ended = true;
	return k->ret;
}

static int unstarted_main(void *arg)
{
	struct kid k[3] = { { .ret = -ENOSPC }, { .ret = 1 }, { .ret = 2 } };
	coil_task *t[3];
	coil_group g;
	int status;

	(void)arg;
	coil_group_init(&g, NULL);
	ck_assert_int_eq(coil_group_spawn(&g, &t[0], fail_at_once, &k[0], NULL), 0);
	for (int i = 1; i < 3; i++)
		spawn_kid(&g, &k[i], &t[i]);
	ck_assert_int_eq(coil_yield(), 0);
	/* k[0] ran first and failed: the others, not started, never will. */
	ck_assert(k[0].ran && !k[1].ran && !k[2].ran);
	ck_assert_int_eq(coil_task_state(t[1]), COIL_TASK_CANCELLED);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, -ENOSPC);
	ck_assert(!k[1].ran && !k[2].ran);
	coil_group_destroy(&g);
	return 0;
}

START_TEST(test_siblings_that_have_not_started_never_run_after_a_failure)
{
	run(unstarted_main, NULL);
}
END_TEST

static int second_failure_main(void *arg)
{
	/* k[0] fails first; k[1], cancelled, fails too in its cleanup. */
	struct kid k[2] = { { .ret = -EPIPE }, { .nap = COIL_NEVER, .cleanup_ret = -EIO } };
	coil_task *t;
	coil_group g;
	int status;

	(void)arg;
	coil_group_init(&g, NULL);
	spawn_kid(&g, &k[1], &t);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_group_spawn(&g, NULL, fail_at_once, &k[0], NULL), 0);
	while (!k[1].ended)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_task_state(t), COIL_TASK_FAILED);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, -EPIPE);
	ck_assert_int_eq(k[1].woke, -ECANCELED);
	coil_group_destroy(&g);
	return 0;
}

START_TEST(test_only_the_first_failure_counts)
{
	run(second_failure_main, NULL);
}
END_TEST

static int cancel_one_main(void *arg)
{
	struct kid k[2] = { { .nap = COIL_NEVER }, { .nap = COIL_MSEC(3), .ret = 4 } };
	coil_task *t[2];
	coil_group g;
	int status = INT_MIN;

	(void)arg;
	coil_group_init(&g, NULL);
	spawn_kid(&g, &k[0], &t[0]);
	spawn_kid(&g, &k[1], &t[1]);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(t[0]), 0);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	/* A cancelled child is not a failure: its sibling ran to its end. */
	ck_assert_int_eq(status, 0);
	ck_assert_int_eq(k[1].woke, 0);
	ck_assert(k[0].cleaned && !k[1].cleaned);
	coil_group_destroy(&g);
	return 0;
}

START_TEST(test_a_child_cancelled_by_hand_is_not_a_failure)
{
	run(cancel_one_main, NULL);
}
END_TEST

static int group_cancel_main(void *arg)
{
	struct kid k[3] = { { .nap = COIL_NEVER }, { .nap = COIL_NEVER }, { .ret = 3 } };
	coil_group g;
	coil_task *t = NULL;
	int status = INT_MIN;

	(void)arg;
	coil_group_init(&g, "cancelled");
	spawn_kid(&g, &k[0], NULL);
	spawn_kid(&g, &k[1], NULL);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_group_cancel(&g), 0);
	ck_assert_int_eq(coil_group_spawn(&g, &t, kid_main, &k[2], NULL), -ECANCELED);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, 0);
	ck_assert(k[0].cleaned && k[1].cleaned && !k[2].ran);
	/* The wait made the group new again. */
	spawn_kid(&g, &k[2], NULL);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	ck_assert(k[2].ran && status == 0);
	ck_assert_int_eq(coil_group_destroy(&g), 0);
	return 0;
}

START_TEST(test_a_cancelled_group_refuses_children_until_the_wait_resets_it)
{
	run(group_cancel_main, NULL);
}
END_TEST

static int deadline_main(void *arg)
{
	struct kid k[3] = { { .nap = COIL_NEVER }, { .nap = COIL_NEVER },
			    { .nap = COIL_NEVER } };
	coil_group g;
	int64_t deadline = coil_now() + COIL_MSEC(20);
	int status = INT_MIN;

	(void)arg;
	coil_group_init(&g, NULL);
	for (int i = 0; i < 3; i++)
		spawn_kid(&g, &k[i], NULL);
	ck_assert_int_eq(coil_group_wait(&g, &status, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_int_eq(status, 0);
	for (int i = 0; i < 3; i++)
		ck_assert(k[i].cleaned && k[i].ended);
	ck_assert_uint_eq(unreleased_tasks(), 1);
	/* A deadline already passed, with no child, is no timeout. */
	ck_assert_int_eq(coil_group_wait(&g, &status, 0), 0);
	ck_assert_int_eq(coil_group_destroy(&g), 0);
	return 0;
}

START_TEST(test_the_waits_deadline_cancels_the_children_and_waits_for_their_cleanup)
{
	run(deadline_main, NULL);
}
END_TEST

struct parent {
	struct kid k[2];
	bool nap_first; /* park elsewhere before the wait */
	int nap, wait, status;
	bool kids_done_at_return;
};

static int parent_main(void *arg)
{
	struct parent *p = arg;
	coil_group g;

	coil_group_init(&g, "parent's");
	for (int i = 0; i < 2; i++)
		spawn_kid(&g, &p->k[i], NULL);
	if (p->nap_first)
		p->nap = coil_sleep_until(COIL_NEVER);
	p->wait = coil_group_wait(&g, &p->status, COIL_NEVER);
	p->kids_done_at_return = p->k[0].cleaned && p->k[1].cleaned;
	coil_group_destroy(&g);
	return 0;
}

static int cancel_parent_main(void *arg)
{
	struct parent *p = arg;
	coil_task *t;

	p->k[0] = p->k[1] = (struct kid){ .nap = COIL_NEVER };
	ck_assert_int_eq(coil_spawn(&t, parent_main, p, NULL), 0);
	let_tasks_park();
	ck_assert(p->k[0].ran && p->k[1].ran);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(p->wait, -ECANCELED);
	ck_assert_int_eq(p->status, 0);
	ck_assert(p->kids_done_at_return);
	return 0;
}

START_TEST(test_a_cancelled_waiter_cancels_its_children_and_still_waits_for_them)
{
	struct parent p = { .nap_first = false };

	run(cancel_parent_main, &p);
}
END_TEST

START_TEST(test_a_parent_cancelled_before_its_wait_cancels_its_group_there)
{
	struct parent p = { .nap_first = true };

	run(cancel_parent_main, &p);
	ck_assert_int_eq(p.nap, -ECANCELED);
}
END_TEST

struct waiters {
	coil_group *g;
	int ret;
};

static int wait_on_group(void *arg)
{
	struct waiters *w = arg;

	w->ret = coil_group_wait(w->g, NULL, COIL_NEVER);
	return 0;
}

static void wait_from_callback(coil_timer *timer, void *arg)
{
	struct waiters *w = arg;

	(void)timer;
	w->ret = coil_group_wait(w->g, NULL, COIL_NEVER);
}

static int wait_errors_main(void *arg)
{
	struct kid k = { .nap = COIL_NEVER };
	struct waiters first = { .ret = 1 }, cb = { .ret = 1 }, self = { .ret = 1 };
	coil_task *w, *child;
	coil_timer timer;
	coil_group g;

	(void)arg;
	coil_group_init(&g, NULL);
	first.g = cb.g = self.g = &g;
	spawn_kid(&g, &k, NULL);
	/* A child waiting for its own group would wait for itself. */
	ck_assert_int_eq(coil_group_spawn(&g, &child, wait_on_group, &self, NULL), 0);
	ck_assert_int_eq(coil_spawn(&w, wait_on_group, &first, NULL), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(self.ret, -EDEADLK);
	ck_assert_int_eq(coil_group_wait(&g, NULL, COIL_NEVER), -EBUSY);
	coil_timer_init(&timer, wait_from_callback, &cb);
	coil_timer_arm(&timer, coil_now());
	while (cb.ret == 1)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(cb.ret, -EPERM);
	coil_group_cancel(&g);
	ck_assert_int_eq(join(w), 0);
	ck_assert_int_eq(first.ret, 0);
	coil_group_destroy(&g);
	return 0;
}

START_TEST(test_wait_refuses_a_second_waiter_a_child_and_a_callback)
{
	run(wait_errors_main, NULL);
}
END_TEST

struct cb_spawn {
	coil_group *g;
	struct kid k;
	int ret;
};

static void spawn_from_callback(coil_timer *timer, void *arg)
{
	struct cb_spawn *c = arg;

	(void)timer;
	c->ret = coil_group_spawn(c->g, NULL, kid_main, &c->k, NULL);
}

static int spawn_errors_main(void *arg)
{
	coil_group g;
	struct cb_spawn c = { .g = &g, .k = { .ret = 2 }, .ret = 1 };
	coil_timer timer;
	coil_task *t = NULL;
	int status;

	(void)arg;
	coil_group_init(&g, NULL);
	ck_assert_int_eq(coil_group_spawn(&g, &t, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(coil_group_spawn(&g, &t, kid_main, &c.k,
					  &(coil_task_opts){ .detached = true }),
			 -EINVAL);
	ck_assert_ptr_null(t);
	coil_timer_init(&timer, spawn_from_callback, &c);
	coil_timer_arm(&timer, coil_now());
	while (c.ret == 1)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(c.ret, 0);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	ck_assert(c.k.ran && c.k.ended);
	ck_assert_int_eq(status, 0);
	coil_group_destroy(&g);
	return 0;
}

START_TEST(test_spawn_refuses_a_null_fn_and_a_detached_child_and_works_from_a_callback)
{
	run(spawn_errors_main, NULL);
}
END_TEST

static int destroy_main(void *arg)
{
	struct kid k = { .nap = COIL_NEVER };
	coil_group g;

	(void)arg;
	capture_log();
	coil_group_init(&g, "workers");
	spawn_kid(&g, &k, NULL);
	ck_assert_int_eq(coil_group_destroy(&g), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "task group 'workers' while tasks wait"));
	/* Still usable. */
	ck_assert_int_eq(coil_group_cancel(&g), 0);
	ck_assert_int_eq(coil_group_wait(&g, NULL, COIL_NEVER), 0);
	ck_assert_int_eq(coil_group_destroy(&g), 0);
	ck_assert_int_eq(coil_group_destroy(&g), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_group_destroy on an object destroyed already"));
	ck_assert_int_eq(coil_group_spawn(&g, NULL, kid_main, &k, NULL), -EINVAL);
	ck_assert_int_eq(coil_group_wait(&g, NULL, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_group_cancel(&g), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_group_wait on a destroyed object"));
	coil_set_log(NULL, NULL);
	return 0;
}

START_TEST(test_destroy_with_children_alive_is_ebusy_and_a_second_destroy_einval)
{
	run(destroy_main, NULL);
}
END_TEST

static int unwaited_main(void *arg)
{
	struct kid k = { .ret = -EIO };
	coil_group g;

	(void)arg;
	capture_log();
	coil_group_init(&g, "careless");
	ck_assert_int_eq(coil_group_spawn(&g, NULL, kid_main, &k,
					  &(coil_task_opts){ .name = "doomed" }), 0);
	while (!k.ended)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_group_destroy(&g), 0);
	ck_assert(log_has(COIL_LOG_ERROR, "task group 'careless' destroyed without a wait"));
	ck_assert(log_has(COIL_LOG_ERROR, "'doomed' failed"));
	ck_assert_uint_eq(unreleased_tasks(), 1);
	coil_set_log(NULL, NULL);
	return 0;
}

START_TEST(test_a_failure_nobody_waited_for_is_reported_at_destroy)
{
	run(unwaited_main, NULL);
}
END_TEST

static int quiet_failure_main(void *arg)
{
	struct kid k = { .ret = -EIO };
	coil_group g;
	int status;

	(void)arg;
	coil_group_init(&g, NULL);
	spawn_kid(&g, &k, NULL);
	ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, -EIO);
	coil_group_destroy(&g);
	return 0;
}

START_TEST(test_a_failure_the_wait_reported_is_not_logged_again)
{
	capture_log();
	run(quiet_failure_main, NULL);
	ck_assert_str_eq(captured_log(), "");
	coil_set_log(NULL, NULL);
}
END_TEST

struct foreign {
	coil_group *g;
	int spawn, wait, cancel, destroy;
};

static int use_foreign_group(void *arg)
{
	struct foreign *f = arg;
	struct kid k = { 0 };

	f->spawn = coil_group_spawn(f->g, NULL, kid_main, &k, NULL);
	f->wait = coil_group_wait(f->g, NULL, COIL_NEVER);
	f->cancel = coil_group_cancel(f->g);
	f->destroy = coil_group_destroy(f->g);
	return 0;
}

static void *foreign_thread(void *arg)
{
	int status;

	coil_run(use_foreign_group, arg, &status);
	return NULL;
}

static int foreign_main(void *arg)
{
	struct foreign *f = arg;
	pthread_t th;
	coil_group g;

	coil_group_init(&g, "mine");
	f->g = &g;
	/* Blocks this loop meanwhile: harmless, nothing else runs here. */
	pthread_create(&th, NULL, foreign_thread, f);
	pthread_join(th, NULL);
	ck_assert_int_eq(coil_group_destroy(&g), 0);
	return 0;
}

START_TEST(test_a_group_used_from_a_loop_that_does_not_own_it_is_exdev)
{
	struct foreign f;

	capture_log();
	run(foreign_main, &f);
	ck_assert_int_eq(f.spawn, -EXDEV);
	ck_assert_int_eq(f.wait, -EXDEV);
	ck_assert_int_eq(f.cancel, -EXDEV);
	ck_assert_int_eq(f.destroy, -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "task group 'mine' from a loop that does not own it"));
	/* And from a thread with no loop at all. */
	coil_group g;
	coil_group_init(&g, "loopless");
	ck_assert_int_eq(coil_group_cancel(&g), -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "task group 'loopless' from a thread with no loop"));
	coil_set_log(NULL, NULL);
}
END_TEST

#define MANY 2000

static int many_main(void *arg)
{
	static struct kid k[MANY];
	coil_group g;
	int status;

	(void)arg;
	coil_group_init(&g, NULL);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < MANY; i++) {
			k[i] = (struct kid){ .ret = i };
			CHECK(coil_group_spawn(&g, NULL, kid_main, &k[i], NULL) == 0,
			      "spawn %d", i);
		}
		ck_assert_int_eq(coil_group_wait(&g, &status, COIL_NEVER), 0);
		ck_assert_int_eq(status, 0);
		for (int i = 0; i < MANY; i++)
			CHECK(k[i].ended, "child %d did not end", i);
		ck_assert_uint_eq(unreleased_tasks(), 1);
	}
	coil_group_destroy(&g);
	return 0;
}

START_TEST(test_thousands_of_children_twice_in_one_group_are_all_released)
{
	run(many_main, NULL);
}
END_TEST

/* --------------------------------------------------------------- wait_for */

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static int wait_for_main(void *arg)
{
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_wait_for(return_arg, (void *)5, &status, COIL_NEVER), 0);
	ck_assert_int_eq(status, 5);
	ck_assert_int_eq(coil_wait_for(return_arg, (void *)-EIO, &status,
				       coil_now() + COIL_SEC(5)), 0);
	ck_assert_int_eq(status, -EIO);
	/* The function's own -ETIMEDOUT is its status, not the call's. */
	ck_assert_int_eq(coil_wait_for(return_arg, (void *)-ETIMEDOUT, &status,
				       COIL_NEVER), 0);
	ck_assert_int_eq(status, -ETIMEDOUT);
	ck_assert_int_eq(coil_wait_for(return_arg, NULL, NULL, COIL_NEVER), 0);
	ck_assert_uint_eq(unreleased_tasks(), 1);
	return 0;
}

START_TEST(test_wait_for_returns_zero_with_the_functions_status)
{
	run(wait_for_main, NULL);
}
END_TEST

static int wait_for_deadline_main(void *arg)
{
	struct kid k = { .nap = COIL_NEVER };
	int64_t deadline = coil_now() + COIL_MSEC(20);
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_wait_for(kid_main, &k, &status, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_int_eq(status, -ECANCELED);
	ck_assert(k.cleaned && k.ended);
	ck_assert_uint_eq(unreleased_tasks(), 1);
	return 0;
}

START_TEST(test_wait_for_past_its_deadline_cancels_and_waits_for_the_cleanup)
{
	run(wait_for_deadline_main, NULL);
}
END_TEST

static int wait_for_passed_main(void *arg)
{
	struct kid k = { .ret = 1 };
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_wait_for(kid_main, &k, &status, 0), -ETIMEDOUT);
	ck_assert_int_eq(status, -ECANCELED);
	ck_assert(!k.ran);
	return 0;
}

START_TEST(test_wait_for_with_a_deadline_passed_never_runs_the_function)
{
	run(wait_for_passed_main, NULL);
}
END_TEST

/* Works on past the deadline in *arg, even when cancelled: nothing may be lost. */
static int stubborn(void *arg)
{
	const int64_t *deadline = arg;
	int ret;

	coil_shield_begin();
	ret = coil_sleep_until(*deadline + COIL_MSEC(1));
	coil_shield_end();
	return ret == 0 ? 7 : ret;
}

static int wait_for_stubborn_main(void *arg)
{
	int64_t deadline = coil_now() + COIL_MSEC(100);
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_wait_for(stubborn, &deadline, &status, deadline), -ETIMEDOUT);
	ck_assert_int_eq(status, 7);
	return 0;
}

START_TEST(test_wait_for_reports_a_result_that_arrived_despite_the_cancel)
{
	run(wait_for_stubborn_main, NULL);
}
END_TEST

struct wait_for_call {
	struct kid k;
	int ret, status;
};

static int call_wait_for(void *arg)
{
	struct wait_for_call *c = arg;

	c->ret = coil_wait_for(kid_main, &c->k, &c->status, COIL_NEVER);
	return 0;
}

static int wait_for_cancel_main(void *arg)
{
	struct wait_for_call c = { .k = { .nap = COIL_NEVER }, .status = INT_MIN };
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, call_wait_for, &c, NULL), 0);
	let_tasks_park();
	ck_assert(c.k.ran);
	coil_cancel(t);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(c.ret, -ECANCELED);
	ck_assert_int_eq(c.status, -ECANCELED);
	ck_assert(c.k.cleaned);
	ck_assert_uint_eq(unreleased_tasks(), 1);
	return 0;
}

START_TEST(test_wait_for_in_a_cancelled_caller_cancels_the_function_and_waits)
{
	run(wait_for_cancel_main, NULL);
}
END_TEST

static void wait_for_from_callback(coil_timer *timer, void *arg)
{
	(void)timer;
	*(int *)arg = coil_wait_for(return_arg, NULL, NULL, COIL_NEVER);
}

static int wait_for_errors_main(void *arg)
{
	coil_timer timer;
	int from_cb = 1;

	(void)arg;
	ck_assert_int_eq(coil_wait_for(NULL, NULL, NULL, COIL_NEVER), -EINVAL);
	coil_timer_init(&timer, wait_for_from_callback, &from_cb);
	coil_timer_arm(&timer, coil_now());
	while (from_cb == 1)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(from_cb, -EPERM);
	return 0;
}

START_TEST(test_wait_for_refuses_a_null_fn_and_a_caller_outside_a_task)
{
	ck_assert_int_eq(coil_wait_for(return_arg, NULL, NULL, COIL_NEVER), -EPERM);
	run(wait_for_errors_main, NULL);
}
END_TEST

/* ------------------------------------------------------------------ retry */

/* Attempt k (from 1) returns results[k - 1], or hangs when it is 1. */
struct flaky {
	int results[16];
	unsigned calls;
	int64_t started[16];
	/* What notify saw. */
	unsigned notified;
	unsigned attempt[16];
	int status[16];
	int64_t delay[16];
	struct kid hang;
};

static int flaky_main(void *arg)
{
	struct flaky *f = arg;
	unsigned k = f->calls++;

	f->started[k] = coil_now();
	if (f->results[k] == 1)
		return kid_main(&f->hang);
	return f->results[k];
}

static void note_retry(unsigned attempt, int status, int64_t delay, void *arg)
{
	struct flaky *f = arg;

	f->attempt[f->notified] = attempt;
	f->status[f->notified] = status;
	f->delay[f->notified++] = delay;
}

static int third_time_main(void *arg)
{
	struct flaky f = { .results = { -EAGAIN, -EIO, 0 } };
	coil_retry_opts o = { .attempts = 5, .backoff_initial = COIL_MSEC(1),
			      .notify = note_retry, .arg = &f };
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_retry(flaky_main, &f, &o, &status, COIL_NEVER), 3);
	ck_assert_int_eq(status, 0);
	ck_assert_uint_eq(f.calls, 3);
	ck_assert_uint_eq(f.notified, 2);
	ck_assert(f.attempt[0] == 1 && f.status[0] == -EAGAIN);
	ck_assert(f.attempt[1] == 2 && f.status[1] == -EIO);
	return 0;
}

START_TEST(test_retry_returns_the_attempts_made_once_one_succeeds)
{
	run(third_time_main, NULL);
}
END_TEST

static int exhaust_main(void *arg)
{
	struct flaky f = { .results = { -EAGAIN, -EIO, -EPIPE, 0 } };
	coil_retry_opts o = { .attempts = 3 };
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_retry(flaky_main, &f, &o, &status, COIL_NEVER), 3);
	ck_assert_int_eq(status, -EPIPE);
	ck_assert_uint_eq(f.calls, 3);
	return 0;
}

START_TEST(test_retry_gives_up_after_its_attempts_with_the_last_error)
{
	run(exhaust_main, NULL);
}
END_TEST

static bool not_einval(int status, void *arg)
{
	(void)arg;
	return status != -EINVAL;
}

static int predicate_main(void *arg)
{
	struct flaky f = { .results = { -EAGAIN, -EINVAL, 0 } };
	struct flaky g = { .results = { -ECANCELED, 0 } };
	coil_retry_opts o = { .attempts = 5, .retryable = not_einval };
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_retry(flaky_main, &f, &o, &status, COIL_NEVER), 2);
	ck_assert_int_eq(status, -EINVAL);
	/* Without a predicate, everything but -ECANCELED is retried. */
	o.retryable = NULL;
	ck_assert_int_eq(coil_retry(flaky_main, &g, &o, &status, COIL_NEVER), 1);
	ck_assert_int_eq(status, -ECANCELED);
	return 0;
}

START_TEST(test_retry_stops_at_an_error_not_worth_retrying)
{
	run(predicate_main, NULL);
}
END_TEST

static int attempt_timeout_main(void *arg)
{
	struct flaky f = { .results = { 1, 6 }, .hang = { .nap = COIL_NEVER } };
	coil_retry_opts o = { .attempts = 3, .attempt_timeout = COIL_MSEC(50) };
	int64_t start = coil_now();
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_retry(flaky_main, &f, &o, &status, COIL_NEVER), 2);
	ck_assert_int_eq(status, 6);
	ck_assert(f.hang.cleaned);
	ck_assert_int_ge(f.started[1] - start, COIL_MSEC(50));
	return 0;
}

START_TEST(test_retry_cancels_an_attempt_past_its_timeout_and_tries_again)
{
	run(attempt_timeout_main, NULL);
}
END_TEST

static int timeout_status_main(void *arg)
{
	struct flaky f = { .results = { 1, 1 }, .hang = { .nap = COIL_NEVER } };
	coil_retry_opts o = { .attempts = 2, .attempt_timeout = COIL_MSEC(2) };
	int status = INT_MIN;

	(void)arg;
	ck_assert_int_eq(coil_retry(flaky_main, &f, &o, &status, COIL_NEVER), 2);
	ck_assert_int_eq(status, -ETIMEDOUT);
	return 0;
}

START_TEST(test_retry_reports_etimedout_for_attempts_that_timed_out)
{
	run(timeout_status_main, NULL);
}
END_TEST

static int backoff_main(void *arg)
{
	struct flaky f = { .results = { -EIO, -EIO, -EIO, -EIO, -EIO, -EIO } };
	coil_retry_opts o = { .attempts = 6, .backoff_initial = COIL_USEC(500),
			      .backoff_max = COIL_MSEC(3), .multiplier = 3,
			      .notify = note_retry, .arg = &f };
	int64_t want[] = { COIL_USEC(500), COIL_USEC(1500), COIL_MSEC(3),
			   COIL_MSEC(3), COIL_MSEC(3) };

	(void)arg;
	ck_assert_int_eq(coil_retry(flaky_main, &f, &o, NULL, COIL_NEVER), 6);
	ck_assert_uint_eq(f.notified, 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(f.delay[i], want[i]);
		/* The sleep never ends early. */
		ck_assert_int_ge(f.started[i + 1] - f.started[i], want[i]);
	}
	return 0;
}

START_TEST(test_retry_backs_off_exponentially_up_to_the_cap)
{
	run(backoff_main, NULL);
}
END_TEST

static void jittered(uint64_t seed, int64_t *delays)
{
	struct flaky f = { .results = { -EIO, -EIO, -EIO, -EIO, -EIO, -EIO, -EIO,
					-EIO, -EIO } };
	coil_retry_opts o = { .attempts = 9, .backoff_initial = COIL_USEC(100),
			      .multiplier = 2, .jitter = 1, .seed = seed,
			      .notify = note_retry, .arg = &f };

	ck_assert_int_eq(coil_retry(flaky_main, &f, &o, NULL, COIL_NEVER), 9);
	ck_assert_uint_eq(f.notified, 8);
	memcpy(delays, f.delay, 8 * sizeof(*delays));
}

static int jitter_main(void *arg)
{
	int64_t a[8], b[8], c[8], cap = COIL_USEC(100);
	bool differ = false;

	(void)arg;
	jittered(42, a);
	jittered(42, b);
	jittered(43, c);
	for (int i = 0; i < 8; i++, cap *= 2) {
		ck_assert(a[i] >= 0 && a[i] <= cap);
		ck_assert_int_eq(a[i], b[i]);
		differ |= a[i] != c[i];
	}
	ck_assert(differ);
	return 0;
}

START_TEST(test_retry_jitter_stays_in_bounds_and_follows_the_seed)
{
	run(jitter_main, NULL);
}
END_TEST

static int overall_deadline_main(void *arg)
{
	struct flaky f = { .results = { -EIO, 0 } };
	struct flaky g = { .results = { 1 }, .hang = { .nap = COIL_NEVER } };
	coil_retry_opts o = { .attempts = 3, .backoff_initial = COIL_SEC(10) };
	int64_t start = coil_now();
	int status = INT_MIN;

	(void)arg;
	/* The 10 s backoff cannot fit in 2 s: give up now, not in 2 s. */
	ck_assert_int_eq(coil_retry(flaky_main, &f, &o, &status, start + COIL_SEC(2)),
			 -ETIMEDOUT);
	ck_assert_int_eq(status, -EIO);
	ck_assert_uint_eq(f.calls, 1);
	ck_assert_int_lt(coil_now() - start, COIL_SEC(1));
	/* The overall deadline cuts an attempt too. */
	start = coil_now();
	ck_assert_int_eq(coil_retry(flaky_main, &g, &o, &status, start + COIL_MSEC(20)),
			 -ETIMEDOUT);
	ck_assert_int_eq(status, -ETIMEDOUT);
	ck_assert_int_ge(coil_now() - start, COIL_MSEC(20));
	ck_assert(g.hang.cleaned);
	return 0;
}

START_TEST(test_retry_never_runs_past_its_overall_deadline)
{
	run(overall_deadline_main, NULL);
}
END_TEST

struct retry_call {
	struct flaky f;
	coil_retry_opts o;
	int ret, status;
};

static int call_retry(void *arg)
{
	struct retry_call *c = arg;

	c->ret = coil_retry(flaky_main, &c->f, &c->o, &c->status, COIL_NEVER);
	return 0;
}

static int retry_cancel_main(void *arg)
{
	struct retry_call sleeping = {
		.f.results = { -EIO, 0 },
		.o = { .attempts = 3, .backoff_initial = COIL_SEC(100) },
	};
	struct retry_call running = {
		.f = { .results = { 1 }, .hang = { .nap = COIL_NEVER } },
		.o = { .attempts = 3 },
	};
	coil_task *a, *b;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&a, call_retry, &sleeping, NULL), 0);
	ck_assert_int_eq(coil_spawn(&b, call_retry, &running, NULL), 0);
	let_tasks_park();
	let_tasks_park();
	ck_assert_uint_eq(sleeping.f.calls, 1);
	ck_assert(running.f.hang.ran);
	coil_cancel(a);
	coil_cancel(b);
	ck_assert_int_eq(join(a), 0);
	ck_assert_int_eq(join(b), 0);
	/* Cancelled in its backoff: the last attempt's error is kept. */
	ck_assert_int_eq(sleeping.ret, -ECANCELED);
	ck_assert_int_eq(sleeping.status, -EIO);
	ck_assert_uint_eq(sleeping.f.calls, 1);
	/* Cancelled in an attempt: the attempt was cancelled and has ended. */
	ck_assert_int_eq(running.ret, -ECANCELED);
	ck_assert_int_eq(running.status, -ECANCELED);
	ck_assert(running.f.hang.cleaned);
	ck_assert_uint_eq(running.f.calls, 1);
	return 0;
}

START_TEST(test_retry_in_a_cancelled_caller_stops_during_a_sleep_or_an_attempt)
{
	run(retry_cancel_main, NULL);
}
END_TEST

static int retry_defaults_main(void *arg)
{
	struct flaky f = { .results = { -EIO, -EIO, -EIO, 0 } };
	int64_t start = coil_now();
	int status;

	(void)arg;
	/* 3 attempts, sleeps of 50-100 ms then 100-200 ms. */
	ck_assert_int_eq(coil_retry(flaky_main, &f, NULL, &status, COIL_NEVER), 3);
	ck_assert_int_eq(status, -EIO);
	ck_assert_int_ge(f.started[1] - f.started[0], COIL_MSEC(50));
	ck_assert_int_ge(f.started[2] - f.started[1], COIL_MSEC(100));
	ck_assert_int_lt(coil_now() - start, COIL_SEC(2));
	return 0;
}

START_TEST(test_retry_without_opts_makes_three_attempts_with_backoff)
{
	run(retry_defaults_main, NULL);
}
END_TEST

static int retry_errors_main(void *arg)
{
	struct flaky f = { .results = { 0 } };
	coil_retry_opts bad[] = {
		{ .attempts = 0 },
		{ .attempts = 1, .attempt_timeout = -1 },
		{ .attempts = 1, .backoff_initial = -1 },
		{ .attempts = 1, .backoff_max = -1 },
		{ .attempts = 1, .multiplier = 0.5 },
		{ .attempts = 1, .jitter = -0.1 },
		{ .attempts = 1, .jitter = 1.5 },
	};
	int status = 12345;

	(void)arg;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(coil_retry(flaky_main, &f, &bad[i], &status, COIL_NEVER),
				 -EINVAL);
	ck_assert_int_eq(coil_retry(NULL, NULL, NULL, &status, COIL_NEVER), -EINVAL);
	ck_assert_uint_eq(f.calls, 0);
	ck_assert_int_eq(status, 12345);
	return 0;
}

START_TEST(test_retry_refuses_bad_opts_and_a_caller_outside_a_task)
{
	ck_assert_int_eq(coil_retry(return_arg, NULL, NULL, NULL, COIL_NEVER), -EPERM);
	run(retry_errors_main, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("primitives_group");

	ADD_TEST(s, test_wait_returns_once_every_child_has_ended_and_releases_them, 10);
	ADD_TEST(s, test_a_childs_handle_stays_valid_until_the_wait, 10);
	ADD_TEST(s, test_the_first_failure_cancels_the_siblings_and_is_the_status, 10);
	ADD_TEST(s, test_siblings_that_have_not_started_never_run_after_a_failure, 10);
	ADD_TEST(s, test_only_the_first_failure_counts, 10);
	ADD_TEST(s, test_a_child_cancelled_by_hand_is_not_a_failure, 10);
	ADD_TEST(s, test_a_cancelled_group_refuses_children_until_the_wait_resets_it, 10);
	ADD_TEST(s, test_the_waits_deadline_cancels_the_children_and_waits_for_their_cleanup, 10);
	ADD_TEST(s, test_a_cancelled_waiter_cancels_its_children_and_still_waits_for_them, 10);
	ADD_TEST(s, test_a_parent_cancelled_before_its_wait_cancels_its_group_there, 10);
	ADD_TEST(s, test_wait_refuses_a_second_waiter_a_child_and_a_callback, 10);
	ADD_TEST(s, test_spawn_refuses_a_null_fn_and_a_detached_child_and_works_from_a_callback, 10);
	ADD_TEST(s, test_destroy_with_children_alive_is_ebusy_and_a_second_destroy_einval, 10);
	ADD_TEST(s, test_a_failure_nobody_waited_for_is_reported_at_destroy, 10);
	ADD_TEST(s, test_a_failure_the_wait_reported_is_not_logged_again, 10);
	ADD_TEST(s, test_a_group_used_from_a_loop_that_does_not_own_it_is_exdev, 10);
	ADD_TEST(s, test_thousands_of_children_twice_in_one_group_are_all_released, 30);
	ADD_TEST(s, test_wait_for_returns_zero_with_the_functions_status, 10);
	ADD_TEST(s, test_wait_for_past_its_deadline_cancels_and_waits_for_the_cleanup, 10);
	ADD_TEST(s, test_wait_for_with_a_deadline_passed_never_runs_the_function, 10);
	ADD_TEST(s, test_wait_for_reports_a_result_that_arrived_despite_the_cancel, 10);
	ADD_TEST(s, test_wait_for_in_a_cancelled_caller_cancels_the_function_and_waits, 10);
	ADD_TEST(s, test_wait_for_refuses_a_null_fn_and_a_caller_outside_a_task, 10);
	ADD_TEST(s, test_retry_returns_the_attempts_made_once_one_succeeds, 10);
	ADD_TEST(s, test_retry_gives_up_after_its_attempts_with_the_last_error, 10);
	ADD_TEST(s, test_retry_stops_at_an_error_not_worth_retrying, 10);
	ADD_TEST(s, test_retry_cancels_an_attempt_past_its_timeout_and_tries_again, 10);
	ADD_TEST(s, test_retry_reports_etimedout_for_attempts_that_timed_out, 10);
	ADD_TEST(s, test_retry_backs_off_exponentially_up_to_the_cap, 10);
	ADD_TEST(s, test_retry_jitter_stays_in_bounds_and_follows_the_seed, 10);
	ADD_TEST(s, test_retry_never_runs_past_its_overall_deadline, 10);
	ADD_TEST(s, test_retry_in_a_cancelled_caller_stops_during_a_sleep_or_an_attempt, 10);
	ADD_TEST(s, test_retry_without_opts_makes_three_attempts_with_backoff, 10);
	ADD_TEST(s, test_retry_refuses_bad_opts_and_a_caller_outside_a_task, 10);
	return test_main(s);
}
