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

import type { Expr, FromItem, OrderItem, SelectItem, SelectStmt } from './ast.js';
import { LIMITS } from '../limits.js';
import { limitError, parseError } from './lexer.js';
import { ExprParser } from './parse-expr.js';

const CLAUSES = ['WHERE', 'GROUP BY', 'HAVING', 'QUALIFY', 'ORDER BY', 'LIMIT'] as const;
const JOIN_WORDS = new Set(['join', 'inner', 'left', 'right', 'full', 'outer', 'cross', 'natural']);

export function parseSql(sql: string): SelectStmt {
  if (sql.length > LIMITS.sqlLengthMax) {
    throw limitError(sql, LIMITS.sqlLengthMax, `SQL text is ${sql.length} characters, over the limit of ${LIMITS.sqlLengthMax},`);
  }
  return new Parser(sql).statement();
}

/** Statements and clauses; the expressions and the token helpers are ExprParser's. */
class Parser extends ExprParser {
  /** WITH queries in scope, by lower-cased name. */
  private ctes = new Map<string, SelectStmt>();
  /** Clauses passed in the current SELECT (for the message of a misplaced one). */
  private done = 0;
  // ---- statement ----

  statement(): SelectStmt {
    let stmt: SelectStmt;
    if (this.isWord('show') || this.isWord('describe') || this.isWord('desc')) stmt = this.catalogStatement();
    else stmt = this.query();
    this.end(stmt);
    return stmt;
  }

  /** `[WITH name AS (SELECT ...), ...] SELECT ...`: a WITH name is its query, read in place. */
  private query(): SelectStmt {
    if (!this.acceptKeyword('WITH')) return this.select();
    if (this.isWord('recursive')) this.unsupported('WITH RECURSIVE is not supported');
    const saved = new Map(this.ctes);
    do {
      const name = this.expectIdent('a name for the WITH query');
      if (this.isOp('(')) this.unsupported('column lists on WITH queries are not supported; alias the columns inside the query');
      this.expectKeyword('AS', 'AS after the WITH name');
      if (this.isWord('materialized') || this.isWord('not')) this.unsupported('MATERIALIZED is not supported');
      this.expectOp('(', "'(' and a SELECT after AS");
      const inner = this.query();
      this.expectOp(')', "')' after the WITH query");
      this.ctes.set(name.toLowerCase(), inner);
    } while (this.acceptOp(','));
    const stmt = this.select();
    this.ctes = saved;
    return stmt;
  }

  private select(): SelectStmt {
    const qualifiersFrom = this.qualifiers.length;
    this.expectKeyword('SELECT');
    const distinct = this.acceptKeyword('DISTINCT');
    if (distinct && this.isWord('on')) this.unsupported('SELECT DISTINCT ON is not supported; use QUALIFY row_number() OVER (PARTITION BY ...) = 1');
    if (!distinct) this.acceptWord('all');
    const items = this.list('select list', () => this.selectItem());
    if (!this.acceptKeyword('FROM')) this.fail("',' or FROM");
    const from = this.fromItem();

    // Each clause is optional; `done` counts the clauses passed, so an error can list the rest.
    this.done = 0;
    const where = this.acceptKeyword('WHERE') ? this.expr() : null;
    if (where !== null) this.done = 1;
    let groupBy: readonly Expr[] = [];
    let groupByAll = false;
    if (this.acceptKeyword('GROUP')) {
      this.expectKeyword('BY');
      if (this.isWord('all') && !this.isOp('(', this.peek(1))) { this.next(); groupByAll = true; }
      else groupBy = this.list('GROUP BY list', () => this.expr());
      this.done = 2;
    }
    const having = this.acceptKeyword('HAVING') ? this.expr() : null;
    if (having !== null) this.done = 3;
    if (this.isWord('window')) this.unsupported('named windows (WINDOW w AS ...) are not supported; write the window in OVER (...)');
    const qualify = this.acceptKeyword('QUALIFY') ? this.expr() : null;
    if (qualify !== null) this.done = 4;
    let orderBy: readonly OrderItem[] = [];
    if (this.acceptKeyword('ORDER')) {
      this.expectKeyword('BY');
      if (this.isWord('all')) this.unsupported('ORDER BY ALL is not supported; list the columns');
      orderBy = this.list('ORDER BY list', () => this.orderItem());
      this.done = 5;
    }
    let limit: number | null = null;
    let offset = 0;
    for (let i = 0; i < 2; i++) {
      if (limit === null && this.acceptKeyword('LIMIT')) { limit = this.limitValue('LIMIT'); this.done = 6; }
      else if (offset === 0 && this.acceptKeyword('OFFSET')) { offset = this.limitValue('OFFSET'); this.acceptWord('rows') || this.acceptWord('row'); this.done = 6; }
    }
    if (this.done === 0 && from.kind === 'table') this.rejectAfterTable();
    this.checkQualifiers(qualifiersFrom);
    return Object.freeze({ kind: 'select', distinct, items, from, where, groupBy, groupByAll, having, qualify, orderBy, limit, offset });
  }

  /**
   * `SHOW TABLES`, `DESCRIBE t` / `SHOW t`: SELECTs over the catalog relations, with DuckDB's
   * column names, so they answer in the same shape everywhere (docs/sql.md, "Catalog").
   */
  private catalogStatement(): SelectStmt {
    const start = this.next();
    const pos = start.pos;
    const col = (name: string): Expr => ({ kind: 'column', name, quoted: true, pos });
    const item = (expr: Expr, alias: string): SelectItem => ({ kind: 'expr', expr, alias, pos });
    const base = { kind: 'select' as const, distinct: false, groupBy: [], groupByAll: false, having: null, qualify: null, limit: null, offset: 0 };
    if (start.value.toLowerCase() === 'show' && this.isWord('tables')) {
      this.next();
      return Object.freeze({
        ...base, items: [item(col('table_name'), 'name')], from: { kind: 'catalog' as const, relation: 'tables' as const, pos }, where: null,
        orderBy: [{ expr: col('table_name'), desc: false, nullsFirst: null, pos }],
      });
    }
    if (this.isKeyword('SELECT')) this.unsupported('DESCRIBE of a query is not supported; DESCRIBE a table');
    const t = this.peek();
    const name = this.expectIdent('a table name after ' + start.value.toUpperCase());
    const nul: Expr = { kind: 'literal', value: null, pos };
    return Object.freeze({
      ...base,
      items: [item(col('column_name'), 'column_name'), item(col('data_type'), 'column_type'), item(col('is_nullable'), 'null'), item(nul, 'key'), item(nul, 'default'), item(nul, 'extra')],
      from: { kind: 'catalog' as const, relation: 'columns' as const, pos },
      where: { kind: 'binary' as const, op: '=' as const, left: col('table_name'), right: { kind: 'literal' as const, value: name, pos: t.pos }, pos: t.pos },
      orderBy: [{ expr: col('ordinal_position'), desc: false, nullsFirst: null, pos }],
    });
  }

  private selectItem(): SelectItem {
    const t = this.peek();
    if (this.isOp('*')) {
      this.next();
      return Object.freeze({ kind: 'star', pos: t.pos });
    }
    if (t.kind === 'ident' && this.isOp('.', this.peek(1)) && this.isOp('*', this.peek(2))) {
      this.qualifier(this.next());
      this.next(); this.next();
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

  /** FROM's one item: a table, `(SELECT ...)`, a WITH name, or information_schema.columns/tables; an optional alias. */
  private fromItem(): FromItem {
    const t = this.peek();
    let item: FromItem;
    if (this.isOp('(')) {
      this.next();
      if (!this.isKeyword('SELECT') && !this.isKeyword('WITH')) this.fail('SELECT in a subquery');
      const query = this.query();
      this.expectOp(')', "')' after the subquery");
      item = Object.freeze({ kind: 'subquery', query, pos: t.pos });
    } else {
      let name = this.expectIdent('table name');
      if (this.isOp('.')) {
        // Schema-qualified: information_schema.x is the catalog, main.t is table t.
        this.next();
        const member = this.expectIdent('a table name after the schema');
        const schema = t.quoted ? name : name.toLowerCase();
        if (schema === 'information_schema') {
          const rel = member.toLowerCase();
          if (rel !== 'columns' && rel !== 'tables') this.unsupported(`information_schema.${member} is not supported; use information_schema.columns or information_schema.tables`, this.tokens[this.index - 1]);
          this.tableAliases.add('columns').add('tables');
          item = Object.freeze({ kind: 'catalog', relation: rel, pos: t.pos });
        } else if (schema === 'main') {
          name = member;
          item = Object.freeze({ kind: 'table', name, pos: t.pos });
        } else {
          this.unsupported(`schema "${name}" does not exist; tables live in main`, t);
        }
      } else {
        const cte = this.ctes.get(name.toLowerCase());
        item = cte !== undefined && !t.quoted ? Object.freeze({ kind: 'subquery', query: cte, pos: t.pos }) : Object.freeze({ kind: 'table', name, pos: t.pos });
      }
      this.tableAliases.add(name.toLowerCase());
    }
    // An alias (`FROM events e`, `FROM (...) AS sub`) only qualifies column names: one relation.
    if (this.acceptKeyword('AS')) this.tableAliases.add(this.expectIdent('a name after AS').toLowerCase());
    else if (this.peek().kind === 'ident' && !this.peek().quoted && !JOIN_WORDS.has(this.peek().value.toLowerCase()) && !this.isWord('window')) this.tableAliases.add(this.next().value.toLowerCase());
    else if (this.peek().kind === 'ident' && this.peek().quoted) this.tableAliases.add(this.next().value.toLowerCase());
    return item;
  }

  private checkQualifiers(from: number): void {
    for (const q of this.qualifiers.splice(from)) {
      if (!this.tableAliases.has(q.value.toLowerCase())) {
        throw parseError(this.sql, q.pos, `"${q.value}" is not the table or alias of this query (a query reads one table)`);
      }
    }
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
    if (this.isOp('(')) this.unsupported('table functions are not supported');
  }

  private limitValue(clause: string): number {
    const t = this.peek();
    const value = t.kind === 'number' ? Number(t.value) : NaN;
    if (!Number.isInteger(value)) this.fail(`a non-negative integer after ${clause}`);
    this.next();
    if (value > LIMITS.resultRowsMax) {
      throw limitError(this.sql, t.pos, `${clause} ${t.value} is over the maximum of ${LIMITS.resultRowsMax}`);
    }
    return value;
  }

  /** After the last clause: an optional ';' and then nothing. */
  private end(_stmt: SelectStmt): void {
    const done = this.done;
    const t = this.peek();
    if (t.kind === 'eof') return;
    if (this.isOp(';')) {
      this.next();
      if (this.peek().kind !== 'eof') this.fail("end of input after ';' (one statement per query)");
      return;
    }
    if (this.isKeyword('UNION') || this.isKeyword('INTERSECT') || this.isKeyword('EXCEPT')) {
      this.unsupported(`${t.value} is not supported; run the queries one by one, or use one query with OR in WHERE or CASE in the select list`);
    }
    const rest = [...CLAUSES.slice(done), 'end of input'];
    const expected = rest.length === 1 ? rest[0]! : `${rest.slice(0, -1).join(', ')} or ${rest[rest.length - 1]!}`;
    // A clause keyword here is one out of order or repeated (in order it would have been taken).
    const misplaced = CLAUSES.some((c) => this.isKeyword(c.split(' ')[0]!));
    this.fail(misplaced ? `${expected} (clauses go in the order WHERE, GROUP BY, HAVING, QUALIFY, ORDER BY, LIMIT)` : expected);
  }

}
