/**
 * `npm run docs:errors`: writes docs/errors.md from the error-code vocabulary (src/domain/error-codes.ts).
 * A test checks that the file is what this writes, so the page never drifts from the code.
 */
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { errorCodeTable } from '../src/domain/error-codes.js';

export const ERRORS_DOC = 'docs/errors.md';

/** The page: what a problem looks like, then every code. */
export function errorsMarkdown(): string {
  return `# Error codes

<!-- Written by \`npm run docs:errors\` from src/domain/error-codes.ts; edit that file, then run it. -->

Every error is \`application/problem+json\` (RFC 9457):

\`\`\`json
{ "type": "/problems/invalid_request", "title": "Bad Request", "status": 400, "code": "invalid_request",
  "detail": "width must be an integer from 1 to 8192, got 0", "request_id": "…",
  "errors": [{ "path": "width", "message": "width must be an integer from 1 to 8192, got 0" }] }
\`\`\`

\`code\` is one of the codes below, a closed list a client can branch on (the OpenAPI document lists them as
the \`ErrorCode\` enum, and each response's problem schema names the codes of its status). A failed job's
\`error.code\` (\`GET /status\`) comes from the same list: "job" marks the codes that show there (a job can
end with any code, these are the usual ones), and the codes with no status show only there. Answers with \`Retry-After\` (429, 503, 507, and 409
\`idempotency_key_in_progress\`) say how many seconds to wait before trying again.

${errorCodeTable()}
`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await writeFile(ERRORS_DOC, errorsMarkdown());
  console.log(`wrote ${ERRORS_DOC}`);
}
