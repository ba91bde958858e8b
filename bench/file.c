/*
 * 4 KiB random reads at queue depth 32 on a 1 GiB file: 32 coil tasks, each
 * looping over coil_read into its own buffer, against fio's io_uring engine
 * (one job, iodepth 32) in the same run. Twice: through a warm page cache,
 * where the reads complete inline and the figure is what each read costs in
 * CPU, and with O_DIRECT, where the device sets the pace and the runtime
 * must only keep 32 reads in flight. Rounds alternate coil and fio so that
 * drift of the shared machine hits both alike; figures are medians.
 *
 * A third variant, reported apart, reads through a registered file and
 * registered buffers (coil_read_fixed).
 *
 *   file [--dir DIR] [--full] [--rounds N] [--seconds S]
 *        [--only cached|direct] [--fio PATH] [--remove]
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "coil.h"

#define FILE_NAME "coil-bench-file.dat"
#define FILE_SIZE (1LL << 30)
#define BLOCK 4096
#define BLOCKS_LOG2 18 /* FILE_SIZE / BLOCK = 2^18 blocks */
#define DEPTH 32
#define CHUNK (1 << 20) /* creating and warming the file */
#define MAX_ROUNDS 64

static const char *dir;
static char path[PATH_MAX];
static const char *fio = "fio";
static bool full, remove_file, have_fio = true;
static bool run_cached = true, run_direct = true;
static int rounds = -1; /* -1: the mode's default */
static double seconds = -1; /* the measured window of each round */
static const double warmup = 0.25; /* before it, for coil and fio alike */
static int cpu;

/* What the reader tasks share; one loop, one thread: no atomics needed. */
static void *bufs[DEPTH];
static long completed;
static bool stopping;

enum variant { PLAIN, FIXED };

struct reader {
	int fd;
	unsigned index;
	enum variant variant;
	uint64_t rng;
};

static void die(const char *what, long err)
{
	fprintf(stderr, "file: %s: %s\n", what, strerror((int)-err));
	exit(1);
}

/* xorshift64*: a few instructions per offset, and its high bits are good. */
static inline int64_t next_offset(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return (int64_t)((*x * 0x2545F4914F6CDD1DULL) >> (64 - BLOCKS_LOG2)) *
	       BLOCK;
}

static int reader(void *arg)
{
	struct reader *r = arg;
	void *buf = bufs[r->index];
	ssize_t n;

	while (!stopping) {
		int64_t off = next_offset(&r->rng);

		if (r->variant == FIXED)
			n = coil_read_fixed(COIL_FIXED_FD(0), buf, BLOCK, off,
					    r->index, COIL_NEVER);
		else
			n = coil_read(r->fd, buf, BLOCK, off, COIL_NEVER);
		if (n != BLOCK)
			die("coil_read", n < 0 ? n : -EIO);
		completed++;
	}
	return 0;
}

/*
 * One round: DEPTH readers run for the warm-up, then for the window; the
 * count of reads completed across the window, over its measured length.
 */
static double coil_round(int fd, enum variant variant, int round)
{
	struct reader readers[DEPTH];
	coil_task *tasks[DEPTH];
	int64_t t0, t1;
	long c0, c1;
	int ret;

	completed = 0;
	stopping = false;
	for (unsigned i = 0; i < DEPTH; i++) {
		readers[i] = (struct reader){
			.fd = fd,
			.index = i,
			.variant = variant,
			/* distinct and never 0: xorshift would stay at 0 */
			.rng = 0x9E3779B97F4A7C15ULL * (i + 1 + DEPTH * round),
		};
		ret = coil_spawn(&tasks[i], reader, &readers[i], NULL);
		if (ret < 0)
			die("coil_spawn", ret);
	}
	coil_sleep(COIL_SEC(warmup));
	t0 = coil_now();
	c0 = completed;
	coil_sleep_until(t0 + (int64_t)(seconds * 1e9));
	t1 = coil_now();
	c1 = completed;
	stopping = true;
	for (unsigned i = 0; i < DEPTH; i++)
		coil_join(tasks[i], NULL, COIL_NEVER);
	return (double)(c1 - c0) / ((double)(t1 - t0) / 1e9);
}

/*
 * fio's terse output (version 3) is one line of fields split by ';':
 * version, fio version, job name, group id, error, then the read status:
 * total KiB, bandwidth KiB/s, IOPS, runtime ms, ... Returns the IOPS, or a
 * negative number when the line is not there or the job reported an error.
 * out is left as it was, to be shown if something went wrong.
 */
static double parse_terse(const char *out)
{
	const char *line = out, *field[8];

	/* fio may print notes before it: find the line that starts "3;". */
	while (line && strncmp(line, "3;", 2)) {
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (!line)
		return -1;
	for (int i = 0; i < 8; i++) {
		field[i] = line;
		line = strpbrk(line, ";\n");
		if (!line || *line != ';')
			return -1;
		line++;
	}
	if (atoi(field[4]) != 0)
		return -1;
	return atof(field[7]);
}

/*
 * One fio run of the same workload as coil_round: one job, the same file,
 * QD 32, 4 KiB random reads, no cache invalidation, the same warm-up
 * (ramp_time) and window, on the same CPU, with plain buffers and file
 * descriptor as coil_read has (fio's defaults: no fixedbufs, no
 * registerfiles, no sqthread_poll, no hipri). Where fio's defaults would
 * make it do more work than the readers do, it is told not to, so that the
 * ratio measures the runtimes and not the workloads:
 *   - norandommap: offsets are drawn freely, as the readers draw them,
 *     instead of tracking which blocks were read already;
 *   - gtod_reduce: no clock reads for per-I/O latency statistics;
 *   - iodepth_batch_submit and _complete_max 32: up to 32 reads submitted
 *     and reaped per system call, as the loop submits every read its tasks
 *     queued in one kernel entry. fio's default submits one read per
 *     io_uring_enter, which costs it about two thirds of its IOPS with a
 *     warm cache.
 * Returns its IOPS, or a negative number when fio could not run.
 */
static double fio_round(bool direct)
{
	char filename[PATH_MAX + 16], runtime[32], ramp[32], cpus[32];
	char out[65536];
	char *argv[] = {
		(char *)fio, "--name=r", "--ioengine=io_uring",
		"--rw=randread", "--bs=4k", "--iodepth=32", "--size=1G",
		filename, direct ? "--direct=1" : "--direct=0",
		"--invalidate=0", "--norandommap", "--gtod_reduce=1",
		"--iodepth_batch_submit=32", "--iodepth_batch_complete_max=32",
		"--time_based", runtime, ramp, cpus, "--output-format=terse",
		NULL,
	};
	coil_process proc;
	size_t len = 0;
	ssize_t n;
	int pipefd[2], status, ret;
	double iops;
	int64_t deadline = coil_now() + COIL_SEC(seconds + warmup + 60);

	snprintf(filename, sizeof(filename), "--filename=%s", path);
	snprintf(runtime, sizeof(runtime), "--runtime=%lldms",
		 (long long)(seconds * 1000));
	snprintf(ramp, sizeof(ramp), "--ramp_time=%lldms",
		 (long long)(warmup * 1000));
	snprintf(cpus, sizeof(cpus), "--cpus_allowed=%d", cpu);
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		die("pipe2", -errno);
	ret = coil_process_spawn(&proc, argv, &(coil_process_opts){
		.stdio = { -1, pipefd[1], 0 },
	});
	coil_close(pipefd[1]);
	if (ret < 0) {
		coil_close(pipefd[0]);
		if (ret == -ENOENT)
			printf("file: %s not found: install fio (Debian package "
			       "fio) for the comparison; coil figures only\n",
			       fio);
		else
			printf("file: cannot start %s: %s; coil figures only\n",
			       fio, strerror(-ret));
		return -1;
	}
	while (len < sizeof(out) - 1 &&
	       (n = coil_read(pipefd[0], out + len, sizeof(out) - 1 - len, -1,
			      deadline)) > 0)
		len += (size_t)n;
	out[len] = 0;
	coil_close(pipefd[0]);
	ret = coil_process_wait(&proc, &status, deadline);
	coil_process_destroy(&proc); /* kills it if the wait timed out */
	if (ret < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    (iops = parse_terse(out)) <= 0) {
		printf("file: %s failed (%s); its output:\n%s\nfile: coil "
		       "figures only from here on\n", fio,
		       ret < 0 ? strerror(-ret) : "exit status", out);
		return -1;
	}
	return iops;
}

/* The same 64-bit word never repeats and is never 0: no block is all zeros. */
static void fill(uint64_t *words, int64_t off)
{
	for (size_t i = 0; i < CHUNK / 8; i++)
		words[i] = ~(uint64_t)(off / 8 + (int64_t)i);
}

/*
 * Write the file under a temporary name, sequentially, sync it and only then
 * give it its name: an interrupted run leaves no short file to be reused.
 */
static void create_file(void)
{
	char tmp[PATH_MAX + 8];
	struct statfs fs;
	uint64_t *chunk = coil_aligned_alloc(CHUNK);
	int64_t start = coil_now();
	int fd, ret;

	if (!chunk)
		die("coil_aligned_alloc", -ENOMEM);
	if (statfs(dir, &fs) == 0 &&
	    (long long)fs.f_bavail * fs.f_bsize < FILE_SIZE + (64 << 20)) {
		fprintf(stderr, "file: %s has less than 1 GiB free; pass "
			"--dir elsewhere\n", dir);
		exit(1);
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	printf("file: creating %s (1 GiB%s)\n", path,
	       remove_file ? "" : ", once: later runs reuse it");
	fflush(stdout);
	fd = coil_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, COIL_NEVER);
	if (fd < 0)
		die(tmp, fd);
	for (int64_t off = 0; off < FILE_SIZE; off += CHUNK) {
		fill(chunk, off);
		ret = coil_write_all(fd, chunk, CHUNK, off, NULL, COIL_NEVER);
		if (ret < 0)
			die("writing the file", ret);
	}
	ret = coil_fdatasync(fd, COIL_NEVER);
	if (ret < 0)
		die("fdatasync", ret);
	coil_close(fd);
	if (rename(tmp, path) < 0)
		die("rename", -errno);
	coil_aligned_free(chunk);
	printf("file: created in %.1f s\n", (coil_now() - start) / 1e9);
}

static void prepare_file(void)
{
	struct statx st;
	int ret = coil_statx(AT_FDCWD, path, 0, STATX_TYPE | STATX_SIZE, &st,
			     COIL_NEVER);

	if (ret == 0 && S_ISREG(st.stx_mode) &&
	    (long long)st.stx_size == FILE_SIZE) {
		printf("file: reusing %s\n", path);
		return;
	}
	if (ret == 0 && !S_ISREG(st.stx_mode)) {
		fprintf(stderr, "file: %s exists and is not a regular file\n",
			path);
		exit(1);
	}
	if (ret == 0)
		printf("file: %s is not 1 GiB, writing it again\n", path);
	create_file();
}

/* Read the whole file once, so that every block is in the page cache. */
static void warm_cache(int fd)
{
	void *chunk = coil_aligned_alloc(CHUNK);
	ssize_t n;

	if (!chunk)
		die("coil_aligned_alloc", -ENOMEM);
	for (int64_t off = 0; off < FILE_SIZE; off += n) {
		n = coil_read(fd, chunk, CHUNK, off, COIL_NEVER);
		if (n <= 0)
			die("warming the page cache", n < 0 ? n : -EIO);
	}
	coil_aligned_free(chunk);
}

static void report(const char *prefix, double *mine, double *fixed,
		   double *peer, bool peer_ok)
{
	char name[64];
	double ratio[MAX_ROUNDS], m;

	/* Before the medians below sort the figures out of their rounds. */
	for (int i = 0; peer_ok && i < rounds; i++)
		ratio[i] = mine[i] / peer[i];
	snprintf(name, sizeof(name), "%s_coil_iops", prefix);
	bench_result(name, bench_median(mine, rounds), "iops");
	snprintf(name, sizeof(name), "%s_coil_fixed_iops", prefix);
	bench_result(name, bench_median(fixed, rounds), "iops");
	if (!peer_ok)
		return;
	snprintf(name, sizeof(name), "%s_fio_iops", prefix);
	bench_result(name, bench_median(peer, rounds), "iops");
	/*
	 * The ratio is the median of each round's own: the two ran back to
	 * back, so a change of the device's pace between rounds cancels out.
	 */
	m = bench_median(ratio, rounds);
	snprintf(name, sizeof(name), "%s_coil_vs_fio", prefix);
	bench_result(name, m, "ratio");
	printf("target %s >= 0.9: %s\n", name, m >= 0.9 ? "met" : "NOT met");
}

/* One fio round, unless fio is known to be missing or broken. */
static double peer_round(bool direct, bool *peer_ok)
{
	double iops;

	if (!*peer_ok)
		return 0;
	iops = fio_round(direct);
	if (iops < 0)
		*peer_ok = have_fio = false;
	return iops;
}

/*
 * Rounds of coil, fio, and coil with registered file and buffers. The two
 * figures compared run back to back, and in turns one goes first: the
 * device behind this VM's disk changes speed within seconds (from 70,000 to
 * 180,000 IOPS and back), and a slow drift then favours neither.
 */
static void run_mode(bool direct)
{
	const char *prefix = direct ? "file_direct" : "file";
	double mine[MAX_ROUNDS], fixed[MAX_ROUNDS], peer[MAX_ROUNDS];
	bool peer_ok = have_fio;
	int fd, ret;

	fd = coil_open(path, O_RDONLY | (direct ? O_DIRECT : 0), 0, COIL_NEVER);
	if (fd == -EINVAL && direct) {
		printf("file: the filesystem of %s refuses O_DIRECT: no %s "
		       "figures\n", dir, prefix);
		return;
	}
	if (fd < 0)
		die(path, fd);
	if (!direct)
		warm_cache(fd);
	ret = coil_files_register(&fd, 1);
	if (ret < 0)
		die("coil_files_register", ret);
	for (int i = 0; i < rounds; i++) {
		if (i % 2 == 0) {
			mine[i] = coil_round(fd, PLAIN, i);
			peer[i] = peer_round(direct, &peer_ok);
			fixed[i] = coil_round(fd, FIXED, i);
		} else {
			fixed[i] = coil_round(fd, FIXED, i);
			peer[i] = peer_round(direct, &peer_ok);
			mine[i] = coil_round(fd, PLAIN, i);
		}
		printf("%s round %d: coil %.0f, coil fixed %.0f", direct ?
		       "O_DIRECT" : "cached", i + 1, mine[i], fixed[i]);
		if (peer_ok)
			printf(", fio %.0f", peer[i]);
		printf(" IOPS\n");
		fflush(stdout);
	}
	coil_files_unregister();
	coil_close(fd);
	report(prefix, mine, fixed, peer, peer_ok);
}

static bool on_tmpfs(const char *d)
{
	struct statfs fs;

	return statfs(d, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

static int run(void *arg)
{
	struct iovec iov[DEPTH];
	int ret;

	(void)arg;
	for (int i = 0; i < DEPTH; i++) {
		bufs[i] = coil_aligned_alloc(BLOCK);
		if (!bufs[i])
			die("coil_aligned_alloc", -ENOMEM);
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = BLOCK;
	}
	ret = coil_buffers_register(iov, DEPTH);
	if (ret < 0)
		die("coil_buffers_register", ret);
	prepare_file();
	printf("file: %d rounds of %.1f s (after %.2f s warm-up) each for "
	       "coil, coil fixed and fio, on CPU %d\n", rounds, seconds,
	       warmup, cpu);
	if (run_cached)
		run_mode(false);
	if (run_direct && on_tmpfs(dir))
		printf("file: %s is on tmpfs, which has no device under it: no "
		       "O_DIRECT figures (pass --dir on a disk filesystem)\n",
		       dir);
	else if (run_direct)
		run_mode(true);
	if (remove_file) {
		if (unlink(path) < 0)
			die("unlink", -errno);
		printf("file: removed %s\n", path);
	} else {
		printf("file: kept %s for the next run (--remove deletes it)\n",
		       path);
	}
	coil_buffers_unregister();
	for (int i = 0; i < DEPTH; i++)
		coil_aligned_free(bufs[i]);
	return 0;
}

/* The directory of this executable, in the build tree, unless on tmpfs. */
static const char *default_dir(void)
{
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n > 0) {
		exe[n] = 0;
		slash = strrchr(exe, '/');
		if (slash && slash != exe) {
			*slash = 0;
			if (!on_tmpfs(exe) && access(exe, W_OK) == 0)
				return exe;
		}
	}
	return "/var/tmp";
}

static void usage(FILE *to)
{
	fprintf(to,
		"usage: file [--dir DIR] [--full] [--rounds N (1-64)] "
		"[--seconds S] [--only cached|direct]\n"
		"            [--fio PATH] [--remove]\n"
		"\n"
		"4 KiB random reads at QD32 on a 1 GiB file, coil tasks "
		"against fio's io_uring engine,\n"
		"with a warm page cache and with O_DIRECT, in alternating "
		"rounds; medians.\n"
		"\n"
		"  --dir DIR    where the file %s lives (default: the "
		"directory of\n"
		"               this program, or /var/tmp if that is on "
		"tmpfs). Not tmpfs:\n"
		"               there is no O_DIRECT figure there. The file "
		"is created once\n"
		"               and kept for later runs.\n"
		"  --full       7 rounds of 5 s instead of 3 rounds of 2 s\n"
		"  --rounds N   rounds per mode\n"
		"  --seconds S  measured window of each round\n"
		"  --only M     only the page cache (cached) or the O_DIRECT "
		"(direct) figures\n"
		"  --fio PATH   the fio to compare with (default: fio in PATH)\n"
		"  --remove     delete the file at the end\n", FILE_NAME);
}

int main(int argc, char **argv)
{
	int ret, status;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--full"))
			full = true;
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--fio") && i + 1 < argc)
			fio = argv[++i];
		else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			i++;
			run_cached = !strcmp(argv[i], "cached");
			run_direct = !strcmp(argv[i], "direct");
			if (!run_cached && !run_direct) {
				usage(stderr);
				return 2;
			}
		} else if (!strcmp(argv[i], "--remove"))
			remove_file = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (rounds == -1)
		rounds = full ? 7 : 3;
	if (seconds == -1)
		seconds = full ? 5 : 2;
	if (rounds < 1 || rounds > MAX_ROUNDS || seconds < 0.1 ||
	    seconds > 3600) {
		fprintf(stderr, "file: --rounds takes 1-%d, --seconds 0.1-3600\n",
			MAX_ROUNDS);
		return 2;
	}
	if (!dir)
		dir = default_dir();
	if (snprintf(path, sizeof(path), "%s/%s", dir, FILE_NAME) >=
	    (int)sizeof(path)) {
		fprintf(stderr, "file: --dir is too long\n");
		return 2;
	}
	/* fio gets the same CPU: both compete for the same core. */
	bench_pin();
	cpu = sched_getcpu();
	ret = coil_run(run, NULL, &status);
	if (ret < 0) {
		fprintf(stderr, "file: cannot start a loop: %s\n", strerror(-ret));
		return 1;
	}
	return status < 0 ? 1 : 0;
}
