/*
 * hvguest-freeze-guard: the SIGKILL guard of hv_vss_daemon (and hvguestd)
 * on Linux, as a small C program instead of a second node process.
 *
 * Linux never thaws a FIFREEZE'd file system by itself, so a daemon killed
 * while file systems are frozen would leave the guest hung. The daemon
 * starts this program before its first freeze and keeps it running; when
 * the daemon goes away (even with SIGKILL: the kernel closes the daemon's
 * end of our stdin) this program thaws what the daemon had frozen.
 *
 * Protocol (the same as vss/guard-main.ts, the node guard; the daemon side
 * is vss/guard.ts):
 *   - once set up, it writes "ready\n" on stdout;
 *   - each stdin line is a JSON object {"thaw": [MOUNT, ...]}: the mount
 *     points in freeze order (an empty array: nothing frozen). A valid line
 *     replaces the list and is answered "ok\n"; anything else leaves the
 *     list as it was and is answered "bad REASON\n". A line longer than
 *     MAX_LINE bytes (newline excluded) is refused the same way once its
 *     newline arrives;
 *   - at the end of stdin (also in the middle of a line, which is then
 *     ignored), on a read error, or on SIGTERM, SIGINT or SIGHUP, it thaws
 *     the list in reverse order (FITHAW on an O_RDONLY descriptor of each
 *     mount point; any error, EINVAL "not frozen" included, is ignored for
 *     that mount) and exits 0.
 *
 * It must never block on a frozen file system: it writes no file and never
 * writes to stderr, its working directory is /, all memory is static
 * (nothing is allocated after start), and it locks itself in memory when
 * the system allows it, so the thaw path never waits for a page-in.
 *
 * Build: cc -std=gnu11 -O2 -Wall -Wextra -Wconversion (build/native.sh,
 * build/mk/install.sh). Linux only; FreeBSD needs no guard (a UFS
 * suspension ends when its descriptor closes).
 */
#define _GNU_SOURCE		/* signalfd, O_CLOEXEC with -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#ifndef FITHAW
#define FITHAW _IOWR('X', 120, int)	/* as linux/fs.h has it; also in common/os/fsfreeze.ts */
#endif

/* Longest accepted line, newline excluded. The daemon sends one path per
 * frozen file system (one per device), so real lists are a few KiB. */
#define MAX_LINE 131072
#define STR_(x) #x
#define STR(x) STR_(x)

/* The current list and the one being parsed: mount points as NUL-terminated
 * strings one after another. A decoded string plus its NUL is never longer
 * than its JSON form with quotes, so a list always fits in MAX_LINE bytes. */
struct mount_list {
	size_t len;		/* bytes used */
	size_t count;		/* strings */
	char buf[MAX_LINE];
};

static struct mount_list lists[2];
static struct mount_list *current = &lists[0];
static struct mount_list *parsed = &lists[1];

static char line[MAX_LINE];
static size_t line_len;
static int line_too_long;

static char chunk[16384];

/* ---- output ------------------------------------------------------------ */

/* Write all of s to stdout. Errors are ignored: the daemon is gone, and the
 * end of stdin (which follows) does the thaw. */
static void say(const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

/* ---- the thaw ---------------------------------------------------------- */

static void thaw_one(const char *path)
{
	int fd;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return;
	(void)ioctl(fd, FITHAW, 0);
	(void)close(fd);
}

/* Thaw the current list, last frozen first. */
static void thaw_all(void)
{
	size_t end = current->len;

	while (end > 0) {
		size_t start = end - 1;	/* at the NUL of the last string */
		while (start > 0 && current->buf[start - 1] != '\0')
			start--;
		thaw_one(current->buf + start);
		end = start;
	}
	current->len = 0;
	current->count = 0;
}

/* ---- JSON -------------------------------------------------------------- */

struct cursor {
	const unsigned char *p;
	const unsigned char *end;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

/* Skip white space, then take the character ch if it is next. */
static int eat(struct cursor *c, unsigned char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return 1;
	}
	return 0;
}

static int hex4(struct cursor *c, uint32_t *out)
{
	uint32_t v = 0;

	if (c->end - c->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned char h = *c->p++;
		v <<= 4;
		if (h >= '0' && h <= '9')
			v |= (uint32_t)(h - '0');
		else if (h >= 'a' && h <= 'f')
			v |= (uint32_t)(h - 'a' + 10);
		else if (h >= 'A' && h <= 'F')
			v |= (uint32_t)(h - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Append code point cp as UTF-8 to dst (room checked by the caller). */
static size_t put_utf8(char *dst, uint32_t cp)
{
	if (cp < 0x80) {
		dst[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		dst[0] = (char)(0xC0 | (cp >> 6));
		dst[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		dst[0] = (char)(0xE0 | (cp >> 12));
		dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		dst[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	dst[0] = (char)(0xF0 | (cp >> 18));
	dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	dst[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 when it is not. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char b = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;

	if (b < 0x80)
		return 1;
	if (b >= 0xC2 && b <= 0xDF)
		n = 2;
	else if (b >= 0xE0 && b <= 0xEF) {
		n = 3;
		if (b == 0xE0)
			lo = 0xA0;
		else if (b == 0xED)
			hi = 0x9F;
	} else if (b >= 0xF0 && b <= 0xF4) {
		n = 4;
		if (b == 0xF0)
			lo = 0x90;
		else if (b == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/*
 * Decode the JSON string at c (which points at its opening quote) into
 * dst[0..room), NUL-terminated; *used gets the length without the NUL.
 * Returns NULL, or why the string is refused. A path cannot hold NUL or
 * an unpaired surrogate, so those are refused too.
 */
static const char *decode_string(struct cursor *c, char *dst, size_t room, size_t *used)
{
	size_t n = 0;

	if (room == 0)
		return "string too long";
	if (c->p >= c->end || *c->p != '"')
		return "a string was expected";
	c->p++;
	for (;;) {
		uint32_t cp;
		unsigned char b;

		if (c->p >= c->end)
			return "unterminated string";
		b = *c->p;
		if (b == '"') {
			c->p++;
			break;
		}
		if (b < 0x20)
			return "control character in a string";
		if (b != '\\') {
			size_t k = utf8_len(c->p, c->end);
			if (k == 0)
				return "not UTF-8";
			if (room - n < k + 1)
				return "string too long";
			memcpy(dst + n, c->p, k);
			n += k;
			c->p += k;
			continue;
		}
		c->p++;
		if (c->p >= c->end)
			return "unterminated string";
		switch (*c->p++) {
		case '"': cp = '"'; break;
		case '\\': cp = '\\'; break;
		case '/': cp = '/'; break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			if (hex4(c, &cp) != 0)
				return "bad \\u escape";
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return "unpaired surrogate";
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				uint32_t low;
				if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u')
					return "unpaired surrogate";
				c->p += 2;
				if (hex4(c, &low) != 0)
					return "bad \\u escape";
				if (low < 0xDC00 || low > 0xDFFF)
					return "unpaired surrogate";
				cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
			}
			if (cp == 0)
				return "NUL in a string";
			break;
		default:
			return "bad escape";
		}
		if (room - n < 5)
			return "string too long";
		n += put_utf8(dst + n, cp);
	}
	dst[n] = '\0';
	*used = n;
	return NULL;
}

/*
 * Parse one line: exactly {"thaw": [STRING, ...]} with any JSON white
 * space between tokens, into *parsed. Returns NULL, or why not.
 */
static const char *parse_line(const char *text, size_t len)
{
	struct cursor c = { (const unsigned char *)text, (const unsigned char *)text + len };
	char key[8];
	size_t key_len;
	const char *err;

	parsed->len = 0;
	parsed->count = 0;
	if (!eat(&c, '{'))
		return "not a JSON object";
	skip_ws(&c);
	/* The key, decoded (it may be written with escapes), must be "thaw". */
	if (c.p < c.end && *c.p != '"')
		return "not {\"thaw\": [...]}";
	err = decode_string(&c, key, sizeof key, &key_len);
	if (err != NULL || key_len != 4 || memcmp(key, "thaw", 4) != 0)
		return "not {\"thaw\": [...]}";
	if (!eat(&c, ':'))
		return "not a JSON object";
	if (!eat(&c, '['))
		return "\"thaw\" is not an array";
	if (!eat(&c, ']')) {
		for (;;) {
			size_t used;

			skip_ws(&c);
			if (c.p >= c.end || *c.p != '"')
				return "\"thaw\" holds something other than strings";
			err = decode_string(&c, parsed->buf + parsed->len, sizeof parsed->buf - parsed->len, &used);
			if (err != NULL)
				return err;
			parsed->len += used + 1;
			parsed->count++;
			if (eat(&c, ','))
				continue;
			if (eat(&c, ']'))
				break;
			return "\"thaw\" is not a JSON array";
		}
	}
	if (!eat(&c, '}'))
		return "not {\"thaw\": [...]} (one key only)";
	skip_ws(&c);
	if (c.p != c.end)
		return "text after the JSON object";
	return NULL;
}

/* ---- main loop --------------------------------------------------------- */

static void handle_line(void)
{
	const char *err;

	if (line_too_long) {
		say("bad line too long (over " STR(MAX_LINE) " bytes)\n");
		return;
	}
	err = parse_line(line, line_len);
	if (err != NULL) {
		say("bad ");
		say(err);
		say("\n");
		return;
	}
	{
		struct mount_list *t = current;
		current = parsed;
		parsed = t;
	}
	say("ok\n");
}

/* Take in one chunk of stdin; every complete line is answered. */
static void feed(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			handle_line();
			line_len = 0;
			line_too_long = 0;
		} else if (line_len < sizeof line)
			line[line_len++] = p[i];
		else
			line_too_long = 1;
	}
}

int main(void)
{
	sigset_t stop;
	struct pollfd fds[2];
	int sfd;

	/* Stay out of every mount, so none is held busy. */
	if (chdir("/") != 0) {
		/* Not fatal: the daemon starts us in / anyway. */
	}
	(void)signal(SIGPIPE, SIG_IGN);
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGHUP);
	/* Blocked, and read from a signalfd together with stdin: a stop signal
	 * is seen between two lines, never in the middle of a list update. */
	if (sigprocmask(SIG_BLOCK, &stop, NULL) != 0)
		return 70;
	sfd = signalfd(-1, &stop, SFD_CLOEXEC);
	if (sfd < 0)
		return 70;
	/* Best effort: without CAP_IPC_LOCK or enough RLIMIT_MEMLOCK, carry on
	 * unlocked. All the memory this program will use is mapped by now. */
	(void)mlockall(MCL_CURRENT | MCL_FUTURE);

	say("ready\n");
	fds[0].fd = STDIN_FILENO;
	fds[0].events = POLLIN;
	fds[1].fd = sfd;
	fds[1].events = POLLIN;
	for (;;) {
		int r = poll(fds, 2, -1);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents != 0)
			break;
		if (fds[0].revents != 0) {
			ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				break;	/* end of stdin (the daemon is gone) or an error */
			feed(chunk, (size_t)n);
		}
	}
	thaw_all();
	return 0;
}
