/**
 * The progress bar of `shoal load` (cli-progress, on stderr): bytes and rows done, rows/s, ETA.
 * Shown only when stdout and stderr are terminals and --quiet is not given, so piped or logged
 * output carries the final report alone. cli-progress redraws at most `fps` times a second, so
 * calling update() per chunk is cheap.
 */
import cliProgress from 'cli-progress';
import type { LoadProgress } from './load.js';

export interface ProgressBar {
  update(p: LoadProgress): void;
  stop(): void;
}

const NO_BAR: ProgressBar = { update: () => {}, stop: () => {} };

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(bytes >= 100 * 1024 * 1024 ? 0 : 1);
}

export function shouldShowProgress(quiet: boolean): boolean {
  return !quiet && process.stdout.isTTY === true && process.stderr.isTTY === true;
}

export function progressBar(show: boolean, bytesTotal: number): ProgressBar {
  if (!show) return NO_BAR;
  const bar = new cliProgress.SingleBar({
    format: ' {bar} {percentage}% | {doneMiB}/{totalMiB} MiB | {rows} rows | {rate} rows/s | ETA {eta_formatted}',
    stream: process.stderr,
    fps: 5,
    etaBuffer: 50,
    hideCursor: true,
    clearOnComplete: false,
    barsize: 30,
  }, cliProgress.Presets.shades_classic);
  const total = Math.max(1, bytesTotal);
  bar.start(total, 0, { doneMiB: '0', totalMiB: mib(bytesTotal), rows: '0', rate: '0' });
  return {
    update(p) {
      const seconds = p.elapsedMs / 1000;
      bar.update(Math.min(total, p.bytesDone), {
        doneMiB: mib(p.bytesDone),
        rows: p.rowsRead.toLocaleString('en-US'),
        rate: seconds > 0 ? Math.round(p.rowsAccepted / seconds).toLocaleString('en-US') : '0',
      });
    },
    stop() { bar.stop(); },
  };
}
