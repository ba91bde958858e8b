/*
 * Echo server on libuv, written the way libuv's users write one: uv_tcp,
 * uv_read_start, and uv_try_write with uv_write for what does not go out
 * at once.
 *
 *   echo_libuv --port N
 *
 * Runs until SIGTERM or SIGINT, then exits 0. Built without libuv (no
 * libuv1-dev), it only says so and exits 2.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef COIL_BENCH_LIBUV
#include <uv.h>

/* Stop reading while this much is queued for a client that does not read. */
#define MAX_QUEUED	(1 << 20)

struct conn {
	uv_tcp_t tcp;
	bool paused;		/* reading stopped until the queue drains */
	char buf[65536];	/* every read lands here; it is reused at once */
};

/* A write that did not complete at once, with its own copy of the bytes. */
struct pending {
	uv_write_t req;
	uv_buf_t buf;
	char data[];
};

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_signal_t sigterm, sigint;

static void on_close(uv_handle_t *h)
{
	free(h);	/* the uv_tcp_t is the first member of struct conn */
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = (struct conn *)h;

	(void)suggested;
	*buf = uv_buf_init(c->buf, sizeof(c->buf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
	struct pending *p = (struct pending *)req;
	uv_stream_t *s = req->handle;
	struct conn *c = (struct conn *)s;

	free(p);
	if (status < 0 || uv_is_closing((uv_handle_t *)s))
		return;	/* the read side sees the error and closes */
	if (c->paused && s->write_queue_size < MAX_QUEUED) {
		c->paused = false;
		uv_read_start(s, on_alloc, on_read);
	}
}

/* Queue what uv_try_write left; copied, as c->buf takes the next read. */
static int write_rest(uv_stream_t *s, const char *data, size_t len)
{
	struct pending *p = malloc(sizeof(*p) + len);

	if (!p)
		return UV_ENOMEM;
	memcpy(p->data, data, len);
	p->buf = uv_buf_init(p->data, len);
	if (uv_write(&p->req, s, &p->buf, 1, on_write) < 0) {
		free(p);
		return -1;
	}
	if (s->write_queue_size >= MAX_QUEUED) {
		((struct conn *)s)->paused = true;
		uv_read_stop(s);
	}
	return 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	uv_buf_t data;
	int w;

	if (n == 0)
		return;	/* EAGAIN */
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	/* buf spans all of c->buf; n bytes of it are data. */
	data = uv_buf_init(buf->base, n);
	/* Fails with UV_EAGAIN while earlier writes are queued: order holds. */
	w = uv_try_write(s, &data, 1);
	if (w == UV_EAGAIN)
		w = 0;
	if (w < 0 || (w < n && write_rest(s, buf->base + w, n - w) < 0))
		uv_close((uv_handle_t *)s, on_close);
}

static void on_connection(uv_stream_t *srv, int status)
{
	struct conn *c;

	if (status < 0) {
		fprintf(stderr, "echo_libuv: accept: %s\n", uv_strerror(status));
		return;
	}
	c = malloc(sizeof(*c));
	if (!c)
		return;
	c->paused = false;
	uv_tcp_init(loop, &c->tcp);
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, on_close);
		return;
	}
	/* Echoes are small and latency-bound: never wait to coalesce. */
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	uv_stop(loop);
}

static int listen_on(int port)
{
	struct sockaddr_in addr;
	int ret;

	uv_ip4_addr("127.0.0.1", port, &addr);
	uv_tcp_init(loop, &server);
	ret = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&server, 4096, on_connection);
	if (ret) {
		fprintf(stderr, "echo_libuv: listen on 127.0.0.1:%d: %s\n", port,
			uv_strerror(ret));
		return -1;
	}
	return 0;
}

static int serve(int port)
{
	loop = uv_default_loop();
	uv_signal_init(loop, &sigterm);
	uv_signal_init(loop, &sigint);
	if (uv_signal_start(&sigterm, on_signal, SIGTERM) ||
	    uv_signal_start(&sigint, on_signal, SIGINT)) {
		fprintf(stderr, "echo_libuv: cannot catch SIGTERM and SIGINT\n");
		return 1;
	}
	if (listen_on(port))
		return 1;
	uv_run(loop, UV_RUN_DEFAULT);
	return 0;
}
#endif

static int parse_port(int argc, char **argv)
{
	char *end;
	long port;

	if (argc == 2 && !strcmp(argv[1], "--help")) {
		printf("usage: echo_libuv --port N\n"
		       "Echo server on libuv, listening on 127.0.0.1:N until "
		       "SIGTERM or SIGINT.\n");
		exit(0);
	}
	if (argc != 3 || strcmp(argv[1], "--port")) {
		fprintf(stderr, "usage: echo_libuv --port N\n");
		exit(2);
	}
	port = strtol(argv[2], &end, 10);
	if (*end || port < 1 || port > 65535) {
		fprintf(stderr, "echo_libuv: bad port '%s'\n", argv[2]);
		exit(2);
	}
	return port;
}

int main(int argc, char **argv)
{
	int port = parse_port(argc, argv);

#ifdef COIL_BENCH_LIBUV
	return serve(port);
#else
	fprintf(stderr, "echo_libuv: built without libuv (libuv1-dev was not "
		"found); cannot serve port %d\n", port);
	return 2;
#endif
}
