/**
 * The C library calls hvguest needs, through koffi. This file and its
 * siblings in common/ are the only places that load native code.
 *
 * Every call is synchronous except pollAsync, which runs poll(2) on a libuv
 * worker thread so the event loop stays free while a daemon waits. errno is
 * read with koffi.errno() right after the failing call, before anything else
 * can overwrite it; after an async call errno is not available at all.
 */
import { constants as osConstants } from 'node:os';
import { createRequire } from 'node:module';

export type Os = 'freebsd' | 'linux';
export const currentOs = (): Os => (process.platform === 'freebsd' ? 'freebsd' : 'linux');

/** Flag values that differ between the two systems. */
interface OsFlags {
  libc: string;
  O_RDONLY: number;
  O_RDWR: number;
  O_NONBLOCK: number;
  O_CLOEXEC: number;
  SOCK_CLOEXEC: number;
  SOCK_NONBLOCK: number;
  /** sockaddr_un: Linux {u16 family; char path[108]}, FreeBSD {u8 len; u8 family; char path[104]}. */
  sunPathMax: number;
  sunHasLen: boolean;
}

const FLAGS: Record<Os, OsFlags> = {
  linux: {
    libc: 'libc.so.6',
    O_RDONLY: 0,
    O_RDWR: 2,
    O_NONBLOCK: 0o4000,
    O_CLOEXEC: 0o2000000,
    SOCK_CLOEXEC: 0o2000000,
    SOCK_NONBLOCK: 0o4000,
    sunPathMax: 108,
    sunHasLen: false,
  },
  freebsd: {
    libc: 'libc.so.7',
    O_RDONLY: 0,
    O_RDWR: 2,
    O_NONBLOCK: 0x4,
    O_CLOEXEC: 0x100000,
    SOCK_CLOEXEC: 0x10000000,
    SOCK_NONBLOCK: 0x20000000,
    sunPathMax: 104,
    sunHasLen: true,
  },
};

export const AF_UNIX = 1;
export const SOCK_SEQPACKET = 5;
export const POLLIN = 0x001;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const POLLRDNORM = 0x040;

/** Name of an errno number on this OS ('E123' when unknown, e.g. FreeBSD hv_kvp's negative EBUSY). */
export function errnoName(n: number): string {
  for (const [name, v] of Object.entries(osConstants.errno)) if (v === n) return name;
  return `E${n}`;
}

/** Number of an errno name on this OS. */
export function errnoNumber(name: string): number | undefined {
  return (osConstants.errno as Record<string, number>)[name];
}

/** A failed system call: errno name, the call and its object. Thrown by the wrappers below. */
export class SyscallError extends Error {
  constructor(
    readonly code: string,
    readonly errno: number,
    readonly syscall: string,
    readonly target: string,
  ) {
    super(`${syscall} ${target}: ${code}`);
    this.name = 'SyscallError';
  }
}

/** The raw functions, as koffi binds them; replaceable in tests (see setLibc). */
export interface RawLibc {
  open(path: string, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, buf: Buffer, n: number): number;
  write(fd: number, buf: Buffer, n: number): number;
  ioctl(fd: number, req: number, arg: Buffer): number;
  poll(fds: Buffer, n: number, timeout: number): number;
  pollAsync(fds: Buffer, n: number, timeout: number, cb: (err: unknown, res: number) => void): void;
  pipe2(fds: number[], flags: number): number;
  socket(domain: number, type: number, proto: number): number;
  connect(fd: number, addr: Buffer, len: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  listen(fd: number, backlog: number): number;
  accept4(fd: number, flags: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  errno(): number;
}

let raw: RawLibc | undefined;

function bind(): RawLibc {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load(FLAGS[currentOs()].libc);
  const open = lib.func('int open(const char *path, int flags, ...)');
  const close = lib.func('int close(int fd)');
  const read = lib.func('long read(int fd, void *buf, unsigned long n)');
  const write = lib.func('long write(int fd, const void *buf, unsigned long n)');
  const ioctl = lib.func('int ioctl(int fd, unsigned long req, ...)');
  const poll = lib.func('int poll(void *fds, unsigned int nfds, int timeout)');
  const pipe2 = lib.func('int pipe2(_Out_ int *fds, int flags)');
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const connect = lib.func('int connect(int fd, const void *addr, unsigned int len)');
  const bindFn = lib.func('int bind(int fd, const void *addr, unsigned int len)');
  const listen = lib.func('int listen(int fd, int backlog)');
  const accept4 = lib.func('int accept4(int fd, void *addr, void *len, int flags)');
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  return {
    open: (p, f, m) => open(p, f, 'int', m),
    close: (fd) => close(fd),
    read: (fd, b, n) => Number(read(fd, b, n)),
    write: (fd, b, n) => Number(write(fd, b, n)),
    ioctl: (fd, req, arg) => ioctl(fd, req, 'void *', arg),
    poll: (fds, n, t) => poll(fds, n, t),
    pollAsync: (fds, n, t, cb) => poll.async(fds, n, t, cb),
    pipe2: (fds, flags) => pipe2(fds, flags),
    socket: (d, t, p) => socket(d, t, p),
    connect: (fd, a, l) => connect(fd, a, l),
    bind: (fd, a, l) => bindFn(fd, a, l),
    listen: (fd, b) => listen(fd, b),
    accept4: (fd, flags) => accept4(fd, null, null, flags),
    fcntl: (fd, cmd, arg) => fcntl(fd, cmd, 'int', arg),
    errno: () => koffi.errno(),
  };
}

/** The bound C library (loaded on first use). */
export function libc(): RawLibc {
  raw ??= bind();
  return raw;
}

/** Replace the C library for tests (scripted errno paths); pass undefined to restore. */
export function setLibc(fake: RawLibc | undefined): void {
  raw = fake;
}

export const osFlags = (): OsFlags => FLAGS[currentOs()];

function fail(call: string, target: string, c = libc()): never {
  const e = c.errno();
  throw new SyscallError(errnoName(e), e, call, target);
}

/** open(2); throws SyscallError. Odd errno values (FreeBSD hv_kvp's -EBUSY shows up as a failing open with a strange errno) keep their number in the error. */
export function openFd(path: string, flags: number, mode = 0): number {
  const c = libc();
  const fd = c.open(path, flags, mode);
  if (fd < 0) fail('open', path, c);
  return fd;
}

export function closeFd(fd: number): void {
  libc().close(fd);
}

/** One read(2), retried on EINTR; returns the bytes read (possibly fewer than `size`). */
export function readFd(fd: number, size: number, target: string): Buffer {
  const c = libc();
  const buf = Buffer.alloc(size);
  for (;;) {
    const n = c.read(fd, buf, size);
    if (n >= 0) return buf.subarray(0, n);
    if (c.errno() !== errnoNumber('EINTR')) fail('read', target, c);
  }
}

/** One write(2), retried on EINTR; returns the count written. */
export function writeFd(fd: number, data: Buffer, target: string): number {
  const c = libc();
  for (;;) {
    const n = c.write(fd, data, data.length);
    if (n >= 0) return n;
    if (c.errno() !== errnoNumber('EINTR')) fail('write', target, c);
  }
}

/** ioctl(2) with an in/out buffer, retried on EINTR; returns the ioctl's value, `arg` holds what the kernel copied out. */
export function ioctlFd(fd: number, req: number, arg: Buffer, target: string): number {
  const c = libc();
  for (;;) {
    const r = c.ioctl(fd, req, arg);
    if (r >= 0) return r;
    if (c.errno() !== errnoNumber('EINTR')) fail(`ioctl 0x${req.toString(16)}`, target, c);
  }
}

/** A close-on-exec, non-blocking pipe; [read end, write end]. */
export function makePipe(): [number, number] {
  const c = libc();
  const fds = [0, 0];
  const f = osFlags();
  if (c.pipe2(fds, f.O_CLOEXEC | f.O_NONBLOCK) < 0) fail('pipe2', 'wake-up pipe', c);
  return [fds[0]!, fds[1]!];
}

/** Encode a sockaddr_un for this OS. */
export function sockaddrUn(path: string): Buffer {
  const f = osFlags();
  const p = Buffer.from(path, 'utf8');
  if (p.length + 1 > f.sunPathMax) {
    throw new SyscallError('ENAMETOOLONG', errnoNumber('ENAMETOOLONG') ?? 36, 'sockaddr_un', path);
  }
  const off = 2;
  const buf = Buffer.alloc(off + f.sunPathMax);
  if (f.sunHasLen) {
    buf.writeUInt8(off + p.length + 1, 0);
    buf.writeUInt8(AF_UNIX, 1);
  } else buf.writeUInt16LE(AF_UNIX, 0);
  p.copy(buf, off);
  return buf;
}

/** A close-on-exec SOCK_SEQPACKET socket connected to `path`. */
export function connectSeqpacket(path: string): number {
  const c = libc();
  const f = osFlags();
  const addr = sockaddrUn(path);
  const fd = c.socket(AF_UNIX, SOCK_SEQPACKET | f.SOCK_CLOEXEC, 0);
  if (fd < 0) fail('socket', path, c);
  for (;;) {
    if (c.connect(fd, addr, addr.length) === 0) return fd;
    const e = c.errno();
    if (e === errnoNumber('EINTR')) continue;
    c.close(fd);
    throw new SyscallError(errnoName(e), e, 'connect', path);
  }
}

/** A listening, non-blocking, close-on-exec SOCK_SEQPACKET socket bound to `path`. */
export function listenSeqpacket(path: string, backlog = 16): number {
  const c = libc();
  const f = osFlags();
  const addr = sockaddrUn(path);
  const fd = c.socket(AF_UNIX, SOCK_SEQPACKET | f.SOCK_CLOEXEC | f.SOCK_NONBLOCK, 0);
  if (fd < 0) fail('socket', path, c);
  if (c.bind(fd, addr, addr.length) < 0 || c.listen(fd, backlog) < 0) {
    const e = c.errno();
    c.close(fd);
    throw new SyscallError(errnoName(e), e, 'bind/listen', path);
  }
  return fd;
}

/** accept4(2) a connection as non-blocking and close-on-exec; undefined when none is pending. */
export function acceptConn(fd: number, target: string): number | undefined {
  const c = libc();
  const f = osFlags();
  const r = c.accept4(fd, f.SOCK_CLOEXEC | f.SOCK_NONBLOCK);
  if (r >= 0) return r;
  const e = c.errno();
  if (e === errnoNumber('EAGAIN') || e === errnoNumber('EWOULDBLOCK') || e === errnoNumber('EINTR') || e === errnoNumber('ECONNABORTED')) {
    return undefined;
  }
  throw new SyscallError(errnoName(e), e, 'accept', target);
}

/** A pollfd array (struct pollfd: int fd; short events; short revents). */
export class PollSet {
  readonly buf: Buffer;
  constructor(readonly fds: readonly number[], events = POLLIN) {
    this.buf = Buffer.alloc(8 * fds.length);
    fds.forEach((fd, i) => {
      this.buf.writeInt32LE(fd, i * 8);
      this.buf.writeInt16LE(events, i * 8 + 4);
    });
  }
  revents(i: number): number {
    return this.buf.readUInt16LE(i * 8 + 6);
  }
}

/**
 * poll(2) on a worker thread, infinite timeout. Resolves with the number
 * of ready descriptors (revents are in `set`); -1 means the call failed
 * (errno is lost across threads; callers re-check with a zero-timeout poll).
 */
export function pollAsync(set: PollSet, timeoutMs = -1): Promise<number> {
  return new Promise((resolve, reject) => {
    libc().pollAsync(set.buf, set.fds.length, timeoutMs, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** poll(2) on this thread, waiting at most `timeoutMs` (0: not at all); throws on failure (this one keeps errno). */
export function pollNow(set: PollSet, target: string, timeoutMs = 0): number {
  const c = libc();
  const r = c.poll(set.buf, set.fds.length, timeoutMs);
  if (r < 0 && c.errno() !== errnoNumber('EINTR')) fail('poll', target, c);
  return Math.max(r, 0);
}
