/**
 * Logging for every program: pino, one line per event, written to one of
 * three sinks.
 *
 * - stderr: pino's JSON line on fd 2, written synchronously so nothing is
 *   lost when main exits right after an error.
 * - syslog: `msg key=value ...` through syslog(3), the program name as ident.
 * - memory: a bounded ring of JSON lines.
 *
 * Every logger can also be switched to memory and back at run time
 * (holdLogs/releaseLogs): the VSS daemon must not write to anything that
 * may sit on a frozen file system while it holds a freeze, or it deadlocks
 * itself, so it buffers and flushes, in order, after the thaw.
 *
 * Field names are stable (see LogFields). A KVP value is never logged at
 * info level: log `value: valueForLog(v, debug)`, which is the value itself
 * only with -d and otherwise its length in bytes.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import {
  LOG_CRIT,
  LOG_DEBUG,
  LOG_ERR,
  LOG_INFO,
  LOG_NDELAY,
  LOG_PID,
  LOG_USER,
  LOG_WARNING,
  openlog,
  syslog,
} from './os/syslog.js';

export type { Logger } from 'pino';

/** Field names every module uses, so one grep finds all events about one thing. */
export interface LogFields {
  /** Protocol operation: 'get', 'set', 'delete', 'enumerate', 'freeze', 'thaw', ... */
  op?: string;
  /** KVP pool number (0..4) or name. */
  pool?: number | string;
  /** KVP key. */
  key?: string;
  /** KVP value: always through valueForLog, never raw. */
  value?: string | number;
  /** Transaction id of a host request. */
  tid?: number;
  /** errno name ('ENOENT'), not its number, which differs between systems. */
  errno?: string;
  /** Duration in milliseconds. */
  ms?: number;
}

/** Where log lines go. */
export type SinkKind = 'stderr' | 'syslog' | 'memory';

/** Anything that takes one serialized pino line (JSON, newline-terminated). */
export interface LineSink {
  write(line: string): void;
}

export interface LoggerOptions {
  /** Program name: the `name` field, and the syslog ident unless `ident` is given. */
  name: string;
  /** Log at debug level (the daemons' -d); info otherwise. */
  debug?: boolean;
  /** Default 'stderr'. */
  sink?: SinkKind;
  /** syslog ident; the C daemons used 'HV_KVP', 'HV_VSS' (FreeBSD) and 'KVP', 'Hyper-V VSS' (Linux). */
  ident?: string;
  /** syslog facility; default LOG_USER, as the C daemons. */
  facility?: number;
  /** Lines the memory ring keeps; default 1000. */
  memoryLines?: number;
  /** File descriptor of the stderr sink; default 2 (tests pass a file). */
  fd?: number;
}

/** KVP values are guest or host data: the value itself in debug, else only its UTF-8 byte length. */
export function valueForLog(value: string, debug: boolean): string | number {
  return debug ? value : Buffer.byteLength(value, 'utf8');
}

/** A ring of the newest `capacity` lines, counting the older ones it had to drop. */
export class MemorySink implements LineSink {
  private readonly ring: string[] = [];
  private start = 0;
  private droppedCount = 0;

  constructor(readonly capacity = 1000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`memory log capacity must be a positive integer, got ${capacity}`);
  }

  write(line: string): void {
    if (this.ring.length < this.capacity) {
      this.ring.push(line);
      return;
    }
    this.ring[this.start] = line;
    this.start = (this.start + 1) % this.capacity;
    this.droppedCount++;
  }

  /** Lines dropped since the last flush. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** The kept lines, oldest first. */
  lines(): string[] {
    return [...this.ring.slice(this.start), ...this.ring.slice(0, this.start)];
  }

  /** Write a drop notice (if any were dropped) and then every kept line to `sink`, oldest first; empties the ring. */
  flushTo(sink: LineSink): { lines: number; dropped: number } {
    const lines = this.lines();
    const dropped = this.droppedCount;
    this.ring.length = 0;
    this.start = 0;
    this.droppedCount = 0;
    // The dropped lines were the oldest, so the notice goes first to keep the order truthful.
    if (dropped > 0) {
      sink.write(`${JSON.stringify({ level: 40, time: new Date().toISOString(), pid: process.pid, msg: 'log lines dropped while buffering', dropped })}\n`);
    }
    for (const line of lines) sink.write(line);
    return { lines: lines.length, dropped };
  }
}

// pino level -> syslog priority; a table so the mapping is visible at a glance.
const PRIORITY_BY_LEVEL: ReadonlyArray<readonly [number, number]> = [
  [60, LOG_CRIT], // fatal
  [50, LOG_ERR], // error
  [40, LOG_WARNING], // warn
  [30, LOG_INFO], // info
  [0, LOG_DEBUG], // debug, trace
];

/** The syslog priority for a pino numeric level. */
export function syslogPriority(level: number): number {
  for (const [min, priority] of PRIORITY_BY_LEVEL) if (level >= min) return priority;
  return LOG_DEBUG;
}

// pino's own bookkeeping, already carried by syslog itself (time, pid, host, ident).
const SYSLOG_OMIT = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg']);

function renderValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=\\\p{Cc}]+$/u.test(v) ? v : JSON.stringify(v);
  const err = v as { message?: unknown; stack?: unknown } | null;
  if (typeof err === 'object' && err !== null && typeof err.message === 'string' && typeof err.stack === 'string') {
    // A serialized Error: its message names the operation and object; the stack stays out of syslog.
    return JSON.stringify(err.message);
  }
  return JSON.stringify(v) ?? String(v);
}

/** Render one pino JSON line as a syslog priority and `msg key=value ...` text. */
export function toSyslogLine(line: string): { priority: number; text: string } {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return { priority: LOG_INFO, text: line.trimEnd() };
  }
  const parts: string[] = [];
  if (typeof rec.msg === 'string' && rec.msg !== '') parts.push(rec.msg);
  for (const [k, v] of Object.entries(rec)) if (!SYSLOG_OMIT.has(k)) parts.push(`${k}=${renderValue(v)}`);
  // Messages can quote host-supplied text: a control character must not start a forged syslog line.
  const text = parts.join(' ').replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return { priority: syslogPriority(typeof rec.level === 'number' ? rec.level : 30), text };
}

/** A LineSink that sends each pino line to syslog(3); call openlog first. */
export function syslogSink(): LineSink {
  return {
    write(line) {
      const { priority, text } = toSyslogLine(line);
      syslog(priority, text);
    },
  };
}

/**
 * The stream a logger writes to: its normal sink, or the memory ring while
 * held. Shared by the logger and all its children.
 */
export class SwitchableSink implements DestinationStream {
  private held = false;

  constructor(
    readonly normal: LineSink,
    readonly memory: MemorySink,
  ) {}

  write(line: string): void {
    (this.held ? this.memory : this.normal).write(line);
  }

  /** True while lines go to memory instead of the normal sink. */
  get holding(): boolean {
    return this.held || this.normal === this.memory;
  }

  /** Send lines to memory until release(). Idempotent. */
  hold(): void {
    this.held = true;
  }

  /** Go back to the normal sink, first writing everything buffered to it in order. */
  release(): { lines: number; dropped: number } {
    if (!this.held) return { lines: 0, dropped: 0 };
    this.held = false;
    return this.normal === this.memory ? { lines: 0, dropped: 0 } : this.memory.flushTo(this.normal);
  }
}

function normalSink(opts: LoggerOptions, memory: MemorySink): LineSink {
  switch (opts.sink ?? 'stderr') {
    case 'stderr':
      return pino.destination({ fd: opts.fd ?? 2, sync: true });
    case 'syslog':
      openlog(opts.ident ?? opts.name, LOG_PID | LOG_NDELAY, opts.facility ?? LOG_USER);
      return syslogSink();
    case 'memory':
      return memory;
  }
}

/** A pino logger for one program; level info, or debug with `debug: true`. */
export function createLogger(opts: LoggerOptions): Logger {
  const memory = new MemorySink(opts.memoryLines);
  const dest = new SwitchableSink(normalSink(opts, memory), memory);
  return pino(
    {
      name: opts.name,
      level: opts.debug ? 'debug' : 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest,
  );
}

/** The switchable sink behind a logger made by createLogger (or a child of one); undefined for other loggers. */
export function logControl(logger: Logger): SwitchableSink | undefined {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  return stream instanceof SwitchableSink ? stream : undefined;
}

/** Buffer this logger's lines in memory (e.g. before a freeze). */
export function holdLogs(logger: Logger): void {
  logControl(logger)?.hold();
}

/** Stop buffering and write what was buffered to the normal sink, in order (e.g. after the thaw). */
export function releaseLogs(logger: Logger): { lines: number; dropped: number } {
  return logControl(logger)?.release() ?? { lines: 0, dropped: 0 };
}
