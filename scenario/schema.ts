/**
 * The scenario document, in zod. `scenarioSchema` checks one document's shape; graph checks
 * (references, cycles, reachability) live in `graph.ts`.
 */
import { z } from 'zod';
import { ID_RE } from '../nodes/define.js';
import { NODE_TYPES, registryVersion } from '../nodes/index.js';

const id = z.string().regex(ID_RE, 'must be 1-64 of a-z 0-9 - _');

const envOr = z.string();

export const connectionSchema = z.strictObject({
  baseUrl: envOr.optional(),
  headers: z.record(z.string(), envOr).optional(),
  auth: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('bearer'), token: envOr }),
      z.strictObject({ type: z.literal('basic'), username: envOr, password: envOr }),
      z.strictObject({ type: z.literal('header'), name: z.string().min(1), value: envOr }),
    ])
    .optional(),
});

export const triggerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('manual') }),
  z.strictObject({
    type: z.literal('cron'),
    /** 5- or 6-field cron expression. */
    schedule: z.string().min(1),
    /** IANA timezone, default UTC. */
    timezone: z.string().default('UTC'),
    /** Payload for each firing. */
    input: z.unknown().optional(),
    /** How far back (ms) a scheduler that was down fires missed instants; default 0 (none). */
    catchUp: z.number().int().min(0).optional(),
  }),
  z.strictObject({
    type: z.literal('webhook'),
    path: z
      .string()
      .regex(/^[A-Za-z0-9_-][A-Za-z0-9_/-]{0,127}$/, 'must be a URL path segment')
      .optional(),
    secret: z.string().optional(),
    /** The HTTP methods the webhook accepts (default POST only); with GET, the query is the payload. */
    methods: z
      .array(z.enum(['GET', 'POST']))
      .min(1)
      .refine((m) => new Set(m).size === m.length, 'lists a method twice')
      .optional(),
  }),
]);

const base = { id, type: z.string(), name: z.string().optional() };

/** One schema per node type: base fields plus the node's own, no unknown fields. */
function buildNodeSchema(): z.ZodType<ScenarioNode> {
  const nodeSchemas = NODE_TYPES.map((d) => z.strictObject({ ...base, ...d.config.shape, type: z.literal(d.type) }));
  return z.discriminatedUnion('type', nodeSchemas as unknown as [z.ZodObject, ...z.ZodObject[]]) as unknown as z.ZodType<ScenarioNode>;
}

const buildScenarioSchema = (nodeSchema: z.ZodType<ScenarioNode>) =>
  z.strictObject({
    $schema: z.string().optional(),
    id,
    name: z.string().optional(),
    description: z.string().optional(),
    billable: z.boolean().default(true),
    enabled: z.boolean().optional(),
    trigger: triggerSchema.default({ type: 'manual' }),
    variables: z.record(z.string(), z.unknown()).default({}),
    lists: z.record(z.string(), z.array(z.unknown())).default({}),
    tables: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
    connections: z.record(z.string(), connectionSchema).default({}),
    /** Runaway breaker: a run that would spend more fails with RUN_BUDGET_EXCEEDED. */
    maxActionsPerRun: z.number().int().positive().optional(),
    /** Flow control (SPEC §10): most runs of the scenario executing at once. */
    concurrency: z.number().int().positive().max(1_000_000).optional(),
    /** Flow control: most runs started per `periodMs`; runs over it wait as `queued`. */
    throttle: z.strictObject({ limit: z.number().int().positive().max(1_000_000), periodMs: z.number().int().positive().max(86_400_000) }).optional(),
    start: id,
    nodes: z.array(nodeSchema).min(1),
  });

let built: { version: number; node: z.ZodType<ScenarioNode>; scenario: ReturnType<typeof buildScenarioSchema> } | null = null;

/** The schemas of one node and of a scenario document, over the node types registered now. */
export function schemas(): { node: z.ZodType<ScenarioNode>; scenario: ReturnType<typeof buildScenarioSchema> } {
  if (!built || built.version !== registryVersion()) {
    const node = buildNodeSchema();
    built = { version: registryVersion(), node, scenario: buildScenarioSchema(node) };
  }
  return built;
}

/** A node as validated: its base fields plus its type's own (checked by the node's schema). */
export type ScenarioNode = { id: string; type: string; name?: string; next?: string; [field: string]: unknown };
export type Scenario = Omit<z.infer<ReturnType<typeof buildScenarioSchema>>, 'nodes'> & { nodes: ScenarioNode[] };

/** The JSON Schema of a scenario document, for editors. */
export function scenarioJsonSchema(): unknown {
  const schema = z.toJSONSchema(schemas().scenario, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, title: 'Flowmeter scenario' };
}
