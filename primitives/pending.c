/*
 * Pending-request table: requests waiting for replies, found by id, failed
 * with -ETIMEDOUT when their deadline passes first.
 *
 * Ids go in an open-addressing hash table with linear probing, at most half
 * full (so a probe is short and a miss ends at an empty slot), and with
 * backward-shift deletion instead of tombstones, so that a table under
 * steady churn never degrades. Deadlines go in a binary min-heap of the
 * registered requests, behind one loop timer armed for the earliest: a
 * table of ten thousand requests costs the loop one timer, and a reply
 * costs O(log n) to take its request out of the heap. Both arrays are
 * allocated at init, for the capacity; nothing is allocated per request.
 */
#include <errno.h>
#include <stdlib.h>

#include "primitives/waitq.h"
#include "ring/log.h"

#define MAX_CAPACITY (1u << 24)

static uint32_t home(const coil_pending *p, uint64_t id)
{
	/* Fibonacci hashing: sequential ids spread over the whole table. */
	return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & p->mask;
}

/* The slot holding id, or -1. The table is never full, so this ends. */
static int64_t find(const coil_pending *p, uint64_t id)
{
	for (uint32_t i = home(p, id);; i = (i + 1) & p->mask) {
		if (!p->slots[i])
			return -1;
		if (p->slots[i]->id == id)
			return i;
	}
}

static void slot_insert(coil_pending *p, coil_pending_req *req)
{
	uint32_t i = home(p, req->id);

	while (p->slots[i])
		i = (i + 1) & p->mask;
	p->slots[i] = req;
}

/* Empty slot i, moving back each later entry of the run that may fill it. */
static void slot_delete(coil_pending *p, uint32_t i)
{
	for (uint32_t j = (i + 1) & p->mask; p->slots[j]; j = (j + 1) & p->mask) {
		uint32_t h = home(p, p->slots[j]->id);

		/* It may move to i unless its home lies after i, up to j. */
		if (((j - h) & p->mask) >= ((j - i) & p->mask)) {
			p->slots[i] = p->slots[j];
			i = j;
		}
	}
	p->slots[i] = NULL;
}

static void heap_place(coil_pending *p, uint32_t i, coil_pending_req *req)
{
	p->heap[i] = req;
	req->heap_index = i;
}

static void sift_up(coil_pending *p, uint32_t i, coil_pending_req *req)
{
	while (i > 0 && req->deadline < p->heap[(i - 1) / 2]->deadline) {
		heap_place(p, i, p->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_place(p, i, req);
}

static void sift_down(coil_pending *p, uint32_t i, coil_pending_req *req)
{
	uint32_t child;

	while ((child = 2 * i + 1) < p->len) {
		if (child + 1 < p->len &&
		    p->heap[child + 1]->deadline < p->heap[child]->deadline)
			child++;
		if (p->heap[child]->deadline >= req->deadline)
			break;
		heap_place(p, i, p->heap[child]);
		i = child;
	}
	heap_place(p, i, req);
}

static void unregister(coil_pending *p, coil_pending_req *req)
{
	uint32_t i = req->heap_index;
	coil_pending_req *last;

	slot_delete(p, (uint32_t)find(p, req->id));
	last = p->heap[--p->len];
	if (i < p->len) {
		if (i > 0 && last->deadline < p->heap[(i - 1) / 2]->deadline)
			sift_up(p, i, last);
		else
			sift_down(p, i, last);
	}
	req->registered = false;
}

/* Keep the table's one timer armed for its earliest deadline. */
static int rearm(coil_pending *p)
{
	int64_t first = p->len ? p->heap[0]->deadline : COIL_NEVER;
	int ret;

	if (first == p->armed_at)
		return 0;
	if (first == COIL_NEVER) {
		coil_timer_disarm(&p->timer);
	} else {
		ret = coil_timer_arm(&p->timer, first);
		if (ret < 0)
			return ret;
	}
	p->armed_at = first;
	return 0;
}

static void expire(coil_timer *timer, void *arg)
{
	coil_pending *p = arg;
	int64_t now = coil_now();
	coil_pending_req *req;

	(void)timer;
	p->armed_at = COIL_NEVER; /* it fired: it is not armed any more */
	/* Failing runs callbacks, which may change the table: look again each time. */
	while (p->len && (req = p->heap[0])->deadline <= now) {
		unregister(p, req);
		coil_future_fail(&req->future, -ETIMEDOUT);
	}
	rearm(p);
}

int coil_pending_init(coil_pending *p, unsigned capacity, const char *name)
{
	uint32_t slots = 2;

	if (!p || capacity == 0 || capacity > MAX_CAPACITY)
		return -EINVAL;
	while (slots < 2 * capacity)
		slots *= 2;
	*p = (coil_pending){ .cap = capacity, .mask = slots - 1,
			     .armed_at = COIL_NEVER };
	p->slots = calloc(slots, sizeof(*p->slots));
	p->heap = malloc(capacity * sizeof(*p->heap));
	if (!p->slots || !p->heap) {
		free(p->slots);
		free(p->heap);
		return -ENOMEM;
	}
	coil_timer_init(&p->timer, expire, p);
	return coil__prim_init(&p->prim, "pending table", name);
}

int coil_pending_destroy(coil_pending *p)
{
	char desc[96];
	int ret;

	/* A table no loop ever used may go anywhere: nothing was added. */
	if (coil__this_loop || p->prim.loop) {
		ret = coil__prim_check(&p->prim, "coil_pending_destroy");
		if (ret < 0)
			return ret;
		if (p->added) {
			coil__log(COIL_LOG_ERROR, "coil_pending_destroy on %s with "
				  "%u requests not removed", coil__prim_describe(
					  &p->prim, desc, sizeof(desc)), p->added);
			return -EBUSY;
		}
	}
	ret = coil__prim_destroy(&p->prim, "coil_pending_destroy", false);
	if (ret < 0)
		return ret;
	coil_timer_disarm(&p->timer);
	free(p->slots);
	free(p->heap);
	p->slots = p->heap = NULL;
	return 0;
}

int coil_pending_add(coil_pending *p, coil_pending_req *req, uint64_t id,
		     int64_t deadline)
{
	int64_t i;
	int ret = coil__prim_check(&p->prim, "coil_pending_add");

	if (ret < 0)
		return ret;
	if (!req)
		return -EINVAL;
	/* req may be fresh memory: only believe what the table confirms. */
	if (req->table == p && req->registered &&
	    (i = find(p, req->id)) >= 0 && p->slots[i] == req)
		return -EBUSY;
	if (find(p, id) >= 0)
		return -EEXIST;
	if (p->len == p->cap)
		return -ENOSPC;
	*req = (coil_pending_req){ .table = p, .id = id, .deadline = deadline,
				   .registered = true };
	coil_future_init(&req->future, p->prim.name);
	slot_insert(p, req);
	sift_up(p, p->len++, req);
	p->added++;
	ret = rearm(p);
	if (ret < 0) {
		unregister(p, req);
		coil_future_destroy(&req->future);
		req->table = NULL;
		p->added--;
	}
	return ret;
}

coil_future *coil_pending_future(coil_pending_req *req)
{
	return &req->future;
}

/* Take the request under id out of the table, or NULL. */
static coil_pending_req *take(coil_pending *p, uint64_t id)
{
	int64_t i = find(p, id);
	coil_pending_req *req;

	if (i < 0)
		return NULL;
	req = p->slots[i];
	unregister(p, req);
	rearm(p);
	return req;
}

int coil_pending_resolve(coil_pending *p, uint64_t id, void *value)
{
	coil_pending_req *req;
	int ret = coil__prim_check(&p->prim, "coil_pending_resolve");

	if (ret < 0)
		return ret;
	req = take(p, id);
	return req ? coil_future_resolve(&req->future, value) : -ENOENT;
}

int coil_pending_fail(coil_pending *p, uint64_t id, int err)
{
	coil_pending_req *req;
	int ret = coil__prim_check(&p->prim, "coil_pending_fail");

	if (ret < 0)
		return ret;
	if (err >= 0)
		return -EINVAL;
	req = take(p, id);
	return req ? coil_future_fail(&req->future, err) : -ENOENT;
}

int coil_pending_fail_all(coil_pending *p, int err)
{
	coil_pending_req *req;
	uint32_t n, todo;
	int ret = coil__prim_check(&p->prim, "coil_pending_fail_all");

	if (ret < 0)
		return ret;
	if (err >= 0)
		return -EINVAL;
	/* Not those its callbacks add meanwhile, as far as the count tells. */
	todo = p->len;
	for (n = 0; n < todo && p->len; n++) {
		req = p->heap[0];
		unregister(p, req);
		coil_future_fail(&req->future, err);
	}
	rearm(p);
	return (int)n;
}

int coil_pending_remove(coil_pending *p, coil_pending_req *req)
{
	char desc[96];
	int ret = coil__prim_check(&p->prim, "coil_pending_remove");

	if (ret < 0)
		return ret;
	if (!req || req->table != p) {
		coil__log(COIL_LOG_ERROR, "coil_pending_remove on %s: the request "
			  "was not added to it", coil__prim_describe(&p->prim, desc,
								 sizeof(desc)));
		return -EINVAL;
	}
	ret = coil_future_destroy(&req->future);
	if (ret < 0)
		return ret;
	if (req->registered) {
		unregister(p, req);
		rearm(p);
	}
	req->table = NULL;
	p->added--;
	return 0;
}

unsigned coil_pending_count(const coil_pending *p)
{
	return p->len;
}
