import { describe, expect, it, vi } from 'vitest';
import type { RunResult, Runner } from '../common/os/run.js';
import { createFqdn, getentLookup, parseGetent } from './net-fqdn.js';

const result = (over: Partial<RunResult>): RunResult => ({ code: 0, signal: null, stdout: '', stderr: '', timedOut: false, truncated: false, ms: 1, ...over });

describe('parseGetent', () => {
  it('reads the canonical name from glibc `getent ahosts` (first line, third field)', () => {
    const out = '10.0.0.4        STREAM vm1.contoso.internal\n10.0.0.4        DGRAM  \n10.0.0.4        RAW    \n';
    expect(parseGetent(out, 'linux')).toBe('vm1.contoso.internal');
    expect(parseGetent('10.0.0.4        STREAM \n', 'linux')).toBeUndefined();
  });

  it('reads the canonical name from FreeBSD `getent hosts` (second field)', () => {
    expect(parseGetent('10.0.0.4          vm1.contoso.internal vm1\n', 'freebsd')).toBe('vm1.contoso.internal');
    expect(parseGetent('', 'freebsd')).toBeUndefined();
  });
});

describe('getentLookup', () => {
  it('runs getent with argv only, ahosts on Linux, hosts on FreeBSD, with the timeout', async () => {
    const calls: [string, readonly string[], number | undefined][] = [];
    const run: Runner = async (file, args, opts) => {
      calls.push([file, args, opts?.timeoutMs]);
      return result({ stdout: '10.0.0.4 STREAM a.b.c\n' });
    };
    expect(await getentLookup(run, 'linux')('vm1', 700)).toBe('a.b.c');
    await getentLookup(run, 'freebsd', '/usr/bin/getent')('-vm1', 700);
    expect(calls).toEqual([
      ['/usr/bin/getent', ['ahosts', '--', 'vm1'], 700],
      ['/usr/bin/getent', ['hosts', '-vm1'], 700],
    ]);
  });

  it('gives undefined when getent fails, times out or cannot start', async () => {
    for (const r of [result({ code: 2 }), result({ code: null, timedOut: true }), result({ code: null, error: 'ENOENT' })]) {
      expect(await getentLookup(async () => r, 'linux')('vm1', 100)).toBeUndefined();
    }
  });
});

describe('createFqdn', () => {
  it('caches the answer for the TTL and looks up again after it (pitfall L5)', async () => {
    let t = 0;
    const lookup = vi.fn(async () => `vm1.example.${t}`);
    const fqdn = createFqdn({ hostname: () => 'vm1', lookup, ttlMs: 30_000, now: () => t });
    expect(await fqdn()).toBe('vm1.example.0');
    t = 29_999;
    expect(await fqdn()).toBe('vm1.example.0');
    t = 30_000;
    expect(await fqdn()).toBe('vm1.example.30000');
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it('looks up at once when the hostname changes', async () => {
    let host = 'vm1';
    const fqdn = createFqdn({ hostname: () => host, lookup: async (h) => `${h}.example`, now: () => 0 });
    expect(await fqdn()).toBe('vm1.example');
    host = 'vm2';
    expect(await fqdn()).toBe('vm2.example');
  });

  it('falls back to the plain hostname, never an error text, and says why (F25)', async () => {
    const reasons: string[] = [];
    const onFallback = (_h: string, r: string) => reasons.push(r);
    expect(await createFqdn({ hostname: () => 'vm1', lookup: async () => undefined, onFallback })()).toBe('vm1');
    expect(await createFqdn({ hostname: () => 'vm1', lookup: async () => Promise.reject(new Error('EAI_AGAIN')), onFallback })()).toBe('vm1');
    expect(reasons).toEqual(['lookup failed or timed out', 'EAI_AGAIN']);
  });

  it('prefers the hostname over a "localhost" canonical name from /etc/hosts', async () => {
    expect(await createFqdn({ hostname: () => 'vm1', lookup: async () => 'localhost.localdomain' })()).toBe('vm1');
    expect(await createFqdn({ hostname: () => 'localhost', lookup: async () => 'localhost' })()).toBe('localhost');
  });

  it('shares one lookup between concurrent requests', async () => {
    let release!: (v: string) => void;
    const lookup = vi.fn(() => new Promise<string>((r) => (release = r)));
    const fqdn = createFqdn({ hostname: () => 'vm1', lookup, now: () => 0 });
    const a = fqdn();
    const b = fqdn();
    release('vm1.example');
    expect(await Promise.all([a, b])).toEqual(['vm1.example', 'vm1.example']);
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it('never hangs on a lookup that does not settle: the hostname comes back after the timeout', async () => {
    vi.useFakeTimers();
    try {
      const fqdn = createFqdn({ hostname: () => 'vm1', lookup: () => new Promise(() => {}), timeoutMs: 1000 });
      const p = fqdn();
      await vi.advanceTimersByTimeAsync(1500);
      expect(await p).toBe('vm1');
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers "" without a lookup when there is no hostname', async () => {
    const lookup = vi.fn(async () => 'x');
    expect(await createFqdn({ hostname: () => '', lookup })()).toBe('');
    expect(lookup).not.toHaveBeenCalled();
  });
});
