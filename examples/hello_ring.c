/* Print a file through io_uring, completions delivered to a callback. */
#include <coil.h>
#include <fcntl.h>
#include <stdio.h>

struct read_op {
	coil_op op; /* what the SQE's user_data points to */
	int res;
	bool done;
};

static void on_read(coil_op *op, const struct io_uring_cqe *cqe)
{
	struct read_op *rd = (struct read_op *)op;

	rd->res = cqe->res;
	rd->done = true;
}

int main(int argc, char **argv)
{
	struct read_op rd = { .op.complete = on_read };
	char buf[4096];
	coil_ring ring;
	off_t off = 0;
	int fd;

	if (argc != 2 || (fd = open(argv[1], O_RDONLY | O_CLOEXEC)) < 0)
		return 2;
	if (coil_ring_init(&ring, NULL) < 0)
		return 1; /* coil has logged why */
	do {
		rd.done = false;
		io_uring_prep_read(coil_ring_sqe(&ring, &rd.op), fd, buf, sizeof(buf), off);
		while (!rd.done)
			if (coil_ring_wait(&ring, coil_now() + COIL_SEC(5)) < 0)
				return 1;
		if (rd.res > 0)
			fwrite(buf, 1, rd.res, stdout);
		off += rd.res;
	} while (rd.res > 0);
	coil_ring_exit(&ring);
	return rd.res < 0;
}
