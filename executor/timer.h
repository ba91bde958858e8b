/*
 * The user-space timers of one loop: every pending deadline (a sleeping task,
 * a callback timer) waits here, so that the loop arms at most one kernel wait,
 * for the earliest of them.
 *
 * A 4-ary min-heap of (deadline, timer) pairs, ordered by deadline and then by
 * arming order. Its costs, for n pending timers:
 *
 *	add              O(log4 n) worst case; O(1) on average for random
 *	                 deadlines, and for deadlines that only grow (a fixed
 *	                 timeout added at "now + d") one comparison, no move
 *	remove, pop      O(log4 n): about 4 comparisons on each of log4 n levels
 *	first            O(1)
 *
 * plus an amortised O(1) copy when the array doubles. A timer is embedded in
 * its owner and the heap never allocates per timer: its one array holds 16
 * bytes per timer, for the most timers ever pending at once (it does not
 * shrink until destroyed).
 *
 * Not thread-safe: a heap belongs to its loop's thread.
 */
#ifndef COIL_EXECUTOR_TIMER_H
#define COIL_EXECUTOR_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "coil.h"

/*
 * A pending deadline, embedded in its owner (a task, a callback timer). The
 * struct is in coil.h, since callback timers embed it; the heap reads and
 * writes deadline, seq and slot, and leaves fire to the loop.
 */
typedef struct coil__timer coil__timer;

/*
 * One element of the heap's array. The deadline is copied here so that
 * sifting compares keys that sit next to each other in the array instead of
 * following a pointer per comparison; the timer itself is touched only to
 * update its slot, or to read its seq when two deadlines are exactly equal.
 */
struct coil__timer_entry {
	int64_t deadline;
	coil__timer *timer;
};

typedef struct coil__timer_heap {
	/* private */
	struct coil__timer_entry *entries; /* NULL until the first add */
	uint32_t len;                      /* armed timers */
	uint32_t cap;                      /* entries allocated */
	uint64_t next_seq;                 /* the seq of the next add */
} coil__timer_heap;

/* An empty heap. It allocates nothing until the first add. */
void coil__timer_heap_init(coil__timer_heap *h);

/*
 * Free the array. Timers still in the heap become unarmed (slot 0), which
 * costs O(n) writes to them. The heap is empty afterwards and may be used
 * again.
 */
void coil__timer_heap_destroy(coil__timer_heap *h);

/*
 * Arm t for deadline. Returns 0; -EALREADY if t is armed already (in this
 * heap or another), and nothing changes; -ENOMEM if the array cannot grow
 * (refused by realloc, or already 2^31 timers), and nothing changes.
 */
int coil__timer_heap_add(coil__timer_heap *h, coil__timer *t, int64_t deadline);

/* Disarm t. Returns false, changing nothing, if t is not armed in h. */
bool coil__timer_heap_remove(coil__timer_heap *h, coil__timer *t);

/* The timer that fires first, still armed, or NULL when the heap is empty. */
coil__timer *coil__timer_heap_first(const coil__timer_heap *h);

/*
 * The timer that fires first if its deadline is at or before now, removed
 * from the heap (slot 0); NULL if there is none. Call it until it returns
 * NULL to collect every expired timer, in firing order.
 */
coil__timer *coil__timer_heap_pop_expired(coil__timer_heap *h, int64_t now);

/* The i-th timer of the heap's array (i < len), in no particular order. */
coil__timer *coil__timer_heap_at(const coil__timer_heap *h, uint32_t i);

/* The number of armed timers. */
uint32_t coil__timer_heap_len(const coil__timer_heap *h);

static inline bool coil__timer_armed(const coil__timer *t)
{
	return t->slot != 0;
}

#endif
