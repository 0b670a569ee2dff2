import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoData } from '../../src/demo/seed.js';
import { type Harness, startHarness } from '../helpers/harness.js';

/**
 * Every curl example in README.md and docs/*.md, run in order (the README first, then the docs
 * by name) against the service on the demo database (as
 * `npm run demo` builds it), checked against the answer the README shows under it: the status
 * line, the headers shown, and the body's shape and values. Where the README abbreviates, `…`
 * inside a string stands for any text (the same abbreviation names the same value throughout,
 * so `command_id=0b6f…` in a later command is the id an earlier answer gave), `…` in an object
 * for more fields, and a date or time is checked for its format only.
 */
const DOCS = new URL('../../docs/', import.meta.url);
const PAGES = [
  { name: 'README.md', text: readFileSync(new URL('../../README.md', import.meta.url), 'utf8') },
  ...readdirSync(DOCS)
    .filter((file) => file.endsWith('.md'))
    .sort()
    .map((file) => ({ name: `docs/${file}`, text: readFileSync(new URL(file, DOCS), 'utf8') })),
];

interface Example {
  page: string;
  heading: string;
  command: string;
  answer: string;
}

interface Curl {
  method: string;
  url: string;
  /** -i: the answer's status line and headers are printed, so the page shows them. */
  include: boolean;
  headers: Record<string, string>;
  body?: string;
}

interface ShownAnswer {
  status?: number;
  headers: Record<string, string>;
  body: unknown;
}

/** Each fenced block holding a curl command, with the unlabelled block right after it (the answer). */
function pageExamples(page: string, markdown: string): Example[] {
  const blocks = [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```\s*$/gm)].map((m) => ({
    lang: m[1] as string,
    text: m[2] as string,
    start: m.index,
    end: m.index + m[0].length,
  }));
  const examples: Example[] = [];
  for (const [i, block] of blocks.entries()) {
    if (block.lang !== 'sh' || !/^\s*curl\s/m.test(block.text)) continue;
    const next = blocks[i + 1];
    if (next?.lang !== '' || markdown.slice(block.end, next.start).trim() !== '') {
      throw new Error(`no answer shown under: ${block.text}`);
    }
    const headings = [...markdown.slice(0, block.start).matchAll(/^#+ (.*)$/gm)];
    examples.push({ page, heading: headings.at(-1)?.[1] ?? '', command: block.text, answer: next.text });
  }
  return examples;
}

/** Shell words of one command: '…' and "…" quoting, backslash-newline continuations, # comments. */
function shellWords(command: string): string[] {
  const words: string[] = [];
  for (const m of command.replace(/\\\n/g, ' ').matchAll(/'([^']*)'|"((?:\\.|[^"\\])*)"|(\S+)/g)) {
    if (m[3]?.startsWith('#')) break;
    words.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? (m[3] as string));
  }
  return words;
}

function parseCurl(command: string): Curl {
  const words = shellWords(command.trim());
  if (words[0] !== 'curl') throw new Error(`not a curl command: ${command}`);
  const curl: Curl = { method: 'GET', url: '', headers: {}, include: false };
  let explicitMethod = false;
  for (let i = 1; i < words.length; i++) {
    const word = words[i] as string;
    if (word === '-X' || word === '--request') {
      curl.method = words[++i] as string;
      explicitMethod = true;
    } else if (word === '-H' || word === '--header') {
      const [name, ...value] = (words[++i] as string).split(':');
      curl.headers[(name as string).trim()] = value.join(':').trim();
    } else if (['-d', '--data', '--data-raw', '--data-binary'].includes(word)) {
      curl.body = words[++i] as string;
      if (!explicitMethod) curl.method = 'POST';
    } else if (/^https?:\/\//.test(word)) {
      curl.url = word;
    } else if (['-i', '-si', '-is', '--include'].includes(word)) {
      curl.include = true;
    } else if (!['-s', '-S', '-sS', '--silent', '--show-error'].includes(word)) {
      throw new Error(`curl option the test does not know: ${word}`);
    }
  }
  return curl;
}

/** The status line, headers and body a page shows; `…` standing alone becomes a marker. */
function parseAnswer(text: string): ShownAnswer {
  const lines = text.trim().split('\n');
  const answer: ShownAnswer = { headers: {}, body: undefined };
  const statusLine = /^HTTP\/[\d.]+ (\d{3})/.exec(lines[0] ?? '');
  if (statusLine) {
    answer.status = Number(statusLine[1]);
    lines.shift();
  }
  while (lines[0] !== undefined && /^[A-Za-z-]+: /.test(lines[0])) {
    const [name, ...value] = (lines.shift() as string).split(': ');
    answer.headers[name as string] = value.join(': ');
  }
  const body = lines.join('\n').trim();
  if (body !== '') {
    answer.body = JSON.parse(body.replace(/,\s*…\s*}/g, ', "…": "…"}').replace(/,\s*…\s*]/g, ', "…"]'));
  }
  return answer;
}

const PLACEHOLDER = /[\w-]*…/g;
const TIMESTAMP = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?Z?$/;

/**
 * Compares what the service answered with what the page shows, binding each abbreviation
 * (`0b6f…`) to the value it stands for. Returns the differences, as paths.
 */
function differences(shown: unknown, actual: unknown, bindings: Map<string, string>, path = '$'): string[] {
  if (typeof shown === 'string' && shown.includes('…')) {
    if (typeof actual !== 'string') return [`${path}: expected a string like ${shown}, got ${JSON.stringify(actual)}`];
    const names: string[] = [];
    const pattern = shown
      .split(PLACEHOLDER)
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .reduce((regex, part, i) => {
        if (i === 0) return part;
        const name = (shown.match(PLACEHOLDER) as string[])[i - 1] as string;
        const bound = bindings.get(name);
        names.push(bound === undefined ? name : '');
        return `${regex}(${bound === undefined ? '.+?' : bound.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')})${part}`;
      }, '');
    const match = new RegExp(`^${pattern}$`).exec(actual);
    if (!match) return [`${path}: ${JSON.stringify(actual)} does not read as ${JSON.stringify(shown)}`];
    names.forEach((name, i) => {
      if (name !== '') bindings.set(name, match[i + 1] as string);
    });
    return [];
  }
  if (typeof shown === 'string' && TIMESTAMP.test(shown)) {
    const format = new RegExp(`^${shown.replace(/\d/g, '\\d').replace('.', '\\.')}$`);
    return typeof actual === 'string' && format.test(actual)
      ? []
      : [`${path}: ${JSON.stringify(actual)} is not a time written like ${shown}`];
  }
  if (Array.isArray(shown)) {
    if (!Array.isArray(actual)) return [`${path}: expected an array, got ${JSON.stringify(actual)}`];
    const open = shown.at(-1) === '…';
    const items = open ? shown.slice(0, -1) : shown;
    if (open ? actual.length < items.length : actual.length !== items.length) {
      return [`${path}: ${actual.length} items where the page shows ${shown.length}`];
    }
    return items.flatMap((item, i) => differences(item, actual[i], bindings, `${path}[${i}]`));
  }
  if (shown !== null && typeof shown === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    }
    const { '…': more, ...fields } = shown as Record<string, unknown>;
    const extra = more === undefined ? Object.keys(actual).filter((key) => !(key in fields)) : [];
    return [
      ...extra.map((key) => `${path}.${key}: answered but not shown`),
      ...Object.entries(fields).flatMap(([key, value]) =>
        key in actual
          ? differences(value, (actual as Record<string, unknown>)[key], bindings, `${path}.${key}`)
          : [`${path}.${key}: shown but not answered`],
      ),
    ];
  }
  return Object.is(shown, actual) ? [] : [`${path}: ${JSON.stringify(actual)} where the page shows ${JSON.stringify(shown)}`];
}

/** The pages' abbreviations in a command, replaced by the values earlier answers gave. */
function substitute(text: string, bindings: Map<string, string>): string {
  return text.replace(PLACEHOLDER, (name) => {
    const value = bindings.get(name);
    if (value === undefined) throw new Error(`${name} in a command, but no earlier answer showed it`);
    return value;
  });
}

const examples = PAGES.flatMap((page) => pageExamples(page.name, page.text));

describe('the curl examples in README.md and docs/, against the demo database', () => {
  let h: Harness;
  const bindings = new Map<string, string>();
  const accepted: string[] = [];

  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7' });
    await seedDemoData(h.config.DATABASE_URL);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('finds the examples: every endpoint section shows one', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
    const urls = examples.map((example) => parseCurl(example.command).url);
    for (const path of ['/create.php', '/read.php', '/commands.php']) expect(urls.some((url) => url.includes(path))).toBe(true);
  });

  it.each(examples.map((example, i) => [i + 1, example.page, example.heading, example] as const))(
    'example %i (%s, %s) answers as shown',
    async (_n, _page, _heading, example) => {
      // A reader pastes the examples one after another: what was queued before has been applied.
      for (const commandId of accepted.splice(0)) await h.finished(commandId);
      const curl = parseCurl(substitute(example.command, bindings));
      const shown = parseAnswer(example.answer);
      // What curl prints is what the page shows: a status line and headers only with -i.
      expect(curl.include, 'an answer showing a status line or headers needs curl -i, and only then').toBe(
        shown.status !== undefined || Object.keys(shown.headers).length > 0,
      );
      const url = curl.url.replace(/^https?:\/\/(localhost|127\.0\.0\.1):8080/, h.url);
      expect(url.startsWith(h.url), `the example talks to ${curl.url}`).toBe(true);

      const response = await fetch(url, { method: curl.method, headers: curl.headers, body: curl.body });
      const body = (await response.json()) as any;
      expect(response.status, JSON.stringify(body)).toBe(shown.status ?? 200);
      const problems = [
        ...Object.entries(shown.headers).flatMap(([name, value]) =>
          differences(value, response.headers.get(name), bindings, `header ${name}`),
        ),
        ...differences(shown.body, body, bindings),
      ];
      expect(problems).toEqual([]);
      for (const item of body.data ?? []) if (item.status === 'queued') accepted.push(item.command_id);
    },
  );
});
