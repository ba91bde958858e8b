/*
 * Channels: the round trip between two tasks over two rendezvous channels
 * (ns), and the messages per second from one producer to one consumer
 * through a channel of capacity 128; then the same two from Go's channels
 * (bench/peers/chan.go, built here and run with GOMAXPROCS=1) in the same
 * run. Rounds interleave coil and Go; each figure is a median.
 *
 *   chan [--rounds N] [--trips N] [--messages N] [--go-source PATH]
 *
 * Without go installed (or without the Go source) the Go figures are
 * skipped, with a note.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "coil.h"

#define MAX_ROUNDS 64

static int rounds = 7;
static long trips = 1000000;
static long messages = 5000000;
static const char *go_source;
static char go_binary[4096];

/* ---- coil */

static coil_chan ping, pong;

static int echo(void *arg)
{
	uint64_t v;

	(void)arg;
	while (coil_chan_recv(&ping, &v, COIL_NEVER) == 0)
		coil_chan_send(&pong, &v, COIL_NEVER);
	return 0;
}

static void spawn_or_die(coil_task **t, coil_fn *fn)
{
	if (coil_spawn(t, fn, NULL, NULL) < 0) {
		fprintf(stderr, "chan: cannot spawn\n");
		exit(1);
	}
}

/* ns per round trip. */
static double pingpong_round(long n)
{
	coil_task *t;
	int64_t start;
	uint64_t i, back;

	coil_chan_init(&ping, sizeof(uint64_t), 0, "ping");
	coil_chan_init(&pong, sizeof(uint64_t), 0, "pong");
	spawn_or_die(&t, echo);
	start = coil_now();
	for (i = 0; i < (uint64_t)n; i++) {
		coil_chan_send(&ping, &i, COIL_NEVER);
		if (coil_chan_recv(&pong, &back, COIL_NEVER) < 0 || back != i) {
			fprintf(stderr, "chan: ping-pong lost a message\n");
			exit(1);
		}
	}
	start = coil_now() - start;
	coil_chan_close(&ping);
	coil_join(t, NULL, COIL_NEVER);
	coil_chan_destroy(&ping);
	coil_chan_destroy(&pong);
	return (double)start / n;
}

static coil_chan queue;
static uint64_t sum;

static int consume(void *arg)
{
	uint64_t v;

	(void)arg;
	while (coil_chan_recv(&queue, &v, COIL_NEVER) == 0)
		sum += v;
	return 0;
}

/* Messages per second. */
static double throughput_round(long n)
{
	coil_task *t;
	int64_t start;
	uint64_t i;

	coil_chan_init(&queue, sizeof(uint64_t), 128, "queue");
	sum = 0;
	spawn_or_die(&t, consume);
	start = coil_now();
	for (i = 0; i < (uint64_t)n; i++)
		coil_chan_send(&queue, &i, COIL_NEVER);
	coil_chan_close(&queue);
	coil_join(t, NULL, COIL_NEVER);
	start = coil_now() - start;
	coil_chan_destroy(&queue);
	if (sum != (uint64_t)n * (n - 1) / 2) {
		fprintf(stderr, "chan: the consumer lost messages\n");
		exit(1);
	}
	return n / (start / 1e9);
}

/* ---- Go */

/* Run argv; its stdout into out (NUL-terminated). Returns its exit status. */
static int run_capture(char *const argv[], char *out, size_t len)
{
	size_t used = 0;
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(fds[1], 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	while (used + 1 < len && (n = read(fds[0], out + used, len - used - 1)) > 0)
		used += n;
	out[used] = 0;
	close(fds[0]);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static char tmpdir[] = "/tmp/coil-bench-chan-XXXXXX";

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void remove_tmpdir(void)
{
	nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * Build the peer into a temporary directory, with its build cache there
 * too, so that it works for any user on a fresh machine. Whether it did.
 */
static bool build_go(void)
{
	char cache[4200], path[4200], out[4096];
	char *argv[] = { "go", "build", "-o", go_binary, (char *)go_source, NULL };
	int ret;

	if (!go_source || access(go_source, R_OK) < 0) {
		printf("note: Go source %s not found: Go figures skipped\n",
		       go_source ? go_source : "(none given)");
		return false;
	}
	if (!mkdtemp(tmpdir)) {
		printf("note: no temporary directory: Go figures skipped\n");
		return false;
	}
	atexit(remove_tmpdir);
	snprintf(go_binary, sizeof(go_binary), "%s/chan_go", tmpdir);
	snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
	snprintf(path, sizeof(path), "%s/gopath", tmpdir);
	setenv("GOCACHE", cache, 1);
	setenv("GOPATH", path, 1);
	setenv("GO111MODULE", "off", 1); /* one file, no module */
	setenv("GOMAXPROCS", "1", 1);
	ret = run_capture(argv, out, sizeof(out));
	if (ret == 127) {
		printf("note: go is not installed (Debian: apt-get install "
		       "golang-go): Go figures skipped\n");
		return false;
	}
	if (ret != 0) {
		printf("note: go build %s failed (%d): Go figures skipped\n",
		       go_source, ret);
		return false;
	}
	return true;
}

/* One run of the peer: its two figures. */
static bool go_round(double *pingpong_ns, double *throughput_mps)
{
	char a[32], b[32], out[256];
	char *argv[] = { go_binary, a, b, NULL };

	snprintf(a, sizeof(a), "%ld", trips);
	snprintf(b, sizeof(b), "%ld", messages);
	if (run_capture(argv, out, sizeof(out)) != 0 ||
	    sscanf(out, "pingpong_ns %lf throughput_mps %lf", pingpong_ns,
		   throughput_mps) != 2) {
		printf("note: the Go peer failed: Go figures skipped\n");
		return false;
	}
	return true;
}

/* ---- the run */

static void target(const char *what, bool met)
{
	printf("target %s: %s\n", what, met ? "met" : "NOT met");
}

static int run(void *arg)
{
	double pp[MAX_ROUNDS], tp[MAX_ROUNDS], go_pp[MAX_ROUNDS], go_tp[MAX_ROUNDS];
	bool go = *(bool *)arg;
	double p, t, gp = 0, gt = 0;
	int i;

	pingpong_round(trips / 10); /* warm up: stacks, caches, branch history */
	throughput_round(messages / 10);
	for (i = 0; i < rounds; i++) {
		pp[i] = pingpong_round(trips);
		tp[i] = throughput_round(messages);
		if (go)
			go = go_round(&go_pp[i], &go_tp[i]);
	}
	p = bench_median(pp, rounds);
	t = bench_median(tp, rounds);
	bench_result("chan_pingpong_ns", p, "ns");
	bench_result("chan_throughput_mps", t, "msg/s");
	if (!go) {
		printf("target chan_pingpong_ns <= 0.5 x chan_pingpong_go_ns: "
		       "not measured\n");
		printf("target chan_throughput_mps >= 2 x chan_throughput_go_mps: "
		       "not measured\n");
		return 0;
	}
	gp = bench_median(go_pp, rounds);
	gt = bench_median(go_tp, rounds);
	bench_result("chan_pingpong_go_ns", gp, "ns");
	bench_result("chan_throughput_go_mps", gt, "msg/s");
	bench_result("chan_pingpong_vs_go", p / gp, "ratio");
	bench_result("chan_throughput_vs_go", t / gt, "ratio");
	target("chan_pingpong_ns <= 0.5 x chan_pingpong_go_ns", p <= 0.5 * gp);
	target("chan_throughput_mps >= 2 x chan_throughput_go_mps", t >= 2 * gt);
	return 0;
}

int main(int argc, char **argv)
{
	bool go;
	int i, ret;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--trips") && i + 1 < argc)
			trips = atol(argv[++i]);
		else if (!strcmp(argv[i], "--messages") && i + 1 < argc)
			messages = atol(argv[++i]);
		else if (!strcmp(argv[i], "--go-source") && i + 1 < argc)
			go_source = argv[++i];
		else {
			fprintf(stderr, "usage: chan [--rounds N (1-64)] [--trips N] "
				"[--messages N] [--go-source PATH]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || trips < 10 || messages < 10) {
		fprintf(stderr, "chan: --rounds takes 1-64, --trips and "
			"--messages at least 10\n");
		return 2;
	}
	bench_pin();
	go = build_go();
	ret = coil_run(run, &go, NULL);
	if (ret < 0) {
		fprintf(stderr, "chan: cannot start a loop: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
