/** A client to server envelope (PROTOCOL.md section 3). */
export interface ClientEnvelope {
  type: string;
  id?: string;
  data: Record<string, unknown>;
}

/** A server to client envelope. */
export interface ServerEnvelope<T = Record<string, unknown>> {
  type: string;
  id?: string;
  data: T;
}

/** Serialize a server envelope once; the string is written as is to every recipient. */
export function encodeEnvelope(type: string, data: unknown, id?: string): string {
  return id === undefined ? JSON.stringify({ type, data }) : JSON.stringify({ type, id, data });
}
