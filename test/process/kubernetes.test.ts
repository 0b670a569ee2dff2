import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { configSchema, loadConfig } from '../../src/config.js';

/**
 * deploy/kubernetes/, read as a cluster would read it (no cluster needed): every manifest is
 * valid against the Kubernetes API's OpenAPI schemas (and KEDA's CRD for the ScaledObject) as the
 * kubernetes-models packages ship them, with no field the schema does not know (a typo such as
 * `readinesProbe` would otherwise be dropped by the API server without a word); and the pieces fit
 * together: the Service finds the intakes, probes reach the ports the processes listen on, every
 * setting is one the service reads and passes its validation, the grace period covers the
 * graceful stop, the autoscalers and disruption budgets point at the Deployments, and the
 * kustomization lists every file.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const DIR = join(ROOT, 'deploy/kubernetes');
const run = promisify(execFile);

// The API kinds the manifests may use: each validated by its model, each typed for the strict check.
const MODELS = {
  'v1/Namespace': { model: Namespace, type: ['kubernetes-models/v1/Namespace', 'INamespace'] },
  'v1/ConfigMap': { model: ConfigMap, type: ['kubernetes-models/v1/ConfigMap', 'IConfigMap'] },
  'v1/Secret': { model: Secret, type: ['kubernetes-models/v1/Secret', 'ISecret'] },
  'v1/Service': { model: Service, type: ['kubernetes-models/v1/Service', 'IService'] },
  'apps/v1/Deployment': { model: Deployment, type: ['kubernetes-models/apps/v1/Deployment', 'IDeployment'] },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    model: HorizontalPodAutoscaler,
    type: ['kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'IHorizontalPodAutoscaler'],
  },
  'policy/v1/PodDisruptionBudget': {
    model: PodDisruptionBudget,
    type: ['kubernetes-models/policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'],
  },
  'keda.sh/v1alpha1/ScaledObject': {
    model: ScaledObject,
    type: ['@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', 'IScaledObject'],
  },
} as const;
type Kind = keyof typeof MODELS;

interface Manifest {
  file: string;
  kindKey: string;
  object: any;
}

const files = readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
  .sort();
const manifests: Manifest[] = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8'))
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
      return doc.toJS();
    })
    .filter((object) => object !== null)
    .map((object) => ({ file, kindKey: `${object.apiVersion}/${object.kind}`, object })),
);
const kustomization = parseYaml(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8'));
/** What `kubectl apply -k` applies: the manifests of the files the kustomization lists. */
const applied = manifests.filter((m) => (kustomization.resources as string[]).includes(m.file));
const named = (kind: string, name: string) =>
  applied.find((m) => m.object.kind === kind && m.object.metadata.name === name)?.object;
const deployments = applied.filter((m) => m.object.kind === 'Deployment').map((m) => m.object);
const deployment = (component: string) =>
  deployments.find((d) => d.spec.template.metadata.labels['app.kubernetes.io/component'] === component);

/** Whether `selector` (matchLabels, or a Service's plain map) selects pods labelled `labels`. */
const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);

/** A container's environment as its process sees it: envFrom's ConfigMaps and Secrets, then env. */
function environmentOf(container: any): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, named('ConfigMap', from.configMapRef.name)?.data);
    if (from.secretRef) Object.assign(env, named('Secret', from.secretRef.name)?.stringData);
  }
  for (const entry of container.env ?? []) env[entry.name] = entry.value;
  return env;
}

/** The containerPort a probe's or Service's port (a name or a number) reaches, or undefined. */
function resolvePort(container: any, port: string | number): number | undefined {
  const ports: Array<{ name?: string; containerPort: number }> = container.ports ?? [];
  return (typeof port === 'number' ? ports.find((p) => p.containerPort === port) : ports.find((p) => p.name === port))
    ?.containerPort;
}

const allContainers = () =>
  deployments.flatMap((d) =>
    [...(d.spec.template.spec.initContainers ?? []), ...d.spec.template.spec.containers].map((c: any) => ({ d, c })),
  );

describe('deploy/kubernetes', () => {
  it('holds the intake and worker Deployments, the intake Service, autoscalers and disruption budgets', () => {
    expect(applied.map((m) => `${m.object.kind} ${m.object.metadata.name}`).sort()).toEqual([
      'ConfigMap reply-queue-config',
      'Deployment reply-queue-intake',
      'Deployment reply-queue-worker',
      'HorizontalPodAutoscaler reply-queue-intake',
      'Namespace itflow-reply-queue',
      'PodDisruptionBudget reply-queue-intake',
      'PodDisruptionBudget reply-queue-worker',
      'ScaledObject reply-queue-worker',
      'Secret reply-queue-secrets',
      'Service reply-queue-intake',
    ]);
  });

  it.each(manifests.map((m) => [`${m.file}: ${m.object.kind} ${m.object.metadata?.name}`, m] as const))(
    '%s is valid against its API schema',
    (_, { kindKey, object }) => {
      const known = MODELS[kindKey as Kind];
      expect(known, `${kindKey} is not a kind this test knows`).toBeDefined();
      expect(() => new known.model(object).validate()).not.toThrow();
    },
  );

  it('no manifest has a field its API schema does not know (the compiler checks them against the models’ types)', async () => {
    // Each document becomes a typed constant: TypeScript's excess-property check rejects any
    // field the kind's interface (generated from the same OpenAPI schemas) does not have.
    const dir = mkdtempSync(join(tmpdir(), 'replyqueue-k8s-'));
    try {
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      const kinds = [...new Set(manifests.map((m) => m.kindKey as Kind))];
      const lines = [
        ...kinds.map((k, i) => `import type { ${MODELS[k].type[1]} as T${i} } from '${MODELS[k].type[0]}';`),
        ...manifests.map((m, i) => `export const m${i}: T${kinds.indexOf(m.kindKey as Kind)} = ${JSON.stringify(m.object)};`),
      ];
      writeFileSync(join(dir, 'manifests.ts'), `${lines.join('\n')}\n`);
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2023',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            types: [],
          },
          files: ['manifests.ts'],
        }),
      );
      const result = await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', dir]).then(
        () => '',
        (error: { stdout?: string }) => String(error.stdout),
      );
      // Each error names its line: say which manifest it is in.
      const problems = result
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          const at = Number(/manifests\.ts\((\d+),/.exec(line)?.[1]) - 1 - kinds.length;
          const m = manifests[at];
          return m ? `${m.file} (${m.object.kind} ${m.object.metadata?.name}): ${line.replace(/^.*error TS\d+: /, '')}` : line;
        });
      expect(problems).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every setting in the ConfigMap, the Secret and the containers’ env is one the service reads, and passes its validation', () => {
    const known = Object.keys(configSchema.shape);
    for (const kind of ['ConfigMap', 'Secret']) {
      for (const m of applied.filter((a) => a.object.kind === kind)) {
        const keys = Object.keys({ ...m.object.data, ...m.object.stringData });
        expect(
          keys.filter((k) => !known.includes(k)),
          `${kind} ${m.object.metadata.name}`,
        ).toEqual([]);
      }
    }
    for (const { d, c } of allContainers()) {
      const env = environmentOf(c);
      expect(
        Object.keys(env).filter((k) => !known.includes(k)),
        `${d.metadata.name}/${c.name}`,
      ).toEqual([]);
      expect(() => loadConfig(env), `${d.metadata.name}/${c.name}`).not.toThrow();
      // Every ConfigMap and Secret a container reads is one of these manifests.
      for (const from of c.envFrom ?? []) {
        const ref = from.configMapRef ? ['ConfigMap', from.configMapRef.name] : ['Secret', from.secretRef.name];
        expect(named(ref[0], ref[1]), `${ref.join(' ')}`).toBeDefined();
      }
    }
  });

  it.each([
    ['intake', 'intake', 'PORT'],
    ['worker', 'worker', 'WORKER_PORT'],
  ] as const)(
    'the %s Deployment runs dist/workers/%s.js, with probes on the port it listens on (%s)',
    (component, entry, portSetting) => {
      const d = deployment(component);
      const [container] = d.spec.template.spec.containers;
      expect(d.spec.template.spec.containers).toHaveLength(1);
      expect(container.command).toEqual(['node', `dist/workers/${entry}.js`]);
      expect(existsSync(join(ROOT, `workers/${entry}.ts`))).toBe(true);
      const listens = loadConfig(environmentOf(container))[portSetting];
      expect(listens).toBeGreaterThan(0);
      expect(container.readinessProbe.httpGet.path).toBe('/readyz');
      expect(container.livenessProbe.httpGet.path).toBe('/healthz');
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        expect(resolvePort(container, container[probe].httpGet.port), `${component} ${probe}`).toBe(listens);
      }
      // Liveness never depends on MySQL or Redis: an outage must not restart every pod.
      expect(container.livenessProbe.httpGet.path).not.toBe('/readyz');
      // Prometheus finds /metrics on the same port.
      expect(Number(d.spec.template.metadata.annotations['prometheus.io/port'])).toBe(listens);
    },
  );

  it('the intake Deployment migrates first with the CLI’s migrate command', () => {
    const [init] = deployment('intake').spec.template.spec.initContainers;
    expect(init.command).toEqual(['node', 'dist/workers/cli.js', 'migrate']);
    expect(readFileSync(join(ROOT, 'workers/cli.ts'), 'utf8')).toContain(".command('migrate')");
  });

  it('each Deployment selects its own pods, and the Service, the disruption budgets and the autoscalers find the right one', () => {
    for (const d of deployments) expect(selects(d.spec.selector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
    const intake = deployment('intake');
    const worker = deployment('worker');
    expect(selects(intake.spec.selector.matchLabels, worker.spec.template.metadata.labels)).toBe(false);
    expect(selects(worker.spec.selector.matchLabels, intake.spec.template.metadata.labels)).toBe(false);

    const service = named('Service', 'reply-queue-intake');
    expect(deployments.filter((d) => selects(service.spec.selector, d.spec.template.metadata.labels))).toEqual([intake]);
    const [container] = intake.spec.template.spec.containers;
    for (const port of service.spec.ports) {
      expect(resolvePort(container, port.targetPort)).toBe(loadConfig(environmentOf(container)).PORT);
    }

    for (const pdb of applied.filter((m) => m.object.kind === 'PodDisruptionBudget').map((m) => m.object)) {
      expect(
        deployments
          .filter((d) => selects(pdb.spec.selector.matchLabels, d.spec.template.metadata.labels))
          .map((d) => d.metadata.name),
      ).toEqual([pdb.metadata.name]);
    }
    const intakeHpa = named('HorizontalPodAutoscaler', intake.metadata.name);
    expect(named('PodDisruptionBudget', intake.metadata.name).spec.minAvailable).toBeLessThan(intakeHpa.spec.minReplicas);

    const scalers = manifests
      .filter((m) => ['HorizontalPodAutoscaler', 'ScaledObject'].includes(m.object.kind))
      .map((m) => m.object);
    for (const scaler of scalers) {
      const target = scaler.spec.scaleTargetRef;
      expect(deployments.map((d) => d.metadata.name)).toContain(target.name);
      expect([target.kind ?? 'Deployment', target.apiVersion ?? 'apps/v1']).toEqual(['Deployment', 'apps/v1']);
    }
    // KEDA makes the worker's HPA itself: one autoscaler per Deployment among what is applied.
    const targets = applied.filter((m) => scalers.includes(m.object)).map((m) => m.object.spec.scaleTargetRef.name);
    expect(targets.sort()).toEqual([intake.metadata.name, worker.metadata.name]);
    // The autoscalers own the replica counts: a Deployment's own would reset them at every apply.
    for (const d of deployments) expect(d.spec.replicas, d.metadata.name).toBeUndefined();
  });

  it('the intake scales on CPU, so every container has a CPU request, and every container has requests and limits', () => {
    const hpa = named('HorizontalPodAutoscaler', 'reply-queue-intake');
    expect(hpa.spec.metrics).toEqual([
      expect.objectContaining({ type: 'Resource', resource: expect.objectContaining({ name: 'cpu' }) }),
    ]);
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    for (const { d, c } of allContainers()) {
      for (const bound of ['requests', 'limits']) {
        expect(Object.keys(c.resources?.[bound] ?? {}).sort(), `${d.metadata.name}/${c.name} ${bound}`).toEqual([
          'cpu',
          'memory',
        ]);
      }
    }
  });

  it('the workers scale on queue depth with the metric the service exports, never past the lanes', () => {
    const scaled = named('ScaledObject', 'reply-queue-worker');
    const worker = deployment('worker');
    expect(scaled.spec.scaleTargetRef.name).toBe(worker.metadata.name);
    const [trigger] = scaled.spec.triggers;
    expect(trigger.type).toBe('prometheus');
    const metrics = [...trigger.metadata.query.matchAll(/\breplyqueue_\w+/g)].map((m: RegExpMatchArray) => m[0]);
    expect(metrics).toEqual(['replyqueue_queue_jobs']);
    const metricSources = readdirSync(join(ROOT, 'src/metrics'))
      .map((f) => readFileSync(join(ROOT, 'src/metrics', f), 'utf8'))
      .join('\n');
    for (const metric of metrics) expect(metricSources).toContain(`'${metric}'`);
    expect(trigger.metadata.query).toContain('state="waiting"');
    expect(metricSources).toMatch(/waiting: \[/);
    expect(Number(trigger.metadata.threshold)).toBeGreaterThan(0);
    // A worker needs a lane to apply anything: no more workers than lanes.
    const lanes = loadConfig(environmentOf(worker.spec.template.spec.containers[0])).QUEUE_PARTITIONS;
    expect(scaled.spec.maxReplicaCount).toBeLessThanOrEqual(lanes);
    // Workers also follow the projection, deliver webhooks and purge: never scaled to zero.
    expect(scaled.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    // The plain-HPA alternative scales the same Deployment within the same bounds.
    const hpa = manifests.find((m) => m.file === 'worker-hpa.yaml')?.object;
    expect(hpa.spec.scaleTargetRef.name).toBe(worker.metadata.name);
    expect(hpa.spec.maxReplicas).toBeLessThanOrEqual(lanes);
  });

  it.each(['intake', 'worker'])('the %s pods get SIGTERM early enough to stop within SHUTDOWN_TIMEOUT_SECONDS', (component) => {
    const pod = deployment(component).spec.template.spec;
    const [container] = pod.containers;
    const shutdown = loadConfig(environmentOf(container)).SHUTDOWN_TIMEOUT_SECONDS;
    // A preStop hook runs before SIGTERM and within the same grace period.
    const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
    const preStopSeconds = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStopSeconds + shutdown + 5);
  });

  it('the pods run as the image’s non-root user, read-only, with nothing extra', () => {
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/^USER node$/m);
    for (const d of deployments) {
      expect(d.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      expect(d.spec.template.spec.automountServiceAccountToken).toBe(false);
    }
    for (const { d, c } of allContainers()) {
      expect(c.securityContext, `${d.metadata.name}/${c.name}`).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
    }
  });

  it('kustomization.yaml lists every manifest (the plain-HPA alternative in a comment), names the image and the namespace', () => {
    expect(kustomization.apiVersion).toBe('kustomize.config.k8s.io/v1beta1');
    expect(kustomization.kind).toBe('Kustomization');
    expect(Object.keys(kustomization).sort()).toEqual(['apiVersion', 'images', 'kind', 'namespace', 'resources']);
    for (const file of kustomization.resources) expect(existsSync(join(DIR, file)), file).toBe(true);
    const commented = [...readFileSync(join(DIR, 'kustomization.yaml'), 'utf8').matchAll(/^\s*#\s*-\s*(\S+\.yaml)\s*$/gm)].map(
      (m) => m[1],
    );
    expect([...kustomization.resources, ...commented].sort()).toEqual(files);
    expect(commented).toEqual(['worker-hpa.yaml']);
    expect(kustomization.namespace).toBe(named('Namespace', kustomization.namespace)?.metadata.name);
    // Objects leave their namespace to the kustomization.
    for (const m of manifests) expect(m.object.metadata.namespace, `${m.file} ${m.object.kind}`).toBeUndefined();
    const images = new Set(allContainers().map(({ c }) => c.image));
    expect([...images]).toEqual([kustomization.images[0].name]);
    expect(kustomization.images).toHaveLength(1);
  });
});
