/** Fails a test file that leaves a BullMQ worker running. */
import { afterAll, expect } from 'vitest';
import { openWorkerCount } from '../redis/queue.js';

afterAll(() => {
  expect(openWorkerCount(), 'a worker was left running: close it in the test').toBe(0);
});
