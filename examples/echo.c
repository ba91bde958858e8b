/*
 * echo: a TCP echo server on coil, one task per connection.
 *
 *	echo --port N [--address HOST] [--multishot] [--deadline]
 *
 * By default each connection's task receives into its own buffer and sends
 * back what came. --multishot receives through one multishot receive per
 * connection, into the loop's shared buffer ring. --deadline gives every
 * call an idle deadline. SIGINT or SIGTERM stops the server.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <coil.h>

#define IDLE COIL_SEC(60)

static struct {
	const char *address;
	int port;
	bool multishot;
	bool deadline;
} cfg = { .address = "127.0.0.1", .port = -1 };

static int64_t idle_deadline(void)
{
	return cfg.deadline ? coil_loop_now() + IDLE : COIL_NEVER;
}

static int echo_plain(int fd)
{
	char buf[16384];

	for (;;) {
		/* One deadline covers a request: its receive and its answer. */
		int64_t deadline = idle_deadline();
		ssize_t n = coil_recv(fd, buf, sizeof(buf), 0, deadline);
		int ret;

		if (n <= 0)
			return (int)n;
		ret = coil_send_all(fd, buf, (size_t)n, NULL, deadline);
		if (ret < 0)
			return ret;
	}
}

static int echo_multishot(int fd)
{
	coil_recv_stream stream;
	coil_buf buf;
	ssize_t n;
	int ret = coil_recv_stream_init(&stream, fd);

	if (ret < 0)
		return ret;
	for (;;) {
		int64_t deadline = idle_deadline();

		n = coil_recv_stream_next(&stream, &buf, deadline);
		if (n <= 0)
			break;
		ret = coil_send_all(fd, buf.data, buf.len, NULL, deadline);
		coil_buf_release(&buf);
		if (ret < 0)
			break;
	}
	coil_recv_stream_destroy(&stream);
	return ret < 0 ? ret : (int)n;
}

static int connection(void *arg)
{
	int fd = (int)(intptr_t)arg;
	int ret = cfg.multishot ? echo_multishot(fd) : echo_plain(fd);

	coil_close(fd);
	/* A peer that goes away is the normal end of a connection. */
	if (ret == -ECONNRESET || ret == -EPIPE || ret == -ETIMEDOUT)
		ret = 0;
	return ret;
}

static int accept_loop(void *arg)
{
	int listener = (int)(intptr_t)arg;
	coil_task_opts opts = { .name = "connection", .detached = true,
				.stack_size = 64 * 1024 };

	for (;;) {
		int fd = coil_accept(listener, NULL, NULL, COIL_NEVER);

		if (fd == -ECANCELED)
			return 0;
		if (fd < 0) {
			fprintf(stderr, "echo: accept: %s\n", strerror(-fd));
			continue;
		}
		if (coil_spawn(NULL, connection, (void *)(intptr_t)fd, &opts) < 0)
			coil_close(fd);
	}
}

/* Wait for SIGINT or SIGTERM on a signalfd, then stop accepting. */
static int serve(void *arg)
{
	int listener = (int)(intptr_t)arg;
	struct signalfd_siginfo si;
	coil_task *acceptor;
	sigset_t stop;
	int sfd, ret;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sfd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (sfd < 0)
		return -errno;
	ret = coil_spawn(&acceptor, accept_loop, (void *)(intptr_t)listener,
			 &(coil_task_opts){ .name = "accept" });
	if (ret == 0) {
		coil_read(sfd, &si, sizeof(si), -1, COIL_NEVER);
		coil_cancel(acceptor);
		coil_join(acceptor, &ret, COIL_NEVER);
	}
	close(sfd);
	return ret;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: echo --port N [--address HOST] [--multishot] [--deadline]\n"
		"  --port N       TCP port to listen on (0: any free port)\n"
		"  --address A    address to listen on (default 127.0.0.1)\n"
		"  --multishot    receive with multishot receives and a buffer ring\n"
		"  --deadline     put an idle deadline (60 s) on every call\n"
		"Prints \"listening on HOST:PORT\"; SIGINT or SIGTERM stops it.\n");
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--multishot")) {
			cfg.multishot = true;
		} else if (!strcmp(a, "--deadline")) {
			cfg.deadline = true;
		} else if (!strcmp(a, "--port") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end || v < 0 || v > 65535) {
				fprintf(stderr, "echo: bad port '%s'\n", argv[i]);
				exit(2);
			}
			cfg.port = (int)v;
		} else if (!strcmp(a, "--address") && i + 1 < argc) {
			cfg.address = argv[++i];
		} else {
			fprintf(stderr, "echo: unknown argument '%s'\n", a);
			usage(stderr);
			exit(2);
		}
	}
	if (cfg.port < 0) {
		fprintf(stderr, "echo: --port is required\n");
		usage(stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	char address[300];
	sigset_t stop;
	int listener, status, ret;

	parse_args(argc, argv);
	snprintf(address, sizeof(address), strchr(cfg.address, ':') ?
		 "[%s]:%d" : "%s:%d", cfg.address, cfg.port);
	listener = coil_listen(address, NULL);
	if (listener < 0) {
		fprintf(stderr, "echo: cannot listen on %s: %s\n", address,
			strerror(-listener));
		return 1;
	}
	printf("listening on %s:%d\n", cfg.address, coil_sock_port(listener));
	fflush(stdout);

	/* Blocked here, so that the signals reach the signalfd only. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);

	ret = coil_run(serve, (void *)(intptr_t)listener, &status);
	close(listener);
	if (ret < 0) {
		fprintf(stderr, "echo: cannot start coil: %s\n", strerror(-ret));
		return 1;
	}
	if (status < 0) {
		fprintf(stderr, "echo: %s\n", strerror(-status));
		return 1;
	}
	return 0;
}
