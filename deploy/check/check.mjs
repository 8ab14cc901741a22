// Checks the files under deploy/ offline (CI has no network beyond the
// package registries, so no schema is fetched at run time):
//   - kubernetes/*.yaml: every document against the Kubernetes API's own
//     OpenAPI schemas, bundled in kubernetes-models, then this project's
//     rules for the DaemonSet (host network and PID, read-only root, only
//     the capabilities socktab needs);
//   - grafana/*.json: against dashboard.schema.json (the fields Grafana
//     needs to import a dashboard, written for this project) with ajv, and
//     every panel query refers only to metrics socktab serve exports.
// Prints one line per problem (FILE: where: what) and "N passed, M failed".
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import Ajv from "ajv";

const here = path.dirname(fileURLToPath(import.meta.url));
const deploy = path.resolve(here, "..");
const repo = path.resolve(deploy, "..");
let passed = 0, failed = 0;
const fail = (file, where, what) => { failed++; console.log(`${path.relative(repo, file)}: ${where}: ${what}`); };
const ok = () => { passed++; };

// ---------------------------------------------------------------- Kubernetes
const models = {
  "v1/Namespace": () => import("kubernetes-models/v1/Namespace"),
  "v1/Secret": () => import("kubernetes-models/v1/Secret"),
  "v1/ServiceAccount": () => import("kubernetes-models/v1/ServiceAccount"),
  "v1/Service": () => import("kubernetes-models/v1/Service"),
  "apps/v1/DaemonSet": () => import("kubernetes-models/apps/v1/DaemonSet"),
};

function daemonSetRules(file, ds) {
  const where = `DaemonSet ${ds.metadata?.name}`;
  const spec = ds.spec?.template?.spec ?? {};
  const check = (cond, what) => (cond ? ok() : fail(file, where, what));
  check(spec.hostNetwork === true, "spec.template.spec.hostNetwork must be true (the node's sockets)");
  check(spec.hostPID === true, "spec.template.spec.hostPID must be true (the node's processes)");
  for (const c of spec.containers ?? []) {
    const sc = c.securityContext ?? {};
    const w = `container ${c.name}`;
    check(sc.readOnlyRootFilesystem === true, `${w}: securityContext.readOnlyRootFilesystem must be true`);
    check(sc.privileged !== true, `${w}: must not be privileged`);
    check(sc.allowPrivilegeEscalation === false, `${w}: allowPrivilegeEscalation must be false`);
    const drop = sc.capabilities?.drop ?? [];
    check(drop.includes("ALL"), `${w}: capabilities.drop must include ALL`);
    const allowed = new Set(["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"]);
    for (const cap of sc.capabilities?.add ?? []) {
      check(allowed.has(cap), `${w}: capability ${cap} is not one socktab needs (BPF, PERFMON for options; SYS_PTRACE, DAC_READ_SEARCH for owners)`);
    }
    const args = c.args ?? [];
    const listen = args.find((a) => a.startsWith("--listen="));
    const loopback = !listen || /^--listen=(127\.|\[::1\]|localhost)/.test(listen);
    check(loopback || args.some((a) => a.startsWith("--web.config.file=")) || args.includes("--insecure-listen"),
      `${w}: a non-loopback --listen needs --web.config.file or an explicit --insecure-listen`);
  }
}

async function checkKubernetes(file) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d != null);
  } catch (e) {
    return fail(file, "YAML", e.message);
  }
  for (const [i, doc] of docs.entries()) {
    const key = `${doc.apiVersion}/${doc.kind}`;
    const where = `document ${i + 1} (${doc.kind} ${doc.metadata?.name ?? "?"})`;
    const load = models[key];
    if (!load) {
      fail(file, where, `no schema here for ${key}: add it to deploy/check/check.mjs`);
      continue;
    }
    const mod = await load();
    const Model = mod[doc.kind] ?? mod.default;
    try {
      new Model(doc).validate();
      ok();
    } catch (e) {
      fail(file, where, e.message);
    }
    if (doc.kind === "DaemonSet") daemonSetRules(file, doc);
  }
}

// ------------------------------------------------------------------ Grafana
// The metric names socktab serve exports (serve/metrics.go), read from the
// Go source so that a renamed metric breaks this check.
function exportedMetrics() {
  const src = fs.readFileSync(path.join(repo, "serve", "metrics.go"), "utf8");
  const names = new Set();
  for (const m of src.matchAll(/desc\("([a-z_]+)"/g)) names.add("socktab_" + m[1]);
  return names;
}

function checkGrafana(file, validate, metrics) {
  let dash;
  try {
    dash = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    return fail(file, "JSON", e.message);
  }
  if (validate(dash)) ok();
  else for (const e of validate.errors) fail(file, e.instancePath || "/", e.message);
  const ids = new Set();
  for (const p of dash.panels ?? []) {
    const where = `panel ${p.id} "${p.title}"`;
    if (ids.has(p.id)) fail(file, where, "duplicate panel id");
    ids.add(p.id);
    for (const t of p.targets ?? []) {
      const used = [...(t.expr ?? "").matchAll(/\bsocktab_[a-z_]+/g)].map((m) => m[0]);
      if (used.length === 0) fail(file, where, `query ${t.refId} uses no socktab metric: ${t.expr}`);
      for (const name of used) {
        if (metrics.has(name)) ok();
        else fail(file, where, `query ${t.refId} uses ${name}, which socktab serve does not export`);
      }
    }
  }
}

const k8sDir = path.join(deploy, "kubernetes");
for (const f of fs.readdirSync(k8sDir).filter((f) => /\.ya?ml$/.test(f))) await checkKubernetes(path.join(k8sDir, f));
const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(JSON.parse(fs.readFileSync(path.join(here, "dashboard.schema.json"), "utf8")));
const metrics = exportedMetrics();
const gDir = path.join(deploy, "grafana");
for (const f of fs.readdirSync(gDir).filter((f) => f.endsWith(".json"))) checkGrafana(path.join(gDir, f), validate, metrics);

console.log(`deploy-check: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
