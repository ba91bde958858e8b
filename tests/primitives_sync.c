/*
 * primitives/event.c, semaphore.c, mutex.c, gather.c: events, semaphores,
 * mutexes, wait groups and gather.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "executor/loop.h"
#include "helper.h"

#define ARG(n) ((void *)(intptr_t)(n))

/* ----------------------------------------------------------------- event */

static coil_event ev;

static int wait_event(void *arg)
{
	(void)arg;
	return coil_event_wait(&ev, COIL_NEVER);
}

/* Each waiter appends its number when it wakes. */
static int woke[10000], nwoke;

static int wait_event_in_order(void *arg)
{
	int ret = coil_event_wait(&ev, COIL_NEVER);

	woke[nwoke++] = (int)(intptr_t)arg;
	return ret;
}

static int event_basics(void *arg)
{
	coil_task *t[3];

	(void)arg;
	ck_assert_int_eq(coil_event_init(&ev, "basics"), 0);
	ck_assert(!coil_event_is_set(&ev));
	for (int i = 0; i < 3; i++)
		t[i] = spawn(wait_event, NULL);
	for (int i = 0; i < 3; i++)
		until_parked(t[i]);
	ck_assert_int_eq(coil_event_set(&ev), 0);
	ck_assert(coil_event_is_set(&ev));
	for (int i = 0; i < 3; i++) {
		ck_assert(!parked(t[i]));
		ck_assert_int_eq(join(t[i]), 0);
	}
	/* Set stays set: waits return at once, even with a deadline passed. */
	ck_assert_int_eq(coil_event_wait(&ev, COIL_NEVER), 0);
	ck_assert_int_eq(coil_event_wait(&ev, 0), 0);
	ck_assert_int_eq(coil_event_set(&ev), 0);
	ck_assert_int_eq(coil_event_clear(&ev), 0);
	ck_assert(!coil_event_is_set(&ev));
	ck_assert_int_eq(coil_event_wait(&ev, 0), -ETIMEDOUT);
	ck_assert_int_eq(coil_event_destroy(&ev), 0);
	return 0;
}

START_TEST(test_event_set_wakes_every_waiter_and_stays_set_until_cleared)
{
	run(event_basics, NULL);
}
END_TEST

static int ten_thousand_waiters(void *arg)
{
	static coil_task *t[10000];

	(void)arg;
	nwoke = 0;
	ck_assert_int_eq(coil_event_init(&ev, "many"), 0);
	for (int i = 0; i < 10000; i++)
		ck_assert_int_eq(coil_spawn(&t[i], wait_event_in_order, ARG(i),
					    &(coil_task_opts){ .stack_size = 16384 }), 0);
	until_parked(t[9999]);
	for (int i = 0; i < 10000; i++)
		CHECK(parked(t[i]), "waiter %d not parked", i);
	ck_assert_int_eq(nwoke, 0);
	ck_assert_int_eq(coil_event_set(&ev), 0);
	for (int i = 0; i < 10000; i++)
		CHECK(join(t[i]) == 0, "waiter %d failed", i);
	ck_assert_int_eq(nwoke, 10000);
	for (int i = 0; i < 10000; i++)
		CHECK(woke[i] == i, "wake %d was waiter %d", i, woke[i]);
	ck_assert_int_eq(coil_event_destroy(&ev), 0);
	return 0;
}

START_TEST(test_ten_thousand_waiters_on_one_event_all_wake_in_order)
{
	run(ten_thousand_waiters, NULL);
}
END_TEST

static int set_then_clear(void *arg)
{
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_event_init(&ev, "pulse"), 0);
	t = spawn(wait_event, NULL);
	until_parked(t);
	ck_assert_int_eq(coil_event_set(&ev), 0);
	ck_assert_int_eq(coil_event_clear(&ev), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(coil_event_destroy(&ev), 0);
	return 0;
}

START_TEST(test_an_event_waiter_woken_by_set_stays_woken_if_cleared_before_it_runs)
{
	run(set_then_clear, NULL);
}
END_TEST

static int wait_event_briefly(void *arg)
{
	(void)arg;
	return coil_event_wait(&ev, coil_now() + COIL_MSEC(5));
}

static int event_deadline_and_cancel(void *arg)
{
	int64_t start = coil_now();
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_event_init(&ev, "interrupted"), 0);
	ck_assert_int_eq(coil_event_wait(&ev, start + COIL_MSEC(5)), -ETIMEDOUT);
	ck_assert_int_ge(coil_now() - start, COIL_MSEC(5));
	/* The timed-out waiter left the queue: destroy is not -EBUSY. */
	t = spawn(wait_event_briefly, NULL);
	ck_assert_int_eq(join(t), -ETIMEDOUT);
	t = spawn(wait_event, NULL);
	until_parked(t);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	/* A set now wakes nobody: nothing of the two waiters is left. */
	ck_assert_int_eq(coil_event_set(&ev), 0);
	ck_assert_int_eq(coil_event_destroy(&ev), 0);
	return 0;
}

START_TEST(test_event_wait_deadline_and_cancel_leave_no_waiter_behind)
{
	run(event_deadline_and_cancel, NULL);
}
END_TEST

static int cancelled_waits(void *arg)
{
	(void)arg;
	coil_cancel(coil_current());
	return coil_event_wait(&ev, COIL_NEVER);
}

static int event_wait_when_cancelled(void *arg)
{
	(void)arg;
	ck_assert_int_eq(coil_event_init(&ev, "set"), 0);
	ck_assert_int_eq(coil_event_set(&ev), 0);
	ck_assert_int_eq(join(spawn(cancelled_waits, NULL)), -ECANCELED);
	ck_assert_int_eq(coil_event_destroy(&ev), 0);
	return 0;
}

START_TEST(test_event_wait_in_a_cancelled_task_is_ecanceled_even_when_set)
{
	run(event_wait_when_cancelled, NULL);
}
END_TEST

/* ---- misuse, the same for every primitive of this file */

static void wait_outside(void *arg)
{
	*(int *)arg = coil_event_wait(&ev, COIL_NEVER);
}

static int set_event(void *arg)
{
	(void)arg;
	return coil_event_set(&ev);
}

static int event_misuse(void *arg)
{
	coil_task *t;
	int ret = 0;

	(void)arg;
	capture_log();
	ck_assert_int_eq(coil_event_init(&ev, "doorbell"), 0);
	outside_task(wait_outside, &ret);
	ck_assert_int_eq(ret, -EPERM);
	ck_assert_int_eq(in_another_loop(set_event, NULL), -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_event_set on event 'doorbell' "
			  "from a loop that does not own it"));
	ck_assert(!coil_event_is_set(&ev));
	t = spawn(wait_event, NULL);
	until_parked(t);
	ck_assert_int_eq(coil_event_destroy(&ev), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "event 'doorbell' while tasks wait"));
	/* Still usable. */
	ck_assert_int_eq(coil_event_set(&ev), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(coil_event_destroy(&ev), 0);
	ck_assert_int_eq(coil_event_destroy(&ev), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "destroyed already"));
	ck_assert_int_eq(coil_event_set(&ev), -EINVAL);
	ck_assert_int_eq(coil_event_clear(&ev), -EINVAL);
	ck_assert_int_eq(coil_event_wait(&ev, COIL_NEVER), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_event_wait on a destroyed object"));
	return 0;
}

START_TEST(test_event_misuse_is_reported_with_its_name)
{
	run(event_misuse, NULL);
	/* Initialised outside a loop, used from a thread that has none. */
	ck_assert_int_eq(coil_event_init(&ev, "no loop"), 0);
	ck_assert_int_eq(in_a_thread_without_loop(set_event, NULL), -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "event 'no loop' from a thread with no loop"));
}
END_TEST

static int init_event(void *arg)
{
	(void)arg;
	return coil_event_init(&ev, "from an old loop");
}

static int set_event_status(void *arg)
{
	(void)arg;
	return coil_event_set(&ev);
}

/* A later loop of the same thread may sit at the old one's address. */
START_TEST(test_an_event_of_a_loop_that_ended_is_exdev_in_the_next_loop)
{
	int status = 0;

	capture_log();
	ck_assert_int_eq(coil_run(init_event, NULL, &status), 0);
	ck_assert_int_eq(status, 0);
	ck_assert_int_eq(coil_run(set_event_status, NULL, &status), 0);
	ck_assert_int_eq(status, -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "event 'from an old loop' from a later "
			  "loop (its own has ended)"));
}
END_TEST

/* ------------------------------------------------------------- semaphore */

static coil_sem sem;

static int acquire(void *arg)
{
	int ret = coil_sem_acquire(&sem, COIL_NEVER);

	if (arg)
		woke[nwoke++] = (int)(intptr_t)arg;
	return ret;
}

static int sem_counting(void *arg)
{
	(void)arg;
	ck_assert_int_eq(coil_sem_init(&sem, 2, "pool"), 0);
	ck_assert_uint_eq(coil_sem_value(&sem), 2);
	ck_assert_int_eq(coil_sem_try_acquire(&sem), 0);
	ck_assert_int_eq(coil_sem_acquire(&sem, 0), 0);
	ck_assert_uint_eq(coil_sem_value(&sem), 0);
	ck_assert_int_eq(coil_sem_try_acquire(&sem), -EAGAIN);
	ck_assert_int_eq(coil_sem_acquire(&sem, 0), -ETIMEDOUT);
	ck_assert_int_eq(coil_sem_release(&sem), 0);
	ck_assert_int_eq(coil_sem_release(&sem), 0);
	ck_assert_int_eq(coil_sem_release(&sem), 0);
	ck_assert_uint_eq(coil_sem_value(&sem), 3);
	ck_assert_int_eq(coil_sem_destroy(&sem), 0);
	ck_assert_int_eq(coil_sem_init(&sem, UINT_MAX, "full"), 0);
	ck_assert_int_eq(coil_sem_release(&sem), -EOVERFLOW);
	ck_assert_uint_eq(coil_sem_value(&sem), UINT_MAX);
	ck_assert_int_eq(coil_sem_destroy(&sem), 0);
	return 0;
}

START_TEST(test_semaphore_counts_permits_and_try_acquire_is_eagain_at_zero)
{
	run(sem_counting, NULL);
}
END_TEST

static int sem_fifo(void *arg)
{
	coil_task *t[5];

	(void)arg;
	nwoke = 0;
	ck_assert_int_eq(coil_sem_init(&sem, 0, "fifo"), 0);
	for (int i = 0; i < 5; i++) {
		t[i] = spawn(acquire, ARG(i + 1));
		until_parked(t[i]);
	}
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(coil_sem_release(&sem), 0);
		/* Handed over: no late arrival can take it. */
		ck_assert_uint_eq(coil_sem_value(&sem), 0);
		ck_assert_int_eq(coil_sem_try_acquire(&sem), -EAGAIN);
		ck_assert_int_eq(coil_sem_acquire(&sem, 0), -ETIMEDOUT);
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_int_eq(nwoke, i + 1);
		ck_assert_int_eq(woke[i], i + 1);
	}
	ck_assert_int_eq(coil_sem_destroy(&sem), 0);
	return 0;
}

START_TEST(test_semaphore_hands_permits_to_waiters_in_order_and_nobody_barges)
{
	run(sem_fifo, NULL);
}
END_TEST

static int acquire_briefly(void *arg)
{
	(void)arg;
	return coil_sem_acquire(&sem, coil_now() + COIL_MSEC(5));
}

static int acquire_cancelled(void *arg)
{
	(void)arg;
	coil_cancel(coil_current());
	return coil_sem_acquire(&sem, COIL_NEVER);
}

static int sem_interrupted(void *arg)
{
	coil_task *t, *late;

	(void)arg;
	ck_assert_int_eq(coil_sem_init(&sem, 0, "interrupted"), 0);
	ck_assert_int_eq(join(spawn(acquire_briefly, NULL)), -ETIMEDOUT);
	t = spawn(acquire, NULL);
	until_parked(t);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	/* Neither left a waiter that would swallow the next permit. */
	ck_assert_int_eq(coil_sem_release(&sem), 0);
	ck_assert_uint_eq(coil_sem_value(&sem), 1);
	/* A cancelled task takes nothing, even with a permit free. */
	ck_assert_int_eq(join(spawn(acquire_cancelled, NULL)), -ECANCELED);
	ck_assert_uint_eq(coil_sem_value(&sem), 1);
	ck_assert_int_eq(coil_sem_try_acquire(&sem), 0);
	/* Cancelled after the permit was handed over: it keeps the permit. */
	t = spawn(acquire, NULL);
	late = spawn(acquire, NULL);
	until_parked(late);
	ck_assert_int_eq(coil_sem_release(&sem), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(coil_cancel(late), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(join(late), -ECANCELED);
	ck_assert_uint_eq(coil_sem_value(&sem), 0);
	ck_assert_int_eq(coil_sem_destroy(&sem), 0);
	return 0;
}

START_TEST(test_semaphore_acquire_deadline_and_cancel_lose_no_permit)
{
	run(sem_interrupted, NULL);
}
END_TEST

static void acquire_outside(void *arg)
{
	int *ret = arg;

	ret[0] = coil_sem_acquire(&sem, COIL_NEVER);
	ret[1] = coil_sem_try_acquire(&sem);
	ret[2] = coil_sem_release(&sem);
}

static int release_sem(void *arg)
{
	(void)arg;
	return coil_sem_release(&sem);
}

static int sem_misuse(void *arg)
{
	int ret[3] = { 0 };
	coil_task *t;

	(void)arg;
	capture_log();
	ck_assert_int_eq(coil_sem_init(&sem, 1, "tokens"), 0);
	outside_task(acquire_outside, ret);
	ck_assert_int_eq(ret[0], -EPERM);
	ck_assert_int_eq(ret[1], 0); /* try and release need no task */
	ck_assert_int_eq(ret[2], 0);
	ck_assert_int_eq(in_another_loop(release_sem, NULL), -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_sem_release on semaphore 'tokens' "
			  "from a loop that does not own it"));
	ck_assert_uint_eq(coil_sem_value(&sem), 1);
	ck_assert_int_eq(coil_sem_acquire(&sem, COIL_NEVER), 0);
	t = spawn(acquire, NULL);
	until_parked(t);
	ck_assert_int_eq(coil_sem_destroy(&sem), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "semaphore 'tokens' while tasks wait"));
	ck_assert_int_eq(coil_sem_release(&sem), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(coil_sem_destroy(&sem), 0);
	ck_assert_int_eq(coil_sem_destroy(&sem), -EINVAL);
	ck_assert_int_eq(coil_sem_acquire(&sem, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_sem_try_acquire(&sem), -EINVAL);
	ck_assert_int_eq(coil_sem_release(&sem), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_sem_release on a destroyed object"));
	return 0;
}

START_TEST(test_semaphore_misuse_is_reported_with_its_name)
{
	run(sem_misuse, NULL);
}
END_TEST

/* ----------------------------------------------------------------- mutex */

static coil_mutex mtx;

static int lock(void *arg)
{
	int ret = coil_mutex_lock(&mtx, COIL_NEVER);

	if (ret == 0) {
		if (arg)
			woke[nwoke++] = (int)(intptr_t)arg;
		CHECK(mtx.owner == coil_current(), "woken without the mutex");
		ret = coil_mutex_unlock(&mtx);
	}
	return ret;
}

static int lock_and_hold(void *arg)
{
	(void)arg;
	return coil_mutex_lock(&mtx, COIL_NEVER);
}

static int try_lock(void *arg)
{
	(void)arg;
	return coil_mutex_try_lock(&mtx);
}

static int unlock(void *arg)
{
	(void)arg;
	return coil_mutex_unlock(&mtx);
}

static int mutex_ownership(void *arg)
{
	coil_task *t;

	(void)arg;
	capture_log();
	ck_assert_int_eq(coil_mutex_init(&mtx, "state"), 0);
	ck_assert_int_eq(coil_mutex_unlock(&mtx), -EPERM);
	ck_assert(log_has(COIL_LOG_ERROR, "mutex 'state', which is not locked"));
	ck_assert_int_eq(coil_mutex_lock(&mtx, COIL_NEVER), 0);
	ck_assert_int_eq(coil_mutex_lock(&mtx, COIL_NEVER), -EDEADLK);
	ck_assert_int_eq(coil_mutex_try_lock(&mtx), -EDEADLK);
	ck_assert_int_eq(join(spawn(try_lock, NULL)), -EBUSY);
	ck_assert_int_eq(join(spawn(unlock, NULL)), -EPERM);
	ck_assert(log_has(COIL_LOG_ERROR, "mutex 'state', which the caller does not hold"));
	ck_assert_int_eq(coil_mutex_unlock(&mtx), 0);
	ck_assert_int_eq(coil_mutex_try_lock(&mtx), 0);
	ck_assert_int_eq(coil_mutex_unlock(&mtx), 0);
	/* Held by a task that then ends: still held, and destroy says by whom. */
	t = spawn(lock_and_hold, NULL);
	ck_assert_int_eq(coil_task_state(t), COIL_TASK_PENDING);
	while (coil_task_state(t) != COIL_TASK_COMPLETED)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_mutex_try_lock(&mtx), -EBUSY);
	ck_assert_int_eq(coil_mutex_destroy(&mtx), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "mutex 'state' is held by task 'task-"));
	ck_assert_int_eq(join(t), 0);
	return 0;
}

START_TEST(test_mutex_is_owned_unlock_by_another_is_eperm_relock_is_edeadlk)
{
	run(mutex_ownership, NULL);
}
END_TEST

static int mutex_fifo(void *arg)
{
	coil_task *t[4];

	(void)arg;
	nwoke = 0;
	ck_assert_int_eq(coil_mutex_init(&mtx, "fifo"), 0);
	ck_assert_int_eq(coil_mutex_lock(&mtx, COIL_NEVER), 0);
	for (int i = 0; i < 4; i++) {
		t[i] = spawn(lock, ARG(i + 1));
		until_parked(t[i]);
	}
	ck_assert_int_eq(coil_mutex_unlock(&mtx), 0);
	/* Handed to the first waiter, which has not run yet. */
	ck_assert_ptr_eq(mtx.owner, t[0]);
	ck_assert_int_eq(coil_mutex_try_lock(&mtx), -EBUSY);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(join(t[i]), 0);
	ck_assert_int_eq(nwoke, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(woke[i], i + 1);
	ck_assert_ptr_null(mtx.owner);
	ck_assert_int_eq(coil_mutex_destroy(&mtx), 0);
	return 0;
}

START_TEST(test_mutex_unlock_hands_it_to_the_waiters_in_order)
{
	run(mutex_fifo, NULL);
}
END_TEST

static int lock_briefly(void *arg)
{
	(void)arg;
	return coil_mutex_lock(&mtx, coil_now() + COIL_MSEC(5));
}

static int lock_cancelled(void *arg)
{
	(void)arg;
	coil_cancel(coil_current());
	return coil_mutex_lock(&mtx, COIL_NEVER);
}

static int mutex_interrupted(void *arg)
{
	coil_task *t, *next;

	(void)arg;
	ck_assert_int_eq(coil_mutex_init(&mtx, "interrupted"), 0);
	ck_assert_int_eq(join(spawn(lock_cancelled, NULL)), -ECANCELED);
	ck_assert_ptr_null(mtx.owner);
	ck_assert_int_eq(coil_mutex_lock(&mtx, COIL_NEVER), 0);
	ck_assert_int_eq(join(spawn(lock_briefly, NULL)), -ETIMEDOUT);
	t = spawn(lock, NULL);
	until_parked(t);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	/* No waiter is left: the unlock frees it. */
	ck_assert_int_eq(coil_mutex_unlock(&mtx), 0);
	ck_assert_ptr_null(mtx.owner);
	/* Cancelled after the hand-over: it holds the mutex, and unlocks it. */
	ck_assert_int_eq(coil_mutex_lock(&mtx, COIL_NEVER), 0);
	t = spawn(lock, NULL);
	next = spawn(lock, NULL);
	until_parked(next);
	ck_assert_int_eq(coil_mutex_unlock(&mtx), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(join(next), 0);
	ck_assert_ptr_null(mtx.owner);
	ck_assert_int_eq(coil_mutex_destroy(&mtx), 0);
	return 0;
}

START_TEST(test_mutex_lock_deadline_and_cancel_leave_it_consistent)
{
	run(mutex_interrupted, NULL);
}
END_TEST

static void lock_outside(void *arg)
{
	int *ret = arg;

	ret[0] = coil_mutex_lock(&mtx, COIL_NEVER);
	ret[1] = coil_mutex_try_lock(&mtx);
	ret[2] = coil_mutex_unlock(&mtx);
}

static int mutex_misuse(void *arg)
{
	int ret[3] = { 0 };
	coil_task *t;

	(void)arg;
	capture_log();
	ck_assert_int_eq(coil_mutex_init(&mtx, "config"), 0);
	outside_task(lock_outside, ret);
	ck_assert_int_eq(ret[0], -EPERM);
	ck_assert_int_eq(ret[1], -EPERM);
	ck_assert_int_eq(ret[2], -EPERM);
	ck_assert_int_eq(in_another_loop(lock_and_hold, NULL), -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_mutex_lock on mutex 'config' "
			  "from a loop that does not own it"));
	ck_assert_int_eq(coil_mutex_lock(&mtx, COIL_NEVER), 0);
	t = spawn(lock, NULL);
	until_parked(t);
	ck_assert_int_eq(coil_mutex_destroy(&mtx), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "mutex 'config' while tasks wait"));
	ck_assert_int_eq(coil_mutex_unlock(&mtx), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(coil_mutex_destroy(&mtx), 0);
	ck_assert_int_eq(coil_mutex_destroy(&mtx), -EINVAL);
	ck_assert_int_eq(coil_mutex_lock(&mtx, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_mutex_try_lock(&mtx), -EINVAL);
	ck_assert_int_eq(coil_mutex_unlock(&mtx), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_mutex_unlock on a destroyed object"));
	return 0;
}

START_TEST(test_mutex_misuse_is_reported_with_its_name)
{
	run(mutex_misuse, NULL);
}
END_TEST

/* ------------------------------------------------------------ wait group */

static coil_wait_group wg;

static int wait_group(void *arg)
{
	(void)arg;
	return coil_wait_group_wait(&wg, COIL_NEVER);
}

static int work_then_done(void *arg)
{
	int n = (int)(intptr_t)arg;

	while (n--)
		ck_assert_int_eq(coil_yield(), 0);
	return coil_wait_group_done(&wg);
}

static int wait_group_counts(void *arg)
{
	coil_task *waiter[2], *worker[3];

	(void)arg;
	capture_log();
	ck_assert_int_eq(coil_wait_group_init(&wg, "jobs"), 0);
	ck_assert_int_eq(coil_wait_group_wait(&wg, 0), 0);
	ck_assert_int_eq(coil_wait_group_add(&wg, 3), 0);
	for (int i = 0; i < 2; i++)
		waiter[i] = spawn(wait_group, NULL);
	for (int i = 0; i < 3; i++)
		worker[i] = spawn(work_then_done, ARG(3 * i));
	for (int i = 0; i < 3; i++) {
		ck_assert(parked(waiter[0]) || i == 0);
		ck_assert_int_eq(join(worker[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(join(waiter[i]), 0);
	ck_assert_int_eq(wg.count, 0);
	ck_assert_int_eq(coil_wait_group_done(&wg), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "wait group 'jobs': count 0 would go "
			  "below zero by -1"));
	ck_assert_int_eq(coil_wait_group_add(&wg, 2), 0);
	ck_assert_int_eq(coil_wait_group_add(&wg, -3), -EINVAL);
	ck_assert_int_eq(wg.count, 2);
	ck_assert_int_eq(coil_wait_group_add(&wg, -2), 0);
	ck_assert_int_eq(coil_wait_group_destroy(&wg), 0);
	return 0;
}

START_TEST(test_wait_group_wakes_its_waiters_when_the_count_reaches_zero)
{
	run(wait_group_counts, NULL);
}
END_TEST

static int wait_group_briefly(void *arg)
{
	(void)arg;
	return coil_wait_group_wait(&wg, coil_now() + COIL_MSEC(5));
}

static int wait_group_cancelled(void *arg)
{
	(void)arg;
	coil_cancel(coil_current());
	return coil_wait_group_wait(&wg, COIL_NEVER);
}

static void wait_group_outside(void *arg)
{
	*(int *)arg = coil_wait_group_wait(&wg, COIL_NEVER);
}

static int add_to_group(void *arg)
{
	(void)arg;
	return coil_wait_group_add(&wg, 1);
}

static int wait_group_interrupted(void *arg)
{
	coil_task *t;
	int ret = 0;

	(void)arg;
	capture_log();
	ck_assert_int_eq(coil_wait_group_init(&wg, "pending"), 0);
	ck_assert_int_eq(coil_wait_group_add(&wg, 1), 0);
	ck_assert_int_eq(join(spawn(wait_group_briefly, NULL)), -ETIMEDOUT);
	ck_assert_int_eq(join(spawn(wait_group_cancelled, NULL)), -ECANCELED);
	t = spawn(wait_group, NULL);
	until_parked(t);
	ck_assert_int_eq(coil_wait_group_destroy(&wg), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "wait group 'pending' while tasks wait"));
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), -ECANCELED);
	outside_task(wait_group_outside, &ret);
	ck_assert_int_eq(ret, -EPERM);
	ck_assert_int_eq(in_another_loop(add_to_group, NULL), -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_wait_group_add on wait group "
			  "'pending' from a loop that does not own it"));
	ck_assert_int_eq(wg.count, 1);
	ck_assert_int_eq(coil_wait_group_destroy(&wg), 0);
	ck_assert_int_eq(coil_wait_group_destroy(&wg), -EINVAL);
	ck_assert_int_eq(coil_wait_group_add(&wg, 1), -EINVAL);
	ck_assert_int_eq(coil_wait_group_wait(&wg, COIL_NEVER), -EINVAL);
	return 0;
}

START_TEST(test_wait_group_deadline_cancel_and_misuse)
{
	run(wait_group_interrupted, NULL);
}
END_TEST

/* ---------------------------------------------------------------- gather */

/* Yields n times, then returns n - 10 (so n < 10 fails); or a yield's error. */
static int yield_then_return(void *arg)
{
	int n = (int)(intptr_t)arg, ret;

	for (int i = 0; i < n; i++) {
		ret = coil_yield();
		if (ret < 0)
			return ret;
	}
	return n - 10;
}

/* Sleeps forever; once cancelled, does shielded cleanup that parks. */
static int cleanup_done;

static int sleep_then_clean_up(void *arg)
{
	int ret = coil_sleep_until(COIL_NEVER);

	(void)arg;
	coil_shield_begin();
	CHECK(coil_yield() == 0, "shielded yield failed");
	CHECK(coil_sleep(COIL_USEC(100)) == 0, "shielded sleep failed");
	coil_shield_end();
	cleanup_done++;
	return ret;
}

static int gather_statuses(void *arg)
{
	coil_task *t[40];
	int statuses[40], before = unreleased_tasks();

	(void)arg;
	ck_assert_int_eq(coil_gather(NULL, 0, NULL, 0, COIL_NEVER), 0);
	/* More than fit in the frame, in reverse order of ending. */
	for (int i = 0; i < 40; i++)
		t[i] = spawn(yield_then_return, ARG(50 - i));
	ck_assert_int_eq(coil_gather(t, 40, statuses, 0, COIL_NEVER), 0);
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(statuses[i], 40 - i);
	ck_assert_uint_eq(unreleased_tasks(), before);
	/* Failures without fail-fast cancel nothing; some ended before. */
	for (int i = 0; i < 4; i++)
		t[i] = spawn(yield_then_return, ARG(i * 5));
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_task_state(t[0]), COIL_TASK_FAILED);
	ck_assert_int_eq(coil_gather(t, 4, statuses, 0, COIL_NEVER), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(statuses[i], i * 5 - 10);
	/* statuses may be NULL. */
	for (int i = 0; i < 3; i++)
		t[i] = spawn(yield_then_return, ARG(i));
	ck_assert_int_eq(coil_gather(t, 3, NULL, 0, COIL_NEVER), 0);
	ck_assert_uint_eq(unreleased_tasks(), before);
	return 0;
}

START_TEST(test_gather_waits_for_every_task_and_collects_each_status)
{
	run(gather_statuses, NULL);
}
END_TEST

static int gather_fail_fast(void *arg)
{
	coil_task *t[4];
	int statuses[4], before = unreleased_tasks();

	(void)arg;
	cleanup_done = 0;
	t[0] = spawn(sleep_then_clean_up, NULL);
	t[1] = spawn(yield_then_return, ARG(20)); /* would succeed, later */
	t[2] = spawn(yield_then_return, ARG(3));  /* fails first */
	t[3] = spawn(sleep_then_clean_up, NULL);
	ck_assert_int_eq(coil_gather(t, 4, statuses, COIL_GATHER_FAIL_FAST,
				     COIL_NEVER), 0);
	ck_assert_int_eq(statuses[0], -ECANCELED);
	ck_assert_int_eq(statuses[1], -ECANCELED);
	ck_assert_int_eq(statuses[2], -7);
	ck_assert_int_eq(statuses[3], -ECANCELED);
	/* It waited for the cancelled tasks to finish cleaning up. */
	ck_assert_int_eq(cleanup_done, 2);
	ck_assert_uint_eq(unreleased_tasks(), before);
	/* A task that had failed before the call counts too. */
	t[0] = spawn(yield_then_return, ARG(0));
	ck_assert_int_eq(coil_yield(), 0);
	t[1] = spawn(sleep_then_clean_up, NULL);
	ck_assert_int_eq(coil_gather(t, 2, statuses, COIL_GATHER_FAIL_FAST,
				     COIL_NEVER), 0);
	ck_assert_int_eq(statuses[0], -10);
	ck_assert_int_eq(statuses[1], -ECANCELED);
	/* All succeeding: nothing is cancelled. */
	for (int i = 0; i < 4; i++)
		t[i] = spawn(yield_then_return, ARG(10 + i));
	ck_assert_int_eq(coil_gather(t, 4, statuses, COIL_GATHER_FAIL_FAST,
				     COIL_NEVER), 0);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(statuses[i], i);
	return 0;
}

START_TEST(test_gather_fail_fast_cancels_the_others_and_waits_for_them)
{
	run(gather_fail_fast, NULL);
}
END_TEST

struct gatherer {
	coil_task **tasks;
	unsigned n;
	unsigned flags;
	int64_t deadline;
};

static int gather_in_task(void *arg)
{
	struct gatherer *g = arg;

	return coil_gather(g->tasks, g->n, NULL, g->flags, g->deadline);
}

static int gather_interrupted(void *arg)
{
	coil_task *t[40], *g;
	int statuses[40];
	struct gatherer ga = { t, 40, 0, 0 };

	(void)arg;
	for (int i = 0; i < 40; i++)
		t[i] = spawn(i % 2 ? yield_then_return : sleep_then_clean_up,
			     ARG(10 + i));
	ga.deadline = coil_now() + COIL_MSEC(5);
	ck_assert_int_eq(coil_gather(t, 40, statuses, 0, ga.deadline), -ETIMEDOUT);
	/* Every task is still there, unreleased, and joinable. */
	for (int i = 1; i < 40; i += 2) {
		ck_assert_int_eq(join(t[i]), i);
		t[i] = spawn(yield_then_return, ARG(10 + i));
	}
	/* Cancel the gathering task. */
	ga.deadline = COIL_NEVER;
	g = spawn(gather_in_task, &ga);
	until_parked(g);
	ck_assert_int_eq(coil_cancel(g), 0);
	ck_assert_int_eq(join(g), -ECANCELED);
	/* Fail-fast had fired (task 0 ... was not failed: none cancelled). */
	for (int i = 0; i < 40; i += 2)
		ck_assert_int_eq(coil_task_state(t[i]), COIL_TASK_RUNNING);
	/* The watches are gone: these endings wake nobody. */
	for (int i = 0; i < 40; i += 2)
		ck_assert_int_eq(coil_cancel(t[i]), 0);
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(join(t[i]), i % 2 ? i : -ECANCELED);
	/* A cancelled gatherer with nothing to wait for still gets -ECANCELED. */
	t[0] = spawn(yield_then_return, ARG(10));
	ga.n = 1;
	g = spawn(gather_in_task, &ga);
	ck_assert_int_eq(coil_cancel(g), 0);
	ck_assert_int_eq(join(g), -ECANCELED);
	ck_assert_int_eq(join(t[0]), 0);
	return 0;
}

START_TEST(test_gather_deadline_and_cancel_leave_every_task_joinable)
{
	run(gather_interrupted, NULL);
}
END_TEST

static int join_in_task(void *arg);

static int wait_on(void *arg)
{
	return coil_event_wait(arg, COIL_NEVER);
}

/* While a gather waits for it, a task is the gather's alone. */
static int gathered_tasks_are_claimed(void *arg)
{
	coil_event go;
	coil_task *t, *g, *other;
	struct gatherer ga = { &t, 1, 0, COIL_NEVER };

	(void)arg;
	ck_assert_int_eq(coil_event_init(&go, "go"), 0);
	t = spawn(wait_on, &go);
	g = spawn(gather_in_task, &ga);
	until_parked(g);
	ck_assert_int_eq(coil_join(t, NULL, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(coil_detach(t), -EBUSY);
	ck_assert_int_eq(coil_gather(&t, 1, NULL, 0, COIL_NEVER), -EBUSY);
	/* Released once, by the gather: the handle list stays sound. */
	ck_assert_int_eq(coil_event_set(&go), 0);
	ck_assert_int_eq(join(g), 0);
	/* A gather cut short gives the claim back. */
	ck_assert_int_eq(coil_event_clear(&go), 0);
	t = spawn(wait_on, &go);
	ck_assert_int_eq(coil_gather(&t, 1, NULL, 0, coil_now() + COIL_MSEC(1)),
			 -ETIMEDOUT);
	other = spawn(join_in_task, t);
	ck_assert_int_eq(coil_event_set(&go), 0);
	ck_assert_int_eq(join(other), 0);
	ck_assert_int_eq(coil_event_destroy(&go), 0);
	return 0;
}

START_TEST(test_a_gathered_task_cannot_be_joined_detached_or_gathered_again)
{
	run(gathered_tasks_are_claimed, NULL);
}
END_TEST

static void gather_outside(void *arg)
{
	*(int *)arg = coil_gather(NULL, 0, NULL, 0, COIL_NEVER);
}

static int join_in_task(void *arg)
{
	return coil_join(arg, NULL, COIL_NEVER);
}

static int gather_refusals(void *arg)
{
	coil_task *t[3], *joiner, *d;
	int ret = 0;

	(void)arg;
	outside_task(gather_outside, &ret);
	ck_assert_int_eq(ret, -EPERM);
	t[0] = spawn(yield_then_return, ARG(10));
	t[1] = NULL;
	ck_assert_int_eq(coil_gather(t, 2, NULL, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_gather(NULL, 1, NULL, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_gather(t, 1, NULL, 4, COIL_NEVER), -EINVAL);
	t[1] = t[0];
	ck_assert_int_eq(coil_gather(t, 2, NULL, 0, COIL_NEVER), -EINVAL);
	t[1] = coil_current();
	ck_assert_int_eq(coil_gather(t, 2, NULL, 0, COIL_NEVER), -EDEADLK);
	ck_assert_int_eq(coil_spawn(&d, yield_then_return, ARG(10),
				    &(coil_task_opts){ .detached = true }), 0);
	t[1] = d;
	ck_assert_int_eq(coil_gather(t, 2, NULL, 0, COIL_NEVER), -EINVAL);
	t[1] = spawn(yield_then_return, ARG(11));
	joiner = spawn(join_in_task, t[1]);
	until_parked(joiner);
	ck_assert_int_eq(coil_gather(t, 2, NULL, 0, COIL_NEVER), -EBUSY);
	/* Nothing was touched by the refusals. */
	ck_assert_int_eq(join(joiner), 0);
	ck_assert_int_eq(join(t[0]), 0);
	return 0;
}

START_TEST(test_gather_refuses_what_join_refuses_and_duplicates)
{
	run(gather_refusals, NULL);
}
END_TEST

static int foreign_task;
static coil_task *foreign_handle;

static int gather_foreign(void *arg)
{
	(void)arg;
	return coil_gather(&foreign_handle, 1, NULL, 0, COIL_NEVER);
}

static int gather_another_loops_task(void *arg)
{
	(void)arg;
	foreign_handle = spawn(yield_then_return, ARG(10));
	foreign_task = in_another_loop(gather_foreign, NULL);
	ck_assert_int_eq(foreign_task, -EXDEV);
	ck_assert_int_eq(join(foreign_handle), 0);
	return 0;
}

START_TEST(test_gather_refuses_a_task_of_another_loop)
{
	run(gather_another_loops_task, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("primitives_sync");

	ADD_TEST(s, test_event_set_wakes_every_waiter_and_stays_set_until_cleared, 10);
	ADD_TEST(s, test_ten_thousand_waiters_on_one_event_all_wake_in_order, 60);
	ADD_TEST(s, test_an_event_waiter_woken_by_set_stays_woken_if_cleared_before_it_runs, 10);
	ADD_TEST(s, test_event_wait_deadline_and_cancel_leave_no_waiter_behind, 10);
	ADD_TEST(s, test_event_wait_in_a_cancelled_task_is_ecanceled_even_when_set, 10);
	ADD_TEST(s, test_event_misuse_is_reported_with_its_name, 10);
	ADD_TEST(s, test_an_event_of_a_loop_that_ended_is_exdev_in_the_next_loop, 10);
	ADD_TEST(s, test_semaphore_counts_permits_and_try_acquire_is_eagain_at_zero, 10);
	ADD_TEST(s, test_semaphore_hands_permits_to_waiters_in_order_and_nobody_barges, 10);
	ADD_TEST(s, test_semaphore_acquire_deadline_and_cancel_lose_no_permit, 10);
	ADD_TEST(s, test_semaphore_misuse_is_reported_with_its_name, 10);
	ADD_TEST(s, test_mutex_is_owned_unlock_by_another_is_eperm_relock_is_edeadlk, 10);
	ADD_TEST(s, test_mutex_unlock_hands_it_to_the_waiters_in_order, 10);
	ADD_TEST(s, test_mutex_lock_deadline_and_cancel_leave_it_consistent, 10);
	ADD_TEST(s, test_mutex_misuse_is_reported_with_its_name, 10);
	ADD_TEST(s, test_wait_group_wakes_its_waiters_when_the_count_reaches_zero, 10);
	ADD_TEST(s, test_wait_group_deadline_cancel_and_misuse, 10);
	ADD_TEST(s, test_gather_waits_for_every_task_and_collects_each_status, 10);
	ADD_TEST(s, test_a_gathered_task_cannot_be_joined_detached_or_gathered_again, 10);
	ADD_TEST(s, test_gather_fail_fast_cancels_the_others_and_waits_for_them, 10);
	ADD_TEST(s, test_gather_deadline_and_cancel_leave_every_task_joinable, 10);
	ADD_TEST(s, test_gather_refuses_what_join_refuses_and_duplicates, 10);
	ADD_TEST(s, test_gather_refuses_a_task_of_another_loop, 10);
	return test_main(s);
}
