/**
 * `engines.node` in package.json says the truth: the lowest Node the service's own code and every production
 * dependency installed from package-lock.json declare they run on (dev tools such as @redocly/cli may want
 * more: they run in CI and on a developer's machine, not where the service is deployed).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

type Version = [number, number, number];

const read = (path: string) => JSON.parse(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')) as unknown;
const compare = (a: Version, b: Version) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
const show = (v: Version) => v.join('.');

/** The newest Node feature the code itself uses: process.loadEnvFile (src/entry.ts) arrived in 20.12.0. */
const CODE_NEEDS: Version = [20, 12, 0];

/** '20', '20.x', '20.9' and '20.9.0' as [20, 0, 0], [20, 0, 0], [20, 9, 0], [20, 9, 0]. */
function version(text: string): Version {
  const [major = 0, minor = 0, patch = 0] = text
    .replace(/^v/, '')
    .split('.')
    .map((part) => (/^\d+$/.test(part) ? Number(part) : 0));
  return [major, minor, patch];
}

/**
 * The lowest version a semver range admits (npm's range syntax as dependencies write `engines`: `||`
 * alternatives of `>=`, `>`, `^`, `~`, `=` or bare versions, an upper bound `<`/`<=` beside them).
 */
function lowest(range: string): Version {
  const floors = range.split('||').map((alternative) => {
    const comparators = alternative
      .trim()
      .replace(/([<>=^~]+)\s+/g, '$1')
      .split(/\s+/);
    const lower = comparators.filter((comparator) => !comparator.startsWith('<'));
    if (lower.length === 0) return version('0');
    return lower
      .map((comparator) => {
        const [, operator = '', text = ''] = /^([>=^~]*)(.*)$/.exec(comparator)!;
        const v = version(text);
        return operator === '>' ? ([v[0], v[1], v[2] + 1] as Version) : v;
      })
      .sort(compare)
      .at(-1)!;
  });
  return floors.sort(compare)[0]!;
}

interface LockEntry {
  version?: string;
  dev?: boolean;
  devOptional?: boolean;
  engines?: { node?: string } | string[];
}

describe('engines.node', () => {
  const declared = ((read('package.json') as { engines?: { node?: string } }).engines?.node ?? '').trim();
  const packages = (read('package-lock.json') as { packages: Record<string, LockEntry> }).packages;
  const production = Object.entries(packages)
    .filter(([path, entry]) => path !== '' && !entry.dev && !entry.devOptional)
    .flatMap(([path, entry]) => {
      const node = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      return node ? [{ name: `${path.replace(/^.*node_modules\//, '')}@${entry.version ?? '?'}`, floor: lowest(node), range: node }] : [];
    });

  it('is a plain lower bound, >=major.minor.patch', () => {
    expect(declared).toMatch(/^>=\d+\.\d+\.\d+$/);
  });

  it("is exactly the highest floor of the code's own needs and the production dependencies' engines", () => {
    expect(production.length).toBeGreaterThan(10);
    const demanding = production.reduce((top, dep) => (compare(dep.floor, top.floor) > 0 ? dep : top), {
      name: 'the code itself (process.loadEnvFile)',
      floor: CODE_NEEDS,
      range: `>=${show(CODE_NEEDS)}`,
    });
    expect({ declared, because: demanding.name }).toEqual({ declared: `>=${show(demanding.floor)}`, because: demanding.name });
  });

  it('parses the range forms dependencies use', () => {
    expect(lowest('>=20.9.0')).toEqual([20, 9, 0]);
    expect(lowest('^18 || >=20')).toEqual([18, 0, 0]);
    expect(lowest('^12.20.0 || ^14.13.1 || >=16.0.0')).toEqual([12, 20, 0]);
    expect(lowest('>= 10.x')).toEqual([10, 0, 0]);
    expect(lowest('>=14 <22')).toEqual([14, 0, 0]);
    expect(lowest('>0.4')).toEqual([0, 4, 1]);
    expect(lowest('*')).toEqual([0, 0, 0]);
  });
});
