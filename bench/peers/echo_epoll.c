/*
 * Echo server on epoll: nonblocking sockets, level-triggered readiness, one
 * read then one write per readable event. What the socket does not take at
 * once is kept and the connection waits for EPOLLOUT before reading again,
 * so bytes go back in order and a slow reader cannot make us buffer without
 * bound.
 *
 *   echo_epoll --port N
 *
 * Runs until SIGTERM or SIGINT, then exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS	256

struct conn {
	int fd;
	char *out;		/* received, not yet written back */
	size_t out_len, out_off, out_cap;
};

static int epfd;
/* Not connections: the addresses tell the listener and the stop pipe apart. */
static struct conn listener, stop;
static int stop_w;
static char buf[65536];

static int watch(int op, struct conn *c, unsigned int events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	return epoll_ctl(epfd, op, c->fd, &ev);
}

static void drop(struct conn *c)
{
	close(c->fd);	/* also removes it from the epoll set */
	free(c->out);
	free(c);
}

/* Keep the bytes the socket refused and wait until it can take them. */
static int keep_rest(struct conn *c, const char *data, size_t len)
{
	if (len > c->out_cap) {
		char *p = realloc(c->out, len);

		if (!p)
			return -1;
		c->out = p;
		c->out_cap = len;
	}
	memcpy(c->out, data, len);
	c->out_len = len;
	c->out_off = 0;
	return watch(EPOLL_CTL_MOD, c, EPOLLOUT);
}

static void on_readable(struct conn *c)
{
	ssize_t n = read(c->fd, buf, sizeof(buf)), w;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	w = write(c->fd, buf, n);
	if (w == n)
		return;
	if (w < 0 && errno != EAGAIN && errno != EINTR) {
		drop(c);
		return;
	}
	if (w < 0)
		w = 0;
	if (keep_rest(c, buf + w, n - w))
		drop(c);
}

static void on_writable(struct conn *c)
{
	ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (w < 0) {
		drop(c);
		return;
	}
	c->out_off += w;
	if (c->out_off == c->out_len && watch(EPOLL_CTL_MOD, c, EPOLLIN))
		drop(c);
}

static void on_accept(void)
{
	for (;;) {
		int fd = accept4(listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				fprintf(stderr, "echo_epoll: accept: %s\n",
					strerror(errno));
			return;
		}
		/* Echoes are small and latency-bound: never wait to coalesce. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (watch(EPOLL_CTL_ADD, c, EPOLLIN))
			drop(c);
	}
}

static void on_event(struct epoll_event *ev)
{
	struct conn *c = ev->data.ptr;

	if (c == &listener)
		on_accept();
	else if (c->out_len > c->out_off)
		on_writable(c);	/* errors and hang-ups show up here too */
	else
		on_readable(c);
}

static int listen_on(int port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int one = 1;

	listener.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listener.fd < 0 ||
	    setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(listener.fd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(listener.fd, 4096)) {
		fprintf(stderr, "echo_epoll: listen on 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		return -1;
	}
	return watch(EPOLL_CTL_ADD, &listener, EPOLLIN);
}

static void on_stop_signal(int sig)
{
	ssize_t n = write(stop_w, "", 1);

	(void)sig;
	(void)n;
}

/*
 * SIGTERM and SIGINT write a byte into a pipe in the epoll set: no window
 * between checking a flag and waiting, and it works under valgrind, which
 * does not honour signalfd's blocked signals.
 */
static int setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	int fds[2];

	signal(SIGPIPE, SIG_IGN);
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) ||
	    sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) {
		fprintf(stderr, "echo_epoll: signals: %s\n", strerror(errno));
		return -1;
	}
	stop.fd = fds[0];
	stop_w = fds[1];
	return watch(EPOLL_CTL_ADD, &stop, EPOLLIN);
}

static int loop(void)
{
	struct epoll_event events[MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(epfd, events, MAX_EVENTS, -1);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "echo_epoll: epoll_wait: %s\n",
				strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (events[i].data.ptr == &stop)
				return 0;
			on_event(&events[i]);
		}
	}
}

static int parse_port(int argc, char **argv)
{
	char *end;
	long port;

	if (argc == 2 && !strcmp(argv[1], "--help")) {
		printf("usage: echo_epoll --port N\n"
		       "Echo server on epoll, listening on 127.0.0.1:N until "
		       "SIGTERM or SIGINT.\n");
		exit(0);
	}
	if (argc != 3 || strcmp(argv[1], "--port")) {
		fprintf(stderr, "usage: echo_epoll --port N\n");
		exit(2);
	}
	port = strtol(argv[2], &end, 10);
	if (*end || port < 1 || port > 65535) {
		fprintf(stderr, "echo_epoll: bad port '%s'\n", argv[2]);
		exit(2);
	}
	return port;
}

int main(int argc, char **argv)
{
	int port = parse_port(argc, argv);

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		fprintf(stderr, "echo_epoll: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	if (setup_signals() || listen_on(port))
		return 1;
	return loop();
}
