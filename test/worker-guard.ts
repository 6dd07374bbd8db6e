/**
 * Fails a test file that leaves a BullMQ worker, a child process or a network connection
 * (Redis, HTTP) open after its last test: every test closes what it started.
 */
import { afterAll, expect } from 'vitest';
import { openWorkerCount } from '../redis/queue.js';

/** Resources that outlive a test file only when a test forgot to close them. */
const LEAKS = new Set(['ProcessWrap', 'TCPSocketWrap', 'TCPServerWrap']);

afterAll(async () => {
  expect(openWorkerCount(), 'a worker was left running: close it in the test').toBe(0);
  // Closing is asynchronous (sockets end, children exit): give it a moment before judging.
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = process.getActiveResourcesInfo().filter((r) => LEAKS.has(r));
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(left, 'a child process or connection was left open: close it in the test').toEqual([]);
});
