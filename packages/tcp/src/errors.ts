// Node-shaped errors live in wire, shared by every transport; these names keep TCP's API.

export type { SystemError as TcpSystemError, SystemErrorCode as TcpErrorCode } from '@stepwire/wire';
export { codeError, systemError } from '@stepwire/wire';
