/*
 * wait_for: a function run as a task under a deadline. retry: that, again
 * and again, with exponential backoff and jitter between attempts.
 */
#include <errno.h>

#include "executor/loop.h"

int coil_wait_for(coil_fn *fn, void *arg, int *status, int64_t deadline)
{
	coil_task *self = coil__current(), *t;
	int ret, st;

	if (!self)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	ret = coil_spawn(&t, fn, arg, &(coil_task_opts){ .name = "wait_for" });
	if (ret < 0)
		return ret;
	ret = coil_join(t, &st, deadline);
	if (ret < 0) {
		/*
		 * The task must not outlive the call: cancel it and join it
		 * shielded, since a cancel of ours would cut that join short.
		 */
		coil_cancel(t);
		self->shields++;
		coil_join(t, &st, COIL_NEVER);
		self->shields--;
	}
	if (status)
		*status = st;
	return ret;
}

static const coil_retry_opts retry_defaults = {
	.attempts = 3,
	.backoff_initial = COIL_MSEC(100),
	.backoff_max = COIL_SEC(10),
	.multiplier = 2,
	.jitter = 0.5,
};

static bool retry_opts_valid(const coil_retry_opts *o)
{
	return o->attempts && o->attempt_timeout >= 0 && o->backoff_initial >= 0 &&
	       o->backoff_max >= 0 && (o->multiplier == 0 || o->multiplier >= 1) &&
	       o->jitter >= 0 && o->jitter <= 1;
}

/* splitmix64: a well-mixed sequence from any seed, zero included. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Past the deadline (or at it) is also what an overflowing sum means. */
static int64_t add_deadline(int64_t now, int64_t ns, int64_t deadline)
{
	return ns > deadline - now ? deadline : now + ns;
}

int coil_retry(coil_fn *fn, void *arg, const coil_retry_opts *opts,
	       int *status, int64_t deadline)
{
	const coil_retry_opts *o = opts ? opts : &retry_defaults;
	double multiplier = o->multiplier ? o->multiplier : 2;
	double delay = (double)o->backoff_initial;
	uint64_t rng = o->seed ? o->seed : (uint64_t)coil_now();
	double pause;
	int64_t now, until;
	unsigned attempt;
	int ret, st = 0;

	if (!coil__current())
		return -EPERM;
	if (!fn || !retry_opts_valid(o))
		return -EINVAL;
	for (attempt = 1;; attempt++) {
		now = coil_now();
		until = o->attempt_timeout ? add_deadline(now, o->attempt_timeout, deadline)
					   : deadline;
		ret = coil_wait_for(fn, arg, &st, until);
		if (ret < 0 && ret != -ETIMEDOUT)
			break;
		/* Cancelled by its own deadline, the attempt timed out. */
		if (ret == -ETIMEDOUT && st == -ECANCELED)
			st = -ETIMEDOUT;
		if (ret == -ETIMEDOUT && st < 0 && until == deadline)
			break;
		ret = 0;
		if (st >= 0 || attempt == o->attempts)
			break;
		if (o->retryable ? !o->retryable(st, o->arg) : st == -ECANCELED)
			break;
		if (o->backoff_max && delay > (double)o->backoff_max)
			delay = (double)o->backoff_max;
		pause = delay * (1 - o->jitter * (double)(next_random(&rng) >> 11) * 0x1p-53);
		now = coil_now();
		if (deadline != COIL_NEVER && pause >= (double)(deadline - now)) {
			ret = -ETIMEDOUT;
			break;
		}
		if (o->notify)
			o->notify(attempt, st, (int64_t)pause, o->arg);
		ret = coil_sleep_until(now + (int64_t)pause);
		if (ret < 0)
			break;
		/* Bounded so that the double never overflows; no sleep is that long. */
		if (delay < 0x1p62)
			delay *= multiplier;
	}
	if (status)
		*status = st;
	return ret < 0 ? ret : (int)attempt;
}
