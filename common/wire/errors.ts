/** Why a buffer could not be decoded; decoders return this, they never throw. */
export type WireErrorCode =
  | 'ESIZE' // the buffer is not the size the struct needs
  | 'ENOTERM' // a string field has no NUL terminator inside the field
  | 'EUTF8' // a string field is not valid UTF-8
  | 'ETOOLONG' // a value does not fit in its field (encoding)
  | 'EOP' // an operation code the message kind does not define
  | 'EPOOL' // a pool number above 4
  | 'EVALUE'; // a field holds a value the protocol does not allow

/** A decode or encode failure naming the struct, the field and what was wrong. */
export class WireError {
  constructor(
    readonly code: WireErrorCode,
    readonly message: string,
    readonly field?: string,
  ) {}

  toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

export const isWireError = (v: unknown): v is WireError => v instanceof WireError;
