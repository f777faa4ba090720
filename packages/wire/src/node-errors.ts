/**
 * Errors shaped like Node's, for the Node-habit edges of every layer (sockets, servers):
 * system errors carry `code` ('ECONNREFUSED'), a negative `errno` (libuv's convention on
 * Linux: minus the kernel's errno), `syscall` ('connect', 'bind', 'read', 'write') and, for
 * address errors, `address` and `port`; the message reads like Node's:
 * 'connect ECONNREFUSED 198.18.0.2:80', 'bind EADDRINUSE 0.0.0.0:7'.
 * API misuse throws errors with Node's ERR_* codes.
 */

/** Linux errno values (asm-generic/errno-base.h and errno.h). */
const ERRNO = {
  EBADF: 9,
  EACCES: 13,
  EINVAL: 22,
  EPIPE: 32,
  ENONET: 64,
  EPROTO: 71,
  EMSGSIZE: 90,
  ENOPROTOOPT: 92,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
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

export type SystemErrorCode = keyof typeof ERRNO | 'ENOTFOUND';

export interface SystemError extends Error {
  code: SystemErrorCode;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
  /** For errors caused by an ICMP message: what it said. */
  icmp?: { kind: string; code: number; reporter: string };
}

export function systemError(
  syscall: string,
  code: SystemErrorCode,
  address?: string,
  port?: number,
): SystemError {
  let where = '';
  if (address !== undefined) where = port !== undefined && port > 0 ? ` ${address}:${port}` : ` ${address}`;
  const err = new Error(`${syscall} ${code}${where}`) as SystemError;
  err.code = code;
  // ENOTFOUND comes from getaddrinfo (EAI_NONAME), which libuv maps to -3008.
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
