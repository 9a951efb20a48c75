/** The in-process MemoryCounterStore against the CounterStore contract. */
import { MemoryCounterStore } from '../security/counter-store';
import { describeCounterStoreContract } from './index';

describeCounterStoreContract('MemoryCounterStore', () => new MemoryCounterStore());
describeCounterStoreContract(
  'MemoryCounterStore sweeping at every increment',
  () => new MemoryCounterStore({ sweepIntervalMs: 0 }),
);
