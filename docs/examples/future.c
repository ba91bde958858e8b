/* asyncio.Future for request/response: one answer, awaited with a deadline. */
#include <assert.h>
#include <stdint.h>

#include <coil.h>

struct request {
	int question;
	coil_future reply;
};

static int server(void *arg)
{
	struct request *r = arg;

	coil_sleep(COIL_MSEC(5)); /* stands for the work */
	return coil_future_resolve(&r->reply, (void *)(intptr_t)(r->question + 1));
}

static int amain(void *arg)
{
	struct request r = { .question = 41 };
	coil_task *t;
	void *answer;

	(void)arg;
	coil_future_init(&r.reply, "reply");
	assert(coil_spawn(&t, server, &r, NULL) == 0);
	assert(coil_future_await(&r.reply, coil_now() + COIL_SEC(1)) == 0);
	assert(coil_future_result(&r.reply, &answer) == 0);
	assert((intptr_t)answer == 42);
	assert(coil_join(t, NULL, COIL_NEVER) == 0);
	coil_future_destroy(&r.reply);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
