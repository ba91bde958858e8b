/*
 * The log hook. Messages are rare (failures, misuse, shutdown reports), so
 * this path takes a mutex and formats on the stack; nothing here is hot.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ring/log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static coil_log_fn *log_fn;
static void *log_arg;

/*
 * A fork while another thread holds the lock would leave the child's copy
 * locked forever; holding it across fork keeps both copies consistent.
 */
static void lock_for_fork(void)
{
	pthread_mutex_lock(&log_lock);
}

static void unlock_after_fork(void)
{
	pthread_mutex_unlock(&log_lock);
}

static void register_fork_handlers(void)
{
	pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork);
}

static const char *const level_names[] = {
	[COIL_LOG_ERROR] = "error",
	[COIL_LOG_WARN] = "warning",
	[COIL_LOG_INFO] = "info",
	[COIL_LOG_DEBUG] = "debug",
};

static void log_to_stderr(void *arg, enum coil_log_level level, const char *msg)
{
	char line[1100];
	int len;

	(void)arg;
	if (level > COIL_LOG_WARN)
		return;
	len = snprintf(line, sizeof(line), "coil: %s: %s\n", level_names[level], msg);
	if (len > (int)sizeof(line) - 1)
		len = sizeof(line) - 1;
	/* One write, so that lines from different threads never interleave. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

void coil_set_log(coil_log_fn *fn, void *arg)
{
	pthread_once(&log_once, register_fork_handlers);
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_arg = arg;
	pthread_mutex_unlock(&log_lock);
}

void coil__log(enum coil_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	/* Held across the call so that the hook sees one message at a time. */
	pthread_once(&log_once, register_fork_handlers);
	pthread_mutex_lock(&log_lock);
	if (log_fn)
		log_fn(log_arg, level, msg);
	else
		log_to_stderr(NULL, level, msg);
	pthread_mutex_unlock(&log_lock);
}
