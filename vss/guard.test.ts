/** Which freeze guard program the daemon runs (HVGUEST_GUARD and what is built); the programs themselves: test/vss-guard.e2e.test.ts. */
import { describe, expect, it } from 'vitest';
import { GUARD_ENV, GuardChoiceError, chooseGuards } from './guard.js';

const paths = { native: '/x/hvguest-freeze-guard', script: '/x/guard-main.js' };
const choose = (value: string | undefined, present: string[]) => chooseGuards(value === undefined ? {} : { [GUARD_ENV]: value }, paths, (p) => present.includes(p));
const kinds = (value: string | undefined, present: string[]) => choose(value, present).map((p) => p.kind);
const failure = (value: string | undefined, present: string[]) => {
  try {
    choose(value, present);
  } catch (e) {
    expect(e).toBeInstanceOf(GuardChoiceError);
    return e as GuardChoiceError;
  }
  throw new Error('no error');
};

describe('chooseGuards', () => {
  it('by default (unset, empty, auto): the native guard first when it is built, then the node guard', () => {
    for (const v of [undefined, '', 'auto']) {
      expect(kinds(v, [paths.native, paths.script]), String(v)).toEqual(['native', 'node']);
      expect(kinds(v, [paths.script]), String(v)).toEqual(['node']);
    }
    const [native, node] = choose(undefined, [paths.native, paths.script]);
    expect(native).toEqual({ kind: 'native', command: paths.native, args: [] });
    expect(node).toEqual({ kind: 'node', command: process.execPath, args: [paths.script] });
  });

  it('HVGUEST_GUARD=native or node: that one only, never a fallback to the other', () => {
    expect(kinds('native', [paths.native, paths.script])).toEqual(['native']);
    expect(kinds('native', [paths.native])).toEqual(['native']);
    expect(kinds('node', [paths.native, paths.script])).toEqual(['node']);
  });

  it('a missing program is a start-up error naming it; a bad value is a usage error naming the variable', () => {
    const native = failure('native', [paths.script]);
    expect(native.message).toBe(`cannot start the freeze guard: ${paths.native} is missing (HVGUEST_GUARD=native)`);
    expect(native.usage).toBe(false);
    for (const v of [undefined, 'node']) expect(failure(v, [paths.native]).message).toBe(`cannot start the freeze guard: ${paths.script} is missing`);
    for (const v of ['C', 'Native', 'none', ' node']) {
      const bad = failure(v, [paths.native, paths.script]);
      expect(bad.message).toBe(`HVGUEST_GUARD=${v}: expected native, node or auto`);
      expect(bad.usage).toBe(true);
    }
  });
});
