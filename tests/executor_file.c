/*
 * executor/file.c, and coil_read/coil_write and their vectored and
 * registered-buffer forms on regular files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "executor/loop.h"
#include "helper.h"

/* ---------------------------------------------------- scratch directory */

/*
 * The suite works in a directory under /tmp (ext4 here, so O_DIRECT works),
 * made and removed by main, in the runner: a test that fails or times out
 * ends its process before its own cleanup can run. Each test makes its own
 * directory inside, and removes it when it passes.
 */
static char suite_dir[64];
static char scratch[128];

static void make_scratch(void)
{
	make_test_dir(scratch, sizeof(scratch), suite_dir);
}

static void remove_scratch(void)
{
	remove_tree(scratch);
	ck_assert_int_eq(access(scratch, F_OK), -1);
}

/* name inside the scratch directory; four results may be in use at once. */
static const char *at(const char *name)
{
	static char paths[4][256];
	static unsigned next;
	char *p = paths[next++ % 4];

	snprintf(p, sizeof(paths[0]), "%s/%s", scratch, name);
	return p;
}

/* A new empty file, read-write. */
static int create(const char *name)
{
	int fd = coil_open(at(name), O_RDWR | O_CREAT | O_EXCL, 0600, COIL_NEVER);

	ck_assert_msg(fd >= 0, "coil_open %s: %s", name, strerror(-fd));
	return fd;
}

/* A byte that depends on its offset, so that bytes from the wrong place show. */
static unsigned char pattern(uint64_t i, unsigned salt)
{
	return (unsigned char)(i * 131 + (i >> 8) * 7 + salt);
}

static void fill(void *buf, size_t len, uint64_t from, unsigned salt)
{
	unsigned char *b = buf;

	for (size_t i = 0; i < len; i++)
		b[i] = pattern(from + i, salt);
}

/* A new file of len pattern bytes, written with write(2): not the code tested. */
static int create_filled(const char *name, size_t len, unsigned salt)
{
	unsigned char *buf = malloc(len ? len : 1);
	int fd = create(name);

	ck_assert_ptr_nonnull(buf);
	fill(buf, len, 0, salt);
	ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
	free(buf);
	return fd;
}

static int64_t file_size(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return st.st_size;
}

static int64_t file_pos(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

static void open_pipe(int p[2])
{
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
}

static void close_pipe(int p[2])
{
	close(p[0]);
	close(p[1]);
}

/* Whether the len bytes at buf are the pattern from file offset from. */
static bool is_pattern(const void *buf, size_t len, uint64_t from, unsigned salt)
{
	const unsigned char *b = buf;

	for (size_t i = 0; i < len; i++)
		if (b[i] != pattern(from + i, salt))
			return false;
	return true;
}

/* ------------------------------------------------------------- opening */

static int open_creates_once(void *arg)
{
	struct stat st;
	int fd, again, flags;

	(void)arg;
	umask(022);
	fd = coil_open(at("once"), O_RDWR | O_CREAT | O_EXCL, 0640, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	again = coil_open(at("once"), O_RDWR | O_CREAT | O_EXCL, 0640, COIL_NEVER);
	ck_assert_int_eq(again, -EEXIST);
	/* The mode reached the kernel, and so did the access mode. */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0640);
	flags = fcntl(fd, F_GETFL);
	ck_assert_int_eq(flags & O_ACCMODE, O_RDWR);
	/* Added by coil whether asked for or not: no fd leaks into an exec. */
	ck_assert_int_eq(fcntl(fd, F_GETFD), FD_CLOEXEC);
	ck_assert_int_eq(close(fd), 0);

	/* Without O_CREAT a missing file stays missing. */
	ck_assert_int_eq(coil_open(at("missing"), O_RDONLY, 0, COIL_NEVER), -ENOENT);
	ck_assert_int_eq(access(at("missing"), F_OK), -1);
	ck_assert_int_eq(coil_open("/nonexistent-dir/x", O_RDWR | O_CREAT, 0600,
				   COIL_NEVER), -ENOENT);

	fd = coil_open(at("once"), O_RDONLY, 0, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	ck_assert_int_eq(fcntl(fd, F_GETFD), FD_CLOEXEC);
	close(fd);
	ck_assert_uint_eq(inflight(), 0);
	return 0;
}

START_TEST(test_open_o_creat_o_excl_twice_gives_eexist_and_every_fd_is_cloexec)
{
	make_scratch();
	run(open_creates_once, NULL);
	remove_scratch();
}
END_TEST

static int openat_resolves_against_dirfd(void *arg)
{
	char cwd[PATH_MAX];
	int dir, fd;

	(void)arg;
	dir = coil_open(scratch, O_RDONLY | O_DIRECTORY, 0, COIL_NEVER);
	ck_assert_int_ge(dir, 0);
	ck_assert_int_eq(fcntl(dir, F_GETFD), FD_CLOEXEC);
	/* From another working directory, so a relative path cannot land here by luck. */
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(mkdir(at("cwd"), 0700), 0);
	ck_assert_int_eq(chdir(at("cwd")), 0);
	fd = coil_openat(dir, "rel", O_WRONLY | O_CREAT | O_EXCL, 0600, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fcntl(fd, F_GETFD), FD_CLOEXEC);
	close(fd);
	ck_assert_int_eq(access(at("rel"), F_OK), 0);
	ck_assert_int_eq(access("rel", F_OK), -1);
	ck_assert_int_eq(coil_openat(dir, "rel", O_WRONLY | O_CREAT | O_EXCL, 0600,
				     COIL_NEVER), -EEXIST);
	ck_assert_int_eq(coil_openat(dir, "nope", O_RDONLY, 0, COIL_NEVER), -ENOENT);
	/* An absolute path ignores dirfd, as openat(2) does. */
	fd = coil_openat(dir, at("rel"), O_RDONLY, 0, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* coil_open is relative to the working directory. */
	ck_assert_int_eq(chdir(scratch), 0);
	fd = coil_open("rel", O_RDONLY, 0, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(chdir(cwd), 0);
	close(dir);
	return 0;
}

START_TEST(test_openat_resolves_relative_paths_against_its_dirfd)
{
	make_scratch();
	run(openat_resolves_against_dirfd, NULL);
	remove_scratch();
}
END_TEST

/* ------------------------------------------------- reading and writing */

#define SPAN (1 << 20)
#define MAX_IO (64 << 10)
#define ROUNDS 600

/*
 * Writes and reads of random sizes at random offsets, each read checked
 * against a copy of what the file must hold, holes (zeros) and the end of
 * the file included.
 */
static int random_io_matches_reference(void *arg)
{
	unsigned char *ref = calloc(SPAN, 1), *buf = malloc(MAX_IO + 1);
	size_t size = 0, expect;
	int fd, reads = 0, writes = 0, short_reads = 0;

	(void)arg;
	ck_assert_ptr_nonnull(ref);
	ck_assert_ptr_nonnull(buf);
	fd = create("random");
	seed(0xf11e);
	for (int i = 0; i < ROUNDS; i++) {
		size_t off = below(SPAN);
		size_t max = SPAN - off < MAX_IO ? SPAN - off : MAX_IO;
		size_t len = 1 + below(max);
		ssize_t n;

		if (i < 8 || rnd() & 1) {
			for (size_t j = 0; j < len; j++)
				buf[j] = (unsigned char)rnd();
			n = coil_write(fd, buf, len, (int64_t)off, COIL_NEVER);
			CHECK(n == (ssize_t)len, "write %zu at %zu: %zd", len, off, n);
			memcpy(ref + off, buf, len);
			if (off + len > size)
				size = off + len;
			writes++;
			continue;
		}
		expect = off >= size ? 0 : size - off < len ? size - off : len;
		memset(buf, 0xee, len + 1);
		n = coil_read(fd, buf, len, (int64_t)off, COIL_NEVER);
		CHECK(n == (ssize_t)expect, "read %zu at %zu of %zu: %zd, not %zu",
		      len, off, size, n, expect);
		CHECK(memcmp(buf, ref + off, expect) == 0,
		      "read %zu at %zu: wrong bytes", len, off);
		/* Nothing beyond the count was written into the buffer. */
		CHECK(buf[expect] == 0xee, "read at %zu wrote past its count", off);
		short_reads += expect < len;
		reads++;
	}
	/* The sequence exercised all three: writes, reads, reads cut by the end. */
	ck_assert_int_gt(writes, 50);
	ck_assert_int_gt(reads, 50);
	ck_assert_int_gt(short_reads, 0);
	ck_assert_int_eq(file_size(fd), (int64_t)size);
	/* Positional calls leave the file position alone. */
	ck_assert_int_eq(file_pos(fd), 0);
	for (size_t off = 0; off < size; off += MAX_IO) {
		size_t len = size - off < MAX_IO ? size - off : MAX_IO;

		ck_assert_int_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
		ck_assert_msg(memcmp(buf, ref + off, len) == 0,
			      "file differs from the reference at %zu", off);
	}
	ck_assert_uint_eq(inflight(), 0);
	close(fd);
	free(ref);
	free(buf);
	return 0;
}

START_TEST(test_random_reads_and_writes_at_offsets_match_a_reference_copy)
{
	make_scratch();
	run(random_io_matches_reference, NULL);
	remove_scratch();
}
END_TEST

static int io_at_the_file_position(void *arg)
{
	char buf[16] = { 0 };
	int fd;

	(void)arg;
	fd = create("position");
	ck_assert_int_eq(coil_write(fd, "abc", 3, -1, COIL_NEVER), 3);
	ck_assert_int_eq(file_pos(fd), 3);
	ck_assert_int_eq(coil_write(fd, "def", 3, -1, COIL_NEVER), 3);
	ck_assert_int_eq(file_pos(fd), 6);
	/* A positional write neither uses nor moves the position. */
	ck_assert_int_eq(coil_write(fd, "XY", 2, 1, COIL_NEVER), 2);
	ck_assert_int_eq(file_pos(fd), 6);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 6);
	ck_assert_mem_eq(buf, "aXYdef", 6);

	ck_assert_int_eq(lseek(fd, 2, SEEK_SET), 2);
	ck_assert_int_eq(coil_read(fd, buf, 3, -1, COIL_NEVER), 3);
	ck_assert_mem_eq(buf, "Yde", 3);
	ck_assert_int_eq(file_pos(fd), 5);
	ck_assert_int_eq(coil_read(fd, buf, 2, 0, COIL_NEVER), 2);
	ck_assert_mem_eq(buf, "aX", 2);
	ck_assert_int_eq(file_pos(fd), 5);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), -1, COIL_NEVER), 1);
	ck_assert_int_eq(buf[0], 'f');
	/* At the end now: the position reads as end of file. */
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), -1, COIL_NEVER), 0);
	ck_assert_int_eq(file_pos(fd), 6);
	close(fd);
	return 0;
}

START_TEST(test_offset_minus_one_reads_and_writes_at_the_file_position_and_moves_it)
{
	make_scratch();
	run(io_at_the_file_position, NULL);
	remove_scratch();
}
END_TEST

static int reads_at_and_past_the_end(void *arg)
{
	char buf[64];
	int fd;

	(void)arg;
	fd = create_filled("eof", 100, 1);
	memset(buf, 0x55, sizeof(buf));
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 100, COIL_NEVER), 0);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 1 << 20, COIL_NEVER), 0);
	ck_assert_int_eq(buf[0], 0x55);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 90, COIL_NEVER), 10);
	ck_assert(is_pattern(buf, 10, 90, 1));
	ck_assert_int_eq(buf[10], 0x55);
	/* A zero-length read is not end of file, just nothing asked. */
	ck_assert_int_eq(coil_read(fd, buf, 0, 0, COIL_NEVER), 0);
	ck_assert_int_eq(file_size(fd), 100);
	close(fd);
	return 0;
}

START_TEST(test_reads_at_or_past_the_end_of_file_return_0)
{
	make_scratch();
	run(reads_at_and_past_the_end, NULL);
	remove_scratch();
}
END_TEST

/*
 * A length beyond COIL_IO_MAX is cut to it, not truncated to 32 bits:
 * 4 GiB + 5 would otherwise ask for 5 bytes.
 */
static int huge_length_is_cut(void *arg)
{
	char buf[256];
	int fd;

	(void)arg;
	fd = create_filled("huge", 100, 2);
	ck_assert_int_eq(coil_read(fd, buf, (size_t)4 << 30 | 5, 0, COIL_NEVER), 100);
	ck_assert(is_pattern(buf, 100, 0, 2));
	ck_assert_int_eq(coil_read(fd, buf, SIZE_MAX, 50, COIL_NEVER), 50);
	ck_assert(is_pattern(buf, 50, 50, 2));
	close(fd);
	return 0;
}

START_TEST(test_a_length_over_coil_io_max_is_cut_not_wrapped)
{
	make_scratch();
	run(huge_length_is_cut, NULL);
	remove_scratch();
}
END_TEST

static int vectored_io(void *arg)
{
	char a[3], b[8], c[10], d[4], whole[32] = { 0 };
	struct iovec out[] = {
		{ "alpha", 5 }, { "", 0 }, { "beta", 4 }, { "gamma", 5 },
	};
	struct iovec in[] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct iovec tail[] = { { "+", 1 }, { "end", 3 } };
	struct iovec rest[] = { { d, sizeof(d) } };
	int fd;

	(void)arg;
	fd = create("vectored");
	ck_assert_int_eq(coil_writev(fd, out, 4, 100, COIL_NEVER), 14);
	ck_assert_int_eq(file_pos(fd), 0);
	ck_assert_int_eq(pread(fd, whole, sizeof(whole), 100), 14);
	ck_assert_mem_eq(whole, "alphabetagamma", 14);
	ck_assert_int_eq(file_size(fd), 114);

	memset(c, '.', sizeof(c));
	ck_assert_int_eq(coil_readv(fd, in, 3, 100, COIL_NEVER), 14);
	ck_assert_mem_eq(a, "alp", 3);
	ck_assert_mem_eq(b, "habetaga", 8);
	ck_assert_mem_eq(c, "mma.......", 10);

	/* At the position: gather after what is there, scatter from it. */
	ck_assert_int_eq(lseek(fd, 114, SEEK_SET), 114);
	ck_assert_int_eq(coil_writev(fd, tail, 2, -1, COIL_NEVER), 4);
	ck_assert_int_eq(file_pos(fd), 118);
	ck_assert_int_eq(lseek(fd, 112, SEEK_SET), 112);
	ck_assert_int_eq(coil_readv(fd, rest, 1, -1, COIL_NEVER), 4);
	ck_assert_mem_eq(d, "ma+e", 4);
	ck_assert_int_eq(file_pos(fd), 116);
	ck_assert_int_eq(coil_readv(fd, rest, 1, -1, COIL_NEVER), 2);
	ck_assert_mem_eq(d, "nd", 2);
	ck_assert_int_eq(coil_readv(fd, rest, 1, -1, COIL_NEVER), 0);
	ck_assert_int_eq(coil_readv(fd, in, 3, 1000, COIL_NEVER), 0);
	close(fd);
	return 0;
}

START_TEST(test_readv_and_writev_scatter_and_gather_at_offsets_and_the_position)
{
	make_scratch();
	run(vectored_io, NULL);
	remove_scratch();
}
END_TEST

#define WRITE_ALL (3 << 20)

static int write_all_writes_everything(void *arg)
{
	unsigned char *buf = malloc(WRITE_ALL), *back = malloc(WRITE_ALL);
	size_t written = 1;
	int fd;

	(void)arg;
	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(back);
	fill(buf, WRITE_ALL, 0, 3);
	fd = create("all");
	ck_assert_int_eq(coil_write_all(fd, buf, WRITE_ALL, 4096, &written,
					COIL_NEVER), 0);
	ck_assert_uint_eq(written, WRITE_ALL);
	ck_assert_int_eq(file_size(fd), 4096 + WRITE_ALL);
	ck_assert_int_eq(pread(fd, back, WRITE_ALL, 4096), WRITE_ALL);
	ck_assert(memcmp(back, buf, WRITE_ALL) == 0);
	ck_assert_int_eq(file_pos(fd), 0);

	/* At the position, which it moves; written may be NULL. */
	ck_assert_int_eq(lseek(fd, 10, SEEK_SET), 10);
	ck_assert_int_eq(coil_write_all(fd, "0123456789", 10, -1, NULL,
					COIL_NEVER), 0);
	ck_assert_int_eq(file_pos(fd), 20);
	ck_assert_int_eq(pread(fd, back, 10, 10), 10);
	ck_assert_mem_eq(back, "0123456789", 10);

	/* Nothing to write is done at once. */
	written = 1;
	ck_assert_int_eq(coil_write_all(fd, buf, 0, 0, &written, COIL_NEVER), 0);
	ck_assert_uint_eq(written, 0);
	close(fd);
	free(buf);
	free(back);
	return 0;
}

START_TEST(test_write_all_writes_every_byte_at_an_offset_or_the_position)
{
	make_scratch();
	run(write_all_writes_everything, NULL);
	remove_scratch();
}
END_TEST

#define FSIZE_LIMIT 100000

/*
 * RLIMIT_FSIZE cuts the write that crosses it short and fails the next with
 * -EFBIG: write_all must report the error and exactly the bytes that went.
 */
static int write_all_reports_the_count_on_error(void *arg)
{
	struct rlimit limit = { FSIZE_LIMIT, FSIZE_LIMIT };
	unsigned char *buf = malloc(2 * FSIZE_LIMIT);
	size_t written = 0;
	int fd;

	(void)arg;
	ck_assert_ptr_nonnull(buf);
	fill(buf, 2 * FSIZE_LIMIT, 0, 4);
	fd = create("limited");
	/* The kernel signals SIGXFSZ too; the errno is what is tested. */
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limit), 0);
	ck_assert_int_eq(coil_write_all(fd, buf, 2 * FSIZE_LIMIT, 0, &written,
					COIL_NEVER), -EFBIG);
	ck_assert_uint_eq(written, FSIZE_LIMIT);
	ck_assert_int_eq(file_size(fd), FSIZE_LIMIT);
	written = 1;
	ck_assert_int_eq(coil_write_all(fd, buf, 10, FSIZE_LIMIT, &written,
					COIL_NEVER), -EFBIG);
	ck_assert_uint_eq(written, 0);
	close(fd);
	free(buf);
	return 0;
}

START_TEST(test_write_all_returns_the_error_and_the_count_written_before_it)
{
	make_scratch();
	run(write_all_reports_the_count_on_error, NULL);
	remove_scratch();
}
END_TEST

/* ---------------------------------------------------------- sync, stat */

static int sync_calls(void *arg)
{
	int fd, closed, p[2], expect;

	(void)arg;
	fd = create_filled("sync", 8192, 5);
	ck_assert_int_eq(coil_write(fd, "dirty", 5, 0, COIL_NEVER), 5);
	ck_assert_int_eq(coil_fsync(fd, COIL_NEVER), 0);
	ck_assert_int_eq(coil_write(fd, "dirty", 5, 4096, COIL_NEVER), 5);
	ck_assert_int_eq(coil_fdatasync(fd, COIL_NEVER), 0);
	/* A deadline that does not pass changes nothing. */
	ck_assert_int_eq(coil_fsync(fd, coil_now() + COIL_SEC(30)), 0);
	ck_assert_int_eq(coil_fdatasync(fd, coil_now() + COIL_SEC(30)), 0);
	ck_assert_uint_eq(live_deadlines(), 0);

	closed = create("closed");
	close(closed);
	ck_assert_int_eq(coil_fsync(closed, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_fdatasync(closed, COIL_NEVER), -EBADF);

	/* Whatever fsync(2) says of a pipe, the ring says too. */
	open_pipe(p);
	expect = fsync(p[1]) < 0 ? -errno : 0;
	ck_assert_int_eq(expect, -EINVAL);
	ck_assert_int_eq(coil_fsync(p[1], COIL_NEVER), expect);
	expect = fdatasync(p[1]) < 0 ? -errno : 0;
	ck_assert_int_eq(coil_fdatasync(p[1], COIL_NEVER), expect);
	close_pipe(p);
	ck_assert_uint_eq(inflight(), 0);
	close(fd);
	return 0;
}

START_TEST(test_fsync_and_fdatasync_return_0_or_the_kernels_error)
{
	make_scratch();
	run(sync_calls, NULL);
	remove_scratch();
}
END_TEST

static int statx_reports(void *arg)
{
	struct statx sx;
	int fd, dir;

	(void)arg;
	umask(022);
	fd = coil_open(at("stat"), O_RDWR | O_CREAT | O_EXCL, 0640, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(coil_write(fd, "x", 1, 1233, COIL_NEVER), 1);

	memset(&sx, 0, sizeof(sx));
	ck_assert_int_eq(coil_statx(AT_FDCWD, at("stat"), 0,
				    STATX_SIZE | STATX_MODE, &sx, COIL_NEVER), 0);
	ck_assert(sx.stx_mask & STATX_SIZE);
	ck_assert(sx.stx_mask & STATX_MODE);
	ck_assert_uint_eq(sx.stx_size, 1234);
	ck_assert(S_ISREG(sx.stx_mode));
	ck_assert_uint_eq(sx.stx_mode & 0777, 0640);

	/* Relative to a directory fd. */
	dir = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dir, 0);
	memset(&sx, 0, sizeof(sx));
	ck_assert_int_eq(coil_statx(dir, "stat", 0, STATX_SIZE, &sx, COIL_NEVER), 0);
	ck_assert_uint_eq(sx.stx_size, 1234);
	memset(&sx, 0, sizeof(sx));
	ck_assert_int_eq(coil_statx(dir, "", AT_EMPTY_PATH, STATX_MODE, &sx,
				    COIL_NEVER), 0);
	ck_assert(S_ISDIR(sx.stx_mode));

	/* The open file itself, through AT_EMPTY_PATH, sees a later write. */
	ck_assert_int_eq(coil_write(fd, "y", 1, 4999, COIL_NEVER), 1);
	memset(&sx, 0, sizeof(sx));
	ck_assert_int_eq(coil_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE | STATX_MODE,
				    &sx, COIL_NEVER), 0);
	ck_assert_uint_eq(sx.stx_size, 5000);
	ck_assert(S_ISREG(sx.stx_mode));

	memset(&sx, 0x5a, sizeof(sx));
	ck_assert_int_eq(coil_statx(AT_FDCWD, at("absent"), 0, STATX_SIZE, &sx,
				    COIL_NEVER), -ENOENT);
	ck_assert_int_eq(coil_statx(dir, "absent", 0, STATX_SIZE, &sx, COIL_NEVER),
			 -ENOENT);
	close(dir);
	close(fd);
	return 0;
}

START_TEST(test_statx_reports_size_and_mode_by_path_and_by_fd)
{
	make_scratch();
	run(statx_reports, NULL);
	remove_scratch();
}
END_TEST

static int fallocate_calls(void *arg)
{
	char buf[4096], zeros[4096] = { 0 };
	struct stat st;
	blkcnt_t blocks;
	int fd;

	(void)arg;
	fd = create("falloc");
	ck_assert_int_eq(coil_fallocate(fd, 0, 0, 64 << 10, COIL_NEVER), 0);
	ck_assert_int_eq(file_size(fd), 64 << 10);
	/* The offset is honoured: the size reaches off + len. */
	ck_assert_int_eq(coil_fallocate(fd, 0, 100 << 10, 4096, COIL_NEVER), 0);
	ck_assert_int_eq(file_size(fd), (100 << 10) + 4096);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 100 << 10, COIL_NEVER), 4096);
	ck_assert_mem_eq(buf, zeros, sizeof(buf));

	/* The mode is honoured: KEEP_SIZE allocates beyond the end, size unchanged. */
	ck_assert_int_eq(fstat(fd, &st), 0);
	blocks = st.st_blocks;
	ck_assert_int_eq(coil_fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20,
					COIL_NEVER), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (100 << 10) + 4096);
	ck_assert_int_gt(st.st_blocks, blocks);

	ck_assert_int_eq(coil_fallocate(fd, 0, 0, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_fallocate(fd, 0, 0, -4096, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_fallocate(fd, 0, -1, 4096, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_fallocate(fd, 0, INT64_MIN, 4096, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(file_size(fd), (100 << 10) + 4096);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);
	close(fd);
	return 0;
}

START_TEST(test_fallocate_grows_the_file_keeps_size_on_request_and_refuses_bad_ranges)
{
	make_scratch();
	run(fallocate_calls, NULL);
	remove_scratch();
}
END_TEST

/* -------------------------------------------------------------- splice */

#define SPLICED (1 << 20)
#define DST_OFF 512
#define CHUNK (64 << 10)

/* Move len bytes from src at off_in into dst at off_out through pipe p. */
static void splice_through(int src, int64_t off_in, int dst, int64_t off_out,
			   size_t len, int p[2])
{
	size_t moved = 0;

	while (moved < len) {
		size_t want = len - moved < CHUNK ? len - moved : CHUNK;
		ssize_t in = coil_splice(src, off_in + (int64_t)moved, p[1], -1,
					 want, 0, COIL_NEVER);
		ssize_t out = 0;

		CHECK(in > 0, "splice file -> pipe at %zu: %zd", moved, in);
		while (out < in) {
			ssize_t n = coil_splice(p[0], -1, dst,
						off_out + (int64_t)(moved + out),
						(size_t)(in - out), 0, COIL_NEVER);

			CHECK(n > 0, "splice pipe -> file at %zu: %zd",
			      moved + out, n);
			out += n;
		}
		moved += (size_t)in;
	}
}

static int splice_a_mebibyte(void *arg)
{
	unsigned char *back = malloc(SPLICED);
	int src, dst, p[2];
	char byte;

	(void)arg;
	ck_assert_ptr_nonnull(back);
	src = create_filled("src", SPLICED, 6);
	dst = create("dst");
	open_pipe(p);
	splice_through(src, 0, dst, DST_OFF, SPLICED, p);
	ck_assert_int_eq(file_size(dst), DST_OFF + SPLICED);
	ck_assert_int_eq(pread(dst, back, SPLICED, DST_OFF), SPLICED);
	ck_assert(is_pattern(back, SPLICED, 0, 6));
	/* Explicit offsets leave both files' positions alone. */
	ck_assert_int_eq(file_pos(src), 0);
	ck_assert_int_eq(file_pos(dst), 0);
	/* Nothing is left over in the pipe. */
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(read(p[0], &byte, 1), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* At the end of the input: 0. */
	ck_assert_int_eq(coil_splice(src, SPLICED, p[1], -1, 4096, 0, COIL_NEVER), 0);

	/* At the file's own position (-1): it moves. */
	ck_assert_int_eq(lseek(src, 1000, SEEK_SET), 1000);
	ck_assert_int_eq(coil_splice(src, -1, p[1], -1, 100, 0, COIL_NEVER), 100);
	ck_assert_int_eq(file_pos(src), 1100);
	ck_assert_int_eq(read(p[0], back, 200), 100);
	ck_assert(is_pattern(back, 100, 1000, 6));
	close_pipe(p);
	close(src);
	close(dst);
	free(back);
	return 0;
}

START_TEST(test_splice_moves_a_mebibyte_file_to_pipe_to_file_byte_exact)
{
	make_scratch();
	run(splice_a_mebibyte, NULL);
	remove_scratch();
}
END_TEST

static int splice_refusals(void *arg)
{
	int a, b, p[2];

	(void)arg;
	a = create_filled("a", 4096, 7);
	b = create("b");
	open_pipe(p);
	/* One side must be a pipe: the kernel says so. */
	ck_assert_int_eq(coil_splice(a, 0, b, 0, 4096, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_splice(a, -1, b, -1, 4096, 0, COIL_NEVER), -EINVAL);
	/* An offset on the pipe side is refused as well. */
	ck_assert_int_eq(coil_splice(a, 0, p[1], 0, 4096, 0, COIL_NEVER), -ESPIPE);
	/* Offsets below -1 are refused before anything reaches the kernel. */
	ck_assert_int_eq(coil_splice(a, -2, p[1], -1, 4096, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_splice(p[0], -1, b, -2, 4096, 0, COIL_NEVER), -EINVAL);
	ck_assert_uint_eq(unsubmitted(), 0);
	ck_assert_int_eq(file_size(b), 0);
	ck_assert_uint_eq(inflight(), 0);
	close_pipe(p);
	close(a);
	close(b);
	return 0;
}

START_TEST(test_splice_between_two_regular_files_is_einval)
{
	make_scratch();
	run(splice_refusals, NULL);
	remove_scratch();
}
END_TEST

/* ------------------------------------------------------------ O_DIRECT */

START_TEST(test_aligned_alloc_gives_page_aligned_memory_rounded_to_pages)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t sizes[] = { 1, 512, 4095, 4096, 4097, 3 * 4096 + 1, 1 << 20 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t rounded = (sizes[i] + page - 1) / page * page;
		unsigned char *p = coil_aligned_alloc(sizes[i]);

		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq((uintptr_t)p % page, 0);
		/* Usable to the page boundary (ASan would see an overflow). */
		memset(p, 0xa5, rounded);
		ck_assert_uint_eq(p[rounded - 1], 0xa5);
		coil_aligned_free(p);
	}
	ck_assert_ptr_null(coil_aligned_alloc(0));
	ck_assert_ptr_null(coil_aligned_alloc(SIZE_MAX));
	ck_assert_ptr_null(coil_aligned_alloc(SIZE_MAX - page + 2));
	coil_aligned_free(NULL);
}
END_TEST

#define DIRECT_BLOCKS 16
#define BLOCK 4096

/* Open name with O_DIRECT; -EINVAL when the filesystem has no O_DIRECT. */
static int open_direct(const char *name)
{
	int fd = coil_open(at(name), O_RDWR | O_CREAT | O_DIRECT, 0600,
			   COIL_NEVER);

	if (fd >= 0)
		ck_assert(fcntl(fd, F_GETFL) & O_DIRECT);
	return fd;
}

static int direct_io_matches(void *arg)
{
	unsigned char *out = coil_aligned_alloc(DIRECT_BLOCKS * BLOCK);
	unsigned char *in = coil_aligned_alloc(DIRECT_BLOCKS * BLOCK);
	bool *skipped = arg;
	int fd;

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(in);
	fd = open_direct("direct");
	if (fd == -EINVAL) {
		*skipped = true;
		goto out;
	}
	ck_assert_int_ge(fd, 0);
	fill(out, DIRECT_BLOCKS * BLOCK, 0, 8);
	/* Blocks written out of order, each at its own offset. */
	for (int i = DIRECT_BLOCKS - 1; i >= 0; i -= 2)
		ck_assert_int_eq(coil_write(fd, out + i * BLOCK, BLOCK,
					    (int64_t)i * BLOCK, COIL_NEVER), BLOCK);
	for (int i = 0; i < DIRECT_BLOCKS; i += 2)
		ck_assert_int_eq(coil_write(fd, out + i * BLOCK, BLOCK,
					    (int64_t)i * BLOCK, COIL_NEVER), BLOCK);
	for (int i = 0; i < DIRECT_BLOCKS; i++) {
		memset(in, 0, BLOCK);
		ck_assert_int_eq(coil_read(fd, in, BLOCK, (int64_t)i * BLOCK,
					   COIL_NEVER), BLOCK);
		ck_assert_msg(is_pattern(in, BLOCK, (uint64_t)i * BLOCK, 8),
			      "block %d read back wrong", i);
	}
	memset(in, 0, DIRECT_BLOCKS * BLOCK);
	ck_assert_int_eq(coil_read(fd, in, DIRECT_BLOCKS * BLOCK, 0, COIL_NEVER),
			 DIRECT_BLOCKS * BLOCK);
	ck_assert(memcmp(in, out, DIRECT_BLOCKS * BLOCK) == 0);
	ck_assert_int_eq(coil_read(fd, in, BLOCK, DIRECT_BLOCKS * BLOCK,
				   COIL_NEVER), 0);
	close(fd);
out:
	coil_aligned_free(out);
	coil_aligned_free(in);
	return 0;
}

START_TEST(test_o_direct_aligned_reads_and_writes_match)
{
	bool skipped = false;

	make_scratch();
	run(direct_io_matches, &skipped);
	remove_scratch();
	SKIP_UNLESS(!skipped, "no O_DIRECT on /tmp");
}
END_TEST

static int direct_io_misaligned(void *arg)
{
	unsigned char *buf = coil_aligned_alloc(2 * BLOCK);
	bool *skipped = arg;
	int fd;

	ck_assert_ptr_nonnull(buf);
	fd = open_direct("misaligned");
	if (fd == -EINVAL) {
		*skipped = true;
		coil_aligned_free(buf);
		return 0;
	}
	ck_assert_int_ge(fd, 0);
	fill(buf, 2 * BLOCK, 0, 9);
	ck_assert_int_eq(coil_write(fd, buf, BLOCK, 0, COIL_NEVER), BLOCK);
	ck_assert_int_eq(coil_write(fd, buf + 1, BLOCK, BLOCK, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_write(fd, buf, BLOCK, 1, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_write(fd, buf, 100, BLOCK, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_read(fd, buf + 1, BLOCK, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_read(fd, buf, BLOCK, 1, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_read(fd, buf, 100, 0, COIL_NEVER), -EINVAL);
	/* Nothing of the refused writes landed, and the loop goes on. */
	ck_assert_int_eq(file_size(fd), BLOCK);
	ck_assert_uint_eq(inflight(), 0);
	memset(buf, 0, BLOCK);
	ck_assert_int_eq(coil_read(fd, buf, BLOCK, 0, COIL_NEVER), BLOCK);
	ck_assert(is_pattern(buf, BLOCK, 0, 9));
	close(fd);
	coil_aligned_free(buf);
	return 0;
}

START_TEST(test_o_direct_with_a_misaligned_buffer_or_offset_is_einval)
{
	bool skipped = false;

	make_scratch();
	run(direct_io_misaligned, &skipped);
	remove_scratch();
	SKIP_UNLESS(!skipped, "no O_DIRECT on /tmp");
}
END_TEST

/* ---------------------------------------------- registered files, buffers */

static int registered_files(void *arg)
{
	int a, b, c, p[2], fds[4], slot;
	char buf[64];

	(void)arg;
	a = create_filled("reg-a", 1000, 10);
	b = create("reg-b");
	c = create_filled("reg-c", 500, 11);
	open_pipe(p);
	fds[0] = a;
	fds[1] = -1;
	fds[2] = b;
	fds[3] = p[1];
	ck_assert_int_eq(coil_files_register(fds, 4), 0);

	ck_assert_int_eq(coil_read(COIL_FIXED_FD(0), buf, 50, 900, COIL_NEVER), 50);
	ck_assert(is_pattern(buf, 50, 900, 10));
	ck_assert_int_eq(coil_write(COIL_FIXED_FD(2), "fixed", 5, 10, COIL_NEVER), 5);
	ck_assert_int_eq(pread(b, buf, sizeof(buf), 0), 15);
	ck_assert_mem_eq(buf + 10, "fixed", 5);
	ck_assert_int_eq(coil_fsync(COIL_FIXED_FD(2), COIL_NEVER), 0);
	ck_assert_int_eq(coil_fallocate(COIL_FIXED_FD(2), 0, 0, 8192, COIL_NEVER), 0);
	ck_assert_int_eq(file_size(b), 8192);
	/* An empty slot and one past the table name no file. */
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(1), buf, 8, 0, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(4), buf, 8, 0, COIL_NEVER), -EBADF);

	/* Splice names registered files on either side. */
	ck_assert_int_eq(coil_splice(COIL_FIXED_FD(0), 100, COIL_FIXED_FD(3), -1,
				     20, 0, COIL_NEVER), 20);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 20);
	ck_assert(is_pattern(buf, 20, 100, 10));
	ck_assert_int_eq(coil_splice(a, 200, COIL_FIXED_FD(3), -1, 10, 0,
				     COIL_NEVER), 10);
	ck_assert_int_eq(coil_splice(p[0], -1, COIL_FIXED_FD(2), 0, 10, 0,
				     COIL_NEVER), 10);
	ck_assert_int_eq(pread(b, buf, 10, 0), 10);
	ck_assert(is_pattern(buf, 10, 200, 10));

	/* Update fills the empty slot and replaces slot 0. */
	ck_assert_int_eq(coil_files_update(1, &c, 1), 0);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(1), buf, 30, 0, COIL_NEVER), 30);
	ck_assert(is_pattern(buf, 30, 0, 11));
	ck_assert_int_eq(coil_files_update(0, &c, 1), 0);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(0), buf, 30, 400, COIL_NEVER), 30);
	ck_assert(is_pattern(buf, 30, 400, 11));
	slot = -1;
	ck_assert_int_eq(coil_files_update(1, &slot, 1), 0);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(1), buf, 8, 0, COIL_NEVER), -EBADF);

	/* The table holds its own reference: closing the fd does not empty it. */
	ck_assert_int_eq(close(c), 0);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(0), buf, 30, 0, COIL_NEVER), 30);
	ck_assert(is_pattern(buf, 30, 0, 11));

	ck_assert_int_eq(coil_files_register(fds, 4), -EBUSY);
	ck_assert_int_eq(coil_files_update(0, NULL, 1), -EINVAL);
	ck_assert_int_eq(coil_files_update(0, fds, 0), -EINVAL);
	ck_assert_int_eq(coil_files_unregister(), 0);
	/* The caller's fds are still the caller's. */
	ck_assert_int_eq(fcntl(a, F_GETFD), FD_CLOEXEC);
	ck_assert_int_eq(fcntl(b, F_GETFD), FD_CLOEXEC);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(2), buf, 8, 0, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_files_unregister(), -ENXIO);
	ck_assert_int_eq(coil_files_update(0, fds, 1), -ENXIO);

	/* A second table after the first is gone. */
	ck_assert_int_eq(coil_files_register(&b, 1), 0);
	ck_assert_int_eq(coil_read(COIL_FIXED_FD(0), buf, 5, 10, COIL_NEVER), 5);
	ck_assert_mem_eq(buf, "fixed", 5);
	ck_assert_int_eq(coil_files_unregister(), 0);
	ck_assert_uint_eq(inflight(), 0);
	close_pipe(p);
	close(a);
	close(b);
	return 0;
}

START_TEST(test_registered_files_serve_io_through_coil_fixed_fd_and_can_be_updated)
{
	make_scratch();
	run(registered_files, NULL);
	remove_scratch();
}
END_TEST

static int register_refusals(void *arg)
{
	struct iovec iov = { &iov, sizeof(iov) };
	int fd = 0;

	(void)arg;
	ck_assert_int_eq(coil_files_register(NULL, 1), -EINVAL);
	ck_assert_int_eq(coil_files_register(&fd, 0), -EINVAL);
	ck_assert_int_eq(coil_files_update(0, &fd, 1), -ENXIO);
	ck_assert_int_eq(coil_files_unregister(), -ENXIO);
	ck_assert_int_eq(coil_buffers_register(NULL, 1), -EINVAL);
	ck_assert_int_eq(coil_buffers_register(&iov, 0), -EINVAL);
	ck_assert_int_eq(coil_buffers_unregister(), -ENXIO);
	/* A table the kernel refuses is not counted as registered. */
	fd = INT_MAX;
	ck_assert_int_eq(coil_files_register(&fd, 1), -EBADF);
	ck_assert_int_eq(coil_files_unregister(), -ENXIO);
	return 0;
}

START_TEST(test_registration_refuses_null_and_empty_tables_and_missing_ones)
{
	run(register_refusals, NULL);
}
END_TEST

START_TEST(test_registration_outside_a_loop_is_eperm)
{
	struct iovec iov = { &iov, sizeof(iov) };
	int fd = 0;

	ck_assert_int_eq(coil_files_register(&fd, 1), -EPERM);
	ck_assert_int_eq(coil_files_update(0, &fd, 1), -EPERM);
	ck_assert_int_eq(coil_files_unregister(), -EPERM);
	ck_assert_int_eq(coil_buffers_register(&iov, 1), -EPERM);
	ck_assert_int_eq(coil_buffers_unregister(), -EPERM);
}
END_TEST

static int drop_registered_pipe(void *arg)
{
	int *p = arg;

	ck_assert_int_eq(coil_files_register(&p[1], 1), 0);
	ck_assert_int_eq(close(p[1]), 0);
	/* Still open: the table holds it. */
	ck_assert_int_eq(coil_write(COIL_FIXED_FD(0), "x", 1, -1, COIL_NEVER), 1);
	return 0;
}

/*
 * The loop drops its tables when it stops: the pipe's last writer goes
 * with it and the reader sees the end of the stream. The kernel frees a
 * ring's tables a little after the ring is closed (tens of ms here), so the
 * end is awaited with a bound rather than expected at once.
 */
START_TEST(test_registered_files_are_released_when_the_loop_stops)
{
	struct pollfd pfd;
	char buf[4];
	int p[2];

	open_pipe(p);
	run(drop_registered_pipe, p);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 1);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
}
END_TEST

#define FIXED_LEN (64 << 10)

static int registered_buffers(void *arg)
{
	unsigned char *mem = coil_aligned_alloc(2 * FIXED_LEN);
	unsigned char outside[64];
	struct iovec iov[2] = {
		{ mem, FIXED_LEN }, { mem + FIXED_LEN, FIXED_LEN },
	};
	unsigned char *out = mem, *in = mem + FIXED_LEN;
	int fd;

	(void)arg;
	ck_assert_ptr_nonnull(mem);
	fd = create("fixed-buf");
	ck_assert_int_eq(coil_buffers_register(iov, 2), 0);
	ck_assert_int_eq(coil_buffers_register(iov, 2), -EBUSY);

	/* From inside buffer 0, at an offset into it, to an offset in the file. */
	fill(out, FIXED_LEN, 0, 12);
	ck_assert_int_eq(coil_write_fixed(fd, out + 100, 5000, 7000, 0, COIL_NEVER),
			 5000);
	ck_assert_int_eq(coil_write_fixed(fd, out, 100, -1, 0, COIL_NEVER), 100);
	ck_assert_int_eq(file_pos(fd), 100);
	ck_assert_int_eq(file_size(fd), 12000);
	memset(in, 0, FIXED_LEN);
	ck_assert_int_eq(coil_read_fixed(fd, in + 3, 5000, 7000, 1, COIL_NEVER), 5000);
	ck_assert(is_pattern(in + 3, 5000, 100, 12));
	ck_assert_int_eq(in[5003], 0);
	ck_assert_int_eq(coil_read_fixed(fd, in, 100, 0, 1, COIL_NEVER), 100);
	ck_assert(is_pattern(in, 100, 0, 12));
	/* A read cut by the end of file, and one past it. */
	ck_assert_int_eq(coil_read_fixed(fd, in, FIXED_LEN, 11000, 1, COIL_NEVER),
			 1000);
	ck_assert(is_pattern(in, 1000, 4100, 12));
	ck_assert_int_eq(coil_read_fixed(fd, in, 100, 12000, 1, COIL_NEVER), 0);

	/* Memory outside the named buffer is refused by the kernel, untouched. */
	memset(outside, 0x77, sizeof(outside));
	ck_assert_int_eq(coil_read_fixed(fd, outside, sizeof(outside), 0, 0,
					 COIL_NEVER), -EFAULT);
	ck_assert_int_eq(outside[0], 0x77);
	ck_assert_int_eq(coil_read_fixed(fd, in, 100, 0, 0, COIL_NEVER), -EFAULT);
	ck_assert_int_eq(coil_read_fixed(fd, in + FIXED_LEN - 10, 20, 0, 1,
					 COIL_NEVER), -EFAULT);
	ck_assert_int_eq(coil_read_fixed(fd, in, 100, 0, 2, COIL_NEVER), -EFAULT);
	ck_assert_int_eq(coil_write_fixed(fd, outside, 10, 0, 0, COIL_NEVER), -EFAULT);
	ck_assert_int_eq(file_size(fd), 12000);

	ck_assert_int_eq(coil_buffers_unregister(), 0);
	ck_assert_int_eq(coil_buffers_unregister(), -ENXIO);
	ck_assert_int_eq(coil_read_fixed(fd, in, 100, 0, 1, COIL_NEVER), -EFAULT);

	/* Register again, one buffer this time: index 0 is now all of it. */
	iov[0].iov_len = 2 * FIXED_LEN;
	ck_assert_int_eq(coil_buffers_register(iov, 1), 0);
	memset(in, 0, 100);
	ck_assert_int_eq(coil_read_fixed(fd, in, 100, 7000, 0, COIL_NEVER), 100);
	ck_assert(is_pattern(in, 100, 100, 12));

	/* Both registered: a fixed file and a fixed buffer in one call. */
	ck_assert_int_eq(coil_files_register(&fd, 1), 0);
	ck_assert_int_eq(coil_write_fixed(COIL_FIXED_FD(0), out, 10, 20000, 0,
					  COIL_NEVER), 10);
	ck_assert_int_eq(coil_read_fixed(COIL_FIXED_FD(0), in, 10, 20000, 0,
					 COIL_NEVER), 10);
	ck_assert(is_pattern(in, 10, 0, 12));
	ck_assert_int_eq(coil_files_unregister(), 0);
	ck_assert_int_eq(coil_buffers_unregister(), 0);
	ck_assert_uint_eq(inflight(), 0);
	close(fd);
	coil_aligned_free(mem);
	return 0;
}

START_TEST(test_registered_buffers_read_and_write_byte_exact_and_refuse_other_memory)
{
	make_scratch();
	run(registered_buffers, NULL);
	remove_scratch();
}
END_TEST

/* ------------------------------------------------- deadlines, cancels */

/* Reads once, then records what its next parking call gets. */
struct file_reader {
	int fd;
	void *buf;
	size_t len;
	int64_t off;
	int64_t deadline;
	ssize_t res;
	int next;
};

static int read_then_yield(void *arg)
{
	struct file_reader *r = arg;

	r->res = coil_read(r->fd, r->buf, r->len, r->off, r->deadline);
	r->next = coil_yield();
	return 0;
}

/*
 * The contract for a cancelled read, whichever way the race went: the data
 * and -ECANCELED at the next park, or -ECANCELED with nothing left in flight.
 */
static void check_cancelled_read(const struct file_reader *r, unsigned salt)
{
	if (r->res == -ECANCELED) {
		ck_assert_int_eq(r->next, -ECANCELED);
		ck_assert_uint_eq(inflight(), 0);
		return;
	}
	ck_assert_msg(r->res == (ssize_t)r->len, "cancelled read returned %zd",
		      r->res);
	ck_assert_msg(is_pattern(r->buf, r->len, (uint64_t)r->off, salt),
		      "a read that beat its cancel returned wrong bytes");
	ck_assert_int_eq(r->next, -ECANCELED);
	ck_assert_uint_eq(inflight(), 0);
}

#define READ_LEN (256 << 10)

struct cancel_tally {
	int data;
	int cancelled;
};

/*
 * Cancel a reader at three points: with the cancel queued behind the read in
 * one submission, once the read has reached the kernel, and after the loop
 * had a chance to reap its completion. Buffered and O_DIRECT: a direct read
 * goes to the device, so the cancel may find it in flight.
 */
static int cancel_file_reads(void *arg)
{
	struct cancel_tally *tally = arg;
	unsigned char *buf = coil_aligned_alloc(READ_LEN);
	int fds[2], nfds = 1;

	ck_assert_ptr_nonnull(buf);
	fds[0] = create_filled("cancel", 4 * READ_LEN, 13);
	ck_assert_int_eq(fsync(fds[0]), 0);
	fds[1] = coil_open(at("cancel"), O_RDONLY | O_DIRECT, 0, COIL_NEVER);
	if (fds[1] >= 0)
		nfds = 2;
	for (int round = 0; round < 12; round++) {
		struct file_reader r = {
			.fd = fds[round % nfds], .buf = buf, .len = READ_LEN,
			.off = (int64_t)(round % 4) * READ_LEN,
			.deadline = COIL_NEVER, .res = 1,
		};
		coil_task *t;

		memset(buf, 0, READ_LEN);
		ck_assert_int_eq(coil_spawn(&t, read_then_yield, &r, NULL), 0);
		ck_assert_int_eq(coil_yield(), 0); /* r queues its read, parks */
		if (round / 2 % 3 >= 1)
			ck_assert_int_eq(coil_yield(), 0); /* the kernel has it */
		if (round / 2 % 3 == 2)
			ck_assert_int_eq(coil_yield(), 0);
		ck_assert_int_eq(coil_cancel(t), 0);
		ck_assert_int_eq(join(t), 0);
		check_cancelled_read(&r, 13);
		if (r.res == -ECANCELED)
			tally->cancelled++;
		else
			tally->data++;
	}
	close(fds[0]);
	if (nfds == 2)
		close(fds[1]);
	coil_aligned_free(buf);
	return 0;
}

START_TEST(test_a_cancelled_file_read_returns_right_data_or_ecanceled_with_nothing_in_flight)
{
	struct cancel_tally tally = { 0 };

	make_scratch();
	run(cancel_file_reads, &tally);
	remove_scratch();
	/* Which way each went is the kernel's business; say it for the log. */
	fprintf(stderr, "%s: %d reads kept their data, %d were cancelled\n",
		__func__, tally.data, tally.cancelled);
}
END_TEST

static int make_fifo(void)
{
	int fd;

	ck_assert_int_eq(mkfifo(at("fifo"), 0600), 0);
	/* Read-write, so that opening waits for no peer. */
	fd = coil_open(at("fifo"), O_RDWR, 0, COIL_NEVER);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static int cancel_fifo_read(void *arg)
{
	char buf[16];
	struct file_reader r = { .buf = buf, .len = sizeof(buf),
				 .off = -1, .deadline = COIL_NEVER };
	coil_task *t;

	(void)arg;
	r.fd = make_fifo();
	ck_assert_int_eq(coil_spawn(&t, read_then_yield, &r, NULL), 0);
	let_tasks_park();
	ck_assert(parked(t));
	ck_assert_uint_eq(inflight(), 1);
	ck_assert_int_eq(coil_cancel(t), 0);
	ck_assert_int_eq(join(t), 0);
	ck_assert_int_eq(r.res, -ECANCELED);
	ck_assert_int_eq(r.next, -ECANCELED);
	ck_assert_uint_eq(inflight(), 0);
	/* Cancelled in the kernel, not abandoned: it takes none of what comes. */
	ck_assert_int_eq(coil_write(r.fd, "later", 5, -1, COIL_NEVER), 5);
	ck_assert_int_eq(coil_read(r.fd, buf, sizeof(buf), -1, COIL_NEVER), 5);
	ck_assert_mem_eq(buf, "later", 5);
	close(r.fd);
	return 0;
}

START_TEST(test_a_fifo_read_with_no_writer_is_cancelled_in_the_kernel)
{
	make_scratch();
	run(cancel_fifo_read, NULL);
	remove_scratch();
}
END_TEST

static int fifo_read_times_out(void *arg)
{
	int64_t deadline = coil_now() + COIL_MSEC(20);
	char buf[16];
	int fd;

	(void)arg;
	fd = make_fifo();
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), -1, deadline), -ETIMEDOUT);
	ck_assert_int_ge(coil_now(), deadline);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(live_deadlines(), 0);
	ck_assert_int_eq(coil_write(fd, "late", 4, -1, COIL_NEVER), 4);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), -1, COIL_NEVER), 4);
	ck_assert_mem_eq(buf, "late", 4);
	/* A passed deadline with nothing to read: at once, and cancelled too. */
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), -1, coil_now()), -ETIMEDOUT);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_int_eq(coil_write(fd, "again", 5, -1, COIL_NEVER), 5);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), -1, COIL_NEVER), 5);
	ck_assert_mem_eq(buf, "again", 5);
	close(fd);
	return 0;
}

START_TEST(test_a_fifo_read_with_no_writer_times_out_at_its_deadline)
{
	make_scratch();
	run(fifo_read_times_out, NULL);
	remove_scratch();
}
END_TEST

/*
 * The read and its cancel reach the kernel in one submission, in that
 * order; a read of data already there (the page cache, a FIFO holding
 * bytes) completes as it is issued, so the cancel finds nothing to cancel.
 */
static int passed_deadline_keeps_data(void *arg)
{
	char buf[64];
	int fd, fifo;

	(void)arg;
	fd = create_filled("ready", 4096, 14);
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 1000, coil_now()), 64);
	ck_assert(is_pattern(buf, 64, 1000, 14));
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 0, coil_now() - COIL_SEC(1)),
			 64);
	ck_assert(is_pattern(buf, 64, 0, 14));
	fifo = make_fifo();
	ck_assert_int_eq(write(fifo, "ready", 5), 5);
	ck_assert_int_eq(coil_read(fifo, buf, sizeof(buf), -1, coil_now()), 5);
	ck_assert_mem_eq(buf, "ready", 5);
	ck_assert_uint_eq(inflight(), 0);
	close(fifo);
	close(fd);
	return 0;
}

START_TEST(test_a_passed_deadline_with_data_available_returns_the_data)
{
	make_scratch();
	run(passed_deadline_keeps_data, NULL);
	remove_scratch();
}
END_TEST

/* ----------------------------------------------------------- bad input */

static int closed_fd_is_ebadf(void *arg)
{
	struct iovec iov;
	struct statx sx;
	char buf[16];
	int fd, p[2];

	(void)arg;
	/* The pipe first: it must not reuse the closed fd's number. */
	open_pipe(p);
	fd = create("closed");
	ck_assert_int_eq(close(fd), 0);
	iov = (struct iovec){ buf, sizeof(buf) };
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), 0, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_write(fd, "x", 1, 0, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_readv(fd, &iov, 1, 0, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_writev(fd, &iov, 1, 0, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_write_all(fd, "x", 1, 0, NULL, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_fallocate(fd, 0, 0, 4096, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx,
				    COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_openat(fd, "x", O_RDONLY, 0, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_splice(fd, 0, p[1], -1, 16, 0, COIL_NEVER), -EBADF);
	ck_assert_int_eq(coil_splice(p[0], -1, fd, 0, 16, 0, COIL_NEVER), -EBADF);
	ck_assert_uint_eq(inflight(), 0);
	/* The loop goes on. */
	ck_assert_int_eq(coil_write(p[1], "ok", 2, -1, COIL_NEVER), 2);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), 2);
	close_pipe(p);
	return 0;
}

START_TEST(test_file_calls_on_a_closed_fd_return_ebadf)
{
	make_scratch();
	run(closed_fd_is_ebadf, NULL);
	remove_scratch();
}
END_TEST

/*
 * Offsets below -1 are refused, on files and on streams alike, and nothing
 * is read or written: the pipe keeps its bytes, the file its size.
 */
static int offsets_below_minus_one(void *arg)
{
	char buf[16], mem[16];
	struct iovec iov = { buf, sizeof(buf) };
	struct iovec reg = { mem, sizeof(mem) };
	int fd, p[2];

	(void)arg;
	fd = create_filled("offsets", 100, 15);
	open_pipe(p);
	ck_assert_int_eq(write(p[1], "kept", 4), 4);
	ck_assert_int_eq(coil_buffers_register(&reg, 1), 0);
	for (int64_t off = -2; off >= -3; off--) {
		ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), off, COIL_NEVER),
				 -EINVAL);
		ck_assert_int_eq(coil_readv(p[0], &iov, 1, off, COIL_NEVER), -EINVAL);
		ck_assert_int_eq(coil_read_fixed(p[0], mem, sizeof(mem), off, 0,
						 COIL_NEVER), -EINVAL);
		ck_assert_int_eq(coil_write(p[1], "x", 1, off, COIL_NEVER), -EINVAL);
		ck_assert_int_eq(coil_writev(p[1], &iov, 1, off, COIL_NEVER), -EINVAL);
		ck_assert_int_eq(coil_write_fixed(p[1], mem, 1, off, 0, COIL_NEVER),
				 -EINVAL);
		ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), off, COIL_NEVER),
				 -EINVAL);
		ck_assert_int_eq(coil_write(fd, "x", 1, off, COIL_NEVER), -EINVAL);
		ck_assert_uint_eq(unsubmitted(), 0);
	}
	ck_assert_int_eq(coil_read(fd, buf, sizeof(buf), INT64_MIN, COIL_NEVER),
			 -EINVAL);
	ck_assert_int_eq(coil_buffers_unregister(), 0);
	ck_assert_uint_eq(inflight(), 0);
	/* The pipe still holds exactly what was written before. */
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "kept", 4);
	ck_assert_int_eq(file_size(fd), 100);
	close_pipe(p);
	close(fd);
	return 0;
}

START_TEST(test_offsets_below_minus_one_are_einval_and_reach_no_fd)
{
	make_scratch();
	run(offsets_below_minus_one, NULL);
	remove_scratch();
}
END_TEST

static int bad_iovcnt(void *arg)
{
	char buf[8];
	struct iovec iov = { buf, sizeof(buf) };
	int fd;

	(void)arg;
	fd = create_filled("iovcnt", 64, 16);
	ck_assert_int_eq(coil_readv(fd, &iov, -1, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_writev(fd, &iov, -1, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_readv(fd, &iov, IOV_MAX + 1, 0, COIL_NEVER), -EINVAL);
	ck_assert_int_eq(coil_writev(fd, &iov, IOV_MAX + 1, 0, COIL_NEVER), -EINVAL);
	ck_assert_uint_eq(unsubmitted(), 0);
	ck_assert_int_eq(file_size(fd), 64);
	close(fd);
	return 0;
}

START_TEST(test_readv_and_writev_refuse_a_negative_or_huge_iovcnt)
{
	make_scratch();
	run(bad_iovcnt, NULL);
	remove_scratch();
}
END_TEST

/* Every call below must refuse before touching anything: no loop, no ring. */
START_TEST(test_file_calls_outside_a_task_return_eperm_and_do_nothing)
{
	struct iovec iov;
	struct statx sx;
	char buf[16];
	size_t written = 1;
	int fd, p[2];

	make_scratch();
	fd = open(at("outside"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "content", 7, 0), 7);
	iov = (struct iovec){ buf, sizeof(buf) };
	open_pipe(p);
	ck_assert_int_eq(write(p[1], "kept", 4), 4);

	ck_assert_int_eq(coil_open(at("new"), O_RDWR | O_CREAT, 0600, COIL_NEVER),
			 -EPERM);
	ck_assert_int_eq(access(at("new"), F_OK), -1);
	ck_assert_int_eq(coil_openat(AT_FDCWD, at("new"), O_RDWR | O_CREAT, 0600,
				     COIL_NEVER), -EPERM);
	ck_assert_int_eq(access(at("new"), F_OK), -1);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_readv(p[0], &iov, 1, -1, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_read_fixed(p[0], buf, 4, -1, 0, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_write(fd, "XXXX", 4, 0, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_writev(fd, &iov, 1, 0, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_write_fixed(fd, buf, 4, 0, 0, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_write_all(fd, "XXXX", 4, 0, &written, COIL_NEVER),
			 -EPERM);
	ck_assert_uint_eq(written, 0);
	ck_assert_int_eq(coil_fsync(fd, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_fdatasync(fd, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx,
				    COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_fallocate(fd, 0, 0, 1 << 20, COIL_NEVER), -EPERM);
	ck_assert_int_eq(coil_splice(p[0], -1, fd, 0, 4, 0, COIL_NEVER), -EPERM);
	/* Deadlines change nothing. */
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, coil_now()), -EPERM);

	ck_assert_int_eq(file_size(fd), 7);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 7);
	ck_assert_mem_eq(buf, "content", 7);
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 4);
	close_pipe(p);
	close(fd);
	remove_scratch();
}
END_TEST

static int cancelled_task_starts_nothing(void *arg)
{
	struct iovec iov;
	struct statx sx;
	char buf[16];
	size_t written = 1;
	int fd, p[2];

	(void)arg;
	fd = create_filled("cancelled", 100, 17);
	iov = (struct iovec){ buf, sizeof(buf) };
	open_pipe(p);
	ck_assert_int_eq(write(p[1], "kept", 4), 4);
	ck_assert_int_eq(coil_cancel(coil_current()), 0);

	ck_assert_int_eq(coil_open(at("new"), O_RDWR | O_CREAT, 0600, COIL_NEVER),
			 -ECANCELED);
	ck_assert_int_eq(coil_openat(AT_FDCWD, at("new"), O_RDWR | O_CREAT, 0600,
				     COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_read(p[0], buf, sizeof(buf), -1, COIL_NEVER),
			 -ECANCELED);
	ck_assert_int_eq(coil_readv(p[0], &iov, 1, -1, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_read_fixed(p[0], buf, 4, -1, 0, COIL_NEVER),
			 -ECANCELED);
	ck_assert_int_eq(coil_write(fd, "XXXX", 4, 0, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_writev(fd, &iov, 1, 0, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_write_fixed(fd, buf, 4, 0, 0, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_write_all(fd, "XXXX", 4, 0, &written, COIL_NEVER),
			 -ECANCELED);
	ck_assert_uint_eq(written, 0);
	ck_assert_int_eq(coil_fsync(fd, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_fdatasync(fd, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx,
				    COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_fallocate(fd, 0, 0, 1 << 20, COIL_NEVER), -ECANCELED);
	ck_assert_int_eq(coil_splice(p[0], -1, fd, 0, 4, 0, COIL_NEVER), -ECANCELED);
	ck_assert_uint_eq(inflight(), 0);
	ck_assert_uint_eq(unsubmitted(), 0);

	ck_assert_int_eq(access(at("new"), F_OK), -1);
	ck_assert_int_eq(file_size(fd), 100);
	ck_assert_int_eq(pread(fd, buf, 4, 0), 4);
	ck_assert(is_pattern(buf, 4, 0, 17));
	ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "kept", 4);
	close_pipe(p);
	close(fd);
	return 0;
}

START_TEST(test_file_calls_in_a_cancelled_task_return_ecanceled_and_start_nothing)
{
	make_scratch();
	run(cancelled_task_starts_nothing, NULL);
	remove_scratch();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("executor_file");
	int ret;

	if (make_suite_dir(suite_dir, sizeof(suite_dir), "file") < 0)
		return 1;

	ADD_TEST(s, test_open_o_creat_o_excl_twice_gives_eexist_and_every_fd_is_cloexec, 10);
	ADD_TEST(s, test_openat_resolves_relative_paths_against_its_dirfd, 10);
	ADD_TEST(s, test_random_reads_and_writes_at_offsets_match_a_reference_copy, 60);
	ADD_TEST(s, test_offset_minus_one_reads_and_writes_at_the_file_position_and_moves_it, 10);
	ADD_TEST(s, test_reads_at_or_past_the_end_of_file_return_0, 10);
	ADD_TEST(s, test_a_length_over_coil_io_max_is_cut_not_wrapped, 10);
	ADD_TEST(s, test_readv_and_writev_scatter_and_gather_at_offsets_and_the_position, 10);
	ADD_TEST(s, test_write_all_writes_every_byte_at_an_offset_or_the_position, 30);
	ADD_TEST(s, test_write_all_returns_the_error_and_the_count_written_before_it, 10);
	ADD_TEST(s, test_fsync_and_fdatasync_return_0_or_the_kernels_error, 30);
	ADD_TEST(s, test_statx_reports_size_and_mode_by_path_and_by_fd, 10);
	ADD_TEST(s, test_fallocate_grows_the_file_keeps_size_on_request_and_refuses_bad_ranges, 10);
	ADD_TEST(s, test_splice_moves_a_mebibyte_file_to_pipe_to_file_byte_exact, 30);
	ADD_TEST(s, test_splice_between_two_regular_files_is_einval, 10);
	ADD_TEST(s, test_aligned_alloc_gives_page_aligned_memory_rounded_to_pages, 10);
	ADD_TEST(s, test_o_direct_aligned_reads_and_writes_match, 30);
	ADD_TEST(s, test_o_direct_with_a_misaligned_buffer_or_offset_is_einval, 30);
	ADD_TEST(s, test_registered_files_serve_io_through_coil_fixed_fd_and_can_be_updated, 10);
	ADD_TEST(s, test_registration_refuses_null_and_empty_tables_and_missing_ones, 10);
	ADD_TEST(s, test_registration_outside_a_loop_is_eperm, 10);
	ADD_TEST(s, test_registered_files_are_released_when_the_loop_stops, 10);
	ADD_TEST(s, test_registered_buffers_read_and_write_byte_exact_and_refuse_other_memory, 10);
	ADD_TEST(s, test_a_cancelled_file_read_returns_right_data_or_ecanceled_with_nothing_in_flight, 30);
	ADD_TEST(s, test_a_fifo_read_with_no_writer_is_cancelled_in_the_kernel, 10);
	ADD_TEST(s, test_a_fifo_read_with_no_writer_times_out_at_its_deadline, 10);
	ADD_TEST(s, test_a_passed_deadline_with_data_available_returns_the_data, 10);
	ADD_TEST(s, test_file_calls_on_a_closed_fd_return_ebadf, 10);
	ADD_TEST(s, test_offsets_below_minus_one_are_einval_and_reach_no_fd, 10);
	ADD_TEST(s, test_readv_and_writev_refuse_a_negative_or_huge_iovcnt, 10);
	ADD_TEST(s, test_file_calls_outside_a_task_return_eperm_and_do_nothing, 10);
	ADD_TEST(s, test_file_calls_in_a_cancelled_task_return_ecanceled_and_start_nothing, 10);
	ret = test_main(s);
	remove_tree(suite_dir);
	return ret;
}
