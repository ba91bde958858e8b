/*
 * The task manager: jobs with a state, progress and metadata, a limit on
 * how many run at once, and records kept for a while after they end.
 *
 * Each job's task runs a trampoline that keeps the job's return value in
 * the record and itself returns 0: a failed job is the manager's to report
 * (in its record), not the loop's. The job's end is learnt through a
 * task-end watcher, which also sees a job cancelled before its task ran.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primitives/waitq.h"

#define container_of(p, type, member)                                          \
	((type *)((char *)(p) - offsetof(type, member)))

#define RETENTION_DEFAULT COIL_SEC(3600)
#define BUCKETS_MIN 64

struct coil__job {
	struct coil__task_watch watch;
	coil_manager *m;
	struct coil__job *prev, *next;   /* m's records, by id */
	struct coil__job *hnext;         /* m's table chain */
	struct coil__job *qprev, *qnext; /* m's pending queue, or ended list */
	struct coil__job *rprev, *rnext; /* this thread's running jobs */
	coil_task *task;                 /* while it lives */
	coil_fn *fn;
	void *arg;
	size_t stack_size;
	coil_timer deadline;
	coil__waitq waiters;
	int result;                      /* fn's return value, once it ran */
	int reason;                      /* -ETIMEDOUT or -ECANCELED, first asked */
	bool ran, in_running;            /* its task started; is in running_jobs */
	coil_job_info info;
};

static const char kind[] = "task manager";

/* Jobs whose task is running on this thread, for coil_job_progress. */
static __thread struct coil__job *running_jobs;

const char *coil_job_state_name(enum coil_job_state state)
{
	static const char *const names[] = { "pending", "running", "completed",
					     "failed", "cancelled" };

	return (unsigned)state < 5 ? names[state] : "invalid";
}

const char *coil_job_info_meta(const coil_job_info *info, const char *key)
{
	const char *p = info->meta;

	for (unsigned i = 0; i < info->nmeta; i++) {
		const char *value = p + strlen(p) + 1;

		if (strcmp(p, key) == 0)
			return value;
		p = value + strlen(value) + 1;
	}
	return NULL;
}

static int64_t clock_now(const coil_manager *m)
{
	return m->opts.clock ? m->opts.clock(m->opts.clock_arg) : coil_now();
}

/* ----------------------------------------------------------- the records */

static struct coil__job **bucket(const coil_manager *m, uint64_t id)
{
	return &m->table[id & (m->buckets - 1)];
}

/* Double the table when it is full; a failure leaves longer chains. */
static void table_grow(coil_manager *m)
{
	size_t n = m->buckets ? m->buckets * 2 : BUCKETS_MIN;
	struct coil__job **table = calloc(n, sizeof(*table));

	if (!table)
		return;
	free(m->table);
	m->table = table;
	m->buckets = n;
	for (struct coil__job *j = m->first; j; j = j->next) {
		j->hnext = *bucket(m, j->info.id);
		*bucket(m, j->info.id) = j;
	}
}

static struct coil__job *find(const coil_manager *m, uint64_t id)
{
	struct coil__job *j;

	if (!m->buckets)
		return NULL;
	for (j = *bucket(m, id); j && j->info.id != id; j = j->hnext)
		;
	return j;
}

static void record_add(coil_manager *m, struct coil__job *j)
{
	m->count++;
	j->prev = m->last;
	if (m->last)
		m->last->next = j;
	else
		m->first = j;
	m->last = j;
	j->hnext = *bucket(m, j->info.id);
	*bucket(m, j->info.id) = j;
}

static void record_free(coil_manager *m, struct coil__job *j)
{
	struct coil__job **p = bucket(m, j->info.id);

	while (*p != j)
		p = &(*p)->hnext;
	*p = j->hnext;
	if (j->prev)
		j->prev->next = j->next;
	else
		m->first = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		m->last = j->prev;
	m->count--;
	coil_timer_disarm(&j->deadline);
	free(j);
}

/* The reaper's timer runs on the loop's clock; retention on the manager's. */
static void arm_reaper(coil_manager *m)
{
	int64_t left;

	if (!m->ended)
		return;
	left = m->ended->info.ended + m->opts.retention - clock_now(m);
	coil_timer_arm(&m->reaper, coil_now() + (left > 0 ? left : 0));
}

/* Free the records of jobs that ended a retention period ago or more. */
static void reap(coil_manager *m)
{
	int64_t now = clock_now(m);
	struct coil__job *j;

	while ((j = m->ended) && now - j->info.ended >= m->opts.retention) {
		m->ended = j->qnext;
		if (!m->ended)
			m->ended_last = NULL;
		record_free(m, j);
	}
	arm_reaper(m);
}

static void reaper_fired(coil_timer *timer, void *arg)
{
	(void)timer;
	reap(arg);
}

/* ------------------------------------------------------------ job states */

static void pending_remove(coil_manager *m, struct coil__job *j)
{
	if (j->qprev)
		j->qprev->qnext = j->qnext;
	else
		m->pending = j->qnext;
	if (j->qnext)
		j->qnext->qprev = j->qprev;
	else
		m->pending_last = j->qprev;
	j->qprev = j->qnext = NULL;
}

/* Record how j ended, hand the record to its waiters, queue it for reaping. */
static void finish(coil_manager *m, struct coil__job *j, int status)
{
	coil_job_info *info = &j->info;
	struct coil__waiter *w;

	coil_timer_disarm(&j->deadline);
	if (status >= 0) {
		info->state = COIL_JOB_COMPLETED;
	} else if (j->reason == -ETIMEDOUT) {
		info->state = COIL_JOB_FAILED;
		status = -ETIMEDOUT;
	} else if (j->reason == -ECANCELED || status == -ECANCELED) {
		info->state = COIL_JOB_CANCELLED;
		status = -ECANCELED;
	} else {
		info->state = COIL_JOB_FAILED;
	}
	info->status = status;
	info->ended = clock_now(m);
	/* A woken waiter may run after the record is reaped: it gets a copy. */
	while ((w = coil__waitq_first(&j->waiters))) {
		if (w->data)
			*(coil_job_info *)w->data = *info;
		coil__waiter_wake(w, 0);
	}
	j->qprev = NULL;
	j->qnext = NULL;
	if (m->ended_last)
		m->ended_last->qnext = j;
	else
		m->ended = j;
	m->ended_last = j;
	if (!coil_timer_armed(&m->reaper))
		arm_reaper(m);
}

static int job_main(void *arg)
{
	struct coil__job *j = arg;

	j->ran = true;
	/* Its deadline timer may not have fired yet: never start a job late. */
	if (j->info.deadline != COIL_NEVER && coil_now() >= j->info.deadline) {
		j->reason = -ETIMEDOUT;
		j->result = -ETIMEDOUT;
		return 0;
	}
	j->in_running = true;
	j->rprev = NULL;
	j->rnext = running_jobs;
	if (running_jobs)
		running_jobs->rprev = j;
	running_jobs = j;
	j->info.state = COIL_JOB_RUNNING;
	j->info.started = clock_now(j->m);
	j->result = j->fn(j->arg);
	return 0;
}

static void start_pending(coil_manager *m);

static void job_ended(struct coil__task_watch *w, coil_task *t)
{
	struct coil__job *j = container_of(w, struct coil__job, watch);
	coil_manager *m = j->m;

	(void)t;
	if (j->in_running) {
		if (j->rprev)
			j->rprev->rnext = j->rnext;
		else
			running_jobs = j->rnext;
		if (j->rnext)
			j->rnext->rprev = j->rprev;
		j->in_running = false;
	}
	j->task = NULL;
	m->running--;
	finish(m, j, j->ran ? j->result : -ECANCELED);
	start_pending(m);
	if (!m->running)
		coil__waitq_wake_all(&m->idle, 0);
}

static void start(coil_manager *m, struct coil__job *j)
{
	coil_task_opts opts = { .name = j->info.name, .stack_size = j->stack_size,
				.detached = true };
	int ret;

	if (j->info.deadline != COIL_NEVER && coil_now() >= j->info.deadline) {
		j->reason = -ETIMEDOUT;
		finish(m, j, -ETIMEDOUT);
		return;
	}
	ret = coil_spawn(&j->task, job_main, j, &opts);
	if (ret < 0) {
		j->task = NULL;
		finish(m, j, ret);
		return;
	}
	m->running++;
	coil__task_watch(j->task, &j->watch);
}

static void start_pending(coil_manager *m)
{
	struct coil__job *j;

	while (m->started && (j = m->pending) &&
	       (!m->opts.max_workers || m->running < m->opts.max_workers)) {
		pending_remove(m, j);
		start(m, j);
	}
}

/* Cancel j for reason (-ETIMEDOUT or -ECANCELED), unless it has ended. */
static void cancel_job(coil_manager *m, struct coil__job *j, int reason)
{
	if (!j->reason)
		j->reason = reason;
	if (j->task) {
		coil_cancel(j->task);
	} else if (j->info.state == COIL_JOB_PENDING) {
		pending_remove(m, j);
		finish(m, j, reason);
	}
}

static void deadline_fired(coil_timer *timer, void *arg)
{
	struct coil__job *j = arg;

	(void)timer;
	cancel_job(j->m, j, -ETIMEDOUT);
}

/* ------------------------------------------------------------------- API */

int coil_manager_init(coil_manager *m, const coil_manager_opts *opts)
{
	if (opts && opts->retention < 0)
		return -EINVAL;
	*m = (coil_manager){ .next_id = 1 };
	if (opts)
		m->opts = *opts;
	if (!m->opts.retention)
		m->opts.retention = RETENTION_DEFAULT;
	coil_timer_init(&m->reaper, reaper_fired, m);
	return coil__prim_init(&m->hdr, kind, m->opts.name);
}

/* The misuse checks of every call, and the lazy reaping. */
static int enter(coil_manager *m, const char *call)
{
	int ret = coil__prim_check(&m->hdr, call);

	if (ret == 0)
		reap(m);
	return ret;
}

int coil_manager_start(coil_manager *m)
{
	int ret = enter(m, "coil_manager_start");

	if (ret < 0)
		return ret;
	m->started = true;
	start_pending(m);
	return 0;
}

static int copy_meta(coil_job_info *info, const coil_job_meta *meta, unsigned n)
{
	size_t used = 0, k, v;

	for (unsigned i = 0; i < n; i++) {
		if (!meta[i].key || !meta[i].value)
			return -EINVAL;
		k = strlen(meta[i].key) + 1;
		v = strlen(meta[i].value) + 1;
		if (k + v > sizeof(info->meta) - used)
			return -E2BIG;
		memcpy(info->meta + used, meta[i].key, k);
		memcpy(info->meta + used + k, meta[i].value, v);
		used += k + v;
	}
	info->nmeta = n;
	return 0;
}

int64_t coil_manager_submit(coil_manager *m, coil_fn *fn, void *arg,
			    const coil_job_opts *opts)
{
	static const coil_job_opts none;
	struct coil__job *j;
	int ret = enter(m, "coil_manager_submit");

	if (ret < 0)
		return ret;
	if (!opts)
		opts = &none;
	if (!fn || (opts->nmeta && !opts->meta))
		return -EINVAL;
	if (m->count >= m->buckets)
		table_grow(m);
	j = m->buckets ? calloc(1, sizeof(*j)) : NULL;
	if (!j)
		return -ENOMEM;
	ret = copy_meta(&j->info, opts->meta, opts->nmeta);
	if (ret < 0) {
		free(j);
		return ret;
	}
	*j = (struct coil__job){
		.watch.ended = job_ended,
		.m = m,
		.fn = fn,
		.arg = arg,
		.stack_size = opts->stack_size,
		.info = j->info,
	};
	j->info.id = m->next_id++;
	j->info.state = COIL_JOB_PENDING;
	j->info.submitted = clock_now(m);
	j->info.deadline = opts->deadline ? opts->deadline : COIL_NEVER;
	if (opts->name)
		snprintf(j->info.name, sizeof(j->info.name), "%s", opts->name);
	else
		snprintf(j->info.name, sizeof(j->info.name), "job-%llu",
			 (unsigned long long)j->info.id);
	coil_timer_init(&j->deadline, deadline_fired, j);
	record_add(m, j);
	j->qprev = m->pending_last;
	if (m->pending_last)
		m->pending_last->qnext = j;
	else
		m->pending = j;
	m->pending_last = j;
	if (j->info.deadline != COIL_NEVER &&
	    coil_timer_arm(&j->deadline, j->info.deadline) < 0) {
		/* Without its timer the deadline would be silently ignored. */
		pending_remove(m, j);
		finish(m, j, -ENOMEM);
		return (int64_t)j->info.id;
	}
	start_pending(m);
	return (int64_t)j->info.id;
}

/* The job the running task is, or NULL. Walks this thread's running jobs. */
static struct coil__job *current_job(void)
{
	coil_task *self = coil__current();
	struct coil__job *j;

	if (!self)
		return NULL;
	for (j = running_jobs; j && j->task != self; j = j->rnext)
		;
	return j;
}

int coil_job_progress(int percent)
{
	struct coil__job *j = current_job();

	if (!j)
		return -EPERM;
	if (percent < 0 || percent > 100)
		return -ERANGE;
	j->info.progress = percent;
	return 0;
}

int coil_manager_info(coil_manager *m, uint64_t id, coil_job_info *info)
{
	struct coil__job *j;
	int ret = enter(m, "coil_manager_info");

	if (ret < 0)
		return ret;
	j = find(m, id);
	if (!j)
		return -ENOENT;
	*info = j->info;
	return 0;
}

int coil_manager_list(coil_manager *m, int state, uint64_t *ids, size_t cap)
{
	size_t n = 0;
	int ret = enter(m, "coil_manager_list");

	if (ret < 0)
		return ret;
	for (struct coil__job *j = m->first; j; j = j->next) {
		if (state != COIL_JOB_ANY && (int)j->info.state != state)
			continue;
		if (n < cap)
			ids[n] = j->info.id;
		n++;
	}
	return (int)n;
}

int coil_manager_cancel(coil_manager *m, uint64_t id)
{
	struct coil__job *j;
	int ret = enter(m, "coil_manager_cancel");

	if (ret < 0)
		return ret;
	j = find(m, id);
	if (!j)
		return -ENOENT;
	if (j->info.state >= COIL_JOB_COMPLETED)
		return -EALREADY;
	cancel_job(m, j, -ECANCELED);
	return 0;
}

int coil_manager_wait(coil_manager *m, uint64_t id, coil_job_info *info,
		      int64_t deadline)
{
	struct coil__waiter w;
	struct coil__job *j;
	int ret = enter(m, "coil_manager_wait");

	if (ret < 0)
		return ret;
	if (!coil__current())
		return -EPERM;
	j = find(m, id);
	if (!j)
		return -ENOENT;
	if (j->info.state >= COIL_JOB_COMPLETED) {
		if (info)
			*info = j->info;
		return 0;
	}
	if (j == current_job())
		return -EDEADLK;
	m->waiting++;
	ret = coil__waitq_park(&j->waiters, &w, info, deadline);
	m->waiting--;
	return ret;
}

int coil_manager_stop(coil_manager *m, int64_t deadline)
{
	struct coil__job *self;
	struct coil__waiter w;
	int ret = enter(m, "coil_manager_stop");

	if (ret < 0)
		return ret;
	if (!coil__current())
		return -EPERM;
	self = current_job();
	if (self && self->m == m)
		return -EDEADLK;
	m->started = false;
	while (m->pending)
		cancel_job(m, m->pending, -ECANCELED);
	for (struct coil__job *j = m->first; j; j = j->next)
		if (j->task)
			cancel_job(m, j, -ECANCELED);
	while (m->running) {
		m->waiting++;
		ret = coil__waitq_park(&m->idle, &w, NULL, deadline);
		m->waiting--;
		if (ret < 0)
			return ret;
	}
	return 0;
}

int coil_manager_destroy(coil_manager *m)
{
	int ret;

	/* Timers are disarmed below: only from the loop they are armed on. */
	if (m->hdr.loop && m->hdr.loop != coil__this_loop)
		return coil__prim_check(&m->hdr, "coil_manager_destroy");
	ret = coil__prim_destroy(&m->hdr, "coil_manager_destroy",
				 m->running || m->waiting);
	if (ret < 0)
		return ret;
	coil_timer_disarm(&m->reaper);
	while (m->first)
		record_free(m, m->first);
	free(m->table);
	m->table = NULL;
	m->buckets = 0;
	m->pending = m->pending_last = m->ended = m->ended_last = NULL;
	return 0;
}
