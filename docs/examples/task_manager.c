/* A TaskManager: jobs with status, progress, metadata and a deadline. */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include <coil.h>

static int process(void *arg)
{
	(void)arg;
	for (int step = 1; step <= 4; step++) {
		int ret = coil_sleep(COIL_MSEC(1));

		if (ret < 0)
			return ret;
		coil_job_progress(step * 25);
	}
	return 0;
}

static int hang(void *arg)
{
	(void)arg;
	return coil_sleep_until(COIL_NEVER);
}

static int amain(void *arg)
{
	coil_manager m;
	coil_job_meta meta[] = { { "user_id", "user-123" }, { "priority", "high" } };
	coil_job_info info;
	int64_t id, late;

	(void)arg;
	coil_manager_init(&m, &(coil_manager_opts){ .max_workers = 2 });
	coil_manager_start(&m);
	id = coil_manager_submit(&m, process, NULL, &(coil_job_opts){
		.name = "process user data", .meta = meta, .nmeta = 2 });
	late = coil_manager_submit(&m, hang, NULL, &(coil_job_opts){
		.deadline = coil_now() + COIL_MSEC(10) });
	assert(id > 0 && late > 0);

	assert(coil_manager_wait(&m, id, &info, coil_now() + COIL_SEC(5)) == 0);
	assert(info.state == COIL_JOB_COMPLETED && info.progress == 100);
	assert(strcmp(coil_job_info_meta(&info, "user_id"), "user-123") == 0);

	assert(coil_manager_wait(&m, late, &info, coil_now() + COIL_SEC(5)) == 0);
	assert(info.state == COIL_JOB_FAILED && info.status == -ETIMEDOUT);

	assert(coil_manager_list(&m, COIL_JOB_FAILED, NULL, 0) == 1);
	coil_manager_stop(&m, coil_now() + COIL_SEC(1));
	coil_manager_destroy(&m);
	return 0;
}

int main(void)
{
	int status;

	assert(coil_run(amain, NULL, &status) == 0);
	return status;
}
