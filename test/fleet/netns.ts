/**
 * @module
 * Separate hosts on one machine for the fleet test: a network namespace per host, each with a veth pair whose
 * other end is on a bridge in the root namespace (which the test's client uses). Addresses are in a /24 the
 * test picks itself; nothing is routed anywhere else. `destroy()` removes every namespace, link and bridge,
 * and is safe to call twice (and after a failure half-way through setting up).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';

export interface Host {
  name: string;
  /** The namespace's name. */
  ns: string;
  ip: string;
  /** The host end of its veth pair, in the root namespace (set down to cut the host off). */
  link: string;
}

export interface FleetNetwork {
  hosts: Record<string, Host>;
  /** The bridge's own address (the client's, in the root namespace). */
  gateway: string;
  /** Starts `command` inside the host's namespace. */
  spawn(host: string, command: string, args: string[], env: Record<string, string>): ChildProcess;
  /** Cuts the host off the network (its link goes down), or restores it. */
  cut(host: string): void;
  restore(host: string): void;
  destroy(): void;
}

function ip(...args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr.trim()}`);
}

/** Removes what a fleet run that was killed outright (no cleanup ran) left: its namespaces, links and bridge. */
export function removeStaleFleetNetworks(): void {
  const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((name) => /^fl[0-9a-f]{4}-/.test(name));
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
  const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .stdout.split('\n')
    .map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1])
    .filter((name): name is string => !!name && /^(fb|fv)[0-9a-f]{4}\d*$/.test(name));
  for (const link of links) spawnSync('ip', ['link', 'del', link]);
}

/** Makes one namespace per name, all on one new bridge, with addresses .2, .3, ... of a fresh /24. */
export function createFleetNetwork(names: string[]): FleetNetwork {
  const tag = randomInt(0x1000, 0xffff).toString(16);
  const subnet = `10.213.${randomInt(100, 200)}`;
  const bridge = `fb${tag}`;
  const made: { namespaces: string[]; links: string[]; bridge?: string } = { namespaces: [], links: [] };
  const hosts: Record<string, Host> = {};
  const destroy = () => {
    for (const ns of made.namespaces.splice(0)) spawnSync('ip', ['netns', 'del', ns]);
    for (const link of made.links.splice(0)) spawnSync('ip', ['link', 'del', link]);
    if (made.bridge) spawnSync('ip', ['link', 'del', made.bridge]);
    made.bridge = undefined;
  };
  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    made.bridge = bridge;
    ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    names.forEach((name, index) => {
      const ns = `fl${tag}-${name}`;
      const outside = `fv${tag}${index}`;
      const inside = `fi${tag}${index}`;
      ip('netns', 'add', ns);
      made.namespaces.push(ns);
      ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
      made.links.push(outside);
      ip('link', 'set', inside, 'netns', ns);
      ip('link', 'set', outside, 'master', bridge);
      ip('link', 'set', outside, 'up');
      const address = `${subnet}.${index + 2}`;
      ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${address}/24`, 'dev', inside);
      ip('netns', 'exec', ns, 'ip', 'link', 'set', inside, 'up');
      ip('netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up');
      hosts[name] = { name, ns, ip: address, link: outside };
    });
  } catch (error) {
    destroy();
    throw error;
  }
  return {
    hosts,
    gateway: `${subnet}.1`,
    spawn: (host, command, args, env) =>
      spawn('ip', ['netns', 'exec', hosts[host]!.ns, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
    cut: (host) => ip('link', 'set', hosts[host]!.link, 'down'),
    restore: (host) => ip('link', 'set', hosts[host]!.link, 'up'),
    destroy,
  };
}
