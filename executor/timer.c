/*
 * The timer heap: a 4-ary implicit min-heap. Element i has its children at
 * 4i + 1 .. 4i + 4 and its parent at (i - 1) / 4.
 *
 * Why four children and not two: a heap of a million timers is 16 MB, far
 * larger than the caches, so its cost is the cache lines it touches, not the
 * comparisons it makes. Four children halve the depth (10 levels for a
 * million instead of 20), and the four sit in 64 contiguous bytes, so
 * choosing among them reads one or two cache lines where a binary heap would
 * read one line per level for half the information. The comparisons come out
 * even: 3 among the children plus 1 against the sifted element on each of
 * log4 n levels is the 2 per level on log2 n levels of a binary heap.
 *
 * What the array cannot save: every entry that moves writes its new slot into
 * its timer, which lives wherever its owner does. At a million timers those
 * scattered writes are about a quarter of the cost of a pop.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "executor/timer.h"

#define ARITY 4

/*
 * The capacity of the first allocation: 1 KiB, enough for a quiet loop
 * without any reallocation.
 *
 * The array doubles when full and never shrinks while the heap is in use: a
 * loop keeps room for its peak number of timers, 16 bytes each, until it
 * stops. Giving memory back after each burst and taking it again on the
 * next cost a page fault per 256 timers (about 10 us each on a VM) and a
 * copy: a fifth of the whole cost of a timer, measured on bursts of a
 * million.
 */
#define MIN_CAP 64

/*
 * The capacity never grows past 2^31 entries: slot holds 1 + an index in 32
 * bits, and the next doubling would not fit. On a 32-bit system the array's
 * size in bytes would overflow first, so it stops at 2^27 entries (2 GiB).
 */
#if SIZE_MAX > UINT32_MAX
#define MAX_CAP (UINT32_C(1) << 31)
#else
#define MAX_CAP (UINT32_C(1) << 27)
#endif

typedef struct coil__timer_entry entry;

/*
 * Whether a fires before b. Deadlines are compared in the array; only an
 * exact tie reaches into the timers, for their arming order.
 */
static inline bool before(const entry *a, const entry *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->timer->seq < b->timer->seq;
}

/* Store x at index i and tell its timer where it is. */
static inline void place(entry *e, uint32_t i, entry x)
{
	e[i] = x;
	x.timer->slot = i + 1;
}

/*
 * Put x into the hole at i, moving the hole up past every ancestor that fires
 * after x. The hole saves a swap per level: each ancestor is moved once.
 */
static void sift_up(entry *e, uint32_t i, entry x)
{
	uint32_t parent;

	while (i > 0) {
		parent = (i - 1) / ARITY;
		if (!before(&x, &e[parent]))
			break;
		place(e, i, e[parent]);
		i = parent;
	}
	place(e, i, x);
}

/*
 * Start loading the grandchildren of the element whose children begin at
 * child: 16 entries in a row, 256 bytes. Whichever child wins this level, the
 * next level compares four of them, so their cache misses now overlap this
 * level's instead of following them. On a heap of a million timers this
 * cuts the cost of a pop from about 250 ns to 130-170 ns (2-core EPYC VM);
 * on a heap that fits in the cache the hints cost a few cycles.
 *
 * Always inlined: GCC counts a function whose only effect is a prefetch as
 * having none, and deletes the calls to it.
 */
static inline __attribute__((always_inline)) void
prefetch_grandchildren(const entry *e, uint32_t n, uint64_t child)
{
	uint64_t first = child * ARITY + 1, last = first + ARITY * ARITY - 1;

	if (first >= n)
		return;
	if (last >= n)
		last = n - 1;
	/* One hint per cache line, and one for the line the run ends in. */
	for (; first < last; first += 64 / sizeof(entry))
		__builtin_prefetch(&e[first]);
	__builtin_prefetch(&e[last]);
}

/*
 * Put x into the hole at i in a heap of n, moving the hole down past every
 * smallest child that fires before x.
 */
static void sift_down(entry *e, uint32_t n, uint32_t i, entry x)
{
	uint64_t child, end, j, best;

	for (;;) {
		child = (uint64_t)i * ARITY + 1;
		if (child >= n)
			break;
		prefetch_grandchildren(e, n, child);
		end = child + ARITY < n ? child + ARITY : n;
		best = child;
		for (j = child + 1; j < end; j++)
			if (before(&e[j], &e[best]))
				best = j;
		if (!before(&e[best], &x))
			break;
		place(e, i, e[best]);
		i = (uint32_t)best;
	}
	place(e, i, x);
}

/* Resize the array to cap entries. Returns false, changing nothing, on failure. */
static bool resize(coil__timer_heap *h, uint32_t cap)
{
	entry *e;

	e = realloc(h->entries, (size_t)cap * sizeof(entry));
	if (!e)
		return false;
	h->entries = e;
	h->cap = cap;
	return true;
}

/* Take the entry at index i out of the heap and disarm its timer. */
static void remove_at(coil__timer_heap *h, uint32_t i)
{
	entry *e = h->entries;
	entry last;

	e[i].timer->slot = 0;
	last = e[--h->len];
	if (i < h->len) {
		/* The last entry fills the hole; it may belong above or below it. */
		if (i > 0 && before(&last, &e[(i - 1) / ARITY]))
			sift_up(e, i, last);
		else
			sift_down(e, h->len, i, last);
	}
}

void coil__timer_heap_init(coil__timer_heap *h)
{
	h->entries = NULL;
	h->len = 0;
	h->cap = 0;
	h->next_seq = 0;
}

void coil__timer_heap_destroy(coil__timer_heap *h)
{
	uint32_t i;

	for (i = 0; i < h->len; i++)
		h->entries[i].timer->slot = 0;
	free(h->entries);
	coil__timer_heap_init(h);
}

int coil__timer_heap_add(coil__timer_heap *h, coil__timer *t, int64_t deadline)
{
	if (coil__timer_armed(t))
		return -EALREADY;
	if (h->len == h->cap) {
		if (h->cap >= MAX_CAP || !resize(h, h->cap ? h->cap * 2 : MIN_CAP))
			return -ENOMEM;
	}
	t->deadline = deadline;
	t->seq = h->next_seq++;
	sift_up(h->entries, h->len++, (entry){ deadline, t });
	return 0;
}

bool coil__timer_heap_remove(coil__timer_heap *h, coil__timer *t)
{
	/* A timer armed in another heap has a slot too: it must point back. */
	if (t->slot == 0 || t->slot > h->len || h->entries[t->slot - 1].timer != t)
		return false;
	remove_at(h, t->slot - 1);
	return true;
}

coil__timer *coil__timer_heap_first(const coil__timer_heap *h)
{
	return h->len ? h->entries[0].timer : NULL;
}

coil__timer *coil__timer_heap_pop_expired(coil__timer_heap *h, int64_t now)
{
	coil__timer *t;

	if (h->len == 0 || h->entries[0].deadline > now)
		return NULL;
	t = h->entries[0].timer;
	remove_at(h, 0);
	return t;
}

uint32_t coil__timer_heap_len(const coil__timer_heap *h)
{
	return h->len;
}

coil__timer *coil__timer_heap_at(const coil__timer_heap *h, uint32_t i)
{
	return h->entries[i].timer;
}
