/**
 * The only file that talks to libc. Everything Linux-specific about TUN lives here: open
 * /dev/net/tun, TUNSETIFF, the MTU and offload ioctls, setns() into a named network
 * namespace, and the reader thread's eventfd (the thread loads koffi itself for poll()).
 * koffi is loaded lazily so that importing the link package on another OS (for
 * MemoryLink) never touches native code.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import { LinkSetupError } from './errors.ts';
import type { LinkOffloads } from './link.ts';
import { VNET_HDR_LEN } from './vnet-hdr.ts';

type Koffi = typeof import('koffi');
type Fn = (...args: unknown[]) => number;

interface Libc {
  koffi: Koffi;
  open: Fn;
  close: Fn;
  ioctl: Fn;
  setns: Fn;
  socket: Fn;
  eventfd: Fn;
  errnoNames: Map<number, string>;
}

// <linux/if_tun.h>, <linux/sockios.h>, <fcntl.h>, <sched.h> on x86-64 and arm64. The ioctl
// numbers differ on mips, powerpc, sparc and alpha; those are refused below.
const TUNSETIFF = 0x400454ca; // _IOW('T', 202, int)
const SIOCGIFMTU = 0x8921;
const SIOCSIFMTU = 0x8922;
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const IFF_MULTI_QUEUE = 0x0100;
const IFF_VNET_HDR = 0x4000;
const TUNSETOFFLOAD = 0x400454d0; // _IOW('T', 208, unsigned int); the argument is the value itself
const TUNSETVNETHDRSZ = 0x400454d8; // _IOW('T', 216, int); the argument points to an int
const TUNSETVNETLE = 0x400454dc; // _IOW('T', 220, int); the argument points to an int
// What the device tells the kernel we can read (tun_set_offload): partial checksums, and
// TCP super-segments (TSO4/TSO6 need CSUM, else EINVAL).
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
/**
 * Largest IP packet of a super-segment either way: the device's GSO limit is 64 KB
 * (GSO_LEGACY_MAX_SIZE), and an IPv4 Total Length cannot say more than 65535.
 */
export const TUN_TSO_MAX = 65535;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;
const O_RDONLY = 0;
const O_RDWR = 2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;

let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') {
    throw new LinkSetupError('ERR_TUN_NOT_LINUX', `TUN links need Linux; this is ${process.platform}`);
  }
  if (process.arch !== 'x64' && process.arch !== 'arm64') {
    throw new LinkSetupError(
      'ERR_TUN_UNSUPPORTED_ARCH',
      `TUN links support x64 and arm64 Linux; this is ${process.arch}`,
    );
  }
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const lib = koffi.load('libc.so.6');
    const errnoNames = new Map<number, string>();
    for (const [name, n] of Object.entries(koffi.os.errno)) if (!errnoNames.has(n)) errnoNames.set(n, name);
    libc = {
      koffi,
      open: lib.func('int open(const char *path, int flags, ...)') as Fn,
      close: lib.func('int close(int fd)') as Fn,
      ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)') as Fn,
      setns: lib.func('int setns(int fd, int nstype)') as Fn,
      socket: lib.func('int socket(int domain, int type, int protocol)') as Fn,
      eventfd: lib.func('int eventfd(unsigned int initval, int flags)') as Fn,
      errnoNames,
    };
    return libc;
  } catch (e) {
    if (e instanceof LinkSetupError) throw e;
    throw new LinkSetupError(
      'ERR_TUN_FFI',
      `cannot load libc through koffi: ${(e as Error).message.split('\n')[0]}`,
    );
  }
}

function lastErrno(c: Libc): string {
  const n = c.koffi.errno();
  return c.errnoNames.get(n) ?? `errno ${n}`;
}

function sysOpen(c: Libc, path: string, flags: number): number {
  const fd = c.open(path, flags);
  if (fd < 0) throw Object.assign(new Error(`open ${path}`), { errno: lastErrno(c) });
  return fd;
}

const isPermission = (errno: string): boolean => errno === 'EPERM' || errno === 'EACCES';

function ifreq(name: string): Buffer {
  const buf = Buffer.alloc(IFREQ_SIZE);
  buf.write(name, 0, IFNAMSIZ - 1, 'latin1');
  return buf;
}

const ifreqName = (buf: Buffer): string => {
  const end = buf.indexOf(0);
  return buf.toString('latin1', 0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end);
};

/** Interface names the kernel accepts (dev_valid_name), plus TUN's '%d' template. */
export function checkIfName(name: string): void {
  if (!/^[A-Za-z0-9_.%-]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw new LinkSetupError(
      'ERR_TUN_BAD_NAME',
      `bad interface name '${name}': 1-15 characters of letters, digits, '_', '.', '-' (and '%d')`,
    );
  }
}

export interface TunDevice {
  fd: number;
  /** The name the kernel gave (a '%d' template is filled in). */
  name: string;
  mtu: number;
  /** Bytes of virtio-net header before every packet read and written: 0, or 10 with offloads. */
  vnetHdrLen?: number;
  /** What the device accepted (absent: opened without offloads). */
  offloads?: LinkOffloads;
}

/**
 * Offloads to ask of the device. true asks for everything (checksum and TSO); an object
 * picks; false or absent opens a plain device, whose packets carry no header at all.
 */
export type TunOffloadRequest = boolean | { checksum?: boolean; tso?: boolean };

export interface OpenTunOptions {
  /** Interface name or template; default 'sw%d'. An existing persistent TUN device of that name is attached. */
  name?: string;
  /** Create the device inside this named namespace (/var/run/netns/NAME). */
  netns?: string;
  /** Set this MTU on the device; default: keep the device's (1500 for a new TUN). */
  mtu?: number;
  /**
   * IFF_MULTI_QUEUE: the device has one queue per attached fd. The first open creates the
   * device; each further open with the same name (and multiQueue) attaches one more queue.
   * The kernel spreads packets it sends to the device over the queues by flow hash
   * (tun_automq_select_queue), so one stack per queue sees whole flows. Every open of one
   * device must agree on this flag (the kernel refuses a mix with EINVAL).
   */
  multiQueue?: boolean;
  /**
   * IFF_VNET_HDR and TUNSETOFFLOAD: each packet carries a virtio-net header, the kernel may
   * hand us partial checksums and TCP super-segments (up to 64 KB) and takes ours. Default
   * off: a receiver that ignores PacketInfo would drop every partial-checksum packet as
   * corrupt and every super-segment as larger than the MTU, and the link wrappers between
   * a device and its stack (pcap, taps) must forward PacketInfo too; so whoever wires the
   * stack to the device, and knows all of that holds, turns offloads on. What the kernel
   * accepted is in TunDevice.offloads (and TunLink.offloads).
   */
  offloads?: TunOffloadRequest;
}

/**
 * Open a TUN device (IFF_TUN | IFF_NO_PI: whole IP packets, no header) with a
 * non-blocking, close-on-exec fd.
 *
 * With `netns`, the main thread enters the namespace with setns(), opens /dev/net/tun and
 * issues TUNSETIFF there, then returns to the namespace it came from. The kernel binds a
 * TUN file to the namespace of the process that opened /dev/net/tun (tun_chr_open takes
 * current's net namespace), so the device lives in the target namespace while the fd
 * stays usable from our root-namespace process. `ip netns exec ... ip tuntap add` alone
 * cannot hand us an fd, and passing one back over a Unix socket needs SCM_RIGHTS, which
 * Node does not expose; setns on one thread for a few synchronous syscalls needs neither.
 * Nothing else runs on the main thread between the two setns calls, and the namespace
 * we return to is checked by inode afterwards.
 */
export function openTun(options: OpenTunOptions = {}): TunDevice {
  const c = loadLibc();
  const name = options.name ?? 'sw%d';
  checkIfName(name);
  if (
    options.mtu !== undefined &&
    !(Number.isInteger(options.mtu) && options.mtu >= 68 && options.mtu <= 65535)
  ) {
    throw new RangeError(`TUN mtu must be an integer in [68, 65535], got ${options.mtu}`);
  }
  const want = offloadFlags(options.offloads);
  const flags =
    IFF_TUN |
    IFF_NO_PI |
    (options.multiQueue ? IFF_MULTI_QUEUE : 0) |
    (want !== undefined ? IFF_VNET_HDR : 0);
  if (!options.netns) return createTun(c, name, flags, options.mtu, want);

  const netns = options.netns;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(netns) || netns === '.' || netns === '..') {
    throw new LinkSetupError('ERR_NETNS_BAD_NAME', `bad namespace name '${netns}'`);
  }
  const selfNs = '/proc/thread-self/ns/net';
  const homeIno = fs.statSync(selfNs).ino;
  let homeFd = -1;
  let nsFd = -1;
  try {
    homeFd = sysOpen(c, selfNs, O_RDONLY | O_CLOEXEC);
    try {
      nsFd = sysOpen(c, `/var/run/netns/${netns}`, O_RDONLY | O_CLOEXEC);
    } catch (e) {
      const errno = (e as { errno?: string }).errno ?? '';
      if (errno === 'ENOENT') {
        throw new LinkSetupError('ERR_NETNS_MISSING', `network namespace '${netns}' does not exist`, errno);
      }
      if (isPermission(errno)) {
        throw new LinkSetupError(
          'ERR_TUN_PERMISSION',
          `permission denied opening namespace '${netns}': run as root`,
          errno,
        );
      }
      throw new LinkSetupError('ERR_TUN_SYSCALL', `cannot open namespace '${netns}': ${errno}`, errno);
    }
    if (c.setns(nsFd, CLONE_NEWNET) !== 0) {
      const errno = lastErrno(c);
      throw new LinkSetupError(
        isPermission(errno) ? 'ERR_TUN_PERMISSION' : 'ERR_TUN_SYSCALL',
        `cannot enter namespace '${netns}' (setns: ${errno})${isPermission(errno) ? ': run as root or with CAP_SYS_ADMIN' : ''}`,
        errno,
      );
    }
    try {
      return createTun(c, name, flags, options.mtu, want);
    } finally {
      const back = c.setns(homeFd, CLONE_NEWNET);
      // Staying in the wrong namespace would send the rest of the process's traffic
      // there; there is no sane way to continue. exit() (not abort) so that cleanup
      // handlers still remove the namespaces this process made.
      if (back !== 0 || fs.statSync(selfNs).ino !== homeIno) {
        process.stderr.write(
          `stepwire: could not return to the original network namespace (${lastErrno(c)})\n`,
        );
        process.exit(70);
      }
    }
  } finally {
    if (nsFd >= 0) c.close(nsFd);
    if (homeFd >= 0) c.close(homeFd);
  }
}

/** TUN_F_* bits for a request, or undefined for a plain device. */
function offloadFlags(req: TunOffloadRequest | undefined): number | undefined {
  if (!req) return undefined;
  const checksum = req === true || (req.checksum ?? true);
  const tso = req === true || (req.tso ?? true);
  if (tso && !checksum)
    throw new RangeError('TUN offloads: TSO needs checksum offload (the kernel refuses TSO alone)');
  return (checksum ? TUN_F_CSUM : 0) | (tso ? TUN_F_TSO4 | TUN_F_TSO6 : 0);
}

function createTun(
  c: Libc,
  name: string,
  flags: number,
  mtu: number | undefined,
  offload: number | undefined,
): TunDevice {
  let fd: number;
  try {
    fd = sysOpen(c, '/dev/net/tun', O_RDWR | O_NONBLOCK | O_CLOEXEC);
  } catch (e) {
    const errno = (e as { errno?: string }).errno ?? '';
    if (errno === 'ENOENT' || errno === 'ENODEV' || errno === 'ENXIO') {
      throw new LinkSetupError(
        'ERR_TUN_MISSING',
        '/dev/net/tun is missing: load the tun module (modprobe tun) or give the container the device',
        errno,
      );
    }
    if (isPermission(errno)) {
      throw new LinkSetupError(
        'ERR_TUN_PERMISSION',
        'permission denied opening /dev/net/tun: run as root',
        errno,
      );
    }
    throw new LinkSetupError('ERR_TUN_SYSCALL', `cannot open /dev/net/tun: ${errno}`, errno);
  }
  try {
    const req = ifreq(name);
    req.writeInt16LE(flags, IFNAMSIZ);
    if (c.ioctl(fd, TUNSETIFF, 'void *', req) !== 0) {
      const errno = lastErrno(c);
      if (isPermission(errno)) {
        throw new LinkSetupError(
          'ERR_TUN_PERMISSION',
          `permission denied creating TUN device '${name}': run as root or with CAP_NET_ADMIN`,
          errno,
        );
      }
      if (errno === 'EBUSY' || errno === 'EINVAL') {
        throw new LinkSetupError(
          'ERR_TUN_BUSY',
          `TUN device '${name}' is in use by another process, is not a TUN device, or was made with other queue flags (${errno})`,
          errno,
        );
      }
      throw new LinkSetupError('ERR_TUN_SYSCALL', `TUNSETIFF '${name}' failed: ${errno}`, errno);
    }
    const actual = ifreqName(req);
    const device: TunDevice = { fd, name: actual, mtu: deviceMtu(c, actual, mtu), vnetHdrLen: 0 };
    if (offload !== undefined) {
      device.vnetHdrLen = VNET_HDR_LEN;
      device.offloads = setOffloads(c, fd, actual, offload);
    } else if (c.ioctl(fd, TUNSETOFFLOAD, 'unsigned long', 0) !== 0) {
      // The offload features belong to the device and outlive the fd that set them: a
      // persistent device last opened with offloads would hand this plain fd 64 KB GSO
      // packets with no header to say so. Clearing them is what a plain open means.
      const errno = lastErrno(c);
      throw new LinkSetupError('ERR_TUN_SYSCALL', `TUNSETOFFLOAD 0 on '${actual}' failed: ${errno}`, errno);
    }
    return device;
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

/**
 * Header size and byte order first (both per device; the kernel's defaults are 10 and the
 * host's order, set explicitly so nothing depends on a previous user of a persistent
 * device), then the offloads: the full set, and if the kernel refuses it (EINVAL from an
 * older kernel without TSO6, say) checksum alone, and if that fails too none; the device
 * then still carries headers, all plain.
 */
function setOffloads(c: Libc, fd: number, name: string, want: number): LinkOffloads {
  const le = os.endianness() === 'LE';
  const int = Buffer.alloc(4);
  if (le) int.writeInt32LE(VNET_HDR_LEN);
  else int.writeInt32BE(VNET_HDR_LEN);
  if (c.ioctl(fd, TUNSETVNETHDRSZ, 'void *', int) !== 0) {
    const errno = lastErrno(c);
    throw new LinkSetupError('ERR_TUN_SYSCALL', `TUNSETVNETHDRSZ on '${name}' failed: ${errno}`, errno);
  }
  int.fill(0);
  int[le ? 0 : 3] = 1;
  if (c.ioctl(fd, TUNSETVNETLE, 'void *', int) !== 0) {
    const errno = lastErrno(c);
    throw new LinkSetupError('ERR_TUN_SYSCALL', `TUNSETVNETLE on '${name}' failed: ${errno}`, errno);
  }
  for (const flags of [want, want & TUN_F_CSUM, 0]) {
    if (c.ioctl(fd, TUNSETOFFLOAD, 'unsigned long', flags) === 0) {
      return {
        checksum: (flags & TUN_F_CSUM) !== 0,
        tsoMax: flags & (TUN_F_TSO4 | TUN_F_TSO6) ? TUN_TSO_MAX : 0,
      };
    }
  }
  const errno = lastErrno(c);
  throw new LinkSetupError('ERR_TUN_SYSCALL', `TUNSETOFFLOAD on '${name}' failed: ${errno}`, errno);
}

/** An eventfd (non-blocking, close-on-exec) to wake the reader thread's poll() on close. */
export function makeEventFd(): number {
  const c = loadLibc();
  const fd = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) throw new LinkSetupError('ERR_TUN_SYSCALL', `eventfd() failed: ${lastErrno(c)}`);
  return fd;
}

/** Where koffi is, for the reader thread to load it by path. */
export function koffiPath(): string {
  return createRequire(import.meta.url).resolve('koffi');
}

/** Set (if asked) and read back the MTU through an AF_INET socket in the current namespace. */
function deviceMtu(c: Libc, name: string, mtu: number | undefined): number {
  const sock = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) throw new LinkSetupError('ERR_TUN_SYSCALL', `socket() failed: ${lastErrno(c)}`);
  const le = os.endianness() === 'LE';
  try {
    const req = ifreq(name);
    if (mtu !== undefined) {
      if (le) req.writeInt32LE(mtu, IFNAMSIZ);
      else req.writeInt32BE(mtu, IFNAMSIZ);
      if (c.ioctl(sock, SIOCSIFMTU, 'void *', req) !== 0) {
        const errno = lastErrno(c);
        throw new LinkSetupError('ERR_TUN_SYSCALL', `cannot set MTU ${mtu} on '${name}': ${errno}`, errno);
      }
    }
    if (c.ioctl(sock, SIOCGIFMTU, 'void *', req) !== 0) {
      const errno = lastErrno(c);
      throw new LinkSetupError('ERR_TUN_SYSCALL', `cannot read the MTU of '${name}': ${errno}`, errno);
    }
    return le ? req.readInt32LE(IFNAMSIZ) : req.readInt32BE(IFNAMSIZ);
  } finally {
    c.close(sock);
  }
}
