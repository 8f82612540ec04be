/**
 * The file calls the pool store makes, as one small injectable interface
 * (tests count bytes per descriptor and simulate a crash after any call).
 *
 * Everything works on raw descriptors: the store keeps one descriptor per
 * pool file for its lifetime and never opens the same file a second time,
 * because closing any descriptor of a file drops the process's POSIX
 * record locks on it. Node opens every file close-on-exec (libuv adds
 * O_CLOEXEC), so descriptors do not leak into helper processes (P21).
 */
import * as fs from 'node:fs';

/** What the store compares to notice another writer. */
export interface FileStat {
  dev: bigint;
  ino: bigint;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  mode: number;
}

export interface PoolFs {
  /** open(2); throws with an errno code. */
  open(path: string, flags: number, mode: number): number;
  close(fd: number): void;
  /** pread until `length` bytes or end of file; returns the bytes read. */
  pread(fd: number, length: number, position: number): Buffer;
  /** pwrite all of `data` at `position` (short writes continued). */
  pwrite(fd: number, data: Buffer, position: number): void;
  fstat(fd: number): FileStat;
  /** stat(2) of a path (no descriptor is opened); undefined when it does not exist. */
  stat(path: string): FileStat | undefined;
  fdatasync(fd: number): void;
  ftruncate(fd: number, length: number): void;
  fchmod(fd: number, mode: number): void;
  /** mkdir -p; returns the first directory it created, or undefined when all existed. */
  mkdirp(path: string, mode: number): string | undefined;
  chmod(path: string, mode: number): void;
  /** fsync a directory, so that names created in it survive a power loss. */
  fsyncDir(path: string): void;
}

export const O = {
  RDONLY: fs.constants.O_RDONLY,
  RDWR: fs.constants.O_RDWR,
  WRONLY: fs.constants.O_WRONLY,
  CREAT: fs.constants.O_CREAT,
  EXCL: fs.constants.O_EXCL,
  /** Refuse a symbolic link in the last path component (ELOOP on Linux, EMLINK on FreeBSD): nothing is written through one. */
  NOFOLLOW: fs.constants.O_NOFOLLOW,
  /** So that a FIFO or device planted under a pool name cannot block open(2). No effect on regular files. */
  NONBLOCK: fs.constants.O_NONBLOCK,
};

function toStat(s: fs.BigIntStats): FileStat {
  return { dev: s.dev, ino: s.ino, size: Number(s.size), mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs, mode: Number(s.mode) };
}

/** PoolFs on node:fs. */
export const nodePoolFs: PoolFs = {
  open: (path, flags, mode) => fs.openSync(path, flags, mode),
  close: (fd) => fs.closeSync(fd),
  pread(fd, length, position) {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, buf, got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got === length ? buf : buf.subarray(0, got);
  },
  pwrite(fd, data, position) {
    let done = 0;
    while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
  },
  fstat: (fd) => toStat(fs.fstatSync(fd, { bigint: true })),
  stat(path) {
    const s = fs.statSync(path, { bigint: true, throwIfNoEntry: false });
    return s ? toStat(s) : undefined;
  },
  fdatasync: (fd) => fs.fdatasyncSync(fd),
  ftruncate: (fd, length) => fs.ftruncateSync(fd, length),
  fchmod: (fd, mode) => fs.fchmodSync(fd, mode),
  mkdirp: (path, mode) => fs.mkdirSync(path, { recursive: true, mode }),
  chmod: (path, mode) => fs.chmodSync(path, mode),
  fsyncDir(path) {
    const fd = fs.openSync(path, fs.constants.O_RDONLY);
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
};
