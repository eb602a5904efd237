/**
 * @module
 * The job store in Redis, shared by every API and worker process:
 * - `<p>:file:<id>`  upload record (JSON string), expiring after the retention period;
 * - `<p>:files`      sorted set of upload ids by upload time (ms), the `/list` index;
 * - `<p>:job:<id>`   job record, a hash of JSON-encoded fields so a status change is one atomic HSET;
 * - `<p>:jobs`       sorted set of processing ids by creation time (ms), the `/tasks` index: written with the
 *   record (one script or MULTI), trimmed by the retention sweep, and a listing drops ids whose record expired;
 * - `<p>:task:<file_id>` the processing id `POST /upload-image/` started for that upload, expiring with it;
 * - `<p>:cache:<k>`  processing id of a completed job with that result, expiring with the result.
 * - `<p>:pending:<file_id>` set of the upload's unfinished jobs: the sweep keeps an upload a job still needs.
 * - `<p>:computing:<k>` the processing id computing that result now (a claim with a TTL).
 * - `<p>:sweeping`   sorted set of uploads a sweep has taken (by when): their records are gone, their bytes
 *   are being deleted; an entry older than a minute is an interrupted sweep's, and the next one takes it.
 * - `<p>:changes`    pub/sub channel: `<processing id> <record as JSON>` each time a job's status moves, for
 *   `?wait=` waiters and status streams in any API process.
 * - `<p>:finished`   pub/sub channel: the processing id of each job that has just ended. The previous release
 *   listened only here: it is still published, and still heard, so a rolling deploy's mixed fleet wakes its
 *   waiters at once both ways.
 */
import type { Redis } from 'ioredis';
import { isFinished, type FileRecord, type JobCursor, type JobRecord, type ListCursor } from '../domain/jobs.js';
import { ChangeListeners, type ChangeListener } from '../domain/change-listeners.js';
import type { FilePage, JobPage, JobStore } from '../ports.js';
import { notFound } from '../domain/errors.js';
import { guarded } from './redis-connection.js';

/**
 * A compare-and-set: HSET only if the job still exists (a sweep or expiry may have removed it) and may move
 * to the new status (ARGV[1], JSON-encoded, or '' to keep it): forward only, never from completed or
 * failed (as `canMove`). A job that ends leaves its upload's pending set (ARGV[2] is that key's prefix).
 * Returns the record as it now is, applied or not.
 */
/** How many times a `/tasks` page is read again after dropping expired entries it met. */
const MAX_LIST_ROUNDS = 4;

const UPDATE_IF_ALLOWED = `
if redis.call('exists', KEYS[1]) == 0 then return false end
local rank = { ['"queued"'] = 0, ['"processing"'] = 1, ['"completed"'] = 2, ['"failed"'] = 2 }
local current = redis.call('hget', KEYS[1], 'status')
local from = rank[current or '"queued"'] or 0
local allowed = from < 2 and (ARGV[1] == '' or (rank[ARGV[1]] or -1) >= from)
if allowed then
  redis.call('hset', KEYS[1], unpack(ARGV, 3))
  if (rank[ARGV[1]] or 0) == 2 then
    local file = redis.call('hget', KEYS[1], 'file_id')
    local id = redis.call('hget', KEYS[1], 'processing_id')
    if file and id then redis.call('srem', ARGV[2] .. cjson.decode(file), cjson.decode(id)) end
  end
end
return redis.call('hgetall', KEYS[1])`;

/**
 * Takes due uploads atomically: those before the cutoff (ARGV[1], exclusive) with an empty pending set, up
 * to ARGV[2], after any an interrupted sweep left in KEYS[2] (older than ARGV[4] - 60 s). Their records
 * and index entries go, and they are marked in KEYS[2] (at ARGV[4]). ARGV[3] is the key prefix.
 */
const TAKE_DUE = `
local limit = tonumber(ARGV[2])
local taken = redis.call('zrangebyscore', KEYS[2], '-inf', tonumber(ARGV[4]) - 60000, 'LIMIT', 0, limit)
local fresh = {}
local offset = 0
while #taken + #fresh < limit and offset < limit * 20 do
  local ids = redis.call('zrangebyscore', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', offset, limit)
  for _, id in ipairs(ids) do
    if #taken + #fresh < limit and redis.call('scard', ARGV[3] .. 'pending:' .. id) == 0 then table.insert(fresh, id) end
  end
  offset = offset + #ids
  if #ids < limit then break end
end
for _, id in ipairs(fresh) do
  redis.call('zrem', KEYS[1], id)
  redis.call('del', ARGV[3] .. 'file:' .. id)
  table.insert(taken, id)
end
for _, id in ipairs(taken) do redis.call('zadd', KEYS[2], ARGV[4], id) end
return taken`;

/**
 * Records an unfinished job only while its upload's record exists (a sweep may have just taken it), and
 * indexes it in KEYS[4] at its creation time (ARGV[3], ms).
 */
const PUT_PENDING_JOB = `
if redis.call('exists', KEYS[2]) == 0 then return 0 end
redis.call('hset', KEYS[1], unpack(ARGV, 4))
redis.call('expire', KEYS[1], ARGV[1])
redis.call('zadd', KEYS[4], ARGV[3], ARGV[2])
redis.call('sadd', KEYS[3], ARGV[2])
redis.call('expire', KEYS[3], ARGV[1])
redis.call('expire', KEYS[2], ARGV[1])
return 1`;

/** Deletes a claim only if it is still this job's. */
const RELEASE_IF_HELD = `
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;

type ScriptedRedis = Redis & {
  updateJobIfAllowed(key: string, status: string, pendingPrefix: string, ...fieldsAndValues: string[]): Promise<string[] | null>;
  releaseIfHeld(key: string, holder: string): Promise<number>;
  takeDue(files: string, sweeping: string, cutoffMs: string, limit: string, prefix: string, nowMs: string): Promise<string[]>;
  putPendingJob(
    job: string,
    file: string,
    pending: string,
    index: string,
    ttl: string,
    processingId: string,
    createdMs: string,
    ...fieldsAndValues: string[]
  ): Promise<number>;
};

export class RedisJobStore implements JobStore {
  private readonly redis: ScriptedRedis;
  private readonly listeners = new ChangeListeners();
  /** Opened at the first `onChange` (a worker process never needs one). */
  private subscriber: Redis | undefined;

  /** `openSubscriber` gives a connection for pub/sub (see `connectRedis(url, 'events')`). */
  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly ttlSeconds: number,
    private readonly openSubscriber?: () => Redis,
  ) {
    redis.defineCommand('updateJobIfAllowed', { numberOfKeys: 1, lua: UPDATE_IF_ALLOWED });
    redis.defineCommand('releaseIfHeld', { numberOfKeys: 1, lua: RELEASE_IF_HELD });
    redis.defineCommand('takeDue', { numberOfKeys: 2, lua: TAKE_DUE });
    redis.defineCommand('putPendingJob', { numberOfKeys: 4, lua: PUT_PENDING_JOB });
    this.redis = redis as ScriptedRedis;
  }

  onChange(processingId: string, listener: ChangeListener): () => void {
    if (!this.subscriber && this.openSubscriber) this.subscriber = this.subscribe(this.openSubscriber());
    return this.listeners.add(processingId, listener);
  }

  private subscribe(subscriber: Redis): Redis {
    const changes = this.key('changes');
    const finished = this.key('finished');
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === finished) return this.listeners.notify(message, undefined);
      if (channel !== changes) return;
      const space = message.indexOf(' ');
      const processingId = message.slice(0, space);
      // Every API process hears every job's changes; only those someone follows are decoded.
      if (space > 0 && this.listeners.has(processingId)) this.listeners.notify(processingId, parseRecord(message.slice(space + 1)));
    });
    // A listener that read before its subscription was in place, or while a reconnection was under way, may
    // have missed a notice: each reads again once the subscription is (again) in place. ioredis subscribes
    // again on reconnecting before anything queued after it, so a PING answered means the channels are back.
    const readAgain = () => this.listeners.notifyAll();
    let connectedBefore = subscriber.status === 'ready';
    subscriber.on('ready', () => {
      if (connectedBefore) subscriber.ping().then(readAgain, () => undefined);
      connectedBefore = true;
    });
    // A failure is the connection's, reported by its 'error' listener; it subscribes again on reconnecting.
    subscriber.subscribe(changes, finished).then(readAgain, () => undefined);
    return subscriber;
  }

  /** Closes the subscriber, if one was opened. */
  disconnect(): void {
    this.subscriber?.disconnect();
  }

  private key(...parts: string[]): string {
    return [this.prefix, ...parts].join(':');
  }

  putFile(file: FileRecord): Promise<void> {
    return guarded(async () => {
      await this.redis
        .multi()
        .set(this.key('file', file.file_id), JSON.stringify(file), 'EX', this.ttlSeconds)
        .zadd(this.key('files'), Date.parse(file.uploaded_at), file.file_id)
        .exec();
    });
  }

  getFile(fileId: string): Promise<FileRecord | undefined> {
    return guarded(async () => {
      const text = await this.redis.get(this.key('file', fileId));
      return text ? (JSON.parse(text) as FileRecord) : undefined;
    });
  }

  listFiles(limit: number, after?: ListCursor): Promise<FilePage> {
    return guarded(async () => {
      const ids = await this.idsAfter(this.key('files'), limit + 1, after && { ms: Date.parse(after.uploaded_at), id: after.file_id });
      const page = ids.slice(0, limit);
      const texts = page.length ? await this.redis.mget(page.map((id) => this.key('file', id))) : [];
      const items = texts.filter((text): text is string => text !== null).map((text) => JSON.parse(text) as FileRecord);
      return { items, total: await this.redis.zcard(this.key('files')), hasMore: ids.length > limit };
    });
  }

  /**
   * Up to `count` ids of the index sorted set, newest first, strictly after the cursor (its time in ms and
   * its id: ties at one millisecond are ordered by id).
   */
  private async idsAfter(index: string, count: number, after?: { ms: number; id: string }): Promise<string[]> {
    const afterMs = after?.ms;
    if (afterMs !== undefined && Number.isNaN(afterMs)) return [];
    const ids: string[] = [];
    for (let offset = 0; ids.length < count;) {
      const batch = await this.redis.zrevrangebyscore(index, afterMs ?? '+inf', '-inf', 'WITHSCORES', 'LIMIT', offset, count + 16);
      if (batch.length === 0) break;
      for (let i = 0; i < batch.length; i += 2) {
        const id = batch[i]!;
        const newerOrSame = afterMs !== undefined && Number(batch[i + 1]) === afterMs && id >= after!.id;
        if (!newerOrSame && ids.length < count) ids.push(id);
      }
      offset += batch.length / 2;
    }
    return ids;
  }

  async putJob(job: JobRecord): Promise<void> {
    if (isFinished(job.status)) {
      return guarded(async () => {
        await this.redis
          .multi()
          .hset(this.key('job', job.processing_id), encode(job))
          .expire(this.key('job', job.processing_id), this.ttlSeconds)
          .zadd(this.key('jobs'), Date.parse(job.created_at), job.processing_id)
          .exec();
      });
    }
    // The upload is needed until this job ends (its pending set), and its record lives on for another
    // retention period; all at once, and only while the record exists.
    const recorded = await guarded(() =>
      this.redis.putPendingJob(
        this.key('job', job.processing_id),
        this.key('file', job.file_id),
        this.key('pending', job.file_id),
        this.key('jobs'),
        String(this.ttlSeconds),
        job.processing_id,
        String(Date.parse(job.created_at)),
        ...Object.entries(encode(job)).flat(),
      ),
    );
    if (!recorded) throw notFound('file_not_found', `no upload has file_id ${job.file_id} (it has just been removed by retention)`);
  }

  getJob(processingId: string): Promise<JobRecord | undefined> {
    return guarded(async () => decode(await this.redis.hgetall(this.key('job', processingId))));
  }

  listJobs(limit: number, after?: JobCursor): Promise<JobPage> {
    return guarded(async () => {
      // Expired entries are dropped as they are met; the page is then read again, so a page of expired ids
      // does not end the listing early (a few rounds at most: each round removes what it met).
      for (let round = 1; ; round++) {
        const { page, expired } = await this.jobPage(limit, after);
        if (expired === 0 || page.items.length === limit || !page.hasMore || round === MAX_LIST_ROUNDS) return page;
      }
    });
  }

  private async jobPage(limit: number, after?: JobCursor): Promise<{ page: JobPage; expired: number }> {
    const index = this.key('jobs');
    const ids = await this.idsAfter(index, limit + 1, after && { ms: Date.parse(after.created_at), id: after.processing_id });
    const page = ids.slice(0, limit);
    const pipeline = this.redis.pipeline();
    for (const id of page) pipeline.hgetall(this.key('job', id));
    const replies = page.length ? ((await pipeline.exec()) ?? []) : [];
    const items: JobRecord[] = [];
    const expired: string[] = [];
    replies.forEach(([error, fields], i) => {
      if (error) throw error;
      const job = decode(fields as Record<string, string>);
      if (job) items.push(job);
      else expired.push(page[i]!);
    });
    // A record is written with its index entry, so one missing has expired: its entry goes too.
    if (expired.length) await this.redis.zrem(index, ...expired);
    return { page: { items, total: await this.redis.zcard(index), hasMore: ids.length > limit }, expired: expired.length };
  }

  linkTask(fileId: string, processingId: string): Promise<void> {
    return guarded(async () => {
      await this.redis.set(this.key('task', fileId), processingId, 'EX', this.ttlSeconds);
    });
  }

  taskOf(fileId: string): Promise<string | undefined> {
    return guarded(async () => (await this.redis.get(this.key('task', fileId))) ?? undefined);
  }

  updateJob(processingId: string, patch: Partial<JobRecord>): Promise<JobRecord | undefined> {
    return guarded(async () => {
      const fields = Object.entries(encode(patch)).flat();
      if (fields.length === 0) return this.getJob(processingId);
      const flat = await this.redis.updateJobIfAllowed(
        this.key('job', processingId),
        patch.status ? JSON.stringify(patch.status) : '',
        this.key('pending', ''),
        ...fields,
      );
      if (!flat) return undefined;
      const record: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!;
      const job = decode(record);
      if (job && patch.status && job.status === patch.status) {
        // Best effort: a listener that misses the notice finds the state at its next read.
        const notices = this.redis.pipeline().publish(this.key('changes'), `${processingId} ${JSON.stringify(job)}`);
        if (isFinished(job.status)) notices.publish(this.key('finished'), processingId);
        await notices.exec().catch(() => undefined);
      }
      return job;
    });
  }

  findCompleted(cacheKey: string): Promise<string | undefined> {
    return guarded(async () => (await this.redis.get(this.key('cache', cacheKey))) ?? undefined);
  }

  markCompleted(cacheKey: string, processingId: string): Promise<void> {
    return guarded(async () => {
      await this.redis.set(this.key('cache', cacheKey), processingId, 'EX', this.ttlSeconds);
    });
  }

  claimCompute(cacheKey: string, processingId: string, ttlSeconds: number): Promise<string> {
    return guarded(async () => {
      for (;;) {
        if ((await this.redis.set(this.key('computing', cacheKey), processingId, 'EX', ttlSeconds, 'NX')) === 'OK') return processingId;
        const holder = await this.redis.get(this.key('computing', cacheKey));
        if (holder) return holder;
      }
    });
  }

  releaseCompute(cacheKey: string, processingId: string): Promise<void> {
    return guarded(async () => {
      await this.redis.releaseIfHeld(this.key('computing', cacheKey), processingId);
    });
  }

  takeDueUploads(cutoff: Date, limit: number): Promise<string[]> {
    return guarded(() =>
      this.redis.takeDue(
        this.key('files'),
        this.key('sweeping'),
        String(cutoff.getTime()),
        String(limit),
        this.key(''),
        String(Date.now()),
      ),
    );
  }

  forgetUploads(fileIds: string[]): Promise<void> {
    return guarded(async () => {
      if (fileIds.length === 0) return;
      // Job and cache keys expire by themselves; the index, the upload records and the sweep's marks go now.
      await this.redis
        .multi()
        .zrem(this.key('files'), ...fileIds)
        .zrem(this.key('sweeping'), ...fileIds)
        .del(...fileIds.map((id) => this.key('file', id)), ...fileIds.map((id) => this.key('task', id)))
        .exec();
    });
  }

  /** Job records expire by themselves (after the retention period); their `/tasks` entries go here. */
  forgetJobsBefore(cutoff: Date): Promise<number> {
    return guarded(async () => {
      await this.redis.zremrangebyscore(this.key('jobs'), '-inf', `(${cutoff.getTime()}`);
      return 0;
    });
  }
}

function encode(record: Partial<JobRecord>): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(record)) if (value !== undefined) fields[name] = JSON.stringify(value);
  return fields;
}

function decode(fields: Record<string, string>): JobRecord | undefined {
  if (Object.keys(fields).length === 0) return undefined;
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(fields)) record[name] = JSON.parse(value);
  return record as unknown as JobRecord;
}

/** A record as a `changes` notice carries it; `undefined` (the listener reads it) when it is not one. */
function parseRecord(json: string): JobRecord | undefined {
  try {
    const record = JSON.parse(json) as JobRecord | null;
    return record && typeof record === 'object' && typeof record.status === 'string' ? record : undefined;
  } catch {
    return undefined;
  }
}
