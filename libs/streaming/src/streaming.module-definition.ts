import { ConfigurableModuleBuilder, Inject } from '@nestjs/common';
import { StreamingModuleOptions } from './config/streaming-options.interface';

export const {
  ConfigurableModuleClass: StreamingConfigurableModule,
  MODULE_OPTIONS_TOKEN: STREAMING_MODULE_OPTIONS,
  OPTIONS_TYPE: STREAMING_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: STREAMING_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<StreamingModuleOptions>({ moduleName: 'Streaming' })
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();

/** Injection token of the resolved, validated {@link StreamingOptions}. */
export const STREAMING_OPTIONS = Symbol('STREAMING_OPTIONS');

/** Parameter decorator: inject the resolved {@link StreamingOptions}. */
export const InjectStreamingOptions = (): ParameterDecorator => Inject(STREAMING_OPTIONS);
