import dgram from 'node:dgram';
import net from 'node:net';

/**
 * A guard for the simulated network: while it is installed, any attempt of this process to
 * open a kernel TCP connection or send a kernel UDP datagram to a non-loopback address
 * throws. Our stack's addresses (198.18.0.0/15) exist only inside the simulation or inside a
 * namespace, so a kernel socket aimed at them would leave through the root namespace's
 * default route — exactly what the project's safety rule forbids. Installed by the demo
 * and by every test worker (vitest setupFiles), it turns such a slip (for example
 * node:http ignoring `createConnection` when `agent: false` is set) into a loud error.
 */
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/i;

function check(what: string, host: unknown): void {
  const h = typeof host === 'string' && host !== '' ? host : 'localhost';
  if (!LOOPBACK.test(h)) {
    throw new Error(`stepwire safety: refusing a kernel ${what} to ${h} from this process (loopback only)`);
  }
}

let installed = false;

export function forbidKernelTrafficOffLoopback(): void {
  if (installed) return;
  installed = true;
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const first = Array.isArray(args[0]) ? args[0][0] : args[0];
    if (typeof first === 'object' && first !== null) {
      const o = first as { host?: string; path?: string | null };
      // node:http passes path: null for TCP; only a string path is a Unix socket.
      if (typeof o.path !== 'string') check('TCP connection', o.host);
    } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
      check('TCP connection', args[1]);
    }
    return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof connect;

  const send = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
    // send(msg, [offset, length,] port, address, cb): the address is the first string after the message.
    const address = args.slice(1).find((a) => typeof a === 'string');
    if (address !== undefined) check('UDP datagram', address);
    return (send as (...a: unknown[]) => void).apply(this, args);
  } as typeof send;

  const dconnect = dgram.Socket.prototype.connect;
  dgram.Socket.prototype.connect = function (
    this: dgram.Socket,
    port: number,
    address?: unknown,
    cb?: unknown,
  ) {
    if (typeof address === 'string') check('UDP association', address);
    return (dconnect as (...a: unknown[]) => void).call(this, port, address, cb);
  } as typeof dconnect;
}
