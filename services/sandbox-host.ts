/**
 * A sandbox host: the child process that runs Function code for `sandbox-pool.ts`. It holds
 * warm isolated-vm isolates (`createSandbox`, as the engine did in process) and answers one
 * IPC message per batch of jobs, so a batch costs one round trip whatever its size. If user
 * code kills this process (an allocation isolated-vm cannot bound aborts it), only this host
 * dies: the pool fails the call that ran here and starts another host.
 *
 * Protocol (JSON over the IPC channel):
 *   in:  { b: batchId, jobs: HostJob[], opts? }        (opts only in the first message)
 *   out: { b: batchId, out: ChainStep[][] }            (one array of steps per job, in order)
 * A job is a chain of one or more steps; see `FunctionSandbox.runChain` for its rules.
 * Started with --no-node-snapshot (isolated-vm needs it on Node 20+).
 */
import { createSandbox, type InProcessSandbox, type SandboxOptions } from './sandbox.js';
import { isOneMessage, type ChainStep } from '../nodes/define.js';
import { errorCode, errorMessage } from '../core/errors.js';
import type { Message } from '../core/types.js';

/** One job as sent to a host: `vars` is already JSON (a snapshot taken when the call was made). */
export interface HostJob {
  tenant: string;
  msg: Message;
  vars: string;
  steps: Array<{ code: string; timeoutMs: number; memoryMb: number }>;
}

export interface HostRequest {
  b: number;
  jobs: HostJob[];
  opts?: SandboxOptions;
}

export interface HostReply {
  b: number;
  out: ChainStep[][];
}

/** Runs one job's steps in order, stopping after a failure or a result that is not one message. */
export function runJob(sandbox: InProcessSandbox, job: HostJob): ChainStep[] {
  const out: ChainStep[] = [];
  let msg = job.msg;
  let varsJson = job.vars;
  let vars: Record<string, unknown> | null = null;
  for (let i = 0; i < job.steps.length; i++) {
    const step = job.steps[i]!;
    const t0 = performance.now();
    try {
      const outcome = sandbox.runSync({ tenant: job.tenant, code: step.code, msg, vars: vars ?? {}, timeoutMs: step.timeoutMs, memoryMb: step.memoryMb }, varsJson);
      out.push({ ok: true, outcome, ms: performance.now() - t0 });
      if (!isOneMessage(outcome.result) || i === job.steps.length - 1) break;
      msg = outcome.result;
      if (outcome.sets.length > 0) {
        vars ??= JSON.parse(varsJson) as Record<string, unknown>;
        for (const [name, value] of outcome.sets) vars[name] = value;
        varsJson = JSON.stringify(vars);
      }
    } catch (e) {
      out.push({ ok: false, code: errorCode(e), message: errorMessage(e), ms: performance.now() - t0 });
      break;
    }
  }
  return out;
}

function main(): void {
  let sandbox: InProcessSandbox | null = null;
  process.on('message', (m: HostRequest) => {
    sandbox ??= createSandbox(m.opts);
    const out = m.jobs.map((job) => runJob(sandbox!, job));
    process.send!({ b: m.b, out } satisfies HostReply);
  });
  // The supervisor is gone (it exited or closed the channel): so is this host.
  process.on('disconnect', () => {
    sandbox?.dispose();
    process.exit(0);
  });
}

if (process.send !== undefined && process.argv.includes('--flowmeter-sandbox-host')) main();
