/* Cancellation with cleanup: catch CancelledError, tidy up, re-raise. */
#include <assert.h>
#include <errno.h>

#include <coil.h>

static int flushed;

static int worker(void *arg)
{
	int ret;

	(void)arg;
	while ((ret = coil_sleep(COIL_MSEC(1))) == 0)
		; /* work */
	/* Cancelled: a shield lets the cleanup itself park. */
	coil_shield_begin();
	if (coil_sleep(COIL_MSEC(2)) == 0) /* stands for a flush */
		flushed = 1;
	coil_shield_end();
	return ret; /* -ECANCELED: the task ends CANCELLED */
}

static int amain(void *arg)
{
	coil_task *t;
	int status;

	(void)arg;
	assert(coil_spawn(&t, worker, NULL, NULL) == 0);
	assert(coil_sleep(COIL_MSEC(5)) == 0);
	coil_cancel(t);
	assert(coil_join(t, &status, coil_now() + COIL_SEC(1)) == 0);
	assert(status == -ECANCELED && flushed);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
