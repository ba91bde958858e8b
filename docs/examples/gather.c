/* asyncio.gather: run several tasks at once, collect every result. */
#include <assert.h>
#include <stdint.h>

#include <coil.h>

static int square(void *arg)
{
	int n = (int)(intptr_t)arg;
	int ret = coil_sleep(COIL_MSEC(n)); /* the slowest first: order is kept */

	return ret < 0 ? ret : n * n;
}

static int amain(void *arg)
{
	coil_task *t[3];
	int statuses[3];

	(void)arg;
	for (int i = 0; i < 3; i++)
		assert(coil_spawn(&t[i], square, (void *)(intptr_t)(3 - i), NULL) == 0);
	assert(coil_gather(t, 3, statuses, 0, coil_now() + COIL_SEC(1)) == 0);
	assert(statuses[0] == 9 && statuses[1] == 4 && statuses[2] == 1);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
