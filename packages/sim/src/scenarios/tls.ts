/** The TLS 1.3 scenarios: full handshake, HelloRetryRequest, resumption, 0-RTT, mutual auth, KeyUpdate. */
import type { Scenario } from './scenario.ts';
import { tlsEcho, tlsExchange } from './support.ts';

export const tlsFull: Scenario = {
  name: 'tls-full',
  title: 'A full TLS 1.3 handshake over TCP, then application data (RFC 8446 §2)',
  watch: [
    'ClientHello (suites, key share, SNI) → ServerHello: from here on everything is encrypted.',
    "EncryptedExtensions, Certificate, CertificateVerify, Finished from B; A's state machine walks WAIT_SH → … → CONNECTED.",
    'One round trip after the TCP handshake, A sends its data with its Finished.',
  ],
  link: { delay: 10 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b);
    const { reply, socket } = await tlsExchange(net, a, b, 'hello over TLS');
    result(
      'A',
      reply === 'hello over TLS' && socket.authorized,
      `authorized=${socket.authorized}, echoed '${reply}'`,
    );
    server.close();
  },
};

export const tlsHrr: Scenario = {
  name: 'tls-hrr',
  title: 'HelloRetryRequest: the client guessed a key-share group the server does not take (RFC 8446 §4.1.4)',
  watch: [
    'A sends a key share for X25519 only; B accepts P-256 only and answers HelloRetryRequest.',
    'A sends a second ClientHello with a P-256 share; the handshake continues from there.',
    'It costs one extra round trip: compare the time of CONNECTED with tls-full.',
  ],
  link: { delay: 10 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b, { groups: 'P-256' });
    const { reply, socket } = await tlsExchange(net, a, b, 'after a retry', { groups: 'X25519:P-256' });
    result(
      'A',
      reply === 'after a retry',
      `handshake done with group ${socket.handshake?.group ?? '?'}, echoed '${reply}'`,
    );
    server.close();
  },
};

export const tlsResumption: Scenario = {
  name: 'tls-resumption',
  title: 'Session resumption with a ticket: PSK with (EC)DHE (RFC 8446 §2.2)',
  watch: [
    'After the first handshake B sends NewSessionTicket; A keeps it.',
    'The second ClientHello offers the ticket as a pre_shared_key; B accepts it.',
    'No Certificate and no CertificateVerify the second time: the PSK proves who B is.',
  ],
  link: { delay: 10 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b);
    step('first connection: full handshake, a ticket arrives');
    const first = await tlsExchange(net, a, b, 'first');
    result('A', first.ticket !== undefined, `ticket received (${first.ticket ? 'kept' : 'none'})`);
    step('second connection: resume with the ticket');
    const second = await tlsExchange(net, a, b, 'second', first.ticket ? { session: first.ticket } : {});
    const resumed = second.socket.isSessionReused();
    result('A', resumed && second.reply === 'second', `resumed=${resumed}, echoed '${second.reply}'`);
    server.close();
  },
};

export const tls0rtt: Scenario = {
  name: 'tls-0rtt',
  title: '0-RTT early data with a resumed session (RFC 8446 §2.3, §4.2.10)',
  watch: [
    "The second ClientHello offers the ticket (psk); A's request follows in the same first flight, under the early traffic key.",
    'B takes the PSK (ServerHello … psk) and the data; A closes the early data with EndOfEarlyData before its Finished.',
    'Early data can be replayed by an attacker: only idempotent requests belong there.',
  ],
  link: { delay: 10 },
  async run({ net, result, step }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b, { earlyData: true });
    step('first connection: a ticket that allows early data');
    const first = await tlsExchange(net, a, b, 'first');
    step('second connection: the request rides in the first flight');
    const second = await tlsExchange(
      net,
      a,
      b,
      '',
      first.ticket ? { session: first.ticket, earlyData: 'GET / (early)' } : {},
    );
    const accepted = second.socket.earlyDataAccepted === true;
    result(
      'A',
      accepted && second.reply === 'GET / (early)',
      `early data accepted=${accepted}, echoed '${second.reply}'`,
    );
    server.close();
  },
};

export const tlsMtls: Scenario = {
  name: 'tls-mtls',
  title: 'Mutual TLS: the server asks for a client certificate (RFC 8446 §4.3.2, §4.4.2)',
  watch: [
    'B sends CertificateRequest along with its own Certificate.',
    'A answers with its Certificate and CertificateVerify before its Finished.',
    "B checks A's certificate against its CA; only then does the connection count as authorized.",
  ],
  link: { delay: 10 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const ca = net.certificateAuthority().certificatePem;
    let peer = '';
    const server = b.tls.createServer({ port: 443, requestCert: true, ca }, (s) => {
      peer = s.getPeerCertificate()?.subject.CN ?? '';
      s.on('data', (d: Buffer) => s.write(d));
      s.on('end', () => s.end());
    });
    const mine = net.issueCertificate(['a.test']);
    const { reply } = await tlsExchange(net, a, b, 'it is me', {
      cert: mine.certificatePem,
      key: mine.privateKeyPem,
    });
    result('B', peer === 'a.test', `client certificate CN=${peer || '(none)'}`);
    result('A', reply === 'it is me', `echoed '${reply}'`);
    server.close();
  },
};

export const tlsKeyUpdate: Scenario = {
  name: 'tls-keyupdate',
  title: 'KeyUpdate: fresh traffic keys in the middle of a connection (RFC 8446 §4.6.3)',
  watch: [
    'After the handshake A sends KeyUpdate(update_requested) and switches its sending keys.',
    'B answers with its own KeyUpdate(update_not_requested) and switches too.',
    'The data that follows is protected by the next generation of keys; nothing else changes.',
  ],
  link: { delay: 10 },
  async run({ net, result }) {
    const a = net.host('A');
    const b = net.host('B');
    const server = tlsEcho(b);
    let updates = 0;
    const { reply } = await tlsExchange(net, a, b, 'after the update', {}, (s) => {
      s.on('keyUpdate', () => updates++);
      s.updateKeys(true);
    });
    result(
      'A',
      reply === 'after the update',
      `echoed '${reply}' under new keys (${updates} key change event(s))`,
    );
    server.close();
  },
};
