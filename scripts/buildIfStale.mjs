// Runs `npm run build` unless dist/ is already the build of the sources as they are: the npm
// scripts that run the compiled code (start, start:intake, start:worker, demo, migrate, cli) call
// it first, so they work right after `npm ci` and start at once when nothing changed.
//
// "As they are" is judged by content, not by modification times (a checkout, a copy or an
// extracted archive can give an edited file an older time): a digest of every input — src/,
// workers/, the tsconfig files, package.json and the lock file — is recorded in dist/ after a
// build that succeeded, with the list of files that build left there. The build is run again
// when the digest differs or when one of those files has gone. Plain JavaScript, so it needs
// nothing compiled to run.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = join(ROOT, 'dist');
const STAMP = join(DIST, '.build-stamp.json');
const INPUTS = ['src', 'workers', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];

/** Every file under `path` (or `path` itself), relative to the project, in a stable order. */
function filesUnder(path) {
  const full = join(ROOT, path);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return [path];
  return readdirSync(full, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => filesUnder(join(path, entry.name)));
}

function inputsDigest() {
  const hash = createHash('sha256');
  for (const file of INPUTS.flatMap(filesUnder)) {
    hash
      .update(`${file}\0`)
      .update(readFileSync(join(ROOT, file)))
      .update('\0');
  }
  return hash.digest('hex');
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return null;
  }
}

const digest = inputsDigest();
const stamp = readStamp();
const current =
  stamp !== null &&
  stamp.digest === digest &&
  Array.isArray(stamp.outputs) &&
  stamp.outputs.every((file) => existsSync(join(ROOT, file)));
if (!current) {
  // npm is npm.cmd on Windows, which only a shell runs.
  const build = spawnSync('npm', ['run', 'build', '--silent'], {
    cwd: ROOT,
    stdio: 'inherit',
    shell: process.platform === 'win32',
  });
  if (build.status !== 0) process.exit(build.status ?? 1);
  // The digest read before the build: a source edited while it ran is built next time.
  const outputs = filesUnder('dist').filter((file) => file !== relative(ROOT, STAMP));
  writeFileSync(STAMP, `${JSON.stringify({ digest, outputs })}\n`);
}
