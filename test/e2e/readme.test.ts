/**
 * The README's curl session, run as written against a real server process: a newcomer who pastes it gets
 * a processed image. Only the address changes (the test's server listens on a free port).
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { look } from '../helpers/images.js';
import { startServer, type ServerProcess } from '../helpers/server-process.js';

/** The first `bash` block under "## A session with curl". */
async function readmeSession(): Promise<string> {
  const readme = await readFile('README.md', 'utf8');
  const section = readme.slice(readme.indexOf('## A session with curl'));
  const block = /```bash\n([\s\S]*?)```/.exec(section);
  if (!block?.[1]) throw new Error('README has no bash block under "A session with curl"');
  return block[1];
}

/** Code with its whitespace and import lines left out, for comparing a block with its compiled copy. */
const bare = (code: string) =>
  code
    .split('\n')
    .filter((line) => !/^\s*import /.test(line))
    .join('')
    .replace(/\s+/g, '')
    // Prettier's trailing commas are no difference.
    .replace(/,([)\]}])/g, '$1');

describe('the README', () => {
  it('shows the typed-client example that test/client-types.ts compiles under strict', async () => {
    const readme = await readFile('README.md', 'utf8');
    const shown = /## From code: the typed client[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    const compiled = /\/\/ README:begin\n([\s\S]*?)\/\/ README:end/.exec(await readFile('test/client-types.ts', 'utf8'))?.[1];
    expect(shown).toBeDefined();
    expect(bare(shown!)).toBe(bare(compiled!));
  });

  let server: ServerProcess;
  let work: string;

  beforeAll(async () => {
    server = await startServer();
    // The session runs from the repository's folder; a copy of what it reads keeps the checkout clean.
    work = await mkdtemp(join(tmpdir(), 'readme-session-'));
    await mkdir(join(work, 'docs'));
    await copyFile('docs/example.jpg', join(work, 'docs/example.jpg'));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(server.dir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('leads from an upload to a processed image with the commands it shows', async () => {
    const session = (await readmeSession()).replaceAll('localhost:8000', new URL(server.baseUrl).host);
    expect(session).toContain('docs/example.jpg');
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', session], { cwd: work, timeout: 60_000 });

    const result = await look(await readFile(join(work, 'small.jpg')));
    expect([result.format, result.width, result.height]).toEqual(['jpeg', 300, 200]);
    expect(stdout).toContain('"status":"completed"');
    expect(stdout).toContain('"filename":"example.jpg"');
    expect(stdout).toContain('width must be an integer from 1 to 8192, got 0');
  }, 90_000);
});
