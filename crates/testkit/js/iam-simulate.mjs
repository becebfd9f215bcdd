// Decides policy-evaluation cases (rolehop's case-file format, the one `rolehop simulate` reads)
// with the independent engine @cloud-copilot/iam-simulate, installed by scripts/tools.sh into
// the tools folder. It is called as a separate program (AGPL-3.0): nothing of it is linked into
// or shipped with rolehop.
//
// stdin: a JSON array of cases. stdout: a JSON array, one entry per case, in order:
//   {"decision": "Allowed"|"ImplicitlyDenied"|"ExplicitlyDenied", "ignoredContextKeys": [...]}
//   or {"error": "..."} when the engine refused the input.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(process.env.ROLEHOP_IAMSIM_DIR + '/');
const { runSimulation } = require('@cloud-copilot/iam-simulate');

const named = (policies, prefix) =>
  (policies || []).map((policy, i) => ({ name: `${prefix}${i}`, policy }));
const levels = (ls, prefix) =>
  (ls || []).map((level, i) => ({
    orgIdentifier: level.orgIdentifier || `${prefix}${i}`,
    policies: named(level.policies, `${prefix}${i}-`),
  }));

const cases = JSON.parse(readFileSync(0, 'utf8'));
const out = [];
for (const c of cases) {
  const r = c.request;
  // A bare ARN names its own account; the object form says it explicitly.
  const resource =
    typeof r.resource === 'string'
      ? { resource: r.resource, accountId: r.resource.split(':')[4] || '' }
      : r.resource;
  const simulation = {
    request: {
      principal: r.principal,
      action: r.action,
      resource,
      contextVariables: r.context || {},
    },
    identityPolicies: named(c.identityPolicies, 'identity'),
    serviceControlPolicies: levels(c.serviceControlPolicies, 'scp'),
    resourceControlPolicies: levels(c.resourceControlPolicies, 'rcp'),
    resourcePolicy: c.resourcePolicy ?? undefined,
    permissionBoundaryPolicies: c.permissionBoundaries ? named(c.permissionBoundaries, 'pb') : undefined,
    sessionPolicy: c.sessionPolicy ?? undefined,
    vpcEndpointPolicies: c.endpointPolicies ? named(c.endpointPolicies, 'vpce') : undefined,
  };
  try {
    const res = await runSimulation(simulation, { simulationMode: 'Strict' });
    if (res.resultType === 'error') {
      out.push({ error: res.errors.message + ' ' + JSON.stringify(res.errors) });
    } else {
      out.push({
        decision: res.overallResult,
        ignoredContextKeys: (res.result && res.result.ignoredContextKeys) || [],
      });
    }
  } catch (e) {
    out.push({ error: String(e) });
  }
}
process.stdout.write(JSON.stringify(out));
