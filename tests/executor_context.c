/* executor/context.c and the switch: new contexts, switching, stack use. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor/context.h"
#include "executor/stack.h"
#include "helper.h"

static coil__fiber main_fiber;

/* A fiber with its own stack from a pool; freed by fiber_down. */
struct test_fiber {
	coil__fiber fiber;
	coil__stack stack;
	int runs;
	void *arg_seen;
	int aligned;
};

static coil__stack_pool pool;

static void fiber_up(struct test_fiber *t, coil__context_fn *fn)
{
	ck_assert_int_eq(coil__stack_get(&pool, 0, &t->stack), 0);
	coil__fiber_init(&t->fiber, t->stack.lo, t->stack.size, fn, t);
}

static void fiber_down(struct test_fiber *t)
{
	coil__fiber_destroy(&t->fiber);
	coil__stack_put(&pool, &t->stack);
}

static void setup(void)
{
	ck_assert_int_eq(coil__stack_pool_init(&pool, 0), 0);
	coil__fiber_init_thread(&main_fiber);
}

static void teardown(void)
{
	ck_assert_uint_eq(pool.live, 0);
	coil__stack_pool_destroy(&pool);
}

/* Runs once per resume, forever; records what it sees. */
static void note_and_yield(void *arg)
{
	struct test_fiber *t = arg;
	_Alignas(16) volatile char probe[16];

	coil__fiber_started(&main_fiber);
	t->arg_seen = arg;
	/* The compiler places probe assuming an aligned stack: check it was. */
	t->aligned = ((uintptr_t)probe & 15) == 0;
	probe[0] = 1;
	for (;;) {
		t->runs++;
		coil__fiber_switch(&t->fiber, &main_fiber, 0);
	}
}

START_TEST(test_a_new_context_runs_its_function_and_switches_back)
{
	struct test_fiber t = { 0 };

	fiber_up(&t, note_and_yield);
	coil__fiber_switch(&main_fiber, &t.fiber, 0);
	ck_assert_int_eq(t.runs, 1);
	ck_assert_ptr_eq(t.arg_seen, &t);
	ck_assert(t.aligned);
	coil__fiber_switch(&main_fiber, &t.fiber, 0);
	ck_assert_int_eq(t.runs, 2);
	fiber_down(&t);
}
END_TEST

/* Adds into its registers and locals across many switches. */
static void sum_across_switches(void *arg)
{
	struct test_fiber *t = arg;
	uint64_t a = 1, b = 2, c = 3, d = 5, e = 7, f = 11;
	double x = 0.5;
	int i;

	coil__fiber_started(&main_fiber);
	for (i = 0; i < 10000; i++) {
		a += b;
		b ^= c + i;
		c += d * 3;
		d -= e;
		e += f << 1;
		f ^= a;
		x *= 1.0001;
		coil__fiber_switch(&t->fiber, &main_fiber, 0);
	}
	t->runs = (int)((a ^ b ^ c ^ d ^ e ^ f) & 0x7fffffff);
	t->arg_seen = (x > 1.0) ? arg : NULL;
	coil__fiber_switch(&t->fiber, &main_fiber, 1);
	abort();
}

static int expected_sum(void)
{
	uint64_t a = 1, b = 2, c = 3, d = 5, e = 7, f = 11;
	int i;

	for (i = 0; i < 10000; i++) {
		a += b;
		b ^= c + i;
		c += d * 3;
		d -= e;
		e += f << 1;
		f ^= a;
	}
	return (int)((a ^ b ^ c ^ d ^ e ^ f) & 0x7fffffff);
}

START_TEST(test_registers_and_locals_survive_ten_thousand_switches)
{
	struct test_fiber t = { 0 };
	uint64_t mine = 0x1234567890abcdefULL;
	volatile double y = 2.0;
	int i;

	fiber_up(&t, sum_across_switches);
	for (i = 0; i < 10001; i++) {
		coil__fiber_switch(&main_fiber, &t.fiber, 0);
		mine = mine * 6364136223846793005ULL + 1;
		y *= 1.5;
	}
	ck_assert_int_eq(t.runs, expected_sum());
	ck_assert_ptr_eq(t.arg_seen, &t);
	ck_assert(y > 2.0);
	ck_assert_uint_ne(mine, 0x1234567890abcdefULL);
	fiber_down(&t);
}
END_TEST

START_TEST(test_fibers_resumed_in_turn_each_keep_their_own_state)
{
	struct test_fiber t[50];
	int round, i;

	memset(t, 0, sizeof(t));
	for (i = 0; i < 50; i++)
		fiber_up(&t[i], note_and_yield);
	for (round = 1; round <= 20; round++)
		for (i = 0; i < 50; i++) {
			coil__fiber_switch(&main_fiber, &t[i].fiber, 0);
			ck_assert_int_eq(t[i].runs, round);
			ck_assert_ptr_eq(t[i].arg_seen, &t[i]);
		}
	for (i = 0; i < 50; i++)
		fiber_down(&t[i]);
}
END_TEST

/* Uses about depth KiB of stack, checking each frame on the way back. */
static int deep(int depth)
{
	volatile char frame[1024];
	int below;

	memset((char *)frame, depth & 0xff, sizeof(frame));
	below = depth > 0 ? deep(depth - 1) : 0;
	return below + (frame[depth % 1024] == (char)(depth & 0xff));
}

static void recurse_deep(void *arg)
{
	struct test_fiber *t = arg;

	coil__fiber_started(&main_fiber);
	t->runs = deep(64);
	coil__fiber_switch(&t->fiber, &main_fiber, 1);
	abort();
}

START_TEST(test_a_fiber_can_use_half_of_its_stack)
{
	struct test_fiber t = { 0 };

	fiber_up(&t, recurse_deep);
	coil__fiber_switch(&main_fiber, &t.fiber, 0);
	ck_assert_int_eq(t.runs, 65);
	fiber_down(&t);
}
END_TEST

static void overflow(void *arg)
{
	(void)arg;
	coil__fiber_started(&main_fiber);
	recurse_forever(0);
	abort();
}

static void switch_to(void *fiber)
{
	coil__fiber_switch(&main_fiber, fiber, 0);
}

/* Infinite recursion on a fiber must fault on its guard page. */
START_TEST(test_a_stack_overflow_faults_on_the_guard_page)
{
	struct test_fiber t = { 0 };

	fiber_up(&t, overflow);
	expect_fault_below(t.stack.lo);
	expect_guard_fault(switch_to, &t.fiber);
	fiber_down(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_context");
	TCase *tc = tcase_create("context");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_a_new_context_runs_its_function_and_switches_back);
	tcase_add_test(tc, test_registers_and_locals_survive_ten_thousand_switches);
	tcase_add_test(tc, test_fibers_resumed_in_turn_each_keep_their_own_state);
	tcase_add_test(tc, test_a_fiber_can_use_half_of_its_stack);
	tcase_add_test(tc, test_a_stack_overflow_faults_on_the_guard_page);
	suite_add_tcase(s, tc);
	return test_main(s);
}
