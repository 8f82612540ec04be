/**
 * ioctl request numbers, encoded for the OS the process runs on.
 * FreeBSD (sys/ioccom.h): IOC_VOID 0x20000000, IOC_OUT 0x40000000 (_IOR),
 * IOC_IN 0x80000000 (_IOW), length in bits 16..28.
 * Linux (asm-generic/ioctl.h): dir in bits 30..31 with _IOC_WRITE 1 and
 * _IOC_READ 2, size in bits 16..29. The same _IOR therefore sets bit 30 on
 * FreeBSD and bit 31 on Linux: when the FreeBSD protocol runs on a Linux
 * test host (FUSE node) the Linux encoding is the one the kernel checks.
 */
export type IoctlOs = 'freebsd' | 'linux';

/** Direction as the macros name it: _IO none, _IOR out of the kernel, _IOW into it, _IOWR both. */
export type IoctlDir = 'none' | 'read' | 'write' | 'readwrite';

/** The OS this process runs on, for ioctl encoding. */
export function hostIoctlOs(): IoctlOs {
  return process.platform === 'freebsd' ? 'freebsd' : 'linux';
}

/** Encode an ioctl request number; `group` is the character ('v', 'U', 'X'). */
export function ioc(os: IoctlOs, dir: IoctlDir, group: string, nr: number, size: number): number {
  const g = group.charCodeAt(0) & 0xff;
  if (os === 'freebsd') {
    const d = { none: 0x20000000, read: 0x40000000, write: 0x80000000, readwrite: 0xc0000000 }[dir];
    return (d | ((size & 0x1fff) << 16) | (g << 8) | (nr & 0xff)) >>> 0;
  }
  const d = { none: 0, read: 2, write: 1, readwrite: 3 }[dir];
  return ((d << 30) | ((size & 0x3fff) << 16) | (g << 8) | (nr & 0xff)) >>> 0;
}

/** The ioctls hvguest issues, for one OS. */
export function ioctlNumbers(os: IoctlOs = hostIoctlOs()) {
  return {
    /** _IOR('v', 2, struct hv_vss_opt_msg): fetch the next VSS request. */
    IOCHVVSSREAD: ioc(os, 'read', 'v', 2, 64),
    /** _IOW('v', 3, struct hv_vss_opt_msg): answer it. */
    IOCHVVSSWRITE: ioc(os, 'write', 'v', 3, 64),
    /** _IOW('U', 1, fsid_t): suspend one UFS file system (FreeBSD). */
    UFSSUSPEND: ioc(os, 'write', 'U', 1, 8),
    /** _IO('U', 2): resume (FreeBSD). */
    UFSRESUME: ioc(os, 'none', 'U', 2, 0),
    /** _IOWR('X', 119, int): freeze a file system (Linux). */
    FIFREEZE: ioc(os, 'readwrite', 'X', 119, 4),
    /** _IOWR('X', 120, int): thaw it (Linux). */
    FITHAW: ioc(os, 'readwrite', 'X', 120, 4),
  };
}
