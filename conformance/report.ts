// The report: per generation, the contract, then every action with both sides' answers and a
// table of its differences (action, table, row, column, ITFlow value, service value, kind).
// Text cells are cut at 120 characters; --json carries every value whole.
import type { Difference, Kind } from './diff.js';

export type ActionStatus = 'compared' | 'skipped' | 'not served' | 'failed';

export interface ActionResult {
  title: string;
  serviceRequest: string;
  reference: string;
  status: ActionStatus;
  /** Why skipped / not served / failed. */
  reason?: string;
  note?: string;
  /** The twins, as `TCK-3` (ITFlow's) and `TCK-4` (the service's). */
  twins?: { itflow: string; service: string };
  itflowAnswers: string[];
  serviceAnswers: string[];
  differences: Difference[];
}

export interface GenerationResult {
  checkout: string;
  itflowDatabaseVersion: string;
  keyModel: 'api_key_user_id' | 'api_key_client_id';
  sla: boolean;
  php: string;
  timeZone: string;
  /** PHP's and the database server's time zones during the run (what ITFlow's own API's times are in). */
  serverZone: string;
  database: string;
  toleranceSeconds: number;
  actions: ActionResult[];
}

const KIND_ORDER: Record<Kind, number> = { real: 0, documented: 1, wording: 2, 'within tolerance': 3 };

function cell(text: string, max = 120): string {
  const flat = text.replace(/\r?\n/g, '\\n').replace(/\|/g, '\\|');
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

export function countKinds(differences: Difference[]): Record<Kind, number> {
  const counts: Record<Kind, number> = { real: 0, documented: 0, wording: 0, 'within tolerance': 0 };
  for (const d of differences) counts[d.kind] += 1;
  return counts;
}

export function renderGeneration(result: GenerationResult, contract: string[]): string {
  const lines: string[] = [];
  lines.push(
    `## ITFlow database ${result.itflowDatabaseVersion} (${result.checkout})`,
    '',
    `Keys: ${result.keyModel}; SLA columns: ${result.sla ? 'yes' : 'no'}; PHP ${result.php}; ITFlow time zone ${result.timeZone}; server zones ${result.serverZone}; ` +
      `timestamps equal within ${result.toleranceSeconds} s; scratch database ${result.database}.`,
    '',
    ...contract,
    '',
  );
  result.actions.forEach((action, index) => {
    const twins = action.twins ? ` — twins ${action.twins.itflow} (ITFlow) / ${action.twins.service} (service)` : '';
    lines.push(`### ${index + 1}. ${action.title}${twins}`, '');
    lines.push(`Service: ${action.serviceRequest}. ITFlow: ${action.reference}.`);
    if (action.note) lines.push(`Note: ${action.note}.`);
    for (const answer of action.itflowAnswers) lines.push(`- ITFlow: ${answer}`);
    for (const answer of action.serviceAnswers) lines.push(`- service: ${answer}`);
    if (action.status !== 'compared') {
      lines.push('', `**${action.status}**: ${action.reason ?? ''}`, '');
      if (action.status !== 'not served') return;
    }
    const counts = countKinds(action.differences);
    if (action.status === 'compared') {
      lines.push(
        '',
        `${counts.real} real, ${counts.documented} documented, ${counts.wording} wording, ${counts['within tolerance']} within tolerance.`,
        '',
      );
    }
    if (action.differences.length === 0) return;
    lines.push('| action | table | row | column | ITFlow | service | kind |', '|---|---|---|---|---|---|---|');
    const sorted = [...action.differences].sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
    for (const d of sorted) {
      const kind = d.note ? `${d.kind} (${d.note})` : d.kind;
      lines.push(
        `| ${index + 1} | ${d.table} | ${cell(d.row, 60)} | ${d.column} | ${cell(d.itflow)} | ${cell(d.service)} | ${cell(kind, 200)} |`,
      );
    }
    lines.push('');
  });
  lines.push(...summaryLines(result), '');
  return lines.join('\n');
}

function summaryLines(result: GenerationResult): string[] {
  const lines = [
    '### Summary',
    '',
    '| # | action | status | real | documented | wording | within tolerance |',
    '|---|---|---|---|---|---|---|',
  ];
  result.actions.forEach((action, index) => {
    const counts = countKinds(action.differences);
    const compared = action.status === 'compared';
    lines.push(
      `| ${index + 1} | ${action.title} | ${action.status} | ${compared ? counts.real : '-'} | ${compared ? counts.documented : '-'} | ${compared ? counts.wording : '-'} | ${compared ? counts['within tolerance'] : '-'} |`,
    );
  });
  return lines;
}
