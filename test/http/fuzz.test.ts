import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idBytes, idText } from '../../src/apply/ledger.js';
import { emailNotAvailable, NOTHING_TO_DO, TIME_NEEDS_REPLY } from '../../src/commands/createReply.js';
import { GENERATIONS, type Generation } from '../../src/demo/itflowDatabase.js';
import { chunkIdOf } from '../../src/queue/chunks.js';
import { laneNames } from '../../src/queue/lanes.js';
import { type Harness, startHarness } from '../helpers/harness.js';
import { addTicket, seedWorld, type World } from '../helpers/itflow.js';
import { BULK, CREATE, READ } from '../helpers/paths.js';

/**
 * Hostile input, through real HTTP against a running intake on a real MariaDB and Redis:
 * property-based fuzzing (fast-check) of create.php, bulk.php (JSON array and NDJSON) and
 * read.php with valid, near-valid (one thing wrong) and random bodies, query strings, headers
 * and encodings. Properties: never a 5xx and never a hang; every answer is the v1 envelope
 * with an honest status; a refused request or bulk item queues nothing and writes nothing,
 * an accepted one queues exactly the command that was sent; text in a valid reply is stored
 * byte for byte, or refused with a clear 400 when it cannot be.
 *
 * The intake runs alone first, so every accepted command is still in Redis to be checked
 * against what was sent; then a worker joins, and MySQL must hold exactly the accepted
 * commands' effects and nothing else. Reproduce a failure with FUZZ_SEED (and FUZZ_RUNS to
 * change how many cases each property runs).
 */

const SEED = Number(process.env.FUZZ_SEED ?? 70_402_026);
const runs = (n: number) => Number(process.env.FUZZ_RUNS ?? n);
const BODY_LIMIT = 16_384;
const BULK_MAX = 12;
const LANES = 8;
const TIMEOUT_MS = 10_000;
const HONEST = new Set([200, 201, 202, 400, 401, 403, 404, 409, 413, 415, 422, 429]);
const AUTH_FAILED = 'Authentication failed. API key is invalid or has expired.';
const NOT_JSON = 'The request body is not valid JSON.';
const NOT_UTF8 = 'The request body is not valid UTF-8.';
const NOT_OBJECT = 'The request body must be a JSON object.';
const SEND_JSON = 'Send the request body as JSON, with Content-Type: application/json.';
const TOO_LARGE = `The request body is too large: this endpoint takes at most ${BODY_LIMIT} bytes (16 KiB).`;

/** Cases run per property, over both generations, and the statuses they got: the summary printed at the end. */
const ran: Record<string, number> = {};
const answered: Record<string, Record<number, number>> = {};
const count = (property: string) => {
  ran[property] = (ran[property] ?? 0) + 1;
};
const tally = (property: string, status: number) => {
  const statuses = answered[property] ?? {};
  statuses[status] = (statuses[status] ?? 0) + 1;
  answered[property] = statuses;
};

// ─── Bodies as the wire carries them ────────────────────────────────────────────────────────

/** JSON text written as is (number literals like 1.0, 1e400, -0). */
class Raw {
  constructor(readonly text: string) {}
}
/** An idempotency key made unique when the request is sent, so shrinking never replays one. */
class FreshKey {
  constructor(readonly tail: string) {}
}
let freshSeq = 0;
const ABSENT = Symbol('absent');
type Fields = Array<[string, unknown]>;

function jsonOf(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof FreshKey) return JSON.stringify(`fz${++freshSeq}:${value.tail}`);
  return JSON.stringify(value);
}

function objectText(fields: Fields, pretty = false): string {
  const parts = fields.map(([key, value]) => `${JSON.stringify(key)}${pretty ? ' :\t' : ':'}${jsonOf(value)}`);
  return pretty ? `{\n  ${parts.join(',\r\n  ')}\n}\n` : `{${parts.join(',')}}`;
}

/** Sets a field (every occurrence), or removes it with ABSENT. */
function withField(fields: Fields, key: string, value: unknown): Fields {
  const rest = fields.filter(([k]) => k !== key);
  if (value === ABSENT) return rest;
  const at = fields.findIndex(([k]) => k === key);
  const copy = [...rest];
  copy.splice(at < 0 ? copy.length : Math.min(at, copy.length), 0, [key, value]);
  return copy;
}

const utf8 = (text: string) => new TextEncoder().encode(text);
const byteLength = (text: string) => Buffer.byteLength(text, 'utf8');

// ─── What the service should answer ─────────────────────────────────────────────────────────

/**
 * queued: must be accepted as exactly this command. refused: this status (and message), at
 * the field stage (the body's own fields) or the ticket stage (checked against the database,
 * after the Idempotency-Key header). unknown: any honest answer, with honest bookkeeping.
 */
type Verdict =
  | { kind: 'queued'; ticketId: number; reply: string | null }
  | { kind: 'refused'; status: number; message?: string | RegExp; stage: 'field' | 'ticket' }
  | { kind: 'unknown' };

const refused = (status: number, message?: string | RegExp, stage: 'field' | 'ticket' = 'field'): Verdict => ({
  kind: 'refused',
  status,
  message,
  stage,
});

interface BodyCase {
  fields: Fields;
  verdict: Verdict;
}

type KeyName = 'all' | 'clientA' | 'wrong' | 'expired' | 'none';

interface Fixture {
  generation: Generation;
  world: World;
  /** Open tickets each usable key may write to. */
  writable: Record<'all' | 'clientA', number[]>;
  /** Open tickets outside the client-A key's scope. */
  outsideA: number[];
  closed: number;
  clientOf: Map<number, number>;
}

const inScopeOfA = (fx: Fixture, clientId: number) =>
  clientId === fx.world.clientA || (fx.generation !== '2.4.4' && clientId === 0);

// ─── Arbitraries: text ──────────────────────────────────────────────────────────────────────

const NASTY = [
  "'; DROP TABLE ticket_replies; --",
  '" OR 1=1 -- ',
  "Robert'); DROP TABLE Students;--",
  '\\',
  "\\'",
  '\\\\"',
  '%',
  '_',
  '`',
  '/* */',
  '<script>alert(1)</script>',
  '<img src=x onerror="alert(1)">',
  '&lt;b&gt; &amp;',
  '$' + '{jndi:ldap://x/a}',
  '{{7*7}}',
  '😀',
  '👩‍👩‍👧‍👦',
  '𝕏𝔂𝕫',
  '\u{10FFFF}',
  '\u{1F600}\u{E0067}',
  '\u202Eevil\u202C',
  '\u200F\u200E',
  '\u200B',
  '\uFEFF',
  '\u2028\u2029',
  'e\u0301',
  'ﷺ',
  'Ω≈ç√∫',
  '\u0000',
  'a\u0000b',
  '\u0001\u001f\u007f',
  '\r\n',
  '\t',
  '  padded  ',
  '\\u0000',
  'NULL',
  'null',
  '0x27',
];

const textPart = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 24 }) },
);

/** Reply text with something in it besides whitespace (as the service trims). */
const replyText = fc
  .array(textPart, { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join(''))
  .map((text) => (text.trim() === '' ? `${text}·` : text));

/** A lone surrogate put somewhere in a text (it may pair up with a neighbour; see hasLoneSurrogate). */
const withLoneSurrogate = fc.tuple(replyText, fc.integer({ min: 0xd800, max: 0xdfff }), fc.nat()).map(([text, unit, at]) => {
  const i = at % (text.length + 1);
  return `${text.slice(0, i)}${String.fromCharCode(unit)}${text.slice(i)}`;
});

const hasLoneSurrogate = (text: string) => /\p{Cs}/u.test(text);

/** Latin-1 text a header can carry, without surrounding whitespace. */
/** A header value whose bytes on the wire are `text` in UTF-8 (fetch sends each character as one byte). */
const utf8OnTheWire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

const headerText = (min: number, max: number) =>
  fc
    .string({
      unit: fc
        .oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0xa1, max: 0xff }))
        .map((c) => String.fromCharCode(c)),
      minLength: min,
      maxLength: max,
    })
    .filter((s) => s.length >= min);

const KNOWN_FIELDS = [
  'ticket_id',
  'ticket_reply',
  'public_reply_type',
  'status',
  'hours',
  'minutes',
  'seconds',
  'client_id',
  'idempotency_key',
  'created_at',
  'author',
];
const FORBIDDEN_NAMES = new Set([...KNOWN_FIELDS, 'api_key', '__proto__', 'constructor', 'prototype']);
const extraName = fc
  .oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }), fc.constantFrom('colour', 'limit', 'ticket_status', ''))
  .filter((name) => !FORBIDDEN_NAMES.has(name));

/** Integers in the odd forms v1 clients send. */
const intForm = (n: number) =>
  fc.constantFrom<unknown>(n, String(n), ` ${n} `, `000${n}`, new Raw(`${n}.0`), new Raw(`${n}e0`), new Raw(`${n * 10}e-1`));

/** Values that are not integers, or not in any field's range. */
const NOT_INTEGERS: unknown[] = [
  'abc',
  '1.5',
  '1e3',
  '0x1F',
  '+5',
  ' 12 3',
  '١٢',
  'NaN',
  true,
  false,
  [],
  [1],
  {},
  { value: 1 },
  1.5,
  -0.25,
  new Raw('4.000000000000001'),
  new Raw('1e400'),
  new Raw('123456789012345678901234567890'),
  '99999999999999999999',
  2 ** 53 + 2,
];

// ─── Arbitraries: create.php bodies ─────────────────────────────────────────────────────────

/** A valid create.php body for a ticket the key may write to. */
function validBody(fx: Fixture, key: 'all' | 'clientA'): fc.Arbitrary<BodyCase> {
  const tickets = fx.writable[key];
  const timeField = (max: number) => fc.option(fc.integer({ min: 0, max }).chain(intForm), { nil: ABSENT, freq: 2 });
  return fc
    .record({
      ticket: fc.constantFrom(...tickets).chain((t) => intForm(t).map((form) => ({ t, form }))),
      shape: fc.constantFrom('reply', 'reply+status', 'status'),
      reply: replyText,
      blank: fc.constantFrom<unknown>(ABSENT, null, '', '   ', '\n\t\u00a0'),
      type: fc.constantFrom<unknown>(ABSENT, 0, 1, '0', '1', null, ''),
      status: fc.integer({ min: 1, max: 4 }).chain(intForm),
      noStatus: fc.constantFrom<unknown>(ABSENT, 0, '0', null, ''),
      hours: timeField(838),
      minutes: timeField(59),
      seconds: timeField(59),
      client: fc.constantFrom('absent', 'null', 'zero', 'same'),
      idem: fc.oneof(
        fc.constantFrom<unknown>(ABSENT, null, ''),
        fc.string({ unit: 'binary', maxLength: 40 }).map((tail) => new FreshKey(tail.replace(/ +$/, ''))),
      ),
      extras: fc.array(fc.tuple(extraName, fc.jsonValue({ maxDepth: 2 })), { maxLength: 3 }),
    })
    .map((r): BodyCase => {
      const clientId = fx.clientOf.get(r.ticket.t) ?? 0;
      const withReply = r.shape !== 'status';
      let fields: Fields = [
        ['ticket_id', r.ticket.form],
        ['ticket_reply', withReply ? r.reply : r.blank],
        ['public_reply_type', r.type],
        ['status', r.shape === 'reply' ? r.noStatus : r.status],
        ['hours', withReply ? r.hours : ABSENT],
        ['minutes', withReply ? r.minutes : ABSENT],
        ['seconds', withReply ? r.seconds : ABSENT],
        ['client_id', { absent: ABSENT, null: null, zero: 0, same: clientId === 0 ? ABSENT : clientId }[r.client as 'absent']],
        ['idempotency_key', r.idem],
        ...r.extras,
      ];
      fields = fields.filter(([, value]) => value !== ABSENT);
      return { fields, verdict: { kind: 'queued', ticketId: r.ticket.t, reply: withReply ? r.reply : null } };
    });
}

type Defect = (c: BodyCase) => BodyCase;
const field =
  (key: string, value: unknown, verdict: Verdict): Defect =>
  (c) => ({
    fields: withField(c.fields, key, value),
    verdict,
  });

/** One thing wrong with an otherwise valid body, and what the service must say about it. */
function defects(fx: Fixture, key: 'all' | 'clientA'): fc.Arbitrary<Defect> {
  const closedMessage = /closed/i;
  const list: Array<fc.Arbitrary<Defect>> = [
    fc.constantFrom<unknown>(ABSENT, null, '', '   ').map((v) => field('ticket_id', v, refused(400, 'ticket_id is required.'))),
    fc.constantFrom(...NOT_INTEGERS).map((v) => field('ticket_id', v, refused(400, 'ticket_id must be an integer.'))),
    fc
      .constantFrom<unknown>(0, -1, '-7', '0', new Raw('-0'), 2 ** 31, '2147483648')
      .map((v) => field('ticket_id', v, refused(400, 'ticket_id must be between 1 and 2147483647.'))),
    fc
      .constantFrom(999_999, 2_147_483_647)
      .map((id) => field('ticket_id', id, refused(404, `Ticket ${id} was not found within this API key's scope.`, 'ticket'))),
    fc
      .constantFrom<unknown>(42, true, [], {}, ['x'], new Raw('1e2'))
      .map((v) => field('ticket_reply', v, refused(400, 'ticket_reply must be a string.'))),
    // The harness's ITFlow has no mail server configured, so ITFlow would not email the client.
    fc
      .constantFrom<unknown>(2, '2', ' 2 ')
      .map((v) =>
        field(
          'public_reply_type',
          v,
          refused(
            400,
            emailNotAvailable(
              'ITFlow has no mail server configured (Admin > Settings > Mail: SMTP provider), so it would not email the client',
            ),
            'ticket',
          ),
        ),
      ),
    fc
      .constantFrom<unknown>(3, '7', 2_147_483_647)
      .map((v) =>
        field('public_reply_type', v, refused(400, 'public_reply_type must be 0 (Internal), 1 (Public) or 2 (Public + email).')),
      ),
    fc
      .constantFrom(...NOT_INTEGERS.slice(0, 14))
      .map((v) => field('public_reply_type', v, refused(400, 'public_reply_type must be an integer.'))),
    fc.constantFrom<unknown>(-1, '-3').map((v) => field('status', v, refused(400, 'status must be between 0 and 2147483647.'))),
    fc.constantFrom(...NOT_INTEGERS).map((v) => field('status', v, refused(400, 'status must be an integer.'))),
    fc
      .constantFrom(6, 99, 2_147_483_647)
      .map((s) => field('status', s, refused(400, `status ${s} is not an active ticket status.`, 'ticket'))),
    fc
      .constantFrom<[string, unknown, string]>(
        ['hours', 839, 'hours must be between 0 and 838.'],
        ['hours', -1, 'hours must be between 0 and 838.'],
        ['hours', '1.5', 'hours must be an integer.'],
        ['minutes', 60, 'minutes must be between 0 and 59.'],
        ['minutes', '60', 'minutes must be between 0 and 59.'],
        ['minutes', new Raw('59.5'), 'minutes must be an integer.'],
        ['seconds', 60, 'seconds must be between 0 and 59.'],
        ['seconds', -1, 'seconds must be between 0 and 59.'],
        ['seconds', [], 'seconds must be an integer.'],
      )
      .map(([k, v, message]) => field(k, v, refused(400, message))),
    fc.constantFrom<unknown>('A', 1.5, true).map((v) => field('client_id', v, refused(400, 'client_id must be an integer.'))),
    fc.constant(field('client_id', -1, refused(400, 'client_id must be between 0 and 2147483647.'))),
    fc
      .constantFrom<unknown>(5, true, {}, [])
      .map((v) => field('idempotency_key', v, refused(400, 'idempotency_key must be a string.'))),
    fc.constant(field('idempotency_key', 'k'.repeat(256), refused(400, 'idempotency_key must be at most 255 characters.'))),
    fc.constant<Defect>((c) => ({
      fields: ['ticket_reply', 'status', 'hours', 'minutes', 'seconds'].reduce(
        (fields, k) => withField(fields, k, k === 'ticket_reply' ? ' \t ' : ABSENT),
        c.fields,
      ),
      verdict: refused(400, NOTHING_TO_DO),
    })),
    fc.constant<Defect>((c) => ({
      fields: withField(withField(withField(c.fields, 'ticket_reply', ''), 'status', 2), 'minutes', 5),
      verdict: refused(400, TIME_NEEDS_REPLY),
    })),
    // Cannot be stored as sent: utf8mb4 has no lone surrogates.
    withLoneSurrogate.map((text) =>
      field('ticket_reply', text, hasLoneSurrogate(text) ? refused(400, /^ticket_reply .*surrogate/) : { kind: 'unknown' }),
    ),
    // Would collide with the same key without the spaces in the ledger's (PAD SPACE) unique index.
    fc
      .string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 20 })
      .map((tail) => field('idempotency_key', `fz-${tail} `, refused(400, /^idempotency_key .*space/))),
    fc.constant<Defect>((c) => {
      const ticket = fx.closed;
      return {
        fields: withField(
          withField(withField(c.fields, 'ticket_id', ticket), 'ticket_reply', 'to a closed ticket'),
          'client_id',
          ABSENT,
        ),
        verdict: refused(409, closedMessage, 'ticket'),
      };
    }),
  ];
  // client_id narrowing the key to a client the ticket does not belong to.
  list.push(
    fc.constant<Defect>((c) => {
      const id = c.verdict.kind === 'queued' ? c.verdict.ticketId : 0;
      const other = fx.clientOf.get(id) === fx.world.clientA ? fx.world.clientB : fx.world.clientA;
      return {
        fields: withField(c.fields, 'client_id', other),
        verdict: refused(404, `Ticket ${id} was not found within this API key's scope.`, 'ticket'),
      };
    }),
  );
  if (key === 'clientA' && fx.outsideA.length > 0) {
    list.push(
      fc
        .constantFrom(...fx.outsideA)
        .map((id) => field('ticket_id', id, refused(404, `Ticket ${id} was not found within this API key's scope.`, 'ticket'))),
    );
  }
  return fc.oneof(...list);
}

/** A body that is valid, near-valid (one defect), or random. */
function createBody(fx: Fixture, key: 'all' | 'clientA'): fc.Arbitrary<BodyCase> {
  const random = fc.oneof(
    fc
      .array(
        fc.tuple(
          fc.constantFrom(...KNOWN_FIELDS, 'x', ''),
          fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(...NOT_INTEGERS)),
        ),
        {
          maxLength: 8,
        },
      )
      .map((fields): BodyCase => ({ fields, verdict: { kind: 'unknown' } })),
    fc.tuple(fc.constantFrom(...fx.writable[key]), textPart).map(
      ([t, reply]): BodyCase => ({
        fields: [
          ['ticket_id', t],
          ['ticket_reply', reply],
        ],
        verdict: { kind: 'unknown' },
      }),
    ),
  );
  const nearValid = fc.tuple(validBody(fx, key), defects(fx, key)).map(([body, defect]) => defect(body));
  return fc.oneof(
    { weight: 3, arbitrary: validBody(fx, key) },
    { weight: 4, arbitrary: nearValid },
    { weight: 2, arbitrary: random },
  );
}

// ─── Arbitraries: how the body travels ──────────────────────────────────────────────────────

type Encoding =
  | { kind: 'plain' | 'pretty' | 'bom' }
  | { kind: 'decoy'; value: unknown; at: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'pad'; delta: number }
  | { kind: 'badUtf8'; bytes: readonly number[] };

const encoding: fc.Arbitrary<Encoding> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom<Encoding>({ kind: 'plain' }, { kind: 'pretty' }, { kind: 'bom' }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('decoy' as const),
      value: fc.constantFrom<unknown>('abc', null, [], { x: 1 }, -1, 1.5),
      at: fc.nat(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pad' as const), delta: fc.integer({ min: -6, max: 6 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('badUtf8' as const),
      bytes: fc.constantFrom<readonly number[]>(
        [0xff],
        [0xc3],
        [0xe2, 0x82],
        [0xed, 0xa0, 0x80],
        [0xc0, 0xaf],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
      ),
    }),
  },
);

type ContentType = { kind: 'json' | 'ndjson' | 'other'; value: string | null };
const contentType: fc.Arbitrary<ContentType> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .constantFrom<string | null>(
        'application/json',
        'application/json; charset=utf-8',
        'Application/JSON',
        'application/json;charset=UTF-8',
        'application/vnd.itflow+json',
        'application/merge-patch+json',
        null,
      )
      .map((value): ContentType => ({ kind: 'json', value })),
  },
  { weight: 1, arbitrary: fc.constant<ContentType>({ kind: 'ndjson', value: 'application/x-ndjson' }) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        'text/plain',
        'text/json',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=zz',
        'application/xml',
        'application/jsonx',
        '',
      )
      .map((value): ContentType => ({ kind: 'other', value })),
  },
);

/** Prefer values that never make the intake wait (no worker runs while these are sent). */
const noWaitPrefer = fc.constantFrom(
  undefined,
  'respond-async',
  'wait=0',
  'Wait = 0',
  'wait',
  'wait=',
  'wait=-5',
  'wait=abc',
  'wait=\u00b3',
  'return=minimal',
  'handling=strict; respond-async',
  ';;;,,,',
  'x'.repeat(2000),
);

interface Sent {
  bytes: Uint8Array;
  /** What the body says, when the encoding kept it intact. */
  verdict: Verdict;
  /** Refused before the handler runs (JSON syntax, size, media type), whatever the key. */
  transport?: Verdict;
}

/** Encodes a create.php body; says how the encoding changes the expected answer. */
function encodeCreate(body: BodyCase, how: Encoding): Sent {
  const decoyed = (): Fields => {
    if (how.kind !== 'decoy' || body.fields.length === 0) return body.fields;
    // A duplicated key: JSON.parse keeps the last, so a bad value before the real one is harmless.
    const [name] = body.fields[how.at % body.fields.length] as [string, unknown];
    const at = body.fields.findIndex(([k]) => k === name);
    return [...body.fields.slice(0, at), [name, how.value], ...body.fields.slice(at)];
  };
  const text = objectText(decoyed(), how.kind === 'pretty');
  switch (how.kind) {
    case 'bom':
      return { bytes: utf8(`\uFEFF${text}`), verdict: body.verdict };
    case 'truncate': {
      const cut = 1 + (how.at % (text.length - 1));
      // Cutting between the halves of a surrogate pair would make the text itself invalid.
      const safe = /[\uD800-\uDBFF]/.test(text.charAt(cut - 1)) ? cut - 1 : cut;
      return { bytes: utf8(text.slice(0, Math.max(1, safe))), verdict: body.verdict, transport: refused(400, NOT_JSON) };
    }
    case 'pad': {
      // An unknown field filled up to a few bytes either side of the limit.
      const target = BODY_LIMIT + how.delta;
      const open = `${text.trimEnd().slice(0, -1)}${body.fields.length > 0 ? ',' : ''}"zz_padding":"`;
      const padding = target - byteLength(open) - byteLength('"}');
      if (padding < 0) return { bytes: utf8(text), verdict: body.verdict };
      const padded = `${open}${'p'.repeat(padding)}"}`;
      expect(byteLength(padded)).toBe(target);
      return {
        bytes: utf8(padded),
        verdict: body.verdict,
        transport: target > BODY_LIMIT ? refused(413, TOO_LARGE) : undefined,
      };
    }
    case 'badUtf8': {
      // Bytes that are not UTF-8 inside a string value: the reply's if there is one.
      const bytes = Buffer.from(text, 'utf8');
      const marker = Buffer.from('"ticket_reply":"', 'utf8');
      const at = bytes.indexOf(marker);
      if (at < 0) return { bytes: utf8(text), verdict: body.verdict };
      const split = at + marker.length;
      return {
        bytes: Buffer.concat([bytes.subarray(0, split), Buffer.from(how.bytes), bytes.subarray(split)]),
        verdict: body.verdict,
        transport: refused(400, NOT_UTF8),
      };
    }
    default:
      return { bytes: utf8(text), verdict: body.verdict };
  }
}

/**
 * What create.php must answer, in the order the service decides: a key in the header or query
 * string before the body is read; then body size, media type and JSON syntax; then a missing
 * key; then the fields, the Idempotency-Key header, and last what only the database can tell
 * (ticket, scope, status).
 */
function expectedCreate(c: { key: KeyName; contentType: ContentType; idempotencyHeader: string | null }, sent: Sent): Verdict {
  const transport = sent.transport?.kind === 'refused' ? sent.transport : null;
  if (c.key === 'wrong' || c.key === 'expired') return refused(401, AUTH_FAILED);
  // An empty Content-Type is refused before the body is read, so even an oversized one gets 415.
  if (c.contentType.value === '') return refused(415, SEND_JSON);
  if (transport?.status === 413) return transport;
  if (c.contentType.kind === 'other') return refused(415, SEND_JSON);
  if (c.contentType.kind === 'json' && transport) return transport;
  // The NDJSON parser reads the body as UTF-8 too, before the key is looked at.
  if (c.contentType.kind === 'ndjson' && transport?.message === NOT_UTF8) return transport;
  if (c.key === 'none') return refused(401, AUTH_FAILED);
  if (c.contentType.kind === 'ndjson') return refused(400, NOT_OBJECT);
  const verdict = sent.verdict;
  // The header's bytes are read as UTF-8 (a wire string here holds one character per byte).
  const headerBytes = c.idempotencyHeader === null ? null : Buffer.from(c.idempotencyHeader, 'latin1');
  const headerProblem =
    headerBytes === null
      ? null
      : !isUtf8(headerBytes)
        ? 'The Idempotency-Key header must be UTF-8 text.'
        : headerBytes.toString('utf8').length > 255
          ? 'Idempotency-Key must be at most 255 characters.'
          : null;
  if (headerProblem && (verdict.kind === 'queued' || (verdict.kind === 'refused' && verdict.stage === 'ticket'))) {
    return refused(400, headerProblem);
  }
  return verdict;
}

// ─── Talking to the service ─────────────────────────────────────────────────────────────────

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

async function send(
  h: Harness,
  method: 'GET' | 'POST',
  path: string,
  { headers = {}, body }: { headers?: Record<string, string>; body?: Uint8Array } = {},
): Promise<Answer> {
  let response: Response;
  try {
    response = await fetch(`${h.url}${path}`, { method, headers, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError';
    throw new Error(`${method} ${path}: ${timedOut ? `no answer within ${TIMEOUT_MS} ms` : (error as Error).message}`);
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${method} ${path} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
  }
  return { status: response.status, headers: response.headers, body: parsed, text };
}

/** Never a 5xx; always the v1 envelope, its "success" agreeing with the status. */
function expectEnvelope(answer: Answer): void {
  const context = `${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, context).toBeLessThan(500);
  expect(HONEST.has(answer.status), context).toBe(true);
  expect(answer.headers.get('content-type'), context).toMatch(/^application\/json/);
  const body = answer.body;
  expect(typeof body === 'object' && body !== null && !Array.isArray(body), context).toBe(true);
  if (answer.status < 300) {
    expect(body.success, context).toBe('True');
    expect(Array.isArray(body.data), context).toBe(true);
    expect(body.count, context).toBe(body.data.length);
  } else {
    expect(body.success, context).toBe('False');
    expect(typeof body.message === 'string' && body.message.length > 0, context).toBe(true);
    // Nothing internal: no stack frames, driver error codes or the catch-all.
    expect(body.message, context).not.toMatch(/\n\s+at |node_modules|\bER_[A-Z_]{3,}|sqlMessage|Internal error/);
  }
}

function expectVerdict(answer: Answer, verdict: Verdict, context: string): void {
  if (verdict.kind === 'queued') {
    expect(answer.status, `${context} → ${answer.text.slice(0, 300)}`).toBe(202);
    expect(answer.body.data[0]).toEqual({ command_id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'queued' });
  } else if (verdict.kind === 'refused') {
    expect(answer.status, `${context} → ${answer.text.slice(0, 300)}`).toBe(verdict.status);
    if (typeof verdict.message === 'string') expect(answer.body.message, context).toBe(verdict.message);
    else if (verdict.message) expect(answer.body.message, context).toMatch(verdict.message);
  }
}

// ─── The queue, seen from Redis ─────────────────────────────────────────────────────────────

interface QueuedCommand {
  commandId: string;
  ticketId: number;
  reply: string | null;
}

class QueueProbe {
  readonly redis: Redis;
  /** Every command the intake accepted, by id: what the reconciliation expects in MySQL. */
  readonly accepted = new Map<string, QueuedCommand>();

  constructor(
    url: string,
    private readonly prefix: string,
  ) {
    this.redis = new Redis(url);
  }

  /** Jobs waiting or being applied, over every lane. */
  async jobs(): Promise<number> {
    const pipeline = this.redis.pipeline();
    for (const lane of laneNames(LANES, 'standalone')) {
      pipeline.llen(`${this.prefix}:${lane}:wait`);
      pipeline.llen(`${this.prefix}:${lane}:active`);
    }
    const answers = (await pipeline.exec()) ?? [];
    return answers.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
  }

  /** The commands a job holds (one, or a chunk's), or null when no lane has it. */
  async job(jobId: string): Promise<QueuedCommand[] | null> {
    const pipeline = this.redis.pipeline();
    for (const lane of laneNames(LANES, 'standalone')) pipeline.hget(`${this.prefix}:${lane}:${jobId}`, 'data');
    const found = ((await pipeline.exec()) ?? []).map(([, data]) => data).find((data) => typeof data === 'string');
    if (typeof found !== 'string') return null;
    const data = JSON.parse(found);
    const commands = data.kind === 'chunk' ? data.commands : [data];
    return commands.map((job: any) => ({
      commandId: job.commandId,
      ticketId: job.command.ticketId,
      reply: job.command.reply?.body ?? null,
    }));
  }

  /** A command still in Redis, in a job of its own or in a chunk (bulk.php's). */
  async command(commandId: string): Promise<QueuedCommand | null> {
    const alone = await this.job(commandId);
    const inChunk = alone ?? (await this.job(chunkIdOf(commandId)));
    return inChunk?.find((c) => c.commandId === commandId) ?? null;
  }

  close(): void {
    this.redis.disconnect();
  }
}

// ─── The world the requests land in ─────────────────────────────────────────────────────────

async function buildFixture(h: Harness, generation: Generation): Promise<Fixture> {
  const world = await seedWorld(h.db, generation);
  const spec: Array<[number, boolean]> = [
    [world.clientA, false],
    [world.clientA, false],
    [world.clientA, false],
    [world.clientB, false],
    [world.clientB, false],
    [0, false],
    [world.clientA, true],
  ];
  const clientOf = new Map<number, number>();
  let closed = 0;
  const open: number[] = [];
  for (const [clientId, isClosed] of spec) {
    const id = await addTicket(h.db, generation, {
      clientId,
      ...(isClosed ? { status: 5, closedAt: '2026-01-02 10:00:00', resolvedAt: '2026-01-02 10:00:00' } : {}),
    });
    clientOf.set(id, clientId);
    if (isClosed) closed = id;
    else open.push(id);
  }
  const fx: Fixture = {
    generation,
    world,
    writable: { all: open, clientA: [] },
    outsideA: [],
    closed,
    clientOf,
  };
  fx.writable.clientA = open.filter((t) => inScopeOfA(fx, clientOf.get(t) ?? 0));
  fx.outsideA = open.filter((t) => !inScopeOfA(fx, clientOf.get(t) ?? 0));

  // Replies ITFlow wrote itself, enough that a page of 500 is not the whole table.
  const tickets = [...clientOf.keys()];
  const rows = Array.from({ length: 640 }, (_, i) => [
    `${NASTY[i % NASTY.length]} #${i}`,
    ['Internal', 'Public', 'Client'][i % 3],
    '00:01:00',
    '2026-01-01 09:00:00',
    i % 9 === 4 ? '2026-01-03 09:00:00' : null,
    0,
    tickets[(i * 7) % tickets.length],
  ]);
  await h.db.query(
    `INSERT INTO ticket_replies (ticket_reply, ticket_reply_type, ticket_reply_time_worked, ticket_reply_created_at,
                                 ticket_reply_archived_at, ticket_reply_by, ticket_reply_ticket_id) VALUES ?`,
    [rows],
  );
  return fx;
}

const keyHeaders = (
  fx: Fixture,
  key: KeyName,
  placement: 'header' | 'query',
): { headers: Record<string, string>; query: string } => {
  const secret = {
    all: fx.world.keys.all,
    clientA: fx.world.keys.clientA,
    expired: fx.world.keys.expired,
    wrong: 'not-a-key',
    none: '',
  }[key];
  if (key === 'none') return { headers: {}, query: '' };
  return placement === 'header'
    ? { headers: { 'X-API-Key': secret }, query: '' }
    : { headers: {}, query: `?api_key=${encodeURIComponent(secret)}` };
};

interface TicketState {
  status: string;
  updatedAt: string | null;
  replies: number;
}

async function ticketStates(h: Harness): Promise<Map<number, TicketState>> {
  const rows = await h.query<RowDataPacket>(
    `SELECT t.ticket_id, t.ticket_status, t.ticket_updated_at, t.ticket_closed_at,
            (SELECT COUNT(*) FROM ticket_replies r WHERE r.ticket_reply_ticket_id = t.ticket_id) AS replies
     FROM tickets t`,
  );
  return new Map(
    rows.map((r) => [
      Number(r.ticket_id),
      { status: String(r.ticket_status), updatedAt: r.ticket_updated_at, replies: Number(r.replies) },
    ]),
  );
}

// ─── The properties ─────────────────────────────────────────────────────────────────────────

describe.each(GENERATIONS)('hostile input (ITFlow %s)', (generation: Generation) => {
  let h: Harness;
  let fx: Fixture;
  let queue: QueueProbe;
  let before: Map<number, TicketState>;
  let lastReplyBefore: number;
  const options = (n: number) => ({ seed: SEED, numRuns: runs(n) });

  beforeAll(async () => {
    h = await startHarness({
      generation,
      // The intake alone: accepted commands stay in Redis to be compared with what was sent.
      roles: { intake: true, worker: false },
      env: {
        BODY_LIMIT_BYTES: String(BODY_LIMIT),
        BULK_BODY_LIMIT_BYTES: String(4 * BODY_LIMIT),
        BULK_MAX_ITEMS: String(BULK_MAX),
        BULK_CHUNK_SIZE: '3',
        QUEUE_PARTITIONS: String(LANES),
        PREFER_WAIT_MAX_SECONDS: '10',
      },
    });
    fx = await buildFixture(h, generation);
    queue = new QueueProbe(h.config.REDIS_URL, h.config.QUEUE_PREFIX);
    before = await ticketStates(h);
    const [row] = await h.query<RowDataPacket>('SELECT MAX(ticket_reply_id) AS id FROM ticket_replies');
    lastReplyBefore = Number(row?.id);
  });
  afterAll(async () => {
    queue?.close();
    await h?.close();
  });

  /**
   * Checks a create.php answer's bookkeeping: an accepted command is one new job holding
   * exactly what was sent; anything else left the queue as it was.
   */
  async function expectQueuedOnce(answer: Answer, jobsBefore: number, verdict: Verdict, context: string): Promise<void> {
    const jobsAfter = await queue.jobs();
    if (answer.status !== 202) {
      expect(jobsAfter, `${context}: a refused request queued something`).toBe(jobsBefore);
      return;
    }
    expect(answer.headers.get('location')).toMatch(/commands\.php\?command_id=/);
    expect(jobsAfter, `${context}: an accepted request must queue exactly one job`).toBe(jobsBefore + 1);
    const commandId = answer.body.data[0].command_id as string;
    const command = await queue.command(commandId);
    expect(command, `${context}: no job holds ${commandId}`).not.toBeNull();
    if (verdict.kind === 'queued') {
      expect(command, context).toEqual({ commandId, ticketId: verdict.ticketId, reply: verdict.reply });
    }
    queue.accepted.set(commandId, command as QueuedCommand);
  }

  it('create.php: valid, near-valid and random bodies, headers and encodings get honest answers; refused ones queue nothing', async () => {
    const keyName = fc.oneof(
      { weight: 8, arbitrary: fc.constant<KeyName>('all') },
      { weight: 3, arbitrary: fc.constant<KeyName>('clientA') },
      { weight: 3, arbitrary: fc.constantFrom<KeyName>('wrong', 'expired', 'none') },
    );
    const arbitrary = keyName.chain((key) =>
      fc.record({
        key: fc.constant(key),
        placement: fc.constantFrom<'header' | 'query'>('header', 'header', 'query'),
        body: createBody(fx, key === 'clientA' ? 'clientA' : 'all'),
        encoding,
        contentType,
        prefer: noWaitPrefer,
        // As sent on the wire, one character per byte: UTF-8 text as clients send it, or raw bytes.
        idempotencyHeader: fc.oneof(
          { weight: 6, arbitrary: fc.constant<string | null>(null) },
          { weight: 1, arbitrary: headerText(1, 60).map((s) => utf8OnTheWire(`fz-h${++freshSeq}-${s}`)) },
          { weight: 1, arbitrary: headerText(256, 300).map(utf8OnTheWire) },
          { weight: 1, arbitrary: headerText(1, 60).map((s) => `fz-h${++freshSeq}-${s}`) },
        ),
        requestId: fc.option(headerText(1, 80), { nil: undefined }),
        bodyShape: fc.oneof(
          { weight: 12, arbitrary: fc.constant<string | null>(null) },
          { weight: 1, arbitrary: fc.constantFrom('[]', '[{"ticket_id": 1}]', '5', '"text"', 'true', 'null', '') },
        ),
      }),
    );
    await fc.assert(
      fc.asyncProperty(arbitrary, async (c) => {
        count('create.php');
        const auth = keyHeaders(fx, c.key, c.placement);
        let sent = encodeCreate(c.body, c.encoding);
        if (c.bodyShape !== null) {
          // Not an object at all.
          const shape = c.bodyShape.trim();
          sent = {
            bytes: utf8(c.bodyShape),
            verdict: shape === '' || shape === 'null' ? refused(400, 'ticket_id is required.') : refused(400, NOT_OBJECT),
          };
        }
        const headers: Record<string, string> = { ...auth.headers };
        if (c.contentType.value !== null) headers['Content-Type'] = c.contentType.value;
        if (c.prefer !== undefined) headers.Prefer = c.prefer;
        if (c.idempotencyHeader !== null) headers['Idempotency-Key'] = c.idempotencyHeader;
        if (c.requestId !== undefined) headers['X-Request-Id'] = c.requestId;

        const verdict = expectedCreate(c, sent);
        const jobsBefore = await queue.jobs();
        const answer = await send(h, 'POST', `${CREATE}${auth.query}`, { headers, body: sent.bytes });
        tally('create.php', answer.status);
        const context = `${c.key} ${JSON.stringify(headers['Content-Type'])} ${Buffer.from(sent.bytes).toString('utf8').slice(0, 200)}`;
        expectEnvelope(answer);
        expectVerdict(answer, verdict, context);
        await expectQueuedOnce(answer, jobsBefore, verdict, context);
      }),
      options(300),
    );
  }, 180_000);

  it('bulk.php: JSON arrays and NDJSON of mixed items; each item answered in order, only the valid ones queued', async () => {
    const itemBody = fc.oneof(
      { weight: 6, arbitrary: createBody(fx, 'all') },
      {
        weight: 2,
        arbitrary: fc
          .tuple(
            validBody(fx, 'all'),
            fc.constantFrom<[unknown, Verdict | null]>(
              ['2025-01-02 03:04:05', null],
              ['2025-01-02T03:04:05Z', null],
              ['2025-06-30T23:59:59.999+05:30', null],
              [' 2024-02-29 12:00:00 ', null],
              ['', null],
              [null, null],
              ['2025-02-30 10:00:00', refused(400, 'created_at is not a valid date and time.')],
              ['2999-01-01 00:00:00', refused(400, 'created_at is in the future.')],
              ['2999-01-01T00:00:00Z', refused(400, 'created_at is in the future.')],
              ['yesterday', refused(400, /^created_at must be ISO 8601/)],
              ["2025-01-02'; DROP TABLE tickets; --", refused(400, /^created_at must be ISO 8601/)],
              [12345, refused(400, 'created_at must be a string.')],
              ['2025-01-02T03:04:05', refused(400, /^created_at must be ISO 8601/)],
            ),
          )
          .map(
            ([body, [createdAt, verdict]]): BodyCase => ({
              fields: withField(body.fields, 'created_at', createdAt),
              verdict: verdict ?? body.verdict,
            }),
          ),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(validBody(fx, 'all'), fc.constantFrom<unknown>('x', 5, [], {}, { user_id: 1, contact_id: 2 }, { name: 'x' }))
          .map(
            ([body, author]): BodyCase => ({
              fields: withField(withField(body.fields, 'ticket_reply', 'by someone'), 'author', author),
              verdict: refused(400, 'author must be {"user_id": n} or {"contact_id": n}.'),
            }),
          ),
      },
    );
    const item = fc.oneof(
      { weight: 12, arbitrary: itemBody.map((body) => ({ text: null as string | null, body })) },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom('5', '"text"', '[1]', 'null', 'true')
          .map((text) => ({ text: text as string | null, body: { fields: [], verdict: refused(400, NOT_OBJECT) } as BodyCase })),
      },
    );
    const arbitrary = fc.record({
      items: fc.oneof(
        { weight: 12, arbitrary: fc.array(item, { minLength: 1, maxLength: 6 }) },
        { weight: 1, arbitrary: fc.array(item, { minLength: BULK_MAX + 1, maxLength: BULK_MAX + 2 }) },
      ),
      format: fc.constantFrom('json', 'json', 'ndjson'),
      // NDJSON extras: blank lines, CRLF endings, lines that are not JSON.
      garbage: fc.array(fc.tuple(fc.nat(), fc.constantFrom('', '   ', '\r', '{oops', '[1,', '{"ticket_id": 1,', '\u0000')), {
        maxLength: 3,
      }),
      crlf: fc.boolean(),
      key: fc.constantFrom<KeyName>('all', 'all', 'all', 'all', 'all', 'all', 'wrong'),
      dryRun: fc.constantFrom(false, false, false, false, true),
      prefer: noWaitPrefer,
      shape: fc.oneof(
        { weight: 20, arbitrary: fc.constant<string | null>(null) },
        { weight: 1, arbitrary: fc.constantFrom('{"ticket_id": 1}', '[]', '"x"', '', 'null') },
      ),
    });
    await fc.assert(
      fc.asyncProperty(arbitrary, async (c) => {
        count('bulk.php');
        // The wire text and each item's expected result, in the order the service will see them.
        const expected: Verdict[] = [];
        let text: string;
        if (c.format === 'json') {
          text = `[${c.items.map((i) => i.text ?? objectText(i.body.fields)).join(',\n')}]`;
          for (const i of c.items) expected.push(i.body.verdict);
        } else {
          const lines = c.items.map((i) => ({
            line: i.text ?? objectText(i.body.fields),
            verdict: i.body.verdict as Verdict | null,
          }));
          for (const [at, junk] of c.garbage) lines.splice(at % (lines.length + 1), 0, { line: junk, verdict: null });
          const eol = c.crlf ? '\r\n' : '\n';
          text = lines.map((l) => l.line).join(eol);
          lines.forEach((l, n) => {
            if (l.line.trim() === '' && !l.line.includes('\u0000')) return;
            expected.push(l.verdict ?? refused(400, `Line ${n + 1} is not valid JSON.`));
          });
        }
        // A body that is not an array of commands (JSON only: in NDJSON every line is an item).
        const shape = c.format === 'json' ? c.shape : null;
        const body = shape ?? text;
        let whole: Verdict | null = null;
        if (c.key === 'wrong') whole = refused(401, AUTH_FAILED);
        else if (shape !== null) {
          whole = shape === '[]' ? refused(400, 'The request carries no commands.') : refused(400, /JSON array of commands/);
        } else if (expected.length === 0) whole = refused(400, 'The request carries no commands.');
        else if (expected.length > BULK_MAX) {
          // NDJSON is parsed no further than the line past the limit, so its count is not known.
          const count = c.format === 'json' ? expected.length : 'more';
          whole = refused(413, `A bulk request may carry at most ${BULK_MAX} commands; this one has ${count}.`);
        }
        const contentTypeHeader = c.format === 'json' ? 'application/json' : 'application/x-ndjson';
        const headers: Record<string, string> = { 'X-API-Key': c.key === 'all' ? fx.world.keys.all : 'not-a-key' };
        headers['Content-Type'] = contentTypeHeader;
        if (c.prefer !== undefined) headers.Prefer = c.prefer;
        const jobsBefore = await queue.jobs();
        const answer = await send(h, 'POST', `${BULK}${c.dryRun ? '?dry_run=1' : ''}`, { headers, body: utf8(body) });
        tally('bulk.php', answer.status);
        const context = `${c.format} ${c.dryRun ? 'dry run ' : ''}${body.slice(0, 400)}`;
        expectEnvelope(answer);
        const jobsAfter = await queue.jobs();

        if (whole) {
          expectVerdict(answer, whole, context);
          expect(jobsAfter, context).toBe(jobsBefore);
          return;
        }
        const results = answer.body.data as any[];
        expect(results, context).toHaveLength(expected.length);
        const queuedIds: string[] = [];
        results.forEach((result, i) => {
          const verdict = expected[i] as Verdict;
          const at = `${context} — item ${i}: ${JSON.stringify(result)}`;
          if ('http_status' in result) {
            expect(result.http_status, at).toBeGreaterThanOrEqual(400);
            expect(result.http_status, at).toBeLessThan(500);
            expect(typeof result.message, at).toBe('string');
          }
          if (verdict.kind === 'queued') {
            expect(result, at).toEqual(
              c.dryRun ? { status: 'valid' } : { command_id: expect.stringMatching(/^[0-9a-f-]{36}$/), status: 'queued' },
            );
          } else if (verdict.kind === 'refused') {
            expect(result.http_status, at).toBe(verdict.status);
            if (typeof verdict.message === 'string') expect(result.message, at).toBe(verdict.message);
            else if (verdict.message) expect(result.message, at).toMatch(verdict.message);
          }
          if (result.status === 'queued') queuedIds.push(result.command_id);
        });
        const anyQueued = queuedIds.length > 0;
        expect(answer.status, context).toBe(c.dryRun ? 200 : anyQueued ? 202 : 400);

        // Exactly the queued items are in Redis, in chunks, as they were sent.
        const chunks = [...new Set(queuedIds.map(chunkIdOf))];
        expect(jobsAfter, `${context}: jobs`).toBe(jobsBefore + chunks.length);
        const inRedis = new Map<string, QueuedCommand>();
        for (const chunk of chunks) for (const command of (await queue.job(chunk)) ?? []) inRedis.set(command.commandId, command);
        expect([...inRedis.keys()].sort(), context).toEqual([...queuedIds].sort());
        results.forEach((result, i) => {
          const verdict = expected[i] as Verdict;
          if (result.status !== 'queued') return;
          const command = inRedis.get(result.command_id) as QueuedCommand;
          if (verdict.kind === 'queued')
            expect(command, context).toMatchObject({ ticketId: verdict.ticketId, reply: verdict.reply });
          queue.accepted.set(command.commandId, command);
        });
      }),
      options(150),
    );
  }, 180_000);

  it('read.php: any query string gets an honest answer; valid ones list exactly the right page', async () => {
    const replies = (
      await h.query<RowDataPacket>(
        'SELECT ticket_reply_id AS id, ticket_reply_ticket_id AS ticket, ticket_reply_archived_at IS NOT NULL AS archived FROM ticket_replies',
      )
    ).map((r) => ({ id: Number(r.id), ticket: Number(r.ticket), archived: Number(r.archived) === 1 }));
    const ids = replies.map((r) => r.id);
    const tickets = [...fx.clientOf.keys()];
    const n = (values: fc.Arbitrary<number>) => values.chain((v) => fc.constantFrom(String(v), `00${v}`, ` ${v} `, `+${v}+`));
    // Each parameter present now and then (a reply id rarely: it narrows to one row or none).
    const sometimes = <T>(arbitrary: fc.Arbitrary<T>, present: number, absent: number) =>
      fc.oneof({ weight: absent, arbitrary: fc.constant(undefined) }, { weight: present, arbitrary });
    const clean = fc.record({
      reply_id: sometimes(n(fc.oneof(fc.constantFrom(...ids), fc.integer({ min: 1, max: 5000 }))), 1, 5),
      ticket_id: sometimes(n(fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...tickets) }, fc.constant(999_999))), 1, 2),
      before_id: sometimes(n(fc.integer({ min: 1, max: 800 })), 1, 2),
      limit: sometimes(n(fc.oneof(fc.integer({ min: 1, max: 500 }), fc.constantFrom(1, 499, 500))), 1, 1),
      offset: sometimes(
        n(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 60 }) }, fc.integer({ min: 0, max: 700 }))),
        1,
        1,
      ),
      include_archived: sometimes(fc.constantFrom('1', '0', 'true', 'false', ''), 1, 1),
    });
    const defect = fc.constantFrom<[string, string, string | RegExp]>(
      ['limit', '0', 'limit must be between 1 and 500.'],
      ['limit', '501', 'limit must be between 1 and 500.'],
      ['limit', '-1', 'limit must be between 1 and 500.'],
      ['limit', 'abc', 'limit must be an integer.'],
      ['limit', '1.5', 'limit must be an integer.'],
      ['limit', '99999999999999999999', 'limit must be an integer.'],
      ['offset', '-1', 'offset must be between 0 and 10000000.'],
      ['offset', '10000001', 'offset must be between 0 and 10000000.'],
      ['reply_id', '0', 'reply_id must be between 1 and 2147483647.'],
      ['reply_id', '2147483648', 'reply_id must be between 1 and 2147483647.'],
      ['reply_id', "1'; DROP TABLE ticket_replies; --", 'reply_id must be an integer.'],
      ['ticket_id', '%F0%9F%98%80', 'ticket_id must be an integer.'],
      ['before_id', '0x10', 'before_id must be an integer.'],
      ['include_archived', 'yes', 'include_archived must be 1 or 0.'],
      ['include_archived', '2', 'include_archived must be 1 or 0.'],
    );
    const hostileValue = fc.oneof(
      fc.constantFrom('%ZZ', '%', '%00', '%ED%A0%80', '%C0%AF', '%FF', '-0', '1e3', '[]', '{}', '..', '%26limit%3D1', '%2B1'),
      fc.string({ unit: 'binary', maxLength: 12 }).map(encodeURIComponent),
      fc.integer().map(String),
      fc.double().map(String),
    );
    const hostileName = fc.constantFrom(
      'reply_id',
      'ticket_id',
      'before_id',
      'limit',
      'offset',
      'include_archived',
      'limit[]',
      'limit[0]',
      'api_key',
      '',
      '__proto__',
      'constructor',
      'x',
    );
    const arbitrary = fc.record({
      mode: fc.constantFrom('clean', 'clean', 'defect', 'hostile'),
      clean,
      defect,
      hostile: fc.array(fc.tuple(hostileName, hostileValue), { maxLength: 6 }),
      key: fc.constantFrom<KeyName>('all', 'all', 'all', 'clientA', 'clientA', 'wrong'),
      placement: fc.constantFrom<'header' | 'query'>('header', 'header', 'query'),
    });
    await fc.assert(
      fc.asyncProperty(arbitrary, async (c) => {
        count('read.php');
        const auth = keyHeaders(fx, c.key, c.placement);
        const pairs: Array<[string, string]> =
          c.mode === 'hostile'
            ? c.hostile
            : Object.entries(c.clean)
                .filter(([, v]) => v !== undefined)
                .map(([k, v]) => [k, encodeURIComponent(v as string).replace(/%2B/g, '+')]);
        if (c.mode === 'defect') {
          const [name, value] = c.defect;
          const index = pairs.findIndex(([k]) => k === name);
          if (index >= 0) pairs.splice(index, 1);
          pairs.push([name, value.startsWith('%') ? value : encodeURIComponent(value)]);
        }
        const query = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${v}`).join('&');
        const path = `${READ}${auth.query}${auth.query ? (query ? '&' : '') : query ? '?' : ''}${query}`;
        const answer = await send(h, 'GET', path, { headers: auth.headers });
        tally('read.php', answer.status);
        expectEnvelope(answer);
        expect([200, 400, 401, 404], path).toContain(answer.status);
        if (c.key === 'wrong') {
          expect(answer.status, path).toBe(401);
          return;
        }
        const rows = answer.status === 200 ? (answer.body.data as Array<Record<string, string | null>>) : [];
        const got = rows.map((r) => Number(r.ticket_reply_id));
        // Whatever was asked: at most 500 rows, newest first, every one in the key's scope.
        expect(got.length, path).toBeLessThanOrEqual(500);
        expect(got, path).toEqual([...got].sort((a, b) => b - a));
        for (const row of rows) {
          expect(
            Object.values(row).every((v) => v === null || typeof v === 'string'),
            path,
          ).toBe(true);
          if (c.key === 'clientA')
            expect(inScopeOfA(fx, fx.clientOf.get(Number(row.ticket_reply_ticket_id)) ?? -1), path).toBe(true);
        }
        if (c.mode === 'hostile') return;
        if (c.mode === 'defect') {
          expect(answer.status, path).toBe(400);
          expect(answer.body.message, path).toBe(c.defect[2]);
          return;
        }
        const q = Object.fromEntries(
          Object.entries(c.clean)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => [k, (v as string).replace(/\+/g, ' ').trim()]),
        );
        const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));
        const limit = num(q.limit) ?? 50;
        const offset = num(q.offset) ?? 0;
        const archived = q.include_archived === '1' || q.include_archived === 'true';
        const want = replies
          .filter(
            (r) =>
              (c.key === 'all' || inScopeOfA(fx, fx.clientOf.get(r.ticket) ?? -1)) &&
              (num(q.reply_id) === undefined || r.id === num(q.reply_id)) &&
              (num(q.ticket_id) === undefined || r.ticket === num(q.ticket_id)) &&
              (num(q.before_id) === undefined || r.id < (num(q.before_id) as number)) &&
              (archived || !r.archived),
          )
          .map((r) => r.id)
          .sort((a, b) => b - a)
          .slice(offset, offset + limit);
        expect(answer.status, path).toBe(want.length === 0 ? 404 : 200);
        expect(got, path).toEqual(want);
      }),
      options(300),
    );
  }, 180_000);

  it('with a worker: MySQL holds exactly the accepted commands; tickets no accepted command named are untouched', async () => {
    await h.startPeer({ intake: false, worker: true });
    const accepted = [...queue.accepted.values()];
    const deadline = Date.now() + 30_000;
    let finished: RowDataPacket[] = [];
    for (;;) {
      finished = accepted.length
        ? await h.query<RowDataPacket>(
            'SELECT command_id, status, insert_id, http_status, error FROM rq_commands WHERE command_id IN (?)',
            [accepted.map((a) => idBytes(a.commandId))],
          )
        : [];
      if (finished.length === accepted.length && (await queue.jobs()) === 0) break;
      if (Date.now() > deadline) throw new Error(`only ${finished.length} of ${accepted.length} accepted commands finished`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [ledger] = await h.query<RowDataPacket>('SELECT COUNT(*) AS n FROM rq_commands');
    expect(Number(ledger?.n), 'ledger rows for commands never accepted').toBe(accepted.length);

    const after = await ticketStates(h);
    const byId = new Map(accepted.map((a) => [a.commandId, a]));
    const insertIds: number[] = [];
    const replyOf = new Map<number, QueuedCommand>();
    const touched = new Set<number>();
    for (const row of finished) {
      const command = byId.get(idText(row.command_id as Buffer)) as QueuedCommand;
      touched.add(command.ticketId);
      if (row.status === 'failed') {
        // Only a ticket an accepted command closed may refuse later replies.
        expect({ status: row.http_status, error: row.error }).toEqual({ status: 409, error: 'Ticket is closed.' });
        continue;
      }
      if (Number(row.insert_id) > 0) {
        insertIds.push(Number(row.insert_id));
        replyOf.set(Number(row.insert_id), command);
      }
      expect(Number(row.insert_id) > 0, JSON.stringify(command)).toBe(command.reply !== null);
    }
    // Exactly the applied commands' replies are new, each byte for byte what was queued.
    const newReplies = await h.query<RowDataPacket>(
      'SELECT ticket_reply_id, ticket_reply_ticket_id, CAST(ticket_reply AS BINARY) AS raw FROM ticket_replies WHERE ticket_reply_id > ?',
      [lastReplyBefore],
    );
    expect(newReplies.map((r) => Number(r.ticket_reply_id)).sort((a, b) => a - b)).toEqual(insertIds.sort((a, b) => a - b));
    for (const reply of newReplies) {
      const command = replyOf.get(Number(reply.ticket_reply_id)) as QueuedCommand;
      expect(Number(reply.ticket_reply_ticket_id)).toBe(command.ticketId);
      expect(Buffer.compare(reply.raw as Buffer, Buffer.from(command.reply ?? '', 'utf8')), JSON.stringify(command)).toBe(0);
    }
    for (const [ticketId, state] of before) {
      if (touched.has(ticketId)) continue;
      expect(after.get(ticketId), `ticket ${ticketId} was written by a refused request`).toEqual(state);
    }
    count('reconciliation');
  }, 60_000);

  it('text in a valid reply is stored byte for byte (MySQL and read.php), or refused with a clear 400', async () => {
    const waitPrefer = fc.constantFrom(
      'wait=10',
      'WAIT = "10"',
      'wait=99999999999999999999',
      'respond-async, wait=10',
      'wait=10;foo=bar',
    );
    const payload = fc.oneof({ weight: 5, arbitrary: replyText }, { weight: 1, arbitrary: withLoneSurrogate });
    const arbitrary = fc.record({
      via: fc.constantFrom('create', 'create', 'bulk-json', 'bulk-ndjson'),
      payloads: fc.array(payload, { minLength: 1, maxLength: 4 }),
      ticket: fc.constantFrom(...fx.writable.all),
      type: fc.constantFrom(0, 1),
      prefer: waitPrefer,
    });
    await fc.assert(
      fc.asyncProperty(arbitrary, async (c) => {
        count('byte-for-byte');
        const headers = { 'X-API-Key': fx.world.keys.all, Prefer: c.prefer };
        const items = (c.via === 'create' ? c.payloads.slice(0, 1) : c.payloads).map((text) => ({
          text,
          json: objectText([
            ['ticket_id', c.ticket],
            ['ticket_reply', text],
            ['public_reply_type', c.type],
          ]),
        }));
        const outcomes: Array<{ text: string; status: number; insertId?: number; message?: string }> = [];
        if (c.via === 'create') {
          const item = items[0] as { text: string; json: string };
          const answer = await send(h, 'POST', CREATE, {
            headers: { ...headers, 'Content-Type': 'application/json' },
            body: utf8(item.json),
          });
          expectEnvelope(answer);
          outcomes.push({
            text: item.text,
            status: answer.status,
            insertId: answer.body.data?.[0]?.insert_id,
            message: answer.body.message,
          });
        } else {
          const ndjson = c.via === 'bulk-ndjson';
          const body = ndjson ? items.map((i) => i.json).join('\n') : `[${items.map((i) => i.json).join(',')}]`;
          const answer = await send(h, 'POST', BULK, {
            headers: { ...headers, 'Content-Type': ndjson ? 'application/x-ndjson' : 'application/json' },
            body: utf8(body),
          });
          expectEnvelope(answer);
          (answer.body.data as any[]).forEach((result, i) => {
            outcomes.push({
              text: (items[i] as { text: string }).text,
              status: result.http_status ?? (result.status === 'applied' ? 201 : 202),
              insertId: result.insert_id,
              message: result.message,
            });
          });
          expect(outcomes).toHaveLength(items.length);
        }
        for (const outcome of outcomes) {
          tally('byte-for-byte payloads', outcome.status);
          const context = `${c.via}: ${JSON.stringify(outcome.text)} → ${outcome.status} ${outcome.message ?? ''}`;
          if (hasLoneSurrogate(outcome.text)) {
            expect(outcome.status, context).toBe(400);
            expect(outcome.message, context).toMatch(/^ticket_reply .*surrogate/);
            continue;
          }
          expect(outcome.status, context).toBe(201);
          const [row] = await h.query<RowDataPacket>(
            'SELECT CAST(ticket_reply AS BINARY) AS raw, ticket_reply_type FROM ticket_replies WHERE ticket_reply_id = ?',
            [outcome.insertId],
          );
          expect(Buffer.compare(row?.raw as Buffer, Buffer.from(outcome.text, 'utf8')), context).toBe(0);
          expect(row?.ticket_reply_type).toBe(c.type === 1 ? 'Public' : 'Internal');
          const read = await send(h, 'GET', `${READ}?reply_id=${outcome.insertId}`, {
            headers: { 'X-API-Key': fx.world.keys.all },
          });
          expectEnvelope(read);
          expect(read.body.data[0]?.ticket_reply, context).toBe(outcome.text);
        }
      }),
      options(120),
    );
  }, 180_000);
});

describe('bodies that are not UTF-8', () => {
  // JSON travels in UTF-8: bytes that are not UTF-8 are refused (400), another declared charset
  // too (415), rather than decoded into U+FFFD and stored as if that was what was sent.
  let h: Harness;
  let world: World;
  let ticket: number;
  beforeAll(async () => {
    h = await startHarness({ generation: '2.6.7', roles: { intake: true, worker: false } });
    world = await seedWorld(h.db, '2.6.7');
    ticket = await addTicket(h.db, '2.6.7', { clientId: world.clientA });
  });
  afterAll(() => h?.close());

  const accepted = async () => {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    return [...text.matchAll(/^replyqueue_commands_accepted_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  };

  it('a body with bytes that are not UTF-8, or in a declared Latin-1, is refused and queues nothing', async () => {
    count('not UTF-8');
    const latin1 = (text: string) => Buffer.concat([Buffer.from(text), Buffer.from([0xe9]), Buffer.from('"}')]);
    const cases: Array<[string, string, Buffer, number, string]> = [
      [
        CREATE,
        'application/json',
        latin1(`{"ticket_id": ${ticket}, "ticket_reply": "caf`),
        400,
        'The request body is not valid UTF-8.',
      ],
      [
        CREATE,
        'application/json; charset=iso-8859-1',
        latin1(`{"ticket_id": ${ticket}, "ticket_reply": "caf`),
        415,
        'Send the request body in UTF-8 (charset=iso-8859-1 is not accepted).',
      ],
      [
        BULK,
        'application/json',
        latin1(`[{"ticket_id": ${ticket}, "ticket_reply": "caf`),
        400,
        'The request body is not valid UTF-8.',
      ],
      [
        BULK,
        'application/x-ndjson',
        latin1(`{"ticket_id": ${ticket}, "ticket_reply": "fine"}\n{"ticket_id": ${ticket}, "ticket_reply": "caf`),
        400,
        'The request body is not valid UTF-8.',
      ],
    ];
    for (const [path, type, body, status, message] of cases) {
      const answer = await send(h, 'POST', path, { headers: { 'X-API-Key': world.keys.all, 'Content-Type': type }, body });
      expect(answer.status, `${path} ${type}`).toBe(status);
      expect(answer.body).toEqual({ success: 'False', message });
    }
    expect(await accepted()).toBe(0);
    // The same text in UTF-8 is taken, declared or not.
    for (const type of ['application/json', 'application/json; charset=UTF-8']) {
      const body = Buffer.from(JSON.stringify({ ticket_id: ticket, ticket_reply: 'café' }));
      const answer = await send(h, 'POST', CREATE, { headers: { 'X-API-Key': world.keys.all, 'Content-Type': type }, body });
      expect(answer.status).toBe(202);
    }
    expect(await accepted()).toBe(2);
  });
});

afterAll(() => {
  const total = Object.values(ran).reduce((sum, n) => sum + n, 0);
  console.log(`fuzz cases run (seed ${SEED}): ${JSON.stringify(ran)}; total ${total}; statuses ${JSON.stringify(answered)}`);
});
