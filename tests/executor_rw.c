/*
 * executor/rw.c: reading, writing, polling and closing any fd from tasks;
 * executor/task.c: shield scopes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include "helper.h"

#define SMALL_PIPE 4096
#define MIB (1 << 20)

/* ------------------------------------------------------------ helpers */

static void open_pipe(int p[2])
{
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
}

/* A pipe that holds one page: a few KiB fill it. */
static void open_small_pipe(int p[2])
{
	open_pipe(p);
	ck_assert_int_eq(fcntl(p[1], F_SETPIPE_SZ, SMALL_PIPE), SMALL_PIPE);
}

static void close_pipe(int p[2])
{
	close(p[0]);
	close(p[1]);
}

/* Bytes waiting in a pipe or pty, without taking them. */
static int waiting(int fd)
{
	int n = -1;

	ck_assert_int_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static bool fd_closed(int fd)
{
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* Fill a pipe to capacity with 'f' without blocking; return how much went in. */
static int fill_pipe(int fd)
{
	int flags = fcntl(fd, F_GETFL), total = 0;
	char chunk[1024];
	ssize_t n;

	memset(chunk, 'f', sizeof(chunk));
	ck_assert_int_eq(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
	while ((n = write(fd, chunk, sizeof(chunk))) > 0)
		total += n;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(fcntl(fd, F_SETFL, flags), 0);
	return total;
}

/* An unlinked regular file. */
static int temp_file(void)
{
	char path[] = "/tmp/coil-rw-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(unlink(path), 0);
	return fd;
}

static off_t position(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

/* A pseudo-terminal pair whose slave is raw: no line editing, no echo. */
static void open_pty(int *master, int *slave)
{
	struct termios tio;
	int m, s;

	m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(grantpt(m), 0);
	ck_assert_int_eq(unlockpt(m), 0);
	s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(tcgetattr(s, &tio), 0);
	cfmakeraw(&tio);
	ck_assert_int_eq(tcsetattr(s, TCSANOW, &tio), 0);
	*master = m;
	*slave = s;
}

/* A pty delivers what the other side wrote in pieces: collect len bytes. */
static void read_exactly(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = coil_read(fd, buf + got, len - got, -1, COIL_NEVER);

		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
}

/*
 * Yield until t is parked with its op in the kernel: needed where t's first
 * op completes at once and only a later one parks.
 */
static void wait_parked_in_kernel(coil_task *t)
{
	int64_t deadline = coil_now() + COIL_SEC(5);

	while (!parked(t) || unsubmitted() != 0 || inflight() == 0) {
		ck_assert_int_lt(coil_now(), deadline);
		ck_assert_int_eq(coil_yield(), 0);
	}
}

/* ------------------------------------------------- one call in a task */

enum call_kind { READ, READV, WRITE, WRITEV, WRITE_ALL, POLL };

static const char *const kind_names[] = { "read", "readv", "write", "writev",
					  "write_all", "poll" };

/*
 * A task that makes one call, records what it returned, what was in flight
 * right after, and what its next parking call got.
 */
struct call {
	enum call_kind kind;
	int fd;
	int64_t off;
	int64_t deadline;
	unsigned events;     /* POLL */
	const char *data;    /* what the writes write */
	size_t len;          /* bytes to move */
	char buf[64];        /* where the reads read */
	ssize_t res;
	size_t written;      /* WRITE_ALL */
	int64_t returned_at;
	uint64_t inflight;
	int next;
};

static struct call make(enum call_kind kind, int fd, int64_t deadline)
{
	return (struct call){ .kind = kind, .fd = fd, .off = -1,
			      .deadline = deadline, .events = POLLIN,
			      .data = "0123456789abcdef", .len = 16,
			      .res = 1, .written = 1234, .next = 1 };
}

static ssize_t make_call(struct call *c)
{
	size_t half = c->len / 2;
	struct iovec iov[2];

	switch (c->kind) {
	case READ:
		return coil_read(c->fd, c->buf, c->len, c->off, c->deadline);
	case READV:
		iov[0] = (struct iovec){ c->buf, half };
		iov[1] = (struct iovec){ c->buf + half, c->len - half };
		return coil_readv(c->fd, iov, 2, c->off, c->deadline);
	case WRITE:
		return coil_write(c->fd, c->data, c->len, c->off, c->deadline);
	case WRITEV:
		iov[0] = (struct iovec){ (void *)c->data, half };
		iov[1] = (struct iovec){ (void *)(c->data + half), c->len - half };
		return coil_writev(c->fd, iov, 2, c->off, c->deadline);
	case WRITE_ALL:
		return coil_write_all(c->fd, c->data, c->len, c->off,
				      &c->written, c->deadline);
	case POLL:
		return coil_poll(c->fd, c->events, c->deadline);
	}
	return -ENOSYS;
}

static int call_task(void *arg)
{
	struct call *c = arg;

	c->res = make_call(c);
	c->returned_at = coil_now();
	c->inflight = inflight();
	c->next = coil_yield();
	return 0;
}

static coil_task *spawn_call(struct call *c)
{
	coil_task *t;

	ck_assert_int_eq(coil_spawn(&t, call_task, c, NULL), 0);
	return t;
}

/* ---------------------------------------------------------------- pipes */

static int pipe_round_trip(void *arg)
{
	struct call r;
	coil_task *t;
	int p[2];

	(void)arg;
	open_pipe(p);
	r = make(READ, p[0], COIL_NEVER);
	t = spawn_call(&r);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	ck_assert_int_eq(coil_write(p[1], "hello", 5, -1, COIL_NEVER), 5);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 5);
	ck_assert_mem_eq(r.buf, "hello", 5);
	ck_assert_int_eq(r.next, 0);
	/* The read took all of it: nothing is left behind or duplicated. */
	ck_assert_int_eq(waiting(p[0]), 0);
	ck_assert_uint_eq(inflight(), 0);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_read_parked_on_a_pipe_gets_what_coil_write_puts_in)
{
	run(pipe_round_trip, NULL);
}
END_TEST

/* "streams such as pipes and sockets ignore it" */
static int pipe_ignores_offsets(void *arg)
{
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(coil_write(p[1], "abc", 3, 12345, COIL_NEVER), 3);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), 777, COIL_NEVER), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_pipe_ignores_explicit_offsets)
{
	run(pipe_ignores_offsets, NULL);
}
END_TEST

/* A length past COIL_IO_MAX is cut to it, not truncated to 32 bits. */
static int huge_length(void *arg)
{
	size_t len = ((size_t)1 << 32) + 3;
	char *buf = malloc(16);
	int p[2];

	(void)arg;
	ck_assert_ptr_nonnull(buf);
	open_pipe(p);
	ck_assert_int_eq(write(p[1], "0123456789", 10), 10);
	/* The pipe holds 10 bytes, so the kernel writes 10 whatever len says. */
	ck_assert_int_eq(coil_read(p[0], buf, len, -1, COIL_NEVER), 10);
	ck_assert_mem_eq(buf, "0123456789", 10);
	free(buf);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_length_beyond_coil_io_max_is_cut_to_it_not_wrapped)
{
	run(huge_length, NULL);
}
END_TEST

/* -------------------------------------------------------------- eventfd */

static int eventfd_counter(void *arg)
{
	uint64_t value, big = UINT64_MAX;
	unsigned char wide[16];
	struct call r;
	coil_task *t;
	int efd, sem;

	(void)arg;
	efd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(efd, 0);
	/* Writes add to the counter; a read takes the sum and resets it. */
	value = 3;
	ck_assert_int_eq(coil_write(efd, &value, 8, -1, COIL_NEVER), 8);
	value = 4;
	ck_assert_int_eq(coil_write(efd, &value, 8, -1, COIL_NEVER), 8);
	value = 0;
	ck_assert_int_eq(coil_read(efd, &value, 8, -1, COIL_NEVER), 8);
	ck_assert_uint_eq(value, 7);
	/* Reset: the next read parks until a write. */
	r = make(READ, efd, COIL_NEVER);
	r.len = 8;
	t = spawn_call(&r);
	let_tasks_park();
	ck_assert(parked(t));
	value = 5;
	ck_assert_int_eq(coil_write(efd, &value, 8, -1, COIL_NEVER), 8);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 8);
	memcpy(&value, r.buf, 8);
	ck_assert_uint_eq(value, 5);
	/* The counter is 8 bytes: less is refused, more reads 8. */
	ck_assert_int_eq(coil_read(efd, &value, 4, -1, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_write(efd, &value, 4, -1, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_write(efd, &big, 8, -1, COIL_NEVER), -EINVAL);
	value = 2;
	ck_assert_int_eq(coil_write(efd, &value, 8, -1, COIL_NEVER), 8);
	memset(wide, 0xff, sizeof(wide));
	ck_assert_int_eq(coil_read(efd, wide, sizeof(wide), -1, COIL_NEVER), 8);
	memcpy(&value, wide, 8);
	ck_assert_uint_eq(value, 2);
	ck_assert_uint_eq(wide[8], 0xff);
	close(efd);

	/* A semaphore eventfd hands out 1 per read. */
	sem = eventfd(2, EFD_CLOEXEC | EFD_SEMAPHORE);
	ck_assert_int_ge(sem, 0);
	ck_assert_int_eq(coil_read(sem, &value, 8, -1, COIL_NEVER), 8);
	ck_assert_uint_eq(value, 1);
	ck_assert_int_eq(coil_read(sem, &value, 8, -1, COIL_NEVER), 8);
	ck_assert_uint_eq(value, 1);
	ck_assert_int_eq(coil_read(sem, &value, 8, -1, coil_now()), -ETIMEDOUT);
	close(sem);
	return 0;
}

START_TEST(test_an_eventfd_sums_writes_and_a_read_takes_and_resets_the_counter)
{
	run(eventfd_counter, NULL);
}
END_TEST

/* ------------------------------------------------------------ signalfd */

/* The task reads a whole signalfd_siginfo, which is larger than a call's buf. */
struct sig_reader {
	int fd;
	struct signalfd_siginfo info;
	ssize_t res;
};

static int read_siginfo(void *arg)
{
	struct sig_reader *s = arg;

	s->res = coil_read(s->fd, &s->info, sizeof(s->info), -1, COIL_NEVER);
	return 0;
}

static int signalfd_reads(void *arg)
{
	struct sig_reader s = { .res = 1 };
	struct signalfd_siginfo info;
	sigset_t set, pending;
	coil_task *t;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	ck_assert_int_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
	s.fd = signalfd(-1, &set, SFD_CLOEXEC);
	ck_assert_int_ge(s.fd, 0);

	/* Parked first, then woken by the signal. */
	ck_assert_int_eq(coil_spawn(&t, read_siginfo, &s, NULL), 0);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(s.res, sizeof(s.info));
	ck_assert_uint_eq(s.info.ssi_signo, SIGUSR1);
	ck_assert_uint_eq(s.info.ssi_pid, getpid());
	/* Read means dequeued: the signal is no longer pending. */
	ck_assert_int_eq(sigpending(&pending), 0);
	ck_assert(!sigismember(&pending, SIGUSR1));

	/* Pending already: the read returns at once. */
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(coil_read(s.fd, &info, sizeof(info), -1, COIL_NEVER),
			 sizeof(info));
	ck_assert_uint_eq(info.ssi_signo, SIGUSR1);
	/* A buffer smaller than one siginfo is refused. */
	ck_assert_int_eq(raise(SIGUSR1), 0);
	ck_assert_int_eq(coil_read(s.fd, &info, sizeof(info) - 1, -1, COIL_NEVER),
			 -EINVAL);
	ck_assert_int_eq(sigpending(&pending), 0);
	ck_assert(sigismember(&pending, SIGUSR1));
	close(s.fd);
	return 0;
}

START_TEST(test_a_signalfd_read_returns_the_raised_signals_siginfo)
{
	run(signalfd_reads, NULL);
}
END_TEST

/* ---------------------------------------------------- pseudo-terminal */

static int pty_both_ways(void *arg)
{
	char buf[8];
	struct call r;
	coil_task *t;
	int m, s;

	(void)arg;
	open_pty(&m, &s);
	/*
	 * Raw mode: no newline needed to end a read, and ^C is a byte like
	 * any other. The slave's read parks first, then the master writes.
	 */
	r = make(READ, s, COIL_NEVER);
	r.len = 4;
	t = spawn_call(&r);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_int_eq(coil_write(m, "ab\003c", 4, -1, COIL_NEVER), 4);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_gt(r.res, 0);
	read_exactly(s, r.buf + r.res, 4 - (size_t)r.res);
	ck_assert_mem_eq(r.buf, "ab\003c", 4);
	/* And back, without the output processing that would add a \r. */
	ck_assert_int_eq(coil_write(s, "x\n", 2, -1, COIL_NEVER), 2);
	read_exactly(m, buf, 2);
	ck_assert_mem_eq(buf, "x\n", 2);
	ck_assert_int_eq(waiting(m), 0);
	close(s);
	close(m);
	return 0;
}

START_TEST(test_a_raw_pty_passes_bytes_both_ways)
{
	run(pty_both_ways, NULL);
}
END_TEST

static int pty_read_interrupted(void *arg)
{
	static const enum call_kind kinds[] = { READ, READV };
	char buf[8];
	struct call r;
	coil_task *t;
	int m, s;

	(void)arg;
	open_pty(&m, &s);
	for (unsigned i = 0; i < 4; i++) {
		bool cancel = i < 2;

		r = make(kinds[i % 2], s,
			 cancel ? COIL_NEVER : coil_now() + COIL_MSEC(20));
		t = spawn_call(&r);
		if (cancel) {
			let_tasks_park();
			ck_assert(parked(t));
			ck_assert_int_eq(coil_cancel(t), 0);
		}
		ck_assert_int_eq(join(t), 0);
		ck_assert_msg(r.res == (cancel ? -ECANCELED : -ETIMEDOUT),
			      "%s: %zd", kind_names[r.kind], r.res);
		ck_assert_uint_eq(r.inflight, 0);
		/* The interrupted read took nothing: all of it is for this one. */
		ck_assert_int_eq(coil_write(m, "late", 4, -1, COIL_NEVER), 4);
		read_exactly(s, buf, 4);
		ck_assert_mem_eq(buf, "late", 4);
	}
	close(s);
	close(m);
	return 0;
}

START_TEST(test_an_interrupted_pty_read_leaves_the_input_for_the_next_read)
{
	run(pty_read_interrupted, NULL);
}
END_TEST

/* ------------------------------------------------------ regular files */

static int file_at_offsets(void *arg)
{
	char buf[16] = { 0 };
	int fd = temp_file();

	(void)arg;
	ck_assert_int_eq(coil_write(fd, "0123456789", 10, 0, COIL_NEVER), 10);
	ck_assert_int_eq(position(fd), 0);
	ck_assert_int_eq(coil_write(fd, "AB", 2, 4, COIL_NEVER), 2);
	ck_assert_int_eq(position(fd), 0);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 10);
	ck_assert_mem_eq(buf, "0123AB6789", 10);
	ck_assert_int_eq(coil_read(fd, buf, 4, 3, COIL_NEVER), 4);
	ck_assert_mem_eq(buf, "3AB6", 4);
	/* Short at the end of the file, 0 past it. */
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 8, COIL_NEVER), 2);
	ck_assert_mem_eq(buf, "89", 2);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 10, COIL_NEVER), 0);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 1000, COIL_NEVER), 0);
	ck_assert_int_eq(position(fd), 0);
	/* A write past the end leaves a hole that reads as zeros. */
	ck_assert_int_eq(coil_write(fd, "Z", 1, 12, COIL_NEVER), 1);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 9, COIL_NEVER), 4);
	ck_assert_mem_eq(buf, "9\0\0Z", 4);
	ck_assert_int_eq(position(fd), 0);
	close(fd);
	return 0;
}

START_TEST(test_file_reads_and_writes_at_an_offset_leave_the_position_alone)
{
	run(file_at_offsets, NULL);
}
END_TEST

static int file_at_position(void *arg)
{
	char buf[16] = { 0 };
	struct iovec iov[2];
	int fd = temp_file();

	(void)arg;
	ck_assert_int_eq(coil_write(fd, "hello", 5, -1, COIL_NEVER), 5);
	ck_assert_int_eq(position(fd), 5);
	ck_assert_int_eq(coil_write(fd, " world", 6, -1, COIL_NEVER), 6);
	ck_assert_int_eq(position(fd), 11);
	iov[0] = (struct iovec){ "!", 1 };
	iov[1] = (struct iovec){ "?", 1 };
	ck_assert_int_eq(coil_writev(fd, iov, 2, -1, COIL_NEVER), 2);
	ck_assert_int_eq(position(fd), 13);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 13);
	ck_assert_mem_eq(buf, "hello world!?", 13);

	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(coil_read(fd, buf, 5, -1, COIL_NEVER), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_int_eq(position(fd), 5);
	/* An explicit offset in between neither uses nor moves the position. */
	ck_assert_int_eq(coil_read(fd, buf, 3, 0, COIL_NEVER), 3);
	ck_assert_mem_eq(buf, "hel", 3);
	ck_assert_int_eq(position(fd), 5);
	iov[0] = (struct iovec){ buf, 3 };
	iov[1] = (struct iovec){ buf + 3, 3 };
	ck_assert_int_eq(coil_readv(fd, iov, 2, -1, COIL_NEVER), 6);
	ck_assert_mem_eq(buf, " world", 6);
	ck_assert_int_eq(position(fd), 11);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), -1, COIL_NEVER), 2);
	ck_assert_int_eq(position(fd), 13);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), -1, COIL_NEVER), 0);
	close(fd);
	return 0;
}

START_TEST(test_file_reads_and_writes_at_minus_one_use_and_advance_the_position)
{
	run(file_at_position, NULL);
}
END_TEST

/* ---------------------------------------------------- scatter, gather */

static int scatter_gather(void *arg)
{
	struct iovec out[4] = {
		{ "ab", 2 }, { "", 0 }, { "cde", 3 }, { "fghij", 5 },
	};
	char a[3], b[1], c[8], file[32];
	struct iovec in[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	int p[2], fd;

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(coil_writev(p[1], out, 4, -1, COIL_NEVER), 10);
	ck_assert_int_eq(coil_readv(p[0], in, 3, -1, COIL_NEVER), 10);
	ck_assert_mem_eq(a, "abc", 3);
	ck_assert_mem_eq(b, "d", 1);
	ck_assert_mem_eq(c, "efghij", 6);
	close_pipe(p);

	/* At an offset of a file, gathered and scattered likewise. */
	fd = temp_file();
	ck_assert_int_eq(coil_writev(fd, out, 4, 100, COIL_NEVER), 10);
	ck_assert_int_eq(position(fd), 0);
	ck_assert_int_eq(pread(fd, file, sizeof(file), 100), 10);
	ck_assert_mem_eq(file, "abcdefghij", 10);
	memset(c, 0, sizeof(c));
	ck_assert_int_eq(coil_readv(fd, in, 3, 102, COIL_NEVER), 8);
	ck_assert_mem_eq(a, "cde", 3);
	ck_assert_mem_eq(b, "f", 1);
	ck_assert_mem_eq(c, "ghij", 4);
	ck_assert_int_eq(position(fd), 0);
	close(fd);
	return 0;
}

START_TEST(test_readv_and_writev_scatter_and_gather_over_several_iovecs)
{
	run(scatter_gather, NULL);
}
END_TEST

/* IOV_MAX iovecs is the limit, not one past it. */
static int iov_max_iovecs(void *arg)
{
	struct iovec *iov = calloc(IOV_MAX + 1, sizeof(*iov));
	char *src = malloc(IOV_MAX + 1), *dst = calloc(1, IOV_MAX + 1);
	int fd = temp_file();

	(void)arg;
	ck_assert(iov && src && dst);
	for (int i = 0; i <= IOV_MAX; i++) {
		src[i] = (char)('a' + i % 26);
		iov[i] = (struct iovec){ src + i, 1 };
	}
	/* Refused before anything reaches the file. */
	ck_assert_int_eq(coil_writev(fd, iov, IOV_MAX + 1, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
	ck_assert_int_eq(coil_writev(fd, iov, IOV_MAX, 0, COIL_NEVER), IOV_MAX);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), IOV_MAX);
	for (int i = 0; i <= IOV_MAX; i++)
		iov[i] = (struct iovec){ dst + i, 1 };
	ck_assert_int_eq(coil_readv(fd, iov, IOV_MAX + 1, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(dst[0], 0);
	ck_assert_int_eq(coil_readv(fd, iov, IOV_MAX, 0, COIL_NEVER), IOV_MAX);
	ck_assert_mem_eq(dst, src, IOV_MAX);
	free(iov);
	free(src);
	free(dst);
	close(fd);
	return 0;
}

START_TEST(test_vectored_calls_take_iov_max_iovecs_and_refuse_one_more)
{
	run(iov_max_iovecs, NULL);
}
END_TEST

/* ---------------------------------------------------------- write_all */

static unsigned char pattern_byte(size_t i)
{
	return (unsigned char)(i * 7 + i / 251);
}

static unsigned char *pattern(size_t len)
{
	unsigned char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(i);
	return buf;
}

/* Reads in pieces of 1 to 700 bytes until it has want bytes or an error. */
struct nibbler {
	int fd;
	size_t want;
	unsigned char *got;
	size_t total;
	ssize_t err;
};

static int nibble(void *arg)
{
	struct nibbler *n = arg;

	while (n->total < n->want) {
		size_t piece = 1 + below(700);
		ssize_t ret;

		if (piece > n->want - n->total)
			piece = n->want - n->total;
		ret = coil_read(n->fd, n->got + n->total, piece, -1, COIL_NEVER);
		if (ret <= 0) {
			n->err = ret;
			break;
		}
		CHECK((size_t)ret <= piece, "read %zd of %zu", ret, piece);
		n->total += (size_t)ret;
	}
	return 0;
}

static int write_all_mebibyte(void *arg)
{
	unsigned char *src = pattern(MIB);
	struct nibbler n = { .want = MIB, .err = 1 };
	size_t written = 0;
	coil_task *t;
	int p[2];

	(void)arg;
	seed(42);
	open_small_pipe(p);
	n.fd = p[0];
	n.got = malloc(MIB);
	ck_assert_ptr_nonnull(n.got);
	ck_assert_int_eq(coil_spawn(&t, nibble, &n, NULL), 0);
	ck_assert_int_eq(coil_write_all(p[1], src, MIB, -1, &written, COIL_NEVER), 0);
	ck_assert_uint_eq(written, MIB);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(n.err, 1);
	ck_assert_uint_eq(n.total, MIB);
	/* Still one page: the writes were hundreds, most of them parked. */
	ck_assert_int_eq(fcntl(p[1], F_GETPIPE_SZ), SMALL_PIPE);
	ck_assert_msg(memcmp(n.got, src, MIB) == 0, "the bytes arrived altered");
	ck_assert_int_eq(waiting(p[0]), 0);
	free(n.got);
	free(src);
	close_pipe(p);
	return 0;
}

START_TEST(test_write_all_pushes_a_mebibyte_through_a_one_page_pipe_in_order)
{
	run(write_all_mebibyte, NULL);
}
END_TEST

/* Writes len bytes with coil_write_all and records what it says. */
struct all_writer {
	int fd;
	const unsigned char *src;
	size_t len;
	int64_t deadline;
	int res;
	size_t written;
};

static int write_everything(void *arg)
{
	struct all_writer *w = arg;

	w->written = 1234;
	w->res = coil_write_all(w->fd, w->src, w->len, -1, &w->written,
				w->deadline);
	return 0;
}

static int write_all_reader_leaves(void *arg)
{
	unsigned char *src = pattern(MIB);
	struct nibbler n = { .want = 64 * 1024, .err = 1 };
	struct all_writer w = { .src = src, .len = MIB, .deadline = COIL_NEVER };
	coil_task *writer, *reader;
	int p[2], left;

	(void)arg;
	seed(7);
	open_small_pipe(p);
	w.fd = p[1];
	n.fd = p[0];
	n.got = malloc(n.want);
	ck_assert_ptr_nonnull(n.got);
	ck_assert_int_eq(coil_spawn(&writer, write_everything, &w, NULL), 0);
	ck_assert_int_eq(coil_spawn(&reader, nibble, &n, NULL), 0);
	ck_assert_int_eq(join(reader), 0);
	ck_assert_uint_eq(n.total, n.want);
	ck_assert_msg(memcmp(n.got, src, n.want) == 0, "the bytes arrived altered");
	/* What the pipe holds when the reader goes was written too. */
	left = waiting(p[0]);
	ck_assert_int_eq(close(p[0]), 0);
	ck_assert_int_eq(join(writer), 0);
	ck_assert_int_eq(w.res, -EPIPE);
	ck_assert_uint_eq(w.written, n.want + (size_t)left);
	/* The plain calls see the same. */
	ck_assert_int_eq(coil_write(p[1], "x", 1, -1, COIL_NEVER), -EPIPE);
	ck_assert_int_eq(coil_writev(p[1], &(struct iovec){ "x", 1 }, 1, -1,
				     COIL_NEVER), -EPIPE);
	ck_assert_int_eq(coil_poll(p[1], POLLOUT, COIL_NEVER) & POLLERR, POLLERR);
	ck_assert_uint_eq(inflight(), 0);
	free(n.got);
	free(src);
	close(p[1]);
	return 0;
}

START_TEST(test_write_all_counts_what_went_before_the_reader_closed_with_epipe)
{
	/* The kernel raises SIGPIPE as for write(2): the test wants the errno. */
	ck_assert(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
	run(write_all_reader_leaves, NULL);
}
END_TEST

static int write_all_interrupted(void *arg)
{
	unsigned char *src = pattern(3 * SMALL_PIPE);
	struct all_writer w = { .src = src, .len = 3 * SMALL_PIPE };
	coil_task *t;
	int p[2];

	(void)arg;
	/* Cancelled: the first write filled the pipe, the second parked. */
	open_small_pipe(p);
	w.fd = p[1];
	w.deadline = COIL_NEVER;
	ck_assert_int_eq(coil_spawn(&t, write_everything, &w, NULL), 0);
	wait_parked_in_kernel(t);
	ck_assert_int_eq(waiting(p[0]), SMALL_PIPE);
	ck_assert_uint_eq(inflight(), 1);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, -ECANCELED);
	ck_assert_uint_eq(w.written, SMALL_PIPE);
	ck_assert_int_eq(waiting(p[0]), SMALL_PIPE);
	close_pipe(p);

	/* Timed out likewise. */
	open_small_pipe(p);
	w.fd = p[1];
	w.deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_spawn(&t, write_everything, &w, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), w.deadline);
	ck_assert_uint_eq(w.written, SMALL_PIPE);
	ck_assert_int_eq(waiting(p[0]), SMALL_PIPE);
	ck_assert_uint_eq(inflight(), 0);
	close_pipe(p);
	free(src);
	return 0;
}

START_TEST(test_write_all_counts_what_went_before_a_cancel_or_its_deadline)
{
	run(write_all_interrupted, NULL);
}
END_TEST

static int write_all_to_file(void *arg)
{
	char buf[16] = { 0 };
	size_t written = 0;
	int fd = temp_file();

	(void)arg;
	ck_assert_int_eq(coil_write_all(fd, "0123456789", 10, 5, &written,
					COIL_NEVER), 0);
	ck_assert_uint_eq(written, 10);
	ck_assert_int_eq(position(fd), 0);
	ck_assert_int_eq(coil_write_all(fd, "abc", 3, -1, &written, COIL_NEVER), 0);
	ck_assert_uint_eq(written, 3);
	ck_assert_int_eq(position(fd), 3);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 15);
	ck_assert_mem_eq(buf, "abc\0\0" "0123456789", 15);
	/* Nothing to write is done at once; written may be NULL. */
	ck_assert_int_eq(coil_write_all(fd, "x", 0, -1, &written, COIL_NEVER), 0);
	ck_assert_uint_eq(written, 0);
	ck_assert_int_eq(coil_write_all(fd, "d", 1, -1, NULL, COIL_NEVER), 0);
	ck_assert_int_eq(position(fd), 4);
	close(fd);
	return 0;
}

START_TEST(test_write_all_writes_at_an_offset_or_at_the_position)
{
	run(write_all_to_file, NULL);
}
END_TEST

/*
 * A file size limit cuts a write short: the first write stops at the limit,
 * the next one, at the advanced offset, fails with -EFBIG. Nothing may be
 * checked while the limit is low: Check reports through a file of its own.
 */
struct limited {
	int fd;
	int res;
	size_t written;
	off_t size;
};

static int write_all_past_the_limit(void *arg)
{
	struct limited *l = arg;
	struct rlimit old, low;

	getrlimit(RLIMIT_FSIZE, &old);
	low = (struct rlimit){ .rlim_cur = 8, .rlim_max = old.rlim_max };
	setrlimit(RLIMIT_FSIZE, &low);
	l->res = coil_write_all(l->fd, "0123456789", 10, 4, &l->written,
				COIL_NEVER);
	setrlimit(RLIMIT_FSIZE, &old);
	l->size = lseek(l->fd, 0, SEEK_END);
	return 0;
}

START_TEST(test_write_all_at_an_offset_stops_at_the_file_size_limit_with_efbig)
{
	struct limited l = { .res = 1, .written = 99 };
	char buf[16];

	ck_assert(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
	l.fd = temp_file();
	run(write_all_past_the_limit, &l);
	ck_assert_int_eq(l.res, -EFBIG);
	ck_assert_uint_eq(l.written, 4);
	ck_assert_int_eq(l.size, 8);
	ck_assert_int_eq(pread(l.fd, buf, sizeof(buf), 0), 8);
	ck_assert_mem_eq(buf, "\0\0\0\0" "0123", 8);
	close(l.fd);
}
END_TEST

/* ---------------------------------------------------------------- poll */

static int poll_pipe(void *arg)
{
	struct call c;
	coil_task *t;
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	/* POLLIN once data arrives; the poll leaves the data where it is. */
	c = make(POLL, p[0], COIL_NEVER);
	t = spawn_call(&c);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	ck_assert_int_eq(write(p[1], "data", 4), 4);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(c.res, POLLIN);
	ck_assert_int_eq(waiting(p[0]), 4);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), 4);

	/* An empty pipe has room: POLLOUT at once, and only what was asked. */
	ck_assert_int_eq(coil_poll(p[1], POLLOUT, COIL_NEVER), POLLOUT);
	ck_assert_int_eq(coil_poll(p[1], POLLOUT | POLLIN, COIL_NEVER), POLLOUT);

	/* The writer goes: the reader's poll sees POLLHUP, asked for or not. */
	c = make(POLL, p[0], COIL_NEVER);
	t = spawn_call(&c);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_int_eq(close(p[1]), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(c.res, POLLHUP);
	ck_assert_int_eq(close(p[0]), 0);

	/* The reader goes: the writer's poll sees POLLERR. */
	open_pipe(p);
	ck_assert_int_eq(close(p[0]), 0);
	ck_assert_int_eq(coil_poll(p[1], POLLOUT, COIL_NEVER) & POLLERR, POLLERR);
	close(p[1]);
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

START_TEST(test_poll_reports_pollin_pollout_pollhup_and_pollerr_on_a_pipe)
{
	run(poll_pipe, NULL);
}
END_TEST

static int poll_eventfd(void *arg)
{
	uint64_t value = 1;
	struct call c;
	coil_task *t;
	int efd;

	(void)arg;
	efd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_eq(coil_poll(efd, POLLOUT, COIL_NEVER), POLLOUT);
	c = make(POLL, efd, COIL_NEVER);
	t = spawn_call(&c);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_int_eq(coil_write(efd, &value, 8, -1, COIL_NEVER), 8);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(c.res, POLLIN);
	/* Readable and writable now: each poll reports only what it asked. */
	ck_assert_int_eq(coil_poll(efd, POLLOUT, COIL_NEVER), POLLOUT);
	ck_assert_int_eq(coil_poll(efd, POLLIN, COIL_NEVER), POLLIN);
	ck_assert_int_eq(coil_poll(efd, POLLIN | POLLOUT, COIL_NEVER),
			 POLLIN | POLLOUT);
	/* The counter is untouched by the polls. */
	value = 0;
	ck_assert_int_eq(coil_read(efd, &value, 8, -1, COIL_NEVER), 8);
	ck_assert_uint_eq(value, 1);
	close(efd);
	return 0;
}

START_TEST(test_poll_on_an_eventfd_fires_on_a_write_and_leaves_the_counter)
{
	run(poll_eventfd, NULL);
}
END_TEST

static int poll_times_out(void *arg)
{
	int64_t deadline = coil_now() + COIL_MSEC(20);
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(coil_poll(p[0], POLLIN, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_uint_eq(inflight(), 0);
	/* The loop goes on: the same poll fires once there is data. */
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(coil_poll(p[0], POLLIN, COIL_NEVER), POLLIN);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_poll_that_never_fires_times_out_at_its_deadline)
{
	run(poll_times_out, NULL);
}
END_TEST

/* ---------------------------------------------- deadlines and cancels */

/*
 * Reads and polls on an empty pipe, interrupted by a cancel or their
 * deadline: each returns only after its final CQE (nothing in flight when
 * it returns), and consumed nothing: what is written afterwards is all there.
 */
static void interrupt_empty_pipe_reads(bool cancel)
{
	static const enum call_kind kinds[] = { READ, READV, POLL };
	struct call c;
	coil_task *t;
	char buf[8];
	int p[2];

	open_pipe(p);
	for (unsigned i = 0; i < 3; i++) {
		int64_t deadline = coil_now() + COIL_MSEC(20);

		c = make(kinds[i], p[0], cancel ? COIL_NEVER : deadline);
		t = spawn_call(&c);
		if (cancel) {
			let_tasks_park();
			ck_assert(parked(t));
			ck_assert_uint_eq(inflight(), 1);
			ck_assert_int_eq(coil_cancel(t), 0);
		}
		ck_assert_int_eq(join(t), 0);
		ck_assert_msg(c.res == (cancel ? -ECANCELED : -ETIMEDOUT),
			      "%s returned %zd", kind_names[c.kind], c.res);
		ck_assert_msg(c.inflight == 0, "%s returned with its op in flight",
			      kind_names[c.kind]);
		if (cancel)
			ck_assert_int_eq(c.next, -ECANCELED);
		else
			ck_assert_int_ge(c.returned_at, deadline);
		ck_assert_int_eq(write(p[1], "late", 4), 4);
		ck_assert_int_eq(waiting(p[0]), 4);
		ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), 4);
		ck_assert_mem_eq(buf, "late", 4);
	}
	close_pipe(p);
}

static int cancel_empty_pipe_reads(void *arg)
{
	(void)arg;
	interrupt_empty_pipe_reads(true);
	return 0;
}

static int time_out_empty_pipe_reads(void *arg)
{
	(void)arg;
	interrupt_empty_pipe_reads(false);
	return 0;
}

START_TEST(test_a_cancelled_read_returns_after_its_final_cqe_and_consumes_nothing)
{
	run(cancel_empty_pipe_reads, NULL);
}
END_TEST

START_TEST(test_a_timed_out_read_returns_after_its_final_cqe_and_consumes_nothing)
{
	run(time_out_empty_pipe_reads, NULL);
}
END_TEST

/* Writes to a full pipe, interrupted: none of their bytes went in. */
static void interrupt_full_pipe_writes(bool cancel)
{
	static const enum call_kind kinds[] = { WRITE, WRITEV, WRITE_ALL };
	struct call c;
	coil_task *t;
	char buf[1024];
	int p[2], full, left;

	open_small_pipe(p);
	full = fill_pipe(p[1]);
	ck_assert_int_eq(full, SMALL_PIPE);
	for (unsigned i = 0; i < 3; i++) {
		int64_t deadline = coil_now() + COIL_MSEC(20);

		c = make(kinds[i], p[1], cancel ? COIL_NEVER : deadline);
		t = spawn_call(&c);
		if (cancel) {
			let_tasks_park();
			ck_assert(parked(t));
			ck_assert_uint_eq(inflight(), 1);
			ck_assert_int_eq(coil_cancel(t), 0);
		}
		ck_assert_int_eq(join(t), 0);
		ck_assert_msg(c.res == (cancel ? -ECANCELED : -ETIMEDOUT),
			      "%s returned %zd", kind_names[c.kind], c.res);
		ck_assert_uint_eq(c.inflight, 0);
		if (c.kind == WRITE_ALL)
			ck_assert_uint_eq(c.written, 0);
		if (cancel)
			ck_assert_int_eq(c.next, -ECANCELED);
		else
			ck_assert_int_ge(c.returned_at, deadline);
		ck_assert_int_eq(waiting(p[0]), full);
	}
	/* Only the filler is in the pipe. */
	ck_assert_int_eq(close(p[1]), 0);
	for (left = full; left > 0; left -= (int)sizeof(buf)) {
		ck_assert_int_eq(read(p[0], buf, sizeof(buf)), sizeof(buf));
		for (unsigned j = 0; j < sizeof(buf); j++)
			CHECK(buf[j] == 'f', "a foreign byte %#x in the pipe", buf[j]);
	}
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
}

static int cancel_full_pipe_writes(void *arg)
{
	(void)arg;
	interrupt_full_pipe_writes(true);
	return 0;
}

static int time_out_full_pipe_writes(void *arg)
{
	(void)arg;
	interrupt_full_pipe_writes(false);
	return 0;
}

START_TEST(test_a_cancelled_write_to_a_full_pipe_writes_nothing)
{
	run(cancel_full_pipe_writes, NULL);
}
END_TEST

START_TEST(test_a_timed_out_write_to_a_full_pipe_writes_nothing)
{
	run(time_out_full_pipe_writes, NULL);
}
END_TEST

/*
 * Deterministic: the task runs, queues its op and parks; main runs in the
 * same batch, before the loop enters the kernel, and queues the cancel
 * behind it. One submission carries both, in order, and an op that can
 * complete at once does so as it is issued: the cancel finds nothing.
 */
static int completion_beats_cancel(void *arg)
{
	static const enum call_kind kinds[] = { READ, READV, POLL, WRITE, WRITEV,
						WRITE_ALL };
	struct call c;
	coil_task *t;
	char buf[32];
	int p[2];

	(void)arg;
	open_pipe(p);
	for (unsigned i = 0; i < 6; i++) {
		bool reads = kinds[i] == READ || kinds[i] == READV ||
			     kinds[i] == POLL;

		if (reads)
			ck_assert_int_eq(write(p[1], "ready", 5), 5);
		c = make(kinds[i], reads ? p[0] : p[1], COIL_NEVER);
		t = spawn_call(&c);
		ck_assert_int_eq(coil_yield(), 0);
		ck_assert(parked(t));
		ck_assert_uint_eq(unsubmitted(), 1);
		ck_assert_int_eq(coil_cancel(t), 0);
		ck_assert_int_eq(join(t), 0);
		switch (kinds[i]) {
		case READ:
		case READV:
			ck_assert_int_eq(c.res, 5);
			ck_assert_mem_eq(c.buf, "ready", 5);
			ck_assert_int_eq(waiting(p[0]), 0);
			break;
		case POLL:
			ck_assert_int_eq(c.res, POLLIN);
			ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 5);
			break;
		default:
			/* Written is written: the bytes are in the pipe. */
			ck_assert_int_eq(c.res, c.kind == WRITE_ALL ? 0 : 16);
			if (c.kind == WRITE_ALL)
				ck_assert_uint_eq(c.written, 16);
			ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 16);
			ck_assert_mem_eq(buf, "0123456789abcdef", 16);
			break;
		}
		ck_assert_msg(c.next == -ECANCELED, "%s: the next park got %d",
			      kind_names[c.kind], c.next);
		ck_assert_uint_eq(inflight(), 0);
	}
	close_pipe(p);
	return 0;
}

START_TEST(test_an_op_completing_before_its_cancel_keeps_its_result_and_the_next_park_is_cancelled)
{
	run(completion_beats_cancel, NULL);
}
END_TEST

/*
 * Deterministic likewise: with the deadline passed already, the op and its
 * cancel go in one submission; a pipe with data (or with room) completes
 * the op as it is issued.
 */
static int completion_beats_passed_deadline(void *arg)
{
	struct iovec iov[2];
	char buf[8], a[2], b[8];
	size_t written = 99;
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(write(p[1], "ready", 5), 5);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, coil_now()), 5);
	ck_assert_mem_eq(buf, "ready", 5);
	ck_assert_int_eq(write(p[1], "again", 5), 5);
	iov[0] = (struct iovec){ a, sizeof(a) };
	iov[1] = (struct iovec){ b, sizeof(b) };
	ck_assert_int_eq(coil_readv(p[0], iov, 2, -1, coil_now()), 5);
	ck_assert_mem_eq(a, "ag", 2);
	ck_assert_mem_eq(b, "ain", 3);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(coil_poll(p[0], POLLIN, coil_now()), POLLIN);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 1);

	ck_assert_int_eq(coil_write(p[1], "sent", 4, -1, coil_now()), 4);
	ck_assert_int_eq(coil_write_all(p[1], "more", 4, -1, &written, coil_now()), 0);
	ck_assert_uint_eq(written, 4);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 8);
	ck_assert_mem_eq(buf, "sentmore", 8);

	/* Nothing to do at once: the passed deadline wins, nothing is taken. */
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, coil_now()),
			 -ETIMEDOUT);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_int_eq(write(p[1], "late", 4), 4);
	ck_assert_int_eq(waiting(p[0]), 4);
	close_pipe(p);
	return 0;
}

START_TEST(test_an_op_completing_at_once_despite_a_passed_deadline_keeps_its_result)
{
	run(completion_beats_passed_deadline, NULL);
}
END_TEST

/* ------------------------------------------------------ stack buffers */

#define PATTERN 0xa5
#define STACK_USERS 8

/*
 * One function for both roles, so that a victim on a reused stack has its
 * buffer exactly where the reader before it had its own.
 */
struct stack_user {
	enum call_kind kind;  /* reader: READ or READV */
	int fd;
	bool cancel;          /* reader: else it times out */
	const bool *written;  /* victim: set once main wrote to the fds */
	unsigned char *buf;
	ssize_t res;
	bool intact;
};

static int use_the_stack(void *arg)
{
	struct stack_user *u = arg;
	unsigned char buf[64];
	struct iovec iov[2] = { { buf, 24 }, { buf + 24, sizeof(buf) - 24 } };
	int64_t deadline;

	u->buf = buf;
	if (!u->written) {
		/* Long enough for all readers to be in the kernel together. */
		deadline = u->cancel ? COIL_NEVER : coil_now() + COIL_MSEC(100);
		if (u->kind == READV)
			u->res = coil_readv(u->fd, iov, 2, -1, deadline);
		else
			u->res = coil_read(u->fd, buf, sizeof(buf), -1, deadline);
		return 0;
	}
	memset(buf, PATTERN, sizeof(buf));
	while (!*u->written)
		coil_yield();
	/* Each yield is a kernel entry, where a stray read would complete. */
	for (int i = 0; i < 3; i++)
		coil_yield();
	u->intact = true;
	for (unsigned i = 0; i < sizeof(buf); i++)
		u->intact &= buf[i] == PATTERN;
	return 0;
}

static int reuse_stacks_of_interrupted_reads(void *arg)
{
	struct stack_user reader[STACK_USERS], victim[STACK_USERS];
	coil_task *t[STACK_USERS];
	bool written = false;
	uint64_t value = 7;
	char data[16];
	int p[2], efd, m, s, fds[4], i, j;

	(void)arg;
	open_pipe(p);
	efd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_ge(efd, 0);
	open_pty(&m, &s);
	fds[0] = p[0];
	fds[1] = efd;
	fds[2] = s;
	fds[3] = p[0];
	for (i = 0; i < STACK_USERS; i++) {
		reader[i] = (struct stack_user){ .kind = i % 2 ? READV : READ,
						 .fd = fds[i % 4],
						 .cancel = i < STACK_USERS / 2 };
		ck_assert_int_eq(coil_spawn(&t[i], use_the_stack, &reader[i], NULL), 0);
	}
	let_tasks_park();
	ck_assert_uint_eq(inflight(), STACK_USERS);
	for (i = 0; i < STACK_USERS / 2; i++)
		ck_assert_int_eq(coil_cancel(t[i]), 0);
	for (i = 0; i < STACK_USERS; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_msg(reader[i].res == (reader[i].cancel ? -ECANCELED
								 : -ETIMEDOUT),
			      "reader %d: %zd", i, reader[i].res);
	}
	ck_assert_uint_eq(inflight(), 0);

	for (i = 0; i < STACK_USERS; i++) {
		victim[i] = (struct stack_user){ .written = &written };
		ck_assert_int_eq(coil_spawn(&t[i], use_the_stack, &victim[i], NULL), 0);
	}
	ck_assert_int_eq(coil_yield(), 0); /* the victims fill their buffers */
	for (i = 0; i < STACK_USERS; i++) {
		for (j = 0; j < STACK_USERS && victim[i].buf != reader[j].buf; j++)
			;
		ck_assert_msg(j < STACK_USERS,
			      "victim %d's buffer is not on a reader's stack", i);
	}
	ck_assert_int_eq(write(p[1], "stale", 5), 5);
	ck_assert_int_eq(write(efd, &value, sizeof(value)), sizeof(value));
	ck_assert_int_eq(write(m, "stale", 5), 5);
	written = true;
	for (i = 0; i < STACK_USERS; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_msg(victim[i].intact, "victim %d's buffer was written", i);
	}
	/* And nothing was taken: it is all there for a read that is alive. */
	ck_assert_int_eq(coil_read(p[0], data, sizeof(data), -1, COIL_NEVER), 5);
	ck_assert_int_eq(coil_read(efd, &value, sizeof(value), -1, COIL_NEVER), 8);
	ck_assert_uint_eq(value, 7);
	read_exactly(s, data, 5);
	ck_assert_mem_eq(data, "stale", 5);
	close_pipe(p);
	close(efd);
	close(s);
	close(m);
	return 0;
}

START_TEST(test_interrupted_reads_never_write_into_a_reused_stack)
{
	run(reuse_stacks_of_interrupted_reads, NULL);
}
END_TEST

/* ----------------------------------------------------------- bad input */

/* Every call of rw.c on fd returns want; write_all says nothing was written. */
static void expect_every_call(int fd, ssize_t want)
{
	static const enum call_kind kinds[] = { READ, READV, WRITE, WRITEV,
						WRITE_ALL, POLL };
	struct call c;

	for (unsigned i = 0; i < 6; i++) {
		c = make(kinds[i], fd, COIL_NEVER);
		c.events = POLLIN | POLLOUT;
		c.res = make_call(&c);
		ck_assert_msg(c.res == want, "%s on fd %#x: %zd, not %zd",
			      kind_names[c.kind], (unsigned)fd, c.res, want);
		if (c.kind == WRITE_ALL)
			ck_assert_uint_eq(c.written, 0);
	}
}

static int bad_fds(void *arg)
{
	struct call r;
	coil_task *t;
	int p[2], gone;

	(void)arg;
	capture_log();
	open_pipe(p);
	/* A read parked meanwhile must not be disturbed by the failures. */
	r = make(READ, p[0], COIL_NEVER);
	t = spawn_call(&r);
	let_tasks_park();
	ck_assert(parked(t));

	gone = dup(p[0]);
	ck_assert_int_ge(gone, 0);
	ck_assert_int_eq(close(gone), 0);
	expect_every_call(-1, -EBADF);
	expect_every_call(gone, -EBADF);
	expect_every_call(INT_MAX, -EBADF);
	/* No table of registered files: no slot to name. */
	expect_every_call(COIL_FIXED_FD(3), -EBADF);
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);

	ck_assert_int_eq(coil_write(p[1], "alive", 5, -1, COIL_NEVER), 5);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 5);
	ck_assert_mem_eq(r.buf, "alive", 5);
	ck_assert_uint_eq(inflight(), 0);
	/* The caller's errors are the caller's: nothing is logged. */
	ck_assert_str_eq(captured_log(), "");
	close_pipe(p);
	return 0;
}

START_TEST(test_a_bad_fd_gives_ebadf_to_every_call_and_the_loop_goes_on)
{
	run(bad_fds, NULL);
}
END_TEST

static void expect_offset_refused(int fd, int64_t off)
{
	static const enum call_kind kinds[] = { READ, READV, WRITE, WRITEV,
						WRITE_ALL };
	struct call c;

	for (unsigned i = 0; i < 5; i++) {
		c = make(kinds[i], fd, COIL_NEVER);
		c.off = off;
		c.res = make_call(&c);
		ck_assert_msg(c.res == -EINVAL, "%s at offset %lld: %zd",
			      kind_names[c.kind], (long long)off, c.res);
		if (c.kind == WRITE_ALL)
			ck_assert_uint_eq(c.written, 0);
		ck_assert_uint_eq(inflight(), 0);
		ck_assert_uint_eq(unsubmitted(), 0);
	}
}

static int bad_offsets(void *arg)
{
	int fd = temp_file();
	char buf[8];

	(void)arg;
	ck_assert_int_eq(write(fd, "abc", 3), 3);
	expect_offset_refused(fd, -2);
	expect_offset_refused(fd, INT64_MIN);
	/* Neither the contents nor the position changed. */
	ck_assert_int_eq(position(fd), 3);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 3);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	close(fd);
	return 0;
}

START_TEST(test_an_offset_below_minus_one_is_einval_for_every_call)
{
	run(bad_offsets, NULL);
}
END_TEST

static int bad_iovcnt(void *arg)
{
	struct iovec iov[1] = { { "x", 1 } };
	static const int counts[] = { -1, INT_MIN, IOV_MAX + 1, INT_MAX };
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(write(p[1], "data", 4), 4);
	for (unsigned i = 0; i < 4; i++) {
		ck_assert_int_eq(coil_readv(p[0], iov, counts[i], -1, COIL_NEVER),
				 -EINVAL);
		ck_assert_int_eq(coil_writev(p[1], iov, counts[i], -1, COIL_NEVER),
				 -EINVAL);
	}
	ck_assert_uint_eq(inflight(), 0);
	/* Nothing was read or written. */
	ck_assert_int_eq(waiting(p[0]), 4);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_negative_or_too_large_iovcnt_is_einval)
{
	run(bad_iovcnt, NULL);
}
END_TEST

/*
 * Outside a task: every call refuses with -EPERM and touches nothing, but
 * coil_close is a plain close(2).
 */
static void calls_outside_a_task(void)
{
	char buf[8];
	int p[2], extra;

	open_pipe(p);
	ck_assert_int_eq(write(p[1], "data", 4), 4);
	expect_every_call(p[0], -EPERM);
	expect_every_call(p[1], -EPERM);
	ck_assert_int_eq(waiting(p[0]), 4);
	ck_assert_int_eq(coil_shield_begin(), -EPERM);
	ck_assert_int_eq(coil_shield_end(), -EPERM);
	ck_assert(!coil_cancelled());

	extra = dup(p[0]);
	ck_assert_int_ge(extra, 0);
	ck_assert_int_eq(coil_close(extra), 0);
	ck_assert(fd_closed(extra));
	ck_assert_int_eq(coil_close(extra), -EBADF);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 4);
	close_pipe(p);
}

START_TEST(test_calls_without_a_loop_are_eperm_and_close_is_a_plain_close)
{
	ck_assert_ptr_null(coil_loop_ring());
	calls_outside_a_task();
}
END_TEST

static void in_a_callback(coil_timer *timer, void *arg)
{
	(void)timer;
	calls_outside_a_task();
	*(bool *)arg = true;
}

static int arm_callback(void *arg)
{
	bool fired = false;
	coil_timer timer;

	(void)arg;
	coil_timer_init(&timer, in_a_callback, &fired);
	ck_assert_int_eq(coil_timer_arm(&timer, coil_now()), 0);
	/* A due timer fires in the iteration that runs this yield. */
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(fired);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);
	return 0;
}

START_TEST(test_calls_in_a_timer_callback_are_eperm_and_close_is_a_plain_close)
{
	run(arm_callback, NULL);
}
END_TEST

/*
 * A cancelled task's calls start nothing: the pipe holds data a read would
 * take and room a write would fill, and neither happens.
 */
static int calls_when_cancelled(void *arg)
{
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(write(p[1], "data", 4), 4);
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	expect_every_call(p[0], -ECANCELED);
	expect_every_call(p[1], -ECANCELED);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);
	ck_assert_int_eq(waiting(p[0]), 4);
	close_pipe(p);
	return 0;
}

static int spawn_cancelled_caller(void *arg)
{
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, calls_when_cancelled, NULL, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	return 0;
}

START_TEST(test_a_cancelled_tasks_calls_return_ecanceled_and_start_nothing)
{
	run(spawn_cancelled_caller, NULL);
}
END_TEST

/* ---------------------------------------------------------- coil_close */

static int close_fds(void *arg)
{
	char buf[8];
	int p[2], extra;

	(void)arg;
	open_pipe(p);
	extra = dup(p[1]);
	ck_assert_int_ge(extra, 0);
	ck_assert_int_eq(coil_close(extra), 0);
	ck_assert(fd_closed(extra));
	/* Only that fd: the pipe still works through the other one. */
	ck_assert_int_eq(coil_write(p[1], "ok", 2, -1, COIL_NEVER), 2);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), 2);

	ck_assert_int_eq(coil_close(extra), -EBADF);
	ck_assert_int_eq(coil_close(-1), -EBADF);
	ck_assert_int_eq(coil_close(INT_MAX), -EBADF);
	/* The writer's close reaches a parked reader as end of file. */
	ck_assert_int_eq(coil_close(p[1]), 0);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), 0);
	ck_assert_int_eq(coil_close(p[0]), 0);
	ck_assert(fd_closed(p[0]));
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

START_TEST(test_coil_close_closes_the_fd_and_a_bad_fd_is_ebadf)
{
	run(close_fds, NULL);
}
END_TEST

struct closer {
	int rd, fd, fixed;
	ssize_t read;
	int close, fixed_close, yield, end;
	bool cancelled;
};

/* Cancelled in a read, it closes what it holds, then is still cancelled. */
static int close_after_cancel(void *arg)
{
	struct closer *c = arg;
	char buf[8];

	c->read = coil_read(c->rd, buf, sizeof(buf), -1, COIL_NEVER);
	c->close = coil_close(c->fd);
	c->fixed_close = coil_close(COIL_FIXED_FD(c->fixed));
	c->cancelled = coil_cancelled();
	c->yield = coil_yield();
	/* The close's own shield is gone: none is left to end. */
	c->end = coil_shield_end();
	return 0;
}

static int close_in_a_cancelled_task(void *arg)
{
	struct closer c = { .close = 1, .fixed_close = 1 };
	coil_task *t;
	char buf[8];
	int p[2], q[2];

	(void)arg;
	open_pipe(p);
	open_pipe(q);
	ck_assert_int_eq(coil_files_register(q, 2), 0);
	c.rd = p[0];
	c.fd = p[1];
	c.fixed = 1;
	ck_assert_int_eq(coil_spawn(&t, close_after_cancel, &c, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(c.read, -ECANCELED);
	ck_assert_int_eq(c.close, 0);
	ck_assert(fd_closed(p[1]));
	/* The writer is gone: the reader sees end of file. */
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), 0);
	ck_assert_int_eq(c.fixed_close, 0);
	ck_assert_int_eq(coil_write(COIL_FIXED_FD(1), "x", 1, -1, COIL_NEVER),
			 -EBADF);
	ck_assert(c.cancelled);
	ck_assert_int_eq(c.yield, -ECANCELED);
	ck_assert_int_eq(c.end, -EINVAL);
	ck_assert_uint_eq(inflight(), 0);
	close(p[0]);
	close_pipe(q);
	return 0;
}

START_TEST(test_coil_close_in_a_cancelled_task_closes_and_the_task_stays_cancelled)
{
	run(close_in_a_cancelled_task, NULL);
}
END_TEST

/* coil_close inside shields of its caller keeps them as they were. */
static int close_inside_a_shield(void *arg)
{
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ck_assert_int_eq(coil_shield_begin(), 0);
	ck_assert_int_eq(coil_close(p[1]), 0);
	ck_assert(fd_closed(p[1]));
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_shield_end(), 0);
	ck_assert_int_eq(coil_yield(), -ECANCELED);
	ck_assert_int_eq(coil_shield_end(), -EINVAL);
	close(p[0]);
	return 0;
}

static int spawn_close_inside_a_shield(void *arg)
{
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, close_inside_a_shield, NULL, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	return 0;
}

START_TEST(test_coil_close_inside_a_shield_leaves_the_shield_depth_as_it_was)
{
	run(spawn_close_inside_a_shield, NULL);
}
END_TEST

/* The close's own shield must not wrap the depth at its 65535 limit. */
static int close_at_the_deepest_shield(void *arg)
{
	int p[2], ret;

	(void)arg;
	open_pipe(p);
	for (int i = 0; i < UINT16_MAX; i++)
		CHECK(coil_shield_begin() == 0, "shield %d refused", i);
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ret = coil_close(p[1]);
	ck_assert_msg(ret == 0, "coil_close at 65535 shields in a cancelled "
		      "task: %d (%s)", ret, strerror(-ret));
	ck_assert(fd_closed(p[1]));
	/* Still shielded 65535 deep. */
	ck_assert_int_eq(coil_yield(), 0);
	for (int i = 0; i < UINT16_MAX; i++)
		CHECK(coil_shield_end() == 0, "shield end %d refused", i);
	ck_assert_int_eq(coil_shield_end(), -EINVAL);
	ck_assert_int_eq(coil_yield(), -ECANCELED);
	close(p[0]);
	return 0;
}

static int spawn_close_at_the_deepest_shield(void *arg)
{
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, close_at_the_deepest_shield, NULL, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	return 0;
}

START_TEST(test_coil_close_in_a_cancelled_task_65535_shields_deep_still_closes)
{
	run(spawn_close_at_the_deepest_shield, NULL);
}
END_TEST

/*
 * Slot n of the table holds p[0], where n is p[1]'s fd number: closing the
 * slot must empty it, not close(2) the fd of that number, nor p[0].
 */
static int close_fixed_slot(void *arg)
{
	int p[2], *table, n, slot;
	char buf[8];

	(void)arg;
	open_pipe(p);
	slot = p[1];
	n = slot + 1;
	table = malloc(sizeof(*table) * (size_t)n);
	ck_assert_ptr_nonnull(table);
	for (int i = 0; i < n; i++)
		table[i] = -1;
	table[slot] = p[0];
	ck_assert_int_eq(coil_files_register(table, (unsigned)n), 0);
	ck_assert_int_eq(write(p[1], "abc", 3), 3);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(slot), buf, 1, -1, COIL_NEVER), 1);

	ck_assert_int_eq(coil_close(COIL_FIXED_FD(slot)), 0);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(slot), buf, sizeof(buf), -1,
				   COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_close(COIL_FIXED_FD(slot)), -EBADF);
	ck_assert(fd_open(p[0]));
	ck_assert(fd_open(p[1]));
	/* The data the slot did not read is still in the pipe. */
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), 2);
	ck_assert_mem_eq(buf, "bc", 2);
	free(table);
	close_pipe(p);
	return 0;
}

START_TEST(test_coil_close_of_a_fixed_fd_empties_the_slot_and_leaves_fds_open)
{
	run(close_fixed_slot, NULL);
}
END_TEST

/* ------------------------------------------------------ registered files */

static int fixed_pipe(void *arg)
{
	struct call r;
	coil_task *t;
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(coil_files_register(p, 2), 0);
	ck_assert_int_eq(coil_write(COIL_FIXED_FD(1), "abc", 3, -1, COIL_NEVER), 3);
	ck_assert_int_eq(coil_poll(COIL_FIXED_FD(0), POLLIN, COIL_NEVER), POLLIN);
	ck_assert_int_eq(coil_poll(COIL_FIXED_FD(1), POLLOUT, COIL_NEVER), POLLOUT);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(0), buf, sizeof(buf), -1,
				   COIL_NEVER), 3);
	ck_assert_mem_eq(buf, "abc", 3);

	/* Parked on a slot, woken by a write through the other. */
	r = make(READV, COIL_FIXED_FD(0), COIL_NEVER);
	t = spawn_call(&r);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_int_eq(coil_writev(COIL_FIXED_FD(1),
				     &(struct iovec){ "vec", 3 }, 1, -1,
				     COIL_NEVER), 3);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 3);
	ck_assert_mem_eq(r.buf, "vec", 3);

	/* Cancelled on a slot like on an fd. */
	r = make(READ, COIL_FIXED_FD(0), COIL_NEVER);
	t = spawn_call(&r);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, -ECANCELED);
	ck_assert_uint_eq(r.inflight, 0);
	ck_assert_int_eq(write(p[1], "z", 1), 1);
	ck_assert_int_eq(waiting(p[0]), 1);
	/* The slot holds its own reference: the fds may go. */
	close_pipe(p);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(0), buf, sizeof(buf), -1,
				   COIL_NEVER), 1);
	ck_assert_int_eq(buf[0], 'z');
	return 0;
}

START_TEST(test_registered_pipe_ends_read_write_and_poll_through_coil_fixed_fd)
{
	run(fixed_pipe, NULL);
}
END_TEST

static int update_slot(void *arg)
{
	int p[2], q[2], none = -1;
	char buf[8];

	(void)arg;
	open_pipe(p);
	open_pipe(q);
	ck_assert_int_eq(coil_files_register(p, 2), 0);
	ck_assert_int_eq(write(p[1], "pp", 2), 2);
	ck_assert_int_eq(write(q[1], "qqq", 3), 3);
	/* Slot 0 now reads q; p keeps its bytes. */
	ck_assert_int_eq(coil_files_update(0, &q[0], 1), 0);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(0), buf, sizeof(buf), -1,
				   COIL_NEVER), 3);
	ck_assert_mem_eq(buf, "qqq", 3);
	ck_assert_int_eq(waiting(p[0]), 2);
	/* Slot 1 is untouched. */
	ck_assert_int_eq(coil_write(COIL_FIXED_FD(1), "!", 1, -1, COIL_NEVER), 1);
	ck_assert_int_eq(waiting(p[0]), 3);
	/* Emptied, the slot names nothing. */
	ck_assert_int_eq(coil_files_update(0, &none, 1), 0);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(0), buf, sizeof(buf), -1,
				   COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_poll(COIL_FIXED_FD(0), POLLIN, COIL_NEVER), -EBADF);
	close_pipe(p);
	close_pipe(q);
	return 0;
}

START_TEST(test_coil_files_update_swaps_what_a_slot_names)
{
	run(update_slot, NULL);
}
END_TEST

/* -------------------------------------------------------------- shields */

struct shielded {
	int fd;              /* an empty pipe's read end */
	int wfd;             /* its write end */
	int begin, end;
	bool cancelled_inside;
	int sleep, yield;
	ssize_t read, write, poll;
	uint64_t inflight;
	int after_yield;
	ssize_t after_read;
	uint64_t after_inflight;
};

/*
 * Cancelled before the shield: inside it, parking calls run as if nothing
 * happened, including a read that must really wait for main's write.
 */
static int cleanup_in_a_shield(void *arg)
{
	struct shielded *s = arg;
	char buf[8];

	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	s->begin = coil_shield_begin();
	s->cancelled_inside = coil_cancelled();
	s->sleep = coil_sleep(COIL_MSEC(1));
	s->yield = coil_yield();
	s->poll = coil_poll(s->wfd, POLLOUT, COIL_NEVER);
	s->read = coil_read(s->fd, buf, sizeof(buf), -1, COIL_NEVER);
	s->write = coil_write(s->wfd, buf, s->read > 0 ? (size_t)s->read : 0, -1,
			      COIL_NEVER);
	s->end = coil_shield_end();
	s->after_yield = coil_yield();
	s->after_read = coil_read(s->fd, buf, sizeof(buf), -1, COIL_NEVER);
	s->after_inflight = inflight();
	return 0;
}

static int shield_after_cancel(void *arg)
{
	struct shielded s = { .read = 1, .after_read = 1, .poll = -1 };
	int64_t deadline = coil_now() + COIL_SEC(5);
	coil_task *t;
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	s.fd = p[0];
	s.wfd = p[1];
	ck_assert_int_eq(coil_spawn(&t, cleanup_in_a_shield, &s, NULL), 0);
	/* Past its poll, parked with an op in the kernel: its read waits. */
	while (s.poll == -1) {
		ck_assert_int_lt(coil_now(), deadline);
		ck_assert_int_eq(coil_yield(), 0);
	}
	wait_parked_in_kernel(t);
	ck_assert_int_eq(s.read, 1);
	ck_assert_int_eq(write(p[1], "bye", 3), 3);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(s.begin, 0);
	ck_assert(s.cancelled_inside);
	ck_assert_int_eq(s.sleep, 0);
	ck_assert_int_eq(s.yield, 0);
	ck_assert_int_eq(s.poll, POLLOUT);
	ck_assert_int_eq(s.read, 3);
	ck_assert_int_eq(s.write, 3);
	ck_assert_int_eq(s.end, 0);
	/* Once the last shield ends, the cancel holds again. */
	ck_assert_int_eq(s.after_yield, -ECANCELED);
	ck_assert_int_eq(s.after_read, -ECANCELED);
	ck_assert_uint_eq(s.after_inflight, 0);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 3);
	ck_assert_mem_eq(buf, "bye", 3);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_cancelled_task_inside_a_shield_can_still_sleep_poll_read_and_write)
{
	run(shield_after_cancel, NULL);
}
END_TEST

/* A cancel that arrives while a shielded task is parked waits for the shield. */
static int parked_in_a_shield(void *arg)
{
	struct shielded *s = arg;
	char buf[8];

	s->begin = coil_shield_begin();
	s->read = coil_read(s->fd, buf, sizeof(buf), -1, COIL_NEVER);
	s->cancelled_inside = coil_cancelled();
	s->yield = coil_yield();
	s->end = coil_shield_end();
	s->after_yield = coil_yield();
	s->after_read = coil_read(s->fd, buf, sizeof(buf), -1, COIL_NEVER);
	s->after_inflight = inflight();
	return 0;
}

static int cancel_a_shielded_park(void *arg)
{
	struct shielded s = { .read = 1, .after_read = 1 };
	coil_task *t;
	int p[2];

	(void)arg;
	open_pipe(p);
	s.fd = p[0];
	ck_assert_int_eq(coil_spawn(&t, parked_in_a_shield, &s, NULL), 0);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_int_eq(coil_cancel(t), 0);
	/* Kernel entries pass: were the read cancelled, it would be back. */
	let_tasks_park();
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	ck_assert_int_eq(write(p[1], "data", 4), 4);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(s.begin, 0);
	ck_assert_int_eq(s.read, 4);
	ck_assert(s.cancelled_inside);
	ck_assert_int_eq(s.yield, 0);
	ck_assert_int_eq(s.end, 0);
	ck_assert_int_eq(s.after_yield, -ECANCELED);
	ck_assert_int_eq(s.after_read, -ECANCELED);
	ck_assert_uint_eq(s.after_inflight, 0);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_cancel_arriving_while_a_shielded_task_is_parked_does_not_interrupt_it)
{
	run(cancel_a_shielded_park, NULL);
}
END_TEST

/* The other parking calls likewise: a yield, a join, a sleep. */
struct shielded_waits {
	coil_task *other;
	int yield, join, status, sleep, after;
	int64_t sleep_until, woke_at;
};

static int wait_in_a_shield(void *arg)
{
	struct shielded_waits *w = arg;

	ck_assert_int_eq(coil_shield_begin(), 0);
	w->yield = coil_yield();               /* main cancels meanwhile */
	w->join = coil_join(w->other, &w->status, COIL_NEVER);
	w->sleep_until = coil_now() + COIL_MSEC(20);
	w->sleep = coil_sleep_until(w->sleep_until);
	w->woke_at = coil_now();
	ck_assert_int_eq(coil_shield_end(), 0);
	w->after = coil_yield();
	return 0;
}

static int read_once(void *arg)
{
	char buf[8];

	return (int)coil_read(*(int *)arg, buf, sizeof(buf), -1, COIL_NEVER);
}

static int cancel_shielded_waits(void *arg)
{
	struct shielded_waits w = { .yield = 1, .join = 1, .sleep = 1 };
	coil_task *t;
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert_int_eq(coil_spawn(&w.other, read_once, &p[0], NULL), 0);
	ck_assert_int_eq(coil_spawn(&t, wait_in_a_shield, &w, NULL), 0);
	/* Both run: the reader parks, t yields and is queued behind main. */
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	/* t is joining now; let it park there, cancelled, then end the reader. */
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(write(p[1], "abc", 3), 3);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.yield, 0);
	ck_assert_int_eq(w.join, 0);
	ck_assert_int_eq(w.status, 3);
	ck_assert_int_eq(w.sleep, 0);
	ck_assert_int_ge(w.woke_at, w.sleep_until);
	ck_assert_int_eq(w.after, -ECANCELED);
	close_pipe(p);
	return 0;
}

START_TEST(test_a_shielded_yield_join_and_sleep_are_not_cut_short_by_a_cancel)
{
	run(cancel_shielded_waits, NULL);
}
END_TEST

/* Deadlines are not cancels: they apply inside a shield. */
static int deadline_in_a_shield(void *arg)
{
	struct call *c = arg;

	ck_assert_int_eq(coil_shield_begin(), 0);
	c->res = make_call(c);
	c->returned_at = coil_now();
	c->inflight = inflight();
	ck_assert_int_eq(coil_shield_end(), 0);
	c->next = coil_yield();
	return 0;
}

static int deadlines_in_a_shield(void *arg)
{
	static const enum call_kind kinds[] = { READ, POLL };
	struct call c;
	coil_task *t;
	int p[2];

	(void)arg;
	open_pipe(p);
	for (unsigned i = 0; i < 4; i++) {
		/* Long enough for the cancel to land while it is parked. */
		c = make(kinds[i % 2], p[0], coil_now() + COIL_MSEC(200));
		ck_assert_int_eq(coil_spawn(&t, deadline_in_a_shield, &c, NULL), 0);
		let_tasks_park();
		ck_assert(parked(t));
		/* Cancelled while parked (first two) or not at all. */
		if (i < 2)
			ck_assert_int_eq(coil_cancel(t), 0);
		ck_assert_int_eq(join(t), 0);
		ck_assert_msg(c.res == -ETIMEDOUT, "%s: %zd", kind_names[c.kind],
			      c.res);
		ck_assert_int_ge(c.returned_at, c.deadline);
		ck_assert_uint_eq(c.inflight, 0);
		ck_assert_int_eq(c.next, i < 2 ? -ECANCELED : 0);
	}
	close_pipe(p);
	return 0;
}

START_TEST(test_deadlines_still_apply_inside_a_shield)
{
	run(deadlines_in_a_shield, NULL);
}
END_TEST

static int nested_shields(void *arg)
{
	char buf[8];
	int p[2];

	(void)arg;
	open_pipe(p);
	ck_assert(!coil_cancelled());
	ck_assert_int_eq(coil_shield_begin(), 0);
	ck_assert(!coil_cancelled());
	ck_assert_int_eq(coil_shield_begin(), 0);
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ck_assert(coil_cancelled());
	ck_assert_int_eq(coil_shield_end(), 0);
	/* One level left: still shielded. */
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(write(p[1], "in", 2), 2);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), 2);
	ck_assert(coil_cancelled());
	ck_assert_int_eq(coil_shield_end(), 0);
	ck_assert_int_eq(coil_yield(), -ECANCELED);
	ck_assert_int_eq(write(p[1], "out", 3), 3);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER),
			 -ECANCELED);
	ck_assert_int_eq(waiting(p[0]), 3);
	ck_assert(coil_cancelled());
	close_pipe(p);
	return 0;
}

static int spawn_nested_shields(void *arg)
{
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, nested_shields, NULL, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	return 0;
}

START_TEST(test_shields_nest_and_the_cancel_returns_only_after_the_last_end)
{
	run(spawn_nested_shields, NULL);
}
END_TEST

static int unmatched_end(void *arg)
{
	(void)arg;
	ck_assert_int_eq(coil_shield_end(), -EINVAL);
	ck_assert_int_eq(coil_shield_begin(), 0);
	ck_assert_int_eq(coil_shield_end(), 0);
	ck_assert_int_eq(coil_shield_end(), -EINVAL);
	/* A refused end left no shield behind: a cancel takes effect. */
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ck_assert_int_eq(coil_yield(), -ECANCELED);
	return 0;
}

static int spawn_unmatched_end(void *arg)
{
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, unmatched_end, NULL, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	return 0;
}

START_TEST(test_coil_shield_end_without_a_begin_is_einval_and_changes_nothing)
{
	run(spawn_unmatched_end, NULL);
}
END_TEST

static int deepest_shield(void *arg)
{
	(void)arg;
	for (int i = 0; i < UINT16_MAX; i++)
		CHECK(coil_shield_begin() == 0, "shield %d refused", i);
	ck_assert_int_eq(coil_shield_begin(), -EOVERFLOW);
	/* The refused begin did not wrap the depth to 0. */
	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	ck_assert_int_eq(coil_yield(), 0);
	for (int i = 0; i < UINT16_MAX; i++)
		CHECK(coil_shield_end() == 0, "shield end %d refused", i);
	ck_assert_int_eq(coil_shield_end(), -EINVAL);
	ck_assert_int_eq(coil_yield(), -ECANCELED);
	return 0;
}

static int spawn_deepest_shield(void *arg)
{
	coil_task *t;

	(void)arg;
	ck_assert_int_eq(coil_spawn(&t, deepest_shield, NULL, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	return 0;
}

START_TEST(test_coil_shield_begin_beyond_65535_levels_is_eoverflow)
{
	run(spawn_deepest_shield, NULL);
}
END_TEST

/* Cancelled in a read, a task says goodbye in a shield, as cleanup does. */
struct goodbye {
	int rd, wr;
	ssize_t read, bye;
	int close, after;
};

static int say_goodbye(void *arg)
{
	struct goodbye *g = arg;
	char buf[8];

	g->read = coil_read(g->rd, buf, sizeof(buf), -1, COIL_NEVER);
	ck_assert_int_eq(coil_shield_begin(), 0);
	g->bye = coil_write(g->wr, "bye", 3, -1, COIL_NEVER);
	g->close = coil_close(g->wr);
	ck_assert_int_eq(coil_shield_end(), 0);
	g->after = coil_yield();
	return 0;
}

static int cleanup_after_cancel(void *arg)
{
	struct goodbye g = { .read = 1, .bye = 1, .close = 1, .after = 1 };
	coil_task *t;
	char buf[8];
	int in[2], out[2];

	(void)arg;
	open_pipe(in);
	open_pipe(out);
	g.rd = in[0];
	g.wr = out[1];
	ck_assert_int_eq(coil_spawn(&t, say_goodbye, &g, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(g.read, -ECANCELED);
	ck_assert_int_eq(g.bye, 3);
	ck_assert_int_eq(g.close, 0);
	ck_assert_int_eq(g.after, -ECANCELED);
	ck_assert_int_eq(read(out[0], buf, sizeof(buf)), 3);
	ck_assert_mem_eq(buf, "bye", 3);
	ck_assert_int_eq(read(out[0], buf, sizeof(buf)), 0);
	close_pipe(in);
	close(out[0]);
	return 0;
}

START_TEST(test_a_task_cancelled_in_a_read_can_write_and_close_inside_a_shield)
{
	run(cleanup_after_cancel, NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_rw");

	/* Pipes, eventfd, signalfd, pty, files. */
	ADD_TEST(s, test_a_read_parked_on_a_pipe_gets_what_coil_write_puts_in, 10);
	ADD_TEST(s, test_a_pipe_ignores_explicit_offsets, 10);
	ADD_TEST(s, test_a_length_beyond_coil_io_max_is_cut_to_it_not_wrapped, 10);
	ADD_TEST(s, test_an_eventfd_sums_writes_and_a_read_takes_and_resets_the_counter, 10);
	ADD_TEST(s, test_a_signalfd_read_returns_the_raised_signals_siginfo, 10);
	ADD_TEST(s, test_a_raw_pty_passes_bytes_both_ways, 10);
	ADD_TEST(s, test_an_interrupted_pty_read_leaves_the_input_for_the_next_read, 10);
	ADD_TEST(s, test_file_reads_and_writes_at_an_offset_leave_the_position_alone, 10);
	ADD_TEST(s, test_file_reads_and_writes_at_minus_one_use_and_advance_the_position, 10);
	ADD_TEST(s, test_readv_and_writev_scatter_and_gather_over_several_iovecs, 10);
	ADD_TEST(s, test_vectored_calls_take_iov_max_iovecs_and_refuse_one_more, 10);
	ADD_TEST(s, test_write_all_pushes_a_mebibyte_through_a_one_page_pipe_in_order, 30);
	ADD_TEST(s, test_write_all_counts_what_went_before_the_reader_closed_with_epipe, 10);
	ADD_TEST(s, test_write_all_counts_what_went_before_a_cancel_or_its_deadline, 10);
	ADD_TEST(s, test_write_all_writes_at_an_offset_or_at_the_position, 10);
	ADD_TEST(s, test_write_all_at_an_offset_stops_at_the_file_size_limit_with_efbig, 10);

	/* Poll. */
	ADD_TEST(s, test_poll_reports_pollin_pollout_pollhup_and_pollerr_on_a_pipe, 10);
	ADD_TEST(s, test_poll_on_an_eventfd_fires_on_a_write_and_leaves_the_counter, 10);
	ADD_TEST(s, test_a_poll_that_never_fires_times_out_at_its_deadline, 10);

	/* Deadlines and cancels. */
	ADD_TEST(s, test_a_cancelled_read_returns_after_its_final_cqe_and_consumes_nothing, 10);
	ADD_TEST(s, test_a_timed_out_read_returns_after_its_final_cqe_and_consumes_nothing, 10);
	ADD_TEST(s, test_a_cancelled_write_to_a_full_pipe_writes_nothing, 10);
	ADD_TEST(s, test_a_timed_out_write_to_a_full_pipe_writes_nothing, 10);
	ADD_TEST(s, test_an_op_completing_before_its_cancel_keeps_its_result_and_the_next_park_is_cancelled, 10);
	ADD_TEST(s, test_an_op_completing_at_once_despite_a_passed_deadline_keeps_its_result, 10);
	ADD_TEST(s, test_interrupted_reads_never_write_into_a_reused_stack, 10);

	/* Bad input. */
	ADD_TEST(s, test_a_bad_fd_gives_ebadf_to_every_call_and_the_loop_goes_on, 10);
	ADD_TEST(s, test_an_offset_below_minus_one_is_einval_for_every_call, 10);
	ADD_TEST(s, test_a_negative_or_too_large_iovcnt_is_einval, 10);
	ADD_TEST(s, test_calls_without_a_loop_are_eperm_and_close_is_a_plain_close, 10);
	ADD_TEST(s, test_calls_in_a_timer_callback_are_eperm_and_close_is_a_plain_close, 10);
	ADD_TEST(s, test_a_cancelled_tasks_calls_return_ecanceled_and_start_nothing, 10);

	/* coil_close and registered files. */
	ADD_TEST(s, test_coil_close_closes_the_fd_and_a_bad_fd_is_ebadf, 10);
	ADD_TEST(s, test_coil_close_in_a_cancelled_task_closes_and_the_task_stays_cancelled, 10);
	ADD_TEST(s, test_coil_close_inside_a_shield_leaves_the_shield_depth_as_it_was, 10);
	ADD_TEST(s, test_coil_close_in_a_cancelled_task_65535_shields_deep_still_closes, 10);
	ADD_TEST(s, test_coil_close_of_a_fixed_fd_empties_the_slot_and_leaves_fds_open, 10);
	ADD_TEST(s, test_registered_pipe_ends_read_write_and_poll_through_coil_fixed_fd, 10);
	ADD_TEST(s, test_coil_files_update_swaps_what_a_slot_names, 10);

	/* Shields. */
	ADD_TEST(s, test_a_cancelled_task_inside_a_shield_can_still_sleep_poll_read_and_write, 10);
	ADD_TEST(s, test_a_cancel_arriving_while_a_shielded_task_is_parked_does_not_interrupt_it, 10);
	ADD_TEST(s, test_a_shielded_yield_join_and_sleep_are_not_cut_short_by_a_cancel, 10);
	ADD_TEST(s, test_deadlines_still_apply_inside_a_shield, 10);
	ADD_TEST(s, test_shields_nest_and_the_cancel_returns_only_after_the_last_end, 10);
	ADD_TEST(s, test_coil_shield_end_without_a_begin_is_einval_and_changes_nothing, 10);
	ADD_TEST(s, test_coil_shield_begin_beyond_65535_levels_is_eoverflow, 10);
	ADD_TEST(s, test_a_task_cancelled_in_a_read_can_write_and_close_inside_a_shield, 10);
	return test_main(s);
}
