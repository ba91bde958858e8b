/* asyncio.create_task, then await: start work now, collect its result later. */
#include <assert.h>
#include <stdint.h>

#include <coil.h>

static int fetch(void *arg)
{
	int ret = coil_sleep(COIL_MSEC(10)); /* stands for a request */

	return ret < 0 ? ret : (int)(intptr_t)arg * 2;
}

static int amain(void *arg)
{
	coil_task *t;
	int status;

	(void)arg;
	assert(coil_spawn(&t, fetch, (void *)21, NULL) == 0);
	/* fetch runs as soon as this task parks; do other work meanwhile. */
	assert(coil_join(t, &status, coil_now() + COIL_SEC(1)) == 0);
	assert(status == 42);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
