/**
 * @module
 * Holds answers to the OpenAPI document the app serves: each answer's status must be documented for its
 * route, its Content-Type among that response's, its JSON body (application/json, application/problem+json)
 * valid against the documented schema (JSON Schema 2020-12, `$ref`s resolved from the document), and each
 * documented header it carries valid against its schema. An answer for no documented route must be a 404
 * or 405 problem. `checkedHarness` wraps a harness so that every answer the contract suite receives is held.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Harness, HarnessFactory } from './harness.js';

// ajv-formats is CommonJS: its default export arrives wrapped under tsx/vitest.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv2020,
) => Ajv2020;

type Json = Record<string, unknown>;
interface OpenApiDoc {
  paths: Record<string, Record<string, Json>>;
  components?: Json;
}
interface ResponseDoc {
  content?: Record<string, unknown>;
  headers?: Record<string, Json>;
}

const DOC_ID = 'https://image-service.invalid/openapi.json';
const METHODS = new Set(['get', 'head', 'post', 'put', 'patch', 'delete', 'options']);

/** A JSON pointer token, escaped for the pointer and then for a URI fragment. */
const token = (part: string) => encodeURIComponent(part.replace(/~/g, '~0').replace(/\//g, '~1'));
const mediaType = (contentType: string | null) => contentType?.split(';')[0]!.trim().toLowerCase() ?? '';
const isJson = (type: string) => type === 'application/json' || type.endsWith('+json');

export interface AnswerChecker {
  /** Throws an Error saying what is wrong when `response` (to `method` `path`) does not fit the document. */
  check(method: string, path: string, response: Response): Promise<void>;
}

export function answerChecker(doc: OpenApiDoc): AnswerChecker {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  // The whole document as one schema, so `#/components/...` resolves from any schema in it.
  ajv.addSchema({ ...doc, $id: DOC_ID } as Json);
  const compiled = new Map<string, ValidateFunction>();
  const validatorAt = (pointer: string[]) => {
    const ref = `${DOC_ID}#/${pointer.map(token).join('/')}`;
    let validate = compiled.get(ref);
    if (!validate) {
      validate = ajv.compile({ $ref: ref });
      compiled.set(ref, validate);
    }
    return validate;
  };
  const routes = Object.keys(doc.paths).map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }));

  function validate(pointer: string[], value: unknown, what: string): void {
    const run = validatorAt(pointer);
    if (!run(value)) {
      const errors = (run.errors ?? [])
        .slice(0, 5)
        .map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
      throw new Error(
        `${what} does not match the document (${pointer.join(' > ')}): ${errors.join('; ')}\n${JSON.stringify(value).slice(0, 600)}`,
      );
    }
  }

  return {
    async check(method, path, response) {
      const verb = method.toLowerCase();
      const { pathname } = new URL(path, 'http://localhost');
      const status = String(response.status);
      const what = `${method.toUpperCase()} ${pathname} → ${status}`;
      const route = routes.find((r) => r.pattern.test(pathname));
      const operation = route && METHODS.has(verb) ? doc.paths[route.template]![verb] : undefined;
      if (!operation) {
        // No documented route: the app's own answer for that, a problem.
        if (status !== '404' && status !== '405') throw new Error(`${what}: no documented operation, yet not a 404 or 405`);
        if (mediaType(response.headers.get('content-type')) !== 'application/problem+json')
          throw new Error(`${what}: not a problem document`);
        validate(['components', 'schemas', 'Problem'], await response.clone().json(), what);
        return;
      }
      const responses = operation.responses as Record<string, ResponseDoc>;
      const key =
        status in responses ? status : `${status[0]}XX` in responses ? `${status[0]}XX` : 'default' in responses ? 'default' : undefined;
      if (!key)
        throw new Error(
          `${what}: status ${status} is not documented for ${verb.toUpperCase()} ${route!.template} (documented: ${Object.keys(responses).join(', ')})`,
        );
      const documented = responses[key]!;
      const base = ['paths', route!.template, verb, 'responses', key];

      for (const [name, header] of Object.entries(documented.headers ?? {})) {
        const value = response.headers.get(name);
        if (value === null) continue;
        const headerDoc = ('$ref' in header ? resolve(doc, header.$ref as string) : header) as { schema?: Json };
        const schema = headerDoc.schema ?? {};
        const typed =
          schema.type === 'integer' || schema.type === 'number' ? (Number.isFinite(Number(value)) ? Number(value) : value) : value;
        const pointer =
          '$ref' in header ? [...(header.$ref as string).slice(2).split('/'), 'schema'] : [...base, 'headers', name, 'schema'];
        validate(pointer, typed, `${what} header ${name}`);
      }

      const type = mediaType(response.headers.get('content-type'));
      const content = documented.content;
      if (!content) {
        if (verb !== 'head' && (await response.clone().arrayBuffer()).byteLength > 0)
          throw new Error(`${what}: documented without a body, yet has one`);
        return;
      }
      if (verb === 'head') return;
      const match = Object.keys(content).find((documentedType) => {
        if (documentedType === type) return true;
        const [main, sub] = documentedType.split('/');
        return sub === '*' && type.startsWith(`${main}/`);
      });
      if (!match)
        throw new Error(`${what}: Content-Type ${JSON.stringify(type)} is not documented (documented: ${Object.keys(content).join(', ')})`);
      if (!isJson(type)) return;
      const text = await response.clone().text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new Error(`${what}: the ${type} body is not JSON: ${text.slice(0, 200)}`);
      }
      validate([...base, 'content', match, 'schema'], body, what);
    },
  };
}

function resolve(doc: OpenApiDoc, ref: string): unknown {
  return ref
    .slice(2)
    .split('/')
    .reduce<unknown>((node, part) => (node as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
}

/**
 * The harness, with every answer to `request` and `requestAsNode` held to the document the app serves
 * (read once, when the harness opens); an answer that does not fit makes the request reject.
 */
export function checkedHarness(factory: HarnessFactory): HarnessFactory {
  return async (env, seen) => checked(await factory(env, seen));
}

async function checked(harness: Harness): Promise<Harness> {
  let checker: AnswerChecker;
  try {
    checker = answerChecker((await (await harness.request('/openapi.json')).json()) as OpenApiDoc);
  } catch (error) {
    await harness.close();
    throw error;
  }
  const hold =
    (send: Harness['request']): Harness['request'] =>
    async (path, init) => {
      const response = await send(path, init);
      await checker.check(init?.method ?? 'GET', path, response);
      return response;
    };
  return {
    ...harness,
    request: hold(harness.request),
    requestAsNode: hold(harness.requestAsNode),
    restart: async () => checked(await harness.restart()),
  };
}
