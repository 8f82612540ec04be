/**
 * syslog(3) through koffi: openlog, syslog and closelog, nothing more.
 *
 * koffi is loaded on the first call, so programs that never log to syslog
 * (hvctl, hvsim, daemons in the foreground) never load the native module.
 * Tests replace the binding with setSyslogBinding.
 */
import { createRequire } from 'node:module';

// Priorities (the low 3 bits of syslog()'s priority argument); same values on Linux and FreeBSD.
export const LOG_EMERG = 0; // priority
export const LOG_ALERT = 1; // priority
export const LOG_CRIT = 2; // priority
export const LOG_ERR = 3; // priority
export const LOG_WARNING = 4; // priority
export const LOG_NOTICE = 5; // priority
export const LOG_INFO = 6; // priority
export const LOG_DEBUG = 7; // priority

// Facilities (openlog()'s facility argument, already shifted left by 3).
export const LOG_USER = 8; // facility: what the C hv_kvp_daemon and hv_vss_daemon use
export const LOG_DAEMON = 24; // facility

// openlog() options.
export const LOG_PID = 0x01; // option: put the pid in every message
export const LOG_CONS = 0x02; // option: write to the console when syslogd is unreachable
export const LOG_NDELAY = 0x08; // option: connect now, not at the first message
export const LOG_PERROR = 0x20; // option: copy every message to stderr as well

/** The three C calls, as the rest of this file needs them; replaceable in tests. */
export interface SyslogBinding {
  /** openlog(3). The binding must keep `ident` alive in C memory for as long as the process lives. */
  openlog(ident: string, option: number, facility: number): void;
  /** syslog(priority, "%s", message): the message is never a format string. */
  syslog(priority: number, message: string): void;
  closelog(): void;
}

let binding: SyslogBinding | undefined;

/** The libc soname for this system. */
export const libcName = (): string => (process.platform === 'freebsd' ? 'libc.so.7' : 'libc.so.6');

function bind(): SyslogBinding {
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as typeof import('koffi');
  const lib = koffi.load(libcName());
  // ident is `void *`, not `const char *`: koffi would otherwise pass a temporary copy of a JS string
  // that is freed after the call, while libc keeps the pointer and reads it at every syslog().
  const openlog = lib.func('void openlog(const void *ident, int option, int facility)');
  const syslog = lib.func('void syslog(int priority, const char *format, ...)');
  const closelog = lib.func('void closelog(void)');
  // One allocation per distinct ident, never freed: libc may hold any of them until the process exits.
  const idents = new Map<string, unknown>();
  return {
    openlog(ident, option, facility) {
      let ptr = idents.get(ident);
      if (ptr === undefined) {
        const bytes = Buffer.from(`${ident}\0`, 'utf8');
        ptr = koffi.alloc('uint8_t', bytes.length);
        koffi.encode(ptr, koffi.array('uint8_t', bytes.length), Array.from(bytes));
        idents.set(ident, ptr);
      }
      openlog(ptr, option, facility);
    },
    syslog(priority, message) {
      syslog(priority, '%s', 'str', message);
    },
    closelog() {
      closelog();
    },
  };
}

function current(): SyslogBinding {
  binding ??= bind();
  return binding;
}

/** Replace the binding (tests); undefined restores the real one, loaded again on next use. */
export function setSyslogBinding(fake: SyslogBinding | undefined): void {
  binding = fake;
}

// C strings end at the first NUL; spell it out so the rest of the message is not silently lost.
const noNul = (s: string): string => (s.includes('\0') ? s.replaceAll('\0', '\\0') : s);

/** openlog(3) with `ident` kept alive for the process lifetime; default LOG_PID|LOG_NDELAY, LOG_USER. */
export function openlog(ident: string, option = LOG_PID | LOG_NDELAY, facility = LOG_USER): void {
  current().openlog(noNul(ident), option, facility);
}

/** Send one message at `priority` (LOG_ERR...LOG_DEBUG, optionally or-ed with a facility); never throws on delivery failure (libc drops it). */
export function syslog(priority: number, message: string): void {
  current().syslog(priority, noNul(message));
}

/** closelog(3). */
export function closelog(): void {
  current().closelog();
}
