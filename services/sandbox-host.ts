/**
 * A sandbox host: the child process that runs Function code for `sandbox-pool.ts`. It holds
 * warm isolated-vm isolates (`createSandbox`, as the engine did in process) and answers one
 * IPC message per batch of jobs, so a batch costs one round trip whatever its size. If user
 * code kills this process (an allocation isolated-vm cannot bound aborts it), only this host
 * dies: the pool fails the call that ran here and starts another host.
 *
 * Protocol (JSON over the IPC channel):
 *   in:  { b: batchId, jobs: HostJob[], opts? }        (opts only in the first message)
 *   out: { b: batchId, out: Array<ChainStep[] | string | null> }   (one entry per job, in order;
 *        null: not run, because what the reply carries passed MAX_REPLY_CHARS: the supervisor
 *        sends it again, so a batch of 64 calls returning 10 MB each is not one reply of 640 MB
 *        parsed at once in the worker)
 * A job is a chain of one or more steps, optionally run again on the loop's next messages
 * (`more`); see `FunctionSandbox.runChain` and `ChainRequest.more` for its rules. Its messages
 * come as one JSON string (`msgs`) and, when its steps share their limits, the whole job runs in
 * ONE call into the isolate (`runBatchSync`) and its steps come back as one JSON string of
 * `BatchRecord`s: a message is serialised once per hop each way, and this host never parses it.
 * (JSON IPC, not 'advanced': a small job's round trip costs less, and a large one's strings
 * cost about the same.)
 * Started with --no-node-snapshot (isolated-vm needs it on Node 20+).
 */

import { errorCode, errorMessage } from '../core/errors.js';
import type { Message } from '../core/types.js';
import { type ChainStep, isOneMessage } from '../nodes/define.js';
import { createSandbox, type InProcessSandbox, type OutcomeTuple, outcomeOf, type SandboxOptions } from './sandbox.js';

export type { BatchRecord } from './sandbox.js';

/** One job as sent to a host: `vars` is already JSON (a snapshot taken when the call was made). */
export interface HostJob {
  tenant: string;
  /** The first message, or `msgs`. */
  msg?: Message;
  /** The job's messages as one JSON array (the first one, then the loop's next ones), instead of `msg`/`more`. */
  msgs?: string;
  vars: string;
  steps: Array<{ code: string; timeoutMs: number; memoryMb: number }>;
  /** A loop batch: the steps again on each of these messages, vars carried (`ChainRequest.more`). */
  more?: Message[];
}

export interface HostRequest {
  b: number;
  jobs: HostJob[];
  opts?: SandboxOptions;
}

export interface HostReply {
  b: number;
  out: Array<ChainStep[] | string | null>;
}

/** JSON characters of results after which a reply carries no further job (the rest: null, sent again). */
export const MAX_REPLY_CHARS = 16 * 1024 * 1024;

/** The JSON characters a job's result carries (as the sandbox measured them). */
function sizeOf(r: ChainStep[] | string): number {
  if (typeof r === 'string') return r.length;
  let n = 0;
  for (const s of r) if (s.ok) n += s.outcome.chars ?? 0;
  return n;
}

/**
 * The supervisor's pid, from the start (0: not a host process, as in tests calling runJob).
 * A message's jobs run synchronously, so the channel's 'disconnect' is seen only after all of
 * them: a host whose supervisor died would compute a message of long Functions (up to 30 s
 * each) to its end, a core burnt for nothing. `process.ppid` is read afresh on each access.
 */
let supervisor = 0;

/** Exits at once when the supervisor is gone (this host was re-parented); checked before each job and each step. */
function leaveIfOrphaned(): void {
  if (supervisor !== 0 && process.ppid !== supervisor) process.exit(0);
}

/** Time after which a loop batch starts no further iteration, ms. */
const BATCH_MS = 25;

/** The variables as the job's steps so far left them: the object once a step set some, its JSON when needed. */
interface Carried {
  json: string | null;
  vars: Record<string, unknown> | null;
}

/**
 * Runs one job's steps in order on `msg`, then on each of `more` (a loop batch), stopping after
 * a failure or a result that is not one message (or, between iterations, after BATCH_MS).
 */
export function runJob(sandbox: InProcessSandbox, job: HostJob): ChainStep[] | string {
  const { steps } = job;
  if (job.msg !== undefined && steps.length === 1 && job.more === undefined) return runOne(sandbox, job);
  if (job.msgs !== undefined) {
    const same = steps.every((s) => s.timeoutMs === steps[0]!.timeoutMs && s.memoryMb === steps[0]!.memoryMb);
    if (same) {
      const codes = steps.map((s) => s.code);
      const { timeoutMs, memoryMb } = steps[0]!;
      const out = sandbox.runBatchSync({ tenant: job.tenant, codes, timeoutMs, memoryMb, msgs: job.msgs, vars: job.vars, budgetMs: BATCH_MS });
      if (out !== null) return out;
    }
    // Step by step (limits differ, a syntax error, or the isolate died during the batch).
    const [msg, ...more] = JSON.parse(job.msgs) as Message[];
    job = { ...job, msg: msg!, more };
  }
  const out: ChainStep[] = [];
  const carried: Carried = { json: job.vars, vars: null };
  const t0 = performance.now();
  if (!runSteps(sandbox, job, job.msg!, carried, out)) return out;
  for (const msg of job.more ?? []) {
    // Calls of other runs wait for this host: a batch starts no iteration after BATCH_MS (the
    // engine computes the rest as usual; stopping early only leaves less prepared).
    if (performance.now() - t0 > BATCH_MS) break;
    if (!runSteps(sandbox, job, msg, carried, out)) break;
  }
  return out;
}

/** Results of single calls from this many JSON characters come back unparsed (`runOne`). */
export const RAW_RESULT_CHARS = 64 * 1024;

/**
 * A single call (one step on one message). A large result comes back as its record's JSON, not
 * parsed here nor in the worker before it is admitted (a result its wave cannot hold is refused
 * unparsed: `FunctionRequest.admit`); a small one as a step, like a failure (its code kept),
 * which costs the worker one parse instead of two.
 */
function runOne(sandbox: InProcessSandbox, job: HostJob): ChainStep[] | string {
  leaveIfOrphaned();
  const step = job.steps[0]!;
  const t0 = performance.now();
  try {
    const req = { tenant: job.tenant, code: step.code, msg: job.msg!, vars: {}, timeoutMs: step.timeoutMs, memoryMb: step.memoryMb };
    const out = sandbox.runRawSync(req, job.vars);
    if (out.length >= RAW_RESULT_CHARS) return `[[${performance.now() - t0},1,${out}]]`;
    return [{ ok: true, outcome: outcomeOf(JSON.parse(out) as OutcomeTuple, out.length), ms: performance.now() - t0 }];
  } catch (e) {
    return [{ ok: false, code: errorCode(e), message: errorMessage(e), ms: performance.now() - t0 }];
  }
}

/** The steps on one message; true when each returned one message (so a loop batch goes on). */
function runSteps(sandbox: InProcessSandbox, job: HostJob, first: Message, v: Carried, out: ChainStep[]): boolean {
  let msg = first;
  for (const step of job.steps) {
    leaveIfOrphaned();
    const t0 = performance.now();
    try {
      v.json ??= JSON.stringify(v.vars);
      const outcome = sandbox.runSync(
        { tenant: job.tenant, code: step.code, msg, vars: v.vars ?? {}, timeoutMs: step.timeoutMs, memoryMb: step.memoryMb },
        v.json,
      );
      out.push({ ok: true, outcome, ms: performance.now() - t0 });
      if (!isOneMessage(outcome.result)) return false;
      msg = outcome.result;
      if (outcome.sets.length > 0) {
        v.vars ??= JSON.parse(v.json) as Record<string, unknown>;
        for (const [name, value] of outcome.sets) v.vars[name] = value;
        v.json = null;
      }
    } catch (e) {
      out.push({ ok: false, code: errorCode(e), message: errorMessage(e), ms: performance.now() - t0 });
      return false;
    }
  }
  return true;
}

function main(): void {
  supervisor = process.ppid;
  let sandbox: InProcessSandbox | null = null;
  process.on('message', (m: HostRequest) => {
    sandbox ??= createSandbox(m.opts);
    const out: HostReply['out'] = [];
    let chars = 0;
    for (const job of m.jobs) {
      if (chars > MAX_REPLY_CHARS) {
        out.push(null); // not run: the reply is large enough already
        continue;
      }
      leaveIfOrphaned();
      const r = runJob(sandbox!, job);
      chars += sizeOf(r);
      out.push(r);
    }
    process.send!({ b: m.b, out } satisfies HostReply);
  });
  // The supervisor is gone (it exited or closed the channel): so is this host.
  process.on('disconnect', () => {
    sandbox?.dispose();
    process.exit(0);
  });
}

if (process.send !== undefined && process.argv.includes('--flowmeter-sandbox-host')) main();
