/** What the simulator needs from each simulated kernel driver. */
import type { SimClock } from './clock.js';
import type { SimChannel } from './channel.js';
import type { SimTimeouts } from './host-api.js';
import type { SimNode } from './node.js';

export interface ServiceStatus {
  open: boolean;
  registered: boolean;
  /** A host request is inside the kernel, not answered yet. */
  outstanding: boolean;
  version?: string;
  /** FreeBSD VSS: the application device is open. */
  appOpen?: boolean;
}

export interface KernelService {
  /** The device nodes, stable across remove()/restore(). */
  readonly nodes: readonly SimNode[];
  /** Driver detach/unload: open files die, timers stop, the request in progress is never answered. */
  remove(): void;
  /** Driver attach/load again: fresh state; files opened before stay dead. */
  restore(): void;
  status(): ServiceStatus;
}

/** What every driver is built with. */
export interface DriverEnv {
  channel: SimChannel;
  clock: SimClock;
  timeouts: SimTimeouts;
}
