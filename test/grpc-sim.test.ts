/**
 * gRPC over our whole stack on the simulated network: our gRPC client and server on our
 * h2 on our TCP between two simulated hosts, deadlines on the simulation's virtual clock.
 * Deterministic (seeded), also on a lossy, reordering wire.
 */
import { Sim } from '@stepwire/sim';
import { describe, expect, it } from 'vitest';
import {
  addEchoService,
  connectGrpc,
  echoService,
  GrpcError,
  GrpcServer,
  GrpcStatus,
  grpcRawMethod,
} from '../packages/http/src/grpc/index.ts';

describe('gRPC on our TCP over the simulated network', () => {
  it.each([
    ['a clean wire', {}],
    ['a wire losing 1% and reordering 1%', { loss: 0.01, reorder: 0.01 }],
  ])('the four call kinds and a deadline on virtual time, on %s', async (_n, impairments) => {
    const sim = new Sim({ seed: 9, impairments });
    let serverSaw: unknown;
    const grpc = addEchoService(new GrpcServer({ http2: { clock: sim.clock } }));
    grpc.addService(
      { Never: grpcRawMethod('/t.S/Never', 'unary') },
      {
        Never: (_req, call) =>
          new Promise<Uint8Array>((_resolve, reject) =>
            call.signal.addEventListener('abort', () => {
              serverSaw = call.signal.reason;
              reject(call.signal.reason);
            }),
          ),
      },
    );
    const tcpServer = sim.b.tcp.createServer({ allowHalfOpen: true });
    tcpServer.on('connection', (s) => grpc.handle(s));
    tcpServer.listen(50051);
    try {
      const client = connectGrpc('http://b.test:50051', {
        clock: sim.clock,
        createConnection: () => sim.a.tcp.connect({ host: sim.b.ipv4, port: 50051 }),
      });
      const work = (async () => {
        const big = 'm'.repeat(100_000);
        const unary = await client.unary(echoService.Unary, { message: big, n: 1 });
        const streamed: number[] = [];
        for await (const m of client.serverStream(echoService.ServerStream, { message: 's', n: 20 }))
          streamed.push(m.n);
        const joined = await client.clientStream(
          echoService.ClientStream,
          Array.from({ length: 10 }, (_, i) => ({ message: String(i), n: 0 })),
        );
        const echoed: string[] = [];
        for await (const m of client.bidi(
          echoService.Bidi,
          ['x', 'y', 'z'].map((message) => ({ message, n: 0 })),
        ))
          echoed.push(m.message);
        const start = sim.clock.now();
        const late = await client.unary('/t.S/Never', new Uint8Array(0), { timeout: 500 }).then(
          () => undefined,
          (e: unknown) => e,
        );
        return { unary, streamed, joined, echoed, late, waited: sim.clock.now() - start };
      })();
      const r = await sim.run(work);
      expect(r.unary.message.length).toBe(100_000);
      expect(r.streamed).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(r.joined).toEqual({ message: '0123456789', n: 10 });
      expect(r.echoed).toEqual(['x', 'y', 'z']);
      expect(r.late).toBeInstanceOf(GrpcError);
      expect((r.late as GrpcError).code).toBe(GrpcStatus.DEADLINE_EXCEEDED);
      // The deadline is on virtual time: exactly the timeout passed.
      expect(r.waited).toBeCloseTo(500, 0);
      // The server's handler was aborted: its own deadline or the client's RST_STREAM CANCEL.
      await sim.run(new Promise<void>((res) => setImmediate(res)));
      expect([GrpcStatus.DEADLINE_EXCEEDED, GrpcStatus.CANCELLED]).toContain((serverSaw as GrpcError).code);
      // No deadline timer is left armed on either side (they go through TimerGroup).
      client.close();
      await sim.run(new Promise<void>((res) => client.session.once('close', () => res())));
      expect(client.session.timers.armed).toBe(0);
    } finally {
      tcpServer.close();
      sim.close();
    }
  });
});
