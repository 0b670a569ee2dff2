// Where a process's CPU went, from a .cpuprofile (bench/profile/cpuProfileHook.mjs): self time by
// package (or the service's own file), the functions with most self time, and — with
// `--callers NAME` — the call chains that lead to a function (which code does all those socket
// writes?). Shares are of the whole profile, idle included, as sampled.
//
//   npx tsx bench/profile/summary.ts /tmp/prof/intake-123.cpuprofile [--callers writeBuffer] [--top 25]
import { readFileSync } from 'node:fs';
import { Command } from 'commander';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const program = new Command()
  .argument('<profile>', 'a .cpuprofile file')
  .option('--callers <function>', 'the call chains leading to this function')
  .option('--top <n>', 'rows in each table', '20')
  .option('--depth <n>', 'frames in each call chain', '8')
  .parse();
const options = program.opts<{ callers?: string; top: string; depth: string }>();
const profile = JSON.parse(readFileSync(program.args[0] as string, 'utf8')) as Profile;

const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parents = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
const add = <K>(rows: Map<K, number>, key: K, time: number) => rows.set(key, (rows.get(key) ?? 0) + time);
const selfTime = new Map<number, number>();
for (const [i, id] of profile.samples.entries()) add(selfTime, id, profile.timeDeltas[i] ?? 0);
const total = [...selfTime.values()].reduce((sum, t) => sum + t, 0);

/** A frame's home: its npm package, the service's own file, Node's internals, or V8's native work. */
function home({ url, functionName }: CallFrame): string {
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg;
  if (url.includes('/dist/')) return `service: ${url.split('/dist/')[1]}`;
  if (url.startsWith('node:')) return 'node';
  return url === '' ? `(${functionName})` : url;
}
const frame = (f: CallFrame) => `${f.functionName || '(anonymous)'} ${home(f)}:${f.lineNumber}`;

function table(title: string, rows: Map<string, number>): void {
  console.log(`\n${title}`);
  for (const [name, time] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, Number(options.top))) {
    console.log(`${((100 * time) / total).toFixed(1).padStart(6)} %  ${name}`);
  }
}

const byHome = new Map<string, number>();
const byFunction = new Map<string, number>();
const chains = new Map<string, number>();
for (const [id, time] of selfTime) {
  const node = nodes.get(id) as ProfileNode;
  add(byHome, home(node.callFrame), time);
  add(byFunction, frame(node.callFrame), time);
  if (options.callers !== undefined && node.callFrame.functionName === options.callers) {
    const chain: string[] = [];
    for (let at = parents.get(id); at !== undefined && chain.length < Number(options.depth); at = parents.get(at)) {
      chain.push(frame((nodes.get(at) as ProfileNode).callFrame));
    }
    add(chains, chain.join(' < '), time);
  }
}
console.log(`${(total / 1e6).toFixed(1)} s sampled`);
table('Self time by package or file', byHome);
table('Self time by function', byFunction);
if (options.callers !== undefined) table(`Call chains to ${options.callers}`, chains);
