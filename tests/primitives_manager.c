/* primitives/manager.c: the task manager, from submit to reclaimed record. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "executor/loop.h"
#include "helper.h"

static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

/*
 * A job that naps (0: returns at once; COIL_NEVER: until cancelled), or
 * yields until *release, then returns ret. Interrupted, it cleans up with
 * a shielded park, so that a wait can be seen to include the cleanup.
 */
struct job {
	int64_t nap;
	bool hold, release;
	int ret;
	int progress;   /* set this first, when not 0 */
	int64_t set_clock; /* set fake_now to this before returning, when not 0 */
	bool ran, cleaned, ended;
	int woke;
	int index;
	int *order, *next; /* the start order, when not NULL */
	int *running, *max_running;
};

static int job_main(void *arg)
{
	struct job *j = arg;

	j->ran = true;
	if (j->order)
		j->order[(*j->next)++] = j->index;
	if (j->running && ++*j->running > *j->max_running)
		*j->max_running = *j->running;
	if (j->progress)
		CHECK(coil_job_progress(j->progress) == 0, "progress refused");
	if (j->hold)
		while (!j->release && !(j->woke = coil_yield()))
			;
	else
		j->woke = j->nap == COIL_NEVER ? coil_sleep_until(COIL_NEVER)
			  : j->nap	       ? coil_sleep(j->nap)
					       : 0;
	if (j->woke < 0) {
		coil_shield_begin();
		CHECK(coil_sleep(COIL_MSEC(2)) == 0, "shielded cleanup interrupted");
		coil_shield_end();
		j->cleaned = true;
	}
	if (j->running)
		--*j->running;
	if (j->set_clock)
		fake_now = j->set_clock;
	j->ended = true;
	return j->woke < 0 ? j->woke : j->ret;
}

static int64_t submit(coil_manager *m, struct job *j, const coil_job_opts *o)
{
	int64_t id = coil_manager_submit(m, job_main, j, o);

	ck_assert_int_gt(id, 0);
	return id;
}

static coil_job_info info_of(coil_manager *m, int64_t id)
{
	coil_job_info info;

	ck_assert_int_eq(coil_manager_info(m, (uint64_t)id, &info), 0);
	return info;
}

static void finish(coil_manager *m)
{
	ck_assert_int_eq(coil_manager_stop(m, COIL_NEVER), 0);
	ck_assert_int_eq(coil_manager_destroy(m), 0);
}

/* ------------------------------------------------------------- lifecycle */

static int lifecycle_main(void *arg)
{
	coil_manager m;
	coil_manager_opts o = { .clock = fake_clock, .name = "life" };
	coil_job_meta meta[] = { { "user", "u-123" }, { "priority", "high" } };
	struct job j = { .ret = 5, .set_clock = 3000 };
	coil_job_info info;
	int64_t id;

	(void)arg;
	fake_now = 1000;
	ck_assert_int_eq(coil_manager_init(&m, &o), 0);
	ck_assert_int_eq(coil_manager_start(&m), 0);
	id = submit(&m, &j, &(coil_job_opts){ .name = "resize", .meta = meta, .nmeta = 2 });
	ck_assert_int_eq(id, 1);
	info = info_of(&m, id);
	ck_assert_int_eq(info.state, COIL_JOB_PENDING);
	ck_assert_int_eq(info.submitted, 1000);
	ck_assert_int_eq(info.started, 0);
	ck_assert_int_eq(info.deadline, COIL_NEVER);
	fake_now = 2000;
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id, &info, COIL_NEVER), 0);
	ck_assert_int_eq(info.id, 1);
	ck_assert_int_eq(info.state, COIL_JOB_COMPLETED);
	ck_assert_int_eq(info.status, 5);
	ck_assert_int_eq(info.submitted, 1000);
	ck_assert_int_eq(info.started, 2000);
	ck_assert_int_eq(info.ended, 3000);
	ck_assert_str_eq(info.name, "resize");
	ck_assert_uint_eq(info.nmeta, 2);
	ck_assert_str_eq(coil_job_info_meta(&info, "user"), "u-123");
	ck_assert_str_eq(coil_job_info_meta(&info, "priority"), "high");
	ck_assert_ptr_null(coil_job_info_meta(&info, "missing"));
	/* The record outlives the job, and a wait on it returns at once. */
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id, &info, 0), 0);
	ck_assert_int_eq(info.state, COIL_JOB_COMPLETED);
	finish(&m);
	return 0;
}

START_TEST(test_a_job_runs_to_completion_and_its_record_tells_all)
{
	run(lifecycle_main, NULL);
}
END_TEST

static int names_main(void *arg)
{
	coil_manager m;
	struct job j[2] = { { 0 }, { 0 } };
	int64_t a, b;

	(void)arg;
	coil_manager_init(&m, NULL);
	a = submit(&m, &j[0], NULL);
	b = submit(&m, &j[1], &(coil_job_opts){
		.name = "a name far longer than thirty-one bytes" });
	ck_assert_str_eq(info_of(&m, a).name, "job-1");
	ck_assert_str_eq(info_of(&m, b).name, "a name far longer than thirty-o");
	coil_manager_start(&m);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)b, NULL, COIL_NEVER), 0);
	ck_assert_str_eq(coil_task_state_name(COIL_TASK_FAILED),
			 coil_job_state_name(COIL_JOB_FAILED));
	ck_assert_str_eq(coil_job_state_name(COIL_JOB_PENDING), "pending");
	ck_assert_str_eq(coil_job_state_name(COIL_JOB_CANCELLED), "cancelled");
	ck_assert_str_eq(coil_job_state_name(9), "invalid");
	finish(&m);
	return 0;
}

START_TEST(test_names_are_copied_truncated_or_made_from_the_id)
{
	run(names_main, NULL);
}
END_TEST

static int before_start_main(void *arg)
{
	coil_manager m;
	struct job j = { .ret = 1 };
	int64_t id;

	(void)arg;
	coil_manager_init(&m, NULL);
	id = submit(&m, &j, NULL);
	let_tasks_park();
	ck_assert(!j.ran);
	ck_assert_int_eq(info_of(&m, id).state, COIL_JOB_PENDING);
	coil_manager_start(&m);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id, NULL, COIL_NEVER), 0);
	ck_assert(j.ran);
	finish(&m);
	return 0;
}

START_TEST(test_jobs_submitted_before_start_wait_pending_until_it)
{
	run(before_start_main, NULL);
}
END_TEST

/* ------------------------------------------------------- workers, FIFO */

static int workers_main(void *arg)
{
	coil_manager m;
	struct job j[5];
	int order[5], next = 0, running = 0, max_running = 0;
	uint64_t ids[8];
	int64_t id[5];

	(void)arg;
	coil_manager_init(&m, &(coil_manager_opts){ .max_workers = 2 });
	coil_manager_start(&m);
	for (int i = 0; i < 5; i++) {
		j[i] = (struct job){ .hold = true, .ret = i, .index = i, .order = order, .next = &next,
				     .running = &running, .max_running = &max_running };
		id[i] = submit(&m, &j[i], NULL);
	}
	let_tasks_park();
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_RUNNING, ids, 8), 2);
	ck_assert(ids[0] == (uint64_t)id[0] && ids[1] == (uint64_t)id[1]);
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_PENDING, ids, 8), 3);
	ck_assert(ids[0] == (uint64_t)id[2] && ids[2] == (uint64_t)id[4]);
	/* Whichever ends, the next to start is the oldest pending. */
	j[1].release = true;
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id[1], NULL, COIL_NEVER), 0);
	let_tasks_park();
	ck_assert(j[2].ran && !j[3].ran);
	j[0].release = true;
	j[2].release = true;
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id[2], NULL, COIL_NEVER), 0);
	j[3].release = j[4].release = true;
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id[4], NULL, COIL_NEVER), 0);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id[3], NULL, COIL_NEVER), 0);
	ck_assert_int_eq(next, 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(order[i], i);
		ck_assert_int_eq(info_of(&m, id[i]).status, i);
	}
	ck_assert_int_eq(max_running, 2);
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_COMPLETED, NULL, 0), 5);
	finish(&m);
	return 0;
}

START_TEST(test_max_workers_keeps_the_excess_pending_and_starts_it_in_order)
{
	run(workers_main, NULL);
}
END_TEST

#define MANY 1000

static int many_main(void *arg)
{
	static struct job j[MANY];
	coil_manager m;
	int running = 0, max_running = 0;
	int64_t last = 0;

	(void)arg;
	coil_manager_init(&m, &(coil_manager_opts){ .max_workers = 8 });
	coil_manager_start(&m);
	for (int i = 0; i < MANY; i++) {
		j[i] = (struct job){ .nap = (i % 3) * COIL_USEC(50), .ret = i,
				     .running = &running, .max_running = &max_running };
		last = submit(&m, &j[i], NULL);
	}
	ck_assert_int_eq(last, MANY);
	for (int i = 1; i <= MANY; i++)
		CHECK(coil_manager_wait(&m, i, NULL, COIL_NEVER) == 0, "wait %d", i);
	ck_assert_int_eq(coil_manager_stop(&m, COIL_NEVER), 0);
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_COMPLETED, NULL, 0), MANY);
	for (int i = 0; i < MANY; i++)
		CHECK(info_of(&m, i + 1).status == i, "job %d", i + 1);
	ck_assert_int_eq(max_running, 8);
	ck_assert_int_eq(coil_manager_destroy(&m), 0);
	return 0;
}

START_TEST(test_a_thousand_jobs_on_eight_workers_all_complete)
{
	run(many_main, NULL);
}
END_TEST

/* ----------------------------------------------------- failure, deadline */

static int failing_main(void *arg)
{
	coil_manager m;
	struct job j = { .ret = -EIO };
	coil_job_info info;
	int64_t id;

	(void)arg;
	coil_manager_init(&m, NULL);
	coil_manager_start(&m);
	id = submit(&m, &j, NULL);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id, &info, COIL_NEVER), 0);
	ck_assert_int_eq(info.state, COIL_JOB_FAILED);
	ck_assert_int_eq(info.status, -EIO);
	finish(&m);
	return 0;
}

START_TEST(test_a_failing_job_is_failed_with_its_error_and_nothing_is_logged)
{
	capture_log();
	run(failing_main, NULL);
	/* The record tells of the failure: the loop has nothing to report. */
	ck_assert_str_eq(captured_log(), "");
	coil_set_log(NULL, NULL);
}
END_TEST

static int unspawnable_main(void *arg)
{
	coil_manager m;
	struct job j = { 0 };
	coil_job_info info;
	int64_t id;

	(void)arg;
	coil_manager_init(&m, NULL);
	coil_manager_start(&m);
	id = submit(&m, &j, &(coil_job_opts){ .stack_size = (size_t)1 << 40 });
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id, &info, COIL_NEVER), 0);
	ck_assert_int_eq(info.state, COIL_JOB_FAILED);
	ck_assert_int_eq(info.status, -EINVAL);
	ck_assert(!j.ran);
	finish(&m);
	return 0;
}

START_TEST(test_a_job_whose_task_cannot_be_spawned_fails_with_the_error)
{
	run(unspawnable_main, NULL);
}
END_TEST

static int deadline_main(void *arg)
{
	coil_manager m;
	struct job run_long = { .nap = COIL_NEVER }, queued = { 0 }, late = { 0 };
	coil_job_info info;
	int64_t deadline = coil_now() + COIL_MSEC(100), a, b, c;

	(void)arg;
	coil_manager_init(&m, &(coil_manager_opts){ .max_workers = 1 });
	coil_manager_start(&m);
	a = submit(&m, &run_long, &(coil_job_opts){ .deadline = deadline });
	b = submit(&m, &queued, &(coil_job_opts){ .deadline = deadline });
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)a, &info, COIL_NEVER), 0);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_int_eq(info.state, COIL_JOB_FAILED);
	ck_assert_int_eq(info.status, -ETIMEDOUT);
	ck_assert_int_eq(info.deadline, deadline);
	ck_assert(run_long.cleaned);
	/* The queued job passed its deadline too, without ever running. */
	info = info_of(&m, b);
	ck_assert_int_eq(info.state, COIL_JOB_FAILED);
	ck_assert_int_eq(info.status, -ETIMEDOUT);
	ck_assert(!queued.ran);
	/* A deadline passed already, a worker free: the job never starts. */
	c = submit(&m, &late, &(coil_job_opts){ .deadline = 1 });
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)c, &info, COIL_NEVER), 0);
	ck_assert_int_eq(info.state, COIL_JOB_FAILED);
	ck_assert_int_eq(info.status, -ETIMEDOUT);
	ck_assert(!late.ran);
	finish(&m);
	return 0;
}

START_TEST(test_a_job_past_its_deadline_is_failed_with_etimedout_running_or_not)
{
	run(deadline_main, NULL);
}
END_TEST

/* --------------------------------------------------------------- cancel */

static int stubborn(void *arg)
{
	int ret;

	(void)arg;
	coil_shield_begin();
	ret = coil_sleep(COIL_MSEC(5));
	coil_shield_end();
	return ret == 0 ? 8 : ret;
}

/* Ignores cancels until *release: a job whose unwinding takes a while. */
static int held(void *arg)
{
	const bool *release = arg;

	coil_shield_begin();
	while (!*release)
		CHECK(coil_yield() == 0, "a shielded yield failed");
	coil_shield_end();
	return 8;
}

static int cancel_main(void *arg)
{
	coil_manager m;
	struct job running = { .nap = COIL_NEVER }, pending = { 0 };
	coil_job_info info;
	int64_t a, b, c;

	(void)arg;
	coil_manager_init(&m, &(coil_manager_opts){ .max_workers = 2 });
	coil_manager_start(&m);
	a = submit(&m, &running, NULL);
	c = coil_manager_submit(&m, stubborn, NULL, NULL);
	b = submit(&m, &pending, NULL);
	let_tasks_park();
	ck_assert_int_eq(coil_manager_cancel(&m, (uint64_t)b), 0);
	info = info_of(&m, b);
	ck_assert_int_eq(info.state, COIL_JOB_CANCELLED);
	ck_assert_int_eq(info.status, -ECANCELED);
	ck_assert_int_eq(coil_manager_cancel(&m, (uint64_t)a), 0);
	ck_assert_int_eq(coil_manager_cancel(&m, (uint64_t)c), 0);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)a, &info, COIL_NEVER), 0);
	ck_assert_int_eq(info.state, COIL_JOB_CANCELLED);
	ck_assert_int_eq(info.status, -ECANCELED);
	ck_assert(running.cleaned);
	/* A job that completes anyway keeps its result. */
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)c, &info, COIL_NEVER), 0);
	ck_assert_int_eq(info.state, COIL_JOB_COMPLETED);
	ck_assert_int_eq(info.status, 8);
	ck_assert_int_eq(coil_manager_cancel(&m, (uint64_t)a), -EALREADY);
	ck_assert_int_eq(coil_manager_cancel(&m, 99), -ENOENT);
	let_tasks_park();
	ck_assert(!pending.ran);
	finish(&m);
	return 0;
}

START_TEST(test_cancel_by_id_cancels_pending_and_running_jobs)
{
	run(cancel_main, NULL);
}
END_TEST

/* ------------------------------------------------------------- progress */

static int not_a_job(void *arg)
{
	*(int *)arg = coil_job_progress(10);
	return 0;
}

static int range_job(void *arg)
{
	int *r = arg;

	r[0] = coil_job_progress(101);
	r[1] = coil_job_progress(-1);
	r[2] = coil_job_progress(100);
	return 0;
}

struct self_call {
	coil_manager *m;
	int64_t id;
	int wait, stop;
};

static int call_on_itself(void *arg)
{
	struct self_call *c = arg;

	c->wait = coil_manager_wait(c->m, (uint64_t)c->id, NULL, COIL_NEVER);
	c->stop = coil_manager_stop(c->m, COIL_NEVER);
	return 0;
}

static int self_main(void *arg)
{
	coil_manager m;
	struct self_call c = { .m = &m, .wait = 1, .stop = 1 };
	coil_job_info info;

	(void)arg;
	coil_manager_init(&m, NULL);
	coil_manager_start(&m);
	c.id = coil_manager_submit(&m, call_on_itself, &c, NULL);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)c.id, &info, COIL_NEVER), 0);
	ck_assert_int_eq(c.wait, -EDEADLK);
	ck_assert_int_eq(c.stop, -EDEADLK);
	ck_assert_int_eq(info.state, COIL_JOB_COMPLETED);
	/* The refused stop left the manager started. */
	ck_assert(m.started);
	finish(&m);
	return 0;
}

START_TEST(test_a_job_waiting_for_or_stopping_itself_is_edeadlk)
{
	run(self_main, NULL);
}
END_TEST

static int progress_main(void *arg)
{
	coil_manager m;
	struct job j = { .hold = true, .progress = 40 };
	int other = 1, range[3];
	coil_task *t;
	int64_t id, r;

	(void)arg;
	coil_manager_init(&m, NULL);
	coil_manager_start(&m);
	id = submit(&m, &j, NULL);
	let_tasks_park();
	ck_assert_int_eq(info_of(&m, id).progress, 40);
	ck_assert_int_eq(info_of(&m, id).state, COIL_JOB_RUNNING);
	ck_assert_int_eq(coil_job_progress(50), -EPERM);
	ck_assert_int_eq(coil_spawn(&t, not_a_job, &other, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(other, -EPERM);
	r = coil_manager_submit(&m, range_job, range, NULL);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)r, NULL, COIL_NEVER), 0);
	ck_assert(range[0] == -ERANGE && range[1] == -ERANGE && range[2] == 0);
	ck_assert_int_eq(info_of(&m, r).progress, 100);
	/* The refused updates left the running job's progress alone. */
	ck_assert_int_eq(info_of(&m, id).progress, 40);
	j.release = true;
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id, NULL, COIL_NEVER), 0);
	/* Once it ended, its task is no job any more. */
	ck_assert_int_eq(info_of(&m, id).progress, 40);
	finish(&m);
	return 0;
}

START_TEST(test_progress_is_set_by_the_job_itself_within_0_to_100)
{
	ck_assert_int_eq(coil_job_progress(10), -EPERM);
	run(progress_main, NULL);
}
END_TEST

/* ----------------------------------------------------------------- wait */

struct waiter {
	coil_manager *m;
	uint64_t id;
	int ret;
	coil_job_info info;
};

static int wait_job(void *arg)
{
	struct waiter *w = arg;

	w->ret = coil_manager_wait(w->m, w->id, &w->info, COIL_NEVER);
	return 0;
}

static void wait_from_callback(coil_timer *timer, void *arg)
{
	struct waiter *w = arg;

	(void)timer;
	w->ret = coil_manager_wait(w->m, w->id, NULL, COIL_NEVER);
}

static int wait_main(void *arg)
{
	coil_manager m;
	struct job j = { .nap = COIL_NEVER };
	struct waiter w = { .m = &m }, cb = { .m = &m, .ret = 1 };
	coil_job_info info = { .id = 777 };
	coil_timer timer;
	coil_task *t;
	int64_t id;

	(void)arg;
	coil_manager_init(&m, NULL);
	coil_manager_start(&m);
	id = submit(&m, &j, NULL);
	w.id = cb.id = (uint64_t)id;
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)id, &info,
					   coil_now() + COIL_MSEC(2)), -ETIMEDOUT);
	ck_assert_int_eq(info.id, 777);
	ck_assert_int_eq(coil_spawn(&t, wait_job, &w, NULL), 0);
	let_tasks_park();
	coil_cancel(t);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.ret, -ECANCELED);
	/* Neither the timed out wait nor the cancelled one touched the job. */
	ck_assert_int_eq(info_of(&m, id).state, COIL_JOB_RUNNING);
	ck_assert(!j.ended);
	ck_assert_int_eq(coil_manager_wait(&m, 12345, &info, COIL_NEVER), -ENOENT);
	coil_timer_init(&timer, wait_from_callback, &cb);
	coil_timer_arm(&timer, coil_now());
	while (cb.ret == 1)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(cb.ret, -EPERM);
	finish(&m);
	ck_assert(j.cleaned);
	return 0;
}

START_TEST(test_a_wait_that_times_out_or_is_cancelled_leaves_the_job_alone)
{
	run(wait_main, NULL);
}
END_TEST

static int waiters_main(void *arg)
{
	coil_manager m;
	struct job j = { .hold = true, .ret = 3 };
	struct waiter w[3];
	coil_task *t[3];
	coil_job_info info;
	int64_t id;

	(void)arg;
	fake_now = 0;
	coil_manager_init(&m, &(coil_manager_opts){ .clock = fake_clock,
						    .retention = 10 });
	coil_manager_start(&m);
	id = submit(&m, &j, NULL);
	for (int i = 0; i < 3; i++) {
		w[i] = (struct waiter){ .m = &m, .id = (uint64_t)id, .ret = 1 };
		ck_assert_int_eq(coil_spawn(&t[i], wait_job, &w[i], NULL), 0);
	}
	let_tasks_park();
	j.release = true;
	/* The job ends and wakes the waiters; this task runs before them. */
	while (!j.ended)
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(w[0].ret, 1);
	fake_now = 10;
	ck_assert_int_eq(coil_manager_info(&m, (uint64_t)id, &info), -ENOENT);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_int_eq(w[i].ret, 0);
		ck_assert_int_eq(w[i].info.id, id);
		ck_assert_int_eq(w[i].info.state, COIL_JOB_COMPLETED);
		ck_assert_int_eq(w[i].info.status, 3);
	}
	finish(&m);
	return 0;
}

START_TEST(test_every_waiter_gets_the_record_even_once_it_is_reclaimed)
{
	run(waiters_main, NULL);
}
END_TEST

/* ------------------------------------------------------------ retention */

static int retention_main(void *arg)
{
	coil_manager m;
	struct job j[2] = { { .ret = 1 }, { .nap = COIL_NEVER } };
	int64_t a, b;

	(void)arg;
	fake_now = 5000;
	coil_manager_init(&m, &(coil_manager_opts){ .clock = fake_clock });
	coil_manager_start(&m);
	a = submit(&m, &j[0], NULL);
	b = submit(&m, &j[1], NULL);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)a, NULL, COIL_NEVER), 0);
	/* The default retention is one hour. */
	fake_now += COIL_SEC(3600) - 1;
	ck_assert_int_eq(info_of(&m, a).state, COIL_JOB_COMPLETED);
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_ANY, NULL, 0), 2);
	fake_now += 1;
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_ANY, NULL, 0), 1);
	ck_assert_int_eq(coil_manager_cancel(&m, (uint64_t)a), -ENOENT);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)a, NULL, COIL_NEVER), -ENOENT);
	/* A running job is never reclaimed, however old. */
	fake_now += COIL_SEC(7200);
	ck_assert_int_eq(info_of(&m, b).state, COIL_JOB_RUNNING);
	ck_assert_uint_eq(m.count, 1);
	finish(&m);
	return 0;
}

START_TEST(test_records_are_reclaimed_after_the_retention_period)
{
	run(retention_main, NULL);
}
END_TEST

static int reaper_main(void *arg)
{
	coil_manager m;
	struct job j[3] = { { 0 }, { 0 }, { 0 } };
	int64_t id = 0;

	(void)arg;
	/* The clock stands still until the test moves it: nothing expires early. */
	fake_now = 0;
	coil_manager_init(&m, &(coil_manager_opts){ .retention = COIL_MSEC(2),
						    .clock = fake_clock });
	coil_manager_start(&m);
	for (int i = 0; i < 3; i++)
		id = submit(&m, &j[i], NULL);
	for (int i = 1; i <= id; i++)
		ck_assert_int_eq(coil_manager_wait(&m, i, NULL, COIL_NEVER), 0);
	ck_assert_uint_eq(m.count, 3);
	/*
	 * The timer was armed 2 ms ahead on the loop's clock. No call on m
	 * meanwhile: only the timer can reclaim them.
	 */
	fake_now = COIL_MSEC(2);
	ck_assert_int_eq(coil_sleep(COIL_MSEC(10)), 0);
	ck_assert_uint_eq(m.count, 0);
	ck_assert(!coil_timer_armed(&m.reaper));
	finish(&m);
	return 0;
}

START_TEST(test_a_timer_reclaims_expired_records_without_any_call)
{
	run(reaper_main, NULL);
}
END_TEST

/* ----------------------------------------------------------------- stop */

static int stop_main(void *arg)
{
	coil_manager m;
	struct job running = { .nap = COIL_NEVER }, pending = { 0 }, later = { .ret = 2 };
	int64_t a, b, c;

	(void)arg;
	coil_manager_init(&m, &(coil_manager_opts){ .max_workers = 1 });
	coil_manager_start(&m);
	a = submit(&m, &running, NULL);
	b = submit(&m, &pending, NULL);
	let_tasks_park();
	ck_assert_int_eq(coil_manager_stop(&m, COIL_NEVER), 0);
	/* stop returned after the running job's cleanup. */
	ck_assert(running.cleaned && running.ended);
	ck_assert_int_eq(info_of(&m, a).state, COIL_JOB_CANCELLED);
	ck_assert_int_eq(info_of(&m, b).state, COIL_JOB_CANCELLED);
	ck_assert(!pending.ran);
	/* Stopped, it queues; started again, it runs. */
	c = submit(&m, &later, NULL);
	let_tasks_park();
	ck_assert_int_eq(info_of(&m, c).state, COIL_JOB_PENDING);
	ck_assert_int_eq(coil_manager_start(&m), 0);
	ck_assert_int_eq(coil_manager_wait(&m, (uint64_t)c, NULL, COIL_NEVER), 0);
	ck_assert_int_eq(info_of(&m, c).status, 2);
	finish(&m);
	return 0;
}

START_TEST(test_stop_cancels_pending_and_running_jobs_and_waits_for_them)
{
	run(stop_main, NULL);
}
END_TEST

static int stop_deadline_main(void *arg)
{
	coil_manager m;
	bool release = false;
	int64_t id;

	(void)arg;
	capture_log();
	coil_manager_init(&m, &(coil_manager_opts){ .name = "slow" });
	coil_manager_start(&m);
	id = coil_manager_submit(&m, held, &release, NULL);
	let_tasks_park();
	ck_assert_int_eq(coil_manager_stop(&m, coil_now() + COIL_MSEC(1)), -ETIMEDOUT);
	ck_assert_int_eq(coil_manager_destroy(&m), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "task manager 'slow' while tasks wait"));
	release = true;
	ck_assert_int_eq(coil_manager_stop(&m, COIL_NEVER), 0);
	/* It completed despite the cancel. */
	ck_assert_int_eq(info_of(&m, id).state, COIL_JOB_COMPLETED);
	ck_assert_int_eq(coil_manager_destroy(&m), 0);
	coil_set_log(NULL, NULL);
	return 0;
}

START_TEST(test_stop_past_its_deadline_leaves_jobs_unwinding_and_destroy_busy)
{
	run(stop_deadline_main, NULL);
}
END_TEST

struct stopper {
	coil_manager *m;
	int ret;
};

static int call_stop(void *arg)
{
	struct stopper *s = arg;

	s->ret = coil_manager_stop(s->m, COIL_NEVER);
	return 0;
}

static int stop_cancel_main(void *arg)
{
	coil_manager m;
	struct stopper s = { .m = &m, .ret = 1 };
	bool release = false;
	coil_task *t;

	(void)arg;
	coil_manager_init(&m, NULL);
	coil_manager_start(&m);
	coil_manager_submit(&m, held, &release, NULL);
	let_tasks_park();
	ck_assert_int_eq(coil_spawn(&t, call_stop, &s, NULL), 0);
	let_tasks_park();
	coil_cancel(t);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(s.ret, -ECANCELED);
	ck_assert_uint_eq(m.running, 1);
	release = true;
	finish(&m);
	return 0;
}

START_TEST(test_a_cancelled_stop_returns_ecanceled_with_jobs_still_unwinding)
{
	run(stop_cancel_main, NULL);
}
END_TEST

/* --------------------------------------------------------------- errors */

static int submit_errors_main(void *arg)
{
	coil_manager m;
	struct job j = { 0 };
	char big[COIL_JOB_META_SIZE];
	coil_job_meta null_key[] = { { NULL, "v" } }, null_value[] = { { "k", NULL } };
	coil_job_meta too_big[] = { { "k", big } }, fits[] = { { "k", big } };
	int64_t id;

	(void)arg;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	coil_manager_init(&m, NULL);
	ck_assert_int_eq(coil_manager_submit(&m, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(coil_manager_submit(&m, job_main, &j,
					     &(coil_job_opts){ .meta = null_key, .nmeta = 1 }),
			 -EINVAL);
	ck_assert_int_eq(coil_manager_submit(&m, job_main, &j,
					     &(coil_job_opts){ .meta = null_value, .nmeta = 1 }),
			 -EINVAL);
	ck_assert_int_eq(coil_manager_submit(&m, job_main, &j,
					     &(coil_job_opts){ .nmeta = 1 }), -EINVAL);
	ck_assert_int_eq(coil_manager_submit(&m, job_main, &j,
					     &(coil_job_opts){ .meta = too_big, .nmeta = 1 }),
			 -E2BIG);
	/* "k\0" and the value with its NUL: exactly the room there is. */
	big[sizeof(big) - 3] = 0;
	id = coil_manager_submit(&m, job_main, &j, &(coil_job_opts){ .meta = fits, .nmeta = 1 });
	ck_assert_int_eq(id, 1);
	ck_assert_uint_eq(strlen(coil_job_info_meta(&(coil_job_info){ 0 }, "k") ? "x" : ""), 0);
	ck_assert_uint_eq(strlen(coil_job_info_meta((coil_job_info[]){ info_of(&m, id) }, "k")),
			  sizeof(big) - 3);
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_ANY, NULL, 0), 1);
	ck_assert_int_eq(coil_manager_info(&m, 2, &(coil_job_info){ 0 }), -ENOENT);
	ck_assert_int_eq(coil_manager_destroy(&m), 0);
	return 0;
}

START_TEST(test_submit_refuses_a_null_fn_bad_metadata_and_metadata_too_big)
{
	ck_assert_int_eq(coil_manager_init(&(coil_manager){ 0 },
					   &(coil_manager_opts){ .retention = -1 }),
			 -EINVAL);
	run(submit_errors_main, NULL);
}
END_TEST

static int list_main(void *arg)
{
	coil_manager m;
	struct job j[4] = { { 0 }, { 0 }, { 0 }, { 0 } };
	uint64_t ids[2] = { 0, 0 };

	(void)arg;
	coil_manager_init(&m, NULL);
	for (int i = 0; i < 4; i++)
		submit(&m, &j[i], NULL);
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_PENDING, ids, 2), 4);
	ck_assert(ids[0] == 1 && ids[1] == 2);
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_RUNNING, ids, 2), 0);
	ck_assert_int_eq(coil_manager_list(&m, 42, ids, 2), 0);
	ck_assert_int_eq(coil_manager_destroy(&m), 0);
	return 0;
}

START_TEST(test_list_fills_up_to_its_cap_and_counts_every_match)
{
	run(list_main, NULL);
}
END_TEST

static int destroy_main(void *arg)
{
	coil_manager m;
	struct job j = { 0 };
	struct waiter w;
	coil_task *t;
	int64_t id;

	(void)arg;
	capture_log();
	coil_manager_init(&m, &(coil_manager_opts){ .name = "jobs" });
	id = submit(&m, &j, NULL);
	/* A task waits on a job that is pending: m must not go. */
	w = (struct waiter){ .m = &m, .id = (uint64_t)id };
	ck_assert_int_eq(coil_spawn(&t, wait_job, &w, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_manager_destroy(&m), -EBUSY);
	ck_assert(log_has(COIL_LOG_ERROR, "task manager 'jobs' while tasks wait"));
	coil_manager_cancel(&m, (uint64_t)id);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.info.state, COIL_JOB_CANCELLED);
	ck_assert_int_eq(coil_manager_destroy(&m), 0);
	ck_assert_int_eq(coil_manager_destroy(&m), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_manager_destroy on an object destroyed already"));
	ck_assert_int_eq(coil_manager_submit(&m, job_main, &j, NULL), -EINVAL);
	ck_assert_int_eq(coil_manager_start(&m), -EINVAL);
	ck_assert(log_has(COIL_LOG_ERROR, "coil_manager_submit on a destroyed object"));
	ck_assert(!j.ran);
	coil_set_log(NULL, NULL);
	return 0;
}

START_TEST(test_destroy_with_a_waiter_is_ebusy_and_a_second_destroy_einval)
{
	run(destroy_main, NULL);
}
END_TEST

static int destroy_pending_main(void *arg)
{
	coil_manager m;
	struct job j = { 0 };

	(void)arg;
	coil_manager_init(&m, NULL);
	/* Pending with a deadline: its timer must go with the record. */
	submit(&m, &j, &(coil_job_opts){ .deadline = coil_now() + COIL_MSEC(1) });
	ck_assert_int_eq(coil_manager_destroy(&m), 0);
	ck_assert_int_eq(coil_sleep(COIL_MSEC(3)), 0);
	ck_assert(!j.ran);
	return 0;
}

START_TEST(test_destroy_drops_pending_jobs_and_their_deadlines)
{
	run(destroy_pending_main, NULL);
}
END_TEST

struct foreign {
	coil_manager *m;
	int submit, info, destroy;
};

static int use_foreign_manager(void *arg)
{
	struct foreign *f = arg;
	coil_job_info info;

	f->submit = (int)coil_manager_submit(f->m, not_a_job, NULL, NULL);
	f->info = coil_manager_info(f->m, 1, &info);
	f->destroy = coil_manager_destroy(f->m);
	return 0;
}

static void *foreign_thread(void *arg)
{
	int status;

	coil_run(use_foreign_manager, arg, &status);
	return NULL;
}

static int foreign_main(void *arg)
{
	struct foreign *f = arg;
	coil_manager m;
	pthread_t th;

	coil_manager_init(&m, &(coil_manager_opts){ .name = "mine" });
	f->m = &m;
	pthread_create(&th, NULL, foreign_thread, f);
	pthread_join(th, NULL);
	ck_assert_int_eq(coil_manager_list(&m, COIL_JOB_ANY, NULL, 0), 0);
	ck_assert_int_eq(coil_manager_destroy(&m), 0);
	return 0;
}

START_TEST(test_a_manager_used_from_a_loop_that_does_not_own_it_is_exdev)
{
	struct foreign f;

	capture_log();
	run(foreign_main, &f);
	ck_assert_int_eq(f.submit, -EXDEV);
	ck_assert_int_eq(f.info, -EXDEV);
	ck_assert_int_eq(f.destroy, -EXDEV);
	ck_assert(log_has(COIL_LOG_ERROR, "task manager 'mine' from a loop that does not own it"));
	coil_set_log(NULL, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("primitives_manager");

	ADD_TEST(s, test_a_job_runs_to_completion_and_its_record_tells_all, 10);
	ADD_TEST(s, test_names_are_copied_truncated_or_made_from_the_id, 10);
	ADD_TEST(s, test_jobs_submitted_before_start_wait_pending_until_it, 10);
	ADD_TEST(s, test_max_workers_keeps_the_excess_pending_and_starts_it_in_order, 10);
	ADD_TEST(s, test_a_thousand_jobs_on_eight_workers_all_complete, 30);
	ADD_TEST(s, test_a_failing_job_is_failed_with_its_error_and_nothing_is_logged, 10);
	ADD_TEST(s, test_a_job_whose_task_cannot_be_spawned_fails_with_the_error, 10);
	ADD_TEST(s, test_a_job_past_its_deadline_is_failed_with_etimedout_running_or_not, 10);
	ADD_TEST(s, test_cancel_by_id_cancels_pending_and_running_jobs, 10);
	ADD_TEST(s, test_progress_is_set_by_the_job_itself_within_0_to_100, 10);
	ADD_TEST(s, test_a_job_waiting_for_or_stopping_itself_is_edeadlk, 10);
	ADD_TEST(s, test_a_wait_that_times_out_or_is_cancelled_leaves_the_job_alone, 10);
	ADD_TEST(s, test_every_waiter_gets_the_record_even_once_it_is_reclaimed, 10);
	ADD_TEST(s, test_records_are_reclaimed_after_the_retention_period, 10);
	ADD_TEST(s, test_a_timer_reclaims_expired_records_without_any_call, 10);
	ADD_TEST(s, test_stop_cancels_pending_and_running_jobs_and_waits_for_them, 10);
	ADD_TEST(s, test_stop_past_its_deadline_leaves_jobs_unwinding_and_destroy_busy, 10);
	ADD_TEST(s, test_a_cancelled_stop_returns_ecanceled_with_jobs_still_unwinding, 10);
	ADD_TEST(s, test_submit_refuses_a_null_fn_bad_metadata_and_metadata_too_big, 10);
	ADD_TEST(s, test_list_fills_up_to_its_cap_and_counts_every_match, 10);
	ADD_TEST(s, test_destroy_with_a_waiter_is_ebusy_and_a_second_destroy_einval, 10);
	ADD_TEST(s, test_destroy_drops_pending_jobs_and_their_deadlines, 10);
	ADD_TEST(s, test_a_manager_used_from_a_loop_that_does_not_own_it_is_exdev, 10);
	return test_main(s);
}
