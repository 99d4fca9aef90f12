/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)s$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  setupFiles: ['<rootDir>/test/setup.ts'],
  globalSetup: '<rootDir>/test/global-setup.js',
  reporters: ['default', '<rootDir>/test/reporters/skip-reporter.js'],
  testTimeout: 30000,
  // Suites start real servers (redis-server, swtpm, openvpn, ...); two workers match the 2-core machine.
  maxWorkers: process.env.JEST_MAX_WORKERS || 2,
};
