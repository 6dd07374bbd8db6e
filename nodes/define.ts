/**
 * How a node type is defined: `defineNode({ type, config, execute(input, ctx) })`. The context
 * is passed explicitly; nodes never reach the engine through `this` or globals.
 */
import { z } from 'zod';
import type { Message, MeterName, NodeRef } from '../core/types.js';
export type { MeterName, NodeRef } from '../core/types.js';
import type { Scope } from '../core/paths.js';

/** What a node's execution tells the executor to do next. */
export type NodeResult =
  /** Messages to send to the node's `next` (or, without one, to the run's outputs). */
  | { kind: 'emit'; messages: Message[]; output?: unknown }
  /** Messages to send to named nodes (Switch, Fan Out, Filter, Catch). Empty = dropped. */
  | { kind: 'route'; routes: Array<{ to: string; msg: Message }>; dropped?: boolean }
  /** Start a loop over `items` (the executor runs the iterations). */
  | { kind: 'loop'; items: unknown[] }
  /** Run `steps` one after another, then `next` (Sequencer). */
  | { kind: 'sequence'; steps: string[] };


/** One Function call: the code, its input and its limits. */
export interface FunctionRequest {
  tenant: string;
  code: string;
  msg: Message;
  vars: Record<string, unknown>;
  timeoutMs: number;
  memoryMb: number;
}

/**
 * Runs Function node code in a sandbox (`services/sandbox-pool.ts`: host processes). Never
 * blocks the caller's event loop; a failure rejects with a FlowError (`FUNCTION_*` code).
 */
export interface FunctionSandbox {
  run(req: FunctionRequest): Promise<FunctionOutcome>;
  /**
   * Runs a chain of Functions on one message in one hop: step 1 on `msg`, each next step on
   * the previous step's result with the previous steps' `setVar`s applied to `vars`. Stops
   * after the first step that fails or does not return exactly one message (an object).
   * Optional: without it the executor runs one step at a time.
   */
  runChain?(req: ChainRequest): Promise<ChainStep[]>;
}

export interface ChainRequest {
  tenant: string;
  msg: Message;
  vars: Record<string, unknown>;
  steps: Array<{ code: string; timeoutMs: number; memoryMb: number }>;
  /**
   * A loop batch: after the steps ran on `msg`, run them again on each of these messages in
   * order (the loop's next iterations), carrying `vars` (every step's `setVar`s are seen by the
   * steps after it). The steps of all iterations are returned in one array; it stops after the
   * first step that fails or does not return exactly one message.
   */
  more?: Message[];
}

/** One step of a chain: its outcome or its error, and how long it ran (ms). */
export type ChainStep =
  | { ok: true; outcome: FunctionOutcome; ms: number }
  | { ok: false; code: string; message: string; ms: number };

export interface FunctionOutcome {
  result: unknown;
  logs: string[];
  sets: Array<[string, unknown]>;
}

/** Whether a Function's result is exactly one message, so a chain may continue with it. */
export function isOneMessage(v: unknown): v is Message {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export interface MailSender {
  /** Sends one message; returns what the SMTP server said, or null when mail is only captured. */
  send(mail: MailMessage): Promise<{ messageId: string; accepted: string[]; response: string } | null>;
}

export interface MailMessage {
  from: string;
  to: string;
  cc?: string;
  subject: string;
  text?: string;
  html?: string;
}

/** Services a node may use. Everything reaching the outside world goes through here. */
export interface NodeServices {
  sandbox: FunctionSandbox;
  mail: MailSender;
  /** Reads an environment variable (for `${env:NAME}`). */
  env: (name: string) => string | undefined;
  /**
   * The running tenant's stored credential NAME (for `${secret:NAME}`), undefined when it has
   * none. The executor sets it for each run (see `ExecutorDeps.secrets`).
   */
  secret?: (name: string) => string | undefined;
  /** HTTP: the global fetch, or another one for tests. */
  fetch: typeof fetch;
  /** Sleeps (Connector backoff); replaceable so tests need not wait. */
  sleep: (ms: number) => Promise<void>;
}

export interface NodeContext<C> {
  /** The node's own validated configuration. */
  readonly node: C;
  readonly runId: string;
  readonly tenant: string;
  readonly scenario: ScenarioLike;
  /** Stable per task across retries of the same work (for `Idempotency-Key`). */
  readonly taskKey: string;
  /** The scenario's global variables as this node sees them. */
  readonly vars: Readonly<Record<string, unknown>>;
  setVar(name: string, value: unknown): void;
  log(line: string): void;
  /** Registers a secret value so it is scrubbed from logs, task logs and errors. */
  secret(value: string): void;
  meter(name: MeterName, amount: number): void;
  readonly services: NodeServices;
  /** A scope for paths and templates over the given message. */
  scope(msg: Message): Scope;
}

/** The parts of a scenario a node may read. */
export interface ScenarioLike {
  id: string;
  lists?: Record<string, unknown[]>;
  tables?: Record<string, Record<string, unknown>>;
  connections?: Record<string, ConnectionConfig>;
}

export interface ConnectionConfig {
  baseUrl?: string;
  headers?: Record<string, string>;
  auth?:
    | { type: 'bearer'; token: string }
    | { type: 'basic'; username: string; password: string }
    | { type: 'header'; name: string; value: string };
}

export interface NodeDefinition<S extends z.ZodObject = z.ZodObject> {
  type: string;
  /** The node's own fields (without `id`, `type`, `name`). */
  config: S;
  /** Whether messages this node emits with no successor become run outputs (§2). */
  emitsOutputs: boolean;
  /** Every reference to other nodes and to lists/tables/connections. */
  refs(node: z.infer<S>): NodeRef[];
  execute(input: Message, ctx: NodeContext<z.infer<S> & BaseNode>): NodeResult | Promise<NodeResult>;
}

export interface BaseNode {
  id: string;
  type: string;
  name?: string;
}

export const ID_RE = /^[a-z0-9_-]{1,64}$/;

export function defineNode<S extends z.ZodObject>(def: NodeDefinition<S>): NodeDefinition<S> {
  return def;
}

/** `next` as a reference, when present. */
export function nextRef(next: string | undefined, path = 'next'): NodeRef[] {
  return next ? [{ path, kind: 'node', name: next }] : [];
}
