/*
 * cp: copy a file with several reads and writes in flight.
 *
 *	cp SRC DST [--depth N] [--chunk BYTES]
 *
 * N tasks share the file: each takes the next chunk's offset, reads it and
 * writes it at the same offset in DST, so up to N chunks are in the kernel
 * at once. DST is created (or truncated) with SRC's permission bits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <coil.h>

struct copy {
	const char *src_path, *dst_path;
	unsigned depth;
	size_t chunk;
	int src, dst;
	int64_t size;
	int64_t next;  /* offset of the next chunk to take; tasks share the loop */
	int error;     /* the first error, which stops every worker */
	const char *failed; /* what failed */
};

/* Read exactly len bytes at off: a read may return fewer. */
static int read_chunk(struct copy *c, char *buf, size_t len, int64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = coil_read(c->src, buf + got, len - got,
				      off + (int64_t)got, COIL_NEVER);

		if (n <= 0)
			return n ? (int)n : -EIO; /* 0: the file shrank under us */
		got += (size_t)n;
	}
	return 0;
}

static int worker(void *arg)
{
	struct copy *c = arg;
	char *buf = malloc(c->chunk);

	if (!buf)
		return -ENOMEM;
	while (!c->error && c->next < c->size) {
		int64_t off = c->next;
		size_t len = c->size - off < (int64_t)c->chunk ?
			     (size_t)(c->size - off) : c->chunk;
		int ret;

		c->next += (int64_t)len;
		ret = read_chunk(c, buf, len, off);
		if (ret == 0)
			ret = coil_write_all(c->dst, buf, len, off, NULL, COIL_NEVER);
		if (ret < 0 && !c->error) {
			c->error = ret;
			c->failed = "copy";
		}
	}
	free(buf);
	return c->error;
}

static int open_files(struct copy *c)
{
	struct statx st;
	int ret;

	c->src = coil_open(c->src_path, O_RDONLY, 0, COIL_NEVER);
	if (c->src < 0) {
		c->failed = c->src_path;
		return c->src;
	}
	ret = coil_statx(c->src, "", AT_EMPTY_PATH, STATX_SIZE | STATX_MODE,
			 &st, COIL_NEVER);
	if (ret < 0) {
		c->failed = c->src_path;
		return ret;
	}
	c->size = (int64_t)st.stx_size;
	c->dst = coil_open(c->dst_path, O_WRONLY | O_CREAT | O_TRUNC,
			   st.stx_mode & 07777, COIL_NEVER);
	if (c->dst < 0) {
		c->failed = c->dst_path;
		return c->dst;
	}
	return 0;
}

/* A copy that worked is on disk before cp says so. */
static int copy_main(void *arg)
{
	struct copy *c = arg;
	coil_task *tasks[256];
	unsigned started = 0;
	int ret = open_files(c);

	/*
	 * Chunks may fail in any order: on an error the workers stop taking new
	 * ones, and all are joined so no write is left in flight.
	 */
	for (; ret == 0 && started < c->depth; started++) {
		ret = coil_spawn(&tasks[started], worker, c, NULL);
		if (ret < 0)
			c->failed = "spawn";
	}
	for (unsigned i = 0; i < started; i++)
		coil_join(tasks[i], NULL, COIL_NEVER);
	if (!ret && c->error)
		ret = c->error;
	if (!ret) {
		ret = coil_fsync(c->dst, COIL_NEVER);
		if (ret < 0)
			c->failed = "fsync";
	}
	if (c->src >= 0)
		coil_close(c->src);
	if (c->dst >= 0)
		coil_close(c->dst);
	return ret;
}

static void usage(FILE *to)
{
	fprintf(to, "usage: cp SRC DST [--depth N] [--chunk BYTES]\n"
		"  --depth N      reads/writes in flight, 1-256 (default 8)\n"
		"  --chunk BYTES  size of each read and write (default 131072)\n");
}

static long number(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || end == s || v < lo || v > hi) {
		fprintf(stderr, "cp: bad %s '%s' (%ld to %ld)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct copy c = { .depth = 8, .chunk = 128 * 1024, .src = -1, .dst = -1 };
	const char *paths[2];
	int npaths = 0, status, ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--depth") && i + 1 < argc) {
			c.depth = (unsigned)number(argv[++i], 1, 256, "depth");
		} else if (!strcmp(argv[i], "--chunk") && i + 1 < argc) {
			c.chunk = (size_t)number(argv[++i], 4096, 64L << 20, "chunk");
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "cp: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (npaths < 2) {
			paths[npaths++] = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (npaths != 2) {
		usage(stderr);
		return 2;
	}
	c.src_path = paths[0];
	c.dst_path = paths[1];

	ret = coil_run(copy_main, &c, &status);
	if (ret < 0) {
		fprintf(stderr, "cp: cannot start coil: %s\n", strerror(-ret));
		return 1;
	}
	if (status < 0) {
		fprintf(stderr, "cp: %s: %s\n", c.failed ? c.failed : "copy",
			strerror(-status));
		return 1;
	}
	return 0;
}
