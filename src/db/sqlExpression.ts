import type { raw } from 'mysql2/promise';

/**
 * A value mysql2 writes into a statement as SQL text rather than escaped data (made with
 * mysql2's `raw()`, from trusted text only — never from a request): for a value only the server
 * knows when the statement is sent, such as a reply id read from a session variable set earlier
 * in the same multi-statement query.
 */
export type SqlExpression = ReturnType<typeof raw>;

/** A reply id: known, or — in the round trip that inserts the reply — an expression for it. */
export type ReplyId = number | SqlExpression;
