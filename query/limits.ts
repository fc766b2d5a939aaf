/**
 * Every bound of shoal in one place (SQLite `sqliteLimit.h` style). Each has the reason it exists
 * and its hard ceiling. Values here are compile-time constants; the runtime-tunable ones (memory
 * budget, timeouts, in-flight counts) live in server/config.ts, which validates them against the
 * ceilings given here.
 */

export const LIMITS = {
  // ---- storage ----
  /** Rows per row block. 65,536 keeps a block's columns in L2-sized pieces and codes in uint16
   * range; it is also the unit of work of a scan task (~50 us of overhead per task is noise
   * against a block's scan). Hard ceiling: 2^31 (typed array indices). */
  blockRowsMax: 65_536,
  /** Columns in one table. Each column costs a typed array per block and a schema entry; a
   * client sending random keys would otherwise grow a table without bound. Ceiling ~10^5. */
  columnsPerTableMax: 1_000,
  /** Tables per leaf: each has an open block with buffers; bounds memory for hostile clients. */
  tablesPerLeafMax: 1_000,
  /** Bytes in a table name, and its alphabet (letters, digits, _ and -): names appear in file
   * names on disk and in shared-memory segment names. */
  tableNameBytesMax: 128,
  /** Bytes in a column (field) name. */
  columnNameBytesMax: 256,
  /** UTF-8 bytes of one string value: log lines fit, whole documents do not belong in a column. */
  stringBytesMax: 65_536,
  /** Elements in one string-set value. */
  setElementsMax: 1_024,
  /** Largest integer accepted exactly: numbers are stored as float64 at worst, exact to 2^53. */
  integerAbsMax: Number.MAX_SAFE_INTEGER,
  /** Accepted `time` range (unix seconds): 1900-01-01 .. 2200-01-01. Outside it is almost surely
   * milliseconds or garbage; rejecting it keeps time pruning and buckets meaningful. */
  timeSecondsMin: -2_208_988_800,
  timeSecondsMax: 7_258_118_400,

  // ---- ingest ----
  /** Bytes in one HTTP request body (ingest or query). A batch is parsed in memory whole. */
  bodyBytesMax: 64 * 1024 * 1024,
  /** Events in one batch. A batch is atomic, so it is validated whole before it is stored. */
  eventsPerBatchMax: 100_000,
  /** JSON nesting depth the ingest decoder accepts before rejecting (events are flat objects;
   * only a set value nests one level). Bounds recursion on hostile input. */
  jsonDepthMax: 32,

  // ---- query ----
  /** Characters of SQL text. */
  sqlLengthMax: 100_000,
  /** Nesting depth (tree height) of expressions: bounds parser and evaluator recursion. A flat
   * chain `a OR b OR ...` counts one level per term, so 256 leaves room for generated filters
   * while keeping evaluator recursion far from the JS stack limit (~10,000 frames). */
  exprDepthMax: 256,
  /** Elements in an IN (...) list. */
  inListMax: 10_000,
  /** Items in the select list, GROUP BY and ORDER BY. */
  selectItemsMax: 256,
  /** Groups one query may build on a leaf (and at the aggregator after merging). Past it the
   * query fails with SHOAL_ERR_QUERY_GROUP_LIMIT instead of silently dropping groups. */
  groupsMax: 1_000_000,
  /** Distinct values held by count(DISTINCT x) in one query (all groups together). */
  distinctValuesMax: 5_000_000,
  /** Largest LIMIT, and the rows a sample query (SELECT * ... LIMIT n) returns. */
  resultRowsMax: 100_000,
  /** Bytes of a regular expression pattern (regexp_matches, LIKE). */
  patternBytesMax: 4_096,
} as const;

export type Limits = typeof LIMITS;
