/** Jest: unit specs beside the code, end-to-end specs in test/. TypeScript through SWC. */
const transform = {
  '^.+\\.ts$': [
    '@swc/jest',
    {
      jsc: {
        target: 'es2022',
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        keepClassNames: true,
      },
    },
  ],
};
const moduleNameMapper = {
  '^@nest-streaming/streaming$': '<rootDir>/libs/streaming/src',
  '^@nest-streaming/streaming/(.*)$': '<rootDir>/libs/streaming/src/$1',
  '^@nest-streaming/client$': '<rootDir>/libs/client/src',
  '^@nest-streaming/client/(.*)$': '<rootDir>/libs/client/src/$1',
  '^@nest-streaming/protocol$': '<rootDir>/libs/protocol/src',
};
const common = { rootDir: __dirname, transform, moduleNameMapper, testEnvironment: 'node' };

/** @type {import('jest').Config} */

module.exports = {
  testTimeout: 30000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
    },
  ],
};
