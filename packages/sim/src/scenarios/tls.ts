/** The TLS 1.3 scenarios: full handshake, HelloRetryRequest, resumption, 0-RTT, mutual auth, KeyUpdate. */
import { about } from './about.ts';
import type { Scenario } from './scenario.ts';
import { tlsEcho, tlsExchange } from './support.ts';

export const tlsFull: Scenario = {
  ...about('tls-full'),
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
  ...about('tls-hrr'),
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
  ...about('tls-resumption'),
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
  ...about('tls-0rtt'),
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
  ...about('tls-mtls'),
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
  ...about('tls-keyupdate'),
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
