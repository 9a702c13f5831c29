// Two projects: `unit` needs nothing running; `integration` starts the local stack once per run
// (test/env/jest-global-setup.mjs) and gives each test file its own namespace.
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }];
const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  // Sources import siblings as './x.js' (NodeNext); map them back to the .ts files.
  // Workspace packages resolve to their sources, so tests never run stale builds.
  moduleNameMapper: {
    '^@secret-store-sync/(proto|controller|provider-azure)$': '<rootDir>/$1/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};
export default {
  // Integration tests wait on a real apiserver and vault; unit tests finish far sooner anyway.
  testTimeout: 120_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/**/*.unit.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/**/*.int.test.ts'],
      globalSetup: '<rootDir>/test/env/jest-global-setup.mjs',
      globalTeardown: '<rootDir>/test/env/jest-global-teardown.mjs',
      slowTestThreshold: 30,
    },
  ],
};
