/**
 * The one `node:zlib` function the Worker uses (nodejs_compat), typed here because the Worker's
 * tsconfig leaves out @types/node (its globals would hide the Workers runtime's own).
 */
declare module "node:zlib" {
  export function gzipSync(data: Uint8Array, options?: { level?: number }): Uint8Array;
}
