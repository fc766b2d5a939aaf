/**
 * Prometheus metrics (prom-client) of a leaf or an aggregator, on `GET /metrics`. One registry
 * per process; names follow Prometheus conventions (unit suffixes, _total for counters).
 */
import client from 'prom-client';

export function createMetrics(role: 'leaf' | 'aggregator') {
  const registry = new client.Registry();
  registry.setDefaultLabels({ role });
  client.collectDefaultMetrics({ register: registry });
  return {
    registry,
    ingestRows: new client.Counter({ name: 'shoal_ingest_rows_total', help: 'Rows accepted', registers: [registry] }),
    ingestBytes: new client.Counter({ name: 'shoal_ingest_bytes_total', help: 'Request body bytes of accepted batches', registers: [registry] }),
    ingestBatches: new client.Counter({ name: 'shoal_ingest_batches_total', help: 'Batches by outcome', labelNames: ['outcome'], registers: [registry] }),
    queries: new client.Counter({ name: 'shoal_queries_total', help: 'Queries by outcome', labelNames: ['outcome'], registers: [registry] }),
    queryLatency: new client.Histogram({
      name: 'shoal_query_duration_seconds', help: 'Query latency', registers: [registry],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }),
    queryCoverage: new client.Histogram({
      name: 'shoal_query_coverage_percent', help: 'Coverage of answered queries', registers: [registry],
      buckets: [10, 25, 50, 75, 90, 95, 99, 100],
    }),
    rowsHeld: new client.Gauge({ name: 'shoal_rows', help: 'Rows held in memory', registers: [registry] }),
    bytesHeld: new client.Gauge({ name: 'shoal_bytes', help: 'Bytes of table data held in memory', registers: [registry] }),
    evictedRows: new client.Gauge({ name: 'shoal_evicted_rows', help: 'Rows dropped by the memory budget or retention since start', registers: [registry] }),
    diskWritable: new client.Gauge({ name: 'shoal_disk_log_writable', help: '1 while the disk log takes writes, 0 while ingest is refused because of the disk', registers: [registry] }),
    diskErrors: new client.Gauge({ name: 'shoal_disk_log_errors', help: 'Write and fsync errors of the disk log since start', registers: [registry] }),
    dataLossReports: new client.Gauge({ name: 'shoal_data_loss_reports', help: 'Damages recovery found that lost acknowledged data (see GET /v1/status disk.losses)', registers: [registry] }),
    restartMs: new client.Gauge({ name: 'shoal_restart_duration_ms', help: 'Time the last start took to restore data', labelNames: ['source'], registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
