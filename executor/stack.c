/*
 * Each stack is one anonymous mapping: a guard page, then the usable stack.
 * The guard comes from MADV_GUARD_INSTALL (Linux 6.13) where the kernel has
 * it: an mprotect'ed guard splits the mapping in two, and vm.max_map_count
 * (65530) then stops a process near 32,000 stacks.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "executor/context.h"
#include "executor/stack.h"
#include "ring/log.h"

#ifdef COIL_ASAN
#include <sanitizer/asan_interface.h>
#endif
#ifdef COIL_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0u
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define MAX_FREE_DEFAULT 4096

/* 0: not tried yet, 1: madvise guards work, -1: fall back to mprotect. */
static int guard_by_madvise;

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t round_to_pages(size_t size)
{
	size_t page = page_size();

	return (size + page - 1) / page * page;
}

static int install_guard(void *page, size_t len)
{
	if (guard_by_madvise >= 0) {
		if (madvise(page, len, MADV_GUARD_INSTALL) == 0) {
			guard_by_madvise = 1;
			return 0;
		}
		if (errno != EINVAL)
			return -errno;
		guard_by_madvise = -1;
	}
	return mprotect(page, len, PROT_NONE) ? -errno : 0;
}

static int map_stack(coil__stack_pool *p, size_t size, coil__stack *out)
{
	size_t guard = page_size();
	char *base;
	int ret;

	if (p->fail_next) {
		p->fail_next--;
		return -ENOMEM;
	}
	base = mmap(NULL, guard + size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED)
		return -ENOMEM;
	ret = install_guard(base, guard);
	if (ret < 0) {
		munmap(base, guard + size);
		coil__log(COIL_LOG_ERROR, "cannot install a stack guard page: %s%s",
			  strerror(-ret), ret == -ENOMEM ? " (vm.max_map_count "
			  "reached: each mprotect guard costs a mapping)" : "");
		return -ENOMEM;
	}
	out->lo = base + guard;
	out->size = size;
	out->valgrind_id = VALGRIND_STACK_REGISTER(out->lo, base + guard + size);
	return 0;
}

static void unmap_stack(coil__stack *s)
{
	size_t guard = page_size();

	VALGRIND_STACK_DEREGISTER(s->valgrind_id);
	munmap((char *)s->lo - guard, guard + s->size);
}

int coil__stack_pool_init(coil__stack_pool *p, size_t size)
{
	if (size == 0)
		size = COIL_STACK_DEFAULT;
	if (size < COIL_STACK_MIN || size > COIL_STACK_MAX)
		return -EINVAL;
	*p = (coil__stack_pool){ .size = round_to_pages(size),
				 .max_free = MAX_FREE_DEFAULT };
	return 0;
}

void coil__stack_pool_destroy(coil__stack_pool *p)
{
	while (p->free_count) {
		struct coil__free_stack *f = &p->free[--p->free_count];
		coil__stack s = { .lo = f->lo, .size = p->size,
				  .valgrind_id = f->valgrind_id };

		unmap_stack(&s);
	}
	free(p->free);
	p->free = NULL;
	p->free_cap = 0;
}

int coil__stack_get(coil__stack_pool *p, size_t size, coil__stack *out)
{
	int ret;

	size = size ? round_to_pages(size) : p->size;
	if (size < COIL_STACK_MIN || size > COIL_STACK_MAX)
		return -EINVAL;
	if (size == p->size && p->free_count) {
		struct coil__free_stack *f = &p->free[--p->free_count];

		out->size = size;
		out->lo = f->lo;
		out->valgrind_id = f->valgrind_id;
		p->live++;
		return 0;
	}
	ret = map_stack(p, size, out);
	if (ret == 0)
		p->live++;
	return ret;
}

/* Room for one more free stack, within max_free. */
static bool free_list_room(coil__stack_pool *p)
{
	struct coil__free_stack *grown;
	unsigned cap;

	if (p->free_count >= p->max_free)
		return false;
	if (p->free_count < p->free_cap)
		return true;
	cap = p->free_cap ? p->free_cap * 2 : 64;
	if (cap > p->max_free)
		cap = p->max_free;
	grown = realloc(p->free, sizeof(*grown) * cap);
	if (!grown)
		return false;
	p->free = grown;
	p->free_cap = cap;
	return true;
}

void coil__stack_put(coil__stack_pool *p, coil__stack *s)
{
	p->live--;
	if (s->size != p->size || !free_list_room(p)) {
		unmap_stack(s);
		return;
	}
#ifdef COIL_ASAN
	/* The last task may have left redzones poisoned on it. */
	ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
	p->free[p->free_count++] = (struct coil__free_stack){ s->lo, s->valgrind_id };
}

int coil__stack_guard_is_madvise(void)
{
	return guard_by_madvise > 0;
}
