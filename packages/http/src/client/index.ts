export * from './agent.ts';
export { ClientConnection, ClientResponse, type ExchangeHandlers } from './connection.ts';
export * from './fetch.ts';
export { ClientRequest, get, normalizeRequest, type RequestOptions, request } from './request.ts';
