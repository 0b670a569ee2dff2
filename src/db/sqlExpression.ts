/**
 * A value given to mysql2 as SQL text rather than escaped data (mysql2 writes an object's
 * `toSqlString()` as it is): for a value only the server knows when the statement is sent, such
 * as a reply id read from a session variable set earlier in the same multi-statement query.
 * Build it from trusted text only — never from a request.
 */
export interface SqlExpression {
  toSqlString(): string;
}

export function sqlExpression(text: string): SqlExpression {
  return { toSqlString: () => text };
}

/** A reply id: known, or — in the round trip that inserts the reply — an expression for it. */
export type ReplyId = number | SqlExpression;
