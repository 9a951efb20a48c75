export { WebhookService, WEBHOOK_TUNING, webhookData } from './webhook.service';
export type { WebhookBody, WebhookEventType } from './webhook.service';
export {
  WEBHOOK_HEADERS,
  WEBHOOK_TOLERANCE_S,
  signWebhook,
  verifyWebhookSignature,
  webhookHmac,
} from './webhook-signature';
export { WebhookDispatcher, webhookBackoffMs, fetchWebhookPost } from './webhook-dispatcher';
export type {
  WebhookAttemptResult,
  WebhookDropReason,
  WebhookObserver,
  WebhookPost,
  WebhookTuning,
} from './webhook-dispatcher';
