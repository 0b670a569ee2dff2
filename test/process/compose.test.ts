import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, loadConfig } from '../../src/config.js';
import { fixturePath } from '../../src/demo/itflowDatabase.js';

/**
 * The container files, read as Docker would read them (no Docker needed): docker-compose.yml
 * runs MariaDB, Redis, the intake and a worker built from the Dockerfile, each with settings the
 * service accepts and health checks that can pass; the Dockerfile builds a small non-root image
 * with production dependencies only; .dockerignore keeps everything else out of the context.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

interface Service {
  image?: string;
  container_name?: string;
  pull_policy?: string;
  profiles?: string[];
  restart?: string;
  env_file?: Array<string | { path: string; required?: boolean }>;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  ports?: Array<string | { target: number | string }>;
  depends_on?: string[] | Record<string, { condition?: string; required?: boolean }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  volumes?: Array<string | { type?: string; source?: string; target: string }>;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const service = (name: string) => compose.services[name] as Service;

/**
 * Compose v2's interpolation (`$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, with
 * defaults that nest), given what the shell or `.env` sets. A variable with no default and no
 * value would make `docker compose up` warn and pass an empty string: the test refuses it.
 */
function interpolate(value: string, vars: Record<string, string> = {}): string {
  let out = '';
  let i = 0;
  while (i < value.length) {
    if (value.startsWith('$$', i)) {
      out += '$';
      i += 2;
    } else if (value.startsWith('${', i)) {
      const name = /^[A-Za-z_]\w*/.exec(value.slice(i + 2))?.[0] ?? '';
      let j = i + 2 + name.length;
      const op = value.startsWith(':-', j) ? ':-' : value[j] === '-' ? '-' : value[j] === '}' ? '' : undefined;
      if (name === '' || op === undefined) throw new Error(`interpolation the test does not know: ${value.slice(i)}`);
      j += op.length;
      let depth = 1;
      const start = j;
      for (; depth > 0; j++) {
        if (j >= value.length) throw new Error(`unclosed \${ in ${value}`);
        if (value.startsWith('${', j)) depth++;
        else if (value[j] === '}') depth--;
      }
      const fallback = value.slice(start, j - 1);
      const set = vars[name];
      if (op === '' && set === undefined) {
        throw new Error(`${name} has no default in docker-compose.yml: 'docker compose up' would need it set`);
      }
      out += (op === ':-' ? set || undefined : set) ?? interpolate(fallback, vars);
      i = j;
    } else if (/^\$[A-Za-z_]/.test(value.slice(i))) {
      throw new Error(`${value.slice(i)}: a bare variable with no default`);
    } else {
      out += value[i];
      i++;
    }
  }
  return out;
}

/** A service's environment as its process sees it, compose values interpolated. */
function environmentOf(name: string, vars: Record<string, string> = {}): Record<string, string> {
  const env = service(name).environment ?? {};
  const pairs = Array.isArray(env)
    ? env.map((line) => [line.split('=')[0] as string, line.slice(line.indexOf('=') + 1)])
    : Object.entries(env).map(([key, value]) => [key, String(value ?? '')]);
  return Object.fromEntries(pairs.map(([key, value]) => [key, interpolate(value as string, vars)]));
}

/** The services that run the service's own image (built from the Dockerfile). */
const APP_IMAGE = interpolate(service('intake').image ?? '');
const appServices = () => Object.entries(compose.services).filter(([, s]) => interpolate(s.image ?? '') === APP_IMAGE);

function argv(command: string | string[] | undefined): string[] {
  return typeof command === 'string' ? command.trim().split(/\s+/) : (command ?? []);
}

/** The Dockerfile as stages of instructions (continuation lines joined, comments dropped). */
interface Instruction {
  keyword: string;
  args: string;
}
function dockerfileStages(text: string): Array<{ name: string | null; instructions: Instruction[] }> {
  const lines = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '');
  const stages: Array<{ name: string | null; instructions: Instruction[] }> = [];
  for (const line of lines) {
    const [, keyword = '', args = ''] = /^\s*(\S+)\s*(.*)$/.exec(line) ?? [];
    const instruction = { keyword: keyword.toUpperCase(), args: args.trim() };
    if (instruction.keyword === 'FROM') stages.push({ name: /\bAS\s+(\S+)/i.exec(args)?.[1] ?? null, instructions: [] });
    stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

const stages = dockerfileStages(read('Dockerfile'));
const finalStage = stages.at(-1)?.instructions ?? [];
const inFinal = (keyword: string) => finalStage.filter((i) => i.keyword === keyword);

/** `ENV A=1 B=2` of the final stage: what every container starts with before compose's settings. */
const imageEnv: Record<string, string> = Object.fromEntries(
  inFinal('ENV').flatMap((i) =>
    [...i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((m) => [m[1], (m[2] as string).replace(/^"|"$/g, '')]),
  ),
);

const SERVICES = ['intake', 'worker'] as const;

describe('docker-compose.yml', () => {
  it('runs mariadb, redis, an intake and a worker', () => {
    expect(Object.keys(compose.services)).toEqual(expect.arrayContaining(['mariadb', 'redis', 'intake', 'worker']));
  });

  it('builds one image, once, from the repository’s Dockerfile; every app service runs that image', () => {
    const builders = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
    expect(builders.map(([name]) => name)).toEqual(['intake']);
    const build = service('intake').build;
    const context = typeof build === 'string' ? build : build?.context;
    expect(resolve(ROOT, context as string)).toBe(ROOT);
    const dockerfile = (typeof build === 'object' && build.dockerfile) || 'Dockerfile';
    expect(existsSync(join(ROOT, dockerfile))).toBe(true);

    expect(APP_IMAGE).toMatch(/^itflow-reply-queue:/);
    expect(
      appServices()
        .map(([name]) => name)
        .sort(),
    ).toEqual(['demo-data', 'intake', 'worker']);
    // The others use the image the intake's entry built; they must never look for it in a registry.
    for (const [name, s] of appServices()) if (name !== 'intake') expect(s.pull_policy, name).toBe('never');
  });

  it.each(SERVICES)('the %s runs its own entry point', (name) => {
    const [node, entry] = argv(service(name).command);
    expect(node).toBe('node');
    expect(entry).toBe(`dist/workers/${name}.js`);
  });

  it('every service built from the Dockerfile, and the image’s default, runs an entry point that exists under workers/', () => {
    // tsconfig.build.json compiles workers/*.ts to dist/workers/*.js (rootDir '.', outDir 'dist').
    const base = JSON.parse(read('tsconfig.json')).compilerOptions;
    const build = JSON.parse(read('tsconfig.build.json'));
    expect({ rootDir: base.rootDir, outDir: base.outDir }).toEqual({ rootDir: '.', outDir: 'dist' });
    expect(build.include).toEqual(expect.arrayContaining(['src', 'workers']));

    const defaultCommand = JSON.parse(inFinal('CMD').at(-1)?.args ?? '[]') as string[];
    const commands = [
      defaultCommand,
      ...appServices().map(([, s]) => (s.command === undefined ? defaultCommand : argv(s.command))),
    ];
    for (const [node, entry] of commands) {
      expect(node).toBe('node');
      const source = /^dist\/(workers\/[\w-]+)\.js$/.exec(entry ?? '')?.[1];
      expect(source, `${entry} is not dist/workers/*.js`).toBeDefined();
      expect(existsSync(join(ROOT, `${source}.ts`)), `${source}.ts`).toBe(true);
    }
  });

  it.each(SERVICES)('every variable set for the %s is a setting of the service, and the values pass its validation', (name) => {
    const env = environmentOf(name);
    const known = Object.keys(configSchema.shape);
    expect(Object.keys(env).filter((key) => !known.includes(key))).toEqual([]);
    expect(() => loadConfig({ ...imageEnv, ...env })).not.toThrow();
  });

  it('the intake and worker reach the MariaDB and Redis of this file with the credentials it gives MariaDB', () => {
    const db = environmentOf('mariadb');
    for (const name of SERVICES) {
      const config = loadConfig({ ...imageEnv, ...environmentOf(name) });
      const mysql = new URL(config.DATABASE_URL);
      expect(mysql.hostname).toBe('mariadb');
      expect(decodeURIComponent(mysql.username)).toBe(db.MARIADB_USER);
      expect(decodeURIComponent(mysql.password)).toBe(db.MARIADB_PASSWORD);
      expect(mysql.pathname).toBe(`/${db.MARIADB_DATABASE}`);
      expect(new URL(config.REDIS_URL).hostname).toBe('redis');
    }
  });

  it('the intake publishes the port it listens on, and the worker its health and metrics port', () => {
    const published = (name: string) =>
      (service(name).ports ?? []).map((p) =>
        Number(typeof p === 'string' ? (interpolate(p).split(':').at(-1) as string).replace(/\/(tcp|udp)$/, '') : p.target),
      );
    expect(published('intake')).toContain(loadConfig({ ...imageEnv, ...environmentOf('intake') }).PORT);
    expect(published('worker')).toContain(loadConfig({ ...imageEnv, ...environmentOf('worker') }).WORKER_PORT);
  });

  it('the worker scales (docker compose up --scale worker=3): no container name, and no host port two workers would both claim', () => {
    const worker = service('worker');
    expect(worker.container_name).toBeUndefined();
    const hostPorts = (worker.ports ?? []).map((p) => {
      if (typeof p !== 'string') return (p as { published?: string | number }).published;
      // [host_ip:][host_port:]container_port, the host IP possibly in brackets (IPv6).
      const parts = interpolate(p)
        .replace(/^\[[^\]]*\]:/, 'ip:')
        .split(':');
      return parts.length === 3 ? parts[1] : parts.length === 2 ? parts[0] : '';
    });
    expect(hostPorts.length).toBeGreaterThan(0);
    for (const port of hostPorts) expect(port ?? '', 'a fixed host port: a second worker could not start').toBe('');
    // Set by the operator for a single worker, the port is fixed again.
    expect(interpolate(String(worker.ports?.[0]), { WORKER_PUBLISHED_PORT: '8081' })).toBe('127.0.0.1:8081:8081');
  });

  it('points at a real ITFlow without editing the file: the bundled MariaDB and demo data are a profile, the settings come from the environment or .env', () => {
    expect(service('mariadb').profiles).toEqual(['demo']);
    expect(service('demo-data').profiles).toEqual(['demo']);
    for (const name of ['redis', ...SERVICES]) expect(service(name).profiles, name).toBeUndefined();
    const real = {
      DATABASE_URL: 'mysql://replyqueue:secret@db.example:3306/itflow',
      REDIS_URL: 'redis://cache.example:6379/2',
      ITFLOW_BASE_URL: 'itflow.example.com',
    };
    for (const name of SERVICES) {
      const config = loadConfig({ ...imageEnv, ...environmentOf(name, real) });
      expect(config.DATABASE_URL).toBe(real.DATABASE_URL);
      expect(config.REDIS_URL).toBe(real.REDIS_URL);
      expect(config.ITFLOW_BASE_URL).toBe(real.ITFLOW_BASE_URL);
      // Every other setting of docs/configuration.md reaches the process through .env (optional).
      expect(service(name).env_file).toEqual([{ path: '.env', required: false }]);
      // With the profile off, the bundled database and demo data are neither started nor awaited.
      expect(service(name).depends_on).toMatchObject({
        mariadb: { required: false },
        'demo-data': { condition: 'service_completed_successfully', required: false },
      });
    }
  });

  it('restarts what stops: every long-running service has a restart policy, the one-shot demo data none', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.restart, name).toBe(name === 'demo-data' ? 'no' : 'unless-stopped');
    }
  });

  it('the Dockerfile health check reaches both processes: the worker on WORKER_PORT, the intake on PORT', () => {
    const check = inFinal('HEALTHCHECK').at(-1)?.args ?? '';
    expect(check).toMatch(/\/readyz/);
    expect(check).toMatch(/process\.env\.WORKER_PORT \|\| process\.env\.PORT/);
    expect(loadConfig({ ...imageEnv, ...environmentOf('worker') }).WORKER_PORT).toBeDefined();
    // An intake given WORKER_PORT would have its check knock on a port nothing listens on.
    expect(environmentOf('intake').WORKER_PORT).toBeUndefined();
    for (const name of SERVICES) expect(service(name).healthcheck?.disable).not.toBe(true);
  });

  it.each(SERVICES)('the %s starts only once MariaDB and Redis are healthy', (name) => {
    const dependsOn = service(name).depends_on;
    expect(Array.isArray(dependsOn), 'depends_on needs the long form to carry a condition').toBe(false);
    expect(dependsOn).toMatchObject({ mariadb: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect((dependsOn as Record<string, { required?: boolean }>).redis?.required).not.toBe(false);
  });

  it.each([
    ['mariadb', '/var/lib/mysql'],
    ['redis', '/data'],
  ])('%s has a health check and keeps its data in a named volume', (name, dataDir) => {
    const { healthcheck, volumes = [] } = service(name);
    expect(healthcheck?.disable).not.toBe(true);
    expect(argv(healthcheck?.test).length).toBeGreaterThan(1);
    const mounts = volumes.map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v));
    const data = mounts.find((m) => m.target === dataDir);
    expect(data?.source, `${name} has no volume on ${dataDir}`).toMatch(/^[\w][\w.-]*$/);
    expect(Object.keys(compose.volumes ?? {})).toContain(data?.source);
  });

  it('Redis keeps accepted commands on disk (AOF) and never evicts them', () => {
    const command = argv(service('redis').command).join(' ');
    expect(command).toMatch(/--appendonly yes\b/);
    expect(command).toMatch(/--maxmemory-policy noeviction\b/);
  });
});

describe('Dockerfile', () => {
  it('builds in stages and runs as a user that is not root, with a health check', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const user = inFinal('USER').at(-1)?.args;
    expect(user, 'the final stage sets no USER').toBeDefined();
    expect(user?.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(inFinal('HEALTHCHECK')).toHaveLength(1);
  });

  it('installs with npm ci, and the image gets production dependencies only', () => {
    const runs = (instructions: Instruction[]) => instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    expect(stages.some((s) => runs(s.instructions).some((r) => /\bnpm ci\b/.test(r)))).toBe(true);
    const productionOnly = /\bnpm (ci|prune)\b[^&;|]*--omit[= ]dev\b/;

    // node_modules comes from a stage that installed (or pruned to) production dependencies only…
    const copied = inFinal('COPY').filter((i) => /node_modules/.test(i.args));
    expect(copied).toHaveLength(1);
    const from = /--from=(\S+)/.exec(copied[0]?.args ?? '')?.[1];
    const source = stages.find((s, index) => s.name === from || String(index) === from);
    expect(source, `no stage ${from}`).toBeDefined();
    expect(runs(source?.instructions ?? []).some((r) => productionOnly.test(r))).toBe(true);
    // …and the final stage installs nothing else, nor copies sources it would not run.
    for (const run of runs(finalStage)) expect(run).not.toMatch(/\bnpm (ci|install|i)\b/);
    const fromContext = inFinal('COPY').filter((i) => !/--from=/.test(i.args));
    expect(fromContext.map((i) => i.args.replace(/--\S+\s+/g, '').split(/\s+/)[0]).sort()).toEqual([
      'package.json',
      'test/fixtures',
    ]);
  });

  it('copies in the SQL fixtures the demo database is built from, where the compiled code looks for them', () => {
    // The demo (the compose file's demo-data service) loads fixturePath(…) relative to package.json.
    const fixtures = relative(ROOT, fixturePath('2.6.7'));
    expect(fixtures).toBe('test/fixtures/itflow-2.6.7.sql');
    expect(inFinal('COPY').map((i) => i.args)).toContain('test/fixtures ./test/fixtures');
    expect(inFinal('WORKDIR').at(-1)?.args).toBe('/app');
  });
});

describe('.dockerignore', () => {
  /** Docker's rules: globs from the context root, a match covers what is below it, the last match wins. */
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const exception = line.startsWith('!');
      const glob = line.replace(/^!/, '').replace(/^\/+|\/+$/g, '');
      const source = glob
        .split('/')
        .map((part) =>
          part === '**'
            ? '.*'
            : part
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(.*/)?');
      return { exception, regex: new RegExp(`^${source}(/.*)?$`) };
    });
  const excluded = (path: string) =>
    patterns.reduce((out, pattern) => (pattern.regex.test(path) ? !pattern.exception : out), false);

  const filesUnder = (path: string): string[] =>
    statSync(join(ROOT, path)).isDirectory() ? readdirSync(join(ROOT, path)).flatMap((f) => filesUnder(`${path}/${f}`)) : [path];

  it('lets in every file the Dockerfile copies from the context', () => {
    const sources = stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args))
      .flatMap((i) =>
        i.args
          .replace(/--\S+\s+/g, '')
          .split(/\s+/)
          .slice(0, -1),
      );
    expect(sources.length).toBeGreaterThan(0);
    const missing = sources.flatMap(filesUnder).filter(excluded);
    expect(missing).toEqual([]);
  });

  it('keeps out dependencies, build output, git, bench results, secrets and import files', () => {
    for (const path of [
      'node_modules/zod/package.json',
      'dist/workers/service.js',
      '.git/HEAD',
      'bench/results/latest.json',
      'coverage/index.html',
      '.env',
      'replies.ndjson',
      'replies.ndjson.import-state.json',
      'replies.rejected.ndjson',
      'test/http/openapi.test.ts',
      'test/helpers/harness.ts',
    ]) {
      expect(excluded(path), path).toBe(true);
    }
  });
});
