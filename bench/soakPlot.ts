import type { Sample } from './soakSamples.js';

/** A worker restart, as the plot marks it. */
export interface RestartMark {
  t: number;
  signal: string;
}

const WIDTH = 860;
const LEFT = 72;
const RIGHT = 24;
const TOP = 58;
const PANEL = 190;
const GAP = 34;
const BOTTOM = 44;
const COLORS = { intake: '#1f77b4', worker: '#ff7f0e', p99: '#d62728', p50: '#8c8c8c', restart: '#555' };

/**
 * The soak's picture, hand-written SVG: two panels sharing the time axis — resident memory of
 * the intake and the worker (MiB), and accept→applied lag p99/p50 (ms, log scale) — with the
 * worker restarts marked across both and the drain after the load shaded.
 */
export function soakSvg(samples: Sample[], restarts: RestartMark[], loadSeconds: number, title: string): string {
  const height = TOP + PANEL * 2 + GAP + BOTTOM;
  const tMax = Math.max(loadSeconds, ...samples.map((s) => s.t), 1);
  const minutes = tMax > 300;
  const x = (t: number) => Math.round((LEFT + (t / tMax) * (WIDTH - LEFT - RIGHT)) * 10) / 10;
  const right = WIDTH - RIGHT;
  const top1 = TOP;
  const top2 = TOP + PANEL + GAP;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${xmlText(title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${xmlText(title)}</text>`,
  ];

  // Drain after the load, shaded in both panels.
  for (const top of [top1, top2]) {
    if (tMax > loadSeconds) {
      out.push(
        `<rect x="${x(loadSeconds)}" y="${top}" width="${(right - x(loadSeconds)).toFixed(1)}" height="${PANEL}" fill="#f0f0f0"/>`,
      );
    }
  }

  // Panel 1: RSS, linear from 0.
  const rssMax = niceCeil(Math.max(1, ...samples.flatMap((s) => [s.intakeRssMiB, s.workerRssMiB]).filter(Number.isFinite)) * 1.1);
  const y1 = (v: number) => top1 + PANEL - (v / rssMax) * PANEL;
  for (const tick of ticks(0, rssMax, 5)) {
    out.push(gridLine(y1(tick)), label(LEFT - 6, y1(tick) + 4, String(tick), 'end'));
  }
  out.push(axisTitle(top1, 'RSS (MiB)'));
  out.push(line(samples, (s) => s.intakeRssMiB, x, y1, COLORS.intake));
  out.push(line(samples, (s) => s.workerRssMiB, x, y1, COLORS.worker));

  // Panel 2: lag, log10 from 1 ms; an interval where nothing finished leaves a gap.
  const lags = samples.flatMap((s) => [s.lagP99Ms, s.lagP50Ms]).filter((v) => Number.isFinite(v) && v > 0);
  const decades = Math.max(2, Math.ceil(Math.log10(Math.max(1, ...lags))));
  const y2 = (v: number) => top2 + PANEL - (Math.log10(Math.max(1, v)) / decades) * PANEL;
  for (let d = 0; d <= decades; d++) {
    const ms = 10 ** d;
    out.push(gridLine(y2(ms)), label(LEFT - 6, y2(ms) + 4, ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`, 'end'));
  }
  out.push(axisTitle(top2, 'lag accept→applied (log)'));
  out.push(line(samples, (s) => s.lagP50Ms, x, y2, COLORS.p50, '4 3'));
  out.push(line(samples, (s) => s.lagP99Ms, x, y2, COLORS.p99));

  // Frames, the shared time axis, restart markers.
  for (const top of [top1, top2]) {
    out.push(`<rect x="${LEFT}" y="${top}" width="${right - LEFT}" height="${PANEL}" fill="none" stroke="#333"/>`);
  }
  const axisY = top2 + PANEL;
  for (const tick of ticks(0, minutes ? tMax / 60 : tMax, 10)) {
    const px = x(minutes ? tick * 60 : tick);
    out.push(
      `<line x1="${px}" y1="${axisY}" x2="${px}" y2="${axisY + 5}" stroke="#333"/>`,
      label(px, axisY + 18, String(tick), 'middle'),
    );
  }
  out.push(label((LEFT + right) / 2, axisY + 36, `time since the load started (${minutes ? 'min' : 's'})`, 'middle'));
  // Labels alternate between two heights so that restarts close together stay readable.
  restarts.forEach((restart, i) => {
    const px = x(restart.t);
    out.push(
      `<line x1="${px}" y1="${top1}" x2="${px}" y2="${axisY}" stroke="${COLORS.restart}" stroke-dasharray="5 4"/>`,
      label(px + 4, top1 + 14 + (i % 2) * 14, restart.signal, 'start', COLORS.restart),
    );
  });
  // Named only when the drain is wide enough to hold its name.
  if (x(tMax) - x(loadSeconds) > 40) out.push(label(x(loadSeconds) + 4, top2 + 14, 'drain', 'start'));
  out.push(legend(right), '</svg>');
  return `${out.join('\n')}\n`;
}

function legend(right: number): string {
  const entries: Array<[string, string, string?]> = [
    ['intake RSS', COLORS.intake],
    ['worker RSS', COLORS.worker],
    ['lag p99', COLORS.p99],
    ['lag p50', COLORS.p50, '4 3'],
    ['worker restart', COLORS.restart, '5 4'],
  ];
  const step = 118;
  let px = right - entries.length * step;
  return entries
    .map(([name, color, dash]) => {
      const item =
        `<line x1="${px}" y1="40" x2="${px + 22}" y2="40" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>` +
        label(px + 27, 44, name, 'start');
      px += step;
      return item;
    })
    .join('\n');
}

/**
 * A polyline broken wherever the value is missing (no process, nothing finished); a point
 * with no neighbour to join (a lone interval in which something finished) is drawn as a dot.
 */
function line(
  samples: Sample[],
  value: (s: Sample) => number,
  x: (t: number) => number,
  y: (v: number) => number,
  color: string,
  dash?: string,
): string {
  const runs: Array<Array<[number, number]>> = [[]];
  for (const s of samples) {
    const v = value(s);
    if (Number.isFinite(v)) runs.at(-1)?.push([x(s.t), y(v)]);
    else if (runs.at(-1)?.length) runs.push([]);
  }
  const d = runs
    .filter((run) => run.length > 1)
    .map((run) => run.map(([px, py], i) => `${i === 0 ? 'M' : 'L'}${px.toFixed(1)},${py.toFixed(1)}`).join(''))
    .join('');
  const dots = runs
    .filter((run) => run.length === 1)
    .map(([point]) => {
      const [px, py] = point as [number, number];
      return `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="2.5" fill="${color}"/>`;
    });
  return [
    `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
    ...dots,
  ].join('\n');
}

function gridLine(y: number): string {
  return `<line x1="${LEFT}" y1="${y}" x2="${WIDTH - RIGHT}" y2="${y}" stroke="#e3e3e3"/>`;
}

function axisTitle(top: number, text: string): string {
  const y = top + PANEL / 2;
  return `<text x="14" y="${y}" transform="rotate(-90 14 ${y})" text-anchor="middle">${xmlText(text)}</text>`;
}

function label(x: number, y: number, text: string, anchor: 'start' | 'middle' | 'end', fill = '#222'): string {
  return `<text x="${x}" y="${y}" text-anchor="${anchor}" fill="${fill}">${xmlText(text)}</text>`;
}

function xmlText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** About `count` round tick values from `from` to `to`. */
function ticks(from: number, to: number, count: number): number[] {
  const step = niceStep((to - from) / count);
  const out: number[] = [];
  for (let v = Math.ceil(from / step) * step; v <= to + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = [1, 2, 5, 10].find((m) => m * power >= raw) ?? 10;
  return unit * power;
}

function niceCeil(v: number): number {
  const step = niceStep(v / 5);
  return Math.ceil(v / step) * step;
}
