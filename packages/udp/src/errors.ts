/**
 * Errors shaped like Node's: system errors carry `code` ('EADDRINUSE'), a negative `errno`
 * (libuv's convention: minus the Linux errno), `syscall`, and for address errors `address`
 * and `port`; the message reads like Node's, e.g. 'bind EADDRINUSE 0.0.0.0:7'.
 * API misuse throws errors with Node's ERR_* codes.
 */

/** Linux errno values (asm-generic/errno.h), which libuv reports negated on Linux. */
const ERRNO = {
  EBADF: 9,
  EACCES: 13,
  EINVAL: 22,
  ENONET: 64,
  EPROTO: 71,
  EMSGSIZE: 90,
  ENOPROTOOPT: 92,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  ECONNREFUSED: 111,
  EHOSTDOWN: 112,
  EHOSTUNREACH: 113,
} as const;

export type SystemErrorCode = keyof typeof ERRNO | 'ENOTFOUND';

export interface UdpSystemError extends Error {
  code: SystemErrorCode;
  errno: number;
  syscall: string;
  address?: string;
  port?: number;
  /** For errors reported by ICMP: what the ICMP message said. */
  icmp?: { kind: string; code: number; reporter: string };
}

export function systemError(
  syscall: string,
  code: SystemErrorCode,
  address?: string,
  port?: number,
): UdpSystemError {
  let where = '';
  if (address !== undefined) where = port !== undefined && port > 0 ? ` ${address}:${port}` : ` ${address}`;
  const err = new Error(`${syscall} ${code}${where}`) as UdpSystemError;
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
