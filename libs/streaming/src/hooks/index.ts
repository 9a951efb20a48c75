export * from './hook.types';
export {
  BeforeConnect,
  BeforeJoin,
  BeforePublish,
  BeforeSendMessage,
  BeforeSubscribe,
} from './hook.decorators';
export type { StreamingHookDecorator } from './hook.decorators';
export { StreamingHooks } from './streaming-hooks.service';
