/* asyncio.TaskGroup: no child outlives the block; a failure cancels the rest. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>

#include <coil.h>

static int cancelled;

static int child(void *arg)
{
	int ms = (int)(intptr_t)arg;
	int ret = coil_sleep(COIL_MSEC(ms));

	if (ret == -ECANCELED)
		cancelled++;
	if (ret < 0)
		return ret;
	return ms == 1 ? -EIO : 0; /* the quickest one fails */
}

static int amain(void *arg)
{
	coil_group g;
	int status;

	(void)arg;
	coil_group_init(&g, "children");
	for (int ms = 1; ms <= 3; ms++)
		assert(coil_group_spawn(&g, NULL, child, (void *)(intptr_t)(ms * 1000),
					NULL) == 0);
	assert(coil_group_spawn(&g, NULL, child, (void *)1, NULL) == 0);
	/* Leaving the group: returns once every child has ended. */
	assert(coil_group_wait(&g, &status, coil_now() + COIL_SEC(10)) == 0);
	assert(status == -EIO);
	assert(cancelled == 3);
	coil_group_destroy(&g);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
