/* executor/timer.c: the 4-ary heap that holds a loop's pending deadlines. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helper.h"
#include "executor/timer.h"

static coil__timer *new_timers(size_t n)
{
	coil__timer *t = calloc(n, sizeof(*t));

	ck_assert_ptr_nonnull(t);
	return t;
}

/* Whether a fires before b: by deadline, then by arming order. */
static bool fires_before(const coil__timer *a, const coil__timer *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->seq < b->seq;
}

/*
 * Look inside the heap: every entry must agree with its timer (deadline and
 * slot), and no entry may fire before its parent.
 */
static void check_heap(const coil__timer_heap *h)
{
	const struct coil__timer_entry *e = h->entries;
	uint32_t i;

	CHECK(h->len <= h->cap, "len %u > cap %u", h->len, h->cap);
	for (i = 0; i < h->len; i++) {
		CHECK(e[i].timer->slot == i + 1, "entry %u: slot %u", i,
		      e[i].timer->slot);
		CHECK(e[i].deadline == e[i].timer->deadline,
		      "entry %u: deadline %lld != %lld", i, (long long)e[i].deadline,
		      (long long)e[i].timer->deadline);
		CHECK(i == 0 || !fires_before(e[i].timer, e[(i - 1) / 4].timer),
		      "entry %u fires before its parent %u", i, (i - 1) / 4);
	}
}

static int cmp_int64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_timer_ptr(const void *a, const void *b)
{
	const coil__timer *x = *(coil__timer *const *)a, *y = *(coil__timer *const *)b;

	return fires_before(x, y) ? -1 : fires_before(y, x) ? 1 : 0;
}

#define SORT_N 20000

START_TEST(test_pop_order_is_sorted_deadline_order)
{
	coil__timer *t = new_timers(SORT_N), *x;
	int64_t *want = malloc(SORT_N * sizeof(*want));
	coil__timer_heap h;
	uint32_t i;

	ck_assert_ptr_nonnull(want);
	seed(1);
	coil__timer_heap_init(&h);
	for (i = 0; i < SORT_N; i++) {
		/* The whole int64_t range, negative deadlines included. */
		want[i] = (int64_t)rnd();
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], want[i]), 0);
	}
	check_heap(&h);
	qsort(want, SORT_N, sizeof(*want), cmp_int64);
	for (i = 0; i < SORT_N; i++) {
		x = coil__timer_heap_pop_expired(&h, INT64_MAX);
		CHECK(x != NULL, "pop %u of %u found nothing", i, SORT_N);
		CHECK(x->deadline == want[i], "pop %u: deadline %lld, sorted says %lld",
		      i, (long long)x->deadline, (long long)want[i]);
	}
	ck_assert_ptr_null(coil__timer_heap_pop_expired(&h, INT64_MAX));
	ck_assert_uint_eq(coil__timer_heap_len(&h), 0);
	coil__timer_heap_destroy(&h);
	free(want);
	free(t);
}
END_TEST

#define TIE_N 3000

START_TEST(test_equal_deadlines_pop_in_arming_order)
{
	coil__timer *t = new_timers(TIE_N), *x;
	uint32_t order[TIE_N], armed_as[TIE_N];
	uint32_t i, j, tmp, next = 0, idx, prev_idx = 0;
	coil__timer_heap h;

	seed(2);
	coil__timer_heap_init(&h);
	/* Arm in a shuffled order, on eight deadlines only: ties everywhere. */
	for (i = 0; i < TIE_N; i++)
		order[i] = i;
	for (i = TIE_N - 1; i > 0; i--) {
		j = below(i + 1);
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (i = 0; i < TIE_N; i++) {
		idx = order[i];
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[idx], (int64_t)(idx % 8)),
				 0);
		armed_as[idx] = next++;
	}
	/* Re-arming on the same deadline goes behind every timer already there. */
	for (i = 0; i < TIE_N; i += 3) {
		ck_assert(coil__timer_heap_remove(&h, &t[i]));
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], (int64_t)(i % 8)), 0);
		armed_as[i] = next++;
	}
	check_heap(&h);
	for (i = 0; i < TIE_N; i++) {
		x = coil__timer_heap_pop_expired(&h, INT64_MAX);
		ck_assert_ptr_nonnull(x);
		idx = (uint32_t)(x - t);
		if (i > 0) {
			CHECK(t[prev_idx].deadline <= x->deadline,
			      "pop %u: deadline went back", i);
			CHECK(t[prev_idx].deadline < x->deadline ||
				      armed_as[prev_idx] < armed_as[idx],
			      "pop %u: timer armed %u fired after timer armed %u on "
			      "deadline %lld",
			      i, armed_as[prev_idx], armed_as[idx],
			      (long long)x->deadline);
		}
		prev_idx = idx;
	}
	ck_assert_ptr_null(coil__timer_heap_first(&h));
	coil__timer_heap_destroy(&h);
	free(t);
}
END_TEST

#define NOW_N 1000

START_TEST(test_pop_expired_takes_everything_up_to_now_and_nothing_after)
{
	coil__timer *t = new_timers(NOW_N), *x;
	int64_t deadlines[NOW_N], expect;
	coil__timer_heap h;
	uint32_t i, j;

	seed(3);
	coil__timer_heap_init(&h);
	ck_assert_ptr_null(coil__timer_heap_pop_expired(&h, INT64_MAX));
	/* The deadlines 0 .. 999, armed in a shuffled order. */
	for (i = 0; i < NOW_N; i++)
		deadlines[i] = i;
	for (i = NOW_N - 1; i > 0; i--) {
		j = below(i + 1);
		expect = deadlines[i];
		deadlines[i] = deadlines[j];
		deadlines[j] = expect;
	}
	for (i = 0; i < NOW_N; i++)
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], deadlines[i]), 0);

	ck_assert_ptr_null(coil__timer_heap_pop_expired(&h, -1));
	ck_assert_uint_eq(coil__timer_heap_len(&h), NOW_N);
	for (expect = 0; expect <= 499; expect++) {
		x = coil__timer_heap_pop_expired(&h, 499);
		ck_assert_ptr_nonnull(x);
		ck_assert_int_eq(x->deadline, expect);
		ck_assert(!coil__timer_armed(x));
	}
	ck_assert_ptr_null(coil__timer_heap_pop_expired(&h, 499));
	ck_assert_uint_eq(coil__timer_heap_len(&h), 500);
	ck_assert_int_eq(coil__timer_heap_first(&h)->deadline, 500);

	/* A deadline equal to now has expired. */
	x = coil__timer_heap_pop_expired(&h, 500);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(x->deadline, 500);
	ck_assert_ptr_null(coil__timer_heap_pop_expired(&h, 500));
	ck_assert_uint_eq(coil__timer_heap_len(&h), 499);
	check_heap(&h);
	coil__timer_heap_destroy(&h);
	free(t);
}
END_TEST

START_TEST(test_extreme_deadlines_keep_their_order)
{
	/* A comparison by subtraction would overflow on these. */
	static const int64_t deadlines[] = {
		COIL_NEVER, 0, INT64_MIN, -1, 1, INT64_MAX - 1, INT64_MIN + 1,
	};
	static const int64_t sorted[] = {
		INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1,
	};
	coil__timer t[7], *x;
	coil__timer_heap h;
	unsigned i;

	memset(t, 0, sizeof(t));
	coil__timer_heap_init(&h);
	for (i = 0; i < 7; i++)
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], deadlines[i]), 0);
	for (i = 0; i < 6; i++) {
		x = coil__timer_heap_pop_expired(&h, INT64_MAX - 1);
		ck_assert_ptr_nonnull(x);
		ck_assert_int_eq(x->deadline, sorted[i]);
	}
	/* COIL_NEVER expires only at the end of time. */
	ck_assert_ptr_null(coil__timer_heap_pop_expired(&h, INT64_MAX - 1));
	ck_assert_ptr_eq(coil__timer_heap_first(&h), &t[0]);
	ck_assert_ptr_eq(coil__timer_heap_pop_expired(&h, COIL_NEVER), &t[0]);
	coil__timer_heap_destroy(&h);
}
END_TEST

#define REMOVE_N 4000

/* Pop everything and compare with the timers still marked live, sorted. */
static void drain_matches(coil__timer_heap *h, coil__timer *t, const bool *live,
			  uint32_t n)
{
	coil__timer **want = malloc(n * sizeof(*want));
	uint32_t i, count = 0;
	coil__timer *x;

	ck_assert_ptr_nonnull(want);
	for (i = 0; i < n; i++)
		if (live[i])
			want[count++] = &t[i];
	qsort(want, count, sizeof(*want), cmp_timer_ptr);
	ck_assert_uint_eq(coil__timer_heap_len(h), count);
	for (i = 0; i < count; i++) {
		x = coil__timer_heap_pop_expired(h, INT64_MAX);
		CHECK(x == want[i], "pop %u: timer %td, expected timer %td", i,
		      x ? x - t : -1, want[i] - t);
	}
	ck_assert_ptr_null(coil__timer_heap_pop_expired(h, INT64_MAX));
	free(want);
}

static void remove_live(coil__timer_heap *h, coil__timer *t, bool *live, coil__timer *x)
{
	ck_assert_ptr_nonnull(x);
	ck_assert(coil__timer_heap_remove(h, x));
	ck_assert_uint_eq(x->slot, 0);
	live[x - t] = false;
	check_heap(h);
}

START_TEST(test_removing_arbitrary_timers_keeps_heap_order)
{
	coil__timer *t = new_timers(REMOVE_N), *latest;
	bool live[REMOVE_N];
	coil__timer_heap h;
	uint32_t i, len;

	seed(4);
	coil__timer_heap_init(&h);
	for (i = 0; i < REMOVE_N; i++) {
		/* Deadlines from a narrow range: ties are broken by seq. */
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], (int64_t)below(1000)),
				 0);
		live[i] = true;
	}
	/* The earliest, the entry in the last slot, one in the middle slot. */
	remove_live(&h, t, live, coil__timer_heap_first(&h));
	len = coil__timer_heap_len(&h);
	remove_live(&h, t, live, h.entries[len - 1].timer);
	len = coil__timer_heap_len(&h);
	remove_live(&h, t, live, h.entries[len / 2].timer);
	/* The one that fires last. */
	for (latest = &t[0], i = 1; i < REMOVE_N; i++)
		if (live[i] && (!live[latest - t] || fires_before(latest, &t[i])))
			latest = &t[i];
	remove_live(&h, t, live, latest);
	ck_assert_uint_eq(coil__timer_heap_len(&h), REMOVE_N - 4);

	/* A random half of the rest, checking the whole heap now and then. */
	for (i = 0; i < REMOVE_N; i++) {
		if (!live[i] || below(2))
			continue;
		ck_assert(coil__timer_heap_remove(&h, &t[i]));
		ck_assert(!coil__timer_armed(&t[i]));
		live[i] = false;
		if (i % 64 == 0)
			check_heap(&h);
	}
	check_heap(&h);
	ck_assert_uint_lt(coil__timer_heap_len(&h), REMOVE_N * 6 / 10);
	ck_assert_uint_gt(coil__timer_heap_len(&h), REMOVE_N * 4 / 10);
	drain_matches(&h, t, live, REMOVE_N);
	coil__timer_heap_destroy(&h);
	free(t);
}
END_TEST

START_TEST(test_remove_returns_false_for_a_timer_not_armed_here)
{
	coil__timer t[4], never = { 0 };
	coil__timer_heap h, other;
	unsigned i;

	memset(t, 0, sizeof(t));
	coil__timer_heap_init(&h);
	coil__timer_heap_init(&other);
	ck_assert(!coil__timer_heap_remove(&h, &never)); /* on an empty heap */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], 10 * i), 0);
	ck_assert(!coil__timer_heap_remove(&h, &never));

	/* Removed twice: the second time it is not armed. */
	ck_assert(coil__timer_heap_remove(&h, &t[1]));
	ck_assert(!coil__timer_heap_remove(&h, &t[1]));
	/* Popped, then removed. */
	ck_assert_ptr_eq(coil__timer_heap_pop_expired(&h, 0), &t[0]);
	ck_assert(!coil__timer_heap_remove(&h, &t[0]));

	/* Armed in another heap, in a slot that exists here too. */
	ck_assert_int_eq(coil__timer_heap_add(&other, &t[3], 5), 0);
	ck_assert_uint_eq(t[3].slot, 1);
	ck_assert(!coil__timer_heap_remove(&h, &t[3]));
	ck_assert(coil__timer_armed(&t[3]));
	ck_assert_ptr_eq(coil__timer_heap_first(&other), &t[3]);

	/* None of that disturbed what is armed here. */
	ck_assert_uint_eq(coil__timer_heap_len(&h), 1);
	ck_assert_ptr_eq(coil__timer_heap_first(&h), &t[2]);
	check_heap(&h);
	coil__timer_heap_destroy(&other);
	coil__timer_heap_destroy(&h);
}
END_TEST

START_TEST(test_adding_an_armed_timer_returns_ealready_and_changes_nothing)
{
	coil__timer t[3], before;
	coil__timer_heap h, other;
	unsigned i;

	memset(t, 0, sizeof(t));
	coil__timer_heap_init(&h);
	coil__timer_heap_init(&other);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], 100 + i), 0);
	before = t[2];

	/* An earlier deadline would move it to the front, were it accepted. */
	ck_assert_int_eq(coil__timer_heap_add(&h, &t[2], 1), -EALREADY);
	ck_assert_int_eq(coil__timer_heap_add(&other, &t[2], 1), -EALREADY);
	ck_assert_int_eq(t[2].deadline, before.deadline);
	ck_assert_uint_eq(t[2].seq, before.seq);
	ck_assert_uint_eq(t[2].slot, before.slot);
	ck_assert_uint_eq(coil__timer_heap_len(&h), 3);
	ck_assert_uint_eq(coil__timer_heap_len(&other), 0);
	ck_assert_ptr_eq(coil__timer_heap_first(&h), &t[0]);
	check_heap(&h);

	/* Nor did the refusals use up arming order: seq follows on. */
	ck_assert(coil__timer_heap_remove(&h, &t[0]));
	ck_assert_int_eq(coil__timer_heap_add(&h, &t[0], 1), 0);
	ck_assert_uint_eq(t[0].seq, before.seq + 1);
	for (i = 0; i < 3; i++)
		ck_assert_ptr_eq(coil__timer_heap_pop_expired(&h, INT64_MAX), &t[i]);
	coil__timer_heap_destroy(&other);
	coil__timer_heap_destroy(&h);
}
END_TEST

START_TEST(test_slot_is_zero_after_pop_or_remove_and_rearming_works)
{
	coil__timer t[8];
	coil__timer_heap h;
	unsigned i;

	memset(t, 0, sizeof(t));
	coil__timer_heap_init(&h);
	for (i = 0; i < 8; i++) {
		ck_assert(!coil__timer_armed(&t[i]));
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], 8 - i), 0);
		ck_assert(coil__timer_armed(&t[i]));
		ck_assert_uint_ge(t[i].slot, 1);
		ck_assert_uint_le(t[i].slot, i + 1);
	}
	ck_assert_ptr_eq(coil__timer_heap_pop_expired(&h, 1), &t[7]);
	ck_assert_uint_eq(t[7].slot, 0);
	ck_assert(coil__timer_heap_remove(&h, &t[3]));
	ck_assert_uint_eq(t[3].slot, 0);

	/* Both come back with new deadlines and fire in their new places. */
	ck_assert_int_eq(coil__timer_heap_add(&h, &t[7], 100), 0);
	ck_assert_int_eq(coil__timer_heap_add(&h, &t[3], 0), 0);
	ck_assert_int_eq(t[7].deadline, 100);
	ck_assert_uint_eq(coil__timer_heap_len(&h), 8);
	check_heap(&h);
	ck_assert_ptr_eq(coil__timer_heap_pop_expired(&h, 0), &t[3]);
	for (i = 6; i != 3; i--)
		ck_assert_ptr_eq(coil__timer_heap_pop_expired(&h, INT64_MAX), &t[i]);
	for (i = 2; i != (unsigned)-1; i--)
		ck_assert_ptr_eq(coil__timer_heap_pop_expired(&h, INT64_MAX), &t[i]);
	ck_assert_ptr_eq(coil__timer_heap_first(&h), &t[7]);
	ck_assert_ptr_eq(coil__timer_heap_pop_expired(&h, 100), &t[7]);
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(t[i].slot, 0);
	coil__timer_heap_destroy(&h);
}
END_TEST

/*
 * The model: a pool of timers, and for each whether it is armed, its deadline
 * and its own arming counter, kept apart from the heap's seq. The expected
 * first timer is found by scanning the armed ones.
 */
#define MODEL_POOL 512
#define MODEL_STEPS 200000

struct model {
	bool armed[MODEL_POOL];
	int64_t deadline[MODEL_POOL];
	uint64_t order[MODEL_POOL];
	uint64_t next_order;
	uint32_t count;
};

static int model_first(const struct model *m)
{
	int best = -1, i;

	for (i = 0; i < MODEL_POOL; i++) {
		if (!m->armed[i])
			continue;
		if (best < 0 || m->deadline[i] < m->deadline[best] ||
		    (m->deadline[i] == m->deadline[best] && m->order[i] < m->order[best]))
			best = i;
	}
	return best;
}

/* Mostly a small range, for ties; now and then the ends of time. */
static int64_t model_deadline(void)
{
	switch (below(64)) {
	case 0:
		return INT64_MIN;
	case 1:
		return COIL_NEVER;
	default:
		return (int64_t)below(256);
	}
}

START_TEST(test_random_operations_match_a_reference_model)
{
	coil__timer *t = new_timers(MODEL_POOL), *x;
	struct model *m = calloc(1, sizeof(*m));
	uint32_t step, i, add_pct, max_len = 0, emptied = 0;
	coil__timer_heap h;
	int64_t d, now;
	int first, ret;
	bool removed;

	ck_assert_ptr_nonnull(m);
	seed(5);
	coil__timer_heap_init(&h);
	for (step = 0; step < MODEL_STEPS; step++) {
		/*
		 * Phases that mostly arm, then mostly disarm, so that the heap
		 * fills the pool and empties again: growth and shrinking both
		 * run, and so do operations on an empty heap.
		 */
		add_pct = (step / 5000) % 2 ? 10 : 90;
		i = below(MODEL_POOL);
		if (below(100) < add_pct) {
			d = model_deadline();
			ret = coil__timer_heap_add(&h, &t[i], d);
			if (m->armed[i]) {
				CHECK(ret == -EALREADY, "step %u: add of armed %u: %d",
				      step, i, ret);
			} else {
				CHECK(ret == 0, "step %u: add %u: %d", step, i, ret);
				m->armed[i] = true;
				m->deadline[i] = d;
				m->order[i] = m->next_order++;
				m->count++;
			}
		} else if (below(2)) {
			removed = coil__timer_heap_remove(&h, &t[i]);
			CHECK(removed == m->armed[i],
			      "step %u: remove %u: %d, model says %d", step, i, removed,
			      m->armed[i]);
			if (m->armed[i]) {
				m->armed[i] = false;
				m->count--;
			}
		} else {
			now = below(8) ? (int64_t)below(300) - 20 : model_deadline();
			first = model_first(m);
			x = coil__timer_heap_pop_expired(&h, now);
			if (first >= 0 && m->deadline[first] <= now) {
				CHECK(x == &t[first],
				      "step %u: pop(%lld) gave %td, model says %d", step,
				      (long long)now, x ? x - t : -1, first);
				m->armed[first] = false;
				m->count--;
			} else {
				CHECK(x == NULL,
				      "step %u: pop(%lld) gave %td, model says none",
				      step, (long long)now, x - t);
			}
		}
		first = model_first(m);
		x = coil__timer_heap_first(&h);
		CHECK(x == (first >= 0 ? &t[first] : NULL),
		      "step %u: first is %td, model says %d", step, x ? x - t : -1,
		      first);
		CHECK(coil__timer_heap_len(&h) == m->count,
		      "step %u: len %u, model says %u", step, coil__timer_heap_len(&h),
		      m->count);
		CHECK(coil__timer_armed(&t[i]) == m->armed[i],
		      "step %u: timer %u armed %d", step, i, coil__timer_armed(&t[i]));
		if (step % 16 == 0)
			check_heap(&h);
		if (m->count > max_len)
			max_len = m->count;
		emptied += m->count == 0;
	}
	/* The phases did what they were meant to. */
	ck_assert_uint_gt(max_len, MODEL_POOL * 3 / 4);
	ck_assert_uint_gt(emptied, 100);
	coil__timer_heap_destroy(&h);
	free(m);
	free(t);
}
END_TEST

#define MILLION 1000000

/*
 * A million timers with random deadlines in, all out in order. Not timed, as
 * a shared CI machine would make any bound flaky; that it finishes well
 * inside its timeout, even under ASan, shows the costs stay logarithmic.
 */
START_TEST(test_a_million_timers_pop_in_deadline_order)
{
	coil__timer *t = new_timers(MILLION), *x, *prev = NULL;
	uint8_t *seen = calloc(MILLION, 1);
	coil__timer_heap h;
	uint32_t i;
	size_t idx;

	ck_assert_ptr_nonnull(seen);
	seed(6);
	coil__timer_heap_init(&h);
	for (i = 0; i < MILLION; i++) {
		/* Within 2^40 ns, about 18 minutes. */
		if (coil__timer_heap_add(&h, &t[i], (int64_t)(rnd() >> 24)) != 0)
			ck_abort_msg("add %u failed", i);
	}
	ck_assert_uint_eq(coil__timer_heap_len(&h), MILLION);
	for (i = 0; i < MILLION; i++) {
		x = coil__timer_heap_pop_expired(&h, INT64_MAX);
		CHECK(x != NULL, "pop %u found nothing", i);
		idx = (size_t)(x - t);
		CHECK(idx < MILLION && !seen[idx], "pop %u: timer %zu twice", i, idx);
		seen[idx] = 1;
		CHECK(x->slot == 0, "pop %u: slot %u", i, x->slot);
		CHECK(!prev || fires_before(prev, x), "pop %u: out of order", i);
		prev = x;
	}
	ck_assert_ptr_null(coil__timer_heap_pop_expired(&h, INT64_MAX));
	ck_assert_uint_eq(coil__timer_heap_len(&h), 0);
	coil__timer_heap_destroy(&h);
	free(seen);
	free(t);
}
END_TEST

#define BURST_N 100000

START_TEST(test_the_array_keeps_its_capacity_for_the_next_burst)
{
	coil__timer *t = new_timers(BURST_N);
	struct coil__timer_entry *array;
	coil__timer_heap h;
	uint32_t i, cap;

	seed(7);
	coil__timer_heap_init(&h);
	ck_assert_uint_eq(h.cap, 0); /* nothing allocated before the first add */
	for (i = 0; i < BURST_N; i++)
		CHECK(coil__timer_heap_add(&h, &t[i], (int64_t)below(1u << 30)) == 0,
		      "add %u", i);
	ck_assert_uint_ge(h.cap, BURST_N);
	ck_assert_uint_lt(h.cap, 2 * BURST_N);
	cap = h.cap;
	array = h.entries;

	/* Half removed, half popped: the room stays, and is used again. */
	for (i = 0; i < BURST_N; i += 2)
		CHECK(coil__timer_heap_remove(&h, &t[i]), "remove %u", i);
	while (coil__timer_heap_pop_expired(&h, INT64_MAX))
		;
	ck_assert_uint_eq(h.len, 0);
	ck_assert_uint_eq(h.cap, cap);
	for (i = 0; i < BURST_N; i++)
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], BURST_N - i), 0);
	ck_assert_ptr_eq(h.entries, array);
	ck_assert_ptr_eq(coil__timer_heap_first(&h), &t[BURST_N - 1]);
	coil__timer_heap_destroy(&h);
	ck_assert_ptr_null(h.entries);
	free(t);
}
END_TEST

START_TEST(test_destroy_leaves_armed_timers_unarmed)
{
	coil__timer *t = new_timers(1000);
	coil__timer_heap h;
	uint32_t i;

	seed(8);
	coil__timer_heap_init(&h);
	coil__timer_heap_destroy(&h); /* a heap that never allocated */
	for (i = 0; i < 1000; i++)
		ck_assert_int_eq(coil__timer_heap_add(&h, &t[i], (int64_t)below(100)), 0);
	for (i = 0; i < 10; i++)
		ck_assert_ptr_nonnull(coil__timer_heap_pop_expired(&h, INT64_MAX));
	for (i = 0; i < 10; i++)
		coil__timer_heap_remove(&h, &t[below(1000)]);
	coil__timer_heap_destroy(&h);
	for (i = 0; i < 1000; i++)
		CHECK(!coil__timer_armed(&t[i]), "timer %u still armed (slot %u)", i,
		      t[i].slot);
	ck_assert_uint_eq(coil__timer_heap_len(&h), 0);
	ck_assert_ptr_null(coil__timer_heap_first(&h));
	ck_assert_ptr_null(coil__timer_heap_pop_expired(&h, INT64_MAX));

	/* The heap and the timers can be used again. */
	ck_assert_int_eq(coil__timer_heap_add(&h, &t[5], 7), 0);
	ck_assert_int_eq(coil__timer_heap_add(&h, &t[6], 3), 0);
	ck_assert_ptr_eq(coil__timer_heap_first(&h), &t[6]);
	coil__timer_heap_destroy(&h);
	ck_assert(!coil__timer_armed(&t[5]));
	ck_assert(!coil__timer_armed(&t[6]));
	free(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_timer");

	ADD_TEST(s, test_pop_order_is_sorted_deadline_order, 10);
	ADD_TEST(s, test_equal_deadlines_pop_in_arming_order, 10);
	ADD_TEST(s, test_pop_expired_takes_everything_up_to_now_and_nothing_after, 10);
	ADD_TEST(s, test_extreme_deadlines_keep_their_order, 10);
	ADD_TEST(s, test_removing_arbitrary_timers_keeps_heap_order, 10);
	ADD_TEST(s, test_remove_returns_false_for_a_timer_not_armed_here, 10);
	ADD_TEST(s, test_adding_an_armed_timer_returns_ealready_and_changes_nothing, 10);
	ADD_TEST(s, test_slot_is_zero_after_pop_or_remove_and_rearming_works, 10);
	ADD_TEST(s, test_random_operations_match_a_reference_model, 60);
	ADD_TEST(s, test_a_million_timers_pop_in_deadline_order, 60);
	ADD_TEST(s, test_the_array_keeps_its_capacity_for_the_next_burst, 30);
	ADD_TEST(s, test_destroy_leaves_armed_timers_unarmed, 10);
	return test_main(s);
}
