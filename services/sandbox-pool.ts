/**
 * The sandbox pool: Function code runs in a few sandbox host processes (`sandbox-host.ts`)
 * that this process supervises, like n8n's task runners. The caller's event loop is never
 * blocked: while a host computes, this process keeps executing other runs.
 *
 * - Batching: calls made in the same turn go to an idle host in one message, and a chain of
 *   Functions on one message (`runChain`) is one job, so a hop carries as much work as it can.
 *   Calls wait in one queue; a host takes work only when it is idle, so a host stuck in a long
 *   Function never holds calls another host could run. A message carries one tenant's calls,
 *   and one tenant's messages occupy at most `size + spareHosts` hosts, with one host more for
 *   the other tenants' calls: a tenant whose Functions compute for seconds never holds up
 *   another's. Calls for one message go before loop batches, which go alone (`sandbox-take.ts`).
 * - Hosts: started on demand, up to `size`, when more calls wait than hosts are free (a run's
 *   sequential calls keep to one host); when calls wait and every host has been busy for
 *   STUCK_MS (long Functions), a spare host starts (up to `spareHosts`), and stops once idle.
 * - Containment: a host that dies is replaced; its jobs run again (a kill from outside, or a
 *   batch whose culprit is unknown) or fail (the Function's own death), see `sandbox-process.ts`.
 *   A chain whose host died is run again step by step (a loop batch: iteration by iteration), so
 *   the failure lands on the step at fault.
 * - Belt and braces: a host that has not answered within its batch's timeouts plus a margin
 *   is killed (SIGKILL); its job fails with FUNCTION_TIMEOUT.
 */
import { availableParallelism } from 'node:os';
import { FlowError } from '../core/errors.js';
import { type ChainRequest, type ChainStep, type FunctionRequest, type FunctionSandbox, isOneMessage } from '../nodes/define.js';
import { MAX_TIMEOUT_MS, type SandboxOptions } from './sandbox.js';
import type { HostJob, HostReply, HostRequest } from './sandbox-host.js';
import { busy, type Host, hostEntry, idle, type Job, settleDeath, startHost } from './sandbox-process.js';
import { type Death, deathStep, fromRecords } from './sandbox-steps.js';
import { eligible, type TakeRules, takeJobs } from './sandbox-take.js';

/** Options of {@link createSandboxPool}. */
export interface SandboxPoolOptions {
  /** Most host processes (each started when more calls wait than hosts are free). Default min(2, available CPUs). */
  size?: number;
  /** Options of each host's isolates (warm isolates, compiled scripts, output cap). */
  sandbox?: SandboxOptions;
  /** Time a host may take beyond twice its batch's summed `timeoutMs` before it is killed, ms. Default 5000. */
  killMarginMs?: number;
  /** Most jobs sent to a host in one message. Default 64. */
  maxBatch?: number;
  /**
   * Hosts started beyond `size` when calls wait and every host has been busy for 250 ms (long
   * Functions must not hold up other runs' calls); each stops after 5 s idle. Default 2. One
   * tenant's calls occupy at most `size + spareHosts` hosts; one more may start for the calls
   * of other tenants.
   */
  spareHosts?: number;
}

/** Counters of a pool: hosts alive now; round trips (batches sent), hosts started and died (killed for time included) since creation. */
export interface SandboxPoolStats {
  hosts: number;
  hops: number;
  started: number;
  died: number;
  killedForTime: number;
}

export interface SandboxPool extends FunctionSandbox {
  runChain(req: ChainRequest): Promise<ChainStep[]>;
  stats(): SandboxPoolStats;
  /** Process ids of the live hosts (tests, diagnostics). */
  pids(): number[];
  /** Stops every host; calls still waiting fail with INTERNAL. */
  dispose(): Promise<void>;
}

/** Time every host must have been busy before a spare one starts, ms. */
const STUCK_MS = 250;
/** Wait after which a loop batch goes before calls for one message, ms. */
const LONG_WAIT_MS = 50;
/** Idle time after which a spare host stops, ms. */
const SPARE_IDLE_MS = 5000;

export function createSandboxPool(opts: SandboxPoolOptions = {}): SandboxPool {
  const size = Math.max(1, Math.floor(opts.size ?? Math.min(2, availableParallelism())));
  const margin = opts.killMarginMs ?? 5000;
  const maxBatch = Math.max(1, opts.maxBatch ?? 64);
  const most = size + Math.max(0, Math.floor(opts.spareHosts ?? 2));
  // One tenant's messages occupy at most `most` hosts; one more host may start for the others.
  const rules: TakeRules = { maxBatch, longWaitMs: LONG_WAIT_MS, tenantCap: most };
  let recheck: NodeJS.Timeout | null = null;
  const hosts: Host[] = [];
  const queue: Job[] = [];
  const counters = { hops: 0, started: 0, died: 0, killedForTime: 0 };
  let entry: string | null = null;
  let scheduled = false;
  let nextBatch = 1;
  let disposed = false;
  const exited = new Set<Promise<void>>();

  function spawnHost(): Host {
    entry ??= hostEntry();
    const host = startHost(entry, exited, { reply: onReply, exit: onExit });
    counters.started++;
    hosts.push(host);
    return host;
  }

  function schedule(): void {
    if (scheduled || disposed) return;
    scheduled = true;
    queueMicrotask(flush);
  }

  function flush(): void {
    scheduled = false;
    if (disposed || queue.length === 0) return;
    // The hosts each tenant's messages occupy; hosts started below are idle, so it holds for both uses.
    const busy = busyTenants();
    try {
      // Hosts start on demand, up to `size`: while more calls wait than hosts are free (one run's
      // sequential calls keep to one host, and its memory).
      let free = hosts.reduce((n, h) => n + (h.batch === null ? 1 : 0), 0);
      while (hosts.length < size && free < queue.length) {
        spawnHost();
        free++;
      }
      // A spare only for calls that may go now (a tenant at its cap waits for its own hosts).
      if (free === 0 && hosts.length <= most && queue.some((j) => eligible(j, busy, rules))) spare();
    } catch (err) {
      // No host can start (e.g. not built): every waiting call fails with that one line.
      if (hosts.length === 0) for (const j of queue.splice(0)) j.fail(err as Error);
    }
    for (const host of hosts) {
      if (host.batch !== null || queue.length === 0) continue;
      const jobs = takeJobs(queue, busy, rules, performance.now());
      if (jobs.length === 0) break;
      const tenant = jobs[0]!.wire.tenant; // (send may fail its jobs and leave the host idle)
      send(host, jobs);
      if (host.batch !== null) busy.set(tenant, (busy.get(tenant) ?? 0) + 1);
    }
  }

  /** The hosts each tenant's messages occupy now. */
  function busyTenants(): Map<string, number> {
    const busy = new Map<string, number>();
    for (const h of hosts) if (h.batch) busy.set(h.batch.tenant, (busy.get(h.batch.tenant) ?? 0) + 1);
    return busy;
  }

  /** Every host busy: one more when the most recently started batch has run for STUCK_MS, else look again then. */
  function spare(): void {
    const busyFor = performance.now() - Math.max(...hosts.map((h) => h.batch?.at ?? 0));
    if (busyFor >= STUCK_MS) spawnHost();
    else if (recheck === null) {
      recheck = setTimeout(() => {
        recheck = null;
        flush();
      }, STUCK_MS - busyFor);
      recheck.unref();
    }
  }

  function send(host: Host, jobs: Job[]): void {
    const b = nextBatch++;
    counters.hops++;
    let budget = margin;
    for (const j of jobs) for (const s of j.wire.steps) budget += 2 * s.timeoutMs * (1 + (j.wire.more?.length ?? 0));
    const timer = setTimeout(() => {
      if (host.batch?.b !== b) return;
      host.timedOut = true;
      counters.killedForTime++;
      host.child.kill('SIGKILL');
    }, budget);
    timer.unref();
    if (host.retire) clearTimeout(host.retire);
    host.retire = null;
    host.batch = { b, jobs, timer, at: performance.now(), tenant: jobs[0]!.wire.tenant };
    busy(host);
    const req: HostRequest = { b, jobs: jobs.map((j) => j.wire) };
    if (!host.configured && opts.sandbox) req.opts = opts.sandbox;
    host.configured = true;
    try {
      host.child.send(req);
    } catch (err) {
      // Not serialisable (the engine's messages are JSON, so this is a bug upstream): fail them.
      clearTimeout(timer);
      host.batch = null;
      idle(host);
      for (const j of jobs) j.fail(new FlowError('FUNCTION_ERROR', `input is not JSON: ${(err as Error).message}`));
      schedule();
    }
  }

  function onReply(host: Host, m: HostReply): void {
    const batch = host.batch;
    if (!batch || batch.b !== m.b) return;
    clearTimeout(batch.timer);
    host.batch = null;
    host.replied = true;
    idle(host);
    // Jobs the host did not run (its reply was large enough already) go first again.
    const again: Job[] = [];
    for (let i = 0; i < batch.jobs.length; i++) {
      const out = m.out[i];
      if (out === null) again.push(batch.jobs[i]!);
      else batch.jobs[i]!.done(out!);
    }
    if (again.length > 0) queue.unshift(...again);
    if (queue.length > 0) flush();
    if (host.batch === null && hosts.length > size) {
      // A spare host: it stops (exits on disconnect) after SPARE_IDLE_MS without work.
      host.retire = setTimeout(() => {
        const at = hosts.indexOf(host);
        if (at < 0 || host.batch !== null || hosts.length <= size) return;
        hosts.splice(at, 1);
        if (host.child.connected) host.child.disconnect();
      }, SPARE_IDLE_MS);
      host.retire.unref();
    }
  }

  function onExit(host: Host, how: string): void {
    if (host.retire) clearTimeout(host.retire);
    const at = hosts.indexOf(host);
    if (at < 0 && host.batch === null) return; // a spare host that stopped after its idle time
    if (at >= 0) hosts.splice(at, 1);
    counters.died++;
    const batch = host.batch;
    host.batch = null;
    if (batch) {
      clearTimeout(batch.timer);
      if (disposed) {
        for (const j of batch.jobs) j.fail(new FlowError('INTERNAL', 'the Function sandbox was closed during the call'));
      } else {
        settleDeath(host, how, batch.jobs, (jobs) => queue.unshift(...jobs));
      }
    }
    schedule();
  }

  function submit(wire: HostJob, solo: boolean, long = false): Promise<ChainStep[] | string | Death> {
    if (disposed) return Promise.reject(new FlowError('INTERNAL', 'the Function sandbox is closed'));
    return new Promise((done, fail) => {
      queue.push({ wire, solo, long, at: performance.now(), kills: 0, done, fail });
      schedule();
    });
  }

  /**
   * `classic`: one step on one message, run as such in the host (`runSync`), not as a batch;
   * its result comes as JSON, and `admit` (when given) is asked before it is parsed.
   */
  async function runChain(req: ChainRequest, classic = false, admit?: FunctionRequest['admit']): Promise<ChainStep[]> {
    let vars: string;
    try {
      vars = JSON.stringify(req.vars ?? {});
    } catch (e) {
      throw new FlowError('FUNCTION_ERROR', `input is not JSON: ${(e as Error).message}`);
    }
    const steps = req.steps.map((s) => ({
      code: s.code,
      timeoutMs: Math.min(Math.max(1, Math.floor(s.timeoutMs) || 1), MAX_TIMEOUT_MS),
      memoryMb: s.memoryMb >= 8 ? Math.floor(s.memoryMb) : 8,
    }));
    const more = req.more !== undefined && req.more.length > 0 ? req.more : undefined;
    let wire: HostJob = { tenant: req.tenant, msg: req.msg, vars, steps };
    try {
      // The messages as one JSON string: serialised once here, parsed once in the isolate.
      if (!classic) wire = { tenant: req.tenant, msgs: req.msgsJson ?? JSON.stringify(more ? [req.msg, ...more] : [req.msg]), vars, steps };
    } catch (e) {
      throw new FlowError('FUNCTION_ERROR', `input is not JSON: ${(e as Error).message}`);
    }
    const whole = await submit(wire, false, more !== undefined);
    if (typeof whole === 'string') {
      // Refused before it is parsed: a large result its wave cannot hold never becomes objects here.
      const refused = admit?.(whole.length);
      if (refused) return [{ ok: false, code: refused.code, message: refused.message, ms: 0 }];
      const out = fromRecords(whole, steps);
      if (admit && out[0]?.ok) out[0].outcome.counted = true;
      return out;
    }
    if (!('died' in whole)) return whole;
    if (steps.length === 1 && more === undefined) return [deathStep(whole, steps[0]!)];
    // The host died during the chain (or loop batch): again, one step at a time, so the fault
    // lands on its step (of its iteration).
    const out: ChainStep[] = [];
    let current = req.vars ?? {};
    for (const first of [req.msg, ...(more ?? [])]) {
      let msg = first;
      for (const step of steps) {
        const one = await submit({ tenant: req.tenant, msg, vars, steps: [step] }, true);
        const s = typeof one === 'string' ? fromRecords(one, [step])[0]! : 'died' in one ? deathStep(one, step) : one[0]!;
        out.push(s);
        if (!s.ok || !isOneMessage(s.outcome.result)) return out;
        msg = s.outcome.result;
        if (s.outcome.sets.length > 0) {
          current = { ...current };
          for (const [name, value] of s.outcome.sets) current[name] = value;
          vars = JSON.stringify(current);
        }
      }
    }
    return out;
  }

  return {
    async run(req) {
      const [s] = await runChain({ tenant: req.tenant, msg: req.msg, vars: req.vars, steps: [req] }, true, req.admit);
      if (!s!.ok) throw new FlowError(s!.code, s!.message);
      return s!.outcome;
    },
    runChain: (req) => runChain(req),
    stats: () => ({ hosts: hosts.length, ...counters }),
    pids: () => hosts.map((h) => h.child.pid!).filter((p) => p !== undefined),
    async dispose() {
      if (disposed) return;
      disposed = true;
      for (const j of queue.splice(0)) j.fail(new FlowError('INTERNAL', 'the Function sandbox is closed'));
      const waits = [...exited];
      for (const h of hosts) {
        busy(h); // keep this process alive until the host's exit is seen
        h.child.kill('SIGKILL');
      }
      await Promise.all(waits);
    },
  };
}
