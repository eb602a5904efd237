/**
 * @module
 * A client of the API in the seed's style, over any `request` function (app.request or fetch).
 */
import { expect } from 'vitest';

type Send = (path: string, init?: RequestInit) => Promise<Response>;

export function multipart(bytes: Uint8Array, filename: string, field = 'file'): FormData {
  const form = new FormData();
  form.append(field, new Blob([bytes as Uint8Array<ArrayBuffer>]), filename);
  return form;
}

export async function upload(send: Send, bytes: Uint8Array, filename: string) {
  const response = await send('/upload', { method: 'POST', body: multipart(bytes, filename) });
  const body = (await response.json()) as Record<string, unknown>;
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body as { file_id: string; filename: string; format: string; width: number; height: number; size_bytes: number; sha256: string };
}

export async function submit(send: Send, fileId: string, request: string | object) {
  const response =
    typeof request === 'string'
      ? await send(`/process/${fileId}?${request}`, { method: 'POST' })
      : await send(`/process/${fileId}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(request),
        });
  const body = (await response.json()) as Record<string, unknown>;
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body as { processing_id: string; status: string; cached: boolean; output: { format: string; quality: number } };
}

export interface JobView {
  status: string;
  result?: { format: string; width: number; height: number; size_bytes: number; sha256: string };
  error?: { code: string; message: string };
  [key: string]: unknown;
}

/** Polls `/status` until the job is completed or failed (the seed client's loop). */
export async function waitForJob(send: Send, processingId: string, timeoutMs = 20_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await send(`/status/${processingId}`);
    expect(response.status).toBe(200);
    const job = (await response.json()) as JobView;
    if (job.status === 'completed' || job.status === 'failed') return job;
    if (Date.now() > deadline) throw new Error(`job ${processingId} still ${job.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function download(send: Send, processingId: string): Promise<{ response: Response; bytes: Uint8Array }> {
  const response = await send(`/download/${processingId}`);
  expect(response.status).toBe(200);
  return { response, bytes: new Uint8Array(await response.arrayBuffer()) };
}

/** Upload, process, wait, download: the result's bytes and the finished job. */
export async function processToBytes(send: Send, bytes: Uint8Array, filename: string, request: string | object) {
  const file = await upload(send, bytes, filename);
  const accepted = await submit(send, file.file_id, request);
  const job = await waitForJob(send, accepted.processing_id);
  expect(job.status, JSON.stringify(job.error)).toBe('completed');
  return { file, job, ...(await download(send, accepted.processing_id)) };
}

export async function expectProblem(response: Response, status: number, code: string): Promise<Record<string, unknown>> {
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await response.json()) as Record<string, unknown>;
  expect({ status: response.status, code: body.code }, JSON.stringify(body)).toEqual({ status, code });
  expect(body.type).toBe(`/problems/${code}`);
  expect(body.request_id).toBe(response.headers.get('x-request-id'));
  expect(typeof body.detail).toBe('string');
  expect(JSON.stringify(body)).not.toMatch(/\/(tmp|work|home|root|usr)\/|at .*\.ts:\d+/);
  return body;
}
