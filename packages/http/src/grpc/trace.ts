/** gRPC's trace events (layer 'grpc'): a call's start, each message, its status. */
import type { TraceBus, TraceDirection } from '@stepwire/wire';

export interface GrpcTracer {
  readonly trace: TraceBus | undefined;
  readonly host: string;
}

/** Emits only when someone listens; the summary is built lazily. */
export function traceGrpc(
  tracer: GrpcTracer,
  now: number,
  dir: TraceDirection,
  summary: () => string,
  fields?: () => Record<string, unknown>,
): void {
  const bus = tracer.trace;
  if (!bus?.enabled) return;
  bus.emit({
    t: now,
    host: tracer.host,
    layer: 'grpc',
    dir,
    summary: summary(),
    ...(fields ? { fields: fields() } : {}),
    rfc: 'gRPC PROTOCOL-HTTP2.md',
  });
}
