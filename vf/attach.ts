/**
 * `vf attach IFNAME [DELAY]`, devd's action on every Ethernet IFATTACH
 * (vf.md section 5): bring a newly attached VF up a little later, so hn(4)
 * sees it come up and raises VF_UP.
 *
 * DELAY 0 (what devd passes): decide. Transparent mode, no hw.hn.vflist,
 * or an interface that is not a VF: nothing to do. Otherwise re-run
 * ourselves detached through daemon(8) with DELAY = hyperv_vf_delay
 * (at least 2 s) and return at once, so devd is not held up.
 * DELAY > 0 (the detached child): sleep, then `ifconfig IFNAME up`.
 */
import { succeeded } from '../common/os/run.js';
import { detectMode } from './mode.js';
import { readRcConfig, vfDelaySeconds } from './rcconf.js';
import { describeFailure, IFNAME_RE, must, sysctlValue, VfError, type VfDeps } from './system.js';

/** What attach did; the CLI turns it into the exit status (0 for all but 'failed'). */
export type AttachOutcome = 'transparent' | 'no-vflist' | 'not-vf' | 'scheduled' | 'up' | 'gone';

/** Run the attach flow; throws VfError when a command it needs fails. */
export async function vfAttach(d: VfDeps, ifname: string, delaySec: number): Promise<AttachOutcome> {
  if (!IFNAME_RE.test(ifname)) throw new VfError(`not an interface name: ${JSON.stringify(ifname)}`, 'EINVAL');
  const log = (outcome: AttachOutcome, msg: string, extra: object = {}) => {
    d.log.info({ op: 'vf-attach', iface: ifname, outcome, ...extra }, msg);
    return outcome;
  };
  const mode = await detectMode(d);
  if (mode.transparent) return log('transparent', 'transparent VF mode: hn(4) handles the VF itself');

  if (delaySec > 0) {
    await d.sleep(delaySec * 1000);
    const args = [ifname, 'up'];
    const r = await d.run(d.paths.ifconfig, args, { timeoutMs: 10_000 });
    if (succeeded(r)) return log('up', 'VF brought up', { delay: delaySec });
    // The VF can be detached again while we slept (migration, host servicing).
    if (/does not exist/.test(r.stderr)) return log('gone', 'VF detached before it could be brought up');
    throw new VfError(describeFailure(d.paths.ifconfig, args, r), 'ECMD');
  }

  const vflist = await sysctlValue(d, 'hw.hn.vflist');
  if (vflist === undefined) return log('no-vflist', 'hw.hn.vflist not readable (hn(4) not loaded or too old): nothing to do');
  if (!vflist.split(/\s+/).includes(ifname)) {
    d.log.debug({ op: 'vf-attach', iface: ifname, vflist }, 'not a VF');
    return 'not-vf';
  }
  const delay = vfDelaySeconds((await readRcConfig(d, ifname)).vfDelay);
  // daemon -f sends the child's stdio to /dev/null: it logs to syslog.
  await must(d, d.paths.daemon, ['-f', ...d.self, 'vf', 'attach', '--syslog', ifname, String(delay)]);
  return log('scheduled', 'VF up scheduled', { delay });
}
