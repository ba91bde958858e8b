/*
 * What liburing 2.3 (Debian 12) lacks and coil uses: constants and prep
 * helpers for kernel features newer than that release, written from the
 * kernel's uapi. Every definition is guarded by what the installed liburing
 * already provides, so coil builds against 2.3 and against newer releases.
 *
 * Macros are guarded by their own name. Opcodes are enum constants and prep
 * helpers are inline functions, neither visible to the preprocessor, so they
 * are guarded by the liburing release that first shipped them. (A macro that
 * shadows an enum constant of the same value is harmless, so an opcode guard
 * errs on the side of defining.)
 *
 * Each feature still has to be probed at run time: coil_ring_has_op() for
 * opcodes, the ring's features for the rest.
 */
#ifndef COIL_RING_COMPAT_H
#define COIL_RING_COMPAT_H

#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>

/* liburing 2.4 introduced the version macros: without them it is 2.3. */
#ifdef IO_URING_VERSION_MAJOR
#define COIL_URING_AT_LEAST(major, minor)                                      \
	(IO_URING_VERSION_MAJOR > (major) ||                                   \
	 (IO_URING_VERSION_MAJOR == (major) && IO_URING_VERSION_MINOR >= (minor)))
#else
#define COIL_URING_AT_LEAST(major, minor) 0
#endif

/* Opcodes after IORING_OP_SENDMSG_ZC (48), in the kernel's enum order. */
#if !COIL_URING_AT_LEAST(2, 6)
#define IORING_OP_READ_MULTISHOT 49   /* 6.7 */
#define IORING_OP_WAITID 50           /* 6.7 */
#define IORING_OP_FUTEX_WAIT 51       /* 6.7 */
#define IORING_OP_FUTEX_WAKE 52       /* 6.7 */
#define IORING_OP_FUTEX_WAITV 53      /* 6.7 */
#define IORING_OP_FIXED_FD_INSTALL 54 /* 6.8 */
#define IORING_OP_FTRUNCATE 55        /* 6.9 */
#endif
#if !COIL_URING_AT_LEAST(2, 7)
#define IORING_OP_BIND 56   /* 6.11 */
#define IORING_OP_LISTEN 57 /* 6.11 */
#endif
#if !COIL_URING_AT_LEAST(2, 10)
#define IORING_OP_RECV_ZC 58      /* 6.15 */
#define IORING_OP_EPOLL_WAIT 59   /* 6.15 */
#define IORING_OP_READV_FIXED 60  /* 6.15 */
#define IORING_OP_WRITEV_FIXED 61 /* 6.15 */
#endif
#if !COIL_URING_AT_LEAST(2, 12)
#define IORING_OP_PIPE 62 /* 6.16 */
#endif

/* Setup flags. */
#ifndef IORING_SETUP_NO_MMAP
#define IORING_SETUP_NO_MMAP (1U << 14) /* 6.5 */
#endif
#ifndef IORING_SETUP_REGISTERED_FD_ONLY
#define IORING_SETUP_REGISTERED_FD_ONLY (1U << 15) /* 6.5 */
#endif
/*
 * 6.6. liburing 2.3 keeps writing its SQ index array, which overwrites the
 * ring header when the kernel has none: never ask for it with 2.3.
 */
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif

/* Features reported by io_uring_setup. */
#ifndef IORING_FEAT_REG_REG_RING
#define IORING_FEAT_REG_REG_RING (1U << 13) /* 6.3 */
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14) /* 6.10 */
#endif
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15) /* 6.12 */
#endif
#ifndef IORING_FEAT_RW_ATTR
#define IORING_FEAT_RW_ATTR (1U << 16) /* 6.13 */
#endif
#ifndef IORING_FEAT_NO_IOWAIT
#define IORING_FEAT_NO_IOWAIT (1U << 17) /* 6.15 */
#endif

/* Op flags. */
#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6) /* 6.4: off = count, 0 = forever */
#endif
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4) /* 6.10, in sqe->ioprio */
#endif
#ifndef IORING_MSG_RING_FLAGS_PASS
#define IORING_MSG_RING_FLAGS_PASS (1U << 1) /* 6.3: cqe flags from file_index */
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4) /* 6.12: incremental buffer not used up */
#endif
#ifndef IORING_ENTER_ABS_TIMER
#define IORING_ENTER_ABS_TIMER (1U << 7) /* 6.12 */
#endif

/* Provided-buffer rings: flags for io_uring_buf_reg, named pad in 2.3. */
#ifndef IOU_PBUF_RING_MMAP
#define IOU_PBUF_RING_MMAP 1U /* 6.4: the kernel allocates the ring */
#endif
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2U /* 6.12: buffers consumed incrementally */
#endif
#define COIL_PBUF_MMAP_OFFSET(bgid) (0x80000000ULL | ((uint64_t)(bgid) << 16))

/* Socket commands for IORING_OP_URING_CMD. */
#if !COIL_URING_AT_LEAST(2, 5)
#define SOCKET_URING_OP_SIOCINQ 0
#define SOCKET_URING_OP_SIOCOUTQ 1
#define SOCKET_URING_OP_GETSOCKOPT 2 /* 6.7 */
#define SOCKET_URING_OP_SETSOCKOPT 3 /* 6.7 */
#endif

/* futex2 flags (linux/futex.h, 6.7), for the io_uring futex ops. */
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 0x02
#endif
#ifndef FUTEX2_PRIVATE
#define FUTEX2_PRIVATE 128
#endif

/*
 * Prep helpers. liburing 2.3 lacks the newer sqe field names; each of them is
 * a union member that 2.3 already has under another name (futex_flags,
 * waitid_flags and install_fd_flags are rw_flags; optval is addr3; level and
 * optname are the halves of addr; optlen is file_index).
 */

#if !COIL_URING_AT_LEAST(2, 4)
static inline void io_uring_prep_msg_ring_cqe_flags(struct io_uring_sqe *sqe,
						    int fd, unsigned int len,
						    __u64 data, unsigned int flags,
						    unsigned int cqe_flags)
{
	io_uring_prep_rw(IORING_OP_MSG_RING, sqe, fd, NULL, len, data);
	sqe->msg_ring_flags = IORING_MSG_RING_FLAGS_PASS | flags;
	sqe->file_index = cqe_flags;
}

/*
 * Allocate, register and initialise a provided-buffer ring of nentries (a
 * power of two) for group bgid. Returns NULL with *err set on failure.
 */
static inline struct io_uring_buf_ring *
io_uring_setup_buf_ring(struct io_uring *ring, unsigned int nentries, int bgid,
			unsigned int flags, int *err)
{
	struct io_uring_buf_reg reg = { 0 };
	struct io_uring_buf_ring *br;
	void *mem;
	int ret;

	(void)flags; /* 2.4 takes flags and passes none to the kernel either */
	if (posix_memalign(&mem, 4096, nentries * sizeof(struct io_uring_buf))) {
		*err = -ENOMEM;
		return NULL;
	}
	br = (struct io_uring_buf_ring *)mem;
	reg.ring_addr = (unsigned long)br;
	reg.ring_entries = nentries;
	reg.bgid = (__u16)bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret) {
		free(mem);
		*err = ret;
		return NULL;
	}
	io_uring_buf_ring_init(br);
	return br;
}

static inline int io_uring_free_buf_ring(struct io_uring *ring,
					 struct io_uring_buf_ring *br,
					 unsigned int nentries, int bgid)
{
	int ret = io_uring_unregister_buf_ring(ring, bgid);

	(void)nentries;
	if (ret)
		return ret;
	free(br);
	return 0;
}
#endif /* 2.4 */

#if !COIL_URING_AT_LEAST(2, 5)
static inline void io_uring_prep_cmd_sock(struct io_uring_sqe *sqe, int cmd_op,
					  int fd, int level, int optname,
					  void *optval, int optlen)
{
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = (__u32)cmd_op;
	sqe->addr = (__u64)(__u32)optname << 32 | (__u32)level;
	sqe->addr3 = (__u64)(uintptr_t)optval;
	sqe->file_index = (__u32)optlen;
}
#endif /* 2.5 */

#if !COIL_URING_AT_LEAST(2, 6)
static inline void io_uring_prep_read_multishot(struct io_uring_sqe *sqe, int fd,
						unsigned nbytes, __u64 offset,
						int buf_group)
{
	io_uring_prep_rw(IORING_OP_READ_MULTISHOT, sqe, fd, NULL, nbytes, offset);
	sqe->buf_group = (__u16)buf_group;
	sqe->flags = IOSQE_BUFFER_SELECT;
}

static inline void io_uring_prep_waitid(struct io_uring_sqe *sqe,
					idtype_t idtype, id_t id,
					siginfo_t *infop, int options,
					unsigned int flags)
{
	io_uring_prep_rw(IORING_OP_WAITID, sqe, (int)id, NULL, (unsigned)idtype, 0);
	sqe->rw_flags = (int)flags;
	sqe->file_index = (__u32)options;
	sqe->addr2 = (__u64)(uintptr_t)infop;
}

static inline void io_uring_prep_futex_wake(struct io_uring_sqe *sqe,
					    uint32_t *futex, uint64_t val,
					    uint64_t mask, uint32_t futex_flags,
					    unsigned int flags)
{
	io_uring_prep_rw(IORING_OP_FUTEX_WAKE, sqe, (int)futex_flags, futex, 0, val);
	sqe->rw_flags = (int)flags;
	sqe->addr3 = mask;
}

static inline void io_uring_prep_futex_wait(struct io_uring_sqe *sqe,
					    uint32_t *futex, uint64_t val,
					    uint64_t mask, uint32_t futex_flags,
					    unsigned int flags)
{
	io_uring_prep_rw(IORING_OP_FUTEX_WAIT, sqe, (int)futex_flags, futex, 0, val);
	sqe->rw_flags = (int)flags;
	sqe->addr3 = mask;
}

struct futex_waitv;
static inline void io_uring_prep_futex_waitv(struct io_uring_sqe *sqe,
					     struct futex_waitv *futex,
					     uint32_t nr_futex, unsigned int flags)
{
	io_uring_prep_rw(IORING_OP_FUTEX_WAITV, sqe, 0, futex, nr_futex, 0);
	sqe->rw_flags = (int)flags;
}

static inline void io_uring_prep_fixed_fd_install(struct io_uring_sqe *sqe,
						  int fd, unsigned int flags)
{
	io_uring_prep_rw(IORING_OP_FIXED_FD_INSTALL, sqe, fd, NULL, 0, 0);
	sqe->flags = IOSQE_FIXED_FILE;
	sqe->rw_flags = (int)flags;
}

static inline void io_uring_prep_ftruncate(struct io_uring_sqe *sqe, int fd,
					   loff_t len)
{
	io_uring_prep_rw(IORING_OP_FTRUNCATE, sqe, fd, 0, 0, (__u64)len);
}
#endif /* 2.6 */

#if !COIL_URING_AT_LEAST(2, 7)
static inline void io_uring_prep_bind(struct io_uring_sqe *sqe, int fd,
				      struct sockaddr *addr, socklen_t addrlen)
{
	io_uring_prep_rw(IORING_OP_BIND, sqe, fd, addr, 0, addrlen);
}

static inline void io_uring_prep_listen(struct io_uring_sqe *sqe, int fd,
					int backlog)
{
	io_uring_prep_rw(IORING_OP_LISTEN, sqe, fd, 0, (unsigned)backlog, 0);
}
#endif /* 2.7 */

#if !COIL_URING_AT_LEAST(2, 10)
struct epoll_event;
static inline void io_uring_prep_epoll_wait(struct io_uring_sqe *sqe, int fd,
					    struct epoll_event *events,
					    int maxevents, unsigned flags)
{
	io_uring_prep_rw(IORING_OP_EPOLL_WAIT, sqe, fd, events,
			 (unsigned)maxevents, 0);
	sqe->rw_flags = (int)flags;
}
#endif /* 2.10 */

#if !COIL_URING_AT_LEAST(2, 12)
static inline void io_uring_prep_pipe(struct io_uring_sqe *sqe, int *fds,
				      int pipe_flags)
{
	io_uring_prep_rw(IORING_OP_PIPE, sqe, 0, fds, 0, 0);
	sqe->rw_flags = pipe_flags;
}
#endif /* 2.12 */

#endif /* COIL_RING_COMPAT_H */
