// The part of bun:ffi this adapter uses, typed here: the project type-checks
// with Node's types only (no bun-types among the dependencies).
declare module "bun:ffi" {
  /** Argument and return types, by name. */
  export type FFITypeName = "i32" | "u32" | "i64" | "u64" | "ptr" | "cstring" | "void";

  export interface FFIFunction {
    readonly args?: readonly FFITypeName[];
    readonly returns?: FFITypeName;
  }

  export interface Library<Fns> {
    readonly symbols: Fns;
    close(): void;
  }

  /** Opens a shared library; `symbols` describes each function to bind. */
  export function dlopen(path: string, symbols: Record<string, FFIFunction>): Library<Record<string, (...args: unknown[]) => unknown>>;

  /** The address of a typed array's first byte (plus `byteOffset`), as a number. */
  export function ptr(view: ArrayBufferView | ArrayBufferLike, byteOffset?: number): number;

  /** Reads a value at a raw address. */
  export const read: {
    i32(address: number, byteOffset?: number): number;
  };

  /** A NUL-terminated C string at an address, as a JS string. */
  export class CString extends String {
    constructor(address: number, byteOffset?: number, byteLength?: number);
  }
}
