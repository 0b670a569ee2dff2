import { describe, expect, it } from 'vitest';
import { formatPhoneNumber, isValidEmail, sanitize } from '../../src/itflow/format.js';

// The text functions ITFlow's handlers apply before writing, against what ITFlow's own PHP
// returned for the same input (php-cli 8.2: trim(strip_tags()), formatPhoneNumber from
// functions/format.php, filter_var(FILTER_VALIDATE_EMAIL)).

const TEXTS: Array<[string, string]> = [
  ['Printer <b>down</b>', 'Printer down'],
  [' a < b and c > d ', 'a < b and c > d'],
  ['<a href="x>y">link</a> after', 'link after'],
  ['x <!-- hidden --> y', 'x  y'],
  ['<<nested>> z', 'z'],
  ['tail <b', 'tail'],
  ['5 <3 ok', '5'],
  ["quote ' in <i title='a>b'>it</i>", "quote ' in it"],
  ['\tTabbed\n', 'Tabbed'],
  ['Ünïcode <br/>😀', 'Ünïcode 😀'],
  ['a<b>c', 'ac'],
  ['<', ''],
  ['a <', 'a'],
  ['', ''],
];
const PHONES: Array<[string, string, string]> = [
  ['5555550100', '1', '(555) 555-0100'],
  ['(555) 555-0100', '1', '(555) 555-0100'],
  ['02079460000', '44', '02079 460 000'],
  ['0412345678', '61', '04123 456 78'],
  ['9876543210', '91', '98765 43210'],
  ['0312345678', '81', '031-2345-678'],
  ['030123456789', '49', '0301 23456789'],
  ['0123456789', '33', '012 34 56 78 9'],
  ['912345678', '34', '912 345 678'],
  ['0612345678', '39', '0612 345 678'],
  ['11987654321', '55', '(11) 98765-4321'],
  ['89161234567', '7', '8 (916) 123-45-67'],
  ['13812345678', '86', '138 1234 5678'],
  ['01012345678', '82', '010-1234-5678'],
  ['81234567890', '62', '0812 3456 7890'],
  ['09171234567', '63', '0917 123 4567'],
  ['8031234567', '234', '0803 123 4567'],
  ['0821234567', '27', '082 123 4567'],
  ['501234567', '971', '501 234 567'],
  ['12345', '1', '12345'],
  ['abc', '1', 'abc'],
  ['+1 555 555 0100', '', '15555550100'],
];
const EMAILS: Array<[string, boolean]> = [
  ['a@b.co', true],
  ['john.doe@example.com', true],
  ['bad@', false],
  ['no at', false],
  ['x@localhost', false],
  ['a..b@c.com', false],
  ['first+tag@sub.domain.org', true],
  ['a@b.c', true],
  ['a@-b.com', false],
];

describe('ITFlow’s text functions', () => {
  it.each(TEXTS)('escapeSql(%j) stores %j', (input, stored) => expect(sanitize(input)).toBe(stored));
  it.each(PHONES)('formatPhoneNumber(%j, %j) is %j', (phone, country, formatted) =>
    expect(formatPhoneNumber(phone, country)).toBe(formatted),
  );
  it.each(EMAILS)('FILTER_VALIDATE_EMAIL(%j) is %j', (email, valid) => expect(isValidEmail(email)).toBe(valid));
});
