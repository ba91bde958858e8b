/*
 * Each stack is one anonymous mapping: a guard page, then the usable stack.
 * The guard comes from MADV_GUARD_INSTALL (Linux 6.13) where the kernel has
 * it: an mprotect'ed guard splits the mapping in two, and vm.max_map_count
 * (65530) then stops a process near 32,000 stacks.
 */
#include <errno.h>
#include <stdint.h>
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

/* Kept in the top bytes of a free stack. */
struct free_stack {
	void *next;
	unsigned valgrind_id;
};

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

/* A free stack keeps its list entry in its top bytes. */
static struct free_stack *free_entry(void *lo, size_t size)
{
	return (struct free_stack *)((char *)lo + size) - 1;
}

static void *free_stack_lo(struct free_stack *f, size_t size)
{
	return (char *)(f + 1) - size;
}

void coil__stack_pool_destroy(coil__stack_pool *p)
{
	while (p->free) {
		struct free_stack *f = p->free;
		coil__stack s = { .lo = free_stack_lo(f, p->size), .size = p->size,
				  .valgrind_id = f->valgrind_id };

		p->free = f->next;
		unmap_stack(&s);
	}
	p->free_count = 0;
}

int coil__stack_get(coil__stack_pool *p, size_t size, coil__stack *out)
{
	struct free_stack *f;
	int ret;

	size = size ? round_to_pages(size) : p->size;
	if (size < COIL_STACK_MIN || size > COIL_STACK_MAX)
		return -EINVAL;
	if (size == p->size && p->free) {
		f = p->free;
		p->free = f->next;
		p->free_count--;
		out->size = size;
		out->lo = free_stack_lo(f, size);
		out->valgrind_id = f->valgrind_id;
#ifdef COIL_ASAN
		/* The last task may have left redzones poisoned on it. */
		ASAN_UNPOISON_MEMORY_REGION(out->lo, size);
#endif
		p->live++;
		return 0;
	}
	ret = map_stack(p, size, out);
	if (ret == 0)
		p->live++;
	return ret;
}

void coil__stack_put(coil__stack_pool *p, coil__stack *s)
{
	struct free_stack *f;

	p->live--;
	if (s->size != p->size || p->free_count >= p->max_free) {
		unmap_stack(s);
		return;
	}
#ifdef COIL_ASAN
	ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
	f = free_entry(s->lo, s->size);
	f->next = p->free;
	f->valgrind_id = s->valgrind_id;
	p->free = f;
	p->free_count++;
}

int coil__stack_guard_is_madvise(void)
{
	return guard_by_madvise > 0;
}
