import { afterAll } from 'vitest';
import { s3Harness } from '../helpers/harness.js';
import { startS3 } from '../helpers/s3-server.js';
import { contractSuite } from './suite.js';

// A real S3-protocol server, started here; if it cannot start, this file fails (there is no skip).
const s3 = await startS3();
afterAll(() => s3.stop());

contractSuite('S3 store', s3Harness(s3));
