/*
 * httpd: a small HTTP/1.1 server on coil.
 *
 *	httpd --port 8080 [--root DIR] [--address HOST] [--timeout SECONDS]
 *
 * One task per connection, spawned detached by the accept loop. A task
 * answers every complete request of what it received, in order, into one
 * buffer that leaves in one send: a client that pipelines costs one recv
 * and one send per batch. Without --root, GET / is a fixed page; with it,
 * the files under DIR are served, and the kernel makes sure no path leaves
 * DIR. SIGINT and SIGTERM stop it: a task reading a signalfd cancels the
 * accept loop, which then cancels the connections.
 */
#include <coil.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define HEAD_MAX	8192		/* a request head must fit, else 431 */
#define OUT_SIZE	32768		/* answers batched into one send */
#define ANSWER_MAX	512		/* room for an answer's head or text */
#define LINGER		COIL_SEC(1)	/* for a client to read a last answer */
#define GRACE		COIL_SEC(1)	/* for connections to end on a signal */

struct request {
	int status;		/* nonzero: answer with this error */
	bool head;		/* HEAD: the answer to GET without its body */
	bool http10;
	bool keep_alive;	/* the connection stays open after the answer */
	bool has_host;
	bool has_body;		/* we never read one */
	const char *path;	/* the target up to '?', percent-encoded */
	size_t path_len;
};

/* A connection lives on its task's stack: nothing is allocated per client. */
struct conn {
	struct conn *prev, *next;	/* live ones, to cancel on a signal */
	coil_task *task;
	int fd;
	size_t in_len, out_len;
	char in[HEAD_MAX];
	char out[OUT_SIZE];
};

static int64_t timeout = COIL_SEC(30);	/* for each read, send or open */
static int root_fd = -1;		/* --root, O_PATH; -1: the fixed page */
static struct conn *conns;
static char date[64];			/* "Date: ...\r\n", once a second */
static time_t date_time;
static int64_t date_checked;		/* loop time of the last clock look */
/* The keep-alive answer to GET /, whole: it changes with the date only. */
static char fixed[ANSWER_MAX];
static size_t fixed_len;
static time_t fixed_time;		/* the date_time it was made with */

/* ---- answers */

static void put(struct conn *c, const char *s)
{
	size_t n = strlen(s); /* folded for literals, as it is inlined */

	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "200 OK";
	case 400: return "400 Bad Request";
	case 403: return "403 Forbidden";
	case 404: return "404 Not Found";
	case 405: return "405 Method Not Allowed";
	case 414: return "414 URI Too Long";
	case 431: return "431 Request Header Fields Too Large";
	case 505: return "505 HTTP Version Not Supported";
	default: return "500 Internal Server Error";
	}
}

/*
 * The Date line, renewed when the second changes. The wall clock is looked
 * at once per 50 ms of loop time, not for every answer: Date may lag that
 * much.
 */
static void update_date(void)
{
	int64_t now_loop = coil_loop_now();
	time_t now;
	struct tm tm;

	if (now_loop - date_checked < COIL_MSEC(50) && date_time)
		return;
	date_checked = now_loop;
	now = time(NULL);
	if (now == date_time)
		return;
	date_time = now;
	strftime(date, sizeof(date), "Date: %a, %d %b %Y %T GMT\r\n",
		 gmtime_r(&now, &tm));
}

static void put_head(struct conn *c, const struct request *req, int status,
		     const char *type, uint64_t len)
{
	char num[24], *p = num + sizeof(num);

	update_date();
	*--p = '\0';
	do
		*--p = (char)('0' + len % 10);
	while (len /= 10);

	put(c, "HTTP/1.1 ");
	put(c, reason(status));
	put(c, "\r\nServer: coil\r\n");
	put(c, date);
	put(c, "Content-Type: ");
	put(c, type);
	put(c, "\r\nContent-Length: ");
	put(c, p);
	if (status == 405)
		put(c, "\r\nAllow: GET, HEAD");
	if (!req->keep_alive)
		put(c, "\r\nConnection: close");
	else if (req->http10)
		put(c, "\r\nConnection: keep-alive");
	put(c, "\r\n\r\n");
}

/* The fixed page, or an error whose text is its status line. */
static void put_text(struct conn *c, const struct request *req, int status)
{
	const char *text = status == 200 ? "hello from coil" : reason(status);

	put_head(c, req, status, "text/plain", strlen(text) + 1);
	if (!req->head) {
		put(c, text);
		put(c, "\n");
	}
}

/* The fixed page for a keep-alive HTTP/1.1 GET: the most common answer. */
static void put_fixed(struct conn *c, const struct request *req)
{
	size_t start = c->out_len;

	update_date();
	if (!fixed_len || fixed_time != date_time) {
		/* Made in c's buffer like any answer, then kept for the others. */
		put_text(c, req, 200);
		fixed_len = c->out_len - start;
		fixed_time = date_time;
		memcpy(fixed, c->out + start, fixed_len);
		return;
	}
	memcpy(c->out + start, fixed, fixed_len);
	c->out_len += fixed_len;
}

static int flush(struct conn *c)
{
	int ret = coil_send_all(c->fd, c->out, c->out_len, NULL,
				coil_loop_now() + timeout);

	c->out_len = 0;
	return ret;
}

/* ---- requests */

static bool is(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && !strncasecmp(s, word, len);
}

/* "METHOD /target HTTP/1.x". Returns 0 or the status to answer with. */
static int parse_request_line(struct request *req, const char *line,
			      size_t len)
{
	const char *sp1 = memchr(line, ' ', len), *end = line + len, *q;
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', end - sp1 - 1) : NULL;

	/* Without a version it is HTTP/0.9; without a '/' not a path. */
	if (!sp2 || sp1 == line || sp1[1] != '/' || end - sp2 != 9 ||
	    memcmp(sp2 + 1, "HTTP/", 5))
		return 400;
	if (memcmp(sp2 + 6, "1.1", 3) && memcmp(sp2 + 6, "1.0", 3))
		return 505;
	req->http10 = sp2[8] == '0';
	req->keep_alive = !req->http10;
	req->path = sp1 + 1;
	q = memchr(req->path, '?', sp2 - req->path);
	req->path_len = (q ? q : sp2) - req->path;

	for (const char *p = line; p < sp1; p++)
		if (*p < 'A' || *p > 'Z')
			return 400;
	req->head = sp1 - line == 4 && !memcmp(line, "HEAD", 4);
	if (!req->head && !(sp1 - line == 3 && !memcmp(line, "GET", 3)))
		return 405;
	return 0;
}

/* "Name: value". Returns 0 or 400. Only a few headers matter here. */
static int parse_header(struct request *req, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len), *v, *end = line + len;
	size_t n;

	/* A leading space is the obsolete line folding: refuse it. */
	if (!colon || colon == line || *line == ' ' || *line == '\t')
		return 400;
	n = colon - line;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (is(line, n, "host"))
		req->has_host = true;
	else if (is(line, n, "connection") && is(v, end - v, "close"))
		req->keep_alive = false;
	else if (is(line, n, "connection") && is(v, end - v, "keep-alive"))
		req->keep_alive = true;
	else if (is(line, n, "transfer-encoding") ||
		 (is(line, n, "content-length") && !is(v, end - v, "0")))
		req->has_body = true;
	return 0;
}

/*
 * Parse the request head at the start of buf. Returns its length, or 0 when
 * it is not complete yet. A malformed head sets req->status and returns len:
 * the connection closes after the answer, so where the request ends does
 * not matter. Lines end in "\r\n", or in "\n" alone, as RFC 9112 allows.
 */
static size_t parse_request(struct request *req, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len, *nl;
	bool first = true;

	*req = (struct request){ 0 };
	for (; (nl = memchr(p, '\n', end - p)); p = nl + 1) {
		size_t n = nl - p - (nl > p && nl[-1] == '\r');

		if (first && n == 0)
			continue; /* empty lines before a request are allowed */
		if (first) {
			req->status = parse_request_line(req, p, n);
			if (req->status == 400 || req->status == 505)
				goto malformed;
			first = false;
		} else if (n == 0) {
			if (!req->http10 && !req->has_host)
				goto malformed; /* HTTP/1.1 requires it */
			if (req->has_body)
				req->keep_alive = false;
			return nl + 1 - buf;
		} else if (parse_header(req, p, n)) {
			goto malformed;
		}
	}
	return 0;
malformed:
	req->status = req->status == 505 ? 505 : 400;
	req->keep_alive = false;
	return len;
}

/* ---- files */

static int hex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/*
 * Percent-decode the target into a path relative to the root ("/" is ".").
 * The kernel checks the decoded path, so "%2e%2e" is refused as ".." is.
 * Returns 0, or 400 for a bad escape or an encoded NUL (it would cut the
 * path short), or 414 when it does not fit.
 */
static int decode_path(const struct request *req, char *out, size_t size)
{
	const char *s = req->path, *end = s + req->path_len;
	size_t n = 0;

	while (s < end && *s == '/')
		s++;
	for (; s < end; s++) {
		int ch = *s;

		if (ch == '%') {
			if (end - s < 3 || hex(s[1]) < 0 || hex(s[2]) < 0)
				return 400;
			ch = hex(s[1]) << 4 | hex(s[2]);
			s += 2;
		}
		if (ch == 0)
			return 400;
		if (n + sizeof("/index.html") >= size)
			return 414; /* with room left for a directory's index */
		out[n++] = (char)ch;
	}
	if (n == 0)
		out[n++] = '.';
	out[n] = '\0';
	return 0;
}

/*
 * Open a file beneath the root, leaving the checks to the kernel:
 * RESOLVE_BENEATH refuses "..", absolute paths and symlinks that lead out of
 * the root (-EXDEV), RESOLVE_NO_MAGICLINKS the /proc links that jump
 * anywhere. O_NONBLOCK keeps a FIFO from holding the open until a writer
 * comes. coil has no call for openat2: await it as any io_uring operation.
 */
static int open_beneath(const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	coil_io io;

	io_uring_prep_openat2(coil_io_prep(&io), root_fd, path, &how);
	return coil_io_await(&io, coil_loop_now() + timeout);
}

/* Returns the fd with *st filled in, -EISDIR, -EACCES (not a regular file). */
static int open_regular(const char *path, struct statx *st)
{
	int fd = open_beneath(path);
	int ret;

	if (fd < 0)
		return fd;
	ret = coil_statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, st,
			 coil_loop_now() + timeout);
	if (ret == 0 && S_ISREG(st->stx_mode))
		return fd;
	coil_close(fd);
	if (ret < 0)
		return ret;
	return S_ISDIR(st->stx_mode) ? -EISDIR : -EACCES;
}

static int error_status(int err)
{
	if (err == -ENOENT || err == -ENOTDIR)
		return 404;
	if (err == -ENAMETOOLONG)
		return 414;
	/* -EXDEV is a path out of the root; -ELOOP a link to refuse. */
	if (err == -EXDEV || err == -ELOOP || err == -EACCES ||
	    err == -EPERM || err == -EISDIR)
		return 403;
	return 500;
}

static const char *content_type(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (dot && !strcmp(dot, ".html"))
		return "text/html; charset=utf-8";
	if (dot && !strcmp(dot, ".txt"))
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

/*
 * The head, then the body read into the free part of the answer buffer: a
 * small file leaves with its head, and the answers around it, in one send.
 */
static int send_file(struct conn *c, const struct request *req, int fd,
		     const char *path, uint64_t size)
{
	uint64_t off = 0;

	put_head(c, req, 200, content_type(path), size);
	while (!req->head && off < size) {
		size_t room = OUT_SIZE - c->out_len;
		ssize_t n;

		if (room == 0) {
			n = flush(c);
			if (n < 0)
				return (int)n;
			room = OUT_SIZE;
		}
		if (room > size - off)
			room = size - off;
		n = coil_read(fd, c->out + c->out_len, room, (int64_t)off,
			      coil_loop_now() + timeout);
		if (n <= 0) /* shrunk: our Content-Length cannot be kept */
			return n < 0 ? (int)n : -EIO;
		c->out_len += n;
		off += n;
	}
	return 0;
}

static int serve_file(struct conn *c, const struct request *req)
{
	char path[PATH_MAX];
	struct statx st;
	int fd, ret = decode_path(req, path, sizeof(path));

	if (ret) {
		put_text(c, req, ret);
		return 0;
	}
	fd = open_regular(path, &st);
	if (fd == -EISDIR) {
		bool top = !strcmp(path, ".");

		strcat(path, "/index.html"); /* decode_path left room */
		fd = open_regular(path, &st);
		if (fd == -ENOENT) {
			/* The root shows the page; we list no directory. */
			put_text(c, req, top ? 200 : 403);
			return 0;
		}
	}
	if (fd < 0) {
		put_text(c, req, error_status(fd));
		return 0;
	}
	ret = send_file(c, req, fd, path, st.stx_size);
	coil_close(fd);
	return ret;
}

/* ---- connections */

static int answer(struct conn *c, const struct request *req)
{
	if (OUT_SIZE - c->out_len < ANSWER_MAX) {
		int ret = flush(c);

		if (ret < 0)
			return ret;
	}
	if (req->status)
		put_text(c, req, req->status);
	else if (root_fd >= 0)
		return serve_file(c, req);
	else if (req->path_len == 1 && req->keep_alive && !req->http10 &&
		 !req->head)
		put_fixed(c, req);
	else
		put_text(c, req, req->path_len == 1 ? 200 : 404);
	return 0;
}

/*
 * Answer the complete requests received, in order, and keep the start of
 * an incomplete one. Returns 1 to go on, 0 when an answer closes the
 * connection, or a negative errno.
 */
static int answer_all(struct conn *c)
{
	struct request req;
	size_t used = 0, n;
	int ret;

	while ((n = parse_request(&req, c->in + used, c->in_len - used))) {
		used += n;
		ret = answer(c, &req);
		if (ret < 0 || !req.keep_alive)
			return ret;
	}
	if (used == 0 && c->in_len == HEAD_MAX) {
		req = (struct request){ .status = 431 };
		return answer(c, &req);
	}
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	return 1;
}

/*
 * Closing a socket with unread data makes the kernel send a reset, which
 * can destroy our last answer before the client reads it. So end our half
 * of the stream first, and drop what the client still sends for a moment.
 */
static void linger(struct conn *c)
{
	int64_t deadline = coil_now() + LINGER;

	if (coil_shutdown(c->fd, SHUT_WR, deadline) == 0)
		while (coil_recv(c->fd, c->in, HEAD_MAX, 0, deadline) > 0)
			;
}

static void serve_conn(struct conn *c)
{
	int ret;

	do {
		ssize_t n = coil_recv(c->fd, c->in + c->in_len,
				      HEAD_MAX - c->in_len, 0,
				      coil_loop_now() + timeout);

		if (n <= 0) /* closed, reset, idle too long, or cancelled */
			return;
		c->in_len += n;
		ret = answer_all(c);
		if (ret < 0 || (c->out_len && flush(c) < 0))
			return;
	} while (ret);
	linger(c);
}

static int conn_task(void *arg)
{
	struct conn c; /* not zeroed: its buffers need no clearing */
	int one = 1;

	c.fd = (int)(intptr_t)arg;
	c.task = coil_current();
	c.in_len = c.out_len = 0;
	c.prev = NULL;
	c.next = conns;
	if (conns)
		conns->prev = &c;
	conns = &c;

	/* Each send is a whole batch of answers: nothing to wait for. */
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	serve_conn(&c);
	coil_close(c.fd);

	if (c.prev)
		c.prev->next = c.next;
	else
		conns = c.next;
	if (c.next)
		c.next->prev = c.prev;
	return 0; /* a client going away is no failure of ours */
}

/* ---- the server */

static void accept_loop(int listen_fd)
{
	static const coil_task_opts opts = { .name = "conn", .detached = true };

	for (;;) {
		int fd = coil_accept(listen_fd, NULL, NULL, COIL_NEVER);

		if (fd == -ECANCELED)
			return;
		if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM ||
		    fd == -ENOBUFS) {
			/* Let connections end rather than spin on it. */
			fprintf(stderr, "httpd: accept: %s\n", strerror(-fd));
			if (coil_sleep(COIL_MSEC(100)) < 0)
				return;
		} else if (fd >= 0 &&
			   coil_spawn(NULL, conn_task, (void *)(intptr_t)fd,
				      &opts) < 0) {
			fprintf(stderr, "httpd: no memory for a task\n");
			coil_close(fd);
		}
	}
}

static int signal_fd;

/* The first SIGINT or SIGTERM cancels the accept loop of the main task. */
static int watch_signals(void *main_task)
{
	struct signalfd_siginfo si;

	if (coil_read(signal_fd, &si, sizeof(si), -1, COIL_NEVER) > 0)
		coil_cancel(main_task);
	return 0;
}

/* Cancel every connection and give them GRACE to close. */
static void stop_connections(void)
{
	int64_t deadline = coil_now() + GRACE;

	for (struct conn *c = conns; c; c = c->next)
		coil_cancel(c->task);
	while (conns && coil_now() < deadline)
		coil_sleep(COIL_MSEC(5));
}

static int serve(void *address)
{
	static const coil_task_opts opts = { .name = "signals" };
	coil_task *watcher;
	int fd, ret;

	fd = coil_listen(address, NULL);
	if (fd < 0) {
		fprintf(stderr, "httpd: cannot listen on %s: %s\n",
			(char *)address, strerror(-fd));
		return fd;
	}
	ret = coil_spawn(&watcher, watch_signals, coil_current(), &opts);
	if (ret < 0) {
		fprintf(stderr, "httpd: cannot spawn: %s\n", strerror(-ret));
		coil_close(fd);
		return ret;
	}
	/* With --port 0 the kernel chose the port: say which. */
	printf("listening on %.*s:%d\n",
	       (int)(strrchr(address, ':') - (char *)address),
	       (char *)address, coil_sock_port(fd));
	fflush(stdout);

	accept_loop(fd);
	coil_close(fd);
	/* We are cancelled, and still have to wait for others: shield. */
	coil_shield_begin();
	stop_connections();
	coil_cancel(watcher);
	coil_join(watcher, NULL, COIL_NEVER);
	coil_shield_end();
	return 0;
}

/* ---- the command line */

static const char usage[] =
	"usage: httpd --port N [--root DIR] [--address HOST] [--timeout S]\n";

static const char help[] =
	"  --port N      TCP port, 0 for any free one\n"
	"  --root DIR    serve the files under DIR\n"
	"  --address A   address to listen on (127.0.0.1)\n"
	"  --timeout S   per read or send, and for idle connections (30)\n"
	"Prints \"listening on HOST:PORT\" once ready.\n";

static void bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "httpd: %s%s\n%s", what, arg, usage);
	exit(2);
}

static long number(const char *s, long min, long max, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		bad_usage(what, s);
	return v;
}

static void parse_args(int argc, char **argv, char *address, size_t size)
{
	static const struct option options[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "root", required_argument, NULL, 'r' },
		{ "address", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1";
	long port = -1;
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'p') {
			port = number(optarg, 0, 65535, "bad --port: ");
		} else if (opt == 't') {
			timeout = COIL_SEC(number(optarg, 1, 86400,
						  "bad --timeout: "));
		} else if (opt == 'a') {
			host = optarg;
		} else if (opt == 'r') {
			root_fd = open(optarg, O_PATH | O_DIRECTORY |
				       O_CLOEXEC);
			if (root_fd < 0) {
				fprintf(stderr, "httpd: --root %s: %s\n",
					optarg, strerror(errno));
				exit(2);
			}
		} else if (opt == 'h') {
			printf("%s%s", usage, help);
			exit(0);
		} else {
			bad_usage("see --help", ""); /* getopt said why */
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument: ", argv[optind]);
	if (port < 0)
		bad_usage("--port is required", "");
	/* An IPv6 address goes in brackets: [::1]:8080. */
	if ((size_t)snprintf(address, size, strchr(host, ':') ? "[%s]:%ld" :
			     "%s:%ld", host, port) >= size)
		bad_usage("--address too long: ", host);
}

int main(int argc, char **argv)
{
	char address[256];
	sigset_t sigs;
	int ret, status;

	parse_args(argc, argv, address, sizeof(address));

	/* Signals come as data on an fd, which a task reads like any other. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (signal_fd < 0) {
		perror("httpd: signalfd");
		return 1;
	}

	ret = coil_run(serve, address, &status);
	if (ret < 0) {
		fprintf(stderr, "httpd: cannot start coil: %s\n",
			strerror(-ret));
		return 1;
	}
	return status < 0;
}
