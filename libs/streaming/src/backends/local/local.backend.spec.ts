import { describeBackendContract } from '../../testing';
import { LocalBackend } from './local.backend';

describeBackendContract('local', async () => new LocalBackend());
