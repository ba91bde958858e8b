/* asyncio.Semaphore(3): at most three requests in flight at once. */
#include <assert.h>

#include <coil.h>

static coil_sem slots;
static int running, most;

static int request(void *arg)
{
	int ret = coil_sem_acquire(&slots, coil_now() + COIL_SEC(1));

	(void)arg;
	if (ret < 0)
		return ret;
	if (++running > most)
		most = running;
	ret = coil_sleep(COIL_MSEC(2)); /* stands for the request */
	running--;
	coil_sem_release(&slots);
	return ret;
}

static int amain(void *arg)
{
	coil_group g;
	int status;

	(void)arg;
	coil_sem_init(&slots, 3, "slots");
	coil_group_init(&g, "requests");
	for (int i = 0; i < 10; i++)
		assert(coil_group_spawn(&g, NULL, request, NULL, NULL) == 0);
	assert(coil_group_wait(&g, &status, coil_now() + COIL_SEC(5)) == 0);
	assert(status == 0 && most == 3);
	coil_group_destroy(&g);
	coil_sem_destroy(&slots);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
