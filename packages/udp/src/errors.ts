// Node-shaped errors live in wire, shared by every transport; these names keep UDP's API.

export type { SystemError as UdpSystemError, SystemErrorCode } from '@stepwire/wire';
export { codeError, systemError } from '@stepwire/wire';
