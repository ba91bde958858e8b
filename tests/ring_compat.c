/*
 * ring/compat.h: each helper for an op newer than liburing 2.3, run against
 * the kernel (skipped where the kernel lacks the op).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"
#include "ring/compat.h"

static struct io_uring_sqe *sqe_for(coil_ring *r, struct recorder *c)
{
	*c = (struct recorder)RECORDER;
	return coil_ring_sqe(r, &c->op);
}

START_TEST(test_futex_wake_wakes_a_futex_wait_on_the_same_ring)
{
	const unsigned flags = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
	struct recorder wait, wake;
	uint32_t word = 0;
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_has_op(&r, IORING_OP_FUTEX_WAIT), "no FUTEX_WAIT");
	io_uring_prep_futex_wait(sqe_for(&r, &wait), &word, 0, 0xffffffff, flags, 0);
	ck_assert_int_eq(coil_ring_poll(&r), 0);
	io_uring_prep_futex_wake(sqe_for(&r, &wake), &word, 1, 0xffffffff, flags, 0);
	ck_assert_int_eq(await_cqe(&r, &wake), 1);
	ck_assert_int_eq(await_cqe(&r, &wait), 0);
	/* A stale expected value is refused at once. */
	io_uring_prep_futex_wait(sqe_for(&r, &wait), &word, 5, 0xffffffff, flags, 0);
	ck_assert_int_eq(await_cqe(&r, &wait), -EAGAIN);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_bind_and_listen_make_a_listening_socket)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	struct recorder bind_op, listen_op;
	int fd, client;
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_has_op(&r, IORING_OP_BIND), "no BIND");
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	io_uring_prep_bind(sqe_for(&r, &bind_op), fd, (struct sockaddr *)&addr,
			   sizeof(addr));
	ck_assert_int_eq(await_cqe(&r, &bind_op), 0);
	io_uring_prep_listen(sqe_for(&r, &listen_op), fd, 8);
	ck_assert_int_eq(await_cqe(&r, &listen_op), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	ck_assert_int_ne(addr.sin_port, 0);
	client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(client, (struct sockaddr *)&addr, len), 0);
	close(client);
	close(fd);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_waitid_reports_a_child_exit_status)
{
	siginfo_t info = { 0 };
	struct recorder w;
	coil_ring r;
	pid_t pid;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_has_op(&r, IORING_OP_WAITID), "no WAITID");
	pid = fork();
	if (pid == 0)
		_exit(7);
	io_uring_prep_waitid(sqe_for(&r, &w), P_PID, (id_t)pid, &info, WEXITED, 0);
	ck_assert_int_eq(await_cqe(&r, &w), 0);
	ck_assert_int_eq(info.si_pid, pid);
	ck_assert_int_eq(info.si_status, 7);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_read_multishot_fills_provided_buffers)
{
	static char bufs[4][64];
	struct io_uring_buf_ring *br;
	struct recorder rd;
	int fds[2], err = 0, i;
	unsigned bid;
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_has_op(&r, IORING_OP_READ_MULTISHOT), "no READ_MULTISHOT");
	br = io_uring_setup_buf_ring(&r.uring, 4, 7, 0, &err);
	ck_assert_msg(br != NULL, "setup_buf_ring: %s", strerror(-err));
	for (i = 0; i < 4; i++)
		io_uring_buf_ring_add(br, bufs[i], sizeof(bufs[i]), (unsigned short)i,
				      io_uring_buf_ring_mask(4), i);
	io_uring_buf_ring_advance(br, 4);
	ck_assert_int_eq(pipe(fds), 0);
	io_uring_prep_read_multishot(sqe_for(&r, &rd), fds[0], 0, 0, 7);
	ck_assert_int_eq(coil_ring_poll(&r), 0);

	ck_assert_int_eq(write(fds[1], "abc", 3), 3);
	ck_assert_int_eq(await_cqe(&r, &rd), 3);
	ck_assert(rd.flags[0] & IORING_CQE_F_BUFFER);
	ck_assert(rd.flags[0] & IORING_CQE_F_MORE);
	bid = rd.flags[0] >> IORING_CQE_BUFFER_SHIFT;
	ck_assert_uint_lt(bid, 4);
	ck_assert(memcmp(bufs[bid], "abc", 3) == 0);

	close(fds[1]);
	ck_assert_int_eq(await_cqe(&r, &rd), 0);
	ck_assert(!(rd.flags[1] & IORING_CQE_F_MORE));
	ck_assert_uint_eq(coil_ring_inflight(&r), 0);
	ck_assert_int_eq(io_uring_free_buf_ring(&r.uring, br, 4, 7), 0);
	close(fds[0]);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_ftruncate_sets_the_file_size)
{
	char path[] = "/tmp/coil-compat-XXXXXX";
	struct recorder t;
	struct stat st;
	coil_ring r;
	int fd;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_has_op(&r, IORING_OP_FTRUNCATE), "no FTRUNCATE");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	io_uring_prep_ftruncate(sqe_for(&r, &t), fd, 12345);
	ck_assert_int_eq(await_cqe(&r, &t), 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 12345);
	close(fd);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_msg_ring_passes_its_cqe_flags)
{
	struct recorder send, target = RECORDER;
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(kernel_version() >= 603, "MSG_RING flag passing needs Linux 6.3");
	io_uring_prep_msg_ring_cqe_flags(sqe_for(&r, &send), coil_ring_fd(&r), 42,
					 coil_ring_msg_data(&target.op), 0, 0x12340000);
	ck_assert_int_eq(await_cqe(&r, &send), 0);
	ck_assert_int_eq(await_cqe(&r, &target), 42);
	ck_assert_uint_eq(target.flags[0], 0x12340000);
	ck_assert_uint_eq(coil_ring_inflight(&r), 0);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_pipe_op_creates_a_working_pipe)
{
	struct recorder p;
	int fds[2] = { -1, -1 };
	char c = 0;
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_has_op(&r, IORING_OP_PIPE), "no PIPE");
	io_uring_prep_pipe(sqe_for(&r, &p), fds, O_CLOEXEC);
	ck_assert_int_eq(await_cqe(&r, &p), 0);
	ck_assert_int_eq(write(fds[1], "z", 1), 1);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	ck_assert_int_eq(c, 'z');
	ck_assert_int_eq(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fds[0]);
	close(fds[1]);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_epoll_wait_op_reports_a_ready_fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 99 }, out[4];
	uint64_t one = 1;
	struct recorder w;
	int epfd, efd;
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_has_op(&r, IORING_OP_EPOLL_WAIT), "no EPOLL_WAIT");
	epfd = epoll_create1(EPOLL_CLOEXEC);
	efd = eventfd(0, EFD_CLOEXEC);
	ck_assert_int_eq(epoll_ctl(epfd, EPOLL_CTL_ADD, efd, &ev), 0);
	ck_assert_int_eq(write(efd, &one, sizeof(one)), sizeof(one));
	io_uring_prep_epoll_wait(sqe_for(&r, &w), epfd, out, 4, 0);
	ck_assert_int_eq(await_cqe(&r, &w), 1);
	ck_assert_uint_eq(out[0].data.u64, 99);
	close(efd);
	close(epfd);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_cmd_sock_reads_a_socket_option)
{
	int fd, type = -1;
	struct recorder g;
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(kernel_version() >= 607, "socket getsockopt commands need Linux 6.7");
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	io_uring_prep_cmd_sock(sqe_for(&r, &g), SOCKET_URING_OP_GETSOCKOPT, fd,
			       SOL_SOCKET, SO_TYPE, &type, sizeof(type));
	ck_assert_int_eq(await_cqe(&r, &g), sizeof(type));
	ck_assert_int_eq(type, SOCK_STREAM);
	close(fd);
	coil_ring_exit(&r);
}
END_TEST

START_TEST(test_fixed_fd_install_gives_back_a_regular_fd)
{
	struct stat a, b;
	struct recorder inst;
	int fds[2];
	coil_ring r;

	ring_up(&r, NULL);
	SKIP_UNLESS(coil_ring_has_op(&r, IORING_OP_FIXED_FD_INSTALL), "no FIXED_FD_INSTALL");
	ck_assert_int_eq(pipe(fds), 0);
	ck_assert_int_eq(io_uring_register_files(&r.uring, &fds[0], 1), 0);
	io_uring_prep_fixed_fd_install(sqe_for(&r, &inst), 0, 0);
	ck_assert_int_ge(await_cqe(&r, &inst), 0);
	ck_assert_int_eq(fstat(fds[0], &a), 0);
	ck_assert_int_eq(fstat(inst.res, &b), 0);
	ck_assert_uint_eq(a.st_ino, b.st_ino);
	ck_assert_int_eq(fcntl(inst.res, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(inst.res);
	close(fds[0]);
	close(fds[1]);
	coil_ring_exit(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ring_compat");

	ADD_TEST(s, test_futex_wake_wakes_a_futex_wait_on_the_same_ring, 10);
	ADD_TEST(s, test_bind_and_listen_make_a_listening_socket, 10);
	ADD_TEST(s, test_waitid_reports_a_child_exit_status, 10);
	ADD_TEST(s, test_read_multishot_fills_provided_buffers, 10);
	ADD_TEST(s, test_ftruncate_sets_the_file_size, 10);
	ADD_TEST(s, test_msg_ring_passes_its_cqe_flags, 10);
	ADD_TEST(s, test_pipe_op_creates_a_working_pipe, 10);
	ADD_TEST(s, test_epoll_wait_op_reports_a_ready_fd, 10);
	ADD_TEST(s, test_cmd_sock_reads_a_socket_option, 10);
	ADD_TEST(s, test_fixed_fd_install_gives_back_a_regular_fd, 10);
	return test_main(s);
}
