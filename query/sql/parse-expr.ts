/**
 * The expression half of the SQL parser (parser.ts has the statements): precedence climbing from
 * OR down to primaries, calls with FILTER and OVER, CASE, CAST and `::`, INTERVAL literals, and
 * the token helpers both halves use. Every node is built through `node()`, which bounds the tree's
 * height, and every recursion through `enter()`, which bounds the parser's own depth.
 */
import type { BinaryOp, CaseExpr, CastType, Expr, FrameBound, IntervalLiteral, OrderItem, WindowSpec } from './ast.js';
import { LIMITS } from '../limits.js';
import { limitError, parseError, quoteText, tokenize, type Token } from './lexer.js';
import { BARE_NUMBER, castType, EXTRACT_PARTS, intervalSeconds } from './sql-words.js';

const COMPARISON_OPS: Readonly<Record<string, BinaryOp>> = { '=': '=', '!=': '!=', '<>': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };
const NEGATABLE = new Set(['IN', 'LIKE', 'ILIKE', 'BETWEEN']);
const TYPED_LITERAL_WORDS = new Set(['date', 'time', 'timestamp', 'timestamptz', 'datetime']);
/** Functions called without parentheses: `current_timestamp` is now(), `current_date` its UTC day. */
const BARE_FUNCTION_WORDS = new Set(['current_timestamp', 'current_date']);

export abstract class ExprParser {
  protected readonly tokens: Token[];
  protected index = 0;
  /** Active expression frames (parseExpr, NOT, unary minus): bounds the parser's recursion. */
  protected nesting = 0;
  /** Height of each built node (a leaf is 1): bounds the recursion of whoever walks the tree. */
  protected readonly heights = new WeakMap<Expr, number>();
  /** Names that may qualify a column (`e.service`): the table, its alias. */
  protected readonly tableAliases = new Set<string>();
  /** Qualifiers seen (`e.` in `e.service`), checked once the SELECT's FROM is known. */
  protected readonly qualifiers: Token[] = [];

  constructor(protected readonly sql: string) {
    this.tokens = tokenize(sql);
  }

  protected orderItem(): OrderItem {
    const pos = this.peek().pos;
    const expr = this.expr();
    let desc = false;
    if (this.acceptKeyword('DESC')) desc = true;
    else this.acceptKeyword('ASC');
    let nullsFirst: boolean | null = null;
    if (this.acceptWord('nulls')) {
      if (this.acceptWord('first')) nullsFirst = true;
      else if (this.acceptWord('last')) nullsFirst = false;
      else this.fail('FIRST or LAST after NULLS');
    }
    return Object.freeze({ expr, desc, nullsFirst, pos });
  }

  /** `q.` before a column: q must name the query's one relation (there are no joins). The
   * select list comes before FROM, so the check waits for the end of the SELECT. */
  protected qualifier(q: Token): void {
    this.next(); // the '.'
    this.qualifiers.push(q);
  }

  // ---- expressions, loosest binding first ----

  protected expr(): Expr {
    this.enter();
    const e = this.or();
    this.nesting--;
    return e;
  }

  protected or(): Expr {
    let left = this.and();
    while (this.isKeyword('OR')) {
      const op = this.next();
      const right = this.and();
      left = this.node({ kind: 'binary', op: 'or', left, right, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  protected and(): Expr {
    let left = this.not();
    while (this.isKeyword('AND')) {
      const op = this.next();
      const right = this.not();
      left = this.node({ kind: 'binary', op: 'and', left, right, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  protected not(): Expr {
    if (!this.isKeyword('NOT')) return this.comparison();
    const t = this.next();
    this.enter();
    const operand = this.not();
    this.nesting--;
    return this.node({ kind: 'unary', op: 'not', operand, pos: t.pos }, t.pos, operand);
  }

  protected comparison(): Expr {
    const left = this.concat();
    const result = this.comparisonTail(left);
    if (result !== left && this.atComparison()) {
      this.unsupported('comparisons do not chain; add parentheses, e.g. (a = b) = c');
    }
    return result;
  }

  protected atComparison(): boolean {
    const t = this.peek();
    if (t.kind === 'op') return t.value in COMPARISON_OPS;
    if (t.kind !== 'keyword') return false;
    if (t.value === 'NOT') { const u = this.peek(1); return u.kind === 'keyword' && NEGATABLE.has(u.value); }
    return t.value === 'IS' || NEGATABLE.has(t.value);
  }

  protected comparisonTail(left: Expr): Expr {
    const t = this.peek();
    const pos = left.pos;
    if (t.kind === 'op' && t.value in COMPARISON_OPS) {
      this.next();
      if (this.isKeyword('ANY') || this.isWord('any') || this.isWord('all') || this.isWord('some')) this.unsupported('comparisons with ANY / ALL are not supported; use IN (...)');
      const right = this.concat();
      return this.node({ kind: 'binary', op: COMPARISON_OPS[t.value]!, left, right, pos }, t.pos, left, right);
    }
    if (this.acceptKeyword('IS')) {
      const negated = this.acceptKeyword('NOT');
      if (this.acceptKeyword('DISTINCT')) {
        this.expectKeyword('FROM', 'FROM after IS DISTINCT');
        const right = this.concat();
        return this.node({ kind: 'call', name: negated ? '$not_distinct' : '$distinct', args: [left, right], distinct: false, pos }, t.pos, left, right);
      }
      if (this.isKeyword('TRUE') || this.isKeyword('FALSE')) {
        const want = this.next().value === 'TRUE';
        // x IS TRUE: never NULL (x = TRUE is NULL for a NULL x).
        const lit: Expr = { kind: 'literal', value: want, pos: t.pos };
        return this.node({ kind: 'call', name: negated ? '$distinct' : '$not_distinct', args: [left, lit], distinct: false, pos }, t.pos, left);
      }
      this.expectKeyword('NULL', negated ? 'NULL after IS NOT' : 'NULL or NOT after IS');
      return this.node({ kind: 'isNull', operand: left, negated, pos }, t.pos, left);
    }
    const negated = this.isKeyword('NOT') && this.atComparison();
    if (negated) this.next();
    if (this.acceptKeyword('IN')) {
      if (!this.isOp('(')) this.fail("'(' after IN");
      if (this.isKeyword('SELECT', this.peek(1))) this.unsupported('subqueries in IN (...) are not supported: a query reads one table; list the values, or filter on the same table');
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
      const pattern = this.concat();
      if (this.isWord('escape')) this.unsupported('LIKE ... ESCAPE is not supported');
      return this.node({ kind: 'like', operand: left, pattern, negated, caseInsensitive, pos }, t.pos, left, pattern);
    }
    if (this.acceptKeyword('BETWEEN')) {
      const low = this.concat();
      this.expectKeyword('AND', 'AND in BETWEEN ... AND ...');
      const high = this.concat();
      return this.node({ kind: 'between', operand: left, low, high, negated, pos }, t.pos, left, low, high);
    }
    return left;
  }

  /** `a || b`: looser than + and -, tighter than comparisons (Postgres and DuckDB). */
  protected concat(): Expr {
    let left = this.additive();
    while (this.isOp('||')) {
      const op = this.next();
      const right = this.additive();
      left = this.node({ kind: 'call', name: '$concat', args: [left, right], distinct: false, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  protected additive(): Expr {
    let left = this.multiplicative();
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.next();
      const right = this.multiplicative();
      left = this.node({ kind: 'binary', op: op.value as '+' | '-', left, right, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  protected multiplicative(): Expr {
    let left = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = this.next();
      const right = this.unary();
      left = this.node({ kind: 'binary', op: op.value as '*' | '/' | '%', left, right, pos: left.pos }, op.pos, left, right);
    }
    return left;
  }

  protected unary(): Expr {
    if (!this.isOp('-')) return this.postfix();
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

  /** A primary and its `::TYPE` casts, which bind tightest (`-x::int` is `-(x::int)`). */
  protected postfix(): Expr {
    let e = this.primary();
    while (this.isOp('::')) {
      const op = this.next();
      const { to, typeName } = this.typeName();
      e = this.node({ kind: 'cast', operand: e, to, typeName, try: false, pos: e.pos }, op.pos, e);
    }
    return e;
  }

  /** A type name after AS or `::`, with DuckDB's spellings (sql-words.ts maps them). */
  protected typeName(): { to: CastType; typeName: string } {
    const t = this.peek();
    if (t.kind !== 'ident') this.fail('a type name');
    this.next();
    let text = t.value;
    // Multi-word names and parameters: DOUBLE PRECISION, TIMESTAMP WITH TIME ZONE, VARCHAR(20).
    if (text.toLowerCase() === 'double' && this.isWord('precision')) this.next();
    if (this.isKeyword('WITH') && this.isWord('time', this.peek(1))) { this.next(); this.next(); this.expectWord('zone'); text = 'timestamptz'; }
    let params = '';
    if (this.isOp('(')) {
      const open = this.next();
      while (!this.isOp(')') && this.peek().kind !== 'eof') this.next();
      this.expectOp(')', "')' after the type's parameters");
      params = this.sql.slice(open.pos, this.tokens[this.index - 1]!.end);
    }
    const mapped = castType(text, params);
    if (typeof mapped === 'string') throw parseError(this.sql, t.pos, mapped);
    return { to: mapped.to, typeName: mapped.name };
  }

  protected primary(): Expr {
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
        if (t.value === 'CASE') return this.caseExpr();
        break;
      case 'op':
        if (t.value === '(') {
          if (this.isKeyword('SELECT', this.peek(1))) this.unsupported('scalar subqueries are not supported: a query reads one table; compute the value with its own query, or use a window such as sum(x) OVER () for a share of the total');
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
          if (word === 'time') this.unsupported("TIME '...' literals are not supported; use TIMESTAMP '...'");
          this.next();
          const lit = this.next();
          const operand = this.node({ kind: 'literal', value: lit.value, pos: lit.pos }, lit.pos);
          const to = word === 'date' ? 'date' : 'time';
          return this.node({ kind: 'cast', operand, to, typeName: word === 'date' ? 'DATE' : 'TIMESTAMP', try: false, pos: t.pos }, t.pos, operand);
        }
        this.next();
        if (after.kind === 'op' && after.value === '.') {
          this.qualifier(t);
          const c = this.peek();
          if (c.kind !== 'ident') this.fail('a column name after the qualifier');
          this.next();
          return this.node({ kind: 'column', name: c.value, quoted: c.quoted, pos: c.pos }, c.pos);
        }
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

  protected call(): Expr {
    const nameToken = this.next();
    const name = nameToken.value.toLowerCase();
    this.next(); // '('
    if (!nameToken.quoted && (name === 'cast' || name === 'try_cast')) return this.castCall(nameToken, name === 'try_cast');
    if (!nameToken.quoted && (name === 'extract')) return this.extractCall(nameToken);
    if (!nameToken.quoted && name === 'position') {
      // position(needle IN haystack) is strpos(haystack, needle), as in DuckDB and Postgres.
      const needle = this.concat();
      this.expectKeyword('IN', 'IN in position(needle IN string)');
      const haystack = this.concat();
      this.expectOp(')', "')'");
      return this.node({ kind: 'call', name: 'strpos', args: Object.freeze([haystack, needle]), distinct: false, pos: nameToken.pos }, nameToken.pos, haystack, needle);
    }
    const distinct = this.acceptKeyword('DISTINCT');
    const args: Expr[] = [];
    if (this.isOp('*') && !distinct) {
      args.push(this.node({ kind: 'star', pos: this.next().pos }, nameToken.pos));
    } else if (!this.isOp(')') || distinct) {
      // No count limit on arguments: they are a loop, not recursion, and bounded by text length.
      args.push(this.expr());
      while (this.acceptOp(',')) args.push(this.expr());
    }
    if (this.isKeyword('ORDER')) this.unsupported(`ORDER BY inside ${name}() is not supported`);
    this.expectOp(')', args.length === 0 || args[0]!.kind === 'star' ? "')'" : "',' or ')'");
    let filter: Expr | undefined;
    if (this.isWord('filter') && this.isOp('(', this.peek(1))) {
      this.next(); this.next();
      this.acceptKeyword('WHERE');
      filter = this.expr();
      this.expectOp(')', "')' after the FILTER condition");
    }
    let over: WindowSpec | undefined;
    if (this.acceptWord('over')) over = this.windowSpec();
    const node: Expr = { kind: 'call', name, args: Object.freeze(args), distinct, pos: nameToken.pos, ...(filter ? { filter } : {}), ...(over ? { over } : {}) };
    return this.node(node, nameToken.pos, ...args, ...(filter ? [filter] : []), ...(over ? [...over.partitionBy, ...over.orderBy.map((o) => o.expr)] : []));
  }

  /** `CAST(x AS T)` / `TRY_CAST(x AS T)`, after the '('. */
  protected castCall(nameToken: Token, isTry: boolean): Expr {
    const operand = this.expr();
    this.expectKeyword('AS', `AS and a type in ${nameToken.value.toUpperCase()}(x AS type)`);
    const { to, typeName } = this.typeName();
    this.expectOp(')', "')'");
    return this.node({ kind: 'cast', operand, to, typeName, try: isTry, pos: nameToken.pos }, nameToken.pos, operand);
  }

  /** `extract(part FROM x)` is `date_part('part', x)`. */
  protected extractCall(nameToken: Token): Expr {
    const p = this.peek();
    if (p.kind !== 'ident' && p.kind !== 'string') this.fail('a part such as hour in extract(hour FROM time)');
    this.next();
    const part = p.value.toLowerCase();
    if (!EXTRACT_PARTS.has(part)) throw parseError(this.sql, p.pos, `unknown date part ${quoteText(p.value)}; use one of ${[...EXTRACT_PARTS].join(', ')}`);
    this.expectKeyword('FROM', 'FROM in extract(part FROM time)');
    const arg = this.expr();
    this.expectOp(')', "')'");
    const lit: Expr = this.node({ kind: 'literal', value: part, pos: p.pos }, p.pos);
    return this.node({ kind: 'call', name: 'date_part', args: Object.freeze([lit, arg]), distinct: false, pos: nameToken.pos }, nameToken.pos, arg);
  }

  /** `OVER ( [PARTITION BY e, ...] [ORDER BY ...] [ROWS|RANGE frame] )`, after OVER. */
  protected windowSpec(): WindowSpec {
    if (this.peek().kind === 'ident' && !this.isOp('(')) this.unsupported('named windows are not supported; write the window in OVER (...)');
    this.expectOp('(', "'(' after OVER");
    let partitionBy: readonly Expr[] = [];
    let orderBy: readonly OrderItem[] = [];
    if (this.acceptWord('partition')) {
      this.expectKeyword('BY', 'BY after PARTITION');
      partitionBy = this.list('PARTITION BY list', () => this.expr());
    }
    if (this.acceptKeyword('ORDER')) {
      this.expectKeyword('BY', 'BY after ORDER');
      orderBy = this.list('ORDER BY list', () => this.orderItem());
    }
    let frame: WindowSpec['frame'] = null;
    if (this.isWord('rows') || this.isWord('range') || this.isWord('groups')) {
      const unitToken = this.next();
      const unit = unitToken.value.toLowerCase();
      if (unit === 'groups') this.unsupported('GROUPS frames are not supported; use ROWS or RANGE', this.tokens[this.index - 1]);
      let start: FrameBound;
      let end: FrameBound = { kind: 'current', offset: 0 };
      if (this.acceptKeyword('BETWEEN')) {
        start = this.frameBound();
        this.expectKeyword('AND', 'AND in BETWEEN ... AND ...');
        end = this.frameBound();
      } else start = this.frameBound();
      if (unit === 'range' && (start.kind === 'preceding' || start.kind === 'following' || end.kind === 'preceding' || end.kind === 'following')) {
        this.unsupported('RANGE frames with an offset are not supported; use ROWS BETWEEN n PRECEDING AND CURRENT ROW', unitToken);
      }
      frame = { unit: unit as 'rows' | 'range', start, end };
      if (this.isWord('exclude')) this.unsupported('EXCLUDE in a window frame is not supported');
    }
    this.expectOp(')', "')' to close OVER (...)");
    return Object.freeze({ partitionBy, orderBy, frame });
  }

  protected frameBound(): FrameBound {
    if (this.acceptWord('unbounded')) {
      if (this.acceptWord('preceding')) return { kind: 'unbounded', offset: -1 };
      if (this.acceptWord('following')) return { kind: 'unbounded', offset: 1 };
      this.fail('PRECEDING or FOLLOWING after UNBOUNDED');
    }
    if (this.acceptWord('current')) { this.expectWord('row'); return { kind: 'current', offset: 0 }; }
    const t = this.peek();
    const n = t.kind === 'number' ? Number(t.value) : NaN;
    if (!Number.isInteger(n) || n < 0) this.fail('UNBOUNDED, CURRENT ROW or a non-negative integer in the window frame');
    this.next();
    if (this.acceptWord('preceding')) return { kind: 'preceding', offset: n };
    if (this.acceptWord('following')) return { kind: 'following', offset: n };
    return this.fail('PRECEDING or FOLLOWING');
  }

  /** `CASE [x] WHEN ... THEN ... [ELSE ...] END`, at CASE. */
  protected caseExpr(): Expr {
    const t = this.next();
    this.enter();
    const operand = this.isKeyword('WHEN') ? null : this.expr();
    const whens: { when: Expr; then: Expr }[] = [];
    const children: Expr[] = operand ? [operand] : [];
    while (this.acceptKeyword('WHEN')) {
      const when = this.expr();
      this.expectKeyword('THEN', 'THEN after the WHEN condition');
      const then = this.expr();
      whens.push(Object.freeze({ when, then }));
      children.push(when, then);
    }
    if (whens.length === 0) this.fail('WHEN in CASE');
    const otherwise = this.acceptKeyword('ELSE') ? this.expr() : null;
    if (otherwise) children.push(otherwise);
    this.expectKeyword('END', 'WHEN, ELSE or END in CASE');
    this.nesting--;
    const node: CaseExpr = { kind: 'case', operand, whens: Object.freeze(whens), else: otherwise, pos: t.pos };
    return this.node(node, t.pos, ...children);
  }

  /** `INTERVAL '5 minutes'`, `INTERVAL '1 hour 30 minutes'`, `INTERVAL '5' MINUTE`, `INTERVAL 5 MINUTE`. */
  protected interval(): IntervalLiteral {
    const start = this.next();
    const value = this.next();
    let text = value.value;
    const unit = this.peek();
    const bareNumber = value.kind === 'number' || BARE_NUMBER.test(text);
    if (bareNumber && unit.kind === 'ident' && !unit.quoted) {
      this.next();
      text = `${text.trim()} ${unit.value}`;
    } else if (value.kind === 'number') {
      this.fail(`an interval unit (e.g. MINUTE) after INTERVAL ${value.value}`);
    }
    const seconds = this.intervalSeconds(text, value.pos);
    return this.node({ kind: 'interval', seconds, text, pos: start.pos }, start.pos);
  }

  protected intervalSeconds(text: string, pos: number): number {
    const r = intervalSeconds(text);
    if (typeof r === 'string') throw parseError(this.sql, pos, r);
    return r;
  }

  // ---- helpers ----

  /** Freezes a node after checking the tree height it creates against LIMITS.exprDepthMax. */
  protected node<T extends Expr>(node: T, errorPos: number, ...children: Expr[]): T {
    let height = 0;
    for (const child of children) height = Math.max(height, this.heights.get(child) ?? 1);
    height += 1;
    if (height > LIMITS.exprDepthMax) {
      throw limitError(this.sql, errorPos, `expression is nested more than ${LIMITS.exprDepthMax} levels deep`);
    }
    this.heights.set(node, height);
    return Object.freeze(node);
  }

  protected enter(): void {
    if (++this.nesting > LIMITS.exprDepthMax) {
      throw limitError(this.sql, this.peek().pos, `expression is nested more than ${LIMITS.exprDepthMax} levels deep`);
    }
  }

  protected list<T>(what: string, item: () => T): readonly T[] {
    const items = [item()];
    while (this.acceptOp(',')) {
      if (items.length >= LIMITS.selectItemsMax) {
        throw limitError(this.sql, this.peek().pos, `${what} has more than ${LIMITS.selectItemsMax} items`);
      }
      items.push(item());
    }
    return Object.freeze(items);
  }

  protected peek(offset = 0): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!;
  }

  protected next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.index++;
    return t;
  }

  protected isKeyword(word: string, t: Token = this.peek()): boolean { return t.kind === 'keyword' && t.value === word; }
  protected isOp(op: string, t: Token = this.peek()): boolean { return t.kind === 'op' && t.value === op; }
  /** A non-reserved word with meaning in one place only (NULLS, OVER, ...). */
  protected isWord(word: string, t: Token = this.peek()): boolean { return t.kind === 'ident' && !t.quoted && t.value.toLowerCase() === word; }

  protected acceptWord(word: string): boolean { if (!this.isWord(word)) return false; this.next(); return true; }
  protected expectWord(word: string): void { if (!this.acceptWord(word)) this.fail(word.toUpperCase()); }
  protected acceptKeyword(word: string): boolean { if (!this.isKeyword(word)) return false; this.next(); return true; }
  protected acceptOp(op: string): boolean { if (!this.isOp(op)) return false; this.next(); return true; }
  protected expectKeyword(word: string, expected: string = word): void { if (!this.acceptKeyword(word)) this.fail(expected); }
  protected expectOp(op: string, expected: string): void { if (!this.acceptOp(op)) this.fail(expected); }

  protected expectIdent(expected: string): string {
    const t = this.peek();
    if (t.kind !== 'ident') this.fail(expected);
    this.next();
    return t.value;
  }

  protected describe(t: Token): string {
    if (t.kind === 'eof') return 'end of input';
    return quoteText(this.sql.slice(t.pos, t.end));
  }

  protected fail(expected: string, t: Token = this.peek()): never {
    throw parseError(this.sql, t.pos, `expected ${expected} but found ${this.describe(t)}`);
  }

  protected unsupported(message: string, t: Token = this.peek()): never {
    throw parseError(this.sql, t.pos, `${message}; found ${this.describe(t)}`);
  }
}
