/**
 * Two hosts and a UDP exchange, on a simulated network.
 *
 * Host a sends a datagram to an echo service on host b across a wire that delays every
 * packet by 10 ms; b answers it back. Nothing moves until `net.run()` advances the virtual
 * clock, so the run is deterministic: the same seed prints the same ladder, every time.
 *
 *   pnpm example udp-exchange
 */
import { createNetwork } from '@stepwire/sim';

const net = createNetwork({ seed: 1, link: { delay: 10 }, trace: (line) => console.log(line) });
const a = net.host('a'); // 198.18.0.1, fd00:5757::1
const b = net.host('b'); // 198.18.0.2, fd00:5757::2

// b: echo every datagram back to its sender (our sockets look like node:dgram's).
const server = b.udp.createSocket('udp4');
server.on('message', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
server.bind(7);

// a: send one datagram and wait for the echo.
const client = a.udp.createSocket('udp4');
const echoed = new Promise<Buffer>((resolve) => client.once('message', resolve));
client.send(Buffer.from('hello, b'), 7, b.ipv4);

const reply = await net.run(echoed);
console.log(`a got back '${reply}' at t=${net.clock.now()} ms (10 ms each way)`);

client.close();
server.close();
net.close();
