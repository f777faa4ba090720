export type LinkSetupCode =
  /** TUN needs Linux. */
  | 'ERR_TUN_NOT_LINUX'
  /** The constants below (ioctl numbers, open flags) are those of x86-64 and arm64 Linux. */
  | 'ERR_TUN_UNSUPPORTED_ARCH'
  /** /dev/net/tun does not exist (no tun module, or a container without the device). */
  | 'ERR_TUN_MISSING'
  /** EPERM/EACCES: creating TUN devices and entering namespaces needs root or CAP_NET_ADMIN. */
  | 'ERR_TUN_PERMISSION'
  /** The device name is held by another process or is not a TUN device. */
  | 'ERR_TUN_BUSY'
  | 'ERR_TUN_BAD_NAME'
  /** Some other ioctl or syscall failure while setting the device up. */
  | 'ERR_TUN_SYSCALL'
  /** The FFI library or libc could not be loaded. */
  | 'ERR_TUN_FFI'
  /** The named network namespace does not exist. */
  | 'ERR_NETNS_MISSING'
  | 'ERR_NETNS_BAD_NAME'
  /** This process already has an open Netns of that name. */
  | 'ERR_NETNS_IN_USE'
  /** An `ip` command failed while building or removing a namespace. */
  | 'ERR_NETNS_COMMAND';

/**
 * A setup condition a person has to fix (wrong OS, no device, no privilege), as opposed to
 * a bug. The message is one line that says what to do, and so is the stack: the CLI prints
 * it as is, and a trace through our own frames would not help anyone fix it.
 */
export class LinkSetupError extends Error {
  override readonly name = 'LinkSetupError';
  constructor(
    readonly code: LinkSetupCode,
    message: string,
    /** The errno name behind it, when a syscall failed ('EPERM', 'ENOENT', ...). */
    readonly errno?: string,
  ) {
    super(message);
    this.stack = `${this.name} [${code}]: ${message}`;
  }
}
