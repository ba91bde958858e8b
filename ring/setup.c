/*
 * Ring setup and teardown: asking the kernel for the best flags it grants,
 * probing opcodes, explaining failures, and noticing fork.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "ring/compat.h"
#include "ring/log.h"

#define DEFAULT_ENTRIES 256
#define MAX_ENTRIES 32768
#define MAX_CQ_ENTRIES 65536
#define EXIT_GRACE COIL_SEC(1)

/*
 * Bumped in every forked child. A ring records the generation it was created
 * in; any other value means its memory is shared with the parent's ring, so
 * the child must not touch it. Starts at 1: a live_gen of 0 marks a ring that
 * was never set up or has exited.
 */
unsigned coil__fork_generation = 1;

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void after_fork_in_child(void)
{
	if (++coil__fork_generation == 0)
		coil__fork_generation = 1;
}

static void watch_forks(void)
{
	pthread_atfork(NULL, NULL, after_fork_in_child);
}

/*
 * The order in which flags are given up when the kernel answers -EINVAL:
 * newest first, so that each step lands on what an older kernel grants.
 * DEFER_TASKRUN (6.1), SINGLE_ISSUER (6.0), TASKRUN_FLAG and COOP_TASKRUN
 * (5.19), SUBMIT_ALL (5.18), CQSIZE (5.5).
 */
static const unsigned fallback_order[] = {
	IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_SINGLE_ISSUER,
	IORING_SETUP_TASKRUN_FLAG,  IORING_SETUP_COOP_TASKRUN,
	IORING_SETUP_SUBMIT_ALL,    IORING_SETUP_CQSIZE,
};

static const struct {
	unsigned flag;
	const char *name;
} flag_names[] = {
	{ IORING_SETUP_IOPOLL, "IOPOLL" },
	{ IORING_SETUP_SQPOLL, "SQPOLL" },
	{ IORING_SETUP_SQ_AFF, "SQ_AFF" },
	{ IORING_SETUP_CQSIZE, "CQSIZE" },
	{ IORING_SETUP_CLAMP, "CLAMP" },
	{ IORING_SETUP_ATTACH_WQ, "ATTACH_WQ" },
	{ IORING_SETUP_R_DISABLED, "R_DISABLED" },
	{ IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL" },
	{ IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN" },
	{ IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG" },
	{ IORING_SETUP_SQE128, "SQE128" },
	{ IORING_SETUP_CQE32, "CQE32" },
	{ IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER" },
	{ IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN" },
	{ IORING_SETUP_NO_MMAP, "NO_MMAP" },
	{ IORING_SETUP_REGISTERED_FD_ONLY, "REGISTERED_FD_ONLY" },
	{ IORING_SETUP_NO_SQARRAY, "NO_SQARRAY" },
};

/* "A|B|C" for a set of setup flags, "none" for the empty set. */
static const char *describe_flags(unsigned flags, char *buf, size_t len)
{
	size_t used = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]) && used < len; i++) {
		if (!(flags & flag_names[i].flag))
			continue;
		used += snprintf(buf + used, len - used, "%s%s", used ? "|" : "",
				 flag_names[i].name);
		flags &= ~flag_names[i].flag;
	}
	if (flags && used < len)
		used += snprintf(buf + used, len - used, "%s0x%x", used ? "|" : "", flags);
	if (!used)
		snprintf(buf, len, "none");
	return buf;
}

/*
 * Drop the flags that are invalid, or blind, without another that is gone.
 * COOP_TASKRUN and DEFER_TASKRUN postpone completion work until this thread
 * enters the kernel; only TASKRUN_FLAG lets user space see that work is
 * pending, so neither is kept without it (COOP and the flag came together in
 * 5.19). Without both the kernel interrupts the thread to run the work.
 */
static unsigned consistent(unsigned flags)
{
	if (!(flags & IORING_SETUP_SINGLE_ISSUER))
		flags &= ~IORING_SETUP_DEFER_TASKRUN;
	if (!(flags & IORING_SETUP_TASKRUN_FLAG))
		flags &= ~(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN);
	if (!(flags & (IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN)))
		flags &= ~IORING_SETUP_TASKRUN_FLAG;
	if (flags & IORING_SETUP_SQPOLL)
		flags &= ~(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_DEFER_TASKRUN |
			   IORING_SETUP_TASKRUN_FLAG);
	return flags;
}

/* The next rung down the ladder, or flags itself at the bottom. */
static unsigned fall_back(unsigned flags)
{
	unsigned i;

	for (i = 0; i < sizeof(fallback_order) / sizeof(fallback_order[0]); i++)
		if (flags & fallback_order[i])
			return consistent(flags & ~fallback_order[i]);
	return flags;
}

static unsigned round_up_pow2(unsigned n)
{
	unsigned p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

/*
 * The memory a ring pins, as the kernel charges it: the SQE array, and the
 * rings (a header, the CQEs, the SQ index array), each rounded to pages.
 */
static size_t ring_bytes(unsigned sq, unsigned cq)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t rings = 320 + (size_t)cq * sizeof(struct io_uring_cqe) + sq * 4u;
	size_t sqes = (size_t)sq * sizeof(struct io_uring_sqe);

	return (rings + page - 1) / page * page + (sqes + page - 1) / page * page;
}

static int read_sysctl(const char *path)
{
	FILE *f = fopen(path, "re");
	int value = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &value) != 1)
		value = -1;
	fclose(f);
	return value;
}

static void explain_setup_error(int err, unsigned sq, unsigned cq, unsigned flags)
{
	char names[256];
	struct rlimit lim;
	int disabled;

	switch (err) {
	case -ENOMEM:
		if (geteuid() != 0 && getrlimit(RLIMIT_MEMLOCK, &lim) == 0 &&
		    lim.rlim_cur != RLIM_INFINITY) {
			coil__log(COIL_LOG_ERROR,
				  "cannot create an io_uring of %u SQ / %u CQ entries: "
				  "its %zu KiB of ring memory are charged to RLIMIT_MEMLOCK, "
				  "which is %llu KiB for this user and shared by all of the "
				  "user's rings and registered buffers; raise it (ulimit -l, "
				  "LimitMEMLOCK= for a systemd service) or ask for fewer entries",
				  sq, cq, ring_bytes(sq, cq) / 1024,
				  (unsigned long long)lim.rlim_cur / 1024);
			return;
		}
		coil__log(COIL_LOG_ERROR,
			  "cannot create an io_uring of %u SQ / %u CQ entries "
			  "(%zu KiB of ring memory): the kernel is out of memory",
			  sq, cq, ring_bytes(sq, cq) / 1024);
		return;
	case -EPERM:
		disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
		if (disabled == 2)
			coil__log(COIL_LOG_ERROR, "io_uring is disabled on this system "
				  "(sysctl kernel.io_uring_disabled = 2)");
		else if (disabled == 1)
			coil__log(COIL_LOG_ERROR, "io_uring is restricted on this system "
				  "(sysctl kernel.io_uring_disabled = 1): only members of the "
				  "group in kernel.io_uring_group may create rings");
		else
			coil__log(COIL_LOG_ERROR, "io_uring_setup was refused (EPERM): "
				  "a seccomp filter blocks io_uring (a container runtime's "
				  "default profile, or systemd's SystemCallFilter=)");
		return;
	case -ENOSYS:
		coil__log(COIL_LOG_ERROR, "io_uring is not available: the kernel was "
			  "built without it, or a seccomp filter hides io_uring_setup");
		return;
	case -EMFILE:
	case -ENFILE:
		coil__log(COIL_LOG_ERROR, "cannot create an io_uring: no file "
			  "descriptor left (%s)", err == -EMFILE ?
			  "RLIMIT_NOFILE of this process" : "system-wide limit");
		return;
	default:
		coil__log(COIL_LOG_ERROR, "io_uring_setup with %u entries and flags %s "
			  "failed: %s", sq, describe_flags(flags, names, sizeof(names)),
			  strerror(-err));
	}
}

static void probe_ops(coil_ring *r)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(&r->uring);
	unsigned op;

	if (!probe) {
		coil__log(COIL_LOG_WARN, "io_uring opcode probe failed; coil will "
			  "assume no optional opcode is supported");
		return;
	}
	for (op = 0; op < probe->ops_len && op < 256; op++)
		if (probe->ops[op].flags & IO_URING_OP_SUPPORTED)
			r->ops[op / 64] |= 1ULL << (op % 64);
	io_uring_free_probe(probe);
}

int coil_ring_init(coil_ring *r, const coil_ring_opts *opts)
{
	static const coil_ring_opts defaults;
	unsigned wanted, flags, sq, cq;
	char a[256], b[256];
	int ret;

	if (!r)
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	memset(r, 0, sizeof(*r));
	r->error = -EBADF;

	sq = round_up_pow2(opts->entries ? opts->entries : DEFAULT_ENTRIES);
	cq = round_up_pow2(opts->cq_entries > 2 * sq ? opts->cq_entries : 2 * sq);
	if (opts->entries > MAX_ENTRIES || opts->cq_entries > MAX_CQ_ENTRIES) {
		coil__log(COIL_LOG_ERROR, "a ring takes at most %d SQ and %d CQ "
			  "entries; asked for %u and %u", MAX_ENTRIES, MAX_CQ_ENTRIES,
			  opts->entries, opts->cq_entries);
		return -EINVAL;
	}
	if (cq > MAX_CQ_ENTRIES)
		cq = MAX_CQ_ENTRIES;

	if (opts->sqpoll)
		wanted = IORING_SETUP_SQPOLL | IORING_SETUP_SINGLE_ISSUER;
	else
		wanted = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			 IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_COOP_TASKRUN;
	wanted |= IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;

	flags = consistent(wanted);
	for (;;) {
		struct io_uring_params p = { 0 };

		p.flags = flags;
		p.cq_entries = cq;
		p.sq_thread_idle = opts->sqpoll_idle_ms ? opts->sqpoll_idle_ms : 1000;
		if (flags & opts->disable_flags)
			ret = -EINVAL; /* refused on the caller's behalf */
		else
			ret = io_uring_queue_init_params(sq, &r->uring, &p);
		if (ret != -EINVAL || fall_back(flags) == flags)
			break;
		flags = fall_back(flags);
	}
	if (ret < 0) {
		explain_setup_error(ret, sq, cq, flags);
		return ret;
	}
	if (flags != wanted)
		coil__log(COIL_LOG_INFO, "ring set up with %s; not granted: %s",
			  describe_flags(flags, a, sizeof(a)),
			  describe_flags(wanted & ~flags, b, sizeof(b)));

	r->setup_flags = flags;
	ret = io_uring_register_ring_fd(&r->uring);
	if (ret < 0)
		coil__log(COIL_LOG_DEBUG, "ring fd not registered: %s", strerror(-ret));
	probe_ops(r);

	pthread_once(&fork_once, watch_forks);
	r->owner = pthread_self();
	r->live_gen = coil__fork_generation;
	r->error = 0;
	return 0;
}

/* Cancel everything in flight and dispatch the final completions. */
static void drain(coil_ring *r)
{
	int64_t grace = coil_now() + EXIT_GRACE;
	struct io_uring_sqe *sqe;
	int ret;

	while (r->inflight && coil_now() < grace) {
		/* Again each round: handlers may have submitted more. */
		sqe = coil_ring_sqe(r, NULL);
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY |
					       IORING_ASYNC_CANCEL_ALL);
		ret = coil_ring_wait(r, grace);
		if (ret < 0 && ret != -ETIMEDOUT && ret != -EINTR)
			break;
	}
	if (r->inflight)
		coil__log(COIL_LOG_WARN, "ring exit: %llu ops still in flight after "
			  "cancelling them; the kernel may still write to their buffers",
			  (unsigned long long)r->inflight);
}

void coil_ring_exit(coil_ring *r)
{
	if (!r || r->live_gen == 0)
		return;
	/* A forked child only drops its copy; the parent's ring is untouched. */
	if (r->live_gen == coil__fork_generation && r->error == 0)
		drain(r);
	io_uring_queue_exit(&r->uring);
	r->live_gen = 0;
	r->error = -EBADF;
}

unsigned coil_ring_flags(const coil_ring *r)
{
	return r->setup_flags;
}

bool coil_ring_has_op(const coil_ring *r, unsigned opcode)
{
	return opcode < 256 && (r->ops[opcode / 64] >> (opcode % 64)) & 1;
}

uint64_t coil_ring_inflight(const coil_ring *r)
{
	return r->inflight;
}

int coil_ring_fd(const coil_ring *r)
{
	return r->live_gen ? r->uring.ring_fd : -EBADF;
}
