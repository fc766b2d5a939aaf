/**
 * SQL parser: a hand-written recursive-descent parser from query text to the AST of ast.ts.
 *
 * Grammar (DuckDB spelling, a subset):
 *   SELECT item, ... FROM table [WHERE e] [GROUP BY e, ...] [HAVING e]
 *     [ORDER BY e [ASC|DESC], ...] [LIMIT n] [;]
 *   item := '*' | e [[AS] alias]
 * Precedence, loosest first: OR; AND; NOT; comparison (= != <> < <= > >=, [NOT] IN (...),
 * [NOT] LIKE/ILIKE, IS [NOT] NULL, [NOT] BETWEEN a AND b); + -; * / %; unary minus; primary.
 * Comparisons are non-associative, as in Postgres: `a = b = c` is an error asking for parentheses,
 * because it is almost always a typo. Negative numeric literals are folded (`-5` is Literal -5).
 * A node's pos is its first token; a parenthesised expression keeps the pos of its inner node.
 *
 * Not here: name resolution, aliases and ordinals in GROUP BY / ORDER BY, function arity, types,
 * aggregate placement. Those belong to the planner; the parser only builds the tree.
 *
 * Bounds (limits.ts): text length, expression depth (both the parser's own recursion, so
 * "((((..." cannot overflow the JS stack, and the depth of the built tree, so long
 * `a + b + c ...` chains cannot overflow the evaluator's), IN-list length, item counts, LIMIT.
 */

import type { BinaryOp, Expr, IntervalLiteral, OrderItem, SelectItem, SelectStmt } from './ast.js';
import { LIMITS } from '../limits.js';
import { limitError, parseError, quoteText, tokenize, type Token } from './lexer.js';

const COMPARISON_OPS: Readonly<Record<string, BinaryOp>> = { '=': '=', '!=': '!=', '<>': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };
const NEGATABLE = new Set(['IN', 'LIKE', 'ILIKE', 'BETWEEN']);
const CLAUSES = ['WHERE', 'GROUP BY', 'HAVING', 'ORDER BY', 'LIMIT'] as const;
const JOIN_WORDS = new Set(['join', 'inner', 'left', 'right', 'full', 'outer', 'cross', 'natural']);
const TYPED_LITERAL_WORDS = new Set(['date', 'time', 'timestamp', 'timestamptz']);
/** Functions called without parentheses: `current_timestamp` is now(), `current_date` its UTC day. */
const BARE_FUNCTION_WORDS = new Set(['current_timestamp', 'current_date']);

/**
 * Interval units in milliseconds. Months and years are absent on purpose: they have no fixed
 * length, and an IntervalLiteral is a plain number of seconds.
 */
const INTERVAL_UNIT_MS: ReadonlyMap<string, number> = new Map([
  ...['us', 'usec', 'usecs', 'microsecond', 'microseconds'].map((u) => [u, 0.001] as const),
  ...['ms', 'msec', 'msecs', 'millisecond', 'milliseconds'].map((u) => [u, 1] as const),
  ...['s', 'sec', 'secs', 'second', 'seconds'].map((u) => [u, 1_000] as const),
  ...['m', 'min', 'mins', 'minute', 'minutes'].map((u) => [u, 60_000] as const),
  ...['h', 'hr', 'hrs', 'hour', 'hours'].map((u) => [u, 3_600_000] as const),
  ...['d', 'day', 'days'].map((u) => [u, 86_400_000] as const),
  ...['w', 'week', 'weeks'].map((u) => [u, 604_800_000] as const),
]);
/** A signed decimal number with optional exponent, as in an interval's text. */
const NUMBER_PATTERN = '[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?';
const VARIABLE_UNITS = new Set(['mon', 'mons', 'month', 'months', 'y', 'yr', 'yrs', 'year', 'years', 'decade', 'decades', 'century', 'centuries']);

export function parseSql(sql: string): SelectStmt {
  if (sql.length > LIMITS.sqlLengthMax) {
    throw limitError(sql, LIMITS.sqlLengthMax, `SQL text is ${sql.length} characters, over the limit of ${LIMITS.sqlLengthMax},`);
  }
  return new Parser(sql).statement();
}

class Parser {
  private readonly tokens: Token[];
  private index = 0;
  /** Active expression frames (parseExpr, NOT, unary minus): bounds the parser's recursion. */
  private nesting = 0;
  /** Height of each built node (a leaf is 1): bounds the recursion of whoever walks the tree. */
  private readonly heights = new WeakMap<Expr, number>();

  constructor(private readonly sql: string) {
    this.tokens = tokenize(sql);
  }

  // ---- statement ----

  statement(): SelectStmt {
    if (this.isKeyword('WITH')) this.unsupported('WITH (common table expressions) is not supported');
    this.expectKeyword('SELECT');
    if (this.isKeyword('DISTINCT')) this.unsupported('SELECT DISTINCT is not supported; use GROUP BY');
    const items = this.list('select list', () => this.selectItem());
    if (!this.acceptKeyword('FROM')) this.fail("',' or FROM");
    const from = this.tableName();

    // Each clause is optional; `done` counts the clauses passed, so an error can list the rest.
    let done = 0;
    const where = this.acceptKeyword('WHERE') ? this.expr() : null;
    if (where !== null) done = 1;
    let groupBy: readonly Expr[] = [];
    if (this.acceptKeyword('GROUP')) {
      this.expectKeyword('BY');
      groupBy = this.list('GROUP BY list', () => this.expr());
      done = 2;
    }
    const having = this.acceptKeyword('HAVING') ? this.expr() : null;
    if (having !== null) done = 3;
    let orderBy: readonly OrderItem[] = [];
    if (this.acceptKeyword('ORDER')) {
      this.expectKeyword('BY');
      orderBy = this.list('ORDER BY list', () => this.orderItem());
      done = 4;
    }
    let limit: number | null = null;
    if (this.acceptKeyword('LIMIT')) {
      limit = this.limitValue();
      done = 5;
    }
    if (done === 0) this.rejectAfterTable();
    this.end(done);
    return Object.freeze({ kind: 'select', items, from, where, groupBy, having, orderBy, limit });
  }

  private selectItem(): SelectItem {
    const t = this.peek();
    if (this.isOp('*')) {
      this.next();
      return Object.freeze({ kind: 'star', pos: t.pos });
    }
    const expr = this.expr();
    let alias: string | null = null;
    if (this.acceptKeyword('AS')) {
      alias = this.expectIdent('alias after AS');
    } else if (this.peek().kind === 'ident') {
      alias = this.next().value;
    }
    return Object.freeze({ kind: 'expr', expr, alias, pos: t.pos });
  }

  private orderItem(): OrderItem {
    const pos = this.peek().pos;
    const expr = this.expr();
    let desc = false;
    if (this.acceptKeyword('DESC')) desc = true;
    else this.acceptKeyword('ASC');
    if (this.isWord('nulls')) this.unsupported('NULLS FIRST / NULLS LAST is not supported');
    return Object.freeze({ expr, desc, pos });
  }

  private tableName(): { readonly name: string; readonly pos: number } {
    const t = this.peek();
    if (this.isOp('(')) {
      if (this.isKeyword('SELECT', this.peek(1))) this.unsupported('subqueries are not supported');
      this.fail('table name');
    }
    return Object.freeze({ name: this.expectIdent('table name'), pos: t.pos });
  }

  /** Called when no clause follows the table: explain joins, aliases and unquoted dashes. */
  private rejectAfterTable(): void {
    const t = this.peek();
    const previous = this.tokens[this.index - 1]!;
    if (this.isOp(',') || this.isKeyword('JOIN') || (t.kind === 'ident' && !t.quoted && JOIN_WORDS.has(t.value.toLowerCase()))) {
      this.unsupported('joins are not supported: a query reads one table');
    }
    if (this.isOp('-') && t.pos === previous.end && !previous.quoted) {
      this.unsupported(`a table name containing '-' must be double-quoted, e.g. FROM "my-table"`);
    }
    if (this.isKeyword('AS') || t.kind === 'ident') this.unsupported('table aliases are not supported');
    if (this.isOp('(')) this.unsupported('table functions are not supported');
  }

  private limitValue(): number {
    const t = this.peek();
    const value = t.kind === 'number' ? Number(t.value) : NaN;
    if (!Number.isInteger(value)) this.fail('a non-negative integer after LIMIT');
    this.next();
    if (value > LIMITS.resultRowsMax) {
      throw limitError(this.sql, t.pos, `LIMIT ${t.value} is over the maximum of ${LIMITS.resultRowsMax}`);
    }
    if (this.isKeyword('OFFSET')) this.unsupported('OFFSET is not supported');
    return value;
  }

  /** After the last clause: an optional ';' and then nothing. */
  private end(done: number): void {
    const t = this.peek();
    if (t.kind === 'eof') return;
    if (this.isOp(';')) {
      this.next();
      if (this.peek().kind !== 'eof') this.fail("end of input after ';' (one statement per query)");
      return;
    }
    if (this.isKeyword('UNION') || this.isKeyword('INTERSECT') || this.isKeyword('EXCEPT')) {
      this.unsupported(`${t.value} is not supported`);
    }
    const rest = [...CLAUSES.slice(done), 'end of input'];
    const expected = rest.length === 1 ? rest[0]! : `${rest.slice(0, -1).join(', ')} or ${rest[rest.length - 1]!}`;
    // A clause keyword here is one out of order or repeated (in order it would have been taken).
    const misplaced = CLAUSES.some((c) => this.isKeyword(c.split(' ')[0]!));
    this.fail(misplaced ? `${expected} (clauses go in the order WHERE, GROUP BY, HAVING, ORDER BY, LIMIT)` : expected);
  }

  // ---- expressions, loosest binding first ----

  private expr(): Expr {
    this.enter();
    const e = this.or();
    this.nesting--;
    return e;
  }

  private or(): Expr {
    let left = this.and();
    while (this.isKeyword('OR')) {
      const op = this.next();
      const right = this.and();
      left = this.node({ kind: 'binary', op: 'or', left, right, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.isKeyword('AND')) {
      const op = this.next();
      const right = this.not();
      left = this.node({ kind: 'binary', op: 'and', left, right, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  private not(): Expr {
    if (!this.isKeyword('NOT')) return this.comparison();
    const t = this.next();
    this.enter();
    const operand = this.not();
    this.nesting--;
    return this.node({ kind: 'unary', op: 'not', operand, pos: t.pos }, t.pos, operand);
  }

  private comparison(): Expr {
    const left = this.additive();
    const result = this.comparisonTail(left);
    if (result !== left && this.atComparison()) {
      this.unsupported('comparisons do not chain; add parentheses, e.g. (a = b) = c');
    }
    return result;
  }

  private atComparison(): boolean {
    const t = this.peek();
    if (t.kind === 'op') return t.value in COMPARISON_OPS;
    if (t.kind !== 'keyword') return false;
    if (t.value === 'NOT') { const u = this.peek(1); return u.kind === 'keyword' && NEGATABLE.has(u.value); }
    return t.value === 'IS' || NEGATABLE.has(t.value);
  }

  private comparisonTail(left: Expr): Expr {
    const t = this.peek();
    const pos = left.pos;
    if (t.kind === 'op' && t.value in COMPARISON_OPS) {
      this.next();
      const right = this.additive();
      return this.node({ kind: 'binary', op: COMPARISON_OPS[t.value]!, left, right, pos }, t.pos, left, right);
    }
    if (this.acceptKeyword('IS')) {
      const negated = this.acceptKeyword('NOT');
      if (this.isKeyword('DISTINCT') || this.isKeyword('TRUE') || this.isKeyword('FALSE')) {
        this.unsupported(`IS ${negated ? 'NOT ' : ''}${this.peek().value} is not supported`);
      }
      this.expectKeyword('NULL', negated ? 'NULL after IS NOT' : 'NULL or NOT after IS');
      return this.node({ kind: 'isNull', operand: left, negated, pos }, t.pos, left);
    }
    const negated = this.isKeyword('NOT') && this.atComparison();
    if (negated) this.next();
    if (this.acceptKeyword('IN')) {
      if (!this.isOp('(')) this.fail("'(' after IN");
      if (this.isKeyword('SELECT', this.peek(1))) this.unsupported('subqueries are not supported');
      this.next();
      const list: Expr[] = [this.expr()];
      while (this.acceptOp(',')) {
        if (list.length >= LIMITS.inListMax) {
          throw limitError(this.sql, this.peek().pos, `IN list has more than ${LIMITS.inListMax} items`);
        }
        list.push(this.expr());
      }
      this.expectOp(')', "',' or ')' in IN list");
      return this.node({ kind: 'in', operand: left, list: Object.freeze(list), negated, pos }, t.pos, left, ...list);
    }
    if (this.isKeyword('LIKE') || this.isKeyword('ILIKE')) {
      const caseInsensitive = this.next().value === 'ILIKE';
      const pattern = this.additive();
      if (this.isWord('escape')) this.unsupported('LIKE ... ESCAPE is not supported');
      return this.node({ kind: 'like', operand: left, pattern, negated, caseInsensitive, pos }, t.pos, left, pattern);
    }
    if (this.acceptKeyword('BETWEEN')) {
      const low = this.additive();
      this.expectKeyword('AND', 'AND in BETWEEN ... AND ...');
      const high = this.additive();
      return this.node({ kind: 'between', operand: left, low, high, negated, pos }, t.pos, left, low, high);
    }
    return left;
  }

  private additive(): Expr {
    let left = this.multiplicative();
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.next();
      const right = this.multiplicative();
      left = this.node({ kind: 'binary', op: op.value as '+' | '-', left, right, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  private multiplicative(): Expr {
    let left = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = this.next();
      const right = this.unary();
      left = this.node({ kind: 'binary', op: op.value as '*' | '/' | '%', left, right, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  private unary(): Expr {
    if (!this.isOp('-')) return this.primary();
    const t = this.next();
    this.enter();
    const operand = this.unary();
    this.nesting--;
    // Fold `-5` into a literal so the planner sees a constant, not an operation.
    if (operand.kind === 'literal' && typeof operand.value === 'number') {
      return this.node(operand.float ? { kind: 'literal', value: -operand.value, pos: t.pos, float: true } : { kind: 'literal', value: -operand.value, pos: t.pos }, t.pos);
    }
    return this.node({ kind: 'unary', op: 'neg', operand, pos: t.pos }, t.pos, operand);
  }

  private primary(): Expr {
    const t = this.peek();
    switch (t.kind) {
      case 'number': {
        this.next();
        const value = Number(t.value);
        if (!Number.isFinite(value)) throw parseError(this.sql, t.pos, `number ${quoteText(t.value)} is out of range`);
        return this.node(/[.eE]/.test(t.value) ? { kind: 'literal', value, pos: t.pos, float: true } : { kind: 'literal', value, pos: t.pos }, t.pos);
      }
      case 'string':
        this.next();
        return this.node({ kind: 'literal', value: t.value, pos: t.pos }, t.pos);
      case 'keyword':
        if (t.value === 'TRUE' || t.value === 'FALSE' || t.value === 'NULL') {
          this.next();
          const value = t.value === 'NULL' ? null : t.value === 'TRUE';
          return this.node({ kind: 'literal', value, pos: t.pos }, t.pos);
        }
        if (t.value === 'CASE') this.unsupported('CASE expressions are not supported');
        break;
      case 'op':
        if (t.value === '(') {
          if (this.isKeyword('SELECT', this.peek(1))) this.unsupported('subqueries are not supported');
          this.next();
          const inner = this.expr();
          this.expectOp(')', "')'");
          return inner;
        }
        break;
      case 'ident': {
        const after = this.peek(1);
        const word = t.quoted ? '' : t.value.toLowerCase();
        if (word === 'interval' && (after.kind === 'string' || after.kind === 'number')) return this.interval();
        if (after.kind === 'op' && after.value === '(') return this.call();
        if (TYPED_LITERAL_WORDS.has(word) && after.kind === 'string') {
          this.unsupported(`typed literals such as ${t.value.toUpperCase()} '...' are not supported`);
        }
        this.next();
        // SQL's niladic functions, written without parentheses. A column of that name needs
        // double quotes (as in Postgres; DuckDB would prefer an existing column).
        if (BARE_FUNCTION_WORDS.has(word)) {
          return this.node({ kind: 'call', name: word, args: Object.freeze([]), distinct: false, pos: t.pos }, t.pos);
        }
        return this.node({ kind: 'column', name: t.value, quoted: t.quoted, pos: t.pos }, t.pos);
      }
      case 'eof':
        break;
    }
    return this.fail('expression');
  }

  private call(): Expr {
    const nameToken = this.next();
    const name = nameToken.value.toLowerCase();
    this.next(); // '('
    const distinct = this.acceptKeyword('DISTINCT');
    const args: Expr[] = [];
    if (this.isOp('*') && !distinct) {
      args.push(this.node({ kind: 'star', pos: this.next().pos }, nameToken.pos));
    } else if (!this.isOp(')') || distinct) {
      // No count limit on arguments: they are a loop, not recursion, and bounded by text length.
      args.push(this.expr());
      while (this.acceptOp(',')) args.push(this.expr());
    }
    if (name === 'cast' && this.isKeyword('AS')) this.unsupported('CAST is not supported');
    this.expectOp(')', args.length === 0 || args[0]!.kind === 'star' ? "')'" : "',' or ')'");
    if (this.isWord('over')) this.unsupported('window functions (OVER) are not supported');
    if (this.isWord('filter') && this.isOp('(', this.peek(1))) this.unsupported('aggregate FILTER clauses are not supported');
    return this.node({ kind: 'call', name, args: Object.freeze(args), distinct, pos: nameToken.pos }, nameToken.pos, ...args);
  }

  /** `INTERVAL '5 minutes'`, `INTERVAL '1 hour 30 minutes'`, `INTERVAL '5' MINUTE`, `INTERVAL 5 MINUTE`. */
  private interval(): IntervalLiteral {
    const start = this.next();
    const value = this.next();
    let text = value.value;
    const unit = this.peek();
    const bareNumber = value.kind === 'number' || new RegExp(`^\\s*${NUMBER_PATTERN}\\s*$`).test(text);
    if (bareNumber && unit.kind === 'ident' && !unit.quoted) {
      this.next();
      text = `${text.trim()} ${unit.value}`;
    } else if (value.kind === 'number') {
      this.fail(`an interval unit (e.g. MINUTE) after INTERVAL ${value.value}`);
    }
    const seconds = this.intervalSeconds(text, value.pos);
    return this.node({ kind: 'interval', seconds, text, pos: start.pos }, start.pos);
  }

  private intervalSeconds(text: string, pos: number): number {
    const part = new RegExp(`\\s*(${NUMBER_PATTERN})\\s*([A-Za-z]+)\\s*`, 'y');
    let totalMs = 0;
    let offset = 0;
    while (offset < text.length || offset === 0) {
      part.lastIndex = offset;
      const m = part.exec(text);
      if (m === null) {
        throw parseError(this.sql, pos, `invalid interval ${quoteText(text)}: expected a number and a unit, e.g. '5 minutes',`);
      }
      const unit = m[2]!.toLowerCase();
      const unitMs = INTERVAL_UNIT_MS.get(unit);
      if (unitMs === undefined) {
        const why = VARIABLE_UNITS.has(unit) ? ' (months and years have no fixed length)' : '';
        throw parseError(this.sql, pos, `unknown interval unit ${quoteText(m[2]!)}${why}; use ms, seconds, minutes, hours, days or weeks,`);
      }
      totalMs += Number(m[1]) * unitMs;
      offset = part.lastIndex;
    }
    const seconds = totalMs / 1000;
    if (!Number.isFinite(seconds)) throw parseError(this.sql, pos, `interval ${quoteText(text)} is out of range`);
    return seconds;
  }

  // ---- helpers ----

  /** Freezes a node after checking the tree height it creates against LIMITS.exprDepthMax. */
  private node<T extends Expr>(node: T, errorPos: number, ...children: Expr[]): T {
    let height = 0;
    for (const child of children) height = Math.max(height, this.heights.get(child) ?? 1);
    height += 1;
    if (height > LIMITS.exprDepthMax) {
      throw limitError(this.sql, errorPos, `expression is nested more than ${LIMITS.exprDepthMax} levels deep`);
    }
    this.heights.set(node, height);
    return Object.freeze(node);
  }

  private enter(): void {
    if (++this.nesting > LIMITS.exprDepthMax) {
      throw limitError(this.sql, this.peek().pos, `expression is nested more than ${LIMITS.exprDepthMax} levels deep`);
    }
  }

  private list<T>(what: string, item: () => T): readonly T[] {
    const items = [item()];
    while (this.acceptOp(',')) {
      if (items.length >= LIMITS.selectItemsMax) {
        throw limitError(this.sql, this.peek().pos, `${what} has more than ${LIMITS.selectItemsMax} items`);
      }
      items.push(item());
    }
    return Object.freeze(items);
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.index++;
    return t;
  }

  private isKeyword(word: string, t: Token = this.peek()): boolean { return t.kind === 'keyword' && t.value === word; }
  private isOp(op: string, t: Token = this.peek()): boolean { return t.kind === 'op' && t.value === op; }
  /** A non-reserved word with meaning in one place only (NULLS, OVER, ...). */
  private isWord(word: string, t: Token = this.peek()): boolean { return t.kind === 'ident' && !t.quoted && t.value.toLowerCase() === word; }

  private acceptKeyword(word: string): boolean { if (!this.isKeyword(word)) return false; this.next(); return true; }
  private acceptOp(op: string): boolean { if (!this.isOp(op)) return false; this.next(); return true; }
  private expectKeyword(word: string, expected: string = word): void { if (!this.acceptKeyword(word)) this.fail(expected); }
  private expectOp(op: string, expected: string): void { if (!this.acceptOp(op)) this.fail(expected); }

  private expectIdent(expected: string): string {
    const t = this.peek();
    if (t.kind !== 'ident') this.fail(expected);
    this.next();
    return t.value;
  }

  private describe(t: Token): string {
    if (t.kind === 'eof') return 'end of input';
    return quoteText(this.sql.slice(t.pos, t.end));
  }

  private fail(expected: string, t: Token = this.peek()): never {
    throw parseError(this.sql, t.pos, `expected ${expected} but found ${this.describe(t)}`);
  }

  private unsupported(message: string, t: Token = this.peek()): never {
    throw parseError(this.sql, t.pos, `${message}; found ${this.describe(t)}`);
  }
}
