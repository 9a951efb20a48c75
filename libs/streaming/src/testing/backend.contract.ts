/**
 * The whole-backend contract: its lifecycle, then every port's suite on the
 * same backend (one fresh, connected backend per test).
 */
import type { StreamingBackend } from '../interfaces';
import { BackendCounterStore } from '../security/counter-store';
import { declareBrokerTests, type BrokerContractOptions } from './broker.contract';
import { useSubject } from './contract-helpers';
import { declareCounterStoreTests } from './counter-store.contract';
import { declareNodeDirectoryTests } from './node-directory.contract';
import { declarePresenceStoreTests } from './presence-store.contract';
import { declareReadStateStoreTests } from './read-state.contract';
import { declareRoomStoreTests } from './room-store.contract';

/** Options of {@link describeBackendContract}: those of the broker suite (`settleMs`). */
export type BackendContractOptions = BrokerContractOptions;

/**
 * Declares the behaviour every {@link StreamingBackend} must show. Each backend's
 * spec calls this with a factory returning a fresh, unconnected backend; it is
 * connected before each test and closed after it.
 * Ids are random so that a shared Redis / NATS server can be reused across tests.
 */
export function describeBackendContract(
  name: string,
  factory: () => Promise<StreamingBackend>,
  opts: BackendContractOptions = {},
): void {
  describe(`StreamingBackend contract: ${name}`, () => {
    const backend = useSubject(factory);

    describe('lifecycle', () => {
      it('ping resolves while connected', async () => {
        await expect(backend().ping()).resolves.toBeUndefined();
      });
    });

    declareBrokerTests(backend, opts);
    declareRoomStoreTests(backend);
    declarePresenceStoreTests(backend);
    declareCounterStoreTests(() => new BackendCounterStore(backend()));
    declareNodeDirectoryTests(backend);
    declareReadStateStoreTests(backend);
  });
}
