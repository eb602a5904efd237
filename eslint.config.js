// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // client/schema.ts is generated (npm run gen:client); its freshness is checked by test/client-schema.test.ts.
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/', 'uploads/', 'processed/', 'state/', 'client/schema.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': 'off',
    },
  },
  {
    // Handlers are Fetch-API code over ports: no native or Node-bound module belongs there.
    files: ['handlers/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'sharp', 'ioredis', 'bullmq', 'busboy', '@fastify/busboy', '../src/adapters/*'],
              message: 'handlers depend on ports only; put Node, sharp and Redis code in src/adapters/',
            },
          ],
        },
      ],
    },
  },
  {
    // The typed client is for users' code in any runtime: fetch only, and nothing of the server's.
    files: ['client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', '../src/*', '../handlers/*', '../test/*'],
              message: 'the client stands alone: openapi-fetch and its generated schema only',
            },
          ],
        },
      ],
    },
  },
);
