/*
 * Echo benchmark: coil's examples/echo against three peers, a hand-written
 * liburing server (the upper bound), an epoll server and a libuv server.
 *
 *   echo --coil PATH --raw PATH --epoll PATH --libuv PATH [--full]
 *        [--rounds N] [--window-ms N] [--conns C --size S --mode same|cross]
 *        [--no-cost]
 *
 * The load generator is a closed loop per connection: send S bytes, wait
 * for all S to come back, check them byte by byte, send the next message.
 * Each measurement starts the server afresh on a free port (pinned to CPU
 * 0; the client runs on CPU 0 too for "same", on CPU 1 for "cross"), warms
 * up, counts requests over a timed window and stops the server. Rounds
 * interleave the servers, in an order that rotates each round, so drift on
 * this shared machine hits all of them alike; each figure is the median of
 * the rounds.
 *
 * Then the cost of a request, which does not depend on the machine's mood:
 * user-space instructions of the server under callgrind, and its
 * io_uring_enter / epoll_wait calls under strace, both over a fixed number
 * of requests after a warm-up (16 connections, 64 bytes, one CPU).
 *
 * A server that cannot start is reported and skipped; one that echoes
 * wrong bytes is a failure. The exit status is 0 when every server whose
 * file exists ran correctly.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_ROUNDS	15
#define MAX_CONNS	512
#define MAX_SIZE	4096
#define SERVER_CPU	0
#define PATTERN_SPAN	251	/* messages start at one of these offsets */
#define START_MS	5000	/* a server must accept within this */
#define STOP_MS		2000	/* ... and exit within this after SIGTERM */
#define STALL_MS	3000	/* no echo for this long: the server is stuck */

/*
 * The cost measurements: fixed work after a warm-up, with client and
 * server on one CPU under real-time round-robin scheduling. There the
 * client has a message out on every connection before the server runs,
 * and the server answers all of them before the client runs again, so
 * the server's batches, and with them its instructions and waits per
 * request, are the same in every run (to 0.1%, also with another task
 * spinning on that CPU). Across two CPUs, or with other tasks cutting in,
 * the batches follow the machine's timing (5-10% apart).
 */
#define COST_CONNS	16
#define COST_SIZE	64
#define COST_WARMUP	2000
#define COST_REQUESTS	20000	/* under callgrind */
#define TRACE_REQUESTS	10000	/* under strace, which stops every syscall */
/*
 * The wait a server is in when strace attaches, and the one it is in when
 * strace detaches, may each be counted or not: the counts of two servers
 * that enter alike differ by up to this many calls.
 */
#define EDGE_CALLS	2.0
#define VALGRIND_MS	30000	/* start, stall and stop limits under valgrind */

enum { COIL, RAW, EPOLL, LIBUV, NSERVERS };

struct server {
	const char *name;
	const char *path;
	bool absent;		/* no such file: skipped, not a failure */
	bool failed;		/* skipped from then on; the benchmark fails */
	double instr, enter;	/* cost per request; < 0 when not measured */
};

static struct server servers[NSERVERS] = {
	[COIL] = { .name = "coil" },
	[RAW] = { .name = "raw" },
	[EPOLL] = { .name = "epoll" },
	[LIBUV] = { .name = "libuv" },
};

struct config {
	int conns, size;
	bool cross;
};

/* One measurement of one server. */
struct sample {
	double rps, p50_us, p99_us;
};

static struct {
	bool full, cost, custom;
	int rounds, window_ms, warm_ms;
	struct config only;
} opt = { .cost = true, .rounds = 5 };

static unsigned char pattern[MAX_SIZE + PATTERN_SPAN];
static int client_cpu_cross = 1;
static char tmpdir[] = "/tmp/coil-echo.XXXXXX";

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* cpu < 0: any CPU. */
static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	if (cpu >= 0) {
		CPU_SET(cpu, &set);
	} else {
		for (int i = 0; i < CPU_SETSIZE; i++)
			CPU_SET(i, &set);
	}
	sched_setaffinity(0, sizeof(set), &set);
}

/*
 * Round-robin real-time scheduling for the cost runs: no other task on
 * the machine gets between client and server, and neither preempts the
 * other when it wakes it, so each runs until it waits (or, should one
 * spin, for 100 ms at most).
 */
static bool realtime(bool on)
{
	struct sched_param sp = { .sched_priority = on ? 1 : 0 };

	return !sched_setscheduler(0, on ? SCHED_RR : SCHED_OTHER, &sp);
}

/* Report a server's problem; a fatal one fails the server for good. */
static void fail(struct server *s, bool fatal, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct server *s, bool fatal, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "echo: %s: ", s->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (fatal)
		s->failed = true;
}

/* ---- processes ---- */

/*
 * fork and exec argv pinned to cpu, with its stdout on our stderr: our
 * stdout carries the RESULT lines only. It dies with us.
 */
static pid_t spawn(char *const argv[], int cpu, bool quiet)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pin(cpu);
	if (cpu < 0)
		realtime(false);	/* tools run as anything else does */
	if (quiet) {
		int fd = open("/dev/null", O_WRONLY);

		dup2(fd, 1);
		dup2(fd, 2);
	} else {
		dup2(2, 1);
	}
	execvp(argv[0], argv);
	fprintf(stderr, "echo: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "stopped (status 0x%x)", status);
}

/* Wait up to ms for pid to exit; 0 and its status, or -1 if it still runs. */
static int wait_exit(pid_t pid, int ms, int *status)
{
	uint64_t deadline = now_ns() + (uint64_t)ms * 1000000;

	for (;;) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		if (now_ns() > deadline)
			return -1;
		sleep_ms(1);
	}
}

/* Run a tool to completion (its output discarded); its exit status. */
static int run_tool(char *const argv[], int ms)
{
	pid_t pid = spawn(argv, -1, true);
	int status;

	if (pid < 0)
		return -1;
	if (wait_exit(pid, ms, &status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool in_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name);
		if (!access(buf, X_OK))
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

/* ---- servers ---- */

struct proc {
	pid_t pid;
	int port;
};

static int connect_to(int port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * A port nobody holds, below the ephemeral range (32768 up) so that no
 * client connection of ours can take it between this check and the
 * server's bind. Each start gets a new one: a server that just exited may
 * keep its port for a while (io_uring releases files asynchronously).
 */
static int free_port(void)
{
	static int next;

	if (!next)
		next = 20000 + getpid() % 10000;
	for (int tries = 0; tries < 10000; tries++) {
		struct sockaddr_in addr = {
			.sin_family = AF_INET,
			.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		};
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int port = next;
		bool ok;

		next = next >= 29999 ? 20000 : next + 1;
		addr.sin_port = htons(port);
		ok = fd >= 0 && !bind(fd, (struct sockaddr *)&addr, sizeof(addr));
		if (fd >= 0)
			close(fd);
		if (ok)
			return port;
	}
	return -1;
}

/*
 * Start a server, maybe under a wrapper (valgrind) and with one extra
 * argument, and wait until it accepts a connection. On failure, why says
 * what happened and nothing is left running.
 */
static int server_start(struct server *s, char *const *wrap, const char *extra,
			int ms, struct proc *p, char *why, size_t whylen)
{
	char *argv[16], port[16];
	uint64_t deadline = now_ns() + (uint64_t)ms * 1000000;
	int n = 0, status;

	p->port = free_port();
	if (p->port < 0) {
		snprintf(why, whylen, "no free port");
		return -1;
	}
	snprintf(port, sizeof(port), "%d", p->port);
	while (wrap && *wrap)
		argv[n++] = *wrap++;
	argv[n++] = (char *)s->path;
	argv[n++] = "--port";
	argv[n++] = port;
	if (extra)
		argv[n++] = (char *)extra;
	argv[n] = NULL;

	p->pid = spawn(argv, SERVER_CPU, false);
	if (p->pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		int fd;

		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			char how[128];

			describe_status(status, how, sizeof(how));
			snprintf(why, whylen, "%s before accepting connections", how);
			return -1;
		}
		fd = connect_to(p->port);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (now_ns() > deadline)
			break;
		sleep_ms(2);
	}
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &status, 0);
	snprintf(why, whylen, "accepted no connection on port %d within %d ms",
		 p->port, ms);
	return -1;
}

/* SIGTERM, then SIGKILL after the grace; -1 unless it exited with 0. */
static int server_stop(struct proc *p, int ms, char *why, size_t whylen)
{
	int status;

	kill(p->pid, SIGTERM);
	if (wait_exit(p->pid, ms, &status)) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		snprintf(why, whylen, "still ran %d ms after SIGTERM", ms);
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	describe_status(status, why, whylen);
	strncat(why, " after SIGTERM", whylen - strlen(why) - 1);
	return -1;
}

/* ---- the load generator ---- */

struct client {
	int fd;
	bool busy;		/* a message is out */
	int got;		/* bytes of its echo received */
	unsigned int seq;	/* messages sent on this connection */
	unsigned int off;	/* where in pattern the message starts */
	uint64_t sent;		/* when it went out */
};

struct load {
	int conns, size, stall_ms;
	struct client *cl;
	int ep;
	int outstanding;
	unsigned char buf[MAX_SIZE];

	/* What one run does: see load_run(). */
	long limit, issued, counted;
	uint64_t from, end;
	uint32_t *lat;		/* ns, of the counted requests */
	size_t nlat, cap;
	char err[256];		/* why the run stopped */
	bool wrong;		/* ... and it was bytes that differ */
};

static void fill_pattern(void)
{
	uint32_t x = 2463534242u;

	for (size_t i = 0; i < sizeof(pattern); i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		pattern[i] = x;
	}
}

static int client_send(struct load *l, int i, uint64_t now)
{
	struct client *c = &l->cl[i];
	const unsigned char *msg;
	int done = 0;

	/* Every message differs from the one before: stale bytes show. */
	c->off = (c->seq++ * 37u + i * 101u) % PATTERN_SPAN;
	msg = pattern + c->off;
	while (done < l->size) {
		ssize_t n = write(c->fd, msg + done, l->size - done);

		if (n < 0) {
			snprintf(l->err, sizeof(l->err), "connection %d: write: %s",
				 i, strerror(errno));
			return -1;
		}
		done += n;
	}
	c->busy = true;
	c->got = 0;
	c->sent = now;
	l->issued++;
	l->outstanding++;
	return 0;
}

static bool more_to_send(struct load *l, uint64_t now)
{
	return l->limit ? l->issued < l->limit : now < l->end;
}

static void record(struct load *l, uint64_t ns)
{
	if (l->nlat == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 65536;
		uint32_t *p = realloc(l->lat, cap * sizeof(*p));

		if (!p)
			return;	/* the count still holds; fewer latencies */
		l->lat = p;
		l->cap = cap;
	}
	l->lat[l->nlat++] = ns > UINT32_MAX ? UINT32_MAX : ns;
}

static int check_bytes(struct load *l, int i, ssize_t n)
{
	struct client *c = &l->cl[i];
	const unsigned char *want = pattern + c->off + c->got;

	if (!memcmp(l->buf, want, n))
		return 0;
	l->wrong = true;
	for (ssize_t k = 0; k < n; k++) {
		if (l->buf[k] != want[k]) {
			snprintf(l->err, sizeof(l->err),
				 "WRONG DATA: connection %d, message %u: byte %ld "
				 "of %d is 0x%02x, sent 0x%02x",
				 i, c->seq, (long)(c->got + k), l->size,
				 l->buf[k], want[k]);
			break;
		}
	}
	return -1;
}

static int complete(struct load *l, int i)
{
	struct client *c = &l->cl[i];
	uint64_t now = now_ns();

	c->busy = false;
	l->outstanding--;
	if (now >= l->from && now < l->end) {
		l->counted++;
		record(l, now - c->sent);
	}
	if (more_to_send(l, now))
		return client_send(l, i, now);
	return 0;
}

/* Take what has arrived of connection i's echo (blocking unless flags). */
static int client_read(struct load *l, int i, int flags)
{
	struct client *c = &l->cl[i];
	ssize_t n = recv(c->fd, l->buf, l->size - c->got, flags);

	if (n < 0 && errno == EAGAIN && flags)
		return 0;
	if (n < 0 && errno == EAGAIN) {
		snprintf(l->err, sizeof(l->err),
			 "connection %d: no echo for %d ms", i, l->stall_ms);
		return -1;
	}
	if (n < 0) {
		snprintf(l->err, sizeof(l->err), "connection %d: read: %s", i,
			 strerror(errno));
		return -1;
	}
	if (n == 0) {
		snprintf(l->err, sizeof(l->err),
			 "connection %d: closed by the server after %d of %d "
			 "bytes", i, c->got, l->size);
		return -1;
	}
	if (!c->busy) {
		l->wrong = true;
		snprintf(l->err, sizeof(l->err),
			 "WRONG DATA: connection %d: %ld bytes nobody sent",
			 i, (long)n);
		return -1;
	}
	if (check_bytes(l, i, n))
		return -1;
	c->got += n;
	return c->got == l->size ? complete(l, i) : 0;
}

/* Many connections: wait for whichever has data. */
static int poll_clients(struct load *l)
{
	struct epoll_event ev[MAX_CONNS];
	int n = epoll_wait(l->ep, ev, MAX_CONNS, l->stall_ms);

	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0) {
		snprintf(l->err, sizeof(l->err), "%d connections: no echo for %d ms",
			 l->outstanding, l->stall_ms);
		return -1;
	}
	for (int k = 0; k < n; k++)
		if (client_read(l, ev[k].data.u32, MSG_DONTWAIT))
			return -1;
	return 0;
}

/*
 * Send and check messages on every connection until `limit` requests were
 * sent (limit > 0) or until the clock passes `end`, then wait for the
 * echoes still out. Requests completing in [from, end) are counted.
 */
static int load_run(struct load *l, long limit, uint64_t from, uint64_t end)
{
	uint64_t now = now_ns();

	l->limit = limit;
	l->from = from;
	l->end = end;
	l->issued = l->counted = 0;
	l->nlat = 0;
	for (int i = 0; i < l->conns && more_to_send(l, now); i++)
		if (client_send(l, i, now))
			return -1;
	while (l->outstanding) {
		int ret = l->conns == 1 ? client_read(l, 0, 0) : poll_clients(l);

		if (ret)
			return -1;
	}
	return 0;
}

static void load_close(struct load *l)
{
	for (int i = 0; l->cl && i < l->conns; i++)
		if (l->cl[i].fd >= 0)
			close(l->cl[i].fd);
	if (l->ep >= 0)
		close(l->ep);
	free(l->cl);
	free(l->lat);
	l->cl = NULL;
	l->lat = NULL;
	l->ep = -1;
}

static int client_open(struct load *l, int i, int port)
{
	struct timeval tv = { l->stall_ms / 1000, (l->stall_ms % 1000) * 1000 };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
	int one = 1, fd = connect_to(port);

	l->cl[i].fd = fd;
	if (fd < 0) {
		snprintf(l->err, sizeof(l->err), "connection %d: connect: %s", i,
			 strerror(errno));
		return -1;
	}
	/* Blocking, with a limit: a stuck server is an error, not a hang. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (l->conns > 1 && epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev)) {
		snprintf(l->err, sizeof(l->err), "epoll_ctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int load_open(struct load *l, int port, int conns, int size, int stall_ms)
{
	memset(l, 0, sizeof(*l));
	l->conns = conns;
	l->size = size;
	l->stall_ms = stall_ms;
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	l->cl = calloc(conns, sizeof(*l->cl));
	if (l->ep < 0 || !l->cl) {
		snprintf(l->err, sizeof(l->err), "out of memory or descriptors");
		return -1;
	}
	for (int i = 0; i < conns; i++)
		l->cl[i].fd = -1;
	for (int i = 0; i < conns; i++)
		if (client_open(l, i, port))
			return -1;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies, in microseconds. */
static double percentile_us(const uint32_t *v, size_t n, double q)
{
	size_t k = (size_t)(q * n + 0.999999);

	if (!n)
		return 0;
	return v[k ? k - 1 : 0] / 1000.0;
}

/* ---- throughput and latency ---- */

static const char *mode_name(const struct config *cfg)
{
	return cfg->cross ? "cross" : "same";
}

/* One timed run against a fresh server; -1 when the server failed. */
static int measure(struct server *s, const struct config *cfg, struct sample *out)
{
	struct proc p;
	struct load l;
	char why[256];
	uint64_t t0;
	int ret;

	if (server_start(s, NULL, NULL, START_MS, &p, why, sizeof(why))) {
		fail(s, true, "cannot start %s: %s", s->path, why);
		return -1;
	}
	pin(cfg->cross ? client_cpu_cross : SERVER_CPU);
	ret = load_open(&l, p.port, cfg->conns, cfg->size, STALL_MS);
	if (!ret) {
		t0 = now_ns();
		ret = load_run(&l, 0, t0 + opt.warm_ms * 1000000ull,
			       t0 + (opt.warm_ms + opt.window_ms) * 1000000ull);
	}
	if (ret) {
		fail(s, true, "c%d s%d %s: %s", cfg->conns, cfg->size,
		     mode_name(cfg), l.err);
	} else {
		qsort(l.lat, l.nlat, sizeof(*l.lat), cmp_u32);
		out->rps = l.counted / (opt.window_ms / 1000.0);
		out->p50_us = percentile_us(l.lat, l.nlat, 0.50);
		out->p99_us = percentile_us(l.lat, l.nlat, 0.99);
	}
	load_close(&l);
	pin(-1);
	if (server_stop(&p, STOP_MS, why, sizeof(why))) {
		fail(s, true, "%s", why);
		ret = -1;
	}
	return ret;
}

static void report(const struct config *cfg, struct server *s,
		   struct sample *rounds, int n, double *rps)
{
	double rps_v[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS];
	char name[128];
	int len;

	for (int r = 0; r < n; r++) {
		rps_v[r] = rounds[r].rps;
		p50[r] = rounds[r].p50_us;
		p99[r] = rounds[r].p99_us;
	}
	len = snprintf(name, sizeof(name), "echo_%s_c%d_s%d_%s_", s->name,
		       cfg->conns, cfg->size, mode_name(cfg));
	*rps = bench_median(rps_v, n);
	snprintf(name + len, sizeof(name) - len, "rps");
	bench_result(name, *rps, "req/s");
	snprintf(name + len, sizeof(name) - len, "p50_us");
	bench_result(name, bench_median(p50, n), "us");
	snprintf(name + len, sizeof(name) - len, "p99_us");
	bench_result(name, bench_median(p99, n), "us");
}

/*
 * All rounds of one configuration; rps[] gets each server's median, or
 * -1 where it has none.
 */
static void run_config(const struct config *cfg, double rps[NSERVERS])
{
	struct sample got[NSERVERS][MAX_ROUNDS];

	for (int r = 0; r < opt.rounds; r++) {
		for (int k = 0; k < NSERVERS; k++) {
			struct server *s = &servers[(r + k) % NSERVERS];

			if (s->absent || s->failed)
				continue;
			if (measure(s, cfg, &got[s - servers][r]))
				continue;
			fprintf(stderr, "echo: c%d s%d %s round %d: %s %.0f req/s\n",
				cfg->conns, cfg->size, mode_name(cfg), r + 1,
				s->name, got[s - servers][r].rps);
		}
	}
	for (int k = 0; k < NSERVERS; k++) {
		rps[k] = -1;
		if (!servers[k].absent && !servers[k].failed)
			report(cfg, &servers[k], got[k], opt.rounds, &rps[k]);
	}
}

/* ---- cost per request ---- */

/* Starts a tool's count: zeroes callgrind's counters, attaches strace. */
typedef int start_count_fn(struct server *s, struct proc *p, void *arg);

/* Warm up, start the count, then send exactly `requests` requests. */
static int fixed_requests(struct server *s, struct proc *p, long requests,
			  int stall_ms, start_count_fn *start_count, void *arg)
{
	struct load l;
	int ret;

	pin(SERVER_CPU);
	ret = load_open(&l, p->port, COST_CONNS, COST_SIZE, stall_ms);
	if (!ret)
		ret = load_run(&l, COST_WARMUP, 0, UINT64_MAX);
	if (!ret && start_count(s, p, arg)) {
		load_close(&l);
		pin(-1);
		return -1;
	}
	if (!ret)
		ret = load_run(&l, requests, 0, UINT64_MAX);
	if (ret)
		fail(s, l.wrong, "cost run: %s", l.err);
	load_close(&l);
	pin(-1);
	return ret;
}

static int callgrind_zero(struct server *s, struct proc *p, void *arg)
{
	char pid[16];
	char *argv[] = { "callgrind_control", "-z", pid, NULL };

	(void)arg;
	snprintf(pid, sizeof(pid), "%d", p->pid);
	if (run_tool(argv, VALGRIND_MS)) {
		fail(s, false, "callgrind_control -z failed");
		return -1;
	}
	return 0;
}

/* The Ir total of a callgrind dump. */
static double callgrind_total(const char *file)
{
	FILE *f = fopen(file, "r");
	char line[512];
	double total = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "totals:", 7) || !strncmp(line, "summary:", 8))
			total = strtod(strchr(line, ':') + 1, NULL);
	}
	fclose(f);
	return total;
}

/*
 * User-space instructions per request: callgrind counts from the start,
 * its counters are zeroed after the warm-up and dumped after the fixed
 * requests.
 */
static double instr_per_req(struct server *s, const char *extra)
{
	char out[128], opt_out[160], pid[16], dump[160], why[256];
	char *wrap[] = { "valgrind", "-q", "--tool=callgrind", opt_out, NULL };
	char *dump_argv[] = { "callgrind_control", "-d", pid, NULL };
	struct proc p;
	double ir = -1;

	snprintf(out, sizeof(out), "%s/callgrind.%s%s", tmpdir, s->name,
		 extra ? extra : "");
	snprintf(opt_out, sizeof(opt_out), "--callgrind-out-file=%s", out);
	if (server_start(s, wrap, extra, VALGRIND_MS, &p, why, sizeof(why))) {
		if (extra)
			printf("note: %s with %s does not start (%s): skipped\n",
			       s->name, extra, why);
		else
			fail(s, false, "under callgrind: %s", why);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%d", p.pid);
	if (!fixed_requests(s, &p, COST_REQUESTS, VALGRIND_MS, callgrind_zero,
			    NULL)) {
		if (run_tool(dump_argv, VALGRIND_MS))
			fail(s, false, "callgrind_control -d failed");
		snprintf(dump, sizeof(dump), "%s.1", out);
		ir = callgrind_total(dump);
		if (ir < 0)
			fail(s, false, "no callgrind dump in %s", dump);
	}
	/*
	 * The counts are in the dump already. Under valgrind, a signal is not
	 * taken while the server waits in io_uring_enter (valgrind blocks
	 * them there and looks only between time slices), so SIGKILL after a
	 * short grace is the normal end here, not a failure.
	 */
	server_stop(&p, 300, why, sizeof(why));
	return ir < 0 ? -1 : ir / COST_REQUESTS;
}

struct tracer {
	pid_t pid;
	char out[160];		/* its summary */
};

static bool is_traced(pid_t pid)
{
	char path[64], line[128];
	FILE *f;
	int tracer = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "TracerPid:", 10))
			tracer = atoi(line + 10);
	if (f)
		fclose(f);
	return tracer != 0;
}

/* Attach strace after the warm-up; wait until it traces. */
static int strace_attach(struct server *s, struct proc *p, void *arg)
{
	struct tracer *t = arg;
	char pid[16];
	char *argv[] = { "strace", "-q", "-f", "-c", "-e",
		"trace=io_uring_enter,epoll_wait,epoll_pwait,epoll_pwait2",
		"-o", t->out, "-p", pid, NULL };
	uint64_t deadline = now_ns() + (uint64_t)START_MS * 1000000;
	int status;

	snprintf(pid, sizeof(pid), "%d", p->pid);
	t->pid = spawn(argv, -1, false);
	while (t->pid > 0 && now_ns() < deadline) {
		if (is_traced(p->pid))
			return 0;
		if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
			t->pid = -1;
			break;
		}
		sleep_ms(2);
	}
	fail(s, false, "strace did not attach");
	return -1;
}

/* Sum the calls column of strace -c for the wait syscalls. */
static double strace_calls(const char *file)
{
	FILE *f = fopen(file, "r");
	char line[256];
	double calls = 0;
	bool seen = false;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char tok[6][64];
		int n = sscanf(line, "%63s %63s %63s %63s %63s %63s", tok[0],
			       tok[1], tok[2], tok[3], tok[4], tok[5]);

		if (n < 5 || (strcmp(tok[n - 1], "io_uring_enter") &&
			       strncmp(tok[n - 1], "epoll_", 6)))
			continue;
		calls += atof(tok[3]);
		seen = true;
	}
	fclose(f);
	return seen ? calls : 0;
}

/* io_uring_enter or epoll_wait calls per request, counted by strace. */
static double enter_per_req(struct server *s)
{
	struct tracer t = { .pid = -1 };
	struct proc p;
	char why[256];
	double calls = -1;
	int status;

	snprintf(t.out, sizeof(t.out), "%s/strace.%s", tmpdir, s->name);
	if (server_start(s, NULL, NULL, START_MS, &p, why, sizeof(why))) {
		fail(s, false, "cannot start for strace: %s", why);
		return -1;
	}
	if (!fixed_requests(s, &p, TRACE_REQUESTS, STALL_MS, strace_attach, &t)) {
		/* On SIGINT strace detaches and writes its summary. */
		kill(t.pid, SIGINT);
		waitpid(t.pid, &status, 0);
		t.pid = -1;
		calls = strace_calls(t.out);
		if (calls < 0)
			fail(s, false, "no strace summary in %s", t.out);
	}
	if (t.pid > 0) {
		kill(t.pid, SIGKILL);
		waitpid(t.pid, &status, 0);
	}
	if (server_stop(&p, STOP_MS, why, sizeof(why)))
		fail(s, false, "after strace: %s", why);
	return calls < 0 ? -1 : calls / TRACE_REQUESTS;
}

static void run_costs(void)
{
	bool valgrind = in_path("valgrind") && in_path("callgrind_control");
	bool strace = in_path("strace");
	double deadline = -1;

	if (!valgrind)
		printf("note: valgrind (callgrind) not found: instr_per_req "
		       "not measured\n");
	if (!strace)
		printf("note: strace not found: enter_per_req not measured\n");
	/* Servers started from here on inherit the policy. */
	if ((valgrind || strace) && !realtime(true))
		printf("note: no real-time scheduling (%s): costs may vary with "
		       "the machine's load\n", strerror(errno));
	for (int k = 0; k < NSERVERS; k++) {
		struct server *s = &servers[k];
		char name[64];

		s->instr = s->enter = -1;
		if (s->absent || s->failed)
			continue;
		if (valgrind)
			s->instr = instr_per_req(s, NULL);
		if (s->instr >= 0) {
			snprintf(name, sizeof(name), "echo_%s_instr_per_req", s->name);
			bench_result(name, s->instr, "instr");
		}
		if (strace && !s->failed)
			s->enter = enter_per_req(s);
		if (s->enter >= 0) {
			snprintf(name, sizeof(name), "echo_%s_enter_per_req", s->name);
			bench_result(name, s->enter, "calls");
		}
	}
	if (valgrind && !servers[COIL].absent && !servers[COIL].failed)
		deadline = instr_per_req(&servers[COIL], "--deadline");
	if (deadline >= 0)
		bench_result("echo_coil_deadline_instr_per_req", deadline, "instr");
	realtime(false);

	/* The targets coil is held to. */
	if (servers[COIL].instr >= 0 && servers[RAW].instr >= 0)
		printf("target echo_coil_instr_per_req <= 1.5 x raw: %s\n",
		       servers[COIL].instr <= 1.5 * servers[RAW].instr ?
		       "met" : "NOT met");
	else
		printf("target echo_coil_instr_per_req <= 1.5 x raw: not measured\n");
	if (servers[COIL].enter >= 0 && servers[RAW].enter >= 0)
		printf("target echo_coil_enter_per_req <= raw: %s\n",
		       servers[COIL].enter <= servers[RAW].enter + EDGE_CALLS /
		       TRACE_REQUESTS ? "met" : "NOT met");
	else
		printf("target echo_coil_enter_per_req <= raw: not measured\n");
	if (deadline >= 0 && servers[COIL].instr >= 0)
		printf("target echo_coil_deadline_instr_per_req <= 1.05 x coil: %s\n",
		       deadline <= 1.05 * servers[COIL].instr ? "met" : "NOT met");
	else
		printf("target echo_coil_deadline_instr_per_req <= 1.05 x coil: "
		       "not measured\n");
}

/* ---- the whole run ---- */

static void ratio(const char *name, double coil, double raw)
{
	if (coil > 0 && raw > 0) {
		bench_result(name, coil / raw, "ratio");
		printf("target %s >= 0.9: %s\n", name,
		       coil / raw >= 0.9 ? "met" : "NOT met");
	} else {
		printf("target %s >= 0.9: not measured\n", name);
	}
}

static int configs(struct config *cfg)
{
	static const int conns[] = { 1, 64, 512 }, sizes[] = { 64, 4096 };
	int n = 0;

	if (opt.custom) {
		cfg[0] = opt.only;
		return 1;
	}
	if (!opt.full) {
		cfg[0] = (struct config){ 1, 64, false };
		cfg[1] = (struct config){ 64, 64, true };
		return 2;
	}
	for (int c = 0; c < 3; c++)
		for (int cross = 0; cross < 2; cross++)
			for (int sz = 0; sz < 2; sz++)
				cfg[n++] = (struct config){ conns[c], sizes[sz], cross };
	return n;
}

static void run_all(void)
{
	struct config cfg[16];
	double rps[NSERVERS], same[2] = { -1, -1 }, cross[2] = { -1, -1 };
	int n = configs(cfg);
	uint64_t t0 = now_ns();

	for (int i = 0; i < n; i++) {
		run_config(&cfg[i], rps);
		if (cfg[i].size != 64)
			continue;
		if (cfg[i].conns == 1 && !cfg[i].cross) {
			same[0] = rps[COIL];
			same[1] = rps[RAW];
		} else if (cfg[i].conns == 64 && cfg[i].cross) {
			cross[0] = rps[COIL];
			cross[1] = rps[RAW];
		}
	}
	if (!opt.custom) {
		ratio("echo_coil_vs_raw_c1_s64_same", same[0], same[1]);
		ratio("echo_coil_vs_raw_c64_s64_cross", cross[0], cross[1]);
	}
	fprintf(stderr, "echo: throughput and latency took %.1f s\n",
		(now_ns() - t0) / 1e9);
	if (opt.cost) {
		t0 = now_ns();
		run_costs();
		fprintf(stderr, "echo: cost per request took %.1f s\n",
			(now_ns() - t0) / 1e9);
	}
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: echo --coil PATH --raw PATH --epoll PATH --libuv PATH\n"
		"            [--full] [--rounds N] [--window-ms N] [--no-cost]\n"
		"            [--conns C --size S --mode same|cross]\n"
		"Quick mode: c1 same and c64 cross at 64 bytes; --full: c1, c64,\n"
		"c512 x same, cross x 64, 4096 bytes. --conns/--size/--mode run\n"
		"that one configuration only.\n");
	exit(status);
}

static int int_arg(const char *s, int lo, int hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || v < lo || v > hi) {
		fprintf(stderr, "echo: '%s' is not a number in %d..%d\n", s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	const char *paths[NSERVERS] = { 0 };

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int k;

		if (!strcmp(a, "--help"))
			usage(0);
		if (!strcmp(a, "--full")) {
			opt.full = true;
			continue;
		}
		if (!strcmp(a, "--no-cost")) {
			opt.cost = false;
			continue;
		}
		if (!v || strncmp(a, "--", 2))
			usage(2);
		i++;
		for (k = 0; k < NSERVERS; k++)
			if (!strcmp(a + 2, servers[k].name))
				break;
		if (k < NSERVERS)
			paths[k] = v;
		else if (!strcmp(a, "--rounds"))
			opt.rounds = int_arg(v, 1, MAX_ROUNDS);
		else if (!strcmp(a, "--window-ms"))
			opt.window_ms = int_arg(v, 10, 600000);
		else if (!strcmp(a, "--conns"))
			opt.only.conns = int_arg(v, 1, MAX_CONNS);
		else if (!strcmp(a, "--size"))
			opt.only.size = int_arg(v, 1, MAX_SIZE);
		else if (!strcmp(a, "--mode") &&
			 (!strcmp(v, "same") || !strcmp(v, "cross")))
			opt.only.cross = !strcmp(v, "cross");
		else
			usage(2);
	}
	for (int k = 0; k < NSERVERS; k++) {
		if (!paths[k])
			usage(2);
		servers[k].path = paths[k];
	}
	opt.custom = opt.only.conns || opt.only.size;
	if (opt.custom && !(opt.only.conns && opt.only.size))
		usage(2);
	/* Quick mode must finish in a minute with four servers. */
	if (!opt.window_ms)
		opt.window_ms = opt.full ? 1000 : 500;
	opt.warm_ms = opt.window_ms / 5;
}

/* A missing file is skipped quietly; anything else must run. */
static void check_paths(void)
{
	for (int k = 0; k < NSERVERS; k++) {
		struct stat st;

		if (stat(servers[k].path, &st) && errno == ENOENT) {
			servers[k].absent = true;
			printf("note: %s server %s does not exist: skipped\n",
			       servers[k].name, servers[k].path);
		}
	}
}

/* Room for every client connection here, and in the servers, which inherit it. */
static int check_fd_limit(void)
{
	struct rlimit rl;
	rlim_t need = MAX_CONNS + 64;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= need)
		return 0;
	rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur >= need)
		return 0;
	fprintf(stderr, "echo: RLIMIT_NOFILE is %lu, %lu needed\n",
		(unsigned long)rl.rlim_cur, (unsigned long)need);
	return -1;
}

/* The tools' output files, then the directory. */
static void cleanup_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

int main(int argc, char **argv)
{
	uint64_t start = now_ns();
	int failed = 0;

	/* RESULT lines and the servers' stderr interleave in order in a log. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	check_paths();
	if (check_fd_limit() || !mkdtemp(tmpdir))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		printf("note: one CPU: \"cross\" runs the client on CPU 0 too\n");
		client_cpu_cross = 0;
	}
	fill_pattern();
	run_all();
	cleanup_tmpdir();

	for (int k = 0; k < NSERVERS; k++) {
		if (servers[k].failed) {
			fprintf(stderr, "echo: FAILED: %s (%s)\n", servers[k].name,
				servers[k].path);
			failed++;
		}
	}
	fprintf(stderr, "echo: %s run took %.1f s\n", opt.full ? "full" : "quick",
		(now_ns() - start) / 1e9);
	return failed ? 1 : 0;
}
