/**
 * The committed client/schema.ts is what the current OpenAPI document generates, so the typed client never
 * goes stale: change a route declaration, run `npm run gen:client`, commit both.
 */
import { describe, expect, it } from 'vitest';
import { clientSchemaIsCurrent } from '../scripts/gen-client.js';

describe('client/schema.ts', () => {
  it('matches the OpenAPI document (else run `npm run gen:client`)', async () => {
    const { current, expected, committed } = await clientSchemaIsCurrent();
    if (!current) expect(committed, 'client/schema.ts is stale: run `npm run gen:client` and commit it').toBe(expected);
  });
});
