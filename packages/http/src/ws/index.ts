export * from './connection.ts';
export * from './deflate.ts';
export * from './frame.ts';
export * from './handshake.ts';
export * from './server.ts';
export { isValidUtf8, Utf8Validator } from './utf8.ts';
export * from './websocket.ts';
