// The operator dashboard's page: signs in with an admin API key (kept in sessionStorage, sent as
// X-API-Key), reads the JSON under api/ and draws it. Plain browser JavaScript, no build step and
// nothing from the network. Every value from the server is put in as text, never as HTML.

const KEY_STORE = 'replyqueue.dashboard.key';
const QUEUES_EVERY_MS = 5_000;
const OTHERS_EVERY_MS = 15_000;

const $ = (id) => document.getElementById(id);

/** An element with attributes (and `on…` listeners) and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (name === 'className') node.className = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const number = (n) => Number(n).toLocaleString('en-US');

function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86_400)} d ${Math.floor((seconds % 86_400) / 3600)} h`;
}

const secondsSince = (iso, now = Date.now()) => (iso ? Math.max(0, Math.floor((now - Date.parse(iso)) / 1000)) : null);

/** A time as an operator reads it: the time of day for today, with the date otherwise; in full on hover. */
function when(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  const today = date.toDateString() === new Date().toDateString();
  const shown = today
    ? date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : date.toLocaleString(undefined, { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
  return el('time', { datetime: iso, title: date.toString() }, shown);
}

/** A command id shortened to its distinguishing ends; the whole id in the tooltip and for copying. */
function shortId(id) {
  return el('code', { title: id, className: 'id' }, `${id.slice(0, 8)}…${id.slice(-6)}`);
}

function table(node, headers, rows, empty) {
  node.replaceChildren(
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        headers.map((h) => el('th', { scope: 'col', className: h.numeric ? 'num' : '' }, h.label)),
      ),
    ),
    el('tbody', {}, rows.length === 0 ? el('tr', {}, el('td', { colspan: headers.length, className: 'empty' }, empty)) : rows),
  );
}

// ——— talking to the service ———

class SignedOut extends Error {}

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY_STORE);
  if (!key) throw new SignedOut('Sign in with an admin API key.');
  const response = await fetch(`api/${path}`, {
    ...options,
    headers: { 'X-API-Key': key, Accept: 'application/json' },
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 || response.status === 403) {
    throw new SignedOut(body.message || `The service refused the key (${response.status}).`);
  }
  if (!response.ok) throw new Error(body.message || `The service answered ${response.status}.`);
  return body;
}

function showError(error) {
  if (error instanceof SignedOut) return signOut(error.message);
  const banner = $('board-error');
  banner.textContent = error.message;
  banner.hidden = false;
}

// ——— signing in and out ———

async function signIn(key) {
  sessionStorage.setItem(KEY_STORE, key);
  try {
    const session = await api('session');
    $('who').textContent =
      `Signed in as ${session.user} (key “${session.keyName}”) · queue “${session.prefix}”, ${session.lanes} lanes`;
    $('login').hidden = true;
    $('session').hidden = false;
    $('board').hidden = false;
    await refreshAll();
  } catch (error) {
    showError(error);
  }
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  $('board').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  const problem = $('login-error');
  problem.textContent = message ?? '';
  problem.hidden = !message;
  $('key').value = '';
  $('key').focus();
}

// ——— queues and lanes ———

let selectedLane = null;

function tile(label, value, note, tone) {
  return el(
    'div',
    { className: `tile ${tone ?? ''}` },
    el('div', { className: 'tile-label' }, label),
    el('div', { className: 'tile-value' }, value),
    note ? el('div', { className: 'tile-note' }, note) : null,
  );
}

async function refreshQueues() {
  const view = await api('queues');
  const oldest = view.oldestWaiting;
  const kinds = view.kinds ? `${number(view.kinds.single)} single · ${number(view.kinds.chunks)} chunks` : 'too many to split';
  $('tiles').replaceChildren(
    tile('Not applied yet', number(view.backlog), view.backlog > 0 ? `jobs: ${kinds}` : 'every lane is empty'),
    tile('Waiting', number(view.totals.waiting + view.totals.prioritized)),
    tile('Being applied', number(view.totals.active)),
    tile('Delayed', number(view.totals.delayed)),
    tile(
      'Oldest waiting',
      oldest ? age(oldest.ageSeconds) : '—',
      oldest ? `in ${oldest.lane}` : 'nothing waiting',
      oldest && oldest.ageSeconds >= 60 ? 'warn' : '',
    ),
    tile(
      'Dead letters',
      number(view.deadLetters),
      view.deadLetters > 0 ? 'jobs (a chunk counts once); commands below' : '',
      view.deadLetters > 0 ? 'bad' : '',
    ),
    tile(
      'Parked',
      number(view.parked.commands),
      view.parked.commands > 0
        ? `commands of ${number(view.parked.tickets)} ticket(s) locked elsewhere`
        : 'no ticket locked elsewhere',
      view.parked.commands > 0 ? 'warn' : '',
    ),
  );
  if (view.recordedLanes !== null && view.recordedLanes !== view.lanes) {
    showError(
      new Error(
        `The queue in Redis has ${view.recordedLanes} lanes, but this service runs with ${view.lanes} (QUEUE_PARTITIONS).`,
      ),
    );
  }
  const busy = view.deepest.filter((l) => l.backlog > 0 || l.failed > 0 || l.paused);
  const idle = view.deepest.length - busy.length;
  table(
    $('lanes'),
    [
      { label: 'Lane' },
      { label: 'Waiting', numeric: true },
      { label: 'Being applied', numeric: true },
      { label: 'Delayed', numeric: true },
      { label: 'Dead', numeric: true },
      { label: 'Oldest waiting' },
      { label: '' },
    ],
    [
      ...busy.map((lane) =>
        el(
          'tr',
          { className: lane.lane === selectedLane ? 'selected' : '' },
          el('th', { scope: 'row' }, lane.lane, lane.paused ? el('span', { className: 'pill warn' }, 'paused') : null),
          el('td', { className: 'num' }, number(lane.waiting + lane.prioritized)),
          el('td', { className: 'num' }, number(lane.active)),
          el('td', { className: 'num' }, number(lane.delayed)),
          el('td', { className: `num ${lane.failed > 0 ? 'bad' : ''}` }, number(lane.failed)),
          el('td', {}, lane.oldestWaitingSeconds === null ? '—' : `${age(lane.oldestWaitingSeconds)} ago`),
          el(
            'td',
            {},
            el('button', { type: 'button', className: 'small', onclick: () => showLane(lane.lane).catch(showError) }, 'Jobs'),
          ),
        ),
      ),
      ...(idle > 0 && busy.length > 0
        ? [el('tr', { className: 'idle' }, el('td', { colspan: 7 }, `${idle} other lane(s) empty.`))]
        : []),
    ],
    `All ${view.lanes} lanes are empty.`,
  );
  if (selectedLane) await showLane(selectedLane, { quiet: true });
}

async function showLane(lane, { quiet = false } = {}) {
  selectedLane = lane;
  const detail = $('lane-detail');
  const view = await api(`lanes/${encodeURIComponent(lane)}`);
  const rows = view.jobs.map((job) =>
    el(
      'tr',
      {},
      el('td', {}, el('span', { className: `pill ${job.state}` }, job.state === 'active' ? 'being applied' : job.state)),
      el('td', {}, job.kind === 'chunk' ? 'chunk' : 'single command'),
      el('td', {}, shortId(job.jobId)),
      el('td', { className: 'num' }, number(job.commands)),
      el(
        'td',
        {},
        `${job.ticketCount === 1 ? 'ticket' : 'tickets'} ${job.tickets.join(', ')}`,
        job.ticketCount > job.tickets.length ? ` … (${job.ticketCount} in all)` : '',
      ),
      el(
        'td',
        {},
        when(job.firstAcceptedAt),
        job.lastAcceptedAt && job.lastAcceptedAt !== job.firstAcceptedAt ? [' – ', when(job.lastAcceptedAt)] : null,
      ),
      el(
        'td',
        {},
        job.retry
          ? `retrying: attempt ${job.retry.attempts}, next at ${new Date(job.retry.nextTryAt).toLocaleTimeString()} — ${job.retry.lastError}`
          : '',
      ),
    ),
  );
  const body = el('table');
  table(
    body,
    [
      { label: 'State' },
      { label: 'Job' },
      { label: 'Id' },
      { label: 'Commands', numeric: true },
      { label: 'Tickets' },
      { label: 'Accepted' },
      { label: '' },
    ],
    rows,
    'Nothing waits in this lane.',
  );
  detail.replaceChildren(
    el(
      'div',
      { className: 'detail-head' },
      el('h3', {}, `${view.lane}: next jobs`),
      el('span', { className: 'hint' }, `the first ${view.perState} of each state, in the order a worker takes them`),
      el('button', { type: 'button', className: 'quiet small close', onclick: closeLane }, 'Close'),
    ),
    el('div', { className: 'scroll' }, body),
  );
  detail.hidden = false;
  for (const row of $('lanes').querySelectorAll('tbody tr')) {
    row.classList.toggle('selected', row.querySelector('th')?.firstChild?.textContent === lane);
  }
  if (!quiet) detail.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

function closeLane() {
  selectedLane = null;
  $('lane-detail').hidden = true;
  for (const row of $('lanes').querySelectorAll('tr.selected')) row.classList.remove('selected');
}

// ——— dead letters ———

let shownLetter = null;

async function refreshDeadLetters() {
  const { total, letters } = await api('dead-letters');
  $('dead-count').textContent = total > 0 ? `(${number(total)} command${total === 1 ? '' : 's'})` : '';
  $('replay-all').hidden = total === 0;
  const chunkSizes = new Map();
  for (const letter of letters) if (letter.chunkId) chunkSizes.set(letter.chunkId, (chunkSizes.get(letter.chunkId) ?? 0) + 1);
  table(
    $('dead'),
    [
      { label: 'Command' },
      { label: 'Ticket', numeric: true },
      { label: 'Lane' },
      { label: 'Came in' },
      { label: 'Accepted' },
      { label: 'Gave up' },
      { label: 'Attempts', numeric: true },
      { label: 'Reason' },
      { label: '' },
    ],
    letters.map((letter) =>
      el(
        'tr',
        { className: letter.commandId === shownLetter ? 'selected' : '' },
        el('td', {}, shortId(letter.commandId), externalIdLine(letter.externalId)),
        el('td', { className: 'num' }, letter.ticketId ?? '—'),
        el('td', { className: 'nowrap' }, letter.lane),
        el('td', { className: 'nowrap' }, letter.chunkId ? ['chunk ', shortId(letter.chunkId)] : 'on its own'),
        el('td', {}, when(letter.acceptedAt)),
        el('td', {}, when(letter.failedAt)),
        el('td', { className: 'num' }, letter.attempts),
        el('td', { className: 'reason', title: letter.reason }, letter.reason),
        el(
          'td',
          { className: 'actions' },
          el(
            'button',
            { type: 'button', className: 'small quiet', onclick: () => showLetter(letter.commandId).catch(showError) },
            'Show',
          ),
          el(
            'button',
            { type: 'button', className: 'small danger', onclick: () => replay(letter, chunkSizes.get(letter.chunkId)) },
            'Replay',
          ),
        ),
      ),
    ),
    'No dead letters.',
  );
  if (total > letters.length) {
    $('dead').append(
      el('tfoot', {}, el('tr', {}, el('td', { colspan: 9 }, `The ${number(letters.length)} oldest of ${number(total)} shown.`))),
    );
  }
}

async function showLetter(commandId) {
  shownLetter = commandId;
  const { letter, job } = await api(`dead-letters/${encodeURIComponent(commandId)}`);
  const command = job.command ?? {};
  const reply = command.reply;
  const facts = [
    ['Ticket', command.ticketId ?? letter.ticketId ?? '—'],
    ['Lane', letter.lane],
    ['Came in', letter.chunkId ? ['chunk ', el('code', {}, letter.chunkId)] : 'a job of its own'],
    ['Accepted', when(letter.acceptedAt)],
    ['Gave up', when(letter.failedAt)],
    ['Attempts', letter.attempts],
    ['Reply', reply ? `${reply.type}, time worked ${reply.timeWorked}` : 'none (status only)'],
    ['Status change', command.status > 0 ? `to status ${command.status}` : 'none'],
    ['Dated', command.createdAt ? `${command.createdAt} (historical import)` : 'when accepted'],
    ['Idempotency key', job.idempotencyKey ?? '—'],
    ['External id', command.externalId ?? '—'],
  ];
  $('dead-detail').replaceChildren(
    el(
      'div',
      { className: 'detail-head' },
      el('h3', {}, 'Dead letter ', el('code', {}, letter.commandId)),
      el('button', { type: 'button', className: 'quiet small close', onclick: () => ($('dead-detail').hidden = true) }, 'Close'),
    ),
    el('p', { className: 'reason-full' }, letter.reason),
    el(
      'dl',
      { className: 'facts wide' },
      facts.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]),
    ),
    reply ? el('blockquote', { className: 'reply-body' }, reply.body) : null,
    el(
      'details',
      {},
      el('summary', {}, 'The whole job, as kept in Redis'),
      el('pre', {}, JSON.stringify({ letter, command: job }, null, 2)),
    ),
  );
  $('dead-detail').hidden = false;
  $('dead-detail').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

/** Asks before an action; resolves true when confirmed. */
function confirmAction(title, text, ok) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = ok;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

async function replay(letter, listedInChunk) {
  // Every command of a dead chunk is listed, so the rows that share its chunk id are the chunk.
  const chunkNote = letter.chunkId
    ? ` It came in chunk ${letter.chunkId}, which goes back whole, with its ${listedInChunk ?? 'other'} commands; any already applied stay applied once.`
    : '';
  const confirmed = await confirmAction(
    'Replay this dead letter?',
    `Command ${letter.commandId} for ticket ${letter.ticketId ?? '?'} goes back to the end of ${letter.lane}.${chunkNote}`,
    'Replay',
  );
  if (!confirmed) return;
  try {
    const { replayed } = await api(`dead-letters/${encodeURIComponent(letter.commandId)}/replay`, { method: 'POST' });
    notice(
      `Replayed ${letter.commandId}${replayed.length > 1 ? ` with the ${replayed.length - 1} other command(s) of its chunk` : ''}.`,
    );
  } catch (error) {
    showError(error);
  }
  if (shownLetter === letter.commandId) $('dead-detail').hidden = true;
  await refreshAll();
}

async function replayAll() {
  const confirmed = await confirmAction(
    'Replay every dead letter?',
    'Each goes back to the end of its lane (chunks whole). Make sure what made them fail is fixed first, or they will come back here.',
    'Replay all',
  );
  if (!confirmed) return;
  try {
    const { replayed } = await api('dead-letters/replay-all', { method: 'POST' });
    notice(`Replayed ${number(replayed)} command(s).`);
  } catch (error) {
    showError(error);
  }
  await refreshAll();
}

function notice(text) {
  const banner = $('board-error');
  banner.textContent = text;
  banner.className = 'notice banner';
  banner.hidden = false;
  setTimeout(() => {
    banner.hidden = true;
    banner.className = 'error banner';
  }, 6000);
}

// ——— recent failures ———

async function refreshFailures() {
  const hours = $('hours').value;
  const view = await api(`failures?hours=${hours}`);
  $('failures-count').textContent = view.total > 0 ? `(${number(view.total)})` : '';
  $('reasons').replaceChildren(
    ...(view.reasons.length === 0
      ? []
      : [
          el(
            'ul',
            { className: 'reasons' },
            view.reasons.map((r) =>
              el(
                'li',
                {},
                el('span', { className: 'pill bad' }, r.httpStatus),
                ` ${r.message} `,
                el('strong', {}, `× ${number(r.count)}`),
              ),
            ),
          ),
        ]),
  );
  table(
    $('failures'),
    [
      { label: 'Accepted' },
      { label: 'Command' },
      { label: 'Ticket', numeric: true },
      { label: 'API key' },
      { label: 'Status', numeric: true },
      { label: 'Message' },
      { label: 'Attempts', numeric: true },
    ],
    view.latest.map((f) =>
      el(
        'tr',
        {},
        el('td', {}, when(f.acceptedAt)),
        el('td', {}, shortId(f.commandId), importLine(f.idempotencyKey), externalIdLine(f.externalId)),
        el('td', { className: 'num' }, f.ticketId),
        el('td', { className: 'nowrap' }, f.keyName ?? `key #${f.apiKeyId}`),
        el('td', { className: 'num' }, el('span', { className: 'pill bad' }, f.httpStatus)),
        el('td', { className: 'reason', title: f.message }, f.message),
        el('td', { className: 'num' }, f.attempts),
      ),
    ),
    `No command failed among those accepted since ${new Date(view.since).toLocaleString()}.`,
  );
}

/** "line 1234 of import 0123…" for a command an import sent. */
function importLine(idempotencyKey) {
  const match = /^import:([0-9a-f]{16}):(\d+)$/.exec(idempotencyKey ?? '');
  return match ? el('div', { className: 'sub' }, `import ${match[1].slice(0, 8)}…, line ${number(match[2])}`) : null;
}

// ——— imports ———

function bar(part, whole, label) {
  const share = whole > 0 ? Math.min(1, part / whole) : 0;
  const fill = el('div', { className: 'bar-fill' });
  // Through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  return el(
    'div',
    {
      className: 'bar',
      role: 'progressbar',
      'aria-valuemin': 0,
      'aria-valuemax': whole,
      'aria-valuenow': Math.min(part, whole),
      'aria-label': label,
    },
    fill,
  );
}

async function refreshImports() {
  const { imports } = await api('imports');
  const now = Date.now();
  $('imports').replaceChildren(
    ...(imports.length === 0
      ? [el('p', { className: 'empty' }, 'No import has sent anything in the last 7 days.')]
      : imports.map((i) => {
          const quietFor = secondsSince(i.lastAt, now);
          const lines = i.lines;
          const received = lines !== null && i.highestLine >= lines;
          const settled = received && i.finished + i.refused >= lines;
          const state = settled
            ? ['finished', 'ok']
            : received
              ? ['all lines received; not all applied yet', 'active']
              : quietFor < 60
                ? ['sending', 'active']
                : [`no request for ${age(quietFor)}: stopped or interrupted?`, 'warn'];
          const percent = (n) => (lines ? ` (${Math.min(100, Math.floor((n / lines) * 100))} %)` : '');
          return el(
            'article',
            { className: 'import' },
            el(
              'div',
              { className: 'import-head' },
              el('h3', {}, i.file ?? `import ${i.importId}`),
              el('span', { className: `pill ${state[1]}` }, state[0]),
              el(
                'span',
                { className: 'hint' },
                `key “${i.keyName}” · file id ${i.importId} · started `,
                when(i.firstAt),
                ' · latest request ',
                when(i.lastAt),
              ),
            ),
            el(
              'div',
              { className: 'import-bars' },
              el(
                'div',
                { className: 'bar-label' },
                `Received up to line ${number(i.highestLine)}${lines ? ` of ${number(lines)}` : ''}${percent(i.highestLine)}`,
              ),
              bar(i.highestLine, lines ?? i.highestLine, 'lines received'),
              el(
                'div',
                { className: 'bar-label' },
                `Finished ${number(i.finished)} line(s)${lines ? ` of ${number(lines)}` : ''}${percent(i.finished)}`,
                el('span', { className: 'sub' }, ` counted `, when(i.finishedCountedAt)),
              ),
              bar(i.finished, lines ?? Math.max(i.finished, i.queued + i.duplicates), 'lines finished'),
            ),
            el(
              'dl',
              { className: 'facts' },
              el('dt', {}, 'Requests'),
              el('dd', {}, number(i.requests)),
              el('dt', {}, 'Queued'),
              el('dd', {}, number(i.queued)),
              el('dt', {}, 'Already had (resumed)'),
              el('dd', {}, number(i.duplicates)),
              el('dt', {}, 'Refused by bulk.php'),
              el('dd', { className: i.refused > 0 ? 'bad' : '' }, number(i.refused)),
            ),
          );
        })),
  );
}

// ——— webhooks ———

async function refreshWebhooks() {
  const { webhooks, failed, retrying } = await api('webhooks');
  $('webhooks-count').textContent = failed.length > 0 ? `(${number(failed.length)} failed)` : '';
  table(
    $('webhooks'),
    [
      { label: 'Id', numeric: true },
      { label: 'API key' },
      { label: 'URL' },
      { label: 'Events' },
      { label: 'Pending', numeric: true },
      { label: 'Delivered (24 h)', numeric: true },
      { label: 'Failed', numeric: true },
    ],
    webhooks.map((w) =>
      el(
        'tr',
        {},
        el('td', { className: 'num' }, w.webhook_id),
        el('td', {}, `${w.api_key_id} ${w.api_key_name ?? '(no longer in ITFlow)'}`),
        el('td', { className: 'reason', title: w.url }, w.url),
        el('td', {}, w.events.join(', ')),
        el('td', { className: 'num' }, number(w.deliveries.pending)),
        el('td', { className: 'num' }, number(w.deliveries.delivered)),
        el('td', { className: `num ${w.deliveries.failed > 0 ? 'bad' : ''}` }, number(w.deliveries.failed)),
      ),
    ),
    'No webhooks. Add one with npm run cli -- webhooks add <api_key_id> <url>.',
  );
  table(
    $('webhook-deliveries'),
    [
      { label: 'Event' },
      { label: 'Type' },
      { label: 'Webhook', numeric: true },
      { label: 'State' },
      { label: 'Attempts', numeric: true },
      { label: 'Created' },
      { label: 'Next attempt' },
      { label: 'Last answer' },
      { label: '' },
    ],
    [...failed, ...retrying].map((d) =>
      el(
        'tr',
        {},
        el('td', {}, shortId(d.eventId)),
        el('td', { className: 'nowrap' }, d.eventType),
        el('td', { className: 'num' }, d.webhookId),
        el(
          'td',
          {},
          el(
            'span',
            { className: `pill ${d.state === 'failed' ? 'warn' : 'active'}` },
            d.state === 'failed' ? 'failed' : 'retrying',
          ),
        ),
        el('td', { className: 'num' }, d.attempts),
        el('td', {}, when(d.createdAt)),
        el('td', {}, when(d.nextAttemptAt)),
        el('td', { className: 'reason', title: d.lastError ?? '' }, d.lastError ?? '—'),
        el(
          'td',
          { className: 'actions' },
          el('button', { type: 'button', className: 'small danger', onclick: () => replayEvent(d) }, 'Replay'),
        ),
      ),
    ),
    'No failed or retrying deliveries.',
  );
}

async function replayEvent(delivery) {
  const confirmed = await confirmAction(
    'Send this event again?',
    `Event ${delivery.eventId} (${delivery.eventType}) is sent again now to each webhook it was for, with a new 24-hour retry window. The receiver sees the same event id.`,
    'Replay',
  );
  if (!confirmed) return;
  try {
    const { deliveries } = await api(`webhooks/events/${encodeURIComponent(delivery.eventId)}/replay`, { method: 'POST' });
    notice(`Replaying event ${delivery.eventId} (${deliveries} delivery(ies)).`);
  } catch (error) {
    showError(error);
  }
  await refreshAll();
}

/** "external id …" under a command that carried one (its integration's own name for the reply). */
function externalIdLine(externalId) {
  return externalId
    ? el('div', { className: 'sub external-id' }, 'external id ', el('code', { title: externalId }, externalId))
    : null;
}

// ——— read projection ———

/** Why ITFlow's tables answered a listing (replyqueue_read_listings_total's reason). */
const FALLBACK_REASONS = {
  reply_id: 'a reply_id (read by primary key either way)',
  condition: 'a filter the projection does not hold',
  off: 'projection switched off',
  lag: 'projection behind or being built',
  stale: 'rows changed while read, twice',
};

function lagText(seconds) {
  if (seconds === null) return 'building';
  return seconds < 10 ? `${seconds.toFixed(1)} s` : age(Math.floor(seconds));
}

async function refreshProjection() {
  const view = await api('projection');
  $('projection-state').replaceChildren(
    view.serving
      ? el('span', { className: 'pill ok' }, 'read.php serves from it')
      : el('span', { className: `pill ${view.reason === 'off' ? '' : 'warn'}` }, 'read.php reads ITFlow’s tables'),
  );
  const listings = view.listings;
  const fallbacks = listings.bySource.filter((l) => l.source === 'itflow');
  $('projection').replaceChildren(
    el(
      'div',
      { className: 'tiles' },
      tile(
        'Lag',
        lagText(view.lagSeconds),
        view.lagSeconds === null ? 'not read to the end of ticket_replies yet' : `limit ${view.maxLagSeconds} s`,
        view.reason === 'building' || view.reason === 'lag' ? 'warn' : '',
      ),
      tile(
        'Replies behind the watermark',
        number(view.idsBehind),
        `watermark: reply id ${number(view.watermark)}`,
        view.reason === 'behind' ? 'warn' : '',
      ),
      tile('Last caught up', when(view.caughtUpAt), view.caughtUpAt ? 'read ticket_replies to its end' : 'never'),
      tile('Listings from the projection', number(listings.projection), el('span', {}, 'since ', when(listings.since))),
      tile(
        'Listings from ITFlow’s tables',
        number(listings.itflow),
        el('span', {}, 'since ', when(listings.since)),
        listings.itflow > 0 && fallbacks.some((l) => l.reason === 'lag' || l.reason === 'stale') ? 'warn' : '',
      ),
    ),
    el('p', { className: 'projection-summary' }, `Read projection: ${view.summary}.`),
    el(
      'dl',
      { className: 'facts' },
      el('dt', {}, 'Older replies last swept'),
      el('dd', {}, when(view.repliesSweptAt)),
      el('dt', {}, 'Tickets last swept'),
      el('dd', {}, when(view.ticketsSweptAt)),
    ),
    fallbacks.length === 0
      ? null
      : el(
          'ul',
          { className: 'reasons fallbacks' },
          fallbacks.map((l) =>
            el(
              'li',
              {},
              el('span', { className: 'pill' }, l.reason ?? '?'),
              ` from ITFlow’s tables: ${FALLBACK_REASONS[l.reason] ?? l.reason} `,
              el('strong', {}, `× ${number(l.count)}`),
            ),
          ),
        ),
  );
}

// ——— API keys ———

async function refreshKeys() {
  const view = await api('keys');
  const runsAsUser = view.keyModel === 'key-runs-as-user';
  const quiet = view.keys.filter((k) => k.quiet).length;
  $('keys-count').textContent = view.keys.length > 0 ? `(${number(view.keys.length)}, ${number(quiet)} quiet)` : '';
  const owner = (key) => {
    if (!runsAsUser) return key.clientId === 0 ? 'every client' : `client #${key.clientId}`;
    if (!key.user) return el('span', { className: 'sub' }, 'no user (ITFlow refuses it)');
    return [key.user.name ?? 'a user that is gone', el('span', { className: 'sub' }, ` user #${key.user.id}`)];
  };
  table(
    $('keys'),
    [
      { label: 'Id', numeric: true },
      { label: 'Name' },
      { label: runsAsUser ? 'Runs as' : 'For' },
      { label: 'Expires' },
      { label: 'By default' },
      { label: 'External ids', numeric: true },
    ],
    view.keys.map((key) =>
      el(
        'tr',
        {},
        el('td', { className: 'num' }, key.apiKeyId),
        el('th', { scope: 'row' }, key.name),
        el('td', { className: 'nowrap' }, owner(key)),
        el('td', { className: 'nowrap' }, key.expires, key.expired ? el('span', { className: 'pill bad' }, 'expired') : null),
        el(
          'td',
          {},
          key.quiet
            ? el('span', { className: 'pill warn', title: 'notify: false unless a command says notify: true' }, 'quiet')
            : el('span', { className: 'pill ok' }, 'notifies'),
        ),
        el('td', { className: 'num' }, number(key.externalIds)),
      ),
    ),
    'No API keys in ITFlow.',
  );
  $('keys').append(
    el(
      'tfoot',
      {},
      el('tr', {}, el('td', { colspan: 6 }, 'External ids counted ', when(view.externalIdsCountedAt), ' (kept for 30 s).')),
    ),
  );
}

// ——— refreshing ———

let lastOthers = 0;
let timer = null;

async function refreshAll({ queuesOnly = false } = {}) {
  const jobs = [refreshQueues()];
  if (!queuesOnly || Date.now() - lastOthers >= OTHERS_EVERY_MS) {
    lastOthers = Date.now();
    jobs.push(refreshDeadLetters(), refreshFailures(), refreshImports(), refreshWebhooks());
    jobs.push(refreshProjection(), refreshKeys());
  }
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) showError(failed.reason);
  else if ($('board-error').className.includes('error')) $('board-error').hidden = true;
  $('refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    if ($('auto').checked && !$('board').hidden && document.visibilityState === 'visible') await refreshAll({ queuesOnly: true });
    schedule();
  }, QUEUES_EVERY_MS);
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('key').value.trim();
    if (key) void signIn(key);
  });
  $('signout').addEventListener('click', () => signOut());
  $('refresh').addEventListener('click', () => void refreshAll());
  $('replay-all').addEventListener('click', () => void replayAll());
  $('hours').addEventListener('change', () => void refreshFailures().catch(showError));
  if (sessionStorage.getItem(KEY_STORE)) void signIn(sessionStorage.getItem(KEY_STORE));
  else signOut();
  schedule();
});
