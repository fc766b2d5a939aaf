/**
 * The loader as a library: `load()` for files, `tail()` for a growing NDJSON file, `ingest()`
 * for NDJSON lines sent as they are (a file or stdin), and the pieces they are made of for
 * callers that need them. See loader/README.md and docs/loader.md.
 */
export { load, type LoadHooks, type LoadProgress } from './load.js';
export { ingest, defaultIngestOptions, batchIdFor, type IngestOptions, type IngestHooks, type IngestSummary } from './ingest.js';
export { tail, defaultTailOptions, defaultStateFile, type TailOptions, type TailHooks, type TailEvent, type TailSummary } from './tail.js';
export {
  defaultLoadOptions, parseSchemaOption, parseSizeOption, validateLoadOptions,
  type LoadOptions, type RowOptions, type SendOptions, type InputFormat, type TimeFormat, type MissingTimePolicy, type CsvType,
} from './options.js';
export { formatReport, type LoadReport, type RejectedRow } from './report.js';
export { httpTransport, type Transport, type TransportAnswer } from './transport.js';
export { openSource } from './readers.js';
export type { RowSource, RowChunk } from './source.js';
