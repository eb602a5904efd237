/**
 * @module
 * A JSON request body, from its bytes to a value, each refusal precise: not UTF-8, nested deeper than
 * MAX_JSON_DEPTH, or not JSON (saying where it stops being JSON). The depth is found by a scan of the text
 * before parsing, so neither the parser nor anything that walks the value later can run out of stack.
 * (The size is bounded before this, while the body is read: see `bodyLimit` in app.ts.)
 */
import { badRequest } from './errors.js';

/** The deepest nesting of lists and objects a body may have; a pipeline needs 3. */
export const MAX_JSON_DEPTH = 32;

const utf8 = new TextDecoder('utf-8', { fatal: true });

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPENERS = new Set([0x5b, 0x7b]);
const CLOSERS = new Set([0x5d, 0x7d]);

/**
 * The deepest nesting of `[` and `{` in JSON `text`, brackets inside strings not counted; it stops
 * counting once past `limit`, so a hostile body costs one partial pass over it.
 * @example jsonDepth('{"a": [1, "[["]}', 32) // 2
 */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === BACKSLASH) i++;
      else if (char === QUOTE) inString = false;
    } else if (char === QUOTE) {
      inString = true;
    } else if (OPENERS.has(char)) {
      depth++;
      deepest = Math.max(deepest, depth);
      if (deepest > limit) return deepest;
    } else if (CLOSERS.has(char) && depth > 0) {
      depth--;
    }
  }
  return deepest;
}

/** True when `bytes` hold nothing but JSON's whitespace. */
export function isBlank(bytes: Uint8Array): boolean {
  return bytes.every((byte) => byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d);
}

/**
 * Parses a JSON body; every way it can be wrong is a 400 `malformed_json` or `json_too_deep` that says which.
 * The parser's own message is never shown (it quotes the body).
 * @example parseJsonBody(new TextEncoder().encode('{"operations": []}')) // { operations: [] }
 */
export function parseJsonBody(bytes: Uint8Array): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badRequest('malformed_json', 'the body is not valid UTF-8; a JSON body must be UTF-8');
  }
  if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw badRequest('json_too_deep', `the body nests lists and objects more than ${MAX_JSON_DEPTH} deep (the limit); a pipeline needs 3`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    const position = /at position (\d+)/.exec(message)?.[1];
    const where = position ? ` (at character ${position})` : /end of JSON/.test(message) ? ' (it ends too soon)' : '';
    throw badRequest('malformed_json', `the body is not valid JSON${where}`);
  }
}
