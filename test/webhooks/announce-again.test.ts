/**
 * A job-end message the outbox could not take (embedded: a full disk under STATE_DIR) is tried again on a
 * timer until it goes through, instead of waiting for the next start; the failure still reaches the runner.
 */
import { describe, expect, it } from 'vitest';
import { EmbeddedJobStore } from '../../src/adapters/embedded-job-store.js';
import type { WebhookOutbox } from '../../src/ports.js';
import type { WebhookMessage } from '../../src/webhooks/delivery.js';
import { announcingAgain, createJobEndAnnouncer } from '../../src/webhooks/events.js';
import { fileRecord, jobRecord } from '../helpers/records.js';

/** An outbox (a port of ours) that refuses while `full` is set, as the embedded one does on ENOSPC. */
function outbox() {
  const kept = new Map<string, WebhookMessage>();
  const box = {
    full: true as boolean,
    kept,
    async enqueue(message: WebhookMessage) {
      if (box.full) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      if (!kept.has(message.processingId)) kept.set(message.processingId, message);
    },
    async state() {
      return undefined;
    },
  } satisfies WebhookOutbox & { full: boolean; kept: Map<string, WebhookMessage> };
  return box;
}

async function endedJob(jobs: EmbeddedJobStore) {
  const file = fileRecord();
  await jobs.putFile(file);
  const job = jobRecord(file.file_id, {
    status: 'completed',
    notify_url: 'https://hooks.example/in',
    completed_at: new Date().toISOString(),
  });
  await jobs.putJob(job);
  return job.processing_id;
}

const until = async (check: () => boolean, timeoutMs = 3000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('announcing a job end again', () => {
  it('keeps a refused message and queues it once the outbox takes messages again', async () => {
    const jobs = EmbeddedJobStore.inMemory();
    const box = outbox();
    const errors: Error[] = [];
    const again = announcingAgain(createJobEndAnnouncer({ jobs, outbox: box }), { everyMs: 50, onError: (error) => errors.push(error) });
    try {
      const [first, second] = [await endedJob(jobs), await endedJob(jobs)];
      await expect(again.announce(first)).rejects.toThrow('ENOSPC');
      await expect(again.announce(second)).rejects.toThrow('ENOSPC');
      expect(again.waiting()).toBe(2);
      // Still full: the tries fail, are reported, and keep both.
      await until(() => errors.length >= 2);
      expect(again.waiting()).toBe(2);
      box.full = false;
      await until(() => again.waiting() === 0);
      expect([...box.kept.keys()].sort()).toEqual([first, second].sort());
      expect(box.kept.get(first)).toMatchObject({ type: 'job.completed', url: 'https://hooks.example/in' });
    } finally {
      again.stop();
    }
  });

  it('a message that went through is not kept for another try', async () => {
    const jobs = EmbeddedJobStore.inMemory();
    const box = outbox();
    box.full = false;
    const again = announcingAgain(createJobEndAnnouncer({ jobs, outbox: box }), { everyMs: 50 });
    try {
      await again.announce(await endedJob(jobs));
      expect(again.waiting()).toBe(0);
      expect(box.kept.size).toBe(1);
    } finally {
      again.stop();
    }
  });
});
