/**
 * Redis key layout. Every key of a tenant carries the hash tag `{t:<tenant>}`, so a tenant's
 * keys share a hash slot (Redis Cluster-ready) and one Lua script may touch them all.
 *
 *   <p>:{t:T}:quota                hash   monthlyActions, overage, timezone, alerts, maxActiveScenarios
 *   <p>:{t:T}:p:<YYYY-MM>          hash   used, overage, nonBillable, addOns, m:<meter>, a:<threshold>
 *   <p>:{t:T}:p:<YYYY-MM>:scen     hash   <scenarioId>:runs, <scenarioId>:actions
 *   <p>:{t:T}:p:<YYYY-MM>:days     hash   <YYYY-MM-DD> → actions
 *   <p>:{t:T}:p:<YYYY-MM>:leases   hash   <runId> → actions it holds (lease.lua)
 *   <p>:{t:T}:billed:<runId>       set    task keys already billed (idempotency)
 *   <p>:{t:T}:scenarios            hash   id → scenario JSON
 *   <p>:{t:T}:enabled              set    enabled scenario ids
 *   <p>:{t:T}:versions:<id>        list   version entries of a scenario (version i at index i-1)
 *   <p>:{t:T}:vars:<scenarioId>    hash   name → JSON value
 *   <p>:{t:T}:run:<runId>          hash   record, status, state, scenario, payload, owner, f:<frame>
 *   <p>:{t:T}:run:<runId>:tasks    list   stored tasks, in order
 *   <p>:{t:T}:run:<runId>:outputs  list   the run's outputs, in order
 *   <p>:{t:T}:runs                 zset   runId by start time (ms)
 *   <p>:{t:T}:keys                 hash   sha256(api key) → created at
 *   <p>:apikeys                    hash   sha256(api key) → tenant
 *   <p>:tenants                    set    every tenant with data
 *   <p>:events:<T>                 pubsub task events
 *   <p>:runends:<T>                pubsub run events (a run's end), after its task events
 */
export class Keys {
  constructor(readonly prefix = 'fm') {}

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
  billed(tenant: string, runId: string): string {
    return `${this.t(tenant)}:billed:${runId}`;
  }
  scenarios(tenant: string): string {
    return `${this.t(tenant)}:scenarios`;
  }
  scenarioVersions(tenant: string, scenarioId: string): string {
    return `${this.t(tenant)}:versions:${scenarioId}`;
  }
  enabled(tenant: string): string {
    return `${this.t(tenant)}:enabled`;
  }
  vars(tenant: string, scenarioId: string): string {
    return `${this.t(tenant)}:vars:${scenarioId}`;
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
  runs(tenant: string): string {
    return `${this.t(tenant)}:runs`;
  }
  apiKeys(tenant: string): string {
    return `${this.t(tenant)}:keys`;
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
}
