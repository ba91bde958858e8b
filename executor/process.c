/*
 * Child processes: start one, await its exit with a deadline, signal it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/io.h"
#include "executor/loop.h"
#include "ring/compat.h"

extern char **environ;

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/*
 * The file actions that give the child its fds 0-2. They run one after
 * another in the child, so a source that is itself one of 0-2 would be
 * replaced before its turn: such sources are first duplicated above 2
 * (saved[], closed by the caller after the spawn).
 */
static int stdio_actions(posix_spawn_file_actions_t *fa, const int stdio[3],
			 int saved[3])
{
	for (int i = 0; i < 3; i++) {
		int src = stdio[i];
		int ret = 0;

		if (src < -1)
			return -EINVAL;
		if (src > 0 && src < 3 && src != i) {
			saved[i] = fcntl(src, F_DUPFD_CLOEXEC, 3);
			if (saved[i] < 0)
				return -errno;
			src = saved[i];
		}
		if (src == -1)
			ret = posix_spawn_file_actions_addopen(
				fa, i, "/dev/null", i ? O_WRONLY : O_RDONLY, 0);
		else if (src > 0) /* dup2 onto itself clears FD_CLOEXEC */
			ret = posix_spawn_file_actions_adddup2(fa, src, i);
		if (ret)
			return -ret;
	}
	return 0;
}

/* The child starts with no signal blocked and every one at its default. */
static int clean_signals(posix_spawnattr_t *attr)
{
	sigset_t none, all;

	sigemptyset(&none);
	sigfillset(&all);
	if (posix_spawnattr_setsigmask(attr, &none) ||
	    posix_spawnattr_setsigdefault(attr, &all) ||
	    posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK |
					   POSIX_SPAWN_SETSIGDEF))
		return -EINVAL;
	return 0;
}

int coil_process_spawn(coil_process *p, char *const argv[],
		       const coil_process_opts *opts)
{
	static const coil_process_opts defaults = { 0 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int saved[3] = { -1, -1, -1 };
	pid_t pid;
	int ret;

	if (!p || !argv || !argv[0])
		return -EINVAL;
	if (!opts)
		opts = &defaults;
	*p = (coil_process){ .pid = -1, .pidfd = -1 };
	if (posix_spawn_file_actions_init(&fa))
		return -ENOMEM;
	if (posix_spawnattr_init(&attr)) {
		posix_spawn_file_actions_destroy(&fa);
		return -ENOMEM;
	}
	ret = stdio_actions(&fa, opts->stdio, saved);
	if (!ret)
		ret = clean_signals(&attr);
	if (!ret)
		ret = -posix_spawnp(&pid, argv[0], &fa, &attr, argv,
				    opts->envp ? opts->envp : environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 3; i++)
		if (saved[i] >= 0)
			close(saved[i]);
	if (ret)
		return ret;
	p->pid = pid;
	/* Not reaped yet, so the pid cannot be reused under us. */
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	return 0;
}

pid_t coil_process_pid(const coil_process *p)
{
	return p->pid;
}

/* The wait status waitpid(2) would give for what waitid reported. */
static int wait_status(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default: /* CLD_KILLED */
		return si->si_status & 0x7f;
	}
}

/* Await the exit through io_uring (WAITID), reaping the child. */
static int wait_ring(coil_process *p, siginfo_t *si, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);
	int ret;

	io_uring_prep_waitid(sqe, P_PID, (id_t)p->pid, si, WEXITED, 0);
	ret = coil__io_await(&io, deadline);
	if (ret == 0)
		coil__mark_defined(si, sizeof(*si));
	return ret;
}

/* Await the pidfd becoming readable (the child exited), then reap it. */
static int wait_pidfd(coil_process *p, siginfo_t *si, int64_t deadline)
{
	int ret;

	if (p->pidfd < 0)
		return -ENOSYS;
	ret = coil_poll(p->pidfd, POLLIN, deadline);
	if (ret < 0)
		return ret;
	return waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, si, WEXITED) < 0 ?
		       -errno : 0;
}

int coil_process_wait(coil_process *p, int *status, int64_t deadline)
{
	coil__loop *l = coil__this_loop;
	siginfo_t si;
	int ret;

	if (!p || p->pid <= 0)
		return -EINVAL;
	if (!p->reaped) {
		memset(&si, 0, sizeof(si));
		if (l && coil_ring_has_op(&l->ring, IORING_OP_WAITID))
			ret = wait_ring(p, &si, deadline);
		else
			ret = wait_pidfd(p, &si, deadline);
		if (ret < 0)
			return ret;
		p->status = wait_status(&si);
		p->reaped = true;
	}
	if (status)
		*status = p->status;
	return 0;
}

int coil_process_kill(coil_process *p, int sig)
{
	if (!p || p->pid <= 0)
		return -EINVAL;
	if (p->reaped)
		return -ESRCH;
	if (p->pidfd >= 0)
		return syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0 ?
			       -errno : 0;
	return kill(p->pid, sig) < 0 ? -errno : 0;
}

void coil_process_destroy(coil_process *p)
{
	if (!p || p->pid <= 0)
		return;
	if (!p->reaped) {
		siginfo_t si;

		coil_process_kill(p, SIGKILL);
		while (waitid(P_PID, (id_t)p->pid, &si, WEXITED) < 0 &&
		       errno == EINTR)
			;
	}
	if (p->pidfd >= 0)
		close(p->pidfd);
	*p = (coil_process){ .pid = -1, .pidfd = -1 };
}
