/**
 * A throw-away network namespace for reliability tests that need a real
 * interface (GET_IP_INFO): one veth interface with a Hyper-V style MAC and
 * addresses, created by the test and deleted afterwards (also on exit), so
 * the daemon never sees or changes this machine's own interfaces.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => existsSync(p));

export interface NetNs {
  name: string;
  mac: string;
  /** argv prefix that runs a command inside the namespace. */
  wrap: string[];
  remove(): void;
}

const sh = (args: string[]) => spawnSync(IP!, args, { encoding: 'utf8', timeout: 20_000 });

/** Why a namespace cannot be made here, or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'Linux network namespaces only';
  if (process.getuid?.() !== 0) return 'needs root to create a network namespace';
  if (!IP) return 'no ip(8) from iproute2';
  return undefined;
}

/** Create the namespace with interface hv0 (MAC `mac`, 192.0.2.10/24, default route via 192.0.2.1). */
export function createNetNs(mac = '00:15:5d:7e:57:99'): NetNs {
  const name = `hvrel-${randomBytes(4).toString('hex')}`;
  const run = (...a: string[]) => {
    const r = sh(a);
    if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}`);
  };
  run('netns', 'add', name);
  const remove = () => void sh(['netns', 'delete', name]);
  process.once('exit', remove);
  try {
    const inNs = (...a: string[]) => run('-n', name, ...a);
    inNs('link', 'set', 'lo', 'up');
    // A veth pair inside the namespace (the dummy driver is not always loadable).
    inNs('link', 'add', 'hv0', 'type', 'veth', 'peer', 'name', 'hv0peer');
    inNs('link', 'set', 'hv0peer', 'up');
    inNs('link', 'set', 'hv0', 'address', mac);
    inNs('addr', 'add', '192.0.2.10/24', 'dev', 'hv0');
    inNs('link', 'set', 'hv0', 'up');
    inNs('route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'hv0');
  } catch (e) {
    remove();
    throw e;
  }
  return { name, mac, wrap: [IP!, 'netns', 'exec', name], remove };
}
