/**
 * `stepwire.Echo`: the service `stepwire serve` offers and the interop tests call. Its
 * schema is built at run time as a FileDescriptorProto and turned into descriptors by
 * @bufbuild/protobuf's createFileRegistry, so no code generator (protoc, buf) is needed:
 *
 *   syntax = "proto3";
 *   package stepwire;
 *   message EchoMessage { string message = 1; int32 n = 2; }
 *   service Echo {
 *     rpc Unary(EchoMessage) returns (EchoMessage);
 *     rpc ServerStream(EchoMessage) returns (stream EchoMessage);   // n copies, i = 0..n-1 in n
 *     rpc ClientStream(stream EchoMessage) returns (EchoMessage);   // messages joined, n = count
 *     rpc Bidi(stream EchoMessage) returns (stream EchoMessage);    // each message answered at once
 *   }
 *
 * A request whose message starts with "error:" is answered with the status named after
 * the colon (e.g. "error:NOT_FOUND:no such thing"), and "sleep:<ms>" waits before
 * answering, so clients can test statuses and deadlines against it.
 */
import { create, createFileRegistry, type DescMessage, type DescService } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
} from '@bufbuild/protobuf/wkt';
import type { GrpcServer, GrpcServerCall } from './server.ts';
import { type GrpcMethod, grpcServiceFromDescriptor } from './service.ts';
import { GrpcError, GrpcStatus } from './status.ts';

const file = create(FileDescriptorProtoSchema, {
  name: 'stepwire/echo.proto',
  package: 'stepwire',
  syntax: 'proto3',
  messageType: [
    {
      name: 'EchoMessage',
      field: [
        {
          name: 'message',
          number: 1,
          type: FieldDescriptorProto_Type.STRING,
          label: FieldDescriptorProto_Label.OPTIONAL,
          jsonName: 'message',
        },
        {
          name: 'n',
          number: 2,
          type: FieldDescriptorProto_Type.INT32,
          label: FieldDescriptorProto_Label.OPTIONAL,
          jsonName: 'n',
        },
      ],
    },
  ],
  service: [
    {
      name: 'Echo',
      method: [
        { name: 'Unary', inputType: '.stepwire.EchoMessage', outputType: '.stepwire.EchoMessage' },
        {
          name: 'ServerStream',
          inputType: '.stepwire.EchoMessage',
          outputType: '.stepwire.EchoMessage',
          serverStreaming: true,
        },
        {
          name: 'ClientStream',
          inputType: '.stepwire.EchoMessage',
          outputType: '.stepwire.EchoMessage',
          clientStreaming: true,
        },
        {
          name: 'Bidi',
          inputType: '.stepwire.EchoMessage',
          outputType: '.stepwire.EchoMessage',
          clientStreaming: true,
          serverStreaming: true,
        },
      ],
    },
  ],
});

const registry = createFileRegistry(file, () => undefined);

function must<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`echo.proto: ${what} missing from the registry`);
  return v;
}

/** The descriptor of stepwire.EchoMessage and of the service. */
export const EchoMessageSchema: DescMessage = must(
  registry.getMessage('stepwire.EchoMessage'),
  'EchoMessage',
);
export const EchoServiceDescriptor: DescService = must(registry.getService('stepwire.Echo'), 'Echo');

/** The message as plain data (what handlers and callers see). */
export interface EchoMessage {
  message: string;
  n: number;
}

const generic = grpcServiceFromDescriptor(EchoServiceDescriptor);

function plainMethod<K extends GrpcMethod['kind']>(
  m: GrpcMethod | undefined,
  kind: K,
): GrpcMethod<EchoMessage, EchoMessage, K> {
  const g = must(m, kind);
  return {
    path: g.path,
    kind,
    serializeRequest: (x) => g.serializeRequest(x),
    deserializeRequest: (b) => plain(g.deserializeRequest(b) as EchoMessage),
    serializeResponse: (x) => g.serializeResponse(x),
    deserializeResponse: (b) => plain(g.deserializeResponse(b) as EchoMessage),
  };
}

/** The four methods with EchoMessage in and out as plain objects, typed by kind. */
export const echoService = {
  Unary: plainMethod(generic.Unary, 'unary'),
  ServerStream: plainMethod(generic.ServerStream, 'server_streaming'),
  ClientStream: plainMethod(generic.ClientStream, 'client_streaming'),
  Bidi: plainMethod(generic.Bidi, 'bidi_streaming'),
};

function plain(m: EchoMessage): EchoMessage {
  return { message: m.message, n: m.n };
}

/** "error:CODE:details" and "sleep:ms" requests (see the file comment). */
async function act(m: EchoMessage, call: GrpcServerCall): Promise<void> {
  if (m.message.startsWith('error:')) {
    const [, name = 'UNKNOWN', ...rest] = m.message.split(':');
    const code = (GrpcStatus as Record<string, number>)[name] ?? GrpcStatus.UNKNOWN;
    throw new GrpcError(code, rest.join(':'));
  }
  if (m.message.startsWith('sleep:')) {
    const ms = Math.min(60_000, Number(m.message.slice(6)) || 0);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      call.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** Registers stepwire.Echo on a gRPC server. */
export function addEchoService(server: GrpcServer): GrpcServer {
  return server.addService(echoService, {
    Unary: async (req, call) => {
      await act(req, call);
      return plain(req);
    },
    ServerStream: async function* (req, call) {
      await act(req, call);
      // Bounded: a request cannot make the server produce more than 10 000 messages.
      const n = Math.min(Math.max(req.n, 0), 10_000);
      for (let i = 0; i < n; i++) {
        if (call.signal.aborted) return;
        yield { message: req.message, n: i };
      }
    },
    ClientStream: async (reqs, call) => {
      const parts: string[] = [];
      for await (const r of reqs) {
        await act(r, call);
        parts.push(r.message);
      }
      return { message: parts.join(''), n: parts.length };
    },
    Bidi: async function* (reqs, call) {
      for await (const r of reqs) {
        await act(r, call);
        yield plain(r);
      }
    },
  });
}
