/* asyncio.Queue(maxsize=2): producer and consumer, with backpressure. */
#include <assert.h>
#include <errno.h>

#include <coil.h>

static coil_chan queue;

static int producer(void *arg)
{
	(void)arg;
	for (int i = 1; i <= 10; i++) {
		/* Parks while the queue is full: a fast producer cannot run away. */
		int ret = coil_chan_send(&queue, &i, coil_now() + COIL_SEC(1));

		if (ret < 0)
			return ret;
		assert(coil_chan_len(&queue) <= 2);
	}
	return coil_chan_close(&queue); /* no more items */
}

static int amain(void *arg)
{
	coil_task *t;
	int item, sum = 0, ret;

	(void)arg;
	coil_chan_init(&queue, sizeof(int), 2, "numbers");
	assert(coil_spawn(&t, producer, NULL, NULL) == 0);
	while ((ret = coil_chan_recv(&queue, &item, coil_now() + COIL_SEC(1))) == 0)
		sum += item;
	assert(ret == -EPIPE); /* closed and drained */
	assert(sum == 55);
	assert(coil_join(t, &ret, COIL_NEVER) == 0 && ret == 0);
	coil_chan_destroy(&queue);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
