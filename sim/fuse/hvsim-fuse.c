/*
 * hvsim-fuse: the FUSE front-end of the hvguest host simulator.
 *
 * A Linux FUSE file system (libfuse3, low-level API) that shows the
 * simulated device nodes as regular files and forwards every system call
 * made on them to `hvsim serve --fuse` (sim/fuse-server.ts), where the
 * simulated kernel drivers live. This program holds no driver logic: it
 * translates FUSE requests into frames on a stream socket and frames back
 * into FUSE replies. A reply may come much later (a read blocks until the
 * driver posts a message), so requests are answered asynchronously and one
 * blocked call never holds up another.
 *
 * Usage (started by hvsim, not by hand):
 *   hvsim-fuse [-d] MOUNTPOINT CTL-TARGET NODE...
 * File descriptor 3 is the channel to hvsim (a socketpair end). NODE names
 * are relative to MOUNTPOINT ("hv_kvp_dev", "vmbus/hv_kvp"); the file
 * system also holds a symbolic link "hvsim.ctl" to CTL-TARGET, the control
 * socket of the simulator, so `hvsim --dir MOUNTPOINT ...` finds it.
 * The program unmounts and exits when the channel closes (hvsim exited or
 * crashed; status 0) or on SIGTERM/SIGINT/SIGHUP; it mounts with
 * auto_unmount, so a crash of this program unmounts too. A frame with an
 * impossible length ends it with status 65. Either way every request still
 * waiting for a REPLY fails with EIO first. A REPLY that does not fit its
 * request (READ data longer than asked for, an ioctl value above INT_MAX,
 * an errno outside 1..4095) gives the caller EIO; one for an unknown
 * request, and frames of unknown types, are ignored.
 *
 * Channel protocol (the TypeScript side is sim/fuse-proto.ts; keep both in
 * step). Every frame, both directions, little-endian:
 *   u32 length   whole frame, header included
 *   u16 type
 *   u16 0
 *   u64 id       request id (requests, REPLY, CANCEL) or file handle (NOTIFY)
 *   body
 * hvsim-fuse -> hvsim:
 *   READY   9  body empty; sent once the mount is in place
 *   OPEN    1  u32 node index (order of NODE arguments), u32 pid, u32 open flags
 *   READ    2  u64 fh, u32 count, u32 file flags (O_NONBLOCK passed through)
 *   WRITE   3  u64 fh, u32 file flags, u32 0, data
 *   POLL    4  u64 fh, u32 events, u32 1 when the kernel wants a wake-up notification
 *   IOCTL   5  u64 fh, u32 cmd, u32 out size (from _IOC_SIZE/_IOC_DIR), in data
 *   RELEASE 6  u64 fh; no reply
 *   CANCEL  7  the caller of request `id` got a signal: end it (its REPLY still comes)
 * hvsim -> hvsim-fuse:
 *   REPLY   128  i64 result (>= 0: fh for OPEN, count, revents, ioctl value;
 *                < 0: minus a Linux errno), data (READ bytes, IOCTL out bytes)
 *   NOTIFY  129  id = fh: its poll state changed; wake the kernel's pollers
 */
#define _GNU_SOURCE		/* ppoll */
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHAN_FD 3

enum {
	CH_OPEN = 1,
	CH_READ = 2,
	CH_WRITE = 3,
	CH_POLL = 4,
	CH_IOCTL = 5,
	CH_RELEASE = 6,
	CH_CANCEL = 7,
	CH_READY = 9,
	CH_REPLY = 128,
	CH_NOTIFY = 129,
};

#define HDR_LEN 16
#define MAX_FRAME (4u << 20)

/* The tree: the root, intermediate directories, the nodes, the link. */
enum ent_kind { E_DIR, E_NODE, E_LINK };

struct ent {
	fuse_ino_t ino;
	fuse_ino_t parent;
	char *name;
	enum ent_kind kind;
	int node;		/* E_NODE: index in the NODE arguments */
};

static struct ent *ents;
static size_t nents;
static const char *ctl_target;
static int debug;

/* A FUSE request waiting for hvsim's REPLY. */
struct pending {
	uint64_t id;
	fuse_req_t req;
	uint16_t type;
	uint32_t out_size;	/* READ, IOCTL: at most this many bytes go back */
	struct pending *next;
};

static struct pending *pendings;
static uint64_t next_id = 1;

/* An open file: its handle in hvsim and the kernel's latest poll handle. */
struct openfile {
	uint64_t fh;
	struct fuse_pollhandle *ph;
	struct openfile *next;
};

static struct openfile *files;
static struct fuse_session *session;
static int chan_broken;

static void logmsg(const char *fmt, const char *a)
{
	fprintf(stderr, "hvsim-fuse: ");
	fprintf(stderr, fmt, a);
	fputc('\n', stderr);
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* Write a whole frame; a failure means hvsim is gone, which ends the loop. */
static int send_frame(uint16_t type, uint64_t id, const void *body, size_t blen,
		      const void *data, size_t dlen)
{
	unsigned char hdr[HDR_LEN];
	size_t total = HDR_LEN + blen + dlen;
	const unsigned char *parts[3] = { hdr, body, data };
	size_t lens[3] = { HDR_LEN, blen, dlen };

	if (chan_broken)
		return -1;
	put32(hdr, (uint32_t)total);
	hdr[4] = (unsigned char)(type & 0xff);
	hdr[5] = (unsigned char)(type >> 8);
	hdr[6] = hdr[7] = 0;
	put64(hdr + 8, id);
	for (int i = 0; i < 3; i++) {
		size_t off = 0;
		while (off < lens[i]) {
			ssize_t n = write(CHAN_FD, parts[i] + off, lens[i] - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				chan_broken = 1;
				fuse_session_exit(session);
				return -1;
			}
			off += (size_t)n;
		}
	}
	return 0;
}

static struct pending *add_pending(fuse_req_t req, uint16_t type, uint32_t out_size)
{
	struct pending *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->id = next_id++;
	p->req = req;
	p->type = type;
	p->out_size = out_size;
	p->next = pendings;
	pendings = p;
	return p;
}

static struct pending *take_pending(uint64_t id)
{
	for (struct pending **pp = &pendings; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id) {
			struct pending *p = *pp;
			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

static struct openfile *find_file(uint64_t fh)
{
	for (struct openfile *f = files; f; f = f->next)
		if (f->fh == fh)
			return f;
	return NULL;
}

static void drop_file(uint64_t fh)
{
	for (struct openfile **pp = &files; *pp; pp = &(*pp)->next) {
		if ((*pp)->fh == fh) {
			struct openfile *f = *pp;
			*pp = f->next;
			if (f->ph)
				fuse_pollhandle_destroy(f->ph);
			free(f);
			return;
		}
	}
}

static struct ent *ent_of(fuse_ino_t ino)
{
	for (size_t i = 0; i < nents; i++)
		if (ents[i].ino == ino)
			return &ents[i];
	return NULL;
}

static void fill_attr(const struct ent *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = e->ino;
	st->st_uid = getuid();
	st->st_gid = getgid();
	switch (e->kind) {
	case E_DIR:
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		break;
	case E_NODE:
		/* Root-only like the real nodes (Linux misc devices, FreeBSD 0640 root:wheel). */
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		break;
	case E_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)strlen(ctl_target);
		break;
	}
}

/* Submit a request to hvsim and keep the FUSE request until the REPLY. */
static void forward(fuse_req_t req, uint16_t type, uint32_t out_size,
		    const void *body, size_t blen, const void *data, size_t dlen,
		    int interruptible);

static void on_interrupt(fuse_req_t req, void *data)
{
	(void)req;
	uint64_t id = (uint64_t)(uintptr_t)data;
	send_frame(CH_CANCEL, id, NULL, 0, NULL, 0);
}

static void forward(fuse_req_t req, uint16_t type, uint32_t out_size,
		    const void *body, size_t blen, const void *data, size_t dlen,
		    int interruptible)
{
	struct pending *p = add_pending(req, type, out_size);
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (send_frame(type, p->id, body, blen, data, dlen) < 0) {
		take_pending(p->id);
		free(p);
		fuse_reply_err(req, EIO);
		return;
	}
	/* Registered after sending: if the signal already came, the CANCEL follows the request. */
	if (interruptible)
		fuse_req_interrupt_func(req, on_interrupt, (void *)(uintptr_t)p->id);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	for (size_t i = 0; i < nents; i++) {
		if (ents[i].parent == parent && ents[i].ino != parent && strcmp(ents[i].name, name) == 0) {
			struct fuse_entry_param e;
			memset(&e, 0, sizeof(e));
			e.ino = ents[i].ino;
			e.attr_timeout = 1.0;
			e.entry_timeout = 1.0;
			fill_attr(&ents[i], &e.attr);
			fuse_reply_entry(req, &e);
			return;
		}
	}
	fuse_reply_err(req, ENOENT);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	struct ent *e = ent_of(ino);
	struct stat st;
	if (!e) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(e, &st);
	fuse_reply_attr(req, &st, 1.0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)attr;
	(void)to_set;
	/* A character device ignores truncation (open with O_TRUNC, `> node` in a shell); so do these files:
	 * nothing changes, the answer is the unchanged attributes. */
	op_getattr(req, ino, fi);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct ent *e = ent_of(ino);
	if (!e || e->kind != E_LINK) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_readlink(req, ctl_target);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	struct ent *dir = ent_of(ino);
	char *buf;
	size_t used = 0;
	off_t idx = 0;

	if (!dir || dir->kind != E_DIR) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets: 1 ".", 2 "..", then 3 + position among this directory's children. */
	for (size_t i = 0; i < nents + 2; i++) {
		struct stat st;
		const char *name;
		memset(&st, 0, sizeof(st));
		if (i == 0) {
			name = ".";
			st.st_ino = ino;
			st.st_mode = S_IFDIR;
		} else if (i == 1) {
			name = "..";
			st.st_ino = dir->parent;
			st.st_mode = S_IFDIR;
		} else {
			struct ent *e = &ents[i - 2];
			if (e->parent != ino || e->ino == ino)
				continue;
			name = e->name;
			fill_attr(e, &st);
		}
		idx++;
		if (idx <= off)
			continue;
		size_t n = fuse_add_direntry(req, buf + used, size - used, name, &st, idx);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct ent *e = ent_of(ino);
	unsigned char body[12];

	if (!e) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (e->kind != E_NODE) {
		fuse_reply_err(req, e->kind == E_DIR ? EISDIR : EINVAL);
		return;
	}
	put32(body, (uint32_t)e->node);
	put32(body + 4, (uint32_t)fuse_req_ctx(req)->pid);
	put32(body + 8, (uint32_t)fi->flags);
	forward(req, CH_OPEN, 0, body, sizeof(body), NULL, 0, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)ino;
	(void)off;		/* nonseekable: a message device has no offsets */
	unsigned char body[16];
	put64(body, fi->fh);
	put32(body + 8, (uint32_t)size);
	put32(body + 12, (uint32_t)fi->flags);
	forward(req, CH_READ, (uint32_t)size, body, sizeof(body), NULL, 0, 1);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		     off_t off, struct fuse_file_info *fi)
{
	(void)ino;
	(void)off;
	unsigned char body[16];
	put64(body, fi->fh);
	put32(body + 8, (uint32_t)fi->flags);
	put32(body + 12, 0);
	forward(req, CH_WRITE, 0, body, sizeof(body), buf, size, 1);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	/* close(2) of one descriptor; the driver sees release when the last one goes. */
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	send_frame(CH_RELEASE, 0, &fi->fh, 8, NULL, 0);
	drop_file(fi->fh);
	fuse_reply_err(req, 0);
}

static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		    struct fuse_pollhandle *ph)
{
	(void)ino;
	struct openfile *f = find_file(fi->fh);
	unsigned char body[16];

	if (ph) {
		if (f) {
			/* The kernel keeps one handle per file; the newest replaces the old one. */
			if (f->ph)
				fuse_pollhandle_destroy(f->ph);
			f->ph = ph;
		} else {
			fuse_pollhandle_destroy(ph);
		}
	}
	put64(body, fi->fh);
	put32(body + 8, fi->poll_events);
	put32(body + 12, ph ? 1 : 0);
	forward(req, CH_POLL, 0, body, sizeof(body), NULL, 0, 0);
}

static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	(void)ino;
	(void)arg;
	unsigned char body[16];

	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	/* Restricted ioctl: the kernel already sized both buffers from _IOC_DIR/_IOC_SIZE of cmd. */
	put64(body, fi->fh);
	put32(body + 8, cmd);
	put32(body + 12, (uint32_t)out_bufsz);
	forward(req, CH_IOCTL, (uint32_t)out_bufsz, body, sizeof(body), in_buf, in_bufsz, 1);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.readdir = op_readdir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.poll = op_poll,
	.ioctl = op_ioctl,
};

/* A REPLY from hvsim: finish the FUSE request it belongs to. */
static void on_reply(uint64_t id, const unsigned char *body, size_t blen)
{
	struct pending *p = take_pending(id);
	int64_t result;
	const unsigned char *data;
	size_t dlen;

	if (!p) {
		logmsg("%s", "reply to an unknown request ignored");
		return;
	}
	if (blen < 8) {
		fuse_reply_err(p->req, EIO);
		free(p);
		return;
	}
	result = (int64_t)get64(body);
	data = body + 8;
	dlen = blen - 8;
	if (result < 0) {
		/* An errno, or garbage (compared before negating: -INT64_MIN does not exist). */
		fuse_reply_err(p->req, result >= -4095 ? (int)-result : EIO);
		free(p);
		return;
	}
	/* Results the kernel cannot take as they are would reach the caller mangled: EIO instead. */
	if ((p->type == CH_READ && dlen > p->out_size) ||
	    (p->type == CH_IOCTL && result > INT_MAX) ||
	    (p->type == CH_POLL && result > UINT32_MAX)) {
		logmsg("%s", "reply out of range for its request; the caller gets EIO");
		fuse_reply_err(p->req, EIO);
		free(p);
		return;
	}
	switch (p->type) {
	case CH_OPEN: {
		struct fuse_file_info fi;
		struct openfile *f = calloc(1, sizeof(*f));
		memset(&fi, 0, sizeof(fi));
		fi.fh = (uint64_t)result;
		/* Every read(2)/write(2) reaches the driver with its own size; no offsets. */
		fi.direct_io = 1;
		fi.nonseekable = 1;
		if (f) {
			f->fh = fi.fh;
			f->next = files;
			files = f;
		}
		if (!f || fuse_reply_open(p->req, &fi) != 0) {
			/* The opener is gone (or no memory): the driver must not keep the file open. */
			drop_file(fi.fh);
			if (!f)
				fuse_reply_err(p->req, ENOMEM);
			send_frame(CH_RELEASE, 0, &fi.fh, 8, NULL, 0);
		}
		break;
	}
	case CH_READ:
		fuse_reply_buf(p->req, (const char *)data, dlen);
		break;
	case CH_WRITE:
		fuse_reply_write(p->req, (size_t)result);
		break;
	case CH_POLL:
		fuse_reply_poll(p->req, (unsigned)result);
		break;
	case CH_IOCTL:
		fuse_reply_ioctl(p->req, (int)result, dlen ? data : NULL,
				 dlen < p->out_size ? dlen : p->out_size);
		break;
	default:
		fuse_reply_err(p->req, EIO);
	}
	free(p);
}

static void on_notify(uint64_t fh)
{
	struct openfile *f = find_file(fh);
	if (f && f->ph)
		fuse_lowlevel_notify_poll(f->ph);
}

/*
 * The channel is gone or unusable: every request still waiting for hvsim
 * fails now with EIO, so no caller blocks until the unmount tears the
 * connection down.
 */
static void fail_pending(void)
{
	while (pendings) {
		struct pending *p = pendings;
		pendings = p->next;
		fuse_reply_err(p->req, EIO);
		free(p);
	}
}

/* Bytes from the channel not yet forming a whole frame. */
static unsigned char *inbuf;
static size_t inlen, incap;

/* Read what the channel has; returns -1 when hvsim has gone away, -2 when it sent garbage. */
static int pump_channel(void)
{
	if (incap - inlen < 65536) {
		size_t cap = incap ? incap * 2 : 131072;
		unsigned char *nb = realloc(inbuf, cap);
		if (!nb)
			return -1;
		inbuf = nb;
		incap = cap;
	}
	ssize_t n = read(CHAN_FD, inbuf + inlen, incap - inlen);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0) {
		if (inlen)
			logmsg("%s", "channel closed in the middle of a frame");
		return -1;
	}
	inlen += (size_t)n;
	size_t off = 0;
	/* The length is checked as soon as its 4 bytes are in: a bad one is not waited on. */
	while (inlen - off >= 4) {
		uint32_t len = get32(inbuf + off);
		if (len < HDR_LEN || len > MAX_FRAME) {
			logmsg("%s", "malformed frame from hvsim (bad length); giving up");
			return -2;
		}
		if (inlen - off < len)
			break;
		uint16_t type = (uint16_t)(inbuf[off + 4] | (inbuf[off + 5] << 8));
		uint64_t id = get64(inbuf + off + 8);
		if (type == CH_REPLY)
			on_reply(id, inbuf + off + HDR_LEN, len - HDR_LEN);
		else if (type == CH_NOTIFY)
			on_notify(id);
		off += len;
	}
	memmove(inbuf, inbuf + off, inlen - off);
	inlen -= off;
	return 0;
}

/* Build the tree from the node names; intermediate directories come first. */
static int build_tree(char **names, int count)
{
	ents = calloc((size_t)count * 2 + 2, sizeof(*ents));
	if (!ents)
		return -1;
	ents[0] = (struct ent){ .ino = FUSE_ROOT_ID, .parent = FUSE_ROOT_ID, .name = "", .kind = E_DIR };
	nents = 1;
	fuse_ino_t next = FUSE_ROOT_ID + 1;
	for (int i = 0; i < count; i++) {
		char *copy = strdup(names[i]);
		char *slash = copy ? strchr(copy, '/') : NULL;
		fuse_ino_t parent = FUSE_ROOT_ID;
		if (!copy)
			return -1;
		if (slash) {
			*slash = '\0';
			if (strchr(slash + 1, '/') || !*copy || !slash[1]) {
				logmsg("node name %s: at most one directory level", names[i]);
				return -1;
			}
			size_t j;
			for (j = 0; j < nents; j++)
				if (ents[j].kind == E_DIR && ents[j].parent == FUSE_ROOT_ID && strcmp(ents[j].name, copy) == 0)
					break;
			if (j == nents)
				ents[nents++] = (struct ent){ .ino = next++, .parent = FUSE_ROOT_ID, .name = copy, .kind = E_DIR };
			parent = ents[j].ino;
		}
		ents[nents++] = (struct ent){ .ino = next++, .parent = parent,
			.name = slash ? slash + 1 : copy, .kind = E_NODE, .node = i };
	}
	ents[nents++] = (struct ent){ .ino = next++, .parent = FUSE_ROOT_ID, .name = "hvsim.ctl", .kind = E_LINK };
	return 0;
}

int main(int argc, char **argv)
{
	int argi = 1;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_buf fbuf = { .mem = NULL };
	const char *mountpoint;
	int rc = 0;

	if (argi < argc && strcmp(argv[argi], "-d") == 0) {
		debug = 1;
		argi++;
	}
	if (argc - argi < 3) {
		fprintf(stderr, "usage: hvsim-fuse [-d] MOUNTPOINT CTL-TARGET NODE... (channel on fd 3; started by hvsim serve --fuse)\n");
		return 64;
	}
	int fdflags = fcntl(CHAN_FD, F_GETFL);
	if (fdflags < 0 || fcntl(CHAN_FD, F_GETFD) < 0) {
		fprintf(stderr, "hvsim-fuse: no channel on file descriptor 3 (this program is started by hvsim serve --fuse)\n");
		return 64;
	}
	/*
	 * The channel stays in this process: fusermount3 (forked for
	 * auto_unmount, alive as long as the mount) must not hold it, or
	 * hvsim would not see it close when this program dies. Blocking, so a
	 * full socket buffer makes send_frame wait instead of failing EAGAIN.
	 */
	if (fcntl(CHAN_FD, F_SETFD, FD_CLOEXEC) < 0 ||
	    ((fdflags & O_NONBLOCK) && fcntl(CHAN_FD, F_SETFL, fdflags & ~O_NONBLOCK) < 0)) {
		perror("hvsim-fuse: file descriptor 3");
		return 70;
	}
	mountpoint = argv[argi++];
	ctl_target = argv[argi++];
	if (build_tree(argv + argi, argc - argi) < 0)
		return 64;

	if (fuse_opt_add_arg(&args, "hvsim-fuse") != 0 ||
	    fuse_opt_add_arg(&args, "-o") != 0 ||
	    fuse_opt_add_arg(&args, getuid() == 0
			     ? "fsname=hvsim,subtype=hvsim,auto_unmount,allow_other,default_permissions"
			     : "fsname=hvsim,subtype=hvsim,auto_unmount,default_permissions") != 0 ||
	    (debug && fuse_opt_add_arg(&args, "-d") != 0))
		return 70;

	session = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!session) {
		fprintf(stderr, "hvsim-fuse: cannot create the FUSE session\n");
		return 70;
	}
	if (fuse_set_signal_handlers(session) != 0) {
		fuse_session_destroy(session);
		return 70;
	}
	if (fuse_session_mount(session, mountpoint) != 0) {
		fprintf(stderr, "hvsim-fuse: cannot mount on %s (see the message above)\n", mountpoint);
		fuse_remove_signal_handlers(session);
		fuse_session_destroy(session);
		return 71;
	}
	send_frame(CH_READY, 0, NULL, 0, NULL, 0);

	/* The stop signals are delivered only inside ppoll, so one arriving just before it is not missed. */
	sigset_t stopsigs, waitmask;
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &stopsigs, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);

	int ffd = fuse_session_fd(session);
	while (!fuse_session_exited(session)) {
		struct pollfd pfd[2] = { { .fd = ffd, .events = POLLIN }, { .fd = CHAN_FD, .events = POLLIN } };
		int n = ppoll(pfd, 2, NULL, &waitmask);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = 70;
			break;
		}
		if (pfd[1].revents) {
			int pr = pump_channel();
			if (pr < 0) {
				/* hvsim went away (or cannot be understood): unmount and go. */
				if (pr == -2)
					rc = 65;
				break;
			}
		}
		if (pfd[0].revents & POLLIN) {
			int r = fuse_session_receive_buf(session, &fbuf);
			if (r == -EINTR || r == -EAGAIN)
				continue;
			if (r <= 0) {
				if (r < 0)
					rc = 70;
				break;
			}
			fuse_session_process_buf(session, &fbuf);
		} else if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			/* Unmounted from outside (umount, fusermount3 -u): the connection is over. */
			break;
		}
	}
	fail_pending();
	free(fbuf.mem);
	fuse_session_unmount(session);
	fuse_remove_signal_handlers(session);
	fuse_session_destroy(session);
	fuse_opt_free_args(&args);
	return rc;
}
