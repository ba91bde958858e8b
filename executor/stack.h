/*
 * Task stacks: private mappings with a guard page below each, handed out and
 * taken back by a per-loop pool so that a task spawn rarely maps memory.
 */
#ifndef COIL_EXECUTOR_STACK_H
#define COIL_EXECUTOR_STACK_H

#include <stddef.h>

#define COIL_STACK_MIN (16u * 1024)
#define COIL_STACK_MAX (256u * 1024 * 1024)
#define COIL_STACK_DEFAULT (128u * 1024)

/* A stack in use: [lo, lo + size) is usable, the guard page is below lo. */
typedef struct coil__stack {
	void *lo;
	size_t size;
	unsigned valgrind_id;
} coil__stack;

/*
 * Free stacks of the pool's size, reused most recently freed first (their
 * top pages are likely still in cache). Other sizes are mapped and unmapped
 * directly. The free list is an array of its own, not links through the
 * stacks: getting and putting a stack then touches none of its pages, which
 * matters when many thousands of them are cycled (each page touched is a
 * TLB miss). One pool per loop: not thread-safe.
 */
struct coil__free_stack {
	void *lo;
	unsigned valgrind_id;
};

typedef struct coil__stack_pool {
	size_t size;         /* usable bytes of a pooled stack, a page multiple */
	struct coil__free_stack *free; /* free[0 .. free_count) */
	unsigned free_count;
	unsigned free_cap;   /* entries allocated in free */
	unsigned max_free;   /* beyond this, returned stacks are unmapped */
	unsigned live;       /* stacks handed out and not yet returned */
	unsigned fail_next;  /* tests: fail this many upcoming new mappings */
} coil__stack_pool;

/*
 * Set up a pool of stacks of size bytes (0: COIL_STACK_DEFAULT), rounded up
 * to pages. Returns 0, or -EINVAL when size is outside
 * [COIL_STACK_MIN, COIL_STACK_MAX].
 */
int coil__stack_pool_init(coil__stack_pool *p, size_t size);

/*
 * Unmap the free stacks and free the list. Stacks still handed out are the
 * caller's to put back.
 */
void coil__stack_pool_destroy(coil__stack_pool *p);

/*
 * Get a stack of size bytes (0: the pool's size). Returns 0, -EINVAL for a
 * size out of range, or -ENOMEM when no mapping can be made.
 */
int coil__stack_get(coil__stack_pool *p, size_t size, coil__stack *out);

/* Give a stack back; its memory must not be used afterwards. */
void coil__stack_put(coil__stack_pool *p, coil__stack *s);

/* Whether new stacks get their guard from MADV_GUARD_INSTALL (no extra VMA). */
int coil__stack_guard_is_madvise(void);

#endif
