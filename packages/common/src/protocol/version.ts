// The wire protocol version carried by every control message and gradient chunk header. Bump it
// whenever a message shape or the chunk header changes meaning; peers on another version are
// rejected with reason 'version' instead of being misread.
export const PROTOCOL_VERSION = 2;
