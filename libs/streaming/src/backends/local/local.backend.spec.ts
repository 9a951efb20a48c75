import { describeBackendContract } from '../backend.contract';
import { LocalBackend } from './local.backend';

describeBackendContract('local', async () => new LocalBackend());
