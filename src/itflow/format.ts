// The small text functions ITFlow's handlers pass values through before writing them, ported so
// the service writes the same text: escapeSql/sanitizeInput (strip_tags, then trim — the SQL
// escaping itself is MySQL's to undo), formatPhoneNumber, and filter_var's email check.

const WHITESPACE = /\s/;

/**
 * PHP's strip_tags without an allow list: a '<' not followed by white space starts a tag that
 * runs to its '>' (a '>' inside quotes does not end it, a nested '<' deepens it) or to the end of
 * the text; comments go whole; a '<' followed by white space is text.
 */
export function stripTags(input: string): string {
  let out = '';
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < input.length; i++) {
    const c = input[i] as string;
    if (depth === 0) {
      if (c === '<' && !WHITESPACE.test(input[i + 1] ?? '')) {
        if (input.startsWith('<!--', i)) {
          const end = input.indexOf('-->', i + 4);
          i = end < 0 ? input.length : end + 2;
          continue;
        }
        depth = 1;
        continue;
      }
      out += c;
      continue;
    }
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '<') {
      depth++;
    } else if (c === '>') {
      depth--;
    }
  }
  return out;
}

/** What escapeSql()/sanitizeInput() leave of a value once MySQL has read the escaped string back. */
export function sanitize(value: unknown): string {
  return phpTrim(stripTags(value === null || value === undefined ? '' : String(value)));
}

/** PHP's trim(): space, tab, newline, carriage return, NUL and vertical tab at either end. */
const TRIMMED = new Set([' ', '\t', '\n', '\r', String.fromCharCode(0), String.fromCharCode(11)]);
function phpTrim(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && TRIMMED.has(text[start] as string)) start++;
  while (end > start && TRIMMED.has(text[end - 1] as string)) end--;
  return text.slice(start, end);
}

/** PHP's FILTER_VALIDATE_EMAIL, to the extent an ITFlow contact address needs. */
export function isValidEmail(value: string): boolean {
  if (value.length > 320) return false;
  return /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(
    value,
  );
}

/** ITFlow's formatPhoneNumber($phone, $country_code), without the country code prefix. */
export function formatPhoneNumber(phone: string | null, countryCode: string | null): string {
  let digits = (phone ?? '').replace(/\D/g, '');
  if (digits.length === 0) return phone ?? '';
  const startsWith = (char: string) => digits[0] === char;
  const drop0 = () => {
    if (startsWith('0')) digits = digits.slice(1);
  };
  const pairs = (text: string, size: number) => (text.match(new RegExp(`.{1,${size}}`, 'g')) ?? []).join(' ');
  let formatted = '';
  switch (countryCode ?? '') {
    case '1':
      if (digits.length === 10) formatted = `(${digits.slice(0, 3)}) ${digits.slice(3, 6)}-${digits.slice(6)}`;
      break;
    case '44':
      drop0();
      if (digits.length === 10) formatted = `0${digits.slice(0, 4)} ${digits.slice(4, 7)} ${digits.slice(7)}`;
      break;
    case '61':
      drop0();
      if (digits.length === 9) formatted = `0${digits.slice(0, 4)} ${digits.slice(4, 7)} ${digits.slice(7)}`;
      break;
    case '91':
      if (digits.length === 10) formatted = `${digits.slice(0, 5)} ${digits.slice(5)}`;
      break;
    case '81':
      drop0();
      if (digits.length >= 9 && digits.length <= 10)
        formatted = `0${digits.slice(0, 2)}-${digits.slice(2, 6)}-${digits.slice(6)}`;
      break;
    case '49':
      drop0();
      if (digits.length >= 10) formatted = `0${digits.slice(0, 3)} ${digits.slice(3)}`;
      break;
    case '33':
      drop0();
      if (digits.length === 9) formatted = `0${pairs(digits, 2)}`;
      break;
    case '34':
      if (digits.length === 9) formatted = `${digits.slice(0, 3)} ${digits.slice(3, 6)} ${digits.slice(6)}`;
      break;
    case '39':
      drop0();
      formatted = `0${pairs(digits, 3)}`;
      break;
    case '55':
      if (digits.length === 11) formatted = `(${digits.slice(0, 2)}) ${digits.slice(2, 7)}-${digits.slice(7)}`;
      break;
    case '7':
      if (startsWith('8')) digits = digits.slice(1);
      if (digits.length === 10) {
        formatted = `8 (${digits.slice(0, 3)}) ${digits.slice(3, 6)}-${digits.slice(6, 8)}-${digits.slice(8)}`;
      }
      break;
    case '86':
      if (digits.length === 11) formatted = `${digits.slice(0, 3)} ${digits.slice(3, 7)} ${digits.slice(7)}`;
      break;
    case '82':
      if (digits.length === 11) formatted = `${digits.slice(0, 3)}-${digits.slice(3, 7)}-${digits.slice(7)}`;
      break;
    case '62':
      if (!startsWith('0')) digits = `0${digits}`;
      if (digits.length === 12) formatted = `${digits.slice(0, 4)} ${digits.slice(4, 8)} ${digits.slice(8)}`;
      break;
    case '63':
      if (digits.length === 11) formatted = `${digits.slice(0, 4)} ${digits.slice(4, 7)} ${digits.slice(7)}`;
      break;
    case '234':
      if (!startsWith('0')) digits = `0${digits}`;
      if (digits.length === 11) formatted = `${digits.slice(0, 4)} ${digits.slice(4, 7)} ${digits.slice(7)}`;
      break;
    case '27':
      if (digits.length >= 9 && digits.length <= 10) formatted = `${digits.slice(0, 3)} ${digits.slice(3, 6)} ${digits.slice(6)}`;
      break;
    case '971':
      if (digits.length === 9) formatted = `${digits.slice(0, 3)} ${digits.slice(3, 6)} ${digits.slice(6)}`;
      break;
  }
  return formatted !== '' ? formatted : digits !== '' ? digits : (phone ?? '');
}
