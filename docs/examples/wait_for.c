/* asyncio.wait_for: give up on work that takes too long, and say so. */
#include <assert.h>
#include <errno.h>

#include <coil.h>

static int cleaned_up;

static int slow(void *arg)
{
	int ret = coil_sleep(COIL_SEC(10));

	(void)arg;
	cleaned_up = 1; /* runs before coil_wait_for returns */
	return ret;
}

static int amain(void *arg)
{
	int status;

	(void)arg;
	assert(coil_wait_for(slow, NULL, &status, coil_now() + COIL_MSEC(100)) ==
	       -ETIMEDOUT);
	assert(status == -ECANCELED); /* how slow ended: it was cancelled */
	assert(cleaned_up);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
