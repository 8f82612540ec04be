/**
 * What both kernels' VSS drivers read from the host the same way: the
 * versions they negotiate, and where the host's 12-byte VSS request
 * (operation, flags) sits in their receive buffer, after the IC headers.
 */
import { ICMSG_HDR, IC_FRAMEWORK_VERSION, VSS_MSG_VERSION } from '../common/wire/constants.js';
import { locate } from '../common/wire/layout.js';
import { HOST_VSS_MSG } from '../common/wire/structs.js';
import type { IcVersions } from './ic-reply.js';

export const VSS_VERSIONS: IcVersions = { framework: [IC_FRAMEWORK_VERSION], message: [VSS_MSG_VERSION] };
export const HOST_OP_AT = ICMSG_HDR + locate(HOST_VSS_MSG, 'operation').offset;
export const HOST_FLAGS_AT = ICMSG_HDR + locate(HOST_VSS_MSG, 'flags').offset;
