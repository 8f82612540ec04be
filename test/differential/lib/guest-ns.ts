/**
 * A private guest for one daemon run of the differential tests: the daemon
 * (Debian's C one or ours, started with nothing but -n, as a distribution
 * would start it) runs in fresh mount, network and UTS namespaces that
 * `unshare` creates, where
 *
 *   /dev                           is a tmpfs holding null, zero, random
 *                                  and the like (bind-mounted from the real
 *                                  /dev) and /dev/vmbus/hv_kvp (or hv_vss),
 *                                  the simulator's node (the real /dev never
 *                                  gets a vmbus directory);
 *   /var/lib                       is a tmpfs whose only entry, hyperv, is
 *                                  this run's pool directory WORK/pool;
 *   /usr/libexec/hypervkvpd        is this run's helper scripts (stubs that
 *                                  log their calls and print fixed answers);
 *   /sys/class/net                 is a fixed tree (MAC addresses, one
 *                                  VMBus device id, and the interface
 *                                  indexes copied from the real sysfs of the
 *                                  new network namespace) over that sysfs;
 *   /etc/hosts                     names the guest hvdiff-guest;
 *   the network                    is lo plus a veth pair with fixed MACs,
 *                                  addresses and default routes.
 *
 * Everything mounted or configured here belongs to the namespaces and
 * vanishes when the daemon exits; nothing touches this machine's own
 * file systems, interfaces or /dev.
 *
 * The KVP benchmark (test/bench/kvp-service.js) runs Debian's C KVP daemon
 * the same way, so this file is also compiled to dist/test/differential/lib/
 * (tsconfig). Never run the C VSS daemon in such a guest: on FREEZE it
 * freezes every file system it can see, and the mount namespace still sees
 * the machine's own (the VSS differential test uses vss-root.ts instead).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, type Proc } from '../../lib/procs.js';

/** The guest's network as the daemons must report it. */
export const GUEST = {
  hostname: 'hvdiff-guest',
  fqdn: 'hvdiff-guest.example.test',
  nic: 'hv0',
  mac: '00:15:5d:d1:f0:01',
  peer: 'hvpeer0',
  peerMac: '00:15:5d:d1:f0:02',
  /** The VMBus instance id of hv0 (SET_IP_INFO's adapter id). */
  vmbusId: '{7a0e1f52-3c4d-4e5f-8a9b-0c1d2e3f4a5b}',
  ipv4: ['192.0.2.10/24', '198.51.100.7/25'],
  ipv6: ['2001:db8:d1f::10/64'],
  linkLocal: 'fe80::215:5dff:fed1:f001/64',
  peerLinkLocal: 'fe80::215:5dff:fed1:f002/64',
  gateway4: '192.0.2.1',
  gateway6: '2001:db8:d1f::1',
  dns: ['192.0.2.53', '2001:db8:d1f::53'],
} as const;

/** Debian's C KVP daemon (package hyperv-daemons). */
export const C_KVP_DAEMON = '/usr/sbin/hv_kvp_daemon';

/** Why a guest namespace cannot be built here, or undefined. */
export function guestNsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'Linux namespaces only';
  if (process.getuid?.() !== 0) return 'needs root for mount and network namespaces';
  for (const p of ['unshare', 'ip', 'mount', 'hostname']) if (spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0) return `${p} missing`;
  if (!existsSync('/usr/libexec/hypervkvpd')) return '/usr/libexec/hypervkvpd missing (Debian package hyperv-daemons)';
  const probe = spawnSync('unshare', ['-m', '-n', '-u', '--propagation', 'private', 'sh', '-c', 'ip link add hvprobe0 type veth peer name hvprobe1 && mount -t tmpfs t /mnt'], { encoding: 'utf8' });
  if (probe.status !== 0) return `cannot build a namespace with a veth pair: ${probe.stderr.trim()}`;
  return undefined;
}

/** Why Debian's C KVP daemon cannot be run in a guest namespace here, or undefined. */
export function cKvpDaemonUnavailable(): string | undefined {
  return guestNsUnavailable() ?? (existsSync(C_KVP_DAEMON) ? undefined : `${C_KVP_DAEMON} missing (Debian package hyperv-daemons)`);
}

const NS_SCRIPT = `set -eu
W=$1; NODE=$2; DEVPATH=$3; shift 3
ip link set lo up
ip link add ${GUEST.nic} type veth peer name ${GUEST.peer}
ip link set ${GUEST.nic} address ${GUEST.mac} addrgenmode none
ip link set ${GUEST.peer} address ${GUEST.peerMac} addrgenmode none
ip link set ${GUEST.peer} up
ip link set ${GUEST.nic} up
${GUEST.ipv4.map((a) => `ip addr add ${a} dev ${GUEST.nic}`).join('\n')}
ip -6 addr add ${GUEST.linkLocal} dev ${GUEST.nic} nodad
ip -6 addr add ${GUEST.peerLinkLocal} dev ${GUEST.peer} nodad
${GUEST.ipv6.map((a) => `ip -6 addr add ${a} dev ${GUEST.nic} nodad`).join('\n')}
ip route add default via ${GUEST.gateway4} dev ${GUEST.nic}
ip -6 route add default via ${GUEST.gateway6} dev ${GUEST.nic}
hostname ${GUEST.hostname}
mount -t sysfs sysfs /sys
for d in "$W"/sysnet/*; do cat "/sys/class/net/\${d##*/}/ifindex" > "$d/ifindex"; done
mount --bind "$W/sysnet" /sys/class/net
mount --bind "$W/hosts" /etc/hosts
# A /dev of our own: a tmpfs with the few nodes a daemon uses bind-mounted
# from the real one (no overlay, which some /tmp file systems cannot carry).
mount --rbind /dev "$W/olddev"
mount -t tmpfs -o mode=755 hvdiff-dev /dev
for n in null zero full random urandom tty; do
  if [ -e "$W/olddev/$n" ]; then : > "/dev/$n"; mount --bind "$W/olddev/$n" "/dev/$n"; fi
done
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
umount -l "$W/olddev"
mkdir -p "/dev/\${DEVPATH%/*}"
: > "/dev/$DEVPATH"
mount --bind "$NODE" "/dev/$DEVPATH"
# /var/lib/hyperv is this run's pool directory; the rest of /var/lib is hidden.
mount -t tmpfs -o mode=755 hvdiff-varlib /var/lib
mkdir /var/lib/hyperv
mount --bind "$W/pool" /var/lib/hyperv
mount --bind "$W/helpers" /usr/libexec/hypervkvpd
exec "$@"
`;

const script = (path: string, text: string) => {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
};

/** Lay out WORK for one run: the pool directory, helper stubs, the fixed sysfs tree and hosts file. */
export function prepareGuest(work: string): { poolDir: string; callsLog: string; setIpDir: string } {
  for (const d of ['olddev', 'pool', 'helpers', 'setip']) mkdirSync(join(work, d), { recursive: true });
  const calls = join(work, 'calls.log');
  const setIpDir = join(work, 'setip');
  script(join(work, 'helpers/hv_get_dns_info'), `#!/bin/sh\necho "hv_get_dns_info $*" >> ${calls}\nprintf '%s\\n' ${GUEST.dns.join(' ')}\n`);
  script(
    join(work, 'helpers/hv_get_dhcp_info'),
    `#!/bin/sh\necho "hv_get_dhcp_info $*" >> ${calls}\nif [ "$1" = ${GUEST.nic} ]; then echo Enabled; else echo Disabled; fi\n`,
  );
  // IP injection: keep a copy of every file the daemon hands over, change nothing.
  script(
    join(work, 'helpers/hv_set_ifconfig'),
    `#!/bin/sh\necho "hv_set_ifconfig $*" >> ${calls}\nn=$(ls ${setIpDir} | wc -l)\nmkdir ${setIpDir}/$n\nfor f in "$@"; do cp "$f" ${setIpDir}/$n/; done\nexit 0\n`,
  );
  const net = join(work, 'sysnet');
  for (const [name, mac] of [
    ['lo', '00:00:00:00:00:00'],
    [GUEST.nic, GUEST.mac],
    [GUEST.peer, GUEST.peerMac],
  ] as const) {
    mkdirSync(join(net, name), { recursive: true });
    writeFileSync(join(net, name, 'address'), `${mac}\n`);
  }
  mkdirSync(join(net, GUEST.nic, 'device'));
  writeFileSync(join(net, GUEST.nic, 'device/device_id'), `${GUEST.vmbusId}\n`);
  writeFileSync(join(work, 'hosts'), `127.0.0.1 localhost\n${GUEST.ipv4[0].split('/')[0]} ${GUEST.fqdn} ${GUEST.hostname}\n::1 localhost ip6-localhost\n`);
  return { poolDir: join(work, 'pool'), callsLog: calls, setIpDir };
}

/**
 * Start `argv` inside a fresh guest (see the file comment) with `node`
 * mounted at /dev/DEVPATH; WORK must have been laid out by prepareGuest.
 * The returned process is the daemon itself (unshare and sh exec into it).
 */
export function startInGuest(work: string, node: string, devPath: 'vmbus/hv_kvp' | 'vmbus/hv_vss', argv: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return start('unshare', ['-m', '-n', '-u', '--propagation', 'private', '--', 'sh', '-c', NS_SCRIPT, 'guest-ns', work, node, devPath, ...argv], env);
}
