/**
 * @module
 * The service's SharpProcessor over an in-memory store, with a way to run one job on some bytes.
 */
import { MemoryStore } from '../../src/adapters/memory-store.js';
import { SharpProcessor } from '../../src/adapters/sharp-processor.js';
import type { InputFormat, OutputFormat } from '../../src/domain/formats.js';
import type { Operation } from '../../src/domain/operations.js';
import type { ProcessedImage } from '../../src/ports.js';

export const MIB = 2 ** 20;

export interface ProcessorHarness {
  processor: SharpProcessor;
  /** Uploads `input` (probed as an upload is) and runs one job on it. */
  run(
    input: Buffer,
    operations: Operation[],
    output?: OutputFormat,
    inputFormat?: InputFormat,
    timeoutSeconds?: number,
    use?: (image: ProcessedImage) => Promise<ProcessedImage>,
  ): Promise<ProcessedImage>;
}

export function processorHarness({ memoryBudgetBytes = 1024 * MIB, maxInputPixels = 50_000_000 } = {}): ProcessorHarness {
  const store = new MemoryStore({ maxBytes: 1024 * MIB });
  const processor = new SharpProcessor(store, { maxInputPixels, memoryBudgetBytes });
  let counter = 0;
  return {
    processor,
    async run(input, operations, output = 'png', inputFormat = 'png', timeoutSeconds = 30, use = async (image) => image) {
      const fileId = `file-${++counter}`;
      const staged = await store.stage([input], { maxBytes: input.length, headBytes: input.length });
      // A file that is not what it claims has no header to probe: it still runs, and must fail as a job.
      const info = await processor.probe(staged, inputFormat).catch(() => ({ width: 1, height: 1, pages: 1, channels: 4 }));
      await store.commitUpload(staged.stagingKey, fileId);
      return processor.process(
        {
          fileId,
          input: { format: inputFormat, ...info, size_bytes: input.length },
          operations,
          output: { format: output, quality: 90 },
          keepMetadata: false,
          timeoutSeconds,
        },
        use,
      );
    },
  };
}
