/**
 * A second server process for the anti-replay test: a TlsServer with the ticket key and the
 * strike-register directory it is given takes one recorded ClientHello flight and says
 * whether it accepted the 0-RTT data. Arguments: directory, ticket key (hex), flight (hex), now.
 */
import { fromHex } from '@stepwire/wire';
import { FileAntiReplayStore } from '../../src/anti-replay.ts';
import { nodeCrypto } from '../../src/crypto/index.ts';
import { TlsServer } from '../../src/server.ts';

const [dir, keyHex, flightHex, nowText] = process.argv.slice(2);
if (!dir || !keyHex || !flightHex || !nowText) throw new Error('usage: dir ticketKeyHex flightHex now');
const store = new FileAntiReplayStore(dir);
const server = new TlsServer({
  crypto: nodeCrypto,
  // A resumption needs no certificate (RFC 8446 §2.2): this signer is never asked to sign.
  signer: {
    certificateChain: [],
    signatureSchemes: [0x0403],
    sign: () => {
      throw new Error('a resumed handshake does not sign');
    },
  },
  ticketKey: fromHex(keyHex),
  maxEarlyData: 1024,
  antiReplay: store,
});
const out = server.receive(fromHex(flightHex), Number(nowText));
store.close();
process.stdout.write(
  `${JSON.stringify({
    earlyData: out.events.filter((e) => e.type === 'early-data').length,
    rejected: server.counters.get('early-data.rejected'),
    accepted: store.counters.get('anti-replay.accepted'),
  })}\n`,
);
