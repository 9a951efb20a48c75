/**
 * Wire codecs of the WebSocket transport, chosen with the WebSocket
 * subprotocol (`Sec-WebSocket-Protocol`) at the upgrade. Without one (or with
 * `nest-streaming.json`) frames are newline-delimited JSON text (PROTOCOL.md
 * section 3); with `nest-streaming.msgpack` every frame is binary and holds
 * one or more concatenated MessagePack values, each an envelope of the same
 * shape (`{type, id?, data}`).
 */

/** The WebSocket subprotocol of the JSON codec (the default: no subprotocol means JSON too). */
export const JSON_SUBPROTOCOL = 'nest-streaming.json';

/** The WebSocket subprotocol of the MessagePack codec. */
export const MSGPACK_SUBPROTOCOL = 'nest-streaming.msgpack';

/** A WebSocket connection's codec. */
export type WireCodec = 'json' | 'msgpack';
