// CPU profiles of the service's own processes during a bench run. Node refuses --cpu-prof in
// NODE_OPTIONS, so this hook (loaded with --import, which NODE_OPTIONS allows and every child
// process inherits) starts the inspector's profiler in each service entry point and writes
// `<entry>-<pid>.cpuprofile` into CPU_PROFILE_DIR when the process exits. Other processes (the
// bench itself, npm, the bare pipeline) are left alone.
//
//   CPU_PROFILE_DIR=/tmp/prof NODE_OPTIONS="--import $PWD/bench/profile/cpuProfileHook.mjs" \
//     npm run bench -- --scenarios pipeline --topology split --connections 32
//   npx tsx bench/profile/summary.ts /tmp/prof/worker-*.cpuprofile
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const entry = /dist\/workers\/(\w+)\.js$/.exec(process.argv[1] ?? '')?.[1];
const dir = process.env.CPU_PROFILE_DIR;
if (entry && dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  session.post('Profiler.start');
  // An in-process session answers synchronously, so the profile is written before the exit ends.
  process.on('exit', () => {
    session.post('Profiler.stop', (error, result) => {
      if (!error) writeFileSync(join(dir, `${entry}-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
