/*
 * Making contexts for the inline x86-64 switch in context.h, or, with the
 * ucontext fallback, the whole switch through makecontext/swapcontext.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

#include "executor/context.h"

#ifndef COIL_CONTEXT_UCONTEXT

/*
 * The first switch jumps to fn with rdi = arg and rsp where a call would
 * leave it: 8 below a 16-byte boundary, over a zero return address that ends
 * backtraces (and faults if fn ever returns).
 */
void coil__context_make(coil__context *c, void *lo, size_t size,
			coil__context_fn *fn, void *arg)
{
	uintptr_t *sp = (uintptr_t *)(((uintptr_t)lo + size) & ~(uintptr_t)15);

	*--sp = 0;
	c->sp = sp;
	c->bp = NULL;
	c->pc = (void *)(uintptr_t)fn;
	c->arg = arg;
}

#else

/* makecontext passes ints only: the pointers travel in 32-bit halves. */
static void context_start(unsigned fn_lo, unsigned fn_hi, unsigned arg_lo,
			  unsigned arg_hi)
{
	coil__context_fn *fn = (coil__context_fn *)(((uintptr_t)fn_hi << 32) | fn_lo);
	void *arg = (void *)(((uintptr_t)arg_hi << 32) | arg_lo);

	fn(arg);
	abort(); /* fn must switch away for good, never return */
}

void coil__context_make(coil__context *c, void *lo, size_t size,
			coil__context_fn *fn, void *arg)
{
	uintptr_t f = (uintptr_t)fn, a = (uintptr_t)arg;

	getcontext(&c->uc);
	c->uc.uc_stack.ss_sp = lo;
	c->uc.uc_stack.ss_size = size;
	c->uc.uc_link = NULL;
	makecontext(&c->uc, (void (*)(void))context_start, 4, (unsigned)f,
		    (unsigned)(f >> 32), (unsigned)a, (unsigned)(a >> 32));
}

void coil__context_switch(coil__context *from, coil__context *to)
{
	/*
	 * swapcontext installs the mask saved in the target context; the
	 * signal mask is the thread's, not a task's (as with the assembly
	 * switch), so the target resumes with the mask in force now.
	 */
	pthread_sigmask(SIG_SETMASK, NULL, &to->uc.uc_sigmask);
	swapcontext(&from->uc, &to->uc);
}

#endif
