/* executor/stack.c: the stack pool, guard pages, reuse, failure. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/stack.h"
#include "helper.h"

static coil__stack_pool pool;

static void setup(void)
{
	ck_assert_int_eq(coil__stack_pool_init(&pool, 0), 0);
}

static void teardown(void)
{
	ck_assert_uint_eq(pool.live, 0);
	coil__stack_pool_destroy(&pool);
}

START_TEST(test_sizes_out_of_range_are_refused_with_einval)
{
	coil__stack_pool p;
	coil__stack s;

	ck_assert_int_eq(coil__stack_pool_init(&p, 1024), -EINVAL);
	ck_assert_int_eq(coil__stack_pool_init(&p, (size_t)1 << 30), -EINVAL);
	ck_assert_int_eq(coil__stack_get(&pool, 4096, &s), -EINVAL);
	ck_assert_int_eq(coil__stack_get(&pool, (size_t)1 << 30, &s), -EINVAL);
	ck_assert_uint_eq(pool.live, 0);
	/* Sizes round up to pages. */
	ck_assert_int_eq(coil__stack_pool_init(&p, COIL_STACK_MIN + 1), 0);
	ck_assert_uint_eq(p.size % (size_t)sysconf(_SC_PAGESIZE), 0);
	ck_assert_uint_gt(p.size, COIL_STACK_MIN);
}
END_TEST

START_TEST(test_a_stack_is_writable_from_bottom_to_top)
{
	coil__stack s;

	ck_assert_int_eq(coil__stack_get(&pool, 0, &s), 0);
	ck_assert_uint_eq(s.size, COIL_STACK_DEFAULT);
	memset(s.lo, 0xa5, s.size);
	ck_assert_int_eq(((unsigned char *)s.lo)[0], 0xa5);
	ck_assert_int_eq(((unsigned char *)s.lo)[s.size - 1], 0xa5);
	coil__stack_put(&pool, &s);
}
END_TEST

static void exit_on_segv(int sig)
{
	(void)sig;
	_exit(42);
}

START_TEST(test_the_page_below_a_stack_is_a_guard)
{
	coil__stack s;
	int status;
	pid_t pid;

	ck_assert_int_eq(coil__stack_get(&pool, 0, &s), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGSEGV, exit_on_segv);
		((volatile char *)s.lo)[-1] = 1;
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 42,
		      "writing below the stack did not fault (status 0x%x)", status);
	coil__stack_put(&pool, &s);
}
END_TEST

START_TEST(test_guards_come_from_madvise_on_a_new_kernel)
{
	coil__stack s;

	SKIP_UNLESS(kernel_version() >= 613, "MADV_GUARD_INSTALL needs Linux 6.13");
	ck_assert_int_eq(coil__stack_get(&pool, 0, &s), 0);
	ck_assert(coil__stack_guard_is_madvise());
	coil__stack_put(&pool, &s);
}
END_TEST

START_TEST(test_returned_stacks_are_reused_most_recent_first)
{
	coil__stack a, b, c, d;

	ck_assert_int_eq(coil__stack_get(&pool, 0, &a), 0);
	ck_assert_int_eq(coil__stack_get(&pool, 0, &b), 0);
	ck_assert_ptr_ne(a.lo, b.lo);
	coil__stack_put(&pool, &a);
	coil__stack_put(&pool, &b);
	ck_assert_uint_eq(pool.free_count, 2);
	ck_assert_int_eq(coil__stack_get(&pool, 0, &c), 0);
	ck_assert_int_eq(coil__stack_get(&pool, 0, &d), 0);
	ck_assert_ptr_eq(c.lo, b.lo);
	ck_assert_ptr_eq(d.lo, a.lo);
	ck_assert_uint_eq(pool.free_count, 0);
	coil__stack_put(&pool, &c);
	coil__stack_put(&pool, &d);
}
END_TEST

START_TEST(test_other_sizes_are_mapped_apart_and_not_pooled)
{
	coil__stack s;

	ck_assert_int_eq(coil__stack_get(&pool, 64 * 1024, &s), 0);
	ck_assert_uint_eq(s.size, 64 * 1024);
	memset(s.lo, 1, s.size);
	coil__stack_put(&pool, &s);
	ck_assert_uint_eq(pool.free_count, 0);
}
END_TEST

START_TEST(test_the_free_list_is_capped)
{
	coil__stack s[3];
	int i;

	pool.max_free = 2;
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(coil__stack_get(&pool, 0, &s[i]), 0);
	for (i = 0; i < 3; i++)
		coil__stack_put(&pool, &s[i]);
	ck_assert_uint_eq(pool.free_count, 2);
}
END_TEST

START_TEST(test_an_injected_mapping_failure_returns_enomem_and_the_pool_recovers)
{
	coil__stack s;

	pool.fail_next = 1;
	ck_assert_int_eq(coil__stack_get(&pool, 0, &s), -ENOMEM);
	ck_assert_uint_eq(pool.live, 0);
	ck_assert_int_eq(coil__stack_get(&pool, 0, &s), 0);
	ck_assert_uint_eq(pool.live, 1);
	coil__stack_put(&pool, &s);
}
END_TEST

/*
 * vm.max_map_count (65530) stops mprotect'ed guards near 32,750 stacks; the
 * madvise guards add no mapping, so 40,000 stacks fit.
 */
START_TEST(test_forty_thousand_stacks_fit_under_the_map_count_limit)
{
	enum { N = 40000 };
	coil__stack *s = calloc(N, sizeof(*s));
	int i;

	SKIP_UNLESS(kernel_version() >= 613, "MADV_GUARD_INSTALL needs Linux 6.13");
	ck_assert_ptr_nonnull(s);
	pool.max_free = 0;
	for (i = 0; i < N; i++)
		ck_assert_msg(coil__stack_get(&pool, 0, &s[i]) == 0, "stack %d", i);
	for (i = 0; i < N; i++)
		coil__stack_put(&pool, &s[i]);
	free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_stack");
	TCase *tc = tcase_create("stack");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sizes_out_of_range_are_refused_with_einval);
	tcase_add_test(tc, test_a_stack_is_writable_from_bottom_to_top);
	tcase_add_test(tc, test_the_page_below_a_stack_is_a_guard);
	tcase_add_test(tc, test_guards_come_from_madvise_on_a_new_kernel);
	tcase_add_test(tc, test_returned_stacks_are_reused_most_recent_first);
	tcase_add_test(tc, test_other_sizes_are_mapped_apart_and_not_pooled);
	tcase_add_test(tc, test_the_free_list_is_capped);
	tcase_add_test(tc, test_an_injected_mapping_failure_returns_enomem_and_the_pool_recovers);
	tcase_add_test(tc, test_forty_thousand_stacks_fit_under_the_map_count_limit);
	suite_add_tcase(s, tc);
	return test_main(s);
}
