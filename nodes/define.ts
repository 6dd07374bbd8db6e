/**
 * How a node type is defined: `defineNode({ type, config, execute(input, ctx) })`. The context
 * is passed explicitly; nodes never reach the engine through `this` or globals.
 */
import type { z } from 'zod';
import type { FlowError } from '../core/errors.js';
import type { ConnectionUse, Message, MeterName, NodeRef } from '../core/types.js';

export type { MeterName, NodeRef } from '../core/types.js';

import type { Scope } from '../core/paths.js';
import type { CostContext, CostNoteContext, Outcome } from './cost.js';

/** What a node's execution tells the executor to do next. */
export type NodeResult =
  /** Messages to send to the node's `next` (or, without one, to the run's outputs). */
  | {
      kind: 'emit';
      messages: Message[];
      output?: unknown;
      /**
       * What the messages bring into the run, in JSON characters, when the node knows it without
       * measuring: a Function's result as the sandbox sent it, a Connector's response body (bytes).
       */
      chars?: number;
      /** `chars` are held by the node's wave already: admitted before the result was parsed (`NodeContext.admit`). */
      counted?: boolean;
    }
  /** Messages to send to named nodes (Switch, Fan Out, Filter, Catch). Empty = dropped. */
  | { kind: 'route'; routes: Array<{ to: string; msg: Message }>; dropped?: boolean }
  /**
   * Start a loop over `items` (the executor runs the iterations, each from the node's `body`).
   * `collect`: the payloads that end the body paths become the payload after the loop.
   * `over`: the path `items` were read from, when it lies in the input message (then a
   * checkpoint need not store them twice).
   */
  | { kind: 'iterate'; items: unknown[]; collect?: boolean; over?: string }
  /** Run `steps` one after another, then `next` (Sequencer). */
  | { kind: 'sequence'; steps: string[] };

/** One iteration of a loop frame: the loop's input message, the item, its index and the item count. */
export interface Iteration {
  input: Message;
  item: unknown;
  index: number;
  count: number;
}

/** One Function call: the code, its input and its limits. */
export interface FunctionRequest {
  tenant: string;
  code: string;
  msg: Message;
  vars: Record<string, unknown>;
  timeoutMs: number;
  memoryMb: number;
  /**
   * Asked with the JSON characters of the result before it is parsed (a sandbox that has them
   * as JSON does so): an error refuses the result, and the call fails with it. Then the outcome
   * says `counted`. From `NodeContext.admit`.
   */
  admit?: (chars: number) => FlowError | null;
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
  /**
   * The JSON of `[msg, ...more]` when the caller already made it (each message is then
   * serialised once per hop); it must be exactly that.
   */
  msgsJson?: string;
}

/** One step of a chain: its outcome or its error, and how long it ran (ms). */
export type ChainStep = { ok: true; outcome: FunctionOutcome; ms: number } | { ok: false; code: string; message: string; ms: number };

export interface FunctionOutcome {
  result: unknown;
  logs: string[];
  sets: Array<[string, unknown]>;
  /** JSON characters the outcome came in from the sandbox (its share of a batch's), when known. */
  chars?: number;
  /** Its `chars` were admitted through `FunctionRequest.admit` before it was parsed. */
  counted?: boolean;
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
  /**
   * Holds `chars` of JSON of a result about to be parsed in its wave's share of what this
   * process's runs hold (engine/kept.ts): an error (nothing held) when the wave may not.
   */
  admit?(chars: number): FlowError | null;
  /** Counts an informational meter; `conn` also counts it for the scenario connection it used. */
  meter(name: MeterName, amount: number, conn?: ConnectionUse): void;
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
  auth?: { type: 'bearer'; token: string } | { type: 'basic'; username: string; password: string } | { type: 'header'; name: string; value: string };
}

/**
 * How a node is entered:
 * - `edge`: by an edge (`start`, `next`, a branch), the usual way;
 * - `onError`: only by the failure of a node it handles (Catch); never the target of an edge;
 * - `never`: never executed and never counted (Comment); never the target of an edge.
 */
export type NodeEntry = 'edge' | 'onError' | 'never';

/**
 * A node type. The engine, the graph checks, validation and `estimate` ask the definition;
 * none of them knows a node type by name, so a new node type touches `nodes/` only.
 */
export interface NodeDefinition<S extends z.ZodObject = z.ZodObject> {
  type: string;
  /** The node's own fields (without `id`, `type`, `name`). */
  config: S;
  /** Whether messages this node emits with no successor become run outputs (§2). */
  emitsOutputs: boolean;
  /** How the node is entered (default `edge`). */
  entry?: NodeEntry;
  /**
   * Every reference to other nodes and to lists/tables/connections. A node reference with
   * `edge: false` names a node without leading to it (a Catch's scope).
   */
  refs(node: z.infer<S>): NodeRef[];
  /** For `entry: 'onError'`: the nodes whose failures it handles; undefined = every node. */
  handles?(node: z.infer<S>): readonly string[] | undefined;
  /**
   * For nodes whose result is `{ kind: 'iterate' }`: how an iteration is entered, i.e. the node it
   * starts at and its message, from the loop's input message and the iteration's item.
   */
  iterate?(node: z.infer<S>, it: Iteration): { to: string; msg: Message };
  /** Fields whose values are not templates (code, free text): validation leaves them alone. */
  rawFields?: readonly string[];
  /**
   * The node's settings that may hold `${secret:NAME}` / `${env:NAME}` references (Mail's
   * settings): their values are registered for redaction before any node of a run executes.
   */
  credentials?(node: z.infer<S>): string[];
  /** Checks of the node's content beyond its schema, each as `field: message`. */
  check?(node: z.infer<S>): string[];
  /**
   * The node's cost bounds (SPEC §3), for `estimate`: its own actions and where its paths go,
   * built with the algebra of `cost.ts` (`ctx.next(id)` is the path from a successor on,
   * `ctx.fails()` the node failing).
   */
  estimate(node: z.infer<S> & BaseNode, ctx: CostContext): Outcome;
  /** What `estimate` assumes about nodes of this type, stated once when one is on a path. */
  costNote?(ctx: CostNoteContext): string;
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
