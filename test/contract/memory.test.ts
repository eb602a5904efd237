import { memoryHarness } from '../helpers/harness.js';
import { contractSuite } from './suite.js';

contractSuite('memory store', memoryHarness);
