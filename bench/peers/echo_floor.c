/*
 * The floor of coil's echo: the same shape as examples/echo (a task per
 * connection, each receive and send one SQE, the task parked until its CQE,
 * woken through a FIFO ready queue, on coil's context switch), with none
 * of what a coil call adds: no deadline, no cancel, no misuse or fork
 * checks, no registered-file or valgrind support, no batch limit.
 *
 * Built twice. echo_floor has the receive and the send inline in the
 * task's loop, and each CQE names its task. echo_floor_ops (FLOOR_OPS)
 * keeps the structure ../shared/design.md gives coil: the calls are out of
 * line, as a library's are, find the running task in a thread local, and
 * put an op on the task's stack whose completion handler the dispatch
 * calls with the CQE, and which wakes the task. So the first figure is
 * what tasks and parking cost, the second what that structure adds, and
 * coil's own figure beyond it is the price of its calls' semantics.
 *
 *   echo_floor --port N [--deadline]
 *
 * (--deadline is accepted and ignored: bench/echo passes it to coil's.)
 * Not run by `make bench`; measure either with bench/echo in coil's place:
 *   bench/echo --coil bench/echo_floor_ops --raw bench/echo_raw
 *              --epoll /none --libuv /none --rounds 1 --window-ms 100
 * Runs until SIGTERM or SIGINT, then exits 0.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "executor/context.h"

#define STACK_SIZE (64 * 1024)
enum { ACCEPT = 1, STOP = 2 }; /* user_data of the two ops without a task */

struct task {
	coil__context ctx;
	struct task *next_ready;
	int fd, res;
};

static struct io_uring ring;
static coil__context loop_ctx;
static struct task *ready_head, **ready_tail = &ready_head;
static int stop_pipe[2], listener;

static struct io_uring_sqe *get_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;
}

static void make_ready(struct task *t)
{
	t->next_ready = NULL;
	*ready_tail = t;
	ready_tail = &t->next_ready;
}

/* The running task, found as coil's calls find it. */
static __thread struct task *current;

/* Park the running task until make_ready; return its result. */
static inline __attribute__((always_inline)) int park(void)
{
	struct task *t = current;

	coil__context_switch(&t->ctx, &loop_ctx);
	return t->res;
}

#ifdef FLOOR_OPS
/* A library's calls: out of line, and opaque to the caller's registers. */
#if defined(__clang__)
#define CALL __attribute__((noinline))
#else
#define CALL __attribute__((noinline, noipa))
#endif

struct op {
	void (*complete)(struct op *op, const struct io_uring_cqe *cqe);
};

struct io {
	struct op op;
	struct task *task;
	int res;
	unsigned flags;
};

static void io_complete(struct op *op, const struct io_uring_cqe *cqe)
{
	struct io *io = (struct io *)op;

	io->res = cqe->res;
	io->flags = cqe->flags;
	io->task->res = cqe->res;
	make_ready(io->task);
}

/* An op on the running task's stack, named by the SQE's user_data. */
#define OP_START                                                           \
	struct io io = { .op.complete = io_complete, .task = current };    \
	void *data = &io.op
#else
#define CALL static inline __attribute__((always_inline))
#define OP_START void *data = current
#endif

CALL int floor_recv(int fd, void *buf, size_t len)
{
	OP_START;
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_recv(sqe, fd, buf, len, 0);
	io_uring_sqe_set_data(sqe, data);
	return park();
}

static inline __attribute__((always_inline)) int
send_once(int fd, const void *buf, size_t len)
{
	OP_START;
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, data);
	return park();
}

CALL int floor_send_all(int fd, const void *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		int sent = send_once(fd, (const char *)buf + off, len - off);

		if (sent <= 0)
			return -1;
		off += (size_t)sent;
	}
	return 0;
}

static void connection(void *arg)
{
	struct task *t = arg;
	char buf[16384];

	for (;;) {
		int n = floor_recv(t->fd, buf, sizeof(buf));

		if (n <= 0 || floor_send_all(t->fd, buf, (size_t)n) < 0)
			break;
	}
	close(t->fd);
	/* Never resumed: its stack and handle stay, as this is a benchmark. */
	coil__context_switch(&t->ctx, &loop_ctx);
	abort();
}

static int spawn(int fd)
{
	void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct task *t = calloc(1, sizeof(*t));

	if (stack == MAP_FAILED || !t)
		return -1;
	t->fd = fd;
	coil__context_make(&t->ctx, stack, STACK_SIZE, connection, t);
	make_ready(t);
	return 0;
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_multishot_accept(sqe, listener, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, ACCEPT);
}

static void on_stop_signal(int sig)
{
	ssize_t n = write(stop_pipe[1], "", 1);

	(void)sig;
	(void)n;
}

static int listen_on(int port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(fd, 4096)) {
		perror("echo_floor: listen");
		return -1;
	}
	return fd;
}

static int setup(int port)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
			 IORING_SETUP_SUBMIT_ALL,
	};
	struct sigaction sa = { .sa_handler = on_stop_signal };
	static char stop_byte;
	struct io_uring_sqe *sqe;
	int ret;

	listener = listen_on(port);
	signal(SIGPIPE, SIG_IGN);
	if (listener < 0 || pipe2(stop_pipe, O_CLOEXEC) ||
	    sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
		return -1;
	ret = io_uring_queue_init_params(1024, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "echo_floor: io_uring setup: %s\n", strerror(-ret));
		return -1;
	}
	io_uring_register_ring_fd(&ring);
	arm_accept();
	sqe = get_sqe();
	io_uring_prep_read(sqe, stop_pipe[0], &stop_byte, 1, 0);
	io_uring_sqe_set_data64(sqe, STOP);
	printf("listening on 127.0.0.1:%d\n", port);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4 || strcmp(argv[1], "--port") ||
	    (argc == 4 && strcmp(argv[3], "--deadline"))) {
		fprintf(stderr, "usage: echo_floor --port N [--deadline]\n");
		return 2;
	}
	if (setup(atoi(argv[2])) < 0)
		return 1;
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		while (ready_head) {
			struct task *t = ready_head;

			ready_head = t->next_ready;
			if (!ready_head)
				ready_tail = &ready_head;
			current = t;
			coil__context_switch(&loop_ctx, &t->ctx);
			current = NULL;
		}
		io_uring_submit_and_wait(&ring, 1);
		io_uring_for_each_cqe(&ring, head, cqe) {
			n++;
			if (cqe->user_data == STOP)
				return 0;
			if (cqe->user_data == ACCEPT) {
				if (cqe->res >= 0 && spawn(cqe->res) < 0)
					close(cqe->res);
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_accept();
				continue;
			}
#ifdef FLOOR_OPS
			struct op *op = io_uring_cqe_get_data(cqe);
			struct io_uring_cqe copy = *cqe;

			op->complete(op, &copy);
#else
			struct task *t = io_uring_cqe_get_data(cqe);

			t->res = cqe->res;
			make_ready(t);
#endif
		}
		io_uring_cq_advance(&ring, n);
	}
}
