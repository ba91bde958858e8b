/*
 * Sockets: addresses, listeners, connect/accept, send/recv and their
 * datagram and message forms, each awaited by the calling task.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "executor/io.h"

/* A port: decimal, 0..65535, nothing after it. */
static int parse_port(const char *s, in_port_t *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	*out = htons((in_port_t)v);
	return 0;
}

static int parse_unix(const char *path, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct sockaddr_un *un = (struct sockaddr_un *)ss;
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(un->sun_path))
		return -EINVAL;
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	memcpy(un->sun_path, path, n);
	if (path[0] == '@') { /* abstract: a leading NUL, no terminator */
		un->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}

int coil_addr_parse(const char *text, struct sockaddr_storage *ss,
		    socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *hs = text;
	size_t hlen;

	if (!text || !ss || !len)
		return -EINVAL;
	if (!strncmp(text, "unix:", 5))
		return parse_unix(text + 5, ss, len);
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		if (!close || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - text - 1);
		if (hlen >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		memset(in6, 0, sizeof(*in6));
		in6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1 ||
		    parse_port(close + 2, &in6->sin6_port) < 0)
			return -EINVAL;
		*len = sizeof(*in6);
		return 0;
	}
	colon = strrchr(text, ':');
	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - hs);
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, hs, hlen);
	host[hlen] = '\0';

	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	if (hlen == 0)
		in->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (!strcmp(host, "localhost"))
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
		return -EINVAL;
	if (parse_port(colon + 1, &in->sin_port) < 0)
		return -EINVAL;
	*len = sizeof(*in);
	return 0;
}

int coil_socket(int domain, int type, int protocol)
{
	int fd = socket(domain, type | SOCK_CLOEXEC, protocol);

	return fd < 0 ? -errno : fd;
}

static int set_int_opt(int fd, int level, int name, int value)
{
	return setsockopt(fd, level, name, &value, sizeof(value)) < 0 ? -errno : 0;
}

int coil_listen(const char *address, const coil_listen_opts *opts)
{
	static const coil_listen_opts defaults = { 0 };
	struct sockaddr_storage ss;
	socklen_t len;
	int type, backlog, fd, ret;

	if (!opts)
		opts = &defaults;
	type = opts->type ? opts->type : SOCK_STREAM;
	backlog = opts->backlog ? opts->backlog : 4096;
	if ((type != SOCK_STREAM && type != SOCK_DGRAM) || backlog < 0)
		return -EINVAL;
	ret = coil_addr_parse(address, &ss, &len);
	if (ret < 0)
		return ret;
	fd = coil_socket(ss.ss_family, type, 0);
	if (fd < 0)
		return fd;
	if (ss.ss_family != AF_UNIX) {
		/*
		 * For TCP, SO_REUSEADDR only lets a restarted server bind over
		 * connections in TIME_WAIT; for UDP it would let two sockets
		 * share the port silently, so datagrams get it only on request.
		 */
		ret = type == SOCK_STREAM ?
			set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) : 0;
		if (!ret && opts->reuseport)
			ret = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
		if (ret < 0)
			goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, backlog) < 0)) {
		ret = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int coil_sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

int coil_connect(int fd, const struct sockaddr *addr, socklen_t len,
		 int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_connect(sqe, fd, addr, len);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

int coil_dial(const char *address, int64_t deadline)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, ret;

	ret = coil_addr_parse(address, &ss, &len);
	if (ret < 0)
		return ret;
	fd = coil_socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return fd;
	if (ss.ss_family != AF_UNIX)
		set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	ret = coil_connect(fd, (struct sockaddr *)&ss, len, deadline);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return fd;
}

int coil_accept(int fd, struct sockaddr *addr, socklen_t *len,
		int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_accept(sqe, fd, addr, len, SOCK_CLOEXEC);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

ssize_t coil_recv(int fd, void *buf, size_t len, int flags, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_recv(sqe, fd, buf, coil__io_len(len), flags);
	coil__sqe_fd(sqe, fd);
	return coil__await_read(&io, buf, deadline);
}

static inline __attribute__((always_inline)) ssize_t
send_once(int fd, const void *buf, size_t len, int flags, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_send(sqe, fd, buf, coil__io_len(len), flags);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

ssize_t coil_send(int fd, const void *buf, size_t len, int flags,
		  int64_t deadline)
{
	return send_once(fd, buf, len, flags, deadline);
}

ssize_t coil_send_zc(int fd, const void *buf, size_t len, int flags,
		     int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_send_zc(sqe, fd, buf, coil__io_len(len), flags, 0);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

ssize_t coil_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline)
{
	socklen_t namelen = msg->msg_name ? msg->msg_namelen : 0;
	size_t controllen = msg->msg_control ? msg->msg_controllen : 0;
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);
	ssize_t n;

	io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags);
	coil__sqe_fd(sqe, fd);
	n = coil__await_readv(&io, msg->msg_iov, (int)msg->msg_iovlen, deadline);
	if (n >= 0) { /* the peer's name and control data were written too */
		coil__mark_defined(msg->msg_name, namelen < msg->msg_namelen ?
				   namelen : msg->msg_namelen);
		coil__mark_defined(msg->msg_control,
				   controllen < msg->msg_controllen ?
				   controllen : msg->msg_controllen);
	}
	return n;
}

ssize_t coil_sendmsg(int fd, const struct msghdr *msg, int flags,
		     int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)flags);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}

ssize_t coil_recvfrom(int fd, void *buf, size_t len, int flags,
		      struct sockaddr *from, socklen_t *fromlen,
		      int64_t deadline)
{
	struct iovec iov = { buf, coil__io_len(len) };
	struct msghdr msg = {
		.msg_name = from,
		.msg_namelen = from && fromlen ? *fromlen : 0,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n = coil_recvmsg(fd, &msg, flags, deadline);

	if (n >= 0 && from && fromlen)
		*fromlen = msg.msg_namelen;
	return n;
}

ssize_t coil_sendto(int fd, const void *buf, size_t len, int flags,
		    const struct sockaddr *to, socklen_t tolen,
		    int64_t deadline)
{
	struct iovec iov = { (void *)buf, coil__io_len(len) };
	struct msghdr msg = {
		.msg_name = (void *)to,
		.msg_namelen = to ? tolen : 0,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};

	return coil_sendmsg(fd, &msg, flags, deadline);
}

int coil_send_all(int fd, const void *buf, size_t len, size_t *sent,
		  int64_t deadline)
{
	size_t done = 0;
	int ret = 0;

	while (done < len) {
		ssize_t n = send_once(fd, (const char *)buf + done, len - done,
				      MSG_NOSIGNAL, deadline);

		if (n < 0) {
			ret = (int)n;
			break;
		}
		done += (size_t)n;
	}
	if (sent)
		*sent = done;
	return ret;
}

int coil_recv_exact(int fd, void *buf, size_t len, size_t *got,
		    int64_t deadline)
{
	size_t done = 0;
	int ret = 0;

	while (done < len) {
		ssize_t n = coil_recv(fd, (char *)buf + done, len - done,
				      MSG_WAITALL, deadline);

		if (n <= 0) {
			ret = n ? (int)n : -EPIPE;
			break;
		}
		done += (size_t)n;
	}
	if (got)
		*got = done;
	return ret;
}

int coil_shutdown(int fd, int how, int64_t deadline)
{
	coil_io io;
	struct io_uring_sqe *sqe = coil__io_prep(&io);

	io_uring_prep_shutdown(sqe, fd, how);
	coil__sqe_fd(sqe, fd);
	return coil__io_await(&io, deadline);
}
