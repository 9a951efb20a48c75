import { Test } from '@nestjs/testing';
import { LocalBackend } from '../backends/local/local.backend';
import { defaultStreamingOptions } from '../config/streaming-defaults';
import { ConnectionRegistry } from '../connections/connection-registry';
import { StreamingMetricsService } from '../metrics/streaming-metrics.service';
import { STREAMING_MODULE_OPTIONS } from '../streaming.constants';
import { InMemoryChannelStore } from './channel-store';
import { ChannelService } from './channel.service';
import { channelProviders } from './channel.providers';
import {
  STREAMING_BACKEND,
  STREAMING_OPTIONS,
  STREAMING_CHANNEL_AUTHORIZER,
  STREAMING_CHANNEL_STORE,
  STREAMING_BROKER,
  STREAMING_PRESENCE_STORE,
} from '../streaming.constants';
import type { ChannelAuthorizer } from '../interfaces';
import { TopicTable } from '../connections/topic-table';
import { StreamingHub } from '../connections/hub';

async function compile(moduleOptions: Record<string, unknown>) {
  const moduleRef = await Test.createTestingModule({
    providers: [
      { provide: STREAMING_MODULE_OPTIONS, useValue: moduleOptions },
      { provide: STREAMING_OPTIONS, useValue: defaultStreamingOptions() },
      { provide: STREAMING_BACKEND, useValue: new LocalBackend() },
      { provide: STREAMING_BROKER, useExisting: STREAMING_BACKEND },
      { provide: STREAMING_PRESENCE_STORE, useExisting: STREAMING_BACKEND },
      ConnectionRegistry,
      TopicTable,
      StreamingHub,
      StreamingMetricsService,
      ...channelProviders,
    ],
  }).compile();
  return moduleRef;
}

describe('channelProviders', () => {
  it('builds ChannelService with the default store and authorizer', async () => {
    const moduleRef = await compile({});
    const service = moduleRef.get(ChannelService);
    expect(moduleRef.get(STREAMING_CHANNEL_STORE)).toBeInstanceOf(InMemoryChannelStore);
    await service.createChannel({ userId: 'alice' }, { name: 'c', private: true });
    await expect(service.publish({ userId: 'bob' }, 'c', {})).rejects.toMatchObject({ code: 'forbidden' });
    await moduleRef.close();
  });

  it('takes the authorizer and store from the module options', async () => {
    const channelAuthorizer: ChannelAuthorizer = { authorize: () => true };
    const channelStore = new InMemoryChannelStore();
    const moduleRef = await compile({ channelAuthorizer, channelStore });
    expect(moduleRef.get(STREAMING_CHANNEL_AUTHORIZER)).toBe(channelAuthorizer);
    const service = moduleRef.get(ChannelService);
    await service.createChannel({ userId: 'alice' }, { name: 'c', private: true });
    expect(await channelStore.count()).toBe(1);
    await expect(service.publish({ userId: 'bob' }, 'c', {})).resolves.toMatchObject({ channel: 'c' });
    await moduleRef.close();
  });
});
