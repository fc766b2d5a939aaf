/**
 * A Parquet column of lists of strings in the standard 3-level shape (`optional group tags
 * (LIST) { repeated group list { optional binary element (STRING) } }`, each level optional or
 * required), read page by page with hyparquet's own page decoders and assembled here into
 * exact-length arrays. hyparquet's generic Dremel assembly (assembleLists, for any nesting) was
 * 14.6% of the Parquet loader's CPU for the bench's one `tags` column, and its arrays, grown by
 * push, were copied again to exact length (read-parquet.ts, compact); for this one shape the
 * levels say directly where a row, a list and an element start, so each row's array is made at
 * its length once.
 *
 * Values are what hyparquet gives for the same column after compaction: a missing list is
 * null, an empty list [], a missing element null. test/loader-parquet-lists.test.ts reads
 * DuckDB-written files both ways. Any other shape is read by hyparquet as before
 * (`stringListShape` returns null); pages that do not add up to the row group's rows and values
 * end the file's load with a format error, never a short column.
 *
 * Not here: the other columns and the ranged file reads (read-parquet.ts).
 */
import type { AsyncBuffer, Compressors, DataReader, DecodedArray, FileMetaData, ParquetParsers, SchemaTree } from 'hyparquet';
import type { ColumnDecoder } from 'hyparquet/src/types.js';
import { parquetHeader, readPage } from 'hyparquet/src/column.js';
import { convert, convertWithDictionary, DEFAULT_PARSERS } from 'hyparquet/src/convert.js';
import { decompressPage, readDataPage, readDataPageV2 } from 'hyparquet/src/datapage.js';

/** The definition levels of a list column of this shape. */
export interface ListShape {
  /** The schema's root and the column: hyparquet's decoders count levels along [root, ...]. */
  readonly root: SchemaTree;
  readonly tree: SchemaTree;
  /** Below this the list itself is missing (0 when the list is required). */
  readonly listDef: number;
  /** At this level the list has an element; at listDef it is empty. */
  readonly elementDef: number;
  /** The element's value is present (elementDef, or elementDef + 1 for an optional element). */
  readonly valueDef: number;
}

/** The shape of top-level column `c` (of schema `root`) when it is a 3-level list of strings, else null. */
export function stringListShape(root: SchemaTree, c: SchemaTree): ListShape | null {
  const e = c.element;
  if (e.converted_type !== 'LIST' || e.repetition_type === 'REPEATED' || c.children.length !== 1) return null;
  const list = c.children[0]!;
  if (list.element.repetition_type !== 'REPEATED' || list.children.length !== 1) return null;
  const leaf = list.children[0]!;
  const le = leaf.element;
  if (leaf.children.length !== 0 || le.type !== 'BYTE_ARRAY' || le.repetition_type === 'REPEATED') return null;
  if (le.converted_type !== 'UTF8' && le.logical_type?.type !== 'STRING') return null;
  const listDef = e.repetition_type === 'OPTIONAL' ? 1 : 0;
  const elementDef = listDef + 1;
  return { root, tree: c, listDef, elementDef, valueDef: le.repetition_type === 'OPTIONAL' ? elementDef + 1 : elementDef };
}

export interface ListColumnRead {
  readonly file: AsyncBuffer;
  readonly metadata: FileMetaData;
  readonly group: number;
  readonly groupRows: number;
  readonly compressors: Compressors;
  readonly parsers: Partial<ParquetParsers>;
}

/** The rows of one row group of list column `shape`, as exact-length arrays (or null). */
export async function readStringLists(shape: ListShape, at: ListColumnRead): Promise<((string | null)[] | null)[]> {
  const name = shape.tree.element.name;
  const chunk = at.metadata.row_groups[at.group]!.columns.find((col) => col.meta_data?.path_in_schema[0] === name);
  const meta = chunk?.meta_data;
  if (meta === undefined) throw new Error(`no column chunk for ${name}`);
  const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
  const end = start + Number(meta.total_compressed_size);
  const bytes = await at.file.slice(start, end);
  const leaf = shape.tree.children[0]!.children[0]!;
  const decoder: ColumnDecoder = {
    pathInSchema: meta.path_in_schema, element: leaf.element, schemaPath: [shape.root, shape.tree, shape.tree.children[0]!, leaf],
    type: meta.type, codec: meta.codec, compressors: at.compressors, utf8: true,
    parsers: { ...DEFAULT_PARSERS, ...at.parsers },
  };
  const reader: DataReader = { view: new DataView(bytes), offset: 0 };
  const rows: ((string | null)[] | null)[] = [];
  let current: (string | null)[] | null = null;
  let filled = 0;
  let dictionary: DecodedArray | undefined;
  const { listDef, elementDef, valueDef } = shape;
  let levels = 0;
  while (reader.offset < reader.view.byteLength - 1) {
    const header = parquetHeader(reader);
    if (header.type === 'DICTIONARY_PAGE') {
      const { data } = readPage(reader, header, decoder, undefined, undefined, 0);
      if (data) dictionary = convert(data, decoder);
      continue;
    }
    const compressed = new Uint8Array(reader.view.buffer, reader.view.byteOffset + reader.offset, header.compressed_page_size);
    reader.offset += header.compressed_page_size;
    let page: { definitionLevels: number[] | undefined; repetitionLevels: number[]; dataPage: DecodedArray };
    let encoding;
    if (header.type === 'DATA_PAGE' && header.data_page_header) {
      const raw = decompressPage(compressed, Number(header.uncompressed_page_size), meta.codec, at.compressors);
      page = readDataPage(raw, header.data_page_header, decoder);
      encoding = header.data_page_header.encoding;
    } else if (header.type === 'DATA_PAGE_V2' && header.data_page_header_v2) {
      page = readDataPageV2(compressed, header, decoder);
      encoding = header.data_page_header_v2.encoding;
    } else {
      continue; // index pages and the like hold no values
    }
    const values = convertWithDictionary(page.dataPage, dictionary, encoding, decoder) as ArrayLike<string>;
    const defs = page.definitionLevels;
    const reps = page.repetitionLevels;
    const n = reps.length;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const def = defs === undefined || defs.length === 0 ? valueDef : defs[i]!;
      if (reps[i] === 0) {
        // A new row: its elements are the levels up to the next 0 (on this page; a row that
        // goes on into the next page grows its array there).
        if (def < listDef) { rows.push(null); current = null; continue; }
        let len = 0;
        if (def >= elementDef) {
          len = 1;
          while (i + len < n && reps[i + len] !== 0) len++;
        }
        current = new Array<string | null>(len);
        filled = 0;
        rows.push(current);
        if (def < elementDef) continue; // an empty list
      } else if (current === null) {
        throw new Error(`column ${name}: an element continues a missing list`);
      }
      current[filled++] = def >= valueDef ? values[v++]! : null;
    }
    levels += n;
    if (v !== values.length) throw new Error(`column ${name}: ${values.length} values for ${v} present elements`);
  }
  if (rows.length !== at.groupRows) throw new Error(`column ${name}: ${rows.length} rows read (${levels} levels), the row group has ${at.groupRows}`);
  return rows;
}
