import { ConfigurableModuleBuilder } from '@nestjs/common';
import { StreamingModuleOptions } from './config/streaming-options.interface';
import type { StreamingRoutesOptions } from './config/streaming-options.interface';
import { STREAMING_MODULE_OPTIONS } from './streaming.constants';

/** Options of `forRoot` / `forRootAsync` fixed at import time (not part of the resolved configuration). */
export interface StreamingModuleExtras {
  /** Register the module globally. Default false. */
  isGlobal?: boolean;
  /** The HTTP routes the module adds (see {@link StreamingRoutesOptions}). */
  routes?: StreamingRoutesOptions;
}

export const {
  ConfigurableModuleClass: StreamingConfigurableModule,
  OPTIONS_TYPE: STREAMING_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: STREAMING_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<StreamingModuleOptions>({
  moduleName: 'Streaming',
  optionsInjectionToken: STREAMING_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras<StreamingModuleExtras>({ isGlobal: false, routes: {} }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
