/**
 * Errors shaped like Node's net module: system errors carry `code` ('ECONNREFUSED'), a
 * negative `errno` (libuv's convention on Linux: minus the kernel's errno), `syscall`
 * ('connect', 'read', 'write', 'listen'), and for connect/listen errors `address` and `port`.
 * The message reads like Node's: 'connect ECONNREFUSED 198.18.0.2:80', 'read ECONNRESET'.
 * API misuse throws errors with Node's ERR_* codes.
 */

/** Linux errno values (asm-generic/errno.h and errno-base.h). */
const ERRNO = {
  EPIPE: 32,
  EINVAL: 22,
  EACCES: 13,
  ENONET: 64,
  EPROTO: 71,
  EMSGSIZE: 90,
  ENOPROTOOPT: 92,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
} as const;

export type TcpErrorCode = keyof typeof ERRNO | 'ENOTFOUND';

export interface TcpSystemError extends Error {
  code: TcpErrorCode;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
  /** For errors caused by an ICMP message: what it said. */
  icmp?: { kind: string; code: number; reporter: string };
}

export function systemError(
  syscall: string,
  code: TcpErrorCode,
  address?: string,
  port?: number,
): TcpSystemError {
  let where = '';
  if (address !== undefined) where = port !== undefined && port > 0 ? ` ${address}:${port}` : ` ${address}`;
  const err = new Error(`${syscall} ${code}${where}`) as TcpSystemError;
  err.code = code;
  // getaddrinfo's EAI_NONAME is -3008 in libuv.
  err.errno = code === 'ENOTFOUND' ? -3008 : -ERRNO[code];
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

/** An API-misuse error with a Node ERR_* code. */
export function codeError<E extends Error>(
  Ctor: new (message: string) => E,
  code: string,
  message: string,
): E & { code: string } {
  const err = new Ctor(message) as E & { code: string };
  err.code = code;
  return err;
}
