/**
 * Protocol constants shared by both flavors (spec/wire.md sections 3, 4, 8, 10).
 * Grouped by family; the trailing comment names the field each family lives in.
 */

export type Flavor = 'freebsd' | 'linux';
export const FLAVORS: readonly Flavor[] = ['freebsd', 'linux'];

/** KVP operation codes (hv_kvp_hdr.operation). */
export const KVP_OP_GET = 0;
export const KVP_OP_SET = 1;
export const KVP_OP_DELETE = 2;
export const KVP_OP_ENUMERATE = 3;
export const KVP_OP_GET_IP_INFO = 4;
export const KVP_OP_SET_IP_INFO = 5;
export const KVP_OP_COUNT = 6;
export const KVP_OP_REGISTER = 4; /* hv_kvp_hdr.operation: FreeBSD registration, Linux legacy */
export const KVP_OP_REGISTER1 = 100; /* hv_kvp_hdr.operation: Linux current registration */

/** The KVP operation codes as one object, for code that uses several of them. */
export const KVP_OP = {
  GET: KVP_OP_GET,
  SET: KVP_OP_SET,
  DELETE: KVP_OP_DELETE,
  ENUMERATE: KVP_OP_ENUMERATE,
  GET_IP_INFO: KVP_OP_GET_IP_INFO,
  SET_IP_INFO: KVP_OP_SET_IP_INFO,
} as const;

export const KVP_OP_NAMES: Record<number, string> = {
  [KVP_OP_GET]: 'get',
  [KVP_OP_SET]: 'set',
  [KVP_OP_DELETE]: 'delete',
  [KVP_OP_ENUMERATE]: 'enumerate',
  [KVP_OP_GET_IP_INFO]: 'get_ip_info',
  [KVP_OP_SET_IP_INFO]: 'set_ip_info',
  [KVP_OP_REGISTER1]: 'register1',
};

/** KVP pools (hv_kvp_hdr.pool); one pool file per pool. */
export const KVP_POOL_EXTERNAL = 0;
export const KVP_POOL_GUEST = 1;
export const KVP_POOL_AUTO = 2;
export const KVP_POOL_AUTO_EXTERNAL = 3;
export const KVP_POOL_AUTO_INTERNAL = 4;
export const KVP_POOL_COUNT = 5;

export const KVP_POOL_NAMES: readonly string[] = ['external', 'guest', 'auto', 'auto_external', 'auto_internal'];

/** Parse a pool given as a number 0-4 or a pool name; undefined when it is neither. */
export function parsePool(text: string): number | undefined {
  if (/^[0-4]$/.test(text)) return Number(text);
  const i = KVP_POOL_NAMES.indexOf(text.toLowerCase());
  return i >= 0 ? i : undefined;
}

/** KVP value types (hv_kvp_exchg_msg_value.value_type). */
export const REG_SZ = 1;
export const REG_U32 = 4;
export const REG_U64 = 8;

/** KVP sizes, in bytes with the terminator (hv_kvp_exchg_msg_value.key / .value). */
export const KVP_MAX_KEY_SIZE = 512;
export const KVP_MAX_VALUE_SIZE = 2048;

/** IP-info sizes in UTF-16 units on the host side (hv_kvp_ipaddr_value fields). */
export const MAX_ADAPTER_ID_SIZE = 128;
export const MAX_IP_ADDR_SIZE = 1024;
export const MAX_GATEWAY_SIZE = 512;

/** Address family bit flags (hv_kvp_ipaddr_value.addr_family). */
export const ADDR_FAMILY_NONE = 0;
export const ADDR_FAMILY_IPV4 = 1;
export const ADDR_FAMILY_IPV6 = 2;

/** Status codes, HRESULT style (reply bytes 0..3; IC header status). */
export const HV_S_OK = 0x00000000;
export const HV_E_FAIL = 0x80004005;
export const HV_S_CONT = 0x80070103;
export const HV_ERROR_NOT_SUPPORTED = 0x80070032;
export const HV_ERROR_MACHINE_LOCKED = 0x800704f7;
export const HV_ERROR_DEVICE_NOT_CONNECTED = 0x8007048f;
export const HV_INVALIDARG = 0x80070057;
export const HV_GUID_NOTFOUND = 0x80041002;
export const HV_ERROR_ALREADY_EXISTS = 0x80070050;
export const HV_ERROR_DISK_FULL = 0x80070070;

export const STATUS_NAMES: Record<number, string> = {
  [HV_S_OK]: 'HV_S_OK',
  [HV_E_FAIL]: 'HV_E_FAIL',
  [HV_S_CONT]: 'HV_S_CONT',
  [HV_ERROR_NOT_SUPPORTED]: 'HV_ERROR_NOT_SUPPORTED',
  [HV_ERROR_MACHINE_LOCKED]: 'HV_ERROR_MACHINE_LOCKED',
  [HV_ERROR_DEVICE_NOT_CONNECTED]: 'HV_ERROR_DEVICE_NOT_CONNECTED',
  [HV_INVALIDARG]: 'HV_INVALIDARG',
  [HV_GUID_NOTFOUND]: 'HV_GUID_NOTFOUND',
  [HV_ERROR_ALREADY_EXISTS]: 'HV_ERROR_ALREADY_EXISTS',
  [HV_ERROR_DISK_FULL]: 'HV_ERROR_DISK_FULL',
};

/** Name of a status word, or its hex form when unknown. */
export function statusName(status: number): string {
  const s = status >>> 0;
  return STATUS_NAMES[s] ?? `0x${s.toString(16).padStart(8, '0')}`;
}

/** Host and Linux-daemon VSS operation codes (hv_vss_hdr.operation; host payload byte 0). */
export const VSS_OP_CREATE = 0;
export const VSS_OP_DELETE = 1;
export const VSS_OP_HOT_BACKUP = 2;
export const VSS_OP_GET_DM_INFO = 3;
export const VSS_OP_BU_COMPLETE = 4;
export const VSS_OP_FREEZE = 5;
export const VSS_OP_THAW = 6;
export const VSS_OP_AUTO_RECOVER = 7;
export const VSS_OP_COUNT = 8;
export const VSS_OP_REGISTER = 128; /* hv_vss_hdr.operation: legacy, no reply */
export const VSS_OP_REGISTER1 = 129; /* hv_vss_hdr.operation: current, 4-byte reply */

export const VSS_OP_NAMES: Record<number, string> = {
  [VSS_OP_CREATE]: 'create',
  [VSS_OP_DELETE]: 'delete',
  [VSS_OP_HOT_BACKUP]: 'hot_backup',
  [VSS_OP_GET_DM_INFO]: 'get_dm_info',
  [VSS_OP_BU_COMPLETE]: 'bu_complete',
  [VSS_OP_FREEZE]: 'freeze',
  [VSS_OP_THAW]: 'thaw',
  [VSS_OP_AUTO_RECOVER]: 'auto_recover',
  [VSS_OP_REGISTER]: 'register',
  [VSS_OP_REGISTER1]: 'register1',
};

/** Flags the kernel forces into every HOT_BACKUP/CHECK reply (hv_vss_check_feature.flags). */
export const VSS_HBU_NO_AUTO_RECOVERY = 0x00000005;

/** FreeBSD user-level VSS operations (hv_vss_opt_msg.opt). */
export const HV_VSS_NONE = 0;
export const HV_VSS_CHECK = 1;
export const HV_VSS_FREEZE = 2;
export const HV_VSS_THAW = 3;
export const HV_VSS_COUNT = 4;

export const HV_VSS_OPT_NAMES: Record<number, string> = {
  [HV_VSS_NONE]: 'none',
  [HV_VSS_CHECK]: 'check',
  [HV_VSS_FREEZE]: 'freeze',
  [HV_VSS_THAW]: 'thaw',
};

/** FreeBSD VSS status (hv_vss_opt_msg.status). */
export const VSS_SUCCESS = 0;
export const VSS_FAIL = 1;

/** VMBus IC message types (IC header, message type). */
export const ICMSGTYPE_NEGOTIATE = 0;
export const ICMSGTYPE_HEARTBEAT = 1;
export const ICMSGTYPE_KVPEXCHANGE = 2;
export const ICMSGTYPE_SHUTDOWN = 3;
export const ICMSGTYPE_TIMESYNC = 4;
export const ICMSGTYPE_VSS = 5;
export const ICMSGTYPE_FCOPY = 7;

/** VMBus IC header flags (IC header, flags). */
export const ICMSGHDRFLAG_TRANSACTION = 1;
export const ICMSGHDRFLAG_REQUEST = 2;
export const ICMSGHDRFLAG_RESPONSE = 4;

/** Offset of the IC payload in a host packet (pipe header 8 + IC header 20). */
export const ICMSG_HDR = 28;

/** Service GUIDs (VMBus channel offers). */
export const KVP_SERVICE_GUID = 'a9a0f4e7-5a45-4d96-b827-8a841e8c03e6';
export const VSS_SERVICE_GUID = '35fa2e29-ea23-4236-96ae-3a6ebacba440';

/** Linux kernel-internal KVP version string returned in the registration reply. */
export const LINUX_KVP_DRV_VERSION = '3.1';

/** An IC version pair as the NEGOTIATE payload carries it (u16 major, u16 minor). */
export interface IcVersion {
  major: number;
  minor: number;
}

/** IC versions (NEGOTIATE payload version pairs and IC header version fields). */
export const IC_FRAMEWORK_VERSION: IcVersion = { major: 3, minor: 0 }; /* framework: both services, both kernels */
export const KVP_MSG_VERSION_WIN8: IcVersion = { major: 4, minor: 0 }; /* KVP message: FreeBSD's only one, Linux's first */
export const KVP_MSG_VERSION_WIN7: IcVersion = { major: 3, minor: 0 }; /* KVP message: Linux's second */
export const KVP_MSG_VERSION_WS2008: IcVersion = { major: 1, minor: 0 }; /* KVP message: Linux's third */
export const VSS_MSG_VERSION: IcVersion = { major: 5, minor: 0 }; /* VSS message: both kernels */

/** Kernel -> host conversion limits in UTF-16 units (hv_kvp_exchg_msg_value.key / .value): half the field, minus 2. */
export const KVP_HOST_KEY_MAX_UNITS = KVP_MAX_KEY_SIZE / 2 - 2; // 254
export const KVP_HOST_VALUE_MAX_UNITS = KVP_MAX_VALUE_SIZE / 2 - 2; // 1022
