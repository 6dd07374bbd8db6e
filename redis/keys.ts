/**
 * Redis key layout. Every key of a tenant carries the hash tag `{t:<tenant>}`, so a tenant's
 * keys share a hash slot (Redis Cluster-ready) and one Lua script may touch them all. Global
 * keys (`<p>:tenants`, the API key indexes, `<p>:halted-tenants`) have no tag: no script or
 * transaction mixes them with a tenant's keys. The queue's and the cron index's keys carry
 * their shard's tag (redis/shards.ts).
 *
 *   <p>:{t:T}:quota                hash   monthlyActions, overage, timezone, alerts, maxActiveScenarios
 *   <p>:{t:T}:p:<YYYY-MM>          hash   used, overage, nonBillable, addOns, m:<meter>, a:<threshold>
 *   <p>:{t:T}:p:<YYYY-MM>:scen     hash   <scenarioId>:runs, <scenarioId>:actions, and per node
 *                                         <scenarioId>:n:<nodeId> (runs × 2^32 + actions, lib-settle.lua)
 *   <p>:{t:T}:p:<YYYY-MM>:days     hash   <YYYY-MM-DD> → actions
 *   <p>:{t:T}:p:<YYYY-MM>:leases   hash   <runId> → actions it holds (lease.lua)
 *   <p>:{t:T}:p:<YYYY-MM>:addons   list   add-on purchases, JSON { id, at, actions, expires? } in the
 *                                         order bought (lib-lease/lib-settle sum the unexpired ones
 *                                         with `expires`; those without are also summed in addOns)
 *   <p>:{t:T}:p:<YYYY-MM>:conns    hash   <connection>\0requests|bytes|errors|lastStatus|lastAt
 *   <p>:{t:T}:plan                 string the plan document (JSON, prices in major units)
 *   <p>:{t:T}:halted               zset   runs halted for quota, by start (ms): auto-resume's queue
 *   <p>:{t:T}:resuming             string the run auto-resume is resuming (expires: a dead process)
 *   <p>:halted-tenants             set    tenants that have had runs halted for quota (the sweep)
 *   <p>:{t:T}:notify:secret        string the tenant's webhook signing secret (notifications)
 *   <p>:{t:T}:notify:log           list   notification deliveries, JSON, newest first (capped)
 *   <p>:{t:T}:notify:period        string the last period seen (period.reset notifications)
 *   <p>:{t:T}:billed:<runId>       set    task keys already billed (idempotency)
 *   <p>:{t:T}:scenarios            hash   id → scenario JSON
 *   <p>:{t:T}:enabled              set    enabled scenario ids
 *   <p>:{t:T}:versions:<id>        list   version entries of a scenario (version i at index i-1)
 *   <p>:{t:T}:scenbytes            string bytes of the tenant's version entries (deploy.lua's limit)
 *   <p>:{t:T}:vars:<scenarioId>    hash   name → JSON value
 *   <p>:{t:T}:varsize              hash   scenarioId → bytes of its variables (setvars.lua)
 *   <p>:{t:T}:run:<runId>          hash   record, status, state, scenario, payload, owner, live, crashes, f:<frame>
 *   <p>:{t:T}:run:<runId>:tasks    list   stored tasks, in order
 *   <p>:{t:T}:run:<runId>:outputs  list   the run's outputs, in order
 *   <p>:{t:T}:runs                 zset   runId by start time (ms)
 *   <p>:{t:T}:idem:<sha256>        string runId started by an idempotent trigger (24 h; create.lua)
 *   <p>:{t:T}:keys                 hash   sha256(api key) → created at
 *   <p>:{t:T}:keyused              hash   key id → last used at (ISO)
 *   <p>:{t:T}:secrets              hash   credential name → { v: AES-256-GCM sealed value, updatedAt }
 *   <p>:{t:T}:p:<YYYY-MM>:rejbytes string payload bytes kept for rejected webhooks this period
 *   <p>:{t:T}:p:<YYYY-MM>:rejcount string triggers refused for quota this period (past FLOWMETER_REJECTED_RUNS: not recorded as runs)
 *   <p>:apikeys                    hash   sha256(api key) → tenant
 *   <p>:apikeyids                  hash   key id → <tenant> <sha256(api key)>
 *   <p>:tenants                    set    every tenant with data
 *   {<p>:q<s>}:cron               zset   cron index of queue shard s (tag: shards.ts shardTag; a tenant's
 *                                         scenarios are in shard shardOf(tenant)): tenant\0scenarioId →
 *                                         next instant (ms) to look at, or a negative fresh marker
 *                                         (engine/cron-index.ts)
 *   {<p>:q<s>}:cronat             hash   tenant\0scenarioId → cursor: instant (ms) dealt with
 *   {<p>:q}:cronbuilt             string the shard count the cron index was built for (once, from
 *                                         the scenarios; scheduler start)
 *   <p>:events:<T>                 pubsub task events
 *   <p>:runends:<T>                pubsub run events (a run's end), after its task events
 *
 * Queue shard i (redis/shards.ts; tag `{<p>:q}` for i = 0, `{<p>:q<i>}` after): BullMQ's keys
 * `<tag>:runs:*` and, for runs that took an express place (job ids `<id>e<n>`), `<tag>:express:*`,
 * and the fair dispatcher's (redis/lua/lib-fair.lua, redis/dispatch.ts):
 *
 *   <tag>:f:active                 zset   tenant → virtual time (tenants with runs ready to start)
 *   <tag>:f:parked                 zset   tenant → when to look again, ms (held by a limit)
 *   <tag>:f:where                  hash   runId → { tenant, runId, scenarioId, b: 'r' | job id }
 *   <tag>:f:inflight               zset   runId → when dispatched / last found in its job, ms
 *   <tag>:f:state                  hash   vt:<T>, vclock, seq, rt:<T>, rs:<T>\n<S> (runs started,
 *                                         not released), lt:<T>, ls:<T>\n<S> (limits),
 *                                         why:<T>, why:<T>\n<S> (why runs wait)
 *   <tag>:f:workers                hash   worker id → "capacity expiresAtMs"
 *   <tag>:f:ready:<T>              list   the tenant's ready runs (ref JSON), oldest first
 *   <tag>:f:thr:<T>\n<S>           zset   the scenario's starts in its throttle window (runId → ms)
 */
import { createHash } from 'node:crypto';
import { shardOf, shardTag } from './shards.js';

export class Keys {
  /** `shards`: FLOWMETER_QUEUE_SHARDS (queueShards), the same in every process of a deployment. */
  constructor(
    readonly prefix = 'fm',
    readonly shards = 1,
  ) {}

  /** The cron index shard of a tenant's scenarios. */
  cronShard(tenant: string): number {
    return shardOf(tenant, this.shards);
  }
  cronDue(shard: number): string {
    return `${shardTag(this.prefix, shard)}:cron`;
  }
  cronCursors(shard: number): string {
    return `${shardTag(this.prefix, shard)}:cronat`;
  }
  cronBuilt(): string {
    return `${shardTag(this.prefix, 0)}:cronbuilt`;
  }

  private t(tenant: string): string {
    return `${this.prefix}:{t:${tenant}}`;
  }
  quota(tenant: string): string {
    return `${this.t(tenant)}:quota`;
  }
  period(tenant: string, period: string): string {
    return `${this.t(tenant)}:p:${period}`;
  }
  periodScenarios(tenant: string, period: string): string {
    return `${this.t(tenant)}:p:${period}:scen`;
  }
  periodDays(tenant: string, period: string): string {
    return `${this.t(tenant)}:p:${period}:days`;
  }
  leases(tenant: string, period: string): string {
    return `${this.t(tenant)}:p:${period}:leases`;
  }
  /** Must stay `period(tenant, period) + ':addons'`: lib-lease.lua and lib-settle.lua derive it so. */
  addOns(tenant: string, period: string): string {
    return `${this.period(tenant, period)}:addons`;
  }
  periodConnections(tenant: string, period: string): string {
    return `${this.period(tenant, period)}:conns`;
  }
  plan(tenant: string): string {
    return `${this.t(tenant)}:plan`;
  }
  halted(tenant: string): string {
    return `${this.t(tenant)}:halted`;
  }
  resumeTurn(tenant: string): string {
    return `${this.t(tenant)}:resuming`;
  }
  haltedTenants(): string {
    return `${this.prefix}:halted-tenants`;
  }
  notifySecret(tenant: string): string {
    return `${this.t(tenant)}:notify:secret`;
  }
  notifyLog(tenant: string): string {
    return `${this.t(tenant)}:notify:log`;
  }
  notifyPeriod(tenant: string): string {
    return `${this.t(tenant)}:notify:period`;
  }
  billed(tenant: string, runId: string): string {
    return `${this.t(tenant)}:billed:${runId}`;
  }
  scenarios(tenant: string): string {
    return `${this.t(tenant)}:scenarios`;
  }
  scenarioVersions(tenant: string, scenarioId: string): string {
    return `${this.t(tenant)}:versions:${scenarioId}`;
  }
  scenarioBytes(tenant: string): string {
    return `${this.t(tenant)}:scenbytes`;
  }
  enabled(tenant: string): string {
    return `${this.t(tenant)}:enabled`;
  }
  vars(tenant: string, scenarioId: string): string {
    return `${this.t(tenant)}:vars:${scenarioId}`;
  }
  varSizes(tenant: string): string {
    return `${this.t(tenant)}:varsize`;
  }
  run(tenant: string, runId: string): string {
    return `${this.t(tenant)}:run:${runId}`;
  }
  runOutputs(tenant: string, runId: string): string {
    return `${this.t(tenant)}:run:${runId}:outputs`;
  }
  runTasks(tenant: string, runId: string): string {
    return `${this.t(tenant)}:run:${runId}:tasks`;
  }
  /** `key` names the route target and the client's Idempotency-Key; it is hashed. */
  idempotency(tenant: string, key: string): string {
    return `${this.t(tenant)}:idem:${createHash('sha256').update(key).digest('hex')}`;
  }
  runs(tenant: string): string {
    return `${this.t(tenant)}:runs`;
  }
  apiKeys(tenant: string): string {
    return `${this.t(tenant)}:keys`;
  }
  apiKeyUsed(tenant: string): string {
    return `${this.t(tenant)}:keyused`;
  }
  apiKeyIds(): string {
    return `${this.prefix}:apikeyids`;
  }
  secrets(tenant: string): string {
    return `${this.t(tenant)}:secrets`;
  }
  rejectedBytes(tenant: string, period: string): string {
    return `${this.t(tenant)}:p:${period}:rejbytes`;
  }
  rejectedCount(tenant: string, period: string): string {
    return `${this.t(tenant)}:p:${period}:rejcount`;
  }
  apiKeyIndex(): string {
    return `${this.prefix}:apikeys`;
  }
  tenants(): string {
    return `${this.prefix}:tenants`;
  }
  events(tenant: string): string {
    return `${this.prefix}:events:${tenant}`;
  }
  runEvents(tenant: string): string {
    return `${this.prefix}:runends:${tenant}`;
  }
  /** The hash tag of queue shard `shard` (BullMQ's prefix for its queue). */
  queueTag(shard: number): string {
    return shardTag(this.prefix, shard);
  }
  /** The fair dispatcher's base name in queue shard `shard` (lib-fair.lua's BASE). */
  fairBase(shard: number): string {
    return `${shardTag(this.prefix, shard)}:f`;
  }
  /** KEYS[1..6] of dispatch.lua and sweep.lua: active, parked, where, inflight, state, workers. */
  fair(shard: number): string[] {
    const b = this.fairBase(shard);
    return [`${b}:active`, `${b}:parked`, `${b}:where`, `${b}:inflight`, `${b}:state`, `${b}:workers`];
  }
}
