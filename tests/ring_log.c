/* ring/log.c: the log hook and its stderr default. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"
#include "ring/log.h"

/* Run the default hook with stderr sent to a pipe; return what it wrote. */
static void default_output(void (*emit)(void), char *out, size_t len)
{
	int fds[2], saved;
	ssize_t got;

	ck_assert_int_eq(pipe(fds), 0);
	saved = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	emit();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	got = read(fds[0], out, len - 1);
	out[got > 0 ? got : 0] = '\0';
	close(fds[0]);
}

static void emit_each_level(void)
{
	coil__log(COIL_LOG_ERROR, "disk %s", "gone");
	coil__log(COIL_LOG_WARN, "slow");
	coil__log(COIL_LOG_INFO, "chatty");
	coil__log(COIL_LOG_DEBUG, "chattier");
}

START_TEST(test_default_writes_errors_and_warnings_to_stderr)
{
	char out[512];

	default_output(emit_each_level, out, sizeof(out));
	ck_assert_str_eq(out, "coil: error: disk gone\ncoil: warning: slow\n");
}
END_TEST

START_TEST(test_hook_receives_every_level_with_its_message)
{
	capture_log();
	emit_each_level();
	ck_assert_str_eq(captured_log(), "error: disk gone\nwarning: slow\n"
					 "info: chatty\ndebug: chattier\n");
}
END_TEST

START_TEST(test_null_hook_restores_the_default)
{
	char out[512];

	capture_log();
	coil_set_log(NULL, NULL);
	default_output(emit_each_level, out, sizeof(out));
	ck_assert_str_eq(captured_log(), "");
	ck_assert(strstr(out, "coil: error: disk gone\n"));
}
END_TEST

static void emit_long(void)
{
	char big[5000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	coil__log(COIL_LOG_ERROR, "%s", big);
}

START_TEST(test_a_long_message_is_truncated_not_overflowed)
{
	char out[4096];

	capture_log();
	emit_long();
	/* "error: " + 1023 characters + newline. */
	ck_assert_uint_eq(strlen(captured_log()), 7 + 1023 + 1);
	coil_set_log(NULL, NULL);
	default_output(emit_long, out, sizeof(out));
	ck_assert(strncmp(out, "coil: error: xxx", 16) == 0);
	ck_assert_int_eq(out[strlen(out) - 1], '\n');
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring_log");

	ADD_TEST(s, test_default_writes_errors_and_warnings_to_stderr, 5);
	ADD_TEST(s, test_hook_receives_every_level_with_its_message, 5);
	ADD_TEST(s, test_null_hook_restores_the_default, 5);
	ADD_TEST(s, test_a_long_message_is_truncated_not_overflowed, 5);
	return test_main(s);
}
