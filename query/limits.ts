/**
 * Every bound of shoal in one place (SQLite `sqliteLimit.h` style). Each has the reason it exists
 * and its hard ceiling. Values here are compile-time constants; the runtime-tunable ones (memory
 * budget, timeouts, in-flight counts) live in server/leaf/config.ts, which validates them against the
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
  /** Estimated heap bytes of the groups one query builds in one process (a scan task, a leaf's
   * merge, the aggregator's merge; see query/exec/group-key.ts). A memory bound, not a count:
   * about 2.4M (url, country) groups with a count fit. Past it the query fails with
   * SHOAL_ERR_QUERY_GROUP_LIMIT and the figure, never a silent cut. Ceiling: V8's heap (~4 GiB
   * by default on 64-bit), which the group table shares with everything else. */
  queryGroupBytesMax: 1024 * 1024 * 1024,
  /** Estimated bytes of one thread's string-code table plus the block code maps built for it
   * (query/storage/string-codes.ts): past it the table starts over before the next scan. A leaf
   * passes a smaller bound from its memory budget (server/leaf/scan-pool.ts). Ceiling: V8's heap. */
  threadStringBytesMax: 512 * 1024 * 1024,
  /** Entries in one thread's string-code table. Codes index typed arrays and are packed 26 bits
   * a key when several keys are grouped (query/exec/group-ids.ts), so the ceiling is 2^26. */
  threadStringCodesMax: 16_777_216,
  /** Distinct values held by count(DISTINCT x) in one query (all groups together), and values
   * held by the exact quantiles (quantile_cont, quantile_disc, median): ~40 MB of doubles. */
  distinctValuesMax: 5_000_000,
  /** Values one window function may read over sliding frames (min/max OVER (ROWS BETWEEN n
   * PRECEDING ...)) in one query: 100,000 result rows with a 500-row frame. The common frames
   * cost one pass (query/merge/windows.ts). */
  windowWorkMax: 50_000_000,
  /** Largest LIMIT, and the rows a sample query (SELECT * ... LIMIT n) returns. */
  resultRowsMax: 100_000,
  /** Bytes of a regular expression pattern (regexp_matches, LIKE). */
  patternBytesMax: 4_096,

  // ---- cluster (aggregator, ingest router, shoal up) ----
  /** Members (leaves or child aggregators) in one cluster file, i.e. the width of one fan-out
   * level. Each member costs a socket per in-flight request and a slot in every query's merge;
   * past ~25-50 (docs/cluster.md, "Sizing: leaves per aggregator", measured), stand aggregators over
   * aggregators (a tree) instead. Ceiling: the file
   * descriptor limit of the aggregator process. */
  clusterMembersMax: 1_024,
  /** Heartbeats a joined member (`shoal leaf --join`) may miss before the aggregator drops it.
   * Until then it is a member like any other: a query counts its rows as missing when it does
   * not answer. 5 at the default 1 s heartbeat: a leaf that is gone is forgotten after ~5 s,
   * while a leaf restarting keeps announcing itself (it starts its heartbeat before its restore). */
  joinMissesMax: 5,
  /** Aggregators one leaf announces itself to (`--join a,b,...`): each costs a request per
   * heartbeat. Ceiling: that traffic. */
  joinTargetsMax: 16,
  /** Addresses one --leaves-dns name may list: bounded like the cluster file. */
  dnsAddressesMax: 1_024,
  /** Bytes of a cluster file. A thousand members with ids and URLs fit in ~100 KB. */
  clusterFileBytesMax: 1_048_576,
  /** Requests one fan-out (a query, a health round, a tables listing) has in flight at once.
   * Members beyond it wait for a slot, so a wide cluster does not open thousands of sockets in
   * one burst. At or above clusterMembersMax it means "every member at once". Ceiling: sockets. */
  fanoutInFlightMax: 1_024,
  /** Connections the aggregator keeps open to one member (undici pool, keep-alive). Requests
   * beyond it queue in undici; that queue is bounded by the aggregator's own in-flight limits
   * (queries, ingest requests, one health check per member). */
  memberConnectionsMax: 64,
  /** A top-n pushed down to the leaves (query/merge/top-cut.ts): each leaf sends at most
   * max(topCutGroupsMin, topCutGroupsPerRow x (LIMIT + OFFSET)) groups and a bound. 1,024 groups
   * of a few states are ~30 KB on the wire, and on skewed data the k-th count is far above the
   * 1,024th of a leaf, so the first answer is nearly always exact. Past topCutRowsMax rows the
   * answer needs most groups anyway and every group is sent. */
  topCutGroupsMin: 1_024,
  topCutGroupsPerRow: 8,
  topCutRowsMax: 10_000,
  /** Bytes of one member's answer to a query (its partial states or sample rows). A partial of
   * a large grouping with sketches can be large; past this the member counts as failed rather
   * than exhausting the aggregator's heap. Ceiling: V8's string limit (~512 MiB). */
  memberAnswerBytesMax: 256 * 1024 * 1024,
  /** Bytes of a member's status or tables answer (a thousand tables of a few hundred bytes each,
   * or a child aggregator listing a thousand members). */
  memberStatusBytesMax: 16 * 1024 * 1024,
  /** Failures listed in one coverage object; the rest are counted in failuresOmitted. A tree of
   * aggregators can list every dead leaf beneath it. */
  coverageFailuresMax: 1_024,
  /** Attempts the ingest router makes for one batch, counting a retry of the same leaf after an
   * ambiguous failure. Each try costs at most the ingest timeout, so this times the timeout is
   * the longest a client waits. A refused batch usually lands on the second or third leaf. */
  ingestRouteTriesMax: 6,
  /** Batch ids whose leaf the ingest router remembers (the most recent ones), so a client that
   * retries a batch after a lost answer is sent to the leaf that may have stored it, whose dedupe
   * then drops the copy. ~100 bytes each: 100,000 ids cost ~10 MB. */
  ingestPlacementsMax: 100_000,
  /** Column types (all tables together) one status answer lists, so the ingest router can keep
   * one schema per cluster. A status is polled every 250 ms, but it lists columns only when the
   * caller's `schemaVersion` is stale (after a schema change), so the steady state costs nothing;
   * 10,000 entries are ~300 KB. Tables past it are marked `columnsOmitted` and their batches are
   * not type-checked by the router (a query still reports a conflict). Ceiling: memberStatusBytesMax. */
  statusColumnsMax: 10_000,
  /** Bytes of the `x-shoal-column-types` header: the cluster's types of the columns the target
   * leaf does not have yet, checked by that leaf while it decodes the batch. Node refuses a
   * request whose headers exceed 16 KiB, so 8 KiB (~300 columns) leaves room for the rest; a
   * longer list is cut (the columns left out are checked at query time only). */
  ingestTypeHintBytesMax: 8_192,
  /** How long past a forwarded batch's deadline the router waits before it places the batch on
   * another leaf. A leaf checks the deadline right before it logs and applies a batch; this margin
   * covers what can pass between that check and the append (a disk-log write, a GC pause) plus
   * the error of the router's estimate of the leaf's clock (half the status round trip, added on
   * top). Bigger is safer against duplicates and slower to fail over. Ceiling: the ingest timeout. */
  ingestDeadlineMarginMs: 250,
  /** How long a leaf asked whether it holds a batch id (`GET /v1/batches/:id`, the check an
   * aggregator makes before it places a client's resend) waits for that id while a try of it is
   * being received, decoded or stored there, so a batch that a dead aggregator had already handed
   * over is seen rather than placed a second time. The router sends a resend to a leaf that still
   * has the id in flight after the wait (its dedupe settles it), so this only saves that second
   * upload. Ceiling: batchLookupTimeoutMs less a round trip. */
  batchLookupWaitMs: 250,
  /** How long the router waits for each member's answer to that check. A member that has not
   * answered by then is counted as not holding the batch (docs/cluster.md, "Several
   * aggregators", says what that leaves open). Bounds what the check adds to a resend. */
  batchLookupTimeoutMs: 1_000,
  /** Entries of one table's eviction log (time range and rows of the blocks the memory budget
   * dropped): queries count the evicted rows inside their time range as missing coverage. Past
   * it the two oldest entries merge (coarser ranges for older history); 24 bytes each. */
  evictionRangesPerTableMax: 256,
  /** Sealed blocks one leaf keeps in shared-memory segments (server/durability/shm-blocks.ts);
   * past it new blocks stay on the heap and a planned restart copies them. Each segment is one
   * mapping, and Linux allows a process vm.max_map_count (65,530 by default) mappings in all,
   * which the heap, the workers and the addon share; 32,768 blocks of 64 Ki rows is ~2 billion
   * rows. Ceiling: vm.max_map_count less what the process maps otherwise. */
  shmBlockSegmentsMax: 32_768,
  /** Leaves `shoal up` starts on one machine: each is a process with its own heap and workers. */
  upLeavesMax: 64,
  /** Aggregators `shoal up --aggregators N` starts: each health-checks every leaf. */
  upAggregatorsMax: 8,
  /** Restarts of one child per minute before `shoal up` stops restarting it (a leaf that cannot
   * start would otherwise spin forever). */
  upRestartsPerMinuteMax: 10,

  // ---- clients (the shoal CLI commands and the loader) ----
  /** Servers one client command takes (`--url a,b,...` or SHOAL_URL=a,b): it fails over from one
   * to the next on connection errors, trying each at most once per request, so this bounds the
   * tries (and the wait) of a request that no server answers. A handful of aggregators is the
   * use; a longer list is more likely a mistake. Ceiling: that wait. */
  clientUrlsMax: 16,

  // ---- loader (shoal load / shoal tail, loader/) ----
  /** Bytes of one input line (NDJSON) the loader holds. One event must fit one request body;
   * a longer line is reported as a bad row and skipped without being held whole, so a file with
   * no newlines cannot exhaust the loader's memory. Ceiling: bodyBytesMax. */
  loaderLineBytesMax: 8 * 1024 * 1024,
  /** Ceiling of --batch-bytes. Batches are sized by UTF-16 length, and UTF-8 takes at most 3
   * bytes per UTF-16 unit, so 16 MiB of text stays under bodyBytesMax (64 MiB) in bytes. */
  loaderBatchBytesMax: 16 * 1024 * 1024,
  /** Ceiling of --in-flight: batches sent at once. Each holds its body (<= loaderBatchBytesMax)
   * in memory, so this times the batch size bounds the loader's buffers. */
  loaderInFlightMax: 64,
  /** Ceiling of --retries: attempts per batch on refusals (503) and connection errors. With
   * the delay capped at loaderRetryDelayMsMax, the default gives up after about a minute. */
  loaderRetriesMax: 1_000,
  /** Longest wait between two attempts (exponential backoff, or the server's Retry-After). */
  loaderRetryDelayMsMax: 10_000,
  /** Ceiling of --infer-rows: CSV rows held in memory to infer column types. */
  loaderInferRowsMax: 100_000,
  /** Rejected rows kept with their reason for the final report (the rest are only counted). */
  loaderRejectionsKeptMax: 1_000,
  /** Bytes of a tail state file read back (it is a small JSON object). */
  tailStateBytesMax: 64 * 1024,
  /** Directory entries a restarted tail looks through for the rotated file it was reading. */
  tailRotatedScanMax: 1_000,
} as const;

export type Limits = typeof LIMITS;
