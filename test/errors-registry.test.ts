/**
 * Keeps the error registry honest (STYLE rules 6-7): codes are unique and well-formed, each has a
 * sane HTTP status and a description, and docs/errors.md documents exactly the registered codes.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERRORS, ShoalError } from '../query/errors.js';

const docs = fs.readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
const documented = [...docs.matchAll(/^## (SHOAL_ERR_[A-Z_]+)\s*$/gm)].map((m) => m[1]!);

describe('error registry', () => {
  it('has well-formed codes with statuses and descriptions', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^SHOAL_ERR_[A-Z]+(_[A-Z]+)*$/);
      expect(spec.status >= 400 && spec.status <= 599, code).toBe(true);
      expect(spec.description.length, code).toBeGreaterThan(20);
    }
  });

  it('documents every code in docs/errors.md, and nothing else', () => {
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(ERRORS).sort());
    for (const [code, spec] of Object.entries(ERRORS)) {
      const section = docs.split(`## ${code}`)[1]!.split('\n## ')[0]!;
      expect(section, code).toContain(`HTTP ${spec.status}`);
    }
  });

  it('serialises to the documented error shape', () => {
    const e = new ShoalError('SHOAL_ERR_QUERY_PARSE', 'bad', { position: 3 });
    expect(e.status).toBe(400);
    expect(e.toJSON()).toEqual({ error: { code: 'SHOAL_ERR_QUERY_PARSE', message: 'bad', position: 3 } });
  });
});
