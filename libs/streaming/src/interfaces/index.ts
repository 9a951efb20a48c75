/** The plugin contracts of the module: plain types, importing nothing but each other. */
export * from './backend-records';
export * from './broker.interface';
export * from './counter-store.interface';
export * from './node-directory.interface';
export * from './presence-store.interface';
export * from './read-state-store.interface';
export * from './room-store.interface';
export * from './streaming-backend.interface';
export * from './authenticator.interface';
export * from './channel.interface';
export * from './connection-identity.interface';
export * from './content-filter.interface';
export * from './rate-limiter.interface';
