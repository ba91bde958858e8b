/*
 * Files: open, sync, statx, fallocate, splice, aligned memory for O_DIRECT,
 * and the loop's registered files and buffers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "executor/io.h"
#include "executor/loop.h"

int coil_openat(int dirfd, const char *path, int flags, mode_t mode,
		int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_openat(sqe, dirfd, path, flags | O_CLOEXEC, mode);
	coil__sqe_fd(sqe, dirfd);
	return coil__io_await(&io, deadline);
}

int coil_open(const char *path, int flags, mode_t mode, int64_t deadline)
{
	return coil_openat(AT_FDCWD, path, flags, mode, deadline);
}

static int sync_file(int fd, unsigned flags, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_fsync(sqe, fd, flags);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

int coil_fsync(int fd, int64_t deadline)
{
	return sync_file(fd, 0, deadline);
}

int coil_fdatasync(int fd, int64_t deadline)
{
	return sync_file(fd, IORING_FSYNC_DATASYNC, deadline);
}

int coil_statx(int dirfd, const char *path, int flags, unsigned mask,
	       struct statx *out, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;
	int ret;

	if (!out)
		return -EFAULT;
	sqe = coil__io_prep(&io);
	io_uring_prep_statx(sqe, dirfd, path, flags, mask, out);
	coil__sqe_fd(sqe, dirfd);
	ret = coil__io_await(&io, deadline);
	if (ret == 0)
		coil__mark_defined(out, sizeof(*out));
	return ret;
}

int coil_fallocate(int fd, int mode, int64_t off, int64_t len,
		   int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;

	if (off < 0 || len <= 0)
		return -EINVAL;
	sqe = coil__io_prep(&io);
	io_uring_prep_fallocate(sqe, fd, mode, (__u64)off, (__u64)len);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

ssize_t coil_splice(int fd_in, int64_t off_in, int fd_out, int64_t off_out,
		    size_t len, unsigned flags, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;

	if (off_in < -1 || off_out < -1)
		return -EINVAL;
	sqe = coil__io_prep(&io);
	io_uring_prep_splice(sqe, fd_in, off_in, fd_out, off_out,
			     coil__io_len(len), flags);
	coil__sqe_fd(sqe, fd_out);
	if (coil__is_fixed_fd(fd_in)) {
		sqe->splice_fd_in = (int)((unsigned)fd_in & 0xFFFFFu);
		sqe->splice_flags |= SPLICE_F_FD_IN_FIXED;
	}
	return coil__io_await(&io, deadline);
}

void *coil_aligned_alloc(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p;

	if (!len || len > SIZE_MAX - page)
		return NULL;
	if (posix_memalign(&p, page, (len + page - 1) & ~(page - 1)))
		return NULL;
	return p;
}

void coil_aligned_free(void *p)
{
	free(p);
}

/* The ring of this thread's loop, for registrations; NULL outside one. */
static struct io_uring *loop_uring(void)
{
	coil__loop *l = coil__this_loop;

	return l && !l->dead ? &l->ring.uring : NULL;
}

int coil_files_register(const int *fds, unsigned n)
{
	struct io_uring *u = loop_uring();

	if (!u)
		return -EPERM;
	if (!fds || !n)
		return -EINVAL;
	if (coil__this_loop->files_registered)
		return -EBUSY;
	int ret = io_uring_register_files(u, fds, n);

	if (ret == 0)
		coil__this_loop->files_registered = true;
	return ret;
}

int coil_files_update(unsigned off, const int *fds, unsigned n)
{
	struct io_uring *u = loop_uring();
	int ret;

	if (!u)
		return -EPERM;
	if (!fds || !n)
		return -EINVAL;
	if (!coil__this_loop->files_registered)
		return -ENXIO;
	ret = io_uring_register_files_update(u, off, fds, n);
	return ret < 0 ? ret : 0;
}

int coil_files_unregister(void)
{
	struct io_uring *u = loop_uring();
	int ret;

	if (!u)
		return -EPERM;
	if (!coil__this_loop->files_registered)
		return -ENXIO;
	ret = io_uring_unregister_files(u);
	if (ret == 0)
		coil__this_loop->files_registered = false;
	return ret;
}

int coil_buffers_register(const struct iovec *iov, unsigned n)
{
	struct io_uring *u = loop_uring();
	int ret;

	if (!u)
		return -EPERM;
	if (!iov || !n)
		return -EINVAL;
	if (coil__this_loop->buffers_registered)
		return -EBUSY;
	ret = io_uring_register_buffers(u, iov, n);
	if (ret == 0)
		coil__this_loop->buffers_registered = true;
	return ret;
}

int coil_buffers_unregister(void)
{
	struct io_uring *u = loop_uring();
	int ret;

	if (!u)
		return -EPERM;
	if (!coil__this_loop->buffers_registered)
		return -ENXIO;
	ret = io_uring_unregister_buffers(u);
	if (ret == 0)
		coil__this_loop->buffers_registered = false;
	return ret;
}
