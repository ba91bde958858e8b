/* asyncio.Event: one signal, many waiters (a "ready" or shutdown flag). */
#include <assert.h>

#include <coil.h>

static coil_event ready;
static int started;

static int worker(void *arg)
{
	int ret = coil_event_wait(&ready, coil_now() + COIL_SEC(1));

	(void)arg;
	if (ret == 0)
		started++;
	return ret;
}

static int amain(void *arg)
{
	coil_task *t[3];
	int statuses[3];

	(void)arg;
	coil_event_init(&ready, "ready");
	for (int i = 0; i < 3; i++)
		assert(coil_spawn(&t[i], worker, NULL, NULL) == 0);
	assert(coil_sleep(COIL_MSEC(5)) == 0);
	assert(started == 0); /* all parked on the event */
	coil_event_set(&ready);
	assert(coil_gather(t, 3, statuses, 0, COIL_NEVER) == 0);
	assert(started == 3);
	coil_event_destroy(&ready);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
