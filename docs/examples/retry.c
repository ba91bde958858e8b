/* A retry loop with a timeout per attempt and backoff between attempts. */
#include <assert.h>
#include <errno.h>

#include <coil.h>

static int calls;

static int flaky(void *arg)
{
	(void)arg;
	return ++calls < 3 ? -ECONNREFUSED : 0;
}

static int amain(void *arg)
{
	coil_retry_opts opts = {
		.attempts = 5,
		.attempt_timeout = COIL_SEC(1),
		.backoff_initial = COIL_MSEC(10),
		.backoff_max = COIL_SEC(1),
		.jitter = 0.5,
	};
	int status;

	(void)arg;
	assert(coil_retry(flaky, NULL, &opts, &status, coil_now() + COIL_SEC(10)) == 3);
	assert(status == 0);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
