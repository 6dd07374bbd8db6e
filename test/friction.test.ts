/**
 * Friction a new user met (issue 15), each fixed and checked through a run, the API or the
 * command line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPeer, type Peer } from './helpers/peer.js';
import { fn, runOnce } from './helpers/run.js';

let peer: Peer;
beforeAll(async () => {
  peer = await startPeer();
  peer.on('POST', '/orders', () => ({ status: 422, json: { error: 'sku XY-1 is unknown', token: 'tok-secret-77' } }));
  peer.on('GET', '/huge', () => ({ status: 500, text: 'x'.repeat(10_000) }));
});
afterAll(async () => {
  await peer.close();
});

describe('a Connector HTTP error keeps its status and body for a Catch', () => {
  const doc = (url: string) => ({
    connections: { api: { baseUrl: peer.base, auth: { type: 'bearer', token: '${env:API_TOKEN}' } } },
    start: 'call',
    nodes: [
      { id: 'call', type: 'connector', connection: 'api', method: url === '/orders' ? 'POST' : 'GET', url, retry: { attempts: 1 } },
      { id: 'oops', type: 'catch', next: 'out' },
      fn('out', 'return { payload: msg.error };'),
    ],
  });

  it('puts status and the (redacted) body at msg.error', async () => {
    const run = await runOnce(doc('/orders'), { sku: 'XY-1' }, { env: { API_TOKEN: 'tok-secret-77' } });
    expect(run.status).toBe('succeeded');
    const error = run.outputs[0]!.payload as { code: string; status: number; body: string; nodeId: string };
    expect(error).toMatchObject({ nodeId: 'call', code: 'HTTP_ERROR', status: 422 });
    expect(JSON.parse(error.body)).toEqual({ error: 'sku XY-1 is unknown', token: '[redacted]' });
    expect(JSON.stringify(run)).not.toContain('tok-secret-77');
  });

  it('caps the body at 4096 characters with a marker', async () => {
    const run = await runOnce(doc('/huge'), null, { env: { API_TOKEN: 't' } });
    const error = run.outputs[0]!.payload as { status: number; body: string };
    expect(error.status).toBe(500);
    expect(error.body).toBe(`${'x'.repeat(4096)}…[truncated]`);
  });
});
