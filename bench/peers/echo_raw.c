/*
 * Echo server on liburing alone: the upper bound coil's examples/echo is
 * measured against. One ring, one thread: multishot accept, multishot recv
 * into a provided buffer ring, and a send of each received buffer before
 * the buffer goes back to the ring.
 *
 *   echo_raw --port N
 *
 * Runs until SIGTERM or SIGINT, then exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* A power of two: the buffer ring's size. -DNBUFS=8 exercises -ENOBUFS. */
#ifndef NBUFS
#define NBUFS		2048	/* 8 MiB: four per connection at 512 */
#endif
#define BUF_SIZE	4096
#define BGID		0
#define NO_BUF		(-1)

/* What a CQE belongs to: the low bits of its user_data. */
enum op { OP_ACCEPT, OP_RECV, OP_SEND, OP_STOP, OP_CANCEL };
#define OP_MASK		7UL

/*
 * One client. Received buffers wait in a queue (linked through buf_next)
 * and are sent one at a time: with a single send in flight, bytes leave in
 * the order they arrived even when a send is short.
 */
struct conn {
	int fd;
	bool recv_armed;	/* the multishot recv is in the kernel */
	bool sending;		/* a send of the head buffer is in flight */
	bool starved;		/* recv ended with -ENOBUFS, on the starved list */
	bool eof;		/* peer closed: send what is queued, then close */
	bool dead;		/* error: drop what is queued, then close */
	int head, tail;		/* queued buffer ids, NO_BUF when empty */
	unsigned int head_off;	/* bytes of the head buffer already sent */
	struct conn *next_starved;
} __attribute__((aligned(8)));

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static unsigned int buf_len[NBUFS];
static int buf_next[NBUFS];
static int bufs_out;		/* buffers the kernel has handed to us */
static int bufs_returned;	/* added to the ring, not yet published */
static struct conn *starved;
static int listen_fd;
static int stop_pipe[2];
static char stop_byte;
static bool stop;

static uint64_t tag(struct conn *c, enum op op)
{
	return (uint64_t)(uintptr_t)c | op;
}

static struct io_uring_sqe *get_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	/* SQ full: hand what is there to the kernel and take a fresh one. */
	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	if (!sqe) {
		fprintf(stderr, "echo_raw: no submission queue entry\n");
		exit(1);
	}
	return sqe;
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_ACCEPT));
}

static void arm_stop(void)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_read(sqe, stop_pipe[0], &stop_byte, 1, 0);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_STOP));
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, tag(c, OP_RECV));
	c->recv_armed = true;
}

static void cancel_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_cancel64(sqe, tag(c, OP_RECV), 0);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_CANCEL));
}

static void send_head(struct conn *c)
{
	struct io_uring_sqe *sqe = get_sqe();
	int bid = c->head;

	io_uring_prep_send(sqe, c->fd, bufs + (size_t)bid * BUF_SIZE + c->head_off,
			   buf_len[bid] - c->head_off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, tag(c, OP_SEND));
	c->sending = true;
}

/* Back to the ring; published in one step before the next submit. */
static void recycle(int bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, bid,
			      io_uring_buf_ring_mask(NBUFS), bufs_returned++);
	bufs_out--;
}

static void publish_buffers(void)
{
	if (bufs_returned) {
		io_uring_buf_ring_advance(br, bufs_returned);
		bufs_returned = 0;
	}
}

static void enqueue(struct conn *c, int bid, unsigned int len)
{
	buf_len[bid] = len;
	buf_next[bid] = NO_BUF;
	if (c->tail == NO_BUF)
		c->head = bid;
	else
		buf_next[c->tail] = bid;
	c->tail = bid;
}

static void pop_head(struct conn *c)
{
	int bid = c->head;

	c->head = buf_next[bid];
	if (c->head == NO_BUF)
		c->tail = NO_BUF;
	c->head_off = 0;
	recycle(bid);
}

static void maybe_free(struct conn *c)
{
	if (!(c->eof || c->dead) || c->recv_armed || c->sending ||
	    c->starved || c->head != NO_BUF)
		return;
	close(c->fd);
	free(c);
}

/* Return every queued buffer but the head while its send is in flight. */
static void drop_queue(struct conn *c)
{
	int keep = c->sending ? c->head : NO_BUF;
	int bid = keep == NO_BUF ? c->head : buf_next[keep];

	while (bid != NO_BUF) {
		int next = buf_next[bid];

		recycle(bid);
		bid = next;
	}
	if (keep == NO_BUF) {
		c->head = c->tail = NO_BUF;
	} else {
		buf_next[keep] = NO_BUF;
		c->tail = keep;
	}
}

/* An error on the connection: stop receiving, drop what is queued. */
static void fail(struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->recv_armed)
		cancel_recv(c);
	drop_queue(c);
}

static void on_accept(struct io_uring_cqe *cqe)
{
	struct conn *c;
	int one = 1;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm_accept();
	if (cqe->res < 0) {
		fprintf(stderr, "echo_raw: accept: %s\n", strerror(-cqe->res));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cqe->res);
		return;
	}
	c->fd = cqe->res;
	c->head = c->tail = NO_BUF;
	/* Echoes are small and latency-bound: never wait to coalesce. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	arm_recv(c);
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->recv_armed = false;
	if (cqe->res > 0) {
		int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		bufs_out++;
		if (c->dead) {
			recycle(bid);
		} else {
			enqueue(c, bid, cqe->res);
			if (!c->sending)
				send_head(c);
			/* Multishot can end early (e.g. CQ overflow): re-arm. */
			if (!c->recv_armed)
				arm_recv(c);
		}
	} else if (cqe->res == -ENOBUFS && !c->dead) {
		/* The data stays in the socket; re-armed once buffers return. */
		c->starved = true;
		c->next_starved = starved;
		starved = c;
	} else if (cqe->res == 0) {
		c->eof = true;
	} else if (cqe->res != -ECANCELED || !c->dead) {
		fail(c);
	}
	maybe_free(c);
}

static void on_send(struct conn *c, struct io_uring_cqe *cqe)
{
	c->sending = false;
	if (cqe->res < 0) {
		pop_head(c);
		fail(c);
	} else if (c->dead) {
		pop_head(c);
	} else {
		c->head_off += cqe->res;
		if (c->head_off == buf_len[c->head])
			pop_head(c);
		if (c->head != NO_BUF)
			send_head(c);
	}
	maybe_free(c);
}

static void on_cqe(struct io_uring_cqe *cqe)
{
	struct conn *c = (struct conn *)(uintptr_t)(cqe->user_data & ~OP_MASK);

	switch (cqe->user_data & OP_MASK) {
	case OP_ACCEPT:
		on_accept(cqe);
		break;
	case OP_RECV:
		on_recv(c, cqe);
		break;
	case OP_SEND:
		on_send(c, cqe);
		break;
	case OP_STOP:
		if (cqe->res == 1)
			stop = true;
		else
			arm_stop();
		break;
	}
}

/* After buffers came back, connections that ran out may receive again. */
static void rearm_starved(void)
{
	while (starved && bufs_out < NBUFS) {
		struct conn *c = starved;

		starved = c->next_starved;
		c->starved = false;
		if (c->dead)
			maybe_free(c);
		else
			arm_recv(c);
	}
}

static int setup_ring(void)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
			 IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE,
		.cq_entries = 16384,
	};
	struct io_uring_buf_reg reg = { .ring_entries = NBUFS, .bgid = BGID };
	void *mem;
	int ret;

	ret = io_uring_queue_init_params(1024, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "echo_raw: io_uring setup: %s\n", strerror(-ret));
		return -1;
	}
	/* Saves the fd lookup on every io_uring_enter. */
	io_uring_register_ring_fd(&ring);

	/*
	 * The kernel takes the buffers in ring order, so each of them is
	 * written once early on. Populated now, not on first write: a page
	 * fault in the receive path costs tens of microseconds here, and a
	 * fresh server would take one per buffer for its first NBUFS requests.
	 */
	bufs = mmap(NULL, (size_t)NBUFS * BUF_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (bufs == MAP_FAILED ||
	    posix_memalign(&mem, 4096, NBUFS * sizeof(struct io_uring_buf))) {
		fprintf(stderr, "echo_raw: out of memory\n");
		return -1;
	}
	br = mem;
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret < 0) {
		fprintf(stderr, "echo_raw: buffer ring: %s\n", strerror(-ret));
		return -1;
	}
	io_uring_buf_ring_init(br);
	bufs_out = NBUFS;
	for (int bid = 0; bid < NBUFS; bid++)
		recycle(bid);
	publish_buffers();
	return 0;
}

static int listen_on(int port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1;

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 ||
	    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(listen_fd, 4096)) {
		fprintf(stderr, "echo_raw: listen on 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		return -1;
	}
	return 0;
}

static void on_stop_signal(int sig)
{
	ssize_t n = write(stop_pipe[1], "", 1);

	(void)sig;
	(void)n;
}

/*
 * SIGTERM and SIGINT write a byte into a pipe whose read end is one more
 * read in the ring: no window between checking a flag and waiting, and
 * it works under valgrind, which does not honour signalfd's blocked signals.
 */
static int setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	signal(SIGPIPE, SIG_IGN);
	if (pipe2(stop_pipe, O_CLOEXEC) ||
	    fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK) ||
	    sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) {
		fprintf(stderr, "echo_raw: signals: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int loop(void)
{
	arm_stop();
	arm_accept();
	while (!stop) {
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0;
		int ret;

		publish_buffers();
		rearm_starved();
		ret = io_uring_submit_and_wait(&ring, 1);
		/* A signal, or completions to reap before more can be sent. */
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			fprintf(stderr, "echo_raw: io_uring_enter: %s\n",
				strerror(-ret));
			return 1;
		}
		io_uring_for_each_cqe(&ring, head, cqe) {
			on_cqe(cqe);
			n++;
		}
		io_uring_cq_advance(&ring, n);
	}
	return 0;
}

static int parse_port(int argc, char **argv)
{
	char *end;
	long port;

	if (argc == 2 && !strcmp(argv[1], "--help")) {
		printf("usage: echo_raw --port N\n"
		       "Echo server on liburing, listening on 127.0.0.1:N until "
		       "SIGTERM or SIGINT.\n");
		exit(0);
	}
	if (argc != 3 || strcmp(argv[1], "--port")) {
		fprintf(stderr, "usage: echo_raw --port N\n");
		exit(2);
	}
	port = strtol(argv[2], &end, 10);
	if (*end || port < 1 || port > 65535) {
		fprintf(stderr, "echo_raw: bad port '%s'\n", argv[2]);
		exit(2);
	}
	return port;
}

int main(int argc, char **argv)
{
	int port = parse_port(argc, argv);

	if (setup_signals() || listen_on(port) || setup_ring())
		return 1;
	return loop();
}
