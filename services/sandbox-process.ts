/**
 * One sandbox host process as the pool (`sandbox-pool.ts`) sees it: its start (a fork of
 * `sandbox-host.ts`), the keep-alive of this process while it has work, and what its death
 * means for the jobs it was running.
 *
 * Containment: a host that dies (an allocation isolated-vm cannot bound aborts it, a crash, a
 * kill) is replaced. A host killed from outside (SIGKILL/SIGTERM not sent by the pool: an
 * operator, the OOM killer) is an infrastructure fault: its jobs are sent again, each alone,
 * until one is killed MAX_KILLS times while alone: that call fails with FUNCTION_MEMORY. Any other
 * death is the Function's: if the host was running one job, that call fails with FUNCTION_MEMORY.
 * If it was running a batch of several, the culprit is unknown: each job is sent again,
 * alone, to a fresh host. A Function has no effect outside its outcome (no I/O, and its
 * `setVar`s travel in the outcome), and no outcome of the lost batch was delivered, so
 * running those jobs again is safe and bills nothing twice: the node runs once for the run.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlowError } from '../core/errors.js';
import type { ChainStep } from '../nodes/define.js';
import type { HostJob, HostReply } from './sandbox-host.js';
import type { Death } from './sandbox-steps.js';

/** Kills from outside a job may meet while it runs alone on its host; the last fails it with FUNCTION_MEMORY. */
const MAX_KILLS = 3;
/** Signals a host only dies of when something outside sends them (the Function's own deaths abort or crash). */
const KILLED = /^signal SIG(KILL|TERM|INT|HUP)$/;

/** A call waiting for, or running on, a host. */
export interface Job {
  wire: HostJob;
  solo: boolean;
  /** A loop batch (iterations ride along): long next to a call for one message; sent alone. */
  long: boolean;
  /** When it was queued (performance.now()). */
  at: number;
  /** Hosts killed from outside while running this job. */
  kills: number;
  done(out: ChainStep[] | string | Death): void;
  fail(err: Error): void;
}

/** A host process and the batch it runs. */
export interface Host {
  child: ChildProcess;
  /** The message it runs: its calls (all of one tenant, see `sandbox-take.ts`), since `at`. */
  batch: { b: number; jobs: Job[]; timer: NodeJS.Timeout; at: number; tenant: string } | null;
  /** A spare host's stop, once idle (see `SandboxPoolOptions.spareHosts`). */
  retire: NodeJS.Timeout | null;
  configured: boolean;
  replied: boolean;
  timedOut: boolean;
  stderr: string;
}

/** What the pool hears of a host it started. */
export interface HostEvents {
  reply(host: Host, m: HostReply): void;
  /** The host is gone (`how`: "signal SIGKILL", "exit code 1", "error …"); called once. */
  exit(host: Host, how: string): void;
}

/** The host's entry: next to this file when built, else (sources run by vitest) in dist/. */
export function hostEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const built = here.endsWith('.ts') ? resolve(dirname(here), '../dist/services/sandbox-host.js') : resolve(dirname(here), 'sandbox-host.js');
  if (!existsSync(built)) throw new FlowError('INTERNAL', `the Function sandbox host is not built (${built}): run \`npm run build\``);
  return built;
}

/**
 * Forks a host from `entry`, idle. Until its exit has been seen, a promise that resolves then is
 * in `exited` (the pool's dispose waits for them).
 */
export function startHost(entry: string, exited: Set<Promise<void>>, on: HostEvents): Host {
  const child = fork(entry, ['--flowmeter-sandbox-host'], {
    // A small young generation: a host's own heap only holds the batch in flight (bench: rss).
    execArgv: ['--no-node-snapshot', '--max-semi-space-size=2'],
    serialization: 'json',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const host: Host = { child, batch: null, retire: null, configured: false, replied: false, timedOut: false, stderr: '' };
  idle(host);
  child.stderr?.on('data', (d: Buffer) => (host.stderr = (host.stderr + d.toString()).slice(-500)));
  (child.stderr as { unref?: () => void } | null)?.unref?.();
  child.on('message', (m: HostReply) => on.reply(host, m));
  let gone!: () => void;
  const p = new Promise<void>((r) => (gone = r));
  exited.add(p);
  let ended = false;
  const end = (how: string) => {
    if (ended) return;
    ended = true;
    exited.delete(p);
    gone();
    on.exit(host, how);
  };
  child.on('exit', (code, signal) => end(signal ? `signal ${signal}` : `exit code ${code}`));
  child.on('error', (err) => {
    // Mostly a write to a host that is dying (EPIPE): its 'exit' tells why it died (a kill
    // from outside is retried, an abort of the Function's is not), so wait for it; a host still
    // alive is killed (its channel is broken: not the Function's doing, so retried too).
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    setTimeout(() => end(`error ${err.message}`), 2000).unref();
  });
  return host;
}

/** While a host has work, its channel keeps this process alive; an idle one never does. */
/** (The process handle too: if the host dies, its exit must still be seen, to fail the call.) */
export function busy(host: Host): void {
  host.child.ref();
  (host.child.channel as { ref?: () => void } | null | undefined)?.ref?.();
}
export function idle(host: Host): void {
  host.child.unref();
  (host.child.channel as { unref?: () => void } | null | undefined)?.unref?.();
}

/**
 * Settles the jobs of a host that died running them (the pool still open): each fails, or gets
 * its death as its outcome, or goes back to the front of the queue through `again`.
 */
export function settleDeath(host: Host, how: string, jobs: Job[], again: (jobs: Job[]) => void): void {
  if (!host.replied && !host.timedOut && how.startsWith('exit code') && !/heap|memory/i.test(host.stderr)) {
    // Never answered and exited on its own: the host could not start (not the user's code).
    const line = host.stderr.trim().split('\n').at(-1) ?? '';
    for (const j of jobs) j.fail(new FlowError('INTERNAL', `the Function sandbox host could not start (${how}) ${line}`.trim()));
  } else if (!host.timedOut && KILLED.test(how) && (jobs.length > 1 || ++jobs[0]!.kills < MAX_KILLS)) {
    // Killed from outside: not the Function's doing, and none of the jobs took effect: again,
    // each alone (a kill counts against a job only when it ran alone).
    for (const j of jobs) j.solo ||= jobs.length > 1;
    again(jobs);
  } else if (jobs.length === 1) {
    jobs[0]!.done({ died: true, timedOut: host.timedOut, how });
  } else {
    // The culprit is unknown: each job again, alone, on a fresh host (none of them took effect).
    for (const j of jobs) j.solo = true;
    again(jobs);
  }
}
