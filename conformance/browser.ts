// A browser's view of ITFlow, without the browser: one cookie jar (PHP's session), forms read
// from ITFlow's own pages and ajax modals and submitted with their own field values, as a person
// clicking through the UI would submit them. Every request says it arrived over HTTPS
// (X-Forwarded-Proto), as behind the reverse proxy ITFlow expects: ITFlow refuses to log in over
// plain HTTP while config.php keeps its default `$config_https_only = TRUE`.
import { type HTMLElement, parse } from 'node-html-parser';

/** Form fields in document order; a name may repeat (`watchers[]`). */
export type Fields = Array<[string, string]>;

export interface PageAnswer {
  status: number;
  /** The Location header of a redirect, or null. */
  location: string | null;
  body: string;
}

/** Values that replace every field of that name (an array: several fields of that name). */
export type Overrides = Record<string, string | string[] | null>;

export class HandlerError extends Error {}

export class ItflowBrowser {
  private readonly cookies = new Map<string, string>();

  constructor(readonly baseUrl: string) {}

  async get(path: string, referer?: string): Promise<PageAnswer> {
    return this.send('GET', path, undefined, referer);
  }

  async post(path: string, fields: Fields, referer?: string): Promise<PageAnswer> {
    // Multipart, as ITFlow's forms with file inputs are sent; the file inputs themselves are left
    // out (PHP then has no $_FILES entry, which every handler used here checks for).
    const form = new FormData();
    for (const [name, value] of fields) form.append(name, value);
    return this.send('POST', path, form, referer);
  }

  /** GET of an ajax modal: ITFlow answers `{"content": "<html>"}`. */
  async modal(path: string): Promise<string> {
    const answer = await this.get(path);
    if (answer.status !== 200) throw new HandlerError(`modal ${path} answered ${answer.status}`);
    try {
      return (JSON.parse(answer.body) as { content: string }).content;
    } catch {
      throw new HandlerError(`modal ${path} did not answer JSON: ${oneLine(answer.body)}`);
    }
  }

  /**
   * Reads the form that holds the submit button `submit` on `html`, applies `overrides` and posts
   * it where the form's action points (resolved against `pagePath`, the page the form lives on).
   */
  async submit(html: string, pagePath: string, submit: string, overrides: Overrides = {}): Promise<PageAnswer> {
    const form = readForm(html, submit);
    const fields = applyOverrides(form.fields, overrides);
    const target = new URL(form.action || pagePath, new URL(pagePath, this.baseUrl));
    return this.post(target.pathname + target.search, fields, new URL(pagePath, this.baseUrl).href);
  }

  /** The session's CSRF token, as ITFlow prints it into every form. */
  csrfToken(html: string): string {
    const input = parse(html).querySelector('input[name="csrf_token"]');
    const token = input?.getAttribute('value');
    if (!token) throw new HandlerError('no csrf_token on the page');
    return token;
  }

  private async send(method: string, path: string, body: FormData | undefined, referer?: string): Promise<PageAnswer> {
    const headers: Record<string, string> = {
      'X-Forwarded-Proto': 'https',
      'User-Agent': 'itflow-conformance',
    };
    if (this.cookies.size > 0) headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (referer) headers.Referer = referer;
    const response = await fetch(new URL(path, this.baseUrl), { method, headers, body, redirect: 'manual' });
    for (const cookie of response.headers.getSetCookie()) this.keepCookie(cookie);
    return { status: response.status, location: response.headers.get('location'), body: await response.text() };
  }

  private keepCookie(header: string): void {
    const [pair = ''] = header.split(';');
    const at = pair.indexOf('=');
    if (at <= 0) return;
    const name = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    const expired = /;\s*expires=([^;]+)/i.exec(header);
    if (value === '' || value === 'deleted' || (expired?.[1] && Date.parse(expired[1]) < Date.now())) {
      this.cookies.delete(name);
    } else {
      this.cookies.set(name, value);
    }
  }
}

export interface HtmlForm {
  action: string | null;
  fields: Fields;
}

/** The fields a browser would send for the form holding submit button `submit` (that button included). */
export function readForm(html: string, submit: string): HtmlForm {
  const root = parse(html, { blockTextElements: { script: true, style: true, textarea: true } });
  const button = root.querySelector(`button[name="${submit}"]`) ?? root.querySelector(`input[type="submit"][name="${submit}"]`);
  if (!button) throw new HandlerError(`no submit button "${submit}" on the page`);
  const form = button.closest('form') as HTMLElement | null;
  if (!form) throw new HandlerError(`submit button "${submit}" is not inside a form`);
  const fields: Fields = [];
  for (const element of form.querySelectorAll('input, select, textarea')) {
    const name = element.getAttribute('name');
    if (!name || element.hasAttribute('disabled')) continue;
    const tag = element.tagName.toLowerCase();
    if (tag === 'input') {
      const type = (element.getAttribute('type') ?? 'text').toLowerCase();
      if (['submit', 'button', 'image', 'reset', 'file'].includes(type)) continue;
      if ((type === 'checkbox' || type === 'radio') && !element.hasAttribute('checked')) continue;
      fields.push([name, element.getAttribute('value') ?? (type === 'checkbox' || type === 'radio' ? 'on' : '')]);
    } else if (tag === 'textarea') {
      fields.push([name, element.text]);
    } else {
      const options = element.querySelectorAll('option');
      const selected = options.filter((o) => o.hasAttribute('selected'));
      const chosen = selected.length > 0 || element.hasAttribute('multiple') ? selected : options.slice(0, 1);
      for (const option of chosen) fields.push([name, option.getAttribute('value') ?? option.text.trim()]);
    }
  }
  fields.push([submit, button.getAttribute('value') ?? '']);
  return { action: form.getAttribute('action') ?? null, fields };
}

/** Replaces every field named in `overrides` (null: removes it); names not on the form are added. */
export function applyOverrides(fields: Fields, overrides: Overrides): Fields {
  const kept = fields.filter(([name]) => !(name in overrides));
  for (const [name, value] of Object.entries(overrides)) {
    if (value === null) continue;
    for (const one of Array.isArray(value) ? value : [value]) kept.push([name, one]);
  }
  return kept;
}

/** The value of `<option>` whose label contains `label` in the select `name` of `html`. */
export function optionValue(html: string, name: string, label: RegExp): string {
  const select = parse(html).querySelector(`select[name="${name}"]`);
  const option = select?.querySelectorAll('option').find((o) => label.test(o.text.trim()));
  const value = option?.getAttribute('value');
  if (value === undefined) throw new HandlerError(`no option ${label} in select "${name}"`);
  return value;
}

export function oneLine(text: string, max = 200): string {
  const plain = text
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return plain.length > max ? `${plain.slice(0, max)}…` : plain;
}
