/**
 * Our HTTP/3 server and client over our QUIC on node:dgram sockets bound to loopback, for
 * tests: `h3Pair` makes both ends, `closeLoopback` (in afterEach) stops their drivers and
 * closes their sockets.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { IncomingMessage, ServerResponse } from '@stepwire/http';
import { certificateSigner, certificateVerifier, type pki } from '@stepwire/tls';
import type { QuicDriver } from '../../src/endpoint/driver.ts';
import type { Http3ClientOptions } from '../../src/h3/client.ts';
import { connectHttp3, type Http3ServerConnection, serveHttp3 } from '../../src/h3/index.ts';

const sockets: Socket[] = [];
const drivers: QuicDriver[] = [];

export function closeLoopback(): void {
  for (const d of drivers.splice(0)) d.close();
  for (const s of sockets.splice(0)) s.close();
}

export async function loopbackSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

/** A server running `handler` and a connected client (ready), with the server's HTTP/3 connections. */
export async function h3Pair(
  creds: ReturnType<typeof pki.createStepwireCredentials>,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  client: Http3ClientOptions = {},
) {
  const serverSocket = await loopbackSocket();
  const port = (serverSocket.address() as { port: number }).port;
  const conns: Http3ServerConnection[] = [];
  const service = serveHttp3(handler, {
    socket: serverSocket,
    tls: { signer: certificateSigner(creds.leaf) },
    onConnection: (c) => conns.push(c),
  });
  drivers.push(service.driver);
  const session = connectHttp3({
    ...client,
    socket: await loopbackSocket(),
    remote: { address: '127.0.0.1', port },
    tls: { serverName: 'stepwire.test', verifier: certificateVerifier({ ca: creds.ca.certificatePem }) },
  });
  drivers.push(session.driver);
  await session.ready();
  return { service, session, conns, port };
}
