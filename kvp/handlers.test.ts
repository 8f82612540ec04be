/**
 * The KVP operation handlers against an in-memory pool store and fixed
 * intrinsics: statuses per operation, the pitfall fixes (F4 GET fills the
 * value, F5 keys matched by the string, F7 host limits, L3 bad pools, L14
 * unknown ops), and malformed fields.
 */
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createKvpHandler, limitUnits } from './handlers.js';
import type { IpInfo, PoolRecord, PoolStore, SetIpRequest } from './types.js';
import { HV_ERROR_NOT_SUPPORTED, HV_E_FAIL, HV_GUID_NOTFOUND, HV_S_CONT, HV_S_OK, KVP_OP, REG_SZ, type Flavor } from '../common/wire/constants.js';
import { decodeKvp, encodeKvp, getValueTarget, readExchange, readVariant, type KvpMessage, type KvpVariant } from '../common/wire/kvp.js';
import type { Decoded } from '../common/wire/layout.js';
import { kvpProtocol } from '../common/serve/kvp.js';

/** A PoolStore in memory, same semantics as the file store (first match wins, append on miss). */
class MemoryStore implements PoolStore {
  pools: PoolRecord[][] = [[], [], [], [], []];
  get(pool: number, key: Buffer) {
    return this.pools[pool]!.find((r) => r.key.equals(key));
  }
  set(pool: number, key: Buffer, value: Buffer) {
    const r = this.get(pool, key);
    if (r) r.value = value;
    else this.pools[pool]!.push({ key, value });
  }
  delete(pool: number, key: Buffer) {
    const i = this.pools[pool]!.findIndex((r) => r.key.equals(key));
    if (i < 0) return false;
    this.pools[pool]!.splice(i, 1);
    return true;
  }
  at(pool: number, index: number) {
    return this.pools[pool]![index];
  }
  list(pool: number) {
    return [...this.pools[pool]!];
  }
  close() {}
}

const INTRINSICS = [
  { key: 'FullyQualifiedDomainName', value: 'vm.example.org' },
  { key: 'OSName', value: 'FreeBSD' },
];

function setup(flavor: Flavor = 'linux') {
  const store = new MemoryStore();
  const setIpCalls: SetIpRequest[] = [];
  const ipinfo: IpInfo = { adapterId: '00:15:5D:00:00:01', addrFamily: 1, dhcpEnabled: 0, ipAddr: '10.0.0.5', subNet: '255.255.255.0', gateWay: '10.0.0.1', dnsAddr: '10.0.0.2' };
  const handler = createKvpHandler({
    flavor,
    store,
    intrinsics: { at: async (i) => INTRINSICS[i] },
    getIpInfo: async (req) => (req.adapterId.toUpperCase() === ipinfo.adapterId ? ipinfo : { error: 'no such adapter' }),
    setIpInfo: async (req) => {
      setIpCalls.push(req);
      return req.adapterId === 'hn0' ? { status: HV_S_OK, detail: 'applied' } : { status: HV_GUID_NOTFOUND, detail: 'unknown adapter' };
    },
    log: pino({ level: 'silent' }),
  });
  const proto = kvpProtocol(flavor);
  /** Send a message through the handler and the protocol encoder; returns the decoded reply bytes. */
  const call = async (operation: number, pool: number, variant?: KvpVariant, fields?: Decoded) => {
    const raw = encodeKvp(flavor, { operation, pool }, variant, fields);
    const req = decodeKvp(raw, flavor) as KvpMessage;
    const reply = proto.encode(await handler(req), req, raw);
    return decodeKvp(reply, flavor) as KvpMessage;
  };
  const kv = (key: string, value = '') => ({ data: { key_size: Buffer.byteLength(key) + 1, value_size: Buffer.byteLength(value) + 1, key: Buffer.from(key), value: Buffer.from(value) } });
  return { store, call, kv, setIpCalls };
}

const text = (b: Buffer) => b.subarray(0, b.indexOf(0)).toString();

/** The GET reply's value where the flavor's kernel reads it (Linux: the ENUMERATE value offset, 532). */
const getValue = (m: KvpMessage) => {
  const off = getValueTarget(m.flavor).offset;
  return text(m.raw.subarray(off, off + 2048));
};

describe('KVP handlers', () => {
  it('SET stores the value; GET returns it whole although the kernel sent value_size 0 (F4)', async () => {
    const s = setup();
    expect((await s.call(KVP_OP.SET, 0, 'kvp_set', s.kv('Color', 'Blue'))).error).toBe(HV_S_OK);
    for (const flavor of ['freebsd', 'linux'] as const) {
      const f = setup(flavor);
      await f.call(KVP_OP.SET, 0, 'kvp_set', f.kv('Color', 'Blue'));
      const r = await f.call(KVP_OP.GET, 0, 'kvp_get', { data: { key_size: 6, value_size: 0, key: Buffer.from('Color') } });
      expect(r.error).toBe(HV_S_OK);
      expect(getValue(r)).toBe('Blue');
      const ex = readExchange(r, 'kvp_get');
      expect(text(ex.key)).toBe('Color');
      if (flavor === 'freebsd') {
        expect(ex.valueSize).toBe(5);
        expect(ex.valueType).toBe(REG_SZ);
      } else {
        // Linux reads only the value (at 532); the kvp_get value field itself stays empty.
        expect(text(ex.value)).toBe('');
      }
    }
  });

  it('SET of an existing key overwrites, GET of a missing key is HV_S_CONT, keys are case-sensitive', async () => {
    const s = setup();
    await s.call(KVP_OP.SET, 1, 'kvp_set', s.kv('a', 'one'));
    await s.call(KVP_OP.SET, 1, 'kvp_set', s.kv('a', '2'));
    expect(s.store.list(1).map((r) => r.value.toString())).toEqual(['2']);
    expect((await s.call(KVP_OP.GET, 1, 'kvp_get', s.kv('A'))).error).toBe(HV_S_CONT);
  });

  it('keys are matched by the string in the field, not by key_size (F5)', async () => {
    const s = setup();
    await s.call(KVP_OP.SET, 0, 'kvp_set', { data: { key_size: 3, value_size: 2, key: Buffer.from('Größe'), value: Buffer.from('x') } });
    expect(s.store.list(0)[0]!.key.toString()).toBe('Größe');
  });

  it('rejects unterminated keys, invalid UTF-8, empty keys and oversize sizes with HV_S_CONT, storing nothing', async () => {
    const s = setup();
    const bad: Decoded[] = [
      { data: { key_size: 512, value_size: 2, key: Buffer.alloc(512, 0x41), value: Buffer.from('v') } },
      { data: { key_size: 3, value_size: 2, key: Buffer.from([0xff, 0xfe]), value: Buffer.from('v') } },
      { data: { key_size: 1, value_size: 2, key: Buffer.alloc(0), value: Buffer.from('v') } },
      { data: { key_size: 513, value_size: 2, key: Buffer.from('k'), value: Buffer.from('v') } },
      { data: { key_size: 2, value_size: 2049, key: Buffer.from('k'), value: Buffer.from('v') } },
      { data: { key_size: 2, value_size: 2048, key: Buffer.from('k'), value: Buffer.alloc(2048, 0x42) } },
    ];
    for (const f of bad) expect((await s.call(KVP_OP.SET, 0, 'kvp_set', f)).error).toBe(HV_S_CONT);
    expect(s.store.list(0)).toEqual([]);
  });

  it('the Auto pool: SET and DELETE refused, GET and ENUMERATE answered from the intrinsics', async () => {
    const s = setup('freebsd');
    expect((await s.call(KVP_OP.SET, 2, 'kvp_set', s.kv('OSName', 'x'))).error).toBe(HV_S_CONT);
    expect((await s.call(KVP_OP.DELETE, 2, 'kvp_delete', { key_size: 7, key: Buffer.from('OSName') })).error).toBe(HV_S_CONT);
    const g = await s.call(KVP_OP.GET, 2, 'kvp_get', s.kv('OSName'));
    expect(getValue(g)).toBe('FreeBSD');
    const e0 = await s.call(KVP_OP.ENUMERATE, 2, 'kvp_enum_data', { index: 0 });
    expect(e0.error).toBe(HV_S_OK);
    expect(text(readExchange(e0, 'kvp_enum_data').key)).toBe('FullyQualifiedDomainName');
    expect((await s.call(KVP_OP.ENUMERATE, 2, 'kvp_enum_data', { index: 2 })).error).toBe(HV_S_CONT);
  });

  it('ENUMERATE walks a pool in order and ends with HV_S_CONT', async () => {
    const s = setup();
    for (const k of ['x', 'y']) await s.call(KVP_OP.SET, 1, 'kvp_set', s.kv(k, k + k));
    const keys: string[] = [];
    for (let i = 0; ; i++) {
      const r = await s.call(KVP_OP.ENUMERATE, 1, 'kvp_enum_data', { index: i });
      if (r.error !== HV_S_OK) {
        expect(r.error).toBe(HV_S_CONT);
        break;
      }
      const ex = readExchange(r, 'kvp_enum_data');
      expect(ex.index).toBe(i);
      keys.push(`${text(ex.key)}=${text(ex.value)}`);
    }
    expect(keys).toEqual(['x=xx', 'y=yy']);
  });

  it('DELETE removes the key; a second DELETE is HV_S_CONT', async () => {
    const s = setup();
    await s.call(KVP_OP.SET, 0, 'kvp_set', s.kv('k', 'v'));
    expect((await s.call(KVP_OP.DELETE, 0, 'kvp_delete', { key_size: 2, key: Buffer.from('k') })).error).toBe(HV_S_OK);
    expect((await s.call(KVP_OP.DELETE, 0, 'kvp_delete', { key_size: 2, key: Buffer.from('k') })).error).toBe(HV_S_CONT);
  });

  it('pools above 4 get HV_E_FAIL (L3); unknown ops HV_ERROR_NOT_SUPPORTED on both flavors (L14)', async () => {
    for (const flavor of ['freebsd', 'linux'] as const) {
      const s = setup(flavor);
      expect((await s.call(KVP_OP.GET, 5, 'kvp_get', s.kv('k'))).error).toBe(HV_E_FAIL);
      expect((await s.call(KVP_OP.SET, 200, 'kvp_set', s.kv('k', 'v'))).error).toBe(HV_E_FAIL);
      for (const op of [6, 7, 99, 255]) expect((await s.call(op, 0)).error).toBe(HV_ERROR_NOT_SUPPORTED);
    }
  });

  it('GET_IP_INFO fills the IP block for a known MAC, HV_E_FAIL otherwise', async () => {
    const s = setup();
    const r = await s.call(KVP_OP.GET_IP_INFO, 0, 'kvp_ip_val', { adapter_id: Buffer.from('00:15:5d:00:00:01'), addr_family: 0 });
    expect(r.error).toBe(HV_S_OK);
    const b = readVariant(r, 'kvp_ip_val');
    expect(text(b.ip_addr as Buffer)).toBe('10.0.0.5');
    expect(text(b.gate_way as Buffer)).toBe('10.0.0.1');
    expect(b.addr_family).toBe(1);
    const miss = await s.call(KVP_OP.GET_IP_INFO, 0, 'kvp_ip_val', { adapter_id: Buffer.from('00:00:00:00:00:09') });
    expect(miss.error).toBe(HV_E_FAIL);
  });

  it('SET_IP_INFO passes the decoded strings on and answers with their status', async () => {
    const s = setup('freebsd');
    const fields = { adapter_id: Buffer.from('hn0'), addr_family: 1, dhcp_enabled: 0, ip_addr: Buffer.from('10.0.0.9'), sub_net: Buffer.from('255.255.255.0'), gate_way: Buffer.from('10.0.0.1'), dns_addr: Buffer.from('10.0.0.2') };
    expect((await s.call(KVP_OP.SET_IP_INFO, 0, 'kvp_ip_val', fields)).error).toBe(HV_S_OK);
    expect(s.setIpCalls[0]).toMatchObject({ adapterId: 'hn0', ipAddr: '10.0.0.9', subNet: '255.255.255.0', dhcpEnabled: 0 });
    expect((await s.call(KVP_OP.SET_IP_INFO, 0, 'kvp_ip_val', { ...fields, adapter_id: Buffer.from('{x}') })).error).toBe(HV_GUID_NOTFOUND);
    // An unterminated field never reaches the IP code.
    const n = s.setIpCalls.length;
    expect((await s.call(KVP_OP.SET_IP_INFO, 0, 'kvp_ip_val', { ...fields, gate_way: Buffer.alloc(1024, 0x31) })).error).toBe(HV_E_FAIL);
    expect(s.setIpCalls).toHaveLength(n);
  });

  it('values longer than the host can take are cut at a character boundary (F7)', async () => {
    const s = setup();
    const long = '€'.repeat(681); // 2043 bytes, 681 units: fits the field and the host
    const tooLong = 'a'.repeat(1021) + '😀'; // 1023 units: the pair would be split at 1022
    await s.call(KVP_OP.SET, 1, 'kvp_set', s.kv('long', long));
    await s.call(KVP_OP.SET, 1, 'kvp_set', s.kv('pair', tooLong));
    expect(getValue(await s.call(KVP_OP.GET, 1, 'kvp_get', s.kv('long')))).toBe(long);
    expect(getValue(await s.call(KVP_OP.GET, 1, 'kvp_get', s.kv('pair')))).toBe('a'.repeat(1021));
    expect(limitUnits('ab😀', 3)).toBe('ab');
    expect(limitUnits('abc', 5)).toBe('abc');
  });
});
