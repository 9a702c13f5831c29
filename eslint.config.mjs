// npm run lint: typescript-eslint's recommended rules, the type-aware ones that catch lost
// promises, size limits that keep functions readable, and the package boundaries (each process
// imports only the provider API package, `proto`, which imports neither process).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const processOnly = (other) => ({
  patterns: [
    {
      group: [`@secret-store-sync/${other}`, `**/${other}/src/**`],
      message: `a process imports only @secret-store-sync/proto, never ${other}`,
    },
  ],
});

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/bundle/**',
      '.stack/**',
      'coverage/**',
      'proto/src/generated/**',
      'bench/results/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      // One program over sources, tests and scripts (tsconfig.eslint.json); the workspaces' own
      // tsconfigs cover only their sources.
      parserOptions: { project: './tsconfig.eslint.json', tsconfigRootDir: import.meta.dirname },
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        structuredClone: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        queueMicrotask: 'readonly',
      },
    },
    rules: {
      // A promise nobody awaits loses its error (an unhandled rejection ends the process).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': [
        'error',
        { checksVoidReturn: { arguments: false, attributes: false } },
      ],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'max-params': ['error', 4],
      complexity: ['error', 20],
      'max-depth': ['error', 5],
    },
  },
  { files: ['controller/src/**/*.ts'], rules: { 'no-restricted-imports': ['error', processOnly('provider-azure')] } },
  { files: ['provider-azure/src/**/*.ts'], rules: { 'no-restricted-imports': ['error', processOnly('controller')] } },
  {
    files: ['proto/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                '@secret-store-sync/controller',
                '@secret-store-sync/provider-azure',
                '**/controller/src/**',
                '**/provider-azure/src/**',
              ],
              message: 'proto is the contract: it imports neither process',
            },
          ],
        },
      ],
    },
  },
  {
    // Tests and tools may use any, build fixtures by hand and take many arguments.
    files: ['**/test/**/*.ts', 'bench/**/*.ts', '**/*.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', 'max-params': 'off', complexity: 'off', 'max-depth': 'off' },
  },
);
