import { embeddedHarness } from '../helpers/harness.js';
import { contractSuite } from './suite.js';

contractSuite('embedded default', embeddedHarness);
