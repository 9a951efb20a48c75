/**
 * `@nest-streaming/streaming/testing`: the contract suites a backend must pass,
 * for Jest. `describeBackendContract` runs every suite against a whole
 * {@link StreamingBackend}; the per-port ones (`describeBrokerContract`,
 * `describeRoomStoreContract`, ...) test a store that implements a single port.
 *
 * ```ts
 * import { describeBackendContract } from '@nest-streaming/streaming/testing';
 * describeBackendContract('mine', async () => new MyBackend(), { settleMs: 150 });
 * ```
 */
export { describeBackendContract, type BackendContractOptions } from './backend.contract';
export {
  describeBrokerContract,
  type BrokerContractOptions,
  type BrokerContractSubject,
} from './broker.contract';
export { describeCounterStoreContract } from './counter-store.contract';
export { describeNodeDirectoryContract } from './node-directory.contract';
export { describePresenceStoreContract } from './presence-store.contract';
export { describeReadStateStoreContract, type ReadStateStoreContractSubject } from './read-state.contract';
export { describeRoomStoreContract, type RoomStoreContractSubject } from './room-store.contract';
export { eventually, type ContractSubjectFactory } from './contract-helpers';
