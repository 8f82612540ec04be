/** Messages built by hand at the offsets of spec/wire.md, shared by the wire and hvctl msg tests. */
import type { Flavor } from '../../common/wire/constants.js';

/** Message sizes typed in from the spec (7430 FreeBSD, 7432 Linux), not derived from the code under test. */
export const KVP_SIZE: Record<Flavor, number> = { freebsd: 7430, linux: 7432 };

/** A kernel-to-daemon SET of "Color" = "Blue" in pool 0 (sizes count the NUL: 6 and 5). */
export function setColorBlue(flavor: Flavor): Buffer {
  const b = Buffer.alloc(KVP_SIZE[flavor]);
  b[0] = 1;
  b.writeUInt32LE(6, 8);
  b.writeUInt32LE(5, 12);
  b.write('Color', 16, 'latin1');
  b.write('Blue', 528, 'latin1');
  return b;
}
