/*
 * Any fd: read, write, their vectored and registered-buffer forms, poll and
 * close, each awaited by the calling task.
 */
#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "executor/io.h"
#include "executor/loop.h"

/* -1 is the file position for io_uring as for read(2); other negatives are bad. */
static bool bad_offset(int64_t off)
{
	return off < -1;
}

ssize_t coil_read(int fd, void *buf, size_t len, int64_t off, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;

	if (bad_offset(off))
		return -EINVAL;
	sqe = coil__io_prep(&io);
	io_uring_prep_read(sqe, fd, buf, coil__io_len(len), (__u64)off);
	coil__sqe_fd(sqe, fd);
	return coil__await_read(&io, buf, deadline);
}

ssize_t coil_write(int fd, const void *buf, size_t len, int64_t off,
		   int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;

	if (bad_offset(off))
		return -EINVAL;
	sqe = coil__io_prep(&io);
	io_uring_prep_write(sqe, fd, buf, coil__io_len(len), (__u64)off);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

ssize_t coil_readv(int fd, const struct iovec *iov, int iovcnt, int64_t off,
		   int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;

	if (bad_offset(off) || iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	sqe = coil__io_prep(&io);
	io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, (__u64)off);
	coil__sqe_fd(sqe, fd);
	return coil__await_readv(&io, iov, iovcnt, deadline);
}

ssize_t coil_writev(int fd, const struct iovec *iov, int iovcnt, int64_t off,
		    int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;

	if (bad_offset(off) || iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	sqe = coil__io_prep(&io);
	io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, (__u64)off);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

int coil_write_all(int fd, const void *buf, size_t len, int64_t off,
		   size_t *written, int64_t deadline)
{
	size_t done = 0;
	int ret = 0;

	if (bad_offset(off))
		ret = -EINVAL;
	while (!ret && done < len) {
		ssize_t n = coil_write(fd, (const char *)buf + done, len - done,
				       off < 0 ? -1 : off + (int64_t)done,
				       deadline);

		if (n <= 0) {
			ret = n ? (int)n : -EIO; /* a write of 0 makes no progress */
			break;
		}
		done += (size_t)n;
	}
	if (written)
		*written = done;
	return ret;
}

ssize_t coil_read_fixed(int fd, void *buf, size_t len, int64_t off,
			unsigned index, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;

	if (bad_offset(off))
		return -EINVAL;
	sqe = coil__io_prep(&io);
	io_uring_prep_read_fixed(sqe, fd, buf, coil__io_len(len), (__u64)off,
				 (int)index);
	coil__sqe_fd(sqe, fd);
	return coil__await_read(&io, buf, deadline);
}

ssize_t coil_write_fixed(int fd, const void *buf, size_t len, int64_t off,
			 unsigned index, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe;

	if (bad_offset(off))
		return -EINVAL;
	sqe = coil__io_prep(&io);
	io_uring_prep_write_fixed(sqe, fd, buf, coil__io_len(len), (__u64)off,
				  (int)index);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

int coil_poll(int fd, unsigned events, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_poll_add(sqe, fd, events);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

int coil_close(int fd)
{
	coil_task *self = coil__current();
	coil_io io;
	struct io_uring_sqe *sqe;
	int ret;

	if (!self || self->loop->dead) { /* no ring to close it through */
		if (coil__is_fixed_fd(fd))
			return self ? self->loop->dead : -EPERM;
		return close(fd) < 0 ? -errno : 0;
	}
	/* Leaving the fd open on a cancel would leak it: shield the close. */
	self->shields++;
	sqe = coil__io_prep(&io);
	if (coil__is_fixed_fd(fd))
		io_uring_prep_close_direct(sqe, (unsigned)fd & 0xFFFFFu);
	else
		io_uring_prep_close(sqe, fd);
	ret = coil__io_await(&io, COIL_NEVER);
	self->shields--;
	return ret;
}
