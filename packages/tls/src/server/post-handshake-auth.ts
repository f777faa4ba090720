/**
 * Post-handshake client authentication on the server (RFC 8446 §4.6.2): once CONNECTED,
 * our CertificateRequest with a fresh context, then the client's Certificate,
 * CertificateVerify (when it sent a certificate) and Finished, each joining a transcript
 * that continues the handshake's (§4.4.1). Its own small machine, its legal steps one table.
 */
import { alert, macEqual } from '../auth.ts';
import { AlertDescription } from '../codec/alert.ts';
import type { HandshakeMessage } from '../codec/handshake.ts';
import type { TlsEvent } from '../connection/types.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { checkFinished } from '../handshake/finished.ts';
import { Machine, type MessageOf, nonEmptyChain, type TransitionTable } from '../handshake/machine.ts';
import type {
  ClientAuthRequest,
  PostHandshakeAuthState,
  ServerConnected,
} from '../handshake/server-states.ts';
import { Transcript } from '../keyschedule.ts';
import { checkClientCertificateVerify } from './client-auth.ts';

type Pha<K extends PostHandshakeAuthState['name']> = Extract<PostHandshakeAuthState, { name: K }>;

/** What the exchange needs of the connection it runs on. */
export interface PostHandshakeAuthHost {
  readonly crypto: CryptoProvider;
  /** The time of the input being handled (ms). */
  now(): number;
  /** Send a post-handshake message (outside the handshake transcript); returns its encoding. */
  send(msg: HandshakeMessage): Uint8Array;
  /** client_application_traffic_secret_N, the current read secret (RFC 8446 §7.2). */
  readSecret(): Uint8Array | undefined;
  emit(e: TlsEvent): void;
}

export class ServerPostHandshakeAuth {
  /**
   * After our CertificateRequest, the client's Certificate, CertificateVerify (with a
   * certificate) and Finished (RFC 8446 §4.6.2). Anything else is an unexpected_message.
   */
  private static readonly transitions: TransitionTable<ServerPostHandshakeAuth, PostHandshakeAuthState> = {
    WAIT_CERT: {
      certificate: {
        rfc: 'RFC 8446 §4.6.2, §4.4.2',
        next: ['WAIT_CV', 'WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onCertificate(s, m, raw),
      },
    },
    WAIT_CV: {
      certificate_verify: {
        rfc: 'RFC 8446 §4.6.2, §4.4.3',
        next: ['WAIT_FINISHED'],
        handle: (c, s, m, raw) => c.onCertificateVerify(s, m, raw),
      },
    },
    WAIT_FINISHED: {
      finished: {
        rfc: 'RFC 8446 §4.6.2, §4.4.4',
        next: ['IDLE'],
        handle: (c, s, m, raw) => c.onFinished(s, m, raw),
      },
    },
  };

  private readonly machine = new Machine(
    ServerPostHandshakeAuth.transitions,
    { name: 'IDLE' },
    ' of post-handshake authentication',
  );

  constructor(private readonly host: PostHandshakeAuthHost) {}

  get state(): PostHandshakeAuthState {
    return this.machine.state;
  }

  /**
   * Send a CertificateRequest (RFC 8446 §4.6.2) over the handshake transcript
   * `handshakeTranscript`, and wait for the answer.
   */
  request(connected: ServerConnected, handshakeTranscript: Uint8Array, auth: ClientAuthRequest): void {
    // RFC 8446 §4.3.2: a context unique within this connection, echoed by the client's Certificate.
    const context = this.host.crypto.randomBytes(32);
    const transcript = new Transcript();
    transcript.add(handshakeTranscript);
    const raw = this.host.send({
      msgType: 'certificate_request',
      certificateRequestContext: context,
      extensions: [{ type: 'signature_algorithms', schemes: [...auth.verifier.signatureSchemes] }],
    });
    transcript.add(raw);
    this.machine.enter({ name: 'WAIT_CERT', connected, context, transcript, auth });
  }

  /** A Certificate, CertificateVerify or Finished after the handshake. */
  dispatch(msg: HandshakeMessage, raw: Uint8Array): void {
    this.machine.dispatch(this, msg, raw);
  }

  private onCertificate(s: Pha<'WAIT_CERT'>, msg: MessageOf<'certificate'>, raw: Uint8Array): void {
    // RFC 8446 §4.4.2: the context echoes our CertificateRequest's.
    if (!macEqual(msg.certificateRequestContext, s.context))
      alert(
        AlertDescription.illegal_parameter,
        'certificate_request_context does not match our CertificateRequest',
      );
    s.transcript.add(raw);
    const chain = nonEmptyChain(msg.certificateList.map((e) => e.certData));
    const common = { connected: s.connected, context: s.context, transcript: s.transcript };
    if (!chain) {
      // RFC 8446 §4.4.2.4: no certificate where one is required is certificate_required.
      if (s.auth.required) alert(AlertDescription.certificate_required, 'client sent no certificate');
      this.machine.enter({ ...common, name: 'WAIT_FINISHED', peerCertificates: [] });
      return;
    }
    s.auth.verifier.verifyChain(chain, { now: this.host.now() });
    this.machine.enter({ ...common, name: 'WAIT_CV', auth: s.auth, peerCertificates: chain });
  }

  private onCertificateVerify(
    s: Pha<'WAIT_CV'>,
    msg: MessageOf<'certificate_verify'>,
    raw: Uint8Array,
  ): void {
    checkClientCertificateVerify(
      this.host.crypto,
      s.auth.verifier,
      s.peerCertificates,
      msg,
      s.transcript,
      s.connected.agreement.suite.hash,
    );
    s.transcript.add(raw);
    this.machine.enter({
      name: 'WAIT_FINISHED',
      connected: s.connected,
      context: s.context,
      transcript: s.transcript,
      peerCertificates: s.peerCertificates,
    });
  }

  private onFinished(s: Pha<'WAIT_FINISHED'>, msg: MessageOf<'finished'>, _raw: Uint8Array): void {
    // RFC 8446 §4.4: after the handshake the Finished key derives from client_application_traffic_secret_N.
    const base = this.host.readSecret();
    if (!base) alert(AlertDescription.internal_error, 'no client application traffic secret');
    checkFinished(this.host.crypto, 'client', base, msg, s.transcript, s.connected.agreement.suite.hash);
    this.machine.enter({ name: 'IDLE' });
    this.host.emit({ type: 'client-certificate', peerCertificates: s.peerCertificates, context: s.context });
  }
}
