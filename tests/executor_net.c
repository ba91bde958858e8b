/*
 * executor/net.c, reader.c, acceptor.c and stream.c: sockets awaited by
 * tasks, over loopback TCP (IPv4 and IPv6), Unix sockets, socketpairs and
 * UDP.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "executor/loop.h"
#include "helper.h"

#define KIB 1024
#define MIB (1024 * 1024)

/* ----------------------------------------------------------- helpers */

static int int_opt(int fd, int level, int name)
{
	socklen_t len = sizeof(int);
	int v = -1;

	ck_assert_int_eq(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static void set_opt(int fd, int level, int name, int v)
{
	ck_assert_int_eq(setsockopt(fd, level, name, &v, sizeof(v)), 0);
}

static bool cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);

	ck_assert_int_ge(flags, 0);
	return flags & FD_CLOEXEC;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

static int peer_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&ss, &len), 0);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Bytes waiting to be read on fd. */
static int pending(int fd)
{
	int n = -1;

	ck_assert_int_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

static bool have_ipv6(void)
{
	int fd = coil_listen("[::1]:0", NULL);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* A listener on host at a port the kernel picks; its "host:port" in addr. */
static int listen_on(const char *host, char *addr, size_t size,
		     const coil_listen_opts *opts)
{
	char any[64];
	int fd;

	snprintf(any, sizeof(any), "%s:0", host);
	fd = coil_listen(any, opts);
	ck_assert_msg(fd >= 0, "coil_listen(%s): %s", any, strerror(-fd));
	snprintf(addr, size, "%s:%d", host, coil_sock_port(fd));
	return fd;
}

/* A connected TCP pair made with coil's own calls; from a task. */
static void tcp_pair_on(const char *host, int fds[2])
{
	char addr[64];
	int l = listen_on(host, addr, sizeof(addr), NULL);

	fds[0] = coil_dial(addr, COIL_NEVER);
	ck_assert_msg(fds[0] >= 0, "coil_dial(%s): %s", addr, strerror(-fds[0]));
	fds[1] = coil_accept(l, NULL, NULL, COIL_NEVER);
	ck_assert_int_ge(fds[1], 0);
	close(l);
}

static void tcp_pair(int fds[2])
{
	tcp_pair_on("127.0.0.1", fds);
}

static void unix_pair(int fds[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
}

static void close_pair(int fds[2])
{
	close(fds[0]);
	close(fds[1]);
}

/*
 * A plain blocking connect from the loop's thread. On loopback the kernel
 * completes the handshake inside connect(2) while the listen queue has room,
 * so nobody needs to be accepting.
 */
static int plain_connect(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	ck_assert_int_eq(coil_addr_parse(addr, &ss, &len), 0);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(connect(fd, (struct sockaddr *)&ss, len) == 0,
		      "connect(%s): %s", addr, strerror(errno));
	return fd;
}

/* The peer resets the connection: SO_LINGER {1, 0} makes close(2) send RST. */
static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd);
}

/*
 * Queue bytes on fd until the kernel takes no more: the peer's receive
 * buffer and fd's send buffer are then full, and a send parks. Small
 * buffers keep that quick.
 */
static size_t fill(int fd)
{
	static char junk[16 * KIB];
	size_t total = 0;

	memset(junk, 'F', sizeof(junk));
	for (;;) {
		ssize_t n = send(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			return total;
		}
		total += (size_t)n;
	}
}

/*
 * Small enough that a send of more than a few dozen KiB is short, large
 * enough that loopback TCP does not stall on zero-window probes.
 */
#define SMALL_SOCKBUF (16 * KIB)

static void shrink_buffers(int fds[2])
{
	set_opt(fds[0], SOL_SOCKET, SO_SNDBUF, SMALL_SOCKBUF);
	set_opt(fds[1], SOL_SOCKET, SO_RCVBUF, SMALL_SOCKBUF);
}

/*
 * Read exactly want bytes of fill()'s 'F' from fd (blocking, from the loop's
 * thread: nothing else needs to run for a loopback peer to flush), then let
 * the loop enter the kernel twice, where a send that was not really
 * cancelled would go on; then nothing more may arrive.
 */
static void drain_exactly(int fd, size_t want)
{
	char buf[16 * KIB];
	size_t got = 0;

	while (got < want) {
		size_t ask = want - got < sizeof(buf) ? want - got : sizeof(buf);
		ssize_t n = recv(fd, buf, ask, 0);

		CHECK(n > 0, "drain: %zd after %zu of %zu", n, got, want);
		for (ssize_t i = 0; i < n; i++)
			CHECK(buf[i] == 'F', "byte %zu is 0x%02x, not fill's 'F'",
			      got + (size_t)i, (unsigned char)buf[i]);
		got += (size_t)n;
	}
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_msg(recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN,
		      "bytes arrived after the %zu filled ones", want);
}

/* A byte of the test data stream number `stream` at offset off. */
static unsigned char pattern(unsigned stream, size_t off)
{
	uint32_t x = (uint32_t)(off >> 2) * 2654435761u ^ stream * 0x9e3779b9u;

	x ^= x >> 15;
	return (unsigned char)(x >> ((off & 3) * 8));
}

static unsigned char *pattern_buf(unsigned stream, size_t len)
{
	unsigned char *p = malloc(len);

	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(stream, i);
	return p;
}

/* Check len bytes at buf against the stream's pattern from offset off. */
static void check_pattern(unsigned stream, size_t off, const void *buf,
			  size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++)
		CHECK(p[i] == pattern(stream, off + i),
		      "stream %u: byte %zu is 0x%02x, expected 0x%02x", stream,
		      off + i, p[i], pattern(stream, off + i));
}

/* Run fn(arg) from a timer callback: on the loop, but outside any task. */
struct outside {
	void (*fn)(void *arg);
	void *arg;
	bool ran;
};

static void run_outside(coil_timer *timer, void *arg)
{
	struct outside *o = arg;

	(void)timer;
	ck_assert_ptr_null(coil_current());
	o->fn(o->arg);
	o->ran = true;
}

static void call_outside_a_task(void (*fn)(void *), void *arg)
{
	struct outside o = { .fn = fn, .arg = arg };
	coil_timer timer;

	coil_timer_init(&timer, run_outside, &o);
	ck_assert_int_eq(coil_timer_arm(&timer, coil_now()), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(o.ran);
}

/* A task parked in a receive on a spare socketpair while others misbehave. */
struct bystander {
	int fds[2];
	char buf[8];
	ssize_t res;
};

static int bystand(void *arg)
{
	struct bystander *b = arg;

	b->res = coil_recv(b->fds[0], b->buf, sizeof(b->buf), 0, COIL_NEVER);
	return 0;
}

static coil_task *bystander_start(struct bystander *b)
{
	coil_task *t;

	unix_pair(b->fds);
	ck_assert_int_eq(coil_spawn(&t, bystand, b, NULL), 0);
	return t;
}

/* The bystander still gets its data: the loop is healthy. */
static void bystander_finish(struct bystander *b, coil_task *t)
{
	ck_assert_int_eq(write(b->fds[1], "alive", 5), 5);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(b->res, 5);
	ck_assert_mem_eq(b->buf, "alive", 5);
	close_pair(b->fds);
}

/* A loop that can still do I/O: one round trip over a fresh pair. */
static void assert_loop_healthy(void)
{
	char buf[8];
	int fds[2];

	tcp_pair(fds);
	ck_assert_int_eq(coil_send(fds[0], "ok", 2, 0, COIL_NEVER), 2);
	ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), 0, COIL_NEVER), 2);
	ck_assert_mem_eq(buf, "ok", 2);
	close_pair(fds);
}

/* --------------------------------------------------------- addresses */

static void parse_ok(const char *text, struct sockaddr_storage *ss,
		     socklen_t *len)
{
	int ret;

	/* Garbage first: fields the parser leaves alone would show. */
	memset(ss, 0xff, sizeof(*ss));
	*len = 0;
	ret = coil_addr_parse(text, ss, len);
	ck_assert_msg(ret == 0, "coil_addr_parse(\"%s\"): %d", text, ret);
}

static void parse_v4(const char *text, const char *host, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	char got[INET_ADDRSTRLEN];
	socklen_t len;

	parse_ok(text, &ss, &len);
	ck_assert_int_eq(in->sin_family, AF_INET);
	ck_assert_uint_eq(len, sizeof(*in));
	ck_assert_int_eq(ntohs(in->sin_port), port);
	inet_ntop(AF_INET, &in->sin_addr, got, sizeof(got));
	ck_assert_str_eq(got, host);
	for (size_t i = 0; i < sizeof(in->sin_zero); i++)
		ck_assert_int_eq(in->sin_zero[i], 0);
}

static void parse_v6(const char *text, const char *host, int port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	char got[INET6_ADDRSTRLEN];
	socklen_t len;

	parse_ok(text, &ss, &len);
	ck_assert_int_eq(in6->sin6_family, AF_INET6);
	ck_assert_uint_eq(len, sizeof(*in6));
	ck_assert_int_eq(ntohs(in6->sin6_port), port);
	inet_ntop(AF_INET6, &in6->sin6_addr, got, sizeof(got));
	ck_assert_str_eq(got, host);
	/* Left as garbage, these would make bind and connect fail. */
	ck_assert_uint_eq(in6->sin6_flowinfo, 0);
	ck_assert_uint_eq(in6->sin6_scope_id, 0);
}

START_TEST(test_addr_parse_accepts_every_documented_form)
{
	struct sockaddr_storage ss;
	struct sockaddr_un *un = (struct sockaddr_un *)&ss;
	char path[128];
	socklen_t len;

	parse_v4("127.0.0.1:8080", "127.0.0.1", 8080);
	parse_v4("10.1.2.3:0", "10.1.2.3", 0);
	parse_v4("1.2.3.4:65535", "1.2.3.4", 65535);
	parse_v4("localhost:80", "127.0.0.1", 80);
	parse_v4(":9000", "0.0.0.0", 9000);
	parse_v4("0.0.0.0:007", "0.0.0.0", 7);
	parse_v6("[::1]:443", "::1", 443);
	parse_v6("[::]:1", "::", 1);
	parse_v6("[fe80::1:2]:65535", "fe80::1:2", 65535);
	parse_v6("[::ffff:127.0.0.1]:5", "::ffff:127.0.0.1", 5);

	parse_ok("unix:/tmp/coil.sock", &ss, &len);
	ck_assert_int_eq(un->sun_family, AF_UNIX);
	ck_assert_str_eq(un->sun_path, "/tmp/coil.sock");
	ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) +
			  strlen("/tmp/coil.sock") + 1);

	/* Abstract: a leading NUL and exactly the name's bytes, no terminator. */
	parse_ok("unix:@coil-name", &ss, &len);
	ck_assert_int_eq(un->sun_family, AF_UNIX);
	ck_assert_int_eq(un->sun_path[0], '\0');
	ck_assert_mem_eq(un->sun_path + 1, "coil-name", 9);
	ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 10);

	/* The longest path that fits with its terminator. */
	memset(path, 'p', sizeof(path));
	memcpy(path, "unix:/", 6);
	path[5 + sizeof(un->sun_path) - 1] = '\0';
	parse_ok(path, &ss, &len);
	ck_assert_uint_eq(strlen(un->sun_path), sizeof(un->sun_path) - 1);
	ck_assert_uint_eq(len, sizeof(struct sockaddr_un));
}
END_TEST

START_TEST(test_addr_parse_rejects_malformed_addresses_with_einval)
{
	static const char *const bad[] = {
		/* missing port */
		"127.0.0.1", "127.0.0.1:", "localhost", "[::1]", "[::1]:", "",
		/* port out of range */
		"127.0.0.1:65536", "127.0.0.1:99999999999999999999999",
		"[::1]:70000",
		/* junk after the port, or a port that is no number */
		"127.0.0.1:80x", "127.0.0.1:80 ", "127.0.0.1: 80", "127.0.0.1:-1",
		"127.0.0.1:+80", "127.0.0.1:0x50", "[::1]:80/tcp", "[::1]x:80",
		"127.0.0.1:http",
		/* bad IPv4 host */
		"256.0.0.1:80", "1.2.3:80", "1.2.3.4.5:80", "example.com:80",
		"local host:80",
		/* bad IPv6 host, or one without brackets */
		"::1:80", "[1.2.3.4]:80", "[::g]:80", "[::1:80", "[]:80",
		"[1:2:3:4:5:6:7:8:9]:80",
		/* unix without a path */
		"unix:",
	};
	struct sockaddr_storage ss;
	struct sockaddr_un un;
	char path[256];
	socklen_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = coil_addr_parse(bad[i], &ss, &len);

		ck_assert_msg(ret == -EINVAL, "coil_addr_parse(\"%s\") = %d",
			      bad[i], ret);
	}
	/* A path one byte too long for sun_path with its terminator. */
	memset(path, 'p', sizeof(path));
	memcpy(path, "unix:/", 6);
	path[5 + sizeof(un.sun_path)] = '\0';
	ck_assert_int_eq(coil_addr_parse(path, &ss, &len), -EINVAL);
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(coil_addr_parse(path, &ss, &len), -EINVAL);
	memcpy(path, "unix:@", 6);
	ck_assert_int_eq(coil_addr_parse(path, &ss, &len), -EINVAL);

	ck_assert_int_eq(coil_addr_parse(NULL, &ss, &len), -EINVAL);
	ck_assert_int_eq(coil_addr_parse("127.0.0.1:1", NULL, &len), -EINVAL);
	ck_assert_int_eq(coil_addr_parse("127.0.0.1:1", &ss, NULL), -EINVAL);
}
END_TEST

/* ---------------------------------------------------------- listeners */

START_TEST(test_a_tcp_listener_on_port_0_gets_a_port_and_so_reuseaddr)
{
	static const char *const hosts[] = { "127.0.0.1", "[::1]" };
	char addr[64];

	for (int i = 0; i < 2; i++) {
		int fd, c;

		if (i == 1 && !have_ipv6())
			break;
		fd = listen_on(hosts[i], addr, sizeof(addr), NULL);
		ck_assert_int_gt(coil_sock_port(fd), 0);
		ck_assert_int_eq(int_opt(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
		ck_assert_int_eq(int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
		ck_assert_int_eq(int_opt(fd, SOL_SOCKET, SO_REUSEADDR), 1);
		ck_assert_int_eq(int_opt(fd, SOL_SOCKET, SO_REUSEPORT), 0);
		ck_assert(cloexec(fd));
		/* The port it reports is the one it listens on. */
		c = plain_connect(addr);
		close(c);
		close(fd);
	}
}
END_TEST

START_TEST(test_a_datagram_socket_is_bound_without_listening_or_so_reuseaddr)
{
	coil_listen_opts udp = { .type = SOCK_DGRAM };
	char addr[64];
	int fd, port, again;

	fd = listen_on("127.0.0.1", addr, sizeof(addr), &udp);
	port = coil_sock_port(fd);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(int_opt(fd, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
	ck_assert_int_eq(int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
	/* With it, a second socket would share the port silently. */
	ck_assert_int_eq(int_opt(fd, SOL_SOCKET, SO_REUSEADDR), 0);
	ck_assert(cloexec(fd));
	again = coil_listen(addr, &udp);
	ck_assert_msg(again == -EADDRINUSE, "second UDP bind of %s: %d", addr, again);
	close(fd);
}
END_TEST

START_TEST(test_two_sockets_share_a_port_only_with_reuseport)
{
	coil_listen_opts shared = { .reuseport = true };
	coil_listen_opts udp_shared = { .type = SOCK_DGRAM, .reuseport = true };
	coil_listen_opts udp = { .type = SOCK_DGRAM };
	char addr[64];
	int a, b;

	/* TCP: both with reuseport share; a third without is refused. */
	a = listen_on("127.0.0.1", addr, sizeof(addr), &shared);
	ck_assert_int_eq(int_opt(a, SOL_SOCKET, SO_REUSEPORT), 1);
	b = coil_listen(addr, &shared);
	ck_assert_msg(b >= 0, "second reuseport listener: %d", b);
	ck_assert_int_eq(coil_sock_port(b), coil_sock_port(a));
	ck_assert_int_eq(coil_listen(addr, NULL), -EADDRINUSE);
	close(a);
	close(b);

	/* TCP: SO_REUSEADDR alone does not let a second listener in. */
	a = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_listen(addr, NULL), -EADDRINUSE);
	ck_assert_int_eq(coil_listen(addr, &shared), -EADDRINUSE);
	close(a);

	/* UDP likewise. */
	a = listen_on("127.0.0.1", addr, sizeof(addr), &udp_shared);
	b = coil_listen(addr, &udp_shared);
	ck_assert_msg(b >= 0, "second reuseport UDP socket: %d", b);
	ck_assert_int_eq(coil_listen(addr, &udp), -EADDRINUSE);
	close(a);
	close(b);
}
END_TEST

START_TEST(test_coil_listen_rejects_bad_opts_and_addresses_without_leaking_an_fd)
{
	coil_listen_opts seqpacket = { .type = SOCK_SEQPACKET };
	coil_listen_opts raw = { .type = SOCK_RAW };
	coil_listen_opts odd = { .type = 12345 };
	coil_listen_opts negative = { .backlog = -1 };
	char addr[64];
	int before = count_fds(), l;

	ck_assert_int_eq(coil_listen("127.0.0.1:0", &seqpacket), -EINVAL);
	ck_assert_int_eq(coil_listen("127.0.0.1:0", &raw), -EINVAL);
	ck_assert_int_eq(coil_listen("127.0.0.1:0", &odd), -EINVAL);
	ck_assert_int_eq(coil_listen("127.0.0.1:0", &negative), -EINVAL);
	ck_assert_int_eq(coil_listen(NULL, NULL), -EINVAL);
	ck_assert_int_eq(coil_listen("127.0.0.1", NULL), -EINVAL);
	ck_assert_int_eq(coil_listen("nohost:1", NULL), -EINVAL);
	ck_assert_int_eq(count_fds(), before);

	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	before = count_fds();
	ck_assert_int_eq(coil_listen(addr, NULL), -EADDRINUSE);
	/* An address this host does not have. */
	ck_assert_int_eq(coil_listen("192.0.2.1:0", NULL), -EADDRNOTAVAIL);
	ck_assert_int_eq(count_fds(), before);
	close(l);
}
END_TEST

struct unix_names {
	char path[108];
	char abstract[64];
};

static int unix_listener_round_trip(void *arg)
{
	struct unix_names *n = arg;
	const char *names[] = { n->path, n->abstract };

	for (int i = 0; i < 2; i++) {
		char buf[8];
		int l, c, s;

		l = coil_listen(names[i], NULL);
		ck_assert_msg(l >= 0, "coil_listen(%s): %d", names[i], l);
		ck_assert_int_eq(int_opt(l, SOL_SOCKET, SO_ACCEPTCONN), 1);
		ck_assert_int_lt(coil_sock_port(l), 0); /* no port to report */
		ck_assert_int_eq(coil_listen(names[i], NULL), -EADDRINUSE);
		c = coil_dial(names[i], COIL_NEVER);
		ck_assert_msg(c >= 0, "coil_dial(%s): %d", names[i], c);
		s = coil_accept(l, NULL, NULL, COIL_NEVER);
		ck_assert_int_ge(s, 0);
		ck_assert_int_eq(coil_send(c, "unix", 4, 0, COIL_NEVER), 4);
		ck_assert_int_eq(coil_recv(s, buf, sizeof(buf), 0, COIL_NEVER), 4);
		ck_assert_mem_eq(buf, "unix", 4);
		close(c);
		close(s);
		close(l);
	}
	return 0;
}

START_TEST(test_a_unix_listener_on_a_path_and_an_abstract_name_accepts_a_dial)
{
	struct unix_names n;
	char dir[] = "/tmp/coil-net-XXXXXX";
	struct stat st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(n.path, sizeof(n.path), "unix:%s/sock", dir);
	snprintf(n.abstract, sizeof(n.abstract), "unix:@coil-net-%d", (int)getpid());
	run(unix_listener_round_trip, &n);
	ck_assert_int_eq(stat(n.path + 5, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	unlink(n.path + 5);
	rmdir(dir);
}
END_TEST

/* ------------------------------------------------------ dial / accept */

static int dial_and_accept(void *arg)
{
	const char *host = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[64], text[INET6_ADDRSTRLEN];
	int l, c, s, anon;

	l = listen_on(host, addr, sizeof(addr), NULL);
	c = coil_dial(addr, COIL_NEVER);
	ck_assert_msg(c >= 0, "coil_dial(%s): %d", addr, c);
	ck_assert_int_eq(int_opt(c, IPPROTO_TCP, TCP_NODELAY), 1);
	ck_assert(cloexec(c));

	memset(&ss, 0, sizeof(ss));
	s = coil_accept(l, (struct sockaddr *)&ss, &len, COIL_NEVER);
	ck_assert_int_ge(s, 0);
	ck_assert(cloexec(s));
	if (host[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		ck_assert_int_eq(in6->sin6_family, AF_INET6);
		ck_assert_uint_eq(len, sizeof(*in6));
		inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
		ck_assert_str_eq(text, "::1");
		ck_assert_int_eq(ntohs(in6->sin6_port), coil_sock_port(c));
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		ck_assert_int_eq(in->sin_family, AF_INET);
		ck_assert_uint_eq(len, sizeof(*in));
		inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
		ck_assert_str_eq(text, "127.0.0.1");
		ck_assert_int_eq(ntohs(in->sin_port), coil_sock_port(c));
	}
	ck_assert_int_eq(peer_port(s), coil_sock_port(c));

	/* Without room for the address, accept works just the same. */
	anon = coil_dial(addr, COIL_NEVER);
	ck_assert_int_ge(anon, 0);
	s = coil_accept(l, NULL, NULL, COIL_NEVER);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(peer_port(s), coil_sock_port(anon));
	close(anon);
	close(s);
	close(c);
	close(l);
	return 0;
}

START_TEST(test_dial_sets_tcp_nodelay_and_accept_fills_the_peer_address_ipv4)
{
	run(dial_and_accept, "127.0.0.1");
}
END_TEST

START_TEST(test_dial_sets_tcp_nodelay_and_accept_fills_the_peer_address_ipv6)
{
	SKIP_UNLESS(have_ipv6(), "no IPv6 loopback");
	run(dial_and_accept, "[::1]");
}
END_TEST

/* A port nobody listens on: one the kernel gave out and that is closed now. */
static int closed_port(const char *host, char *addr, size_t size)
{
	int fd = listen_on(host, addr, size, NULL);
	int port = coil_sock_port(fd);

	close(fd);
	return port;
}

static int dial_refused(void *arg)
{
	char addr[64], path[64];
	int before;

	(void)arg;
	closed_port("127.0.0.1", addr, sizeof(addr));
	before = count_fds();
	ck_assert_int_eq(coil_dial(addr, COIL_NEVER), -ECONNREFUSED);
	ck_assert_int_eq(count_fds(), before);
	if (have_ipv6()) {
		closed_port("[::1]", addr, sizeof(addr));
		before = count_fds();
		ck_assert_int_eq(coil_dial(addr, COIL_NEVER), -ECONNREFUSED);
		ck_assert_int_eq(count_fds(), before);
	}
	snprintf(path, sizeof(path), "unix:/tmp/coil-net-none-%d", (int)getpid());
	ck_assert_int_eq(coil_dial(path, COIL_NEVER), -ENOENT);
	ck_assert_int_eq(coil_dial("unix:@coil-net-nobody-here", COIL_NEVER),
			 -ECONNREFUSED);
	ck_assert_int_eq(coil_dial("127.0.0.1", COIL_NEVER), -EINVAL);
	ck_assert_int_eq(count_fds(), before);
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

START_TEST(test_a_dial_to_a_closed_port_is_refused_and_leaves_no_fd_open)
{
	run(dial_refused, NULL);
}
END_TEST

static int connect_own_socket(void *arg)
{
	struct sockaddr_storage ss;
	char addr[64], buf[8];
	socklen_t len;
	int l, c, s;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_addr_parse(addr, &ss, &len), 0);
	c = coil_socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c, 0);
	ck_assert(cloexec(c));
	ck_assert_int_eq(coil_connect(c, (struct sockaddr *)&ss, len, COIL_NEVER), 0);
	s = coil_accept(l, NULL, NULL, COIL_NEVER);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(coil_send(s, "hi", 2, 0, COIL_NEVER), 2);
	ck_assert_int_eq(coil_recv(c, buf, sizeof(buf), 0, COIL_NEVER), 2);
	/* Connected already: the kernel's answer comes back unchanged. */
	ck_assert_int_eq(coil_connect(c, (struct sockaddr *)&ss, len, COIL_NEVER),
			 -EISCONN);
	ck_assert_int_eq(coil_socket(AF_INET, 999, 0), -EINVAL);
	close(c);
	close(s);
	close(l);
	return 0;
}

START_TEST(test_coil_connect_connects_a_socket_made_by_coil_socket)
{
	run(connect_own_socket, NULL);
}
END_TEST

/* ------------------------------------------------------ send / recv */

static int send_recv_both_ways(void *arg)
{
	char buf[16];
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(coil_send(fds[0], "ping", 4, 0, COIL_NEVER), 4);
	/* Flags reach the kernel: a peek leaves the bytes for the next recv. */
	ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), MSG_PEEK, COIL_NEVER), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), 0, COIL_NEVER), 4);
	ck_assert_mem_eq(buf, "ping", 4);
	ck_assert_int_eq(coil_send(fds[1], "pong!", 5, 0, COIL_NEVER), 5);
	ck_assert_int_eq(coil_recv(fds[0], buf, 3, 0, COIL_NEVER), 3);
	ck_assert_mem_eq(buf, "pon", 3);
	ck_assert_int_eq(coil_recv(fds[0], buf, sizeof(buf), 0, COIL_NEVER), 2);
	ck_assert_mem_eq(buf, "g!", 2);
	/* Nothing there and MSG_DONTWAIT: the kernel's -EAGAIN, unparked. */
	ck_assert_int_eq(coil_recv(fds[0], buf, sizeof(buf), MSG_DONTWAIT, COIL_NEVER),
			 -EAGAIN);
	ck_assert_uint_eq(inflight(), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_send_and_recv_move_bytes_both_ways_with_their_flags)
{
	run(send_recv_both_ways, NULL);
}
END_TEST

static int pass_an_fd(void *arg)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} out, in;
	char data[8] = "fd!", got[8];
	struct iovec iov = { data, 3 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = out.buf, .msg_controllen = sizeof(out.buf),
	};
	struct cmsghdr *c;
	int fds[2], p[2], passed;

	(void)arg;
	unix_pair(fds);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &p[1], sizeof(int));
	ck_assert_int_eq(coil_sendmsg(fds[0], &msg, 0, COIL_NEVER), 3);

	memset(&in, 0, sizeof(in));
	iov = (struct iovec){ got, sizeof(got) };
	msg = (struct msghdr){
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = in.buf, .msg_controllen = sizeof(in.buf),
	};
	/* MSG_CMSG_CLOEXEC reaches the kernel: the new fd is close-on-exec. */
	ck_assert_int_eq(coil_recvmsg(fds[1], &msg, MSG_CMSG_CLOEXEC, COIL_NEVER), 3);
	ck_assert_mem_eq(got, "fd!", 3);
	ck_assert_int_eq(msg.msg_flags & MSG_CTRUNC, 0);
	c = CMSG_FIRSTHDR(&msg);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->cmsg_level, SOL_SOCKET);
	ck_assert_int_eq(c->cmsg_type, SCM_RIGHTS);
	memcpy(&passed, CMSG_DATA(c), sizeof(int));
	ck_assert_int_ge(passed, 0);
	ck_assert_int_ne(passed, p[1]);
	ck_assert(cloexec(passed));
	/* The passed fd is the pipe's write end: what goes in comes out of p[0]. */
	ck_assert_int_eq(write(passed, "via", 3), 3);
	ck_assert_int_eq(read(p[0], got, sizeof(got)), 3);
	ck_assert_mem_eq(got, "via", 3);
	close(passed);
	close(p[0]);
	close(p[1]);
	close_pair(fds);
	return 0;
}

START_TEST(test_sendmsg_and_recvmsg_pass_an_fd_over_a_unix_socketpair)
{
	run(pass_an_fd, NULL);
}
END_TEST

static int datagrams_with_addresses(void *arg)
{
	const char *host = arg;
	coil_listen_opts udp = { .type = SOCK_DGRAM };
	struct sockaddr_storage to, from;
	socklen_t tolen, fromlen;
	char addr_a[64], addr_b[64], buf[16];
	bool v6 = host[0] == '[';
	int a, b;

	a = listen_on(host, addr_a, sizeof(addr_a), &udp);
	b = listen_on(host, addr_b, sizeof(addr_b), &udp);
	ck_assert_int_eq(coil_addr_parse(addr_b, &to, &tolen), 0);
	ck_assert_int_eq(coil_sendto(a, "one", 3, 0, (struct sockaddr *)&to, tolen,
				     COIL_NEVER), 3);
	ck_assert_int_eq(coil_sendto(a, "second", 6, 0, (struct sockaddr *)&to, tolen,
				     COIL_NEVER), 6);

	memset(&from, 0, sizeof(from));
	fromlen = sizeof(from);
	ck_assert_int_eq(coil_recvfrom(b, buf, sizeof(buf), 0, (struct sockaddr *)&from,
				       &fromlen, COIL_NEVER), 3);
	ck_assert_mem_eq(buf, "one", 3);
	if (v6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&from;

		ck_assert_uint_eq(fromlen, sizeof(*in6));
		ck_assert_int_eq(in6->sin6_family, AF_INET6);
		ck_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
		ck_assert_int_eq(ntohs(in6->sin6_port), coil_sock_port(a));
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&from;

		ck_assert_uint_eq(fromlen, sizeof(*in));
		ck_assert_int_eq(in->sin_family, AF_INET);
		ck_assert_uint_eq(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
		ck_assert_int_eq(ntohs(in->sin_port), coil_sock_port(a));
	}
	/* Datagram boundaries hold; the address may be left out. */
	ck_assert_int_eq(coil_recvfrom(b, buf, sizeof(buf), 0, NULL, NULL, COIL_NEVER), 6);
	ck_assert_mem_eq(buf, "second", 6);

	/* A reply to the address received reaches the sender. */
	ck_assert_int_eq(coil_sendto(b, "reply", 5, 0, (struct sockaddr *)&from,
				     fromlen, COIL_NEVER), 5);
	fromlen = sizeof(from);
	ck_assert_int_eq(coil_recvfrom(a, buf, sizeof(buf), 0, (struct sockaddr *)&from,
				       &fromlen, COIL_NEVER), 5);
	ck_assert_mem_eq(buf, "reply", 5);
	ck_assert_int_eq(ntohs(v6 ? ((struct sockaddr_in6 *)&from)->sin6_port
				  : ((struct sockaddr_in *)&from)->sin_port),
			 coil_sock_port(b));
	close(a);
	close(b);
	return 0;
}

START_TEST(test_sendto_and_recvfrom_carry_udp_datagrams_and_addresses_ipv4)
{
	run(datagrams_with_addresses, "127.0.0.1");
}
END_TEST

START_TEST(test_sendto_and_recvfrom_carry_udp_datagrams_and_addresses_ipv6)
{
	SKIP_UNLESS(have_ipv6(), "no IPv6 loopback");
	run(datagrams_with_addresses, "[::1]");
}
END_TEST

/* ------------------------------------------------- bulk transfers */

struct transfer {
	int fd;
	unsigned stream;
	size_t len;
	size_t piece;      /* > 0: move it in pieces of at most this */
	bool zero_copy;
	bool shut;         /* shutdown(SHUT_WR) once all went */
	int res;
	size_t count;
	unsigned calls;
};

/* Sends with coil_send_zc and, once a call returns, scribbles over what it sent. */
static int send_zc_scribbling(void *arg)
{
	struct transfer *x = arg;
	unsigned char *buf = pattern_buf(x->stream, x->len);

	while (x->count < x->len) {
		ssize_t n = coil_send_zc(x->fd, buf + x->count, x->len - x->count,
					 MSG_NOSIGNAL, COIL_NEVER);

		if (n <= 0) {
			x->res = (int)n;
			break;
		}
		/* The kernel let go of these bytes: changing them changes nothing. */
		memset(buf + x->count, 0, (size_t)n);
		x->count += (size_t)n;
		x->calls++;
	}
	free(buf);
	return 0;
}

static int send_data(void *arg)
{
	struct transfer *x = arg;
	unsigned char *buf;

	if (x->zero_copy)
		return send_zc_scribbling(arg);
	buf = pattern_buf(x->stream, x->len);
	if (!x->piece) {
		x->res = coil_send_all(x->fd, buf, x->len, &x->count, COIL_NEVER);
	} else {
		while (x->count < x->len) {
			size_t ask = x->len - x->count < x->piece ? x->len - x->count
								  : x->piece;
			ssize_t n = coil_send(x->fd, buf + x->count, ask, MSG_NOSIGNAL,
					      COIL_NEVER);

			if (n <= 0) {
				x->res = (int)n;
				break;
			}
			x->count += (size_t)n;
			x->calls++;
		}
	}
	if (x->shut)
		ck_assert_int_eq(coil_shutdown(x->fd, SHUT_WR, COIL_NEVER), 0);
	free(buf);
	return 0;
}

/* Receive x->len bytes and check them against the pattern. */
static int recv_data(void *arg)
{
	struct transfer *x = arg;
	unsigned char *buf = malloc(x->len ? x->len : 1);

	ck_assert_ptr_nonnull(buf);
	if (!x->piece) {
		x->res = coil_recv_exact(x->fd, buf, x->len, &x->count, COIL_NEVER);
	} else {
		while (x->count < x->len) {
			size_t ask = x->len - x->count < x->piece ? x->len - x->count
								  : x->piece;
			ssize_t n = coil_recv(x->fd, buf + x->count, ask, 0, COIL_NEVER);

			if (n <= 0) {
				x->res = n ? (int)n : -EPIPE;
				break;
			}
			x->count += (size_t)n;
			x->calls++;
		}
	}
	check_pattern(x->stream, 0, buf, x->count);
	free(buf);
	return 0;
}

static void transfer(struct transfer *tx, struct transfer *rx)
{
	coil_task *s, *r;

	ck_assert_int_eq(coil_spawn(&r, recv_data, rx, NULL), 0);
	ck_assert_int_eq(coil_spawn(&s, send_data, tx, NULL), 0);
	ck_assert_int_eq(join(s), 0);
	ck_assert_int_eq(join(r), 0);
}

static int send_zc_mebibyte(void *arg)
{
	struct transfer tx = { .stream = 1, .len = MIB, .zero_copy = true };
	struct transfer rx = { .stream = 1, .len = MIB };
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	tx.fd = fds[0];
	rx.fd = fds[1];
	transfer(&tx, &rx);
	ck_assert_int_eq(tx.res, 0);
	ck_assert_uint_eq(tx.count, MIB);
	ck_assert_int_eq(rx.res, 0);
	ck_assert_uint_eq(rx.count, MIB);
	ck_assert_uint_eq(inflight(), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_send_zc_moves_a_mebibyte_intact_over_tcp)
{
	coil_ring r;
	bool zc;

	ring_up(&r, NULL);
	zc = coil_ring_has_op(&r, IORING_OP_SEND_ZC);
	coil_ring_exit(&r);
	SKIP_UNLESS(zc, "no IORING_OP_SEND_ZC");
	run(send_zc_mebibyte, NULL);
}
END_TEST

/*
 * Small socket buffers make every send and receive short: send_all must go
 * on from where each send stopped, recv_exact from where each receive did.
 */
static int short_transfers(void *arg)
{
	struct transfer tx = { .stream = 2, .len = MIB };
	struct transfer rx = { .stream = 2, .len = MIB, .piece = 1000 };
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	shrink_buffers(fds);
	tx.fd = fds[0];
	rx.fd = fds[1];
	transfer(&tx, &rx);
	ck_assert_int_eq(tx.res, 0);
	ck_assert_uint_eq(tx.count, MIB);
	ck_assert_int_eq(rx.res, 0);
	ck_assert_uint_eq(rx.count, MIB);

	/* The other way: small sends, one recv_exact for all of it. */
	tx = (struct transfer){ .fd = fds[1], .stream = 3, .len = MIB, .piece = 999 };
	rx = (struct transfer){ .fd = fds[0], .stream = 3, .len = MIB };
	set_opt(fds[1], SOL_SOCKET, SO_SNDBUF, SMALL_SOCKBUF);
	set_opt(fds[0], SOL_SOCKET, SO_RCVBUF, SMALL_SOCKBUF);
	transfer(&tx, &rx);
	ck_assert_int_eq(tx.res, 0);
	ck_assert_int_eq(rx.res, 0);
	ck_assert_uint_eq(rx.count, MIB);
	close_pair(fds);
	return 0;
}

START_TEST(test_send_all_and_recv_exact_complete_over_short_transfers)
{
	run(short_transfers, NULL);
}
END_TEST

static int send_all_deadline(void *arg)
{
	unsigned char *buf = pattern_buf(4, 4 * MIB), *got = malloc(4 * MIB);
	int64_t deadline;
	size_t sent = 12345, have = 0;
	int fds[2];

	(void)arg;
	ck_assert_ptr_nonnull(got);
	tcp_pair(fds);
	shrink_buffers(fds);
	deadline = coil_now() + COIL_MSEC(30);
	ck_assert_int_eq(coil_send_all(fds[0], buf, 4 * MIB, &sent, deadline),
			 -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_uint_gt(sent, 0);
	ck_assert_uint_lt(sent, 4 * MIB);
	ck_assert_uint_eq(inflight(), 0);
	/* What the peer gets is exactly what *sent says went. */
	while (have < sent) {
		ssize_t n = recv(fds[1], got + have, 4 * MIB - have, 0);

		ck_assert_int_gt(n, 0);
		have += (size_t)n;
	}
	ck_assert_uint_eq(have, sent);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(recv(fds[1], got, 1, MSG_DONTWAIT), -1);
	ck_assert_int_eq(errno, EAGAIN);
	check_pattern(4, 0, got, have);
	free(buf);
	free(got);
	close_pair(fds);
	return 0;
}

START_TEST(test_send_all_reports_what_went_when_its_deadline_passes)
{
	run(send_all_deadline, NULL);
}
END_TEST

static int recv_exact_deadline(void *arg)
{
	unsigned char *data = pattern_buf(5, 1000), buf[1000];
	int64_t deadline;
	size_t got = 12345;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(send(fds[1], data, 100, 0), 100);
	deadline = coil_now() + COIL_MSEC(30);
	ck_assert_int_eq(coil_recv_exact(fds[0], buf, sizeof(buf), &got, deadline),
			 -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	/* The partial receive's bytes were kept and counted. */
	ck_assert_uint_eq(got, 100);
	check_pattern(5, 0, buf, 100);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_int_eq(send(fds[1], data + 100, 900, 0), 900);
	ck_assert_int_eq(coil_recv_exact(fds[0], buf + 100, 900, &got, COIL_NEVER), 0);
	ck_assert_uint_eq(got, 900);
	check_pattern(5, 0, buf, 1000);
	free(data);
	close_pair(fds);
	return 0;
}

START_TEST(test_recv_exact_reports_what_came_when_its_deadline_passes)
{
	run(recv_exact_deadline, NULL);
}
END_TEST

static int recv_exact_early_close(void *arg)
{
	unsigned char *data = pattern_buf(6, 100), buf[1000];
	size_t got = 12345;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(send(fds[1], data, 100, 0), 100);
	close(fds[1]);
	ck_assert_int_eq(coil_recv_exact(fds[0], buf, sizeof(buf), &got, COIL_NEVER),
			 -EPIPE);
	ck_assert_uint_eq(got, 100);
	check_pattern(6, 0, buf, 100);
	/* Nothing asked, nothing to fail. */
	ck_assert_int_eq(coil_recv_exact(fds[0], buf, 0, &got, COIL_NEVER), 0);
	ck_assert_uint_eq(got, 0);
	free(data);
	close(fds[0]);
	return 0;
}

START_TEST(test_recv_exact_returns_epipe_with_the_count_when_the_peer_closes_early)
{
	run(recv_exact_early_close, NULL);
}
END_TEST

static int send_all_closed_peer(void *arg)
{
	unsigned char *buf = pattern_buf(7, MIB);
	size_t sent = 12345;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	close(fds[1]);
	ck_assert_int_eq(coil_send_all(fds[0], buf, MIB, &sent, COIL_NEVER), -EPIPE);
	ck_assert_uint_lt(sent, MIB);
	assert_loop_healthy();
	free(buf);
	close(fds[0]);
	return 0;
}

START_TEST(test_send_all_to_a_closed_peer_returns_epipe_not_sigpipe)
{
	/* Make SIGPIPE kill the test if anything raises it. */
	signal(SIGPIPE, SIG_DFL);
	run(send_all_closed_peer, NULL);
}
END_TEST

/* ---------------------------------------------- shutdown and close */

static int shutdown_write_side(void *arg)
{
	char buf[8];
	int fds[2], p[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(coil_send(fds[0], "last", 4, 0, COIL_NEVER), 4);
	ck_assert_int_eq(coil_shutdown(fds[0], SHUT_WR, COIL_NEVER), 0);
	ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), 0, COIL_NEVER), 4);
	ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), 0, COIL_NEVER), 0);
	/* Only that direction ended. */
	ck_assert_int_eq(coil_send(fds[1], "back", 4, 0, COIL_NEVER), 4);
	ck_assert_int_eq(coil_recv(fds[0], buf, sizeof(buf), 0, COIL_NEVER), 4);
	ck_assert_mem_eq(buf, "back", 4);
	ck_assert_int_eq(coil_send(fds[0], "x", 1, MSG_NOSIGNAL, COIL_NEVER), -EPIPE);
	close_pair(fds);

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(coil_shutdown(p[0], SHUT_RDWR, COIL_NEVER), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	ck_assert_int_eq(coil_shutdown(p[0], SHUT_RDWR, COIL_NEVER), -EBADF);
	return 0;
}

START_TEST(test_shutdown_gives_the_peer_eof_and_leaves_the_other_direction_open)
{
	run(shutdown_write_side, NULL);
}
END_TEST

START_TEST(test_coil_close_outside_a_task_is_a_plain_close)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(coil_close(fd), 0);
	ck_assert(!fd_open(fd));
	ck_assert_int_eq(coil_close(fd), -EBADF);
}
END_TEST

struct closer {
	int fd;
	ssize_t recv;
	int close;
	bool open_after;
	int yield;
	uint64_t inflight;
};

static int recv_then_close(void *arg)
{
	struct closer *c = arg;
	char buf[8];

	c->recv = coil_recv(c->fd, buf, sizeof(buf), 0, COIL_NEVER);
	c->close = coil_close(c->fd);
	c->open_after = fd_open(c->fd);
	c->inflight = inflight();
	c->yield = coil_yield();
	return 0;
}

static int close_in_cancelled_task(void *arg)
{
	struct closer c = { 0 };
	coil_task *t;
	char buf[8];
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	c.fd = fds[0];
	ck_assert_int_eq(coil_spawn(&t, recv_then_close, &c, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(c.recv, -ECANCELED);
	ck_assert_int_eq(c.close, 0);
	ck_assert(!c.open_after);
	ck_assert_uint_eq(c.inflight, 0);
	/* The close did not lift the cancel. */
	ck_assert_int_eq(c.yield, -ECANCELED);
	/* The socket itself is gone: its peer sees the end of the stream. */
	ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), 0, COIL_NEVER), 0);
	ck_assert_int_eq(coil_close(fds[0]), -EBADF);
	ck_assert_int_eq(coil_close(fds[1]), 0);
	ck_assert(!fd_open(fds[1]));
	return 0;
}

START_TEST(test_coil_close_in_a_cancelled_task_really_closes_the_fd)
{
	run(close_in_cancelled_task, NULL);
}
END_TEST

/* ---------------------------------------------------- buffered reader */

static int reader_lines(void *arg)
{
	char buf[64], *line;
	coil_reader r;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	coil_reader_init(&r, fds[0], buf, sizeof(buf));
	ck_assert_uint_eq(coil_reader_buffered(&r), 0);
	ck_assert_int_eq(write(fds[1], "one\ntwo\nthree\n", 14), 14);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 4);
	ck_assert_mem_eq(line, "one\n", 4);
	/* One read brought all three; the rest waits in the buffer. */
	ck_assert_uint_eq(coil_reader_buffered(&r), 10);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 4);
	ck_assert_mem_eq(line, "two\n", 4);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 6);
	ck_assert_mem_eq(line, "three\n", 6);
	ck_assert_uint_eq(coil_reader_buffered(&r), 0);
	/* An empty line is a line. */
	ck_assert_int_eq(write(fds[1], "\n", 1), 1);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 1);
	ck_assert_int_eq(line[0], '\n');
	close(fds[1]);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 0);
	close(fds[0]);
	return 0;
}

START_TEST(test_a_reader_returns_lines_one_at_a_time)
{
	run(reader_lines, NULL);
}
END_TEST

static int reader_delimiters(void *arg)
{
	char buf[32], *out;
	coil_reader r;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	coil_reader_init(&r, fds[0], buf, sizeof(buf));
	ck_assert_int_eq(write(fds[1], "a;bb\n;ccc;", 10), 10);
	ck_assert_int_eq(coil_read_until(&r, ';', &out, COIL_NEVER), 2);
	ck_assert_mem_eq(out, "a;", 2);
	/* A newline is just a byte when it is not the delimiter. */
	ck_assert_int_eq(coil_read_until(&r, ';', &out, COIL_NEVER), 4);
	ck_assert_mem_eq(out, "bb\n;", 4);
	ck_assert_int_eq(coil_read_until(&r, ';', &out, COIL_NEVER), 4);
	ck_assert_mem_eq(out, "ccc;", 4);
	/* NUL-terminated records, and a delimiter above 127. */
	ck_assert_int_eq(write(fds[1], "x\0yy\0z\xff", 8), 8);
	ck_assert_int_eq(coil_read_until(&r, '\0', &out, COIL_NEVER), 2);
	ck_assert_mem_eq(out, "x\0", 2);
	ck_assert_int_eq(coil_read_until(&r, 0, &out, COIL_NEVER), 3);
	ck_assert_mem_eq(out, "yy\0", 3);
	ck_assert_int_eq(coil_read_until(&r, 0xff, &out, COIL_NEVER), 2);
	ck_assert_mem_eq(out, "z\xff", 2);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_reader_splits_on_a_custom_delimiter)
{
	run(reader_delimiters, NULL);
}
END_TEST

struct line_reader {
	coil_reader r;
	char buf[64];
	ssize_t res;
	char line[64];
};

static int read_one_line(void *arg)
{
	struct line_reader *lr = arg;
	char *out;

	lr->res = coil_read_line(&lr->r, &out, COIL_NEVER);
	if (lr->res > 0)
		memcpy(lr->line, out, (size_t)lr->res);
	return 0;
}

/* Each byte is written only once the reader has taken the one before. */
static int reader_small_writes(void *arg)
{
	static const char text[] = "a line that arrives a byte at a time\n";
	struct line_reader lr = { 0 };
	coil_task *t;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	coil_reader_init(&lr.r, fds[0], lr.buf, sizeof(lr.buf));
	ck_assert_int_eq(coil_spawn(&t, read_one_line, &lr, NULL), 0);
	let_tasks_park();
	for (size_t i = 0; i < sizeof(text) - 1; i++) {
		ck_assert(parked(t));
		ck_assert_int_eq(write(fds[1], text + i, 1), 1);
		if (i == sizeof(text) - 2)
			break;
		/* Until the reader has taken the byte and waits for the next. */
		while (pending(fds[0]) || !parked(t) || unsubmitted())
			ck_assert_int_eq(coil_yield(), 0);
		ck_assert_uint_eq(coil_reader_buffered(&lr.r), i + 1);
	}
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(lr.res, sizeof(text) - 1);
	ck_assert_mem_eq(lr.line, text, sizeof(text) - 1);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_reader_assembles_a_line_split_over_many_small_writes)
{
	run(reader_small_writes, NULL);
}
END_TEST

/*
 * A 16-byte buffer: the first read takes a line and part of the next; that
 * part must move to the front for the rest of its line to fit.
 */
static int reader_compaction(void *arg)
{
	char buf[16], *line;
	coil_reader r;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	coil_reader_init(&r, fds[0], buf, sizeof(buf));
	ck_assert_int_eq(write(fds[1], "0123456789\nabcdefghijklm\nxyz\n", 29), 29);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 11);
	ck_assert_mem_eq(line, "0123456789\n", 11);
	ck_assert_uint_eq(coil_reader_buffered(&r), 5);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 14);
	ck_assert_mem_eq(line, "abcdefghijklm\n", 14);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 4);
	ck_assert_mem_eq(line, "xyz\n", 4);
	/* A line of exactly the buffer's size fits. */
	ck_assert_int_eq(write(fds[1], "fifteen bytes!\n", 15), 15);
	ck_assert_int_eq(write(fds[1], "ABCDEFGHIJKLMNO\n", 16), 16);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 15);
	ck_assert_mem_eq(line, "fifteen bytes!\n", 15);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 16);
	ck_assert_mem_eq(line, "ABCDEFGHIJKLMNO\n", 16);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_reader_moves_a_partial_line_to_the_front_to_finish_it)
{
	run(reader_compaction, NULL);
}
END_TEST

static int reader_eof(void *arg)
{
	char buf[32], *line;
	coil_reader r;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	coil_reader_init(&r, fds[0], buf, sizeof(buf));
	ck_assert_int_eq(write(fds[1], "full\ntail", 9), 9);
	ck_assert_int_eq(shutdown(fds[1], SHUT_WR), 0);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 5);
	ck_assert_mem_eq(line, "full\n", 5);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 4);
	ck_assert_mem_eq(line, "tail", 4);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 0);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 0);
	ck_assert_int_eq(coil_reader_read(&r, buf, sizeof(buf), COIL_NEVER), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_reader_returns_a_last_line_without_delimiter_at_eof_then_0)
{
	run(reader_eof, NULL);
}
END_TEST

static int reader_overflow(void *arg)
{
	char buf[8], *line, out[16];
	coil_reader r;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	coil_reader_init(&r, fds[0], buf, sizeof(buf));
	ck_assert_int_eq(write(fds[1], "0123456789AB", 12), 12);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), -EMSGSIZE);
	ck_assert_uint_eq(coil_reader_buffered(&r), sizeof(buf));
	/* Again: nothing was lost or consumed by the first failure. */
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), -EMSGSIZE);
	ck_assert_uint_eq(coil_reader_buffered(&r), sizeof(buf));
	/* The caller can take the bytes some other way and go on. */
	ck_assert_int_eq(coil_reader_read(&r, out, sizeof(out), COIL_NEVER), 8);
	ck_assert_mem_eq(out, "01234567", 8);
	ck_assert_int_eq(write(fds[1], "\n", 1), 1);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 5);
	ck_assert_mem_eq(line, "89AB\n", 5);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_reader_fails_with_emsgsize_when_a_line_outgrows_its_buffer)
{
	run(reader_overflow, NULL);
}
END_TEST

static int reader_mixed_reads(void *arg)
{
	char buf[16], *line, out[64];
	coil_reader r;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	coil_reader_init(&r, fds[0], buf, sizeof(buf));
	ck_assert_int_eq(write(fds[1], "hi\nABCDEFGH", 11), 11);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 3);
	ck_assert_uint_eq(coil_reader_buffered(&r), 8);
	ck_assert_int_eq(coil_reader_read(&r, out, 3, COIL_NEVER), 3);
	ck_assert_mem_eq(out, "ABC", 3);
	ck_assert_uint_eq(coil_reader_buffered(&r), 5);
	/* What is buffered comes first, before anything newer on the fd. */
	ck_assert_int_eq(write(fds[1], "later", 5), 5);
	ck_assert_int_eq(coil_reader_read(&r, out, sizeof(out), COIL_NEVER), 5);
	ck_assert_mem_eq(out, "DEFGH", 5);
	ck_assert_uint_eq(coil_reader_buffered(&r), 0);
	/* Nothing buffered: a read larger than the buffer. */
	ck_assert_int_eq(coil_reader_read(&r, out, sizeof(out), COIL_NEVER), 5);
	ck_assert_mem_eq(out, "later", 5);
	ck_assert_int_eq(write(fds[1], "0123456789abcdefghijklmnopqrstuvwxyz", 36), 36);
	ck_assert_int_eq(coil_reader_read(&r, out, sizeof(out), COIL_NEVER), 36);
	ck_assert_mem_eq(out, "0123456789abcdefghijklmnopqrstuvwxyz", 36);
	ck_assert_uint_eq(coil_reader_buffered(&r), 0);
	/* A small read through the buffer keeps the rest for lines. */
	ck_assert_int_eq(write(fds[1], "small\nnext\n", 11), 11);
	ck_assert_int_eq(coil_reader_read(&r, out, 2, COIL_NEVER), 2);
	ck_assert_mem_eq(out, "sm", 2);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 4);
	ck_assert_mem_eq(line, "all\n", 4);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 5);
	ck_assert_mem_eq(line, "next\n", 5);
	close(fds[1]);
	ck_assert_int_eq(coil_reader_read(&r, out, 2, COIL_NEVER), 0);
	close(fds[0]);
	return 0;
}

START_TEST(test_a_reader_read_mixes_buffered_and_direct_reads_in_stream_order)
{
	run(reader_mixed_reads, NULL);
}
END_TEST

static int reader_deadline(void *arg)
{
	char buf[32], *line;
	int64_t deadline;
	coil_reader r, none;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	coil_reader_init(&r, fds[0], buf, sizeof(buf));
	ck_assert_int_eq(write(fds[1], "par", 3), 3);
	deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_read_line(&r, &line, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	/* The start of the line stays for the call that finishes it. */
	ck_assert_uint_eq(coil_reader_buffered(&r), 3);
	ck_assert_int_eq(write(fds[1], "tial\n", 5), 5);
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), 8);
	ck_assert_mem_eq(line, "partial\n", 8);
	close_pair(fds);

	/* The read's own error comes back. */
	coil_reader_init(&r, fds[0], buf, sizeof(buf));
	ck_assert_int_eq(coil_read_line(&r, &line, COIL_NEVER), -EBADF);
	coil_reader_init(&none, 0, NULL, 0);
	ck_assert_int_eq(coil_read_line(&none, &line, COIL_NEVER), -EINVAL);
	return 0;
}

START_TEST(test_a_reader_keeps_a_partial_line_across_a_deadline_and_passes_errors_on)
{
	run(reader_deadline, NULL);
}
END_TEST

/* ----------------------------------------------------------- acceptor */

/* Connect n plain clients, in order. */
static void connect_clients(const char *addr, int *c, int n)
{
	for (int i = 0; i < n; i++)
		c[i] = plain_connect(addr);
}

/* Connections still waiting in the kernel's listen queue of l. */
static unsigned listen_queue(int l)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);

	ck_assert_int_eq(getsockopt(l, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
	ck_assert_int_eq(info.tcpi_state, TCP_LISTEN);
	return info.tcpi_unacked; /* a listener's accept queue length */
}

/* Which client (by index) the accepted fd is connected to, or -1. */
static int client_of(int fd, const int *c, int n)
{
	int port = peer_port(fd);

	for (int i = 0; i < n; i++)
		if (c[i] >= 0 && coil_sock_port(c[i]) == port)
			return i;
	return -1;
}

/* Whether the client saw its connection end (EOF or reset) already. */
static bool client_ended(int c)
{
	char byte;
	ssize_t n = recv(c, &byte, 1, MSG_DONTWAIT);

	if (n < 0 && errno == EAGAIN)
		return false;
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

struct acceptor_waiter {
	coil_acceptor *a;
	int n;           /* connections to take */
	int64_t deadline;
	int fds[8];
	int next;        /* the parking call after the last accept */
};

static int take_connections(void *arg)
{
	struct acceptor_waiter *w = arg;

	for (int i = 0; i < w->n; i++)
		w->fds[i] = coil_acceptor_accept(w->a, w->deadline);
	w->next = coil_yield();
	return 0;
}

static int acceptor_in_order(void *arg)
{
	struct acceptor_waiter w = { .n = 3, .deadline = COIL_NEVER };
	uint64_t base = inflight();
	char addr[64];
	coil_acceptor a;
	coil_task *t;
	int l, c[8], fd;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	/* Waiting before they arrive. */
	connect_clients(addr, c, 5);
	for (int i = 0; i < 5; i++) {
		fd = coil_acceptor_accept(&a, COIL_NEVER);
		ck_assert_int_ge(fd, 0);
		ck_assert(cloexec(fd));
		ck_assert_int_eq(client_of(fd, c, 5), i);
		close(fd);
	}
	/* Arriving one by one while a task waits. */
	w.a = &a;
	ck_assert_int_eq(coil_spawn(&t, take_connections, &w, NULL), 0);
	for (int i = 5; i < 8; i++) {
		let_tasks_park();
		ck_assert(parked(t));
		c[i] = plain_connect(addr);
	}
	ck_assert_int_eq(join(t), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(client_of(w.fds[i], c, 8), 5 + i);
		close(w.fds[i]);
	}
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	ck_assert_uint_eq(inflight(), base);
	for (int i = 0; i < 8; i++)
		close(c[i]);
	close(l);
	return 0;
}

START_TEST(test_an_acceptor_hands_out_connections_in_arrival_order)
{
	run(acceptor_in_order, NULL);
}
END_TEST

#define SMALL_BACKLOG 4
#define BURST (SMALL_BACKLOG + 10)
#define LATE 5

/*
 * A burst of clients is pending when the acceptor is first armed: the
 * kernel hands over all of it at once, past the backlog, and all of it is
 * queued. From then on the acceptor holds its backlog, so accepting pauses:
 * clients arriving now wait in the kernel's listen queue. In the end every
 * client is handed out, in arrival order.
 */
static int acceptor_pauses_at_backlog(void *arg)
{
	char addr[64];
	coil_acceptor a;
	int l, c[BURST + LATE], fd;

	(void)arg;
	capture_log();
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, SMALL_BACKLOG), 0);
	connect_clients(addr, c, BURST);
	ck_assert_uint_eq(listen_queue(l), BURST);
	fd = coil_acceptor_accept(&a, COIL_NEVER);
	ck_assert_int_eq(client_of(fd, c, BURST), 0);
	close(fd);
	/* Let every completion the kernel has for it arrive. */
	let_tasks_park();
	let_tasks_park();
	ck_assert_uint_eq(listen_queue(l), 0);

	/* Holding more than its backlog: newcomers stay with the kernel. */
	connect_clients(addr, c + BURST, LATE);
	let_tasks_park();
	let_tasks_park();
	ck_assert_msg(listen_queue(l) == LATE,
		      "%u of %d connections made while the acceptor held its "
		      "backlog were accepted", LATE - listen_queue(l), LATE);

	for (int i = 1; i < BURST + LATE; i++) {
		fd = coil_acceptor_accept(&a, COIL_NEVER);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(client_of(fd, c, BURST + LATE), i);
		close(fd);
	}
	ck_assert_uint_eq(listen_queue(l), 0);
	ck_assert_msg(!log_has(COIL_LOG_ERROR, "closing"),
		      "the acceptor closed connections: %s", captured_log());
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	for (int i = 0; i < BURST + LATE; i++)
		close(c[i]);
	close(l);
	return 0;
}

START_TEST(test_an_acceptor_holding_its_backlog_leaves_new_connections_in_the_listen_queue)
{
	run(acceptor_pauses_at_backlog, NULL);
}
END_TEST

#define MANY_PENDING 100

/* Take n connections, which must come from clients first.. first + n - 1 in order. */
static void take_in_order(coil_acceptor *a, const int *c, int first, int n)
{
	for (int i = first; i < first + n; i++) {
		int fd = coil_acceptor_accept(a, COIL_NEVER);

		ck_assert_int_ge(fd, 0);
		CHECK(client_of(fd, c, first + n) == i, "accepted client %d, expected %d",
		      client_of(fd, c, first + n), i);
		close(fd);
	}
}

/*
 * Bursts many times the backlog: the queue grows for them, also when it has
 * wrapped around (the first round leaves its head part way along), and
 * hands every connection out in arrival order. None is hung up on.
 */
static int acceptor_bursts(void *arg)
{
	static int c[SMALL_BACKLOG + 1 + MANY_PENDING];
	const int first = SMALL_BACKLOG + 1;
	char addr[64];
	coil_acceptor a;
	int l;

	(void)arg;
	capture_log();
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, SMALL_BACKLOG), 0);
	connect_clients(addr, c, first);
	take_in_order(&a, c, 0, first);

	connect_clients(addr, c + first, MANY_PENDING);
	take_in_order(&a, c, first, 1);
	let_tasks_park();
	let_tasks_park();
	for (int i = first + 1; i < first + MANY_PENDING; i++)
		ck_assert_msg(!client_ended(c[i]),
			      "client %d was closed without being handed out (%s)",
			      i, captured_log());
	take_in_order(&a, c, first + 1, MANY_PENDING - 1);
	ck_assert_uint_eq(listen_queue(l), 0);
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	for (int i = 0; i < first + MANY_PENDING; i++)
		close(c[i]);
	close(l);
	return 0;
}

START_TEST(test_an_acceptor_queues_bursts_far_past_its_backlog_in_order_and_drops_none)
{
	run(acceptor_bursts, NULL);
}
END_TEST

static void acceptor_init_outside(void *arg)
{
	coil_acceptor *a = arg;

	ck_assert_int_eq(coil_acceptor_accept(a, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_acceptor_destroy(a), -EPERM);
}

static int acceptor_init_limits(void *arg)
{
	coil_acceptor a;
	int l = coil_listen("127.0.0.1:0", NULL);

	(void)arg;
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 4097), -EINVAL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 1u << 31), -EINVAL);
	ck_assert_int_eq(coil_acceptor_init(NULL, l, 0), -EINVAL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 4096), 0);
	call_outside_a_task(acceptor_init_outside, &a);
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 1), 0);
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	close(l);
	return 0;
}

START_TEST(test_an_acceptor_refuses_a_backlog_over_4096_and_use_outside_a_task)
{
	coil_acceptor a;

	ck_assert_int_eq(coil_acceptor_init(&a, 0, 0), -EPERM);
	run(acceptor_init_limits, NULL);
}
END_TEST

static int acceptor_deadline(void *arg)
{
	uint64_t base = inflight();
	int64_t deadline;
	char addr[64];
	coil_acceptor a;
	int l, c, fd;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_acceptor_accept(&a, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	/* Arriving after the timeout, taken by the next call. */
	c = plain_connect(addr);
	fd = coil_acceptor_accept(&a, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(peer_port(fd), coil_sock_port(c));
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	ck_assert_uint_eq(inflight(), base);
	close(fd);
	close(c);
	close(l);
	return 0;
}

START_TEST(test_an_acceptor_deadline_loses_no_connection)
{
	run(acceptor_deadline, NULL);
}
END_TEST

/* A timer callback that connects a client, or sends to a peer. */
struct same_iteration {
	const char *addr;  /* connect here, or */
	int peer;          /* send from here */
	int client;
};

static void arrive_now(coil_timer *timer, void *arg)
{
	struct same_iteration *si = arg;

	(void)timer;
	if (si->addr)
		si->client = plain_connect(si->addr);
	else
		ck_assert_int_eq(send(si->peer, "same", 4, 0), 4);
}

/*
 * The waiting task's deadline fires, and in the same loop iteration, before
 * the task runs again, a connection is accepted (a timer with the same
 * deadline, armed after the task's, connects a client first). Its
 * completion must neither wake the task a second time nor be lost.
 */
static int acceptor_deadline_meets_connection(void *arg)
{
	struct acceptor_waiter w = { .n = 1 };
	struct same_iteration si = { .client = -1 };
	coil_timer timer;
	char addr[64];
	coil_acceptor a;
	coil_task *t;
	int l, fd;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	w.a = &a;
	w.deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_spawn(&t, take_connections, &w, NULL), 0);
	let_tasks_park();
	si.addr = addr;
	coil_timer_init(&timer, arrive_now, &si);
	ck_assert_int_eq(coil_timer_arm(&timer, w.deadline), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.fds[0], -ETIMEDOUT);
	ck_assert_int_ge(si.client, 0);
	fd = coil_acceptor_accept(&a, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(peer_port(fd), coil_sock_port(si.client));
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	close(fd);
	close(si.client);
	close(l);
	return 0;
}

START_TEST(test_a_connection_accepted_as_the_acceptor_wait_times_out_is_kept_for_the_next_call)
{
	run(acceptor_deadline_meets_connection, NULL);
}
END_TEST

static int acceptor_cancel(void *arg)
{
	struct acceptor_waiter w = { .n = 1, .deadline = COIL_NEVER };
	char addr[64];
	coil_acceptor a;
	coil_task *t;
	int l, c, fd;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	w.a = &a;
	ck_assert_int_eq(coil_spawn(&t, take_connections, &w, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.fds[0], -ECANCELED);
	ck_assert_int_eq(w.next, -ECANCELED);
	c = plain_connect(addr);
	fd = coil_acceptor_accept(&a, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(peer_port(fd), coil_sock_port(c));
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	close(fd);
	close(c);
	close(l);
	return 0;
}

START_TEST(test_a_cancelled_acceptor_wait_loses_no_connection)
{
	run(acceptor_cancel, NULL);
}
END_TEST

static int acceptor_busy(void *arg)
{
	struct acceptor_waiter w = { .n = 1, .deadline = COIL_NEVER };
	char addr[64];
	coil_acceptor a;
	coil_task *t;
	int l, c;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	w.a = &a;
	ck_assert_int_eq(coil_spawn(&t, take_connections, &w, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_acceptor_accept(&a, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(coil_acceptor_destroy(&a), -EBUSY);
	/* The first waiter is not disturbed by the refusals. */
	c = plain_connect(addr);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_ge(w.fds[0], 0);
	ck_assert_int_eq(peer_port(w.fds[0]), coil_sock_port(c));
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	close(w.fds[0]);
	close(c);
	close(l);
	return 0;
}

START_TEST(test_a_second_task_waiting_on_an_acceptor_gets_ebusy)
{
	run(acceptor_busy, NULL);
}
END_TEST

struct destroyer {
	coil_acceptor *a;
	int yield;
	int destroy;
	uint64_t inflight;
};

static int destroy_when_cancelled(void *arg)
{
	struct destroyer *d = arg;

	d->yield = coil_sleep(COIL_SEC(100));
	d->destroy = coil_acceptor_destroy(d->a);
	d->inflight = inflight();
	return 0;
}

static int acceptor_destroy(void *arg)
{
	struct destroyer d = { 0 };
	uint64_t base = inflight();
	char addr[64];
	coil_acceptor a;
	coil_task *t;
	int l, c[3], fd, queued = 0, left = 0;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 2), 0);
	connect_clients(addr, c, 3);
	fd = coil_acceptor_accept(&a, COIL_NEVER);
	ck_assert_int_eq(client_of(fd, c, 3), 0);
	let_tasks_park();
	/* Destroyed from a cancelled task: it must still wait for the kernel. */
	d.a = &a;
	ck_assert_int_eq(coil_spawn(&t, destroy_when_cancelled, &d, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(d.yield, -ECANCELED);
	ck_assert_int_eq(d.destroy, 0);
	ck_assert_uint_eq(d.inflight, base);
	ck_assert_uint_eq(inflight(), base);
	/* Queued ones were closed; any not taken from the kernel still wait there. */
	for (int i = 1; i < 3; i++)
		queued += client_ended(c[i]);
	left = (int)listen_queue(l);
	ck_assert_int_eq(queued + left, 2);
	ck_assert_int_ge(queued, 1);
	for (int i = 0; i < left; i++) {
		int s = coil_accept(l, NULL, NULL, COIL_NEVER);
		int who = client_of(s, c, 3);

		ck_assert_int_ge(who, 1);
		ck_assert(!client_ended(c[who]));
		close(s);
	}
	/* A new acceptor on the same listener works; destroying an idle one is quick. */
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	ck_assert_uint_eq(inflight(), base);
	close(fd);
	for (int i = 0; i < 3; i++)
		close(c[i]);
	close(l);
	return 0;
}

START_TEST(test_destroying_an_acceptor_closes_queued_connections_and_leaves_nothing_in_flight)
{
	run(acceptor_destroy, NULL);
}
END_TEST

static int acceptor_emfile(void *arg)
{
	struct rlimit old, tight;
	char addr[64];
	coil_acceptor a;
	int l, c, fd, probe, ret;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	c = plain_connect(addr);
	/* No fd number free below the limit. */
	probe = dup(0);
	ck_assert_int_ge(probe, 0);
	close(probe);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	tight = old;
	tight.rlim_cur = (rlim_t)probe;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
	ret = coil_acceptor_accept(&a, COIL_NEVER);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_int_eq(ret, -EMFILE);
	/* Reported once; the connection waited and is accepted now. */
	fd = coil_acceptor_accept(&a, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(peer_port(fd), coil_sock_port(c));
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	close(fd);
	close(c);
	close(l);
	return 0;
}

START_TEST(test_an_acceptor_reports_an_accept_error_once_and_goes_on)
{
	run(acceptor_emfile, NULL);
}
END_TEST

/* -------------------------------------------------------- recv stream */

#define RING 4
#define RING_BUF 4096

/* Run fn as the main task of a loop whose buffer ring is buffers x size. */
static void run_ring(coil_fn *fn, void *arg, unsigned buffers, unsigned size)
{
	coil_loop_opts opts = { .recv_buffers = buffers, .recv_buffer_size = size };
	int status = -1;

	ck_assert_int_eq(coil_run_with(fn, arg, &status, &opts), 0);
	ck_assert_int_eq(status, 0);
}

/* Take buffers from s until end of stream, checking them against the pattern. */
static size_t stream_drain(coil_recv_stream *s, unsigned stream, size_t off)
{
	coil_buf b;
	ssize_t n;

	while ((n = coil_recv_stream_next(s, &b, COIL_NEVER)) > 0) {
		check_pattern(stream, off, b.data, (size_t)n);
		off += (size_t)n;
		coil_buf_release(&b);
	}
	ck_assert_int_eq(n, 0);
	return off;
}

/*
 * The reader takes the whole ring before it gives any buffer back, so the
 * kernel runs out of buffers every round and coil must re-arm the receive
 * each time without the stream seeing -ENOBUFS.
 */
static int stream_mebibyte(void *arg)
{
	struct transfer tx = { .stream = 10, .len = MIB, .shut = true };
	uint64_t base = inflight();
	coil_buf held[RING];
	coil_recv_stream s;
	unsigned starved = 0, rounds = 0;
	size_t off = 0;
	coil_task *t;
	int fds[2], k;

	(void)arg;
	tcp_pair(fds);
	tx.fd = fds[0];
	ck_assert_int_eq(coil_spawn(&t, send_data, &tx, NULL), 0);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	do {
		for (k = 0; k < RING; k++) {
			ssize_t n = coil_recv_stream_next(&s, &held[k], COIL_NEVER);

			CHECK(n >= 0, "next: %zd after %zu bytes", n, off);
			if (n == 0)
				break;
			CHECK(n <= RING_BUF && (size_t)n == held[k].len,
			      "a buffer of %zd bytes", n);
			check_pattern(10, off, held[k].data, (size_t)n);
			off += (size_t)n;
		}
		if (k == RING) {
			/* Holding every buffer: let the kernel find the ring dry. */
			ck_assert_int_eq(coil_yield(), 0);
			starved += s.starved;
		}
		for (int j = 0; j < k; j++)
			coil_buf_release(&held[j]);
		rounds++;
	} while (k == RING);
	ck_assert_uint_eq(off, MIB);
	ck_assert_msg(starved > 0, "the ring never ran dry in %u rounds", rounds);
	ck_assert_int_eq(coil_recv_stream_next(&s, &held[0], COIL_NEVER), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(tx.res, 0);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	ck_assert_uint_eq(inflight(), base);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_stream_delivers_a_mebibyte_in_order_through_a_ring_that_runs_dry)
{
	run_ring(stream_mebibyte, NULL, RING, RING_BUF);
}
END_TEST

static int stream_eof(void *arg)
{
	unsigned char *data = pattern_buf(11, 10 * KIB);
	coil_recv_stream s;
	coil_buf b;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	/* Data and the end of the stream both there before the first call. */
	ck_assert_int_eq(send(fds[0], data, 10 * KIB, 0), 10 * KIB);
	ck_assert_int_eq(shutdown(fds[0], SHUT_WR), 0);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	ck_assert_uint_eq(stream_drain(&s, 11, 0), 10 * KIB);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), 0);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	free(data);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_stream_returns_0_after_all_the_data_at_eof)
{
	run_ring(stream_eof, NULL, RING, RING_BUF);
}
END_TEST

struct stream_waiter {
	coil_recv_stream *s;
	int64_t deadline;
	ssize_t res;
	char data[16];
	int next;
	bool destroy;    /* then destroy s */
	int destroyed;
	uint64_t inflight;
};

static int wait_on_stream(void *arg)
{
	struct stream_waiter *w = arg;
	coil_buf b;

	w->res = coil_recv_stream_next(w->s, &b, w->deadline);
	if (w->res > 0) {
		memcpy(w->data, b.data, (size_t)w->res < sizeof(w->data) ?
		       (size_t)w->res : sizeof(w->data));
		coil_buf_release(&b);
	}
	w->next = coil_yield();
	if (w->destroy) {
		w->destroyed = coil_recv_stream_destroy(w->s);
		w->inflight = inflight();
	}
	return 0;
}

static int stream_reset(void *arg)
{
	struct stream_waiter w = { .deadline = COIL_NEVER };
	coil_recv_stream s, parked_s;
	coil_buf b;
	coil_task *t;
	int fds[2], more[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	reset_close(fds[0]);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), -ECONNRESET);
	/* From then on. */
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), -ECONNRESET);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);

	/* A reset arriving while a task waits. */
	tcp_pair(more);
	ck_assert_int_eq(coil_recv_stream_init(&parked_s, more[1]), 0);
	w.s = &parked_s;
	ck_assert_int_eq(coil_spawn(&t, wait_on_stream, &w, NULL), 0);
	let_tasks_park();
	ck_assert(parked(t));
	reset_close(more[0]);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, -ECONNRESET);
	ck_assert_int_eq(coil_recv_stream_destroy(&parked_s), 0);
	ck_assert_uint_eq(inflight(), 0);
	close(fds[1]);
	close(more[1]);
	return 0;
}

START_TEST(test_a_recv_stream_reports_a_peer_reset_as_econnreset)
{
	run_ring(stream_reset, NULL, RING, RING_BUF);
}
END_TEST

static int stream_deadline(void *arg)
{
	coil_recv_stream s;
	int64_t deadline;
	coil_buf b;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	/* Arriving after the timeout, returned by the next call. */
	ck_assert_int_eq(send(fds[0], "late", 4, 0), 4);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), 4);
	ck_assert_mem_eq(b.data, "late", 4);
	coil_buf_release(&b);
	/* Queued already: a deadline that has passed does not hide it. */
	ck_assert_int_eq(send(fds[0], "queued", 6, 0), 6);
	let_tasks_park();
	let_tasks_park();
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, coil_now()), 6);
	ck_assert_mem_eq(b.data, "queued", 6);
	coil_buf_release(&b);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	ck_assert_uint_eq(inflight(), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_stream_deadline_loses_nothing)
{
	run_ring(stream_deadline, NULL, RING, RING_BUF);
}
END_TEST

/* As for the acceptor: data arrives in the iteration where the wait times out. */
static int stream_deadline_meets_data(void *arg)
{
	struct stream_waiter w = { 0 };
	struct same_iteration si = { 0 };
	coil_recv_stream s;
	coil_timer timer;
	coil_task *t;
	coil_buf b;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	w.s = &s;
	w.deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_spawn(&t, wait_on_stream, &w, NULL), 0);
	let_tasks_park();
	si.peer = fds[0];
	coil_timer_init(&timer, arrive_now, &si);
	ck_assert_int_eq(coil_timer_arm(&timer, w.deadline), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, -ETIMEDOUT);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), 4);
	ck_assert_mem_eq(b.data, "same", 4);
	coil_buf_release(&b);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_data_received_as_the_recv_stream_wait_times_out_is_kept_for_the_next_call)
{
	run_ring(stream_deadline_meets_data, NULL, RING, RING_BUF);
}
END_TEST

static int stream_cancel(void *arg)
{
	struct stream_waiter w = { .deadline = COIL_NEVER };
	uint64_t base = inflight();
	coil_recv_stream s;
	coil_task *t;
	coil_buf b;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	w.s = &s;
	ck_assert_int_eq(coil_spawn(&t, wait_on_stream, &w, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, -ECANCELED);
	ck_assert_int_eq(w.next, -ECANCELED);
	ck_assert_int_eq(send(fds[0], "late", 4, 0), 4);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), 4);
	ck_assert_mem_eq(b.data, "late", 4);
	coil_buf_release(&b);

	/* A cancelled task can still destroy its stream, and waits for the kernel. */
	w = (struct stream_waiter){ .s = &s, .deadline = COIL_NEVER, .destroy = true };
	ck_assert_int_eq(coil_spawn(&t, wait_on_stream, &w, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, -ECANCELED);
	ck_assert_int_eq(w.destroyed, 0);
	ck_assert_uint_eq(w.inflight, base);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_cancelled_recv_stream_wait_loses_nothing)
{
	run_ring(stream_cancel, NULL, RING, RING_BUF);
}
END_TEST

#define SHARED_BYTES (64 * KIB)

struct shared_reader {
	coil_recv_stream s;
	unsigned stream;
	size_t got;
	char name;
	char *order;     /* who got each buffer, in order */
	size_t *order_len;
};

/* Holds each buffer across a yield, so that the two readers hold them in turns. */
static int read_shared(void *arg)
{
	struct shared_reader *r = arg;
	coil_buf b;
	ssize_t n;

	while ((n = coil_recv_stream_next(&r->s, &b, COIL_NEVER)) > 0) {
		check_pattern(r->stream, r->got, b.data, (size_t)n);
		r->got += (size_t)n;
		r->order[(*r->order_len)++] = r->name;
		ck_assert_int_eq(coil_yield(), 0);
		coil_buf_release(&b);
	}
	CHECK(n == 0, "stream %c: %zd after %zu bytes", r->name, n, r->got);
	return 0;
}

static int streams_share_a_ring(void *arg)
{
	static char order[2 * SHARED_BYTES];
	struct shared_reader ra = { .stream = 12, .name = 'A' };
	struct shared_reader rb = { .stream = 13, .name = 'B' };
	unsigned char *da = pattern_buf(12, SHARED_BYTES);
	unsigned char *db = pattern_buf(13, SHARED_BYTES);
	coil_buf held[RING];
	size_t order_len = 0, a_first = 0, a_last = 0, b_first = 0, b_last = 0;
	coil_task *ta, *tb;
	int a[2], bp[2];

	(void)arg;
	tcp_pair(a);
	tcp_pair(bp);
	ra.order = rb.order = order;
	ra.order_len = rb.order_len = &order_len;
	ck_assert_int_eq(coil_recv_stream_init(&ra.s, a[1]), 0);
	ck_assert_int_eq(coil_recv_stream_init(&rb.s, bp[1]), 0);
	ck_assert_int_eq(send(a[0], da, SHARED_BYTES, 0), SHARED_BYTES);
	ck_assert_int_eq(send(bp[0], db, SHARED_BYTES, 0), SHARED_BYTES);
	ck_assert_int_eq(shutdown(a[0], SHUT_WR), 0);
	ck_assert_int_eq(shutdown(bp[0], SHUT_WR), 0);

	/* A's data takes the whole ring; B's reader finds it dry and waits. */
	for (int i = 0; i < RING; i++) {
		ck_assert_int_gt(coil_recv_stream_next(&ra.s, &held[i], COIL_NEVER), 0);
		check_pattern(12, ra.got, held[i].data, held[i].len);
		ra.got += held[i].len;
	}
	ck_assert_int_eq(coil_spawn(&tb, read_shared, &rb, NULL), 0);
	let_tasks_park();
	let_tasks_park();
	ck_assert(parked(tb));
	ck_assert_uint_eq(rb.got, 0);
	ck_assert(rb.s.starved);
	/* One buffer back: B gets going. */
	coil_buf_release(&held[0]);
	while (rb.got == 0)
		ck_assert_int_eq(coil_yield(), 0);
	for (int i = 1; i < RING; i++)
		coil_buf_release(&held[i]);

	/* Now both read on, sharing the ring. */
	ck_assert_int_eq(coil_spawn(&ta, read_shared, &ra, NULL), 0);
	ck_assert_int_eq(join(ta), 0);
	ck_assert_int_eq(join(tb), 0);
	ck_assert_uint_eq(ra.got, SHARED_BYTES);
	ck_assert_uint_eq(rb.got, SHARED_BYTES);
	/* Neither waited for the other to finish. */
	for (size_t i = 0; i < order_len; i++) {
		size_t *first = order[i] == 'A' ? &a_first : &b_first;

		if (!*first)
			*first = i + 1;
		*(order[i] == 'A' ? &a_last : &b_last) = i + 1;
	}
	ck_assert_msg(a_first && b_first && b_first < a_last && a_first < b_last,
		      "one stream got no buffer while the other still had data: %.*s",
		      (int)(order_len < 200 ? order_len : 200), order);
	ck_assert_int_eq(coil_recv_stream_destroy(&ra.s), 0);
	ck_assert_int_eq(coil_recv_stream_destroy(&rb.s), 0);
	ck_assert_uint_eq(inflight(), 0);
	free(da);
	free(db);
	close_pair(a);
	close_pair(bp);
	return 0;
}

START_TEST(test_two_recv_streams_sharing_a_starved_ring_both_make_progress)
{
	run_ring(streams_share_a_ring, NULL, RING, 1024);
}
END_TEST

static int stream_destroy_gives_back(void *arg)
{
	unsigned char *data = pattern_buf(14, 32 * KIB);
	uint64_t base = inflight();
	coil_recv_stream a, b;
	coil_buf first, held[RING];
	int pa[2], pb[2];

	(void)arg;
	tcp_pair(pa);
	tcp_pair(pb);
	ck_assert_int_eq(send(pa[0], data, 32 * KIB, 0), 32 * KIB);
	ck_assert_int_eq(coil_recv_stream_init(&a, pa[1]), 0);
	ck_assert_int_gt(coil_recv_stream_next(&a, &first, COIL_NEVER), 0);
	coil_buf_release(&first);
	/* a's receive fills the whole ring, then waits for buffers. */
	let_tasks_park();
	let_tasks_park();
	ck_assert(a.starved);
	ck_assert_int_eq(coil_recv_stream_destroy(&a), 0);
	ck_assert_uint_eq(inflight(), base);

	/* Every buffer is back: b can hold the whole ring at once. */
	ck_assert_int_eq(send(pb[0], data, 32 * KIB, 0), 32 * KIB);
	ck_assert_int_eq(coil_recv_stream_init(&b, pb[1]), 0);
	size_t off = 0;

	for (int i = 0; i < RING; i++) {
		ssize_t n = coil_recv_stream_next(&b, &held[i], coil_now() + COIL_SEC(5));

		ck_assert_msg(n > 0, "buffer %d of the ring: %zd", i, n);
		check_pattern(14, off, held[i].data, (size_t)n);
		off += (size_t)n;
	}
	/* Giving them back must not wake the destroyed stream. */
	for (int i = 0; i < RING; i++)
		coil_buf_release(&held[i]);
	let_tasks_park();
	ck_assert_int_eq(coil_recv_stream_destroy(&b), 0);
	ck_assert_uint_eq(inflight(), base);
	free(data);
	close_pair(pa);
	close_pair(pb);
	return 0;
}

START_TEST(test_destroying_a_recv_stream_gives_back_its_buffers_and_leaves_nothing_in_flight)
{
	run_ring(stream_destroy_gives_back, NULL, RING, RING_BUF);
}
END_TEST

static int release_twice(void *arg)
{
	unsigned char *data = pattern_buf(15, 4 * RING * RING_BUF);
	coil_buf b, zero = { 0 }, held[RING];
	coil_recv_stream s;
	size_t off;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	ck_assert_int_eq(send(fds[0], data, 10, 0), 10);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), 10);
	coil_buf_release(&b);
	coil_buf_release(&b);
	coil_buf_release(&zero);
	coil_buf_release(NULL);
	/*
	 * Had the buffer gone back twice, the kernel could fill it twice:
	 * two buffers held at once would share memory, or data would be lost.
	 */
	ck_assert_int_eq(send(fds[0], data + 10, 4 * RING * RING_BUF - 10, 0),
			 4 * RING * RING_BUF - 10);
	off = 10;
	for (int round = 0; round < 4; round++) {
		int k;

		for (k = 0; k < RING; k++) {
			ssize_t n = coil_recv_stream_next(&s, &held[k],
							  coil_now() + COIL_SEC(5));

			ck_assert_msg(n > 0, "next: %zd", n);
			for (int j = 0; j < k; j++)
				ck_assert_ptr_ne(held[j].data, held[k].data);
			check_pattern(15, off, held[k].data, (size_t)n);
			off += (size_t)n;
			if (off == 4 * RING * RING_BUF) {
				k++;
				break;
			}
		}
		for (int j = 0; j < k; j++)
			coil_buf_release(&held[j]);
		if (off == 4 * RING * RING_BUF)
			break;
	}
	ck_assert_uint_eq(off, 4 * RING * RING_BUF);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	ck_assert_uint_eq(inflight(), 0);
	free(data);
	close_pair(fds);
	return 0;
}

START_TEST(test_releasing_a_buffer_twice_is_harmless)
{
	run_ring(release_twice, NULL, RING, RING_BUF);
}
END_TEST

/*
 * Without DEFER_TASKRUN the kernel posts completions whenever the thread
 * returns from a system call, not only when the loop enters the ring. So
 * the kernel can report the ring dry (-ENOBUFS) and every buffer can come
 * back before the loop sees that report: the stream must then re-arm at
 * once, since no later give-back will come to do it.
 */
static int starved_after_buffers_came_back(void *arg)
{
	unsigned char *data = pattern_buf(17, RING * RING_BUF + 100);
	coil_ring *ring = coil_loop_ring();
	coil_buf held[RING], b;
	coil_recv_stream s;
	size_t off = 0;
	int fds[2], spins = 0;

	(void)arg;
	ck_assert_int_eq(coil_ring_flags(ring) & IORING_SETUP_DEFER_TASKRUN, 0);
	unix_pair(fds);
	/* Exactly the ring's worth, there before the receive is armed. */
	ck_assert_int_eq(write(fds[0], data, RING * RING_BUF), RING * RING_BUF);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	for (int i = 0; i < RING; i++) {
		ck_assert_int_gt(coil_recv_stream_next(&s, &held[i], COIL_NEVER), 0);
		check_pattern(17, off, held[i].data, held[i].len);
		off += held[i].len;
	}
	ck_assert_uint_eq(off, RING * RING_BUF);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(s.armed);
	ck_assert_uint_eq(io_uring_cq_ready(&ring->uring), 0);
	/* More data, no buffer: the kernel's -ENOBUFS waits in the CQ. */
	ck_assert_int_eq(write(fds[0], data + off, 100), 100);
	while (!io_uring_cq_ready(&ring->uring) && spins++ < 1000)
		getppid(); /* each return to user space runs the kernel's work */
	if (!io_uring_cq_ready(&ring->uring)) {
		fprintf(stderr, "skipped %s: the kernel posted nothing\n", __func__);
		return 0;
	}
	for (int i = 0; i < RING; i++)
		coil_buf_release(&held[i]);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), 100);
	check_pattern(17, off, b.data, 100);
	coil_buf_release(&b);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	free(data);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_stream_whose_buffers_came_back_before_its_enobufs_rearms_at_once)
{
	coil_loop_opts opts = {
		.ring.disable_flags = IORING_SETUP_DEFER_TASKRUN,
		.recv_buffers = RING,
		.recv_buffer_size = RING_BUF,
	};
	int status = -1;

	ck_assert_int_eq(coil_run_with(starved_after_buffers_came_back, NULL, &status,
				       &opts), 0);
	ck_assert_int_eq(status, 0);
}
END_TEST

static void stream_outside(void *arg)
{
	coil_recv_stream *s = arg;
	coil_buf b;

	ck_assert_int_eq(coil_recv_stream_next(s, &b, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_recv_stream_destroy(s), -EPERM);
}

static int stream_outside_a_task(void *arg)
{
	coil_recv_stream s;
	coil_buf b;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	ck_assert_int_eq(coil_recv_stream_init(NULL, fds[1]), -EINVAL);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	call_outside_a_task(stream_outside, &s);
	/* The refusals left the stream usable. */
	ck_assert_int_eq(write(fds[0], "in", 2), 2);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), 2);
	coil_buf_release(&b);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_stream_used_outside_a_task_returns_eperm)
{
	coil_recv_stream s;

	ck_assert_int_eq(coil_recv_stream_init(&s, 0), -EPERM);
	run(stream_outside_a_task, NULL);
}
END_TEST

static int stream_busy(void *arg)
{
	struct stream_waiter w = { .deadline = COIL_NEVER };
	coil_recv_stream s;
	coil_task *t;
	coil_buf b;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	w.s = &s;
	ck_assert_int_eq(coil_spawn(&t, wait_on_stream, &w, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), -EBUSY);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), -EBUSY);
	ck_assert_int_eq(write(fds[0], "first", 5), 5);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, 5);
	ck_assert_mem_eq(w.data, "first", 5);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	ck_assert_uint_eq(inflight(), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_second_task_waiting_on_a_recv_stream_gets_ebusy)
{
	run(stream_busy, NULL);
}
END_TEST

static int small_buffers(void *arg)
{
	unsigned char *data = pattern_buf(16, 1000);
	coil_recv_stream s;
	coil_buf b;
	size_t off = 0;
	ssize_t n;
	int fds[2];

	(void)arg;
	unix_pair(fds);
	ck_assert_int_eq(write(fds[0], data, 1000), 1000);
	close(fds[0]);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	while ((n = coil_recv_stream_next(&s, &b, COIL_NEVER)) > 0) {
		ck_assert_int_le(n, 100);
		check_pattern(16, off, b.data, (size_t)n);
		off += (size_t)n;
		coil_buf_release(&b);
	}
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(off, 1000);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	free(data);
	close(fds[1]);
	return 0;
}

static int must_not_run(void *arg)
{
	(void)arg;
	ck_abort_msg("a loop with bad options ran its task");
	return 0;
}

START_TEST(test_the_loops_buffer_ring_takes_its_size_from_the_options)
{
	coil_loop_opts three = { .recv_buffers = 3 };
	coil_loop_opts huge = { .recv_buffers = 65536 };

	run_ring(small_buffers, NULL, 8, 100);
	ck_assert_int_eq(coil_run_with(must_not_run, NULL, NULL, &three), -EINVAL);
	ck_assert_int_eq(coil_run_with(must_not_run, NULL, NULL, &huge), -EINVAL);
}
END_TEST

/* ------------------------------------------ cancels and deadlines */

enum op_kind {
	OP_RECV, OP_RECVMSG, OP_RECVFROM, OP_RECV_EXACT, OP_READ_LINE,
	OP_ACCEPT, OP_ACCEPTOR, OP_STREAM,
	OP_SEND, OP_SENDMSG, OP_SEND_ZC, OP_SEND_ALL, OP_DIAL,
};

struct op_spec {
	enum op_kind kind;
	bool cancel; /* else the op times out */
};

/* One op that parks, on sockets main sets up, and what became of it. */
struct op_case {
	enum op_kind kind;
	int fd;                /* the socket the op works on */
	int peer;              /* the other end: sends late data, or drains */
	int listener;
	char addr[64];
	size_t filled;         /* bytes queued by fill() before a send */
	int fillers[4];        /* connections filling a listen queue */
	coil_acceptor acceptor;
	coil_recv_stream stream;
	coil_reader reader;
	char reader_buf[64];
	int64_t deadline;
	ssize_t res;
	size_t count;          /* send_all's *sent, recv_exact's *got */
	uint64_t base;         /* ops in flight before the op */
	uint64_t inflight_after;
	int64_t returned_at;
	int next;              /* the parking call after the op */
};

static char send_src[64 * KIB];

static bool is_send(enum op_kind k)
{
	return k == OP_SEND || k == OP_SENDMSG || k == OP_SEND_ZC || k == OP_SEND_ALL;
}

/* Multishot ops stay armed when a wait on them is interrupted. */
static bool is_multishot(enum op_kind k)
{
	return k == OP_ACCEPTOR || k == OP_STREAM;
}

static void op_setup(struct op_case *c, enum op_kind kind)
{
	coil_listen_opts udp = { .type = SOCK_DGRAM };
	coil_listen_opts one = { .backlog = 1 };
	int fds[2];

	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->fd = c->peer = c->listener = -1;
	memset(send_src, 'S', sizeof(send_src));
	switch (kind) {
	case OP_RECVFROM:
		c->fd = listen_on("127.0.0.1", c->addr, sizeof(c->addr), &udp);
		c->peer = coil_listen("127.0.0.1:0", &udp);
		ck_assert_int_ge(c->peer, 0);
		break;
	case OP_ACCEPT:
	case OP_ACCEPTOR:
		c->listener = listen_on("127.0.0.1", c->addr, sizeof(c->addr), NULL);
		ck_assert_int_eq(coil_acceptor_init(&c->acceptor, c->listener, 0), 0);
		break;
	case OP_DIAL:
		/* A full listen queue drops SYNs: a dial to it waits. */
		c->listener = listen_on("127.0.0.1", c->addr, sizeof(c->addr), &one);
		for (int i = 0; i < 4; i++) {
			struct sockaddr_storage ss;
			socklen_t len;

			ck_assert_int_eq(coil_addr_parse(c->addr, &ss, &len), 0);
			c->fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
					       SOCK_CLOEXEC, 0);
			ck_assert_int_ge(c->fillers[i], 0);
			connect(c->fillers[i], (struct sockaddr *)&ss, len);
		}
		break;
	default:
		tcp_pair(fds);
		if (is_send(kind)) {
			c->fd = fds[0];
			c->peer = fds[1];
			shrink_buffers(fds);
			c->filled = fill(c->fd);
		} else {
			c->fd = fds[1];
			c->peer = fds[0];
		}
		coil_reader_init(&c->reader, c->fd, c->reader_buf, sizeof(c->reader_buf));
		ck_assert_int_eq(coil_recv_stream_init(&c->stream, c->fd), 0);
		break;
	}
}

static void op_teardown(struct op_case *c)
{
	if (c->kind == OP_ACCEPT || c->kind == OP_ACCEPTOR)
		ck_assert_int_eq(coil_acceptor_destroy(&c->acceptor), 0);
	if (c->fd >= 0 && c->kind != OP_RECVFROM)
		ck_assert_int_eq(coil_recv_stream_destroy(&c->stream), 0);
	if (c->kind == OP_DIAL)
		for (int i = 0; i < 4; i++)
			close(c->fillers[i]);
	close(c->fd);
	close(c->peer);
	close(c->listener);
}

static ssize_t op_issue(struct op_case *c, int64_t deadline)
{
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	char buf[64], *line;
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	coil_buf b;
	ssize_t n;

	switch (c->kind) {
	case OP_RECV:
		return coil_recv(c->fd, buf, sizeof(buf), 0, deadline);
	case OP_RECVMSG:
		iov = (struct iovec){ buf, sizeof(buf) };
		return coil_recvmsg(c->fd, &msg, 0, deadline);
	case OP_RECVFROM:
		return coil_recvfrom(c->fd, buf, sizeof(buf), 0,
				     (struct sockaddr *)&from, &fromlen, deadline);
	case OP_RECV_EXACT:
		return coil_recv_exact(c->fd, buf, sizeof(buf), &c->count, deadline);
	case OP_READ_LINE:
		return coil_read_line(&c->reader, &line, deadline);
	case OP_ACCEPT:
		return coil_accept(c->listener, NULL, NULL, deadline);
	case OP_ACCEPTOR:
		return coil_acceptor_accept(&c->acceptor, deadline);
	case OP_STREAM:
		n = coil_recv_stream_next(&c->stream, &b, deadline);
		if (n > 0)
			coil_buf_release(&b);
		return n;
	case OP_SEND:
		return coil_send(c->fd, send_src, sizeof(send_src), MSG_NOSIGNAL,
				 deadline);
	case OP_SENDMSG:
		iov = (struct iovec){ send_src, sizeof(send_src) };
		return coil_sendmsg(c->fd, &msg, MSG_NOSIGNAL, deadline);
	case OP_SEND_ZC:
		return coil_send_zc(c->fd, send_src, sizeof(send_src), MSG_NOSIGNAL,
				    deadline);
	case OP_SEND_ALL:
		return coil_send_all(c->fd, send_src, sizeof(send_src), &c->count,
				     deadline);
	case OP_DIAL:
		return coil_dial(c->addr, deadline);
	}
	return -ENOSYS;
}

static int op_task(void *arg)
{
	struct op_case *c = arg;

	c->base = inflight();
	c->res = op_issue(c, c->deadline == COIL_NEVER ? COIL_NEVER
						       : coil_now() + c->deadline);
	c->returned_at = coil_now();
	c->inflight_after = inflight();
	c->next = coil_yield();
	return 0;
}

/* Nothing was taken by the interrupted op: what arrives now goes to a new one. */
static void op_check_nothing_lost(struct op_case *c, int fds_before)
{
	struct sockaddr_storage to;
	socklen_t tolen;
	char buf[64], *line;
	coil_buf b;
	int client, fd;

	switch (c->kind) {
	case OP_RECV:
	case OP_RECVMSG:
		ck_assert_int_eq(send(c->peer, "late", 4, 0), 4);
		ck_assert_int_eq(coil_recv(c->fd, buf, sizeof(buf), 0, COIL_NEVER), 4);
		ck_assert_mem_eq(buf, "late", 4);
		break;
	case OP_RECV_EXACT:
		ck_assert_int_eq(send(c->peer, "late", 4, 0), 4);
		ck_assert_int_eq(coil_recv_exact(c->fd, buf, 4, NULL, COIL_NEVER), 0);
		ck_assert_mem_eq(buf, "late", 4);
		break;
	case OP_READ_LINE:
		ck_assert_int_eq(send(c->peer, "late\n", 5, 0), 5);
		ck_assert_int_eq(coil_read_line(&c->reader, &line, COIL_NEVER), 5);
		ck_assert_mem_eq(line, "late\n", 5);
		break;
	case OP_STREAM:
		ck_assert_int_eq(send(c->peer, "late", 4, 0), 4);
		ck_assert_int_eq(coil_recv_stream_next(&c->stream, &b, COIL_NEVER), 4);
		ck_assert_mem_eq(b.data, "late", 4);
		coil_buf_release(&b);
		break;
	case OP_RECVFROM:
		ck_assert_int_eq(coil_addr_parse(c->addr, &to, &tolen), 0);
		ck_assert_int_eq(sendto(c->peer, "late", 4, 0, (struct sockaddr *)&to,
					tolen), 4);
		ck_assert_int_eq(coil_recvfrom(c->fd, buf, sizeof(buf), 0, NULL, NULL,
					       COIL_NEVER), 4);
		ck_assert_mem_eq(buf, "late", 4);
		break;
	case OP_ACCEPT:
	case OP_ACCEPTOR:
		client = plain_connect(c->addr);
		fd = c->kind == OP_ACCEPT ?
			coil_accept(c->listener, NULL, NULL, COIL_NEVER) :
			coil_acceptor_accept(&c->acceptor, COIL_NEVER);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(peer_port(fd), coil_sock_port(client));
		close(fd);
		close(client);
		break;
	case OP_SEND:
	case OP_SENDMSG:
	case OP_SEND_ZC:
	case OP_SEND_ALL:
		drain_exactly(c->peer, c->filled);
		break;
	case OP_DIAL:
		ck_assert_int_eq(count_fds(), fds_before);
		break;
	}
}

static int interrupt_op(void *arg)
{
	const struct op_spec *spec = arg;
	struct bystander by;
	struct op_case c;
	coil_task *bt, *t;
	int fds_before, expected = spec->cancel ? -ECANCELED : -ETIMEDOUT;

	op_setup(&c, spec->kind);
	bt = bystander_start(&by);
	let_tasks_park();
	fds_before = count_fds();
	c.deadline = spec->cancel ? COIL_NEVER : COIL_MSEC(20);
	ck_assert_int_eq(coil_spawn(&t, op_task, &c, NULL), 0);
	let_tasks_park();
	ck_assert_msg(parked(t), "the op did not wait");
	ck_assert_uint_eq(inflight(), c.base + 1);
	if (spec->cancel)
		ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_msg(c.res == expected, "the op returned %zd, not %d", c.res, expected);
	ck_assert_uint_eq(c.count, 0);
	/* It returned only once its op had ended in the kernel. */
	ck_assert_uint_eq(c.inflight_after, c.base + is_multishot(spec->kind));
	ck_assert_int_eq(c.next, spec->cancel ? -ECANCELED : 0);
	if (!spec->cancel)
		ck_assert_int_ge(c.returned_at - c.deadline, 0);
	op_check_nothing_lost(&c, fds_before);
	bystander_finish(&by, bt);
	assert_loop_healthy();
	op_teardown(&c);
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

static bool zc_supported(void)
{
	coil_ring r;
	bool zc;

	ring_up(&r, NULL);
	zc = coil_ring_has_op(&r, IORING_OP_SEND_ZC);
	coil_ring_exit(&r);
	return zc;
}

#define INTERRUPT_TEST(name, op, cancelled)                                    \
	START_TEST(name)                                                       \
	{                                                                      \
		struct op_spec spec = { .kind = op, .cancel = cancelled };     \
                                                                               \
		SKIP_UNLESS(op != OP_SEND_ZC || zc_supported(), "no SEND_ZC"); \
		run(interrupt_op, &spec);                                      \
	}                                                                      \
	END_TEST

INTERRUPT_TEST(test_a_recv_cancelled_in_flight_returns_ecanceled_after_its_cqe,
	       OP_RECV, true)
INTERRUPT_TEST(test_a_recvmsg_cancelled_in_flight_returns_ecanceled_after_its_cqe,
	       OP_RECVMSG, true)
INTERRUPT_TEST(test_a_recvfrom_cancelled_in_flight_returns_ecanceled_after_its_cqe,
	       OP_RECVFROM, true)
INTERRUPT_TEST(test_a_recv_exact_cancelled_in_flight_returns_ecanceled_after_its_cqe,
	       OP_RECV_EXACT, true)
INTERRUPT_TEST(test_a_read_line_cancelled_in_flight_returns_ecanceled_after_its_cqe,
	       OP_READ_LINE, true)
INTERRUPT_TEST(test_an_accept_cancelled_in_flight_returns_ecanceled_after_its_cqe,
	       OP_ACCEPT, true)
INTERRUPT_TEST(test_an_acceptor_wait_cancelled_returns_ecanceled_and_keeps_accepting,
	       OP_ACCEPTOR, true)
INTERRUPT_TEST(test_a_recv_stream_wait_cancelled_returns_ecanceled_and_keeps_receiving,
	       OP_STREAM, true)
INTERRUPT_TEST(test_a_send_to_a_full_socket_cancelled_in_flight_returns_ecanceled_after_its_cqe,
	       OP_SEND, true)
INTERRUPT_TEST(test_a_sendmsg_to_a_full_socket_cancelled_in_flight_returns_ecanceled_after_its_cqe,
	       OP_SENDMSG, true)
INTERRUPT_TEST(test_a_send_zc_to_a_full_socket_cancelled_in_flight_returns_ecanceled_after_its_cqes,
	       OP_SEND_ZC, true)
INTERRUPT_TEST(test_a_send_all_to_a_full_socket_cancelled_returns_ecanceled_with_nothing_sent,
	       OP_SEND_ALL, true)
INTERRUPT_TEST(test_a_dial_cancelled_in_flight_returns_ecanceled_and_leaves_no_fd,
	       OP_DIAL, true)
INTERRUPT_TEST(test_a_recv_times_out_at_its_deadline_after_its_cqe,
	       OP_RECV, false)
INTERRUPT_TEST(test_a_recvmsg_times_out_at_its_deadline_after_its_cqe,
	       OP_RECVMSG, false)
INTERRUPT_TEST(test_a_recvfrom_times_out_at_its_deadline_after_its_cqe,
	       OP_RECVFROM, false)
INTERRUPT_TEST(test_a_recv_exact_times_out_at_its_deadline_after_its_cqe,
	       OP_RECV_EXACT, false)
INTERRUPT_TEST(test_a_read_line_times_out_at_its_deadline_after_its_cqe,
	       OP_READ_LINE, false)
INTERRUPT_TEST(test_an_accept_times_out_at_its_deadline_after_its_cqe,
	       OP_ACCEPT, false)
INTERRUPT_TEST(test_an_acceptor_wait_times_out_at_its_deadline_and_keeps_accepting,
	       OP_ACCEPTOR, false)
INTERRUPT_TEST(test_a_recv_stream_wait_times_out_at_its_deadline_and_keeps_receiving,
	       OP_STREAM, false)
INTERRUPT_TEST(test_a_send_to_a_full_socket_times_out_at_its_deadline_after_its_cqe,
	       OP_SEND, false)
INTERRUPT_TEST(test_a_sendmsg_to_a_full_socket_times_out_at_its_deadline_after_its_cqe,
	       OP_SENDMSG, false)
INTERRUPT_TEST(test_a_send_zc_to_a_full_socket_times_out_at_its_deadline_after_its_cqes,
	       OP_SEND_ZC, false)
INTERRUPT_TEST(test_a_send_all_to_a_full_socket_times_out_with_nothing_sent,
	       OP_SEND_ALL, false)
INTERRUPT_TEST(test_a_dial_times_out_at_its_deadline_and_leaves_no_fd,
	       OP_DIAL, false)

/* ------------------------------------ completions racing interrupts */

struct recv_once {
	int fd;
	int flags;
	char buf[64];
	ssize_t res;
	int next;
};

static int recv_then_yield(void *arg)
{
	struct recv_once *r = arg;

	r->res = coil_recv(r->fd, r->buf, sizeof(r->buf), r->flags, COIL_NEVER);
	r->next = coil_yield();
	return 0;
}

/*
 * Deterministic: main yields until the recv's completion has woken the task,
 * then cancels a task whose op is done.
 */
static int recv_done_before_cancel(void *arg)
{
	struct recv_once r = { 0 };
	coil_task *t;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	r.fd = fds[1];
	ck_assert_int_eq(coil_spawn(&t, recv_then_yield, &r, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(send(fds[0], "first", 5, 0), 5);
	while (parked(t))
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 5);
	ck_assert_mem_eq(r.buf, "first", 5);
	ck_assert_int_eq(r.next, -ECANCELED);
	ck_assert_uint_eq(inflight(), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_completed_before_its_cancel_keeps_the_data_and_the_next_park_is_ecanceled)
{
	run(recv_done_before_cancel, NULL);
}
END_TEST

/*
 * Deterministic: the recv and its cancel reach the kernel in one submission,
 * in that order, and a recv of a socket holding data completes as it is
 * issued, so the cancel finds nothing to cancel.
 */
static int recv_submitted_with_cancel(void *arg)
{
	struct recv_once r = { 0 };
	coil_task *t;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	r.fd = fds[1];
	ck_assert_int_eq(send(fds[0], "there", 5, 0), 5);
	ck_assert_int_eq(coil_spawn(&t, recv_then_yield, &r, NULL), 0);
	ck_assert_int_eq(coil_yield(), 0);
	ck_assert(parked(t));
	ck_assert_uint_eq(unsubmitted(), 1);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 5);
	ck_assert_mem_eq(r.buf, "there", 5);
	ck_assert_int_eq(r.next, -ECANCELED);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_submitted_with_its_cancel_keeps_the_data_already_there)
{
	run(recv_submitted_with_cancel, NULL);
}
END_TEST

struct accept_once {
	int listener;
	int res;
	int next;
};

static int accept_then_yield(void *arg)
{
	struct accept_once *a = arg;

	a->res = coil_accept(a->listener, NULL, NULL, COIL_NEVER);
	a->next = coil_yield();
	return 0;
}

static int accept_done_before_cancel(void *arg)
{
	struct accept_once a = { 0 };
	char addr[64];
	coil_task *t;
	int c;

	(void)arg;
	a.listener = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_spawn(&t, accept_then_yield, &a, NULL), 0);
	let_tasks_park();
	c = plain_connect(addr);
	while (parked(t))
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	/* The connection is the task's, not lost in the cancel. */
	ck_assert_int_ge(a.res, 0);
	ck_assert_int_eq(peer_port(a.res), coil_sock_port(c));
	ck_assert_int_eq(a.next, -ECANCELED);
	close(a.res);
	close(c);
	close(a.listener);
	return 0;
}

START_TEST(test_an_accept_completed_before_its_cancel_keeps_the_connection)
{
	run(accept_done_before_cancel, NULL);
}
END_TEST

static int stream_done_before_cancel(void *arg)
{
	struct stream_waiter w = { .deadline = COIL_NEVER };
	coil_recv_stream s;
	coil_task *t;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(coil_recv_stream_init(&s, fds[1]), 0);
	w.s = &s;
	ck_assert_int_eq(coil_spawn(&t, wait_on_stream, &w, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(send(fds[0], "kept", 4, 0), 4);
	while (parked(t))
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(w.res, 4);
	ck_assert_mem_eq(w.data, "kept", 4);
	ck_assert_int_eq(w.next, -ECANCELED);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_stream_wait_woken_before_its_cancel_keeps_the_data)
{
	run(stream_done_before_cancel, NULL);
}
END_TEST

static int acceptor_done_before_cancel(void *arg)
{
	struct acceptor_waiter w = { .n = 1, .deadline = COIL_NEVER };
	char addr[64];
	coil_acceptor a;
	coil_task *t;
	int l, c;

	(void)arg;
	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	w.a = &a;
	ck_assert_int_eq(coil_spawn(&t, take_connections, &w, NULL), 0);
	let_tasks_park();
	c = plain_connect(addr);
	while (parked(t))
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_ge(w.fds[0], 0);
	ck_assert_int_eq(peer_port(w.fds[0]), coil_sock_port(c));
	ck_assert_int_eq(w.next, -ECANCELED);
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	close(w.fds[0]);
	close(c);
	close(l);
	return 0;
}

START_TEST(test_an_acceptor_wait_woken_before_its_cancel_keeps_the_connection)
{
	run(acceptor_done_before_cancel, NULL);
}
END_TEST

struct timed_recv {
	int fd;
	int64_t deadline;
	char buf[16];
	ssize_t res;
};

static int recv_with_deadline(void *arg)
{
	struct timed_recv *r = arg;

	r->res = coil_recv(r->fd, r->buf, sizeof(r->buf), 0, r->deadline);
	return 0;
}

/*
 * Data arrives in the very iteration where the recv's deadline fires: the
 * kernel sees the cancel and the data together, and either may win. Both
 * outcomes are right as long as the bytes are not lost: returned, or still
 * in the socket.
 */
static int recv_deadline_meets_data(void *arg)
{
	struct same_iteration si = { 0 };
	struct timed_recv r = { 0 };
	coil_timer timer;
	coil_task *t;
	char buf[16];
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	r.fd = fds[1];
	r.deadline = coil_now() + COIL_MSEC(20);
	ck_assert_int_eq(coil_spawn(&t, recv_with_deadline, &r, NULL), 0);
	let_tasks_park();
	si.peer = fds[0];
	coil_timer_init(&timer, arrive_now, &si);
	ck_assert_int_eq(coil_timer_arm(&timer, r.deadline), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_uint_eq(inflight(), 0);
	if (r.res == 4) {
		ck_assert_mem_eq(r.buf, "same", 4);
		ck_assert_int_eq(pending(fds[1]), 0);
	} else {
		ck_assert_int_eq(r.res, -ETIMEDOUT);
		ck_assert_int_eq(pending(fds[1]), 4);
		ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), 0, COIL_NEVER), 4);
		ck_assert_mem_eq(buf, "same", 4);
	}
	close_pair(fds);
	return 0;
}

START_TEST(test_a_recv_whose_data_arrives_as_its_deadline_fires_loses_nothing)
{
	run(recv_deadline_meets_data, NULL);
}
END_TEST

/*
 * MSG_WAITALL: part of the bytes came, then the cancel. The kernel returns
 * that part, and so must coil: the bytes are in the buffer already.
 */
static int waitall_partial_cancel(void *arg)
{
	struct recv_once r = { .flags = MSG_WAITALL };
	coil_task *t;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	r.fd = fds[1];
	ck_assert_int_eq(coil_spawn(&t, recv_then_yield, &r, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(send(fds[0], "part", 4, 0), 4);
	/* Until the kernel has taken the part into the waiting receive. */
	while (pending(fds[1]))
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert(parked(t));
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, 4);
	ck_assert_mem_eq(r.buf, "part", 4);
	ck_assert_int_eq(r.next, -ECANCELED);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_cancelled_waitall_recv_returns_the_bytes_it_had_received)
{
	run(waitall_partial_cancel, NULL);
}
END_TEST

struct exact_once {
	int fd;
	char buf[64];
	int res;
	size_t got;
};

static int recv_exact_task(void *arg)
{
	struct exact_once *e = arg;

	e->res = coil_recv_exact(e->fd, e->buf, sizeof(e->buf), &e->got, COIL_NEVER);
	return 0;
}

static int recv_exact_partial_cancel(void *arg)
{
	struct exact_once e = { 0 };
	coil_task *t;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	e.fd = fds[1];
	ck_assert_int_eq(coil_spawn(&t, recv_exact_task, &e, NULL), 0);
	let_tasks_park();
	ck_assert_int_eq(send(fds[0], "0123456789", 10, 0), 10);
	while (pending(fds[1]))
		ck_assert_int_eq(coil_yield(), 0);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(e.res, -ECANCELED);
	ck_assert_uint_eq(e.got, 10);
	ck_assert_mem_eq(e.buf, "0123456789", 10);
	close_pair(fds);
	return 0;
}

START_TEST(test_a_cancelled_recv_exact_counts_the_bytes_of_its_partial_receive)
{
	run(recv_exact_partial_cancel, NULL);
}
END_TEST

/*
 * Deadline and completion at once: the deadline has passed when the call is
 * made, but what it asks for is there. The op and its cancel go to the
 * kernel together, the op completes as it is issued, and its result stands.
 */
static int passed_deadline_keeps_results(void *arg)
{
	coil_listen_opts udp = { .type = SOCK_DGRAM };
	struct sockaddr_storage to;
	char addr[64], uaddr[64], buf[64], *line, rbuf[32];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	coil_acceptor a;
	coil_reader r;
	socklen_t tolen;
	size_t count;
	int fds[2], l, c, s, u1, u2;

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(send(fds[0], "recv", 4, 0), 4);
	ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), 0, coil_now()), 4);
	ck_assert_mem_eq(buf, "recv", 4);
	ck_assert_int_eq(send(fds[0], "recvmsg", 7, 0), 7);
	ck_assert_int_eq(coil_recvmsg(fds[1], &msg, 0, coil_now()), 7);
	ck_assert_mem_eq(buf, "recvmsg", 7);
	ck_assert_int_eq(send(fds[0], "exact", 5, 0), 5);
	ck_assert_int_eq(coil_recv_exact(fds[1], buf, 5, &count, coil_now()), 0);
	ck_assert_uint_eq(count, 5);
	ck_assert_int_eq(coil_send(fds[0], "send", 4, 0, coil_now()), 4);
	ck_assert_int_eq(coil_send_all(fds[0], "all", 3, &count, coil_now()), 0);
	ck_assert_uint_eq(count, 3);
	if (zc_supported())
		ck_assert_int_eq(coil_send_zc(fds[0], "zc", 2, 0, coil_now()), 2);
	else
		ck_assert_int_eq(coil_send(fds[0], "zc", 2, 0, COIL_NEVER), 2);
	ck_assert_int_eq(coil_recv_exact(fds[1], buf, 9, NULL, COIL_NEVER), 0);
	ck_assert_mem_eq(buf, "sendallzc", 9);
	ck_assert_int_eq(send(fds[0], "line\n", 5, 0), 5);
	coil_reader_init(&r, fds[1], rbuf, sizeof(rbuf));
	ck_assert_int_eq(coil_read_line(&r, &line, coil_now()), 5);
	ck_assert_mem_eq(line, "line\n", 5);
	ck_assert_uint_eq(inflight(), 0);

	u1 = listen_on("127.0.0.1", uaddr, sizeof(uaddr), &udp);
	u2 = coil_listen("127.0.0.1:0", &udp);
	ck_assert_int_eq(coil_addr_parse(uaddr, &to, &tolen), 0);
	ck_assert_int_eq(coil_sendto(u2, "dgram", 5, 0, (struct sockaddr *)&to, tolen,
				     coil_now()), 5);
	ck_assert_int_eq(coil_recvfrom(u1, buf, sizeof(buf), 0, NULL, NULL,
				       coil_now()), 5);
	ck_assert_mem_eq(buf, "dgram", 5);

	l = listen_on("127.0.0.1", addr, sizeof(addr), NULL);
	c = plain_connect(addr);
	s = coil_accept(l, NULL, NULL, coil_now());
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(peer_port(s), coil_sock_port(c));
	close(s);
	close(c);
	/* The acceptor: a connection queued already is handed out. */
	ck_assert_int_eq(coil_acceptor_init(&a, l, 0), 0);
	c = plain_connect(addr);
	s = coil_acceptor_accept(&a, COIL_NEVER);
	ck_assert_int_ge(s, 0);
	close(s);
	close(c);
	c = plain_connect(addr);
	let_tasks_park();
	let_tasks_park();
	s = coil_acceptor_accept(&a, coil_now());
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(peer_port(s), coil_sock_port(c));
	ck_assert_int_eq(coil_acceptor_destroy(&a), 0);
	ck_assert_uint_eq(inflight(), 0);
	close(s);
	close(c);
	close(l);
	close(u1);
	close(u2);
	close_pair(fds);
	return 0;
}

START_TEST(test_ops_whose_deadline_has_passed_keep_the_result_that_was_ready)
{
	run(passed_deadline_keeps_results, NULL);
}
END_TEST

/* ----------------------------------------------------- stack buffers */

#define PATTERN 0xa5

enum stack_role {
	ROLE_RECV,       /* TCP */
	ROLE_RECVFROM,   /* UDP: the peer's address lands on the stack too */
	ROLE_RECVMSG,    /* Unix: with room for control data on the stack */
	ROLE_RECV_EXACT, /* TCP, MSG_WAITALL */
	ROLE_SEND,       /* TCP, to a full socket */
	ROLE_SENDMSG,    /* TCP, to a full socket */
	ROLE_SEND_ZC,    /* TCP, to a full socket */
	ROLE_VICTIM,
};

#define STACK_USERS 7

/* What an op may touch: all of it on the stack of the task that issued it. */
struct frame_area {
	unsigned char data[256];
	struct sockaddr_storage name;
	unsigned char control[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov;
	struct msghdr msg;
};

/*
 * One function for every role, so that a victim on a reused stack has its
 * area exactly where the op before it had its own.
 */
struct stack_user {
	enum stack_role role;
	int fd;
	bool cancel;            /* else it times out */
	const bool *written;    /* victim: set once main pushed data through */
	struct frame_area *area;
	ssize_t res;
	bool intact;
};

static int use_the_stack(void *arg)
{
	struct stack_user *u = arg;
	int64_t deadline = u->cancel ? COIL_NEVER : coil_now() + COIL_MSEC(20);
	struct frame_area area;
	socklen_t namelen = sizeof(area.name);
	int i;

	u->area = &area;
	if (u->role == ROLE_VICTIM) {
		memset(&area, PATTERN, sizeof(area));
		while (!*u->written)
			coil_yield();
		/* Each yield is a kernel entry, where a stray op would complete. */
		for (i = 0; i < 3; i++)
			coil_yield();
		u->intact = true;
		for (i = 0; i < (int)sizeof(area); i++)
			u->intact &= ((unsigned char *)&area)[i] == PATTERN;
		return 0;
	}
	memset(&area, 'S', sizeof(area));
	area.iov = (struct iovec){ area.data, sizeof(area.data) };
	area.msg = (struct msghdr){
		.msg_name = &area.name, .msg_namelen = sizeof(area.name),
		.msg_iov = &area.iov, .msg_iovlen = 1,
		.msg_control = area.control, .msg_controllen = sizeof(area.control),
	};
	switch (u->role) {
	case ROLE_RECV:
		u->res = coil_recv(u->fd, area.data, sizeof(area.data), 0, deadline);
		break;
	case ROLE_RECVFROM:
		u->res = coil_recvfrom(u->fd, area.data, sizeof(area.data), 0,
				       (struct sockaddr *)&area.name, &namelen,
				       deadline);
		break;
	case ROLE_RECVMSG:
		u->res = coil_recvmsg(u->fd, &area.msg, 0, deadline);
		break;
	case ROLE_RECV_EXACT:
		u->res = coil_recv_exact(u->fd, area.data, sizeof(area.data), NULL,
					 deadline);
		break;
	case ROLE_SEND:
		u->res = coil_send(u->fd, area.data, sizeof(area.data), MSG_NOSIGNAL,
				   deadline);
		break;
	case ROLE_SENDMSG:
		area.msg.msg_name = NULL;
		area.msg.msg_namelen = 0;
		area.msg.msg_control = NULL;
		area.msg.msg_controllen = 0;
		u->res = coil_sendmsg(u->fd, &area.msg, MSG_NOSIGNAL, deadline);
		break;
	case ROLE_SEND_ZC:
		u->res = coil_send_zc(u->fd, area.data, sizeof(area.data), MSG_NOSIGNAL,
				      deadline);
		break;
	case ROLE_VICTIM:
		break;
	}
	return 0;
}

static bool role_sends(enum stack_role role)
{
	return role == ROLE_SEND || role == ROLE_SENDMSG || role == ROLE_SEND_ZC;
}

static int reuse_stacks_of_interrupted_ops(void *arg)
{
	struct stack_user user[STACK_USERS], victim[STACK_USERS];
	coil_listen_opts udp = { .type = SOCK_DGRAM };
	int fd[STACK_USERS], peer[STACK_USERS];
	size_t filled[STACK_USERS] = { 0 };
	coil_task *t[STACK_USERS];
	struct sockaddr_storage to;
	bool written = false;
	char uaddr[64], buf[256];
	socklen_t tolen;
	int i, j, n = zc_supported() ? STACK_USERS : STACK_USERS - 1;

	(void)arg;
	for (i = 0; i < n; i++) {
		int fds[2];

		if (i == ROLE_RECVFROM) {
			fd[i] = listen_on("127.0.0.1", uaddr, sizeof(uaddr), &udp);
			peer[i] = coil_listen("127.0.0.1:0", &udp);
			ck_assert_int_ge(peer[i], 0);
		} else if (i == ROLE_RECVMSG) {
			unix_pair(fds);
			fd[i] = fds[0];
			peer[i] = fds[1];
		} else {
			tcp_pair(fds);
			fd[i] = fds[0];
			peer[i] = fds[1];
		}
		if (role_sends(i)) {
			shrink_buffers(fds);
			filled[i] = fill(fd[i]);
		}
		/* Half are cancelled, the other half time out. */
		user[i] = (struct stack_user){ .role = i, .fd = fd[i], .cancel = i % 2 };
		ck_assert_int_eq(coil_spawn(&t[i], use_the_stack, &user[i], NULL), 0);
	}
	let_tasks_park();
	ck_assert_uint_eq(inflight(), (uint64_t)n);
	for (i = 0; i < n; i++)
		if (user[i].cancel)
			ck_assert_int_eq(coil_cancel(t[i]), 0);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_msg(user[i].res == (user[i].cancel ? -ECANCELED : -ETIMEDOUT),
			      "role %d returned %zd", i, user[i].res);
	}
	ck_assert_uint_eq(inflight(), 0);

	for (i = 0; i < n; i++) {
		victim[i] = (struct stack_user){ .role = ROLE_VICTIM, .written = &written };
		ck_assert_int_eq(coil_spawn(&t[i], use_the_stack, &victim[i], NULL), 0);
	}
	ck_assert_int_eq(coil_yield(), 0); /* the victims fill their areas */
	for (i = 0; i < n; i++) {
		for (j = 0; j < n && victim[i].area != user[j].area; j++)
			;
		ck_assert_msg(j < n, "victim %d's area is not on an old op's stack", i);
	}
	/* Data for every interrupted receive; room for every interrupted send. */
	memset(buf, 'D', sizeof(buf));
	ck_assert_int_eq(coil_addr_parse(uaddr, &to, &tolen), 0);
	for (i = 0; i < n; i++) {
		if (i == ROLE_RECVFROM)
			ck_assert_int_eq(sendto(peer[i], buf, 100, 0,
						(struct sockaddr *)&to, tolen), 100);
		else if (!role_sends(i))
			ck_assert_int_eq(send(peer[i], buf, sizeof(buf), 0), sizeof(buf));
	}
	for (i = 0; i < n; i++)
		if (role_sends(i))
			drain_exactly(peer[i], filled[i]);
	written = true;
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(join(t[i]), 0);
		ck_assert_msg(victim[i].intact, "victim %d's stack was written", i);
	}
	/* And the data is all still there for ops that are alive. */
	for (i = 0; i < n; i++) {
		if (role_sends(i))
			continue;
		if (i == ROLE_RECVFROM) {
			ck_assert_int_eq(coil_recvfrom(fd[i], buf, sizeof(buf), 0, NULL,
						       NULL, COIL_NEVER), 100);
		} else {
			ck_assert_int_eq(coil_recv_exact(fd[i], buf, sizeof(buf), NULL,
							 COIL_NEVER), 0);
		}
		ck_assert_int_eq(buf[0], 'D');
	}
	for (i = 0; i < n; i++) {
		close(fd[i]);
		close(peer[i]);
	}
	return 0;
}

START_TEST(test_interrupted_socket_ops_never_touch_a_reused_stack)
{
	run(reuse_stacks_of_interrupted_ops, NULL);
}
END_TEST

/* ---------------------------------------------------------- bad input */

/* Every socket call on fd, each expected to fail with err. */
static void all_calls_fail(int fd, int err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[16] = "data";
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	size_t count = 99;

	ck_assert_int_eq(coil_addr_parse("127.0.0.1:9", &ss, &len), 0);
	ck_assert_int_eq(coil_recv(fd, buf, sizeof(buf), 0, COIL_NEVER), err);
	ck_assert_int_eq(coil_send(fd, buf, 4, MSG_NOSIGNAL, COIL_NEVER), err);
	ck_assert_int_eq(coil_recvmsg(fd, &msg, 0, COIL_NEVER), err);
	ck_assert_int_eq(coil_sendmsg(fd, &msg, MSG_NOSIGNAL, COIL_NEVER), err);
	ck_assert_int_eq(coil_recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL,
				       COIL_NEVER), err);
	ck_assert_int_eq(coil_sendto(fd, buf, 4, MSG_NOSIGNAL, (struct sockaddr *)&ss,
				     len, COIL_NEVER), err);
	ck_assert_int_eq(coil_accept(fd, NULL, NULL, COIL_NEVER), err);
	ck_assert_int_eq(coil_connect(fd, (struct sockaddr *)&ss, len, COIL_NEVER), err);
	ck_assert_int_eq(coil_shutdown(fd, SHUT_RDWR, COIL_NEVER), err);
	ck_assert_int_eq(coil_send_all(fd, buf, 4, &count, COIL_NEVER), err);
	ck_assert_uint_eq(count, 0);
	count = 99;
	ck_assert_int_eq(coil_recv_exact(fd, buf, 4, &count, COIL_NEVER), err);
	ck_assert_uint_eq(count, 0);
	if (zc_supported())
		ck_assert_int_eq(coil_send_zc(fd, buf, 4, MSG_NOSIGNAL, COIL_NEVER), err);
	ck_assert_int_eq(coil_sock_port(fd), err);
	ck_assert_uint_eq(inflight(), 0);
}

static int closed_fd_calls(void *arg)
{
	int fd = coil_socket(AF_INET, SOCK_STREAM, 0);

	(void)arg;
	ck_assert_int_ge(fd, 0);
	close(fd);
	all_calls_fail(fd, -EBADF);
	all_calls_fail(-1, -EBADF);
	assert_loop_healthy();
	return 0;
}

START_TEST(test_socket_calls_on_a_closed_fd_return_ebadf_and_the_loop_goes_on)
{
	run(closed_fd_calls, NULL);
}
END_TEST

static int non_socket_calls(void *arg)
{
	coil_recv_stream s;
	coil_buf b;
	int p[2];

	(void)arg;
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	all_calls_fail(p[0], -ENOTSOCK);
	/* A multishot receive on a pipe fails likewise, as the stream's error. */
	ck_assert_int_eq(coil_recv_stream_init(&s, p[0]), 0);
	ck_assert_int_eq(coil_recv_stream_next(&s, &b, COIL_NEVER), -ENOTSOCK);
	ck_assert_int_eq(coil_recv_stream_destroy(&s), 0);
	assert_loop_healthy();
	close(p[0]);
	close(p[1]);
	return 0;
}

START_TEST(test_socket_calls_on_a_pipe_return_enotsock_and_the_loop_goes_on)
{
	run(non_socket_calls, NULL);
}
END_TEST

static int peer_reset(void *arg)
{
	struct recv_once r = { 0 };
	char buf[16], rbuf[16], *line;
	coil_reader reader;
	coil_task *t;
	size_t got = 99;
	int fds[2];

	(void)arg;
	/* The reset is there before the call... */
	tcp_pair(fds);
	reset_close(fds[0]);
	ck_assert_int_eq(coil_recv(fds[1], buf, sizeof(buf), 0, COIL_NEVER), -ECONNRESET);
	close(fds[1]);
	tcp_pair(fds);
	reset_close(fds[0]);
	ck_assert_int_eq(coil_recv_exact(fds[1], buf, sizeof(buf), &got, COIL_NEVER),
			 -ECONNRESET);
	ck_assert_uint_eq(got, 0);
	close(fds[1]);
	tcp_pair(fds);
	reset_close(fds[0]);
	coil_reader_init(&reader, fds[1], rbuf, sizeof(rbuf));
	ck_assert_int_eq(coil_read_line(&reader, &line, COIL_NEVER), -ECONNRESET);
	close(fds[1]);

	/* ...or arrives while a task waits. */
	tcp_pair(fds);
	r.fd = fds[1];
	ck_assert_int_eq(coil_spawn(&t, recv_then_yield, &r, NULL), 0);
	let_tasks_park();
	reset_close(fds[0]);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, -ECONNRESET);
	ck_assert_int_eq(r.next, 0);
	close(fds[1]);
	assert_loop_healthy();
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

START_TEST(test_a_peer_reset_gives_econnreset_and_the_loop_goes_on)
{
	run(peer_reset, NULL);
}
END_TEST

/* Every parking socket call, each expected to return err and start nothing. */
static void all_calls_refused(int fd, int err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[16] = "data", rbuf[16], *line;
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	coil_reader reader;
	size_t count = 99;

	ck_assert_int_eq(coil_addr_parse("127.0.0.1:9", &ss, &len), 0);
	ck_assert_int_eq(coil_recv(fd, buf, sizeof(buf), 0, COIL_NEVER), err);
	ck_assert_int_eq(coil_send(fd, buf, 4, 0, COIL_NEVER), err);
	ck_assert_int_eq(coil_recvmsg(fd, &msg, 0, COIL_NEVER), err);
	ck_assert_int_eq(coil_sendmsg(fd, &msg, 0, COIL_NEVER), err);
	ck_assert_int_eq(coil_recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL,
				       COIL_NEVER), err);
	ck_assert_int_eq(coil_sendto(fd, buf, 4, 0, NULL, 0, COIL_NEVER), err);
	ck_assert_int_eq(coil_send_zc(fd, buf, 4, 0, COIL_NEVER), err);
	ck_assert_int_eq(coil_accept(fd, NULL, NULL, COIL_NEVER), err);
	ck_assert_int_eq(coil_connect(fd, (struct sockaddr *)&ss, len, COIL_NEVER), err);
	ck_assert_int_eq(coil_shutdown(fd, SHUT_WR, COIL_NEVER), err);
	ck_assert_int_eq(coil_send_all(fd, buf, 4, &count, COIL_NEVER), err);
	ck_assert_uint_eq(count, 0);
	count = 99;
	ck_assert_int_eq(coil_recv_exact(fd, buf, 4, &count, COIL_NEVER), err);
	ck_assert_uint_eq(count, 0);
	coil_reader_init(&reader, fd, rbuf, sizeof(rbuf));
	ck_assert_int_eq(coil_read_line(&reader, &line, COIL_NEVER), err);
	ck_assert_uint_eq(coil_reader_buffered(&reader), 0);
}

static void refused_outside(void *arg)
{
	int *fds = arg;
	int before = count_fds();

	all_calls_refused(fds[0], -EPERM);
	/* A dial made its socket before it could not connect: it must close it. */
	ck_assert_int_eq(coil_dial("127.0.0.1:9", COIL_NEVER), -EPERM);
	ck_assert_int_eq(count_fds(), before);
}

static int refused_in_a_callback(void *arg)
{
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(send(fds[1], "kept", 4, 0), 4);
	call_outside_a_task(refused_outside, fds);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);
	/* Nothing was read from the socket, nothing sent to the peer. */
	ck_assert_int_eq(pending(fds[0]), 4);
	ck_assert_int_eq(pending(fds[1]), 0);
	assert_loop_healthy();
	close_pair(fds);
	return 0;
}

START_TEST(test_socket_calls_outside_a_task_return_eperm_and_start_nothing)
{
	int fds[2];

	unix_pair(fds);
	ck_assert_int_eq(write(fds[1], "kept", 4), 4);
	/* No loop at all. */
	refused_outside(fds);
	ck_assert_int_eq(pending(fds[0]), 4);
	close_pair(fds);
	/* A loop, but a timer callback rather than a task. */
	run(refused_in_a_callback, NULL);
}
END_TEST

static int refused_when_cancelled(void *arg)
{
	int *fds = arg;

	ck_assert_int_eq(coil_cancel(coil_current()), 0);
	all_calls_refused(fds[0], -ECANCELED);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);
	return 0;
}

static int cancelled_task_calls(void *arg)
{
	coil_task *t;
	int fds[2];

	(void)arg;
	tcp_pair(fds);
	ck_assert_int_eq(send(fds[1], "kept", 4, 0), 4);
	ck_assert_int_eq(coil_spawn(&t, refused_when_cancelled, fds, NULL), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(pending(fds[0]), 4);
	ck_assert_int_eq(pending(fds[1]), 0);
	assert_loop_healthy();
	close_pair(fds);
	return 0;
}

START_TEST(test_socket_calls_in_a_cancelled_task_return_ecanceled_and_start_nothing)
{
	run(cancelled_task_calls, NULL);
}
END_TEST

/* -------------------------------------------------------------- scale */

#define CONNS 1000
#define ECHO_LEN MIB
#define ECHO_BUF (32 * KIB)
#define TABLE_LEN (2 * MIB)

/*
 * Connection i sends table[start(i) ..][0 .. ECHO_LEN): random bytes at an
 * offset of its own, so that a byte out of place, from another connection
 * or lost, does not match.
 */
struct scale {
	unsigned char *table;
	char addr[64];
	int listener;
	coil_task *servers[CONNS];
	int server_fds[CONNS];
	int done;
};

struct client {
	struct scale *sc;
	unsigned i;
	int fd;
	int sent;
	size_t got;
};

static const unsigned char *conn_data(const struct scale *sc, unsigned i)
{
	return sc->table + (size_t)i * 1031 % (TABLE_LEN - ECHO_LEN);
}

static int echo_server(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char *buf = malloc(ECHO_BUF);
	ssize_t n;

	CHECK(buf, "no memory");
	while ((n = coil_recv(fd, buf, ECHO_BUF, 0, COIL_NEVER)) > 0)
		CHECK(coil_send_all(fd, buf, (size_t)n, NULL, COIL_NEVER) == 0,
		      "server: send_all failed");
	CHECK(n == 0, "server: recv: %zd", n);
	free(buf);
	close(fd);
	return 0;
}

static int accept_all(void *arg)
{
	struct scale *sc = arg;

	for (int i = 0; i < CONNS; i++) {
		int fd = coil_accept(sc->listener, NULL, NULL, COIL_NEVER);

		CHECK(fd >= 0, "accept %d: %d", i, fd);
		CHECK(coil_spawn(&sc->servers[i], echo_server, (void *)(intptr_t)fd,
				 NULL) == 0, "spawn server %d", i);
	}
	return 0;
}

static int client_send(void *arg)
{
	struct client *c = arg;

	c->sent = coil_send_all(c->fd, conn_data(c->sc, c->i), ECHO_LEN, NULL,
				COIL_NEVER);
	if (c->sent == 0)
		c->sent = coil_shutdown(c->fd, SHUT_WR, COIL_NEVER);
	return 0;
}

/* Sends in one task and receives in this one, so neither side stalls the other. */
static int echo_client(void *arg)
{
	struct client *c = arg;
	const unsigned char *want;
	unsigned char *buf = malloc(ECHO_BUF);
	coil_task *sender;
	ssize_t n;

	CHECK(buf, "no memory");
	c->fd = coil_dial(c->sc->addr, COIL_NEVER);
	CHECK(c->fd >= 0, "client %u: dial: %d", c->i, c->fd);
	want = conn_data(c->sc, c->i);
	CHECK(coil_spawn(&sender, client_send, c, NULL) == 0, "spawn sender");
	while ((n = coil_recv(c->fd, buf, ECHO_BUF, 0, COIL_NEVER)) > 0) {
		CHECK(c->got + (size_t)n <= ECHO_LEN, "client %u: too much", c->i);
		CHECK(!memcmp(buf, want + c->got, (size_t)n),
		      "client %u: bytes %zu..%zu differ", c->i, c->got,
		      c->got + (size_t)n);
		c->got += (size_t)n;
	}
	CHECK(n == 0, "client %u: recv: %zd", c->i, n);
	CHECK(c->got == ECHO_LEN, "client %u: %zu bytes back", c->i, c->got);
	CHECK(join(sender) == 0 && c->sent == 0, "client %u: send: %d", c->i, c->sent);
	close(c->fd);
	free(buf);
	c->sc->done++;
	return 0;
}

static int thousand_echoes(void *arg)
{
	struct scale *sc = arg;
	struct client *clients = calloc(CONNS, sizeof(*clients));
	coil_task **ct = calloc(CONNS, sizeof(*ct));
	coil_task *acceptor;
	int64_t start = coil_now();

	ck_assert_ptr_nonnull(clients);
	ck_assert_ptr_nonnull(ct);
	sc->listener = listen_on("127.0.0.1", sc->addr, sizeof(sc->addr), NULL);
	ck_assert_int_eq(coil_spawn(&acceptor, accept_all, sc, NULL), 0);
	for (unsigned i = 0; i < CONNS; i++) {
		clients[i] = (struct client){ .sc = sc, .i = i, .fd = -1 };
		ck_assert_int_eq(coil_spawn(&ct[i], echo_client, &clients[i], NULL), 0);
	}
	ck_assert_int_eq(join(acceptor), 0);
	for (unsigned i = 0; i < CONNS; i++)
		ck_assert_int_eq(join(ct[i]), 0);
	for (unsigned i = 0; i < CONNS; i++)
		ck_assert_int_eq(join(sc->servers[i]), 0);
	ck_assert_int_eq(sc->done, CONNS);
	ck_assert_uint_eq(inflight(), 0);
	fprintf(stderr, "%d connections echoed %d MiB each in %.2f s\n", CONNS,
		ECHO_LEN / MIB, (double)(coil_now() - start) / 1e9);
	close(sc->listener);
	free(clients);
	free(ct);
	return 0;
}

START_TEST(test_a_thousand_connections_each_echo_a_mebibyte_on_one_loop)
{
	coil_loop_opts opts = { .stack_size = 32 * KIB };
	struct scale *sc = calloc(1, sizeof(*sc));
	struct rlimit rl;
	int status = -1;

	ck_assert_ptr_nonnull(sc);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	SKIP_UNLESS(rl.rlim_cur >= 2 * CONNS + 100, "RLIMIT_NOFILE too low");
	sc->table = malloc(TABLE_LEN);
	ck_assert_ptr_nonnull(sc->table);
	seed(42);
	for (size_t i = 0; i < TABLE_LEN; i += 8) {
		uint64_t r = rnd();

		memcpy(sc->table + i, &r, 8);
	}
	ck_assert_int_eq(coil_run_with(thousand_echoes, sc, &status, &opts), 0);
	ck_assert_int_eq(status, 0);
	free(sc->table);
	free(sc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_net");

	/* addresses and listeners */
	ADD_TEST(s, test_addr_parse_accepts_every_documented_form, 10);
	ADD_TEST(s, test_addr_parse_rejects_malformed_addresses_with_einval, 10);
	ADD_TEST(s, test_a_tcp_listener_on_port_0_gets_a_port_and_so_reuseaddr, 10);
	ADD_TEST(s, test_a_datagram_socket_is_bound_without_listening_or_so_reuseaddr, 10);
	ADD_TEST(s, test_two_sockets_share_a_port_only_with_reuseport, 10);
	ADD_TEST(s, test_coil_listen_rejects_bad_opts_and_addresses_without_leaking_an_fd, 10);
	ADD_TEST(s, test_a_unix_listener_on_a_path_and_an_abstract_name_accepts_a_dial, 10);
	/* connections and transfers */
	ADD_TEST(s, test_dial_sets_tcp_nodelay_and_accept_fills_the_peer_address_ipv4, 10);
	ADD_TEST(s, test_dial_sets_tcp_nodelay_and_accept_fills_the_peer_address_ipv6, 10);
	ADD_TEST(s, test_a_dial_to_a_closed_port_is_refused_and_leaves_no_fd_open, 10);
	ADD_TEST(s, test_coil_connect_connects_a_socket_made_by_coil_socket, 10);
	ADD_TEST(s, test_send_and_recv_move_bytes_both_ways_with_their_flags, 10);
	ADD_TEST(s, test_sendmsg_and_recvmsg_pass_an_fd_over_a_unix_socketpair, 10);
	ADD_TEST(s, test_sendto_and_recvfrom_carry_udp_datagrams_and_addresses_ipv4, 10);
	ADD_TEST(s, test_sendto_and_recvfrom_carry_udp_datagrams_and_addresses_ipv6, 10);
	ADD_TEST(s, test_send_zc_moves_a_mebibyte_intact_over_tcp, 30);
	ADD_TEST(s, test_send_all_and_recv_exact_complete_over_short_transfers, 60);
	ADD_TEST(s, test_send_all_reports_what_went_when_its_deadline_passes, 30);
	ADD_TEST(s, test_recv_exact_reports_what_came_when_its_deadline_passes, 10);
	ADD_TEST(s, test_recv_exact_returns_epipe_with_the_count_when_the_peer_closes_early, 10);
	ADD_TEST(s, test_send_all_to_a_closed_peer_returns_epipe_not_sigpipe, 10);
	ADD_TEST(s, test_shutdown_gives_the_peer_eof_and_leaves_the_other_direction_open, 10);
	ADD_TEST(s, test_coil_close_outside_a_task_is_a_plain_close, 10);
	ADD_TEST(s, test_coil_close_in_a_cancelled_task_really_closes_the_fd, 10);
	/* buffered reader */
	ADD_TEST(s, test_a_reader_returns_lines_one_at_a_time, 10);
	ADD_TEST(s, test_a_reader_splits_on_a_custom_delimiter, 10);
	ADD_TEST(s, test_a_reader_assembles_a_line_split_over_many_small_writes, 10);
	ADD_TEST(s, test_a_reader_moves_a_partial_line_to_the_front_to_finish_it, 10);
	ADD_TEST(s, test_a_reader_returns_a_last_line_without_delimiter_at_eof_then_0, 10);
	ADD_TEST(s, test_a_reader_fails_with_emsgsize_when_a_line_outgrows_its_buffer, 10);
	ADD_TEST(s, test_a_reader_read_mixes_buffered_and_direct_reads_in_stream_order, 10);
	ADD_TEST(s, test_a_reader_keeps_a_partial_line_across_a_deadline_and_passes_errors_on, 10);
	/* acceptor */
	ADD_TEST(s, test_an_acceptor_hands_out_connections_in_arrival_order, 10);
	ADD_TEST(s, test_an_acceptor_holding_its_backlog_leaves_new_connections_in_the_listen_queue,
		 10);
	ADD_TEST(s, test_an_acceptor_queues_bursts_far_past_its_backlog_in_order_and_drops_none,
		 10);
	ADD_TEST(s, test_an_acceptor_refuses_a_backlog_over_4096_and_use_outside_a_task, 10);
	ADD_TEST(s, test_an_acceptor_deadline_loses_no_connection, 10);
	ADD_TEST(s, test_a_connection_accepted_as_the_acceptor_wait_times_out_is_kept_for_the_next_call,
		 10);
	ADD_TEST(s, test_a_cancelled_acceptor_wait_loses_no_connection, 10);
	ADD_TEST(s, test_a_second_task_waiting_on_an_acceptor_gets_ebusy, 10);
	ADD_TEST(s, test_destroying_an_acceptor_closes_queued_connections_and_leaves_nothing_in_flight,
		 10);
	ADD_TEST(s, test_an_acceptor_reports_an_accept_error_once_and_goes_on, 10);
	/* recv stream */
	ADD_TEST(s, test_a_recv_stream_delivers_a_mebibyte_in_order_through_a_ring_that_runs_dry,
		 60);
	ADD_TEST(s, test_a_recv_stream_returns_0_after_all_the_data_at_eof, 10);
	ADD_TEST(s, test_a_recv_stream_reports_a_peer_reset_as_econnreset, 10);
	ADD_TEST(s, test_a_recv_stream_deadline_loses_nothing, 10);
	ADD_TEST(s, test_data_received_as_the_recv_stream_wait_times_out_is_kept_for_the_next_call,
		 10);
	ADD_TEST(s, test_a_cancelled_recv_stream_wait_loses_nothing, 10);
	ADD_TEST(s, test_two_recv_streams_sharing_a_starved_ring_both_make_progress, 30);
	ADD_TEST(s, test_destroying_a_recv_stream_gives_back_its_buffers_and_leaves_nothing_in_flight,
		 10);
	ADD_TEST(s, test_releasing_a_buffer_twice_is_harmless, 10);
	ADD_TEST(s, test_a_recv_stream_whose_buffers_came_back_before_its_enobufs_rearms_at_once,
		 10);
	ADD_TEST(s, test_a_recv_stream_used_outside_a_task_returns_eperm, 10);
	ADD_TEST(s, test_a_second_task_waiting_on_a_recv_stream_gets_ebusy, 10);
	ADD_TEST(s, test_the_loops_buffer_ring_takes_its_size_from_the_options, 10);
	/* cancels and deadlines */
	ADD_TEST(s, test_a_recv_cancelled_in_flight_returns_ecanceled_after_its_cqe, 10);
	ADD_TEST(s, test_a_recvmsg_cancelled_in_flight_returns_ecanceled_after_its_cqe, 10);
	ADD_TEST(s, test_a_recvfrom_cancelled_in_flight_returns_ecanceled_after_its_cqe, 10);
	ADD_TEST(s, test_a_recv_exact_cancelled_in_flight_returns_ecanceled_after_its_cqe, 10);
	ADD_TEST(s, test_a_read_line_cancelled_in_flight_returns_ecanceled_after_its_cqe, 10);
	ADD_TEST(s, test_an_accept_cancelled_in_flight_returns_ecanceled_after_its_cqe, 10);
	ADD_TEST(s, test_an_acceptor_wait_cancelled_returns_ecanceled_and_keeps_accepting, 10);
	ADD_TEST(s, test_a_recv_stream_wait_cancelled_returns_ecanceled_and_keeps_receiving, 10);
	ADD_TEST(s, test_a_send_to_a_full_socket_cancelled_in_flight_returns_ecanceled_after_its_cqe,
		 10);
	ADD_TEST(s, test_a_sendmsg_to_a_full_socket_cancelled_in_flight_returns_ecanceled_after_its_cqe,
		 10);
	ADD_TEST(s, test_a_send_zc_to_a_full_socket_cancelled_in_flight_returns_ecanceled_after_its_cqes,
		 10);
	ADD_TEST(s, test_a_send_all_to_a_full_socket_cancelled_returns_ecanceled_with_nothing_sent,
		 10);
	ADD_TEST(s, test_a_dial_cancelled_in_flight_returns_ecanceled_and_leaves_no_fd, 10);
	ADD_TEST(s, test_a_recv_times_out_at_its_deadline_after_its_cqe, 10);
	ADD_TEST(s, test_a_recvmsg_times_out_at_its_deadline_after_its_cqe, 10);
	ADD_TEST(s, test_a_recvfrom_times_out_at_its_deadline_after_its_cqe, 10);
	ADD_TEST(s, test_a_recv_exact_times_out_at_its_deadline_after_its_cqe, 10);
	ADD_TEST(s, test_a_read_line_times_out_at_its_deadline_after_its_cqe, 10);
	ADD_TEST(s, test_an_accept_times_out_at_its_deadline_after_its_cqe, 10);
	ADD_TEST(s, test_an_acceptor_wait_times_out_at_its_deadline_and_keeps_accepting, 10);
	ADD_TEST(s, test_a_recv_stream_wait_times_out_at_its_deadline_and_keeps_receiving, 10);
	ADD_TEST(s, test_a_send_to_a_full_socket_times_out_at_its_deadline_after_its_cqe, 10);
	ADD_TEST(s, test_a_sendmsg_to_a_full_socket_times_out_at_its_deadline_after_its_cqe, 10);
	ADD_TEST(s, test_a_send_zc_to_a_full_socket_times_out_at_its_deadline_after_its_cqes, 10);
	ADD_TEST(s, test_a_send_all_to_a_full_socket_times_out_with_nothing_sent, 10);
	ADD_TEST(s, test_a_dial_times_out_at_its_deadline_and_leaves_no_fd, 10);
	/* completions racing interrupts */
	ADD_TEST(s, test_a_recv_completed_before_its_cancel_keeps_the_data_and_the_next_park_is_ecanceled,
		 10);
	ADD_TEST(s, test_a_recv_submitted_with_its_cancel_keeps_the_data_already_there, 10);
	ADD_TEST(s, test_an_accept_completed_before_its_cancel_keeps_the_connection, 10);
	ADD_TEST(s, test_a_recv_stream_wait_woken_before_its_cancel_keeps_the_data, 10);
	ADD_TEST(s, test_an_acceptor_wait_woken_before_its_cancel_keeps_the_connection, 10);
	ADD_TEST(s, test_a_recv_whose_data_arrives_as_its_deadline_fires_loses_nothing, 10);
	ADD_TEST(s, test_a_cancelled_waitall_recv_returns_the_bytes_it_had_received, 10);
	ADD_TEST(s, test_a_cancelled_recv_exact_counts_the_bytes_of_its_partial_receive, 10);
	ADD_TEST(s, test_ops_whose_deadline_has_passed_keep_the_result_that_was_ready, 10);
	/* stack buffers */
	ADD_TEST(s, test_interrupted_socket_ops_never_touch_a_reused_stack, 10);
	/* bad input */
	ADD_TEST(s, test_socket_calls_on_a_closed_fd_return_ebadf_and_the_loop_goes_on, 10);
	ADD_TEST(s, test_socket_calls_on_a_pipe_return_enotsock_and_the_loop_goes_on, 10);
	ADD_TEST(s, test_a_peer_reset_gives_econnreset_and_the_loop_goes_on, 10);
	ADD_TEST(s, test_socket_calls_outside_a_task_return_eperm_and_start_nothing, 10);
	ADD_TEST(s, test_socket_calls_in_a_cancelled_task_return_ecanceled_and_start_nothing, 10);
	/* scale */
	ADD_TEST(s, test_a_thousand_connections_each_echo_a_mebibyte_on_one_loop, 180);
	return test_main(s);
}
