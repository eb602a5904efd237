/**
 * `JobStore.onChange`: every status move reaches the job's listeners with the record as it then stood, in
 * both stores; in Redis mode across processes (two connections here), again after the subscriber's
 * connection drops, and from a process of the previous release that publishes only `<p>:finished`.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedJobStore } from '../../src/adapters/embedded-job-store.js';
import { RedisJobStore } from '../../src/adapters/redis-job-store.js';
import type { JobRecord } from '../../src/domain/jobs.js';
import type { JobStore } from '../../src/ports.js';
import { fileRecord, jobRecord } from '../helpers/records.js';
import { releaseTestRedis, testRedis } from '../helpers/redis.js';

const redis = await testRedis();
const prefixes: string[] = [];
const clients: Redis[] = [];
afterAll(() => releaseTestRedis(redis, { clients, prefixes }));

function client(name?: string): Redis {
  const opened = new Redis(redis!.url, name ? { connectionName: name } : {});
  clients.push(opened);
  return opened;
}

/** A writer and a listener: one store in the embedded mode; two processes' stores on one Redis otherwise. */
type Pair = { writer: JobStore; listener: JobStore; prefix?: string; subscriber?: Redis };
const pairs: Array<[string, () => Pair]> = [
  [
    'embedded',
    () => {
      const store = EmbeddedJobStore.inMemory();
      return { writer: store, listener: store };
    },
  ],
];
if (redis) {
  pairs.push([
    'Redis',
    () => {
      const prefix = `changes-${randomUUID().slice(0, 8)}`;
      prefixes.push(prefix);
      const subscriber = client(`${prefix}-events`);
      return {
        prefix,
        subscriber,
        writer: new RedisJobStore(client(), prefix, 3600),
        listener: new RedisJobStore(client(), prefix, 3600, () => subscriber),
      };
    },
  ]);
}

/** Collects what `store` tells of `processingId`; `until(n)` waits for the n-th notice (bounded). */
function listen(store: JobStore, processingId: string) {
  const heard: Array<JobRecord | undefined> = [];
  let wake = () => {};
  const stop = store.onChange(processingId, (job) => {
    heard.push(job);
    wake();
  });
  return {
    heard,
    stop,
    /** Waits for `count` notices (`records`: that carry a record), and answers those. */
    async until(count: number, timeoutMs = 3000, records = false) {
      const deadline = Date.now() + timeoutMs;
      const counted = () => (records ? heard.filter(Boolean) : heard);
      while (counted().length < count) {
        if (Date.now() > deadline) throw new Error(`heard ${JSON.stringify(heard)}, expected ${count}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
      return counted();
    },
  };
}

/** Waits until the listener's subscription is in place (a Redis SUBSCRIBE takes a round trip). */
async function subscribed(pair: Pair) {
  if (!pair.subscriber) return;
  const deadline = Date.now() + 10_000;
  const channel = `${pair.prefix}:changes`;
  const probe = client();
  while (((await probe.pubsub('NUMSUB', channel)) as [string, number])[1] < 1) {
    if (Date.now() > deadline) throw new Error(`the listener never subscribed (its connection: ${pair.subscriber.status})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(pairs)('%s job store: onChange', (_name, open) => {
  it('tells each status move with the record as it then stood, in order; other patches tell nothing', async () => {
    const pair = open();
    const file = fileRecord();
    await pair.writer.putFile(file);
    const job = jobRecord(file.file_id);
    await pair.writer.putJob(job);
    const heard = listen(pair.listener, job.processing_id);
    await subscribed(pair);
    const started = new Date().toISOString();
    await pair.writer.updateJob(job.processing_id, { status: 'processing', started_at: started });
    await pair.writer.updateJob(job.processing_id, { duration_ms: 5 });
    await pair.writer.updateJob(job.processing_id, { status: 'completed', completed_at: started });
    // Redis also tells a job's end on the previous release's channel, without a record: counted apart.
    const notices = await heard.until(2, 3000, true);
    expect(notices.map((record) => record?.status)).toEqual(['processing', 'completed']);
    expect(notices[0]).toMatchObject({ processing_id: job.processing_id, started_at: started });
    expect(notices[1]).toMatchObject({ duration_ms: 5, completed_at: started });
    heard.stop();
  });

  it('tells only the job listened for, and nothing once unsubscribed', async () => {
    const pair = open();
    const file = fileRecord();
    await pair.writer.putFile(file);
    const [followed, other] = [jobRecord(file.file_id), jobRecord(file.file_id)];
    await pair.writer.putJob(followed);
    await pair.writer.putJob(other);
    const heard = listen(pair.listener, followed.processing_id);
    await subscribed(pair);
    await pair.writer.updateJob(other.processing_id, { status: 'processing' });
    await pair.writer.updateJob(followed.processing_id, { status: 'processing' });
    expect((await heard.until(1, 3000, true)).map((record) => record?.processing_id)).toEqual([followed.processing_id]);
    heard.stop();
    await pair.writer.updateJob(followed.processing_id, { status: 'failed' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(heard.heard.filter(Boolean)).toHaveLength(1);
  });
});

describe.runIf(redis)('Redis job store: onChange in a fleet', () => {
  it('once subscribed, asks its listeners to read again (they may have read before the subscription was in place)', async () => {
    const pair = open();
    const heard = listen(pair.listener, 'c-job');
    expect(await heard.until(1)).toEqual([undefined]);
  });

  it("hears a previous release's finished notice (the id alone), and asks its listeners to read", async () => {
    const pair = open();
    const heard = listen(pair.listener, 'a-job');
    await subscribed(pair);
    await heard.until(1);
    heard.heard.length = 0;
    await client().publish(`${pair.prefix}:finished`, 'a-job');
    expect(await heard.until(1)).toEqual([undefined]);
  });

  it("still publishes the finished notice a previous release's processes wait for", async () => {
    const pair = open();
    const file = fileRecord();
    await pair.writer.putFile(file);
    const job = jobRecord(file.file_id);
    await pair.writer.putJob(job);
    const old = client();
    const messages: string[] = [];
    old.on('message', (_channel: string, message: string) => messages.push(message));
    await old.subscribe(`${pair.prefix}:finished`);
    await pair.writer.updateJob(job.processing_id, { status: 'processing' });
    await pair.writer.updateJob(job.processing_id, { status: 'completed' });
    const deadline = Date.now() + 3000;
    while (!messages.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(messages).toEqual([job.processing_id]);
  });

  it('after its connection drops and comes back, every listener is asked to read (notices may have been lost)', async () => {
    const pair = open();
    const heard = listen(pair.listener, 'b-job');
    await subscribed(pair);
    await heard.until(1);
    heard.heard.length = 0;
    // Redis closes the subscriber's connection, as a failover or a network blip would; ioredis reconnects.
    const list = (await client().client('LIST')) as string;
    const id = /(?:^|\n)id=(\d+) [^\n]* name=(\S+)/g;
    const mine = [...list.matchAll(id)].find((match) => match[2] === `${pair.prefix}-events`)?.[1];
    expect(mine).toBeDefined();
    await client().client('KILL', 'ID', mine!);
    expect(await heard.until(1, 5000)).toEqual([undefined]);
  });

  function open(): Pair {
    return pairs.find(([name]) => name === 'Redis')![1]();
  }
});
