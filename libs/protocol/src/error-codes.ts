/** Every `data.code` an `error` frame may carry (PROTOCOL.md section 6). */
export const ERROR_CODES = [
  'unauthorized',
  'forbidden',
  'invalid_message',
  'unknown_type',
  'room_not_found',
  'not_room_member',
  'already_member',
  'room_full',
  'banned',
  'muted',
  'message_not_found',
  'rate_limited',
  'message_too_large',
  'content_filtered',
  'limit_exceeded',
  'history_gap',
  'backend_unavailable',
  'internal',
  'feature_disabled',
  'channel_not_found',
] as const;

/** A protocol error code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** HTTP status for each error code, used by the REST exception filter. */
export const HTTP_STATUS_BY_CODE: Record<ErrorCode, number> = {
  unauthorized: 401,
  forbidden: 403,
  invalid_message: 400,
  unknown_type: 400,
  room_not_found: 404,
  not_room_member: 403,
  already_member: 409,
  room_full: 409,
  banned: 403,
  muted: 403,
  message_not_found: 404,
  rate_limited: 429,
  message_too_large: 413,
  content_filtered: 400,
  limit_exceeded: 429,
  history_gap: 409,
  backend_unavailable: 503,
  internal: 500,
  feature_disabled: 403,
  channel_not_found: 404,
};
