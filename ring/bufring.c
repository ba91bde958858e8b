/*
 * Provided-buffer rings: a group of equal buffers the kernel picks from
 * when a receive completes, instead of the submitter naming one up front.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coil.h"
#include "ring/compat.h"

int coil_bufring_init(coil_bufring *b, coil_ring *r, uint16_t group,
		      unsigned count, unsigned size)
{
	int err = 0;

	if (!count || count > 32768 || (count & (count - 1)) || !size)
		return -EINVAL;
	if (r->error)
		return r->error;
	*b = (coil_bufring){ .count = count, .size = size, .group = group };
	if (posix_memalign((void **)&b->mem, 4096, (size_t)count * size))
		return -ENOMEM;
	/* Fault the pages in now, not one by one as the first receives land. */
	memset(b->mem, 0, (size_t)count * size);
	b->br = io_uring_setup_buf_ring(&r->uring, count, group, 0, &err);
	if (!b->br) {
		free(b->mem);
		b->mem = NULL;
		return err;
	}
	for (unsigned bid = 0; bid < count; bid++)
		io_uring_buf_ring_add(b->br, coil_bufring_buf(b, bid), size,
				      (unsigned short)bid,
				      io_uring_buf_ring_mask(count), (int)bid);
	io_uring_buf_ring_advance(b->br, (int)count);
	return 0;
}

void coil_bufring_give(coil_bufring *b, unsigned bid)
{
	io_uring_buf_ring_add(b->br, coil_bufring_buf(b, bid), b->size,
			      (unsigned short)bid,
			      io_uring_buf_ring_mask(b->count), 0);
	io_uring_buf_ring_advance(b->br, 1);
}

void coil_bufring_exit(coil_bufring *b, coil_ring *r)
{
	if (!b->br)
		return;
	/*
	 * A ring torn down took its registrations with it (and its fd number
	 * may belong to another ring now). On a live ring, memory the kernel
	 * still points at is kept rather than freed under it.
	 */
	if (r->error || io_uring_unregister_buf_ring(&r->uring, b->group) == 0)
		free(b->br);
	free(b->mem);
	*b = (coil_bufring){ 0 };
}
